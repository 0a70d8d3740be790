//! Each named mistake, made the way it happens in a real deployment and signed the way the
//! vendor signs: verification's answer is unchanged, the diagnosis names the mistake, stays
//! within its MAC budget, and shows nothing secret.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD as BASE64, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use super::*;
use crate::settings::Context;
use crate::signing::work;
use crate::testing::{OwnedRequest, now};
use crate::{Provider, Source};

// ---- helpers ----

fn source_with(provider: Provider, settings: Value, server_public_url: Option<&str>) -> Source {
    let context = Context {
        public_url: server_public_url.map(str::to_owned),
    };
    Source::new("diagnosed", provider, settings, &context).expect("valid settings")
}

fn source(provider: Provider, settings: Value) -> Source {
    source_with(provider, settings, None)
}

/// What verification said, what the diagnosis says, and the MACs the diagnosis computed.
/// Verification is asked again afterwards: a diagnosis never changes its answer.
fn diagnosed(source: &Source, request: &OwnedRequest) -> (Rejection, Diagnosis, usize) {
    let verify = || source.verify(&request.view(), now()).map(drop);
    let rejection = verify().expect_err("the request is refused");
    let (diagnosis, macs, _) =
        work::measure(|| source.diagnose(&request.view(), &rejection, now()));
    assert!(macs <= MAX_DIAGNOSIS_MACS, "{macs} MACs");
    assert_eq!(verify(), Err(rejection.clone()));
    (rejection, diagnosis, macs)
}

/// Neither the sentence, nor the serialized form, nor `Debug` shows any form of a secret or
/// any of `also` (signatures, bodies, query tokens).
fn assert_reveals_nothing(diagnosis: &Diagnosis, keys: &[&[u8]], also: &[&str]) {
    let shown = format!(
        "{diagnosis}\n{}\n{diagnosis:?}",
        serde_json::to_string(diagnosis).expect("serializes")
    );
    for key in keys {
        let mut forms = vec![
            hex::encode(key),
            hex::encode_upper(key),
            BASE64.encode(key),
            STANDARD_NO_PAD.encode(key),
            URL_SAFE_NO_PAD.encode(key),
        ];
        forms.extend(std::str::from_utf8(key).ok().map(str::to_owned));
        for form in forms {
            assert!(!shown.contains(&form), "{shown:?} shows {form:?}");
        }
    }
    for text in also {
        assert!(!shown.contains(text), "{shown:?} shows {text:?}");
    }
}

/// 32 key bytes, not text, as a vendor's generated key is.
fn key_bytes() -> Vec<u8> {
    (0u8..32)
        .map(|i| i.wrapping_mul(73).wrapping_add(0x9d))
        .collect()
}

const JSON_BODY: &str = r#"{"event":"reservation.created","timestamp":"2024-03-15T13:59:00Z","data":{"reservationId":"R-7"}}"#;

// ---- Twilio: the URL it signed ----

const TOKEN: &str = "5f1e2d3c4b5a69788796a5b4c3d2e1f0";
const FORM: &str = "MessageSid=SM11000000000000000000000000000000&From=%2B15551234567&To=%2B15557654321&Body=Late+checkout%3F";
const PATH: &str = "/webhooks/sms";

fn twilio(public_url: &str) -> Source {
    source(
        Provider::Twilio,
        json!({"secrets": [TOKEN], "public_url": public_url}),
    )
}

/// What Twilio sends after calling `url` (query included): the form signed with the token,
/// arriving at porter as `path?query`.
fn twilio_request(url: &str, path: &str, query: Option<&str>) -> OwnedRequest {
    let signature = crate::twilio::signature(&Secret::new(TOKEN), url, FORM.as_bytes());
    let mut request =
        OwnedRequest::post(path, FORM.as_bytes()).header("x-twilio-signature", &signature);
    request.query = query.map(str::to_owned);
    request
}

fn url_mismatch(url: &str) -> Diagnosis {
    Diagnosis::UrlMismatch {
        url: url.to_owned(),
    }
}

#[test]
fn twilio_behind_a_tls_terminating_proxy() {
    // Twilio calls https; the proxy speaks http to porter, whose public_url says http.
    let request = twilio_request("https://hooks.example.com/webhooks/sms", PATH, None)
        .header("host", "hooks.example.com")
        .header("x-forwarded-proto", "https");
    let (rejection, diagnosis, _) = diagnosed(&twilio("http://hooks.example.com"), &request);
    assert_eq!(rejection, Rejection::SignatureMismatch);
    assert_eq!(
        diagnosis,
        url_mismatch("https://hooks.example.com/webhooks/sms")
    );
    assert_reveals_nothing(&diagnosis, &[TOKEN.as_bytes()], &[]);
}

