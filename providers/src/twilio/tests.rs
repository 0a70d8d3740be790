use serde_json::{Value, json};

use super::*;
use crate::Secret;
use crate::event::EventType;
use crate::testing::{Check, OwnedRequest, origin};

const TOKEN: &str = "twilio-auth-token";
const PUBLIC_URL: &str = "https://hooks.example.com";
const PATH: &str = "/webhooks/sms";

fn twilio_at(public_url: &str, secrets: &[&str]) -> Twilio {
    let mut settings = settings(secrets);
    settings.public_url = Some(public_url.to_owned());
    Twilio::from_settings(settings, &crate::settings::Context::default()).expect("valid settings")
}

fn twilio(secrets: &[&str]) -> Twilio {
    twilio_at(PUBLIC_URL, secrets)
}

fn form_request(path: &str, query: Option<&str>, body: &str, signature: &str) -> OwnedRequest {
    let mut request =
        OwnedRequest::post(path, body.as_bytes()).header("x-twilio-signature", signature);
    request.query = query.map(str::to_owned);
    request.endpoint = if path.ends_with("/status") {
        "/status"
    } else {
        ""
    };
    request
}

/// A request signed the way Twilio signs it, against the URL Twilio called.
fn signed(url: &str, path: &str, query: Option<&str>, body: &str, secret: &str) -> OwnedRequest {
    let signature = signature(&Secret::new(secret), url, body.as_bytes());
    form_request(path, query, body, &signature)
}

const SID11: &str = "SM11000000000000000000000000000000";

const INCOMING: &str = "ToCountry=US&ToState=CA&SmsMessageSid=SM11000000000000000000000000000000&NumMedia=0&ToCity=&FromZip=&SmsSid=SM11000000000000000000000000000000\
&FromState=NY&SmsStatus=received&FromCity=&Body=Can+I+get+a+late+checkout%3F&FromCountry=US\
&To=%2B15557654321&ToZip=&NumSegments=1&MessageSid=SM11000000000000000000000000000000&AccountSid=AC99&From=%2B15551234567&ApiVersion=2010-04-01";

fn normalize_request(request: &OwnedRequest) -> Vec<Normalized> {
    normalize(&request.view(), &origin("sms", "twilio")).expect("normalizes")
}

fn data(event: &Normalized) -> Value {
    serde_json::to_value(&event.event).expect("serializes")["data"].clone()
}

// ---- verify: the SDKs' known-answer vectors ----

/// twilio-python `tests/unit/test_request_validator.py` and twilio-node's validation spec.
const SDK_TOKEN: &str = "12345";
const SDK_PARAMS: &str = "From=%2B14158675309&CallSid=CA1234567890ABCDE&To=%2B18005551212&Caller=%2B14158675309&Digits=1234";

#[test]
fn matches_the_sdk_vector_for_form_parameters() {
    let expected = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
    assert_eq!(
        signature(
            &Secret::new(SDK_TOKEN),
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            SDK_PARAMS.as_bytes()
        ),
        expected
    );
    let verifier = twilio_at("https://mycompany.com", &[SDK_TOKEN]);
    let request = form_request("/myapp.php", Some("foo=1&bar=2"), SDK_PARAMS, expected);
    assert_eq!(
        verifier.check(&request.view(), crate::testing::now()),
        Ok(())
    );
}

#[test]
fn matches_the_sdk_vector_for_a_json_body() {
    let body = r#"{"property": "value", "boolean": true}"#;
    let hash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
    assert_eq!(
        String::from_utf8(sha256_hex(body.as_bytes())).expect("hex"),
        hash
    );
    let verifier = twilio_at("https://mycompany.com", &[SDK_TOKEN]);
    let query = format!("foo=1&bar=2&bodySHA256={hash}");
    let request = form_request(
        "/myapp.php",
        Some(&query),
        body,
        "a9nBmqA0ju/hNViExpshrM61xv4=",
    );
    assert_eq!(
        verifier.check(&request.view(), crate::testing::now()),
        Ok(())
    );

    let mut tampered = request;
    tampered.body = br#"{"property": "value", "boolean": false}"#.to_vec();
    assert_eq!(
        verifier.check(&tampered.view(), crate::testing::now()),
        Err(Rejection::BodyHashMismatch)
    );
}

