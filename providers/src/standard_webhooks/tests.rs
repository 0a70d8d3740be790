use serde_json::{Value, json};

use super::*;
use crate::Secret;
use crate::event::EventType;
use crate::testing::{Check, NormalizeChecked, OwnedRequest, now, origin};

/// The secret of the reference libraries' `test_sign` vector.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn source(secrets: &[&str]) -> StandardWebhooks {
    let settings = Settings {
        secrets: secrets.iter().map(|s| Secret::new(*s)).collect(),
        event_types: vec![
            ("booking.created".into(), EventType::ReservationCreated),
            ("room.cleaned".into(), EventType::HousekeepingStatusChanged),
        ]
        .into_iter()
        .collect(),
        ..Settings::default()
    };
    StandardWebhooks::from_settings(settings, &crate::settings::Context::default()).expect("valid")
}

fn request(id: &str, timestamp: i64, body: &str, signature: &str) -> OwnedRequest {
    OwnedRequest::post("/hooks", body.as_bytes())
        .header("webhook-id", id)
        .header("webhook-timestamp", &timestamp.to_string())
        .header("webhook-signature", signature)
}

fn signed(body: &str, secret: &str, timestamp: i64) -> OwnedRequest {
    let signed = source(&[secret]).sign(&ToSign {
        path: "/hooks",
        query: None,
        content_type: "application/json",
        body: body.as_bytes(),
        now: jiff::Timestamp::from_second(timestamp).expect("ts"),
    });
    let mut request = OwnedRequest::post("/hooks", body.as_bytes());
    for (name, value) in &signed.headers {
        request = request.header(name, value);
    }
    request
}

const BODY: &str = r#"{"type":"booking.created","timestamp":"2024-03-15T13:59:00Z","data":{"reservation_id":"R1","room_number":"12"}}"#;

#[test]
fn matches_the_reference_libraries_vector() {
    // standard-webhooks libraries, test_sign: msg id, timestamp, payload, expected signature.
    let at = jiff::Timestamp::from_second(1_614_265_330).expect("ts");
    let vector = request(
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1_614_265_330,
        r#"{"test": 2432232314}"#,
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    );
    assert_eq!(source(&[SECRET]).check(&vector.view(), at), Ok(()));
}

