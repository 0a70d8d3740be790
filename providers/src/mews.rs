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
//! - POS `{data:{id, type, attributes:{…, updatedAt}}, meta:{eventType}}`. The POS documentation
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

use serde_json::Value;

use crate::auth::{Encoding, MacHeader, check_url_token};
use crate::event::{
    Attributes, Channel, EventBody, GuestData, IntegrationData, MessageData, OrderData, Origin,
    PaymentData, ReservationData, RoomData, UnknownData, hashed_key,
};
use crate::json::{field, strip_credentials};
use crate::request::HeaderValue;
use crate::signing::Algorithm;
use crate::source::{Endpoint, Normalized, SettingError, Signed, SourceSettings, ToSign};
use crate::{Rejection, Request, Secret};

/// One route.
pub const ENDPOINTS: &[Endpoint] = &[Endpoint {
    suffix: "",
    methods: &[http::Method::POST],
}];

/// The settings a `mews` source reads.
pub const SETTINGS_KEYS: &[&str] = &["url_token", "secrets"];

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

/// A configured Mews source.
#[derive(Debug)]
pub struct Mews {
    url_token: Option<Secret>,
    /// POS webhook secrets; empty when only Connector webhooks are expected.
    secrets: Vec<Secret>,
}

impl Mews {
    /// Either setting may be absent (a source for Connector or for POS webhooks only), not
    /// both; whatever is set must be valid, and every problem is reported at once.
    pub(crate) fn from_settings(settings: &SourceSettings) -> Result<Self, Vec<SettingError>> {
        if settings.url_token.is_none() && settings.secrets.is_empty() {
            return Err(vec![SettingError::new(
                "url_token",
                "required (Connector webhooks), unless `secrets` are set for POS webhooks",
            )]);
        }
        let url_token = settings
            .url_token
            .as_ref()
            .map(|_| crate::source::require_url_token(settings))
            .transpose();
        let secrets = if settings.secrets.is_empty() {
            Ok(Vec::new())
        } else {
            crate::source::require_secrets(settings)
        };
        match (url_token, secrets) {
            (Ok(url_token), Ok(secrets)) => Ok(Self { url_token, secrets }),
            (url_token, secrets) => Err(url_token.err().into_iter().chain(secrets.err()).collect()),
        }
    }

    pub(crate) fn verify(&self, request: &Request<'_>) -> Result<(), Rejection> {
        match request.single_header(POS_SIGNATURE_NAME) {
            HeaderValue::Missing => match &self.url_token {
                Some(token) => check_url_token(request, token),
                None => Err(Rejection::MissingSignature(POS_SIGNATURE_NAME.into())),
            },
            // A POS signature this source has no secret for cannot verify, and the URL token
            // is no substitute for it.
            _ if self.secrets.is_empty() => Err(Rejection::SignatureMismatch),
            _ => POS_SIGNATURE.verify(request, &self.secrets, &[request.body]),
        }
    }

