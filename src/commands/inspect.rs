//! `porter dlq list`, `porter dlq replay` and `porter events show`: answering "why didn't the
//! checkout event reach housekeeping?" from the Redis store.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use jiff::Timestamp;

use crate::app::store_for;
use crate::clock::Clock;
use crate::config::{Config, StoreKind};
use crate::delivery::Plan;
use crate::store::local::running::Running;
use crate::store::redis::StreamEntry;
use crate::store::{
    Attempt, JobState, LocalSettings, LocalStore, MemorySchedule, RedisSchedule, RedisStore, Store,
    StoreError,
};

use super::running::{AdminArgs, Failure};

/// Dead letters read per page when listing or replaying all.
const PAGE: usize = 1_000;

/// Runs `work` against the Redis store of `config` (or of the configuration at the path in its
/// `Err`), or, when that configuration has a local store, `local` against it.
fn with_redis<F, Fut, L, LFut>(
    config: Result<Config, Option<&Path>>,
    access: Access,
    local: L,
    work: F,
) -> ExitCode
where
    F: FnOnce(Config, Arc<RedisSchedule>) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
    L: FnOnce(Config, Store) -> LFut,
    LFut: std::future::Future<Output = Result<(), String>>,
{
    let config = match config.or_else(Config::resolve) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    if let StoreKind::Local { .. } = config.store.kind {
        return on_store(config, access, local);
    }
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
    on_store(config, Access::Write, |config, store| async move {
        match store {
            Store::Redis(redis) => work(config, redis).await,
            _ => Err("this command needs a Redis store".to_owned()),
        }
    })
}

/// What a command does to a store: a local store held by `porter serve` can still be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

/// Runs `work` on `config`'s store on a runtime of its own, and turns its outcome into the
/// exit code. A Redis store as it is; a local store with its lock, or, for reading while
/// `porter serve` holds it, as its files say; a memory store lives inside `porter serve` and
/// cannot be read from another process: refused with a message.
pub(crate) fn on_store<F, Fut>(config: Config, access: Access, work: F) -> ExitCode
where
    F: FnOnce(Config, Store) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    if let StoreKind::Memory { .. } = config.store.kind {
        eprintln!(
            "porter: the memory store lives inside `porter serve` and cannot be inspected from \
             another process; use the local or the redis store"
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
        let store = match open_for_cli(&config, access) {
            Ok(store) => store,
            Err(message) => {
                eprintln!("porter: {message}");
                return ExitCode::FAILURE;
            }
        };
        match work(config, store).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("porter: {message}");
                ExitCode::FAILURE
            }
        }
    })
}

fn open_for_cli(config: &Config, access: Access) -> Result<Store, String> {
    let plan = match &config.store.kind {
        StoreKind::Local { path, .. } => {
            if !path.is_dir() {
                return Err(format!(
                    "{} does not exist: no local store has been opened there (`porter serve` \
                     creates it; run this command where porter serves, or name its --config)",
                    path.display()
                ));
            }
            Plan::of(config).map_err(|e| e.to_string())?
        }
        _ => Plan::default(),
    };
    match store_for(config, &plan, &Clock::system()) {
        Ok(store) => Ok(store),
        Err(error) => match (&config.store.kind, access) {
            (
                StoreKind::Local {
                    path,
                    retain_events,
                    capacity,
                    ..
                },
                Access::Read,
            ) if matches!(error, StoreError::InUse(_)) => {
                let destinations = plan.memory_destinations();
                let schedule = (!destinations.is_empty())
                    .then(|| Arc::new(MemorySchedule::new(&destinations, *capacity)));
                let settings = LocalSettings {
                    capacity: *capacity,
                    retain_events: *retain_events,
                    ..LocalSettings::new(path.clone())
                };
                LocalStore::read_only(&settings, schedule, Clock::system())
                    .map(|memory| Store::Memory(Arc::new(memory)))
                    .map_err(|e| e.to_string())
            }
            (StoreKind::Local { .. }, Access::Write) => Err(format!(
                "{error}; this command changes the store, which the running `porter serve` \
                 holds: stop it, run this command again, then start it"
            )),
            _ => Err(error.to_string()),
        },
    }
}

