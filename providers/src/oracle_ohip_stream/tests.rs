use super::*;
use serde_json::json;

fn origin() -> Origin<'static> {
    Origin {
        source_name: "opera",
        provider: PROVIDER,
        received_at: "2024-04-28T06:19:00Z".parse().expect("time"),
    }
}

fn event(module: &str, name: &str, detail: Value) -> Value {
    json!({
        "metadata": {"offset": "1234", "uniqueEventId": "ZXZlbnQtMTIzNA=="},
        "moduleName": module,
        "eventName": name,
        "primaryKey": "987654",
        "timestamp": "28-APR-24 06.18.59.028027 AM",
        "hotelId": "HOTEL1",
        "publisherId": "159",
        "actionInstanceId": "4567",
        "detail": detail
    })
}

fn normalize_utc(value: &Value) -> Result<StreamEvent, Rejection> {
    normalize(&origin(), value, "CHAIN1", &TimeZone::UTC)
}

#[test]
fn the_app_key_hash_matches_oracles_examples() {
    assert_eq!(
        key_hash("ABC-123"),
        "4d156d7bc9c38c000aa1e5b06e46e1f40cafe651f3cabfae9bad48803baf17bf"
    );
    assert_eq!(
        key_hash("41ecd082-8997-4c69-af34-2f72b83645ff"),
        "2339955a22a9df299effd651dbf007a75e33b1e05e00742899cb067211fd4443"
    );
}

#[test]
fn oracle_timestamps_are_read_in_the_configured_zone() {
    let utc = oracle_time("28-APR-24 06.18.59.028027 AM", &TimeZone::UTC).expect("parses");
    assert_eq!(utc.to_string(), "2024-04-28T06:18:59.028027Z");
    let pm = oracle_time("28-APR-24 06.18.59.028027 PM", &TimeZone::UTC).expect("parses");
    assert_eq!(pm.to_string(), "2024-04-28T18:18:59.028027Z");
    let midnight = oracle_time("01-JAN-25 12.00.00 AM", &TimeZone::UTC).expect("parses");
    assert_eq!(midnight.to_string(), "2025-01-01T00:00:00Z");
    let noon = oracle_time("01-jan-2025 12.00.00.5 PM", &TimeZone::UTC).expect("parses");
    assert_eq!(noon.to_string(), "2025-01-01T12:00:00.5Z");
    let berlin = TimeZone::get("Europe/Berlin").expect("tzdb");
    let summer = oracle_time("28-APR-24 06.18.59.000000 AM", &berlin).expect("parses");
    assert_eq!(summer.to_string(), "2024-04-28T04:18:59Z");
    // RR: two-digit years 50-99 are the 1900s.
    let old = oracle_time("31-DEC-99 11.59.59 PM", &TimeZone::UTC).expect("parses");
    assert_eq!(old.to_string(), "1999-12-31T23:59:59Z");
    // RFC 3339 passes through.
    let rfc = oracle_time("2024-04-28T06:18:59Z", &TimeZone::UTC).expect("parses");
    assert_eq!(rfc.to_string(), "2024-04-28T06:18:59Z");
}

#[test]
fn malformed_oracle_timestamps_are_none_not_a_panic() {
    for text in [
        "",
        "28-APR-24",
        "28-APX-24 06.18.59 AM",
        "31-FEB-24 06.18.59 AM",
        "28-APR-24 13.18.59 PM",
        "28-APR-24 00.18.59 AM",
        "28-APR-24 06.61.59 AM",
        "28-APR-24 06.18.59.1234567890 AM",
        "28-APR-24 06.18.59 XM",
        "28-APR-24 06.18 AM",
        "28-APR-24 06.18.59 AM extra",
        "-APR-24 06.18.59 AM",
        "28-APR-2024-1 06.18.59 AM",
        "２８-APR-24 06.18.59 AM",
    ] {
        assert_eq!(oracle_time(text, &TimeZone::UTC), None, "{text}");
    }
}

