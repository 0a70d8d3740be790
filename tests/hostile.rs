//! Hostile input against every route of every provider: each request gets its documented
//! status, never a 2xx for anything forged, never a 5xx for the client's own fault, never a
//! panic (the server still answers afterwards).

mod common;

use std::time::Duration;

use common::{RawRequest, TestServer};
use porter::testing::config::{Config, ConfigOrigin, EMBEDDED_DEFAULT};
use porter::testing::server::Clock;
use porter::testing::store::{MemoryStore, Store};
use porter_providers::ToSign;
use tokio::io::AsyncWriteExt;

fn default_config() -> Config {
    let mut config =
        Config::parse(EMBEDDED_DEFAULT, ConfigOrigin::EmbeddedDefault, &|_| None).expect("default");
    config.server.max_body_bytes = 64 * 1024;
    config.server.request_timeout = Duration::from_millis(500);
    config
}

async fn server() -> TestServer {
    TestServer::start_store(
        default_config(),
        Store::Memory(std::sync::Arc::new(MemoryStore::new(
            false,
            100_000,
            porter::testing::clock::Clock::system(),
        ))),
        Clock::system(),
    )
    .await
}

/// Every (route, source index) of the embedded default, POST routes only.
fn routes() -> Vec<(String, usize)> {
    let config = default_config();
    porter::testing::config::route_table(&config.sources)
        .sorted()
        .into_iter()
        .filter(|(_, route)| route.endpoint.methods.contains(&http::Method::POST))
        .map(|(path, route)| (path.to_owned(), route.source))
        .collect()
}

