use base64::Engine;
use serde_json::{Value, json};

use super::*;
use crate::Secret;
use crate::event::EventType;
use crate::testing::{Check, OwnedRequest, origin};

const TOKEN: &str = "mews-partner-token-0123456789";
const POS_SECRET: &str = "mews-pos-secret";

fn mews(url_token: Option<&str>, secrets: &[&str]) -> Mews {
    Mews::from_settings(
        Settings {
            url_token: url_token.map(Secret::new),
            secrets: secrets.iter().map(|s| Secret::new(*s)).collect(),
        },
        &crate::settings::Context::default(),
    )
    .expect("valid")
}

fn with_token(body: &[u8], query: &str) -> OwnedRequest {
    let mut request = OwnedRequest::post("/webhooks/pms/mews", body);
    request.query = Some(query.to_owned());
    request
}

fn pos_signature(secret: &str, body: &[u8]) -> String {
    let mac = crate::signing::hmac(Algorithm::Sha256, secret.as_bytes(), &[body]);
    base64::engine::general_purpose::STANDARD.encode(mac)
}

#[test]
fn connector_webhooks_need_the_whole_url_token() {
    let source = mews(Some(TOKEN), &[]);
    let verify =
        |query: &str| source.check(&with_token(b"{}", query).view(), crate::testing::now());
    assert_eq!(verify(&format!("Token={TOKEN}")), Ok(()));
    assert_eq!(verify(&format!("a=1&token={TOKEN}")), Ok(()));
    let last_byte = format!("token={}0", &TOKEN[..TOKEN.len() - 1]);
    for query in [
        last_byte,
        String::new(),
        "token=".to_owned(),
        format!("token={}", &TOKEN[..TOKEN.len() - 1]),
        format!("token={TOKEN}0"),
        format!("TOKEN={TOKEN}"),
        format!("token={TOKEN}&Token={TOKEN}"),
    ] {
        assert_eq!(verify(&query), Err(Rejection::BadUrlToken), "{query}");
    }
    let no_query = OwnedRequest::post("/webhooks/pms/mews", b"{}".to_vec());
    assert_eq!(
        source.check(&no_query.view(), crate::testing::now()),
        Err(Rejection::BadUrlToken)
    );
}

#[test]
fn pos_webhooks_need_a_valid_x_signature_and_never_fall_back() {
    let body = br#"{"data":{"id":"o1","type":"orders","attributes":{"status":"paid","updatedAt":"2025-02-06T09:41:30.465Z"}},"meta":{"event_type":"order.status.updated"}}"#;
    let source = mews(Some(TOKEN), &[POS_SECRET]);
    let signed = OwnedRequest::post("/m", body.to_vec())
        .header("x-signature", &pos_signature(POS_SECRET, body));
    assert_eq!(source.check(&signed.view(), crate::testing::now()), Ok(()));
    // A wrong signature is refused even with the right URL token.
    let mut wrong = with_token(body, &format!("token={TOKEN}"));
    wrong = wrong.header("x-signature", &pos_signature("other", body));
    assert_eq!(
        source.check(&wrong.view(), crate::testing::now()),
        Err(Rejection::SignatureMismatch)
    );
    let mut tampered = signed.clone();
    tampered.body[10] ^= 1;
    assert_eq!(
        source.check(&tampered.view(), crate::testing::now()),
        Err(Rejection::SignatureMismatch)
    );
    let malformed = OwnedRequest::post("/m", body.to_vec()).header("x-signature", "not base64!");
    assert_eq!(
        source.check(&malformed.view(), crate::testing::now()),
        Err(Rejection::MalformedSignature("x-signature".into()))
    );
    let rotated = mews(None, &["next", POS_SECRET]);
    assert_eq!(rotated.check(&signed.view(), crate::testing::now()), Ok(()));
    let pos_only = mews(None, &[POS_SECRET]);
    assert_eq!(
        pos_only.check(
            &with_token(body, &format!("token={TOKEN}")).view(),
            crate::testing::now()
        ),
        Err(Rejection::MissingSignature("x-signature".into()))
    );
    let token_only = mews(Some(TOKEN), &[]);
    assert_eq!(
        token_only.check(&signed.view(), crate::testing::now()),
        Err(Rejection::SignatureMismatch)
    );
}

