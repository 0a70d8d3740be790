//! A hotel PMS Web API's outbound webhooks (seed 000, "Webhook Configuration and Usage").
//!
//! Scheme: `X-Webhook-Signature: <hex HMAC-SHA256(secret, raw body)>`, compared without regard
//! to hex case (the seed's C# compares `OrdinalIgnoreCase`). No timestamp is signed. The seed's
//! C# example re-serialises the parsed payload before computing the MAC, which no receiver can
//! reproduce byte for byte; porter verifies the raw body, as the seed's own "read raw request
//! body" example does.
//!
//! Envelope `{event, timestamp, data, metadata}`: `guest.*` and `reservation.*` map to the
//! same canonical types; `service.token_expired` and `service.access_revoked` become
//! `integration.changed`. The seed names no event id ("use event ID or timestamp"), so the key
//! is a hash of the event name, its timestamp and its data.

use serde::Deserialize;
use serde_json::Value;

use crate::auth::{BodyMac, MacHeader};
use crate::event::{
    Attributes, EventBody, GuestData, IntegrationData, Origin, ReservationData, UnknownData,
    hashed_key,
};
use crate::json::{canonical, field, time};
use crate::provider::{Checked, GuardedProvider, Normalization, Normalized};
use crate::settings::{Context, SettingError, require_secrets};
use crate::{Rejection, Request, Secret};

const SIGNATURE: MacHeader = MacHeader::hex_sha256("x-webhook-signature", "");

/// The keys a `pms_web_api` source reads.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Signing secrets; several during rotation.
    #[serde(default)]
    pub secrets: Vec<Secret>,
}

/// A configured PMS Web API source.
#[derive(Debug)]
pub struct PmsWebApi {
    mac: BodyMac,
}

impl GuardedProvider for PmsWebApi {
    const ID: &'static str = "pms_web_api";
    type Settings = Settings;
    type Guard = BodyMac;

    fn configure(settings: Settings, _context: &Context) -> Result<Self, Vec<SettingError>> {
        Ok(Self {
            mac: BodyMac::new(
                SIGNATURE,
                require_secrets(settings.secrets).map_err(|e| vec![e])?,
            ),
        })
    }

    fn guard(&self) -> &BodyMac {
        &self.mac
    }

    fn read(&self, checked: Checked<'_>, origin: &Origin<'_>) -> Result<Normalization, Rejection> {
        normalize(checked.request(), origin).map(Normalization::accepted)
    }
}

pub(crate) fn normalize(
    request: &Request<'_>,
    origin: &Origin<'_>,
) -> Result<Vec<Normalized>, Rejection> {
    let payload: Value = crate::json::parse(request.body)?;
    let event = field(&payload, &["event"]);
    let data = payload.get("data").cloned().unwrap_or(Value::Null);
    let timestamp = field(&payload, &["timestamp"]).unwrap_or_default();
    let key = match &event {
        Some(event) => hashed_key(format!("{event}\0{timestamp}\0{}", canonical(&data)).as_bytes()),
        None => hashed_key(request.body),
    };
    let attributes = Attributes {
        key,
        subject: subject(event.as_deref(), &data),
        time: payload.get("timestamp").and_then(time),
        provider_event_type: event.clone(),
        property_id: field(&data, &["hotelCode"]),
        delivery_id: None,
    };
    let body = match event.as_deref() {
        Some(event) => body_for(event, &data, &payload),
        None => EventBody::Unknown(UnknownData {
            reason: "a PMS Web API webhook needs `event`".to_owned(),
            raw: payload.clone(),
        }),
    };
    Ok(vec![origin.event(attributes, body).into()])
}

/// What the event is about: the guest for `guest.*` (a guest's events are ordered among
/// themselves, whichever reservation carries them), the reservation otherwise.
fn subject(event: Option<&str>, data: &Value) -> Option<String> {
    let guest = || {
        data.get("guest")
            .and_then(|g| field(g, &["id"]))
            .or_else(|| field(data, &["guestId"]))
    };
    let reservation = || field(data, &["reservationId"]);
    if event.is_some_and(|e| e.starts_with("guest.")) {
        guest().or_else(reservation)
    } else {
        reservation().or_else(guest)
    }
}

fn body_for(event: &str, data: &Value, payload: &Value) -> EventBody {
    let guest = || {
        let person = data.get("guest").unwrap_or(&Value::Null);
        GuestData {
            guest_id: field(person, &["id"]).or_else(|| field(data, &["guestId"])),
            salutation: field(person, &["salutation"]),
            first_name: field(person, &["firstName"]),
            last_name: field(person, &["lastName"]),
            email: field(person, &["email"]),
            phone: field(person, &["phone"]),
            date_of_birth: field(person, &["dateOfBirth"]),
            reservation_id: field(data, &["reservationId"]),
            ..GuestData::default()
        }
    };
    let reservation = || ReservationData {
        reservation_id: field(data, &["reservationId"]),
        status: field(data, &["status"]),
        room_number: field(data, &["roomNumber"]),
        arrival_date: field(data, &["arrivalDate"]),
        departure_date: field(data, &["departureDate"]),
        checked_in_at: data.get("checkInTime").and_then(time),
        checked_out_at: data.get("checkOutTime").and_then(time),
        ..ReservationData::default()
    };
    match event {
        "guest.created" => EventBody::GuestCreated(guest()),
        "guest.updated" => EventBody::GuestUpdated(guest()),
        "guest.deleted" => EventBody::GuestDeleted(guest()),
        "reservation.created" => EventBody::ReservationCreated(reservation()),
        "reservation.updated" => EventBody::ReservationUpdated(reservation()),
        "reservation.cancelled" => EventBody::ReservationCancelled(reservation()),
        "reservation.checked_in" => EventBody::ReservationCheckedIn(reservation()),
        "reservation.checked_out" => EventBody::ReservationCheckedOut(reservation()),
        "service.token_expired" | "service.access_revoked" => {
            EventBody::IntegrationChanged(IntegrationData {
                action: Some(event.to_owned()),
                detail: field(data, &["message", "operation", "expiresAt"]),
                ..IntegrationData::default()
            })
        }
        other => EventBody::Unknown(UnknownData {
            reason: format!("PMS Web API event `{other}` is not modelled"),
            raw: payload.clone(),
        }),
    }
}

#[cfg(test)]
mod tests;
