use base64::Engine;
use serde_json::json;

use super::*;
use crate::Secret;
use crate::testing::{Check, NormalizeChecked, OwnedRequest, now, origin};

fn settings(hmac: HmacSettings) -> Settings {
    Settings {
        secrets: vec![Secret::new("It's a Secret to Everybody")],
        hmac: Some(hmac),
        public_url: Some("https://hooks.example.com".into()),
        event_types: vec![("reservation.new".into(), EventType::ReservationCreated)]
            .into_iter()
            .collect(),
        ..Settings::default()
    }
}

fn github() -> GenericHmac {
    GenericHmac::from_settings(
        settings(HmacSettings {
            header: "X-Hub-Signature-256".into(),
            prefix: Some("sha256=".into()),
            id_header: Some("X-GitHub-Delivery".into()),
            type_pointer: Some("/action".into()),
            ..HmacSettings::default()
        }),
        &crate::settings::Context::default(),
    )
    .expect("valid")
}

#[test]
fn configured_as_github_it_matches_githubs_documented_vector() {
    let request = OwnedRequest::post("/gh", b"Hello, World!".to_vec()).header(
        "x-hub-signature-256",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
    );
    assert_eq!(github().check(&request.view(), now()), Ok(()));
    let tampered = OwnedRequest::post("/gh", b"Hello, World?".to_vec()).header(
        "x-hub-signature-256",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
    );
    assert_eq!(
        github().check(&tampered.view(), now()),
        Err(Rejection::SignatureMismatch)
    );
}

fn shopify_like() -> GenericHmac {
    GenericHmac::from_settings(
        settings(HmacSettings {
            header: "X-Vendor-Signature".into(),
            encoding: Some("base64".into()),
            algorithm: Some("sha512".into()),
            signed: Some("{id}:{timestamp}:{url}:{body}".into()),
            timestamp_header: Some("X-Vendor-Timestamp".into()),
            id_header: Some("X-Vendor-Id".into()),
            type_pointer: Some("/kind".into()),
            ..HmacSettings::default()
        }),
        &crate::settings::Context::default(),
    )
    .expect("valid")
}

const BODY: &str = r#"{"kind":"reservation.new","reservation_id":"R9"}"#;

fn vendor_request(secret: &str, id: &str, timestamp: i64, body: &str) -> OwnedRequest {
    let content = format!("{id}:{timestamp}:https://hooks.example.com/vendor?x=1:{body}");
    let mac = crate::signing::hmac(Algorithm::Sha512, secret.as_bytes(), &[content.as_bytes()]);
    let mut request = OwnedRequest::post("/vendor", body.as_bytes())
        .header(
            "x-vendor-signature",
            &base64::engine::general_purpose::STANDARD.encode(mac),
        )
        .header("x-vendor-id", id)
        .header("x-vendor-timestamp", &timestamp.to_string());
    request.query = Some("x=1".into());
    request
}

#[test]
fn a_full_template_verifies_and_each_part_is_signed() {
    let source = shopify_like();
    let secret = "It's a Secret to Everybody";
    let at = now().as_second();
    assert_eq!(
        source.check(&vendor_request(secret, "id-1", at, BODY).view(), now()),
        Ok(())
    );
    let mut other_id = vendor_request(secret, "id-1", at, BODY);
    other_id
        .headers
        .insert("x-vendor-id", http::HeaderValue::from_static("id-2"));
    assert_eq!(
        source.check(&other_id.view(), now()),
        Err(Rejection::SignatureMismatch)
    );
    let mut other_query = vendor_request(secret, "id-1", at, BODY);
    other_query.query = Some("x=2".into());
    assert_eq!(
        source.check(&other_query.view(), now()),
        Err(Rejection::SignatureMismatch)
    );
    assert_eq!(
        source.check(&vendor_request("wrong", "id-1", at, BODY).view(), now()),
        Err(Rejection::SignatureMismatch)
    );
    assert_eq!(
        source.check(
            &vendor_request(secret, "id-1", at - 301, BODY).view(),
            now()
        ),
        Err(Rejection::StaleTimestamp)
    );
    assert_eq!(
        source.check(
            &vendor_request(secret, "id-1", at + 301, BODY).view(),
            now()
        ),
        Err(Rejection::StaleTimestamp)
    );
    let mut no_ts = vendor_request(secret, "id-1", at, BODY);
    no_ts.headers.remove("x-vendor-timestamp");
    assert_eq!(
        source.check(&no_ts.view(), now()),
        Err(Rejection::MissingTimestamp("x-vendor-timestamp".into()))
    );
    let mut bad_sig = vendor_request(secret, "id-1", at, BODY);
    bad_sig
        .headers
        .insert("x-vendor-signature", http::HeaderValue::from_static("AAAA"));
    assert_eq!(
        source.check(&bad_sig.view(), now()),
        Err(Rejection::MalformedSignature("x-vendor-signature".into()))
    );
}

