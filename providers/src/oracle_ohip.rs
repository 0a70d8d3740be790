//! Oracle OHIP events as an HTTP webhook relay sends them (seed 001, "Webhook Setup Guide").
//!
//! Scheme:
//! - `x-oracle-timestamp: <unix seconds>` and `x-oracle-signature: sha256=<hex>`, where the MAC
//!   is HMAC-SHA256(secret, timestamp + "." + raw body). The secret is used as written
//!   (`whsec_…` included, as the guide's Node example does). The timestamp must be within
//!   `tolerance` (default 300 s) of porter's clock, either way, checked before the MAC.
//! - One event per request, `{eventType, eventId, hotelId, …}`; the key is `eventId` (the
//!   guide keeps processed ids 24 h and returns the cached answer for a duplicate, which is
//!   what porter's dedupe does).
//! - Routes below the source's path: `/reservations`, `/rooms`, `/housekeeping`,
//!   `/guest-requests`. The event type, not the route, decides the canonical type.
//! - The answer: `{"success":true,"data":{"message":"Webhook processed successfully",
//!   "eventId":…,"eventType":…}}`.
//!
//! What Oracle really does: OHIP itself does not push signed HTTP webhooks; business events
//! come from its streaming (WebSocket) or polling APIs. This source is for the HTTP relay the
//! seed describes; OPERA Cloud's own stream is the `oracle_ohip_stream` source
//! ([`crate::oracle_ohip_stream`], connector in the server crate's `ohip` module).

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::auth::{DEFAULT_TOLERANCE, MacHeader, check_window, timestamp_header};
use crate::diagnosis::{Scheme, SecretFormat};
use crate::event::{
    Attributes, EventBody, GuestRef, GuestRequestData, HousekeepingData, MaintenanceData, Origin,
    ReservationData, RoomData, RoomStatus, UnknownData, hashed_key,
};
use crate::json::{field, parse, time};
use crate::provider::{
    Checked, Endpoint, Normalization, Normalized, Signed, ToSign, WebhookProvider,
};
use crate::settings::{Context, SettingError, duration, require_secrets};
use crate::{Rejection, Reply, Request, Secret};
use jiff::Timestamp;

const POST: &[http::Method] = &[http::Method::POST];

/// The four routes of the guide.
const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        suffix: "/reservations",
        methods: POST,
    },
    Endpoint {
        suffix: "/rooms",
        methods: POST,
    },
    Endpoint {
        suffix: "/housekeeping",
        methods: POST,
    },
    Endpoint {
        suffix: "/guest-requests",
        methods: POST,
    },
];

const SIGNATURE: MacHeader = MacHeader::hex_sha256("x-oracle-signature", "sha256=");
const TIMESTAMP_HEADER: &str = "x-oracle-timestamp";

/// The keys an `oracle_ohip` source reads.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The relay's signing secrets; several during rotation.
    #[serde(default)]
    pub secrets: Vec<Secret>,
    /// The timestamp window (default 5 minutes).
    #[serde(default, deserialize_with = "duration")]
    pub tolerance: Option<Duration>,
}

/// A configured Oracle OHIP relay source.
#[derive(Debug)]
pub struct OracleOhip {
    secrets: Vec<Secret>,
    tolerance: Duration,
}

impl WebhookProvider for OracleOhip {
    const ID: &'static str = "oracle_ohip";
    const ENDPOINTS: &'static [Endpoint] = ENDPOINTS;
    type Settings = Settings;
    type Verified<'a> = Checked<'a>;

    fn from_settings(settings: Settings, _context: &Context) -> Result<Self, Vec<SettingError>> {
        Ok(Self {
            secrets: require_secrets(settings.secrets).map_err(|e| vec![e])?,
            tolerance: settings.tolerance.unwrap_or(DEFAULT_TOLERANCE),
        })
    }

