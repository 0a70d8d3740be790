//! Vonage Messages API webhooks (developer.vonage.com "Webhooks" and "Authentication: signed
//! webhooks"; the SDKs' `verify_webhook_token` / `verifySignature`).
//!
//! Scheme: `Authorization: Bearer <JWT>` signed **HS256** with the account's signature secret
//! (Dashboard › Settings; not the API secret). porter checks, in this order: the header's
//! shape; the JWT's header says `HS256` (any other `alg`, `none` above all, is refused as
//! malformed: the secret is an HMAC key, nothing else); its `iat` within `tolerance` (default
//! 300 s) and any `exp` not past, before any MAC; the MAC of `header.payload` against every
//! secret, in constant time; then `payload_hash`, the hex SHA-256 of the raw body, which binds
//! the token to this body (`body_hash_mismatch` when it differs). A token without
//! `payload_hash` is refused: it would authenticate any body sent with it.
//!
//! Events: an inbound message (`message_uuid`, `from`, `to`, `channel`, `message_type`,
//! `text`…) → `message.received`, keyed by `message_uuid`; a status (`status`: `submitted`,
//! `delivered`, `read`, `rejected`, `undeliverable`) → `message.status_changed`, keyed
//! `message_uuid:status`. Channels `sms` and `mms` are SMS, `whatsapp` and `messenger` are
//! theirs; `viber`, `rcs` and what has no `message_uuid` → `unknown`, the payload kept.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::auth::{DEFAULT_TOLERANCE, check_window, required_header};
use crate::event::{
    Attributes, Channel, DeliveryStatus, EventBody, Media, MessageData, MessageKind,
    MessageStatusData, Origin, ProviderError, UnknownData, hashed_key,
};
use crate::json::{field, time};
use crate::provider::{Checked, Guard, GuardedProvider, Normalization, Signed, ToSign};
use crate::settings::{Context, SettingError, duration, require_secrets};
use crate::signing::{Algorithm, hmac, hmac_matches, tokens_match};
use crate::{Rejection, Request, Secret};

const HEADER: &str = "authorization";
/// The longest token read (Vonage's are about 400 bytes).
const MAX_TOKEN_LEN: usize = 4096;

/// The keys a `vonage` source reads.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The account's signature secrets; several during rotation.
    #[serde(default)]
    pub secrets: Vec<Secret>,
    /// The `iat` window (default 5 minutes).
    #[serde(default, deserialize_with = "duration")]
    pub tolerance: Option<Duration>,
}

/// A signed JWT in `Authorization: Bearer`.
#[derive(Debug)]
pub struct SignedJwt {
    secrets: Vec<Secret>,
    tolerance: Duration,
}

/// A configured Vonage source.
#[derive(Debug)]
pub struct Vonage {
    jwt: SignedJwt,
}

impl GuardedProvider for Vonage {
    const ID: &'static str = "vonage";
    type Settings = Settings;
    type Guard = SignedJwt;

    fn configure(settings: Settings, _context: &Context) -> Result<Self, Vec<SettingError>> {
        Ok(Self {
            jwt: SignedJwt {
                secrets: require_secrets(settings.secrets).map_err(|e| vec![e])?,
                tolerance: settings.tolerance.unwrap_or(DEFAULT_TOLERANCE),
            },
        })
    }

    fn guard(&self) -> &SignedJwt {
        &self.jwt
    }

    fn read(&self, checked: Checked<'_>, origin: &Origin<'_>) -> Result<Normalization, Rejection> {
        let request = checked.request();
        let payload: Value = crate::json::parse(request.body)?;
        Ok(Normalization::accepted(vec![event(
            &payload,
            request.body,
            origin,
        )]))
    }
}

impl Guard for SignedJwt {
    fn check(&self, request: &Request<'_>, now: Timestamp) -> Result<(), Rejection> {
        let malformed = || Rejection::MalformedSignature(HEADER.into());
        let value = required_header(request, HEADER.into())?;
        let token = value
            .strip_prefix(b"Bearer ")
            .or_else(|| value.strip_prefix(b"bearer "))
            .filter(|token| token.len() <= MAX_TOKEN_LEN)
            .ok_or_else(malformed)?;
        let mut parts = token.split(|&b| b == b'.');
        let (Some(head), Some(claims_part), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed());
        };
        // What is signed: `header.claims`, as received.
        let signed = &token[..head.len() + 1 + claims_part.len()];
        let decode_json = |part: &[u8]| -> Option<Value> {
            serde_json::from_slice(&BASE64URL.decode(part).ok()?).ok()
        };
        let header = decode_json(head).ok_or_else(malformed)?;
        if header.get("alg").and_then(Value::as_str) != Some("HS256") {
            return Err(malformed());
        }
        let claims = decode_json(claims_part).ok_or_else(malformed)?;
        let tag = BASE64URL
            .decode(tag)
            .ok()
            .filter(|tag| tag.len() == Algorithm::Sha256.output_len())
            .ok_or_else(malformed)?;
        // The window before any MAC.
        let issued = claims
            .get("iat")
            .and_then(Value::as_i64)
            .ok_or(Rejection::MissingTimestamp("iat".into()))?;
        check_window(issued, now, self.tolerance)?;
        if let Some(expires) = claims.get("exp").and_then(Value::as_i64)
            && expires < now.as_second()
        {
            return Err(Rejection::StaleTimestamp);
        }
        let matched = self.secrets.iter().fold(false, |found, secret| {
            found
                | hmac_matches(
                    Algorithm::Sha256,
                    secret.expose().as_bytes(),
                    &[signed],
                    &tag,
                )
        });
        if !matched {
            return Err(Rejection::SignatureMismatch);
        }
        let body_hash = hex::encode(Sha256::digest(request.body));
        match claims.get("payload_hash").and_then(Value::as_str) {
            Some(expected)
                if tokens_match(
                    expected.to_ascii_lowercase().as_bytes(),
                    body_hash.as_bytes(),
                ) =>
            {
                Ok(())
            }
            Some(_) => Err(Rejection::BodyHashMismatch),
            None => Err(malformed()),
        }
    }

    /// A token as Vonage makes one, issued now, with the first secret.
    fn sign(&self, request: &ToSign<'_>) -> Signed {
        let header = BASE64URL.encode(json!({"alg": "HS256", "typ": "JWT"}).to_string());
        let body_hash = hex::encode(Sha256::digest(request.body));
        let claims = BASE64URL.encode(
            json!({
                "iat": request.now.as_second(),
                "jti": &body_hash[..32],
                "iss": "Vonage",
                "payload_hash": body_hash,
            })
            .to_string(),
        );
        let mac = hmac(
            Algorithm::Sha256,
            self.secrets[0].expose().as_bytes(),
            &[header.as_bytes(), b".", claims.as_bytes()],
        );
        let token = format!("{header}.{claims}.{}", BASE64URL.encode(mac));
        Signed::headers(
            request,
            vec![("Authorization".to_owned(), format!("Bearer {token}"))],
        )
    }
}

