//! Standard Webhooks (standardwebhooks.com, spec v1.0.0), and Svix, which sends the same
//! scheme under `svix-*` header names.
//!
//! Scheme:
//! - `webhook-id` (unique per event, stable across retries: the provider event key),
//!   `webhook-timestamp` (Unix seconds of the attempt), `webhook-signature` (a space-separated
//!   list of `<version>,<base64>`).
//! - `v1` = base64(HMAC-SHA256(key, id + "." + timestamp + "." + raw body)); the key is the
//!   base64 after `whsec_` in the secret. Any `v1` entry may match (the sender signs with
//!   every active secret during a rotation); other versions (`v1a`, asymmetric) are ignored.
//!   More than eight `v1` entries is not a sender's rotation: refused as malformed before any
//!   MAC, and each key's MAC is computed once and compared with every entry.
//! - The timestamp must be within `tolerance` (default 300 s) either way, as in every reference
//!   library; it is checked before the MAC, so a stale request is `stale_timestamp` whether or
//!   not its signature is good. The id may not contain `.`: it would make the signed text
//!   ambiguous.
//! - The payload is JSON, `{type, timestamp, data}` by the spec's recommendation; `type` is
//!   mapped through the source's `event_types` table, `data` (or the whole payload) is kept.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::auth::{DEFAULT_TOLERANCE, Encoding, check_window, required_header, timestamp_header};
use crate::diagnosis::{Scheme, SecretFormat};
use crate::event::{Attributes, EventType, Origin};
use crate::json::{field, time};
use crate::provider::{
    Checked, Endpoint, Normalization, POST_ONLY, Signed, ToSign, WebhookProvider,
};
use crate::settings::{Context, EventTypes, SettingError, duration, require_secrets};
use crate::signing::{Algorithm, MAX_CANDIDATES, hmac, matches_any};
use crate::{Rejection, Request, Secret, generic};

/// The header names, in the spec's spelling and Svix's.
struct Names {
    id: &'static str,
    timestamp: &'static str,
    signature: &'static str,
}

const STANDARD: Names = Names {
    id: "webhook-id",
    timestamp: "webhook-timestamp",
    signature: "webhook-signature",
};
const SVIX: Names = Names {
    id: "svix-id",
    timestamp: "svix-timestamp",
    signature: "svix-signature",
};

/// The keys a `standard_webhooks` source reads.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `whsec_` + base64 of the key; several during rotation.
    #[serde(default)]
    pub secrets: Vec<Secret>,
    /// The timestamp window (default 5 minutes).
    #[serde(default, deserialize_with = "duration")]
    pub tolerance: Option<Duration>,
    /// The vendor's event types → canonical types.
    #[serde(default)]
    pub event_types: EventTypes,
}

/// A configured Standard Webhooks source.
#[derive(Debug)]
pub struct StandardWebhooks {
    /// The secrets as configured, for a diagnosis of a refusal.
    secrets: Vec<Secret>,
    /// Decoded signing keys (the bytes after `whsec_`, base64-decoded), in the same order.
    keys: Vec<Vec<u8>>,
    tolerance: Duration,
    event_types: Vec<(String, EventType)>,
}

impl WebhookProvider for StandardWebhooks {
    const ID: &'static str = "standard_webhooks";
    const ENDPOINTS: &'static [Endpoint] = POST_ONLY;
    // The specification: "429 … throttle; honour `Retry-After`".
    const THROTTLE: crate::Throttle = crate::Throttle::TooManyRequests;
    type Settings = Settings;
    type Verified<'a> = Checked<'a>;

