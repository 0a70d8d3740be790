//! Cloudbeds webhooks (developers.cloudbeds.com "Webhooks"; the `postWebhook` subscription API
//! in `cloudbeds/openapi-specs`).
//!
//! Cloudbeds documents no signature. The source is configured with a `url_token`, and the
//! `endpointUrl` given to `postWebhook` carries it as `?token=…`; porter compares it in
//! constant time.
//!
//! Bodies are flat JSON: `{version, event: "<object>/<action>", timestamp (Unix seconds with
//! microseconds), propertyID | propertyId, reservationID | reservationId, guestId, …}`. The
//! casing of ids differs between events, and ids also come as `…_str` strings (the numbers can
//! exceed what a float holds exactly), so ids are read case-insensitively and the string form
//! is preferred. There is no event id: the key of a modelled event hashes the event, the
//! property, the entity ids, the status and the timestamp text, NUL-separated. An unmodelled
//! event (or one without `timestamp`, as `accounting/transaction` is sent) is keyed by its exact
//! bytes instead, because its identifying ids are not among those fields.
//!
//! What Cloudbeds really does: one subscription per object/action, made with `postWebhook`
//! under the app's OAuth scopes. Its retry policy, timeout and the authoritative list of events
//! are not published; the payload is a hint, and consumers fetch the entity with the API.

use serde::Deserialize;
use serde_json::Value;

use crate::auth::UrlToken;
use crate::event::{
    Attributes, EventBody, GuestData, HousekeepingData, Origin, ReservationData, RoomStatus,
    UnknownData, hashed_key,
};
use crate::json::{field_ci, time};
use crate::provider::{Checked, GuardedProvider, Normalization, Normalized};
use crate::settings::{Context, SettingError};
use crate::{Rejection, Request, Secret};

/// The keys a `cloudbeds` source reads.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The token in the URL given to Cloudbeds: its only authentication.
    pub url_token: Option<Secret>,
}

/// A configured Cloudbeds source.
#[derive(Debug)]
pub struct Cloudbeds {
    token: UrlToken,
}

impl GuardedProvider for Cloudbeds {
    const ID: &'static str = "cloudbeds";
    type Settings = Settings;
    type Guard = UrlToken;

    fn configure(settings: Settings, _context: &Context) -> Result<Self, Vec<SettingError>> {
        Ok(Self {
            token: UrlToken::from_setting(settings.url_token).map_err(|e| vec![e])?,
        })
    }

    fn guard(&self) -> &UrlToken {
        &self.token
    }

    fn read(&self, checked: Checked<'_>, origin: &Origin<'_>) -> Result<Normalization, Rejection> {
        normalize(checked.request(), origin).map(Normalization::accepted)
    }
}

/// An id, preferring the exact `<name>_str` form, with the name in any case.
fn id(payload: &Value, name: &str) -> Option<String> {
    field_ci(payload, &format!("{name}_str")).or_else(|| field_ci(payload, name))
}

pub(crate) fn normalize(
    request: &Request<'_>,
    origin: &Origin<'_>,
) -> Result<Vec<Normalized>, Rejection> {
    let payload: Value = crate::json::parse(request.body)?;
    let event = field_ci(&payload, "event");
    let property = id(&payload, "propertyID");
    let reservation = id(&payload, "reservationID");
    let guest = id(&payload, "guestID");
    let room = id(&payload, "roomID");
    let status = field_ci(&payload, "status");
    let timestamp = field_ci(&payload, "timestamp");
    let reservation_data = || ReservationData {
        reservation_id: reservation.clone(),
        status: status.clone(),
        arrival_date: field_ci(&payload, "startDate"),
        departure_date: field_ci(&payload, "endDate"),
        ..ReservationData::default()
    };
    let guest_data = || GuestData {
        guest_id: guest.clone(),
        reservation_id: reservation.clone(),
        ..GuestData::default()
    };
    let body = match (event.as_deref(), status.as_deref()) {
        (Some("reservation/created"), _) => EventBody::ReservationCreated(reservation_data()),
        (Some("reservation/status_changed"), Some("checked_in")) => {
            EventBody::ReservationCheckedIn(reservation_data())
        }
        (Some("reservation/status_changed"), Some("checked_out")) => {
            EventBody::ReservationCheckedOut(reservation_data())
        }
        (Some("reservation/status_changed"), Some("canceled" | "cancelled")) => {
            EventBody::ReservationCancelled(reservation_data())
        }
        (Some("reservation/status_changed" | "reservation/dates_changed"), _) => {
            EventBody::ReservationUpdated(reservation_data())
        }
        (Some("guest/created"), _) => EventBody::GuestCreated(guest_data()),
        (Some("guest/details_changed"), _) => EventBody::GuestUpdated(guest_data()),
        (Some("housekeeping/room_condition_changed"), _) => {
            let condition =
                field_ci(&payload, "roomCondition").or_else(|| field_ci(&payload, "condition"));
            EventBody::HousekeepingStatusChanged(HousekeepingData {
                room_id: room.clone(),
                room_number: field_ci(&payload, "roomName"),
                status: condition.as_deref().map(RoomStatus::from_vendor),
                vendor_status: condition,
                ..HousekeepingData::default()
            })
        }
        (Some(other), _) => EventBody::Unknown(UnknownData {
            reason: format!("Cloudbeds event `{other}` is not modelled"),
            raw: payload.clone(),
        }),
        (None, _) => EventBody::Unknown(UnknownData {
            reason: "a Cloudbeds webhook needs `event`".to_owned(),
            raw: payload.clone(),
        }),
    };
    let key = match (&event, &timestamp) {
        // What identifies a modelled occurrence: the same change redelivered is a duplicate,
        // the next one has another status or timestamp.
        (Some(event), Some(timestamp)) if !matches!(body, EventBody::Unknown(_)) => {
            let text = |part: &Option<String>| part.clone().unwrap_or_default();
            let parts = [
                event.clone(),
                text(&property),
                text(&reservation),
                text(&guest),
                text(&room),
                text(&status),
                timestamp.clone(),
            ];
            hashed_key(parts.join("\0").as_bytes())
        }
        // An unmodelled event's identifying ids are not known (`accounting/transaction` has a
        // `transactionId` and no `timestamp`): only the exact bytes identify it.
        _ => hashed_key(request.body),
    };
    let attributes = Attributes {
        key,
        subject: reservation.or(guest).or(room),
        time: payload.get("timestamp").and_then(time),
        provider_event_type: event,
        property_id: property,
        delivery_id: None,
    };
    Ok(vec![origin.event(attributes, body).into()])
}

#[cfg(test)]
mod tests;
