use base64::Engine;
use serde_json::{Value, json};

use super::*;
use crate::event::EventType;
use crate::testing::{OwnedRequest, origin};

const TOKEN: &str = "mews-partner-token-0123456789";
const POS_SECRET: &str = "mews-pos-secret";

fn mews(url_token: Option<&str>, secrets: &[&str]) -> Mews {
    Mews::from_settings(&SourceSettings {
        url_token: url_token.map(Secret::new),
        secrets: secrets.iter().map(|s| Secret::new(*s)).collect(),
        ..SourceSettings::default()
    })
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
fn connector_webhooks_need_the_url_token() {
    let source = mews(Some(TOKEN), &[]);
    assert_eq!(
        source.verify(&with_token(b"{}", &format!("Token={TOKEN}")).view()),
        Ok(())
    );
    assert_eq!(
        source.verify(&with_token(b"{}", &format!("token={}0", &TOKEN[..TOKEN.len() - 1])).view()),
        Err(Rejection::BadUrlToken)
    );
    assert_eq!(
        source.verify(&with_token(b"{}", "").view()),
        Err(Rejection::BadUrlToken)
    );
}

#[test]
fn pos_webhooks_need_a_valid_x_signature_and_never_fall_back() {
    let body = br#"{"data":{"id":"o1","type":"orders","attributes":{"status":"paid","updatedAt":"2025-02-06T09:41:30.465Z"}},"meta":{"event_type":"order.status.updated"}}"#;
    let source = mews(Some(TOKEN), &[POS_SECRET]);
    let signed = OwnedRequest::post("/m", body.to_vec())
        .header("x-signature", &pos_signature(POS_SECRET, body));
    assert_eq!(source.verify(&signed.view()), Ok(()));
    // A wrong signature is refused even with the right URL token.
    let mut wrong = with_token(body, &format!("token={TOKEN}"));
    wrong = wrong.header("x-signature", &pos_signature("other", body));
    assert_eq!(
        source.verify(&wrong.view()),
        Err(Rejection::SignatureMismatch)
    );
    let mut tampered = signed.clone();
    tampered.body[10] ^= 1;
    assert_eq!(
        source.verify(&tampered.view()),
        Err(Rejection::SignatureMismatch)
    );
    let malformed = OwnedRequest::post("/m", body.to_vec()).header("x-signature", "not base64!");
    assert_eq!(
        source.verify(&malformed.view()),
        Err(Rejection::MalformedSignature("x-signature".into()))
    );
    let rotated = mews(None, &["next", POS_SECRET]);
    assert_eq!(rotated.verify(&signed.view()), Ok(()));
    let pos_only = mews(None, &[POS_SECRET]);
    assert_eq!(
        pos_only.verify(&with_token(body, &format!("token={TOKEN}")).view()),
        Err(Rejection::MissingSignature("x-signature".into()))
    );
    let token_only = mews(Some(TOKEN), &[]);
    assert_eq!(
        token_only.verify(&signed.view()),
        Err(Rejection::SignatureMismatch)
    );
}

#[test]
fn settings_need_a_token_or_secrets() {
    assert_eq!(
        Mews::from_settings(&SourceSettings::default()).expect_err("none")[0].key,
        "url_token"
    );
}

fn normalize_json(payload: &Value) -> Vec<Normalized> {
    let request = OwnedRequest::post("/webhooks/pms/mews", payload.to_string().into_bytes());
    normalize(&request.view(), &origin("mews", "mews")).expect("normalizes")
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

#[test]
fn pos_orders_map_and_table_bookings_are_unknown() {
    let order = json!({"data": {"id": "o1", "type": "orders", "attributes": {"status": "paid", "updatedAt": "2025-02-06T09:41:30.465Z"}},
        "meta": {"event_type": "order.status.updated"}});
    let events = normalize_json(&order);
    assert_eq!(events[0].event.event_type(), EventType::OrderUpdated);
    let booking = json!({"data": {"id": "b1", "type": "bookings", "attributes": {"status": "seated", "updatedAt": "t"}},
        "meta": {"event_type": "booking.status.updated"}});
    assert_eq!(
        normalize_json(&booking)[0].event.event_type(),
        EventType::Unknown
    );
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
        normalize(&request.view(), &origin("mews", "mews")),
        Err(Rejection::MalformedBody { .. })
    ));
}
