use serde_json::{Value, json};

use super::*;
use crate::event::{EventType, MessageKind};
use crate::testing::{Check, OwnedRequest, now, origin};
use crate::{Secret, WebhookProvider};

const SECRET: &str = "meta-app-secret";
const PATH: &str = "/webhooks/whatsapp";

fn meta(secrets: &[&str]) -> Meta {
    let mut settings = settings(secrets);
    settings.verify_token = Some(Secret::new("verify-me"));
    Meta::from_settings(settings, &crate::settings::Context::default()).expect("valid settings")
}

fn signed(body: &[u8], secret: &str) -> OwnedRequest {
    OwnedRequest::post(PATH, body).header(
        "x-hub-signature-256",
        &signature(&Secret::new(secret), body),
    )
}

fn batch(messages: Vec<Value>, statuses: Vec<Value>) -> Vec<u8> {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "WABA_ID",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15551234567", "phone_number_id": "PHONE_ID"},
                    "contacts": [{"profile": {"name": "Guest Name"}, "wa_id": "4915112345678"}],
                    "messages": messages,
                    "statuses": statuses,
                }
            }]
        }]
    })
    .to_string()
    .into_bytes()
}

fn text_message(id: &str, body: &str) -> Value {
    json!({"from": "4915112345678", "id": id, "timestamp": "1710511200", "type": "text", "text": {"body": body}})
}

fn normalize_body(body: &[u8]) -> Vec<Normalized> {
    let request = OwnedRequest::post(PATH, body);
    normalize(&request.view(), &origin("whatsapp", "meta")).expect("normalizes")
}

fn data(event: &Normalized) -> Value {
    serde_json::to_value(&event.event).expect("serializes")["data"].clone()
}

// ---- verify ----

#[test]
fn matches_the_official_sdk_vector() {
    // WhatsApp-Nodejs-SDK, src/__tests__/utils.test.ts, with its test app secret.
    assert_eq!(
        signature(&Secret::new("TEST_APP_SECRET"), b"test"),
        "sha256=0c61947b610d4f45e65f3d680e26027121ec2413e77598bcb6cfc6e0d9888221"
    );
}

#[test]
fn accepts_a_body_signed_with_the_secret() {
    let body = batch(vec![text_message("wamid.A", "Hello")], vec![]);
    assert_eq!(
        meta(&[SECRET]).check(&signed(&body, SECRET).view(), crate::testing::now()),
        Ok(())
    );
}

#[test]
fn rejects_a_body_with_one_flipped_byte() {
    let body = batch(vec![text_message("wamid.A", "Hello")], vec![]);
    let mut request = signed(&body, SECRET);
    let middle = request.body.len() / 2;
    request.body[middle] ^= 0x01;
    assert_eq!(
        meta(&[SECRET]).check(&request.view(), crate::testing::now()),
        Err(Rejection::SignatureMismatch)
    );
}

#[test]
fn rejects_a_body_signed_with_another_secret() {
    let body = batch(vec![text_message("wamid.A", "Hello")], vec![]);
    assert_eq!(
        meta(&[SECRET]).check(
            &signed(&body, "not-the-secret").view(),
            crate::testing::now()
        ),
        Err(Rejection::SignatureMismatch)
    );
}

#[test]
fn accepts_either_secret_during_rotation() {
    let body = batch(vec![text_message("wamid.A", "Hello")], vec![]);
    let rotating = meta(&["old-secret", "new-secret"]);
    assert_eq!(
        rotating.check(&signed(&body, "old-secret").view(), crate::testing::now()),
        Ok(())
    );
    assert_eq!(
        rotating.check(&signed(&body, "new-secret").view(), crate::testing::now()),
        Ok(())
    );
    assert_eq!(
        rotating.check(
            &signed(&body, "retired-secret").view(),
            crate::testing::now()
        ),
        Err(Rejection::SignatureMismatch)
    );
}

#[test]
fn rejects_a_missing_signature() {
    let request = OwnedRequest::post(PATH, b"{}".to_vec());
    assert_eq!(
        meta(&[SECRET]).check(&request.view(), crate::testing::now()),
        Err(Rejection::MissingSignature("x-hub-signature-256".into()))
    );
}

