//! Message statuses in order: a status behind one already stored for its message is stored
//! and delivered, marked `statusregression = true`, and skipped by a destination with
//! `statuses = "forward_only"`. Per messaging vendor (through each one's real signing), and on
//! every store (memory, local, a real `redis-server`, shared by two instances).

mod common;

use std::time::Duration;

use common::receiver::Receiver;
use common::redis_server::RedisServer;
use common::{RawRequest, TestServer, config_from, repo_path};
use porter::testing::config::Config;
use porter_providers::Secret;

const FIXTURE_NOW: &str = "2024-03-15T14:00:01Z";

fn fixture_config() -> Config {
    let text =
        std::fs::read_to_string(repo_path("fixtures/porter.toml")).expect("fixtures/porter.toml");
    config_from(&text, &[])
}

/// `body` signed for the fixture configuration's source `source`, as its provider signs it.
fn signed(config: &Config, source: &str, path: Option<&str>, body: String) -> RawRequest {
    let source = config.source(source).expect("source");
    let content_type = if body.starts_with('{') {
        "application/json"
    } else {
        "application/x-www-form-urlencoded"
    };
    let prepared = porter::testing::commands::send::prepare(
        source,
        "https://hooks.example.com",
        path,
        content_type,
        body.into_bytes(),
        FIXTURE_NOW.parse().expect("time"),
    )
    .expect("prepared");
    let target = prepared
        .url
        .strip_prefix("https://hooks.example.com")
        .expect("url")
        .to_owned();
    let mut request =
        RawRequest::post(&target, prepared.body).header("Content-Type", &prepared.content_type);
    for (name, value) in &prepared.headers {
        request = request.header(name, value);
    }
    request
}

fn meta(status: &str, at: u32) -> String {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"1","phone_number_id":"P"}},"statuses":[{{"id":"wamid.ORDER1","status":"{status}","timestamp":"{at}","recipient_id":"4915112345678"}}]}}}}]}}]}}"#
    )
}

fn twilio(status: &str) -> String {
    format!(
        "AccountSid=AC0123456789abcdef0123456789abcdef&From=%2B14155550100&MessageSid=SM9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b&MessageStatus={status}&SmsStatus={status}&To=%2B12125550123"
    )
}

fn fixture_body(case: &str) -> String {
    std::fs::read_to_string(repo_path(&format!("fixtures/{case}/body"))).expect("body")
}

