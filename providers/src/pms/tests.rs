use serde_json::{Value, json};

use super::*;
use crate::event::EventType;
use crate::testing::{Check, OwnedRequest, origin};

const SECRET: &str = "pms-shared-secret-42";

fn pms() -> Pms {
    Pms::from_settings(settings(&[SECRET]), &crate::settings::Context::default()).expect("valid")
}

fn post(endpoint: &'static str, body: &Value) -> OwnedRequest {
    let mut request = OwnedRequest::post(
        &format!("/webhooks/pms{endpoint}"),
        body.to_string().into_bytes(),
    );
    request.endpoint = endpoint;
    request
}

#[test]
fn either_header_form_authenticates() {
    let body = json!({"externalId": "g1"});
    let header = post("/guests", &body).header("x-webhook-secret", SECRET);
    let bearer = post("/guests", &body).header("authorization", &format!("Bearer {SECRET}"));
    assert_eq!(pms().check(&header.view(), crate::testing::now()), Ok(()));
    assert_eq!(pms().check(&bearer.view(), crate::testing::now()), Ok(()));
    let rotated = Pms::from_settings(
        settings(&["next-secret", SECRET]),
        &crate::settings::Context::default(),
    )
    .expect("valid");
    assert_eq!(rotated.check(&header.view(), crate::testing::now()), Ok(()));
}

#[test]
fn wrong_missing_and_mixed_secrets_are_refused() {
    let body = json!({"externalId": "g1"});
    let last_byte = format!("{}3", &SECRET[..SECRET.len() - 1]);
    for request in [
        post("/guests", &body).header("x-webhook-secret", &last_byte),
        post("/guests", &body).header("authorization", &format!("Bearer {last_byte}")),
        post("/guests", &body).header("authorization", &format!("Basic {SECRET}")),
        post("/guests", &body)
            .header("x-webhook-secret", SECRET)
            .header("authorization", "Bearer wrong"),
        post("/guests", &body)
            .header("x-webhook-secret", SECRET)
            .header("x-webhook-secret", SECRET),
    ] {
        assert_eq!(
            pms().check(&request.view(), crate::testing::now()),
            Err(Rejection::BadSharedSecret)
        );
    }
    assert_eq!(
        pms().check(&post("/guests", &body).view(), crate::testing::now()),
        Err(Rejection::MissingSignature("x-webhook-secret".into()))
    );
}

#[test]
fn unsigned_requests_need_the_explicit_insecure_mode() {
    let insecure = Settings {
        insecure_allow_unsigned: true,
        ..Settings::default()
    };
    let open = Pms::from_settings(insecure, &crate::settings::Context::default()).expect("valid");
    assert!(open.allows_unsigned());
    assert_eq!(
        open.check(&post("/guests", &json!({})).view(), crate::testing::now()),
        Ok(())
    );
    assert!(!pms().allows_unsigned());
    assert_eq!(
        Pms::from_settings(Settings::default(), &crate::settings::Context::default())
            .expect_err("needs one")[0]
            .key,
        "secrets"
    );
    let both = Settings {
        insecure_allow_unsigned: true,
        ..settings(&[SECRET])
    };
    assert_eq!(
        Pms::from_settings(both, &crate::settings::Context::default()).expect_err("not both")[0]
            .key,
        "insecure_allow_unsigned"
    );
}

fn normalize_request(request: &OwnedRequest) -> Vec<Normalized> {
    normalize(&request.view(), &origin("pms", "pms")).expect("normalizes")
}

fn data(events: &[Normalized]) -> Value {
    serde_json::to_value(&events[0].event).expect("json")["data"].clone()
}

#[test]
fn guests_carry_preferences_loyalty_and_vip() {
    let guest = json!({"externalId": "guest-123", "source": "mews", "firstName": "John", "lastName": "Doe",
        "email": "john@example.com", "phone": "+1234567890", "language": "en", "loyaltyTier": "gold",
        "vipStatus": "VIP", "preferences": [{"category": "room", "value": "high-floor"}, {"category": "pillow", "value": "firm"}]});
    let events = normalize_request(&post("/guests", &guest));
    assert_eq!(events[0].event.event_type(), EventType::GuestUpdated);
    assert_eq!(
        data(&events),
        json!({"guest_id": "guest-123", "first_name": "John", "last_name": "Doe",
        "email": "john@example.com", "phone": "+1234567890", "language": "en", "loyalty_tier": "gold",
        "vip_status": "VIP", "preferences": [{"category": "room", "value": "high-floor"}, {"category": "pillow", "value": "firm"}]})
    );
}