#[test]
fn matches_the_sdk_vectors_for_ports_repeated_values_and_userinfo() {
    let query = Some("foo=1&bar=2");
    // (configured public URL, form body, signature from the SDK test suites)
    let cases = [
        // Signed over https://mycompany.com:443/...: the default port added.
        (
            "https://mycompany.com",
            SDK_PARAMS,
            "kvajT1Ptam85bY51eRf/AJRuM3w=",
        ),
        // Signed over http://mycompany.com:1234/...: a non-default port.
        (
            "http://mycompany.com:1234",
            SDK_PARAMS,
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
        ),
        // Signed over http://mycompany.com:80/...
        (
            "http://mycompany.com",
            SDK_PARAMS,
            "0ZXoZLH/DfblKGATFgpif+LLRf4=",
        ),
        // A repeated key: values sorted (and de-duplicated).
        (
            "https://mycompany.com",
            "Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234&Digits=1234",
            "IK+Dwps556ElfBT0I3Rgjkr1wJU=",
        ),
        // Credentials in the URL are part of what Twilio signs.
        (
            "https://user:pass@mycompany.com",
            SDK_PARAMS,
            "CukzLTc1tT5dXEDIHm/tKBanW10=",
        ),
        (
            "https://user@mycompany.com",
            SDK_PARAMS,
            "2YRLlVAflCqxaNicjMpJcSTgzSs=",
        ),
    ];
    for (public_url, body, expected) in cases {
        let verifier = twilio_at(public_url, &[SDK_TOKEN]);
        let request = form_request("/myapp.php", query, body, expected);
        assert_eq!(
            verifier.check(&request.view(), crate::testing::now()),
            Ok(()),
            "{public_url} {body}"
        );
    }
}

#[test]
fn matches_the_sdk_vector_for_an_empty_json_body_signed_with_the_port() {
    // twilio-node: this vector was computed over the :443 form of the URL.
    let hash = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    let query = format!("foo=1&bar=2&bodySHA256={hash}");
    let request = form_request(
        "/myapp.php",
        Some(&query),
        "{}",
        "Ldidvp12m26NI7eqEvxnEpkd9Hc=",
    );
    let verifier = twilio_at("https://mycompany.com", &[SDK_TOKEN]);
    assert_eq!(
        verifier.check(&request.view(), crate::testing::now()),
        Ok(())
    );
}

// ---- verify: positive, tamper, wrong secret, rotation, headers ----

#[test]
fn accepts_a_request_signed_over_url_and_sorted_params() {
    let request = signed(
        "https://hooks.example.com/webhooks/sms",
        PATH,
        None,
        INCOMING,
        TOKEN,
    );
    assert_eq!(
        twilio(&[TOKEN]).check(&request.view(), crate::testing::now()),
        Ok(())
    );
}

#[test]
fn rejects_one_flipped_byte_in_the_body_path_or_query() {
    let url = "https://hooks.example.com/webhooks/sms?a=1";
    let base = signed(url, PATH, Some("a=1"), INCOMING, TOKEN);
    assert_eq!(
        twilio(&[TOKEN]).check(&base.view(), crate::testing::now()),
        Ok(())
    );

    let mut body = signed(url, PATH, Some("a=1"), INCOMING, TOKEN);
    let at = body.body.iter().position(|&b| b == b'l').expect("an l");
    body.body[at] = b'L';
    let mut query = signed(url, PATH, Some("a=1"), INCOMING, TOKEN);
    query.query = Some("a=2".into());
    let mut path = signed(url, PATH, Some("a=1"), INCOMING, TOKEN);
    path.path = "/webhooks/smS".into();
    for request in [body, query, path] {
        assert_eq!(
            twilio(&[TOKEN]).check(&request.view(), crate::testing::now()),
            Err(Rejection::SignatureMismatch)
        );
    }
}