#[test]
fn rejects_malformed_signatures() {
    let body = b"{}".to_vec();
    let good = signature(&Secret::new(SECRET), &body);
    let hex_part = good.trim_start_matches("sha256=");
    let malformed = [
        hex_part.to_owned(),                     // no prefix
        format!("sha1={hex_part}"),              // wrong algorithm
        format!("sha256={}", &hex_part[..63]),   // one digit short
        format!("sha256={hex_part}0"),           // one digit long
        format!("sha256={}", &hex_part[..62]),   // wrong length, even
        format!("sha256={}zz", &hex_part[..62]), // not hex
        "sha256=".to_owned(),                    // empty
        format!("SHA256={hex_part}"),            // prefix is case-sensitive
    ];
    for value in malformed {
        let request = OwnedRequest::post(PATH, body.clone()).header("x-hub-signature-256", &value);
        assert_eq!(
            meta(&[SECRET]).check(&request.view(), crate::testing::now()),
            Err(Rejection::MalformedSignature("x-hub-signature-256".into())),
            "{value}"
        );
    }
}

#[test]
fn accepts_uppercase_hex() {
    let body = b"{}".to_vec();
    let good = signature(&Secret::new(SECRET), &body);
    let upper = format!(
        "sha256={}",
        good.trim_start_matches("sha256=").to_uppercase()
    );
    let request = OwnedRequest::post(PATH, body).header("x-hub-signature-256", &upper);
    assert_eq!(
        meta(&[SECRET]).check(&request.view(), crate::testing::now()),
        Ok(())
    );
}

#[test]
fn rejects_two_signature_headers_even_if_one_is_valid() {
    let body = b"{}".to_vec();
    let good = signature(&Secret::new(SECRET), &body);
    let request = OwnedRequest::post(PATH, body)
        .header("x-hub-signature-256", &good)
        .header("x-hub-signature-256", "sha256=00");
    assert_eq!(
        meta(&[SECRET]).check(&request.view(), crate::testing::now()),
        Err(Rejection::RepeatedSignature("x-hub-signature-256".into()))
    );
}

#[test]
fn unicode_escaped_body_verifies_over_the_raw_bytes() {
    // Meta escapes non-ASCII as lowercase \uXXXX before signing.
    let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"P"},"messages":[{"from":"1","id":"wamid.U","timestamp":"1710511200","type":"text","text":{"body":"\u00e4\u00f6\u00e5 \ud83d\ude00"}}]}}]}]}"#;
    let request = signed(body, SECRET);
    assert_eq!(
        meta(&[SECRET]).check(&request.view(), crate::testing::now()),
        Ok(())
    );
    let events = normalize_body(body);
    assert_eq!(data(&events[0])["text"], "äöå 😀");
    // Re-serialising the parsed JSON yields different bytes, which would not verify.
    let reserialised = serde_json::to_vec(&serde_json::from_slice::<Value>(body).expect("json"))
        .expect("serializes");
    assert_ne!(reserialised.as_slice(), &body[..]);
}

// ---- handshake ----

fn handshake(query: &str) -> Option<Result<Reply, Rejection>> {
    meta(&[SECRET]).handshake(&OwnedRequest::get(PATH, query).view(), now())
}

#[test]
fn handshake_echoes_the_challenge_as_text() {
    let reply = handshake("hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=verify-me")
        .expect("a handshake")
        .expect("accepted");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "1158201444");
    assert!(reply.content_type.starts_with("text/plain"));
}

#[test]
fn handshake_with_a_wrong_token_or_mode_is_forbidden() {
    for query in [
        "hub.mode=subscribe&hub.challenge=1&hub.verify_token=verify-mE",
        "hub.mode=subscribe&hub.challenge=1&hub.verify_token=",
        "hub.mode=subscribe&hub.challenge=1",
        "hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=verify-me",
        "hub.verify_token=verify-me&hub.challenge=1",
    ] {
        assert_eq!(
            handshake(query),
            Some(Err(Rejection::VerifyTokenMismatch)),
            "{query}"
        );
    }
}

#[test]
fn a_get_without_handshake_parameters_is_malformed_not_a_token_mismatch() {
    for query in ["", "hub.challenge=1", "utm_source=scanner"] {
        assert_eq!(
            handshake(query),
            Some(Err(Rejection::MalformedHandshake(
                "no hub.mode or hub.verify_token"
            ))),
            "{query}"
        );
    }
}

#[test]
fn handshake_without_a_configured_token_is_forbidden() {
    let meta = Meta::from_settings(settings(&[SECRET]), &crate::settings::Context::default())
        .expect("valid");
    let request = OwnedRequest::get(PATH, "hub.mode=subscribe&hub.challenge=1&hub.verify_token=");
    assert_eq!(
        meta.handshake(&request.view(), now()),
        Some(Err(Rejection::VerifyTokenMismatch))
    );
}

