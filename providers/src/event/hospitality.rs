//! `data` of the hospitality events: reservations, guests, rooms, housekeeping, maintenance,
//! guest requests, orders, payments, inventory and integration changes.
//!
//! Every field is optional because PMS vendors differ wildly in what they send (a Mews webhook
//! carries an entity id and nothing else); a field a vendor does not send stays absent rather
//! than invented. The property an event belongs to is the envelope's `propertyid`, not a data
//! field. Money is never a binary float: see [`Money`].
//!
//! `raw` is filled only by the generic schemes (`standard_webhooks`, `stripe`, `hmac`), whose
//! payload shape porter cannot know: the vendor's object is kept there whole, and the typed
//! fields are filled where the vendor's names match porter's.

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An amount of money, exactly as the vendor wrote it.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Money {
    /// The amount as a decimal string (`"599.00"`), copied digit for digit from the vendor's
    /// JSON number or string, never through a float. Where the vendor sends an integer, porter
    /// does not guess whether it counts major or minor units: see `minor_units`.
    pub amount: String,
    /// `true` when the vendor documents the amount as integer minor units (cents).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub minor_units: bool,
    /// ISO 4217 code, where the vendor says.
    pub currency: Option<String>,
}

/// A guest as referred to from another entity.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct GuestRef {
    pub guest_id: Option<String>,
    #[schemars(extend("x-pii" = true))]
    pub name: Option<String>,
    #[schemars(extend("x-pii" = true))]
    pub first_name: Option<String>,
    #[schemars(extend("x-pii" = true))]
    pub last_name: Option<String>,
    #[schemars(extend("x-pii" = true))]
    pub email: Option<String>,
    #[schemars(extend("x-pii" = true))]
    pub phone: Option<String>,
}

/// A stated guest preference (`room: high-floor`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Preference {
    pub category: String,
    pub value: String,
}

/// `data` of the `reservation.*` events.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ReservationData {
    pub reservation_id: Option<String>,
    pub confirmation_number: Option<String>,
    /// The vendor's status word, as sent.
    pub status: Option<String>,
    pub guest: Option<GuestRef>,
    pub room_id: Option<String>,
    pub room_number: Option<String>,
    pub room_type: Option<String>,
    /// `YYYY-MM-DD`, as the vendor wrote it.
    pub arrival_date: Option<String>,
    /// `YYYY-MM-DD`, as the vendor wrote it.
    pub departure_date: Option<String>,
    pub nights: Option<u32>,
    pub adults: Option<u32>,
    pub children: Option<u32>,
    pub rate_code: Option<String>,
    pub total: Option<Money>,
    /// Where the booking came from (`direct`, a channel manager), as the vendor says.
    pub booking_source: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-pii" = true))]
    pub special_requests: Vec<String>,
    #[schemars(extend("x-pii" = true))]
    pub notes: Option<String>,
    pub cancel_reason: Option<String>,
    pub checked_in_at: Option<Timestamp>,
    pub checked_out_at: Option<Timestamp>,
    #[schemars(extend("x-pii" = true))]
    pub raw: Option<serde_json::Value>,
}

/// `data` of the `guest.*` events.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct GuestData {
    pub guest_id: Option<String>,
    pub salutation: Option<String>,
    #[schemars(extend("x-pii" = true))]
    pub first_name: Option<String>,
    #[schemars(extend("x-pii" = true))]
    pub last_name: Option<String>,
    #[schemars(extend("x-pii" = true))]
    pub email: Option<String>,
    #[schemars(extend("x-pii" = true))]
    pub phone: Option<String>,
    /// `YYYY-MM-DD`, as the vendor wrote it.
    #[schemars(extend("x-pii" = true))]
    pub date_of_birth: Option<String>,
    pub language: Option<String>,
    pub loyalty_tier: Option<String>,
    pub vip_status: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preferences: Vec<Preference>,
    /// The reservation the vendor sent the guest with, if any.
    pub reservation_id: Option<String>,
    #[schemars(extend("x-pii" = true))]
    pub raw: Option<serde_json::Value>,
}

/// A room's state, normalised; the vendor's word is kept beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoomStatus {
    Clean,
    Dirty,
    Inspected,
    OutOfOrder,
    OutOfService,
    /// A word porter does not map; see `vendor_status`.
    Other,
}

