//! Requests that pass verification but must not be stored twice, or at all: replays under
//! fresh unsigned ids, a signed payload kind sent on a URL token, and requests that make a
//! verifier work hard before it can refuse them. Each case is one a security review ran
//! against a release build.

mod common;

use std::time::Duration;

use common::{RawRequest, TestServer, config_from};
use porter::testing::server::Clock;
use porter::testing::store::{MemoryStore, Store};
use porter_providers::Secret;

const GITHUB_SECRET: &str = "replays-github-secret";
const MEWS_TOKEN: &str = "replays-mews-token-0123456789";
const MEWS_POS_SECRET: &str = "replays-mews-pos-secret";
const TWILIO_TOKEN: &str = "replays-twilio-token";

fn config() -> porter::testing::config::Config {
    config_from(
        &format!(
            r#"
[server]
public_url = "https://hooks.example.com"
max_body_bytes = 4_000_000

[[sources]]
name = "github"
provider = "hmac"
path = "/webhooks/github"
secrets = ["{GITHUB_SECRET}"]
hmac = {{ header = "X-Hub-Signature-256", prefix = "sha256=", id_header = "X-GitHub-Delivery", type_pointer = "/action" }}

[[sources]]
name = "mews"
provider = "mews"
path = "/webhooks/mews"
url_token = "{MEWS_TOKEN}"
secrets = ["{MEWS_POS_SECRET}"]

[[sources]]
name = "sms"
provider = "twilio"
path = "/webhooks/sms"
secrets = ["{TWILIO_TOKEN}"]

[[sources]]
name = "standard"
provider = "standard_webhooks"
path = "/webhooks/standard"
secrets = ["whsec_cmVwbGF5cy1zdGFuZGFyZC13ZWJob29rcy1rZXk="]

[[sources]]
name = "stripe"
provider = "stripe"
path = "/webhooks/stripe"
secrets = ["whsec_replays_stripe"]
"#
        ),
        &[],
    )
}

async fn server() -> TestServer {
    TestServer::start_store(
        config(),
        Store::Memory(std::sync::Arc::new(MemoryStore::new(
            false,
            100_000,
            porter::testing::clock::Clock::system(),
        ))),
        Clock::system(),
    )
    .await
}

fn github(body: &str, delivery: &str) -> RawRequest {
    let signature = porter_providers::auth::MacHeader::hex_sha256("x-hub-signature-256", "sha256=")
        .sign(&Secret::new(GITHUB_SECRET), &[body.as_bytes()]);
    RawRequest::post("/webhooks/github", body.as_bytes().to_vec())
        .header("Content-Type", "application/json")
        .header("X-Hub-Signature-256", &signature)
        .header("X-GitHub-Delivery", delivery)
}

#[tokio::test]
async fn a_captured_delivery_resent_under_fresh_ids_is_stored_once() {
    let server = server().await;
    let body = r#"{"action":"opened","number":7}"#;
    assert_eq!(server.send(&github(body, "d-1")).await.status, 200);
    for fresh in ["d-2", "d-3", "d-4"] {
        let answer = server.send(&github(body, fresh)).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("porter-duplicate"), Some("true"), "{fresh}");
    }
    let events = server.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["providerdeliveryid"], "d-1");
    // The vendor's next genuine delivery, whose id a replay already used, is stored.
    let next = r#"{"action":"closed","number":7}"#;
    let answer = server.send(&github(next, "d-4")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("porter-duplicate"), None);
    assert_eq!(server.events().len(), 2);
    server.stop().await;
}

fn mews_pos_body() -> String {
    r#"{"data":{"id":"o-77","type":"orders","attributes":{"status":"paid","updatedAt":"2025-02-06T09:41:30.465Z"}},"meta":{"eventType":"order.status.updated"}}"#.to_owned()
}

#[tokio::test]
async fn a_pos_payload_on_the_mews_url_token_alone_is_refused() {
    let server = server().await;
    let body = mews_pos_body();
    let forged = RawRequest::post(&format!("/webhooks/mews?token={MEWS_TOKEN}"), body.clone())
        .header("Content-Type", "application/json");
    assert_eq!(server.send(&forged).await.status, 401);
    assert!(server.events().is_empty());
    assert!(
        server.memory().quarantined().is_empty(),
        "not kept either: it is not authentic"
    );
    // The genuine, signed event with the same id and updatedAt is stored, not a duplicate.
    let signature = porter_providers::auth::MacHeader {
        name: "x-signature".into(),
        prefix: "".into(),
        encoding: porter_providers::auth::Encoding::Base64,
        algorithm: porter_providers::signing::Algorithm::Sha256,
    }
    .sign(&Secret::new(MEWS_POS_SECRET), &[body.as_bytes()]);
    let genuine = RawRequest::post("/webhooks/mews", body)
        .header("Content-Type", "application/json")
        .header("X-Signature", &signature);
    let answer = server.send(&genuine).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("porter-duplicate"), None);
    assert_eq!(server.events().len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_twilio_replay_with_a_fresh_idempotency_token_is_the_same_event() {
    let server = server().await;
    let body = "MessageSid=SM7f4c1d2e3b5a69788c9d0e1f2a3b4c5d&From=%2B12125550123&To=%2B14155550100&Body=Late+checkout%3F";
    let signature = porter_providers::twilio::signature(
        &Secret::new(TWILIO_TOKEN),
        "https://hooks.example.com/webhooks/sms",
        body.as_bytes(),
    );
    let request = |token: &str| {
        RawRequest::post("/webhooks/sms", body)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("X-Twilio-Signature", &signature)
            .header("I-Twilio-Idempotency-Token", token)
    };
    assert_eq!(server.send(&request("token-1")).await.status, 200);
    let replay = server.send(&request("token-chosen-by-a-replayer")).await;
    assert_eq!(replay.header("porter-duplicate"), Some("true"));
    let events = server.events();
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]["providereventid"],
        "SM7f4c1d2e3b5a69788c9d0e1f2a3b4c5d"
    );
    assert_eq!(events[0]["providerdeliveryid"], "token-1");
    server.stop().await;
}

#[tokio::test]
async fn requests_built_to_burn_cpu_are_refused_and_the_server_stays_responsive() {
    let server = server().await;
    let padding = "x".repeat(3 * 1024 * 1024);
    let body = format!(r#"{{"pad":"{padding}"}}"#);
    let now = jiff::Timestamp::now().as_second().to_string();
    // 640 Standard Webhooks signatures over a 3 MiB body.
    let list = vec![format!("v1,{}", "A".repeat(43) + "="); 640].join(" ");
    let standard = RawRequest::post("/webhooks/standard", body.clone())
        .header("webhook-id", "msg_1")
        .header("webhook-timestamp", &now)
        .header("webhook-signature", &list);
    // 450 Stripe `v1=` entries.
    let stripe_header = format!(
        "t={now},{}",
        vec![format!("v1={}", "ab".repeat(32)); 450].join(",")
    );
    let stripe =
        RawRequest::post("/webhooks/stripe", body).header("Stripe-Signature", &stripe_header);
    // An unauthenticated 3 MiB `a&a&…` form to Twilio.
    let twilio = RawRequest::post("/webhooks/sms", "a&".repeat(1_500_000))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("X-Twilio-Signature", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    for request in [standard, stripe, twilio] {
        let answer = server.send(&request).await;
        assert_eq!(answer.status, 401, "{answer:?}");
    }
    let health = tokio::time::timeout(
        Duration::from_secs(1),
        server.send(&RawRequest::get("/healthz")),
    )
    .await
    .expect("answered");
    assert_eq!(health.status, 200);
    server.stop().await;
}