#[test]
fn rejects_another_auth_token() {
    let request = signed(
        "https://hooks.example.com/webhooks/sms",
        PATH,
        None,
        INCOMING,
        "other",
    );
    assert_eq!(
        twilio(&[TOKEN]).check(&request.view(), crate::testing::now()),
        Err(Rejection::SignatureMismatch)
    );
}

#[test]
fn accepts_primary_and_secondary_tokens_during_rotation() {
    let verifier = twilio(&["primary", "secondary"]);
    for token in ["primary", "secondary"] {
        let request = signed(
            "https://hooks.example.com/webhooks/sms",
            PATH,
            None,
            INCOMING,
            token,
        );
        assert_eq!(
            verifier.check(&request.view(), crate::testing::now()),
            Ok(()),
            "{token}"
        );
    }
}

#[test]
fn accepts_the_url_with_and_without_the_default_port() {
    for signed_url in [
        "https://hooks.example.com/webhooks/sms",
        "https://hooks.example.com:443/webhooks/sms",
    ] {
        for configured in ["https://hooks.example.com", "https://hooks.example.com:443"] {
            let request = signed(signed_url, PATH, None, INCOMING, TOKEN);
            assert_eq!(
                twilio_at(configured, &[TOKEN]).check(&request.view(), crate::testing::now()),
                Ok(()),
                "signed {signed_url}, configured {configured}"
            );
        }
    }
    let wrong_port = signed(
        "https://hooks.example.com:8443/webhooks/sms",
        PATH,
        None,
        INCOMING,
        TOKEN,
    );
    assert_eq!(
        twilio(&[TOKEN]).check(&wrong_port.view(), crate::testing::now()),
        Err(Rejection::SignatureMismatch)
    );
}

#[test]
fn keeps_a_path_prefix_and_userinfo_of_the_public_url() {
    let url = "https://user:pass@edge.example.com/porter/webhooks/sms";
    let request = signed(url, PATH, None, INCOMING, TOKEN);
    let verifier = twilio_at("https://user:pass@edge.example.com/porter/", &[TOKEN]);
    assert_eq!(
        verifier.check(&request.view(), crate::testing::now()),
        Ok(())
    );
}

#[test]
fn signs_the_query_string_exactly_as_received() {
    let query = "Body=It%27s+amazing&b=2&a=1";
    let url = format!("https://hooks.example.com/webhooks/sms?{query}");
    let request = signed(&url, PATH, Some(query), INCOMING, TOKEN);
    assert_eq!(
        twilio(&[TOKEN]).check(&request.view(), crate::testing::now()),
        Ok(())
    );
    let mut reordered = signed(&url, PATH, Some(query), INCOMING, TOKEN);
    reordered.query = Some("b=2&a=1&Body=It%27s+amazing".into());
    assert_eq!(
        twilio(&[TOKEN]).check(&reordered.view(), crate::testing::now()),
        Err(Rejection::SignatureMismatch)
    );
}

#[test]
fn repeated_parameters_sign_sorted_and_deduplicated() {
    // What the SDKs compute for MediaUrl repeated: key + each sorted distinct value.
    let body = "To=%2B1&MediaUrl=b&From=%2B2&MediaUrl=a&MediaUrl=b";
    let url = "https://hooks.example.com/webhooks/sms";
    let content = format!("{url}From+2MediaUrlaMediaUrlbTo+1");
    let expected = BASE64.encode(hmac(
        Algorithm::Sha1,
        TOKEN.as_bytes(),
        &[content.as_bytes()],
    ));
    assert_eq!(
        signature(&Secret::new(TOKEN), url, body.as_bytes()),
        expected
    );
    let request = form_request(PATH, None, body, &expected);
    assert_eq!(
        twilio(&[TOKEN]).check(&request.view(), crate::testing::now()),
        Ok(())
    );

    // The SDKs drop repeated identical pairs; a signature over the kept pair is not Twilio's,
    // and accepting it would let a replay add pairs to reshape the signed text.
    let kept = format!("{url}From+2MediaUrlaMediaUrlbMediaUrlbTo+1");
    let kept = BASE64.encode(hmac(Algorithm::Sha1, TOKEN.as_bytes(), &[kept.as_bytes()]));
    let request = form_request(PATH, None, body, &kept);
    assert_eq!(
        twilio(&[TOKEN]).check(&request.view(), crate::testing::now()),
        Err(Rejection::SignatureMismatch)
    );
}

