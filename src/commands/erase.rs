//! `porter erase`: erasure on request from the command line.
//!
//! On a Redis store, and on a local store no `porter serve` holds, the command works on the
//! store itself. A memory store lives inside `porter serve`, and a local store it holds is
//! locked: then the command asks that process through its admin API (`POST /api/erase`, found
//! as [`super::running`] says), so the one erasure path runs either way.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

use crate::app::store_for;
use crate::clock::Clock;
use crate::config::{Config, StoreKind};
use crate::delivery::Plan;
use crate::privacy::erase::{EraseError, Request, erase};
use crate::privacy::{Person, PersonKind};
use crate::store::StoreError;

use super::running::{self, AdminArgs, Failure};

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("person").required(true).args(["phone", "email", "guest_id"])))]
pub(super) struct EraseArgs {
    /// A phone number, in international form (+49 151 2345 6789, 004915123456789).
    #[arg(long, value_name = "NUMBER")]
    phone: Option<String>,
    /// An email address (compared without case).
    #[arg(long, value_name = "ADDRESS")]
    email: Option<String>,
    /// The id a PMS gives the guest's profile.
    #[arg(long, value_name = "ID")]
    guest_id: Option<String>,
    /// Only what this source received.
    #[arg(long, value_name = "NAME")]
    source: Option<String>,
    /// Count what would be erased; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    admin: AdminArgs,
    /// The configuration naming the store (default: ./porter.toml if present, else the
    /// embedded default).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl EraseArgs {
    fn person(&self) -> Result<Person, String> {
        let (kind, value) = match (&self.phone, &self.email, &self.guest_id) {
            (Some(v), _, _) => (PersonKind::Phone, v),
            (_, Some(v), _) => (PersonKind::Email, v),
            (_, _, Some(v)) => (PersonKind::GuestId, v),
            _ => return Err("name the person: --phone, --email or --guest-id".to_owned()),
        };
        Person::new(kind, value).map_err(|e| format!("--{}: {e}", kind.as_str().replace('_', "-")))
    }
}

pub(super) fn run(args: &EraseArgs) -> ExitCode {
    let config = match Config::resolve(args.config.as_deref()) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let person = match args.person() {
        Ok(person) => person,
        Err(message) => {
            eprintln!("porter erase: {message}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(source) = &args.source
        && config.source(source).is_none()
        && !config.streams.iter().any(|s| &s.name == source)
    {
        eprintln!("porter erase: no source named `{source}` in the configuration");
        return ExitCode::FAILURE;
    }
    let request = Request {
        person,
        source: args.source.clone(),
        dry_run: args.dry_run,
        remember_for: crate::privacy::erase::remember_for(&config.sources),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("porter: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(report(&config, args, &request)) {
        Ok(report) => {
            if args.json {
                crate::outln!("{report}");
            } else {
                print_report(&report);
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("porter erase: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The erasure's report, from the store itself or through the admin API.
async fn report(config: &Config, args: &EraseArgs, request: &Request) -> Result<Value, String> {
    let plan = match &config.store.kind {
        StoreKind::Memory { .. } => return through_admin(config, args).await,
        StoreKind::Local { .. } => Plan::of(config).map_err(|e| e.to_string())?,
        StoreKind::Redis { .. } => Plan::default(),
    };
    let store = match store_for(config, &plan, &Clock::system()) {
        Ok(store) => store,
        Err(StoreError::InUse(_)) => return through_admin(config, args).await,
        Err(error) => return Err(error.to_string()),
    };
    running::clear_stale(config);
    let destinations: Vec<String> = config
        .destinations
        .iter()
        .filter(|d| d.kind.delivered_by_porter())
        .map(|d| d.name.clone())
        .chain(plan.routes.iter().map(|r| r.name.clone()))
        .collect();
    let key = config.privacy.as_ref().map(|p| p.key.as_slice());
    let report = match erase(&store, &destinations, key, request, jiff::Timestamp::now()).await {
        Ok(report) => report,
        Err(EraseError::NoKey) => return Err(no_privacy_key(&config.origin.to_string(), false)),
        Err(error) => return Err(error.to_string()),
    };
    serde_json::to_value(report).map_err(|e| e.to_string())
}

/// What to add when the configuration has no `[privacy] key` (the admin API's 409
/// `no_privacy_key`, in words).
fn no_privacy_key(origin: &str, serving: bool) -> String {
    format!(
        "erasure needs [privacy] key, and {origin} has none: each erasure keeps an audit \
         record with the value's keyed hash (never the value), so it needs the key to hash \
         under. Add to the configuration\n\n  [privacy]\n  key = \"${{PORTER_PRIVACY_KEY}}\"   \
         # a secret of at least 32 bytes: openssl rand -hex 32\n\n{}then run `porter erase` again",
        if serving {
            "restart `porter serve` with it, "
        } else {
            ""
        }
    )
}

/// Asks the `porter serve` that holds the store.
async fn through_admin(config: &Config, args: &EraseArgs) -> Result<Value, String> {
    let target = running::locate(config, &args.admin, "porter erase")?;
    let mut body = serde_json::json!({ "dry_run": args.dry_run });
    for (name, value) in [
        ("phone", &args.phone),
        ("email", &args.email),
        ("guest_id", &args.guest_id),
    ] {
        if let Some(value) = value {
            body[name] = Value::String(value.clone());
        }
    }
    if let Some(source) = &args.source {
        body["source"] = Value::String(source.clone());
    }
    match target.post("/api/erase", Some(&body)).await {
        Ok(value) => Ok(value),
        Err(Failure::Refused(refused)) if refused.code == "no_privacy_key" => {
            Err(no_privacy_key("the running porter's configuration", true))
        }
        Err(failure) => Err(failure.describe()),
    }
}

fn print_report(report: &Value) {
    let dry_run = report["dry_run"].as_bool().unwrap_or(false);
    let erased = &report["erased"];
    crate::outln!(
        "{} {} {}",
        if dry_run { "would erase" } else { "erased" },
        report["kind"].as_str().unwrap_or("?"),
        report["token"].as_str().unwrap_or("?")
    );
    for (name, label) in [
        ("events", "events"),
        ("scheduled", "scheduled deliveries"),
        ("dead_letters", "dead letters"),
        ("attempt_records", "attempt records"),
        ("quarantined", "quarantined bodies"),
        ("archived", "archived requests"),
    ] {
        crate::outln!("  {label:<22}{}", erased[name].as_u64().unwrap_or(0));
    }
    if let Some(record) = report.get("record").filter(|r| !r.is_null()) {
        crate::outln!(
            "audit record {}; destinations are told by event {}",
            record["id"].as_str().unwrap_or("?"),
            record["event_id"].as_str().unwrap_or("?")
        );
    }
}
