//! ReserveKit booking webhooks (seed 004, "Webhooks").
//!
//! ReserveKit has no signature scheme: its guide recommends "obscure, hard-to-guess URLs". So
//! the source is configured with a `url_token`, and the URL given to ReserveKit carries it as
//! `?token=…`; porter compares it in constant time.
//!
//! `{event_type, bookings:[…], timestamp}`: one event per booking. bookings.create →
//! reservation.created, bookings.update → reservation.updated, bookings.delete →
//! reservation.cancelled (with `cancel_reason`); any other type is one `unknown` per booking.
//! The key of each event is the event type, the booking id and the booking's `updated_at`,
//! NUL-separated: a redelivery is a duplicate, a later update of the same booking is not.
//!
//! What ReserveKit really does: it POSTs JSON to the URL registered in its Developer Portal
//! (one webhook per service, chosen event types), expects a 2xx "ideally within 5 seconds",
//! says a webhook "may occasionally be delivered more than once", and keeps delivery logs in
//! the portal. The portal's test button sends sample payloads, which porter stores like any
//! other delivery.

use serde::Deserialize;
use serde_json::Value;

use crate::auth::UrlToken;
use crate::event::{
    Attributes, EventBody, GuestRef, Origin, ReservationData, UnknownData, hashed_key,
};
use crate::json::{field, time};
use crate::provider::{Checked, GuardedProvider, Normalization, Normalized};
use crate::settings::{Context, SettingError};
use crate::{Rejection, Request, Secret};

/// The keys a `reservekit` source reads.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The token in the URL given to ReserveKit: its only authentication.
    pub url_token: Option<Secret>,
}

/// A configured ReserveKit source.
#[derive(Debug)]
pub struct Reservekit {
    token: UrlToken,
}

impl GuardedProvider for Reservekit {
    const ID: &'static str = "reservekit";
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

pub(crate) fn normalize(
    request: &Request<'_>,
    origin: &Origin<'_>,
) -> Result<Vec<Normalized>, Rejection> {
    let payload: Value = crate::json::parse(request.body)?;
    let event_type = field(&payload, &["event_type"]);
    let bookings = payload
        .get("bookings")
        .and_then(Value::as_array)
        .filter(|b| !b.is_empty());
    let (Some(event_type), Some(bookings)) = (event_type, bookings) else {
        let attributes = Attributes {
            key: hashed_key(request.body),
            provider_event_type: field(&payload, &["event_type"]),
            ..Attributes::default()
        };
        let data = UnknownData {
            reason: "a ReserveKit webhook needs `event_type` and a non-empty `bookings` list"
                .to_owned(),
            raw: payload,
        };
        return Ok(vec![
            origin.event(attributes, EventBody::Unknown(data)).into(),
        ]);
    };
    Ok(bookings
        .iter()
        .enumerate()
        .map(|(index, booking)| {
            let id = field(booking, &["id"]);
            let updated = field(booking, &["updated_at"]);
            let key = match (&id, &updated) {
                (Some(id), Some(updated)) => {
                    hashed_key(format!("{event_type}\0{id}\0{updated}").as_bytes())
                }
                // Without both, the booking's exact content and position identify it.
                _ => hashed_key(
                    format!("{}\0{index}\0{booking}", hashed_key(request.body)).as_bytes(),
                ),
            };
            let attributes = Attributes {
                key,
                subject: id.clone(),
                time: booking
                    .get("updated_at")
                    .and_then(time)
                    .or_else(|| payload.get("timestamp").and_then(time)),
                provider_event_type: Some(event_type.clone()),
                property_id: field(booking, &["service_id"]),
                delivery_id: None,
            };
            origin
                .event(attributes, body_for(&event_type, booking))
                .into()
        })
        .collect())
}

fn body_for(event_type: &str, booking: &Value) -> EventBody {
    let guest = booking.get("customer").map(|c| GuestRef {
        guest_id: field(c, &["id"]),
        name: field(c, &["name"]),
        email: field(c, &["email"]),
        phone: field(c, &["phone"]),
        ..GuestRef::default()
    });
    let reservation = ReservationData {
        reservation_id: field(booking, &["id"]),
        status: field(booking, &["status"]),
        // A customer with none of these members says nothing about the guest.
        guest: guest.filter(|g| *g != GuestRef::default()),
        arrival_date: field(booking, &["date"]),
        notes: field(booking, &["message"]),
        cancel_reason: field(booking, &["cancel_reason"]),
        ..ReservationData::default()
    };
    match event_type {
        "bookings.create" => EventBody::ReservationCreated(reservation),
        "bookings.update" => EventBody::ReservationUpdated(reservation),
        "bookings.delete" => EventBody::ReservationCancelled(reservation),
        other => EventBody::Unknown(UnknownData {
            reason: format!("ReserveKit event type `{other}` is not modelled"),
            raw: booking.clone(),
        }),
    }
}

#[cfg(test)]
mod tests;
