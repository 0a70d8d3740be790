//! Mews webhooks: Connector API "General Webhooks" and "Integration Webhooks"
//! (`MewsSystems/gitbook-connector-api` events/wh-general.md, wh-integration.md, wh-faq.md), and
//! POS API webhooks (`MewsSystems/gitbook-pos-api` events/webhooks.md, wh-security.md).
//!
//! Authentication:
//! - Connector webhooks carry no signature. Mews appends the partner's token to the URL it was
//!   given (`?Token=…`); the source's `url_token` is compared with it in constant time.
//! - POS webhooks carry `X-Signature: base64(HMAC-SHA256(secret, raw body))`, verified against
//!   the source's `secrets`. When that header is present it must verify: there is no falling
//!   back to the URL token, so a forged signature cannot ride on a leaked URL.
//! - A request authenticated by the URL token alone may carry only the Connector shapes
//!   (General, Integration). A POS-shaped body without `X-Signature` is refused
//!   (`signature_required`, 401): anyone holding the URL could otherwise store POS events, and
//!   their keys would make the genuine, signed ones look like duplicates.
//!
//! Shapes, recognised by their members:
//! - General `{EnterpriseId, IntegrationId, Events:[{Discriminator, Value:{Id}}]}`: thin
//!   notifications (an entity id and nothing else; consumers fetch the entity from Mews), one
//!   event per entry. Mews sends no event id or time, so only an exact redelivery can be
//!   recognised: the key hashes the whole body and the entry's position.
//! - Integration `{Action, Data}` → `integration.changed`. `Data` holds the integration's
//!   `AccessToken` or a new `ApiKey`: credentials are removed before anything is kept.
//! - POS `{data:{id, type, attributes:{…, updatedAt}}, meta:{eventType}}` (in `pos.rs`; the
//!   Connector shapes are in `connector.rs`). The POS documentation
//!   renamed `meta.event_type` to `meta.eventType` in 2025; both are read. Only
//!   `order.status.updated` is modelled: `booking.status.updated` is about restaurant tables,
//!   not hotel reservations, and the other POS events have no canonical type.
//!
//! What Mews really does: it expects an answer within 5 seconds, re-sends a failed message
//! "after a few minutes" and discards it after repeated failures (the exact count is not
//! documented). General webhooks lag the change by minutes, "Added" implies "Updated" (a new
//! customer usually produces both, often in one message), and a message batches everything
//! that happened at once, up to hundreds of entries.

use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

use crate::auth::{BodyMac, Encoding, MacHeader, UrlToken};
use crate::diagnosis::Scheme;
use crate::event::{Attributes, EventBody, Origin, UnknownData, hashed_key};
use crate::json::{field, strip_credentials};
use crate::provider::{
    Endpoint, Guard, Normalization, Normalized, POST_ONLY, Signed, ToSign, WebhookProvider,
};
use crate::request::HeaderValue;
use crate::settings::{Context, SettingError, require_secrets};
use crate::signing::Algorithm;
use crate::{Rejection, Request, Secret};

mod connector;
mod pos;

/// The dedupe window when the source sets none. Mews notifications carry no id or time, so two
/// real changes of one customer minutes apart produce identical bodies; remembering keys for a
/// day would swallow the second. Mews retries a failed message "after a few minutes", and a
/// duplicate thin notification is harmless (the consumer fetches the entity again).
pub const DEFAULT_DEDUPE_TTL: Duration = Duration::from_secs(15 * 60);

const POS_SIGNATURE_NAME: &str = "x-signature";
const POS_SIGNATURE: MacHeader = MacHeader {
    name: std::borrow::Cow::Borrowed(POS_SIGNATURE_NAME),
    prefix: std::borrow::Cow::Borrowed(""),
    encoding: Encoding::Base64,
    algorithm: Algorithm::Sha256,
};

/// The keys a `mews` source reads: either or both.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Connector webhooks: the token in the URL given to Mews.
    pub url_token: Option<Secret>,
    /// POS webhooks: the `X-Signature` secrets; several during rotation.
    #[serde(default)]
    pub secrets: Vec<Secret>,
}

/// A configured Mews source.
#[derive(Debug)]
pub struct Mews {
    /// Connector webhooks; absent when only POS webhooks are expected.
    token: Option<UrlToken>,
    /// POS webhooks; absent when only Connector webhooks are expected.
    pos: Option<BodyMac>,
}

/// A verified Mews request, and how it was authenticated.
#[derive(Debug)]
pub struct Verified<'a> {
    request: Request<'a>,
    /// By a valid `X-Signature` (POS), rather than by the URL token alone.
    signed: bool,
}

impl WebhookProvider for Mews {
    const ID: &'static str = "mews";
    const ENDPOINTS: &'static [Endpoint] = POST_ONLY;
    const DEFAULT_DEDUPE_TTL: Option<Duration> = Some(DEFAULT_DEDUPE_TTL);
    type Settings = Settings;
    type Verified<'a> = Verified<'a>;