fn text(entry: &StreamEntry, name: &str) -> String {
    entry
        .field(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

/// `porter dlq list`: one line per dead letter, oldest first.
pub(super) fn dlq_list(path: Option<&Path>, count: usize) -> ExitCode {
    let local = move |_: Config, store: Store| async move {
        let Some(schedules) = store.schedules() else {
            crate::outln!("no dead letters (no destinations configured)");
            return Ok(());
        };
        let mut dead = schedules
            .dead_letters(usize::MAX)
            .await
            .map_err(|e| e.to_string())?;
        dead.reverse();
        dead.truncate(count);
        if dead.is_empty() {
            crate::outln!("no dead letters");
        }
        for d in dead {
            let last = d
                .attempts
                .last()
                .map_or_else(String::new, |a| a.outcome.to_string());
            crate::outln!(
                "{}  destination={}  event={}  attempts={}  last={}",
                d.id,
                d.destination,
                d.event_id,
                d.attempts.len(),
                last
            );
        }
        Ok(())
    };
    with_redis(Err(path), Access::Read, local, |_, queue| async move {
        let dlq = queue.store().layout().dead_letters();
        let entries = queue
            .store()
            .read(&dlq, "-", count)
            .await
            .map_err(|e| e.to_string())?;
        if entries.is_empty() {
            crate::outln!("no dead letters");
        }
        for entry in entries {
            let attempts: Vec<Attempt> =
                serde_json::from_slice(entry.field("attempts").unwrap_or(b"[]"))
                    .unwrap_or_default();
            let last = attempts
                .last()
                .map_or_else(String::new, |a| a.outcome.to_string());
            crate::outln!(
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

/// `porter dlq replay ID… | --all`: back into the destinations' schedules, due now. On the
/// store itself, or, when it is the running `porter serve`'s (a memory store, a local store it
/// holds), through its admin API.
pub(super) fn dlq_replay(
    path: Option<&Path>,
    ids: &[String],
    all: bool,
    admin: &AdminArgs,
) -> ExitCode {
    let config = match Config::resolve(path) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let served = match &config.store.kind {
        StoreKind::Memory { .. } => true,
        StoreKind::Local { path, .. } => {
            !matches!(Running::check(path), Ok(Running::Stopped { .. }) | Err(_))
        }
        StoreKind::Redis { .. } => false,
    };
    if served {
        return match replay_through_admin(&config, ids, all, admin) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("porter dlq replay: {message}");
                ExitCode::FAILURE
            }
        };
    }
    let ids = ids.to_vec();
    let local_ids = ids.clone();
    let local = move |config: Config, store: Store| async move {
        super::running::clear_stale(&config);
        let Some(schedules) = store.schedules() else {
            // As the admin API answers: nothing to replay.
            return match local_ids.first() {
                None => {
                    crate::outln!("replayed 0 dead letters");
                    Ok(())
                }
                Some(id) => Err(format!(
                    "no dead letter {id} (no destinations are configured, so there are none)"
                )),
            };
        };
        let now = Timestamp::now().as_millisecond();
        if all {
            let replayed = schedules.replay_all(now).await.map_err(|e| e.to_string())?;
            crate::outln!("replayed {replayed} dead letters");
            return Ok(());
        }
        for id in &local_ids {
            match schedules.replay(id, now).await.map_err(|e| e.to_string())? {
                Some(destination) => crate::outln!("replayed {id} to {destination}"),
                None => return Err(format!("no dead letter {id}")),
            }
        }
        Ok(())
    };
    with_redis(
        Ok(config),
        Access::Write,
        local,
        |config, queue| async move {
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
                crate::outln!(
                    "replayed {} to {destination} (event {})",
                    entry.id,
                    text(entry, "event_id")
                );
            }
            Ok(())
        },
    )
}

/// `porter dlq replay` through the running server's admin API.
fn replay_through_admin(
    config: &Config,
    ids: &[String],
    all: bool,
    admin: &AdminArgs,
) -> Result<(), String> {
    let command = if all {
        "porter dlq replay --all".to_owned()
    } else {
        format!("porter dlq replay {}", ids.join(" "))
    };
    let target = super::running::locate(config, admin, &command)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        if all {
            let answer = target
                .post("/api/dlq/replay", None)
                .await
                .map_err(Failure::describe)?;
            crate::outln!(
                "replayed {} dead letters",
                answer["replayed"].as_u64().unwrap_or(0)
            );
            return Ok(());
        }
        for id in ids {
            let path = format!("/api/dlq/{}/replay", path_segment(id));
            match target.post(&path, None).await {
                Ok(answer) => crate::outln!(
                    "replayed {id} to {}",
                    answer["destination"].as_str().unwrap_or("?")
                ),
                Err(Failure::Refused(refused)) if refused.code == "not_found" => {
                    return Err(format!(
                        "no dead letter {id} (`porter dlq list` lists them)"
                    ));
                }
                Err(failure) => return Err(failure.describe()),
            }
        }
        Ok(())
    })
}

/// `text` as one segment of a URL's path: every byte but the unreserved ones percent-encoded.
fn path_segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `porter events show EVENT_ID`: the event, and per destination its attempts and where it is.
pub(super) fn events_show(path: Option<&Path>, event_id: &str) -> ExitCode {
    let event_id = event_id.to_owned();
    let local_id = event_id.clone();
    let local = move |config: Config, store: Store| async move {
        let event = store
            .find_event(&local_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no event {local_id} among those the store keeps"))?;
        crate::outln!("{}", event.json);
        crate::outln!();
        let Some(schedules) = store.schedules() else {
            return Ok(());
        };
        for destination in &config.destinations {
            if !destination.kind.delivered_by_porter() {
                continue;
            }
            let found = schedules
                .state_of(&destination.name, &event)
                .await
                .map_err(|e| e.to_string())?;
            let (state, attempts) = match found {
                Some((JobState::Delivered, attempts)) => ("delivered".to_owned(), attempts),
                Some((JobState::DeadLettered, attempts)) => ("dead-lettered".to_owned(), attempts),
                Some((JobState::Scheduled { due_ms }, attempts)) => {
                    let due = Timestamp::from_millisecond(due_ms)
                        .map_or_else(|_| due_ms.to_string(), |t| t.to_string());
                    (format!("scheduled, next attempt at {due}"), attempts)
                }
                None => (
                    "not scheduled (filtered out, or delivered long ago)".to_owned(),
                    Vec::new(),
                ),
            };
            crate::outln!("{}: {state}", destination.name);
            print_attempts(attempts);
        }
        Ok(())
    };
    with_redis(Err(path), Access::Read, local, |config, queue| async move {
        let (shard, entry) = find_event(&queue, &event_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no event {event_id} in the stream"))?;
        crate::outln!("{}", text(&entry, "event"));
        crate::outln!();
        for destination in &config.destinations {
            if !destination.kind.delivered_by_porter() {
                continue;
            }
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
            crate::outln!("{}: {state}", destination.name);
            print_attempts(attempts);
        }
        Ok(())
    })
}

fn print_attempts(attempts: Vec<Attempt>) {
    for attempt in attempts {
        let status = attempt
            .status
            .map_or_else(|| "-".to_owned(), |s| s.to_string());
        crate::outln!(
            "  {}  {status:>3}  {}  {} ms",
            attempt.at,
            attempt.outcome,
            attempt.duration_ms
        );
    }
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
