use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use serde_json::json;

use super::*;
use crate::WebhookProvider;
use crate::event::EventType;
use crate::testing::{Check, NormalizeChecked, OwnedRequest, now, origin};

const SECRET: &str = "vonage-signature-secret";
const BODY: &str = r#"{"channel":"whatsapp","message_uuid":"aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab","to":"447700900000","from":"447700900001","timestamp":"2024-03-15T14:00:00Z","profile":{"name":"Jane Smith"},"message_type":"text","text":"Is the spa open?"}"#;
/// A token for `BODY` issued at 1710511200 (the fixtures' clock minus a second), made with
/// Python's `hmac`, `hashlib` and `base64` (HS256 over `header.claims`, `payload_hash` the hex
/// SHA-256 of `BODY`). Vonage's SDK accepts it: vonage-jwt 1.1.5 (PyPI)
/// `verify_signature(TOKEN, "vonage-signature-secret")` is `True`, and `False` for another
/// secret. (That SDK checks the signature only; porter also checks `payload_hash`, as
/// Vonage's documentation says to.)
const TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpYXQiOjE3MTA1MTEyMDAsImp0aSI6ImMxZDJlM2Y0IiwiaXNzIjoiVm9uYWdlIiwicGF5bG9hZF9oYXNoIjoiY2ExN2E4MTQ2YjUzYzliMTAyNjk3MjNlYThmYWU1N2E5M2NhMjAyNTM2MDZjZGIxMmFlOGFjNjBhZjhjMTZlMyIsImFwaV9rZXkiOiJhYmNkMTIzNCIsImFwcGxpY2F0aW9uX2lkIjoiYWFhYWFhYWEtMDAwMC00MDAwLTgwMDAtMDAwMDAwMDAwMDAwIn0.St7TgOw_kLwLSfV3-olG-fCfbiJgqshB3w40kuJsKFc";

fn vonage(secrets: &[&str]) -> Vonage {
    Vonage::from_settings(
        Settings {
            secrets: secrets.iter().map(|s| Secret::new(*s)).collect(),
            tolerance: None,
        },
        &Context::default(),
    )
    .expect("valid")
}

fn bearer(token: &str, body: &str) -> OwnedRequest {
    OwnedRequest::post("/webhooks/vonage", body.as_bytes())
        .header("authorization", &format!("Bearer {token}"))
}

/// A token with these header and claims, signed with `secret`.
fn token(header: &Value, claims: &Value, secret: &str) -> String {
    let head = BASE64URL.encode(header.to_string());
    let body = BASE64URL.encode(claims.to_string());
    let mac = hmac(
        Algorithm::Sha256,
        secret.as_bytes(),
        &[head.as_bytes(), b".", body.as_bytes()],
    );
    format!("{head}.{body}.{}", BASE64URL.encode(mac))
}

fn claims(iat: i64, body: &str) -> Value {
    json!({"iat": iat, "jti": "j1", "iss": "Vonage", "payload_hash": hex::encode(Sha256::digest(body.as_bytes()))})
}

#[test]
fn a_token_made_by_another_implementation_verifies() {
    assert_eq!(
        vonage(&[SECRET]).check(&bearer(TOKEN, BODY).view(), now()),
        Ok(())
    );
    assert_eq!(
        vonage(&["old-secret", SECRET]).check(&bearer(TOKEN, BODY).view(), now()),
        Ok(())
    );
}

#[test]
fn another_body_secret_or_algorithm_fails() {
    let provider = vonage(&[SECRET]);
    // The token is genuine but was issued for another body.
    assert_eq!(
        provider.check(&bearer(TOKEN, &BODY.replace("spa", "gym")).view(), now()),
        Err(Rejection::BodyHashMismatch)
    );
    assert_eq!(
        vonage(&["another-secret"]).check(&bearer(TOKEN, BODY).view(), now()),
        Err(Rejection::SignatureMismatch)
    );
    let at = now().as_second();
    for alg in ["none", "HS512", "RS256"] {
        let forged = token(
            &json!({"alg": alg, "typ": "JWT"}),
            &claims(at, BODY),
            SECRET,
        );
        assert_eq!(
            provider.check(&bearer(&forged, BODY).view(), now()),
            Err(Rejection::MalformedSignature("authorization".into())),
            "{alg}"
        );
    }
    // A token that does not bind the body is refused.
    let unbound = token(&json!({"alg": "HS256"}), &json!({"iat": at}), SECRET);
    assert_eq!(
        provider.check(&bearer(&unbound, BODY).view(), now()),
        Err(Rejection::MalformedSignature("authorization".into()))
    );
}

