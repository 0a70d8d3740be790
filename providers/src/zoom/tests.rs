use serde_json::{Value, json};

use super::*;
use crate::event::EventType;
use crate::provider::ToSign;
use crate::testing::{Check, NormalizeChecked, OwnedRequest, now, origin};
use crate::{Secret, WebhookProvider};

const SECRET: &str = "zoom-secret-token";

fn zoom(secrets: &[&str]) -> Zoom {
    Zoom::from_settings(
        Settings {
            secrets: secrets.iter().map(|s| Secret::new(*s)).collect(),
            event_types: vec![("meeting.started".into(), EventType::Unknown)]
                .into_iter()
                .collect(),
            ..Settings::default()
        },
        &Context::default(),
    )
    .expect("valid")
}

fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mac = hmac(
        Algorithm::Sha256,
        secret.as_bytes(),
        &[b"v0:", timestamp.to_string().as_bytes(), b":", body],
    );
    format!("v0={}", hex::encode(mac))
}

fn signed(secret: &str, timestamp: i64, body: &[u8]) -> OwnedRequest {
    OwnedRequest::post("/webhooks/zoom", body.to_vec())
        .header("content-type", "application/json")
        .header(SIGNATURE, &signature(secret, timestamp, body))
        .header(TIMESTAMP, &timestamp.to_string())
}

const EVENT: &str = r#"{"event":"meeting.started","event_ts":1710511200123,"payload":{"account_id":"AAAAAABBBB","object":{"id":"1234567890","uuid":"4444AAAiAAAAAiAiAiiAii==","host_id":"x1yCzABCDEfg23HiJKl4mN","topic":"Pre-arrival call","type":2,"start_time":"2024-03-15T14:00:00Z","timezone":"Europe/Lisbon"}}}"#;

/// The `encryptedToken` of a known pair, computed with Python's `hmac` module.
#[test]
fn the_encrypted_token_is_hex_hmac_sha256_of_the_plain_token() {
    assert_eq!(
        encrypted_token(&Secret::new("test-secret"), "qgg8vlvZRS6UYooatFL8Aw"),
        "82079ed66225fed153e0854735aa9702e1d67137a69c96a00957941f942b8de7"
    );
}

#[test]
fn signed_events_verify_and_tampering_wrong_secret_stale_fail() {
    let provider = zoom(&[SECRET]);
    let at = now().as_second();
    assert_eq!(
        provider.check(&signed(SECRET, at, EVENT.as_bytes()).view(), now()),
        Ok(())
    );
    let tampered = EVENT.replace("Pre-arrival", "Pre-arrivaL");
    let request = OwnedRequest::post("/webhooks/zoom", tampered.as_bytes())
        .header(SIGNATURE, &signature(SECRET, at, EVENT.as_bytes()))
        .header(TIMESTAMP, &at.to_string());
    assert_eq!(
        provider.check(&request.view(), now()),
        Err(Rejection::SignatureMismatch)
    );
    assert_eq!(
        provider.check(&signed("other", at, EVENT.as_bytes()).view(), now()),
        Err(Rejection::SignatureMismatch)
    );
    assert_eq!(
        provider.check(&signed(SECRET, at - 301, EVENT.as_bytes()).view(), now()),
        Err(Rejection::StaleTimestamp)
    );
    assert_eq!(
        provider.check(&signed(SECRET, at + 301, EVENT.as_bytes()).view(), now()),
        Err(Rejection::StaleTimestamp)
    );
    assert_eq!(
        zoom(&["old", SECRET]).check(&signed(SECRET, at, EVENT.as_bytes()).view(), now()),
        Ok(())
    );
}

#[test]
fn missing_and_malformed_headers_fail() {
    let provider = zoom(&[SECRET]);
    let at = now().as_second();
    let missing =
        OwnedRequest::post("/webhooks/zoom", EVENT.as_bytes()).header(TIMESTAMP, &at.to_string());
    assert_eq!(
        provider.check(&missing.view(), now()),
        Err(Rejection::MissingSignature(SIGNATURE.into()))
    );
    let bad = OwnedRequest::post("/webhooks/zoom", EVENT.as_bytes())
        .header(SIGNATURE, "sha256=abc")
        .header(TIMESTAMP, &at.to_string());
    assert_eq!(
        provider.check(&bad.view(), now()),
        Err(Rejection::MalformedSignature(SIGNATURE.into()))
    );
    let no_time = OwnedRequest::post("/webhooks/zoom", EVENT.as_bytes())
        .header(SIGNATURE, &signature(SECRET, at, EVENT.as_bytes()));
    assert_eq!(
        provider.check(&no_time.view(), now()),
        Err(Rejection::MissingTimestamp(TIMESTAMP.into()))
    );
    // Zoom's timestamp is seconds; milliseconds are not a time porter can check.
    let millis = OwnedRequest::post("/webhooks/zoom", EVENT.as_bytes())
        .header(SIGNATURE, &signature(SECRET, at, EVENT.as_bytes()))
        .header(TIMESTAMP, &format!("{at}000.5"));
    assert_eq!(
        provider.check(&millis.view(), now()),
        Err(Rejection::MalformedTimestamp(TIMESTAMP.into()))
    );
}

