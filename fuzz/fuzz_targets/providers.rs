//! Every provider: any bytes, split into a query line, a header value line and a body, through
//! handshake, verify and normalize on every endpoint, and the diagnosis of every refusal.
//! Nothing may panic, normalize returns at least one event or a rejection, and a diagnosis
//! leaves the verdict as it was.
#![no_main]

use http::{HeaderMap, HeaderValue};
use jiff::Timestamp;
use libfuzzer_sys::fuzz_target;
use porter_providers::{Context, Provider, Rejection, Request, Source, ToSign};
use serde_json::json;

const SIGNATURE_HEADERS: &[&str] = &[
    "x-hub-signature-256",
    "x-twilio-signature",
    "x-oracle-signature",
    "x-oracle-timestamp",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "stripe-signature",
    "x-sig",
    "x-ts",
    "x-id",
    "x-signature",
    "x-webhook-signature",
    "x-webhook-secret",
    "authorization",
    "x-roostsync-signature",
    "x-slack-signature",
    "x-slack-request-timestamp",
    "x-zm-signature",
    "x-zm-request-timestamp",
    "telnyx-signature-ed25519",
    "telnyx-timestamp",
    // What a diagnosis reads to rebuild the URL a sender signed.
    "host",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-prefix",
];

fuzz_target!(|data: &[u8]| {
    let mut lines = data.splitn(3, |&b| b == b'\n');
    let query = lines.next().and_then(|q| std::str::from_utf8(q).ok());
    let header = lines.next().unwrap_or_default();
    let body = lines.next().unwrap_or_default();
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(header) {
        for name in SIGNATURE_HEADERS {
            headers.insert(*name, value.clone());
        }
    }
    for provider in Provider::ALL {
        let Ok(source) = Source::new("fuzz", *provider, settings_for(*provider), &context()) else {
            continue;
        };
        for endpoint in provider.endpoints() {
            for method in endpoint.methods {
                let request = Request {
                    method,
                    endpoint: endpoint.suffix,
                    path: "/fuzz",
                    query,
                    headers: &headers,
                    body,
                };
                let _ = source.handshake(&request, jiff::Timestamp::UNIX_EPOCH);
                exercise(&source, &request);
            }
        }
    }
});

/// Verifies `request` as sent (any outcome) and diagnoses a refusal, then signs its body as
/// the provider would and normalizes what verifies: every body reaches `normalize`
/// authenticated, as in the server.
fn exercise(source: &Source, request: &Request<'_>) {
    if let Err(rejection) = source.verify(request, Timestamp::UNIX_EPOCH) {
        diagnose(source, request, rejection);
    }
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

/// The diagnosis of `rejection`, and of a signature and a timestamp refusal (so that every
/// scheme is read from these bytes); the verdict stays what it was.
fn diagnose(source: &Source, request: &Request<'_>, rejection: Rejection) {
    for refused in [
        rejection.clone(),
        Rejection::SignatureMismatch,
        Rejection::StaleTimestamp,
    ] {
        let _ = source.diagnose(request, &refused, Timestamp::UNIX_EPOCH);
    }
    assert_eq!(
        source.verify(request, Timestamp::UNIX_EPOCH).map(drop),
        Err(rejection)
    );
}

fn context() -> Context {
    Context {
        public_url: Some("https://hooks.example.com".into()),
    }
}

/// Settings valid for each provider: a literal secret that is also base64 after `whsec_`.
fn settings_for(provider: Provider) -> serde_json::Value {
    let secrets = json!(["whsec_c2VjcmV0LWtleS1ieXRlcw=="]);
    let token = "a-url-token-of-some-length";
    match provider {
        Provider::Meta => json!({"secrets": secrets, "verify_token": "token"}),
        Provider::Cloudbeds | Provider::Reservekit => json!({"url_token": token}),
        Provider::Mews => json!({"secrets": secrets, "url_token": token}),
        Provider::Apaleo => json!({"url_token": "a-url-token-of-some-length"}),
        Provider::Hostaway => json!({
            "basic": {"username": "hostaway", "password": "a-basic-password"},
        }),
        Provider::Siteminder => json!({"username": "pmsuser", "password": "a-password-of-length"}),
        Provider::CloudEvents => json!({
            "tokens": ["a-cloudevents-token"],
            "allowed_origins": ["*"],
        }),
        Provider::Adyen => json!({
            "hmac_keys": ["44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"],
        }),
        Provider::Telnyx => json!({
            "public_keys": ["A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="],
            "signing_key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        }),
        Provider::StandardWebhooks | Provider::Stripe => {
            json!({"secrets": secrets, "event_types": {"a": "reservation.created"}})
        }
        Provider::Hmac => json!({"secrets": secrets, "event_types": {"a": "reservation.created"},
            "hmac": {"header": "x-sig", "signed": "{id}.{timestamp}.{body}",
                "timestamp_header": "x-ts", "id_header": "x-id", "type_pointer": "/type"}}),
        _ => json!({"secrets": secrets}),
    }
}
