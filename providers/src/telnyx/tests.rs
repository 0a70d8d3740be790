use super::*;
use crate::WebhookProvider;
use crate::event::EventType;
use crate::testing::{Check, NormalizeChecked, OwnedRequest, now, origin};

/// A seed of bytes 0..32 and its public key, and a signature of `BODY` at `AT`, all computed
/// with Python's `cryptography` package (`Ed25519PrivateKey.from_private_bytes`). Telnyx's
/// SDK accepts it: telnyx 4.189.0 (PyPI, with PyNaCl 1.6.2)
/// `telnyx.lib.webhook_verification.verify_webhook_signature(BODY, headers, PUBLIC)`, its
/// clock set to `AT`, and refuses the body with one letter changed.
const SEED: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const PUBLIC: &str = "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=";
const SIGNATURE_OF_BODY: &str =
    "KY0SuC4Pzw5k+2N3nZg+u1ok6jg9aOl/jFMoipjEPaJl36jYEiKPuwMCTnAhplo6onGB1vfUTTzUKuy1ShnJAg==";
const AT: &str = "1710511201";
const BODY: &str = r#"{"data":{"event_type":"message.received","id":"b301ed3f-1490-491f-995f-6e64e69674d4","occurred_at":"2024-03-15T14:00:00.000+00:00","payload":{"id":"84cca175-9755-4859-b67f-4730d7f58aa3","text":"Is breakfast included?"},"record_type":"event"},"meta":{"attempt":1,"delivered_to":"https://hooks.example.com/webhooks/telnyx"}}"#;
/// Another key pair's public key (seed of 32 × 0x07).
const OTHER_SEED: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

fn telnyx(public_keys: &[&str], signing_key: Option<&str>) -> Telnyx {
    Telnyx::from_settings(
        Settings {
            public_keys: public_keys.iter().map(|k| (*k).to_owned()).collect(),
            signing_key: signing_key.map(Secret::new),
            ..Settings::default()
        },
        &Context::default(),
    )
    .expect("valid")
}

fn request(signature: &str, timestamp: &str, body: &str) -> OwnedRequest {
    OwnedRequest::post("/webhooks/telnyx", body.as_bytes())
        .header(SIGNATURE, signature)
        .header(TIMESTAMP, timestamp)
}

#[test]
fn a_signature_made_by_another_implementation_verifies() {
    assert_eq!(public_key_of(SEED).as_deref(), Some(PUBLIC));
    let provider = telnyx(&[PUBLIC], None);
    assert_eq!(
        provider.check(&request(SIGNATURE_OF_BODY, AT, BODY).view(), now()),
        Ok(())
    );
    // Ed25519 is deterministic: porter's signer makes the same signature from the same seed.
    let signer = telnyx(&[PUBLIC], Some(SEED));
    let signed = signer.sign(&ToSign {
        path: "/webhooks/telnyx",
        query: None,
        content_type: "application/json",
        body: BODY.as_bytes(),
        now: now(),
    });
    assert!(
        signed
            .headers
            .contains(&(SIGNATURE.to_owned(), SIGNATURE_OF_BODY.to_owned()))
    );
    assert!(
        signed
            .headers
            .contains(&(TIMESTAMP.to_owned(), AT.to_owned()))
    );
}

#[test]
fn tampering_another_key_and_a_moved_timestamp_fail() {
    let provider = telnyx(&[PUBLIC], None);
    let tampered = BODY.replace("breakfast", "Breakfast");
    assert_eq!(
        provider.check(&request(SIGNATURE_OF_BODY, AT, &tampered).view(), now()),
        Err(Rejection::SignatureMismatch)
    );
    let other = public_key_of(OTHER_SEED).expect("key");
    assert_eq!(
        telnyx(&[&other], None).check(&request(SIGNATURE_OF_BODY, AT, BODY).view(), now()),
        Err(Rejection::SignatureMismatch)
    );
    // Rotation: either listed key verifies.
    assert_eq!(
        telnyx(&[&other, PUBLIC], None).check(&request(SIGNATURE_OF_BODY, AT, BODY).view(), now()),
        Ok(())
    );
    // The timestamp is signed.
    assert_eq!(
        provider.check(
            &request(SIGNATURE_OF_BODY, "1710511200", BODY).view(),
            now()
        ),
        Err(Rejection::SignatureMismatch)
    );
}

#[test]
fn stale_and_future_timestamps_fail_before_the_signature() {
    let signer = telnyx(&[PUBLIC], Some(SEED));
    let at = |offset: i64| {
        let when = Timestamp::from_second(now().as_second() + offset).expect("ts");
        let signed = signer.sign(&ToSign {
            path: "/webhooks/telnyx",
            query: None,
            content_type: "application/json",
            body: BODY.as_bytes(),
            now: when,
        });
        let mut request = OwnedRequest::post("/webhooks/telnyx", BODY.as_bytes());
        for (name, value) in &signed.headers {
            request = request.header(name, value);
        }
        signer.check(&request.view(), now())
    };
    assert_eq!(at(0), Ok(()));
    assert_eq!(at(-300), Ok(()));
    assert_eq!(at(300), Ok(()));
    assert_eq!(at(-301), Err(Rejection::StaleTimestamp));
    assert_eq!(at(301), Err(Rejection::StaleTimestamp));
}

