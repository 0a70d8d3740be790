//! Guesty Open API webhooks (open-api-docs.guesty.com: webhooks, reservation webhooks,
//! message webhooks, the reservation webhooks migration guide).
//!
//! Guesty's signing is not stated in one public place, so porter takes both readings and the
//! source says which (`scheme`):
//! - `svix` (default): Svix's headers, `svix-id`, `svix-timestamp`, `svix-signature: v1,<base64
//!   HMAC-SHA256(key, id.timestamp.body)>`, the key being the base64 after `whsec_` of the
//!   secret Guesty returns (`GET /v1/webhooks-v2/secret`): Standard Webhooks with Svix's names,
//!   verified by the same code as the `standard_webhooks` provider (window `tolerance`, 300 s).
//! - `signature_v2`: `X-Guesty-Signature-V2: <hex HMAC-SHA256(secret, raw body)>`, no
//!   timestamp.
//!
//! The key is `meta.eventId` where Guesty sends one, else the signed `svix-id`, else a hash of
//! the body. Mapping: `reservation.new` and `reservation.created.v2` → `reservation.created`;
//! `reservation.updated` and `reservation.updated.v2` → by `reservation.status`: `canceled`,
//! `declined`, `expired` → `reservation.cancelled`, `checked_in` / `checked_out` →
//! `reservation.checked_in` / `checked_out`, else `reservation.updated`;
//! `reservation.messageReceived` → `message.received` (channel `pms`: the conversation lives in
//! Guesty); everything else (listings, `messageSent`, tasks) → `unknown`, the payload kept.

use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

use crate::auth::{BodyMac, MacHeader};
use crate::diagnosis::Scheme;
use crate::event::{
    Attributes, Channel, EventBody, GuestRef, MessageData, MessageKind, Origin, ReservationData,
    UnknownData, hashed_key,
};
use crate::json::{field, time};
use crate::provider::{
    Checked, Endpoint, Guard, Normalization, POST_ONLY, Signed, ToSign, WebhookProvider,
};
use crate::settings::{Context, SettingError, duration, require_secrets};
use crate::standard_webhooks::StandardWebhooks;
use crate::{Rejection, Request, Secret};

const SIGNATURE_V2: MacHeader = MacHeader::hex_sha256("x-guesty-signature-v2", "");

/// The keys a `guesty` source reads.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `whsec_…` secrets (`svix`), or the signing secret (`signature_v2`).
    #[serde(default)]
    pub secrets: Vec<Secret>,
    /// The timestamp window of the `svix` scheme (default 5 minutes).
    #[serde(default, deserialize_with = "duration")]
    pub tolerance: Option<Duration>,
    /// `svix` (default) or `signature_v2`.
    pub scheme: Option<String>,
}

/// How a configured source verifies.
#[derive(Debug)]
enum Verifier {
    Svix(Box<StandardWebhooks>),
    SignatureV2(BodyMac),
}

/// A configured Guesty source.
#[derive(Debug)]
pub struct Guesty {
    verifier: Verifier,
}

impl WebhookProvider for Guesty {
    const ID: &'static str = "guesty";
    const ENDPOINTS: &'static [Endpoint] = POST_ONLY;
    type Settings = Settings;
    type Verified<'a> = Checked<'a>;

    fn from_settings(settings: Settings, context: &Context) -> Result<Self, Vec<SettingError>> {
        let verifier = match settings.scheme.as_deref() {
            None | Some("svix") => Verifier::Svix(Box::new(StandardWebhooks::from_settings(
                crate::standard_webhooks::Settings {
                    secrets: settings.secrets,
                    tolerance: settings.tolerance,
                    ..Default::default()
                },
                context,
            )?)),
            Some("signature_v2") => Verifier::SignatureV2(BodyMac::new(
                SIGNATURE_V2,
                require_secrets(settings.secrets).map_err(|e| vec![e])?,
            )),
            Some(other) => {
                return Err(vec![SettingError::new(
                    "scheme",
                    format!("`{other}`: expected `svix` or `signature_v2`"),
                )]);
            }
        };
        Ok(Self { verifier })
    }

