//! `pii` per destination, end to end: one guest's WhatsApp messages go to a destination that
//! hashes personal values and to one that drops them, signed over what is sent, while the store
//! keeps them whole.

mod common;

use std::time::Duration;

use common::receiver::{Receiver, verify_standard_webhooks};
use common::{RawRequest, TestServer, config_from};
use porter_providers::Secret;

const SECRET: &str = "privacy-test-meta-secret";
const WHSEC: &str = "whsec_ZGVsaXZlcnktdGVzdC1zaWduaW5nLWtleQ==";
const KEY: &str = "a-privacy-key-of-at-least-32-bytes-long";

fn whatsapp(id: &str, from: &str, text: &str) -> RawRequest {
    let body = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"P"}},"contacts":[{{"profile":{{"name":"Ann Guest"}},"wa_id":"{from}"}}],"messages":[{{"from":"{from}","id":"{id}","timestamp":"1710511200","type":"text","text":{{"body":"{text}"}}}}]}}}}]}}]}}"#
    );
    let signature = porter_providers::meta::signature(&Secret::new(SECRET), body.as_bytes());
    RawRequest::post("/webhooks/whatsapp", body).header("X-Hub-Signature-256", &signature)
}

#[tokio::test]
async fn destinations_get_hashed_or_dropped_guest_data_and_the_store_keeps_it() {
    let hashed = Receiver::start(vec![]).await;
    let dropped = Receiver::start(vec![]).await;
    let config = config_from(
        &format!(
            r#"
[store]
kind = "memory"
print_events = false

[privacy]
key = "${{PORTER_PRIVACY_KEY}}"

[[sources]]
name = "whatsapp"
provider = "meta"
path = "/webhooks/whatsapp"
secrets = ["{SECRET}"]

[[destinations]]
name = "analytics"
kind = "http"
url = "{}"
secret = "{WHSEC}"
pii = "hash"

[[destinations]]
name = "reporting"
kind = "http"
url = "{}"
secret = "{WHSEC}"
pii = "drop"
"#,
            hashed.url(),
            dropped.url()
        ),
        &[("PORTER_PRIVACY_KEY", KEY)],
    );
    let server = TestServer::start_delivering(config).await;
    // One guest, two spellings of her number across two messages.
    for (id, from, text) in [
        ("wamid.priv1", "4915123456789", "room 12 please"),
        ("wamid.priv2", "004915123456789", "thanks"),
    ] {
        assert_eq!(server.send(&whatsapp(id, from, text)).await.status, 200);
    }
    let to_analytics = hashed.wait_for(2, Duration::from_secs(10)).await;
    let to_reporting = dropped.wait_for(2, Duration::from_secs(10)).await;

    let expected = porter::testing::privacy::token(KEY.as_bytes(), "+4915123456789");
    for request in &to_analytics {
        assert!(
            verify_standard_webhooks(WHSEC, request),
            "signed over what is sent"
        );
        let data = &request.event()["data"];
        assert_eq!(
            data["from"],
            expected.as_str(),
            "the same token for one number"
        );
        let text = data["text"].as_str().expect("text");
        assert!(text.starts_with("pii_") && text.len() == 36, "{text}");
        assert!(
            data["profile_name"]
                .as_str()
                .is_some_and(|n| n.starts_with("pii_"))
        );
        assert_eq!(data["channel"], "whatsapp", "unmarked fields stay");
        let body = String::from_utf8_lossy(&request.body);
        for personal in ["Ann Guest", "room 12", "thanks", "4915123456789"] {
            assert!(!body.contains(personal), "{personal} left in {body}");
        }
    }
    for request in &to_reporting {
        assert!(verify_standard_webhooks(WHSEC, request));
        let data = &request.event()["data"];
        for member in ["from", "text", "profile_name"] {
            assert!(data.get(member).is_none(), "{member} dropped: {data}");
        }
        assert_eq!(data["kind"], "text");
    }
    // The store keeps what came in: redaction is per destination.
    let stored = server.events();
    assert_eq!(stored[0]["data"]["from"], "4915123456789");
    assert_eq!(stored[0]["data"]["text"], "room 12 please");
    server.stop().await;
}
