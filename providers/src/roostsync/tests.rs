use serde_json::{Value, json};

use super::*;
use crate::event::EventType;
use crate::testing::{Check, OwnedRequest, origin};
use crate::{Secret, WebhookProvider};

const SECRET: &str = "roostsync-signing-secret";

fn source(secrets: &[&str]) -> Roostsync {
    Roostsync::from_settings(settings(secrets), &crate::settings::Context::default())
        .expect("valid")
}

fn signed(body: &[u8], secret: &str) -> OwnedRequest {
    OwnedRequest::post("/webhooks/roostsync", body).header(
        "x-roostsync-signature",
        &SIGNATURE.sign(&Secret::new(secret), &[body]),
    )
}

const BOOKING: &str = r#"{"event":"booking.created","timestamp":"2024-03-15T10:30:00Z","data":{"booking_id":"bk_12345","guest_name":"Juan dela Cruz","room":{"id":"rm_101","name":"Room 101 - Deluxe"},"check_in":"2024-03-20","check_out":"2024-03-22","nights":2,"total":6000,"source":"direct","status":"confirmed"},"property_id":"prop_abc123"}"#;

#[test]
fn verifies_and_refuses_like_the_preview_says() {
    let good = signed(BOOKING.as_bytes(), SECRET);
    assert_eq!(
        source(&[SECRET]).check(&good.view(), crate::testing::now()),
        Ok(())
    );
    let mut flipped = signed(BOOKING.as_bytes(), SECRET);
    flipped.body[12] ^= 1;
    assert_eq!(
        source(&[SECRET]).check(&flipped.view(), crate::testing::now()),
        Err(Rejection::SignatureMismatch)
    );
    assert_eq!(
        source(&[SECRET]).check(
            &signed(BOOKING.as_bytes(), "x").view(),
            crate::testing::now()
        ),
        Err(Rejection::SignatureMismatch)
    );
    assert_eq!(
        source(&["next", SECRET]).check(&good.view(), crate::testing::now()),
        Ok(())
    );
    let signature = good.headers["x-roostsync-signature"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let missing = OwnedRequest::post("/w", BOOKING.as_bytes());
    assert_eq!(
        source(&[SECRET]).check(&missing.view(), crate::testing::now()),
        Err(Rejection::MissingSignature("x-roostsync-signature".into()))
    );
    for bad in [
        signature.trim_start_matches("sha256="),
        &signature[..signature.len() - 2],
        "sha256=",
    ] {
        let request =
            OwnedRequest::post("/w", BOOKING.as_bytes()).header("x-roostsync-signature", bad);
        assert_eq!(
            source(&[SECRET]).check(&request.view(), crate::testing::now()),
            Err(Rejection::MalformedSignature(
                "x-roostsync-signature".into()
            )),
            "{bad}"
        );
    }
}

fn normalize_text(text: &str) -> Vec<Normalized> {
    let request = OwnedRequest::post("/webhooks/roostsync", text.as_bytes());
    normalize(&request.view(), &origin("roostsync", "roostsync")).expect("normalizes")
}

fn data(events: &[Normalized]) -> Value {
    serde_json::to_value(&events[0].event).expect("json")["data"].clone()
}

#[test]
fn a_booking_is_a_reservation_with_money_digit_for_digit() {
    let events = normalize_text(BOOKING);
    assert_eq!(events[0].event.event_type(), EventType::ReservationCreated);
    assert_eq!(events[0].event.propertyid.as_deref(), Some("prop_abc123"));
    assert_eq!(
        data(&events),
        json!({"reservation_id": "bk_12345", "status": "confirmed", "guest": {"name": "Juan dela Cruz"},
            "room_id": "rm_101", "room_type": "Room 101 - Deluxe", "arrival_date": "2024-03-20",
            "departure_date": "2024-03-22", "nights": 2, "total": {"amount": "6000"}, "booking_source": "direct"})
    );
    let decimal = normalize_text(&BOOKING.replace(
        "\"total\":6000",
        "\"total\":\"5999.50\",\"currency\":\"PHP\"",
    ));
    assert_eq!(
        data(&decimal)["total"],
        json!({"amount": "5999.50", "currency": "PHP"})
    );
    let trailing_zeros = normalize_text(&BOOKING.replace("\"total\":6000", "\"total\":599.00"));
    assert_eq!(
        data(&trailing_zeros)["total"]["amount"],
        "599.00",
        "never through a float"
    );
}

#[test]
fn every_planned_event_maps() {
    for (event, expected) in [
        ("booking.created", EventType::ReservationCreated),
        ("booking.updated", EventType::ReservationUpdated),
        ("booking.cancelled", EventType::ReservationCancelled),
        ("guest.checkin", EventType::ReservationCheckedIn),
        ("guest.checkout", EventType::ReservationCheckedOut),
        ("order.created", EventType::OrderCreated),
        ("order.completed", EventType::OrderCompleted),
        ("inventory.low", EventType::InventoryLow),
        ("payment.received", EventType::PaymentReceived),
        ("table.reserved", EventType::Unknown),
    ] {
        let events = normalize_text(&BOOKING.replace("booking.created", event));
        assert_eq!(events[0].event.event_type(), expected, "{event}");
    }
    let payment = normalize_text(
        r#"{"event":"payment.received","timestamp":"2024-03-15T10:30:00Z","data":{"payment_id":"pay_9","booking_id":"bk_1","amount":1250.75,"currency":"PHP","method":"card"},"property_id":"p"}"#,
    );
    assert_eq!(
        data(&payment),
        json!({"payment_id": "pay_9", "reservation_id": "bk_1", "method": "card",
        "amount": {"amount": "1250.75", "currency": "PHP"}})
    );
    let order = normalize_text(
        r#"{"event":"order.completed","timestamp":"t","data":{"order_id":"o1","total":"300.00","items":[{"item_id":"i1","name":"Adobo","quantity":2}]},"property_id":"p"}"#,
    );
    assert_eq!(
        data(&order)["items"],
        json!([{"item_id": "i1", "name": "Adobo", "quantity": "2"}])
    );
    let low = normalize_text(
        r#"{"event":"inventory.low","timestamp":"t","data":{"item_id":"i7","name":"Towels","quantity":4,"reorder_level":10},"property_id":"p"}"#,
    );
    assert_eq!(
        data(&low),
        json!({"item_id": "i7", "name": "Towels", "quantity": "4", "threshold": "10"})
    );
}

#[test]
fn keys_change_with_the_occurrence_not_the_formatting() {
    let a = normalize_text(BOOKING);
    let spaced =
        serde_json::to_string_pretty(&serde_json::from_str::<Value>(BOOKING).expect("json"))
            .expect("json");
    assert_eq!(a[0].dedupe_key, normalize_text(&spaced)[0].dedupe_key);
    assert_ne!(
        a[0].dedupe_key,
        normalize_text(&BOOKING.replace("10:30:00", "10:31:00"))[0].dedupe_key
    );
    assert_ne!(
        a[0].dedupe_key,
        normalize_text(&BOOKING.replace("prop_abc123", "prop_other"))[0].dedupe_key
    );
}

#[test]
fn garbage_is_malformed() {
    let request = OwnedRequest::post("/w", b"{\"event\":".to_vec());
    assert!(matches!(
        normalize(&request.view(), &origin("r", "roostsync")),
        Err(Rejection::MalformedBody { .. })
    ));
}

/// The provider's settings with these secrets and nothing else.
fn settings(values: &[&str]) -> Settings {
    Settings {
        secrets: crate::testing::secrets(values),
    }
}
