//! Telnyx API v2 webhooks (Messaging; Telnyx's "Webhook signing" and its SDKs'
//! `Webhook.constructEvent`).
//!
//! Scheme: `telnyx-signature-ed25519: base64(Ed25519 signature)` over
//! `"{telnyx-timestamp}|{raw body}"`, checked with the account's **public key** (Mission
//! Control › Keys & Credentials › Public Key: base64 of 32 raw bytes). The first asymmetric
//! scheme in porter: the key is configuration, not a secret, and nobody but Telnyx can sign.
//! `telnyx-timestamp` (Unix seconds) must be within `tolerance` (default 300 s, the SDKs'),
//! checked before the signature.
//!
//! Several `public_keys` may be listed (a key rotation); any may verify. `porter send` and
//! the tests sign with `signing_key` (base64 of a 32-byte Ed25519 seed) when one is set: a
//! key of your own for trying a source out, whose public half you list in `public_keys`.
//!
//! Envelope: `{"data":{"event_type","id","occurred_at","payload":{…},"record_type":"event"},
//! "meta":{"attempt","delivered_to"}}`. The key is `data.id`, so a retry (same id, a higher
//! `meta.attempt`) is a duplicate. `message.received` → `message.received` (SMS/MMS: `from`,
//! `to[0]`, `text`, `media[]`); `message.sent` and `message.finalized` →
//! `message.status_changed` with the status of `payload.to[0]` (`sending_failed` and
//! `delivery_failed` are `failed`) and `payload.errors[]`; anything else (calls, number
//! orders) → `unknown` with the payload.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

use crate::auth::{DEFAULT_TOLERANCE, check_window, required_header, timestamp_header};
use crate::event::{
    Attributes, Channel, DeliveryStatus, EventBody, Media, MessageData, MessageKind,
    MessageStatusData, Origin, ProviderError, UnknownData,
};
use crate::json::{field, text_of, time};
use crate::provider::{Checked, Guard, GuardedProvider, Normalization, Signed, ToSign};
use crate::settings::{Context, SettingError, duration};
use crate::{Rejection, Request, Secret};

const SIGNATURE: &str = "telnyx-signature-ed25519";
const TIMESTAMP: &str = "telnyx-timestamp";

/// The keys a `telnyx` source reads.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The account's public keys, base64 of 32 raw bytes; several during a rotation.
    #[serde(default)]
    pub public_keys: Vec<String>,
    /// The timestamp window (default 5 minutes).
    #[serde(default, deserialize_with = "duration")]
    pub tolerance: Option<Duration>,
    /// For `porter send` and tests only: base64 of a 32-byte Ed25519 seed to sign with, whose
    /// public key is in `public_keys`.
    pub signing_key: Option<Secret>,
}

/// Ed25519 over `timestamp|body` with any of the public keys.
#[derive(Debug)]
pub struct Ed25519Signature {
    keys: Vec<VerifyingKey>,
    tolerance: Duration,
    signing_key: Option<SigningKey>,
}

/// A configured Telnyx source.
#[derive(Debug)]
pub struct Telnyx {
    signature: Ed25519Signature,
}

impl GuardedProvider for Telnyx {
    const ID: &'static str = "telnyx";
    type Settings = Settings;
    type Guard = Ed25519Signature;

    fn configure(settings: Settings, _context: &Context) -> Result<Self, Vec<SettingError>> {
        let mut problems = Vec::new();
        if settings.public_keys.is_empty() {
            problems.push(SettingError::new(
                "public_keys",
                "a telnyx source needs the account's public key (base64 of 32 bytes, from \
                 Mission Control › Keys & Credentials)",
            ));
        }
        let keys: Vec<VerifyingKey> = settings
            .public_keys
            .iter()
            .enumerate()
            .filter_map(|(i, text)| match public_key(text) {
                Some(key) => Some(key),
                None => {
                    problems.push(SettingError::new(
                        format!("public_keys[{i}]"),
                        "not an Ed25519 public key: expected base64 of 32 bytes",
                    ));
                    None
                }
            })
            .collect();
        let signing_key = match &settings.signing_key {
            None => None,
            Some(seed) => match decode_32(seed.expose()) {
                Some(bytes) => Some(SigningKey::from_bytes(&bytes)),
                None => {
                    problems.push(SettingError::new(
                        "signing_key",
                        "not an Ed25519 seed: expected base64 of 32 bytes",
                    ));
                    None
                }
            },
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Self {
            signature: Ed25519Signature {
                keys,
                tolerance: settings.tolerance.unwrap_or(DEFAULT_TOLERANCE),
                signing_key,
            },
        })
    }

    fn guard(&self) -> &Ed25519Signature {
        &self.signature
    }

    fn read(&self, checked: Checked<'_>, origin: &Origin<'_>) -> Result<Normalization, Rejection> {
        let payload: Value = crate::json::parse(checked.request().body)?;
        Ok(Normalization::accepted(vec![
            origin.event(attributes(&payload), body(&payload)).into(),
        ]))
    }
}