#[test]
fn twilio_calling_a_host_public_url_does_not_name() {
    // The source sets no public_url: the server's default names another host.
    let source = source_with(
        Provider::Twilio,
        json!({"secrets": [TOKEN]}),
        Some("https://porter.example.net"),
    );
    let request = twilio_request("https://sms.hotel.example/webhooks/sms", PATH, None)
        .header("host", "sms.hotel.example");
    let (rejection, diagnosis, _) = diagnosed(&source, &request);
    assert_eq!(rejection, Rejection::SignatureMismatch);
    assert_eq!(
        diagnosis,
        url_mismatch("https://sms.hotel.example/webhooks/sms")
    );
}

#[test]
fn twilio_behind_a_proxy_that_strips_a_prefix() {
    let request = twilio_request("https://hooks.example.com/porter/webhooks/sms", PATH, None)
        .header("host", "porter-internal:8080")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "hooks.example.com")
        .header("x-forwarded-prefix", "/porter/");
    let (rejection, diagnosis, _) = diagnosed(&twilio("https://hooks.example.com"), &request);
    assert_eq!(rejection, Rejection::SignatureMismatch);
    assert_eq!(
        diagnosis,
        url_mismatch("https://hooks.example.com/porter/webhooks/sms")
    );
}

#[test]
fn twilio_configured_with_a_trailing_slash() {
    // Twilio's console has `/webhooks/sms/`; the proxy normalised the path porter sees.
    let request = twilio_request("https://hooks.example.com/webhooks/sms/", PATH, None);
    let (rejection, diagnosis, _) = diagnosed(&twilio("https://hooks.example.com"), &request);
    assert_eq!(rejection, Rejection::SignatureMismatch);
    assert_eq!(
        diagnosis,
        url_mismatch("https://hooks.example.com/webhooks/sms/")
    );
}

#[test]
fn twilio_calling_a_port_public_url_does_not_name() {
    let signed = "https://hooks.example.com:8443/webhooks/sms";
    // Reached directly: the Host header carries the port.
    let direct = twilio_request(signed, PATH, None).header("host", "hooks.example.com:8443");
    // Through a proxy: X-Forwarded-Port does.
    let proxied = twilio_request(signed, PATH, None)
        .header("host", "porter-internal:8080")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-port", "8443");
    for request in [direct, proxied] {
        let (rejection, diagnosis, _) = diagnosed(&twilio("https://hooks.example.com"), &request);
        assert_eq!(rejection, Rejection::SignatureMismatch);
        assert_eq!(diagnosis, url_mismatch(signed));
    }
    // An explicit default port Twilio left out is no mistake: verify accepts both.
    let request = twilio_request("https://hooks.example.com/webhooks/sms", PATH, None);
    let accepted = twilio("https://hooks.example.com:443").verify(&request.view(), now());
    assert!(accepted.is_ok());
}

#[test]
fn the_query_is_signed_but_never_shown() {
    let query = "token=tok-5e1f9a77c0ffee&lang=en";
    let request = twilio_request(
        &format!("https://hooks.example.com/webhooks/sms?{query}"),
        PATH,
        Some(query),
    )
    .header("x-forwarded-proto", "https");
    let (rejection, diagnosis, _) = diagnosed(&twilio("http://hooks.example.com"), &request);
    assert_eq!(rejection, Rejection::SignatureMismatch);
    assert_eq!(
        diagnosis,
        url_mismatch("https://hooks.example.com/webhooks/sms")
    );
    assert_reveals_nothing(
        &diagnosis,
        &[TOKEN.as_bytes()],
        &["tok-5e1f9a77c0ffee", "?"],
    );
}

#[test]
fn user_info_is_signed_but_never_shown() {
    // Twilio was given `user:pass@` (it then sends HTTP basic auth too), and signs it.
    let request = twilio_request(
        "https://twilio:pa55-w0rd-xyz@hooks.example.com/webhooks/sms",
        PATH,
        None,
    );
    let source = twilio("http://twilio:pa55-w0rd-xyz@hooks.example.com");
    let (_, diagnosis, _) = diagnosed(&source, &request);
    assert_eq!(
        diagnosis,
        url_mismatch("https://hooks.example.com/webhooks/sms")
    );
    assert_reveals_nothing(&diagnosis, &[], &["pa55-w0rd-xyz", "twilio:"]);
}

