//! `porter dlq list`, `porter dlq replay` and `porter events show`: answering "why didn't the
//! checkout event reach housekeeping?" from the Redis store.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use jiff::Timestamp;

use crate::clock::Clock;
use crate::config::{Config, DestinationKind, StoreKind};
use crate::delivery::Plan;
use crate::server::store_for;
use crate::store::redis::StreamEntry;
use crate::store::{Attempt, RedisSchedule, RedisStore, Store, StoreError};

/// Dead letters read per page when listing or replaying all.
const PAGE: usize = 1_000;

/// Runs `work` against the Redis store of the configuration at `path`.
fn with_redis<F, Fut>(path: Option<&Path>, work: F) -> ExitCode
where
    F: FnOnce(Config, Arc<RedisSchedule>) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let config = match Config::resolve(path) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    on_redis_store(config, |config, redis| async move {
        let queue = Arc::new(RedisSchedule::new(redis, "porter-cli".to_owned()));
        work(config, queue).await
    })
}

/// Runs `work` on `config`'s Redis store, on a runtime of its own, and turns its outcome into
/// the exit code (a message on stderr when it fails). A memory store lives inside `porter
/// serve` and cannot be read from another process: that is refused with a message.
pub(crate) fn on_redis_store<F, Fut>(config: Config, work: F) -> ExitCode
where
    F: FnOnce(Config, Arc<RedisStore>) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    if let StoreKind::Memory { .. } = config.store.kind {
        eprintln!(
            "porter: the memory store lives inside `porter serve` and cannot be inspected from \
             another process; use the redis store"
        );
        return ExitCode::FAILURE;
    }
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
    runtime.block_on(async {
        let redis = match store_for(&config, &Plan::default(), &Clock::system()) {
            Ok(Store::Redis(redis)) => redis,
            Ok(Store::Memory(_)) => return ExitCode::FAILURE,
            Err(error) => {
                eprintln!("porter: {error}");
                return ExitCode::FAILURE;
            }
        };
        match work(config, redis).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("porter: {message}");
                ExitCode::FAILURE
            }
        }
    })
}

fn text(entry: &StreamEntry, name: &str) -> String {
    entry
        .field(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

/// `porter dlq list`: one line per dead letter, oldest first.
pub fn dlq_list(path: Option<&Path>, count: usize) -> ExitCode {
    with_redis(path, |_, queue| async move {
        let dlq = queue.store().layout().dead_letters();
        let entries = queue
            .store()
            .read(&dlq, "-", count)
            .await
            .map_err(|e| e.to_string())?;
        if entries.is_empty() {
            println!("no dead letters");
        }
        for entry in entries {
            let attempts: Vec<Attempt> =
                serde_json::from_slice(entry.field("attempts").unwrap_or(b"[]"))
                    .unwrap_or_default();
            let last = attempts
                .last()
                .map_or_else(String::new, |a| a.outcome.to_string());
            println!(
                "{}  destination={}  event={}  attempts={}  last={}",
                entry.id,
                text(&entry, "destination"),
                text(&entry, "event_id"),
                attempts.len(),
                last
            );
        }
        Ok(())
    })
}

/// `porter dlq replay ID… | --all`: back into the destinations' schedules, due now.
pub fn dlq_replay(path: Option<&Path>, ids: &[String], all: bool) -> ExitCode {
    let ids = ids.to_vec();
    with_redis(path, |config, queue| async move {
        let dlq = queue.store().layout().dead_letters();
        let mut entries = Vec::new();
        if all {
            let mut after = "-".to_owned();
            loop {
                let page = queue
                    .store()
                    .read(&dlq, &after, PAGE)
                    .await
                    .map_err(|e| e.to_string())?;
                let Some(last) = page.last() else { break };
                after = last.id.clone();
                entries.extend(page);
            }
        } else {
            for id in &ids {
                let found = queue
                    .store()
                    .read_range(&dlq, id, id)
                    .await
                    .map_err(|e| e.to_string())?;
                match found.into_iter().next() {
                    Some(entry) => entries.push(entry),
                    None => return Err(format!("no dead letter {id}")),
                }
            }
        }
        let known: Vec<&str> = config
            .destinations
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        let now = Timestamp::now().as_millisecond();
        for entry in &entries {
            let destination = text(entry, "destination");
            if !known.contains(&destination.as_str()) {
                eprintln!(
                    "skipped {}: destination `{destination}` is not configured",
                    entry.id
                );
                continue;
            }
            queue.replay(entry, now).await.map_err(|e| e.to_string())?;
            println!(
                "replayed {} to {destination} (event {})",
                entry.id,
                text(entry, "event_id")
            );
        }
        Ok(())
    })
}

/// `porter events show EVENT_ID`: the event, and per destination its attempts and where it is.
pub fn events_show(path: Option<&Path>, event_id: &str) -> ExitCode {
    let event_id = event_id.to_owned();
    with_redis(path, |config, queue| async move {
        let (shard, entry) = find_event(&queue, &event_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no event {event_id} in the stream"))?;
        println!("{}", text(&entry, "event"));
        println!();
        for destination in &config.destinations {
            let DestinationKind::Http(_) = destination.kind else {
                continue;
            };
            let attempts = queue
                .attempts(&destination.name, shard, &entry.id)
                .await
                .map_err(|e| e.to_string())?;
            let state = match attempts.last() {
                Some(last) if last.delivered() => "delivered".to_owned(),
                _ => delivery_state(&queue, &destination.name, shard, &entry.id)
                    .await
                    .map_err(|e| e.to_string())?,
            };
            println!("{}: {state}", destination.name);
            for attempt in attempts {
                let status = attempt
                    .status
                    .map_or_else(|| "-".to_owned(), |s| s.to_string());
                println!(
                    "  {}  {status:>3}  {}  {} ms",
                    attempt.at, attempt.outcome, attempt.duration_ms
                );
            }
        }
        Ok(())
    })
}

/// Scans the shards for the entry whose `id` field is `event_id`.
async fn find_event(
    queue: &RedisSchedule,
    event_id: &str,
) -> Result<Option<(usize, StreamEntry)>, StoreError> {
    for shard in 0..queue.shard_count() {
        let stream = queue.store().layout().stream(shard);
        let mut after = "-".to_owned();
        loop {
            let page = queue.store().read(&stream, &after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.id.clone();
            if let Some(entry) = page
                .into_iter()
                .find(|e| e.field("id") == Some(event_id.as_bytes()))
            {
                return Ok(Some((shard, entry)));
            }
        }
    }
    Ok(None)
}

async fn delivery_state(
    queue: &RedisSchedule,
    destination: &str,
    shard: usize,
    entry: &str,
) -> Result<String, StoreError> {
    if let Some(due) = queue.scheduled_at(destination, shard, entry).await? {
        let due =
            Timestamp::from_millisecond(due).map_or_else(|_| due.to_string(), |t| t.to_string());
        return Ok(format!("scheduled, next attempt at {due}"));
    }
    let dlq = queue.store().layout().dead_letters();
    let mut after = "-".to_owned();
    loop {
        let page = queue.store().read(&dlq, &after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.id.clone();
        if page.iter().any(|e| {
            e.field("destination") == Some(destination.as_bytes())
                && e.field("entry") == Some(entry.as_bytes())
        }) {
            return Ok("dead-lettered".to_owned());
        }
    }
    Ok("not scheduled (filtered out, or not read by the destination yet)".to_owned())
}