    /// The window, then the signature over `timestamp.body`: a stale request is refused before
    /// any MAC is computed (so a forged stale one is `stale_timestamp` too; the timestamp is
    /// the caller's own input, and the answer says nothing about the secret).
    fn verify<'a>(&self, request: &Request<'a>, now: Timestamp) -> Result<Checked<'a>, Rejection> {
        let (seconds, timestamp) = timestamp_header(request, TIMESTAMP_HEADER.into())?;
        // The window before the MAC: a stale request costs no hashing.
        check_window(seconds, now, self.tolerance)?;
        SIGNATURE.verify(request, &self.secrets, &[timestamp, b".", request.body])?;
        Ok(Checked::new(request))
    }

    /// `timestamp.body` under the secrets as written, for a diagnosis of a refusal.
    fn signing_scheme<'a>(&'a self, request: &Request<'a>) -> Option<Scheme<'a>> {
        let (seconds, timestamp) = timestamp_header(request, TIMESTAMP_HEADER.into()).ok()?;
        let content = vec![
            timestamp.into(),
            b".".as_slice().into(),
            request.body.into(),
        ];
        let scheme = SIGNATURE.scheme(request, &self.secrets, SecretFormat::WhsecText, content);
        Some(scheme.timestamp(Some(seconds)))
    }

    /// One event, and the guide's answer naming it.
    fn normalize(
        &self,
        verified: Checked<'_>,
        origin: &Origin<'_>,
    ) -> Result<Normalization, Rejection> {
        let payload: Value = parse(verified.request().body)?;
        let reply = reply(&payload);
        let events = normalize_payload(verified.request(), payload, origin);
        Ok(Normalization { events, reply })
    }

    fn sign(&self, request: &ToSign<'_>) -> Signed {
        let timestamp = request.now.as_second().to_string();
        let signature = SIGNATURE.sign(
            &self.secrets[0],
            &[timestamp.as_bytes(), b".", request.body],
        );
        Signed::headers(
            request,
            vec![
                ("x-oracle-timestamp".into(), timestamp),
                ("x-oracle-signature".into(), signature),
            ],
        )
    }
}

/// The guide's answer, naming the event that was processed, members in the guide's order.
fn reply(payload: &Value) -> Reply {
    let pick = |name: &str| {
        payload
            .get(name)
            .cloned()
            .unwrap_or(Value::Null)
            .to_string()
    };
    Reply {
        status: 200,
        content_type: "application/json".to_owned(),
        body: format!(
            r#"{{"success":true,"data":{{"message":"Webhook processed successfully","eventId":{},"eventType":{}}}}}"#,
            pick("eventId"),
            pick("eventType")
        ),
        headers: Vec::new(),
    }
}

/// The events of a request (the tests' entry point).
#[cfg(test)]
pub(crate) fn normalize(
    request: &Request<'_>,
    origin: &Origin<'_>,
) -> Result<Vec<Normalized>, Rejection> {
    Ok(normalize_payload(request, parse(request.body)?, origin))
}

fn normalize_payload(
    request: &Request<'_>,
    payload: Value,
    origin: &Origin<'_>,
) -> Vec<Normalized> {
    let event_type = field(&payload, &["eventType"]);
    let event_id = field(&payload, &["eventId"]);
    let (Some(event_type), Some(event_id)) = (event_type, event_id) else {
        let attributes = Attributes {
            key: hashed_key(request.body),
            provider_event_type: field(&payload, &["eventType"]),
            property_id: field(&payload, &["hotelId"]),
            ..Attributes::default()
        };
        let data = UnknownData {
            reason: "an Oracle event needs `eventType` and `eventId`".to_owned(),
            raw: payload,
        };
        return vec![origin.event(attributes, EventBody::Unknown(data)).into()];
    };
    let attributes = Attributes {
        key: event_id,
        subject: field(&payload, &["reservationId", "roomNumber", "requestId"]),
        time: payload.get("timestamp").and_then(time),
        provider_event_type: Some(event_type.clone()),
        property_id: field(&payload, &["hotelId"]),
        delivery_id: None,
    };
    let body = body_for(&event_type, payload);
    vec![origin.event(attributes, body).into()]
}

