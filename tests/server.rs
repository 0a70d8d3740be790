//! The server end to end, on a loopback port: routing, limits, the allow-list, concurrency of
//! deduplication, a full store, the quarantine, health and metrics.

mod common;

use std::time::Duration;

use common::{ADMIN_TABLE, RawRequest, TestServer, config_from};
use porter::testing::server::Clock;
use porter_providers::Secret;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const SECRET: &str = "server-test-meta-secret";

fn config(extra_server: &str, extra_source: &str) -> porter::testing::config::Config {
    config_from(
        &format!(
            r#"
[server]
public_url = "https://hooks.example.com"
{extra_server}

[[sources]]
name = "whatsapp"
provider = "meta"
path = "/webhooks/whatsapp"
secrets = ["{SECRET}"]
verify_token = "vt"
{extra_source}

[[sources]]
name = "sms"
provider = "twilio"
path = "/webhooks/sms"
secrets = ["twilio-token"]

{ADMIN_TABLE}
"#
        ),
        &[],
    )
}

fn whatsapp_body(id: &str) -> Vec<u8> {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"P"}},"messages":[{{"from":"1","id":"{id}","timestamp":"1710511200","type":"text","text":{{"body":"hi"}}}}]}}}}]}}]}}"#
    )
    .into_bytes()
}

fn signed_whatsapp(body: Vec<u8>) -> RawRequest {
    let signature = porter_providers::meta::signature(&Secret::new(SECRET), &body);
    RawRequest::post("/webhooks/whatsapp", body)
        .header("Content-Type", "application/json")
        .header("X-Hub-Signature-256", &signature)
}

