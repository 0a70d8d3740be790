//! Stripe-style signatures (stripe-python `stripe/_webhook.py`; Stripe's "Check the webhook
//! signatures" guide), for Stripe itself and for vendors that copied its scheme.
//!
//! Scheme:
//! - `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…][,v0=<hex>]`.
//! - `v1` = hex(HMAC-SHA256(secret, t + "." + raw body)). The key is the endpoint secret
//!   string itself, `whsec_` prefix included (unlike Standard Webhooks, nothing is decoded).
//!   Any `v1` may match (Stripe signs with every active secret while one is rolled); `v0` and
//!   unknown schemes are ignored. More than eight `v1` is refused as malformed, and each
//!   secret's MAC is computed once and compared with every `v1`.
//! - `t` must be within `tolerance` (default 300 s), checked before the MAC (a stale request is
//!   `stale_timestamp`, forged or not). stripe-python only refuses old timestamps; porter
//!   refuses future ones too, as its other schemes do.
//! - The key is the event `id` (`evt_…`); the type is `type`, mapped through `event_types`;
//!   the data is `data.object`. Stripe retries for up to three days.

use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

use crate::auth::{DEFAULT_TOLERANCE, Encoding, check_window, parse_seconds, required_header};
use crate::diagnosis::{Scheme, SecretFormat};
use crate::event::{Attributes, EventType, Origin, hashed_key};
use crate::json::{field, time};
use crate::provider::{
    Checked, Endpoint, Normalization, POST_ONLY, Signed, ToSign, WebhookProvider,
};
use crate::settings::{Context, EventTypes, SettingError, duration, require_secrets};
use crate::signing::{Algorithm, MAX_CANDIDATES, decode_hex, hmac, matches_any};
use crate::{Rejection, Request, Secret, generic};

const HEADER: &str = "stripe-signature";

/// The keys a `stripe` source reads.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Endpoint secrets as shown, `whsec_` included; several during rotation.
    #[serde(default)]
    pub secrets: Vec<Secret>,
    /// The timestamp window (default 5 minutes).
    #[serde(default, deserialize_with = "duration")]
    pub tolerance: Option<Duration>,
    /// The vendor's event types → canonical types.
    #[serde(default)]
    pub event_types: EventTypes,
}

/// A configured Stripe-style source.
#[derive(Debug)]
pub struct Stripe {
    secrets: Vec<Secret>,
    tolerance: Duration,
    event_types: Vec<(String, EventType)>,
}

/// A parsed `Stripe-Signature` header.
struct Header<'a> {
    timestamp: i64,
    timestamp_text: &'a [u8],
    signatures: Vec<Vec<u8>>,
}

impl WebhookProvider for Stripe {
    const ID: &'static str = "stripe";
    const ENDPOINTS: &'static [Endpoint] = POST_ONLY;
    type Settings = Settings;
    type Verified<'a> = Checked<'a>;

    fn from_settings(settings: Settings, _context: &Context) -> Result<Self, Vec<SettingError>> {
        let secrets = require_secrets(settings.secrets).map_err(|e| vec![e]);
        let event_types = settings.event_types.resolve();
        match (secrets, event_types) {
            (Ok(secrets), Ok(event_types)) => Ok(Self {
                secrets,
                tolerance: settings.tolerance.unwrap_or(DEFAULT_TOLERANCE),
                event_types,
            }),
            (secrets, event_types) => Err(secrets
                .err()
                .into_iter()
                .chain(event_types.err())
                .flatten()
                .collect()),
        }
    }

