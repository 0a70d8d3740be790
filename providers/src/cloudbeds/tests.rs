use serde_json::{Value, json};

use super::*;
use crate::event::EventType;
use crate::testing::{Check, OwnedRequest, origin};
use crate::{Secret, ToSign, WebhookProvider};

const TOKEN: &str = "cloudbeds-url-token-0123456789";

fn cloudbeds() -> Cloudbeds {
    Cloudbeds::from_settings(
        Settings {
            url_token: Some(Secret::new(TOKEN)),
        },
        &crate::settings::Context::default(),
    )
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
        cloudbeds().check(&request.view(), crate::testing::now())
    };
    assert_eq!(with(&format!("token={TOKEN}")), Ok(()));
    assert_eq!(
        with(&format!("token={}X", &TOKEN[..TOKEN.len() - 1])),
        Err(Rejection::BadUrlToken)
    );
    assert_eq!(with("token="), Err(Rejection::BadUrlToken));
    assert_eq!(with(""), Err(Rejection::BadUrlToken));
    assert_eq!(
        with(&format!("token={TOKEN}0")),
        Err(Rejection::BadUrlToken)
    );
    assert_eq!(
        with(&format!("token={TOKEN}&token={TOKEN}")),
        Err(Rejection::BadUrlToken)
    );
    let no_query = OwnedRequest::post("/c", b"{}".to_vec());
    assert_eq!(
        cloudbeds().check(&no_query.view(), crate::testing::now()),
        Err(Rejection::BadUrlToken)
    );
}

#[test]
fn a_missing_or_short_token_is_a_setting_error() {
    for token in [None, Some("short")] {
        let settings = Settings {
            url_token: token.map(Secret::new),
        };
        assert_eq!(
            Cloudbeds::from_settings(settings, &crate::settings::Context::default())
                .expect_err("refused")[0]
                .key,
            "url_token"
        );
    }
}

#[test]
fn the_signer_adds_the_token_that_verify_wants() {
    let signed = cloudbeds().sign(&ToSign {
        path: "/webhooks/pms/cloudbeds",
        query: None,
        content_type: "application/json",
        body: b"{}",
        now: crate::testing::now(),
    });
    let mut request = OwnedRequest::post("/c", b"{}".to_vec());
    request.query = signed.query;
    assert_eq!(
        cloudbeds().check(&request.view(), crate::testing::now()),
        Ok(())
    );
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
fn the_key_reads_ids_whatever_their_casing() {
    let key = |payload: Value| normalize_json(payload)[0].dedupe_key.clone();
    assert_eq!(
        key(json!({"event": "guest/created", "propertyID": 1, "guestID": 7, "timestamp": 1.5})),
        key(
            json!({"event": "guest/created", "propertyId_str": "1", "guestId": "7", "timestamp": 1.5})
        )
    );
    assert_ne!(
        key(json!({"event": "guest/created", "propertyId": 1, "guestId": 7, "timestamp": 1.5})),
        key(json!({"event": "guest/created", "propertyId": 2, "guestId": 7, "timestamp": 1.5}))
    );
    assert_ne!(
        key(json!({"event": "guest/created", "propertyId": 1, "guestId": 7, "timestamp": 1.5})),
        key(json!({"event": "guest/created", "propertyId": 1, "guestId": 8, "timestamp": 1.5}))
    );
}

#[test]
fn unmodelled_events_are_kept_whole_and_keyed_by_their_bytes() {
    // `accounting/transaction` carries no timestamp and ids porter does not key on.
    let transaction = |id: &str| {
        json!({"version": "1.0", "propertyId": "12345", "event": "accounting/transaction",
        "transactionId": id, "serviceDate": "2025-09-24"})
    };
    let first = normalize_json(transaction("148785457922303"));
    let second = normalize_json(transaction("148785457922304"));
    assert_eq!(first[0].event.event_type(), EventType::Unknown);
    assert_ne!(first[0].dedupe_key, second[0].dedupe_key);
    assert_eq!(
        first[0].dedupe_key,
        normalize_json(transaction("148785457922303"))[0].dedupe_key
    );
    assert_eq!(data(&first)["raw"], transaction("148785457922303"));
    assert_eq!(first[0].event.propertyid.as_deref(), Some("12345"));
}

#[test]
fn the_time_is_the_timestamp_to_the_microsecond() {
    let events = normalize_json(
        json!({"event": "reservation/created", "propertyID": 1, "reservationID": "R1", "timestamp": 1789459200.431234}),
    );
    let event = serde_json::to_value(&events[0].event).expect("json");
    assert_eq!(event["time"], "2026-09-15T08:00:00.431234Z");
}

#[test]
fn garbage_is_malformed() {
    let request = OwnedRequest::post("/c", b"{\"event\":".to_vec());
    assert!(matches!(
        normalize(&request.view(), &origin("c", "cloudbeds")),
        Err(Rejection::MalformedBody { .. })
    ));
}