#[test]
fn twilio_json_bodies_sign_the_url_alone() {
    let body = br#"{"MessageSid":"SM11000000000000000000000000000000"}"#;
    let query = format!(
        "bodySHA256={}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body))
    );
    let url = format!("https://hooks.example.com/webhooks/sms?{query}");
    let signature = crate::twilio::signature(&Secret::new(TOKEN), &url, b"");
    let mut request = OwnedRequest::post(PATH, body.to_vec())
        .header("x-twilio-signature", &signature)
        .header("x-forwarded-proto", "https");
    request.query = Some(query);
    let source = twilio("http://hooks.example.com");
    let (rejection, diagnosis, _) = diagnosed(&source, &request);
    assert_eq!(rejection, Rejection::SignatureMismatch);
    assert_eq!(
        diagnosis,
        url_mismatch("https://hooks.example.com/webhooks/sms")
    );
    // With the right URL, a changed body fails its hash: the signature verified, so there is
    // no mistake to find, and nothing is computed.
    let https = twilio("https://hooks.example.com");
    request.body = br#"{"MessageSid":"SM2"}"#.to_vec();
    let (rejection, diagnosis, macs) = diagnosed(&https, &request);
    assert_eq!(rejection, Rejection::BodyHashMismatch);
    assert_eq!((diagnosis, macs), (Diagnosis::NoKnownVariant, 0));
}

#[test]
fn hmac_sources_that_sign_the_url_get_the_url_variants_too() {
    let secret = "vendor-secret-0a9b8c7d6e5f";
    let settings = json!({"secrets": [secret], "public_url": "http://hooks.example.com",
        "hmac": {"header": "X-Vendor-Signature", "signed": "{url}.{body}"}});
    let url = "https://hooks.example.com/vendor";
    let mac = hmac(
        Algorithm::Sha256,
        secret.as_bytes(),
        &[url.as_bytes(), b".", JSON_BODY.as_bytes()],
    );
    let request = OwnedRequest::post("/vendor", JSON_BODY)
        .header("x-vendor-signature", &hex::encode(mac))
        .header("x-forwarded-proto", "https");
    let (rejection, diagnosis, _) = diagnosed(&source(Provider::Hmac, settings), &request);
    assert_eq!(rejection, Rejection::SignatureMismatch);
    assert_eq!(diagnosis, url_mismatch(url));
}

// ---- the secret's form ----

/// A body MAC header, `prefix` + hex HMAC-SHA256 under `key`.
fn body_signed(header: &str, prefix: &str, key: &[u8]) -> OwnedRequest {
    let mac = hmac(Algorithm::Sha256, key, &[JSON_BODY.as_bytes()]);
    OwnedRequest::post("/pms", JSON_BODY).header(header, &format!("{prefix}{}", hex::encode(mac)))
}

fn secret_encoding(diagnosis: &Diagnosis) -> &str {
    match diagnosis {
        Diagnosis::SecretEncoding { detail } => detail,
        other => panic!("not a secret encoding: {other:?}"),
    }
}

#[test]
fn a_base64_pasted_secret_where_the_vendor_signs_with_the_key_bytes() {
    // The PMS shows its key as base64; the operator pasted that; the PMS MACs with the bytes.
    let key = key_bytes();
    let pasted = BASE64.encode(&key);
    let source = source(Provider::PmsWebApi, json!({"secrets": [pasted]}));
    let request = body_signed("x-webhook-signature", "", &key);
    let (rejection, diagnosis, _) = diagnosed(&source, &request);
    assert_eq!(rejection, Rejection::SignatureMismatch);
    assert!(
        secret_encoding(&diagnosis).contains("base64-decoded"),
        "{diagnosis}"
    );
    assert_reveals_nothing(&diagnosis, &[&key, pasted.as_bytes()], &[]);
    // URL-safe base64 without padding, in an `hmac` source, is found the same way.
    let pasted = URL_SAFE_NO_PAD.encode(&key);
    let settings = json!({"secrets": [pasted], "hmac": {"header": "X-Vendor-Signature"}});
    let request = body_signed("x-vendor-signature", "", &key);
    let (_, diagnosis, _) = diagnosed(&self::source(Provider::Hmac, settings), &request);
    assert!(
        secret_encoding(&diagnosis).contains("base64-decoded"),
        "{diagnosis}"
    );
}

#[test]
fn a_hex_pasted_secret_where_the_vendor_signs_with_the_key_bytes() {
    let key = key_bytes();
    let pasted = hex::encode(&key);
    let source = source(
        Provider::Roostsync,
        json!({"secrets": ["another-secret", pasted]}),
    );
    let request = body_signed("x-roostsync-signature", "sha256=", &key);
    let (rejection, diagnosis, _) = diagnosed(&source, &request);
    assert_eq!(rejection, Rejection::SignatureMismatch);
    assert!(
        secret_encoding(&diagnosis).contains("hex-decoded"),
        "{diagnosis}"
    );
    assert_reveals_nothing(&diagnosis, &[&key, pasted.as_bytes()], &[]);
}