    fn verify<'a>(&self, request: &Request<'a>, now: Timestamp) -> Result<Checked<'a>, Rejection> {
        let value = required_header(request, HEADER.into())?;
        let header =
            parse_header(value).ok_or_else(|| Rejection::MalformedSignature(HEADER.into()))?;
        // The window before any MAC: a stale request costs no hashing.
        check_window(header.timestamp, now, self.tolerance)?;
        let content: [&[u8]; 3] = [header.timestamp_text, b".", request.body];
        // One MAC per secret, compared with every `v1` of the header.
        let matched = self.secrets.iter().fold(false, |found, secret| {
            let mac = hmac(Algorithm::Sha256, secret.expose().as_bytes(), &content);
            found | matches_any(&mac, &header.signatures)
        });
        if matched {
            Ok(Checked::new(request))
        } else {
            Err(Rejection::SignatureMismatch)
        }
    }

    /// `t.body` under the secrets as written, every `v1` offered, for a diagnosis of a
    /// refusal (read leniently: a `v1` that is not hex is what a diagnosis decodes otherwise).
    fn signing_scheme<'a>(&'a self, request: &Request<'a>) -> Option<Scheme<'a>> {
        let value = required_header(request, HEADER.into()).ok()?;
        let (seconds, timestamp) = offered_timestamp(value)?;
        let content = vec![
            timestamp.into(),
            b".".as_slice().into(),
            request.body.into(),
        ];
        let scheme = Scheme::new(
            &self.secrets,
            SecretFormat::WhsecText,
            Algorithm::Sha256,
            Encoding::Hex,
            content,
        );
        Some(scheme.offering(offered_v1(value)).timestamp(Some(seconds)))
    }

    fn sign(&self, request: &ToSign<'_>) -> Signed {
        let timestamp = request.now.as_second().to_string();
        let mac = hmac(
            Algorithm::Sha256,
            self.secrets[0].expose().as_bytes(),
            &[timestamp.as_bytes(), b".", request.body],
        );
        Signed {
            query: request.query.map(str::to_owned),
            headers: vec![(
                "Stripe-Signature".into(),
                format!("t={timestamp},v1={}", hex::encode(mac)),
            )],
            body: None,
        }
    }

    fn normalize(
        &self,
        verified: Checked<'_>,
        origin: &Origin<'_>,
    ) -> Result<Normalization, Rejection> {
        let request = verified.request();
        let payload: Value = crate::json::parse(request.body)?;
        let vendor_type = field(&payload, &["type"]);
        let object = payload.pointer("/data/object").unwrap_or(&payload);
        let attributes = Attributes {
            // An event without an id is not Stripe's; keep it, keyed by its exact bytes.
            key: field(&payload, &["id"]).unwrap_or_else(|| hashed_key(request.body)),
            subject: object.get("id").and_then(crate::json::text_of),
            time: payload.get("created").and_then(time),
            provider_event_type: vendor_type.clone(),
            property_id: field(&payload, &["account"]),
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

/// `t=…,v1=…[,v1=…][,v0=…]`: exactly one `t`, at least one and at most [`MAX_CANDIDATES`]
/// well-formed `v1`.
fn parse_header(value: &[u8]) -> Option<Header<'_>> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in value.split(|&b| b == b',') {
        let at = item.iter().position(|&b| b == b'=')?;
        let (key, text) = (&item[..at], &item[at + 1..]);
        match key {
            b"t" if timestamp.is_none() => timestamp = Some((parse_seconds(text)?, text)),
            b"t" => return None,
            b"v1" if signatures.len() == MAX_CANDIDATES => return None,
            b"v1" => signatures.push(decode_hex(text, Algorithm::Sha256.output_len())?),
            _ => {}
        }
    }
    let (timestamp, timestamp_text) = timestamp?;
    (!signatures.is_empty()).then_some(Header {
        timestamp,
        timestamp_text,
        signatures,
    })
}

/// The header's items, `key=value`, split at the first `=` (items without one are skipped).
fn items(value: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    value.split(|&b| b == b',').filter_map(|item| {
        let at = item.iter().position(|&b| b == b'=')?;
        Some((&item[..at], &item[at + 1..]))
    })
}

/// The first `t` that is a number of seconds, and its text.
fn offered_timestamp(value: &[u8]) -> Option<(i64, &[u8])> {
    items(value)
        .filter(|(key, _)| *key == b"t")
        .find_map(|(_, text)| Some((parse_seconds(text)?, text)))
}

/// Every `v1` value, undecoded.
fn offered_v1(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    items(value)
        .filter(|(key, _)| *key == b"v1")
        .map(|(_, text)| text)
}

#[cfg(test)]
mod tests;