#[test]
fn pos_signatures_are_one_header_of_exactly_one_mac() {
    let body = br#"{"data":{"id":"o1"},"meta":{"eventType":"order.status.updated"}}"#;
    let source = mews(None, &[POS_SECRET]);
    let good = pos_signature(POS_SECRET, body);
    let twice = OwnedRequest::post("/m", body.to_vec())
        .header("x-signature", &good)
        .header("x-signature", &good);
    assert_eq!(
        source.check(&twice.view(), crate::testing::now()),
        Err(Rejection::RepeatedSignature("x-signature".into()))
    );
    let short = base64::engine::general_purpose::STANDARD.encode([0u8; 31]);
    let hex = hex::encode(crate::signing::hmac(
        Algorithm::Sha256,
        POS_SECRET.as_bytes(),
        &[body],
    ));
    for value in [short.as_str(), hex.as_str(), "", &good[..good.len() - 1]] {
        let request = OwnedRequest::post("/m", body.to_vec()).header("x-signature", value);
        assert_eq!(
            source.check(&request.view(), crate::testing::now()),
            Err(Rejection::MalformedSignature("x-signature".into())),
            "{value}"
        );
    }
}

#[test]
fn the_signer_uses_the_token_or_else_the_pos_secret() {
    let to_sign = |body: &'static [u8]| ToSign {
        path: "/webhooks/pms/mews",
        query: None,
        content_type: "application/json",
        body,
        now: crate::testing::now(),
    };
    let connector = mews(Some(TOKEN), &[POS_SECRET]);
    let signed = connector.sign(&to_sign(b"{}"));
    assert!(signed.headers.is_empty());
    let query = signed.query.expect("query");
    assert_eq!(
        connector.check(&with_token(b"{}", &query).view(), crate::testing::now()),
        Ok(())
    );

    let pos = mews(None, &[POS_SECRET]);
    let signed = pos.sign(&to_sign(b"{\"a\":1}"));
    let (name, value) = &signed.headers[0];
    let request = OwnedRequest::post("/m", b"{\"a\":1}".to_vec()).header(name, value);
    assert_eq!(pos.check(&request.view(), crate::testing::now()), Ok(()));
}

#[test]
fn settings_need_a_token_or_secrets_and_each_must_be_valid() {
    assert_eq!(
        Mews::from_settings(Settings::default(), &crate::settings::Context::default())
            .expect_err("none")[0]
            .key,
        "url_token"
    );
    let both_bad = Settings {
        url_token: Some(Secret::new("short")),
        secrets: vec![Secret::new("")],
    };
    let keys: Vec<_> = Mews::from_settings(both_bad, &crate::settings::Context::default())
        .expect_err("refused")
        .iter()
        .map(|e| e.key.clone())
        .collect();
    assert_eq!(keys, ["url_token", "secrets"]);
    assert!(
        Mews::from_settings(
            Settings {
                secrets: vec![Secret::new(POS_SECRET)],
                ..Settings::default()
            },
            &crate::settings::Context::default()
        )
        .is_ok()
    );
}

/// Normalizes a payload as it reaches `normalize` after a passed `verify` with a POS signature.
fn normalize_json(payload: &Value) -> Vec<Normalized> {
    let body = payload.to_string().into_bytes();
    let request = OwnedRequest::post("/webhooks/pms/mews", body.clone())
        .header("x-signature", &pos_signature(POS_SECRET, &body));
    normalize(&request.view(), true, &origin("mews", "mews")).expect("normalizes")
}

#[test]
fn a_pos_payload_on_the_url_token_alone_is_refused() {
    // The review's repro: a POS `order.status.updated` sent with the token and no signature
    // would have been stored, and the genuine signed event taken for its duplicate.
    let body = pos(
        "eventType",
        "order.status.updated",
        "o1",
        json!({"status": "paid", "updatedAt": "2025-02-06T09:41:30.465Z"}),
    )
    .to_string()
    .into_bytes();
    let source = mews(Some(TOKEN), &[POS_SECRET]);
    let forged = with_token(&body, &format!("token={TOKEN}"));
    assert_eq!(
        source.check(&forged.view(), crate::testing::now()),
        Ok(()),
        "the token is right"
    );
    let verified = source
        .verify(&forged.view(), crate::testing::now())
        .expect("token");
    assert!(!verified.signed, "authenticated by the token alone");
    assert_eq!(
        normalize(&forged.view(), false, &origin("mews", "mews")).err(),
        Some(Rejection::SignatureRequired("Mews POS webhook"))
    );
    // Connector shapes on the token alone are still accepted.
    let general = json!({"Events": [{"Discriminator": "CustomerAdded", "Value": {"Id": "c1"}}]});
    let request = with_token(general.to_string().as_bytes(), &format!("token={TOKEN}"));
    assert!(normalize(&request.view(), false, &origin("mews", "mews")).is_ok());
    // porter send signs a POS payload with the POS secret even when a token is configured.
    let signed = source.sign(&ToSign {
        path: "/webhooks/pms/mews",
        query: None,
        content_type: "application/json",
        body: &body,
        now: crate::testing::now(),
    });
    assert!(signed.headers[0].0.eq_ignore_ascii_case("X-Signature"));
}