/// An address as the Messages API writes it: a string, or (in its first version) an object
/// with `number` or `id`.
fn address(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        object @ Value::Object(_) => field(object, &["number", "id"]),
        _ => None,
    }
}

fn event(payload: &Value, body: &[u8], origin: &Origin<'_>) -> crate::Normalized {
    let uuid = field(payload, &["message_uuid"]);
    let status = field(payload, &["status"]);
    let channel_word = field(payload, &["channel"]).unwrap_or_default();
    let channel = match channel_word.as_str() {
        "sms" | "mms" => Some(Channel::Sms),
        "whatsapp" => Some(Channel::Whatsapp),
        "messenger" => Some(Channel::Messenger),
        _ => None,
    };
    let key = match (&uuid, &status) {
        (Some(uuid), Some(status)) => format!("{uuid}:{status}"),
        (Some(uuid), None) => uuid.clone(),
        (None, _) => hashed_key(body),
    };
    let attributes = Attributes {
        key,
        subject: uuid.clone(),
        time: payload.get("timestamp").and_then(time),
        provider_event_type: Some(
            if status.is_some() {
                "status"
            } else {
                "inbound"
            }
            .to_owned(),
        ),
        property_id: field(payload, &["to"]).filter(|_| status.is_none()),
        delivery_id: None,
    };
    let unknown = |reason: String| {
        EventBody::Unknown(UnknownData {
            reason,
            raw: payload.clone(),
        })
    };
    let body = match (channel, uuid, status) {
        (Some(channel), Some(message_id), None) => {
            let kind = match field(payload, &["message_type"]).as_deref() {
                Some("image") => MessageKind::Image,
                Some("audio") => MessageKind::Audio,
                Some("video") => MessageKind::Video,
                Some("file") => MessageKind::Document,
                Some("sticker") => MessageKind::Sticker,
                Some("location") => MessageKind::Location,
                Some("reply" | "button") => MessageKind::Interactive,
                _ => MessageKind::Text,
            };
            let media: Vec<Media> = ["image", "audio", "video", "file", "sticker"]
                .iter()
                .filter_map(|name| payload.get(*name))
                .filter_map(|m| {
                    Some(Media {
                        url: Some(field(m, &["url"])?),
                        caption: field(m, &["caption"]),
                        filename: field(m, &["name"]),
                        ..Media::default()
                    })
                })
                .collect();
            EventBody::MessageReceived(MessageData {
                channel,
                message_id,
                from: address(payload.get("from")),
                to: address(payload.get("to")),
                profile_name: payload
                    .pointer("/profile/name")
                    .and_then(crate::json::text_of),
                kind: Some(kind),
                text: field(payload, &["text"]),
                media,
                location: None,
                contacts: Vec::new(),
                selection: None,
                reaction: None,
                replied_to: None,
                account_id: None,
            })
        }
        (Some(channel), Some(message_id), Some(word)) => {
            let status = match word.as_str() {
                "submitted" => DeliveryStatus::Accepted,
                "rejected" => DeliveryStatus::Failed,
                "undeliverable" => DeliveryStatus::Undelivered,
                other => DeliveryStatus::from_vendor(other),
            };
            let errors = payload
                .get("error")
                .map(|e| ProviderError {
                    // `title` is the code's number; `type` ends in `#<code>`.
                    code: field(e, &["title"])
                        .and_then(|t| t.parse().ok())
                        .or_else(|| field(e, &["type"])?.rsplit_once('#')?.1.parse().ok()),
                    title: field(e, &["title"]),
                    message: field(e, &["detail"]),
                    href: field(e, &["type"]),
                    ..ProviderError::default()
                })
                .into_iter()
                .collect();
            EventBody::MessageStatusChanged(MessageStatusData {
                channel,
                message_id,
                status,
                provider_status: word,
                recipient: address(payload.get("to")),
                from: address(payload.get("from")),
                errors,
                conversation_id: None,
                account_id: None,
                watermark: None,
            })
        }
        (None, _, _) => unknown(format!("Vonage channel `{channel_word}` is not modelled")),
        (Some(_), None, _) => unknown("a Vonage message without `message_uuid`".to_owned()),
    };
    origin.event(attributes, body).into()
}

#[cfg(test)]
mod tests;
