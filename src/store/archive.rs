//! The raw archive: the exact bytes of authenticated requests, kept for a retention so that
//! `porter reprocess` can verify and normalize them again with today's code and secrets.
//!
//! What one entry ([`Archived`]) holds: the source's name, when the request was received,
//! its method, path, raw query (a URL-token vendor's token is in it; Twilio signs the whole
//! URL), the route suffix it matched, the headers its provider signs or reads (never all of
//! them: cookies and proxies' headers stay out), the body, and what porter made of it then
//! (the ids and types of its events, or the quarantine's reason).
//!
//! Where it lives:
//!
//! - **memory** (`memory/archive.rs`): a queue beside the event log, oldest first, bounded by
//!   [`MEMORY_MAX_ENTRIES`] and `[archive] max_bytes` (bodies, headers, paths and queries;
//!   [`DEFAULT_MAX_BYTES`]), each entry dropped once its retention has passed (by the store's
//!   `Clock`).
//! - **Redis** (single and Cluster, `redis/archive.rs`): one stream, `<prefix>:archive` (on a cluster
//!   `<prefix>:{archive}`, one slot) with its byte count beside it. Each append is one script
//!   call (`archive.lua`): the append, then the oldest entries out while they are past the
//!   retention (Redis's own clock, the one its entry ids come from) or the bytes are over
//!   `max_bytes`, then `PEXPIRE` of the retention, so a stream nobody appends to any more
//!   expires whole.
//! - **local** (`local/archive.rs` for its records): the memory store's queue, every append and removal a journal record first
//!   (`archive` and `remove_archived`), the whole queue in each snapshot (`archived` frames),
//!   so it survives restarts like the events do.
//!
//! Ids are `<milliseconds>-<sequence>` everywhere (Redis's stream ids; the memory store
//! counts its own), stable for an entry's life.
//!
//! **For erasure** (CONTRACT §10), every store answers two operations:
//!
//! - [`Store::list_archived`]`(source: Option<&str>, since: Option<Timestamp>) ->
//!   Result<Vec<Archived>, StoreError>`: the archived requests still kept, oldest first,
//!   optionally of one source and received at or after `since`;
//! - [`Store::remove_archived`]`(ids: &[String]) -> Result<usize, StoreError>`: removes those
//!   entries, returns how many were there; ids already gone are ignored (idempotent).
//!
//! An archive write that fails is logged and counted
//! (`porter_archive_failures_total`), never turned into a different answer: see
//! [`crate::archive`].

use std::time::Duration;

use bytes::Bytes;
use jiff::Timestamp;

use super::local::record::Record;
use super::redis::archive::{redis_append, redis_list, redis_remove};
use super::{Store, StoreError};

/// The most requests the memory store archives; the oldest go first.
pub(crate) const MEMORY_MAX_ENTRIES: usize = 10_000;
/// The most bytes (bodies, headers, paths, queries) a store archives unless `[archive]
/// max_bytes` says otherwise; the oldest go first.
pub use crate::vocab::DEFAULT_ARCHIVE_MAX_BYTES as DEFAULT_MAX_BYTES;

/// One archived request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archived {
    /// Assigned by the store (`<ms>-<seq>`); empty before it is stored.
    pub id: String,
    pub source: String,
    pub received_at: Timestamp,
    pub method: String,
    /// The route suffix that matched (`""`, `"/status"`).
    pub endpoint: String,
    /// The path exactly as received.
    pub path: String,
    /// The raw query, exactly as received (may hold a URL token).
    pub query: Option<String>,
    /// The headers the provider signs or reads, lower-case names, in order.
    pub headers: Vec<(String, Bytes)>,
    pub body: Bytes,
    pub outcome: ArchivedOutcome,
}

/// What porter made of an archived request when it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchivedOutcome {
    /// Its events: id and CloudEvents type of each, in order.
    Events(Vec<(String, String)>),
    /// Authentic but unparseable: quarantined, for this reason.
    Quarantined(String),
}

impl Archived {
    /// The bytes this entry holds (body, headers, path and query), for the bound.
    pub fn size(&self) -> usize {
        self.body.len()
            + self.path.len()
            + self.query.as_ref().map_or(0, String::len)
            + self
                .headers
                .iter()
                .map(|(n, v)| n.len() + v.len())
                .sum::<usize>()
    }
}

pub(crate) fn expiry(now_ms: i64, retention: Duration) -> i64 {
    now_ms.saturating_add(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX))
}

pub(crate) fn wanted(item: &Archived, source: Option<&str>, since: Option<Timestamp>) -> bool {
    source.is_none_or(|source| item.source == source)
        && since.is_none_or(|since| item.received_at >= since)
}

impl Store {
    /// Archives an authenticated request for `retention`; returns its id, or `None` when an
    /// erasure removed one of its events or its body (it is then not kept: see
    /// [`super::erase`]).
    pub async fn archive(
        &self,
        item: Archived,
        retention: Duration,
    ) -> Result<Option<String>, StoreError> {
        match self {
            Store::Memory(memory) => {
                let now = memory.now_ms();
                let mut item = item;
                item.id = memory.raw_archive().reserve(now);
                let id = item.id.clone();
                Ok(memory
                    .archive_unless_erased(item, expiry(now, retention))
                    .then_some(id))
            }
            Store::Local(local) => {
                let memory = local.memory();
                let now = memory.now_ms();
                // Checked before the bytes reach the journal; applying checks again.
                let tombstones = super::erase::archived_tombstones(&item);
                if !memory.erased_among(&tombstones).is_empty() {
                    return Ok(None);
                }
                let mut item = item;
                item.id = memory.raw_archive().reserve(now);
                let id = item.id.clone();
                let expires = expiry(now, retention);
                local.write(Record::Archive { expires, item }).await?;
                Ok(Some(id))
            }
            Store::Redis(redis) => redis_append(redis, &item, retention).await,
        }
    }

    /// The archived requests still kept, oldest first: of `source` if given, received at or
    /// after `since` if given.
    pub async fn list_archived(
        &self,
        source: Option<&str>,
        since: Option<Timestamp>,
    ) -> Result<Vec<Archived>, StoreError> {
        match self {
            Store::Memory(memory) => Ok(memory.raw_archive().list(source, since, memory.now_ms())),
            Store::Local(local) => {
                let memory = local.memory();
                Ok(memory.raw_archive().list(source, since, memory.now_ms()))
            }
            Store::Redis(redis) => redis_list(redis, source, since).await,
        }
    }

    /// Removes the archived requests `ids`; returns how many were still there. Idempotent.
    pub async fn remove_archived(&self, ids: &[String]) -> Result<usize, StoreError> {
        match self {
            Store::Memory(memory) => Ok(memory.raw_archive().remove(ids)),
            Store::Local(local) => {
                let present = local.memory().raw_archive().present(ids);
                if present.is_empty() {
                    return Ok(0);
                }
                let count = present.len();
                local.write(Record::RemoveArchived(present)).await?;
                Ok(count)
            }
            Store::Redis(redis) => redis_remove(redis, ids).await,
        }
    }
}
