use serde_json::Value;

use super::*;
use crate::Secret;
use crate::event::EventType;
use crate::testing::{Check, NormalizeChecked, OwnedRequest, now, origin};

const SECRET: &str = "whsec_test_secret_stripe";

fn stripe(secrets: &[&str]) -> Stripe {
    Stripe::from_settings(
        Settings {
            secrets: secrets.iter().map(|s| Secret::new(*s)).collect(),
            event_types: vec![(
                "payment_intent.succeeded".into(),
                EventType::PaymentReceived,
            )]
            .into_iter()
            .collect(),
            ..Settings::default()
        },
        &crate::settings::Context::default(),
    )
    .expect("valid")
}

fn header(secret: &str, timestamp: i64, body: &str) -> String {
    let mac = hmac(
        Algorithm::Sha256,
        secret.as_bytes(),
        &[timestamp.to_string().as_bytes(), b".", body.as_bytes()],
    );
    format!("t={timestamp},v1={}", hex::encode(mac))
}

fn request(value: &str, body: &str) -> OwnedRequest {
    OwnedRequest::post("/stripe", body.as_bytes()).header("stripe-signature", value)
}

const BODY: &str = r#"{"id":"evt_1OoX","object":"event","type":"payment_intent.succeeded","created":1710511100,"data":{"object":{"id":"pi_3Oo","object":"payment_intent","amount":2000}}}"#;

fn verify(stripe: &Stripe, request: &OwnedRequest) -> Result<(), Rejection> {
    stripe.check(&request.view(), now())
}

#[test]
fn the_key_is_the_secret_string_itself_prefix_included() {
    let at = now().as_second();
    assert_eq!(
        verify(
            &stripe(&[SECRET]),
            &request(&header(SECRET, at, BODY), BODY)
        ),
        Ok(())
    );
    // Decoding the part after whsec_ (the Standard Webhooks rule) is not Stripe's scheme.
    let stripped = header("test_secret_stripe", at, BODY);
    assert_eq!(
        verify(&stripe(&[SECRET]), &request(&stripped, BODY)),
        Err(Rejection::SignatureMismatch)
    );
}

#[test]
fn tampering_wrong_secret_and_rotation() {
    let at = now().as_second();
    let good = header(SECRET, at, BODY);
    let tampered = BODY.replace("2000", "9000");
    assert_eq!(
        verify(&stripe(&[SECRET]), &request(&good, &tampered)),
        Err(Rejection::SignatureMismatch)
    );
    assert_eq!(
        verify(
            &stripe(&[SECRET]),
            &request(&header("whsec_other", at, BODY), BODY)
        ),
        Err(Rejection::SignatureMismatch)
    );
    // Stripe signs with both secrets while one is rolled: any v1 may match.
    let both = format!(
        "{},v1={}",
        header("whsec_old", at, BODY),
        good.split("v1=").nth(1).expect("v1")
    );
    assert_eq!(
        verify(
            &stripe(&[SECRET]),
            &request(&format!("{both},v0=abc"), BODY)
        ),
        Ok(())
    );
    assert_eq!(
        verify(&stripe(&["whsec_new", SECRET]), &request(&good, BODY)),
        Ok(())
    );
    // The timestamp is signed.
    let moved = good.replacen(&format!("t={at}"), &format!("t={}", at - 1), 1);
    assert_eq!(
        verify(&stripe(&[SECRET]), &request(&moved, BODY)),
        Err(Rejection::SignatureMismatch)
    );
}

#[test]
fn stale_and_future_timestamps_fail() {
    let at = |offset: i64| {
        let t = now().as_second() + offset;
        verify(&stripe(&[SECRET]), &request(&header(SECRET, t, BODY), BODY))
    };
    assert_eq!(at(-300), Ok(()));
    assert_eq!(at(300), Ok(()));
    assert_eq!(at(-301), Err(Rejection::StaleTimestamp));
    assert_eq!(at(301), Err(Rejection::StaleTimestamp));
}