#[test]
fn rejects_missing_repeated_and_malformed_signature_headers() {
    let good = signature(
        &Secret::new(TOKEN),
        "https://hooks.example.com/webhooks/sms",
        INCOMING.as_bytes(),
    );
    let missing = OwnedRequest::post(PATH, INCOMING.as_bytes());
    assert_eq!(
        twilio(&[TOKEN]).check(&missing.view(), crate::testing::now()),
        Err(Rejection::MissingSignature("x-twilio-signature".into()))
    );
    let repeated = form_request(PATH, None, INCOMING, &good).header("x-twilio-signature", &good);
    assert_eq!(
        twilio(&[TOKEN]).check(&repeated.view(), crate::testing::now()),
        Err(Rejection::RepeatedSignature("x-twilio-signature".into()))
    );
    for malformed in [
        "".to_owned(),
        "not base64!".to_owned(),
        good[..good.len() - 4].to_owned(),     // 15 bytes
        BASE64.encode([0u8; 32]),              // a SHA-256 length MAC
        good.trim_end_matches('=').to_owned(), // unpadded
        format!("{good}AAAA"),                 // 23 bytes
    ] {
        let request = form_request(PATH, None, INCOMING, &malformed);
        assert_eq!(
            twilio(&[TOKEN]).check(&request.view(), crate::testing::now()),
            Err(Rejection::MalformedSignature("x-twilio-signature".into())),
            "{malformed}"
        );
    }
}

#[test]
fn a_body_hash_claimed_without_a_matching_signature_is_rejected() {
    // bodySHA256 in the query but the URL signature does not cover it.
    let body = "{}";
    let query = format!(
        "bodySHA256={}",
        String::from_utf8(sha256_hex(body.as_bytes())).expect("hex")
    );
    let request = signed(
        "https://hooks.example.com/webhooks/sms",
        PATH,
        Some(&query),
        body,
        TOKEN,
    );
    assert_eq!(
        twilio(&[TOKEN]).check(&request.view(), crate::testing::now()),
        Err(Rejection::SignatureMismatch)
    );
}

#[test]
fn sign_produces_what_verify_accepts_for_form_and_json() {
    let source = twilio(&[TOKEN]);
    for (content_type, body) in [
        ("application/x-www-form-urlencoded", INCOMING),
        (
            "application/json",
            r#"{"MessageSid":"SM1","From":"+1","Body":"hi"}"#,
        ),
    ] {
        let signed = source.sign(&ToSign {
            path: PATH,
            query: Some("x=1"),
            content_type,
            body: body.as_bytes(),
            now: crate::testing::now(),
        });
        let (_, signature) = &signed.headers[0];
        let request = form_request(PATH, signed.query.as_deref(), body, signature);
        assert_eq!(
            source.check(&request.view(), crate::testing::now()),
            Ok(()),
            "{content_type}"
        );
    }
}

#[test]
fn settings_require_a_usable_public_url_and_a_token() {
    let mut without_url = settings(&[TOKEN]);
    without_url.public_url = None;
    let errors = Twilio::from_settings(without_url, &crate::settings::Context::default())
        .expect_err("needs public_url");
    assert_eq!(errors[0].key, "public_url");
    for bad in [
        "hooks.example.com",
        "ftp://x.example",
        "https://x.example/?a=1",
    ] {
        let mut with_bad = settings(&[TOKEN]);
        with_bad.public_url = Some(bad.to_owned());
        assert!(
            Twilio::from_settings(with_bad, &crate::settings::Context::default()).is_err(),
            "{bad}"
        );
    }
    let mut no_secret = settings(&[]);
    no_secret.public_url = Some(PUBLIC_URL.to_owned());
    assert_eq!(
        Twilio::from_settings(no_secret, &crate::settings::Context::default())
            .expect_err("needs secret")[0]
            .key,
        "secrets"
    );
}

