//! `[telemetry] sample_ratio`: a real porter keeps about that share of request traces, each
//! whole (the request span and its steps), and nothing of the others; every event still
//! names a trace, with the sampled flag saying which; a delivery follows its event's trace.
//!
//! The subscriber is process-wide, so this is a test binary of its own (see tracing.rs).
#![cfg(feature = "otel")]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::collector::Collector;
use common::receiver::{Receiver, verify_standard_webhooks};
use common::{RawRequest, TestServer, config_from};
use porter::testing::telemetry::LogFormat;
use porter::testing::trace::{Traceparent, Tracing};
use porter_providers::Secret;

const SECRET: &str = "sampled-test-meta-secret";
const WHSEC: &str = "whsec_ZGVsaXZlcnktdGVzdC1zaWduaW5nLWtleQ==";
const REQUESTS: usize = 200;
const RATIO: f64 = 0.25;

fn message(n: usize) -> RawRequest {
    let body = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"P"}},"messages":[{{"from":"15550001111","id":"wamid.sampled{n}","timestamp":"1710511200","type":"text","text":{{"body":"hello"}}}}]}}}}]}}]}}"#
    );
    let signature = porter_providers::meta::signature(&Secret::new(SECRET), body.as_bytes());
    RawRequest::post("/webhooks/whatsapp", body).header("X-Hub-Signature-256", &signature)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sample_ratio_keeps_whole_traces_and_deliveries_follow_them() {
    let collector = Collector::start().await;
    let receiver = Receiver::start(Vec::new()).await;
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

[telemetry]
otlp_endpoint = "http://{collector}"
sample_ratio = {RATIO}
"#,
            url = receiver.url(),
            collector = collector.addr,
        ),
        &[],
    );
    let tracing = Tracing::start(config.telemetry.as_ref().expect("tracing is configured"))
        .expect("the exporter starts");
    porter::testing::telemetry::init_logging(LogFormat::Text, Some(&tracing));
    let server = TestServer::start_delivering(config).await;
    for n in 0..REQUESTS {
        let answer = server.send(&message(n)).await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    let received = receiver.wait_for(REQUESTS, Duration::from_secs(20)).await;
    server.stop().await;
    tracing.shutdown().await;

    let spans = collector.spans();
    let named = |name: &str| {
        spans
            .iter()
            .map(|(_, span)| span)
            .filter(|s| s.name == name)
            .collect::<Vec<_>>()
    };
    let requests = named("porter.request");
    let kept: HashSet<Vec<u8>> = requests.iter().map(|s| s.trace_id.clone()).collect();
    // Binomial(200, 0.25): mean 50, standard deviation 6.1; five of them either side.
    assert!(
        (19..=81).contains(&requests.len()),
        "{} of {REQUESTS} request traces kept at {RATIO}",
        requests.len()
    );
    assert_eq!(kept.len(), requests.len(), "one trace per kept request");
    for step in ["porter.verify", "porter.normalize", "porter.store"] {
        let steps = named(step);
        assert_eq!(
            steps.len(),
            requests.len(),
            "{step}: every kept request's, no other"
        );
        assert!(steps.iter().all(|s| kept.contains(&s.trace_id)), "{step}");
    }

    // Every event names a trace; the flag says whether it was kept.
    let mut sampled = HashSet::new();
    for delivery in &received {
        assert!(verify_standard_webhooks(WHSEC, delivery));
        let event = delivery.event();
        let traceparent = Traceparent::parse(event["traceparent"].as_str().expect("traceparent"))
            .expect("a W3C traceparent");
        assert_eq!(delivery.header("traceparent"), traceparent.to_string());
        if traceparent.is_sampled() {
            sampled.insert(traceparent.trace_id.to_vec());
        } else {
            assert!(!kept.contains(traceparent.trace_id.as_slice()));
        }
    }
    assert_eq!(
        sampled, kept,
        "the sampled flag is set exactly on the kept traces"
    );

    // A delivery is traced when its event's trace was kept, and only then.
    let attempts = named("porter.deliver");
    assert_eq!(attempts.len(), kept.len(), "one attempt per kept event");
    for attempt in attempts {
        assert_eq!(attempt.links.len(), 1);
        assert!(kept.contains(&attempt.links[0].trace_id));
    }
}
