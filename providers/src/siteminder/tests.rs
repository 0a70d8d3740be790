use super::*;
use crate::event::EventType;
use crate::testing::{Check, OwnedRequest, now, origin};

const PASSWORD: &str = "pms-push-password-0001";

/// An envelope as SiteMinder's Reservations PUSH reference shows it, filled in.
fn envelope(username: &str, password: &str, status: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Header><wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" SOAP-ENV:mustUnderstand="1"><wsse:UsernameToken><wsse:Username>{username}</wsse:Username><wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText">{password}</wsse:Password></wsse:UsernameToken></wsse:Security></SOAP-ENV:Header><SOAP-ENV:Body><OTA_HotelResNotifRQ xmlns="http://www.opentravel.org/OTA/2003/05" Version="1.0" EchoToken="abc123-unique" TimeStamp="2024-03-15T13:59:58+00:00"><HotelReservations><HotelReservation ResStatus="{status}" CreateDateTime="2024-03-15T13:59:00+00:00"><UniqueID Type="14" ID="BOOKING-123"/><RoomStays><RoomStay><TimeSpan Start="2024-06-01" End="2024-06-05"/><Total AmountAfterTax="812.50" CurrencyCode="EUR"/><BasicPropertyInfo HotelCode="HOTEL-42"/></RoomStay></RoomStays><ResGuests><ResGuest><Profiles><ProfileInfo><Profile><Customer><PersonName><GivenName>Ana</GivenName><Surname>Silva &amp; Sousa</Surname></PersonName></Customer></Profile></ProfileInfo></Profiles></ResGuest></ResGuests></HotelReservation></HotelReservations></OTA_HotelResNotifRQ></SOAP-ENV:Body></SOAP-ENV:Envelope>"#
    )
}

fn siteminder() -> Siteminder {
    Siteminder::from_settings(
        Settings {
            username: Some("pmsuser".into()),
            password: Some(Secret::new(PASSWORD)),
        },
        &Context::default(),
    )
    .expect("valid")
}

fn post(body: &str) -> OwnedRequest {
    OwnedRequest::post("/webhooks/siteminder", body.as_bytes())
        .header("content-type", "text/xml; charset=utf-8")
}

#[test]
fn the_username_token_authenticates_in_constant_time() {
    let provider = siteminder();
    assert_eq!(
        provider.check(
            &post(&envelope("pmsuser", PASSWORD, "Commit")).view(),
            now()
        ),
        Ok(())
    );
    assert_eq!(
        provider.check(
            &post(&envelope("pmsuser", "pms-push-password-0002", "Commit")).view(),
            now()
        ),
        Err(Rejection::BadSharedSecret)
    );
    assert_eq!(
        provider.check(
            &post(&envelope("otheruser", PASSWORD, "Commit")).view(),
            now()
        ),
        Err(Rejection::BadSharedSecret)
    );
    let without = envelope("pmsuser", PASSWORD, "Commit").replace(
        "<wsse:UsernameToken><wsse:Username>pmsuser</wsse:Username>",
        "<wsse:UsernameToken>",
    );
    assert_eq!(
        provider.check(&post(&without).view(), now()),
        Err(Rejection::MissingSignature(TOKEN.into()))
    );
    let digest =
        envelope("pmsuser", PASSWORD, "Commit").replace("#PasswordText", "#PasswordDigest");
    assert_eq!(
        provider.check(&post(&digest).view(), now()),
        Err(Rejection::MalformedSignature(TOKEN.into()))
    );
}

