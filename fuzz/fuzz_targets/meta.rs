//! Meta: any bytes as a body, through handshake, verify and normalize. Nothing may panic, and
//! normalize must return at least one event or a rejection.
#![no_main]

use http::{HeaderMap, Method};
use libfuzzer_sys::fuzz_target;
use porter_providers::{Provider, Request, Secret, Source, SourceSettings};

fuzz_target!(|data: &[u8]| {
    let settings = SourceSettings {
        secrets: vec![Secret::new("fuzz-secret")],
        verify_token: Some(Secret::new("fuzz-token")),
        ..SourceSettings::default()
    };
    let source = Source::new("whatsapp", Provider::Meta, &settings).expect("valid settings");
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
        let _ = source.handshake(&request);
        let _ = source.verify(&request, jiff::Timestamp::UNIX_EPOCH);
        if let Ok(events) = source.normalize(&request, jiff::Timestamp::UNIX_EPOCH) {
            assert!(!events.is_empty());
        }
    }
});
