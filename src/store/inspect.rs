//! Reading a store for the operator (the admin API and the console): the newest events, one
//! event and where it stands with each destination, dead letters and their replay.
//!
//! Both stores answer the same questions. The memory store keeps the newest
//! [`RECENT_EVENTS`](super::memory::RECENT_EVENTS) events for this, and remembers the newest
//! delivered jobs per destination. Redis streams have no index by event id, so lookups scan
//! newest first and stop after [`SCAN_LIMIT`] entries per stream: an event older than that is
//! reported as not found rather than making one request read a whole stream.

use std::sync::Arc;

use jiff::Timestamp;

use super::redis::StreamEntry;
use super::schedule::{Attempt, JobState};
use super::{RedisSchedule, Schedules, Store, StoreError};

/// The most stream entries one lookup reads, per stream.
pub(crate) const SCAN_LIMIT: usize = 10_000;
/// Entries read per Redis call while scanning.
const PAGE: usize = 500;

/// A stored event.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub id: String,
    pub source: String,
    pub event_type: String,
    /// The CloudEvents JSON, exactly as stored.
    pub json: Arc<str>,
    /// Where it is in Redis (shard and stream entry); `None` in memory.
    pub entry: Option<(usize, String)>,
}

/// What `GET /api/events` may filter on.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub source: Option<String>,
    pub event_type: Option<String>,
    pub limit: usize,
}

impl EventQuery {
    fn wants(&self, source: &str, event_type: &str) -> bool {
        self.source.as_deref().is_none_or(|s| s == source)
            && self.event_type.as_deref().is_none_or(|t| t == event_type)
    }
}

/// A dead letter: an event a destination never accepted, with every attempt.
#[derive(Debug, Clone)]
pub struct DeadLetterView {
    /// What `replay` takes.
    pub id: String,
    pub destination: String,
    pub event_id: String,
    pub attempts: Vec<Attempt>,
    /// The CloudEvents JSON (empty when the stream was trimmed before delivery).
    pub event: Arc<str>,
}

impl DeadLetterView {
    /// When the last attempt was made.
    pub fn last_attempt(&self) -> Option<Timestamp> {
        self.attempts.last().map(|a| a.at)
    }
}

