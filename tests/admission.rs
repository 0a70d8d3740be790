//! Admission per source, end to end on a loopback port: a source over its `max_in_flight` or
//! `rate` gets its vendor's throttle status with `Retry-After`, before a byte of its body is
//! read or its signature checked, and the other sources are not affected.

mod common;

use std::time::Duration;

use common::{ADMIN_TABLE, RawRequest, TestServer, config_from, read_response};
use porter_providers::Secret;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const SECRET: &str = "admission-test-meta-secret";
const TWILIO_TOKEN: &str = "admission-twilio-token";

fn config(whatsapp_share: &str) -> porter::testing::config::Config {
    config_from(
        &format!(
            r#"
[server]
public_url = "https://hooks.example.com"

[[sources]]
name = "whatsapp"
provider = "meta"
path = "/webhooks/whatsapp"
secrets = ["{SECRET}"]
verify_token = "vt"
{whatsapp_share}

[[sources]]
name = "sms"
provider = "twilio"
path = "/webhooks/sms"
secrets = ["{TWILIO_TOKEN}"]

[[sources]]
name = "std"
provider = "standard_webhooks"
path = "/webhooks/std"
secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
rate = 0.01

{ADMIN_TABLE}
"#
        ),
        &[],
    )
}

fn whatsapp(id: &str) -> RawRequest {
    let body = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"P"}},"messages":[{{"from":"1","id":"{id}","timestamp":"1710511200","type":"text","text":{{"body":"hi"}}}}]}}}}]}}]}}"#
    )
    .into_bytes();
    let signature = porter_providers::meta::signature(&Secret::new(SECRET), &body);
    RawRequest::post("/webhooks/whatsapp", body)
        .header("Content-Type", "application/json")
        .header("X-Hub-Signature-256", &signature)
}

fn sms(sid: &str) -> RawRequest {
    let form = format!("AccountSid=AC1&Body=hi&From=%2B15550001&MessageSid={sid}&To=%2B15550002");
    let signature = porter_providers::twilio::signature(
        &Secret::new(TWILIO_TOKEN),
        "https://hooks.example.com/webhooks/sms",
        form.as_bytes(),
    );
    RawRequest::post("/webhooks/sms", form.into_bytes())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("X-Twilio-Signature", &signature)
}

/// A Twilio message SID: `SM` and 32 hex digits.
fn sid(n: usize) -> String {
    format!("SM{n:032x}")
}

#[tokio::test]
async fn over_its_rate_a_source_gets_its_vendors_throttle_and_the_others_do_not() {
    let server = TestServer::start(config("rate = 0.01")).await;
    let first = server.send(&whatsapp("wamid.rate.1")).await;
    assert_eq!(
        first.status,
        200,
        "the bucket's one token: {}",
        first.text()
    );

    let over = server.send(&whatsapp("wamid.rate.2")).await;
    assert_eq!(
        over.status,
        503,
        "Meta retries any failure: {}",
        over.text()
    );
    assert_eq!(
        over.header("retry-after"),
        Some("100"),
        "one token per 100 s"
    );
    assert_eq!(over.text(), r#"{"error":"throttled"}"#);
    assert_eq!(
        server.events().len(),
        1,
        "a throttled request stores nothing"
    );

    for n in 0..20 {
        let answer = server.send(&sms(&sid(n))).await;
        assert_eq!(answer.status, 200, "sms {n}: {}", answer.text());
    }
    assert_eq!(server.events().len(), 21);

    // Standard Webhooks senders are told 429, which their specification throttles on. The
    // share is taken before verification: a forged request spends it too, so a flood of
    // forgeries on one route stays on that route.
    let forged = server
        .send(&RawRequest::post("/webhooks/std", b"{}".to_vec()))
        .await;
    assert_eq!(forged.status, 401, "{}", forged.text());
    let throttled = server
        .send(&RawRequest::post("/webhooks/std", b"{}".to_vec()))
        .await;
    assert_eq!(throttled.status, 429, "{}", throttled.text());
    assert_eq!(throttled.header("retry-after"), Some("100"));

    let metrics = server.metrics().await;
    for line in [
        r#"porter_requests_total{source="whatsapp",outcome="throttled"} 1"#,
        r#"porter_rejections_total{source="whatsapp",reason="over_rate"} 1"#,
        r#"porter_requests_total{source="std",outcome="throttled"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line}\n{metrics}");
    }
}

#[tokio::test]
async fn over_max_in_flight_the_next_request_waits_for_a_slot_not_for_its_body() {
    let server = TestServer::start(config("max_in_flight = 2")).await;
    // Two requests whose bodies have not arrived hold the source's two slots.
    let mut held = Vec::new();
    for n in 0..2 {
        let request = whatsapp(&format!("wamid.held.{n}")).to_bytes();
        let split = request
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("head")
            + 4;
        let mut stream = TcpStream::connect(server.addr).await.expect("connect");
        stream.write_all(&request[..split]).await.expect("head");
        held.push((stream, request[split..].to_vec()));
    }
    // The server has read both heads once a third request is turned away; poll until then.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let over = loop {
        let answer = server.send(&whatsapp("wamid.third")).await;
        if answer.status != 200 || tokio::time::Instant::now() > deadline {
            break answer;
        }
        // Both heads not read yet: the third went through on a free slot.
        assert!(
            server.events().len() <= 1,
            "only one request can have slipped in"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(over.status, 503, "{}", over.text());
    assert_eq!(over.header("retry-after"), Some("1"));

    let sms = server.send(&sms(&sid(7))).await;
    assert_eq!(sms.status, 200, "another source is not affected");

    // A held request's body arrives: it is answered, its slot frees, the next one is admitted.
    let (mut stream, body) = held.pop().expect("held");
    stream.write_all(&body).await.expect("body");
    let answer = read_response(&mut stream).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let next = server.send(&whatsapp("wamid.after")).await;
    assert_eq!(next.status, 200, "a slot is free again: {}", next.text());
}
