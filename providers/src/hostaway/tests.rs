use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::json;

use super::*;
use crate::event::{EventType, Money};
use crate::testing::{Check, NormalizeChecked, OwnedRequest, now, origin};
use crate::{Secret, WebhookProvider};

fn hostaway() -> Hostaway {
    Hostaway::from_settings(
        Settings {
            basic: Some(BasicSettings {
                username: "hostaway".into(),
                password: Secret::new("hostaway-webhook-password"),
            }),
        },
        &Context::default(),
    )
    .expect("valid")
}

fn authorized(body: &str, password: &str) -> OwnedRequest {
    OwnedRequest::post("/webhooks/hostaway", body.as_bytes()).header(
        "authorization",
        &format!("Basic {}", BASE64.encode(format!("hostaway:{password}"))),
    )
}

const UPDATED: &str = r#"{"event":"reservation.updated","data":{"id":12345678,"listingMapId":1234,"channelName":"airbnbOfficial","status":"modified","guestName":"Ana Silva","guestFirstName":"Ana","guestLastName":"Silva","guestEmail":"ana@example.com","arrivalDate":"2026-06-01","departureDate":"2026-06-05","nights":4,"adults":2,"children":0,"totalPrice":812.50,"currency":"EUR","updatedOn":"2026-05-20 10:11:12"}}"#;

#[test]
fn basic_credentials_are_required_and_checked() {
    let provider = hostaway();
    assert_eq!(
        provider.check(
            &authorized(UPDATED, "hostaway-webhook-password").view(),
            now()
        ),
        Ok(())
    );
    assert_eq!(
        provider.check(
            &authorized(UPDATED, "hostaway-webhook-passwore").view(),
            now()
        ),
        Err(Rejection::BadSharedSecret)
    );
    assert_eq!(
        provider.check(
            &OwnedRequest::post("/webhooks/hostaway", UPDATED.as_bytes()).view(),
            now()
        ),
        Err(Rejection::MissingSignature("authorization".into()))
    );
    let twice =
        authorized(UPDATED, "hostaway-webhook-password").header("authorization", "Basic eA==");
    assert_eq!(
        provider.check(&twice.view(), now()),
        Err(Rejection::RepeatedSignature("authorization".into()))
    );
    assert!(
        Hostaway::from_settings(Settings::default(), &Context::default()).is_err(),
        "a source without credentials is refused"
    );
}

#[test]
fn the_test_delivery_is_answered_and_not_stored() {
    let provider = hostaway();
    let test = r#"{"event":"reservation.created","data":"test"}"#;
    assert_eq!(
        provider.handshake(&authorized(test, "hostaway-webhook-password").view(), now()),
        Some(Ok(Reply::accepted(0)))
    );
    assert_eq!(
        provider.handshake(&authorized(test, "wrong-password-000").view(), now()),
        Some(Err(Rejection::BadSharedSecret))
    );
    assert_eq!(
        provider.handshake(
            &authorized(UPDATED, "hostaway-webhook-password").view(),
            now()
        ),
        None
    );
}

#[test]
fn reservations_map_by_event_and_status_and_are_keyed_by_their_update() {
    let provider = hostaway();
    let normalize = |body: &str| {
        provider
            .normalize_events(
                &OwnedRequest::post("/webhooks/hostaway", body.as_bytes()).view(),
                &origin("hostaway", "hostaway"),
            )
            .expect("normalized")
            .remove(0)
            .event
    };
    let event = normalize(UPDATED);
    assert_eq!(event.body.event_type(), EventType::ReservationUpdated);
    assert_eq!(event.subject.as_deref(), Some("12345678"));
    assert_eq!(event.propertyid.as_deref(), Some("1234"));
    let EventBody::ReservationUpdated(data) = &event.body else {
        panic!()
    };
    assert_eq!(data.arrival_date.as_deref(), Some("2026-06-01"));
    assert_eq!(data.nights, Some(4));
    assert_eq!(
        data.total,
        Some(Money {
            amount: "812.50".into(),
            minor_units: false,
            currency: Some("EUR".into())
        })
    );
    assert_eq!(
        data.guest.as_ref().and_then(|g| g.name.as_deref()),
        Some("Ana Silva")
    );
    // The same update again is a duplicate; a later update of the same reservation is not.
    assert_eq!(normalize(UPDATED).providereventid, event.providereventid);
    let later = UPDATED.replace("10:11:12", "10:15:00");
    assert_ne!(normalize(&later).providereventid, event.providereventid);
    let cancelled = UPDATED.replace("\"modified\"", "\"cancelled\"");
    assert_eq!(
        normalize(&cancelled).body.event_type(),
        EventType::ReservationCancelled
    );
    let created = UPDATED.replace("reservation.updated", "reservation.created");
    assert_eq!(
        normalize(&created).body.event_type(),
        EventType::ReservationCreated
    );
    let message = json!({"event": "conversation.message.created", "data": {"id": 9, "body": "hi"}});
    assert_eq!(
        normalize(&message.to_string()).body.event_type(),
        EventType::Unknown
    );
}
