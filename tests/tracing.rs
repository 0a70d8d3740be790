//! Tracing end to end: a real porter exporting OTLP/HTTP to a collector in this test, and
//! delivering to a real HTTP receiver. One trace joins ingest and delivery: the request span
//! with its `verify`, `normalize` and `store` children; every delivery attempt's span links to
//! it; the delivered CloudEvent names it in its `traceparent`, in the body and as a header.
//!
//! The subscriber is process-wide, so this file is a test binary of its own and installs it
//! once, as `porter serve` does (`Tracing::start`, then `init_logging`).
#![cfg(feature = "otel")]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::collector::{Collector, text};
use common::receiver::{Answer, Receiver, verify_standard_webhooks};
use common::{RawRequest, TestServer, config_from};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use porter::testing::telemetry::LogFormat;
use porter::testing::trace::{Traceparent, Tracing};
use porter_providers::Secret;

const SECRET: &str = "tracing-test-meta-secret";
const WHSEC: &str = "whsec_ZGVsaXZlcnktdGVzdC1zaWduaW5nLWtleQ==";
/// What a guest wrote and who they are: neither may appear in a span.
const GUEST_TEXT: &str = "room 512 please call me";
const GUEST_PHONE: &str = "15551234567";
const MESSAGE_ID: &str = "wamid.tracing1";

fn attributes(span: &Span) -> HashMap<String, String> {
    span.attributes
        .iter()
        .map(|a| {
            (
                a.key.clone(),
                text(a.value.as_ref().and_then(|v| v.value.as_ref())),
            )
        })
        .collect()
}

/// An integer attribute, as OpenTelemetry types it.
fn int(span: &Span, key: &str) -> Option<i64> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| {
        match a.value.as_ref()?.value.as_ref()? {
            Value::IntValue(n) => Some(*n),
            _ => None,
        }
    })
}

