use serde_json::{Value, json};

use super::*;
use crate::event::EventType;
use crate::testing::{Check, OwnedRequest, origin};
use crate::{Secret, ToSign, WebhookProvider};

const TOKEN: &str = "rk-url-token-0123456789abcdef";

fn reservekit() -> Reservekit {
    Reservekit::from_settings(
        Settings {
            url_token: Some(Secret::new(TOKEN)),
        },
        &crate::settings::Context::default(),
    )
    .expect("valid")
}

fn with_query(query: &str) -> OwnedRequest {
    let mut request = OwnedRequest::post("/webhooks/reservekit", b"{}".to_vec());
    request.query = Some(query.to_owned());
    request
}

fn booking(id: u64, status: &str, updated: &str) -> Value {
    json!({"id": id, "service_id": 123, "date": "2023-07-10", "time_slot_id": 456, "status": status,
        "message": "First-time client consultation", "created_at": "2023-06-20T09:15:00Z", "updated_at": updated,
        "customer": {"id": 321, "name": "Jane Doe", "email": "jane.doe@example.com", "phone": "+12025550185"}})
}

fn normalize_body(body: &Value) -> Vec<Normalized> {
    let request = OwnedRequest::post("/webhooks/reservekit", body.to_string().into_bytes());
    normalize(&request.view(), &origin("reservekit", "reservekit")).expect("normalizes")
}

#[test]
fn the_url_token_must_match_in_full() {
    assert_eq!(
        reservekit().check(
            &with_query(&format!("token={TOKEN}")).view(),
            crate::testing::now()
        ),
        Ok(())
    );
    assert_eq!(
        reservekit().check(
            &with_query(&format!("a=1&Token={TOKEN}")).view(),
            crate::testing::now()
        ),
        Ok(())
    );
    let last_byte = format!("token={}g", &TOKEN[..TOKEN.len() - 1]);
    for query in [
        String::new(),
        last_byte,
        "token=".into(),
        format!("token={TOKEN}x"),
        format!("token={TOKEN}&token={TOKEN}"),
    ] {
        assert_eq!(
            reservekit().check(&with_query(&query).view(), crate::testing::now()),
            Err(Rejection::BadUrlToken),
            "{query}"
        );
    }
    let no_query = OwnedRequest::post("/webhooks/reservekit", b"{}".to_vec());
    assert_eq!(
        reservekit().check(&no_query.view(), crate::testing::now()),
        Err(Rejection::BadUrlToken)
    );
}

#[test]
fn short_or_missing_tokens_are_refused_in_configuration() {
    let short = Settings {
        url_token: Some(Secret::new("short")),
    };
    assert_eq!(
        Reservekit::from_settings(short, &crate::settings::Context::default()).expect_err("short")
            [0]
        .key,
        "url_token"
    );
    assert_eq!(
        Reservekit::from_settings(Settings::default(), &crate::settings::Context::default())
            .expect_err("missing")[0]
            .key,
        "url_token"
    );
}

#[test]
fn the_signer_adds_the_token_to_the_query() {
    let signed = reservekit().sign(&ToSign {
        path: "/webhooks/reservekit",
        query: Some("a=1"),
        content_type: "application/json",
        body: b"{}",
        now: crate::testing::now(),
    });
    let query = signed.query.expect("query");
    assert_eq!(
        reservekit().check(&with_query(&query).view(), crate::testing::now()),
        Ok(())
    );
}

#[test]
fn each_booking_is_an_event_of_the_mapped_type() {
    for (event_type, expected) in [
        ("bookings.create", EventType::ReservationCreated),
        ("bookings.update", EventType::ReservationUpdated),
        ("bookings.delete", EventType::ReservationCancelled),
    ] {
        let body = json!({"event_type": event_type, "bookings": [booking(789, "pending", "2023-06-20T09:15:00Z"),
            booking(790, "confirmed", "2023-06-21T10:00:00Z")], "timestamp": "2023-06-20T09:15:00Z"});
        let events = normalize_body(&body);
        assert_eq!(events.len(), 2);
        assert!(events.iter().all(|e| e.event.event_type() == expected));
        assert_ne!(events[0].dedupe_key, events[1].dedupe_key);
    }
    let body = json!({"event_type": "bookings.create", "bookings": [booking(789, "pending", "2023-06-20T09:15:00Z")]});
    let data = serde_json::to_value(&normalize_body(&body)[0].event).expect("json")["data"].clone();
    assert_eq!(
        data,
        json!({"reservation_id": "789", "status": "pending", "arrival_date": "2023-07-10",
        "notes": "First-time client consultation", "guest": {"guest_id": "321", "name": "Jane Doe",
        "email": "jane.doe@example.com", "phone": "+12025550185"}})
    );
}

#[test]
fn a_booking_without_a_customer_has_no_guest() {
    for customer in [
        json!(null),
        json!({}),
        json!("Jane"),
        json!({"created_at": "t"}),
    ] {
        let mut item = booking(789, "pending", "2023-06-20T09:15:00Z");
        item["customer"] = customer.clone();
        let body = json!({"event_type": "bookings.create", "bookings": [item]});
        let data =
            serde_json::to_value(&normalize_body(&body)[0].event).expect("json")["data"].clone();
        assert!(data.get("guest").is_none(), "{customer}");
    }
}

#[test]
fn the_time_is_the_bookings_update_time_and_the_property_its_service() {
    let body = json!({"event_type": "bookings.update", "bookings": [booking(789, "confirmed", "2023-06-22T14:30:00Z")],
        "timestamp": "2023-06-22T14:31:00Z"});
    let event = serde_json::to_value(&normalize_body(&body)[0].event).expect("json");
    assert_eq!(event["time"], "2023-06-22T14:30:00Z");
    assert_eq!(event["propertyid"], "123");
    assert_eq!(event["subject"], "789");
}

#[test]
fn a_later_update_of_the_same_booking_is_a_new_event_and_a_redelivery_is_not() {
    let update = |updated: &str| json!({"event_type": "bookings.update", "bookings": [booking(789, "confirmed", updated)]});
    let first = normalize_body(&update("2023-06-22T14:30:00Z"));
    let again = normalize_body(&update("2023-06-22T14:30:00Z"));
    let later = normalize_body(&update("2023-06-23T08:00:00Z"));
    assert_eq!(first[0].dedupe_key, again[0].dedupe_key);
    assert_ne!(first[0].dedupe_key, later[0].dedupe_key);
}

#[test]
fn unmapped_and_incomplete_payloads_are_unknown_and_garbage_is_malformed() {
    let other = normalize_body(
        &json!({"event_type": "bookings.archive", "bookings": [booking(1, "x", "t")]}),
    );
    assert_eq!(other[0].event.event_type(), EventType::Unknown);
    let empty = normalize_body(&json!({"event_type": "bookings.create", "bookings": []}));
    assert_eq!(empty.len(), 1);
    assert_eq!(empty[0].event.event_type(), EventType::Unknown);
    let broken = OwnedRequest::post("/webhooks/reservekit", b"{\"bookings\":[".to_vec());
    assert!(matches!(
        normalize(&broken.view(), &origin("r", "reservekit")),
        Err(Rejection::MalformedBody { .. })
    ));
}
