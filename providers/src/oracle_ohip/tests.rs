use serde_json::{Value, json};

use super::*;
use crate::Secret;
use crate::event::EventType;
use crate::provider::Checked;
use crate::testing::{Check, OwnedRequest, now, origin};

const SECRET: &str = "whsec_abc123def456ghi789";
const PATH: &str = "/api/v1/webhooks/oracle/reservations";

fn oracle(secrets: &[&str]) -> OracleOhip {
    OracleOhip::from_settings(settings(secrets), &crate::settings::Context::default())
        .expect("valid settings")
}

fn signed_at(body: &[u8], secret: &str, timestamp: i64) -> OwnedRequest {
    let ts = timestamp.to_string();
    let signature = SIGNATURE.sign(&Secret::new(secret), &[ts.as_bytes(), b".", body]);
    OwnedRequest::post(PATH, body)
        .header("x-oracle-timestamp", &ts)
        .header("x-oracle-signature", &signature)
}

fn signed(body: &[u8], secret: &str) -> OwnedRequest {
    signed_at(body, secret, now().as_second())
}

fn checkout() -> Vec<u8> {
    json!({"eventType": "GUEST_CHECKOUT", "eventId": "evt_checkout_12345", "hotelId": "hotel_001",
        "reservationId": "res_67890", "roomNumber": "305", "guestId": "guest_abc",
        "checkoutTime": "2026-02-16T11:00:00Z", "timestamp": "2026-02-16T11:05:00Z"})
    .to_string()
    .into_bytes()
}

fn verify(request: &OwnedRequest) -> Result<(), Rejection> {
    oracle(&[SECRET]).check(&request.view(), now())
}

fn normalize_body(body: &[u8]) -> Vec<Normalized> {
    let request = OwnedRequest::post(PATH, body);
    normalize(&request.view(), &origin("oracle", "oracle_ohip")).expect("normalizes")
}

fn data(event: &Normalized) -> Value {
    serde_json::to_value(&event.event).expect("json")["data"].clone()
}

#[test]
fn the_seed_example_signature_scheme_verifies() {
    assert_eq!(verify(&signed(&checkout(), SECRET)), Ok(()));
}

