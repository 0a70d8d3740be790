//! Properties of the verifiers over generated inputs: what the provider's signer signs always
//! verifies, and a one-byte change to the signed content never does.

use http::{HeaderMap, HeaderValue, Method};
use jiff::Timestamp;
use porter_providers::{Context, Provider, Rejection, Request, Source, ToSign};
use proptest::prelude::*;

fn source(provider: Provider, secret: &str) -> Source {
    let context = Context {
        public_url: Some("https://hooks.example.com".into()),
    };
    let settings = serde_json::json!({ "secrets": [secret] });
    Source::new("s", provider, settings, &context).expect("valid")
}

fn verify(
    source: &Source,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Rejection> {
    let request = Request {
        method: &Method::POST,
        endpoint: "",
        path: "/hook",
        query,
        headers,
        body,
    };
    source.verify(&request, Timestamp::UNIX_EPOCH).map(drop)
}

/// The dedupe key of a request that verifies, or why not.
fn dedupe_key(source: &Source, query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> String {
    let request = Request {
        method: &Method::POST,
        endpoint: "",
        path: "/hook",
        query,
        headers,
        body,
    };
    source
        .verify(&request, Timestamp::UNIX_EPOCH)
        .and_then(|verified| source.normalize(verified, Timestamp::UNIX_EPOCH))
        .map_or_else(
            |r| format!("rejected: {r}"),
            |n| n.events[0].dedupe_key.clone(),
        )
}

fn signed_headers(source: &Source, content_type: &str, body: &[u8]) -> (Option<String>, HeaderMap) {
    let signed = source.sign(&ToSign {
        path: "/hook",
        query: None,
        content_type,
        body,
        now: Timestamp::UNIX_EPOCH,
    });
    let mut headers = HeaderMap::new();
    for (name, value) in signed.headers {
        headers.insert(
            http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            HeaderValue::from_str(&value).expect("header"),
        );
    }
    (signed.query, headers)
}

/// What Twilio's signature covers besides the URL: the decoded, sorted, de-duplicated names
/// and values, concatenated. An independent decoder, so the property does not trust porter's.
fn signed_content(body: &[u8]) -> Vec<u8> {
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = body
        .split(|&b| b == b'&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| {
            let (key, value) = match segment.iter().position(|&b| b == b'=') {
                Some(at) => (&segment[..at], &segment[at + 1..]),
                None => (segment, &b""[..]),
            };
            (decode(key), decode(value))
        })
        .collect();
    pairs.sort();
    pairs.dedup();
    pairs
        .into_iter()
        .flat_map(|(k, v)| k.into_iter().chain(v))
        .collect()
}

fn decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let escaped = (input[i] == b'%' && i + 2 < input.len())
            .then(|| std::str::from_utf8(&input[i + 1..i + 3]).ok())
            .flatten()
            .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (input[i], escaped) {
            (_, Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (other, None) => {
                out.push(other);
                i += 1;
            }
        }
    }
    out
}

fn form_body() -> impl Strategy<Value = Vec<u8>> {
    let key = "[A-Za-z][A-Za-z0-9]{0,12}";
    let value = proptest::collection::vec(any::<u8>(), 0..24);
    proptest::collection::vec((key, value), 1..8).prop_map(|pairs| {
        let encoded: Vec<String> = pairs
            .into_iter()
            .map(|(k, v)| {
                let v: String = v.iter().map(|b| format!("%{b:02X}")).collect();
                format!("{k}={v}")
            })
            .collect();
        encoded.join("&").into_bytes()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn meta_signed_bodies_verify_and_any_changed_byte_fails(
        body in proptest::collection::vec(any::<u8>(), 0..2048),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
        secret in "[ -~]{1,40}",
    ) {
        let source = source(Provider::Meta, &secret);
        let (_, headers) = signed_headers(&source, "application/json", &body);
        prop_assert_eq!(verify(&source, None, &headers, &body), Ok(()));
        if !body.is_empty() {
            let mut changed = body.clone();
            changed[at.index(body.len())] ^= flip;
            prop_assert_eq!(verify(&source, None, &headers, &changed), Err(Rejection::SignatureMismatch));
        }
        let mut longer = body.clone();
        longer.push(b' ');
        prop_assert_eq!(verify(&source, None, &headers, &longer), Err(Rejection::SignatureMismatch));
        let other = source_with_other_secret(Provider::Meta, &secret);
        prop_assert_eq!(verify(&other, None, &headers, &body), Err(Rejection::SignatureMismatch));
    }

    #[test]
    fn twilio_signed_forms_verify_and_changed_parameters_fail(
        body in form_body(),
        at in any::<prop::sample::Index>(),
        replacement in any::<u8>(),
        secret in "[ -~]{1,40}",
    ) {
        let source = source(Provider::Twilio, &secret);
        let (query, headers) = signed_headers(&source, "application/x-www-form-urlencoded", &body);
        prop_assert_eq!(verify(&source, query.as_deref(), &headers, &body), Ok(()));
        let mut changed = body.clone();
        changed[at.index(body.len())] = replacement;
        let result = verify(&source, query.as_deref(), &headers, &changed);
        // Twilio signs the sorted decoded names and values, concatenated without separators:
        // a change that yields the same concatenation (`+` for a space, a character moved
        // across `=`) still verifies; every other change must fail.
        if signed_content(&changed) == signed_content(&body) {
            prop_assert_eq!(result, Ok(()));
            // ...and then it is the same request: a replay, deduplicated.
            prop_assert_eq!(
                dedupe_key(&source, query.as_deref(), &headers, &changed),
                dedupe_key(&source, query.as_deref(), &headers, &body)
            );
        } else {
            prop_assert_eq!(result, Err(Rejection::SignatureMismatch));
        }
        let other = source_with_other_secret(Provider::Twilio, &secret);
        prop_assert_eq!(verify(&other, query.as_deref(), &headers, &body), Err(Rejection::SignatureMismatch));
    }

    #[test]
    fn twilio_json_bodies_verify_and_any_changed_byte_fails(
        body in proptest::collection::vec(any::<u8>(), 1..1024),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let source = source(Provider::Twilio, "token");
        let (query, headers) = signed_headers(&source, "application/json", &body);
        prop_assert!(query.as_deref().is_some_and(|q| q.starts_with("bodySHA256=")));
        prop_assert_eq!(verify(&source, query.as_deref(), &headers, &body), Ok(()));
        let mut changed = body.clone();
        changed[at.index(body.len())] ^= flip;
        prop_assert_eq!(verify(&source, query.as_deref(), &headers, &changed), Err(Rejection::BodyHashMismatch));
    }
}

fn source_with_other_secret(provider: Provider, secret: &str) -> Source {
    source(provider, &format!("{secret}x"))
}
