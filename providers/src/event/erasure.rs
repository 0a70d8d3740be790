//! `data` of `erasure.requested`: porter's own event, emitted when an operator erases a
//! person (`porter erase`), so that destinations can erase what they already received.
//!
//! No provider can produce it: the generic schemes' `event_types` refuse it as a target.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `data` of `erasure.requested`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErasureData {
    /// The id of porter's audit record of the erasure (`era_…`).
    pub erasure_id: String,
    /// What the value is: `phone`, `email` or `guest_id`.
    pub kind: String,
    /// The value in canonical form (a phone number in E.164 with `+`, an email lower-cased,
    /// the guest id as given): what a destination that received the data as is must look for.
    #[schemars(extend("x-pii" = true))]
    pub value: String,
    /// `pii_` + 32 hex digits: the token `pii = "hash"` destinations received in place of the
    /// value (HMAC-SHA256 under `[privacy] key`).
    pub token: String,
    /// The source the erasure was limited to; absent when it covered every source.
    pub source: Option<String>,
}
