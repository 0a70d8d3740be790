use serde_json::{Value, json};

use super::*;
use crate::event::EventType;
use crate::provider::ToSign;
use crate::testing::{Check, NormalizeChecked, OwnedRequest, now, origin};
use crate::{Secret, WebhookProvider};

const SECRET: &str = "slack-signing-secret";

fn slack(secrets: &[&str]) -> Slack {
    Slack::from_settings(
        Settings {
            secrets: secrets.iter().map(|s| Secret::new(*s)).collect(),
            event_types: vec![("message".into(), EventType::MessageReceived)]
                .into_iter()
                .collect(),
            ..Settings::default()
        },
        &Context::default(),
    )
    .expect("valid")
}

fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mac = crate::signing::hmac(
        crate::signing::Algorithm::Sha256,
        secret.as_bytes(),
        &[b"v0:", timestamp.to_string().as_bytes(), b":", body],
    );
    format!("v0={}", hex::encode(mac))
}

fn signed(secret: &str, timestamp: i64, body: &[u8]) -> OwnedRequest {
    OwnedRequest::post("/webhooks/slack", body.to_vec())
        .header("content-type", "application/json")
        .header(SIGNATURE, &signature(secret, timestamp, body))
        .header(TIMESTAMP, &timestamp.to_string())
}

const EVENT: &str = r#"{"token":"z26uFbvR1xHJEdHE1OQiO6t8","team_id":"T061EG9RZ","api_app_id":"A0FFV41KK","event":{"type":"reaction_added","user":"U061F1EUR","item":{"type":"message","channel":"C061EG9SL","ts":"1464196127.000002"},"reaction":"slightly_smiling_face","item_user":"U0M4RL1NY","event_ts":"1465244570.336841"},"type":"event_callback","authed_users":["U061F7AUR"],"event_id":"Ev9UQ52YNA","event_time":1234567890}"#;

/// Slack's own example from "Verifying requests from Slack": a slash command.
#[test]
fn slacks_published_vector_verifies() {
    let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    let request = OwnedRequest::post("/webhooks/slack", body.as_bytes())
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            SIGNATURE,
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
        )
        .header(TIMESTAMP, "1531420618");
    let provider = slack(&["8f742231b10e8888abcd99yyyzzz85a5"]);
    let at = Timestamp::from_second(1_531_420_618).expect("ts");
    assert_eq!(provider.check(&request.view(), at), Ok(()));
    // The slash command becomes one event keyed by its trigger id.
    let events = provider
        .normalize_events(&request.view(), &origin("slack", "slack"))
        .expect("normalized");
    assert_eq!(events.len(), 1);
    let event = &events[0].event;
    assert_eq!(
        event.providereventid,
        "398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    );
    assert_eq!(event.providereventtype.as_deref(), Some("slash_command"));
    assert_eq!(event.propertyid.as_deref(), Some("T1DC2JH3J"));
    assert_eq!(event.subject.as_deref(), Some("G8PSS9T3V"));
    // The app's verification token is not kept.
    let stored = serde_json::to_string(event).expect("json");
    assert!(!stored.contains("xyzz0WbapA4vBCDEFasx0q6G"), "{stored}");
    // `sign` computes the same header for the same timestamp.
    let signed = provider.sign(&ToSign {
        path: "/webhooks/slack",
        query: None,
        content_type: "application/x-www-form-urlencoded",
        body: body.as_bytes(),
        now: at,
    });
    assert!(signed.headers.contains(&(
        SIGNATURE.to_owned(),
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503".to_owned()
    )));
}

