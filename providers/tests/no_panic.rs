//! No byte sequence makes a provider panic, and normalize keeps its contract (at least one
//! event, or a rejection). A diagnosis of any refusal does not panic either, never changes the
//! verdict and never shows the secret. The cargo-fuzz targets in `fuzz/` explore the same property with
//! coverage guidance; this runs on every test run.

use http::{HeaderMap, HeaderValue};
use jiff::Timestamp;
use porter_providers::{Context, Provider, Rejection, Request, Source, ToSign};
use proptest::prelude::*;
use serde_json::json;

/// Settings valid for each provider: a literal secret that is also base64 after `whsec_`.
fn settings_for(provider: Provider) -> serde_json::Value {
    let secrets = json!(["whsec_c2VjcmV0LWtleS1ieXRlcw=="]);
    let event_types = json!({"a": "reservation.created", "m": "message.received"});
    match provider {
        Provider::Meta => json!({"secrets": secrets, "verify_token": "token"}),
        Provider::Twilio => json!({"secrets": secrets}),
        Provider::Cloudbeds | Provider::Reservekit => {
            json!({"url_token": "a-url-token-of-some-length"})
        }
        Provider::Mews => json!({"secrets": secrets, "url_token": "a-url-token-of-some-length"}),
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
            json!({"secrets": secrets, "event_types": event_types})
        }
        Provider::Hmac => json!({"secrets": secrets, "event_types": event_types, "hmac": {
            "header": "x-sig",
            "signed": "{id}.{timestamp}.{url}.{body}",
            "timestamp_header": "x-ts",
            "id_header": "x-id",
            "type_pointer": "/type",
        }}),
        _ => json!({"secrets": secrets}),
    }
}

fn sources() -> Vec<Source> {
    let context = Context {
        public_url: Some("https://hooks.example.com".into()),
    };
    Provider::ALL
        .iter()
        .map(|p| Source::new("s", *p, settings_for(*p), &context).expect("valid"))
        .collect()
}