    fn from_settings(settings: Settings, _context: &Context) -> Result<Self, Vec<SettingError>> {
        let secrets = require_secrets(settings.secrets).map_err(|e| vec![e])?;
        let keys = secrets
            .iter()
            .map(|secret| decode_secret(secret.expose()))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                vec![SettingError::new(
                    "secrets",
                    "a Standard Webhooks secret is `whsec_` followed by base64",
                )]
            })?;
        Ok(Self {
            secrets,
            keys,
            tolerance: settings.tolerance.unwrap_or(DEFAULT_TOLERANCE),
            event_types: settings.event_types.resolve()?,
        })
    }

    fn verify<'a>(&self, request: &Request<'a>, now: Timestamp) -> Result<Checked<'a>, Rejection> {
        let names = header_names(request);
        let id = required_header(request, names.id.into())?;
        // The id is the event's key: only visible ASCII, so that no two ids can become one
        // key (a lossy reading of `msg_\xff` and `msg_\xfe` would both be empty).
        if !id.iter().all(|b| b.is_ascii_graphic()) {
            return Err(Rejection::InvalidHeader(names.id.into()));
        }
        if id.is_empty() || id.contains(&b'.') {
            return Err(Rejection::MalformedSignature(names.id.into()));
        }
        let (seconds, timestamp) = timestamp_header(request, names.timestamp.into())?;
        let list = required_header(request, names.signature.into())?;
        let signatures = v1_signatures(list)
            .ok_or_else(|| Rejection::MalformedSignature(names.signature.into()))?;
        // The window before any MAC: a stale request costs no hashing.
        check_window(seconds, now, self.tolerance)?;
        let content: [&[u8]; 5] = [id, b".", timestamp, b".", request.body];
        // One MAC per key, compared with every listed signature.
        let matched = self.keys.iter().fold(false, |found, key| {
            found | matches_any(&hmac(Algorithm::Sha256, key, &content), &signatures)
        });
        if matched {
            Ok(Checked::new(request))
        } else {
            Err(Rejection::SignatureMismatch)
        }
    }

    /// `id.timestamp.body` under the decoded keys, every `v1` offered (undecoded), for a
    /// diagnosis of a refusal.
    fn signing_scheme<'a>(&'a self, request: &Request<'a>) -> Option<Scheme<'a>> {
        let names = header_names(request);
        let id = required_header(request, names.id.into()).ok()?;
        let (seconds, timestamp) = timestamp_header(request, names.timestamp.into()).ok()?;
        let list = required_header(request, names.signature.into())
            .ok()
            .and_then(|list| std::str::from_utf8(list).ok())
            .unwrap_or_default();
        let content = vec![
            id.into(),
            b".".as_slice().into(),
            timestamp.into(),
            b".".as_slice().into(),
            request.body.into(),
        ];
        let scheme = Scheme::new(
            &self.secrets,
            SecretFormat::WhsecBase64,
            Algorithm::Sha256,
            Encoding::Base64,
            content,
        );
        let offered = v1_entries(list).map(str::as_bytes);
        Some(scheme.offering(offered).timestamp(Some(seconds)))
    }

    /// Signs with the first secret; the id is derived from the body, so that sending the same
    /// file twice is a redelivery.
    fn sign(&self, request: &ToSign<'_>) -> Signed {
        let id = format!("msg_{}", &hex::encode(Sha256::digest(request.body))[..24]);
        let headers = signature_headers(&self.keys[0], &id, request.now.as_second(), request.body);
        Signed::headers(
            request,
            headers
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect(),
        )
    }

    fn normalize(
        &self,
        verified: Checked<'_>,
        origin: &Origin<'_>,
    ) -> Result<Normalization, Rejection> {
        let request = verified.request();
        let payload: Value = crate::json::parse(request.body)?;
        let names = header_names(request);
        // verify() has checked the id is present once and valid.
        let id = request.header_str(names.id).unwrap_or_default().to_owned();
        let vendor_type = field(&payload, &["type"]);
        let object = payload.get("data").unwrap_or(&payload);
        let attributes = Attributes {
            key: id,
            subject: None,
            time: payload.get("timestamp").and_then(time),
            provider_event_type: vendor_type.clone(),
            property_id: None,
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

/// The three Standard Webhooks headers for `body` signed with `key` (the decoded bytes after
/// `whsec_`): `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256(key,
/// id.timestamp.body)>`. What porter's signer sends, and what porter's HTTP destinations get.
pub fn signature_headers(
    key: &[u8],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> [(&'static str, String); 3] {
    let timestamp = timestamp.to_string();
    let mac = hmac(
        Algorithm::Sha256,
        key,
        &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
    );
    [
        (STANDARD.id, id.to_owned()),
        (STANDARD.timestamp, timestamp),
        (STANDARD.signature, format!("v1,{}", BASE64.encode(mac))),
    ]
}

/// `webhook-*` unless the request uses Svix's `svix-*` names.
fn header_names(request: &Request<'_>) -> &'static Names {
    if request.headers.contains_key(STANDARD.id) || !request.headers.contains_key(SVIX.id) {
        &STANDARD
    } else {
        &SVIX
    }
}

/// The decoded `v1` signatures of a signature list; `None` when there are none, or more than
/// [`MAX_CANDIDATES`] (counted before any is decoded).
fn v1_signatures(list: &[u8]) -> Option<Vec<Vec<u8>>> {
    let text = std::str::from_utf8(list).ok()?;
    let encoded: Vec<&str> = v1_entries(text).take(MAX_CANDIDATES + 1).collect();
    if encoded.len() > MAX_CANDIDATES {
        return None;
    }
    let signatures: Vec<Vec<u8>> = encoded
        .into_iter()
        .filter_map(|encoded| BASE64.decode(encoded).ok())
        .filter(|mac| mac.len() == Algorithm::Sha256.output_len())
        .collect();
    (!signatures.is_empty()).then_some(signatures)
}

/// The base64 of each `v1` entry of a signature list, in order.
fn v1_entries(list: &str) -> impl Iterator<Item = &str> {
    list.split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
}

/// The key bytes of a `whsec_<base64>` secret ([`crate::secret::decode_whsec`]).
pub(crate) fn decode_secret(secret: &str) -> Option<Vec<u8>> {
    crate::secret::decode_whsec(secret)
}

#[cfg(test)]
mod tests;