// ---- normalize ----

#[test]
fn an_incoming_sms_is_message_received() {
    let request = signed(
        "https://hooks.example.com/webhooks/sms",
        PATH,
        None,
        INCOMING,
        TOKEN,
    );
    let events = normalize_request(&request);
    assert_eq!(events.len(), 1);
    let event = &events[0].event;
    assert_eq!(event.event_type(), EventType::MessageReceived);
    assert_eq!(event.providereventid, "SM11000000000000000000000000000000");
    assert_eq!(
        event.subject.as_deref(),
        Some("SM11000000000000000000000000000000")
    );
    assert_eq!(event.time, None, "Twilio sends no timestamp");
    assert_eq!(
        events[0].dedupe_key,
        event_id(
            "/sources/sms",
            &signed_content_key(&request.view()).expect("bounded")
        ),
        "deduplicated on the signed content"
    );
    assert_eq!(
        data(&events[0]),
        json!({"channel": "sms", "message_id": "SM11000000000000000000000000000000", "from": "+15551234567", "to": "+15557654321",
            "kind": "text", "text": "Can I get a late checkout?", "account_id": "AC99"})
    );
}

#[test]
fn mms_media_lists_are_kept_in_order() {
    let body = "MessageSid=MM1&From=%2B1&To=%2B2&NumMedia=2&Body=\
&MediaUrl0=https%3A%2F%2Fapi.twilio.com%2Fm%2F0&MediaContentType0=image%2Fjpeg\
&MediaUrl1=https%3A%2F%2Fapi.twilio.com%2Fm%2F1&MediaContentType1=application%2Fpdf";
    let events = normalize_request(&OwnedRequest::post(PATH, body.as_bytes()));
    let data = data(&events[0]);
    assert_eq!(data["kind"], "image");
    assert!(data.get("text").is_none());
    assert_eq!(
        data["media"],
        json!([{"url": "https://api.twilio.com/m/0", "mime_type": "image/jpeg"},
               {"url": "https://api.twilio.com/m/1", "mime_type": "application/pdf"}])
    );
}

#[test]
fn whatsapp_over_twilio_fields_are_mapped() {
    let body = "MessageSid=SM2&From=whatsapp%3A%2B4915112345678&To=whatsapp%3A%2B15557654321\
&ProfileName=Guest+Name&WaId=4915112345678&ButtonText=Yes&ButtonPayload=CONFIRM\
&OriginalRepliedMessageSid=SM1&OriginalRepliedMessageSender=whatsapp%3A%2B15557654321&Body=Yes";
    let events = normalize_request(&OwnedRequest::post(PATH, body.as_bytes()));
    let data = data(&events[0]);
    assert_eq!(data["channel"], "whatsapp");
    assert_eq!(data["from"], "+4915112345678");
    assert_eq!(data["to"], "+15557654321");
    assert_eq!(data["profile_name"], "Guest Name");
    assert_eq!(data["kind"], "button");
    assert_eq!(
        data["selection"],
        json!({"kind": "quick_reply", "id": "CONFIRM", "title": "Yes"})
    );
    assert_eq!(
        data["replied_to"],
        json!({"message_id": "SM1", "from": "+15557654321"})
    );

    let location = "MessageSid=SM3&From=whatsapp%3A%2B1&Latitude=52.52&Longitude=13.40&Address=Pariser+Platz&Label=Hotel";
    let events = normalize_request(&OwnedRequest::post(PATH, location.as_bytes()));
    assert_eq!(
        data_of(&events)["location"],
        json!({"latitude": 52.52, "longitude": 13.40, "name": "Hotel", "address": "Pariser Platz"})
    );
}