/// Bytes that look a little like the payloads, so the parsers get past their first check.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        "\\{\"object\":\"whatsapp_business_account\",\"entry\":\\[\\{\"id\":\"1\",\"changes\":\\[\\{\"field\":\"messages\",\"value\":\\{\"messages\":\\[\\{\"id\":\"x\",\"from\":\"1\",\"type\":\"(text|image|location|contacts|interactive|button|reaction|order)\".{0,40}\\}\\]\\}\\}\\]\\}\\]\\}"
            .prop_map(String::into_bytes),
        "(MessageSid|From|To|Body|NumMedia|MediaUrl0|MessageStatus|Latitude|Longitude|ButtonPayload)=[%A-Za-z0-9+:.]{0,20}(&(MessageSid|From|To|Body|MediaUrl[0-9]|ErrorCode)=[%A-Za-z0-9+]{0,12}){0,6}"
            .prop_map(String::into_bytes),
        // Mews General, Integration and POS; Cloudbeds; ReserveKit.
        "\\{\"EnterpriseId\":(\"e\"|1|null),\"Events\":\\[(\\{\"Discriminator\":\"(ServiceOrderUpdated|CustomerAdded|MessageAdded|X)\",\"Value\":(\\{\"Id\":(\"i\"|1|null)\\}|1|null)\\},?){0,3}\\]\\}"
            .prop_map(String::into_bytes),
        "\\{\"Action\":\"Integration[A-Za-z]{0,8}\",\"Data\":(\\{\"Integration\":(\\{\"Id\":(\"i\"|1)\\}|null),\"AccessToken\":\"t\"\\}|null|1)\\}"
            .prop_map(String::into_bytes),
        "\\{\"data\":(\\{\"id\":(\"o\"|1|null),\"attributes\":(\\{\"status\":\"paid\",\"updatedAt\":(\"t\"|1)\\}|\\[\\]|null)\\}|\\[\\]|null),\"meta\":\\{\"(eventType|event_type)\":(\"(order|booking)\\.status\\.updated\"|1)\\}\\}"
            .prop_map(String::into_bytes),
        "\\{\"event\":\"(reservation/(created|status_changed)|guest/created|housekeeping/room_condition_changed|x)\",\"(propertyID|propertyId_str|reservationId|guestID|roomID|status|timestamp|roomCondition)\":(\"[a-z_0-9.]{0,8}\"|-?[0-9]{0,25}(\\.[0-9]{0,9})?|1e400|null|\\{\\})\\}"
            .prop_map(String::into_bytes),
        // SiteMinder envelopes, DTDs and entities included.
        "(<!DOCTYPE x>)?<Envelope><Header><Security><UsernameToken><Username>(pmsuser|&amp;|&x;)</Username><Password>a-password-of-length</Password></UsernameToken></Security></Header><Body><OTA_HotelResNotifRQ EchoToken=\"(e|&#0;|&#x110000;)\"><HotelReservations>(<HotelReservation ResStatus=\"(Commit|Cancel|x)\"><UniqueID ID=\"(b|&lt;)\"/>(<Total AmountAfterTax=\"1\"/>)?</HotelReservation>){0,2}</HotelReservations></OTA_HotelResNotifRQ></Body></Envelope>"
            .prop_map(String::into_bytes),
        // Adyen notification batches.
        "\\{\"live\":\"false\",\"notificationItems\":\\[(\\{\"NotificationRequestItem\":(\\{\"pspReference\":(\"p\"|1|null),\"eventCode\":\"(AUTHORISATION|REFUND|X)\",\"success\":(\"true\"|true|1),\"amount\":(\\{\"value\":(1|1.5|\"1\"|1e400),\"currency\":\"EUR\"\\}|null|1),\"additionalData\":(\\{\\}|null|1)\\}|null|1)\\},?){0,3}\\]\\}"
            .prop_map(String::into_bytes),
        // Slack (events, URL verification) and Zoom (events, URL validation).
        "\\{\"type\":\"(event_callback|url_verification)\",\"(event_id|challenge|team_id)\":(\"e\"|1|null),\"event\":(\\{\"type\":(\"message\"|1)\\}|null|\\[\\])\\}"
            .prop_map(String::into_bytes),
        "\\{\"event\":\"(endpoint\\.url_validation|meeting\\.started)\",\"event_ts\":(1|\"1\"|-1|1e400|null),\"payload\":(\\{\"plainToken\":(\"p\"|1|null),\"object\":(\\{\"id\":1\\}|null)\\}|null|\\[\\])\\}"
            .prop_map(String::into_bytes),
        "\\{\"event_type\":\"bookings\\.(create|update|delete|x)\",\"bookings\":\\[((\\{\"id\":(7|\"7\"|null),\"updated_at\":(\"t\"|1),\"customer\":(\\{\"name\":\"n\"\\}|\\{\\}|1|null)\\}|1|null),?){0,3}\\]\\}"
            .prop_map(String::into_bytes),
    ]
}

/// The secret of [`settings_for`] in every form a diagnosis might leak.
const SECRET_FORMS: &[&str] = &[
    "whsec_c2VjcmV0LWtleS1ieXRlcw==",
    "c2VjcmV0LWtleS1ieXRlcw",
    "secret-key-bytes",
];

