//! Erasing one person from a store: what to look for, what was found, what was removed.
//!
//! Every store works in two steps: **find** the ids of the events that hold the person (in
//! the events kept for inspection, the delivery schedules and the dead letters) and the
//! quarantined bodies that do; then **remove** everything that carries those ids: the event,
//! its scheduled deliveries, its attempt logs and its dead letters. Found first, removed by id
//! second, so that the local store can journal the removal as ids (never the person's value)
//! and replay it exactly, and a dry run is the first step and a count.
//!
//! **What was erased stays erased.** Besides removing, an erasure remembers what it removed
//! as [`Tombstones`] for `remember_for` (the longest dedupe window of the configuration): the
//! ids of the erased events and a digest of each erased body (quarantined, or archived). The
//! stores consult them where erased data could come back:
//!
//! - a redelivery of an erased event inside the dedupe window is a duplicate (its dedupe key
//!   is kept: it names no one), answered as ever, and duplicates are never archived;
//! - an archive write for a request whose events or body were erased is dropped (an archive
//!   write runs after the answer and may land after the erasure's search);
//! - a redelivered body that was quarantined and erased is refused as before but not kept;
//! - `porter reprocess` never stores an event whose original was erased.
//!
//! After the window, a vendor's resend is a new request, as it would be without an erasure.
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

/// The `type` of the events that carry an erasure request to destinations.
pub(crate) const ERASURE_EVENT_TYPE: &str = "erasure.requested";

/// Whom an erasure is about, as the stores search for it: whether a stored event (its JSON)
/// or a body holds them. The privacy module's `Person` is the one implementation; the stores
/// only ask.
pub trait Subject: Send + Sync + std::fmt::Debug {
    fn in_event(&self, json: &str) -> bool;
    fn in_body(&self, body: &[u8]) -> bool;
}

/// What to erase: a person, optionally only what one source received.
#[derive(Debug, Clone)]
pub struct Erase {
    pub person: std::sync::Arc<dyn Subject>,
    pub source: Option<String>,
    /// How long to remember what was erased ([`Tombstones`]): the longest dedupe window.
    pub remember_for: std::time::Duration,
}

/// The tombstone of an erased event: its id.
pub(crate) fn event_tombstone(event_id: &str) -> String {
    event_id.to_owned()
}

/// The tombstone of an erased body (quarantined or archived) of `source`: a digest of its
/// bytes, never the bytes.
pub(crate) fn body_tombstone(source: &str, body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    format!("body:{source}:{}", hex::encode(&digest[..16]))
}

/// What erasures removed, remembered for a while so that it cannot come back: tombstone
/// keys ([`event_tombstone`], [`body_tombstone`]) with the time (Unix ms) each is forgotten.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Tombstones {
    until: std::collections::HashMap<String, i64>,
}

impl Tombstones {
    /// Remembers `keys` until `until`; what has expired by `now` is forgotten.
    pub(crate) fn insert(&mut self, keys: impl IntoIterator<Item = String>, until: i64, now: i64) {
        self.until.retain(|_, expires| *expires > now);
        for key in keys {
            let expires = self.until.entry(key).or_insert(until);
            *expires = (*expires).max(until);
        }
    }

    /// Remembers `key` until `until`, as a snapshot held it.
    pub(crate) fn restore(&mut self, key: String, until: i64) {
        let expires = self.until.entry(key).or_insert(until);
        *expires = (*expires).max(until);
    }

    /// Whether `key` is remembered at `now`.
    pub(crate) fn contains(&self, key: &str, now: i64) -> bool {
        self.until.get(key).is_some_and(|expires| *expires > now)
    }

    /// Every key remembered at `now`, with its expiry (the local store's snapshot).
    pub(crate) fn live(&self, now: i64) -> impl Iterator<Item = (&String, i64)> {
        self.until
            .iter()
            .filter(move |(_, expires)| **expires > now)
            .map(|(key, expires)| (key, *expires))
    }
}

