use serde_json::{Value, json};

use super::*;
use crate::event::EventType;
use crate::testing::{OwnedRequest, origin};

const TOKEN: &str = "cloudbeds-url-token-0123456789";

fn cloudbeds() -> Cloudbeds {
    Cloudbeds::from_settings(&SourceSettings {
        url_token: Some(Secret::new(TOKEN)),
        ..SourceSettings::default()
    })
    .expect("valid")
}

fn normalize_json(payload: Value) -> Vec<Normalized> {
    let request = OwnedRequest::post("/webhooks/pms/cloudbeds", payload.to_string().into_bytes());
    normalize(&request.view(), &origin("cloudbeds", "cloudbeds")).expect("normalizes")
}

fn data(events: &[Normalized]) -> Value {
    serde_json::to_value(&events[0].event).expect("json")["data"].clone()
}

#[test]
fn only_the_full_token_passes() {
    let with = |query: &str| {
        let mut request = OwnedRequest::post("/c", b"{}".to_vec());
        request.query = Some(query.to_owned());
        cloudbeds().verify(&request.view())
    };
    assert_eq!(with(&format!("token={TOKEN}")), Ok(()));
    assert_eq!(
        with(&format!("token={}X", &TOKEN[..TOKEN.len() - 1])),
        Err(Rejection::BadUrlToken)
    );
    assert_eq!(with("token="), Err(Rejection::BadUrlToken));
    assert_eq!(with(""), Err(Rejection::BadUrlToken));
}

#[test]
fn status_changes_map_to_the_matching_reservation_event() {
    for (status, expected) in [
        ("checked_in", EventType::ReservationCheckedIn),
        ("checked_out", EventType::ReservationCheckedOut),
        ("canceled", EventType::ReservationCancelled),
        ("confirmed", EventType::ReservationUpdated),
        ("no_show", EventType::ReservationUpdated),
    ] {
        let events = normalize_json(
            json!({"version": "1.0", "event": "reservation/status_changed",
            "propertyID": 12345, "propertyID_str": "12345", "reservationID": "RES-1", "status": status,
            "timestamp": 1710511200.123456}),
        );
        assert_eq!(events[0].event.event_type(), expected, "{status}");
        assert_eq!(events[0].event.propertyid.as_deref(), Some("12345"));
    }
}

#[test]
fn every_documented_event_maps_whatever_the_casing() {
    let cases = [
        (
            json!({"event": "reservation/created", "propertyID": 1, "reservationID": "R1", "timestamp": 1.5}),
            EventType::ReservationCreated,
        ),
        (
            json!({"event": "reservation/dates_changed", "propertyId": 1, "reservationId": "R1", "startDate": "2024-04-01", "endDate": "2024-04-03", "timestamp": 2.5}),
            EventType::ReservationUpdated,
        ),
        (
            json!({"event": "guest/created", "propertyId": 1, "guestId": 77, "guestId_str": "77", "reservationId": "R1"}),
            EventType::GuestCreated,
        ),
        (
            json!({"event": "guest/details_changed", "propertyId": 1, "guestId": 77}),
            EventType::GuestUpdated,
        ),
        (
            json!({"event": "housekeeping/room_condition_changed", "propertyID": 1, "roomID": "101-A", "roomCondition": "dirty"}),
            EventType::HousekeepingStatusChanged,
        ),
        (
            json!({"event": "night_audit/completed", "propertyID": 1}),
            EventType::Unknown,
        ),
    ];
    for (payload, expected) in cases {
        let events = normalize_json(payload.clone());
        assert_eq!(events[0].event.event_type(), expected, "{payload}");
    }
    let dates = normalize_json(
        json!({"event": "reservation/dates_changed", "propertyId": 1, "reservationId": "R1",
        "startDate": "2024-04-01", "endDate": "2024-04-03", "timestamp": 2.5}),
    );
    assert_eq!(
        data(&dates),
        json!({"reservation_id": "R1", "arrival_date": "2024-04-01", "departure_date": "2024-04-03"})
    );
    let room = normalize_json(
        json!({"event": "housekeeping/room_condition_changed", "propertyID": 1, "roomID": "101-A", "roomCondition": "dirty"}),
    );
    assert_eq!(
        data(&room),
        json!({"room_id": "101-A", "status": "dirty", "vendor_status": "dirty"})
    );
}

#[test]
fn exact_string_ids_win_over_rounded_numbers() {
    let events = normalize_json(
        json!({"event": "guest/created", "propertyId": 1, "guestId": 12345678901234567890u64,
        "guestId_str": "12345678901234567890"}),
    );
    assert_eq!(data(&events)["guest_id"], "12345678901234567890");
}

#[test]
fn the_key_separates_occurrences_and_matches_redeliveries() {
    let at = |status: &str, ts: f64| {
        normalize_json(
            json!({"event": "reservation/status_changed", "propertyID": 1,
        "reservationID": "R1", "status": status, "timestamp": ts}),
        )[0]
        .dedupe_key
        .clone()
    };
    assert_eq!(at("checked_in", 1.5), at("checked_in", 1.5));
    assert_ne!(at("checked_in", 1.5), at("checked_out", 1.5));
    assert_ne!(at("checked_in", 1.5), at("checked_in", 2.5));
}

#[test]
fn garbage_is_malformed() {
    let request = OwnedRequest::post("/c", b"{\"event\":".to_vec());
    assert!(matches!(
        normalize(&request.view(), &origin("c", "cloudbeds")),
        Err(Rejection::MalformedBody { .. })
    ));
}