#[test]
fn a_check_in_becomes_reservation_checked_in_with_the_streams_words() {
    let value = event(
        "Reservation",
        "CHECK IN",
        json!([
            {"elementName": "RESV STATUS", "oldValue": "RESERVED", "newValue": "CHECKED IN"},
            {"elementName": "ROOM", "oldValue": "", "newValue": "512"},
            {"elementName": "ARRIVAL", "oldValue": null, "newValue": "28-APR-24"}
        ]),
    );
    let stream = normalize_utc(&value).expect("normalizes");
    assert_eq!(stream.offset, "1234");
    let event = &stream.normalized.event;
    assert_eq!(event.event_type().as_str(), "reservation.checked_in");
    assert_eq!(event.providereventid, "ZXZlbnQtMTIzNA==");
    assert_eq!(stream.normalized.dedupe_key, event.id);
    assert_eq!(event.subject.as_deref(), Some("987654"));
    assert_eq!(event.propertyid.as_deref(), Some("HOTEL1"));
    assert_eq!(event.provider, "oracle_ohip_stream");
    assert_eq!(event.source, "/sources/opera");
    assert_eq!(
        event.time.map(|t| t.to_string()).as_deref(),
        Some("2024-04-28T06:18:59.028027Z")
    );
    let ohip = event.ohip.as_ref().expect("extensions");
    assert_eq!(ohip.ohipoffset, "1234");
    assert_eq!(ohip.ohipmodule, "Reservation");
    assert_eq!(ohip.ohipevent, "CHECK IN");
    let EventBody::ReservationCheckedIn(data) = &event.body else {
        panic!("{:?}", event.body)
    };
    assert_eq!(data.reservation_id.as_deref(), Some("987654"));
    assert_eq!(data.status.as_deref(), Some("CHECKED IN"));
    assert_eq!(data.room_number.as_deref(), Some("512"));
    assert_eq!(data.arrival_date.as_deref(), Some("2024-04-28"));
    assert_eq!(data.raw.as_ref(), Some(&value));
    let json = serde_json::to_value(event).expect("json");
    assert_eq!(json["ohipoffset"], "1234");
    assert_eq!(json["ohiptimestamp"], "28-APR-24 06.18.59.028027 AM");
}

#[test]
fn the_mapping_table() {
    let cases = [
        ("RESERVATION", "NEW RESERVATION", "reservation.created"),
        ("Reservation", "update  reservation", "reservation.updated"),
        ("RESERVATION", "CANCEL", "reservation.cancelled"),
        ("RESERVATION", "CANCEL RESERVATION", "reservation.cancelled"),
        ("RESERVATION", "ROLLBACK CANCEL", "reservation.updated"),
        ("RESERVATION", "CHECK IN", "reservation.checked_in"),
        ("RESERVATION", "CHECK OUT", "reservation.checked_out"),
        ("RESERVATION", "REVERSE CHECK IN", "reservation.updated"),
        ("RESERVATION", "REVERSE CHECK OUT", "reservation.updated"),
        ("RESERVATION", "NO SHOW", "reservation.updated"),
        ("PROFILE", "NEW PROFILE", "guest.created"),
        ("PROFILE", "CREATE PROFILE", "guest.created"),
        ("PROFILE", "UPDATE PROFILE", "guest.updated"),
        (
            "HOUSEKEEPING",
            "UPDATE ROOM STATUS",
            "housekeeping.status_changed",
        ),
        ("HOUSEKEEPING", "NEW OUT OF ORDER", "room.status_changed"),
        (
            "HOUSEKEEPING",
            "UPDATE OUT OF SERVICE",
            "room.status_changed",
        ),
        ("CASHIERING", "NEW POSTING", "unknown"),
        ("AVAILABILITY", "SUMMARY TOTALS", "unknown"),
        ("RESERVATION", "SOMETHING NEW", "unknown"),
    ];
    for (module, name, expected) in cases {
        let stream = normalize_utc(&event(module, name, json!([]))).expect("normalizes");
        assert_eq!(
            stream.normalized.event.event_type().as_str(),
            expected,
            "{module}/{name}"
        );
    }
}

#[test]
fn room_status_and_profile_details_are_read_and_unescaped() {
    let room = normalize_utc(&event(
        "HOUSEKEEPING",
        "UPDATE ROOM STATUS",
        json!([{"elementName": "ROOM STATUS", "oldValue": "DIRTY", "newValue": "INSPECTED"}]),
    ))
    .expect("normalizes");
    let EventBody::HousekeepingStatusChanged(data) = &room.normalized.event.body else {
        panic!()
    };
    assert_eq!(data.status, Some(RoomStatus::Inspected));
    assert_eq!(data.vendor_status.as_deref(), Some("INSPECTED"));

    let profile = normalize_utc(&event(
        "PROFILE",
        "UPDATE PROFILE",
        json!([
            {"elementName": "First Name", "oldValue": "Ana", "newValue": "Ana &amp; Bo"},
            {"elementName": "LAST NAME", "oldValue": "X", "newValue": "O&quot;Neil"}
        ]),
    ))
    .expect("normalizes");
    let EventBody::GuestUpdated(data) = &profile.normalized.event.body else {
        panic!()
    };
    assert_eq!(data.guest_id.as_deref(), Some("987654"));
    assert_eq!(data.first_name.as_deref(), Some("Ana & Bo"));
    assert_eq!(data.last_name.as_deref(), Some("O\"Neil"));
}

