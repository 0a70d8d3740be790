//! Messenger and Instagram payloads, from Meta's Messenger Platform webhook reference (the
//! `messages`, `message_deliveries`, `message_reads`, `message_echoes`, `message_reactions`
//! and `messaging_postbacks` examples), with placeholder ids filled in.

use serde_json::{Value, json};

use crate::event::{Channel, DeliveryStatus, EventBody, EventType, MessageKind, SelectionKind};
use crate::testing::{OwnedRequest, origin};

fn events(body: &Value) -> Vec<crate::Normalized> {
    let request = OwnedRequest::post("/webhooks/meta", body.to_string().into_bytes());
    crate::meta::normalize(&request.view(), &origin("meta", "meta")).expect("normalized")
}

fn page(items: Value) -> Value {
    json!({"object": "page", "entry": [{"id": "106540352242922", "time": 1458692752478i64, "messaging": items}]})
}

#[test]
fn a_messenger_text_is_a_message_from_the_guests_psid() {
    let body = page(json!([{
        "sender": {"id": "6945551234567890"},
        "recipient": {"id": "106540352242922"},
        "timestamp": 1458692752478i64,
        "message": {
            "mid": "mid.1457764197618:41d102a3e1ae206a38",
            "text": "hello, world!",
            "quick_reply": {"payload": "LATE_CHECKOUT"},
            "reply_to": {"mid": "m_earlier"}
        }
    }]));
    let events = events(&body);
    assert_eq!(events.len(), 1);
    let event = &events[0].event;
    assert_eq!(
        events[0].event.providereventid,
        "mid.1457764197618:41d102a3e1ae206a38"
    );
    assert_eq!(event.providereventtype.as_deref(), Some("messages"));
    assert_eq!(event.propertyid.as_deref(), Some("106540352242922"));
    assert_eq!(
        event.time.map(|t| t.as_millisecond()),
        Some(1_458_692_752_478)
    );
    let EventBody::MessageReceived(data) = &event.body else {
        panic!("{:?}", event.body)
    };
    assert_eq!(data.channel, Channel::Messenger);
    assert_eq!(data.from.as_deref(), Some("6945551234567890"));
    assert_eq!(data.to.as_deref(), Some("106540352242922"));
    assert_eq!(data.kind, Some(MessageKind::Text));
    assert_eq!(data.text.as_deref(), Some("hello, world!"));
    let selection = data.selection.as_ref().expect("quick reply");
    assert_eq!(selection.kind, SelectionKind::QuickReply);
    assert_eq!(selection.id.as_deref(), Some("LATE_CHECKOUT"));
    assert_eq!(
        data.replied_to.as_ref().map(|r| r.message_id.as_str()),
        Some("m_earlier")
    );
}

#[test]
fn instagram_attachments_are_media_on_the_instagram_channel() {
    let body = json!({"object": "instagram", "entry": [{"id": "17841400000000000", "time": 1710511190000i64, "messaging": [{
        "sender": {"id": "IGSID-1"},
        "recipient": {"id": "17841400000000000"},
        "timestamp": 1710511190000i64,
        "message": {"mid": "aWdfZAG1f", "attachments": [{"type": "image", "payload": {"url": "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1"}}]}
    }]}]});
    let events = events(&body);
    let EventBody::MessageReceived(data) = &events[0].event.body else {
        panic!("{:?}", events[0].event.body)
    };
    assert_eq!(data.channel, Channel::Instagram);
    assert_eq!(data.kind, Some(MessageKind::Image));
    assert_eq!(
        data.media[0].url.as_deref(),
        Some("https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1")
    );
    // A shared post or story mention is kept, not modelled.
    let share = json!({"object": "instagram", "entry": [{"id": "1", "messaging": [{
        "sender": {"id": "IGSID-1"}, "recipient": {"id": "1"}, "timestamp": 1,
        "message": {"mid": "m_share", "attachments": [{"type": "share", "payload": {"url": "https://x"}}]}
    }]}]});
    let events = super::super::normalize(
        &OwnedRequest::post("/m", share.to_string().into_bytes()).view(),
        &origin("meta", "meta"),
    )
    .expect("normalized");
    assert_eq!(events[0].event.body.event_type(), EventType::Unknown);
    assert_eq!(events[0].event.providereventid, "m_share");
}

