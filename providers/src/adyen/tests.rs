use serde_json::json;

use super::*;
use crate::event::EventType;
use crate::testing::{Check, OwnedRequest, now, origin};

/// Adyen's published vector (its API libraries' HMAC validator tests).
const KEY: &str = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056";
const SIGNATURE_OF_ITEM: &str = "coqCmt/IZ4E3CzPvMY8zTjQVL5hYJUiBRg8UU+iCWo0=";

fn item() -> Value {
    json!({
        "additionalData": {"hmacSignature": SIGNATURE_OF_ITEM},
        "amount": {"value": 1130, "currency": "EUR"},
        "pspReference": "7914073381342284",
        "eventCode": "AUTHORISATION",
        "eventDate": "2019-05-06T17:15:34.121+02:00",
        "merchantAccountCode": "TestMerchant",
        "merchantReference": "TestPayment-1407325143704",
        "originalReference": "",
        "paymentMethod": "visa",
        "reason": "033899:1111:03/2030",
        "success": "true"
    })
}

fn batch(items: Vec<Value>) -> String {
    let wrapped: Vec<Value> = items
        .into_iter()
        .map(|item| json!({"NotificationRequestItem": item}))
        .collect();
    json!({"live": "false", "notificationItems": wrapped}).to_string()
}

fn adyen(keys: &[&str], basic: Option<(&str, &str)>) -> Adyen {
    Adyen::from_settings(
        Settings {
            hmac_keys: keys.iter().map(|k| Secret::new(*k)).collect(),
            basic: basic.map(|(username, password)| BasicSettings {
                username: username.to_owned(),
                password: Secret::new(password),
            }),
            payment_received_on: None,
        },
        &Context::default(),
    )
    .expect("valid")
}

fn post(body: &str) -> OwnedRequest {
    OwnedRequest::post("/webhooks/adyen", body.as_bytes())
        .header("content-type", "application/json")
}

#[test]
fn adyens_published_vector_verifies() {
    assert_eq!(
        signing_string(&item()),
        "7914073381342284::TestMerchant:TestPayment-1407325143704:1130:EUR:AUTHORISATION:true"
    );
    assert_eq!(
        item_signature(KEY, &item()).as_deref(),
        Some(SIGNATURE_OF_ITEM)
    );
    let provider = adyen(&[KEY], None);
    assert_eq!(
        provider.check(&post(&batch(vec![item()])).view(), now()),
        Ok(())
    );
    // Lower-case hex is the same key.
    assert_eq!(
        adyen(&[&KEY.to_lowercase()], None).check(&post(&batch(vec![item()])).view(), now()),
        Ok(())
    );
}

#[test]
fn a_tampered_item_a_wrong_key_or_one_forged_item_refuses_the_batch() {
    let provider = adyen(&[KEY], None);
    let mut tampered = item();
    tampered["amount"]["value"] = json!(1);
    assert_eq!(
        provider.check(&post(&batch(vec![tampered.clone()])).view(), now()),
        Err(Rejection::SignatureMismatch)
    );
    assert_eq!(
        adyen(&["00112233445566778899AABBCCDDEEFF"], None)
            .check(&post(&batch(vec![item()])).view(), now()),
        Err(Rejection::SignatureMismatch)
    );
    // An authentic item does not carry a forged one through.
    assert_eq!(
        provider.check(&post(&batch(vec![item(), tampered])).view(), now()),
        Err(Rejection::SignatureMismatch)
    );
    // Rotation: either key verifies.
    assert_eq!(
        adyen(&["00112233445566778899AABBCCDDEEFF", KEY], None)
            .check(&post(&batch(vec![item()])).view(), now()),
        Ok(())
    );
}

#[test]
fn missing_and_malformed_signatures_fail() {
    let provider = adyen(&[KEY], None);
    let check = |body: &str| provider.check(&post(body).view(), now());
    let mut unsigned = item();
    unsigned["additionalData"] = json!({});
    assert_eq!(
        check(&batch(vec![unsigned])),
        Err(Rejection::MissingSignature(SIGNATURE.into()))
    );
    for bad in [json!("not base64!"), json!("AAAA"), json!(42)] {
        let mut odd = item();
        odd["additionalData"]["hmacSignature"] = bad.clone();
        assert_eq!(
            check(&batch(vec![odd])),
            Err(Rejection::MalformedSignature(SIGNATURE.into())),
            "{bad}"
        );
    }
    for body in [
        "",
        "{not json",
        "{}",
        r#"{"notificationItems":[]}"#,
        r#"{"notificationItems":[{"x":1}]}"#,
    ] {
        assert_eq!(
            check(body),
            Err(Rejection::MissingSignature(SIGNATURE.into())),
            "{body}"
        );
    }
}

