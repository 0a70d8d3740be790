//! Twilio: any bytes as a form or JSON body on both endpoints, through verify and normalize.
//! Nothing may panic, and normalize must return exactly one event or a rejection.
#![no_main]

use http::{HeaderMap, Method};
use libfuzzer_sys::fuzz_target;
use porter_providers::{Provider, Request, Secret, Source, SourceSettings};

fuzz_target!(|data: &[u8]| {
    let settings = SourceSettings {
        secrets: vec![Secret::new("fuzz-token")],
        public_url: Some("https://hooks.example.com".into()),
        ..SourceSettings::default()
    };
    let source = Source::new("sms", Provider::Twilio, &settings).expect("valid settings");
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
        let _ = source.verify(&request, jiff::Timestamp::UNIX_EPOCH);
        if let Ok(events) = source.normalize(&request, jiff::Timestamp::UNIX_EPOCH) {
            assert_eq!(events.len(), 1);
        }
    }
});