#[test]
fn reservations_keep_rates_to_the_digit_and_map_by_status() {
    let body = r#"{"externalId":"res-456","source":"mews","confirmationNumber":"CONF123","guest":{"externalId":"guest-123","source":"mews","firstName":"John","lastName":"Doe"},"roomNumber":"501","roomType":"deluxe-king","arrivalDate":"2024-03-15","departureDate":"2024-03-18","status":"confirmed","adults":2,"children":0,"rateCode":"BAR","totalRate":599.00,"currency":"USD","specialRequests":["late checkout","extra pillows"]}"#;
    let mut request = OwnedRequest::post("/webhooks/pms/reservations", body.as_bytes());
    request.endpoint = "/reservations";
    let events = normalize_request(&request);
    assert_eq!(events[0].event.event_type(), EventType::ReservationUpdated);
    let data = data(&events);
    assert_eq!(
        data["total"],
        json!({"amount": "599.00", "currency": "USD"})
    );
    assert_eq!(
        data["special_requests"],
        json!(["late checkout", "extra pillows"])
    );
    assert_eq!(
        data["guest"],
        json!({"guest_id": "guest-123", "first_name": "John", "last_name": "Doe"})
    );
    for (status, expected) in [
        ("cancelled", EventType::ReservationCancelled),
        ("checked_in", EventType::ReservationCheckedIn),
        ("checked_out", EventType::ReservationCheckedOut),
    ] {
        let events = normalize_request(&post(
            "/reservations",
            &json!({"externalId": "r", "status": status}),
        ));
        assert_eq!(events[0].event.event_type(), expected);
    }
}

#[test]
fn events_map_by_type() {
    for (event_type, expected) in [
        ("reservation.created", EventType::ReservationCreated),
        ("reservation.updated", EventType::ReservationUpdated),
        ("reservation.cancelled", EventType::ReservationCancelled),
        ("guest.checked_in", EventType::ReservationCheckedIn),
        ("guest.checked_out", EventType::ReservationCheckedOut),
        ("guest.updated", EventType::GuestUpdated),
        ("room.status_changed", EventType::RoomStatusChanged),
        ("folio.closed", EventType::Unknown),
    ] {
        let body = json!({"type": event_type, "source": "mews", "timestamp": "2024-03-15T14:00:00Z",
            "data": {"reservation": {"externalId": "res-456", "roomNumber": "501"}, "guest": {"externalId": "guest-123"}}});
        let events = normalize_request(&post("/events", &body));
        assert_eq!(events[0].event.event_type(), expected, "{event_type}");
    }
    let check_in = json!({"type": "guest.checked_in", "source": "mews", "timestamp": "2024-03-15T14:00:00Z",
        "data": {"reservation": {"externalId": "res-456", "roomNumber": "501"}, "guest": {"externalId": "guest-123", "firstName": "John"}}});
    let events = normalize_request(&post("/events", &check_in));
    assert_eq!(
        data(&events),
        json!({"reservation_id": "res-456", "room_number": "501", "guest": {"guest_id": "guest-123", "first_name": "John"}})
    );
    assert_eq!(
        events[0].event.time.map(|t| t.to_string()).as_deref(),
        Some("2024-03-15T14:00:00Z")
    );
}

#[test]
fn keys_identify_snapshots_and_events() {
    let key = |request: OwnedRequest| normalize_request(&request)[0].dedupe_key.clone();
    let guest = json!({"externalId": "g1", "firstName": "Ann"});
    assert_eq!(key(post("/guests", &guest)), key(post("/guests", &guest)));
    assert_ne!(
        key(post("/guests", &guest)),
        key(post(
            "/guests",
            &json!({"externalId": "g1", "firstName": "Anne"})
        ))
    );
    assert_ne!(
        key(post("/guests", &guest)),
        key(post("/reservations", &guest)),
        "the route is part of the key"
    );
    let event = |ts: &str| json!({"type": "guest.updated", "timestamp": ts, "data": {"guest": {"externalId": "g1"}}});
    assert_eq!(
        key(post("/events", &event("t1"))),
        key(post("/events", &event("t1")))
    );
    assert_ne!(
        key(post("/events", &event("t1"))),
        key(post("/events", &event("t2")))
    );
}

#[test]
fn garbage_is_malformed() {
    let mut request = OwnedRequest::post("/webhooks/pms/events", b"{\"type\":".to_vec());
    request.endpoint = "/events";
    assert!(matches!(
        normalize(&request.view(), &origin("pms", "pms")),
        Err(Rejection::MalformedBody { .. })
    ));
}

/// The provider's settings with these secrets and nothing else.
fn settings(values: &[&str]) -> Settings {
    Settings {
        secrets: crate::testing::secrets(values),
        ..Settings::default()
    }
}