#[test]
fn sign_produces_what_verify_accepts() {
    for source in [github(), shopify_like()] {
        let signed = source.sign(&ToSign {
            path: "/vendor",
            query: Some("x=1"),
            content_type: "application/json",
            body: BODY.as_bytes(),
            now: now(),
        });
        let mut request = OwnedRequest::post("/vendor", BODY.as_bytes());
        request.query = signed.query.clone();
        for (name, value) in &signed.headers {
            request = request.header(name, value);
        }
        assert_eq!(source.check(&request.view(), now()), Ok(()));
    }
}

#[test]
fn ids_types_and_times_come_from_where_configured() {
    let request = vendor_request(
        "It's a Secret to Everybody",
        "id-7",
        now().as_second(),
        BODY,
    );
    let events = shopify_like()
        .normalize_events(&request.view(), &origin("vendor", "hmac"))
        .expect("events");
    let event = &events[0].event;
    assert_eq!(event.providereventid, "id-7");
    assert_eq!(event.event_type(), EventType::ReservationCreated);
    assert_eq!(event.time.map(|t| t.as_second()), Some(now().as_second()));
    let by_pointer = GenericHmac::from_settings(
        settings(HmacSettings {
            header: "X-Sig".into(),
            id_pointer: Some("/reservation_id".into()),
            ..HmacSettings::default()
        }),
        &crate::settings::Context::default(),
    )
    .expect("valid");
    let events = by_pointer
        .normalize_events(
            &OwnedRequest::post("/v", BODY.as_bytes()).view(),
            &origin("v", "hmac"),
        )
        .expect("events");
    assert_eq!(events[0].event.providereventid, "R9");
    assert_eq!(
        events[0].event.event_type(),
        EventType::Unknown,
        "no type_pointer: unknown"
    );
    let data = serde_json::to_value(&events[0].event).expect("json")["data"]["raw"].clone();
    assert_eq!(
        data,
        json!({"kind": "reservation.new", "reservation_id": "R9"})
    );
}

