//! `porter reprocess`: what porter could not map when a request arrived, mapped again with
//! today's code (CONTRACT §10).
//!
//! For each request of one source in the raw archive ([`crate::store::archive`]) received
//! since a time:
//!
//! 1. **verify** it again with today's secrets, as of the time it was received: a signed
//!    timestamp is checked against the received-at time (where it passed then), so the window
//!    is in effect ignored, and nothing in the providers had to change for it. A request that
//!    no longer verifies (its secret was rotated away, or the archive was tampered with) is
//!    counted and skipped;
//! 2. **normalize** it with today's code, with the original received-at;
//! 3. **compare** with what was stored then: an event that was `unknown` and is now typed
//!    (matched by id, which comes from the provider's key, or else by position), or any event
//!    of a body that was quarantined then, is a change; everything else is unchanged (a typed
//!    event is never rewritten, and nothing is turned back into `unknown`);
//! 4. **skip** a request whose original events or body an erasure removed (what was erased
//!    stays erased; see [`crate::store::erase`]);
//! 5. **store** each change as a new event through the ordinary dedupe-and-enqueue, so
//!    destinations receive it: its id is [`event_id`] of the source and
//!    `reprocessed:<original>:<hash of its type and data>`, it is its own dedupe key, kept for
//!    the archive's retention (longer than the archived request can live), and it carries
//!    `reprocessedfrom` = the original event's id (for a quarantined body: the archived
//!    request's id, since quarantine entries have none). Reruns, and two reprocesses at once,
//!    derive the same ids and keys, so the store's atomic step keeps exactly one.
//!
//! It runs where the store is: inside `porter serve` (the memory store lives there, and the
//! server's code and secrets are what "today" means), reached through the admin API
//! (`POST /api/reprocess`, `admin/reprocess.rs`); the command (`commands/reprocess.rs`) is a
//! client of that endpoint.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use jiff::Timestamp;
use porter_providers::event::event_id;
use porter_providers::{Normalized, Reply, Request};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::SourceConfig;
use crate::gateway::Gateway;
use crate::store::{Archived, ArchivedOutcome, StoreError};

/// What to reprocess.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Options {
    pub source: String,
    /// Archived requests received at or after this time.
    pub since: Timestamp,
    /// Report what would change without storing anything.
    #[serde(default)]
    pub dry_run: bool,
}

/// What a reprocess did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = ReprocessSummary)]
pub struct Summary {
    /// Archived requests read.
    pub read: usize,
    /// Of those, verified again with today's secrets.
    pub reverified: usize,
    /// Of those, refused by today's secrets: skipped.
    pub failed_verification: usize,
    /// Verified requests that map as they did (or still do not parse).
    pub unchanged: usize,
    /// Verified requests with at least one change.
    pub changed: usize,
    /// New events stored by this run.
    pub stored: usize,
    /// New events a previous (or concurrent) run had already stored.
    pub already_stored: usize,
    /// Archived requests skipped because an erasure removed their original events or body.
    #[serde(default)]
    pub erased: usize,
    pub changes: Vec<Change>,
}