fn whatsapp() -> RawRequest {
    let body = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"P"}},"contacts":[{{"wa_id":"{GUEST_PHONE}","profile":{{"name":"Guest"}}}}],"messages":[{{"from":"{GUEST_PHONE}","id":"{MESSAGE_ID}","timestamp":"1710511200","type":"text","text":{{"body":"{GUEST_TEXT}"}}}}]}}}}]}}]}}"#
    );
    let signature = porter_providers::meta::signature(&Secret::new(SECRET), body.as_bytes());
    RawRequest::post("/webhooks/whatsapp?hub.token=query-secret", body)
        .header("X-Hub-Signature-256", &signature)
        // A provider's own trace context is unsigned: porter starts a trace of its own.
        .header(
            "traceparent",
            "00-99999999999999999999999999999999-8888888888888888-01",
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_joins_ingest_and_every_delivery_attempt() {
    let collector = Collector::start().await;
    // The first attempt fails, the second delivers: two attempts, both linked to the request.
    let receiver = Receiver::start(vec![Answer::status(500)]).await;
    let config = config_from(
        &format!(
            r#"
[store]
kind = "memory"
print_events = false

[[sources]]
name = "whatsapp"
provider = "meta"
path = "/webhooks/whatsapp"
secrets = ["{SECRET}"]

[[destinations]]
name = "guest-messaging"
kind = "http"
url = "{url}"
secret = "{WHSEC}"
retry = ["100ms"]

[telemetry]
otlp_endpoint = "http://{collector}"
service_name = "porter-tracing-test"
"#,
            url = receiver.url(),
            collector = collector.addr,
        ),
        &[],
    );
    // As `porter serve` does.
    let tracing = Tracing::start(config.telemetry.as_ref().expect("tracing is configured"))
        .expect("the exporter starts");
    porter::testing::telemetry::init_logging(LogFormat::Text, Some(&tracing));
    assert!(porter::testing::trace::enabled(), "the layer is installed");

    let server = TestServer::start_delivering(config).await;
    let answer = server.send(&whatsapp()).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let received = receiver.wait_for(2, Duration::from_secs(10)).await;
    // Stopping drains the deliveries in flight (their spans end), then the exporter sends
    // what is still queued.
    server.stop().await;
    tracing.shutdown().await;

    // What the receiver got: the event names the ingest trace, in the body and the header.
    let delivered = &received[1];
    assert!(verify_standard_webhooks(WHSEC, delivered));
    let event = delivered.event();
    let in_body = event["traceparent"]
        .as_str()
        .expect("the event carries traceparent")
        .to_owned();
    let traceparent = Traceparent::parse(&in_body).expect("a W3C traceparent");
    assert_eq!(traceparent.to_string(), in_body, "in canonical form");
    assert!(traceparent.is_sampled());
    for attempt in &received {
        assert_eq!(
            attempt.header("traceparent"),
            in_body,
            "the header is the event's"
        );
        assert_eq!(attempt.event()["traceparent"], in_body.as_str());
    }
    assert_ne!(
        hex::encode(traceparent.trace_id),
        "99999999999999999999999999999999",
        "the provider's unsigned traceparent is not continued"
    );

    // What the collector got.
    let spans = collector.spans();
    let names: Vec<&str> = spans.iter().map(|(_, s)| s.name.as_str()).collect();
    assert!(
        spans
            .iter()
            .all(|(service, _)| service == "porter-tracing-test"),
        "{spans:?}"
    );
    let named = |name: &str| -> Vec<&Span> {
        spans
            .iter()
            .map(|(_, s)| s)
            .filter(|s| s.name == name)
            .collect()
    };
    let requests = named("porter.request");
    assert_eq!(requests.len(), 1, "one request span: {names:?}");
    let request = requests[0];
    let trace_id = traceparent.trace_id.to_vec();
    let span_id = traceparent.span_id.to_vec();
    assert_eq!(
        request.trace_id, trace_id,
        "the event names the request's trace"
    );
    assert_eq!(request.span_id, span_id, "and the request span itself");
    assert!(
        request.parent_span_id.is_empty(),
        "the request span is a root"
    );
    assert_eq!(request.kind, 2, "SPAN_KIND_SERVER");
    let attrs = attributes(request);
    assert_eq!(attrs["porter.source"], "whatsapp");
    assert_eq!(attrs["porter.provider"], "meta");
    assert_eq!(attrs["http.request.method"], "POST");
    assert_eq!(attrs["http.route"], "/webhooks/whatsapp");
    assert_eq!(int(request, "http.response.status_code"), Some(200));
    assert_eq!(attrs["porter.outcome"], "accepted");
    assert_eq!(int(request, "porter.events"), Some(1));
    assert_eq!(int(request, "porter.duplicates"), Some(0));

    for (step, outcome) in [
        ("porter.verify", "verified"),
        ("porter.normalize", "normalized"),
        ("porter.store", "stored"),
    ] {
        let found = named(step);
        assert_eq!(found.len(), 1, "{step}: {names:?}");
        let child = found[0];
        assert_eq!(child.trace_id, trace_id, "{step} is in the request's trace");
        assert_eq!(
            child.parent_span_id, span_id,
            "{step} is a child of the request"
        );
        assert!(
            child.start_time_unix_nano >= request.start_time_unix_nano
                && child.end_time_unix_nano <= request.end_time_unix_nano,
            "{step} happens within the request"
        );
        assert_eq!(attributes(child)["porter.outcome"], outcome, "{step}");
    }

    let mut attempts = named("porter.deliver");
    assert_eq!(attempts.len(), 2, "one span per attempt: {names:?}");
    attempts.sort_by_key(|s| s.start_time_unix_nano);
    for (number, (attempt, outcome)) in attempts.iter().zip(["failed", "delivered"]).enumerate() {
        assert_ne!(
            attempt.trace_id, trace_id,
            "an attempt has a trace of its own"
        );
        assert!(attempt.parent_span_id.is_empty());
        assert_eq!(attempt.kind, 3, "SPAN_KIND_CLIENT");
        assert_eq!(attempt.links.len(), 1, "{attempt:?}");
        assert_eq!(
            attempt.links[0].trace_id, trace_id,
            "linked to the ingest trace"
        );
        assert_eq!(attempt.links[0].span_id, span_id, "and its request span");
        let attrs = attributes(attempt);
        assert_eq!(attrs["porter.destination"], "guest-messaging");
        assert_eq!(attrs["porter.destination.kind"], "http");
        assert_eq!(attrs["porter.event_id"], event["id"].as_str().expect("id"));
        assert_eq!(int(attempt, "porter.attempt"), Some(number as i64 + 1));
        assert_eq!(attrs["porter.outcome"], outcome);
        let status = if outcome == "delivered" { 200 } else { 500 };
        assert_eq!(int(attempt, "http.response.status_code"), Some(status));
    }

    // Nothing a guest wrote, nothing identifying them, no query string, no secret.
    for (_, span) in &spans {
        for (key, value) in attributes(span) {
            for secret in [GUEST_TEXT, GUEST_PHONE, MESSAGE_ID, "query-secret", SECRET] {
                assert!(
                    !value.contains(secret),
                    "{} carries {secret} in {key}",
                    span.name
                );
            }
        }
    }
}
