//! Bird (formerly MessageBird) webhooks (docs.bird.com "Verifying a webhook", with its PHP
//! and Go samples).
//!
//! Scheme: `messagebird-signature: base64(HMAC-SHA256(signing key, timestamp + "\n" + URL +
//! "\n" + SHA-256(raw body)))`, the body's digest as its 32 raw bytes, and
//! `messagebird-request-timestamp` (Unix seconds), refused outside `tolerance` (default 300 s;
//! Bird does not state its own) before any MAC. Like Twilio, Bird signs the **URL it called**:
//! porter rebuilds it from `public_url` (the source's, else the server's), with and without
//! the default port, plus the path and query as received; behind a proxy that rewrites paths,
//! a diagnosis shows which URL would have matched.
//!
//! Notifications: `{"service":"channels","event":"<channel>.<direction>","payload":{…}}`.
//! `sms.inbound` and `whatsapp.inbound` → `message.received` (sender
//! `payload.sender.contact.identifierValue`, text `payload.body.text.text`), keyed by
//! `payload.id`; `sms.outbound` and `whatsapp.outbound` → `message.status_changed` with
//! `payload.status`, keyed `payload.id:status`; everything else → `unknown`, the payload kept.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::auth::{DEFAULT_TOLERANCE, Encoding, check_window, required_header, timestamp_header};
use crate::diagnosis::{Part, Scheme, SecretFormat, SignedUrl};
use crate::event::{
    Attributes, Channel, DeliveryStatus, EventBody, MessageData, MessageKind, MessageStatusData,
    Origin, UnknownData, hashed_key,
};
use crate::json::{field, time};
use crate::provider::{Checked, Guard, GuardedProvider, Normalization, Signed, ToSign};
use crate::request::HeaderValue;
use crate::settings::{Context, SettingError, duration, public_url, require_secrets};
use crate::signing::{Algorithm, hmac, hmac_matches};
use crate::{Rejection, Request, Secret};

const SIGNATURE: &str = "messagebird-signature";
const TIMESTAMP: &str = "messagebird-request-timestamp";

/// The keys a `bird` source reads.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The subscription's signing keys; several during rotation.
    #[serde(default)]
    pub secrets: Vec<Secret>,
    /// The timestamp window (default 5 minutes).
    #[serde(default, deserialize_with = "duration")]
    pub tolerance: Option<Duration>,
    /// The URL Bird calls (default: `server.public_url`), which Bird signs.
    pub public_url: Option<String>,
}

/// Bird's URL-bound signature.
#[derive(Debug)]
pub struct BirdSignature {
    secrets: Vec<Secret>,
    /// `public_url` as configured, and with its port toggled.
    bases: [String; 2],
    tolerance: Duration,
}

/// A configured Bird source.
#[derive(Debug)]
pub struct Bird {
    signature: BirdSignature,
}

impl GuardedProvider for Bird {
    const ID: &'static str = "bird";
    type Settings = Settings;
    type Guard = BirdSignature;

    fn configure(settings: Settings, context: &Context) -> Result<Self, Vec<SettingError>> {
        let secrets = require_secrets(settings.secrets);
        let bases = match public_url(settings.public_url, context) {
            Err(problem) => Err(problem),
            Ok(None) => Err(SettingError::new(
                "public_url",
                "required: the public base URL Bird calls, which Bird signs (set \
                 server.public_url or the source's public_url)",
            )),
            Ok(Some(url)) => crate::twilio::url_bases(&url)
                .map_err(|problem| SettingError::new("public_url", problem)),
        };
        match (secrets, bases) {
            (Ok(secrets), Ok(bases)) => Ok(Self {
                signature: BirdSignature {
                    secrets,
                    bases,
                    tolerance: settings.tolerance.unwrap_or(DEFAULT_TOLERANCE),
                },
            }),
            (secrets, bases) => Err([secrets.err(), bases.err()].into_iter().flatten().collect()),
        }
    }