#[test]
fn basic_authentication_is_checked_first() {
    let provider = adyen(&[KEY], Some(("adyen-hotel", "a-long-basic-password")));
    let body = batch(vec![item()]);
    let with =
        |value: &str| provider.check(&post(&body).header("authorization", value).view(), now());
    let good = format!(
        "Basic {}",
        BASE64.encode("adyen-hotel:a-long-basic-password")
    );
    assert_eq!(with(&good), Ok(()));
    assert_eq!(
        with(&format!(
            "Basic {}",
            BASE64.encode("adyen-hotel:wrong-password!!")
        )),
        Err(Rejection::BadSharedSecret)
    );
    assert_eq!(
        with("Bearer abc"),
        Err(Rejection::MalformedSignature("authorization".into()))
    );
    assert_eq!(
        provider.check(&post(&body).view(), now()),
        Err(Rejection::MissingSignature("authorization".into()))
    );
    // What porter sends is what it accepts.
    let signed = provider.sign(&ToSign {
        path: "/webhooks/adyen",
        query: None,
        content_type: "application/json",
        body: body.as_bytes(),
        now: now(),
    });
    assert!(signed.headers.contains(&("Authorization".to_owned(), good)));
}

#[test]
fn sign_signs_every_item_in_the_body() {
    let provider = adyen(&[KEY], None);
    let mut refund = item();
    refund["eventCode"] = json!("REFUND");
    refund["pspReference"] = json!("8825408195409505");
    refund["originalReference"] = json!("7914073381342284");
    refund["additionalData"] = json!({});
    let body = batch(vec![item(), refund]);
    let signed = provider.sign(&ToSign {
        path: "/webhooks/adyen",
        query: None,
        content_type: "application/json",
        body: body.as_bytes(),
        now: now(),
    });
    let signed_body = String::from_utf8(signed.body.expect("a signed body")).expect("utf-8");
    assert_eq!(provider.check(&post(&signed_body).view(), now()), Ok(()));
    assert!(signed_body.contains(SIGNATURE_OF_ITEM));
}

#[test]
fn items_map_to_payments_refunds_and_unknown() {
    let provider = adyen(&[KEY], None);
    let mut refund = item();
    refund["eventCode"] = json!("REFUND");
    refund["pspReference"] = json!("8825408195409505");
    let mut failed = item();
    failed["success"] = json!("false");
    let mut capture = item();
    capture["eventCode"] = json!("CAPTURE");
    let body = batch(vec![item(), refund, failed, capture]);
    let signed = provider.sign(&ToSign {
        path: "/webhooks/adyen",
        query: None,
        content_type: "application/json",
        body: body.as_bytes(),
        now: now(),
    });
    let request = post(std::str::from_utf8(&signed.body.expect("body")).expect("utf-8"));
    let verified = provider.verify(&request.view(), now()).expect("verified");
    let normalization = provider
        .normalize(verified, &origin("adyen", "adyen"))
        .expect("normalized");
    assert_eq!(normalization.reply, Reply::text("[accepted]"));
    let events: Vec<&crate::event::Event> = normalization.events.iter().map(|n| &n.event).collect();
    assert_eq!(events.len(), 4);
    assert_eq!(
        events[0].providereventid,
        "7914073381342284:AUTHORISATION:true"
    );
    assert_eq!(events[0].body.event_type(), EventType::PaymentReceived);
    let EventBody::PaymentReceived(payment) = &events[0].body else {
        panic!()
    };
    assert_eq!(
        payment.amount,
        Some(Money {
            amount: "1130".into(),
            minor_units: true,
            currency: Some("EUR".into())
        })
    );
    assert_eq!(
        payment.reservation_id.as_deref(),
        Some("TestPayment-1407325143704")
    );
    assert_eq!(events[0].propertyid.as_deref(), Some("TestMerchant"));
    assert_eq!(events[1].body.event_type(), EventType::PaymentRefunded);
    assert_eq!(events[1].providereventid, "8825408195409505:REFUND:true");
    assert_eq!(events[2].body.event_type(), EventType::Unknown);
    assert_eq!(
        events[2].providereventid,
        "7914073381342284:AUTHORISATION:false"
    );
    assert_eq!(events[3].body.event_type(), EventType::Unknown);
    // With capture as the payment, the authorisation is not one.
    let on_capture = Adyen::from_settings(
        Settings {
            hmac_keys: vec![Secret::new(KEY)],
            basic: None,
            payment_received_on: Some("capture".into()),
        },
        &Context::default(),
    )
    .expect("valid");
    let verified = on_capture.verify(&request.view(), now()).expect("verified");
    let events = on_capture
        .normalize(verified, &origin("adyen", "adyen"))
        .expect("normalized")
        .events;
    assert_eq!(events[0].event.body.event_type(), EventType::Unknown);
    assert_eq!(
        events[3].event.body.event_type(),
        EventType::PaymentReceived
    );
}

#[test]
fn settings_refuse_keys_that_are_not_hex() {
    let problems = Adyen::from_settings(
        Settings {
            hmac_keys: vec![Secret::new("not-hex")],
            basic: Some(BasicSettings {
                username: "a:b".into(),
                password: Secret::new("short"),
            }),
            payment_received_on: Some("sometimes".into()),
        },
        &Context::default(),
    )
    .expect_err("refused");
    let text = format!("{problems:?}");
    for key in ["hmac_keys[0]", "basic.username", "payment_received_on"] {
        assert!(text.contains(key), "{text}");
    }
}