#[tokio::test]
async fn unknown_routes_and_path_tricks_are_404() {
    let server = TestServer::start(config("", "")).await;
    for target in [
        "/nope",
        "/webhooks/sms/../whatsapp",
        "/webhooks/sms/./status",
        "/webhooks%2Fsms",
        "/webhooks/SMS",
        "/webhooks/sms/",
        "//webhooks/sms",
        "/webhooks/whatsapp/extra",
    ] {
        let response = server
            .send(&signed_whatsapp(whatsapp_body("wamid.1")).with_target(target))
            .await;
        assert_eq!(response.status, 404, "{target}");
        assert_eq!(response.text(), r#"{"error":"not_found"}"#);
    }
    assert!(server.events().is_empty());
}

trait WithTarget {
    fn with_target(self, target: &str) -> Self;
}

impl WithTarget for RawRequest {
    fn with_target(mut self, target: &str) -> Self {
        self.target = target.to_owned();
        self
    }
}

#[tokio::test]
async fn wrong_methods_are_405_with_allow() {
    let server = TestServer::start(config("", "")).await;
    let response = server.send(&RawRequest::get("/webhooks/sms")).await;
    assert_eq!(response.status, 405);
    assert_eq!(response.header("allow"), Some("POST"));
    let mut delete = RawRequest::get("/webhooks/whatsapp");
    delete.method = "DELETE".into();
    let response = server.send(&delete).await;
    assert_eq!(response.status, 405);
    assert_eq!(response.header("allow"), Some("GET, POST"));
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_declared_or_streamed() {
    let server = TestServer::start(config("max_body_bytes = 1024", "")).await;
    let response = server.send(&signed_whatsapp(vec![b' '; 1025])).await;
    assert_eq!(response.status, 413);

    // Chunked, so no Content-Length announces the size.
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let chunk = vec![b'a'; 600];
    let mut raw = b"POST /webhooks/whatsapp HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for _ in 0..2 {
        raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend_from_slice(&chunk);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    stream.write_all(&raw).await.expect("write");
    assert_eq!(common::read_response(&mut stream).await.status, 413);

    let exactly = server
        .send(&signed_whatsapp(whatsapp_body("wamid.fits")))
        .await;
    assert_eq!(exactly.status, 200, "a body under the limit still passes");
}

#[tokio::test]
async fn a_client_too_slow_to_send_its_body_gets_408() {
    let server = TestServer::start(config("request_timeout = \"300ms\"", "")).await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    stream
        .write_all(b"POST /webhooks/whatsapp HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{\"partial\":")
        .await
        .expect("write");
    let started = std::time::Instant::now();
    let response = common::read_response(&mut stream).await;
    assert_eq!(response.status, 408);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered within the timeout"
    );
}

#[tokio::test]
async fn the_allow_list_is_checked_before_anything_else() {
    let outside = TestServer::start(config(
        "max_body_bytes = 2000",
        r#"allow_ips = ["10.0.0.0/8"]"#,
    ))
    .await;
    // Requests that every later step would refuse differently (a forged signature: 401; a
    // method the route does not answer: 405; a body over the limit: 413) all get the
    // allow-list's 403: nothing else looked at them.
    let mut forged = signed_whatsapp(whatsapp_body("wamid.a"));
    forged
        .headers
        .retain(|(name, _)| !name.eq_ignore_ascii_case("x-hub-signature-256"));
    let forged = forged.header("X-Hub-Signature-256", &format!("sha256={}", "0".repeat(64)));
    let mut wrong_method = RawRequest::get("/webhooks/whatsapp");
    wrong_method.method = "PUT".to_owned();
    let too_big = RawRequest::post("/webhooks/whatsapp", vec![b'x'; 4000]);
    for request in [
        signed_whatsapp(whatsapp_body("wamid.a")),
        forged,
        wrong_method,
        too_big,
    ] {
        let response = outside.send(&request).await;
        assert_eq!(
            response.status, 403,
            "{} {}",
            request.method, request.target
        );
        assert_eq!(response.text(), r#"{"error":"forbidden"}"#);
    }
    assert!(outside.events().is_empty());

    let inside = TestServer::start(config("", r#"allow_ips = ["127.0.0.0/8", "::1"]"#)).await;
    let response = inside
        .send(&signed_whatsapp(whatsapp_body("wamid.a")))
        .await;
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn fifty_identical_concurrent_requests_store_one_event() {
    let server = TestServer::start(config("", "")).await;
    let request = signed_whatsapp(whatsapp_body("wamid.concurrent"));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let request = request.clone();
        let addr = server.addr;
        tasks.push(tokio::spawn(async move { request.send(addr).await }));
    }
    let mut duplicates = 0;
    let mut bodies = std::collections::HashSet::new();
    for task in tasks {
        let response = task.await.expect("task");
        assert_eq!(response.status, 200);
        bodies.insert(response.body.clone());
        if response.header("porter-duplicate") == Some("true") {
            duplicates += 1;
        }
    }
    assert_eq!(server.events().len(), 1);
    assert_eq!(duplicates, 49);
    assert_eq!(
        bodies.len(),
        1,
        "every answer is the original answer byte for byte"
    );
}

#[tokio::test]
async fn a_full_store_answers_503_and_the_retry_is_not_deduplicated_away() {
    let clock = Clock::fixed(common::FIXTURE_TIME.parse().expect("time"));
    let server = TestServer::start_with(config("", ""), 1, clock).await;
    assert_eq!(
        server
            .send(&signed_whatsapp(whatsapp_body("wamid.first")))
            .await
            .status,
        200
    );
    let refused = server
        .send(&signed_whatsapp(whatsapp_body("wamid.second")))
        .await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.header("retry-after"), Some("5"));
    assert_eq!(server.memory().drain().len(), 1);
    let retried = server
        .send(&signed_whatsapp(whatsapp_body("wamid.second")))
        .await;
    assert_eq!(retried.status, 200);
    assert_eq!(retried.header("porter-duplicate"), None);
    assert_eq!(server.events().len(), 1);
}

#[tokio::test]
async fn an_expired_dedupe_key_is_accepted_again() {
    // The store reads the same clock as the gateway: moving it expires the key, no sleep.
    let (clock, hand) = Clock::manual(common::FIXTURE_TIME.parse().expect("time"));
    let server = TestServer::start_with(config("", r#"dedupe_ttl = "300ms""#), 1000, clock).await;
    let request = signed_whatsapp(whatsapp_body("wamid.ttl"));
    assert_eq!(server.send(&request).await.header("porter-duplicate"), None);
    assert_eq!(
        server.send(&request).await.header("porter-duplicate"),
        Some("true")
    );
    hand.advance(Duration::from_millis(299));
    assert_eq!(
        server.send(&request).await.header("porter-duplicate"),
        Some("true"),
        "within the window"
    );
    hand.advance(Duration::from_millis(1));
    let later = server.send(&request).await;
    assert_eq!(later.status, 200);
    assert_eq!(later.header("porter-duplicate"), None);
    assert_eq!(server.events().len(), 2);
}

#[tokio::test]
async fn an_authentic_unparseable_body_is_400_and_quarantined() {
    let server = TestServer::start(config("", "")).await;
    let body = b"{\"object\":\"whatsapp_business_account\",\"entry\":[".to_vec();
    let response = server.send(&signed_whatsapp(body.clone())).await;
    assert_eq!(response.status, 400);
    assert_eq!(response.text(), r#"{"error":"bad_request"}"#);
    let quarantined = server.memory().quarantined();
    assert_eq!(quarantined.len(), 1);
    assert_eq!(quarantined[0].source, "whatsapp");
    assert_eq!(quarantined[0].body.as_ref(), body.as_slice());
    assert_eq!(
        quarantined[0].content_type.as_deref(),
        Some("application/json")
    );
    assert!(server.events().is_empty());

    // A forged unparseable body is refused as forged, not quarantined.
    let forged = RawRequest::post("/webhooks/whatsapp", body)
        .header("X-Hub-Signature-256", &format!("sha256={}", "0".repeat(64)));
    assert_eq!(server.send(&forged).await.status, 401);
    assert_eq!(server.memory().quarantined().len(), 1);
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let server = TestServer::start(config("", "")).await;
    assert_eq!(server.send(&RawRequest::get("/healthz")).await.status, 200);
    assert_eq!(server.send(&RawRequest::get("/readyz")).await.status, 200);
    assert_eq!(
        server
            .send(&RawRequest::post("/healthz", Vec::new()))
            .await
            .status,
        405
    );
    server
        .send(&signed_whatsapp(whatsapp_body("wamid.metrics")))
        .await;
    server
        .send(&RawRequest::post("/webhooks/whatsapp", b"{}".to_vec()))
        .await;
    assert_eq!(
        server.send(&RawRequest::get("/metrics")).await.status,
        404,
        "metrics are on the admin listener only"
    );
    let text = server.metrics().await;
    assert!(
        text.contains(r#"porter_requests_total{source="whatsapp",outcome="accepted"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"porter_rejections_total{source="whatsapp",reason="missing_signature"}"#),
        "{text}"
    );
    assert!(
        text.contains("porter_ingest_duration_seconds_bucket"),
        "{text}"
    );
    for described in [
        "# HELP porter_requests_total",
        "# HELP porter_rejections_total",
        "# HELP porter_ingest_duration_seconds",
    ] {
        assert!(text.contains(described), "{described}: {text}");
    }
}

#[tokio::test]
async fn a_get_without_handshake_parameters_is_not_called_a_token_mismatch() {
    let server = TestServer::start(config("", "")).await;
    let bare = server.send(&RawRequest::get("/webhooks/whatsapp")).await;
    assert_eq!(bare.status, 400);
    let metrics = server.metrics().await;
    assert!(
        metrics.contains(r#"reason="malformed_handshake""#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_handshake_is_answered_without_storing_anything() {
    let server = TestServer::start(config("", "")).await;
    let ok = server
        .send(&RawRequest::get(
            "/webhooks/whatsapp?hub.mode=subscribe&hub.challenge=987654&hub.verify_token=vt",
        ))
        .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.text(), "987654");
    assert!(
        ok.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain"))
    );
    let wrong = server
        .send(&RawRequest::get(
            "/webhooks/whatsapp?hub.mode=subscribe&hub.challenge=987654&hub.verify_token=vT",
        ))
        .await;
    assert_eq!(wrong.status, 403);
    assert!(server.events().is_empty());
}

#[tokio::test]
async fn a_reshaped_twilio_replay_is_answered_as_a_duplicate() {
    let server = TestServer::start(config("", "")).await;
    let body =
        "AccountSid=AC1&Body=Late+checkout%3F&From=%2B15551234567&MessageSid=SM1&To=%2B15557654321";
    let url = "https://hooks.example.com/webhooks/sms?hotel=berlin";
    let signature =
        porter_providers::twilio::signature(&Secret::new("twilio-token"), url, body.as_bytes());
    let original = RawRequest::post("/webhooks/sms?hotel=berlin", body)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("X-Twilio-Signature", &signature);
    let first = server.send(&original).await;
    assert_eq!(first.status, 200);

    // The same signed text, split differently between query, names and values, with a fresh
    // idempotency token: it verifies (that is Twilio's scheme), and it is a replay.
    let reshaped_body = body.replace("AccountSid=AC1", "=AC1");
    let reshaped = RawRequest::post("/webhooks/sms?hotel=berlinAccountSid", reshaped_body)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("X-Twilio-Signature", &signature)
        .header("I-Twilio-Idempotency-Token", "fresh-token");
    let replay = server.send(&reshaped).await;
    assert_eq!(replay.status, 200);
    assert_eq!(replay.header("porter-duplicate"), Some("true"));
    assert_eq!(replay.body, first.body);
    assert_eq!(server.events().len(), 1);
}

/// A Standard Webhooks `webhook-id` that is not visible ASCII is refused with 400
/// `invalid_header`, signed or not: before, `msg_\xff` verified and became the key `""`, and a
/// second, different event with another such id was answered as its duplicate and lost.
#[tokio::test]
async fn standard_webhooks_ids_that_are_not_text_are_refused_and_never_collide() {
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let server = TestServer::start_with(
        config_from(
            &format!(
                "[[sources]]\nname = \"std\"\nprovider = \"standard_webhooks\"\npath = \"/std\"\nsecrets = [\"{WHSEC}\"]\n"
            ),
            &[],
        ),
        1000,
        Clock::system(),
    )
    .await;
    let key = base64::engine::general_purpose::STANDARD
        .decode(&WHSEC["whsec_".len()..])
        .expect("key");
    let send = |id: Vec<u8>, body: String| {
        let key = key.clone();
        let addr = server.addr;
        async move {
            let timestamp = jiff::Timestamp::now().as_second().to_string();
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("key");
            for part in [&id[..], b".", timestamp.as_bytes(), b".", body.as_bytes()] {
                mac.update(part);
            }
            let signature =
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
            let mut raw = format!(
                "POST /std HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\nwebhook-timestamp: {timestamp}\r\nwebhook-signature: v1,{signature}\r\nwebhook-id: ",
                body.len()
            )
            .into_bytes();
            raw.extend_from_slice(&id);
            raw.extend_from_slice(b"\r\n\r\n");
            raw.extend_from_slice(body.as_bytes());
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream.write_all(&raw).await.expect("write");
            common::read_response(&mut stream).await
        }
    };
    for (id, body) in [
        (b"msg_\xff".to_vec(), r#"{"type":"a","n":1}"#),
        (b"msg_\xfe".to_vec(), r#"{"type":"b","n":2}"#),
    ] {
        let answer = send(id, body.to_owned()).await;
        assert_eq!(answer.status, 400, "{}", answer.text());
        assert_eq!(answer.text(), r#"{"error":"invalid_header"}"#);
    }
    let good = send(b"msg_ok".to_vec(), r#"{"type":"c"}"#.to_owned()).await;
    assert_eq!(good.status, 200, "{}", good.text());
    assert_eq!(server.events().len(), 1, "only the good one is stored");
    server.stop().await;
}