    fn verify<'a>(&self, request: &Request<'a>, now: Timestamp) -> Result<Checked<'a>, Rejection> {
        match &self.verifier {
            Verifier::Svix(svix) => svix.verify(request, now),
            Verifier::SignatureV2(mac) => mac.check(request, now).map(|()| Checked::new(request)),
        }
    }

    fn signing_scheme<'a>(&'a self, request: &Request<'a>) -> Option<Scheme<'a>> {
        match &self.verifier {
            Verifier::Svix(svix) => svix.signing_scheme(request),
            Verifier::SignatureV2(mac) => mac.scheme(request),
        }
    }

    /// Signed as Guesty sends it: with Svix's header names, or the V2 header.
    fn sign(&self, request: &ToSign<'_>) -> Signed {
        match &self.verifier {
            Verifier::Svix(svix) => {
                let mut signed = svix.sign(request);
                for (name, _) in &mut signed.headers {
                    if let Some(rest) = name.strip_prefix("webhook-") {
                        *name = format!("svix-{rest}");
                    }
                }
                signed
            }
            Verifier::SignatureV2(mac) => mac.sign(request),
        }
    }

    fn normalize(
        &self,
        verified: Checked<'_>,
        origin: &Origin<'_>,
    ) -> Result<Normalization, Rejection> {
        let request = verified.request();
        let payload: Value = crate::json::parse(request.body)?;
        let event = field(&payload, &["event"]);
        let signed_id = match &self.verifier {
            // Verified present once, visible ASCII, and signed.
            Verifier::Svix(_) => request
                .header_str("svix-id")
                .or_else(|| request.header_str("webhook-id"))
                .map(str::to_owned),
            Verifier::SignatureV2(_) => None,
        };
        let key = payload
            .pointer("/meta/eventId")
            .and_then(crate::json::text_of)
            .or(signed_id)
            .unwrap_or_else(|| hashed_key(request.body));
        let reservation = payload.get("reservation").unwrap_or(&Value::Null);
        let attributes = Attributes {
            key,
            subject: field(reservation, &["_id"])
                .or_else(|| field(&payload, &["reservationId"]))
                .or_else(|| payload.get("listing").and_then(|l| field(l, &["_id"]))),
            time: payload
                .get("publishedAt")
                .or_else(|| reservation.get("lastUpdatedAt"))
                .and_then(time),
            provider_event_type: event.clone(),
            property_id: field(reservation, &["listingId"]),
            delivery_id: None,
        };
        let body = body_for(event.as_deref(), &payload, reservation);
        Ok(Normalization::accepted(vec![
            origin.event(attributes, body).into(),
        ]))
    }
}

fn body_for(event: Option<&str>, payload: &Value, reservation: &Value) -> EventBody {
    let data = || ReservationData {
        reservation_id: field(reservation, &["_id"]),
        confirmation_number: field(reservation, &["confirmationCode"]),
        status: field(reservation, &["status"]),
        guest: reservation.get("guest").and_then(|guest| {
            Some(GuestRef {
                guest_id: field(guest, &["_id"]).or_else(|| field(reservation, &["guestId"])),
                name: field(guest, &["fullName"]),
                first_name: field(guest, &["firstName"]),
                last_name: field(guest, &["lastName"]),
                email: field(guest, &["email"]),
                phone: field(guest, &["phone"]),
            })
            .filter(|g| g.guest_id.is_some() || g.name.is_some())
        }),
        room_id: field(reservation, &["listingId"]),
        arrival_date: field(reservation, &["checkInDateLocalized"]),
        departure_date: field(reservation, &["checkOutDateLocalized"]),
        nights: crate::json::count(reservation, &["nightsCount"]),
        booking_source: field(reservation, &["source"]),
        raw: Some(payload.clone()),
        ..ReservationData::default()
    };
    let status = field(reservation, &["status"]).map(|s| s.to_ascii_lowercase());
    match event {
        Some("reservation.new" | "reservation.created.v2") => EventBody::ReservationCreated(data()),
        Some("reservation.updated" | "reservation.updated.v2") => match status.as_deref() {
            Some("canceled" | "cancelled" | "declined" | "expired") => {
                EventBody::ReservationCancelled(data())
            }
            Some("checked_in") => EventBody::ReservationCheckedIn(data()),
            Some("checked_out") => EventBody::ReservationCheckedOut(data()),
            _ => EventBody::ReservationUpdated(data()),
        },
        Some("reservation.messageReceived") => {
            let message = payload.get("message").unwrap_or(&Value::Null);
            match field(message, &["_id", "id"]) {
                Some(message_id) => EventBody::MessageReceived(MessageData {
                    channel: Channel::Pms,
                    message_id,
                    from: payload
                        .pointer("/conversation/guestId")
                        .and_then(crate::json::text_of),
                    to: None,
                    profile_name: None,
                    kind: Some(MessageKind::Text),
                    text: field(message, &["body"]),
                    media: Vec::new(),
                    location: None,
                    contacts: Vec::new(),
                    selection: None,
                    reaction: None,
                    replied_to: None,
                    account_id: field(payload, &["accountId"]),
                }),
                None => unknown("a Guesty message without an id".to_owned(), payload),
            }
        }
        Some(other) => unknown(format!("Guesty event `{other}` is not modelled"), payload),
        None => unknown("a Guesty webhook needs `event`".to_owned(), payload),
    }
}

fn unknown(reason: String, payload: &Value) -> EventBody {
    EventBody::Unknown(UnknownData {
        reason,
        raw: payload.clone(),
    })
}

#[cfg(test)]
mod tests;
