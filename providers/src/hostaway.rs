//! Hostaway unified webhooks (support.hostaway.com "Using Hostaway Webhooks"; the webhook
//! section of api.hostaway.com/documentation).
//!
//! Hostaway does not sign its webhooks; a webhook may be given a login and password, which it
//! sends as HTTP Basic authentication. porter requires them (`basic = { username,
//! password }`, compared in constant time) and takes the source's `allow_ips` as well.
//!
//! - Payload `{"event":"reservation.created"|"reservation.updated"|…,"data":{…}}`, with the
//!   reservation whole in `data`. There is no event id: the key is a hash of `event`,
//!   `data.id` and `data.updatedOn`, so a retry (Hostaway retries a failed delivery up to
//!   three times) is a duplicate and a later change of the same reservation is not.
//! - Hostaway's test delivery (`"data":"test"`) is answered 200 once authenticated, and not
//!   stored.
//! - Mapping: `reservation.created` → `reservation.created`; `reservation.updated` →
//!   `reservation.cancelled` when `data.status` is `cancelled`, else `reservation.updated`
//!   (Hostaway sends no check-in or check-out event); anything else (guest messages, whose
//!   event name Hostaway does not document) → `unknown` with the payload.

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::auth::{BasicSettings, Credentials};
use crate::event::{
    Attributes, EventBody, GuestRef, Origin, ReservationData, UnknownData, hashed_key,
};
use crate::json::{count, field, money, raw_member};
use crate::provider::{Checked, Guard, GuardedProvider, Normalization};
use crate::settings::{Context, SettingError};
use crate::{Rejection, Reply, Request};

/// The keys a `hostaway` source reads.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The login and password set on the Hostaway webhook.
    pub basic: Option<BasicSettings>,
}

/// A configured Hostaway source.
#[derive(Debug)]
pub struct Hostaway {
    credentials: Credentials,
}

impl GuardedProvider for Hostaway {
    const ID: &'static str = "hostaway";
    type Settings = Settings;
    type Guard = Credentials;

    fn configure(settings: Settings, _context: &Context) -> Result<Self, Vec<SettingError>> {
        let Some(basic) = settings.basic else {
            return Err(vec![SettingError::new(
                "basic",
                "Hostaway cannot sign: set a login and password on the webhook and give them \
                 here as `basic = { username, password }`",
            )]);
        };
        Ok(Self {
            credentials: Credentials::new(None, Some(basic))?,
        })
    }

    fn guard(&self) -> &Credentials {
        &self.credentials
    }

    /// Hostaway's test delivery, once authenticated.
    fn handshake_answer(
        &self,
        request: &Request<'_>,
        now: Timestamp,
    ) -> Option<Result<Reply, Rejection>> {
        if !crate::slack::contains(request.body, b"\"test\"") {
            return None;
        }
        if let Err(rejection) = self.credentials.check(request, now) {
            return Some(Err(rejection));
        }
        let payload: Value = serde_json::from_slice(request.body).ok()?;
        (payload.get("data").and_then(Value::as_str) == Some("test"))
            .then(|| Ok(Reply::accepted(0)))
    }

    fn read(&self, checked: Checked<'_>, origin: &Origin<'_>) -> Result<Normalization, Rejection> {
        let body = checked.request().body;
        let raw: &RawValue = crate::json::parse_raw(body)?;
        let payload: Value = crate::json::value_of(raw);
        let event = field(&payload, &["event"]);
        let data = payload.get("data").unwrap_or(&Value::Null);
        let id = field(data, &["id"]);
        let key = match (&event, &id) {
            (Some(event), Some(id)) => {
                let updated = field(data, &["updatedOn"]).unwrap_or_default();
                hashed_key(format!("{event}\0{id}\0{updated}").as_bytes())
            }
            _ => hashed_key(body),
        };
        let attributes = Attributes {
            key,
            subject: id.clone(),
            time: None,
            provider_event_type: event.clone(),
            property_id: field(data, &["listingMapId"]),
            delivery_id: None,
        };
        let raw_data = raw_member(raw, "data");
        let reservation = || ReservationData {
            reservation_id: id.clone(),
            confirmation_number: field(data, &["hostawayReservationId", "channelReservationId"]),
            status: field(data, &["status"]),
            guest: field(data, &["guestName"]).map(|name| GuestRef {
                name: Some(name),
                first_name: field(data, &["guestFirstName"]),
                last_name: field(data, &["guestLastName"]),
                email: field(data, &["guestEmail"]),
                phone: field(data, &["phone"]),
                ..GuestRef::default()
            }),
            room_id: field(data, &["listingMapId"]),
            arrival_date: field(data, &["arrivalDate"]),
            departure_date: field(data, &["departureDate"]),
            nights: count(data, &["nights"]),
            adults: count(data, &["adults"]),
            children: count(data, &["children"]),
            total: raw_data
                .and_then(|d| raw_member(d, "totalPrice"))
                .and_then(|total| money(total, field(data, &["currency"]), false)),
            booking_source: field(data, &["channelName"]),
            raw: Some(payload.clone()),
            ..ReservationData::default()
        };
        let status = field(data, &["status"]).map(|s| s.to_ascii_lowercase());
        let body = match (event.as_deref(), status.as_deref()) {
            (Some("reservation.created"), _) => EventBody::ReservationCreated(reservation()),
            (Some("reservation.updated"), Some("cancelled" | "canceled")) => {
                EventBody::ReservationCancelled(reservation())
            }
            (Some("reservation.updated"), _) => EventBody::ReservationUpdated(reservation()),
            (Some(other), _) => EventBody::Unknown(UnknownData {
                reason: format!("Hostaway event `{other}` is not modelled"),
                raw: payload.clone(),
            }),
            (None, _) => EventBody::Unknown(UnknownData {
                reason: "a Hostaway webhook needs `event`".to_owned(),
                raw: payload.clone(),
            }),
        };
        Ok(Normalization::accepted(vec![
            origin.event(attributes, body).into(),
        ]))
    }
}

#[cfg(test)]
mod tests;