#[test]
fn tampered_wrong_secret_and_moved_timestamp_fail() {
    let at = now().as_second();
    let provider = slack(&[SECRET]);
    let good = signed(SECRET, at, EVENT.as_bytes());
    assert_eq!(provider.check(&good.view(), now()), Ok(()));
    let tampered = EVENT.replace("C061EG9SL", "C061EG9SM");
    let request = OwnedRequest::post("/webhooks/slack", tampered.as_bytes())
        .header(SIGNATURE, &signature(SECRET, at, EVENT.as_bytes()))
        .header(TIMESTAMP, &at.to_string());
    assert_eq!(
        provider.check(&request.view(), now()),
        Err(Rejection::SignatureMismatch)
    );
    let other = signed("another-secret", at, EVENT.as_bytes());
    assert_eq!(
        provider.check(&other.view(), now()),
        Err(Rejection::SignatureMismatch)
    );
    // The timestamp is signed: moving it by a second breaks the signature.
    let moved = OwnedRequest::post("/webhooks/slack", EVENT.as_bytes())
        .header(SIGNATURE, &signature(SECRET, at, EVENT.as_bytes()))
        .header(TIMESTAMP, &(at - 1).to_string());
    assert_eq!(
        provider.check(&moved.view(), now()),
        Err(Rejection::SignatureMismatch)
    );
    // Rotation: either secret verifies.
    assert_eq!(
        slack(&["old-secret", SECRET]).check(&good.view(), now()),
        Ok(())
    );
}

#[test]
fn stale_and_future_timestamps_fail_before_any_mac() {
    let provider = slack(&[SECRET]);
    let at = |offset: i64| {
        let t = now().as_second() + offset;
        provider.check(&signed(SECRET, t, EVENT.as_bytes()).view(), now())
    };
    assert_eq!(at(-300), Ok(()));
    assert_eq!(at(300), Ok(()));
    assert_eq!(at(-301), Err(Rejection::StaleTimestamp));
    assert_eq!(at(301), Err(Rejection::StaleTimestamp));
    // Stale and forged is still stale: the window comes first.
    let forged = OwnedRequest::post("/webhooks/slack", EVENT.as_bytes())
        .header(SIGNATURE, &format!("v0={}", "0".repeat(64)))
        .header(TIMESTAMP, &(now().as_second() - 3600).to_string());
    assert_eq!(
        provider.check(&forged.view(), now()),
        Err(Rejection::StaleTimestamp)
    );
}

#[test]
fn missing_and_malformed_headers_fail() {
    let provider = slack(&[SECRET]);
    let at = now().as_second();
    let good = signature(SECRET, at, EVENT.as_bytes());
    let with = |signature: Option<&str>, timestamp: Option<&str>| {
        let mut request = OwnedRequest::post("/webhooks/slack", EVENT.as_bytes());
        if let Some(value) = signature {
            request = request.header(SIGNATURE, value);
        }
        if let Some(value) = timestamp {
            request = request.header(TIMESTAMP, value);
        }
        provider.check(&request.view(), now())
    };
    let at_text = at.to_string();
    assert_eq!(
        with(None, Some(&at_text)),
        Err(Rejection::MissingSignature(SIGNATURE.into()))
    );
    for bad in [&good[3..], &good[..60], "v1=abc", "v0=", "garbage"] {
        assert_eq!(
            with(Some(bad), Some(&at_text)),
            Err(Rejection::MalformedSignature(SIGNATURE.into())),
            "{bad}"
        );
    }
    assert_eq!(
        with(Some(&good), None),
        Err(Rejection::MissingTimestamp(TIMESTAMP.into()))
    );
    for bad in ["", "soon", "-1", "1.5", "99999999999999"] {
        assert_eq!(
            with(Some(&good), Some(bad)),
            Err(Rejection::MalformedTimestamp(TIMESTAMP.into())),
            "{bad}"
        );
    }
    let twice = OwnedRequest::post("/webhooks/slack", EVENT.as_bytes())
        .header(SIGNATURE, &good)
        .header(SIGNATURE, &good)
        .header(TIMESTAMP, &at_text);
    assert_eq!(
        provider.check(&twice.view(), now()),
        Err(Rejection::RepeatedSignature(SIGNATURE.into()))
    );
}