const STRIPE_SECRET: &str = "whsec_3kQp9Zt7VbN2xW4rL8mC1yH6";

fn stripe_header(key: &str, timestamp: i64) -> String {
    let mac = hmac(
        Algorithm::Sha256,
        key.as_bytes(),
        &[timestamp.to_string().as_bytes(), b".", JSON_BODY.as_bytes()],
    );
    format!("t={timestamp},v1={}", hex::encode(mac))
}

fn stripe_request(header: &str) -> OwnedRequest {
    OwnedRequest::post("/stripe", JSON_BODY).header("stripe-signature", header)
}

#[test]
fn a_stripe_secret_with_whsec_stripped() {
    let stripped = STRIPE_SECRET.strip_prefix("whsec_").expect("prefix");
    let source = source(Provider::Stripe, json!({"secrets": [stripped]}));
    let request = stripe_request(&stripe_header(STRIPE_SECRET, now().as_second()));
    let (rejection, diagnosis, _) = diagnosed(&source, &request);
    assert_eq!(rejection, Rejection::SignatureMismatch);
    assert!(
        secret_encoding(&diagnosis).contains("`whsec_` prepended"),
        "{diagnosis}"
    );
    assert_reveals_nothing(
        &diagnosis,
        &[STRIPE_SECRET.as_bytes(), stripped.as_bytes()],
        &[],
    );
}

const SW_KEY_TEXT: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn standard_request(key: &[u8], timestamp: i64) -> OwnedRequest {
    let [(_, id), (_, timestamp), (_, signature)] =
        crate::standard_webhooks::signature_headers(key, "msg_2a", timestamp, JSON_BODY.as_bytes());
    OwnedRequest::post("/sw", JSON_BODY)
        .header("webhook-id", &id)
        .header("webhook-timestamp", &timestamp)
        .header("webhook-signature", &signature)
}

#[test]
fn a_standard_webhooks_sender_that_keys_with_the_secret_text() {
    // A home-grown sender MACs with the secret's characters instead of decoding it.
    let source = source(
        Provider::StandardWebhooks,
        json!({"secrets": [SW_KEY_TEXT]}),
    );
    let request = standard_request(SW_KEY_TEXT.as_bytes(), now().as_second());
    let (rejection, diagnosis, _) = diagnosed(&source, &request);
    assert_eq!(rejection, Rejection::SignatureMismatch);
    assert!(
        secret_encoding(&diagnosis).contains("used as text"),
        "{diagnosis}"
    );
    assert_reveals_nothing(&diagnosis, &[SW_KEY_TEXT.as_bytes()], &[]);
    // Or with the characters after `whsec_`.
    let bare = SW_KEY_TEXT.strip_prefix("whsec_").expect("prefix");
    let request = standard_request(bare.as_bytes(), now().as_second());
    let (_, diagnosis, _) = diagnosed(&source, &request);
    assert!(
        secret_encoding(&diagnosis).contains("after the secret's `whsec_`"),
        "{diagnosis}"
    );
}

#[test]
fn a_standard_webhooks_key_configured_as_hex() {
    // The operator wrote `whsec_` + the hex of the key: valid base64 too, so porter accepted
    // it and decodes it to other bytes.
    let key = key_bytes();
    let configured = format!("whsec_{}", hex::encode(&key));
    let source = source(Provider::StandardWebhooks, json!({"secrets": [configured]}));
    let request = standard_request(&key, now().as_second());
    let (rejection, diagnosis, _) = diagnosed(&source, &request);
    assert_eq!(rejection, Rejection::SignatureMismatch);
    assert!(
        secret_encoding(&diagnosis).contains("hex-decoded"),
        "{diagnosis}"
    );
    assert_reveals_nothing(&diagnosis, &[&key, configured.as_bytes()], &[]);
}

// ---- the signature's encoding ----