#[test]
fn missing_and_malformed_headers_fail() {
    let provider = telnyx(&[PUBLIC], None);
    let check = |request: OwnedRequest| provider.check(&request.view(), now());
    assert_eq!(
        check(OwnedRequest::post("/webhooks/telnyx", BODY.as_bytes()).header(TIMESTAMP, AT)),
        Err(Rejection::MissingSignature(SIGNATURE.into()))
    );
    for bad in ["not base64!", "AAAA", &SIGNATURE_OF_BODY[4..]] {
        assert_eq!(
            check(request(bad, AT, BODY)),
            Err(Rejection::MalformedSignature(SIGNATURE.into())),
            "{bad}"
        );
    }
    assert_eq!(
        check(
            OwnedRequest::post("/webhooks/telnyx", BODY.as_bytes())
                .header(SIGNATURE, SIGNATURE_OF_BODY)
        ),
        Err(Rejection::MissingTimestamp(TIMESTAMP.into()))
    );
    assert_eq!(
        check(request(SIGNATURE_OF_BODY, "2024-03-15T14:00:01Z", BODY)),
        Err(Rejection::MalformedTimestamp(TIMESTAMP.into()))
    );
    // Without a signing key porter cannot sign: the request it would send is refused.
    let unsigned = provider.sign(&ToSign {
        path: "/webhooks/telnyx",
        query: None,
        content_type: "application/json",
        body: BODY.as_bytes(),
        now: now(),
    });
    assert_eq!(unsigned.headers.len(), 1);
}

#[test]
fn settings_refuse_what_is_not_a_key() {
    let refused = |public_keys: Vec<String>, signing_key: Option<&str>| {
        Telnyx::from_settings(
            Settings {
                public_keys,
                signing_key: signing_key.map(Secret::new),
                ..Settings::default()
            },
            &Context::default(),
        )
        .expect_err("refused")
        .iter()
        .map(|e| format!("{e:?}"))
        .collect::<Vec<_>>()
        .join("; ")
    };
    assert!(refused(Vec::new(), None).contains("public_keys"));
    assert!(refused(vec!["AAAA".into()], None).contains("public_keys[0]"));
    assert!(refused(vec![PUBLIC.into()], Some("short")).contains("signing_key"));
}

#[test]
fn messages_and_statuses_map_by_event_type() {
    let provider = telnyx(&[PUBLIC], None);
    let normalize = |body: &str| {
        provider
            .normalize_events(
                &OwnedRequest::post("/webhooks/telnyx", body.as_bytes()).view(),
                &origin("telnyx", "telnyx"),
            )
            .expect("normalized")
    };
    let received = r#"{"data":{"event_type":"message.received","id":"b301ed3f-1490-491f-995f-6e64e69674d4","occurred_at":"2019-12-09T20:16:07.588+00:00","payload":{"direction":"inbound","errors":[],"from":{"carrier":"T-Mobile USA","line_type":"long_code","phone_number":"+13125550001"},"id":"84cca175-9755-4859-b67f-4730d7f58aa3","media":[{"url":"https://media.example/1.jpg","content_type":"image/jpeg","hash_sha256":"abc","size":1}],"messaging_profile_id":"740572b6-099c-44a1-89b9-6c92163bc68d","organization_id":"47a530f8-4362-4526-829b-bcee17fd9f7a","text":"Hello from Telnyx!","to":[{"carrier":"Telnyx","line_type":"Wireless","phone_number":"+17735550002","status":"webhook_delivered"}],"type":"MMS"},"record_type":"event"},"meta":{"attempt":1,"delivered_to":"https://hooks.example.com"}}"#;
    let events = normalize(received);
    let event = &events[0].event;
    assert_eq!(
        event.providereventid,
        "b301ed3f-1490-491f-995f-6e64e69674d4"
    );
    assert_eq!(
        event.subject.as_deref(),
        Some("84cca175-9755-4859-b67f-4730d7f58aa3")
    );
    assert_eq!(
        event.propertyid.as_deref(),
        Some("740572b6-099c-44a1-89b9-6c92163bc68d")
    );
    let EventBody::MessageReceived(data) = &event.body else {
        panic!("{:?}", event.body)
    };
    assert_eq!(data.from.as_deref(), Some("+13125550001"));
    assert_eq!(data.to.as_deref(), Some("+17735550002"));
    assert_eq!(data.kind, Some(MessageKind::Image));
    assert_eq!(data.text.as_deref(), Some("Hello from Telnyx!"));
    assert_eq!(data.media[0].sha256.as_deref(), Some("abc"));
    // A retry carries the same data.id and a higher attempt: the same key.
    let retry = received.replace(r#""attempt":1"#, r#""attempt":2"#);
    assert_eq!(
        normalize(&retry)[0].event.providereventid,
        event.providereventid
    );

    let finalized = r#"{"data":{"event_type":"message.finalized","id":"e1","occurred_at":"2024-03-15T14:00:00Z","payload":{"id":"m1","from":{"phone_number":"+15550001"},"to":[{"phone_number":"+15550002","status":"delivery_failed"}],"errors":[{"code":"40008","title":"Undeliverable","detail":"The message could not be delivered"}]}}}"#;
    let events = normalize(finalized);
    let EventBody::MessageStatusChanged(status) = &events[0].event.body else {
        panic!("{:?}", events[0].event.body)
    };
    assert_eq!(status.status, DeliveryStatus::Failed);
    assert_eq!(status.provider_status, "delivery_failed");
    assert_eq!(status.recipient.as_deref(), Some("+15550002"));
    assert_eq!(status.errors[0].code, Some(40008));
    let sent = finalized
        .replace("message.finalized", "message.sent")
        .replace("delivery_failed", "sent");
    let EventBody::MessageStatusChanged(status) = &normalize(&sent)[0].event.body else {
        panic!("not a status")
    };
    assert_eq!(status.status, DeliveryStatus::Sent);

    let call =
        r#"{"data":{"event_type":"call.initiated","id":"c1","payload":{"call_control_id":"x"}}}"#;
    let events = normalize(call);
    assert_eq!(events[0].event.body.event_type(), EventType::Unknown);
    assert_eq!(events[0].event.providereventid, "c1");
}
