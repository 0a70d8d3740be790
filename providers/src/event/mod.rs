//! The canonical event: one shape for every provider, CloudEvents 1.0 in structured JSON.
//!
//! A provider's payload becomes one or more [`Event`]s. The envelope carries the CloudEvents
//! attributes plus porter's extension attributes (`provider`, `providereventid`, ...); the
//! `type` and `data` members come from [`EventBody`], a closed enum whose variant decides both
//! the type string and the shape of `data`. Anything a provider sends that porter does not
//! model becomes [`EventBody::Unknown`] with the raw JSON kept, so nothing authentic is dropped.
//!
//! Ids are deterministic: [`event_id`] hashes the CloudEvents `source` and the provider event
//! key, so a redelivery after the dedupe window still carries the same id and consumers can
//! deduplicate too.
//!
//! What a vendor did not send is left out of the JSON, never written as `null`: every struct
//! with optional fields carries `#[serde_with::skip_serializing_none]`, and a new one must too.

mod erasure;
mod hospitality;
mod message;

pub use erasure::ErasureData;
pub use hospitality::{
    GuestData, GuestRef, GuestRequestData, HousekeepingData, IntegrationData, InventoryData,
    MaintenanceData, Money, OrderData, OrderItem, PaymentData, Preference, ReservationData,
    RoomData, RoomStatus,
};
pub use message::{
    Channel, Contact, ContactPhone, DeliveryStatus, Location, Media, MessageData, MessageKind,
    MessageStatusData, ProviderError, Reaction, RepliedTo, Selection, SelectionKind,
};

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A canonical event, serialised as a CloudEvents 1.0 structured-mode JSON object.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "porter canonical event (CloudEvents 1.0)")]
pub struct Event {
    /// Always `"1.0"`.
    pub specversion: SpecVersion,
    /// `evt_` + 32 hex digits, derived from `source` and `providereventid` (see [`event_id`]).
    pub id: String,
    /// `/sources/<source name>`: the configured source that received the request.
    pub source: String,
    /// The thing the event is about: a message id, a reservation id.
    pub subject: Option<String>,
    /// When the provider says the occurrence happened; absent when the provider does not say.
    pub time: Option<Timestamp>,
    /// Always `"application/json"`.
    pub datacontenttype: DataContentType,
    /// The provider id (`meta`, `twilio`, ...).
    pub provider: String,
    /// The provider event key this event is identified by: the provider's own id where it has
    /// one, otherwise `sha256:` and a hash of the fields that identify the occurrence.
    pub providereventid: String,
    /// The provider's own name for what happened (`messages`, `statuses`, `RESERVATION_CREATED`).
    pub providereventtype: Option<String>,
    /// The property, account or phone number the event belongs to, in the provider's terms.
    pub propertyid: Option<String>,
    /// The delivery id the provider sent in a header it does not sign (Twilio's
    /// `I-Twilio-Idempotency-Token`, a generic `hmac` source's `id_header` when the id is not in
    /// the signed template). **Not authenticated**: a label for tracing a delivery in the
    /// provider's console, never what porter names or deduplicates the event by.
    pub providerdeliveryid: Option<String>,
    /// When porter received the request.
    pub receivedat: Timestamp,
    /// The CloudEvents distributed-tracing extension: the W3C trace context
    /// (`00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`) of the request, or OHIP event,
    /// this event was stored under. Present only when porter exports traces (`[telemetry]`);
    /// each delivery attempt's span links to it, and deliveries pass it on as a
    /// `traceparent` header.
    pub traceparent: Option<String>,
    /// Present only on an event `porter reprocess` made from an archived request: the id of
    /// the event it replaces (an `unknown` one), or of the archived request whose body was
    /// quarantined then. The event's own id is new.
    pub reprocessedfrom: Option<String>,
    /// `true` on a `message.status_changed` whose status is behind one porter already stored
    /// for the same message (`delivered` after `read`): stored and delivered all the same, and
    /// skipped by destinations with `statuses = "forward_only"`. Absent otherwise.
    pub statusregression: Option<bool>,
    /// An OHIP Streaming event's own words (`ohipoffset`, `ohipmodule`, `ohipevent`,
    /// `ohiptimestamp`); absent on every other provider's events.
    #[serde(flatten, default)]
    pub ohip: Option<OhipExtensions>,
    /// `type` and `data`.
    #[serde(flatten)]
    pub body: EventBody,
}

/// The CloudEvents extensions of an event from the OHIP Streaming API.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OhipExtensions {
    /// The stream offset the event was delivered at: decimal digits, exactly as sent.
    pub ohipoffset: String,
    /// OPERA's module (`RESERVATION`, `PROFILE`, `HOUSEKEEPING`, ...), as sent.
    pub ohipmodule: String,
    /// OPERA's action (`CHECK IN`, `UPDATE PROFILE`, ...), as sent.
    pub ohipevent: String,
    /// OPERA's timestamp text (`28-APR-24 06.18.59.028027 AM`), as sent.
    pub ohiptimestamp: Option<String>,
}