#[test]
fn url_validation_answers_with_the_secret_that_signed_it() {
    let body = br#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}"#;
    let at = now().as_second();
    // During a rotation Zoom signs with one secret: the answer uses that one.
    let provider = zoom(&["old-secret", "test-secret"]);
    let reply = provider
        .handshake(&signed("test-secret", at, body).view(), now())
        .expect("a handshake")
        .expect("answered");
    let answer: Value = serde_json::from_str(&reply.body).expect("json");
    assert_eq!(
        answer,
        json!({
            "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
            "encryptedToken": "82079ed66225fed153e0854735aa9702e1d67137a69c96a00957941f942b8de7",
        })
    );
    assert_eq!(reply.content_type, "application/json");
    assert_eq!(
        provider.handshake(&signed("forged", at, body).view(), now()),
        Some(Err(Rejection::SignatureMismatch))
    );
    assert_eq!(
        provider.handshake(&signed("test-secret", at - 400, body).view(), now()),
        Some(Err(Rejection::StaleTimestamp))
    );
    let empty = br#"{"payload":{"plainToken":""},"event":"endpoint.url_validation"}"#;
    assert_eq!(
        provider.handshake(&signed("test-secret", at, empty).view(), now()),
        Some(Err(Rejection::MalformedHandshake("payload.plainToken")))
    );
    // An ordinary event is not a handshake.
    assert_eq!(
        provider.handshake(&signed("test-secret", at, EVENT.as_bytes()).view(), now()),
        None
    );
}

#[test]
fn events_are_keyed_by_their_content_whatever_its_order() {
    let provider = zoom(&[SECRET]);
    let request = signed(SECRET, now().as_second(), EVENT.as_bytes());
    let events = provider
        .normalize_events(&request.view(), &origin("zoom", "zoom"))
        .expect("normalized");
    let event = &events[0].event;
    assert_eq!(event.providereventtype.as_deref(), Some("meeting.started"));
    assert_eq!(event.propertyid.as_deref(), Some("AAAAAABBBB"));
    assert_eq!(event.subject.as_deref(), Some("4444AAAiAAAAAiAiAiiAii=="));
    assert_eq!(
        event.time.map(|t| t.as_millisecond()),
        Some(1_710_511_200_123)
    );
    assert_eq!(event.body.event_type(), EventType::Unknown);
    // The same notification written in another order is the same event.
    let value: Value = serde_json::from_str(EVENT).expect("json");
    let reordered = format!(
        r#"{{"payload":{},"event_ts":1710511200123,"event":"meeting.started"}}"#,
        value["payload"]
    );
    let again = provider
        .normalize_events(
            &signed(SECRET, now().as_second(), reordered.as_bytes()).view(),
            &origin("zoom", "zoom"),
        )
        .expect("normalized");
    assert_eq!(again[0].event.providereventid, event.providereventid);
    // Another time is another event.
    let later = EVENT.replace("1710511200123", "1710511200124");
    let other = provider
        .normalize_events(
            &signed(SECRET, now().as_second(), later.as_bytes()).view(),
            &origin("zoom", "zoom"),
        )
        .expect("normalized");
    assert_ne!(other[0].event.providereventid, event.providereventid);
}

#[test]
fn sign_produces_what_verify_accepts() {
    let provider = zoom(&[SECRET]);
    let signed = provider.sign(&ToSign {
        path: "/webhooks/zoom",
        query: None,
        content_type: "application/json",
        body: EVENT.as_bytes(),
        now: now(),
    });
    let mut request = OwnedRequest::post("/webhooks/zoom", EVENT.as_bytes());
    for (name, value) in &signed.headers {
        request = request.header(name, value);
    }
    assert_eq!(provider.check(&request.view(), now()), Ok(()));
}
