//! RoostSync webhooks (seed 002, "Webhooks Coming Soon": a preview of planned functionality).
//!
//! Scheme: `X-RoostSync-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`; no timestamp is
//! signed. RoostSync retries five times over about a day (1 min, 5 min, 30 min, 2 h, 24 h), so
//! keep `dedupe_ttl` at 24 h or more.
//!
//! Envelope `{event, timestamp, data, property_id}`: `booking.*` → `reservation.*`,
//! `guest.checkin`/`checkout` → `reservation.checked_in`/`checked_out`, `order.created` /
//! `order.completed`, `inventory.low`, `payment.received`. The preview names no event id, so the
//! key is a hash of the event, its timestamp, the property and the data.
//!
//! Money (`total`, `amount`) is an integer in the preview (`"total": 6000` for two nights): it
//! is kept digit for digit, never through a float, and never rescaled: the preview does not say
//! whether it counts major or minor units, so `minor_units` stays false.

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::auth::{BodyMac, MacHeader};
use crate::event::{
    Attributes, EventBody, GuestRef, InventoryData, Money, OrderData, OrderItem, Origin,
    PaymentData, ReservationData, UnknownData, hashed_key,
};
use crate::json::{canonical, count, field, money, raw_member, time};
use crate::provider::{Checked, GuardedProvider, Normalization, Normalized};
use crate::settings::{Context, SettingError, require_secrets};
use crate::{Rejection, Request, Secret};

const SIGNATURE: MacHeader = MacHeader::hex_sha256("x-roostsync-signature", "sha256=");

/// The keys a `roostsync` source reads.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Signing secrets; several during rotation.
    #[serde(default)]
    pub secrets: Vec<Secret>,
}

/// A configured RoostSync source.
#[derive(Debug)]
pub struct Roostsync {
    mac: BodyMac,
}

impl GuardedProvider for Roostsync {
    const ID: &'static str = "roostsync";
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
    let raw: &RawValue = crate::json::parse_raw(request.body)?;
    let payload: Value = crate::json::value_of(raw);
    let event = field(&payload, &["event"]);
    let data = payload.get("data").cloned().unwrap_or(Value::Null);
    let property = field(&payload, &["property_id"]);
    let key = match &event {
        Some(event) => {
            let timestamp = field(&payload, &["timestamp"]).unwrap_or_default();
            let property = property.clone().unwrap_or_default();
            hashed_key(format!("{event}\0{timestamp}\0{property}\0{}", canonical(&data)).as_bytes())
        }
        None => hashed_key(request.body),
    };
    let attributes = Attributes {
        key,
        subject: field(&data, &["booking_id", "order_id", "payment_id", "item_id"]),
        time: payload.get("timestamp").and_then(time),
        provider_event_type: event.clone(),
        property_id: property,
        delivery_id: None,
    };
    // Money is read from the raw JSON text of `data`, so its digits survive exactly.
    let raw_data = raw_member(raw, "data");
    let body = match event.as_deref() {
        Some(event) => body_for(event, &data, raw_data, &payload),
        None => EventBody::Unknown(UnknownData {
            reason: "a RoostSync webhook needs `event`".to_owned(),
            raw: payload.clone(),
        }),
    };
    Ok(vec![origin.event(attributes, body).into()])
}

fn body_for(event: &str, data: &Value, raw_data: Option<&RawValue>, payload: &Value) -> EventBody {
    let amount = |name: &str| -> Option<Money> {
        let currency = field(data, &["currency"]);
        money(raw_member(raw_data?, name)?, currency, false)
    };
    let reservation = || {
        let room = data.get("room").unwrap_or(&Value::Null);
        ReservationData {
            reservation_id: field(data, &["booking_id"]),
            status: field(data, &["status"]),
            guest: field(data, &["guest_name"]).map(|name| GuestRef {
                name: Some(name),
                guest_id: field(data, &["guest_id"]),
                ..GuestRef::default()
            }),
            room_id: field(room, &["id"]).or_else(|| field(data, &["room_id"])),
            room_type: field(room, &["name"]),
            arrival_date: field(data, &["check_in"]),
            departure_date: field(data, &["check_out"]),
            nights: count(data, &["nights"]),
            total: amount("total"),
            booking_source: field(data, &["source"]),
            ..ReservationData::default()
        }
    };
    let order = || OrderData {
        order_id: field(data, &["order_id"]),
        status: field(data, &["status"]),
        total: amount("total"),
        items: data
            .get("items")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .map(|item| OrderItem {
                        item_id: field(item, &["item_id", "id"]),
                        name: field(item, &["name"]),
                        quantity: field(item, &["quantity"]),
                        price: None,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        room_number: field(data, &["room_number"]),
        reservation_id: field(data, &["booking_id"]),
        raw: None,
    };
    match event {
        "booking.created" => EventBody::ReservationCreated(reservation()),
        "booking.updated" => EventBody::ReservationUpdated(reservation()),
        "booking.cancelled" => EventBody::ReservationCancelled(reservation()),
        "guest.checkin" => EventBody::ReservationCheckedIn(reservation()),
        "guest.checkout" => EventBody::ReservationCheckedOut(reservation()),
        "order.created" => EventBody::OrderCreated(order()),
        "order.completed" => EventBody::OrderCompleted(order()),
        "inventory.low" => EventBody::InventoryLow(InventoryData {
            item_id: field(data, &["item_id"]),
            name: field(data, &["name", "item_name"]),
            quantity: field(data, &["quantity", "current_stock"]),
            threshold: field(data, &["reorder_level", "threshold"]),
            raw: None,
        }),
        "payment.received" => EventBody::PaymentReceived(PaymentData {
            payment_id: field(data, &["payment_id"]),
            amount: amount("amount"),
            reservation_id: field(data, &["booking_id"]),
            order_id: field(data, &["order_id"]),
            method: field(data, &["method", "payment_method"]),
            raw: None,
        }),
        other => EventBody::Unknown(UnknownData {
            reason: format!("RoostSync event `{other}` is not modelled"),
            raw: payload.clone(),
        }),
    }
}

#[cfg(test)]
mod tests;