/// A request to `path` signed as the route's provider signs, with `body`.
fn signed(
    config: &Config,
    source: usize,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> RawRequest {
    let signed = config.sources[source].source.sign(&ToSign {
        path,
        query: None,
        content_type,
        body,
        now: jiff::Timestamp::now(),
    });
    let target = match &signed.query {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    let mut request = RawRequest::post(&target, body.to_vec()).header("Content-Type", content_type);
    for (name, value) in &signed.headers {
        request = request.header(name, value);
    }
    request
}

/// Whether the route's provider authenticates inside the body (Adyen: an HMAC per item;
/// SiteMinder: a WS-Security token in the SOAP envelope). There a body is authentic only as
/// the vendor's own document: arbitrary bytes carry no credentials and get 401, which their
/// modules test; the tests below that sign arbitrary bodies skip them.
fn signs_inside_the_body(config: &Config, source: usize) -> bool {
    matches!(
        config.sources[source].source.provider(),
        porter_providers::Provider::Adyen | porter_providers::Provider::Siteminder
    )
}

fn content_type(path: &str) -> &'static str {
    if path.starts_with("/webhooks/sms") {
        "application/x-www-form-urlencoded"
    } else {
        "application/json"
    }
}

#[tokio::test]
async fn forged_requests_of_every_shape_are_401_on_every_route() {
    let server = server().await;
    for (path, _) in routes() {
        for request in [
            RawRequest::post(&path, b"{}".to_vec()),
            RawRequest::post(&path, b"{}".to_vec()).header("Content-Type", "text/plain"),
            RawRequest::post(&path, vec![0xff, 0xfe, 0x00, 0x80])
                .header("Content-Type", "application/json"),
            RawRequest::post(&path, Vec::new()),
            RawRequest::post(&path, b"{}".to_vec())
                .header("X-Hub-Signature-256", &format!("sha256={}", "0".repeat(64)))
                .header("X-Twilio-Signature", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
                .header("X-Webhook-Signature", "zz")
                .header("X-RoostSync-Signature", "sha256=xyz")
                .header("x-oracle-timestamp", "now")
                .header("x-oracle-signature", "sha256=00")
                .header("webhook-id", "msg_1")
                .header("webhook-timestamp", "99999999999")
                .header("webhook-signature", "v1,====")
                .header("Stripe-Signature", "t=1,v1=00")
                .header("X-Signature", "sha256=00")
                .header("Authorization", "Bearer guess"),
        ] {
            let answer = server.send(&request).await;
            assert_eq!(answer.status, 401, "{path}: {request:?} → {answer:?}");
        }
    }
    assert!(server.events().is_empty(), "nothing forged was stored");
    assert_eq!(server.send(&RawRequest::get("/healthz")).await.status, 200);
}

#[tokio::test]
async fn two_signatures_one_of_them_valid_are_refused() {
    let config = default_config();
    let server = server().await;
    for (path, source) in routes() {
        let good = signed(&config, source, &path, content_type(&path), b"{\"x\":1}");
        // Only schemes that sign with a header: duplicate that header with a wrong value.
        let Some((name, _)) = good
            .headers
            .iter()
            .find(|(n, _)| {
                n.to_ascii_lowercase().contains("signature")
                    || n.eq_ignore_ascii_case("x-webhook-secret")
            })
            .cloned()
        else {
            continue;
        };
        let twice = good.clone().header(&name, "sha256=0000");
        let answer = server.send(&twice).await;
        assert_eq!(
            answer.status, 401,
            "{path} with two `{name}` headers: {answer:?}"
        );
    }
    assert!(server.events().is_empty());
}

#[tokio::test]
async fn authentic_but_unparseable_bodies_are_400_and_parseable_strangers_are_kept() {
    let config = default_config();
    let server = server().await;
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    for (path, source) in routes() {
        if signs_inside_the_body(&config, source) {
            continue;
        }
        let form = path.starts_with("/webhooks/sms");
        for body in [
            deep.as_bytes(),
            b"{\"unterminated\":",
            &[0xff, 0xfe, b'{', b'}'][..],
        ] {
            let answer = server
                .send(&signed(&config, source, &path, content_type(&path), body))
                .await;
            // A form decodes any bytes; invalid UTF-8 in it is still refused as malformed.
            let expected: &[u16] = if form { &[200, 400] } else { &[400] };
            assert!(
                expected.contains(&answer.status),
                "{path} {:?}…: {answer:?}",
                &body[..body.len().min(16)]
            );
        }
        // Authentic and parseable but not modelled: accepted, never dropped.
        let answer = server
            .send(&signed(
                &config,
                source,
                &path,
                content_type(&path),
                b"{\"hello\":\"porter\"}",
            ))
            .await;
        assert_eq!(answer.status, 200, "{path}: {answer:?}");
    }
    assert_eq!(server.send(&RawRequest::get("/healthz")).await.status, 200);
    let quarantined = server.memory().quarantined();
    assert!(
        !quarantined.is_empty(),
        "unparseable authentic bodies are kept for inspection"
    );
}

#[tokio::test]
async fn limits_hold_on_every_route() {
    let server = server().await;
    let big = vec![b'a'; 64 * 1024 + 1];
    let huge_header = "h".repeat(200 * 1024);
    for (path, _) in routes() {
        let answer = server.send(&RawRequest::post(&path, big.clone())).await;
        assert_eq!(answer.status, 413, "{path}");
        let answer = server
            .send(&RawRequest::post(&path, b"{}".to_vec()).header("X-Padding", &huge_header))
            .await;
        assert_eq!(answer.status, 431, "{path}: a header of 200 KiB");
    }
    // A slow client is cut off at the request timeout.
    let mut stream = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    stream
        .write_all(b"POST /webhooks/pms/events HTTP/1.1\r\nHost: t\r\nContent-Length: 50\r\nConnection: close\r\n\r\n{")
        .await
        .expect("write");
    assert_eq!(common::read_response(&mut stream).await.status, 408);
    assert_eq!(server.send(&RawRequest::get("/healthz")).await.status, 200);
}

#[tokio::test]
async fn stale_future_and_garbled_timestamps_are_401() {
    let config = default_config();
    let server = server().await;
    let now = jiff::Timestamp::now().as_second();
    for (path, source) in routes() {
        let provider = config.sources[source].source.provider().id();
        if !matches!(provider, "oracle_ohip" | "standard_webhooks" | "stripe") {
            continue;
        }
        // Ten seconds past the five-minute window either way: `now` is read once, and a loaded
        // machine may take a second or more before the last request is checked.
        for at in [now - 310, now + 310, now + 10 * 365 * 86_400] {
            let signed_then = config.sources[source].source.sign(&ToSign {
                path: &path,
                query: None,
                content_type: "application/json",
                body: b"{}",
                now: jiff::Timestamp::from_second(at).expect("time"),
            });
            let mut request = RawRequest::post(&path, b"{}".to_vec());
            for (name, value) in &signed_then.headers {
                request = request.header(name, value);
            }
            let answer = server.send(&request).await;
            assert_eq!(answer.status, 401, "{path} at {at}");
            assert_eq!(answer.text(), r#"{"error":"stale_timestamp"}"#, "{path}");
        }
    }
    assert!(server.events().is_empty());
}

#[tokio::test]
async fn url_tokens_differing_in_the_last_byte_and_path_tricks_are_refused() {
    let server = server().await;
    for (path, token) in [
        ("/webhooks/pms/mews", "porter-dev-mews-token"),
        ("/webhooks/pms/cloudbeds", "porter-dev-cloudbeds-token"),
        ("/webhooks/reservekit", "porter-dev-reservekit-token"),
    ] {
        let near = format!("{}X", &token[..token.len() - 1]);
        let answer = server
            .send(&RawRequest::post(
                &format!("{path}?token={near}"),
                b"{}".to_vec(),
            ))
            .await;
        assert_eq!(answer.status, 401, "{path}");
        let answer = server
            .send(&RawRequest::post(
                &format!("{path}?token={token}"),
                b"{}".to_vec(),
            ))
            .await;
        assert_eq!(answer.status, 200, "{path} with the right token");
    }
    for target in [
        "/webhooks/sms/../whatsapp",
        "/webhooks/sms/%2e%2e/whatsapp",
        "/webhooks%2Fwhatsapp",
        "/webhooks/whatsapp/",
        "/WEBHOOKS/whatsapp",
        "/webhooks/pms/guests/../events",
        "/api/v1/webhooks/oracle",
        "/webhooks/pms",
    ] {
        assert_eq!(
            server
                .send(&RawRequest::post(target, b"{}".to_vec()))
                .await
                .status,
            404,
            "{target}"
        );
    }
}

/// porter does not trust `Content-Type` to decide what a body is: providers label bodies
/// loosely, and the signature covers the bytes, not the label. JSON routes parse JSON whatever
/// the label; Twilio routes read a form unless the label is JSON, which selects Twilio's
/// `bodySHA256` scheme (so a form body under a JSON label is authentic but unparseable).
#[tokio::test]
async fn authentic_requests_with_odd_content_types_and_empty_bodies_get_their_documented_status() {
    let config = default_config();
    let server = server().await;
    let mut accepted = 0;
    for (path, source) in routes() {
        if signs_inside_the_body(&config, source) {
            continue;
        }
        let form = path.starts_with("/webhooks/sms");
        let body: &[u8] = if form {
            b"MessageSid=SM0123456789abcdef0123456789abcdef&From=%2B15550001111&Body=hi"
        } else {
            b"{\"hello\":\"porter\"}"
        };
        for label in [
            "text/plain",
            "application/octet-stream",
            "application/json; charset=utf-16",
        ] {
            let answer = server
                .send(&signed(&config, source, &path, label, body))
                .await;
            let expected = if form && label.starts_with("application/json") {
                400
            } else {
                200
            };
            assert_eq!(
                answer.status, expected,
                "{path} labelled {label}: {answer:?}"
            );
            accepted += usize::from(answer.status == 200);
        }
        let mut unlabelled = signed(&config, source, &path, content_type(&path), body);
        unlabelled
            .headers
            .retain(|(name, _)| !name.eq_ignore_ascii_case("content-type"));
        let answer = server.send(&unlabelled).await;
        assert_eq!(
            answer.status, 200,
            "{path} without a content type: {answer:?}"
        );
        assert_eq!(
            answer.header("porter-duplicate"),
            Some("true"),
            "{path}: the same signed bytes as before"
        );

        // A signed empty body: nothing to parse for JSON; an empty form is a form (Twilio signs
        // the URL alone) and is kept as an `unknown` event.
        let answer = server
            .send(&signed(&config, source, &path, content_type(&path), b""))
            .await;
        if form {
            assert_eq!(answer.status, 200, "{path} empty: {answer:?}");
        } else {
            assert_eq!(
                (answer.status, answer.text().as_str()),
                (400, r#"{"error":"bad_request"}"#),
                "{path} empty"
            );
        }
    }
    assert!(accepted > 0);
    assert_eq!(server.send(&RawRequest::get("/healthz")).await.status, 200);
}

/// The CloudEvents webhook handshake through the real listener: consent is given in headers
/// (the spec says status codes are not consent), and an `OPTIONS` to a route that does not
/// take one is 405.
#[tokio::test]
async fn the_cloudevents_handshake_answers_with_its_consent_headers() {
    let server = server().await;
    let handshake = RawRequest {
        method: "OPTIONS".into(),
        ..RawRequest::post("/webhooks/cloudevents", Vec::new())
    }
    .header("WebHook-Request-Origin", "eventemitter.example.com");
    let answer = server.send(&handshake).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.header("webhook-allowed-origin"),
        Some("eventemitter.example.com")
    );
    assert_eq!(answer.header("webhook-allowed-rate"), Some("*"));
    assert_eq!(answer.header("allow"), Some("POST"));
    let elsewhere = RawRequest {
        method: "OPTIONS".into(),
        ..RawRequest::post("/webhooks/stripe", Vec::new())
    }
    .header("WebHook-Request-Origin", "eventemitter.example.com");
    let answer = server.send(&elsewhere).await;
    assert_eq!(answer.status, 405, "{answer:?}");
    assert_eq!(answer.header("webhook-allowed-origin"), None);
    assert!(server.events().is_empty());
}