#[test]
fn missing_and_malformed_headers_fail() {
    let missing = OwnedRequest::post("/stripe", BODY.as_bytes());
    assert_eq!(
        verify(&stripe(&[SECRET]), &missing),
        Err(Rejection::MissingSignature("stripe-signature".into()))
    );
    let good = header(SECRET, now().as_second(), BODY);
    let hex = good.split("v1=").nth(1).expect("v1").to_owned();
    for bad in [
        format!("v1={hex}"),                                  // no t
        format!("t=1,t=2,v1={hex}"),                          // two t
        format!("t={},v0={hex}", now().as_second()),          // no v1
        format!("t={},v1={}", now().as_second(), &hex[..62]), // wrong length
        format!("t=soon,v1={hex}"),                           // not a number
        "garbage".to_owned(),
        String::new(),
    ] {
        assert_eq!(
            verify(&stripe(&[SECRET]), &request(&bad, BODY)),
            Err(Rejection::MalformedSignature("stripe-signature".into())),
            "{bad}"
        );
    }
    let twice = request(&good, BODY).header("stripe-signature", &good);
    assert_eq!(
        verify(&stripe(&[SECRET]), &twice),
        Err(Rejection::RepeatedSignature("stripe-signature".into()))
    );
}

#[test]
fn events_are_keyed_by_id_and_mapped_by_type() {
    let source = stripe(&[SECRET]);
    let events = source
        .normalize_events(&request("", BODY).view(), &origin("stripe", "stripe"))
        .expect("events");
    let event = &events[0].event;
    assert_eq!(event.providereventid, "evt_1OoX");
    assert_eq!(event.event_type(), EventType::PaymentReceived);
    assert_eq!(event.subject.as_deref(), Some("pi_3Oo"));
    let data: Value = serde_json::to_value(event).expect("json")["data"].clone();
    assert_eq!(
        data["raw"],
        serde_json::from_str::<Value>(BODY).expect("json"),
        "the whole event, envelope included"
    );

    let other = r#"{"id":"evt_2","type":"customer.created","data":{"object":{"id":"cus_1"}}}"#;
    let events = source
        .normalize_events(&request("", other).view(), &origin("stripe", "stripe"))
        .expect("events");
    assert_eq!(events[0].event.event_type(), EventType::Unknown);
}

// ---- work before authentication ----

#[test]
fn each_secret_is_maced_once_and_more_than_eight_v1_are_malformed() {
    let t = now().as_second();
    let bogus = format!("v1={}", "ab".repeat(32));
    let list = |n: usize| format!("t={t},{}", vec![bogus.as_str(); n].join(","));
    let (result, macs, _) = crate::signing::work::measure(|| {
        verify(&stripe(&["other", SECRET]), &request(&list(8), BODY))
    });
    assert_eq!(result, Err(Rejection::SignatureMismatch));
    assert_eq!(macs, 2);
    // The review's repro: 450 `v1=` entries. Refused before any MAC.
    let body = format!(r#"{{"pad":"{}"}}"#, "x".repeat(3 * 1024 * 1024));
    for n in [9, 450] {
        let (result, macs, _) =
            crate::signing::work::measure(|| verify(&stripe(&[SECRET]), &request(&list(n), &body)));
        assert_eq!(
            result,
            Err(Rejection::MalformedSignature("stripe-signature".into())),
            "{n}"
        );
        assert_eq!(macs, 0, "{n}");
    }
    // A genuine v1 after other entries verifies.
    let good = header(SECRET, t, BODY);
    let with_others = format!("{},{bogus},{bogus}", good);
    assert_eq!(
        verify(&stripe(&[SECRET]), &request(&with_others, BODY)),
        Ok(())
    );
}

#[test]
fn a_stale_request_is_refused_before_any_mac_forged_or_not() {
    let stale = now().as_second() - 301;
    for value in [
        header(SECRET, stale, BODY),
        format!("t={stale},v1={}", "ab".repeat(32)),
    ] {
        let (result, macs, _) =
            crate::signing::work::measure(|| verify(&stripe(&[SECRET]), &request(&value, BODY)));
        assert_eq!(result, Err(Rejection::StaleTimestamp));
        assert_eq!(macs, 0);
    }
}