fn data_of(events: &[Normalized]) -> Value {
    data(&events[0])
}

#[test]
fn status_callbacks_are_keyed_by_sid_and_status() {
    let body = "MessageSid=SM5000000000000000000000000000000a&MessageStatus=undelivered&ErrorCode=30003&ErrorMessage=Unreachable\
&To=%2B15551234567&From=%2B15557654321&AccountSid=AC99&SmsStatus=undelivered";
    let mut request = OwnedRequest::post("/webhooks/sms/status", body.as_bytes());
    request.endpoint = "/status";
    let events = normalize_request(&request);
    let event = &events[0].event;
    assert_eq!(event.event_type(), EventType::MessageStatusChanged);
    assert_eq!(
        event.providereventid,
        "SM5000000000000000000000000000000a:undelivered"
    );
    assert_eq!(
        data(&events[0]),
        json!({"channel": "sms", "message_id": "SM5000000000000000000000000000000a", "status": "undelivered",
            "provider_status": "undelivered", "recipient": "+15551234567", "from": "+15557654321",
            "errors": [{"code": 30003, "message": "Unreachable"}], "account_id": "AC99"})
    );
}

#[test]
fn the_idempotency_token_labels_the_event_and_never_names_it() {
    let with_token = |token: &str| {
        OwnedRequest::post(PATH, INCOMING.as_bytes()).header("i-twilio-idempotency-token", token)
    };
    let first = normalize_request(&with_token("token-1"));
    let replay = normalize_request(&with_token("token-2"));
    // The token is unsigned: the id comes from the signed MessageSid, the dedupe key from the
    // signed content; a replay with another token is the same event under the same id.
    assert_eq!(first[0].event.providereventid, SID11);
    assert_eq!(first[0].event.id, replay[0].event.id);
    assert_eq!(first[0].dedupe_key, replay[0].dedupe_key);
    assert_eq!(
        first[0].event.providerdeliveryid.as_deref(),
        Some("token-1")
    );
    assert_eq!(
        replay[0].event.providerdeliveryid.as_deref(),
        Some("token-2")
    );
    let plain = normalize_request(&OwnedRequest::post(PATH, INCOMING.as_bytes()));
    assert_eq!(plain[0].dedupe_key, first[0].dedupe_key);
    assert_eq!(plain[0].event.id, first[0].event.id);
    assert_eq!(plain[0].event.providerdeliveryid, None);
}

#[test]
fn a_sid_without_a_sids_shape_does_not_name_the_event() {
    // Reshaping moves bytes between names and values; a value that is not a SID's exact
    // 34 characters cannot be trusted as the id Twilio signed.
    let body = "MessageSid=SM11&From=%2B1&To=%2B2&Body=hi";
    let request = OwnedRequest::post(PATH, body.as_bytes());
    let events = normalize_request(&request);
    assert_eq!(data(&events[0])["message_id"], "SM11");
    assert_eq!(
        events[0].event.providereventid,
        signed_content_key(&request.view()).expect("bounded")
    );
}

#[test]
fn a_huge_form_is_refused_before_anything_is_decoded_or_maced() {
    // The review's repro: an unauthenticated 3 MiB `a&a&…` body.
    let body = "a&".repeat(3 * 1024 * 1024 / 2);
    let request = form_request(PATH, None, &body, &BASE64.encode([0u8; 20]));
    let ((result, macs, _), decoded) = crate::form::work::measure(|| {
        crate::signing::work::measure(|| {
            twilio(&[TOKEN]).check(&request.view(), crate::testing::now())
        })
    });
    assert_eq!(result, Err(Rejection::TooManyParameters(MAX_PARAMS)));
    assert_eq!((decoded, macs), (0, 0));
    // At the limit, the form is decoded (and refused as forged, here).
    let at_limit = "a&".repeat(MAX_PARAMS);
    let request = form_request(PATH, None, &at_limit, &BASE64.encode([0u8; 20]));
    let (result, decoded) = crate::form::work::measure(|| {
        twilio(&[TOKEN]).check(&request.view(), crate::testing::now())
    });
    assert_eq!(result, Err(Rejection::SignatureMismatch));
    assert_eq!(decoded, MAX_PARAMS);
}