#[test]
fn dtds_entities_and_broken_xml_are_refused_before_authentication() {
    let provider = siteminder();
    let good = envelope("pmsuser", PASSWORD, "Commit");
    let with_dtd = good.replacen(
        "<SOAP-ENV:Envelope",
        "<!DOCTYPE x [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><SOAP-ENV:Envelope",
        1,
    );
    assert_eq!(read(with_dtd.as_bytes()).map(drop), Err(ReadError::Doctype));
    let entity = good.replace("Silva &amp; Sousa", "Silva &xxe;");
    assert_eq!(
        read(entity.as_bytes()).map(drop),
        Err(ReadError::UnknownEntity)
    );
    let deep = format!("{}{}", "<a>".repeat(100), "</a>".repeat(100));
    assert_eq!(read(deep.as_bytes()).map(drop), Err(ReadError::TooDeep));
    for bad in [&good[..good.len() - 10], "not xml at all <", "<a></b>"] {
        assert!(read(bad.as_bytes()).is_err(), "{bad}");
        assert_eq!(
            provider.check(&post(bad).view(), now()),
            Err(Rejection::MalformedSignature(TOKEN.into())),
            "{bad}"
        );
    }
    assert_eq!(
        provider.check(&post(&with_dtd).view(), now()),
        Err(Rejection::MalformedSignature(TOKEN.into()))
    );
}

#[test]
fn reservations_are_read_and_mapped_by_status() {
    let provider = siteminder();
    let normalize = |status: &str| {
        let request = post(&envelope("pmsuser", PASSWORD, status));
        let verified = provider.verify(&request.view(), now()).expect("verified");
        provider
            .normalize(verified, &origin("siteminder", "siteminder"))
            .expect("normalized")
    };
    let normalization = normalize("Commit");
    assert_eq!(normalization.reply.status, 200);
    assert!(normalization.reply.body.contains("<Success/>"));
    assert!(
        normalization
            .reply
            .body
            .contains("EchoToken=\"abc123-unique\"")
    );
    assert_eq!(normalization.reply.content_type, "text/xml; charset=utf-8");
    let event = &normalization.events[0].event;
    assert_eq!(event.providereventid, "BOOKING-123:Commit:abc123-unique");
    assert_eq!(event.propertyid.as_deref(), Some("HOTEL-42"));
    let EventBody::ReservationCreated(data) = &event.body else {
        panic!("{:?}", event.body)
    };
    assert_eq!(data.arrival_date.as_deref(), Some("2024-06-01"));
    assert_eq!(data.departure_date.as_deref(), Some("2024-06-05"));
    assert_eq!(
        data.guest.as_ref().and_then(|g| g.last_name.as_deref()),
        Some("Silva & Sousa")
    );
    assert_eq!(
        data.total,
        Some(Money {
            amount: "812.50".into(),
            minor_units: false,
            currency: Some("EUR".into())
        })
    );
    let raw = data.raw.as_ref().expect("raw");
    assert!(
        raw["ota_xml"]
            .as_str()
            .expect("xml")
            .starts_with("<HotelReservation ResStatus=\"Commit\"")
    );
    assert!(
        raw["ota_xml"]
            .as_str()
            .expect("xml")
            .ends_with("</HotelReservation>")
    );
    for (status, expected) in [
        ("Modify", EventType::ReservationUpdated),
        ("Cancel", EventType::ReservationCancelled),
        ("In-house", EventType::ReservationCheckedIn),
        ("Checked-Out", EventType::ReservationCheckedOut),
        ("Waitlisted", EventType::ReservationUpdated),
    ] {
        assert_eq!(
            normalize(status).events[0].event.body.event_type(),
            expected,
            "{status}"
        );
    }
}

#[test]
fn sign_writes_this_sources_credentials_into_the_envelope() {
    let provider = siteminder();
    let body = envelope("someone", "something-else-000", "Commit");
    let signed = provider.sign(&ToSign {
        path: "/webhooks/siteminder",
        query: None,
        content_type: "text/xml",
        body: body.as_bytes(),
        now: now(),
    });
    let signed_body = String::from_utf8(signed.body.expect("a body")).expect("utf-8");
    assert_eq!(provider.check(&post(&signed_body).view(), now()), Ok(()));
}

#[test]
fn settings_need_a_username_and_a_strong_password() {
    let problems = Siteminder::from_settings(
        Settings {
            username: None,
            password: Some(Secret::new("short")),
        },
        &Context::default(),
    )
    .expect_err("refused");
    let text = format!("{problems:?}");
    assert!(
        text.contains("username") && text.contains("password"),
        "{text}"
    );
}
