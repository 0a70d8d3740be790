use serde_json::json;

use super::*;
use crate::WebhookProvider;
use crate::event::EventType;
use crate::testing::{Check, NormalizeChecked, OwnedRequest, now, origin};

const KEY: &str = "bird-signing-key";

fn bird(url: &str) -> Bird {
    Bird::from_settings(
        Settings {
            secrets: vec![Secret::new(KEY)],
            tolerance: None,
            public_url: Some(url.to_owned()),
        },
        &Context::default(),
    )
    .expect("valid")
}

fn request(signature: &str, timestamp: &str, path: &str, body: &str) -> OwnedRequest {
    OwnedRequest::post(path, body.as_bytes())
        .header(SIGNATURE, signature)
        .header(TIMESTAMP, timestamp)
}

/// The example of Bird's verification guide, recomputed with Python's `hmac` and `hashlib`:
/// key `secureSigningKey`, timestamp `1719823259`, URL `https://domain.com/webhook/bird`,
/// body `{"service":"channels"}`.
#[test]
fn birds_example_verifies() {
    let provider = Bird::from_settings(
        Settings {
            secrets: vec![Secret::new("secureSigningKey")],
            tolerance: None,
            public_url: Some("https://domain.com".into()),
        },
        &Context::default(),
    )
    .expect("valid");
    let example = request(
        "LHecnncIcr4K7yrloYAwqo67bgZxxTTLdgShZrs7t3w=",
        "1719823259",
        "/webhook/bird",
        r#"{"service":"channels"}"#,
    );
    let at = Timestamp::from_second(1_719_823_259).expect("ts");
    assert_eq!(provider.check(&example.view(), at), Ok(()));
    // The URL is signed: another path, or another host, does not verify.
    let moved = request(
        "LHecnncIcr4K7yrloYAwqo67bgZxxTTLdgShZrs7t3w=",
        "1719823259",
        "/webhook/birds",
        r#"{"service":"channels"}"#,
    );
    assert_eq!(
        provider.check(&moved.view(), at),
        Err(Rejection::SignatureMismatch)
    );
    let elsewhere = Bird::from_settings(
        Settings {
            secrets: vec![Secret::new("secureSigningKey")],
            tolerance: None,
            public_url: Some("https://other.example".into()),
        },
        &Context::default(),
    )
    .expect("valid");
    assert_eq!(
        elsewhere.check(&example.view(), at),
        Err(Rejection::SignatureMismatch)
    );
    // With the default port written out, it is the same URL.
    let with_port = Bird::from_settings(
        Settings {
            secrets: vec![Secret::new("secureSigningKey")],
            tolerance: None,
            public_url: Some("https://domain.com:443".into()),
        },
        &Context::default(),
    )
    .expect("valid");
    assert_eq!(with_port.check(&example.view(), at), Ok(()));
}

