use serde_json::json;

use super::*;
use crate::event::EventType;
use crate::testing::{Check, NormalizeChecked, OwnedRequest, now, origin};

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const V2_SECRET: &str = "guesty-v2-signing-secret";
const BODY: &str = r#"{"event":"reservation.updated.v2","reservation":{"_id":"64f0c1a2b3c4d5e6f7a8b9c0","confirmationCode":"GY-7Kq2fTz","status":"canceled","listingId":"5f1a2b3c4d5e6f7a8b9c0d1e","checkInDateLocalized":"2024-06-01","checkOutDateLocalized":"2024-06-05","nightsCount":4,"guest":{"_id":"g1","fullName":"Ana Silva"}},"publishedAt":"2024-03-15T13:59:58.000Z","meta":{"eventId":"evt-6a1b2c3d","messageId":"msg-1"}}"#;

fn guesty(secret: &str, scheme: Option<&str>) -> Guesty {
    Guesty::from_settings(
        Settings {
            secrets: vec![Secret::new(secret)],
            tolerance: None,
            scheme: scheme.map(str::to_owned),
        },
        &Context::default(),
    )
    .expect("valid")
}

fn signed_by(provider: &Guesty, body: &str, at: Timestamp) -> OwnedRequest {
    let signed = provider.sign(&ToSign {
        path: "/webhooks/guesty",
        query: None,
        content_type: "application/json",
        body: body.as_bytes(),
        now: at,
    });
    let mut request = OwnedRequest::post("/webhooks/guesty", body.as_bytes());
    for (name, value) in &signed.headers {
        request = request.header(name, value);
    }
    request
}

#[test]
fn svix_is_the_default_and_is_standard_webhooks_under_svix_names() {
    let provider = guesty(WHSEC, None);
    let request = signed_by(&provider, BODY, now());
    let names: Vec<&str> = request.headers.keys().map(|n| n.as_str()).collect();
    assert!(names.contains(&"svix-signature"), "{names:?}");
    assert_eq!(provider.check(&request.view(), now()), Ok(()));
    // Tampered, another secret, stale, malformed.
    let mut tampered = signed_by(&provider, BODY, now());
    tampered.body = BODY.replace("canceled", "confirmed").into_bytes();
    assert_eq!(
        provider.check(&tampered.view(), now()),
        Err(Rejection::SignatureMismatch)
    );
    let other = guesty("whsec_b3RoZXIta2V5LWJ5dGVz", None);
    assert_eq!(
        other.check(&request.view(), now()),
        Err(Rejection::SignatureMismatch)
    );
    let stale = signed_by(
        &provider,
        BODY,
        Timestamp::from_second(now().as_second() - 301).expect("ts"),
    );
    assert_eq!(
        provider.check(&stale.view(), now()),
        Err(Rejection::StaleTimestamp)
    );
    let mut malformed = OwnedRequest::post("/webhooks/guesty", BODY.as_bytes());
    for (name, value) in request.headers.iter() {
        let value = if name.as_str() == "svix-signature" {
            "v1,not base64!"
        } else {
            value.to_str().expect("ascii")
        };
        malformed = malformed.header(name.as_str(), value);
    }
    assert_eq!(
        provider.check(&malformed.view(), now()),
        Err(Rejection::MalformedSignature("svix-signature".into()))
    );
    assert_eq!(
        provider.check(
            &OwnedRequest::post("/webhooks/guesty", BODY.as_bytes()).view(),
            now()
        ),
        Err(Rejection::MissingSignature("webhook-id".into()))
    );
}