#[test]
fn handshake_refuses_to_echo_an_unsafe_challenge() {
    for challenge in ["", "%3Cscript%3E+x", &"9".repeat(300)] {
        let query =
            format!("hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge={challenge}");
        assert_eq!(
            handshake(&query),
            Some(Err(Rejection::MalformedHandshake("hub.challenge"))),
            "{challenge}"
        );
    }
}

#[test]
fn post_is_not_a_handshake() {
    assert!(
        meta(&[SECRET])
            .handshake(&OwnedRequest::post(PATH, b"{}".to_vec()).view(), now())
            .is_none()
    );
}

// ---- normalize ----

#[test]
fn a_ten_message_batch_is_ten_events_with_their_own_keys() {
    let messages = (0..10)
        .map(|i| text_message(&format!("wamid.{i}"), &format!("message {i}")))
        .collect();
    let events = normalize_body(&batch(messages, vec![]));
    assert_eq!(events.len(), 10);
    let mut ids: Vec<_> = events.iter().map(|e| e.event.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 10);
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event.event.providereventid, format!("wamid.{i}"));
        assert_eq!(event.dedupe_key, event.event.id);
        assert_eq!(data(event)["text"], format!("message {i}"));
    }
}

#[test]
fn every_entry_and_change_is_split() {
    let change = |id: &str| {
        json!({"field": "messages", "value": {"metadata": {"phone_number_id": id},
            "messages": [text_message(&format!("wamid.{id}"), "hi")]}})
    };
    let body = json!({"object": "whatsapp_business_account", "entry": [
        {"id": "W1", "changes": [change("P1"), change("P2")]},
        {"id": "W2", "changes": [change("P3")]},
    ]});
    let events = normalize_body(body.to_string().as_bytes());
    let properties: Vec<_> = events
        .iter()
        .map(|e| e.event.propertyid.clone().expect("property"))
        .collect();
    assert_eq!(properties, ["P1", "P2", "P3"]);
    assert_eq!(data(&events[2])["account_id"], "W2");
}

#[test]
fn a_text_message_is_fully_described() {
    let events = normalize_body(&batch(vec![text_message("wamid.T", "Hello")], vec![]));
    let event = &events[0].event;
    assert_eq!(event.event_type(), EventType::MessageReceived);
    assert_eq!(event.subject.as_deref(), Some("wamid.T"));
    assert_eq!(
        event.time,
        Some(Timestamp::from_second(1_710_511_200).expect("ts"))
    );
    assert_eq!(event.providereventtype.as_deref(), Some("messages"));
    assert_eq!(event.propertyid.as_deref(), Some("PHONE_ID"));
    assert_eq!(
        data(&events[0]),
        json!({"channel": "whatsapp", "message_id": "wamid.T", "from": "4915112345678",
            "to": "15551234567", "profile_name": "Guest Name", "kind": "text", "text": "Hello",
            "account_id": "WABA_ID"})
    );
}

#[test]
fn media_messages_carry_id_mime_type_and_caption() {
    for kind in ["image", "audio", "video", "document", "sticker"] {
        let message = json!({"from": "1", "id": "wamid.M", "timestamp": "1", "type": kind,
            kind: {"id": "MEDIA_ID", "mime_type": "image/jpeg", "sha256": "abc", "caption": "Room 12"}});
        let events = normalize_body(&batch(vec![message], vec![]));
        let data = data(&events[0]);
        assert_eq!(data["kind"], kind);
        assert_eq!(data["media"][0]["id"], "MEDIA_ID");
        assert_eq!(data["media"][0]["mime_type"], "image/jpeg");
        assert_eq!(data["media"][0]["caption"], "Room 12");
    }
}