/// The tombstones of what `found` names: its events' ids and its quarantined bodies' digests
/// (a [`quarantine_ref`] is `<ms>:<source>:<digest>`, and the tombstone `body:<source>:<digest>`).
pub(crate) fn tombstones_of(found: &Found) -> Vec<String> {
    found
        .events
        .iter()
        .map(|id| event_tombstone(id))
        .chain(
            found
                .quarantined
                .iter()
                .filter_map(|r| r.split_once(':').map(|(_, rest)| format!("body:{rest}"))),
        )
        .collect()
}

/// The tombstones an archived request would bring back: its events' ids, and its body's
/// digest when it was quarantined.
pub(crate) fn archived_tombstones(item: &super::Archived) -> Vec<String> {
    let body = body_tombstone(&item.source, &item.body);
    match &item.outcome {
        super::archive::ArchivedOutcome::Events(events) => events
            .iter()
            .map(|(id, _)| event_tombstone(id))
            .chain([body])
            .collect(),
        super::archive::ArchivedOutcome::Quarantined(_) => vec![body],
    }
}

/// What an erasure found: event ids, and quarantined bodies by [`quarantine_ref`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    pub events: HashSet<String>,
    pub quarantined: HashSet<String>,
}

/// What an erasure removed (or, in a dry run, would remove), per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
pub(crate) fn archived_holding(
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
pub(crate) fn quarantine_ref(item: &Quarantined) -> String {
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErasureRecord {
    /// `era_` + 32 hex digits.
    pub id: String,
    pub at: jiff::Timestamp,
    pub kind: crate::vocab::PersonKind,
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
pub(crate) const ERASURE_RECORDS: usize = 10_000;

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
        match self {
            super::Store::Memory(memory) => {
                let found = memory.find_erasable(erase);
                let until = memory.now_ms().saturating_add(millis(erase.remember_for));
                if !dry_run {
                    // Remembered before the archive is searched: an archive write landing
                    // meanwhile is found, or refused.
                    memory.remember_erased(tombstones_of(&found), until);
                }
                let archived =
                    memory
                        .raw_archive()
                        .list(erase.source.as_deref(), None, memory.now_ms());
                let ids = archived_holding(&archived, erase, &found.events);
                let mut erased = memory.remove(&found, dry_run);
                erased.archived = ids.len() as u64;
                if !dry_run {
                    memory.remember_erased(bodies_of(&archived, &ids), until);
                    memory.raw_archive().remove(&ids);
                }
                Ok(erased)
            }
            super::Store::Local(local) => local.erase(erase, dry_run).await,
            super::Store::Redis(redis) => {
                // The Redis half remembers what it removes before it returns.
                let (mut erased, events) = redis.erase(erase, destinations, dry_run).await?;
                let archived = self.list_archived(erase.source.as_deref(), None).await?;
                let ids = archived_holding(&archived, erase, &events);
                erased.archived = ids.len() as u64;
                if !dry_run && !ids.is_empty() {
                    let until = redis.now_ms().saturating_add(millis(erase.remember_for));
                    redis
                        .remember_erased(&bodies_of(&archived, &ids), until)
                        .await?;
                    self.remove_archived(&ids).await?;
                }
                Ok(erased)
            }
        }
    }

    /// Of `keys` (tombstones: event ids, body digests), those an erasure removed and still
    /// remembers.
    pub async fn erased_among(&self, keys: &[String]) -> Result<HashSet<String>, StoreError> {
        match self {
            super::Store::Memory(memory) => Ok(memory.erased_among(keys)),
            super::Store::Local(local) => Ok(local.memory().erased_among(keys)),
            super::Store::Redis(redis) => redis.erased_among(keys).await,
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

/// The tombstones of the archived requests `ids` among `archived`.
fn bodies_of(archived: &[super::Archived], ids: &[String]) -> Vec<String> {
    archived
        .iter()
        .filter(|item| ids.contains(&item.id))
        .flat_map(archived_tombstones)
        .collect()
}

fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