#[test]
fn signed_requests_verify_and_tampering_fails() {
    let at = now().as_second();
    assert_eq!(
        source(&[SECRET]).check(&signed(BODY, SECRET, at).view(), now()),
        Ok(())
    );
    let mut body = signed(BODY, SECRET, at);
    body.body[20] ^= 1;
    assert_eq!(
        source(&[SECRET]).check(&body.view(), now()),
        Err(Rejection::SignatureMismatch)
    );
    // The id is signed: another id with the same signature fails.
    let good = signed(BODY, SECRET, at);
    let signature = good.headers["webhook-signature"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let other_id = request("msg_other", at, BODY, &signature);
    assert_eq!(
        source(&[SECRET]).check(&other_id.view(), now()),
        Err(Rejection::SignatureMismatch)
    );
}

#[test]
fn wrong_secret_fails_and_any_listed_v1_may_match() {
    let at = now().as_second();
    let other = "whsec_b3RoZXItc2VjcmV0LWJ5dGVzLTEyMzQ1Njc4";
    assert_eq!(
        source(&[SECRET]).check(&signed(BODY, other, at).view(), now()),
        Err(Rejection::SignatureMismatch)
    );
    // The sender signs with the old and the new secret during its rotation.
    let old = signed(BODY, other, at);
    let new = signed(BODY, SECRET, at);
    let id = old.headers["webhook-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let list = format!(
        "v1a,ignored v1,{} {}",
        old.headers["webhook-signature"]
            .to_str()
            .expect("ascii")
            .trim_start_matches("v1,"),
        new.headers["webhook-signature"].to_str().expect("ascii")
    );
    assert_eq!(
        source(&[SECRET]).check(&request(&id, at, BODY, &list).view(), now()),
        Ok(())
    );
    // Porter rotating its own secrets: either configured secret verifies.
    assert_eq!(
        source(&[other, SECRET]).check(&signed(BODY, SECRET, at).view(), now()),
        Ok(())
    );
}

#[test]
fn stale_and_future_timestamps_fail() {
    let at = |offset: i64| {
        source(&[SECRET]).check(
            &signed(BODY, SECRET, now().as_second() + offset).view(),
            now(),
        )
    };
    assert_eq!(at(-300), Ok(()));
    assert_eq!(at(300), Ok(()));
    assert_eq!(at(-301), Err(Rejection::StaleTimestamp));
    assert_eq!(at(301), Err(Rejection::StaleTimestamp));
}

#[test]
fn missing_and_malformed_headers_fail() {
    let good = signed(BODY, SECRET, now().as_second());
    let get = |name: &str| good.headers[name].to_str().expect("ascii").to_owned();
    let (id, ts, sig) = (
        get("webhook-id"),
        get("webhook-timestamp"),
        get("webhook-signature"),
    );
    let verify = |request: OwnedRequest| source(&[SECRET]).check(&request.view(), now());
    let without = |skip: &str| {
        let mut request = OwnedRequest::post("/hooks", BODY.as_bytes());
        for (name, value) in [
            ("webhook-id", &id),
            ("webhook-timestamp", &ts),
            ("webhook-signature", &sig),
        ] {
            if name != skip {
                request = request.header(name, value);
            }
        }
        request
    };
    assert_eq!(
        verify(without("webhook-id")),
        Err(Rejection::MissingSignature("webhook-id".into()))
    );
    assert_eq!(
        verify(without("webhook-timestamp")),
        Err(Rejection::MissingTimestamp("webhook-timestamp".into()))
    );
    assert_eq!(
        verify(without("webhook-signature")),
        Err(Rejection::MissingSignature("webhook-signature".into()))
    );
    for bad in [
        "v1,",
        "v1,not base64!",
        "v2,abc",
        &sig[..sig.len() - 4],
        "",
        "v1a,abc",
    ] {
        let malformed = request(&id, now().as_second(), BODY, bad);
        assert_eq!(
            verify(malformed),
            Err(Rejection::MalformedSignature("webhook-signature".into())),
            "{bad}"
        );
    }
    let dotted = request("msg.1", now().as_second(), BODY, &sig);
    assert_eq!(
        verify(dotted),
        Err(Rejection::MalformedSignature("webhook-id".into()))
    );
    let bad_time = request(&id, 0, BODY, &sig).header("webhook-timestamp", "later");
    assert_eq!(
        verify(bad_time),
        Err(Rejection::MalformedTimestamp("webhook-timestamp".into()))
    );
}

/// An id that is not visible ASCII is refused (400 `invalid_header`) before any MAC or key:
/// read lossily, `msg_\xff` and `msg_\xfe` would both have become the key `""`, and the
/// second, different event been answered as a duplicate of the first and lost.
#[test]
fn an_id_that_is_not_visible_ascii_is_refused_before_any_mac() {
    for (name, id) in [
        ("webhook-id", b"msg_\xff".as_slice()),
        ("webhook-id", b"msg_\xfe"),
        ("webhook-id", b"msg 1"),
        ("webhook-id", b"msg_\t1"),
        ("svix-id", b"msg_\xff"),
    ] {
        let prefix = name.trim_end_matches("id");
        let timestamp = now().as_second().to_string();
        let mac = hmac(
            Algorithm::Sha256,
            &BASE64.decode(&SECRET["whsec_".len()..]).expect("key"),
            &[id, b".", timestamp.as_bytes(), b".", BODY.as_bytes()],
        );
        let request = OwnedRequest::post("/hooks", BODY.as_bytes())
            .header_bytes(name, id)
            .header(&format!("{prefix}timestamp"), &timestamp)
            .header(
                &format!("{prefix}signature"),
                &format!("v1,{}", BASE64.encode(mac)),
            );
        let source = source(&[SECRET]);
        let (refused, macs, _) =
            crate::signing::work::measure(|| source.check(&request.view(), now()));
        assert_eq!(
            refused,
            Err(Rejection::InvalidHeader(name.to_owned().into())),
            "{id:?}"
        );
        assert_eq!(macs, 0, "no MAC for {id:?}");
        assert_eq!(
            Rejection::InvalidHeader(name.to_owned().into()).class(),
            crate::rejection::RejectionClass::InvalidHeader
        );
    }
}

#[test]
fn svix_header_names_are_accepted() {
    let good = signed(BODY, SECRET, now().as_second());
    let mut svix = OwnedRequest::post("/hooks", BODY.as_bytes());
    for (name, value) in good.headers.iter() {
        let renamed = name.as_str().replace("webhook-", "svix-");
        svix = svix.header(&renamed, value.to_str().expect("ascii"));
    }
    assert_eq!(source(&[SECRET]).check(&svix.view(), now()), Ok(()));
    let events = source(&[SECRET])
        .normalize_events(&svix.view(), &origin("std", "standard_webhooks"))
        .expect("events");
    assert!(events[0].event.providereventid.starts_with("msg_"));
}

#[test]
fn secrets_must_be_whsec_base64() {
    let bad = Settings {
        secrets: vec![Secret::new("whsec_***not base64***")],
        ..Settings::default()
    };
    assert_eq!(
        StandardWebhooks::from_settings(bad, &crate::settings::Context::default())
            .expect_err("invalid")[0]
            .key,
        "secrets"
    );
    // Padding is optional.
    let unpadded = Settings {
        secrets: vec![Secret::new("whsec_dGVzdA")],
        ..Settings::default()
    };
    assert!(
        StandardWebhooks::from_settings(unpadded, &crate::settings::Context::default()).is_ok()
    );
}

#[test]
fn mapped_types_are_typed_and_the_rest_unknown() {
    let request = signed(BODY, SECRET, now().as_second());
    let events = source(&[SECRET])
        .normalize_events(&request.view(), &origin("std", "standard_webhooks"))
        .expect("events");
    let event = &events[0].event;
    assert_eq!(event.event_type(), EventType::ReservationCreated);
    assert_eq!(event.providereventtype.as_deref(), Some("booking.created"));
    let data = serde_json::to_value(event).expect("json")["data"].clone();
    assert_eq!(data["reservation_id"], "R1");
    assert_eq!(
        data["raw"],
        serde_json::from_str::<Value>(BODY).expect("json"),
        "the whole payload as sent"
    );

    let other = r#"{"type":"invoice.paid","data":{"id":"in_1"}}"#;
    let request = signed(other, SECRET, now().as_second());
    let events = source(&[SECRET])
        .normalize_events(&request.view(), &origin("std", "standard_webhooks"))
        .expect("events");
    let json: Value = serde_json::to_value(&events[0].event).expect("json");
    assert_eq!(json["type"], "unknown");
    assert_eq!(
        json["data"]["raw"],
        json!({"type": "invoice.paid", "data": {"id": "in_1"}})
    );

    let broken = OwnedRequest::post("/hooks", b"{\"type\":".to_vec());
    assert!(matches!(
        source(&[SECRET]).normalize_events(&broken.view(), &origin("std", "standard_webhooks")),
        Err(Rejection::MalformedBody { .. })
    ));
}

// ---- work before authentication ----

#[test]
fn each_key_is_maced_once_however_many_signatures_are_listed() {
    let at = now().as_second();
    let good = signed(BODY, SECRET, at);
    let id = good.headers["webhook-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let bogus = format!("v1,{}", BASE64.encode([7u8; 32]));
    let other = "whsec_b3RoZXItc2VjcmV0LWJ5dGVzLTEyMzQ1Njc4";
    // Eight candidates against two keys: two MACs, not sixteen.
    let eight = [bogus.as_str(); 8].join(" ");
    let request_of = |list: &str| request(&id, at, BODY, list);
    let (result, macs, _) = crate::signing::work::measure(|| {
        source(&[other, SECRET]).check(&request_of(&eight).view(), now())
    });
    assert_eq!(result, Err(Rejection::SignatureMismatch));
    assert_eq!(macs, 2);
    // Nine are refused before any MAC.
    let nine = [bogus.as_str(); 9].join(" ");
    let (result, macs, _) = crate::signing::work::measure(|| {
        source(&[other, SECRET]).check(&request_of(&nine).view(), now())
    });
    assert_eq!(
        result,
        Err(Rejection::MalformedSignature("webhook-signature".into()))
    );
    assert_eq!(macs, 0);
    // 640 entries with a 3 MiB body (the review's repro): refused, and nothing hashed.
    let body = format!(r#"{{"pad":"{}"}}"#, "x".repeat(3 * 1024 * 1024));
    let many = vec![bogus.as_str(); 640].join(" ");
    let (result, macs, bytes) = crate::signing::work::measure(|| {
        source(&[SECRET]).check(&request(&id, at, &body, &many).view(), now())
    });
    assert!(result.is_err());
    assert_eq!((macs, bytes), (0, 0));
    // The genuine signature among other entries still verifies.
    let mixed = format!(
        "{bogus} {}",
        good.headers["webhook-signature"].to_str().expect("ascii")
    );
    assert_eq!(
        source(&[SECRET]).check(&request_of(&mixed).view(), now()),
        Ok(())
    );
}

#[test]
fn a_stale_request_is_refused_before_any_mac_forged_or_not() {
    let stale = now().as_second() - 301;
    let genuine = signed(BODY, SECRET, stale);
    let id = genuine.headers["webhook-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let forged = request(
        &id,
        stale,
        BODY,
        &format!("v1,{}", BASE64.encode([1u8; 32])),
    );
    for request in [genuine, forged] {
        let (result, macs, _) =
            crate::signing::work::measure(|| source(&[SECRET]).check(&request.view(), now()));
        assert_eq!(result, Err(Rejection::StaleTimestamp));
        assert_eq!(macs, 0);
    }
}
