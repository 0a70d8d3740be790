use serde_json::{Value, json};

use super::*;
use crate::event::EventType;
use crate::testing::{Check, OwnedRequest, origin};
use crate::{Secret, WebhookProvider};

const SECRET: &str = "pms-web-api-secret";

fn source(secrets: &[&str]) -> PmsWebApi {
    PmsWebApi::from_settings(settings(secrets), &crate::settings::Context::default())
        .expect("valid")
}

fn signed(body: &[u8], secret: &str) -> OwnedRequest {
    OwnedRequest::post("/webhook/pms-events", body).header(
        "x-webhook-signature",
        &SIGNATURE.sign(&Secret::new(secret), &[body]),
    )
}

fn body(event: &str, data: Value) -> Vec<u8> {
    json!({"event": event, "timestamp": "2024-01-15T10:30:00Z", "data": data, "metadata": {"source": "pms-api", "version": "1.0"}})
        .to_string()
        .into_bytes()
}

fn guest_created() -> Vec<u8> {
    body(
        "guest.created",
        json!({"hotelCode": "HOTEL001", "reservationId": 12345, "guest": {"id": "guest-123",
        "firstName": "John", "lastName": "Doe", "email": "john.doe@example.com", "phone": "+1234567890",
        "salutation": "Mr", "dateOfBirth": "1980-05-15"}}),
    )
}

#[test]
fn verifies_hex_of_either_case_and_refuses_the_rest() {
    let good = signed(&guest_created(), SECRET);
    assert_eq!(
        source(&[SECRET]).check(&good.view(), crate::testing::now()),
        Ok(())
    );
    let signature = good.headers["x-webhook-signature"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let upper = OwnedRequest::post("/w", guest_created())
        .header("x-webhook-signature", &signature.to_uppercase());
    assert_eq!(
        source(&[SECRET]).check(&upper.view(), crate::testing::now()),
        Ok(())
    );
    let mut flipped = signed(&guest_created(), SECRET);
    flipped.body[5] ^= 1;
    assert_eq!(
        source(&[SECRET]).check(&flipped.view(), crate::testing::now()),
        Err(Rejection::SignatureMismatch)
    );
    assert_eq!(
        source(&[SECRET]).check(
            &signed(&guest_created(), "other").view(),
            crate::testing::now()
        ),
        Err(Rejection::SignatureMismatch)
    );
    assert_eq!(
        source(&["new", SECRET]).check(&good.view(), crate::testing::now()),
        Ok(()),
        "rotation"
    );
    let missing = OwnedRequest::post("/w", guest_created());
    assert_eq!(
        source(&[SECRET]).check(&missing.view(), crate::testing::now()),
        Err(Rejection::MissingSignature("x-webhook-signature".into()))
    );
    for bad in [
        format!("sha256={signature}"),
        signature[..62].to_owned(),
        "zz".repeat(32),
    ] {
        let request = OwnedRequest::post("/w", guest_created()).header("x-webhook-signature", &bad);
        assert_eq!(
            source(&[SECRET]).check(&request.view(), crate::testing::now()),
            Err(Rejection::MalformedSignature("x-webhook-signature".into())),
            "{bad}"
        );
    }
}

fn normalize_body(bytes: Vec<u8>) -> Vec<Normalized> {
    let request = OwnedRequest::post("/webhook/pms-events", bytes);
    normalize(&request.view(), &origin("pms_web_api", "pms_web_api")).expect("normalizes")
}

#[test]
fn every_documented_event_maps() {
    let cases = [
        ("guest.created", EventType::GuestCreated),
        ("guest.updated", EventType::GuestUpdated),
        ("guest.deleted", EventType::GuestDeleted),
        ("reservation.created", EventType::ReservationCreated),
        ("reservation.updated", EventType::ReservationUpdated),
        ("reservation.cancelled", EventType::ReservationCancelled),
        ("reservation.checked_in", EventType::ReservationCheckedIn),
        ("reservation.checked_out", EventType::ReservationCheckedOut),
        ("service.token_expired", EventType::IntegrationChanged),
        ("service.access_revoked", EventType::IntegrationChanged),
        ("room.moved", EventType::Unknown),
    ];
    for (event, expected) in cases {
        let events = normalize_body(body(
            event,
            json!({"hotelCode": "HOTEL001", "reservationId": 12345}),
        ));
        assert_eq!(events[0].event.event_type(), expected, "{event}");
        assert_eq!(events[0].event.propertyid.as_deref(), Some("HOTEL001"));
    }
}

#[test]
fn guest_and_check_in_data_are_typed() {
    let events = normalize_body(guest_created());
    let data = serde_json::to_value(&events[0].event).expect("json")["data"].clone();
    assert_eq!(
        data,
        json!({"guest_id": "guest-123", "salutation": "Mr", "first_name": "John", "last_name": "Doe",
        "email": "john.doe@example.com", "phone": "+1234567890", "date_of_birth": "1980-05-15", "reservation_id": "12345"})
    );
    let check_in = normalize_body(body(
        "reservation.checked_in",
        json!({"hotelCode": "HOTEL001", "reservationId": 12345,
        "checkInTime": "2024-01-15T14:00:00Z", "roomNumber": "101"}),
    ));
    let data = serde_json::to_value(&check_in[0].event).expect("json")["data"].clone();
    assert_eq!(
        data,
        json!({"reservation_id": "12345", "room_number": "101", "checked_in_at": "2024-01-15T14:00:00Z"})
    );
    let deleted = normalize_body(body(
        "guest.deleted",
        json!({"hotelCode": "H", "guestId": "guest-9"}),
    ));
    assert_eq!(
        serde_json::to_value(&deleted[0].event).expect("json")["data"]["guest_id"],
        "guest-9"
    );
}

#[test]
fn keys_follow_event_time_and_data_not_formatting() {
    let a = normalize_body(guest_created());
    let respaced = serde_json::to_vec_pretty(
        &serde_json::from_slice::<Value>(&guest_created()).expect("json"),
    )
    .expect("json");
    let b = normalize_body(respaced);
    assert_eq!(
        a[0].dedupe_key, b[0].dedupe_key,
        "a re-serialised retry is the same event"
    );
    let other_time = normalize_body(
        String::from_utf8(guest_created())
            .expect("utf-8")
            .replace("10:30:00", "10:31:00")
            .into_bytes(),
    );
    assert_ne!(a[0].dedupe_key, other_time[0].dedupe_key);
}

#[test]
fn garbage_is_malformed() {
    let request = OwnedRequest::post("/w", b"{\"event\":".to_vec());
    assert!(matches!(
        normalize(&request.view(), &origin("p", "pms_web_api")),
        Err(Rejection::MalformedBody { .. })
    ));
}

/// The provider's settings with these secrets and nothing else.
fn settings(values: &[&str]) -> Settings {
    Settings {
        secrets: crate::testing::secrets(values),
    }
}