#[test]
fn location_contacts_replies_and_reactions_are_typed() {
    let messages = vec![
        json!({"from": "1", "id": "wamid.L", "type": "location",
            "location": {"latitude": 38.9, "longitude": -77.0, "name": "Hotel", "address": "1 Main St"}}),
        json!({"from": "1", "id": "wamid.C", "type": "contacts", "contacts": [{
            "name": {"formatted_name": "Ann Lee", "first_name": "Ann"},
            "phones": [{"phone": "+1 555", "wa_id": "1555", "type": "CELL"}],
            "emails": [{"email": "ann@example.com", "type": "WORK"}]}]}),
        json!({"from": "1", "id": "wamid.B", "type": "interactive",
            "interactive": {"type": "button_reply", "button_reply": {"id": "late", "title": "Late checkout"}}}),
        json!({"from": "1", "id": "wamid.R", "type": "interactive",
            "interactive": {"type": "list_reply", "list_reply": {"id": "spa", "title": "Spa", "description": "10am"}}}),
        json!({"from": "1", "id": "wamid.Q", "type": "button",
            "button": {"payload": "YES", "text": "Yes"}, "context": {"from": "1555", "id": "wamid.T"}}),
        json!({"from": "1", "id": "wamid.E", "type": "reaction",
            "reaction": {"message_id": "wamid.T", "emoji": "\u{1F44D}"}}),
    ];
    let events = normalize_body(&batch(messages, vec![]));
    let datas: Vec<Value> = events.iter().map(data).collect();
    assert_eq!(
        datas[0]["location"],
        json!({"latitude": 38.9, "longitude": -77.0, "name": "Hotel", "address": "1 Main St"})
    );
    assert_eq!(
        datas[1]["contacts"],
        json!([{"name": "Ann Lee",
        "phones": [{"phone": "+1 555", "wa_id": "1555", "type": "CELL"}], "emails": ["ann@example.com"]}])
    );
    assert_eq!(
        datas[2]["selection"],
        json!({"kind": "button_reply", "id": "late", "title": "Late checkout"})
    );
    assert_eq!(
        datas[3]["selection"],
        json!({"kind": "list_reply", "id": "spa", "title": "Spa", "description": "10am"})
    );
    assert_eq!(
        datas[4]["selection"],
        json!({"kind": "quick_reply", "id": "YES", "title": "Yes"})
    );
    assert_eq!(
        datas[4]["replied_to"],
        json!({"message_id": "wamid.T", "from": "1555"})
    );
    assert_eq!(
        datas[5]["reaction"],
        json!({"message_id": "wamid.T", "emoji": "\u{1F44D}"})
    );
    let kinds: Vec<_> = datas
        .iter()
        .map(|d| d["kind"].as_str().expect("kind").to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "location",
            "contacts",
            "interactive",
            "interactive",
            "button",
            "reaction"
        ]
    );
    assert!(
        events
            .iter()
            .all(|e| e.event.event_type() == EventType::MessageReceived)
    );
}

#[test]
fn unmodelled_message_types_are_unknown_with_the_raw_json() {
    let order =
        json!({"from": "1", "id": "wamid.O", "type": "order", "order": {"catalog_id": "C"}});
    let unsupported = json!({"from": "1", "id": "wamid.X", "type": "unsupported",
        "errors": [{"code": 131051, "title": "Message type unknown"}]});
    let flow = json!({"from": "1", "id": "wamid.F", "type": "interactive",
        "interactive": {"type": "nfm_reply", "nfm_reply": {"response_json": "{}"}}});
    let events = normalize_body(&batch(
        vec![order.clone(), unsupported.clone(), flow],
        vec![],
    ));
    assert_eq!(events.len(), 3);
    for event in &events {
        assert_eq!(event.event.event_type(), EventType::Unknown);
    }
    assert_eq!(
        events[0].event.providereventid, "wamid.O",
        "keeps the message id as key"
    );
    assert_eq!(data(&events[0])["raw"], order);
    assert_eq!(data(&events[1])["raw"], unsupported);
    assert_eq!(
        data(&events[0])["reason"],
        "message type `order` is not modelled"
    );
}