    /// Either setting may be absent (a source for Connector or for POS webhooks only), not
    /// both; whatever is set must be valid, and every problem is reported at once.
    fn from_settings(settings: Settings, _context: &Context) -> Result<Self, Vec<SettingError>> {
        if settings.url_token.is_none() && settings.secrets.is_empty() {
            return Err(vec![SettingError::new(
                "url_token",
                "required (Connector webhooks), unless `secrets` are set for POS webhooks",
            )]);
        }
        let token = settings
            .url_token
            .map(|token| UrlToken::from_setting(Some(token)))
            .transpose();
        let pos = if settings.secrets.is_empty() {
            Ok(None)
        } else {
            require_secrets(settings.secrets)
                .map(|secrets| Some(BodyMac::new(POS_SIGNATURE, secrets)))
        };
        match (token, pos) {
            (Ok(token), Ok(pos)) => Ok(Self { token, pos }),
            (token, pos) => Err(token.err().into_iter().chain(pos.err()).collect()),
        }
    }

    fn verify<'a>(&self, request: &Request<'a>, now: Timestamp) -> Result<Verified<'a>, Rejection> {
        let signed = match (
            request.single_header(POS_SIGNATURE_NAME),
            &self.token,
            &self.pos,
        ) {
            (HeaderValue::Missing, Some(token), _) => {
                token.check(request, now)?;
                false
            }
            (HeaderValue::Missing, None, _) => {
                return Err(Rejection::MissingSignature(POS_SIGNATURE_NAME.into()));
            }
            // A POS signature this source has no secret for cannot verify, and the URL token
            // is no substitute for it.
            (_, _, None) => return Err(Rejection::SignatureMismatch),
            (_, _, Some(pos)) => {
                pos.check(request, now)?;
                true
            }
        };
        Ok(Verified {
            request: *request,
            signed,
        })
    }

    fn normalize(
        &self,
        verified: Verified<'_>,
        origin: &Origin<'_>,
    ) -> Result<Normalization, Rejection> {
        normalize(&verified.request, verified.signed, origin).map(Normalization::accepted)
    }

    /// Signs as Mews would: a POS payload with an `X-Signature` from the first POS secret,
    /// anything else with the URL token (Connector webhooks); whichever the source has when it
    /// has only one.
    fn sign(&self, request: &ToSign<'_>) -> Signed {
        let pos = serde_json::from_slice::<Value>(request.body)
            .ok()
            .is_some_and(|payload| shape(&payload) == Shape::Pos);
        match (&self.token, &self.pos) {
            (Some(token), None) => token.sign(request),
            (Some(token), Some(_)) if !pos => token.sign(request),
            (_, Some(mac)) => mac.sign(request),
            (None, None) => Signed::default(),
        }
    }

    /// The POS signature, where this source has POS secrets (the URL token is no scheme).
    fn signing_scheme<'a>(&'a self, request: &Request<'a>) -> Option<Scheme<'a>> {
        self.pos.as_ref().and_then(|pos| pos.scheme(request))
    }
}

/// The kinds of Mews payload, told apart by their members (in this order of precedence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    General,
    Integration,
    Pos,
    Other,
}

fn shape(payload: &Value) -> Shape {
    if payload
        .get("Events")
        .and_then(Value::as_array)
        .is_some_and(|e| !e.is_empty())
    {
        Shape::General
    } else if field(payload, &["Action"]).is_some() {
        Shape::Integration
    } else if payload
        .get("meta")
        .and_then(|m| field(m, pos::POS_EVENT_TYPE))
        .is_some()
    {
        Shape::Pos
    } else {
        Shape::Other
    }
}

/// The events of a request; `signed` says whether a POS signature authenticated it.
pub(crate) fn normalize(
    request: &Request<'_>,
    signed: bool,
    origin: &Origin<'_>,
) -> Result<Vec<Normalized>, Rejection> {
    let payload: Value = crate::json::parse(request.body)?;
    match shape(&payload) {
        Shape::General => {
            let entries = payload["Events"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            let enterprise = field(&payload, &["EnterpriseId"]);
            // The body is hashed once, not once per entry: a message may batch hundreds.
            let body_key = hashed_key(request.body);
            return Ok(entries
                .iter()
                .enumerate()
                .map(|(index, entry)| {
                    connector::general_event(entry, index, &body_key, enterprise.clone(), origin)
                })
                .collect());
        }
        Shape::Integration => {
            let action = field(&payload, &["Action"]).unwrap_or_default();
            return Ok(vec![connector::integration_event(
                &action,
                &payload,
                request.body,
                origin,
            )]);
        }
        Shape::Pos => {
            // Mews signs POS webhooks; a POS payload that came with the URL token alone is
            // not Mews's, and must not be stored (its key would make the genuine, signed event
            // look like a duplicate).
            if !signed {
                return Err(Rejection::SignatureRequired("Mews POS webhook"));
            }
            let event_type = payload
                .get("meta")
                .and_then(|m| field(m, pos::POS_EVENT_TYPE))
                .unwrap_or_default();
            return Ok(vec![pos::pos_event(
                &event_type,
                &payload,
                request.body,
                origin,
            )]);
        }
        Shape::Other => {}
    }
    let mut raw = payload;
    strip_credentials(&mut raw);
    let attributes = Attributes {
        key: hashed_key(request.body),
        ..Attributes::default()
    };
    let data = UnknownData {
        reason: "not a Mews General, Integration or POS webhook".to_owned(),
        raw,
    };
    Ok(vec![
        origin.event(attributes, EventBody::Unknown(data)).into(),
    ])
}

#[cfg(test)]
mod tests;
