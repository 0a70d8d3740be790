//! `porter events tail [--follow]`: print the events in the store, as JSON lines.
//!
//! Reads every stream shard, prints the last `--count` events across them in stream-id order,
//! and with `--follow` keeps polling each shard for new entries (polling rather than a blocking
//! `XREAD`, so that one multiplexed connection serves every shard of a cluster).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::inspect::Access;
use crate::config::{Config, StoreKind};
use crate::store::Store;
use crate::store::inspect::EventQuery;
use crate::store::local::Follower;
use crate::store::redis::{RedisStore, StreamEntry};

const POLL_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Debug, Args)]
pub(super) struct TailArgs {
    /// The configuration naming the store (default: ./porter.toml if present, else the
    /// embedded default, whose local store is `porter-data/`).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// How many of the newest events to print first.
    #[arg(long, default_value_t = 10)]
    count: usize,
    /// Keep printing new events as they arrive (until interrupted).
    #[arg(long, short)]
    follow: bool,
}

pub(super) fn tail(args: &TailArgs) -> ExitCode {
    let config = match Config::resolve_without_admin_token(args.config.as_deref()) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let count = args.count;
    let follow = args.follow;
    super::inspect::on_store(config, Access::Read, move |config, store| async move {
        match (store, &config.store.kind) {
            (Store::Redis(store), _) => run(&store, count, follow).await.map_err(|e| e.to_string()),
            (store, StoreKind::Local { path, .. }) => run_local(&store, path, count, follow).await,
            _ => Err("porter events tail cannot read this store".to_owned()),
        }
    })
}

/// Tails a local store: the newest events it keeps, then what its journal gains.
async fn run_local(
    store: &Store,
    path: &std::path::Path,
    count: usize,
    follow: bool,
) -> Result<(), String> {
    let mut follower = Follower::at_end(path).map_err(|e| e.to_string())?;
    let newest = store
        .recent_events(&EventQuery {
            limit: count,
            ..EventQuery::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    print_lines(newest.iter().rev().map(|e| e.json.as_bytes()));
    if !follow {
        return Ok(());
    }
    eprintln!("porter events tail: following new events (Ctrl-C stops)");
    loop {
        tokio::select! {
            () = tokio::time::sleep(POLL_INTERVAL) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
        let events = follower.poll().map_err(|e| e.to_string())?;
        print_lines(events.iter().map(|e| e.as_bytes()));
    }
}

fn print_lines<'a>(lines: impl Iterator<Item = &'a [u8]>) {
    let mut out = std::io::stdout().lock();
    for line in lines {
        let _ = out.write_all(line);
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
}

async fn run(
    store: &RedisStore,
    count: usize,
    follow: bool,
) -> Result<(), crate::store::StoreError> {
    let streams = store.layout().streams();
    let mut newest: Vec<(usize, StreamEntry)> = Vec::new();
    let mut cursors = vec!["0-0".to_owned(); streams.len()];
    for (index, stream) in streams.iter().enumerate() {
        // At least one, to learn where following starts even when printing none.
        let entries = store.last(stream, count.max(1)).await?;
        if let Some(last) = entries.last() {
            cursors[index] = last.id.clone();
        }
        newest.extend(entries.into_iter().map(|e| (index, e)));
    }
    newest.sort_by_key(|(_, entry)| stream_id_order(&entry.id));
    let skip = newest.len().saturating_sub(count);
    print(newest.iter().skip(skip).map(|(_, e)| e));
    if !follow {
        return Ok(());
    }
    // On stderr, so stdout stays JSON lines: from here on, every new event is printed.
    eprintln!("porter events tail: following new events (Ctrl-C stops)");
    loop {
        tokio::select! {
            () = tokio::time::sleep(POLL_INTERVAL) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
        for (index, stream) in streams.iter().enumerate() {
            let entries = store.read(stream, &cursors[index], 1_000).await?;
            if let Some(last) = entries.last() {
                cursors[index] = last.id.clone();
            }
            print(entries.iter());
        }
    }
}

fn print<'a>(entries: impl Iterator<Item = &'a StreamEntry>) {
    print_lines(entries.filter_map(|entry| entry.field("event")));
}

/// Stream ids are `<milliseconds>-<sequence>`: order by both numbers.
fn stream_id_order(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}
