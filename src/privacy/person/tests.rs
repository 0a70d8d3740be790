use proptest::prelude::*;

use super::*;

fn phone() -> Person {
    Person::phone("+49 151 2345 6789").unwrap()
}

#[test]
fn every_spelling_of_a_number_is_one_person() {
    for spelling in [
        "+4915123456789",
        "004915123456789",
        "4915123456789",
        "(+49) 151-2345-6789",
        "whatsapp:+4915123456789",
        "+49 151 2345 6789",
    ] {
        let person = Person::phone(spelling).unwrap();
        assert_eq!(person.canonical(), "+4915123456789", "{spelling}");
        assert_eq!(person, phone());
    }
}

#[test]
fn national_and_short_numbers_are_refused() {
    for text in ["0151 2345 6789", "12345", "+49 abc", "", "anna@example.com"] {
        assert_eq!(Person::phone(text), Err(PersonError::Phone), "{text}");
    }
}

#[test]
fn a_phone_number_is_found_in_every_way_it_is_written() {
    let person = phone();
    for json in [
        r#"{"data":{"from":"+4915123456789"}}"#,
        r#"{"data":{"from":"4915123456789"}}"#,
        r#"{"data":{"raw":{"wa_id":"004915123456789"}}}"#,
        r#"{"data":{"text":"call me on +49 151 2345-6789 please"}}"#,
        r#"{"data":{"to":"whatsapp:+4915123456789"}}"#,
        r#"{"data":{"n":4915123456789}}"#,
    ] {
        assert!(person.in_event(json), "{json}");
    }
}

#[test]
fn other_numbers_are_not_the_person() {
    let person = phone();
    for json in [
        r#"{"data":{"from":"+4915123456788"}}"#,
        r#"{"data":{"from":"+49151234567890"}}"#,
        r#"{"data":{"id":"14915123456789"}}"#,
        r#"{"data":{"text":"+49 151 2345"}}"#,
        r#"{"data":{}}"#,
    ] {
        assert!(!person.in_event(json), "{json}");
    }
}

#[test]
fn form_encoded_bodies_are_searched_decoded() {
    let person = phone();
    assert!(person.in_body(b"From=whatsapp%3A%2B4915123456789&Body=hi"));
    assert!(person.in_body(b"From=%2B49%20151%202345%206789"));
    let email = Person::email("Anna@Example.COM").unwrap();
    assert!(email.in_body(b"Email=anna%40example.com&x=1"));
    assert!(!email.in_body(b"Email=joanna%40example.com"));
}

#[test]
fn emails_match_whole_and_without_case() {
    let person = Person::email(" Anna.Berg@Example.com ").unwrap();
    assert_eq!(person.canonical(), "anna.berg@example.com");
    assert!(person.in_event(r#"{"data":{"email":"ANNA.BERG@example.com"}}"#));
    assert!(person.in_event(r#"{"data":{"text":"write to anna.berg@example.com."}}"#));
    assert!(!person.in_event(r#"{"data":{"email":"joanna.berg@example.com"}}"#));
    assert!(!person.in_event(r#"{"data":{"email":"anna.berg@example.com.au"}}"#));
    for text in ["anna", "a@b@c", "@x.de", "anna@", "an na@x.de"] {
        assert_eq!(Person::email(text), Err(PersonError::Email), "{text}");
    }
}

#[test]
fn a_guest_id_is_found_only_where_a_guest_id_stands() {
    let person = Person::guest_id("G-1001").unwrap();
    for json in [
        r#"{"data":{"guest_id":"G-1001"}}"#,
        r#"{"data":{"guest":{"guest_id":"G-1001","name":"x"}}}"#,
        r#"{"data":{"raw":{"GuestId":"G-1001"}}}"#,
        r#"{"data":{"raw":{"Customer":{"Id":"G-1001"}}}}"#,
        r#"{"data":{"raw":{"profileIdList":[{"id":"G-1001","type":"Profile"}]}}}"#,
        r#"{"data":{"raw":{"guestIds":["G-1000","G-1001"]}}}"#,
    ] {
        assert!(person.in_event(json), "{json}");
    }
    for json in [
        r#"{"data":{"room":"G-1001"}}"#,
        r#"{"data":{"reservation_id":"G-1001"}}"#,
        r#"{"data":{"guest_id":"G-10011"}}"#,
        r#"{"data":{"text":"guest G-1001"}}"#,
    ] {
        assert!(!person.in_event(json), "{json}");
    }
    let numeric = Person::guest_id("12345").unwrap();
    assert!(numeric.in_event(r#"{"data":{"raw":{"profileId":12345}}}"#));
    assert!(!numeric.in_event(r#"{"data":{"room":12345}}"#));
}

#[test]
fn a_guest_id_in_an_unparsed_body_is_a_whole_word() {
    let person = Person::guest_id("G-1001").unwrap();
    assert!(person.in_body(b"<guest id=\"G-1001\"/>"));
    assert!(!person.in_body(b"<guest id=\"G-10011\"/>"));
    assert!(!person.in_body(b"<guest id=\"XG-1001\"/>"));
    assert_eq!(Person::guest_id("  "), Err(PersonError::GuestId));
}

#[test]
fn debug_never_shows_the_value() {
    let shown = format!("{:?}", phone());
    assert!(!shown.contains("4915"), "{shown}");
}

#[test]
fn the_token_is_the_hash_destinations_see() {
    let key = [7u8; 32];
    assert_eq!(phone().token(&key), token(&key, "+4915123456789"));
}

proptest! {
    #[test]
    fn no_bytes_make_matching_panic(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        for person in [
            phone(),
            Person::email("a@b.de").unwrap(),
            Person::guest_id("7").unwrap(),
        ] {
            let _ = person.in_body(&body);
            let _ = person.in_event(&String::from_utf8_lossy(&body));
        }
    }

    #[test]
    fn a_number_written_with_any_separators_is_found(
        seps in proptest::collection::vec(prop_oneof![Just(""), Just(" "), Just("-"), Just(".")], 13),
        prefix in prop_oneof![Just("+"), Just("00"), Just(""), Just("whatsapp:+")],
    ) {
        let digits = "4915123456789";
        let mut written = String::from(prefix);
        for (digit, sep) in digits.chars().zip(&seps) {
            written.push(digit);
            written.push_str(sep);
        }
        let json = format!(r#"{{"data":{{"from":"{}"}}}}"#, written.trim_end_matches(['-', '.', ' ']));
        prop_assert!(phone().in_event(&json), "{}", json);
    }
}
