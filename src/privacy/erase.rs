//! `porter erase`: one person out of every store, on the record, and the word passed on.
//!
//! An erasure (1) finds and removes every stored event, quarantined body, archived request,
//! scheduled delivery, dead letter and attempt log that holds the person (see
//! [`crate::store::erase`]); (2) stores an `erasure.requested` event, which destinations
//! receive like any other, because porter cannot reach what it already delivered; (3) keeps an
//! audit record: when, which kind of value, its keyed hash (never the value), the source it
//! was limited to, and the counts. A dry run does only the counting.
//!
//! The keyed hash needs `[privacy] key`: without one, porter cannot record an erasure without
//! recording the value, so it refuses to erase.

use std::time::Duration;

use jiff::Timestamp;
use porter_providers::event::{Attributes, ErasureData, Origin};
use porter_providers::{EventBody, Normalized, Reply};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Person, PersonKind};
use crate::store::erase::{Erase, Erased, ErasureRecord};
use crate::store::{Store, StoreError};

/// The source name of porter's own events.
pub(crate) use crate::vocab::PORTER_SOURCE;
/// How long the `erasure.requested` event's dedupe key is kept (it is never sent twice).
const EVENT_KEY_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// What an operator asks to erase.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub person: Person,
    pub source: Option<String>,
    pub dry_run: bool,
    /// How long what is erased is remembered so that it cannot come back
    /// ([`remember_for`]).
    pub remember_for: Duration,
}

/// How long an erasure remembers what it removed: the longest dedupe window among `sources`
/// (a redelivery inside it is a duplicate; after it, a resend is a new request), and at least
/// a day.
pub(crate) fn remember_for(sources: &[crate::config::SourceConfig]) -> Duration {
    sources
        .iter()
        .map(|s| s.dedupe_ttl)
        .max()
        .unwrap_or_default()
        .max(Duration::from_secs(24 * 60 * 60))
}

/// What an erasure did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = ErasureReport)]
pub(crate) struct Report {
    pub dry_run: bool,
    pub kind: PersonKind,
    /// The value's keyed hash (`pii_…`).
    pub token: String,
    pub erased: Erased,
    /// The audit record (absent in a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<ErasureRecord>,
}

/// Why an erasure did not complete.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EraseError {
    #[error(
        "erasure needs [privacy] key: the audit record keeps the value's keyed hash, never the value"
    )]
    NoKey,
    #[error("the store: {0}")]
    Store(#[from] StoreError),
}

/// Erases `request.person` from `store`; `destinations` names those porter delivers to.
pub(crate) async fn erase(
    store: &Store,
    destinations: &[String],
    key: Option<&[u8]>,
    request: &Request,
    now: Timestamp,
) -> Result<Report, EraseError> {
    let key = key.ok_or(EraseError::NoKey)?;
    let token = request.person.token(key);
    let erase = Erase {
        person: std::sync::Arc::new(request.person.clone()),
        source: request.source.clone(),
        remember_for: request.remember_for,
    };
    let erased = store.erase(&erase, destinations, request.dry_run).await?;
    let mut report = Report {
        dry_run: request.dry_run,
        kind: request.person.kind(),
        token: token.clone(),
        erased,
        record: None,
    };
    if request.dry_run {
        return Ok(report);
    }
    let id = record_id(&token, now);
    let event = requested_event(&id, &request.person, &token, request.source.clone(), now);
    let event_id = event.event.id.clone();
    store
        .enqueue(
            &[event],
            &Reply::json(&serde_json::json!({})),
            EVENT_KEY_TTL,
        )
        .await?;
    let record = ErasureRecord {
        id,
        at: now,
        kind: request.person.kind(),
        token,
        source: request.source.clone(),
        erased,
        event_id: Some(event_id),
    };
    store.record_erasure(record.clone()).await?;
    report.record = Some(record);
    Ok(report)
}

/// `era_` + 32 hex digits, unique per erasure (the token and the time to the nanosecond).
fn record_id(token: &str, now: Timestamp) -> String {
    let digest = Sha256::digest(format!("{token}\0{}", now.as_nanosecond()));
    format!("era_{}", hex::encode(&digest[..16]))
}

/// The `erasure.requested` event of erasure `id`.
fn requested_event(
    id: &str,
    person: &Person,
    token: &str,
    source: Option<String>,
    now: Timestamp,
) -> Normalized {
    let origin = Origin {
        source_name: PORTER_SOURCE,
        provider: PORTER_SOURCE,
        received_at: now,
    };
    let attributes = Attributes {
        key: format!("erasure:{id}"),
        subject: Some(id.to_owned()),
        time: Some(now),
        ..Attributes::default()
    };
    let body = EventBody::ErasureRequested(ErasureData {
        erasure_id: id.to_owned(),
        kind: person.kind().as_str().to_owned(),
        value: person.canonical().to_owned(),
        token: token.to_owned(),
        source,
    });
    origin.event(attributes, body).into()
}
