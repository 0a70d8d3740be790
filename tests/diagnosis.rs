//! Diagnoses of refused requests, end to end: each known mistake made the way it really
//! happens (porter behind a TLS-terminating proxy, a secret pasted in base64, a sender's clock
//! ten minutes ahead, …), sent to a real server. Each test checks the diagnosis the operator
//! sees (`/api/requests`) and that the caller's answer is exactly the undiagnosed one.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::tls_proxy::{Rewrite, TlsProxy};
use common::{ADMIN_TABLE, RawRequest, RawResponse, TestServer, config_from};
use hmac::Mac;
use porter_providers::Secret;
use serde_json::Value;

const TWILIO_TOKEN: &str = "diagnosis-test-twilio-auth-token";
const FORM: &str = "AccountSid=AC00000000000000000000000000000000&Body=Late+checkout%3F&From=%2B15551230000&MessageSid=SM11111111111111111111111111111111&To=%2B15559870000";

fn server_config(sources: &str) -> porter::testing::config::Config {
    config_from(
        &format!("[store]\nkind = \"memory\"\nprint_events = false\n\n{sources}\n{ADMIN_TABLE}"),
        &[],
    )
}

fn twilio_source(public_url: &str) -> String {
    format!(
        "[[sources]]\nname = \"sms\"\nprovider = \"twilio\"\npath = \"/webhooks/sms\"\nsecrets = [\"{TWILIO_TOKEN}\"]\npublic_url = \"{public_url}\"\n"
    )
}

/// A Twilio request for the URL Twilio called, signed as Twilio signs it.
fn twilio(called: &str, host: &str, path: &str) -> RawRequest {
    let signature =
        porter_providers::twilio::signature(&Secret::new(TWILIO_TOKEN), called, FORM.as_bytes());
    RawRequest::post(path, FORM)
        .header("Host", host)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("X-Twilio-Signature", &signature)
}

/// The newest refused request's diagnosis, from the admin API.
async fn last_diagnosis(server: &TestServer) -> Value {
    let listed: Value = serde_json::from_slice(
        &server
            .admin(&RawRequest::get("/api/requests?outcome=rejected&limit=1"))
            .await
            .body,
    )
    .expect("json");
    listed["requests"][0]["diagnosis"].clone()
}

