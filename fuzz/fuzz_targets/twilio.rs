//! Twilio: any bytes as a form or JSON body on both endpoints, through verify, and signed as
//! Twilio signs, through verify and normalize.
//! Nothing may panic, and normalize must return exactly one event or a rejection.
#![no_main]

use http::{HeaderMap, Method};
use jiff::Timestamp;
use libfuzzer_sys::fuzz_target;
use porter_providers::{Context, Provider, Request, Source, ToSign};

fuzz_target!(|data: &[u8]| {
    let context = Context {
        public_url: Some("https://hooks.example.com".into()),
    };
    let source = Source::new(
        "sms",
        Provider::Twilio,
        serde_json::json!({"secrets": ["fuzz-token"]}),
        &context,
    )
    .expect("valid settings");
    let (query, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (std::str::from_utf8(&data[..at]).ok(), &data[at + 1..]),
        None => (None, data),
    };
    let mut headers = HeaderMap::new();
    if let Ok(value) = http::HeaderValue::from_bytes(&body[..body.len().min(28)]) {
        headers.insert("x-twilio-signature", value.clone());
        headers.insert("i-twilio-idempotency-token", value);
    }
    for endpoint in ["", "/status"] {
        let request = Request {
            method: &Method::POST,
            endpoint,
            path: "/webhooks/sms",
            query,
            headers: &headers,
            body,
        };
        exercise(&source, &request);
    }
});

/// Verifies `request` as sent (any outcome), then signs its body as the provider would and
/// normalizes what verifies: every body reaches `normalize` authenticated, as in the server.
fn exercise(source: &Source, request: &Request<'_>) {
    let _ = source.verify(request, Timestamp::UNIX_EPOCH);
    for content_type in ["application/json", "application/x-www-form-urlencoded"] {
        signed_and_normalized(source, request, content_type);
    }
}

fn signed_and_normalized(source: &Source, request: &Request<'_>, content_type: &str) {
    let signed = source.sign(&ToSign {
        path: request.path,
        query: request.query,
        content_type,
        body: request.body,
        now: Timestamp::UNIX_EPOCH,
    });
    let mut headers = HeaderMap::new();
    for (name, value) in &signed.headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
    let query = signed.query.as_deref().or(request.query);
    let signed_request = Request {
        query,
        headers: &headers,
        ..*request
    };
    if let Ok(verified) = source.verify(&signed_request, Timestamp::UNIX_EPOCH) {
        if let Ok(normalization) = source.normalize(verified, Timestamp::UNIX_EPOCH) {
            assert!(!normalization.events.is_empty());
        }
    }
}