#[test]
fn settings_are_checked_by_key() {
    let problems = |hmac: HmacSettings| {
        GenericHmac::from_settings(settings(hmac), &crate::settings::Context::default())
            .expect_err("invalid")
            .into_iter()
            .map(|e| e.key)
            .collect::<Vec<_>>()
    };
    let base = || HmacSettings {
        header: "X-Sig".into(),
        ..HmacSettings::default()
    };
    assert_eq!(
        problems(HmacSettings {
            algorithm: Some("md5".into()),
            ..base()
        }),
        ["hmac.algorithm"]
    );
    assert_eq!(
        problems(HmacSettings {
            encoding: Some("hexx".into()),
            ..base()
        }),
        ["hmac.encoding"]
    );
    assert_eq!(
        problems(HmacSettings {
            signed: Some("{timestamp}".into()),
            ..base()
        }),
        ["hmac.signed", "hmac.signed"]
    );
    assert_eq!(
        problems(HmacSettings {
            signed: Some("{nonce}.{body}".into()),
            ..base()
        }),
        ["hmac.signed"]
    );
    assert_eq!(
        problems(HmacSettings {
            signed: Some("{id}.{body}".into()),
            ..base()
        }),
        ["hmac.signed"]
    );
    assert_eq!(
        problems(HmacSettings {
            id_pointer: Some("id".into()),
            ..base()
        }),
        ["hmac.id_pointer"]
    );
    assert_eq!(
        problems(HmacSettings {
            header: "bad header".into(),
            ..HmacSettings::default()
        }),
        ["hmac.header"]
    );
    let no_table = Settings {
        secrets: vec![Secret::new("s")],
        ..Settings::default()
    };
    assert_eq!(
        GenericHmac::from_settings(no_table, &crate::settings::Context::default())
            .expect_err("needs hmac")[0]
            .key,
        "hmac"
    );
}

// ---- what is trusted is what is signed ----

fn github_request(body: &str, delivery: &str) -> OwnedRequest {
    let mac = crate::signing::hmac(
        Algorithm::Sha256,
        b"It's a Secret to Everybody",
        &[body.as_bytes()],
    );
    OwnedRequest::post("/gh", body.as_bytes())
        .header(
            "x-hub-signature-256",
            &format!("sha256={}", hex::encode(mac)),
        )
        .header("x-github-delivery", delivery)
}

