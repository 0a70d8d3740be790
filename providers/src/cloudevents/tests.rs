use super::*;
use crate::testing::{Check, OwnedRequest, now, origin};

const TOKEN: &str = "cloudevents-access-token-01";

fn cloudevents(origins: &[&str], rate: Option<u32>) -> CloudEvents {
    CloudEvents::from_settings(
        Settings {
            tokens: vec![Secret::new(TOKEN)],
            allowed_origins: origins.iter().map(|o| (*o).to_owned()).collect(),
            allowed_rate: rate,
        },
        &Context::default(),
    )
    .expect("valid")
}

fn options(origin: Option<&str>) -> OwnedRequest {
    let mut request = OwnedRequest::post("/webhooks/cloudevents", Vec::new());
    request.method = http::Method::OPTIONS;
    match origin {
        Some(origin) => request.header("webhook-request-origin", origin),
        None => request,
    }
}

const STRUCTURED: &str = r#"{"specversion":"1.0","type":"reservation.created","source":"/pms/hotel-42","id":"A234-1234-1234","time":"2024-03-15T13:59:58Z","subject":"RES-1","datacontenttype":"application/json","data":{"reservation_id":"RES-1","arrival_date":"2024-06-01"}}"#;

#[test]
fn the_handshake_grants_listed_origins_only() {
    let provider = cloudevents(&["eventemitter.example.com"], Some(120));
    let reply = provider
        .handshake(&options(Some("eventemitter.example.com")).view(), now())
        .expect("a handshake")
        .expect("granted");
    assert_eq!(reply.status, 200);
    assert!(reply.headers.contains(&(
        "WebHook-Allowed-Origin".into(),
        "eventemitter.example.com".into()
    )));
    assert!(
        reply
            .headers
            .contains(&("WebHook-Allowed-Rate".into(), "120".into()))
    );
    assert!(reply.headers.contains(&("Allow".into(), "POST".into())));
    assert_eq!(
        provider.handshake(&options(Some("evil.example.net")).view(), now()),
        Some(Err(Rejection::OriginNotAllowed))
    );
    assert_eq!(
        provider.handshake(&options(None).view(), now()),
        Some(Err(Rejection::MalformedHandshake("WebHook-Request-Origin")))
    );
    let any = cloudevents(&["*"], None)
        .handshake(&options(Some("anyone.example.org")).view(), now())
        .expect("a handshake")
        .expect("granted");
    assert!(
        any.headers
            .contains(&("WebHook-Allowed-Rate".into(), "*".into()))
    );
    // A POST is a delivery, not a handshake.
    assert_eq!(
        provider.handshake(
            &OwnedRequest::post("/webhooks/cloudevents", Vec::new()).view(),
            now()
        ),
        None
    );
}

#[test]
fn a_bearer_token_or_an_access_token_authenticates() {
    let provider = cloudevents(&[], None);
    let post = || OwnedRequest::post("/webhooks/cloudevents", STRUCTURED.as_bytes());
    assert_eq!(
        provider.check(
            &post()
                .header("authorization", &format!("Bearer {TOKEN}"))
                .view(),
            now()
        ),
        Ok(())
    );
    let mut in_query = post();
    in_query.query = Some(format!("access_token={TOKEN}"));
    assert_eq!(provider.check(&in_query.view(), now()), Ok(()));
    assert_eq!(
        provider.check(
            &post()
                .header("authorization", "Bearer cloudevents-access-token-02")
                .view(),
            now()
        ),
        Err(Rejection::BadSharedSecret)
    );
    assert_eq!(
        provider.check(
            &post()
                .header("authorization", &format!("Basic {TOKEN}"))
                .view(),
            now()
        ),
        Err(Rejection::MalformedSignature("authorization".into()))
    );
    assert_eq!(
        provider.check(&post().view(), now()),
        Err(Rejection::MissingSignature("authorization".into()))
    );
    let mut twice = post();
    twice.query = Some(format!("access_token={TOKEN}&access_token={TOKEN}"));
    assert_eq!(
        provider.check(&twice.view(), now()),
        Err(Rejection::RepeatedSignature("access_token".into()))
    );
    assert!(
        CloudEvents::from_settings(
            Settings {
                tokens: vec![Secret::new("short")],
                ..Settings::default()
            },
            &Context::default()
        )
        .is_err()
    );
}

fn normalize(request: &OwnedRequest) -> Vec<crate::event::Event> {
    let provider = cloudevents(&[], None);
    let verified = provider.verify(&request.view(), now()).expect("verified");
    provider
        .normalize(verified, &origin("cloudevents", "cloudevents"))
        .expect("normalized")
        .events
        .into_iter()
        .map(|n| n.event)
        .collect()
}

fn authorized(body: &str, content_type: &str) -> OwnedRequest {
    OwnedRequest::post("/webhooks/cloudevents", body.as_bytes())
        .header("authorization", &format!("Bearer {TOKEN}"))
        .header("content-type", content_type)
}

#[test]
fn structured_batched_and_binary_events_are_kept() {
    let events = normalize(&authorized(STRUCTURED, "application/cloudevents+json"));
    assert_eq!(events[0].providereventid, "/pms/hotel-42 A234-1234-1234");
    assert_eq!(events[0].subject.as_deref(), Some("RES-1"));
    assert_eq!(events[0].body.event_type(), EventType::ReservationCreated);
    let unknown = STRUCTURED.replace("reservation.created", "com.example.guest.arrived");
    let events = normalize(&authorized(&unknown, "application/cloudevents+json"));
    assert_eq!(events[0].body.event_type(), EventType::Unknown);
    assert_eq!(
        events[0].providereventtype.as_deref(),
        Some("com.example.guest.arrived")
    );
    let batch = format!(
        "[{STRUCTURED},{}]",
        STRUCTURED.replace("A234-1234-1234", "A234-1234-1235")
    );
    let events = normalize(&authorized(&batch, "application/cloudevents-batch+json"));
    assert_eq!(events.len(), 2);
    assert_ne!(events[0].providereventid, events[1].providereventid);
    let binary = authorized(r#"{"room":"412","status":"clean"}"#, "application/json")
        .header("ce-specversion", "1.0")
        .header("ce-type", "com.example.housekeeping.cleaned")
        .header("ce-source", "/housekeeping")
        .header("ce-id", "hk-1");
    let events = normalize(&binary);
    assert_eq!(events[0].providereventid, "/housekeeping hk-1");
    let EventBody::Unknown(data) = &events[0].body else {
        panic!("{:?}", events[0].body)
    };
    assert_eq!(data.raw["data"]["room"], "412");
    assert_eq!(data.raw["type"], "com.example.housekeeping.cleaned");
    // An authentic body that is not JSON is malformed.
    let broken = authorized("{not json", "application/cloudevents+json");
    let provider = cloudevents(&[], None);
    let verified = provider.verify(&broken.view(), now()).expect("verified");
    assert!(matches!(
        provider.normalize(verified, &origin("cloudevents", "cloudevents")),
        Err(Rejection::MalformedBody { .. })
    ));
}
