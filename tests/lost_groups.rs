//! Redis losing consumer groups: a restart without persistence, a FLUSHALL, a deleted group.
//! Every event porter acknowledges afterwards must still reach its destinations, and events
//! delivered before must not all be delivered again.

mod common;

use std::time::{Duration, Instant};

use common::receiver::{Received, Receiver};
use common::redis_server::RedisServer;
use common::{RawRequest, TestServer, config_from};
use porter_providers::Secret;

const SECRET: &str = "lost-groups-meta-secret";
const WHSEC: &str = "whsec_ZGVsaXZlcnktdGVzdC1zaWduaW5nLWtleQ==";

fn config(redis: &RedisServer, receiver: &Receiver) -> porter::testing::config::Config {
    config_from(
        &format!(
            r#"
[store]
kind = "redis"
url = "{}"

[[sources]]
name = "whatsapp"
provider = "meta"
path = "/webhooks/whatsapp"
secrets = ["{SECRET}"]

[[destinations]]
name = "guest-messaging"
kind = "http"
url = "{}"
secret = "{WHSEC}"
retry = ["100ms", "100ms", "100ms", "100ms", "100ms"]

[[destinations]]
name = "crm"
kind = "redis_stream"
"#,
            redis.url(),
            receiver.url()
        ),
        &[],
    )
}

fn whatsapp(id: &str) -> RawRequest {
    let body = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"P"}},"messages":[{{"from":"1","id":"{id}","timestamp":"1710511200","type":"text","text":{{"body":"hi"}}}}]}}}}]}}]}}"#
    );
    let signature = porter_providers::meta::signature(&Secret::new(SECRET), body.as_bytes());
    RawRequest::post("/webhooks/whatsapp", body).header("X-Hub-Signature-256", &signature)
}

/// Sends until porter answers 200 (a 503 while Redis is restarting is the promise kept).
async fn send(server: &TestServer, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = server.send(&whatsapp(id)).await;
        if answer.status == 200 {
            return;
        }
        assert_eq!(answer.status, 503, "{answer:?}");
        assert!(Instant::now() < deadline, "never accepted: {answer:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ids(received: &[Received]) -> Vec<String> {
    let mut ids: Vec<String> = received
        .iter()
        .map(|r| {
            r.event()["providereventid"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    ids.sort();
    ids
}

/// The group names on the stream, as `XINFO GROUPS` lists them.
fn groups(redis: &RedisServer) -> String {
    redis
        .cli(&["XINFO", "GROUPS", "porter:events"])
        .unwrap_or_default()
}

#[tokio::test]
async fn events_acknowledged_after_redis_restarts_empty_are_delivered() {
    let mut redis = RedisServer::start();
    let receiver = Receiver::start(vec![]).await;
    let server = TestServer::start_delivering(config(&redis, &receiver)).await;
    send(&server, "wamid.before").await;
    receiver.wait_for(1, Duration::from_secs(5)).await;

    // The review's repro: Redis without persistence restarts, and loses every group.
    redis.restart();
    send(&server, "wamid.after1").await;
    send(&server, "wamid.after2").await;
    let received = receiver.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(
        ids(&received),
        ["wamid.after1", "wamid.after2", "wamid.before"]
    );
    // Both groups exist again; the service's group sees both new events.
    let groups = groups(&redis);
    assert!(
        groups.contains("guest-messaging") && groups.contains("crm"),
        "{groups}"
    );
    let read = redis
        .cli(&[
            "XREADGROUP",
            "GROUP",
            "crm",
            "c1",
            "COUNT",
            "10",
            "STREAMS",
            "porter:events",
            ">",
        ])
        .unwrap_or_default();
    assert!(
        read.contains("wamid.after1") && read.contains("wamid.after2"),
        "{read}"
    );
    // Nothing left to deliver: no attempt can follow.
    server.settled("guest-messaging").await;
    assert_eq!(receiver.received().len(), 3, "each delivered once");
    server.stop().await;
}

#[tokio::test]
async fn events_acknowledged_after_a_flushall_are_delivered() {
    let redis = RedisServer::start();
    let receiver = Receiver::start(vec![]).await;
    let server = TestServer::start_delivering(config(&redis, &receiver)).await;
    send(&server, "wamid.f0").await;
    receiver.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(
        redis.cli(&["FLUSHALL"]).map(|s| s.trim().to_owned()),
        Some("OK".into())
    );
    // Nothing is sent: the worker meets NOGROUP and recreates its group itself.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !groups(&redis).contains("guest-messaging") {
        assert!(
            std::time::Instant::now() < deadline,
            "the group was never recreated"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    send(&server, "wamid.f1").await;
    let received = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(ids(&received), ["wamid.f0", "wamid.f1"]);
    server.stop().await;
}

#[tokio::test]
async fn a_deleted_group_is_recreated_where_porter_had_got_to() {
    let redis = RedisServer::start();
    let receiver = Receiver::start(vec![]).await;
    let server = TestServer::start_delivering(config(&redis, &receiver)).await;
    for id in ["wamid.d1", "wamid.d2"] {
        send(&server, id).await;
    }
    receiver.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(
        redis
            .cli(&["XGROUP", "DESTROY", "porter:events", "guest-messaging"])
            .map(|s| s.trim().to_owned()),
        Some("1".into())
    );
    send(&server, "wamid.d3").await;
    let received = receiver.wait_for(3, Duration::from_secs(10)).await;
    // Nothing left to deliver (a group recreated at the stream's start would have d1 and d2
    // to deliver again, and this would wait for them): no attempt can follow.
    server.settled("guest-messaging").await;
    // The group came back at its cursor: d3 is delivered, d1 and d2 are not delivered again.
    assert_eq!(ids(&received), ["wamid.d1", "wamid.d2", "wamid.d3"]);
    assert_eq!(receiver.received().len(), 3);
    server.stop().await;
}

/// The append itself never stores into a stream that lacks a wanted group: with no delivery
/// worker running at all, the first event after a loss finds its groups in place, positioned
/// before it.
#[tokio::test]
async fn the_append_recreates_missing_groups_before_the_event() {
    use porter_providers::{Normalized, Reply};

    let redis = RedisServer::start();
    let store = common::redis_server::store_on(&redis);
    store.expect_groups(&["a".to_owned(), "b".to_owned()]);
    let origin = porter_providers::event::Origin {
        source_name: "s",
        provider: "meta",
        received_at: jiff::Timestamp::now(),
    };
    let event = origin.event(
        porter_providers::event::Attributes {
            key: "k1".into(),
            ..Default::default()
        },
        porter_providers::EventBody::Unknown(porter_providers::event::UnknownData {
            reason: "test".into(),
            raw: serde_json::json!({}),
        }),
    );
    let store = porter::testing::store::Store::Redis(std::sync::Arc::new(store));
    let stored = store
        .enqueue(
            &[Normalized::from(event)],
            &Reply::accepted(1),
            Duration::from_secs(60),
        )
        .await
        .expect("stored");
    assert_eq!(stored.new, 1);
    for group in ["a", "b"] {
        let read = redis
            .cli(&[
                "XREADGROUP",
                "GROUP",
                group,
                "c",
                "STREAMS",
                "porter:events",
                ">",
            ])
            .unwrap_or_default();
        assert!(
            read.contains("evt_"),
            "group {group} sees the event: {read}"
        );
    }
}