#[test]
fn a_json_body_is_read_as_parameters() {
    let body = r#"{"MessageSid":"SM9000000000000000000000000000000b","From":"+1","To":"+2","Body":"hi","NumMedia":0}"#;
    let mut request = OwnedRequest::post(PATH, body.as_bytes());
    request.query = Some(format!(
        "bodySHA256={}",
        String::from_utf8(sha256_hex(body.as_bytes())).expect("hex")
    ));
    let events = normalize_request(&request);
    assert_eq!(data(&events[0])["text"], "hi");
    assert_eq!(
        events[0].event.providereventid,
        "SM9000000000000000000000000000000b"
    );
}

#[test]
fn requests_without_identifying_fields_are_unknown() {
    let body = "Foo=1&Foo=2&Bar=x";
    let events = normalize_request(&OwnedRequest::post(PATH, body.as_bytes()));
    assert_eq!(events[0].event.event_type(), EventType::Unknown);
    assert_eq!(
        data(&events[0])["raw"],
        json!({"Bar": "x", "Foo": ["1", "2"]})
    );
    let request = OwnedRequest::post(PATH, body.as_bytes());
    assert_eq!(
        events[0].event.providereventid,
        signed_content_key(&request.view()).expect("bounded")
    );
    assert!(events[0].event.providereventid.starts_with("sha256:"));
}

/// Every reshaping of a signed request that still verifies must have the original's dedupe key.
fn assert_same_request(original: &OwnedRequest, reshaped: &OwnedRequest) {
    assert_eq!(
        twilio(&[TOKEN]).check(&original.view(), crate::testing::now()),
        Ok(())
    );
    assert_eq!(
        twilio(&[TOKEN]).check(&reshaped.view(), crate::testing::now()),
        Ok(()),
        "the reshaped request verifies: that is Twilio's scheme"
    );
    assert_eq!(
        normalize_request(original)[0].dedupe_key,
        normalize_request(reshaped)[0].dedupe_key,
        "but it is the same request"
    );
}

#[test]
fn moving_bytes_between_query_and_body_is_the_same_request() {
    let url = "https://hooks.example.com/webhooks/sms?x=1";
    let original = signed(url, PATH, Some("x=1"), INCOMING, TOKEN);
    // `AccountSid=AC99` sorts first: move its name into the query, keep the value as a
    // parameter with an empty name (which sorts first too).
    let mut reshaped = signed(url, PATH, Some("x=1"), INCOMING, TOKEN);
    reshaped.query = Some("x=1AccountSid".into());
    let body = String::from_utf8(reshaped.body.clone()).expect("utf-8");
    reshaped.body = body.replace("&AccountSid=AC99", "&=AC99").into_bytes();
    assert_same_request(&original, &reshaped);
}

#[test]
fn turning_a_json_request_into_a_form_request_is_the_same_request() {
    let body = r#"{"MessageSid":"SM1","From":"+1","Body":"hi"}"#;
    let hash = String::from_utf8(sha256_hex(body.as_bytes())).expect("hex");
    let url = format!("https://hooks.example.com/webhooks/sms?bodySHA256={hash}");
    let signature = BASE64.encode(hmac(Algorithm::Sha1, TOKEN.as_bytes(), &[url.as_bytes()]));
    let original = form_request(PATH, Some(&format!("bodySHA256={hash}")), body, &signature);
    // `?bodySHA25` + parameter `6` = `=<hash>` signs the same text, and has no body hash.
    let form = format!("6=%3D{hash}");
    let reshaped = form_request(PATH, Some("bodySHA25"), &form, &signature);
    assert_same_request(&original, &reshaped);
}

