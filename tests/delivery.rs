//! Delivery to a real receiver on a loopback port: signed requests, retries on failures,
//! `Retry-After`, timeouts, dead letters, filters, order; with the memory store and with a real
//! `redis-server`.

mod common;

use std::time::{Duration, Instant};

use common::receiver::{Answer, Receiver, verify_standard_webhooks};
use common::redis_server::RedisServer;
use common::{RawRequest, TestServer, config_from};
use porter::testing::store::Store;
use porter_providers::Secret;

const SECRET: &str = "delivery-test-meta-secret";
const WHSEC: &str = "whsec_ZGVsaXZlcnktdGVzdC1zaWduaW5nLWtleQ==";

fn config(store: &str, destination: &str) -> porter::testing::config::Config {
    config_from(
        &format!(
            r#"
[server]
public_url = "https://hooks.example.com"

[store]
{store}

[[sources]]
name = "whatsapp"
provider = "meta"
path = "/webhooks/whatsapp"
secrets = ["{SECRET}"]

[[destinations]]
name = "guest-messaging"
kind = "http"
secret = "{WHSEC}"
{destination}
"#
        ),
        &[],
    )
}

fn memory(destination: &str) -> porter::testing::config::Config {
    config("kind = \"memory\"\nprint_events = false", destination)
}

fn whatsapp(ids: &[&str]) -> RawRequest {
    common::whatsapp::messages(SECRET, ids)
}