/// The CloudEvents spec version porter emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SpecVersion {
    /// CloudEvents 1.0.
    #[serde(rename = "1.0")]
    V1_0,
}

/// The media type of `data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DataContentType {
    /// JSON.
    #[serde(rename = "application/json")]
    Json,
}

/// `data` of an `unknown` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UnknownData {
    /// Why porter could not model it, for the humans reading the stream.
    pub reason: String,
    /// The provider's payload (or the relevant part of it) exactly as parsed.
    #[schemars(extend("x-pii" = true))]
    pub raw: serde_json::Value,
}

macro_rules! event_types {
    ($($(#[$doc:meta])* $variant:ident($data:ty) => $name:literal,)*) => {
        /// The event's `type` and its typed `data`.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(tag = "type", content = "data")]
        pub enum EventBody {
            $($(#[$doc])* #[serde(rename = $name)] $variant($data),)*
        }

        /// The `type` of an event without its data, for filters and metrics.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType { $($variant),* }

        impl EventType {
            /// Every type, in the order the README lists them.
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),*];

            /// The CloudEvents `type` string.
            pub fn as_str(self) -> &'static str {
                match self { $(EventType::$variant => $name),* }
            }

            /// The type named by a CloudEvents `type` string.
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $($name => Some(EventType::$variant),)* _ => None }
            }
        }

        impl EventBody {
            /// The type of this body.
            pub fn event_type(&self) -> EventType {
                match self { $(EventBody::$variant(_) => EventType::$variant),* }
            }
        }
    };
}

// The one list of event types: each name, its variant and the shape of its `data`.
event_types! {
    ReservationCreated(ReservationData) => "reservation.created",
    ReservationUpdated(ReservationData) => "reservation.updated",
    ReservationCancelled(ReservationData) => "reservation.cancelled",
    ReservationCheckedIn(ReservationData) => "reservation.checked_in",
    ReservationCheckedOut(ReservationData) => "reservation.checked_out",
    GuestCreated(GuestData) => "guest.created",
    GuestUpdated(GuestData) => "guest.updated",
    GuestDeleted(GuestData) => "guest.deleted",
    RoomStatusChanged(RoomData) => "room.status_changed",
    RoomMaintenanceRequired(MaintenanceData) => "room.maintenance_required",
    HousekeepingStatusChanged(HousekeepingData) => "housekeeping.status_changed",
    GuestRequestCreated(GuestRequestData) => "guest_request.created",
    MessageReceived(MessageData) => "message.received",
    MessageStatusChanged(MessageStatusData) => "message.status_changed",
    OrderCreated(OrderData) => "order.created",
    OrderUpdated(OrderData) => "order.updated",
    OrderCompleted(OrderData) => "order.completed",
    PaymentReceived(PaymentData) => "payment.received",
    /// Money given back to a guest (Adyen `REFUND`).
    PaymentRefunded(PaymentData) => "payment.refunded",
    InventoryLow(InventoryData) => "inventory.low",
    IntegrationChanged(IntegrationData) => "integration.changed",
    /// porter's own: an operator erased a person; destinations should erase them too.
    ErasureRequested(ErasureData) => "erasure.requested",
    /// Authentic and parseable, but not modelled: kept whole so nothing is dropped.
    Unknown(UnknownData) => "unknown",
}