fn text(entry: &StreamEntry, name: &str) -> String {
    entry
        .field(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

fn stored(shard: usize, entry: &StreamEntry) -> StoredEvent {
    StoredEvent {
        id: text(entry, "id"),
        // The stream holds the CloudEvents `source` (`/sources/<name>`); callers filter and
        // show by name, as for the other stores.
        source: super::schedule::source_name(&text(entry, "source")).to_owned(),
        event_type: text(entry, "type"),
        json: Arc::from(text(entry, "event")),
        entry: Some((shard, entry.id.clone())),
    }
}

/// Redis stream entry ids (`ms-seq`) compare by their two numbers.
fn entry_key(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

impl Store {
    /// The newest events matching `query`, newest first.
    pub async fn recent_events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        match self {
            Store::Memory(memory) => Ok(recent_matching(memory, query)),
            Store::Local(local) => Ok(recent_matching(local.memory(), query)),
            Store::Redis(redis) => {
                let mut found = Vec::new();
                for shard in 0..redis.layout().shard_count() {
                    let stream = redis.layout().stream(shard);
                    scan_back(redis, &stream, |entry| {
                        let source = text(entry, "source");
                        if query.wants(super::schedule::source_name(&source), &text(entry, "type"))
                        {
                            found.push(stored(shard, entry));
                        }
                        found.len() < query.limit * (shard + 1)
                    })
                    .await?;
                }
                // Across shards, newest first by entry id (its milliseconds come first).
                found.sort_by_key(|e| {
                    std::cmp::Reverse(e.entry.as_ref().map(|(_, id)| entry_key(id)))
                });
                found.truncate(query.limit);
                Ok(found)
            }
        }
    }

    /// The event with id `id`, if it is among the newest kept (memory) or scanned (Redis).
    pub async fn find_event(&self, id: &str) -> Result<Option<StoredEvent>, StoreError> {
        match self {
            Store::Memory(_) | Store::Local(_) => Ok(self
                .recent_events(&EventQuery {
                    limit: usize::MAX,
                    ..EventQuery::default()
                })
                .await?
                .into_iter()
                .find(|e| e.id == id)),
            Store::Redis(redis) => {
                for shard in 0..redis.layout().shard_count() {
                    let stream = redis.layout().stream(shard);
                    let mut hit = None;
                    scan_back(redis, &stream, |entry| {
                        if entry.field("id") == Some(id.as_bytes()) {
                            hit = Some(stored(shard, entry));
                        }
                        hit.is_none()
                    })
                    .await?;
                    if hit.is_some() {
                        return Ok(hit);
                    }
                }
                Ok(None)
            }
        }
    }
}

/// The newest events of a memory store (or the local store's) matching `query`, newest
/// first.
pub(super) fn recent_matching(memory: &super::MemoryStore, query: &EventQuery) -> Vec<StoredEvent> {
    memory
        .recent()
        .into_iter()
        .rev()
        .filter(|r| query.wants(&r.source, &r.event_type))
        .take(query.limit)
        .map(|r| StoredEvent {
            id: r.id,
            source: r.source,
            event_type: r.event_type.into_owned(),
            json: r.json,
            entry: None,
        })
        .collect()
}

/// Reads `stream` newest first, up to [`SCAN_LIMIT`] entries, while `visit` says go on.
async fn scan_back(
    redis: &super::RedisStore,
    stream: &str,
    mut visit: impl FnMut(&StreamEntry) -> bool,
) -> Result<(), StoreError> {
    let mut before: Option<String> = None;
    let mut read = 0;
    while read < SCAN_LIMIT {
        let page = redis.read_back(stream, before.as_deref(), PAGE).await?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        before = Some(last.id.clone());
        for entry in &page {
            read += 1;
            if !visit(entry) {
                return Ok(());
            }
        }
        if page.len() < PAGE {
            return Ok(());
        }
    }
    Ok(())
}

impl Schedules {
    /// Where `event` stands with `destination`, with its attempts; `None` when the destination
    /// has no trace of it (not taken in yet, or filtered out).
    pub async fn state_of(
        &self,
        destination: &str,
        event: &StoredEvent,
    ) -> Result<Option<(JobState, Vec<Attempt>)>, StoreError> {
        match self {
            Schedules::Memory(memory) => Ok(memory.find(destination, &event.id)),
            Schedules::Local(local) => Ok(local.memory().find(destination, &event.id)),
            Schedules::Redis(redis) => {
                let Some((shard, entry)) = &event.entry else {
                    return Ok(None);
                };
                redis_state(redis, destination, *shard, entry).await
            }
        }
    }

    /// The newest dead letters, newest first.
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetterView>, StoreError> {
        match self {
            Schedules::Memory(_) | Schedules::Local(_) => {
                let memory = match self {
                    Schedules::Local(local) => local.memory(),
                    Schedules::Memory(memory) => memory,
                    Schedules::Redis(_) => unreachable!("matched above"),
                };
                let mut dead = memory.dead_letters();
                dead.sort_by_key(|d| std::cmp::Reverse(d.id));
                Ok(dead
                    .into_iter()
                    .take(limit)
                    .map(|d| DeadLetterView {
                        id: d.id.to_string(),
                        destination: d.destination,
                        event_id: d.event_id,
                        attempts: d.attempts,
                        event: d.event,
                    })
                    .collect())
            }
            Schedules::Redis(redis) => {
                let dlq = redis.store().layout().dead_letters();
                let entries = redis.store().read_back(&dlq, None, limit).await?;
                Ok(entries.iter().map(dead_letter_view).collect())
            }
        }
    }

    /// Puts dead letter `id` back into its destination's schedule, due now; the destination,
    /// or `None` if there is no such dead letter.
    pub async fn replay(&self, id: &str, now_ms: i64) -> Result<Option<String>, StoreError> {
        match self {
            Schedules::Memory(memory) => {
                Ok(id.parse().ok().and_then(|id| memory.replay(id, now_ms)))
            }
            Schedules::Local(local) => match id.parse() {
                Ok(id) => local.replay(id, now_ms).await,
                Err(_) => Ok(None),
            },
            Schedules::Redis(redis) => {
                if !is_entry_id(id) {
                    return Ok(None);
                }
                let dlq = redis.store().layout().dead_letters();
                let found = redis.store().read_range(&dlq, id, id).await?;
                match found.first() {
                    Some(entry) => redis.replay(entry, now_ms).await.map(Some),
                    None => Ok(None),
                }
            }
        }
    }

    /// Replays every dead letter; how many.
    pub async fn replay_all(&self, now_ms: i64) -> Result<usize, StoreError> {
        let mut replayed = 0;
        loop {
            let page = self.dead_letters(PAGE).await?;
            if page.is_empty() {
                return Ok(replayed);
            }
            for dead in page {
                if self.replay(&dead.id, now_ms).await?.is_some() {
                    replayed += 1;
                }
            }
        }
    }
}

/// `ms-seq`, as Redis stream entry ids are (anything else is refused before reaching Redis).
fn is_entry_id(id: &str) -> bool {
    id.split_once('-').is_some_and(|(ms, seq)| {
        !ms.is_empty()
            && !seq.is_empty()
            && ms.len() <= 20
            && seq.len() <= 20
            && ms.bytes().all(|b| b.is_ascii_digit())
            && seq.bytes().all(|b| b.is_ascii_digit())
    })
}

fn dead_letter_view(entry: &StreamEntry) -> DeadLetterView {
    DeadLetterView {
        id: entry.id.clone(),
        destination: text(entry, "destination"),
        event_id: text(entry, "event_id"),
        attempts: serde_json::from_slice(entry.field("attempts").unwrap_or(b"[]"))
            .unwrap_or_default(),
        event: Arc::from(text(entry, "event")),
    }
}

async fn redis_state(
    redis: &RedisSchedule,
    destination: &str,
    shard: usize,
    entry: &str,
) -> Result<Option<(JobState, Vec<Attempt>)>, StoreError> {
    let attempts = redis.attempts(destination, shard, entry).await?;
    if attempts.last().is_some_and(Attempt::delivered) {
        return Ok(Some((JobState::Delivered, attempts)));
    }
    if let Some(due_ms) = redis.scheduled_at(destination, shard, entry).await? {
        return Ok(Some((JobState::Scheduled { due_ms }, attempts)));
    }
    // An entry leaves a schedule only delivered or dead-lettered: attempted, not delivered
    // and no longer scheduled means dead-lettered.
    Ok((!attempts.is_empty()).then_some((JobState::DeadLettered, attempts)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_stream_entry_ids_reach_redis() {
        assert!(is_entry_id("1700000000000-0"));
        for bad in [
            "",
            "-",
            "1-",
            "-1",
            "a-1",
            "1-1-1",
            "+",
            "(1-0",
            "1700000000000",
        ] {
            assert!(!is_entry_id(bad), "{bad}");
        }
    }

    #[test]
    fn entry_ids_compare_by_milliseconds_then_sequence() {
        assert!(entry_key("10-0") > entry_key("9-5"));
        assert!(entry_key("10-2") > entry_key("10-1"));
    }
}
