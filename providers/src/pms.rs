//! The generic PMS endpoints of a guest-messaging platform (seed 003, "PMS").
//!
//! Routes below the source's path: `/guests`, `/reservations`, `/events`. Authentication is a
//! shared secret, sent as `X-Webhook-Secret: <secret>` or `Authorization: Bearer <secret>`,
//! compared in constant time against every configured secret. The seed's "if no secret is
//! configured, requests are allowed" exists only as an explicit `insecure_allow_unsigned =
//! true`, which `porter serve` warns about at every start; it cannot be combined with secrets.
//!
//! `/guests` and `/reservations` carry a snapshot of the entity with no id of the delivery and
//! no time, so their key hashes the route and the snapshot's content: the same snapshot sent
//! again within the dedupe window is the same notification. `/events` carries
//! `{type, source, timestamp, data}`; its key hashes the type, the timestamp and the data.

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::auth::shared_secret_in_header;
use crate::event::{
    Attributes, EventBody, GuestData, GuestRef, Origin, Preference, ReservationData, RoomData,
    RoomStatus, UnknownData, hashed_key,
};
use crate::json::{canonical, count, field, money, raw_member, time, value_of};
use crate::provider::{
    Checked, Endpoint, Normalization, Normalized, Signed, ToSign, WebhookProvider,
};
use crate::settings::{Context, SettingError, require_secrets};
use crate::{Rejection, Request, Secret};

const POST: &[http::Method] = &[http::Method::POST];

/// The seed's three routes.
const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        suffix: "/guests",
        methods: POST,
    },
    Endpoint {
        suffix: "/reservations",
        methods: POST,
    },
    Endpoint {
        suffix: "/events",
        methods: POST,
    },
];

/// The keys a `pms` source reads.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Shared secrets; several during rotation.
    #[serde(default)]
    pub secrets: Vec<Secret>,
    /// Accept requests without any secret (development only; warned about at every start).
    #[serde(default)]
    pub insecure_allow_unsigned: bool,
}

/// A configured generic PMS source.
#[derive(Debug)]
pub struct Pms {
    /// Empty only when `insecure_allow_unsigned` is set.
    secrets: Vec<Secret>,
}

impl WebhookProvider for Pms {
    const ID: &'static str = "pms";
    const ENDPOINTS: &'static [Endpoint] = ENDPOINTS;
    type Settings = Settings;
    type Verified<'a> = Checked<'a>;

    fn from_settings(settings: Settings, _context: &Context) -> Result<Self, Vec<SettingError>> {
        match (
            settings.secrets.is_empty(),
            settings.insecure_allow_unsigned,
        ) {
            (true, true) => Ok(Self {
                secrets: Vec::new(),
            }),
            (false, true) => Err(vec![SettingError::new(
                "insecure_allow_unsigned",
                "cannot be combined with secrets: remove one of them",
            )]),
            (_, false) => Ok(Self {
                secrets: require_secrets(settings.secrets).map_err(|e| {
                    vec![SettingError::new(
                        e.key,
                        format!(
                            "{} (or, for development only, insecure_allow_unsigned = true)",
                            e.problem
                        ),
                    )]
                })?,
            }),
        }
    }

    /// Whether requests without a secret are accepted.
    fn allows_unsigned(&self) -> bool {
        self.secrets.is_empty()
    }

    fn verify<'a>(&self, request: &Request<'a>, _now: Timestamp) -> Result<Checked<'a>, Rejection> {
        if self.allows_unsigned() {
            return Ok(Checked::new(request));
        }
        let header = shared_secret_in_header(request, "x-webhook-secret", None, &self.secrets);
        let bearer =
            shared_secret_in_header(request, "authorization", Some("Bearer"), &self.secrets);
        match (header, bearer) {
            // Whichever is sent must be right; sending a wrong one beside a right one is refused.
            (Some(true), None | Some(true)) | (None, Some(true)) => Ok(Checked::new(request)),
            (None, None) => Err(Rejection::MissingSignature("x-webhook-secret".into())),
            _ => Err(Rejection::BadSharedSecret),
        }
    }

    fn normalize(
        &self,
        verified: Checked<'_>,
        origin: &Origin<'_>,
    ) -> Result<Normalization, Rejection> {
        normalize(verified.request(), origin).map(Normalization::accepted)
    }

    fn sign(&self, request: &ToSign<'_>) -> Signed {
        Signed {
            query: request.query.map(str::to_owned),
            headers: self
                .secrets
                .first()
                .map(|secret| vec![("X-Webhook-Secret".into(), secret.expose().to_owned())])
                .unwrap_or_default(),
            body: None,
        }
    }
}

pub(crate) fn normalize(
    request: &Request<'_>,
    origin: &Origin<'_>,
) -> Result<Vec<Normalized>, Rejection> {
    let raw: &RawValue = crate::json::parse_raw(request.body)?;
    let payload = value_of(raw);
    let (attributes, body) = match request.endpoint {
        "/guests" => (
            snapshot_attributes("guests", &payload, field(&payload, &["externalId"])),
            EventBody::GuestUpdated(guest(&payload)),
        ),
        "/reservations" => (
            snapshot_attributes("reservations", &payload, field(&payload, &["externalId"])),
            reservation_body(
                field(&payload, &["status"]).as_deref(),
                reservation(&payload, Some(raw)),
            ),
        ),
        _ => event(&payload, raw),
    };
    Ok(vec![origin.event(attributes, body).into()])
}

