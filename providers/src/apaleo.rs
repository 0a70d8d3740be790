//! Apaleo webhooks (apaleo.dev "Webhook API": configuration, payload, best practices).
//!
//! Apaleo does not sign its webhooks. It recommends HTTPS with Basic authentication, an
//! unguessable token in the URL, and an allow-list of its addresses: porter takes
//! `url_token` and/or `basic = { username, password }` (every one configured must match, in
//! constant time) and the source's `allow_ips` (Apaleo publishes `34.240.36.71`,
//! `52.212.76.75`, `63.33.249.221`; they may change, so they are not built in).
//!
//! - **Health check**: when a subscription is created Apaleo POSTs `{"topic":"system",
//!   "type":"healthcheck",…}` and creates it only on a 2xx. Once authenticated it is answered
//!   `{"status":"accepted","events":0}` and nothing is stored.
//! - **Events** are thin: `{"topic","type","id","accountId","propertyId","timestamp" (ms),
//!   "data":{"entityId"}}`; consumers fetch the entity. The key is `id` (Apaleo may send an
//!   event more than once, with the same id). Topics are matched case-insensitively (the
//!   payload says `Reservation`, subscriptions say `reservation/*`); `providereventtype` is
//!   `topic/type` in lower case.
//! - Mapping: `reservation/created` → `reservation.created`; `canceled` → `cancelled`;
//!   `checked-in` / `checked-out` → `checked_in` / `checked_out`; `changed`, `amended`,
//!   `unit-assigned`, `unit-unassigned`, `set-to-no-show`, `check-in-reverted` and the other
//!   reservation types → `reservation.updated`; `folio/payment-posted` → `payment.received`;
//!   `folio/refund-posted` → `payment.refunded`; `unit/changed` → `room.status_changed`;
//!   `maintenance/created` → `room.maintenance_required`; everything else → `unknown`, the
//!   payload kept.

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

use crate::auth::{BasicSettings, Credentials};
use crate::event::{
    Attributes, EventBody, MaintenanceData, Origin, PaymentData, ReservationData, RoomData,
    UnknownData, hashed_key,
};
use crate::json::{field, time_ms};
use crate::provider::{Checked, Guard, GuardedProvider, Normalization};
use crate::settings::{Context, SettingError};
use crate::slack::contains;
use crate::{Rejection, Reply, Request, Secret};

/// The keys an `apaleo` source reads.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The token in the URL given to Apaleo (`?token=…`).
    pub url_token: Option<Secret>,
    /// Basic authentication set on the subscription's endpoint URL.
    pub basic: Option<BasicSettings>,
}

/// A configured Apaleo source.
#[derive(Debug)]
pub struct Apaleo {
    credentials: Credentials,
}

impl GuardedProvider for Apaleo {
    const ID: &'static str = "apaleo";
    type Settings = Settings;
    type Guard = Credentials;

    fn configure(settings: Settings, _context: &Context) -> Result<Self, Vec<SettingError>> {
        Ok(Self {
            credentials: Credentials::new(settings.url_token, settings.basic)?,
        })
    }

    fn guard(&self) -> &Credentials {
        &self.credentials
    }

    /// The health check of a new subscription, once authenticated.
    fn handshake_answer(
        &self,
        request: &Request<'_>,
        now: Timestamp,
    ) -> Option<Result<Reply, Rejection>> {
        if !contains(request.body, b"healthcheck") {
            return None;
        }
        if let Err(rejection) = self.credentials.check(request, now) {
            return Some(Err(rejection));
        }
        let payload: Value = serde_json::from_slice(request.body).ok()?;
        let topic = field(&payload, &["topic"])?;
        let kind = field(&payload, &["type"])?;
        (topic.eq_ignore_ascii_case("system") && kind.eq_ignore_ascii_case("healthcheck"))
            .then(|| Ok(Reply::accepted(0)))
    }

    fn read(&self, checked: Checked<'_>, origin: &Origin<'_>) -> Result<Normalization, Rejection> {
        let payload: Value = crate::json::parse(checked.request().body)?;
        let topic = field(&payload, &["topic"]).map(|t| t.to_ascii_lowercase());
        let kind = field(&payload, &["type"]).map(|t| t.to_ascii_lowercase());
        let entity = payload
            .get("data")
            .and_then(|data| field(data, &["entityId"]));
        let timestamp = field(&payload, &["timestamp"]);
        let vendor_type = match (&topic, &kind) {
            (Some(topic), Some(kind)) => Some(format!("{topic}/{kind}")),
            _ => None,
        };
        let attributes = Attributes {
            key: field(&payload, &["id"]).unwrap_or_else(|| {
                hashed_key(
                    format!(
                        "{}\0{}\0{}",
                        vendor_type.as_deref().unwrap_or_default(),
                        entity.as_deref().unwrap_or_default(),
                        timestamp.as_deref().unwrap_or_default()
                    )
                    .as_bytes(),
                )
            }),
            subject: entity.clone(),
            time: payload.get("timestamp").and_then(time_ms),
            provider_event_type: vendor_type.clone(),
            property_id: field(&payload, &["propertyId"]),
            delivery_id: None,
        };
        let body = body_for(vendor_type.as_deref(), entity, &payload);
        Ok(Normalization::accepted(vec![
            origin.event(attributes, body).into(),
        ]))
    }
}

fn body_for(vendor_type: Option<&str>, entity: Option<String>, payload: &Value) -> EventBody {
    let raw = Some(payload.clone());
    let reservation = || ReservationData {
        reservation_id: entity.clone(),
        raw: raw.clone(),
        ..ReservationData::default()
    };
    let payment = || PaymentData {
        payment_id: entity.clone(),
        raw: raw.clone(),
        ..PaymentData::default()
    };
    let Some(vendor_type) = vendor_type else {
        return EventBody::Unknown(UnknownData {
            reason: "an Apaleo webhook needs `topic` and `type`".to_owned(),
            raw: payload.clone(),
        });
    };
    match vendor_type {
        "reservation/created" => EventBody::ReservationCreated(reservation()),
        "reservation/canceled" => EventBody::ReservationCancelled(reservation()),
        "reservation/checked-in" => EventBody::ReservationCheckedIn(reservation()),
        "reservation/checked-out" => EventBody::ReservationCheckedOut(reservation()),
        "reservation/deleted" => EventBody::Unknown(UnknownData {
            reason: "Apaleo deleted the reservation (it is not a cancellation)".to_owned(),
            raw: payload.clone(),
        }),
        other if other.starts_with("reservation/") => EventBody::ReservationUpdated(reservation()),
        "folio/payment-posted" => EventBody::PaymentReceived(payment()),
        "folio/refund-posted" => EventBody::PaymentRefunded(payment()),
        "unit/changed" => EventBody::RoomStatusChanged(RoomData {
            room_id: entity.clone(),
            raw: raw.clone(),
            ..RoomData::default()
        }),
        "maintenance/created" => EventBody::RoomMaintenanceRequired(MaintenanceData {
            raw: raw.clone(),
            ..MaintenanceData::default()
        }),
        other => EventBody::Unknown(UnknownData {
            reason: format!("Apaleo event `{other}` is not modelled"),
            raw: payload.clone(),
        }),
    }
}

#[cfg(test)]
mod tests;