#[test]
fn url_verification_is_answered_only_when_signed() {
    let provider = slack(&[SECRET]);
    let body = br#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let at = now().as_second();
    let answer = provider.handshake(&signed(SECRET, at, body).view(), now());
    let reply = answer.expect("a handshake").expect("answered");
    assert_eq!(reply.status, 200);
    let echoed: Value = serde_json::from_str(&reply.body).expect("json");
    assert_eq!(
        echoed,
        json!({"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})
    );
    // Forged, stale or unsigned: refused, never echoed.
    assert_eq!(
        provider.handshake(&signed("forged", at, body).view(), now()),
        Some(Err(Rejection::SignatureMismatch))
    );
    assert_eq!(
        provider.handshake(&signed(SECRET, at - 600, body).view(), now()),
        Some(Err(Rejection::StaleTimestamp))
    );
    let unsigned = OwnedRequest::post("/webhooks/slack", body.to_vec());
    assert_eq!(
        provider.handshake(&unsigned.view(), now()),
        Some(Err(Rejection::MissingSignature(SIGNATURE.into())))
    );
    // A signed challenge that is not a string is a malformed handshake.
    let odd = br#"{"type":"url_verification","challenge":42}"#;
    assert_eq!(
        provider.handshake(&signed(SECRET, at, odd).view(), now()),
        Some(Err(Rejection::MalformedHandshake("challenge")))
    );
    // An event that merely mentions the words is an event.
    let event = br#"{"type":"event_callback","event_id":"Ev1","event":{"type":"message","text":"url_verification"}}"#;
    assert_eq!(
        provider.handshake(&signed(SECRET, at, event).view(), now()),
        None
    );
}

#[test]
fn events_are_keyed_by_event_id_and_mapped_by_type() {
    let provider = slack(&[SECRET]);
    let request = signed(SECRET, now().as_second(), EVENT.as_bytes());
    let events = provider
        .normalize_events(&request.view(), &origin("slack", "slack"))
        .expect("normalized");
    let event = &events[0].event;
    assert_eq!(event.providereventid, "Ev9UQ52YNA");
    assert_eq!(event.providereventtype.as_deref(), Some("reaction_added"));
    assert_eq!(event.propertyid.as_deref(), Some("T061EG9RZ"));
    assert_eq!(event.subject.as_deref(), Some("U0M4RL1NY"));
    // Not in event_types: unknown, with the whole payload.
    assert_eq!(event.body.event_type(), EventType::Unknown);
    assert_eq!(event.time.map(|t| t.as_second()), Some(1_234_567_890));
    // Mapped: the event's members fill the canonical data where they fit.
    let message = r#"{"type":"event_callback","team_id":"T1","event_id":"Ev2","event_time":1700000000,"event":{"type":"message","channel":"D1","user":"U1","text":"Is late checkout possible?","ts":"1700000000.000100"}}"#;
    let request = signed(SECRET, now().as_second(), message.as_bytes());
    let events = provider
        .normalize_events(&request.view(), &origin("slack", "slack"))
        .expect("normalized");
    assert_eq!(events[0].event.providereventid, "Ev2");
    assert_eq!(events[0].event.subject.as_deref(), Some("D1"));
    // A JSON body that does not parse is malformed.
    let bad = signed(SECRET, now().as_second(), b"{not json");
    assert!(matches!(
        provider.normalize_events(&bad.view(), &origin("slack", "slack")),
        Err(Rejection::MalformedBody { .. })
    ));
}

#[test]
fn interactions_come_as_a_form_with_a_json_payload() {
    let provider = slack(&[SECRET]);
    let payload = json!({"type": "block_actions", "trigger_id": "13345224609.738474920.8088930838d88f008e0", "team": {"id": "T9TK3CUKW"}, "channel": {"id": "C1"}, "actions": [{"action_id": "late_checkout", "value": "yes"}]});
    let body = format!(
        "payload={}",
        percent_encoding::utf8_percent_encode(
            &payload.to_string(),
            percent_encoding::NON_ALPHANUMERIC
        )
    );
    let request = OwnedRequest::post("/webhooks/slack", body.as_bytes())
        .header("content-type", "application/x-www-form-urlencoded");
    let events = provider
        .normalize_events(&request.view(), &origin("slack", "slack"))
        .expect("normalized");
    let event = &events[0].event;
    assert_eq!(
        event.providereventid,
        "13345224609.738474920.8088930838d88f008e0"
    );
    assert_eq!(event.providereventtype.as_deref(), Some("block_actions"));
    assert_eq!(event.propertyid.as_deref(), Some("T9TK3CUKW"));
    let broken = OwnedRequest::post("/webhooks/slack", b"payload=%7Bnot".to_vec())
        .header("content-type", "application/x-www-form-urlencoded");
    assert!(matches!(
        provider.normalize_events(&broken.view(), &origin("slack", "slack")),
        Err(Rejection::MalformedBody { .. })
    ));
}