    /// Signs as Mews would: a POS payload with an `X-Signature` from the first POS secret,
    /// anything else with the URL token (Connector webhooks); whichever the source has when it
    /// has only one.
    pub(crate) fn sign(&self, request: &ToSign<'_>) -> Signed {
        let pos = serde_json::from_slice::<Value>(request.body)
            .ok()
            .is_some_and(|payload| shape(&payload) == Shape::Pos);
        match (&self.url_token, self.secrets.first()) {
            (Some(token), None) => crate::source::with_url_token(request, token),
            (Some(token), Some(_)) if !pos => crate::source::with_url_token(request, token),
            (_, Some(secret)) => Signed {
                query: request.query.map(str::to_owned),
                headers: vec![(
                    "X-Signature".into(),
                    POS_SIGNATURE.sign(secret, &[request.body]),
                )],
            },
            (None, None) => Signed::default(),
        }
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
        .and_then(|m| field(m, POS_EVENT_TYPE))
        .is_some()
    {
        Shape::Pos
    } else {
        Shape::Other
    }
}

pub(crate) fn normalize(
    request: &Request<'_>,
    origin: &Origin<'_>,
) -> Result<Vec<Normalized>, Rejection> {
    let payload: Value =
        serde_json::from_slice(request.body).map_err(|e| Rejection::malformed("JSON", e))?;
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
                    general_event(entry, index, &body_key, enterprise.clone(), origin)
                })
                .collect());
        }
        Shape::Integration => {
            let action = field(&payload, &["Action"]).unwrap_or_default();
            return Ok(vec![integration_event(
                &action,
                &payload,
                request.body,
                origin,
            )]);
        }
        Shape::Pos => {
            // Mews signs POS webhooks; a POS payload that came with the URL token alone is
            // not Mews's, and must not be stored (its key would make the genuine, signed event
            // look like a duplicate). verify() has checked any `X-Signature` that is present.
            if request.single_header(POS_SIGNATURE_NAME) == HeaderValue::Missing {
                return Err(Rejection::SignatureRequired("Mews POS webhook"));
            }
            let event_type = payload
                .get("meta")
                .and_then(|m| field(m, POS_EVENT_TYPE))
                .unwrap_or_default();
            return Ok(vec![pos_event(&event_type, &payload, request.body, origin)]);
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

fn general_event(
    entry: &Value,
    index: usize,
    body_key: &str,
    enterprise: Option<String>,
    origin: &Origin<'_>,
) -> Normalized {
    let discriminator = field(entry, &["Discriminator"]);
    let id = entry.get("Value").and_then(|v| field(v, &["Id"]));
    let attributes = Attributes {
        key: hashed_key(format!("{body_key}\0{index}").as_bytes()),
        subject: id.clone(),
        time: None,
        provider_event_type: discriminator.clone(),
        property_id: enterprise,
        delivery_id: None,
    };
    let body = match discriminator.as_deref() {
        Some("ServiceOrderUpdated") => EventBody::ReservationUpdated(ReservationData {
            reservation_id: id,
            ..ReservationData::default()
        }),
        Some("CustomerAdded") => EventBody::GuestCreated(GuestData {
            guest_id: id,
            ..GuestData::default()
        }),
        Some("CustomerUpdated") => EventBody::GuestUpdated(GuestData {
            guest_id: id,
            ..GuestData::default()
        }),
        Some("ResourceUpdated") => EventBody::RoomStatusChanged(RoomData {
            room_id: id,
            ..RoomData::default()
        }),
        Some("PaymentUpdated") => EventBody::PaymentReceived(PaymentData {
            payment_id: id,
            ..PaymentData::default()
        }),
        Some("MessageAdded") if id.is_some() => EventBody::MessageReceived(MessageData {
            channel: Channel::Pms,
            message_id: id.unwrap_or_default(),
            from: None,
            to: None,
            profile_name: None,
            kind: None,
            text: None,
            media: Vec::new(),
            location: None,
            contacts: Vec::new(),
            selection: None,
            reaction: None,
            replied_to: None,
            account_id: None,
        }),
        other => {
            let mut raw = entry.clone();
            strip_credentials(&mut raw);
            EventBody::Unknown(UnknownData {
                reason: match other {
                    Some(other) => format!("Mews event `{other}` is not modelled"),
                    None => "a Mews event entry needs `Discriminator`".to_owned(),
                },
                raw,
            })
        }
    };
    origin.event(attributes, body).into()
}

fn integration_event(
    action: &str,
    payload: &Value,
    body: &[u8],
    origin: &Origin<'_>,
) -> Normalized {
    let data = payload.get("Data").cloned().unwrap_or(Value::Null);
    let mut raw = data.clone();
    strip_credentials(&mut raw);
    let attributes = Attributes {
        // The body holds a credential; its hash reveals nothing of it.
        key: hashed_key(body),
        subject: data
            .pointer("/Integration/Id")
            .and_then(crate::json::text_of),
        time: data
            .get("CreatedUtc")
            .or_else(|| data.get("DeletedUtc"))
            .and_then(crate::json::time),
        provider_event_type: Some(action.to_owned()),
        property_id: data
            .pointer("/Enterprise/Id")
            .and_then(crate::json::text_of),
        delivery_id: None,
    };
    let event = EventBody::IntegrationChanged(IntegrationData {
        action: Some(action.to_owned()),
        integration_id: data
            .pointer("/Integration/Id")
            .and_then(crate::json::text_of),
        integration_name: data
            .pointer("/Integration/Name")
            .and_then(crate::json::text_of),
        enterprise_id: data
            .pointer("/Enterprise/Id")
            .and_then(crate::json::text_of),
        enabled: data.get("IsEnabled").and_then(Value::as_bool),
        detail: None,
        raw: Some(raw),
    });
    origin.event(attributes, event).into()
}

/// Where a POS message names its event type: the current documentation's `eventType`, then the
/// `event_type` of its earlier revisions.
const POS_EVENT_TYPE: &[&str] = &["eventType", "event_type"];

fn pos_event(event_type: &str, payload: &Value, body: &[u8], origin: &Origin<'_>) -> Normalized {
    let data = payload.get("data").filter(|d| d.is_object());
    let id = data.and_then(|d| field(d, &["id"]));
    let attributes_json = data
        .and_then(|d| d.get("attributes"))
        .filter(|a| a.is_object());
    let updated = attributes_json.and_then(|a| field(a, &["updatedAt"]));
    let key = match (&id, &updated) {
        // The event type, the entity and the moment it changed: a redelivery is a duplicate; the
        // next change of the same order, or another event type about it, is not.
        (Some(id), Some(updated)) => {
            hashed_key(format!("{event_type}\0{id}\0{updated}").as_bytes())
        }
        // Without both, only the exact bytes identify the message.
        _ => hashed_key(body),
    };
    let attributes = Attributes {
        key,
        subject: id.clone(),
        time: attributes_json
            .and_then(|a| a.get("updatedAt"))
            .and_then(crate::json::time),
        provider_event_type: Some(event_type.to_owned()),
        property_id: None,
        delivery_id: None,
    };
    let unknown = |reason: String| {
        let mut raw = payload.clone();
        strip_credentials(&mut raw);
        EventBody::Unknown(UnknownData { reason, raw })
    };
    let body = match (event_type, &id) {
        ("order.status.updated", Some(_)) => EventBody::OrderUpdated(OrderData {
            order_id: id,
            status: attributes_json.and_then(|a| field(a, &["status"])),
            ..OrderData::default()
        }),
        ("order.status.updated", None) => {
            unknown("a Mews POS `order.status.updated` needs `data.id`".to_owned())
        }
        (other, _) => unknown(format!("Mews POS event `{other}` is not modelled")),
    };
    origin.event(attributes, body).into()
}

#[cfg(test)]
mod tests;