#[test]
fn general_webhooks_are_one_thin_event_per_entry() {
    let entry = |d: &str, id: &str| json!({"Discriminator": d, "Value": {"Id": id}});
    let payload = json!({"EnterpriseId": "ent-1", "IntegrationId": "int-1", "Events": [
        entry("ServiceOrderUpdated", "so-1"), entry("CustomerAdded", "c-1"), entry("CustomerUpdated", "c-1"),
        entry("ResourceUpdated", "r-1"), entry("PaymentUpdated", "p-1"), entry("MessageAdded", "m-1"),
        entry("ResourceBlockUpdated", "b-1"),
    ]});
    let events = normalize_json(&payload);
    let types: Vec<EventType> = events.iter().map(|e| e.event.event_type()).collect();
    assert_eq!(
        types,
        [
            EventType::ReservationUpdated,
            EventType::GuestCreated,
            EventType::GuestUpdated,
            EventType::RoomStatusChanged,
            EventType::PaymentReceived,
            EventType::MessageReceived,
            EventType::Unknown
        ]
    );
    assert!(
        events
            .iter()
            .all(|e| e.event.propertyid.as_deref() == Some("ent-1"))
    );
    let data = |i: usize| serde_json::to_value(&events[i].event).expect("json")["data"].clone();
    assert_eq!(data(0), json!({"reservation_id": "so-1"}));
    assert_eq!(data(5), json!({"channel": "pms", "message_id": "m-1"}));
    let mut keys: Vec<_> = events.iter().map(|e| e.dedupe_key.clone()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(
        keys.len(),
        7,
        "Added and Updated of one customer are two events"
    );
    assert_eq!(
        normalize_json(&payload)[0].dedupe_key,
        events[0].dedupe_key,
        "an exact redelivery is a duplicate"
    );
}

#[test]
fn credentials_never_reach_an_event() {
    let general = json!({"EnterpriseId": "e", "IntegrationId": "i", "Events": [
        {"Discriminator": "IntegrationCreated", "Value": {"Id": "i", "AccessToken": "SECRET-TOKEN-1"}}]});
    let integration = json!({"Action": "IntegrationCreated", "Data": {"Enterprise": {"Id": "e", "Name": "Hotel"},
        "AccessToken": "SECRET-TOKEN-2", "CreatedUtc": "2019-12-13T14:42:52Z", "IsEnabled": true,
        "Integration": {"Id": "int-9", "Name": "WebhookTEST"}}});
    let api_key = json!({"Action": "IntegrationApiKeyCreated", "Data": {"Integration": {"Id": "int-9", "Name": "W"}, "ApiKey": "SECRET-KEY-3"}});
    for payload in [general, integration.clone(), api_key] {
        let text = serde_json::to_string(&normalize_json(&payload)[0].event).expect("json");
        assert!(!text.contains("SECRET-"), "{text}");
    }
    let events = normalize_json(&integration);
    assert_eq!(events[0].event.event_type(), EventType::IntegrationChanged);
    let data = serde_json::to_value(&events[0].event).expect("json")["data"].clone();
    assert_eq!(data["action"], "IntegrationCreated");
    assert_eq!(data["integration_id"], "int-9");
    assert_eq!(data["enterprise_id"], "e");
    assert_eq!(data["enabled"], true);
}

fn pos(event_type_name: &str, event_type: &str, id: &str, attributes: Value) -> Value {
    json!({"data": {"id": id, "type": "orders", "attributes": attributes},
        "meta": {event_type_name: event_type}})
}

#[test]
fn pos_order_status_maps_whichever_way_the_event_type_is_spelled() {
    let attributes = json!({"status": "paid", "updatedAt": "2025-02-06T09:41:30.465Z"});
    for name in ["eventType", "event_type"] {
        let events = normalize_json(&pos(name, "order.status.updated", "o1", attributes.clone()));
        assert_eq!(
            events[0].event.event_type(),
            EventType::OrderUpdated,
            "{name}"
        );
        let event = serde_json::to_value(&events[0].event).expect("json");
        assert_eq!(event["data"], json!({"order_id": "o1", "status": "paid"}));
        assert_eq!(event["time"], "2025-02-06T09:41:30.465Z");
        assert_eq!(event["subject"], "o1");
    }
}

#[test]
fn other_pos_events_are_unknown() {
    let updated = "2025-02-06T09:41:30.465Z";
    for (event_type, attributes) in [
        // Restaurant table bookings, not hotel reservations.
        (
            "booking.status.updated",
            json!({"status": "seated", "updatedAt": updated}),
        ),
        (
            "product.availability.updated",
            json!({"isAvailable": false, "updatedAt": updated}),
        ),
        (
            "order.state.updated",
            json!({"state": "paid", "updatedAt": updated}),
        ),
        (
            "order.total.updated",
            json!({"total": "12.50", "updatedAt": updated}),
        ),
        (
            "orders.payments.added",
            json!({"orderId": "o1", "paymentId": "p1", "updatedAt": updated}),
        ),
    ] {
        let payload = pos("eventType", event_type, "x1", attributes);
        let events = normalize_json(&payload);
        assert_eq!(
            events[0].event.event_type(),
            EventType::Unknown,
            "{event_type}"
        );
        let data = serde_json::to_value(&events[0].event).expect("json")["data"].clone();
        assert_eq!(data["raw"], payload);
    }
    // An order status without the order it is about has nothing to map.
    let no_id = json!({"data": {"attributes": {"status": "paid"}}, "meta": {"eventType": "order.status.updated"}});
    assert_eq!(
        normalize_json(&no_id)[0].event.event_type(),
        EventType::Unknown
    );
}

#[test]
fn pos_keys_follow_the_entity_and_its_update_time() {
    let key = |event_type: &str, id: &str, updated: &str| {
        let attributes = json!({"status": "paid", "updatedAt": updated});
        normalize_json(&pos("eventType", event_type, id, attributes))[0]
            .dedupe_key
            .clone()
    };
    let first = key("order.status.updated", "o1", "2025-02-06T09:41:30.465Z");
    assert_eq!(
        first,
        key("order.status.updated", "o1", "2025-02-06T09:41:30.465Z")
    );
    assert_ne!(
        first,
        key("order.status.updated", "o1", "2025-02-06T09:45:00.000Z")
    );
    assert_ne!(
        first,
        key("order.status.updated", "o2", "2025-02-06T09:41:30.465Z")
    );
    assert_ne!(
        first,
        key("order.state.updated", "o1", "2025-02-06T09:41:30.465Z")
    );
    // Without `updatedAt`, two different messages must not share a key.
    let bare = |status: &str| {
        normalize_json(&pos(
            "eventType",
            "order.status.updated",
            "o1",
            json!({"status": status}),
        ))[0]
            .dedupe_key
            .clone()
    };
    assert_ne!(bare("paid"), bare("open"));
}

#[test]
fn integration_actions_are_integration_changes() {
    for action in [
        "IntegrationCreated",
        "IntegrationEnabled",
        "IntegrationDisabled",
        "IntegrationCanceled",
        "IntegrationReinstated",
        "IntegrationDeleted",
        "IntegrationApiKeyCreated",
    ] {
        let payload = json!({"Action": action, "Data": {"Integration": {"Id": "int-9", "Name": "W"},
            "Enterprise": {"Id": "e"}}});
        let events = normalize_json(&payload);
        assert_eq!(events.len(), 1);
        assert_eq!(
            events[0].event.event_type(),
            EventType::IntegrationChanged,
            "{action}"
        );
        assert_eq!(events[0].event.propertyid.as_deref(), Some("e"));
    }
}

#[test]
fn unknown_shapes_and_garbage() {
    assert_eq!(
        normalize_json(&json!({"hello": "world"}))[0]
            .event
            .event_type(),
        EventType::Unknown
    );
    let request = OwnedRequest::post("/m", b"{\"Events\":[".to_vec());
    assert!(matches!(
        normalize(&request.view(), false, &origin("mews", "mews")),
        Err(Rejection::MalformedBody { .. })
    ));
}
