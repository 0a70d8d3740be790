//! Mews POS webhooks (`{data:{id, type, attributes}, meta:{eventType}}`), which Mews signs
//! with `X-Signature`; see the parent module.

use serde_json::Value;

use crate::event::{Attributes, EventBody, OrderData, Origin, UnknownData, hashed_key};
use crate::json::{field, strip_credentials};
use crate::provider::Normalized;

/// Where a POS message names its event type: the current documentation's `eventType`, then the
/// `event_type` of its earlier revisions.
pub(super) const POS_EVENT_TYPE: &[&str] = &["eventType", "event_type"];

/// The one event of a POS webhook.
pub(super) fn pos_event(
    event_type: &str,
    payload: &Value,
    body: &[u8],
    origin: &Origin<'_>,
) -> Normalized {
    let data = payload.get("data").filter(|d| d.is_object());
    let id = data.and_then(|d| field(d, &["id"]));
    let attributes_json = data
        .and_then(|d| d.get("attributes"))
        .filter(|a| a.is_object());
    let updated = attributes_json.and_then(|a| field(a, &["updatedAt"]));
    let key = match (&id, &updated) {
        // The event type, the entity and the moment it changed: a redelivery is a duplicate; the
        // next change of the same order, or another event type about it, is not.
        (Some(id), Some(updated)) => {
            hashed_key(format!("{event_type}\0{id}\0{updated}").as_bytes())
        }
        // Without both, only the exact bytes identify the message.
        _ => hashed_key(body),
    };
    let attributes = Attributes {
        key,
        subject: id.clone(),
        time: attributes_json
            .and_then(|a| a.get("updatedAt"))
            .and_then(crate::json::time),
        provider_event_type: Some(event_type.to_owned()),
        property_id: None,
        delivery_id: None,
    };
    let unknown = |reason: String| {
        let mut raw = payload.clone();
        strip_credentials(&mut raw);
        EventBody::Unknown(UnknownData { reason, raw })
    };
    let body = match (event_type, &id) {
        ("order.status.updated", Some(_)) => EventBody::OrderUpdated(OrderData {
            order_id: id,
            status: attributes_json.and_then(|a| field(a, &["status"])),
            ..OrderData::default()
        }),
        ("order.status.updated", None) => {
            unknown("a Mews POS `order.status.updated` needs `data.id`".to_owned())
        }
        (other, _) => unknown(format!("Mews POS event `{other}` is not modelled")),
    };
    origin.event(attributes, body).into()
}
