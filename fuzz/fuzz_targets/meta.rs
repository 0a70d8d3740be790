//! Meta: any bytes as a body, through handshake, verify and normalize. Nothing may panic, and
//! normalize must return at least one event or a rejection.
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
        "whatsapp",
        Provider::Meta,
        serde_json::json!({"secrets": ["fuzz-secret"], "verify_token": "fuzz-token"}),
        &context,
    )
    .expect("valid settings");
    // The first bytes, up to a newline, are the query (for the GET handshake).
    let (query, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (std::str::from_utf8(&data[..at]).ok(), &data[at + 1..]),
        None => (None, data),
    };
    let mut headers = HeaderMap::new();
    if let Ok(value) = http::HeaderValue::from_bytes(&body[..body.len().min(80)]) {
        headers.insert("x-hub-signature-256", value);
    }
    for method in [Method::GET, Method::POST] {
        let request = Request {
            method: &method,
            endpoint: "",
            path: "/webhooks/whatsapp",
            query,
            headers: &headers,
            body,
        };
        let _ = source.handshake(&request, jiff::Timestamp::UNIX_EPOCH);
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