#[test]
fn a_base64_signature_where_the_source_expects_hex() {
    let secret = "vendor-secret-0a9b8c7d6e5f";
    let settings = json!({"secrets": [secret],
        "hmac": {"header": "X-Vendor-Signature", "encoding": "hex"}});
    let mac = hmac(
        Algorithm::Sha256,
        secret.as_bytes(),
        &[JSON_BODY.as_bytes()],
    );
    let sent = BASE64.encode(&mac);
    let request = OwnedRequest::post("/vendor", JSON_BODY).header("x-vendor-signature", &sent);
    let (rejection, diagnosis, _) = diagnosed(&source(Provider::Hmac, settings), &request);
    // Not hex of the right length: malformed to verification.
    assert_eq!(
        rejection,
        Rejection::MalformedSignature("x-vendor-signature".into())
    );
    assert_eq!(
        diagnosis,
        Diagnosis::SignatureEncoding {
            found: "base64",
            expected: "hex"
        }
    );
    assert_reveals_nothing(&diagnosis, &[secret.as_bytes(), &mac], &[&sent]);
}

#[test]
fn a_hex_signature_where_mews_pos_sends_base64() {
    let secret = "mews-pos-secret-7c1d";
    let mac = hmac(
        Algorithm::Sha256,
        secret.as_bytes(),
        &[JSON_BODY.as_bytes()],
    );
    let request = OwnedRequest::post("/mews", JSON_BODY).header("x-signature", &hex::encode(mac));
    let source = source(Provider::Mews, json!({"secrets": [secret]}));
    let (rejection, diagnosis, _) = diagnosed(&source, &request);
    assert_eq!(
        rejection,
        Rejection::MalformedSignature("x-signature".into())
    );
    assert_eq!(
        diagnosis,
        Diagnosis::SignatureEncoding {
            found: "hex",
            expected: "base64"
        }
    );
}

// ---- the algorithm ----

#[test]
fn an_hmac_source_configured_sha256_while_the_vendor_signs_sha1() {
    let secret = "vendor-secret-0a9b8c7d6e5f";
    let settings = json!({"secrets": [secret], "hmac": {"header": "X-Vendor-Signature"}});
    let mac = hmac(Algorithm::Sha1, secret.as_bytes(), &[JSON_BODY.as_bytes()]);
    let request =
        OwnedRequest::post("/vendor", JSON_BODY).header("x-vendor-signature", &hex::encode(&mac));
    let (rejection, diagnosis, _) = diagnosed(&source(Provider::Hmac, settings), &request);
    assert_eq!(
        rejection,
        Rejection::MalformedSignature("x-vendor-signature".into())
    );
    assert_eq!(
        diagnosis,
        Diagnosis::Algorithm {
            found: "sha1",
            expected: "sha256"
        }
    );
    assert_reveals_nothing(&diagnosis, &[secret.as_bytes(), &mac], &[]);
}

#[test]
fn a_meta_header_carrying_an_hmac_sha1() {
    // The legacy X-Hub-Signature's MAC, under the new header's name.
    let secret = "meta-app-secret-1b2c3d";
    let mac = hmac(Algorithm::Sha1, secret.as_bytes(), &[JSON_BODY.as_bytes()]);
    let request = OwnedRequest::post("/meta", JSON_BODY).header(
        "x-hub-signature-256",
        &format!("sha256={}", hex::encode(mac)),
    );
    let source = source(Provider::Meta, json!({"secrets": [secret]}));
    let (_, diagnosis, _) = diagnosed(&source, &request);
    assert_eq!(
        diagnosis,
        Diagnosis::Algorithm {
            found: "sha1",
            expected: "sha256"
        }
    );
}

#[test]
fn a_twilio_signature_made_with_sha256() {
    let url = "https://hooks.example.com/webhooks/sms";
    let params = b"BodyLate checkout?From+15551234567MessageSidSM11000000000000000000000000000000To+15557654321";
    let mac = hmac(
        Algorithm::Sha256,
        TOKEN.as_bytes(),
        &[url.as_bytes(), params],
    );
    let request =
        OwnedRequest::post(PATH, FORM.as_bytes()).header("x-twilio-signature", &BASE64.encode(mac));
    let (_, diagnosis, _) = diagnosed(&twilio("https://hooks.example.com"), &request);
    assert_eq!(
        diagnosis,
        Diagnosis::Algorithm {
            found: "sha256",
            expected: "sha1"
        }
    );
}

// ---- stale timestamps: the skew ----

fn clock_skew(source: &Source, request: &OwnedRequest) -> i64 {
    let (rejection, diagnosis, macs) = diagnosed(source, request);
    assert_eq!(rejection, Rejection::StaleTimestamp);
    // The signature is checked as configured at the sent timestamp: one MAC per secret.
    assert_eq!(macs, 1);
    match diagnosis {
        Diagnosis::ClockSkew { seconds } => seconds,
        other => panic!("not a clock skew: {other:?}"),
    }
}