/// Diagnoses `request` for its own refusal, and as if its signature or timestamp had been
/// refused (so that every scheme is read from arbitrary bytes): no panic, the verdict is
/// unchanged, and nothing secret is shown.
fn diagnose_any(
    source: &Source,
    request: &Request<'_>,
    rejection: &Rejection,
) -> Result<(), TestCaseError> {
    for rejection in [
        rejection.clone(),
        Rejection::SignatureMismatch,
        Rejection::StaleTimestamp,
    ] {
        let diagnosis = source.diagnose(request, &rejection, Timestamp::UNIX_EPOCH);
        let shown = format!(
            "{diagnosis} {}",
            serde_json::to_string(&diagnosis).expect("json")
        );
        for secret in SECRET_FORMS {
            prop_assert!(!shown.contains(secret), "{shown}");
        }
    }
    let again = source.verify(request, Timestamp::UNIX_EPOCH).map(drop);
    prop_assert_eq!(again, Err(rejection.clone()));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn providers_never_panic(
        body in payload(),
        query in proptest::option::of("[ -~]{0,80}"),
        signature in proptest::collection::vec(any::<u8>(), 0..80),
    ) {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_bytes(&signature) {
            for name in [
                "x-hub-signature-256", "x-twilio-signature", "i-twilio-idempotency-token",
                "x-oracle-signature", "x-oracle-timestamp", "webhook-id", "webhook-timestamp",
                "webhook-signature", "stripe-signature", "x-sig", "x-ts", "x-id", "x-signature",
                "host", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port",
                "x-forwarded-prefix",
            ] {
                headers.insert(name, value.clone());
            }
        }
        for source in sources() {
            for endpoint in source.provider().endpoints() {
                for method in endpoint.methods {
                    let request = Request {
                        method,
                        endpoint: endpoint.suffix,
                        path: "/hook",
                        query: query.as_deref(),
                        headers: &headers,
                        body: &body,
                    };
                    let _ = source.handshake(&request, jiff::Timestamp::UNIX_EPOCH);
                    let verified = source.verify(&request, Timestamp::UNIX_EPOCH);
                    if let Err(rejection) = &verified {
                        diagnose_any(&source, &request, rejection)?;
                    }
                    if let Ok(Ok(normalization)) =
                        verified.map(|v| source.normalize(v, Timestamp::UNIX_EPOCH))
                    {
                        prop_assert!(!normalization.events.is_empty());
                        for event in &normalization.events {
                            prop_assert!(serde_json::to_vec(&event.event).is_ok());
                        }
                    }
                }
            }
        }
    }
}

proptest! {
    // Signing each body for every provider (Ed25519 among them) costs more per case.
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Bodies signed as each provider signs them: the handshakes and the normalizers read
    /// them (arbitrary bytes alone never get past a signature).
    #[test]
    fn signed_bodies_never_panic(body in payload(), form in any::<bool>()) {
        let content_type = if form { "application/x-www-form-urlencoded" } else { "application/json" };
        for source in sources() {
            for endpoint in source.provider().endpoints() {
                let path = format!("/hook{}", endpoint.suffix);
                let signed = source.sign(&ToSign {
                    path: &path,
                    query: None,
                    content_type,
                    body: &body,
                    now: Timestamp::UNIX_EPOCH,
                });
                // Adyen signs inside the body: send what was signed.
                let body = signed.body.clone().unwrap_or_else(|| body.clone());
                let mut headers = HeaderMap::new();
                headers.insert("content-type", HeaderValue::from_static(content_type));
                for (name, value) in &signed.headers {
                    if let (Ok(name), Ok(value)) = (
                        http::HeaderName::from_bytes(name.as_bytes()),
                        HeaderValue::from_str(value),
                    ) {
                        headers.append(name, value);
                    }
                }
                for method in endpoint.methods {
                    let request = Request {
                        method,
                        endpoint: endpoint.suffix,
                        path: &path,
                        query: signed.query.as_deref(),
                        headers: &headers,
                        body: &body,
                    };
                    let _ = source.handshake(&request, Timestamp::UNIX_EPOCH);
                    if let Ok(Ok(normalization)) = source
                        .verify(&request, Timestamp::UNIX_EPOCH)
                        .map(|v| source.normalize(v, Timestamp::UNIX_EPOCH))
                    {
                        prop_assert!(!normalization.events.is_empty());
                    }
                }
            }
        }
    }
}