impl EventBody {
    /// Keeps a vendor payload beside typed hospitality data (generic schemes only). Message
    /// and `unknown` bodies are left as they are: they carry their content already.
    pub fn set_raw(&mut self, raw: serde_json::Value) {
        let slot = match self {
            EventBody::ReservationCreated(d)
            | EventBody::ReservationUpdated(d)
            | EventBody::ReservationCancelled(d)
            | EventBody::ReservationCheckedIn(d)
            | EventBody::ReservationCheckedOut(d) => &mut d.raw,
            EventBody::GuestCreated(d)
            | EventBody::GuestUpdated(d)
            | EventBody::GuestDeleted(d) => &mut d.raw,
            EventBody::RoomStatusChanged(d) => &mut d.raw,
            EventBody::RoomMaintenanceRequired(d) => &mut d.raw,
            EventBody::HousekeepingStatusChanged(d) => &mut d.raw,
            EventBody::GuestRequestCreated(d) => &mut d.raw,
            EventBody::OrderCreated(d)
            | EventBody::OrderUpdated(d)
            | EventBody::OrderCompleted(d) => &mut d.raw,
            EventBody::PaymentReceived(d) | EventBody::PaymentRefunded(d) => &mut d.raw,
            EventBody::InventoryLow(d) => &mut d.raw,
            EventBody::IntegrationChanged(d) => &mut d.raw,
            EventBody::MessageReceived(_)
            | EventBody::MessageStatusChanged(_)
            | EventBody::ErasureRequested(_)
            | EventBody::Unknown(_) => return,
        };
        *slot = Some(raw);
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The CloudEvents `source` of events received by the source named `name`.
pub fn source_uri(name: &str) -> String {
    format!("/sources/{name}")
}

/// The deterministic event id for a provider event key received by a source.
///
/// `evt_` followed by the first 128 bits of SHA-256(`source` NUL `key`), in hex. The NUL keeps
/// `("a", "b:c")` and `("a:b", "c")` apart.
pub fn event_id(source_uri: &str, provider_event_key: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(source_uri.as_bytes());
    hasher.update([0u8]);
    hasher.update(provider_event_key.as_bytes());
    let digest = hasher.finalize();
    format!("evt_{}", hex::encode(&digest[..16]))
}

/// The longest unsigned delivery id kept as [`Event::providerdeliveryid`].
const MAX_DELIVERY_ID: usize = 256;

/// An unsigned delivery id as a label: visible ASCII, at most 256 bytes, else nothing (it is
/// the caller's input, and ends up in every destination's copy of the event).
pub fn delivery_label(value: Option<&str>) -> Option<String> {
    value
        .filter(|v| !v.is_empty() && v.len() <= MAX_DELIVERY_ID)
        .filter(|v| v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
}

/// A provider event key for occurrences that carry no id of their own: `sha256:` and the hex
/// SHA-256 of the bytes that identify the occurrence.
pub fn hashed_key(identifying_bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(identifying_bytes)))
}

/// What every event of one request shares: where it came from and when it arrived.
#[derive(Debug, Clone)]
pub struct Origin<'a> {
    /// The configured source name.
    pub source_name: &'a str,
    /// The provider id.
    pub provider: &'static str,
    /// When porter received the request.
    pub received_at: Timestamp,
}

/// The per-event attributes a provider decides; [`Origin::event`] fills in the rest.
#[derive(Debug, Clone, Default)]
pub struct Attributes {
    /// The provider event key (see [`Event::providereventid`]).
    pub key: String,
    /// See [`Event::subject`].
    pub subject: Option<String>,
    /// See [`Event::time`].
    pub time: Option<Timestamp>,
    /// See [`Event::providereventtype`].
    pub provider_event_type: Option<String>,
    /// See [`Event::propertyid`].
    pub property_id: Option<String>,
    /// See [`Event::providerdeliveryid`].
    pub delivery_id: Option<String>,
}

impl Origin<'_> {
    /// Builds an event of this origin with a deterministic id.
    pub fn event(&self, attributes: Attributes, body: EventBody) -> Event {
        let source = source_uri(self.source_name);
        Event {
            specversion: SpecVersion::V1_0,
            id: event_id(&source, &attributes.key),
            source,
            subject: attributes.subject,
            time: attributes.time,
            datacontenttype: DataContentType::Json,
            provider: self.provider.to_owned(),
            providereventid: attributes.key,
            providereventtype: attributes.provider_event_type,
            propertyid: attributes.property_id,
            providerdeliveryid: attributes.delivery_id,
            receivedat: self.received_at,
            traceparent: None,
            reprocessedfrom: None,
            statusregression: None,
            ohip: None,
            body,
        }
    }
}

impl Event {
    /// The event's type.
    pub fn event_type(&self) -> EventType {
        self.body.event_type()
    }

    /// The JSON Schema of the event, generated from these types.
    pub fn json_schema() -> schemars::Schema {
        schemars::schema_for!(Event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_separate_source_from_key() {
        let a = event_id("/sources/a", "b:c");
        assert_eq!(a, event_id("/sources/a", "b:c"));
        assert_ne!(a, event_id("/sources/a:b", "c"));
        assert_ne!(a, event_id("/sources/b", "b:c"));
        assert!(a.starts_with("evt_"));
        assert_eq!(a.len(), 4 + 32);
    }

    #[test]
    fn event_round_trips_through_cloudevents_json() {
        let origin = Origin {
            source_name: "whatsapp",
            provider: "meta",
            received_at: "2024-03-15T14:00:01.123Z".parse().expect("timestamp"),
        };
        let event = origin.event(
            Attributes {
                key: "wamid.X".into(),
                subject: Some("wamid.X".into()),
                ..Attributes::default()
            },
            EventBody::Unknown(UnknownData {
                reason: "test".into(),
                raw: serde_json::json!({"a": 1}),
            }),
        );
        let json = serde_json::to_value(&event).expect("serialize");
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["type"], "unknown");
        assert_eq!(json["source"], "/sources/whatsapp");
        assert_eq!(json["datacontenttype"], "application/json");
        assert_eq!(json["receivedat"], "2024-03-15T14:00:01.123Z");
        assert!(json.get("time").is_none(), "absent fields stay absent");
        let back: Event = serde_json::from_value(json).expect("deserialize");
        assert_eq!(back, event);
    }

    #[test]
    fn every_type_string_is_distinct() {
        let mut names: Vec<_> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EventType::ALL.len());
        assert_eq!(EventType::ALL.len(), 23);
    }
}