fn bird(status: &str) -> String {
    fixture_body("bird/sms_outbound_delivered")
        .replace(
            r#""status":"delivered""#,
            &format!(r#""status":"{status}""#),
        )
        .replace(
            "13:59:58.000Z",
            &format!("13:59:5{}.000Z", status.len() % 10),
        )
}

fn telnyx(status: &str) -> String {
    fixture_body("telnyx/message_finalized")
        .replace(
            r#""status":"delivered""#,
            &format!(r#""status":"{status}""#),
        )
        .replace("5a1c1e0a-6c43", &format!("5a1c1e0a-6c{:02}", status.len()))
}

fn vonage(status: &str) -> String {
    fixture_body("vonage/sms_status_delivered")
        .replace(
            r#""status":"delivered""#,
            &format!(r#""status":"{status}""#),
        )
        .replace("13:59:58Z", &format!("13:59:5{}Z", status.len() % 10))
}

/// The flags of the stored status events, in order: `(status, statusregression)`.
fn marks(server: &TestServer) -> Vec<(String, bool)> {
    server
        .events()
        .iter()
        .filter(|e| e["type"] == "message.status_changed")
        .map(|e| {
            (
                e["data"]["status"].as_str().expect("status").to_owned(),
                e.get("statusregression") == Some(&serde_json::Value::Bool(true)),
            )
        })
        .collect()
}

/// Sends `requests` in order to a fresh server (memory store, the fixtures' sources), each
/// answered 200, and returns the marks of what was stored.
async fn stored_marks(requests: Vec<RawRequest>) -> Vec<(String, bool)> {
    let server = TestServer::start(fixture_config()).await;
    for request in &requests {
        let answer = server.send(request).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    marks(&server)
}

fn pairs(expected: &[(&str, bool)]) -> Vec<(String, bool)> {
    expected
        .iter()
        .map(|(s, r)| ((*s).to_owned(), *r))
        .collect()
}

#[tokio::test]
async fn meta_a_delivered_after_read_is_marked_and_a_forward_sequence_is_not() {
    let config = fixture_config();
    let send = |status, at| signed(&config, "whatsapp", None, meta(status, at));
    assert_eq!(
        stored_marks(vec![send("sent", 1), send("delivered", 2), send("read", 3)]).await,
        pairs(&[("sent", false), ("delivered", false), ("read", false)])
    );
    assert_eq!(
        stored_marks(vec![send("read", 3), send("delivered", 2), send("sent", 1)]).await,
        pairs(&[("read", false), ("delivered", true), ("sent", true)])
    );
    // A failure is news whenever it comes: never marked.
    assert_eq!(
        stored_marks(vec![send("read", 3), send("failed", 4)]).await,
        pairs(&[("read", false), ("failed", false)])
    );
    // Within one request, in the request's order.
    let both = meta("read", 3).replace(
        r#"}]}}]}]}"#,
        r#"},{"id":"wamid.ORDER1","status":"delivered","timestamp":"2","recipient_id":"4915112345678"}]}}]}]}"#,
    );
    assert_eq!(
        stored_marks(vec![signed(&config, "whatsapp", None, both)]).await,
        pairs(&[("read", false), ("delivered", true)])
    );
}

#[tokio::test]
async fn meta_a_redelivery_is_a_duplicate_and_not_marked() {
    let config = fixture_config();
    let server = TestServer::start(fixture_config()).await;
    let read = signed(&config, "whatsapp", None, meta("read", 3));
    assert_eq!(server.send(&read).await.status, 200);
    let again = server.send(&read).await;
    assert_eq!(again.header("porter-duplicate"), Some("true"));
    assert_eq!(marks(&server), pairs(&[("read", false)]));
}

#[tokio::test]
async fn twilio_a_sent_after_delivered_is_marked() {
    let config = fixture_config();
    let send = |status| signed(&config, "sms", Some("/webhooks/sms/status"), twilio(status));
    assert_eq!(
        stored_marks(vec![send("delivered"), send("sent"), send("read")]).await,
        pairs(&[("delivered", false), ("sent", true), ("read", false)])
    );
}

#[tokio::test]
async fn bird_telnyx_and_vonage_mark_a_status_behind_its_message() {
    let config = fixture_config();
    assert_eq!(
        stored_marks(vec![
            signed(&config, "bird", None, bird("delivered")),
            signed(&config, "bird", None, bird("sent")),
        ])
        .await,
        pairs(&[("delivered", false), ("sent", true)])
    );
    assert_eq!(
        stored_marks(vec![
            signed(&config, "telnyx", None, telnyx("delivered")),
            signed(&config, "telnyx", None, telnyx("sent")),
        ])
        .await,
        pairs(&[("delivered", false), ("sent", true)])
    );
    assert_eq!(
        stored_marks(vec![
            signed(&config, "vonage", None, vonage("read")),
            signed(&config, "vonage", None, vonage("delivered")),
        ])
        .await,
        pairs(&[("read", false), ("delivered", true)])
    );
}

const SECRET: &str = "statuses-test-meta-secret";
const WHSEC: &str = "whsec_c3RhdHVzZXMtdGVzdC1zaWduaW5nLWtleQ==";

fn delivering(store: &str, all: &Receiver, forward: &Receiver) -> Config {
    config_from(
        &format!(
            r#"
[server]
public_url = "https://hooks.example.com"

[store]
{store}

[[sources]]
name = "whatsapp"
provider = "meta"
path = "/webhooks/whatsapp"
secrets = ["{SECRET}"]

[[destinations]]
name = "every-status"
kind = "http"
url = "{}"
secret = "{WHSEC}"

[[destinations]]
name = "ticks"
kind = "http"
url = "{}"
secret = "{WHSEC}"
statuses = "forward_only"
"#,
            all.url(),
            forward.url()
        ),
        &[],
    )
}

fn whatsapp_status(status: &str, at: u32) -> RawRequest {
    let body = meta(status, at).into_bytes();
    let signature = porter_providers::meta::signature(&Secret::new(SECRET), &body);
    RawRequest::post("/webhooks/whatsapp", body)
        .header("Content-Type", "application/json")
        .header("X-Hub-Signature-256", &signature)
}

/// `read` then `delivered` (through a second instance on Redis): every status reaches
/// `every-status`, the late `delivered` marked; `ticks` (forward only) gets `read` alone.
async fn check_delivery(store: &str) {
    let all = Receiver::start(vec![]).await;
    let forward = Receiver::start(vec![]).await;
    let first = TestServer::start_delivering(delivering(store, &all, &forward)).await;
    // On Redis a second instance shares the marks; elsewhere the one server takes both.
    let second = if store.contains("redis") {
        Some(TestServer::start_delivering(delivering(store, &all, &forward)).await)
    } else {
        None
    };
    let answer = first.send(&whatsapp_status("read", 3)).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let answer = second
        .as_ref()
        .unwrap_or(&first)
        .send(&whatsapp_status("delivered", 2))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());

    let received = all.wait_for(2, Duration::from_secs(10)).await;
    let mut events: Vec<serde_json::Value> = received.iter().map(|r| r.event()).collect();
    events.sort_by_key(|e| e["data"]["status"].as_str().map(str::to_owned));
    assert_eq!(events[0]["data"]["status"], "delivered");
    assert_eq!(events[0]["statusregression"], true, "{}", events[0]);
    assert_eq!(events[1]["data"]["status"], "read");
    assert!(events[1].get("statusregression").is_none(), "{}", events[1]);

    forward.wait_for(1, Duration::from_secs(10)).await;
    for server in std::iter::once(&first).chain(second.as_ref()) {
        server.settled("ticks").await;
        server.settled("every-status").await;
    }
    let ticks: Vec<_> = forward.received().iter().map(|r| r.event()).collect();
    assert_eq!(ticks.len(), 1, "{ticks:?}");
    assert_eq!(ticks[0]["data"]["status"], "read");
    if let Some(second) = second {
        second.stop().await;
    }
    first.stop().await;
}

#[tokio::test]
async fn forward_only_skips_a_late_status_on_the_memory_store() {
    check_delivery("kind = \"memory\"\nprint_events = false").await;
}

#[tokio::test]
async fn forward_only_skips_a_late_status_on_the_local_store() {
    let dir = tempfile::tempdir().expect("dir");
    check_delivery(&format!(
        "kind = \"local\"\npath = \"{}\"",
        dir.path().display()
    ))
    .await;
}

#[tokio::test]
async fn forward_only_skips_a_late_status_on_redis_shared_by_two_instances() {
    let redis = RedisServer::start();
    check_delivery(&format!("kind = \"redis\"\nurl = \"{}\"", redis.url())).await;
}