    fn guard(&self) -> &BirdSignature {
        &self.signature
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

impl Guard for BirdSignature {
    fn check(&self, request: &Request<'_>, now: Timestamp) -> Result<(), Rejection> {
        let value = required_header(request, SIGNATURE.into())?;
        let tag = BASE64
            .decode(value)
            .ok()
            .filter(|tag| tag.len() == Algorithm::Sha256.output_len())
            .ok_or(Rejection::MalformedSignature(SIGNATURE.into()))?;
        let (seconds, text) = timestamp_header(request, TIMESTAMP.into())?;
        check_window(seconds, now, self.tolerance)?;
        let digest = Sha256::digest(request.body);
        let suffix = match request.query {
            Some(query) => format!("{}?{query}", request.path),
            None => request.path.to_owned(),
        };
        let matched = self.secrets.iter().fold(false, |found, secret| {
            self.bases.iter().fold(found, |found, base| {
                found
                    | hmac_matches(
                        Algorithm::Sha256,
                        secret.expose().as_bytes(),
                        &[
                            text,
                            b"\n",
                            base.as_bytes(),
                            suffix.as_bytes(),
                            b"\n",
                            digest.as_slice(),
                        ],
                        &tag,
                    )
            })
        });
        if matched {
            Ok(())
        } else {
            Err(Rejection::SignatureMismatch)
        }
    }

    /// Timestamp, URL and body digest under the keys' text: a diagnosis tries the URLs a
    /// proxy may have changed (host, scheme, port, prefix), as for Twilio.
    fn scheme<'a>(&'a self, request: &Request<'a>) -> Option<Scheme<'a>> {
        let (seconds, text) = timestamp_header(request, TIMESTAMP.into()).ok()?;
        let offered = match request.single_header(SIGNATURE) {
            HeaderValue::One(value) => Some(value),
            HeaderValue::Missing | HeaderValue::Repeated => None,
        };
        let digest = Sha256::digest(request.body).to_vec();
        let content = vec![
            text.into(),
            b"\n".as_slice().into(),
            Part::Url,
            b"\n".as_slice().into(),
            digest.into(),
        ];
        let scheme = Scheme::new(
            &self.secrets,
            SecretFormat::Text,
            Algorithm::Sha256,
            Encoding::Base64,
            content,
        );
        Some(
            scheme
                .offering(offered)
                .timestamp(Some(seconds))
                .signing_url(SignedUrl::new(&self.bases, request)),
        )
    }

    /// Signed now, for the configured URL, with the first key.
    fn sign(&self, request: &ToSign<'_>) -> Signed {
        let timestamp = request.now.as_second().to_string();
        let url = match request.query {
            Some(query) => format!("{}{}?{query}", self.bases[0], request.path),
            None => format!("{}{}", self.bases[0], request.path),
        };
        Signed::headers(
            request,
            vec![
                (
                    SIGNATURE.to_owned(),
                    signature(&self.secrets[0], &timestamp, &url, request.body),
                ),
                (TIMESTAMP.to_owned(), timestamp),
            ],
        )
    }
}

/// Bird's `messagebird-signature` for `body` sent to `url` at `timestamp`.
pub fn signature(secret: &Secret, timestamp: &str, url: &str, body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    BASE64.encode(hmac(
        Algorithm::Sha256,
        secret.expose().as_bytes(),
        &[
            timestamp.as_bytes(),
            b"\n",
            url.as_bytes(),
            b"\n",
            digest.as_slice(),
        ],
    ))
}

fn event(payload: &Value, body: &[u8], origin: &Origin<'_>) -> crate::Normalized {
    let name = field(payload, &["event"]);
    let inner = payload.get("payload").unwrap_or(&Value::Null);
    let id = field(inner, &["id"]);
    let status = field(inner, &["status"]);
    let (channel, direction) = match name.as_deref().and_then(|n| n.split_once('.')) {
        Some(("sms", direction)) => (Some(Channel::Sms), direction),
        Some(("whatsapp", direction)) => (Some(Channel::Whatsapp), direction),
        Some((_, direction)) => (None, direction),
        None => (None, ""),
    };
    let key = match (&id, direction) {
        (Some(id), "outbound") => format!("{id}:{}", status.as_deref().unwrap_or_default()),
        (Some(id), _) => id.clone(),
        (None, _) => hashed_key(body),
    };
    let attributes = Attributes {
        key,
        subject: id.clone(),
        time: inner
            .get("updatedAt")
            .or_else(|| inner.get("createdAt"))
            .and_then(time),
        provider_event_type: name.clone(),
        property_id: field(inner, &["channelId"]),
        delivery_id: None,
    };
    let contact = |side: &str| {
        inner
            .get(side)
            .and_then(|s| {
                s.get("contact")
                    .or_else(|| s.get("contacts").and_then(|c| c.get(0)))
            })
            .and_then(|c| field(c, &["identifierValue"]))
    };
    let body = match (channel, direction, id) {
        (Some(channel), "inbound", Some(message_id)) => EventBody::MessageReceived(MessageData {
            channel,
            message_id,
            from: contact("sender"),
            to: contact("receiver"),
            profile_name: None,
            kind: Some(MessageKind::Text),
            text: inner
                .pointer("/body/text/text")
                .and_then(crate::json::text_of),
            media: Vec::new(),
            location: None,
            contacts: Vec::new(),
            selection: None,
            reaction: None,
            replied_to: None,
            account_id: field(inner, &["channelId"]),
        }),
        (Some(channel), "outbound", Some(message_id)) => {
            let word = status.unwrap_or_default();
            EventBody::MessageStatusChanged(MessageStatusData {
                channel,
                message_id,
                status: DeliveryStatus::from_vendor(&word),
                provider_status: word,
                recipient: contact("receiver"),
                from: contact("sender"),
                errors: Vec::new(),
                conversation_id: None,
                account_id: field(inner, &["channelId"]),
                watermark: None,
            })
        }
        _ => EventBody::Unknown(UnknownData {
            reason: match &name {
                Some(name) => format!("Bird event `{name}` is not modelled"),
                None => "a Bird notification needs `event`".to_owned(),
            },
            raw: payload.clone(),
        }),
    };
    origin.event(attributes, body).into()
}

#[cfg(test)]
mod tests;