/// `source`'s own signature of `body` at `path`, as of `at` (Unix seconds).
fn signed_at(source: &Source, path: &str, body: &str, at: i64) -> OwnedRequest {
    let signed = source.sign(&crate::ToSign {
        path,
        query: None,
        content_type: "application/json",
        body: body.as_bytes(),
        now: Timestamp::from_second(at).expect("time"),
    });
    let mut request = OwnedRequest::post(path, body.as_bytes());
    for (name, value) in &signed.headers {
        request = request.header(name, value);
    }
    request
}

#[test]
fn a_sender_clock_ten_minutes_ahead() {
    let source = source(Provider::Stripe, json!({"secrets": [STRIPE_SECRET]}));
    let ahead = now().as_second() + 600;
    let request = stripe_request(&stripe_header(STRIPE_SECRET, ahead));
    assert_eq!(clock_skew(&source, &request), 600);
    let diagnosis = Diagnosis::ClockSkew { seconds: 600 };
    assert!(diagnosis.to_string().contains("600 s ahead"), "{diagnosis}");
}

#[test]
fn late_or_replayed_requests_are_behind() {
    let standard = source(
        Provider::StandardWebhooks,
        json!({"secrets": [SW_KEY_TEXT]}),
    );
    let key = crate::standard_webhooks::decode_secret(SW_KEY_TEXT).expect("key");
    let request = standard_request(&key, now().as_second() - 900);
    assert_eq!(clock_skew(&standard, &request), -900);
    let diagnosis = Diagnosis::ClockSkew { seconds: -900 };
    assert!(
        diagnosis.to_string().contains("900 s behind"),
        "{diagnosis}"
    );

    let oracle = source(Provider::OracleOhip, json!({"secrets": [STRIPE_SECRET]}));
    let request = signed_at(
        &oracle,
        "/ohip/reservations",
        JSON_BODY,
        now().as_second() - 3600,
    );
    assert_eq!(clock_skew(&oracle, &request), -3600);

    let settings = json!({"secrets": ["vendor-secret-0a9b8c7d6e5f"], "hmac": {
        "header": "X-Vendor-Signature", "signed": "{timestamp}.{body}",
        "timestamp_header": "X-Vendor-Timestamp"}});
    let hmac_source = source(Provider::Hmac, settings);
    let request = signed_at(&hmac_source, "/vendor", JSON_BODY, now().as_second() + 301);
    assert_eq!(clock_skew(&hmac_source, &request), 301);
}

/// A forgery with a timestamp a day ahead (or behind) is no clock skew: naming one would have
/// the operator widen the window for it. Its signature does not verify at the timestamp it
/// sent, so it is what any refused signature is: a known mistake, or none.
#[test]
fn a_stale_forgery_is_never_a_clock_skew() {
    let source = source(Provider::Stripe, json!({"secrets": [STRIPE_SECRET]}));
    for offset in [86_400, -86_400, 301] {
        let at = now().as_second() + offset;
        let forged = stripe_request(&stripe_header("whsec_a-forgers-guess-of-the-secret", at));
        let (rejection, diagnosis, macs) = diagnosed(&source, &forged);
        assert_eq!(rejection, Rejection::StaleTimestamp);
        assert_eq!(diagnosis, Diagnosis::NoKnownVariant, "{offset}");
        assert!(macs <= MAX_DIAGNOSIS_MACS);
        let garbage = stripe_request(&format!("t={at},v1=00"));
        assert_eq!(diagnosed(&source, &garbage).1, Diagnosis::NoKnownVariant);
    }
    // A stale request signed with a known mistake is named by that mistake.
    let stripped = STRIPE_SECRET.strip_prefix("whsec_").expect("prefix");
    let at = now().as_second() + 86_400;
    let (_, diagnosis, _) = diagnosed(&source, &stripe_request(&stripe_header(stripped, at)));
    assert_eq!(diagnosis.code(), "secret_encoding", "{diagnosis:?}");
}

// ---- nothing known: a wrong secret, and the bound ----

#[test]
fn a_genuinely_wrong_secret_is_no_known_variant() {
    let source = source(Provider::Stripe, json!({"secrets": [STRIPE_SECRET]}));
    let header = stripe_header("whsec_someone-elses-secret", now().as_second());
    let (rejection, diagnosis, macs) = diagnosed(&source, &stripe_request(&header));
    assert_eq!(rejection, Rejection::SignatureMismatch);
    assert_eq!(diagnosis, Diagnosis::NoKnownVariant);
    assert!(macs > 0);
    let forged = BASE64.encode(b"not the right mac!!!");
    let request = OwnedRequest::post(PATH, FORM).header("x-twilio-signature", &forged);
    let wrong = twilio("https://hooks.example.com");
    assert_eq!(diagnosed(&wrong, &request).1, Diagnosis::NoKnownVariant);
}