fn snapshot_attributes(route: &str, payload: &Value, subject: Option<String>) -> Attributes {
    Attributes {
        key: hashed_key(format!("{route}\0{}", canonical(payload)).as_bytes()),
        subject,
        time: None,
        provider_event_type: Some(route.to_owned()),
        property_id: None,
        delivery_id: None,
    }
}

/// `/events`: `{type, source, timestamp, data: {reservation, guest}}`.
fn event(payload: &Value, raw: &RawValue) -> (Attributes, EventBody) {
    let event_type = field(payload, &["type"]);
    let data = payload.get("data").cloned().unwrap_or(Value::Null);
    let key = match &event_type {
        Some(t) => {
            let timestamp = field(payload, &["timestamp"]).unwrap_or_default();
            hashed_key(format!("{t}\0{timestamp}\0{}", canonical(&data)).as_bytes())
        }
        None => hashed_key(canonical(payload).as_bytes()),
    };
    let reservation_value = data.get("reservation").cloned().unwrap_or(Value::Null);
    let guest_value = data.get("guest").cloned().unwrap_or(Value::Null);
    let raw_reservation = raw_member(raw, "data").and_then(|d| raw_member(d, "reservation"));
    let mut with_guest = reservation(&reservation_value, raw_reservation);
    if with_guest.guest.is_none() && guest_value.is_object() {
        with_guest.guest = Some(guest_ref(&guest_value));
    }
    let attributes = Attributes {
        key,
        subject: field(&reservation_value, &["externalId"])
            .or_else(|| field(&guest_value, &["externalId"])),
        time: payload.get("timestamp").and_then(time),
        provider_event_type: event_type.clone(),
        property_id: None,
        delivery_id: None,
    };
    let body = match event_type.as_deref() {
        Some("reservation.created") => EventBody::ReservationCreated(with_guest),
        Some("reservation.updated") => EventBody::ReservationUpdated(with_guest),
        Some("reservation.cancelled") => EventBody::ReservationCancelled(with_guest),
        Some("guest.checked_in") => EventBody::ReservationCheckedIn(with_guest),
        Some("guest.checked_out") => EventBody::ReservationCheckedOut(with_guest),
        Some("guest.updated") => EventBody::GuestUpdated(guest(&guest_value)),
        Some("room.status_changed") => {
            let room = data.get("room").unwrap_or(&data);
            let word = field(room, &["status"]);
            EventBody::RoomStatusChanged(RoomData {
                room_id: field(room, &["externalId", "id"]),
                room_number: field(room, &["roomNumber", "number"]),
                status: word.as_deref().map(RoomStatus::from_vendor),
                vendor_status: word,
                ..RoomData::default()
            })
        }
        other => EventBody::Unknown(UnknownData {
            reason: match other {
                Some(other) => format!("PMS event type `{other}` is not modelled"),
                None => "a PMS event needs `type`".to_owned(),
            },
            raw: payload.clone(),
        }),
    };
    (attributes, body)
}

fn reservation_body(status: Option<&str>, data: ReservationData) -> EventBody {
    match status.map(str::to_ascii_lowercase).as_deref() {
        Some("cancelled" | "canceled") => EventBody::ReservationCancelled(data),
        Some("checked_in") => EventBody::ReservationCheckedIn(data),
        Some("checked_out") => EventBody::ReservationCheckedOut(data),
        _ => EventBody::ReservationUpdated(data),
    }
}

fn guest_ref(value: &Value) -> GuestRef {
    GuestRef {
        guest_id: field(value, &["externalId"]),
        first_name: field(value, &["firstName"]),
        last_name: field(value, &["lastName"]),
        email: field(value, &["email"]),
        phone: field(value, &["phone"]),
        ..GuestRef::default()
    }
}

fn guest(value: &Value) -> GuestData {
    GuestData {
        guest_id: field(value, &["externalId"]),
        first_name: field(value, &["firstName"]),
        last_name: field(value, &["lastName"]),
        email: field(value, &["email"]),
        phone: field(value, &["phone"]),
        language: field(value, &["language"]),
        loyalty_tier: field(value, &["loyaltyTier"]),
        vip_status: field(value, &["vipStatus"]),
        preferences: value
            .get("preferences")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|p| {
                        Some(Preference {
                            category: field(p, &["category"])?,
                            value: field(p, &["value"])?,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default(),
        ..GuestData::default()
    }
}

/// A reservation snapshot; money is read from `raw` (the same object as JSON text), digit for
/// digit.
fn reservation(value: &Value, raw: Option<&RawValue>) -> ReservationData {
    let guest = value.get("guest").filter(|g| g.is_object()).map(guest_ref);
    ReservationData {
        reservation_id: field(value, &["externalId"]),
        confirmation_number: field(value, &["confirmationNumber"]),
        status: field(value, &["status"]),
        guest,
        room_number: field(value, &["roomNumber"]),
        room_type: field(value, &["roomType"]),
        arrival_date: field(value, &["arrivalDate"]),
        departure_date: field(value, &["departureDate"]),
        adults: count(value, &["adults"]),
        children: count(value, &["children"]),
        rate_code: field(value, &["rateCode"]),
        total: raw
            .and_then(|raw| raw_member(raw, "totalRate"))
            .and_then(|amount| money(amount, field(value, &["currency"]), false)),
        special_requests: value
            .get("specialRequests")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|r| r.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        booking_source: field(value, &["source"]),
        ..ReservationData::default()
    }
}

#[cfg(test)]
mod tests;