#[test]
fn tampered_wrong_key_stale_and_malformed_fail() {
    let provider = bird("https://hooks.example.com");
    let body = r#"{"service":"channels","event":"sms.inbound","payload":{"id":"m1"}}"#;
    let at = now().as_second().to_string();
    let good = signature(
        &Secret::new(KEY),
        &at,
        "https://hooks.example.com/webhooks/bird",
        body.as_bytes(),
    );
    assert_eq!(
        provider.check(&request(&good, &at, "/webhooks/bird", body).view(), now()),
        Ok(())
    );
    assert_eq!(
        provider.check(
            &request(&good, &at, "/webhooks/bird", &body.replace("m1", "m2")).view(),
            now()
        ),
        Err(Rejection::SignatureMismatch)
    );
    let other = signature(
        &Secret::new("other-key"),
        &at,
        "https://hooks.example.com/webhooks/bird",
        body.as_bytes(),
    );
    assert_eq!(
        provider.check(&request(&other, &at, "/webhooks/bird", body).view(), now()),
        Err(Rejection::SignatureMismatch)
    );
    let old = (now().as_second() - 301).to_string();
    let stale = signature(
        &Secret::new(KEY),
        &old,
        "https://hooks.example.com/webhooks/bird",
        body.as_bytes(),
    );
    assert_eq!(
        provider.check(&request(&stale, &old, "/webhooks/bird", body).view(), now()),
        Err(Rejection::StaleTimestamp)
    );
    assert_eq!(
        provider.check(
            &request("not base64!", &at, "/webhooks/bird", body).view(),
            now()
        ),
        Err(Rejection::MalformedSignature(SIGNATURE.into()))
    );
    assert_eq!(
        provider.check(
            &request(&good, "soon", "/webhooks/bird", body).view(),
            now()
        ),
        Err(Rejection::MalformedTimestamp(TIMESTAMP.into()))
    );
    assert_eq!(
        provider.check(
            &OwnedRequest::post("/webhooks/bird", body.as_bytes()).view(),
            now()
        ),
        Err(Rejection::MissingSignature(SIGNATURE.into()))
    );
    // `sign` makes what `check` accepts.
    let signed = provider.sign(&ToSign {
        path: "/webhooks/bird",
        query: Some("x=1"),
        content_type: "application/json",
        body: body.as_bytes(),
        now: now(),
    });
    let mut again = OwnedRequest::post("/webhooks/bird", body.as_bytes());
    again.query = Some("x=1".into());
    for (name, value) in &signed.headers {
        again = again.header(name, value);
    }
    assert_eq!(provider.check(&again.view(), now()), Ok(()));
    assert!(
        Bird::from_settings(
            Settings {
                secrets: vec![Secret::new(KEY)],
                tolerance: None,
                public_url: None
            },
            &Context::default()
        )
        .is_err(),
        "the signed URL must be known"
    );
}

#[test]
fn inbound_and_outbound_messages_map_by_event() {
    let provider = bird("https://hooks.example.com");
    let normalize = |body: &Value| {
        provider
            .normalize_events(
                &OwnedRequest::post("/webhooks/bird", body.to_string().into_bytes()).view(),
                &origin("bird", "bird"),
            )
            .expect("normalized")
            .remove(0)
            .event
    };
    let inbound = json!({"service": "channels", "event": "whatsapp.inbound", "payload": {
        "id": "6b3d4c1e-1f2a-4b5c-9d8e-7f6a5b4c3d2e", "channelId": "ch-1", "direction": "incoming",
        "sender": {"contact": {"identifierKey": "phonenumber", "identifierValue": "+351912345678"}},
        "receiver": {"contacts": [{"identifierValue": "+351210000000"}]},
        "body": {"type": "text", "text": {"text": "Can I check out at 1pm?"}},
        "createdAt": "2024-03-15T13:59:59.000Z"
    }});
    let event = normalize(&inbound);
    assert_eq!(
        event.providereventid,
        "6b3d4c1e-1f2a-4b5c-9d8e-7f6a5b4c3d2e"
    );
    let EventBody::MessageReceived(data) = &event.body else {
        panic!("{:?}", event.body)
    };
    assert_eq!(data.channel, Channel::Whatsapp);
    assert_eq!(data.from.as_deref(), Some("+351912345678"));
    assert_eq!(data.to.as_deref(), Some("+351210000000"));
    assert_eq!(data.text.as_deref(), Some("Can I check out at 1pm?"));
    let outbound = json!({"service": "channels", "event": "sms.outbound", "payload": {
        "id": "m9", "status": "delivered", "receiver": {"contacts": [{"identifierValue": "+351912345678"}]}
    }});
    let event = normalize(&outbound);
    assert_eq!(event.providereventid, "m9:delivered");
    assert_eq!(event.body.event_type(), EventType::MessageStatusChanged);
    let other = json!({"service": "channels", "event": "email.inbound", "payload": {"id": "e1"}});
    assert_eq!(normalize(&other).body.event_type(), EventType::Unknown);
}