/// Ten secrets of every form, and signatures of every shape: more variants than the budget.
fn many_secrets() -> Vec<String> {
    (0..10)
        .map(|i| {
            format!(
                "whsec_{}",
                BASE64.encode(format!("secret number {i:02} bytes"))
            )
        })
        .collect()
}

#[test]
fn the_worst_case_stays_within_the_bound() {
    let at = now().as_second();
    // Stripe: eight `v1` of every length and encoding, ten secrets.
    let shapes = [
        hex::encode([1u8; 32]),
        BASE64.encode([2u8; 32]),
        hex::encode([3u8; 20]),
        hex::encode([4u8; 64]),
        hex::encode([5u8; 32]),
        BASE64.encode([6u8; 20]),
        hex::encode([7u8; 20]),
        hex::encode([8u8; 64]),
    ];
    let header = format!(
        "t={at},{}",
        shapes
            .iter()
            .map(|s| format!("v1={s}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let stripe = source(Provider::Stripe, json!({"secrets": many_secrets()}));
    let (_, diagnosis, macs) = diagnosed(&stripe, &stripe_request(&header));
    assert_eq!(
        (diagnosis, macs),
        (Diagnosis::NoKnownVariant, MAX_DIAGNOSIS_MACS)
    );

    // Twilio: ten tokens, every forwarding header, a query.
    let twilio = source(
        Provider::Twilio,
        json!({"secrets": many_secrets(), "public_url": "https://hooks.example.com/base"}),
    );
    let request = twilio_request("https://elsewhere.example/x", PATH, Some("a=1"))
        .header("host", "porter-internal:8080")
        .header("x-forwarded-proto", "http")
        .header("x-forwarded-host", "proxy.example:8443")
        .header("x-forwarded-port", "9443")
        .header("x-forwarded-prefix", "/p");
    let rejection = twilio.verify(&request.view(), now()).map(drop);
    let rejection = rejection.expect_err("refused");
    let (diagnosis, macs, bytes) =
        work::measure(|| twilio.diagnose(&request.view(), &rejection, now()));
    assert_eq!(
        (diagnosis, macs),
        (Diagnosis::NoKnownVariant, MAX_DIAGNOSIS_MACS)
    );
    // Linear in the request: each MAC covers a URL and the parameters, nothing more.
    assert!(
        bytes <= MAX_DIAGNOSIS_MACS * (FORM.len() + 100),
        "{bytes} bytes"
    );

    // Standard Webhooks: eight signatures, ten keys.
    let list = shapes
        .iter()
        .map(|s| format!("v1,{s}"))
        .collect::<Vec<_>>()
        .join(" ");
    let standard = source(
        Provider::StandardWebhooks,
        json!({"secrets": many_secrets()}),
    );
    let request = OwnedRequest::post("/sw", JSON_BODY)
        .header("webhook-id", "msg_1")
        .header("webhook-timestamp", &at.to_string())
        .header("webhook-signature", &list);
    let (_, diagnosis, macs) = diagnosed(&standard, &request);
    assert_eq!(diagnosis, Diagnosis::NoKnownVariant);
    assert!(macs <= MAX_DIAGNOSIS_MACS);
}

#[test]
fn refusals_with_nothing_to_try_cost_nothing() {
    let cloudbeds = source(
        Provider::Cloudbeds,
        json!({"url_token": "a-url-token-of-some-length"}),
    );
    let pms = source(Provider::Pms, json!({"secrets": ["pms-shared-secret"]}));
    let meta = source(
        Provider::Meta,
        json!({"secrets": ["meta-app-secret-1b2c3d"]}),
    );
    let request = OwnedRequest::post("/x", JSON_BODY).header("x-webhook-secret", "nope");
    for (source, expected) in [
        (&cloudbeds, Rejection::BadUrlToken),
        (&pms, Rejection::BadSharedSecret),
        (
            &meta,
            Rejection::MissingSignature("x-hub-signature-256".into()),
        ),
    ] {
        let (rejection, diagnosis, macs) = diagnosed(source, &request);
        assert_eq!(rejection, expected);
        assert_eq!((diagnosis, macs), (Diagnosis::NoKnownVariant, 0));
        // Asked about a signature mismatch anyway, they still have nothing to try.
        let (diagnosis, macs, _) = work::measure(|| {
            source.diagnose(&request.view(), &Rejection::SignatureMismatch, now())
        });
        assert_eq!((diagnosis, macs), (Diagnosis::NoKnownVariant, 0));
    }
}

// ---- the answer's form ----

#[test]
fn codes_are_stable_and_serialized_as_code() {
    let all = [
        url_mismatch("https://h/p"),
        Diagnosis::SecretEncoding { detail: "d".into() },
        Diagnosis::SignatureEncoding {
            found: "base64",
            expected: "hex",
        },
        Diagnosis::Algorithm {
            found: "sha1",
            expected: "sha256",
        },
        Diagnosis::ClockSkew { seconds: -5 },
        Diagnosis::NoKnownVariant,
    ];
    let codes: Vec<&str> = all.iter().map(Diagnosis::code).collect();
    assert_eq!(
        codes,
        [
            "url_mismatch",
            "secret_encoding",
            "signature_encoding",
            "algorithm",
            "clock_skew",
            "no_known_variant"
        ]
    );
    for diagnosis in &all {
        let value = serde_json::to_value(diagnosis).expect("serializes");
        assert_eq!(value["code"], diagnosis.code());
        assert!(!diagnosis.to_string().is_empty());
    }
    assert_eq!(
        serde_json::to_value(&all[0]).expect("serializes"),
        json!({"code": "url_mismatch", "url": "https://h/p"})
    );
    assert_eq!(
        serde_json::to_value(&all[4]).expect("serializes"),
        json!({"code": "clock_skew", "seconds": -5})
    );
}

#[test]
fn url_candidates_come_in_a_fixed_order_without_repeats() {
    let bases = [
        "https://hooks.example.com".to_owned(),
        "https://hooks.example.com:443".to_owned(),
    ];
    let request = OwnedRequest::post(PATH, FORM)
        .header("host", "sms.hotel.example")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-prefix", "/porter");
    let view = request.view();
    let candidates = urls::candidates(&SignedUrl::new(&bases, &view));
    let shown: Vec<&str> = candidates.iter().map(|c| c.shown.as_str()).collect();
    assert_eq!(
        shown,
        [
            // The scheme toggled, the Host header's (both schemes), the proxy's.
            "http://hooks.example.com/webhooks/sms",
            "https://sms.hotel.example/webhooks/sms",
            "http://sms.hotel.example/webhooks/sms",
            "https://hooks.example.com/porter/webhooks/sms",
            // Ports toggled (the configured one with :443 is verify's own).
            "http://hooks.example.com:80/webhooks/sms",
            "https://sms.hotel.example:443/webhooks/sms",
            "http://sms.hotel.example:80/webhooks/sms",
            "https://hooks.example.com:443/porter/webhooks/sms",
            // A trailing slash.
            "https://hooks.example.com/webhooks/sms/",
            "http://hooks.example.com/webhooks/sms/",
            "https://sms.hotel.example/webhooks/sms/",
            "http://sms.hotel.example/webhooks/sms/",
            "https://hooks.example.com/porter/webhooks/sms/",
        ]
    );
    // Headers that say nothing usable add nothing.
    let junk = OwnedRequest::post(PATH, FORM)
        .header("host", "user:pw@evil.example")
        .header("x-forwarded-proto", "gopher")
        .header("x-forwarded-port", "99999")
        .header("x-forwarded-prefix", "no-slash");
    let view = junk.view();
    let candidates = urls::candidates(&SignedUrl::new(&bases, &view));
    assert!(
        candidates
            .iter()
            .all(|c| c.shown.starts_with("http://hooks.example.com")
                || c.shown.starts_with("https://hooks.example.com"))
    );
}

#[test]
fn bird_behind_a_tls_terminating_proxy() {
    // Bird signs the https URL it called; porter's public_url says http.
    let body = br#"{"service":"channels","event":"sms.inbound","payload":{"id":"m1"}}"#;
    let at = now().as_second().to_string();
    let signature = crate::bird::signature(
        &crate::Secret::new("bird-key"),
        &at,
        "https://hooks.example.com/webhooks/bird",
        body,
    );
    let request = OwnedRequest::post("/webhooks/bird", body.to_vec())
        .header("messagebird-signature", &signature)
        .header("messagebird-request-timestamp", &at)
        .header("host", "hooks.example.com")
        .header("x-forwarded-proto", "https");
    let source = source(
        Provider::Bird,
        json!({"secrets": ["bird-key"], "public_url": "http://hooks.example.com"}),
    );
    let (rejection, diagnosis, _) = diagnosed(&source, &request);
    assert_eq!(rejection, Rejection::SignatureMismatch);
    assert_eq!(
        diagnosis,
        url_mismatch("https://hooks.example.com/webhooks/bird")
    );
    assert_reveals_nothing(&diagnosis, &[b"bird-key"], &[]);
}