impl Guard for Ed25519Signature {
    fn check(&self, request: &Request<'_>, now: Timestamp) -> Result<(), Rejection> {
        let value = required_header(request, SIGNATURE.into())?;
        let signature = BASE64
            .decode(value)
            .ok()
            .and_then(|bytes| Signature::from_slice(&bytes).ok())
            .ok_or(Rejection::MalformedSignature(SIGNATURE.into()))?;
        let (seconds, text) = timestamp_header(request, TIMESTAMP.into())?;
        check_window(seconds, now, self.tolerance)?;
        let mut signed = Vec::with_capacity(text.len() + 1 + request.body.len());
        signed.extend_from_slice(text);
        signed.push(b'|');
        signed.extend_from_slice(request.body);
        // Public keys only: nothing secret to time.
        if self
            .keys
            .iter()
            .any(|key| key.verify(&signed, &signature).is_ok())
        {
            Ok(())
        } else {
            Err(Rejection::SignatureMismatch)
        }
    }

    /// Signed with `signing_key`; without one, only the timestamp is sent (Telnyx alone holds
    /// the account's private key), and porter refuses the request.
    fn sign(&self, request: &ToSign<'_>) -> Signed {
        let timestamp = request.now.as_second().to_string();
        let mut headers = vec![(TIMESTAMP.to_owned(), timestamp.clone())];
        if let Some(key) = &self.signing_key {
            let mut signed = timestamp.into_bytes();
            signed.push(b'|');
            signed.extend_from_slice(request.body);
            let signature = key.sign(&signed);
            headers.push((SIGNATURE.to_owned(), BASE64.encode(signature.to_bytes())));
        }
        Signed::headers(request, headers)
    }
}

fn decode_32(text: &str) -> Option<[u8; 32]> {
    BASE64.decode(text.trim()).ok()?.try_into().ok()
}

fn public_key(text: &str) -> Option<VerifyingKey> {
    VerifyingKey::from_bytes(&decode_32(text)?).ok()
}

/// The public key (base64) of a `signing_key` seed (base64), for documentation and tests.
pub fn public_key_of(seed: &str) -> Option<String> {
    let key = SigningKey::from_bytes(&decode_32(seed)?);
    Some(BASE64.encode(key.verifying_key().to_bytes()))
}

fn attributes(payload: &Value) -> Attributes {
    let data = payload.get("data").unwrap_or(&Value::Null);
    let inner = data.get("payload").unwrap_or(&Value::Null);
    Attributes {
        key: field(data, &["id"])
            .unwrap_or_else(|| crate::event::hashed_key(payload.to_string().as_bytes())),
        subject: field(inner, &["id"]),
        time: data.get("occurred_at").and_then(time),
        provider_event_type: field(data, &["event_type"]),
        property_id: field(inner, &["messaging_profile_id"]),
        delivery_id: None,
    }
}

fn body(payload: &Value) -> EventBody {
    let data = payload.get("data").unwrap_or(&Value::Null);
    let inner = data.get("payload").unwrap_or(&Value::Null);
    let event_type = field(data, &["event_type"]);
    let message_id = field(inner, &["id"]);
    let from = inner.get("from").and_then(|f| field(f, &["phone_number"]));
    let first_to = inner.get("to").and_then(|to| to.get(0));
    let to = first_to.and_then(|t| field(t, &["phone_number"]));
    let unknown = |reason: String| {
        EventBody::Unknown(UnknownData {
            reason,
            raw: payload.clone(),
        })
    };
    match (event_type.as_deref(), message_id) {
        (Some("message.received"), Some(message_id)) => {
            let media: Vec<Media> = inner
                .get("media")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|m| Media {
                    url: field(m, &["url"]),
                    mime_type: field(m, &["content_type"]),
                    sha256: field(m, &["hash_sha256"]),
                    ..Media::default()
                })
                .collect();
            let kind = if media.is_empty() {
                MessageKind::Text
            } else {
                media_kind(media[0].mime_type.as_deref())
            };
            EventBody::MessageReceived(MessageData {
                channel: Channel::Sms,
                message_id,
                from,
                to,
                profile_name: None,
                kind: Some(kind),
                text: inner.get("text").and_then(text_of),
                media,
                location: None,
                contacts: Vec::new(),
                selection: None,
                reaction: None,
                replied_to: None,
                account_id: field(inner, &["organization_id"]),
            })
        }
        (Some("message.sent" | "message.finalized"), Some(message_id)) => {
            let word = first_to
                .and_then(|t| field(t, &["status"]))
                .unwrap_or_default();
            let status = match word.as_str() {
                "sending_failed" | "delivery_failed" => DeliveryStatus::Failed,
                "delivery_unconfirmed" => DeliveryStatus::Other,
                other => DeliveryStatus::from_vendor(other),
            };
            let errors = inner
                .get("errors")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|e| ProviderError {
                    code: field(e, &["code"]).and_then(|c| c.parse().ok()),
                    title: field(e, &["title"]),
                    message: field(e, &["detail"]),
                    ..ProviderError::default()
                })
                .collect();
            EventBody::MessageStatusChanged(MessageStatusData {
                channel: Channel::Sms,
                message_id,
                status,
                provider_status: word,
                recipient: to,
                from,
                errors,
                conversation_id: None,
                account_id: field(inner, &["organization_id"]),
                watermark: None,
            })
        }
        (Some(other), _) => unknown(format!("Telnyx event `{other}` is not modelled")),
        (None, _) => unknown("a Telnyx webhook needs `data.event_type`".to_owned()),
    }
}

/// The kind of an MMS by its first attachment's type.
fn media_kind(mime_type: Option<&str>) -> MessageKind {
    match mime_type.and_then(|t| t.split('/').next()) {
        Some("image") => MessageKind::Image,
        Some("audio") => MessageKind::Audio,
        Some("video") => MessageKind::Video,
        _ => MessageKind::Document,
    }
}

#[cfg(test)]
mod tests;