#[test]
fn a_quote_signed_escaped_verifies_as_received_either_way() {
    let signed_url = "https://hooks.example.com/webhooks/sms?note=It%27s";
    let escaped = signed(signed_url, PATH, Some("note=It%27s"), INCOMING, TOKEN);
    let mut raw = signed(signed_url, PATH, Some("note=It%27s"), INCOMING, TOKEN);
    raw.query = Some("note=It's".into());
    assert_same_request(&escaped, &raw);
}

#[test]
fn a_replay_with_reshaped_parameters_verifies_but_is_the_same_dedupe_key() {
    // Twilio concatenates names and values without separators: moving a character across the
    // `=` keeps the signature valid. That is the scheme; porter must still see a replay.
    let url = "https://hooks.example.com/webhooks/sms";
    let original = signed(url, PATH, None, INCOMING, TOKEN);
    let mut reshaped = signed(url, PATH, None, INCOMING, TOKEN);
    let text = String::from_utf8(reshaped.body.clone()).expect("utf-8");
    reshaped.body = text
        .replace(
            "&MessageSid=SM11000000000000000000000000000000",
            "&MessageSidS=M11000000000000000000000000000000",
        )
        .into_bytes();
    assert_ne!(reshaped.body, original.body);
    assert_eq!(
        twilio(&[TOKEN]).check(&reshaped.view(), crate::testing::now()),
        Ok(())
    );
    let first = normalize_request(&original);
    let replay = normalize_request(&reshaped);
    assert_eq!(first[0].dedupe_key, replay[0].dedupe_key);
    assert_eq!(first[0].event.id, replay[0].event.id);
}

#[test]
fn non_utf8_parameters_are_malformed() {
    let request = OwnedRequest::post(PATH, b"Body=%FF&MessageSid=SM1".to_vec());
    assert!(matches!(
        normalize(&request.view(), &origin("sms", "twilio")),
        Err(Rejection::MalformedBody { format: "form", .. })
    ));
}

#[test]
fn the_reply_is_empty_twiml() {
    let request = signed(
        "https://hooks.example.com/webhooks/sms",
        PATH,
        None,
        INCOMING,
        TOKEN,
    );
    let twilio = twilio(&[TOKEN]);
    let verified = twilio
        .verify(&request.view(), crate::testing::now())
        .expect("verifies");
    let reply = twilio
        .normalize(verified, &origin("sms", "twilio"))
        .expect("normalizes")
        .reply;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, EMPTY_TWIML);
    assert!(reply.content_type.starts_with("text/xml"));
}

proptest::proptest! {
    /// The dedupe key follows exactly what Twilio signs: any edit of the body that changes the
    /// signed parameters changes the key; an edit that does not (`%2B` → `%2b`) keeps it.
    #[test]
    fn the_dedupe_key_changes_exactly_when_the_signed_content_does(
        at in 0usize..INCOMING.len(),
        replacement in proptest::sample::select(b"aZ09%+=&.B".to_vec()),
    ) {
        let url = "https://hooks.example.com/webhooks/sms";
        let mut edited = INCOMING.as_bytes().to_vec();
        edited[at] = replacement;
        let edited = String::from_utf8(edited).expect("ascii");
        let original = signed(url, PATH, None, INCOMING, TOKEN);
        let changed = signed(url, PATH, None, &edited, TOKEN);
        proptest::prop_assert_eq!(twilio(&[TOKEN]).check(&changed.view(), crate::testing::now()), Ok(()));
        let same_content = sorted_params(&form::decode(INCOMING.as_bytes()))
            == sorted_params(&form::decode(edited.as_bytes()));
        let key = |request: &OwnedRequest| {
            signed_content_key(&request.view()).expect("bounded")
        };
        proptest::prop_assert_eq!(key(&original) == key(&changed), same_content);
    }
}

/// The provider's settings with these secrets and nothing else.
fn settings(values: &[&str]) -> Settings {
    Settings {
        secrets: crate::testing::secrets(values),
        ..Settings::default()
    }
}