#[test]
fn an_unsigned_id_header_labels_the_event_but_never_keys_it() {
    let source = github();
    let normalized = |request: &OwnedRequest| {
        assert_eq!(source.check(&request.view(), now()), Ok(()));
        source
            .normalize_events(&request.view(), &origin("gh", "hmac"))
            .expect("events")
            .remove(0)
    };
    // The review's repro: one captured delivery re-sent under fresh delivery ids.
    let original = normalized(&github_request(
        BODY,
        "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    ));
    for replayed_id in ["fresh-1", "fresh-2", "the-id-the-vendor-uses-next"] {
        let replay = normalized(&github_request(BODY, replayed_id));
        assert_eq!(replay.dedupe_key, original.dedupe_key);
        assert_eq!(replay.event.id, original.event.id);
        assert_eq!(
            replay.event.providerdeliveryid.as_deref(),
            Some(replayed_id)
        );
    }
    assert_eq!(
        original.event.providereventid,
        hashed_key(BODY.as_bytes()),
        "keyed by the signed body"
    );
    // A genuine new delivery (another body) is another event, whatever id it carries.
    let next = normalized(&github_request(
        r#"{"action":"opened"}"#,
        "the-id-the-vendor-uses-next",
    ));
    assert_ne!(next.dedupe_key, original.dedupe_key);
}

#[test]
fn a_signed_id_keys_the_event_and_may_not_contain_its_separators() {
    let source = shopify_like();
    let secret = "It's a Secret to Everybody";
    let at = now().as_second();
    let events = source
        .normalize_events(
            &vendor_request(secret, "id-7", at, BODY).view(),
            &origin("vendor", "hmac"),
        )
        .expect("events");
    assert_eq!(events[0].event.providereventid, "id-7");
    assert_eq!(events[0].event.providerdeliveryid, None);
    // `{id}:{timestamp}:…`: an id with a `:` could be split two ways.
    assert_eq!(
        source.check(&vendor_request(secret, "id:7", at, BODY).view(), now()),
        Err(Rejection::MalformedSignature("x-vendor-id".into()))
    );
}

#[test]
fn without_an_id_the_key_is_the_signed_content_without_its_timestamp() {
    let source = GenericHmac::from_settings(
        settings(HmacSettings {
            header: "X-Sig".into(),
            signed: Some("{timestamp}.{body}".into()),
            timestamp_header: Some("X-Ts".into()),
            ..HmacSettings::default()
        }),
        &crate::settings::Context::default(),
    )
    .expect("valid");
    let key = |body: &str, at: i64| {
        let mac = crate::signing::hmac(
            Algorithm::Sha256,
            b"It's a Secret to Everybody",
            &[at.to_string().as_bytes(), b".", body.as_bytes()],
        );
        let request = OwnedRequest::post("/v", body.as_bytes())
            .header("x-sig", &hex::encode(mac))
            .header("x-ts", &at.to_string());
        assert_eq!(source.check(&request.view(), now()), Ok(()));
        source
            .normalize_events(&request.view(), &origin("v", "hmac"))
            .expect("events")
            .remove(0)
            .dedupe_key
    };
    let at = now().as_second();
    // The vendor's retry signs a fresh timestamp: still the same delivery.
    assert_eq!(key(BODY, at), key(BODY, at - 60));
    assert_ne!(key(BODY, at), key(r#"{"kind":"other"}"#, at));
}

#[test]
fn a_stale_timestamp_is_refused_before_any_mac() {
    let secret = "It's a Secret to Everybody";
    let stale = now().as_second() - 301;
    for request in [
        vendor_request(secret, "id-1", stale, BODY),
        vendor_request("forged", "id-1", stale, BODY),
    ] {
        let (result, macs, _) =
            crate::signing::work::measure(|| shopify_like().check(&request.view(), now()));
        assert_eq!(result, Err(Rejection::StaleTimestamp));
        assert_eq!(macs, 0);
    }
}

#[test]
fn unsigned_timestamps_and_ambiguous_templates_are_refused() {
    let problems = |hmac: HmacSettings| {
        GenericHmac::from_settings(settings(hmac), &crate::settings::Context::default())
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.key)
            .collect::<Vec<_>>()
    };
    let with = |signed: &str, id: bool, timestamp: bool| HmacSettings {
        header: "X-Sig".into(),
        signed: Some(signed.into()),
        id_header: id.then(|| "X-Id".to_owned()),
        timestamp_header: timestamp.then(|| "X-Ts".to_owned()),
        ..HmacSettings::default()
    };
    // The review's configuration: a window over a timestamp nobody signed.
    assert_eq!(
        problems(with("{body}", false, true)),
        ["hmac.timestamp_header"]
    );
    assert_eq!(problems(with("{id}{body}", true, false)), ["hmac.signed"]);
    assert_eq!(
        problems(with("{timestamp}{body}", false, true)),
        ["hmac.signed"]
    );
    assert_eq!(
        problems(with("{id}.{timestamp}.{body}", true, true)),
        Vec::<&str>::new()
    );
    assert_eq!(
        problems(with("{url}{body}", false, false)),
        Vec::<&str>::new()
    );
}

proptest::proptest! {
    /// Without a signed id, every change to the signed body changes the key, and an unsigned
    /// delivery id never does.
    #[test]
    fn the_content_key_follows_every_signed_byte(
        at in 0usize..BODY.len(),
        replacement in proptest::num::u8::ANY,
        delivery in "[a-z0-9-]{1,20}",
    ) {
        let mut edited = BODY.as_bytes().to_vec();
        edited[at] = replacement;
        let source = github();
        let key = |body: &[u8], delivery: &str| {
            let mac = crate::signing::hmac(Algorithm::Sha256, b"It's a Secret to Everybody", &[body]);
            let request = OwnedRequest::post("/gh", body.to_vec())
                .header("x-hub-signature-256", &format!("sha256={}", hex::encode(mac)))
                .header("x-github-delivery", delivery);
            proptest::prop_assert_eq!(source.check(&request.view(), now()), Ok(()));
            Ok(source.content_key(&request.view()))
        };
        let original = key(BODY.as_bytes(), "first")?;
        proptest::prop_assert_eq!(&original, &key(BODY.as_bytes(), &delivery)?);
        let changed = key(&edited, "first")?;
        proptest::prop_assert_eq!(original == changed, edited == BODY.as_bytes());
    }
}