#[test]
fn stale_future_and_expired_tokens_fail_before_the_mac() {
    let provider = vonage(&[SECRET]);
    let at = now().as_second();
    let with_iat = |iat: i64| {
        provider.check(
            &bearer(
                &token(&json!({"alg": "HS256"}), &claims(iat, BODY), SECRET),
                BODY,
            )
            .view(),
            now(),
        )
    };
    assert_eq!(with_iat(at - 300), Ok(()));
    assert_eq!(with_iat(at - 301), Err(Rejection::StaleTimestamp));
    assert_eq!(with_iat(at + 301), Err(Rejection::StaleTimestamp));
    // Forged and stale is stale.
    let forged = token(
        &json!({"alg": "HS256"}),
        &claims(at - 3600, BODY),
        "not-the-secret",
    );
    assert_eq!(
        provider.check(&bearer(&forged, BODY).view(), now()),
        Err(Rejection::StaleTimestamp)
    );
    let mut expired = claims(at, BODY);
    expired["exp"] = json!(at - 1);
    assert_eq!(
        provider.check(
            &bearer(&token(&json!({"alg": "HS256"}), &expired, SECRET), BODY).view(),
            now()
        ),
        Err(Rejection::StaleTimestamp)
    );
    let no_iat = token(
        &json!({"alg": "HS256"}),
        &json!({"payload_hash": hex::encode(Sha256::digest(BODY.as_bytes()))}),
        SECRET,
    );
    assert_eq!(
        provider.check(&bearer(&no_iat, BODY).view(), now()),
        Err(Rejection::MissingTimestamp("iat".into()))
    );
}

#[test]
fn missing_and_malformed_headers_fail() {
    let provider = vonage(&[SECRET]);
    let check = |request: OwnedRequest| provider.check(&request.view(), now());
    assert_eq!(
        check(OwnedRequest::post("/webhooks/vonage", BODY.as_bytes())),
        Err(Rejection::MissingSignature("authorization".into()))
    );
    for bad in [
        format!("Basic {TOKEN}"),
        "Bearer".to_owned(),
        "Bearer a.b".to_owned(),
        "Bearer a.b.c.d".to_owned(),
        format!("Bearer {}", TOKEN.replace('.', "!")),
        format!("Bearer {}", &TOKEN[..TOKEN.len() - 4]),
    ] {
        assert_eq!(
            check(
                OwnedRequest::post("/webhooks/vonage", BODY.as_bytes())
                    .header("authorization", &bad)
            ),
            Err(Rejection::MalformedSignature("authorization".into())),
            "{bad}"
        );
    }
    // A token longer than any Vonage sends is refused before it is decoded.
    let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
    assert_eq!(
        check(
            OwnedRequest::post("/webhooks/vonage", BODY.as_bytes()).header("authorization", &long)
        ),
        Err(Rejection::MalformedSignature("authorization".into()))
    );
    // What porter signs, it accepts.
    let signed = provider.sign(&ToSign {
        path: "/webhooks/vonage",
        query: None,
        content_type: "application/json",
        body: BODY.as_bytes(),
        now: now(),
    });
    let mut request = OwnedRequest::post("/webhooks/vonage", BODY.as_bytes());
    for (name, value) in &signed.headers {
        request = request.header(name, value);
    }
    assert_eq!(provider.check(&request.view(), now()), Ok(()));
}

#[test]
fn inbound_messages_and_statuses_map() {
    let provider = vonage(&[SECRET]);
    let normalize = |body: &str| {
        provider
            .normalize_events(
                &OwnedRequest::post("/webhooks/vonage", body.as_bytes()).view(),
                &origin("vonage", "vonage"),
            )
            .expect("normalized")
            .remove(0)
            .event
    };
    let event = normalize(BODY);
    assert_eq!(
        event.providereventid,
        "aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab"
    );
    let EventBody::MessageReceived(data) = &event.body else {
        panic!("{:?}", event.body)
    };
    assert_eq!(data.channel, Channel::Whatsapp);
    assert_eq!(data.from.as_deref(), Some("447700900001"));
    assert_eq!(data.profile_name.as_deref(), Some("Jane Smith"));
    assert_eq!(data.text.as_deref(), Some("Is the spa open?"));
    let status = r#"{"message_uuid":"aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab","to":"447700900001","from":"447700900000","timestamp":"2024-03-15T14:00:05Z","status":"rejected","channel":"sms","error":{"type":"https://developer.nexmo.com/api-errors/messages-olympus#1000","title":"1000","detail":"Throttled"}}"#;
    let event = normalize(status);
    assert_eq!(
        event.providereventid,
        "aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab:rejected"
    );
    let EventBody::MessageStatusChanged(data) = &event.body else {
        panic!("{:?}", event.body)
    };
    assert_eq!(data.status, DeliveryStatus::Failed);
    assert_eq!(data.errors[0].code, Some(1000));
    let viber = BODY.replace("\"whatsapp\"", "\"viber_service\"");
    assert_eq!(normalize(&viber).body.event_type(), EventType::Unknown);
}
