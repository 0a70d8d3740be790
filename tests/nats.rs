//! Delivery to NATS JetStream, on a real `nats-server -js` each test starts on a free port:
//! structured and binary CloudEvents, `Nats-Msg-Id` deduplication of a redelivery, and a
//! server killed mid-run and restarted with nothing acknowledged missing downstream.
#![cfg(feature = "nats")]

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::nats_server::{NatsServer, read_stream};
use common::{RawRequest, TestServer, config_from};

const SECRET: &str = "nats-test-meta-secret";

fn config(nats: &NatsServer, extra: &str) -> porter::testing::config::Config {
    config_from(
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
name = "pms-sync"
kind = "nats"
url = "{}"
create_stream = true
timeout = "2s"
retry = ["100ms", "200ms", "500ms", "1s", "1s", "1s", "1s", "1s", "1s", "1s"]
{extra}
"#,
            nats.url()
        ),
        &[],
    )
}

fn whatsapp(ids: &[String]) -> RawRequest {
    common::whatsapp::messages(SECRET, ids)
}

fn ids(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("wamid.{prefix}{i}")).collect()
}

/// Waits until the stream holds `count` messages, and returns them.
async fn wait_for_messages(
    nats: &NatsServer,
    count: usize,
    limit: Duration,
) -> Vec<(async_nats::HeaderMap, bytes::Bytes)> {
    let deadline = Instant::now() + limit;
    loop {
        let client = async_nats::connect(nats.url()).await.expect("connect");
        let jetstream = async_nats::jetstream::new(client);
        let held = match jetstream.get_stream("pms-sync").await {
            Ok(mut stream) => stream.info().await.map_or(0, |i| i.state.messages as usize),
            Err(_) => 0,
        };
        if held >= count {
            return read_stream(&nats.url(), "pms-sync").await;
        }
        assert!(
            Instant::now() < deadline,
            "the stream holds {held} of {count} messages"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn header<'a>(headers: &'a async_nats::HeaderMap, name: &str) -> &'a str {
    headers.get(name).map_or("", |v| v.as_str())
}

#[tokio::test]
async fn events_are_published_once_even_when_delivered_again() {
    let nats = NatsServer::start();
    let server = TestServer::start_delivering(config(&nats, "")).await;
    let sent = ids("a", 3);
    assert_eq!(server.send(&whatsapp(&sent)).await.status, 200);
    let messages = wait_for_messages(&nats, 3, Duration::from_secs(10)).await;
    let stored = server.events();
    for ((headers, body), event) in messages.iter().zip(&stored) {
        let published: serde_json::Value = serde_json::from_slice(body).expect("JSON body");
        assert_eq!(&published, event, "the structured CloudEvent, as stored");
        assert_eq!(
            header(headers, "Nats-Msg-Id"),
            event["id"].as_str().expect("id")
        );
        assert_eq!(
            header(headers, "Content-Type"),
            "application/cloudevents+json"
        );
    }

    // A redelivery (the PubAck was lost, or porter restarted before recording it) publishes
    // the same event again: JetStream's duplicate window absorbs it, and it counts as
    // delivered.
    let destination = &server_config(&nats).destinations[0];
    let porter::testing::config::DestinationKind::Nats(nats_destination) = &destination.kind else {
        panic!("nats")
    };
    let sender = porter::testing::delivery::nats::NatsSender::new(
        "pms-sync",
        nats_destination,
        &destination.delivery,
    );
    let first = &stored[0];
    let (response, _) = sender
        .send(
            first["id"].as_str().expect("id"),
            &serde_json::to_string(first).expect("json"),
        )
        .await;
    assert_eq!(
        response,
        porter::testing::delivery::Response::Delivered { status: None }
    );
    let again = read_stream(&nats.url(), "pms-sync").await;
    assert_eq!(again.len(), 3, "a consumer reads each event exactly once");
    server.stop().await;
}

fn server_config(nats: &NatsServer) -> porter::testing::config::Config {
    config(nats, "")
}

#[tokio::test]
async fn binary_mode_puts_the_attributes_in_headers_and_data_in_the_body() {
    let nats = NatsServer::start();
    let server = TestServer::start_delivering(config(
        &nats,
        "mode = \"binary\"\nsubject = \"hotel.{source}.{type}\"",
    ))
    .await;
    assert_eq!(server.send(&whatsapp(&ids("b", 1))).await.status, 200);
    let messages = wait_for_messages(&nats, 1, Duration::from_secs(10)).await;
    let (headers, body) = &messages[0];
    let event = &server.events()[0];
    assert_eq!(header(headers, "ce-id"), event["id"].as_str().expect("id"));
    assert_eq!(header(headers, "ce-type"), "message.received");
    assert_eq!(header(headers, "ce-source"), "/sources/whatsapp");
    assert_eq!(header(headers, "ce-specversion"), "1.0");
    assert_eq!(header(headers, "Content-Type"), "application/json");
    assert_eq!(
        header(headers, "Nats-Msg-Id"),
        event["id"].as_str().expect("id")
    );
    let data: serde_json::Value = serde_json::from_slice(body).expect("JSON data");
    assert_eq!(data, event["data"]);
    server.stop().await;
}

#[tokio::test]
async fn without_a_stream_attempts_fail_and_say_why() {
    let nats = NatsServer::start();
    let server = TestServer::start_delivering(config(&nats, "").tap_no_stream()).await;
    assert_eq!(server.send(&whatsapp(&ids("c", 1))).await.status, 200);
    let schedule = server.memory().deliveries().expect("schedules");
    let event_id = server.events()[0]["id"].as_str().expect("id").to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    let reason = loop {
        let found = schedule
            .find("pms-sync", &event_id)
            .map(|(_, attempts)| attempts)
            .unwrap_or_default()
            .into_iter()
            .find_map(|a| match a.outcome {
                porter::testing::store::Outcome::Failed(reason) => Some(reason),
                porter::testing::store::Outcome::Delivered => None,
            });
        if let Some(reason) = found {
            break reason;
        }
        assert!(Instant::now() < deadline, "no failed attempt recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        reason.contains("porter.whatsapp.message.received"),
        "{reason}"
    );
    assert!(
        reason.contains(&format!("127.0.0.1:{}", nats.port)),
        "{reason}"
    );
    server.stop().await;
}

trait NoStream {
    fn tap_no_stream(self) -> Self;
}

impl NoStream for porter::testing::config::Config {
    /// The same destination, without `create_stream`: nothing captures the subject.
    fn tap_no_stream(mut self) -> Self {
        if let porter::testing::config::DestinationKind::Nats(nats) = &mut self.destinations[0].kind
        {
            nats.create_stream = None;
        }
        self
    }
}

/// The reasons of the failed delivery attempts so far.
fn failed_attempts(server: &TestServer) -> Vec<String> {
    let schedule = server.memory().deliveries().expect("schedules");
    server
        .events()
        .iter()
        .filter_map(|event| schedule.find("pms-sync", event["id"].as_str()?))
        .flat_map(|(_, attempts)| attempts)
        .filter_map(|attempt| match attempt.outcome {
            porter::testing::store::Outcome::Failed(reason) => Some(reason),
            porter::testing::store::Outcome::Delivered => None,
        })
        .collect()
}

#[tokio::test]
async fn a_server_killed_mid_run_loses_nothing_porter_acknowledged() {
    let mut nats = NatsServer::start();
    let server = TestServer::start_delivering(config(&nats, "")).await;
    let mut acknowledged = HashSet::new();
    for round in 0..30 {
        if round == 10 {
            nats.kill();
        }
        if round == 20 {
            // The outage lasts until attempts have failed (and are to be retried).
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while failed_attempts(&server).is_empty() {
                assert!(std::time::Instant::now() < deadline, "no attempt failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            nats.restart();
        }
        let batch = ids(&format!("k{round}-"), 5);
        let answer = server.send(&whatsapp(&batch)).await;
        assert_eq!(answer.status, 200, "ingest does not depend on the broker");
        acknowledged.extend(batch);
        // Pacing only: the batches spread over the run, so that some are in flight when the
        // server dies and some while it is away.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let messages = wait_for_messages(&nats, acknowledged.len(), Duration::from_secs(30)).await;
    let delivered: Vec<String> = messages
        .iter()
        .map(|(_, body)| {
            let event: serde_json::Value = serde_json::from_slice(body).expect("JSON");
            event["providereventid"].as_str().expect("id").to_owned()
        })
        .collect();
    let unique: HashSet<String> = delivered.iter().cloned().collect();
    assert_eq!(
        unique, acknowledged,
        "every acknowledged event is downstream"
    );
    assert_eq!(
        delivered.len(),
        unique.len(),
        "each exactly once in the stream"
    );
    let retried = failed_attempts(&server);
    assert!(!retried.is_empty(), "the outage made attempts fail");
    eprintln!("{} failed attempts, e.g. {}", retried.len(), retried[0]);
    server.stop().await;
}

#[tokio::test]
async fn an_events_traceparent_travels_as_a_header() {
    let nats = NatsServer::start();
    let config = config(&nats, "");
    let destination = &config.destinations[0];
    let porter::testing::config::DestinationKind::Nats(nats_destination) = &destination.kind else {
        panic!("nats")
    };
    let sender = porter::testing::delivery::nats::NatsSender::new(
        "pms-sync",
        nats_destination,
        &destination.delivery,
    );
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let event = format!(
        r#"{{"specversion":"1.0","id":"evt_t","source":"/sources/whatsapp","type":"message.received","traceparent":"{traceparent}","data":{{}}}}"#
    );
    let (response, _) = sender.send("evt_t", &event).await;
    assert_eq!(
        response,
        porter::testing::delivery::Response::Delivered { status: None }
    );
    let messages = read_stream(&nats.url(), "pms-sync").await;
    assert_eq!(header(&messages[0].0, "traceparent"), traceparent);
}

#[tokio::test]
async fn a_stream_deleted_while_porter_runs_is_created_again() {
    let nats = NatsServer::start();
    let server = TestServer::start_delivering(config(&nats, "")).await;
    assert_eq!(server.send(&whatsapp(&ids("d", 1))).await.status, 200);
    wait_for_messages(&nats, 1, Duration::from_secs(10)).await;
    let client = async_nats::connect(nats.url()).await.expect("connect");
    let jetstream = async_nats::jetstream::new(client);
    jetstream.delete_stream("pms-sync").await.expect("deleted");
    assert_eq!(server.send(&whatsapp(&ids("e", 2))).await.status, 200);
    let messages = wait_for_messages(&nats, 2, Duration::from_secs(10)).await;
    let delivered: HashSet<String> = messages
        .iter()
        .map(|(_, body)| {
            let event: serde_json::Value = serde_json::from_slice(body).expect("JSON");
            event["providereventid"].as_str().expect("id").to_owned()
        })
        .collect();
    assert_eq!(delivered, ids("e", 2).into_iter().collect());
    server.stop().await;
}
