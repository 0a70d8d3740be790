//! `porter reprocess`: asks the running `porter serve` to reprocess, through its admin API, and
//! prints the summary ([`crate::reprocess`]).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Config;
use crate::reprocess::{ReprocessError, Summary};

/// The summary as the command prints it.
pub(super) fn describe(summary: &Summary, dry_run: bool) -> String {
    let mut text = String::new();
    for change in &summary.changes {
        let _ = writeln!(
            text,
            "{} {} from {} (archived request {})",
            change.event_type, change.id, change.reprocessed_from, change.archived
        );
    }
    let _ = writeln!(
        text,
        "read {}, re-verified {}, failed verification {}, unchanged {}, changed {} → {} new events{}",
        summary.read,
        summary.reverified,
        summary.failed_verification,
        summary.unchanged,
        summary.changed,
        if dry_run {
            summary.changes.len()
        } else {
            summary.stored
        },
        if dry_run {
            " (dry run: nothing stored)".to_owned()
        } else {
            format!(", {} already stored", summary.already_stored)
        },
    );
    if summary.erased > 0 {
        let _ = writeln!(
            text,
            "{} archived requests skipped: an erasure removed what they held",
            summary.erased
        );
    }
    text
}

/// `porter reprocess`.
#[derive(Debug, clap::Args)]
pub(super) struct ReprocessArgs {
    /// The source whose archived requests to reprocess.
    #[arg(long)]
    pub source: String,
    /// How far back: requests received in the last `1h`, `7d`, ...
    #[arg(long)]
    pub since: String,
    /// Print what would change; store nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The configuration of the running `porter serve` (its store, or its `[admin]` table,
    /// says where to ask, and with which token).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub admin: super::running::AdminArgs,
}

/// Asks the running server's admin API to reprocess, and prints its summary.
pub(super) fn command(args: &ReprocessArgs) -> ExitCode {
    match command_inner(args) {
        Ok(text) => {
            crate::out!("{text}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("porter reprocess: {message}");
            ExitCode::FAILURE
        }
    }
}

fn command_inner(args: &ReprocessArgs) -> Result<String, String> {
    let config = Config::resolve(args.config.as_deref()).map_err(|errors| errors.to_string())?;
    if config.archive.is_none() {
        return Err(ReprocessError::ArchiveOff.to_string());
    }
    if config.source(&args.source).is_none() {
        return Err(ReprocessError::UnknownSource(args.source.clone()).to_string());
    }
    let target = super::running::locate(&config, &args.admin, "porter reprocess")?;
    let body = serde_json::json!({
        "source": args.source,
        "since": args.since,
        "dry_run": args.dry_run,
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let answer = runtime
        .block_on(target.post("/api/reprocess", Some(&body)))
        .map_err(super::running::Failure::describe)?;
    let summary: Summary = serde_json::from_value(answer).map_err(|e| e.to_string())?;
    Ok(describe(&summary, args.dry_run))
}