#[test]
fn statuses_are_keyed_by_id_and_status() {
    let status = |s: &str| {
        json!({"id": "wamid.S", "status": s, "timestamp": "1710511300",
        "recipient_id": "4915112345678", "conversation": {"id": "CONV"}})
    };
    let failed = json!({"id": "wamid.S", "status": "failed", "timestamp": "1710511400",
        "recipient_id": "4915112345678", "errors": [{"code": 131047, "title": "Re-engagement message",
        "message": "Re-engagement message", "error_data": {"details": "More than 24 hours have passed"},
        "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}]});
    let events = normalize_body(&batch(
        vec![],
        vec![status("sent"), status("delivered"), status("read"), failed],
    ));
    let keys: Vec<_> = events
        .iter()
        .map(|e| e.event.providereventid.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "wamid.S:sent",
            "wamid.S:delivered",
            "wamid.S:read",
            "wamid.S:failed"
        ]
    );
    assert!(
        events
            .iter()
            .all(|e| e.event.event_type() == EventType::MessageStatusChanged)
    );
    assert_eq!(data(&events[1])["status"], "delivered");
    assert_eq!(data(&events[1])["conversation_id"], "CONV");
    assert_eq!(
        data(&events[3])["errors"],
        json!([{"code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
            "details": "More than 24 hours have passed",
            "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}])
    );
}

#[test]
fn errors_only_and_other_fields_are_unknown_keyed_by_a_hash() {
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [
        {"field": "messages", "value": {"metadata": {"phone_number_id": "P"},
            "errors": [{"code": 130429, "title": "Rate limit hit"}]}},
        {"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}},
    ]}]});
    let events = normalize_body(body.to_string().as_bytes());
    assert_eq!(events.len(), 2);
    for event in &events {
        assert_eq!(event.event.event_type(), EventType::Unknown);
        assert!(event.event.providereventid.starts_with("sha256:"));
    }
    assert_eq!(
        data(&events[0])["raw"]["value"]["errors"][0]["code"],
        130429
    );
    assert_eq!(
        events[1].event.providereventtype.as_deref(),
        Some("account_update")
    );
    assert_ne!(events[0].event.id, events[1].event.id);
}

#[test]
fn parseable_payloads_with_nothing_modelled_become_one_unknown_event() {
    for body in [
        r#"{"object":"whatsapp_business_account","entry":[]}"#,
        "[1,2]",
        r#"{"entry":5}"#,
        "null",
    ] {
        let events = normalize_body(body.as_bytes());
        assert_eq!(events.len(), 1, "{body}");
        assert_eq!(events[0].event.event_type(), EventType::Unknown);
        assert_eq!(events[0].event.providereventid, hashed_key(body.as_bytes()));
    }
}

#[test]
fn malformed_messages_inside_a_batch_do_not_sink_the_others() {
    let broken = json!({"from": "1", "type": "text", "text": {"body": "no id"}});
    let events = normalize_body(&batch(
        vec![broken, text_message("wamid.OK", "fine")],
        vec![],
    ));
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].event.event_type(), EventType::Unknown);
    assert_eq!(data(&events[1])["kind"], json!(MessageKind::Text));
}

#[test]
fn a_body_that_is_not_json_is_malformed() {
    for body in [&b"not json"[..], b"", b"{\"entry\":[", &[0xff, 0xfe][..]] {
        let request = OwnedRequest::post(PATH, body);
        let result = normalize(&request.view(), &origin("whatsapp", "meta"));
        assert!(
            matches!(result, Err(Rejection::MalformedBody { format: "JSON", .. })),
            "{body:?}"
        );
    }
}

#[test]
fn id_less_changes_are_told_apart_by_account_and_time() {
    let change = json!({"field": "message_template_status_update",
        "value": {"event": "APPROVED", "message_template_id": 1, "message_template_name": "checkin"}});
    let body = |account: &str, time: u64| {
        json!({"object": "whatsapp_business_account",
            "entry": [{"id": account, "time": time, "changes": [change.clone()]}]})
        .to_string()
    };
    let key = |text: String| normalize_body(text.as_bytes())[0].dedupe_key.clone();
    let first = key(body("W1", 1_700_000_000));
    assert_eq!(
        first,
        key(body("W1", 1_700_000_000)),
        "the same delivery again is a duplicate"
    );
    assert_ne!(
        first,
        key(body("W1", 1_700_600_000)),
        "approved again a week later"
    );
    assert_ne!(first, key(body("W2", 1_700_000_000)), "another account");
    let both = json!({"object": "whatsapp_business_account", "entry": [
        {"id": "W1", "time": 1, "changes": [change.clone()]},
        {"id": "W2", "time": 1, "changes": [change.clone()]}]});
    let events = normalize_body(both.to_string().as_bytes());
    assert_ne!(
        events[0].dedupe_key, events[1].dedupe_key,
        "two accounts in one batch"
    );
}

#[test]
fn numbers_beyond_f64_are_kept_as_text_not_lost() {
    let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"x","value":{"n":1e400}}]}]}"#;
    let events = normalize_body(body);
    assert_eq!(
        data(&events[0])["raw"],
        json!(r#"{"field":"x","value":{"n":1e400}}"#)
    );
}

/// The provider's settings with these secrets and nothing else.
fn settings(values: &[&str]) -> Settings {
    Settings {
        secrets: crate::testing::secrets(values),
        ..Settings::default()
    }
}