async fn send(server: &TestServer, ids: &[&str]) {
    let answer = server.send(&whatsapp(ids)).await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

#[tokio::test]
async fn events_arrive_signed_as_cloudevents() {
    let receiver = Receiver::start(vec![]).await;
    let server =
        TestServer::start_delivering(memory(&format!("url = \"{}\"", receiver.url()))).await;
    send(&server, &["wamid.d1"]).await;
    let received = receiver.wait_for(1, Duration::from_secs(5)).await;
    let request = &received[0];
    assert_eq!(
        request.header("content-type"),
        "application/cloudevents+json"
    );
    assert!(
        verify_standard_webhooks(WHSEC, request),
        "the receiver verifies porter's signature"
    );
    let event = request.event();
    assert_eq!(event["providereventid"], "wamid.d1");
    // Tracing is off (no [telemetry]): no trace context, in the event or on the request.
    assert!(event.get("traceparent").is_none(), "{event}");
    assert!(request.headers.get("traceparent").is_none());
    assert_eq!(
        request.header("webhook-id"),
        event["id"].as_str().expect("id")
    );
    // Delivered and out of the schedule: nothing can send it again.
    wait_until_done(&server, "guest-messaging").await;
    assert_eq!(receiver.received().len(), 1, "delivered once");
    server.stop().await;
}

/// Waits until a destination's schedule is empty (every event delivered or dead-lettered).
async fn wait_until_done(server: &TestServer, destination: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while memory_schedule(server).waiting(destination) > 0 {
        assert!(
            Instant::now() < deadline,
            "{destination} still has events scheduled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_500_is_retried_and_then_delivered() {
    let receiver = Receiver::start(vec![Answer::status(500), Answer::status(502)]).await;
    let server = TestServer::start_delivering(memory(&format!(
        "url = \"{}\"\nretry = [\"100ms\", \"100ms\", \"100ms\"]",
        receiver.url()
    )))
    .await;
    send(&server, &["wamid.retry"]).await;
    let received = receiver.wait_for(3, Duration::from_secs(5)).await;
    let ids: Vec<&str> = received.iter().map(|r| r.header("webhook-id")).collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "every attempt carries the same webhook-id"
    );
    assert!(
        received[1].at - received[0].at >= Duration::from_millis(80),
        "the schedule's delay was kept"
    );
    // Delivered: out of the schedule, so no attempt can follow.
    server.settled("guest-messaging").await;
    assert_eq!(receiver.received().len(), 3, "no attempt after the 200");
    let Store::Memory(memory) = &server.gateway.store else {
        panic!("memory")
    };
    assert!(
        memory
            .deliveries()
            .expect("queue")
            .dead_letters()
            .is_empty()
    );
    server.stop().await;
}

#[tokio::test]
async fn retry_after_on_a_429_is_honoured() {
    let receiver = Receiver::start(vec![Answer {
        status: 429,
        retry_after: Some(1),
        delay: Duration::ZERO,
    }])
    .await;
    let server = TestServer::start_delivering(memory(&format!(
        "url = \"{}\"\nretry = [\"50ms\"]",
        receiver.url()
    )))
    .await;
    send(&server, &["wamid.slowdown"]).await;
    let received = receiver.wait_for(2, Duration::from_secs(5)).await;
    let waited = received[1].at - received[0].at;
    assert!(
        waited >= Duration::from_millis(950),
        "waited {waited:?}, not the 50 ms of the schedule"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_timeout_is_a_failure_that_is_retried() {
    let slow = Answer {
        status: 200,
        retry_after: None,
        delay: Duration::from_secs(2),
    };
    let receiver = Receiver::start(vec![slow]).await;
    let server = TestServer::start_delivering(memory(&format!(
        "url = \"{}\"\ntimeout = \"300ms\"\nretry = [\"100ms\"]",
        receiver.url()
    )))
    .await;
    send(&server, &["wamid.timeout"]).await;
    let received = receiver.wait_for(2, Duration::from_secs(5)).await;
    assert!(
        received[1].at - received[0].at < Duration::from_secs(1),
        "retried after the timeout, not after the slow answer"
    );
    server.stop().await;
}

#[tokio::test]
async fn after_the_last_attempt_the_event_is_dead_lettered_with_every_attempt() {
    let receiver = Receiver::start(vec![]).await;
    receiver.always(Answer::status(503));
    let server = TestServer::start_delivering(memory(&format!(
        "url = \"{}\"\nretry = [\"50ms\", \"50ms\"]",
        receiver.url()
    )))
    .await;
    send(&server, &["wamid.dead"]).await;
    receiver.wait_for(3, Duration::from_secs(5)).await;
    let Store::Memory(memory) = &server.gateway.store else {
        panic!("memory")
    };
    let queue = memory.deliveries().expect("queue");
    let deadline = Instant::now() + Duration::from_secs(5);
    while queue.dead_letters().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let dead = queue.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].attempts.len(),
        3,
        "the first attempt and the two retries"
    );
    assert!(dead[0].attempts.iter().all(|a| a.status == Some(503)
        && a.outcome == porter::testing::store::Outcome::Failed("status 503".into())));
    // Dead-lettered: out of the schedule, so no attempt can follow.
    server.settled("guest-messaging").await;
    assert_eq!(receiver.received().len(), 3, "nothing after dead-lettering");
    server.stop().await;
}

#[tokio::test]
async fn filters_decide_what_a_destination_gets() {
    let receiver = Receiver::start(vec![]).await;
    let server = TestServer::start_delivering(memory(&format!(
        "url = \"{}\"\nevents = [\"message.status_changed\"]",
        receiver.url()
    )))
    .await;
    // A message (not for this destination), then a status (for it): once the status has
    // arrived, the message before it was passed over, not merely not yet sent.
    send(&server, &["wamid.filtered"]).await;
    let status = r#"{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"P"},"statuses":[{"id":"wamid.sent","status":"delivered","timestamp":"1710511200","recipient_id":"1"}]}}]}]}"#;
    let signature = porter_providers::meta::signature(&Secret::new(SECRET), status.as_bytes());
    let answer = server
        .send(
            &RawRequest::post("/webhooks/whatsapp", status)
                .header("X-Hub-Signature-256", &signature),
        )
        .await;
    assert_eq!(answer.status, 200);
    let received = receiver.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(received[0].event()["type"], "message.status_changed");
    // Nothing else is scheduled for this destination once the status is done.
    wait_until_done(&server, "guest-messaging").await;
    assert_eq!(receiver.received().len(), 1);
    server.stop().await;
}

/// The memory store's delivery schedules.
fn memory_schedule(server: &TestServer) -> &porter::testing::store::MemorySchedule {
    let Store::Memory(memory) = &server.gateway.store else {
        panic!("memory")
    };
    memory.deliveries().expect("schedules")
}

#[tokio::test]
async fn an_ordered_destination_holds_later_events_behind_a_failing_one() {
    let receiver = Receiver::start(vec![Answer::status(500), Answer::status(500)]).await;
    let server = TestServer::start_delivering(memory(&format!(
        "url = \"{}\"\nordered = true\nretry = [\"150ms\", \"150ms\"]",
        receiver.url()
    )))
    .await;
    send(&server, &["wamid.first"]).await;
    send(&server, &["wamid.second"]).await;
    let received = receiver.wait_for(4, Duration::from_secs(5)).await;
    let order: Vec<String> = received
        .iter()
        .map(|r| {
            r.event()["providereventid"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert_eq!(
        order,
        ["wamid.first", "wamid.first", "wamid.first", "wamid.second"]
    );
    server.stop().await;
}

#[tokio::test]
async fn on_redis_dead_letters_are_listed_replayed_and_delivered() {
    let redis = RedisServer::start();
    let receiver = Receiver::start(vec![]).await;
    receiver.always(Answer::status(500));
    let store = format!("kind = \"redis\"\nurl = \"{}\"", redis.url());
    let text_config = |destination: &str| config(&store, destination);
    let destination = format!("url = \"{}\"\nretry = [\"50ms\"]", receiver.url());
    let server = TestServer::start_delivering(text_config(&destination)).await;
    send(&server, &["wamid.r1", "wamid.r2"]).await;
    receiver.wait_for(4, Duration::from_secs(10)).await;
    let dead = wait_for_dead_letters(&redis, 2).await;
    assert_eq!(dead, 2);

    // The receiver recovers; `porter dlq replay --all` puts both back.
    receiver.always(Answer::status(200));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("porter.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\npublic_url = \"https://hooks.example.com\"\n[store]\n{store}\n[[sources]]\nname = \"whatsapp\"\nprovider = \"meta\"\npath = \"/webhooks/whatsapp\"\nsecrets = [\"{SECRET}\"]\n[[destinations]]\nname = \"guest-messaging\"\nkind = \"http\"\nsecret = \"{WHSEC}\"\n{destination}\n"
        ),
    )
    .expect("write");
    let porter = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_porter"))
            .args(args)
            .arg("--config")
            .arg(&path)
            .output()
            .expect("porter runs")
    };
    let list = porter(&["dlq", "list"]);
    let listed = String::from_utf8_lossy(&list.stdout);
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(
        listed.contains("destination=guest-messaging") && listed.contains("attempts=2"),
        "{listed}"
    );
    let replay = porter(&["dlq", "replay", "--all"]);
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    let received = receiver.wait_for(6, Duration::from_secs(10)).await;
    let delivered: std::collections::HashSet<&str> = received[4..]
        .iter()
        .map(|r| r.header("webhook-id"))
        .collect();
    assert_eq!(delivered.len(), 2, "both replayed events were delivered");
    assert_eq!(wait_for_dead_letters(&redis, 0).await, 0);

    // `porter events show` tells the story of one of them.
    let event_id = received[4].header("webhook-id").to_owned();
    let show = porter(&["events", "show", &event_id]);
    let story = String::from_utf8_lossy(&show.stdout);
    assert!(story.contains("guest-messaging: delivered"), "{story}");
    assert_eq!(story.matches("status 500").count(), 2, "{story}");
    assert!(story.contains("200  delivered"), "{story}");
    server.stop().await;
}

async fn wait_for_dead_letters(redis: &RedisServer, count: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let length: usize = redis
            .cli(&["XLEN", "porter:dlq"])
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        if length == count || Instant::now() > deadline {
            return length;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_work_and_a_killed_one_loses_nothing() {
    use common::served::{Served, signal};

    let redis = RedisServer::start();
    let receiver = Receiver::start(vec![]).await;
    // Slow enough that both instances have their four attempts in flight when one dies.
    receiver.always(Answer {
        status: 200,
        retry_after: None,
        delay: Duration::from_secs(1),
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("porter.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\npublic_url = \"https://hooks.example.com\"\n[store]\nkind = \"redis\"\nurl = \"{}\"\n\
             [[sources]]\nname = \"whatsapp\"\nprovider = \"meta\"\npath = \"/webhooks/whatsapp\"\nsecrets = [\"{SECRET}\"]\n\
             [[destinations]]\nname = \"guest-messaging\"\nkind = \"http\"\nsecret = \"{WHSEC}\"\nurl = \"{}\"\n\
             timeout = \"2s\"\nconcurrency = 4\nretry = [\"200ms\", \"200ms\", \"200ms\"]\n",
            redis.url(),
            receiver.url()
        ),
    )
    .expect("write");
    let config = path.to_str().expect("utf-8").to_owned();
    let first = Served::start(dir.path(), &["--config", &config]);
    let second = Served::start(dir.path(), &["--config", &config]);

    let ids: Vec<String> = (0..40).map(|i| format!("wamid.shared{i}")).collect();
    for chunk in ids.chunks(4) {
        let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let answer = whatsapp(&chunk).send(first.addr).await;
        assert_eq!(answer.status, 200);
    }
    receiver.wait_for(8, Duration::from_secs(10)).await;
    // A crash in the middle of delivering: no goodbye, leases left behind.
    signal(&first.child, "KILL");

    let deadline = Instant::now() + Duration::from_secs(30);
    let delivered = loop {
        let received = receiver.received();
        let distinct: std::collections::HashSet<String> = received
            .iter()
            .map(|r| {
                r.event()["providereventid"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect();
        if distinct.len() == ids.len() || Instant::now() > deadline {
            break (received, distinct);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (_, distinct) = delivered;
    assert_eq!(
        distinct.len(),
        ids.len(),
        "every acknowledged event was delivered"
    );
    // The killed instance's attempts reached the receiver but were never recorded as done:
    // when their leases (2 × 2 s + 1 s) run out, the other instance delivers them again, and
    // the schedule empties.
    let deadline = Instant::now() + Duration::from_secs(30);
    while redis
        .cli(&["ZCARD", "porter:schedule:guest-messaging"])
        .is_none_or(|n| n.trim() != "0")
    {
        assert!(
            Instant::now() < deadline,
            "leases left behind were never taken over"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let received = receiver.received();
    let duplicates = received.len() - distinct.len();
    // Any event delivered twice (the killed instance's in-flight ones) carried one webhook-id.
    let mut by_event: std::collections::HashMap<String, std::collections::HashSet<String>> =
        Default::default();
    for request in &received {
        let key = request.event()["providereventid"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        by_event
            .entry(key)
            .or_default()
            .insert(request.header("webhook-id").to_owned());
    }
    assert!(
        by_event.values().all(|ids| ids.len() == 1),
        "one webhook-id per event"
    );
    assert!(
        (1..=8).contains(&duplicates),
        "the killed instance's attempts in flight were taken over, and only those: {duplicates}"
    );
    eprintln!(
        "delivered {} distinct events with {duplicates} duplicate deliveries",
        distinct.len()
    );
    let (stopped, _, _) = second.terminate();
    assert!(stopped);
    drop(first);
}

#[tokio::test]
async fn a_redis_stream_destination_gets_its_consumer_group_and_delivery_metrics_count() {
    let redis = RedisServer::start();
    let receiver = Receiver::start(vec![Answer::status(500)]).await;
    let config = config_from(
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
name = "crm"
kind = "redis_stream"
[[destinations]]
name = "metrics-probe"
kind = "http"
url = "{}"
secret = "{WHSEC}"
retry = ["50ms"]
"#,
            redis.url(),
            receiver.url()
        ),
        &[],
    );
    let server = TestServer::start_delivering(config).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !redis
        .cli(&["XINFO", "GROUPS", "porter:events"])
        .is_some_and(|g| g.contains("crm"))
    {
        assert!(Instant::now() < deadline, "the crm group was never created");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    send(&server, &["wamid.m1", "wamid.m2", "wamid.m3"]).await;
    // A service reading with the group gets every event.
    let read = redis
        .cli(&[
            "XREADGROUP",
            "GROUP",
            "crm",
            "crm-1",
            "COUNT",
            "10",
            "STREAMS",
            "porter:events",
            ">",
        ])
        .expect("read");
    for id in ["wamid.m1", "wamid.m2", "wamid.m3"] {
        assert!(read.contains(id), "{read}");
    }
    receiver.wait_for(4, Duration::from_secs(5)).await;
    let metrics = porter::testing::telemetry::metrics_handle().render();
    assert!(
        metrics.contains(r#"porter_delivery_attempts_total{destination="metrics-probe"}"#),
        "{metrics}"
    );
    assert!(
        metrics
            .contains(r#"porter_deliveries_total{destination="metrics-probe",result="delivered"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"porter_deliveries_total{destination="metrics-probe",result="failed"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("porter_delivery_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"porter_consumer_lag{destination="#),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn nothing_is_stored_before_the_destination_groups_exist() {
    use std::sync::Arc;
    // Redis is not there yet when porter starts.
    let port = common::redis_server::free_port();
    let receiver = Receiver::start(vec![]).await;
    let config = config(
        &format!("kind = \"redis\"\nurl = \"redis://127.0.0.1:{port}\""),
        &format!("url = \"{}\"", receiver.url()),
    );
    let plan = porter::testing::delivery::Plan::of(&config).expect("plan");
    let clock = porter::testing::server::Clock::system();
    let store = porter::testing::app::store_for(&config, &plan, &clock).expect("store");
    let server = TestServer::start_store(config, store, clock.clone()).await;
    let schedules =
        porter::testing::delivery::schedules_for(&server.gateway.store).expect("schedules");
    let deliveries = porter::testing::delivery::Deliveries::start(
        schedules,
        plan,
        Arc::clone(&server.gateway.intake),
        clock,
        Arc::clone(&server.gateway.activity),
    );
    assert!(!server.gateway.intake_open());
    assert_eq!(server.send(&whatsapp(&["wamid.early"])).await.status, 503);
    assert_eq!(server.send(&RawRequest::get("/readyz")).await.status, 503);

    // Redis comes up on that port; the groups are created, then events are stored, and the
    // first one stored is delivered.
    let _redis = RedisServer::start_on(port);
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut answer = server.send(&whatsapp(&["wamid.early"])).await;
    while answer.status != 200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        answer = server.send(&whatsapp(&["wamid.early"])).await;
    }
    assert_eq!(answer.status, 200);
    let received = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(received[0].event()["providereventid"], "wamid.early");
    deliveries.stop().await;
    server.stop().await;
}

/// `porter dlq replay` can run between the moment an instance writes a dead letter and the
/// moment it takes the entry out of the schedule. The replay must win: the instance only
/// removes an entry whose due time is still the end of its own lease.
#[tokio::test]
async fn a_replay_in_the_middle_of_dead_lettering_is_not_undone() {
    use porter::testing::store::{RedisSchedule, Schedule};

    let redis = RedisServer::start();
    let store = common::redis_server::store_on(&redis);
    let queue = RedisSchedule::new(std::sync::Arc::new(store), "test".to_owned());
    let schedule = queue.store().layout().schedule("frontdesk", 0);
    let dead_letters = queue.store().layout().dead_letters();
    let cli = |args: &[&str]| redis.cli(args).expect("redis-cli").trim().to_owned();
    let entry = cli(&["XADD", "porter:events", "*", "event", "{}", "id", "evt_1"]);
    cli(&["ZADD", &schedule, "0", &entry]);
    let now = jiff::Timestamp::now().as_millisecond();
    let jobs = queue
        .lease("frontdesk", 0, common::lease(10, false, now, now + 60_000))
        .await
        .expect("lease");
    assert_eq!(jobs.len(), 1);

    // The instance wrote the dead letter; before it takes the entry out, an operator replays.
    cli(&[
        "XADD",
        &dead_letters,
        "*",
        "destination",
        "frontdesk",
        "shard",
        "0",
        "entry",
        &entry,
    ]);
    let written = queue
        .store()
        .read(&dead_letters, "-", 10)
        .await
        .expect("dead letters");
    queue.replay(&written[0], now).await.expect("replay");
    queue
        .complete("frontdesk", &jobs[0])
        .await
        .expect("complete");
    assert_eq!(
        cli(&["ZSCORE", &schedule, &entry]),
        now.to_string(),
        "the replayed entry is still scheduled, due now"
    );
    assert_eq!(cli(&["XLEN", &dead_letters]), "0");

    // Without a replay, completing takes the entry out.
    let jobs = queue
        .lease("frontdesk", 0, common::lease(10, false, now, now + 30_000))
        .await
        .expect("lease");
    queue
        .complete("frontdesk", &jobs[0])
        .await
        .expect("complete");
    assert_eq!(cli(&["ZSCORE", &schedule, &entry]), "");
}