impl RoomStatus {
    /// Maps a vendor's word (`OUT_OF_ORDER`, `out-of-order`, `Dirty`, `OOO`), or `Other`.
    pub fn from_vendor(word: &str) -> Self {
        let normal: String = word
            .trim()
            .chars()
            .map(|c| {
                if c == '-' || c == ' ' {
                    '_'
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect();
        match normal.as_str() {
            "clean" | "cl" | "vacant_clean" => Self::Clean,
            "dirty" | "di" | "vacant_dirty" | "occupied_dirty" => Self::Dirty,
            "inspected" | "ip" => Self::Inspected,
            "out_of_order" | "ooo" => Self::OutOfOrder,
            "out_of_service" | "oos" => Self::OutOfService,
            _ => Self::Other,
        }
    }
}

/// `data` of `room.status_changed`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct RoomData {
    pub room_id: Option<String>,
    pub room_number: Option<String>,
    pub status: Option<RoomStatus>,
    /// The vendor's status word, as sent.
    pub vendor_status: Option<String>,
    pub reason: Option<String>,
    #[schemars(extend("x-pii" = true))]
    pub raw: Option<serde_json::Value>,
}

/// `data` of `housekeeping.status_changed`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct HousekeepingData {
    pub room_id: Option<String>,
    pub room_number: Option<String>,
    pub status: Option<RoomStatus>,
    /// The vendor's status word, as sent.
    pub vendor_status: Option<String>,
    #[schemars(extend("x-pii" = true))]
    pub assigned_to: Option<String>,
    #[schemars(extend("x-pii" = true))]
    pub raw: Option<serde_json::Value>,
}

/// `data` of `room.maintenance_required`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct MaintenanceData {
    pub room_id: Option<String>,
    pub room_number: Option<String>,
    pub issue: Option<String>,
    pub priority: Option<String>,
    #[schemars(extend("x-pii" = true))]
    pub raw: Option<serde_json::Value>,
}

/// `data` of `guest_request.created`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct GuestRequestData {
    pub request_id: Option<String>,
    pub room_number: Option<String>,
    pub reservation_id: Option<String>,
    pub guest: Option<GuestRef>,
    pub category: Option<String>,
    #[schemars(extend("x-pii" = true))]
    pub description: Option<String>,
    pub priority: Option<String>,
    #[schemars(extend("x-pii" = true))]
    pub raw: Option<serde_json::Value>,
}

/// One line of an order.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct OrderItem {
    pub item_id: Option<String>,
    pub name: Option<String>,
    /// A decimal string, as the vendor wrote it.
    pub quantity: Option<String>,
    pub price: Option<Money>,
}

/// `data` of the `order.*` events.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct OrderData {
    pub order_id: Option<String>,
    /// The vendor's status word, as sent.
    pub status: Option<String>,
    pub total: Option<Money>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<OrderItem>,
    pub room_number: Option<String>,
    pub reservation_id: Option<String>,
    #[schemars(extend("x-pii" = true))]
    pub raw: Option<serde_json::Value>,
}

/// `data` of `payment.received`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct PaymentData {
    pub payment_id: Option<String>,
    pub amount: Option<Money>,
    pub reservation_id: Option<String>,
    pub order_id: Option<String>,
    pub method: Option<String>,
    #[schemars(extend("x-pii" = true))]
    pub raw: Option<serde_json::Value>,
}

/// `data` of `inventory.low`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct InventoryData {
    pub item_id: Option<String>,
    pub name: Option<String>,
    /// A decimal string, as the vendor wrote it.
    pub quantity: Option<String>,
    /// The reorder level, as a decimal string.
    pub threshold: Option<String>,
    #[schemars(extend("x-pii" = true))]
    pub raw: Option<serde_json::Value>,
}

/// `data` of `integration.changed`: the connection between a vendor and this deployment
/// changed (created, disabled, token expired). Credentials the vendor sends along (Mews
/// `AccessToken`, `ApiKey`) are removed before the event is built, never carried.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct IntegrationData {
    /// The vendor's action word (`IntegrationDisabled`, `service.token_expired`).
    pub action: Option<String>,
    pub integration_id: Option<String>,
    pub integration_name: Option<String>,
    pub enterprise_id: Option<String>,
    pub enabled: Option<bool>,
    /// Free text the vendor sends (an expiry notice, the revoked operation).
    pub detail: Option<String>,
    /// The vendor's payload with every credential removed.
    #[schemars(extend("x-pii" = true))]
    pub raw: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::RoomStatus;

    #[test]
    fn room_words_of_every_vendor_map() {
        for (word, status) in [
            ("CLEAN", RoomStatus::Clean),
            ("Dirty", RoomStatus::Dirty),
            ("INSPECTED", RoomStatus::Inspected),
            ("OUT_OF_ORDER", RoomStatus::OutOfOrder),
            ("out-of-order", RoomStatus::OutOfOrder),
            ("Out of Service", RoomStatus::OutOfService),
            ("PICKUP", RoomStatus::Other),
        ] {
            assert_eq!(RoomStatus::from_vendor(word), status, "{word}");
        }
    }
}