fn refused_as(answer: &RawResponse, error: &str) {
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert_eq!(answer.text(), format!(r#"{{"error":"{error}"}}"#));
    assert!(
        !answer.text().contains("diagnos") && answer.header("porter-diagnosis").is_none(),
        "the caller never sees the diagnosis"
    );
}

#[tokio::test]
async fn twilio_behind_a_tls_terminating_proxy_with_an_http_public_url() {
    // The operator wrote http:// where Twilio calls https://; the proxy terminates TLS.
    let server = TestServer::start(server_config(&twilio_source("http://hooks.example.com"))).await;
    let proxy = TlsProxy::start(
        "hooks.example.com",
        server.addr,
        Rewrite {
            add: vec![("X-Forwarded-Proto".into(), "https".into())],
            strip_prefix: None,
        },
    )
    .await;
    let called = "https://hooks.example.com/webhooks/sms?tenant=ritz";
    let answer = proxy
        .send(&twilio(
            called,
            "hooks.example.com",
            "/webhooks/sms?tenant=ritz",
        ))
        .await;
    refused_as(&answer, "invalid_signature");
    let diagnosis = last_diagnosis(&server).await;
    assert_eq!(diagnosis["code"], "url_mismatch", "{diagnosis}");
    assert_eq!(
        diagnosis["details"]["url"], "https://hooks.example.com/webhooks/sms",
        "the URL that verifies, without its query"
    );
    assert!(
        diagnosis["message"]
            .as_str()
            .is_some_and(|m| m.contains("https://hooks.example.com/webhooks/sms")),
        "{diagnosis}"
    );
    // Configured right, the same request verifies.
    let fixed = TestServer::start(server_config(&twilio_source("https://hooks.example.com"))).await;
    let proxy = TlsProxy::start(
        "hooks.example.com",
        fixed.addr,
        Rewrite {
            add: vec![("X-Forwarded-Proto".into(), "https".into())],
            strip_prefix: None,
        },
    )
    .await;
    let accepted = proxy
        .send(&twilio(
            called,
            "hooks.example.com",
            "/webhooks/sms?tenant=ritz",
        ))
        .await;
    assert_eq!(accepted.status, 200, "{}", accepted.text());
}

#[tokio::test]
async fn twilio_calling_a_host_porter_was_not_told_about() {
    let server = TestServer::start(server_config(&twilio_source("https://porter.internal"))).await;
    let answer = server
        .send(&twilio(
            "https://hooks.example.com/webhooks/sms",
            "hooks.example.com",
            "/webhooks/sms",
        ))
        .await;
    refused_as(&answer, "invalid_signature");
    let diagnosis = last_diagnosis(&server).await;
    assert_eq!(diagnosis["code"], "url_mismatch", "{diagnosis}");
    assert_eq!(
        diagnosis["details"]["url"],
        "https://hooks.example.com/webhooks/sms"
    );
}

#[tokio::test]
async fn twilio_through_a_proxy_that_strips_a_path_prefix() {
    let server =
        TestServer::start(server_config(&twilio_source("https://hooks.example.com"))).await;
    let proxy = TlsProxy::start(
        "hooks.example.com",
        server.addr,
        Rewrite {
            add: vec![
                ("X-Forwarded-Proto".into(), "https".into()),
                ("X-Forwarded-Prefix".into(), "/porter".into()),
            ],
            strip_prefix: Some("/porter".into()),
        },
    )
    .await;
    let answer = proxy
        .send(&twilio(
            "https://hooks.example.com/porter/webhooks/sms",
            "hooks.example.com",
            "/porter/webhooks/sms",
        ))
        .await;
    refused_as(&answer, "invalid_signature");
    let diagnosis = last_diagnosis(&server).await;
    assert_eq!(diagnosis["code"], "url_mismatch", "{diagnosis}");
    assert_eq!(
        diagnosis["details"]["url"],
        "https://hooks.example.com/porter/webhooks/sms"
    );
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("key");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

#[tokio::test]
async fn a_secret_pasted_in_base64_where_the_vendor_signs_with_the_raw_bytes() {
    // The vendor's dashboard shows the key base64-encoded; it signs with the key's bytes.
    let key: Vec<u8> = (0u8..32).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
    let pasted = BASE64.encode(&key);
    let server = TestServer::start(server_config(&format!(
        "[[sources]]\nname = \"pms\"\nprovider = \"pms_web_api\"\npath = \"/webhook/pms-events\"\nsecrets = [\"{pasted}\"]\n"
    )))
    .await;
    let body = r#"{"event":"guest.created","timestamp":"2024-01-15T10:30:00Z","data":{"hotelCode":"HOTEL001","reservationId":12345,"guest":{"id":"guest-123"}}}"#;
    let signature = hex::encode(hmac_sha256(&key, &[body.as_bytes()]));
    let answer = server
        .send(
            &RawRequest::post("/webhook/pms-events", body)
                .header("Content-Type", "application/json")
                .header("X-Webhook-Signature", &signature),
        )
        .await;
    refused_as(&answer, "invalid_signature");
    let diagnosis = last_diagnosis(&server).await;
    assert_eq!(diagnosis["code"], "secret_encoding", "{diagnosis}");
    let text = diagnosis.to_string();
    assert!(text.contains("base64"), "{text}");
    assert!(!text.contains(&pasted), "the secret never appears: {text}");
}

#[tokio::test]
async fn a_sender_clock_ten_minutes_ahead() {
    let key = b"porter-diagnosis-standard-key!!";
    let secret = format!("whsec_{}", BASE64.encode(key));
    let server = TestServer::start_with(
        server_config(&format!(
            "[[sources]]\nname = \"std\"\nprovider = \"standard_webhooks\"\npath = \"/webhooks/standard\"\nsecrets = [\"{secret}\"]\n"
        )),
        1_000,
        porter::testing::server::Clock::system(),
    )
    .await;
    let body =
        r#"{"type":"contact.created","timestamp":"2024-03-15T14:00:00Z","data":{"id":"c1"}}"#;
    let ahead = jiff::Timestamp::now().as_second() + 600;
    let mut request =
        RawRequest::post("/webhooks/standard", body).header("Content-Type", "application/json");
    for (name, value) in porter_providers::standard_webhooks::signature_headers(
        key,
        "msg_clock",
        ahead,
        body.as_bytes(),
    ) {
        request = request.header(name, &value);
    }
    let answer = server.send(&request).await;
    refused_as(&answer, "stale_timestamp");
    let diagnosis = last_diagnosis(&server).await;
    assert_eq!(diagnosis["code"], "clock_skew", "{diagnosis}");
    let seconds = diagnosis["details"]["seconds"].as_i64().expect("seconds");
    assert!((598..=602).contains(&seconds), "{seconds}");
}

/// A Stripe forgery with a `t=` a day ahead and a made-up signature: before, porter named a
/// clock skew of 86 400 s ("check time synchronisation"), pushing the operator to widen the
/// window for a forgery. The signature does not verify at the timestamp it sent: no skew.
#[tokio::test]
async fn a_stale_forgery_is_not_diagnosed_as_a_clock_skew() {
    let server = TestServer::start_with(
        server_config(
            "[[sources]]\nname = \"stripe\"\nprovider = \"stripe\"\npath = \"/webhooks/stripe\"\nsecrets = [\"whsec_the-real-stripe-secret\"]\n",
        ),
        1_000,
        porter::testing::server::Clock::system(),
    )
    .await;
    let body = r#"{"id":"evt_1","type":"payment_intent.succeeded","data":{"object":{}}}"#;
    let ahead = jiff::Timestamp::now().as_second() + 86_400;
    let mac = hmac_sha256(
        b"whsec_a-forgers-guess",
        &[ahead.to_string().as_bytes(), b".", body.as_bytes()],
    );
    let forged = RawRequest::post("/webhooks/stripe", body)
        .header("Content-Type", "application/json")
        .header(
            "Stripe-Signature",
            &format!("t={ahead},v1={}", hex::encode(mac)),
        );
    let answer = server.send(&forged).await;
    refused_as(&answer, "stale_timestamp");
    let diagnosis = last_diagnosis(&server).await;
    assert_eq!(diagnosis["code"], "no_known_variant", "{diagnosis}");
    server.stop().await;
}

#[tokio::test]
async fn a_signature_in_base64_where_hex_is_configured() {
    let server = TestServer::start(server_config(
        "[[sources]]\nname = \"vendor\"\nprovider = \"hmac\"\npath = \"/webhooks/vendor\"\nsecrets = [\"vendor-signing-secret\"]\nhmac = { header = \"X-Signature\", prefix = \"sha256=\", encoding = \"hex\" }\n",
    ))
    .await;
    let body = r#"{"type":"booking.made","id":"b1"}"#;
    let mac = hmac_sha256(b"vendor-signing-secret", &[body.as_bytes()]);
    let answer = server
        .send(
            &RawRequest::post("/webhooks/vendor", body)
                .header("Content-Type", "application/json")
                .header("X-Signature", &format!("sha256={}", BASE64.encode(mac))),
        )
        .await;
    refused_as(&answer, "invalid_signature");
    let diagnosis = last_diagnosis(&server).await;
    assert_eq!(diagnosis["code"], "signature_encoding", "{diagnosis}");
    assert_eq!(diagnosis["details"]["found"], "base64");
    assert_eq!(diagnosis["details"]["expected"], "hex");
}

#[tokio::test]
async fn a_sha1_signature_where_sha256_is_expected() {
    let server = TestServer::start(server_config(
        "[[sources]]\nname = \"whatsapp\"\nprovider = \"meta\"\npath = \"/webhooks/whatsapp\"\nsecrets = [\"meta-app-secret\"]\n",
    ))
    .await;
    let body = r#"{"object":"whatsapp_business_account","entry":[]}"#;
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(b"meta-app-secret").expect("key");
    mac.update(body.as_bytes());
    let sha1 = hex::encode(mac.finalize().into_bytes());
    let answer = server
        .send(
            &RawRequest::post("/webhooks/whatsapp", body)
                .header("Content-Type", "application/json")
                .header("X-Hub-Signature-256", &format!("sha256={sha1}")),
        )
        .await;
    refused_as(&answer, "invalid_signature");
    let diagnosis = last_diagnosis(&server).await;
    assert_eq!(diagnosis["code"], "algorithm", "{diagnosis}");
    assert_eq!(diagnosis["details"]["found"], "sha1");
    assert_eq!(diagnosis["details"]["expected"], "sha256");
}

#[tokio::test]
async fn a_wrong_secret_is_no_known_variant_and_diagnoses_stay_within_their_budget() {
    let server = TestServer::start(server_config(
        "[[sources]]\nname = \"whatsapp\"\nprovider = \"meta\"\npath = \"/webhooks/whatsapp\"\nsecrets = [\"meta-app-secret\"]\n",
    ))
    .await;
    let body = r#"{"object":"whatsapp_business_account","entry":[]}"#;
    let forged = porter_providers::meta::signature(&Secret::new("not-the-secret"), body.as_bytes());
    let request = RawRequest::post("/webhooks/whatsapp", body)
        .header("Content-Type", "application/json")
        .header("X-Hub-Signature-256", &forged);
    // The server's clock is fixed, so every request falls in one second: the floor of ten
    // diagnoses a second applies, and the rest are refused undiagnosed.
    for _ in 0..25 {
        refused_as(&server.send(&request).await, "invalid_signature");
    }
    let listed: Value = serde_json::from_slice(
        &server
            .admin(&RawRequest::get("/api/requests?limit=100"))
            .await
            .body,
    )
    .expect("json");
    let requests = listed["requests"].as_array().expect("requests");
    assert_eq!(requests.len(), 25);
    let diagnosed = requests
        .iter()
        .filter(|r| r["diagnosis"]["code"] == "no_known_variant")
        .count();
    assert_eq!(diagnosed, 10, "{listed}");
    assert!(
        requests.iter().all(|r| r["reason"] == "signature_mismatch"),
        "every one is refused all the same"
    );
}
