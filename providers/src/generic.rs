//! What the generic schemes (`standard_webhooks`, `stripe`, `hmac`) share: mapping a vendor's
//! event type to a canonical one through the source's `event_types` table.
//!
//! porter cannot know the payload of a vendor it has no module for, so a mapped event gets
//! the vendor's object (Stripe's `data.object`, a Standard Webhooks `data`) deserialised into
//! the canonical `data` where the names match (every hospitality field is optional, unknown
//! members are ignored) and the whole payload as sent in `raw`: the envelope around the object
//! (Stripe's `previous_attributes`, `api_version`, `request`) is authentic content too. An
//! unmapped type, or a mapped one whose object cannot be the canonical data (a
//! `message.received` without a message id), becomes `unknown` with the whole payload: never
//! dropped.

use serde_json::{Value, json};

use crate::event::{EventBody, EventType, UnknownData};

/// The canonical body for a vendor event of `vendor_type`: `object` typed where it fits, the
/// whole `payload` kept as `raw`.
pub fn body_for(
    table: &[(String, EventType)],
    vendor_type: Option<&str>,
    object: &Value,
    payload: Value,
) -> EventBody {
    let Some(vendor_type) = vendor_type else {
        return unknown("the payload names no event type".to_owned(), payload);
    };
    let Some((_, event_type)) = table.iter().find(|(name, _)| name == vendor_type) else {
        return unknown(
            format!("event type `{vendor_type}` is not in `event_types`"),
            payload,
        );
    };
    if *event_type == EventType::Unknown {
        return unknown(
            format!("event type `{vendor_type}` is mapped to `unknown`"),
            payload,
        );
    }
    let typed = |data: Value| {
        serde_json::from_value::<EventBody>(json!({ "type": event_type.as_str(), "data": data }))
    };
    // Members whose names match but whose shape does not (Stripe's integer `amount` against
    // porter's `Money`) are left out of the typed data; they stay in `raw`.
    let fitted = typed(object.clone()).or_else(|error| match object {
        Value::Object(members) => {
            let fitting: serde_json::Map<String, Value> = members
                .iter()
                .filter(|(name, value)| typed(json!({ name.as_str(): value })).is_ok())
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect();
            typed(Value::Object(fitting))
        }
        _ => Err(error),
    });
    match fitted {
        Ok(mut body) => {
            body.set_raw(payload);
            body
        }
        Err(error) => unknown(
            format!(
                "event type `{vendor_type}` is mapped to `{event_type}`, but its payload does not fit: {error}"
            ),
            payload,
        ),
    }
}

fn unknown(reason: String, raw: Value) -> EventBody {
    EventBody::Unknown(UnknownData { reason, raw })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Vec<(String, EventType)> {
        vec![
            ("booking.made".into(), EventType::ReservationCreated),
            ("sms.in".into(), EventType::MessageReceived),
            ("noise".into(), EventType::Unknown),
        ]
    }

    #[test]
    fn mapped_types_get_typed_data_and_the_raw_payload() {
        let data = json!({"reservation_id": "R1", "room_number": "12", "extra": true});
        let body = body_for(&table(), Some("booking.made"), &data, data.clone());
        let EventBody::ReservationCreated(reservation) = body else {
            panic!("mapped to reservation.created")
        };
        assert_eq!(reservation.reservation_id.as_deref(), Some("R1"));
        assert_eq!(reservation.room_number.as_deref(), Some("12"));
        assert_eq!(reservation.raw, Some(data));
    }

    #[test]
    fn members_of_another_shape_are_left_to_raw() {
        let table = vec![("paid".to_owned(), EventType::PaymentReceived)];
        let data = json!({"payment_id": "p1", "amount": 2000});
        let EventBody::PaymentReceived(payment) =
            body_for(&table, Some("paid"), &data, data.clone())
        else {
            panic!("mapped")
        };
        assert_eq!(payment.payment_id.as_deref(), Some("p1"));
        assert_eq!(payment.amount, None, "an integer is not porter's Money");
        assert_eq!(payment.raw, Some(data));
    }

    #[test]
    fn unmapped_unfitting_and_untyped_payloads_are_unknown() {
        for (vendor_type, data) in [
            (Some("other"), json!({"a": 1})),
            (Some("noise"), json!({"a": 1})),
            (Some("sms.in"), json!({"text": "no message id"})),
            (None, json!([1, 2])),
        ] {
            let body = body_for(&table(), vendor_type, &data, data.clone());
            let EventBody::Unknown(unknown) = body else {
                panic!("{vendor_type:?} should be unknown")
            };
            assert_eq!(unknown.raw, data);
        }
    }

    #[test]
    fn the_object_is_typed_and_the_whole_payload_kept() {
        let payload = json!({
            "id": "evt_1",
            "type": "booking.made",
            "data": {"object": {"reservation_id": "R1"}, "previous_attributes": {"room_number": "11"}}
        });
        let object = payload.pointer("/data/object").cloned().unwrap();
        let EventBody::ReservationCreated(reservation) =
            body_for(&table(), Some("booking.made"), &object, payload.clone())
        else {
            panic!("mapped")
        };
        assert_eq!(reservation.reservation_id.as_deref(), Some("R1"));
        assert_eq!(reservation.raw, Some(payload.clone()));
        let EventBody::Unknown(unknown) =
            body_for(&table(), Some("other"), &object, payload.clone())
        else {
            panic!("unmapped")
        };
        assert_eq!(
            unknown.raw, payload,
            "previous_attributes and the envelope kept"
        );
    }
}