/// The canonical event for one Oracle event type.
fn body_for(event_type: &str, payload: Value) -> EventBody {
    let text = |names: &[&str]| field(&payload, names);
    let guest = || {
        let guest = GuestRef {
            guest_id: text(&["guestId"]),
            name: text(&["guestName"]),
            first_name: text(&["firstName"]),
            last_name: text(&["lastName"]),
            ..GuestRef::default()
        };
        (guest != GuestRef::default()).then_some(guest)
    };
    let reservation = || ReservationData {
        reservation_id: text(&["reservationId"]),
        confirmation_number: text(&["confirmationNumber"]),
        status: text(&["reservationStatus", "status"]),
        guest: guest(),
        room_number: text(&["roomNumber"]),
        room_type: text(&["roomType"]),
        arrival_date: text(&["arrivalDate"]),
        departure_date: text(&["departureDate"]),
        adults: crate::json::count(&payload, &["adults"]),
        children: crate::json::count(&payload, &["children"]),
        checked_out_at: payload.get("checkoutTime").and_then(time),
        checked_in_at: payload.get("checkinTime").and_then(time),
        ..ReservationData::default()
    };
    let status = |names: &[&str]| {
        let word = text(names);
        (word.as_deref().map(RoomStatus::from_vendor), word)
    };
    match event_type {
        "RESERVATION_CREATED" => EventBody::ReservationCreated(reservation()),
        "RESERVATION_UPDATED" => EventBody::ReservationUpdated(reservation()),
        "RESERVATION_CANCELLED" | "RESERVATION_CANCELED" => {
            EventBody::ReservationCancelled(reservation())
        }
        "GUEST_CHECKIN" | "GUEST_CHECKED_IN" => EventBody::ReservationCheckedIn(reservation()),
        "GUEST_CHECKOUT" | "GUEST_CHECKED_OUT" => EventBody::ReservationCheckedOut(reservation()),
        "ROOM_STATUS_CHANGED" => {
            let (status, vendor_status) = status(&["status", "roomStatus"]);
            EventBody::RoomStatusChanged(RoomData {
                room_id: text(&["roomId"]),
                room_number: text(&["roomNumber"]),
                status,
                vendor_status,
                reason: text(&["reason"]),
                raw: None,
            })
        }
        "ROOM_MAINTENANCE_REQUIRED" => EventBody::RoomMaintenanceRequired(MaintenanceData {
            room_id: text(&["roomId"]),
            room_number: text(&["roomNumber"]),
            issue: text(&["issue", "description", "reason"]),
            priority: text(&["priority"]),
            raw: None,
        }),
        "HOUSEKEEPING_STATUS_CHANGED" => {
            let (status, vendor_status) = status(&["housekeepingStatus", "status"]);
            EventBody::HousekeepingStatusChanged(HousekeepingData {
                room_id: text(&["roomId"]),
                room_number: text(&["roomNumber"]),
                status,
                vendor_status,
                assigned_to: text(&["assignedTo", "attendant"]),
                raw: None,
            })
        }
        "GUEST_REQUEST" | "GUEST_REQUEST_CREATED" => {
            EventBody::GuestRequestCreated(GuestRequestData {
                request_id: text(&["requestId"]),
                room_number: text(&["roomNumber"]),
                reservation_id: text(&["reservationId"]),
                guest: guest(),
                category: text(&["requestType", "category"]),
                description: text(&["description"]),
                priority: text(&["priority"]),
                raw: None,
            })
        }
        other => EventBody::Unknown(UnknownData {
            reason: format!("Oracle event type `{other}` is not modelled"),
            raw: payload,
        }),
    }
}

#[cfg(test)]
mod tests;