#[test]
fn without_a_unique_event_id_the_key_is_the_chain_and_offset() {
    let mut value = event("RESERVATION", "CHECK OUT", json!([]));
    value["metadata"] = json!({"offset": "77"});
    let a = normalize_utc(&value).expect("normalizes");
    assert!(a.normalized.event.providereventid.starts_with("sha256:"));
    let b = normalize_utc(&value).expect("normalizes");
    assert_eq!(a.normalized.event.id, b.normalized.event.id);
    value["metadata"]["offset"] = json!("78");
    let c = normalize_utc(&value).expect("normalizes");
    assert_ne!(a.normalized.event.id, c.normalized.event.id);
    // Another chain's offset 77 is another event.
    value["metadata"]["offset"] = json!("77");
    let other = normalize(&origin(), &value, "CHAIN2", &TimeZone::UTC).expect("normalizes");
    assert_ne!(a.normalized.event.id, other.normalized.event.id);
}

#[test]
fn a_frame_that_is_not_an_event_is_refused_not_stored() {
    for value in [
        json!({}),
        json!({"metadata": {"offset": "12"}, "moduleName": "RESERVATION"}),
        json!({"metadata": {"offset": "-1"}, "moduleName": "R", "eventName": "E"}),
        json!({"metadata": {"offset": ""}, "moduleName": "R", "eventName": "E"}),
        json!({"metadata": {"offset": 12}, "moduleName": "R", "eventName": "E"}),
        json!([1, 2]),
        json!("text"),
    ] {
        assert!(
            matches!(normalize_utc(&value), Err(Rejection::MalformedBody { .. })),
            "{value}"
        );
    }
    // Only the essentials are required: an event without a timestamp, key or detail stays.
    let minimal = json!({"metadata": {"offset": "1"}, "moduleName": "X", "eventName": "Y"});
    let stream = normalize_utc(&minimal).expect("normalizes");
    assert_eq!(stream.normalized.event.event_type().as_str(), "unknown");
    assert_eq!(stream.normalized.event.time, None);
}

#[test]
fn offsets_compare_as_numbers() {
    use std::cmp::Ordering::*;
    assert_eq!(offset_cmp("9", "10"), Less);
    assert_eq!(offset_cmp("0010", "10"), Equal);
    assert_eq!(offset_cmp("99999999999999999999", "100"), Greater);
    assert!(is_offset("0"));
    assert!(!is_offset("123456789012345678901"));
    assert!(!is_offset("12a"));
}

#[test]
fn the_subscription_query_has_its_arguments_inline() {
    let hotels = vec!["HOTEL1".to_owned(), "HOTEL2".to_owned()];
    let query = subscribe_query(&Subscription {
        chain_code: "CHAIN1",
        offset: Some("1234"),
        hotel_codes: &hotels,
        delta: true,
    });
    assert!(
        query.starts_with(
            "subscription { newEvent(input: { chainCode: \"CHAIN1\" offset: \"1234\" \
             hotelCode: \"HOTEL1,HOTEL2\" delta: true }) { metadata { offset uniqueEventId }"
        ),
        "{query}"
    );
    let plain = subscribe_query(&Subscription {
        chain_code: "A\"B\\C",
        ..Subscription::default()
    });
    assert!(
        plain.contains("newEvent(input: { chainCode: \"A\\\"B\\\\C\" })"),
        "{plain}"
    );
    assert!(valid_chain_code("CHAIN 1_%#$&-"));
    assert!(!valid_chain_code("CHAIN\"1"));
    assert!(!valid_chain_code(""));
    assert!(!valid_chain_code("ABCDEFGHIJKLMNOPQRSTU"));
    assert!(valid_hotel_codes(&hotels));
    assert!(!valid_hotel_codes(&["A,B".to_owned()]));
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn on_any_timestamp_text(text in "\\PC{0,40}") {
            let _ = oracle_time(&text, &TimeZone::UTC);
        }

        #[test]
        fn on_timestamp_shaped_text(
            day in "[0-9]{0,3}", month in "[A-Za-z]{0,4}", year in "[0-9]{0,5}",
            clock in "[0-9.]{0,20}", meridiem in "(AM|PM|am|XM|)",
        ) {
            let _ = oracle_time(&format!("{day}-{month}-{year} {clock} {meridiem}"), &TimeZone::UTC);
        }

        #[test]
        fn on_any_json_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(value) = serde_json::from_slice::<Value>(&bytes) {
                let _ = normalize_utc(&value);
            }
        }

        #[test]
        fn on_event_shaped_json(
            offset in "\\PC{0,25}", module in "\\PC{0,20}", name in "\\PC{0,20}",
            element in "\\PC{0,20}", value in "\\PC{0,30}", timestamp in "\\PC{0,30}",
        ) {
            let event = json!({
                "metadata": {"offset": offset, "uniqueEventId": value},
                "moduleName": module, "eventName": name, "timestamp": timestamp,
                "detail": [{"elementName": element, "newValue": value}]
            });
            let _ = normalize_utc(&event);
        }
    }
}
