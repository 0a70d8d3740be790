//! One typed pass over a WhatsApp delivery, for the shape nearly every delivery has.
//!
//! The lenient reading in `meta.rs` keeps every change, message and status as exact bytes
//! (`RawValue`) before reading it, so that a part porter does not model becomes an `unknown`
//! event carrying those bytes. That costs a scan of each part per level: a message was read
//! six times. Most deliveries need none of it: every change is a `messages` change whose
//! messages and statuses porter models, and their events carry no raw bytes. This module
//! reads such a delivery in one pass (after the depth guard) straight into the wire structs;
//! anything else (a part that does not read, an unmodelled change, field or message type,
//! change-level errors, Messenger items, no events) makes it answer `None`, and the caller
//! reads the delivery the lenient way. Both readings give the same events (tested over every
//! fixture and the edge shapes in `tests.rs`), so which one ran is never visible.
//!
//! Each struct here is at least as strict as its lenient counterpart: whatever the lenient
//! reading refuses as a whole, this one refuses too, and falls back.

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::{
    ChangeContext, WireContactProfile, WireMessage, WireMetadata, WireStatus, entry_scope,
};
use crate::event::Origin;
use crate::json::Scalar;
use crate::provider::Normalized;

/// The events of `body`, when it has the common shape; `None` sends the caller to the
/// lenient reading. The caller has checked the nesting depth.
pub(super) fn normalize(body: &[u8], origin: &Origin<'_>) -> Option<Vec<Normalized>> {
    // The lenient reading refuses a body that is not UTF-8 as a whole; serde skips the
    // insides of fields it ignores without checking them, so check first.
    let text = std::str::from_utf8(body).ok()?;
    let payload: Payload<'_> = serde_json::from_str(text).ok()?;
    let mut events = Vec::new();
    for entry in &payload.entry {
        if !entry.messaging.is_empty() || !entry.standby.is_empty() {
            return None;
        }
        let account_id = entry.id.as_ref().map(Scalar::text);
        for change in &entry.changes {
            let value = match (change.field, &change.value) {
                (Some("messages"), Some(value)) => value,
                _ => return None,
            };
            if value.errors.is_some() || (value.messages.is_empty() && value.statuses.is_empty()) {
                return None;
            }
            let context = ChangeContext {
                origin,
                scope: entry_scope(account_id.as_deref(), entry.time.as_ref()),
                account_id: account_id.clone(),
                metadata: value.metadata.as_ref(),
                contacts: &value.contacts,
            };
            for message in &value.messages {
                events.push(context.message_event(message)?);
            }
            for status in &value.statuses {
                events.push(context.status_event(status));
            }
        }
    }
    (!events.is_empty()).then_some(events)
}

#[derive(Deserialize)]
struct Payload<'a> {
    /// Not read here, but typed as the lenient reading types it.
    #[serde(default)]
    #[allow(dead_code)]
    object: Option<String>,
    #[serde(borrow, default)]
    entry: Vec<Entry<'a>>,
}

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(default)]
    id: Option<Scalar>,
    #[serde(default)]
    time: Option<Scalar>,
    #[serde(borrow, default)]
    changes: Vec<Change<'a>>,
    #[serde(default)]
    messaging: Vec<IgnoredAny>,
    #[serde(default)]
    standby: Vec<IgnoredAny>,
}

#[derive(Deserialize)]
struct Change<'a> {
    /// Borrowed, as the lenient reading borrows it (a field name written with escapes is
    /// refused by both).
    #[serde(borrow, default)]
    field: Option<&'a str>,
    #[serde(default)]
    value: Option<Value>,
}

#[derive(Deserialize)]
struct Value {
    #[serde(default)]
    metadata: Option<WireMetadata>,
    #[serde(default)]
    contacts: Vec<WireContactProfile>,
    #[serde(default)]
    messages: Vec<WireMessage>,
    #[serde(default)]
    statuses: Vec<WireStatus>,
    #[serde(default)]
    errors: Option<IgnoredAny>,
}

#[cfg(test)]
mod tests;