/// One new event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = ReprocessChange)]
pub struct Change {
    /// The archived request.
    pub archived: String,
    /// What it replaces: the original event's id, or the archived request's id for a body
    /// that was quarantined.
    pub reprocessed_from: String,
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ReprocessError {
    #[error("the raw archive is off: set [archive] retention")]
    ArchiveOff,
    #[error("no source named `{0}`")]
    UnknownSource(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reprocesses `options.source`'s archived requests on `gateway`'s store.
pub async fn run(gateway: &Gateway, options: &Options) -> Result<Summary, ReprocessError> {
    let archiver = gateway.archive.as_ref().ok_or(ReprocessError::ArchiveOff)?;
    let config = gateway
        .sources
        .iter()
        .find(|s| s.source.name() == options.source)
        .ok_or_else(|| ReprocessError::UnknownSource(options.source.clone()))?;
    let archived = gateway
        .store
        .list_archived(Some(&options.source), Some(options.since))
        .await?;
    let mut summary = Summary::default();
    for item in archived {
        summary.read += 1;
        let Some(changes) = reprocess_one(config, &item, &mut summary) else {
            continue;
        };
        if changes.is_empty() {
            summary.unchanged += 1;
            continue;
        }
        // Never an event whose original (or whose request's body) an erasure removed.
        let mut tombstones = crate::store::erase::archived_tombstones(&item);
        tombstones.extend(
            changes
                .iter()
                .filter_map(|c| c.event.reprocessedfrom.clone()),
        );
        if !gateway.store.erased_among(&tombstones).await?.is_empty() {
            summary.erased += 1;
            continue;
        }
        summary.changed += 1;
        for event in &changes {
            summary.changes.push(Change {
                archived: item.id.clone(),
                reprocessed_from: event.event.reprocessedfrom.clone().unwrap_or_default(),
                id: event.event.id.clone(),
                event_type: event.event.event_type().as_str().to_owned(),
            });
        }
        if options.dry_run {
            continue;
        }
        let enqueued = gateway
            .store
            .enqueue(
                &changes,
                &Reply::accepted(changes.len()),
                archiver.retention,
            )
            .await?;
        summary.stored += enqueued.new;
        summary.already_stored += enqueued.duplicates;
    }
    Ok(summary)
}

/// The new events of one archived request (empty: unchanged), or `None` when it no longer
/// verifies.
fn reprocess_one(
    config: &SourceConfig,
    item: &Archived,
    summary: &mut Summary,
) -> Option<Vec<Normalized>> {
    let mut headers = HeaderMap::new();
    for (name, value) in &item.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(name, value);
        }
    }
    let method = Method::from_bytes(item.method.as_bytes()).unwrap_or(Method::POST);
    let request = Request {
        method: &method,
        endpoint: &item.endpoint,
        path: &item.path,
        query: item.query.as_deref(),
        headers: &headers,
        body: &item.body,
    };
    let source = &config.source;
    let Ok(verified) = source.verify(&request, item.received_at) else {
        summary.failed_verification += 1;
        return None;
    };
    summary.reverified += 1;
    let Ok(normalization) = source.normalize(verified, item.received_at) else {
        // Still does not parse: nothing new to store.
        return Some(Vec::new());
    };
    let events = normalization.events;
    let changes = match &item.outcome {
        ArchivedOutcome::Quarantined(_) => events
            .into_iter()
            .map(|event| renamed(event, &item.id))
            .collect(),
        ArchivedOutcome::Events(stored) => events
            .into_iter()
            .enumerate()
            .filter_map(|(index, event)| {
                let original = stored
                    .iter()
                    .find(|(id, _)| *id == event.event.id)
                    .or_else(|| stored.get(index))?;
                let was_unknown = original.1 == "unknown";
                let now_typed = event.event.event_type() != porter_providers::EventType::Unknown;
                (was_unknown && now_typed).then(|| renamed(event, &original.0))
            })
            .collect(),
    };
    Some(changes)
}

/// `event` as the new event that replaces `original`: a new deterministic id (its own dedupe
/// key) and `reprocessedfrom`.
fn renamed(mut event: Normalized, original: &str) -> Normalized {
    let mut hasher = Sha256::new();
    hasher.update(event.event.event_type().as_str().as_bytes());
    hasher.update([0u8]);
    hasher.update(serde_json::to_vec(&event.event.body).unwrap_or_default());
    let content = hex::encode(&hasher.finalize()[..16]);
    let id = event_id(
        &event.event.source,
        &format!("reprocessed:{original}:{content}"),
    );
    event.event.id.clone_from(&id);
    event.event.reprocessedfrom = Some(original.to_owned());
    event.dedupe_key = id;
    event
}