#[test]
fn signature_v2_is_a_hex_hmac_of_the_body() {
    let provider = guesty(V2_SECRET, Some("signature_v2"));
    let body = r#"{"event":"listing.updated"}"#;
    let request = OwnedRequest::post("/webhooks/guesty", body.as_bytes()).header(
        "x-guesty-signature-v2",
        "37b4b9f0d5f1d8f3d2a8ee71d3f5b5e5b0c8a6d9e1c9d6c7c0b5e2a1f4d3c2b1",
    );
    // Not the real MAC: refused; the real one (computed by Python) is accepted.
    assert_eq!(
        provider.check(&request.view(), now()),
        Err(Rejection::SignatureMismatch)
    );
    let good = OwnedRequest::post("/webhooks/guesty", body.as_bytes())
        .header("x-guesty-signature-v2", PYTHON_V2);
    assert_eq!(provider.check(&good.view(), now()), Ok(()));
    assert_eq!(
        provider.check(
            &OwnedRequest::post("/webhooks/guesty", body.as_bytes()).view(),
            now()
        ),
        Err(Rejection::MissingSignature("x-guesty-signature-v2".into()))
    );
    let short = OwnedRequest::post("/webhooks/guesty", body.as_bytes())
        .header("x-guesty-signature-v2", &PYTHON_V2[..40]);
    assert_eq!(
        provider.check(&short.view(), now()),
        Err(Rejection::MalformedSignature(
            "x-guesty-signature-v2".into()
        ))
    );
    assert!(
        Guesty::from_settings(
            Settings {
                secrets: vec![Secret::new("x")],
                tolerance: None,
                scheme: Some("jwt".into()),
            },
            &Context::default()
        )
        .is_err()
    );
}

/// python3 -c 'import hmac,hashlib; print(hmac.new(b"guesty-v2-signing-secret",
///   b"{\"event\":\"listing.updated\"}", hashlib.sha256).hexdigest())'
const PYTHON_V2: &str = "777b419605e463fda8d4df20e1f3346efcd1a7480192a646dd1178372a456b44";

#[test]
fn reservations_and_messages_map_and_are_keyed_by_the_event_id() {
    let provider = guesty(WHSEC, None);
    let normalize = |body: &str| {
        let request = signed_by(&provider, body, now());
        provider
            .normalize_events(&request.view(), &origin("guesty", "guesty"))
            .expect("normalized")
            .remove(0)
            .event
    };
    let event = normalize(BODY);
    assert_eq!(event.providereventid, "evt-6a1b2c3d");
    assert_eq!(event.body.event_type(), EventType::ReservationCancelled);
    assert_eq!(event.subject.as_deref(), Some("64f0c1a2b3c4d5e6f7a8b9c0"));
    let EventBody::ReservationCancelled(data) = &event.body else {
        panic!()
    };
    assert_eq!(data.confirmation_number.as_deref(), Some("GY-7Kq2fTz"));
    assert_eq!(data.arrival_date.as_deref(), Some("2024-06-01"));
    for (status, expected) in [
        ("checked_in", EventType::ReservationCheckedIn),
        ("checked_out", EventType::ReservationCheckedOut),
        ("confirmed", EventType::ReservationUpdated),
    ] {
        assert_eq!(
            normalize(&BODY.replace("canceled", status))
                .body
                .event_type(),
            expected
        );
    }
    assert_eq!(
        normalize(&BODY.replace("reservation.updated.v2", "reservation.new"))
            .body
            .event_type(),
        EventType::ReservationCreated
    );
    // Without meta.eventId the signed svix-id is the key.
    let bare = json!({"event": "listing.updated", "listing": {"_id": "L1"}}).to_string();
    let event = normalize(&bare);
    assert!(
        event.providereventid.starts_with("msg_"),
        "{}",
        event.providereventid
    );
    assert_eq!(event.body.event_type(), EventType::Unknown);
    let message = json!({"event": "reservation.messageReceived", "reservationId": "R1", "message": {"_id": "m1", "body": "Where do I park?"}, "conversation": {"guestId": "g1"}, "meta": {"eventId": "e9"}}).to_string();
    let EventBody::MessageReceived(data) = normalize(&message).body else {
        panic!("not a message")
    };
    assert_eq!(data.text.as_deref(), Some("Where do I park?"));
    assert_eq!(data.channel, Channel::Pms);
}
