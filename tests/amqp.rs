//! Delivery to RabbitMQ (AMQP 0-9-1): publisher confirms, persistent messages with the event id,
//! a nack from a full queue, an unroutable event returned under `mandatory`, and a broker node
//! killed and restarted, with nothing acknowledged by porter's ingest missing afterwards.
#![cfg(feature = "amqp")]

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::rabbitmq::{self, OwnBroker, SHARED, unique};
use common::{RawRequest, TestServer, config_from};
use lapin::types::{AMQPValue, FieldTable};
use porter::testing::store::Outcome;

const SECRET: &str = "amqp-test-meta-secret";

fn config(url: &str, exchange: &str, extra: &str) -> porter::testing::config::Config {
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
name = "crm"
kind = "amqp"
url = "{url}"
exchange = "{exchange}"
timeout = "2s"
{extra}
"#
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

/// Every failure reason recorded for the events stored so far.
fn failures(server: &TestServer) -> Vec<String> {
    let schedule = server.memory().deliveries().expect("schedules");
    server
        .events()
        .iter()
        .filter_map(|event| schedule.find("crm", event["id"].as_str()?))
        .flat_map(|(_, attempts)| attempts)
        .filter_map(|attempt| match attempt.outcome {
            Outcome::Failed(reason) => Some(reason),
            Outcome::Delivered => None,
        })
        .collect()
}

#[tokio::test]
async fn events_are_confirmed_persistent_and_carry_their_id() {
    let (exchange, queue) = (unique("x"), unique("q"));
    let (_connection, channel) = rabbitmq::channel(SHARED).await;
    rabbitmq::exchange_and_queue(&channel, &exchange, &queue, FieldTable::default()).await;
    let server = TestServer::start_delivering(config(SHARED, &exchange, "")).await;
    assert_eq!(server.send(&whatsapp(&ids("p", 3))).await.status, 200);
    let messages = rabbitmq::wait_for(&channel, &queue, 3, Duration::from_secs(10)).await;
    let stored = server.events();
    for message in &messages {
        let event: serde_json::Value =
            serde_json::from_slice(&message.delivery.data).expect("JSON body");
        assert!(
            stored.contains(&event),
            "the structured CloudEvent, as stored"
        );
        let properties = &message.delivery.properties;
        assert_eq!(
            properties.message_id().as_ref().map(|s| s.as_str()),
            event["id"].as_str()
        );
        assert_eq!(
            properties.content_type().as_ref().map(|s| s.as_str()),
            Some("application/cloudevents+json")
        );
        assert_eq!(*properties.delivery_mode(), Some(2), "persistent");
        assert_eq!(message.delivery.routing_key.as_str(), "message.received");
        assert_eq!(message.delivery.exchange.as_str(), exchange);
    }
    assert!(failures(&server).is_empty(), "{:?}", failures(&server));
    server.stop().await;
    rabbitmq::clean_up(&channel, &exchange, Some(&queue)).await;
}

#[tokio::test]
async fn a_nack_from_a_full_queue_is_a_failed_attempt_retried_until_there_is_room() {
    let (exchange, queue) = (unique("x"), unique("q"));
    let (_connection, channel) = rabbitmq::channel(SHARED).await;
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongInt(1));
    args.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    rabbitmq::exchange_and_queue(&channel, &exchange, &queue, args).await;
    let server = TestServer::start_delivering(config(
        SHARED,
        &exchange,
        "concurrency = 1\nretry = [\"100ms\", \"100ms\", \"100ms\", \"100ms\", \"100ms\", \"100ms\", \"100ms\", \"100ms\"]",
    ))
    .await;
    assert_eq!(server.send(&whatsapp(&ids("n", 3))).await.status, 200);
    // The queue holds one: the others are nacked until a consumer makes room.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !failures(&server).iter().any(|r| r.contains("nacked")) {
        assert!(Instant::now() < deadline, "{:?}", failures(&server));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut read = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while read.len() < 3 {
        for message in rabbitmq::drain(&channel, &queue).await {
            read.insert(
                message
                    .delivery
                    .properties
                    .message_id()
                    .clone()
                    .expect("id")
                    .to_string(),
            );
        }
        assert!(Instant::now() < deadline, "{} of 3", read.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stored: HashSet<String> = server
        .events()
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(read, stored);
    server.stop().await;
    rabbitmq::clean_up(&channel, &exchange, Some(&queue)).await;
}

#[tokio::test]
async fn an_unroutable_event_is_returned_and_then_dead_lettered() {
    let exchange = unique("x");
    let (_connection, channel) = rabbitmq::channel(SHARED).await;
    let server =
        TestServer::start_delivering(config(SHARED, &exchange, "retry = [\"50ms\"]")).await;
    assert_eq!(server.send(&whatsapp(&ids("u", 1))).await.status, 200);
    let schedule = server.memory().deliveries().expect("schedules");
    let deadline = Instant::now() + Duration::from_secs(10);
    while schedule.dead_letters().is_empty() {
        assert!(Instant::now() < deadline, "not dead-lettered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let dead = &schedule.dead_letters()[0];
    assert_eq!(dead.attempts.len(), 2);
    for attempt in &dead.attempts {
        let Outcome::Failed(reason) = &attempt.outcome else {
            panic!("not delivered")
        };
        assert!(
            reason.starts_with("returned by the broker: 312 NO_ROUTE"),
            "{reason}"
        );
        assert!(
            reason.contains(&exchange) && reason.contains("message.received"),
            "{reason}"
        );
    }
    server.stop().await;
    rabbitmq::clean_up(&channel, &exchange, None).await;
}

#[tokio::test]
async fn a_broker_killed_and_restarted_loses_nothing_porter_acknowledged() {
    let mut broker = OwnBroker::start();
    let (exchange, queue) = (unique("x"), unique("q"));
    {
        let (connection, channel) = rabbitmq::channel(&broker.url()).await;
        rabbitmq::exchange_and_queue(&channel, &exchange, &queue, FieldTable::default()).await;
        drop(channel);
        drop(connection);
    }
    // Retries for about 90 s: a RabbitMQ node takes seconds to start, many more on a machine
    // busy with a parallel test run, and events must outlast it rather than dead-letter.
    let retry = format!("retry = [\"200ms\", \"500ms\"{}]", ", \"1s\"".repeat(88));
    let server = TestServer::start_delivering(config(&broker.url(), &exchange, &retry)).await;
    let mut acknowledged = HashSet::new();
    for round in 0..20 {
        if round == 8 {
            broker.kill();
        }
        if round == 14 {
            broker.restart();
        }
        let batch = ids(&format!("r{round}-"), 5);
        assert_eq!(
            server.send(&whatsapp(&batch)).await.status,
            200,
            "ingest does not depend on the broker"
        );
        acknowledged.extend(batch);
        // Pacing only: the batches spread over the run (the test asserts on what arrives,
        // and that some attempts failed, which the outage makes certain).
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_connection, channel) = rabbitmq::channel(&broker.url()).await;
    let mut delivered = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        for message in rabbitmq::drain(&channel, &queue).await {
            let event: serde_json::Value =
                serde_json::from_slice(&message.delivery.data).expect("JSON body");
            delivered.push(event["providereventid"].as_str().expect("id").to_owned());
        }
        let unique_ids: HashSet<String> = delivered.iter().cloned().collect();
        if unique_ids == acknowledged {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} acknowledged events downstream",
            unique_ids.len(),
            acknowledged.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let failed = failures(&server);
    assert!(!failed.is_empty(), "the outage made attempts fail");
    eprintln!(
        "{} messages for {} events ({} redelivered, to be deduplicated by message_id); {} failed attempts, e.g. {}",
        delivered.len(),
        acknowledged.len(),
        delivered.len() - acknowledged.len(),
        failed.len(),
        failed[0]
    );
    server.stop().await;
}

#[tokio::test]
async fn an_events_traceparent_travels_as_a_header() {
    let (exchange, queue) = (unique("x"), unique("q"));
    let (_connection, channel) = rabbitmq::channel(SHARED).await;
    rabbitmq::exchange_and_queue(&channel, &exchange, &queue, FieldTable::default()).await;
    let config = config(SHARED, &exchange, "");
    let destination = &config.destinations[0];
    let porter::testing::config::DestinationKind::Amqp(amqp) = &destination.kind else {
        panic!("amqp")
    };
    let sender = porter::testing::delivery::amqp::AmqpSender::new(amqp, &destination.delivery);
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let event = format!(
        r#"{{"specversion":"1.0","id":"evt_t","source":"/sources/whatsapp","type":"message.received","traceparent":"{traceparent}","data":{{}}}}"#
    );
    let (response, _) = sender.send("evt_t", &event).await;
    assert_eq!(
        response,
        porter::testing::delivery::Response::Delivered { status: None }
    );
    let messages = rabbitmq::wait_for(&channel, &queue, 1, Duration::from_secs(5)).await;
    let headers = messages[0]
        .delivery
        .properties
        .headers()
        .clone()
        .expect("headers");
    let value = headers
        .inner()
        .get("traceparent")
        .expect("a traceparent header");
    assert_eq!(value, &AMQPValue::LongString(traceparent.into()));
    rabbitmq::clean_up(&channel, &exchange, Some(&queue)).await;
}
