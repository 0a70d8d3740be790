//! Zoom webhooks (developers.zoom.us "Using webhooks": verify with Zoom's header, validate
//! your webhook endpoint).
//!
//! Scheme: `x-zm-signature: v0=<hex HMAC-SHA256(secret token, "v0:{ts}:{raw body}")>` with
//! `x-zm-request-timestamp: {ts}`, Slack's scheme with Zoom's header names; the key is the
//! app's event-subscription secret token, as text. The window (`tolerance`, default 300 s) is
//! porter's: Zoom does not state one.
//!
//! - **URL validation**: on setup and every 72 hours Zoom POSTs `{"event":
//!   "endpoint.url_validation","payload":{"plainToken":…}}`, signed like every event. It is
//!   verified, then answered `{"plainToken":…,"encryptedToken":<hex HMAC-SHA256(secret token,
//!   plainToken)>}` with the secret that signed it (during a rotation, the one Zoom used), and
//!   nothing is stored.
//! - **Events** (`meeting.started`, `recording.completed`, …) carry no event id: the key is a
//!   hash of `event`, `event_ts` and the payload (its members in a canonical order), so a
//!   retry of the same notification is a duplicate whatever order Zoom writes it in. The
//!   `x-zm-trackingid` header is not signed and is not read. The type is `event`, mapped
//!   through `event_types`; the data is `payload.object`; the property is
//!   `payload.account_id`.

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::auth::V0Mac;
use crate::event::{Attributes, EventType, Origin, hashed_key};
use crate::json::{canonical, field, time_ms};
use crate::provider::{Checked, GuardedProvider, Normalization};
use crate::settings::{Context, SettingError};
use crate::signing::{Algorithm, hmac};
use crate::slack::contains;
use crate::{Rejection, Reply, Request, Secret, generic};

const SIGNATURE: &str = "x-zm-signature";
const TIMESTAMP: &str = "x-zm-request-timestamp";
/// The longest `plainToken` answered (Zoom's are 22 characters).
const MAX_PLAIN_TOKEN_LEN: usize = 256;

/// The keys a `zoom` source reads: those of a `slack` source (the same scheme).
pub use crate::slack::Settings;

/// A configured Zoom source.
#[derive(Debug)]
pub struct Zoom {
    mac: V0Mac,
    event_types: Vec<(String, EventType)>,
}

impl GuardedProvider for Zoom {
    const ID: &'static str = "zoom";
    type Settings = Settings;
    type Guard = V0Mac;

    fn configure(settings: Settings, _context: &Context) -> Result<Self, Vec<SettingError>> {
        let crate::slack::V0Source { mac, event_types } =
            crate::slack::v0_source(settings, SIGNATURE, TIMESTAMP)?;
        Ok(Self { mac, event_types })
    }

    fn guard(&self) -> &V0Mac {
        &self.mac
    }

    /// The signed `endpoint.url_validation` request, answered with the encrypted token.
    fn handshake_answer(
        &self,
        request: &Request<'_>,
        now: Timestamp,
    ) -> Option<Result<Reply, Rejection>> {
        if !contains(request.body, b"endpoint.url_validation") {
            return None;
        }
        let secret = match self.mac.signed_by(request, now) {
            Ok(secret) => secret,
            Err(rejection) => return Some(Err(rejection)),
        };
        let payload: Value = serde_json::from_slice(request.body).ok()?;
        if payload.get("event").and_then(Value::as_str) != Some("endpoint.url_validation") {
            return None;
        }
        let plain = payload
            .pointer("/payload/plainToken")
            .and_then(Value::as_str)
            .filter(|plain| !plain.is_empty() && plain.len() <= MAX_PLAIN_TOKEN_LEN);
        Some(match plain {
            Some(plain) => Ok(Reply::json(&json!({
                "plainToken": plain,
                "encryptedToken": encrypted_token(secret, plain),
            }))),
            None => Err(Rejection::MalformedHandshake("payload.plainToken")),
        })
    }

    fn read(&self, checked: Checked<'_>, origin: &Origin<'_>) -> Result<Normalization, Rejection> {
        let request = checked.request();
        let payload: Value = crate::json::parse(request.body)?;
        let vendor_type = field(&payload, &["event"]);
        let inner = payload.get("payload").unwrap_or(&Value::Null);
        let object = inner.get("object").unwrap_or(inner);
        let key = match &vendor_type {
            Some(event) => {
                let at = field(&payload, &["event_ts"]).unwrap_or_default();
                hashed_key(format!("{event}\0{at}\0{}", canonical(inner)).as_bytes())
            }
            None => hashed_key(request.body),
        };
        let attributes = Attributes {
            key,
            subject: field(object, &["uuid", "id"]),
            time: payload.get("event_ts").and_then(time_ms),
            provider_event_type: vendor_type.clone(),
            property_id: field(inner, &["account_id"]),
            delivery_id: None,
        };
        let body = generic::body_for(
            &self.event_types,
            vendor_type.as_deref(),
            object,
            payload.clone(),
        );
        Ok(Normalization::accepted(vec![
            origin.event(attributes, body).into(),
        ]))
    }
}

/// Zoom's `encryptedToken`: hex HMAC-SHA256 of the plain token under the secret token.
pub fn encrypted_token(secret: &Secret, plain: &str) -> String {
    hex::encode(hmac(
        Algorithm::Sha256,
        secret.expose().as_bytes(),
        &[plain.as_bytes()],
    ))
}

#[cfg(test)]
mod tests;
