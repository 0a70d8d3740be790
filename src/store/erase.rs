//! Erasing one person from a store: what to look for, what was found, what was removed.
//!
//! Every store works in two steps: **find** the ids of the events that hold the person (in
//! the events kept for inspection, the delivery schedules and the dead letters) and the
//! quarantined bodies that do; then **remove** everything that carries those ids: the event,
//! its scheduled deliveries, its attempt logs and its dead letters. Found first, removed by id
//! second, so that the local store can journal the removal as ids (never the person's value)
//! and replay it exactly, and a dry run is the first step and a count.
//!
//! Erasure is idempotent (a second run finds nothing) and safe while porter serves: it takes
//! the same locks, or on Redis the same keys, as any other change. What it cannot reach is
//! said in README "Guest data": events already delivered downstream, lines already printed,
//! and an attempt in flight at that very moment (a second run finds what it left).
//!
//! `erasure.requested` events are never erased by this: they are the request itself, on its
//! way to the destinations that must erase too.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::schedule::source_name;
use super::{Quarantined, StoreError};
use crate::privacy::Person;

/// The `type` of the events that carry an erasure request to destinations.
pub const ERASURE_EVENT_TYPE: &str = "erasure.requested";

/// What to erase: a person, optionally only what one source received.
#[derive(Debug, Clone)]
pub struct Erase {
    pub person: Person,
    pub source: Option<String>,
}

/// What an erasure found: event ids, and quarantined bodies by [`quarantine_ref`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    pub events: HashSet<String>,
    pub quarantined: HashSet<String>,
}

/// What an erasure removed (or, in a dry run, would remove), per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Erased {
    /// Distinct events holding the person.
    pub events: u64,
    /// Deliveries not yet made, cancelled (one per destination and event).
    pub scheduled: u64,
    /// Dead letters.
    pub dead_letters: u64,
    /// Attempt logs (one per destination and event).
    pub attempt_records: u64,
    /// Quarantined bodies.
    pub quarantined: u64,
    /// Archived requests.
    pub archived: u64,
}

impl Erased {
    pub fn total(&self) -> u64 {
        self.events
            + self.scheduled
            + self.dead_letters
            + self.attempt_records
            + self.quarantined
            + self.archived
    }
}

/// The members of a stored event an erasure decides on before searching it.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    source: std::borrow::Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    event_type: std::borrow::Cow<'a, str>,
}

impl Erase {
    /// Whether the event from source `source` of type `event_type`, stored as `json`, is one
    /// to erase.
    pub fn wants(&self, source: &str, event_type: &str, json: &str) -> bool {
        event_type != ERASURE_EVENT_TYPE
            && self.source.as_deref().is_none_or(|wanted| wanted == source)
            && self.person.in_event(json)
    }

    /// [`Erase::wants`] for an event known only by its JSON.
    pub fn wants_json(&self, json: &str) -> bool {
        match serde_json::from_str::<Head<'_>>(json) {
            Ok(head) => self.wants(source_name(&head.source), &head.event_type, json),
            // Not an event (it always is): erase it if it holds the person at all.
            Err(_) => self.source.is_none() && self.person.in_body(json.as_bytes()),
        }
    }

    /// Whether a quarantined body is one to erase.
    pub fn wants_body(&self, source: &str, body: &[u8]) -> bool {
        self.source.as_deref().is_none_or(|wanted| wanted == source) && self.person.in_body(body)
    }
}

/// The ids of the archived requests that hold the person (in their body or query, as
/// written or percent-decoded) or produced one of `events`.
pub fn archived_holding(
    archived: &[super::Archived],
    erase: &Erase,
    events: &HashSet<String>,
) -> Vec<String> {
    archived
        .iter()
        .filter(|request| {
            let produced = match &request.outcome {
                super::archive::ArchivedOutcome::Events(ids) => {
                    ids.iter().any(|(id, _)| events.contains(id))
                }
                super::archive::ArchivedOutcome::Quarantined(_) => false,
            };
            produced
                || erase.wants_body(&request.source, &request.body)
                || request
                    .query
                    .as_deref()
                    .is_some_and(|query| erase.wants_body(&request.source, query.as_bytes()))
        })
        .map(|request| request.id.clone())
        .collect()
}

/// A quarantined body's identity (it has no id): when it arrived and a digest of its bytes.
pub fn quarantine_ref(item: &Quarantined) -> String {
    let digest = Sha256::digest(&item.body);
    format!(
        "{}:{}:{}",
        item.received_at.as_millisecond(),
        item.source,
        hex::encode(&digest[..16])
    )
}

/// The audit record of one erasure: when, what kind of value, the value's keyed hash (never
/// the value), which source, what was removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureRecord {
    /// `era_` + 32 hex digits.
    pub id: String,
    pub at: jiff::Timestamp,
    pub kind: crate::privacy::PersonKind,
    /// `pii_` + 32 hex digits: HMAC-SHA256 under `[privacy] key` of the value's canonical
    /// form, the token `pii = "hash"` destinations see for it.
    pub token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub erased: Erased,
    /// The `erasure.requested` event that carries the request to destinations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// How many erasure records the memory and local stores keep (the Redis store keeps all).
pub const ERASURE_RECORDS: usize = 10_000;

impl super::Store {
    /// Finds and (unless `dry_run`) removes every stored thing that holds the person;
    /// `destinations` names the destinations porter delivers to (on Redis, their schedules and
    /// attempt logs are keys of their own).
    pub async fn erase(
        &self,
        erase: &Erase,
        destinations: &[String],
        dry_run: bool,
    ) -> Result<Erased, StoreError> {
        // Listed before anything is removed: an archived request that produced an erased
        // event goes too, whatever its body looks like.
        let archived = self.list_archived(erase.source.as_deref(), None).await?;
        match self {
            super::Store::Memory(memory) => {
                let found = memory.find_erasable(erase);
                let ids = archived_holding(&archived, erase, &found.events);
                let mut erased = memory.remove(&found, dry_run);
                erased.archived = ids.len() as u64;
                if !dry_run {
                    memory.raw_archive().remove(&ids);
                }
                Ok(erased)
            }
            super::Store::Local(local) => local.erase(erase, dry_run, &archived).await,
            super::Store::Redis(redis) => {
                let (mut erased, events) = redis.erase(erase, destinations, dry_run).await?;
                let ids = archived_holding(&archived, erase, &events);
                erased.archived = ids.len() as u64;
                if !dry_run && !ids.is_empty() {
                    self.remove_archived(&ids).await?;
                }
                Ok(erased)
            }
        }
    }

    /// Keeps an erasure's audit record.
    pub async fn record_erasure(&self, record: ErasureRecord) -> Result<(), StoreError> {
        match self {
            super::Store::Memory(memory) => {
                memory.record_erasure(record);
                Ok(())
            }
            super::Store::Local(local) => local.record_erasure(record).await,
            super::Store::Redis(redis) => redis.record_erasure(&record).await,
        }
    }

    /// The newest `count` erasure records, oldest first.
    pub async fn erasures(&self, count: usize) -> Result<Vec<ErasureRecord>, StoreError> {
        let newest = |mut all: Vec<ErasureRecord>| {
            let skip = all.len().saturating_sub(count);
            all.drain(..skip);
            all
        };
        match self {
            super::Store::Memory(memory) => Ok(newest(memory.erasures())),
            super::Store::Local(local) => Ok(newest(local.memory().erasures())),
            super::Store::Redis(redis) => redis.erasures(count).await,
        }
    }
}
