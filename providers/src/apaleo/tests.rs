use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::json;

use super::*;
use crate::WebhookProvider;
use crate::event::EventType;
use crate::provider::ToSign;
use crate::testing::{Check, NormalizeChecked, OwnedRequest, now, origin};

const TOKEN: &str = "apaleo-url-token-0123456789";

/// Apaleo's documented payload example.
const EVENT: &str = r#"{"topic":"Reservation","type":"created","id":"ec5a1fe4-331c-450a-915c-5caa231cc825","accountId":"HFTF","propertyId":"HFTF-AADS","timestamp":1692268510605,"clientId":"ABCD-SP-APPDOINGSOMETHING","subjectId":"6f1c719d-1f45-4331-a30c-c6da0f642b60","data":{"entityId":"XPGMSXGF-1"}}"#;
const HEALTHCHECK: &str = r#"{"id":"2d4e4ea5-b1d5-4f32-8bcb-3b1b2c5e5f8a","topic":"system","type":"healthcheck","accountId":"SDXE","propertyIds":["MUC","BER"],"timestamp":1655824163606}"#;

fn apaleo(token: Option<&str>, basic: Option<(&str, &str)>) -> Apaleo {
    Apaleo::from_settings(
        Settings {
            url_token: token.map(Secret::new),
            basic: basic.map(|(username, password)| BasicSettings {
                username: username.into(),
                password: Secret::new(password),
            }),
        },
        &Context::default(),
    )
    .expect("valid")
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", BASE64.encode(format!("{user}:{password}")))
}

#[test]
fn the_url_token_and_basic_credentials_must_all_match() {
    let by_token = apaleo(Some(TOKEN), None);
    let post = |query: &str| {
        let mut request = OwnedRequest::post("/webhooks/apaleo", EVENT.as_bytes());
        request.query = Some(query.to_owned());
        request
    };
    assert_eq!(
        by_token.check(&post(&format!("token={TOKEN}")).view(), now()),
        Ok(())
    );
    assert_eq!(
        by_token.check(&post("token=apaleo-url-token-0123456780").view(), now()),
        Err(Rejection::BadUrlToken)
    );
    assert_eq!(
        by_token.check(
            &OwnedRequest::post("/webhooks/apaleo", EVENT.as_bytes()).view(),
            now()
        ),
        Err(Rejection::BadUrlToken)
    );
    let both = apaleo(Some(TOKEN), Some(("apaleo", "basic-password-123")));
    let good = post(&format!("token={TOKEN}"))
        .header("authorization", &basic("apaleo", "basic-password-123"));
    assert_eq!(both.check(&good.view(), now()), Ok(()));
    let wrong = post(&format!("token={TOKEN}"))
        .header("authorization", &basic("apaleo", "basic-password-124"));
    assert_eq!(
        both.check(&wrong.view(), now()),
        Err(Rejection::BadSharedSecret)
    );
    let missing = post(&format!("token={TOKEN}"));
    assert_eq!(
        both.check(&missing.view(), now()),
        Err(Rejection::MissingSignature("authorization".into()))
    );
    let malformed = post(&format!("token={TOKEN}")).header("authorization", "Basic %%%");
    assert_eq!(
        both.check(&malformed.view(), now()),
        Err(Rejection::MalformedSignature("authorization".into()))
    );
    // What porter sends is what it accepts.
    let signed = both.sign(&ToSign {
        path: "/webhooks/apaleo",
        query: None,
        content_type: "application/json",
        body: EVENT.as_bytes(),
        now: now(),
    });
    let mut request = post(signed.query.as_deref().expect("query"));
    for (name, value) in &signed.headers {
        request = request.header(name, value);
    }
    assert_eq!(both.check(&request.view(), now()), Ok(()));
}