#[test]
fn tampering_with_body_or_timestamp_fails() {
    let mut body = signed(&checkout(), SECRET);
    body.body[10] ^= 0x20;
    assert_eq!(verify(&body), Err(Rejection::SignatureMismatch));
    // The timestamp is signed: moving it breaks the signature.
    let original = signed(&checkout(), SECRET);
    let signature = original.headers["x-oracle-signature"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let moved = OwnedRequest::post(PATH, checkout())
        .header("x-oracle-timestamp", &(now().as_second() - 1).to_string())
        .header("x-oracle-signature", &signature);
    assert_eq!(verify(&moved), Err(Rejection::SignatureMismatch));
}

#[test]
fn wrong_secret_fails_and_rotation_accepts_both() {
    assert_eq!(
        verify(&signed(&checkout(), "whsec_other")),
        Err(Rejection::SignatureMismatch)
    );
    let rotating = oracle(&["whsec_new", SECRET]);
    assert_eq!(
        rotating.check(&signed(&checkout(), SECRET).view(), now()),
        Ok(())
    );
    assert_eq!(
        rotating.check(&signed(&checkout(), "whsec_new").view(), now()),
        Ok(())
    );
}

#[test]
fn stale_and_future_timestamps_fail_at_the_edge_of_the_window() {
    let at = |offset: i64| verify(&signed_at(&checkout(), SECRET, now().as_second() + offset));
    assert_eq!(at(-300), Ok(()));
    assert_eq!(at(300), Ok(()));
    assert_eq!(at(-301), Err(Rejection::StaleTimestamp));
    assert_eq!(at(301), Err(Rejection::StaleTimestamp));
    // A configured tolerance replaces the default.
    let mut narrow = settings(&[SECRET]);
    narrow.tolerance = Some(Duration::from_secs(10));
    let narrow =
        OracleOhip::from_settings(narrow, &crate::settings::Context::default()).expect("valid");
    let eleven = signed_at(&checkout(), SECRET, now().as_second() - 11);
    assert_eq!(
        narrow.check(&eleven.view(), now()),
        Err(Rejection::StaleTimestamp)
    );
}

#[test]
fn an_old_request_is_refused_as_stale_before_any_mac_forged_or_not() {
    for secret in [SECRET, "whsec_other"] {
        let old = signed_at(&checkout(), secret, now().as_second() - 3600);
        let (result, macs, _) = crate::signing::work::measure(|| verify(&old));
        assert_eq!(result, Err(Rejection::StaleTimestamp));
        assert_eq!(macs, 0);
    }
    // Within the window, a forged request is refused as forged.
    let forged = signed_at(&checkout(), "whsec_other", now().as_second());
    assert_eq!(verify(&forged), Err(Rejection::SignatureMismatch));
}

#[test]
fn missing_and_malformed_headers_fail() {
    let good = signed(&checkout(), SECRET);
    let ts = good.headers["x-oracle-timestamp"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let sig = good.headers["x-oracle-signature"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let only_ts = OwnedRequest::post(PATH, checkout()).header("x-oracle-timestamp", &ts);
    assert_eq!(
        verify(&only_ts),
        Err(Rejection::MissingSignature("x-oracle-signature".into()))
    );
    let only_sig = OwnedRequest::post(PATH, checkout()).header("x-oracle-signature", &sig);
    assert_eq!(
        verify(&only_sig),
        Err(Rejection::MissingTimestamp("x-oracle-timestamp".into()))
    );
    for bad_ts in ["soon", "-1", "1.7e9", "", "17000000000000"] {
        let request = OwnedRequest::post(PATH, checkout())
            .header("x-oracle-timestamp", bad_ts)
            .header("x-oracle-signature", &sig);
        assert_eq!(
            verify(&request),
            Err(Rejection::MalformedTimestamp("x-oracle-timestamp".into())),
            "{bad_ts}"
        );
    }
    for bad_sig in [
        sig.trim_start_matches("sha256="),
        &sig[..sig.len() - 2],
        "sha256=zz",
        "sha1=abcd",
    ] {
        let request = OwnedRequest::post(PATH, checkout())
            .header("x-oracle-timestamp", &ts)
            .header("x-oracle-signature", bad_sig);
        assert_eq!(
            verify(&request),
            Err(Rejection::MalformedSignature("x-oracle-signature".into())),
            "{bad_sig}"
        );
    }
    let twice = signed(&checkout(), SECRET).header("x-oracle-signature", &sig);
    assert_eq!(
        verify(&twice),
        Err(Rejection::RepeatedSignature("x-oracle-signature".into()))
    );
}

#[test]
fn a_checkout_is_reservation_checked_out_with_room_guest_and_time() {
    let events = normalize_body(&checkout());
    let event = &events[0].event;
    assert_eq!(event.event_type(), EventType::ReservationCheckedOut);
    assert_eq!(event.providereventid, "evt_checkout_12345");
    assert_eq!(event.propertyid.as_deref(), Some("hotel_001"));
    assert_eq!(event.subject.as_deref(), Some("res_67890"));
    assert_eq!(
        event.time.map(|t| t.to_string()).as_deref(),
        Some("2026-02-16T11:05:00Z")
    );
    assert_eq!(
        data(&events[0]),
        json!({"reservation_id": "res_67890", "guest": {"guest_id": "guest_abc"}, "room_number": "305",
            "checked_out_at": "2026-02-16T11:00:00Z"})
    );
}

#[test]
fn every_documented_event_type_maps() {
    let cases = [
        (
            json!({"eventType": "RESERVATION_CREATED", "eventId": "e1", "reservationId": "r1",
            "roomNumber": "101", "arrivalDate": "2026-03-01", "departureDate": "2026-03-03"}),
            EventType::ReservationCreated,
        ),
        (
            json!({"eventType": "ROOM_STATUS_CHANGED", "eventId": "e2", "roomNumber": "412",
            "status": "OUT_OF_ORDER", "reason": "AC maintenance required"}),
            EventType::RoomStatusChanged,
        ),
        (
            json!({"eventType": "ROOM_MAINTENANCE_REQUIRED", "eventId": "e3", "roomNumber": "412",
            "issue": "AC broken", "priority": "HIGH"}),
            EventType::RoomMaintenanceRequired,
        ),
        (
            json!({"eventType": "HOUSEKEEPING_STATUS_CHANGED", "eventId": "e4", "roomNumber": "305",
            "housekeepingStatus": "CLEAN", "assignedTo": "hk_7"}),
            EventType::HousekeepingStatusChanged,
        ),
        (
            json!({"eventType": "GUEST_REQUEST_CREATED", "eventId": "e5", "roomNumber": "305",
            "requestId": "gr1", "requestType": "TOWELS", "description": "Two extra towels"}),
            EventType::GuestRequestCreated,
        ),
    ];
    for (payload, expected) in cases {
        let events = normalize_body(payload.to_string().as_bytes());
        assert_eq!(events[0].event.event_type(), expected, "{payload}");
    }
    let room = normalize_body(
        json!({"eventType": "ROOM_STATUS_CHANGED", "eventId": "e2", "roomNumber": "412",
        "status": "OUT_OF_ORDER", "reason": "AC"})
        .to_string()
        .as_bytes(),
    );
    assert_eq!(
        data(&room[0]),
        json!({"room_number": "412", "status": "out_of_order", "vendor_status": "OUT_OF_ORDER", "reason": "AC"})
    );
}

#[test]
fn unmapped_types_and_missing_ids_are_unknown() {
    let events = normalize_body(br#"{"eventType":"BLOCK_CREATED","eventId":"e9","hotelId":"h"}"#);
    assert_eq!(events[0].event.event_type(), EventType::Unknown);
    assert_eq!(events[0].event.providereventid, "e9");
    let body = br#"{"eventType":"GUEST_CHECKOUT","hotelId":"h"}"#;
    let events = normalize_body(body);
    assert_eq!(events[0].event.event_type(), EventType::Unknown);
    assert_eq!(events[0].event.providereventid, hashed_key(body));
}

#[test]
fn unparseable_bodies_are_malformed() {
    let request = OwnedRequest::post(PATH, b"{\"eventType\":".to_vec());
    assert!(matches!(
        normalize(&request.view(), &origin("oracle", "oracle_ohip")),
        Err(Rejection::MalformedBody { .. })
    ));
}

#[test]
fn the_answer_is_the_guides() {
    let request = OwnedRequest::post(PATH, checkout());
    let reply = oracle(&[SECRET])
        .normalize(
            Checked::new(&request.view()),
            &origin("oracle", "oracle_ohip"),
        )
        .expect("normalizes")
        .reply;
    assert_eq!(reply.status, 200);
    let body: Value = serde_json::from_str(&reply.body).expect("json");
    assert_eq!(
        body,
        json!({"success": true, "data": {"message": "Webhook processed successfully",
            "eventId": "evt_checkout_12345", "eventType": "GUEST_CHECKOUT"}})
    );
}

/// The provider's settings with these secrets and nothing else.
fn settings(values: &[&str]) -> Settings {
    Settings {
        secrets: crate::testing::secrets(values),
        ..Settings::default()
    }
}