#[test]
fn deliveries_and_reads_are_statuses_per_mid_or_up_to_the_watermark() {
    let body = page(json!([
        {
            "sender": {"id": "6945551234567890"},
            "recipient": {"id": "106540352242922"},
            "delivery": {"mids": ["mid.1458668856218:ed81099e15d3f4f233", "mid.2"], "watermark": 1458668856253i64}
        },
        {
            "sender": {"id": "6945551234567890"},
            "recipient": {"id": "106540352242922"},
            "timestamp": 1458668856463i64,
            "read": {"watermark": 1458668856253i64}
        }
    ]));
    let events = events_of(&body);
    assert_eq!(events.len(), 3);
    let keys: Vec<&str> = events
        .iter()
        .map(|e| e.event.providereventid.as_str())
        .collect();
    assert_eq!(keys[0], "mid.1458668856218:ed81099e15d3f4f233:delivered");
    assert_eq!(keys[1], "mid.2:delivered");
    assert!(keys[2].starts_with("sha256:"), "{keys:?}");
    let status = |i: usize| match &events[i].event.body {
        EventBody::MessageStatusChanged(data) => data.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(status(0).status, DeliveryStatus::Delivered);
    assert_eq!(status(0).recipient.as_deref(), Some("6945551234567890"));
    assert_eq!(status(2).status, DeliveryStatus::Read);
    assert_eq!(status(2).message_id, "");
    assert_eq!(
        status(2).watermark.map(|t| t.as_millisecond()),
        Some(1_458_668_856_253)
    );
    // The same read again is the same event; a later watermark is another.
    let again = events_of(&body);
    assert_eq!(again[2].event.providereventid, keys[2]);
    let later = page(json!([{
        "sender": {"id": "6945551234567890"},
        "recipient": {"id": "106540352242922"},
        "timestamp": 1458668856463i64,
        "read": {"watermark": 1458668856999i64}
    }]));
    assert_ne!(events_of(&later)[0].event.providereventid, keys[2]);
}

#[test]
fn echoes_reactions_postbacks_and_the_rest() {
    let body = page(json!([
        {"sender": {"id": "106540352242922"}, "recipient": {"id": "6945551234567890"}, "timestamp": 1,
         "message": {"is_echo": true, "app_id": 1517776481860111i64, "mid": "m_sent", "text": "Your room is ready"}},
        {"sender": {"id": "6945551234567890"}, "recipient": {"id": "106540352242922"}, "timestamp": 2,
         "reaction": {"mid": "m_sent", "action": "react", "reaction": "love", "emoji": "\u{2764}\u{FE0F}"}},
        {"sender": {"id": "6945551234567890"}, "recipient": {"id": "106540352242922"}, "timestamp": 3,
         "reaction": {"mid": "m_sent", "action": "unreact"}},
        {"sender": {"id": "6945551234567890"}, "recipient": {"id": "106540352242922"}, "timestamp": 4,
         "postback": {"mid": "m_postback", "title": "Book a spa slot", "payload": "SPA"}},
        {"sender": {"id": "6945551234567890"}, "recipient": {"id": "106540352242922"}, "timestamp": 5,
         "optin": {"type": "notification_messages", "payload": "x"}}
    ]));
    let events = events(&body);
    assert_eq!(events.len(), 5);
    assert_eq!(events[0].event.providereventid, "m_sent:echo");
    assert_eq!(events[0].event.body.event_type(), EventType::Unknown);
    let reaction = |i: usize| match &events[i].event.body {
        EventBody::MessageReceived(data) => data.reaction.clone().expect("reaction"),
        other => panic!("{other:?}"),
    };
    assert_eq!(reaction(1).message_id, "m_sent");
    assert_eq!(reaction(1).emoji, "\u{2764}\u{FE0F}");
    assert_eq!(reaction(2).emoji, "", "an unreact removes the reaction");
    assert_ne!(
        events[1].event.providereventid,
        events[2].event.providereventid
    );
    let EventBody::MessageReceived(postback) = &events[3].event.body else {
        panic!("{:?}", events[3].event.body)
    };
    assert_eq!(events[3].event.providereventid, "m_postback");
    let selection = postback.selection.as_ref().expect("selection");
    assert_eq!(selection.kind, SelectionKind::Postback);
    assert_eq!(selection.id.as_deref(), Some("SPA"));
    assert_eq!(events[4].event.body.event_type(), EventType::Unknown);
    assert_eq!(
        events[4].event.providereventtype.as_deref(),
        Some("messaging")
    );
}

#[test]
fn batches_split_and_standby_is_kept() {
    let body = json!({"object": "page", "entry": [
        {"id": "1", "time": 1, "messaging": [
            {"sender": {"id": "a"}, "recipient": {"id": "1"}, "timestamp": 1, "message": {"mid": "m1", "text": "one"}},
            {"sender": {"id": "b"}, "recipient": {"id": "1"}, "timestamp": 2, "message": {"mid": "m2", "text": "two"}}
        ]},
        {"id": "2", "time": 2, "standby": [
            {"sender": {"id": "c"}, "recipient": {"id": "2"}, "timestamp": 3, "message": {"mid": "m3", "text": "three"}}
        ]}
    ]});
    let events = events_of(&body);
    let keys: Vec<&str> = events
        .iter()
        .map(|e| e.event.providereventid.as_str())
        .collect();
    assert_eq!(&keys[..2], ["m1", "m2"]);
    assert_eq!(events.len(), 3);
    assert_eq!(
        events[2].event.providereventtype.as_deref(),
        Some("standby")
    );
    // Messaging items in a WhatsApp payload are not read as Messenger ones.
    let odd = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "messaging": [{"message": {"mid": "m", "text": "x"}}]}]});
    assert_eq!(
        events_of(&odd)[0].event.body.event_type(),
        EventType::Unknown
    );
}

fn events_of(body: &Value) -> Vec<crate::Normalized> {
    events(body)
}