#[test]
fn settings_need_a_token_or_credentials() {
    let problems =
        Apaleo::from_settings(Settings::default(), &Context::default()).expect_err("refused");
    assert!(format!("{problems:?}").contains("url_token"));
    let short = Apaleo::from_settings(
        Settings {
            url_token: Some(Secret::new("short")),
            basic: Some(BasicSettings {
                username: "u".into(),
                password: Secret::new("short"),
            }),
        },
        &Context::default(),
    )
    .expect_err("refused");
    let text = format!("{short:?}");
    assert!(
        text.contains("url_token") && text.contains("basic.password"),
        "{text}"
    );
}

#[test]
fn the_health_check_is_answered_once_authenticated_and_not_stored() {
    let provider = apaleo(Some(TOKEN), None);
    let mut request = OwnedRequest::post("/webhooks/apaleo", HEALTHCHECK.as_bytes());
    request.query = Some(format!("token={TOKEN}"));
    assert_eq!(
        provider.handshake(&request.view(), now()),
        Some(Ok(Reply::accepted(0)))
    );
    let forged = OwnedRequest::post("/webhooks/apaleo", HEALTHCHECK.as_bytes());
    assert_eq!(
        provider.handshake(&forged.view(), now()),
        Some(Err(Rejection::BadUrlToken))
    );
    let mut event = OwnedRequest::post("/webhooks/apaleo", EVENT.as_bytes());
    event.query = Some(format!("token={TOKEN}"));
    assert_eq!(provider.handshake(&event.view(), now()), None);
}

#[test]
fn events_are_keyed_by_id_and_mapped_by_topic_and_type() {
    let provider = apaleo(Some(TOKEN), None);
    let normalize = |body: &str| {
        provider
            .normalize_events(
                &OwnedRequest::post("/webhooks/apaleo", body.as_bytes()).view(),
                &origin("apaleo", "apaleo"),
            )
            .expect("normalized")
            .remove(0)
            .event
    };
    let event = normalize(EVENT);
    assert_eq!(
        event.providereventid,
        "ec5a1fe4-331c-450a-915c-5caa231cc825"
    );
    assert_eq!(
        event.providereventtype.as_deref(),
        Some("reservation/created")
    );
    assert_eq!(event.subject.as_deref(), Some("XPGMSXGF-1"));
    assert_eq!(event.propertyid.as_deref(), Some("HFTF-AADS"));
    assert_eq!(
        event.time.map(|t| t.as_millisecond()),
        Some(1_692_268_510_605)
    );
    let EventBody::ReservationCreated(data) = &event.body else {
        panic!("{:?}", event.body)
    };
    assert_eq!(data.reservation_id.as_deref(), Some("XPGMSXGF-1"));
    for (topic, kind, expected) in [
        ("reservation", "canceled", EventType::ReservationCancelled),
        ("Reservation", "checked-in", EventType::ReservationCheckedIn),
        (
            "reservation",
            "checked-out",
            EventType::ReservationCheckedOut,
        ),
        ("reservation", "amended", EventType::ReservationUpdated),
        (
            "reservation",
            "set-to-no-show",
            EventType::ReservationUpdated,
        ),
        ("reservation", "deleted", EventType::Unknown),
        ("Folio", "payment-posted", EventType::PaymentReceived),
        ("folio", "refund-posted", EventType::PaymentRefunded),
        ("unit", "changed", EventType::RoomStatusChanged),
        ("maintenance", "created", EventType::RoomMaintenanceRequired),
        ("nightaudit", "succeeded", EventType::Unknown),
    ] {
        let body = json!({"topic": topic, "type": kind, "id": "e1", "propertyId": "MUC", "timestamp": 1, "data": {"entityId": "X"}});
        assert_eq!(
            normalize(&body.to_string()).body.event_type(),
            expected,
            "{topic}/{kind}"
        );
    }
    // Without an id: a hash of type, entity and timestamp.
    let without = json!({"topic": "unit", "type": "changed", "timestamp": 5, "data": {"entityId": "MUC-101"}});
    assert!(
        normalize(&without.to_string())
            .providereventid
            .starts_with("sha256:")
    );
}
