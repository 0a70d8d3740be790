//! Mews Connector webhooks: General (`Events[]`, thin notifications of changed entities) and
//! Integration (`{Action, Data}`, changes to the integration itself). Both come with the URL
//! token only; see the parent module.

use serde_json::Value;

use crate::event::{
    Attributes, Channel, EventBody, GuestData, IntegrationData, MessageData, Origin, PaymentData,
    ReservationData, RoomData, UnknownData, hashed_key,
};
use crate::json::{field, strip_credentials};
use crate::provider::Normalized;

/// One event per entry of a General webhook.
pub(super) fn general_event(
    entry: &Value,
    index: usize,
    body_key: &str,
    enterprise: Option<String>,
    origin: &Origin<'_>,
) -> Normalized {
    let discriminator = field(entry, &["Discriminator"]);
    let id = entry.get("Value").and_then(|v| field(v, &["Id"]));
    let attributes = Attributes {
        key: hashed_key(format!("{body_key}\0{index}").as_bytes()),
        subject: id.clone(),
        time: None,
        provider_event_type: discriminator.clone(),
        property_id: enterprise,
        delivery_id: None,
    };
    let body = match discriminator.as_deref() {
        Some("ServiceOrderUpdated") => EventBody::ReservationUpdated(ReservationData {
            reservation_id: id,
            ..ReservationData::default()
        }),
        Some("CustomerAdded") => EventBody::GuestCreated(GuestData {
            guest_id: id,
            ..GuestData::default()
        }),
        Some("CustomerUpdated") => EventBody::GuestUpdated(GuestData {
            guest_id: id,
            ..GuestData::default()
        }),
        Some("ResourceUpdated") => EventBody::RoomStatusChanged(RoomData {
            room_id: id,
            ..RoomData::default()
        }),
        Some("PaymentUpdated") => EventBody::PaymentReceived(PaymentData {
            payment_id: id,
            ..PaymentData::default()
        }),
        Some("MessageAdded") if id.is_some() => EventBody::MessageReceived(MessageData {
            channel: Channel::Pms,
            message_id: id.unwrap_or_default(),
            from: None,
            to: None,
            profile_name: None,
            kind: None,
            text: None,
            media: Vec::new(),
            location: None,
            contacts: Vec::new(),
            selection: None,
            reaction: None,
            replied_to: None,
            account_id: None,
        }),
        other => {
            let mut raw = entry.clone();
            strip_credentials(&mut raw);
            EventBody::Unknown(UnknownData {
                reason: match other {
                    Some(other) => format!("Mews event `{other}` is not modelled"),
                    None => "a Mews event entry needs `Discriminator`".to_owned(),
                },
                raw,
            })
        }
    };
    origin.event(attributes, body).into()
}

/// An Integration webhook: `integration.changed`, without the credentials it carries.
pub(super) fn integration_event(
    action: &str,
    payload: &Value,
    body: &[u8],
    origin: &Origin<'_>,
) -> Normalized {
    let data = payload.get("Data").cloned().unwrap_or(Value::Null);
    let mut raw = data.clone();
    strip_credentials(&mut raw);
    let attributes = Attributes {
        // The body holds a credential; its hash reveals nothing of it.
        key: hashed_key(body),
        subject: data
            .pointer("/Integration/Id")
            .and_then(crate::json::text_of),
        time: data
            .get("CreatedUtc")
            .or_else(|| data.get("DeletedUtc"))
            .and_then(crate::json::time),
        provider_event_type: Some(action.to_owned()),
        property_id: data
            .pointer("/Enterprise/Id")
            .and_then(crate::json::text_of),
        delivery_id: None,
    };
    let event = EventBody::IntegrationChanged(IntegrationData {
        action: Some(action.to_owned()),
        integration_id: data
            .pointer("/Integration/Id")
            .and_then(crate::json::text_of),
        integration_name: data
            .pointer("/Integration/Name")
            .and_then(crate::json::text_of),
        enterprise_id: data
            .pointer("/Enterprise/Id")
            .and_then(crate::json::text_of),
        enabled: data.get("IsEnabled").and_then(Value::as_bool),
        detail: None,
        raw: Some(raw),
    });
    origin.event(attributes, event).into()
}
