//! The Redis store against real `redis-server` processes that each test starts on a free port
//! (and kills, for the failure tests): acknowledged means stored, duplicates get the original
//! answer, Redis failures are 503s that the retry recovers from, and Redis Cluster works the
//! same way.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::redis_server::{RedisCluster, RedisServer};
use common::{RawRequest, TestServer, config_from};
use porter::testing::store::Store;
use porter_providers::Secret;
use serde_json::Value;

const SECRET: &str = "redis-test-meta-secret";

fn config(store: &str, request_timeout: &str, dedupe_ttl: &str) -> porter::testing::config::Config {
    config_from(
        &format!(
            r#"
[server]
public_url = "https://hooks.example.com"
request_timeout = "{request_timeout}"

[store]
kind = "redis"
{store}

[[sources]]
name = "whatsapp"
provider = "meta"
path = "/webhooks/whatsapp"
secrets = ["{SECRET}"]
dedupe_ttl = "{dedupe_ttl}"
"#
        ),
        &[],
    )
}

fn single(redis: &RedisServer) -> porter::testing::config::Config {
    config(&format!("url = \"{}\"", redis.url()), "2s", "24h")
}

fn whatsapp(ids: &[&str]) -> RawRequest {
    common::whatsapp::messages(SECRET, ids)
}

/// Every event in every stream shard, in stream order per shard.
async fn stored(server: &TestServer) -> Vec<Value> {
    let Store::Redis(redis) = &server.gateway.store else {
        panic!("a Redis test server")
    };
    let mut events = Vec::new();
    for stream in redis.layout().streams() {
        let entries = redis.read(&stream, "-", 100_000).await.expect("XRANGE");
        for entry in entries {
            let json = entry.field("event").expect("event field");
            let event: Value = serde_json::from_slice(json).expect("event JSON");
            assert_eq!(
                entry.field("type"),
                event["type"].as_str().map(str::as_bytes)
            );
            assert_eq!(
                entry.field("source"),
                event["source"].as_str().map(str::as_bytes)
            );
            events.push(event);
        }
    }
    events
}

fn ids(events: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = events
        .iter()
        .map(|e| e["providereventid"].as_str().expect("key").to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn accepted_events_are_in_the_stream_with_type_and_source() {
    let redis = RedisServer::start();
    let server = TestServer::start_configured(single(&redis)).await;
    let response = server
        .send(&whatsapp(&["wamid.a", "wamid.b", "wamid.c"]))
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), r#"{"status":"accepted","events":3}"#);
    assert_eq!(
        ids(&stored(&server).await),
        ["wamid.a", "wamid.b", "wamid.c"]
    );
    assert_eq!(server.send(&RawRequest::get("/readyz")).await.status, 200);
}

#[tokio::test]
async fn a_duplicate_gets_the_first_answer_byte_for_byte() {
    let redis = RedisServer::start();
    let server = TestServer::start_configured(single(&redis)).await;
    let first = server.send(&whatsapp(&["wamid.dup"])).await;
    let again = server.send(&whatsapp(&["wamid.dup"])).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("porter-duplicate"), None);
    assert_eq!(again.status, 200);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("content-type"), first.header("content-type"));
    assert_eq!(again.header("porter-duplicate"), Some("true"));
    assert_eq!(stored(&server).await.len(), 1);
}

#[tokio::test]
async fn fifty_identical_requests_at_once_give_one_entry_and_fifty_200s() {
    let redis = RedisServer::start();
    let server = TestServer::start_configured(single(&redis)).await;
    let request = whatsapp(&["wamid.fifty"]);
    let answers = futures_util::future::join_all((0..50).map(|_| request.send(server.addr))).await;
    assert!(answers.iter().all(|a| a.status == 200), "{answers:?}");
    let duplicates = answers
        .iter()
        .filter(|a| a.header("porter-duplicate").is_some())
        .count();
    assert_eq!(duplicates, 49);
    assert!(answers.iter().all(|a| a.body == answers[0].body));
    assert_eq!(stored(&server).await.len(), 1);
}

#[tokio::test]
async fn a_retry_of_a_half_stored_batch_stores_only_what_is_missing() {
    let redis = RedisServer::start();
    let server = TestServer::start_configured(single(&redis)).await;
    assert_eq!(
        server
            .send(&whatsapp(&["wamid.m1", "wamid.m2"]))
            .await
            .status,
        200
    );
    // The provider's batch now carries one stored and one new message.
    let retry = server.send(&whatsapp(&["wamid.m2", "wamid.m3"])).await;
    assert_eq!(retry.status, 200);
    assert_eq!(
        retry.header("porter-duplicate"),
        None,
        "not every event was a duplicate"
    );
    assert_eq!(
        ids(&stored(&server).await),
        ["wamid.m1", "wamid.m2", "wamid.m3"]
    );
}

/// The dedupe key is remembered with the source's TTL, by Redis itself: checked on the key, then
/// its expiry simulated by deleting it (Redis's own clock is not porter's to move).
#[tokio::test]
async fn the_dedupe_key_lives_for_the_ttl_and_then_the_event_is_accepted_again() {
    let redis = RedisServer::start();
    let config = config(&format!("url = \"{}\"", redis.url()), "2s", "90m");
    let server = TestServer::start_configured(config).await;
    assert_eq!(
        server
            .send(&whatsapp(&["wamid.ttl"]))
            .await
            .header("porter-duplicate"),
        None
    );
    assert_eq!(
        server
            .send(&whatsapp(&["wamid.ttl"]))
            .await
            .header("porter-duplicate"),
        Some("true")
    );
    let keys = redis.cli(&["KEYS", "porter:dedupe:*"]).unwrap_or_default();
    let key = keys
        .lines()
        .next()
        .expect("one dedupe key")
        .trim()
        .to_owned();
    let ttl: u64 = redis
        .cli(&["PTTL", &key])
        .and_then(|t| t.trim().parse().ok())
        .expect("a TTL");
    assert!(
        (89 * 60 * 1000..=90 * 60 * 1000).contains(&ttl),
        "the key expires with the configured dedupe_ttl: {ttl} ms"
    );
    // What expiry does: the key is gone, and the same event is new again.
    redis.cli(&["DEL", &key]);
    let later = server.send(&whatsapp(&["wamid.ttl"])).await;
    assert_eq!(later.status, 200);
    assert_eq!(later.header("porter-duplicate"), None);
    assert_eq!(stored(&server).await.len(), 2);
}

#[tokio::test]
async fn redis_down_is_503_within_the_timeout_and_recovery_needs_no_restart() {
    let mut redis = RedisServer::start();
    let server = TestServer::start_configured(single(&redis)).await;
    assert_eq!(server.send(&whatsapp(&["wamid.before"])).await.status, 200);

    redis.kill();
    let started = Instant::now();
    let down = server.send(&whatsapp(&["wamid.during"])).await;
    assert_eq!(down.status, 503);
    assert_eq!(down.header("retry-after"), Some("5"));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(server.send(&RawRequest::get("/readyz")).await.status, 503);

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut answer = server.send(&whatsapp(&["wamid.during"])).await;
    while answer.status != 200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        answer = server.send(&whatsapp(&["wamid.during"])).await;
    }
    assert_eq!(answer.status, 200, "porter recovers without a restart");
    assert_eq!(
        answer.header("porter-duplicate"),
        None,
        "the request that failed is not deduplicated away"
    );
    assert_eq!(server.send(&RawRequest::get("/readyz")).await.status, 200);
    // The restarted Redis kept nothing (no persistence in this test): only the retried event.
    assert_eq!(ids(&stored(&server).await), ["wamid.during"]);
}

#[tokio::test]
async fn porter_starts_while_redis_is_down_and_serves_once_it_is_up() {
    let port = common::redis_server::free_port();
    let config = config(&format!("url = \"redis://127.0.0.1:{port}\""), "1s", "24h");
    let server = TestServer::start_configured(config).await;
    assert_eq!(server.send(&RawRequest::get("/readyz")).await.status, 503);
    assert_eq!(server.send(&whatsapp(&["wamid.early"])).await.status, 503);

    // Redis comes up on that port: porter serves, without a restart.
    let _redis = RedisServer::start_on(port);
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut answer = server.send(&whatsapp(&["wamid.early"])).await;
    while answer.status != 200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        answer = server.send(&whatsapp(&["wamid.early"])).await;
    }
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("porter-duplicate"),
        None,
        "the refused request was not remembered"
    );
    assert_eq!(server.send(&RawRequest::get("/readyz")).await.status, 200);
    assert_eq!(ids(&stored(&server).await), ["wamid.early"]);
}

#[tokio::test]
async fn no_event_is_acknowledged_unless_it_is_in_the_stream_even_across_a_crash() {
    // fsync on every write: an acknowledged event must survive SIGKILL of Redis.
    let mut redis = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let server = TestServer::start_configured(single(&redis)).await;
    // What the sender has seen so far: (200s, 503s, 200s after the first 503).
    let seen = std::sync::Arc::new([(); 3].map(|()| AtomicUsize::new(0)));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = {
        let addr = server.addr;
        let (stop, seen) = (std::sync::Arc::clone(&stop), std::sync::Arc::clone(&seen));
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let id = format!("wamid.crash{i}");
                let answer = whatsapp(&[&id]).send(addr).await;
                if answer.status == 200 {
                    acknowledged.push(id);
                    seen[0].fetch_add(1, Ordering::Relaxed);
                    if seen[1].load(Ordering::Relaxed) > 0 {
                        seen[2].fetch_add(1, Ordering::Relaxed);
                    }
                } else {
                    assert_eq!(answer.status, 503, "only 200 or 503: {answer:?}");
                    seen[1].fetch_add(1, Ordering::Relaxed);
                }
            }
            acknowledged
        })
    };
    // Kill Redis under load, bring it back once porter refuses, stop once it accepts again.
    let until = |which: usize, at_least: usize| {
        let seen = std::sync::Arc::clone(&seen);
        async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            while seen[which].load(Ordering::Relaxed) < at_least && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    until(0, 20).await;
    redis.kill();
    until(1, 5).await;
    redis.restart();
    until(2, 20).await;
    stop.store(true, Ordering::Relaxed);
    let acknowledged = sender.await.expect("sender");
    let [_, refused, recovered] = seen.as_ref().each_ref().map(|n| n.load(Ordering::Relaxed));
    eprintln!(
        "acknowledged {}, refused {refused}, acknowledged after recovery {recovered}",
        acknowledged.len()
    );
    assert!(refused > 0, "the crash happened under load");
    assert!(recovered > 0, "porter accepted again after Redis came back");
    let in_stream = ids(&stored(&server).await);
    for id in &acknowledged {
        assert!(
            in_stream.contains(id),
            "{id} was acknowledged but is not in the stream"
        );
    }
    let unique: std::collections::HashSet<&String> = in_stream.iter().collect();
    assert_eq!(
        unique.len(),
        in_stream.len(),
        "no event is in the stream twice"
    );
}

#[tokio::test]
async fn authentic_unparseable_bodies_are_quarantined_in_redis() {
    let redis = RedisServer::start();
    let server = TestServer::start_configured(single(&redis)).await;
    let body = b"{\"entry\":[".to_vec();
    let signature = porter_providers::meta::signature(&Secret::new(SECRET), &body);
    let request = RawRequest::post("/webhooks/whatsapp", body.clone())
        .header("X-Hub-Signature-256", &signature);
    assert_eq!(server.send(&request).await.status, 400);
    let Store::Redis(store) = &server.gateway.store else {
        panic!("redis")
    };
    let entries = store
        .read(&store.layout().quarantine(), "-", 10)
        .await
        .expect("read");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].field("body"), Some(body.as_slice()));
    assert_eq!(entries[0].field("source"), Some(&b"whatsapp"[..]));
}

#[tokio::test]
async fn the_quarantine_is_bounded_by_bytes() {
    use porter::testing::store::{QUARANTINE_MAX_BYTES, Quarantined};
    let redis = RedisServer::start();
    let server = TestServer::start_configured(single(&redis)).await;
    let body = bytes::Bytes::from(vec![b'{'; 3 * 1024 * 1024]);
    for i in 0..30 {
        server
            .gateway
            .store
            .quarantine(Quarantined {
                source: "whatsapp".into(),
                reason: format!("body {i}"),
                received_at: jiff::Timestamp::now(),
                content_type: None,
                body: body.clone(),
            })
            .await
            .expect("quarantined");
    }
    let Store::Redis(store) = &server.gateway.store else {
        panic!("redis")
    };
    let entries = store
        .read(&store.layout().quarantine(), "-", 100)
        .await
        .expect("read");
    let held: usize = entries
        .iter()
        .map(|e| e.field("body").map_or(0, <[u8]>::len))
        .sum();
    assert!(held <= QUARANTINE_MAX_BYTES, "{held}");
    assert_eq!(entries.len(), QUARANTINE_MAX_BYTES / body.len());
    assert_eq!(
        entries.last().and_then(|e| e.field("reason")),
        Some(&b"body 29"[..]),
        "the newest is kept"
    );
    let counted = redis
        .cli(&["GET", &store.layout().quarantine_bytes()])
        .unwrap_or_default();
    assert_eq!(counted.trim(), held.to_string());
}

#[tokio::test]
async fn optional_trimming_caps_the_stream() {
    let redis = RedisServer::start();
    let config = config(
        &format!("url = \"{}\"\nmax_len = 10", redis.url()),
        "2s",
        "24h",
    );
    let server = TestServer::start_configured(config).await;
    for i in 0..300 {
        assert_eq!(
            server
                .send(&whatsapp(&[&format!("wamid.trim{i}")]))
                .await
                .status,
            200
        );
    }
    let length = redis.cli(&["XLEN", "porter:events"]).expect("XLEN");
    let length: usize = length.trim().parse().expect("number");
    assert!(length < 300, "approximate trimming kept {length}");
}

#[tokio::test]
async fn on_a_redis_cluster_duplicates_and_concurrency_behave_the_same() {
    let cluster = tokio::task::spawn_blocking(|| RedisCluster::start(3))
        .await
        .expect("cluster");
    let urls: Vec<String> = cluster.urls().iter().map(|u| format!("\"{u}\"")).collect();
    let config = config(
        &format!("urls = [{}]\nshards = 8", urls.join(", ")),
        "3s",
        "24h",
    );
    let server = TestServer::start_configured(config).await;

    let batch: Vec<String> = (0..30).map(|i| format!("wamid.cluster{i}")).collect();
    let batch: Vec<&str> = batch.iter().map(String::as_str).collect();
    let first = server.send(&whatsapp(&batch)).await;
    assert_eq!(first.status, 200, "{first:?}");
    let again = server.send(&whatsapp(&batch)).await;
    assert_eq!(again.header("porter-duplicate"), Some("true"));
    assert_eq!(again.body, first.body);

    let request = whatsapp(&["wamid.cluster-fifty"]);
    let answers = futures_util::future::join_all((0..50).map(|_| request.send(server.addr))).await;
    assert!(answers.iter().all(|a| a.status == 200));
    assert_eq!(
        answers
            .iter()
            .filter(|a| a.header("porter-duplicate").is_some())
            .count(),
        49
    );

    let events = stored(&server).await;
    assert_eq!(events.len(), 31);
    // The 8 shards are spread over the 3 masters.
    let Store::Redis(store) = &server.gateway.store else {
        panic!("redis")
    };
    let mut used_shards = 0;
    for stream in store.layout().streams() {
        if !store.read(&stream, "-", 1).await.expect("read").is_empty() {
            used_shards += 1;
        }
    }
    assert!(
        used_shards >= 4,
        "30 keys land on several shards ({used_shards})"
    );
    drop(cluster);
}

/// `wait_replicas`: an answer waits for the replica's confirmation; without a replica to
/// confirm, the request is a 503 (the provider retries) and its event is not lost: the retry,
/// once a replica is back, is the duplicate of the stored event and confirmed in turn.
#[tokio::test]
async fn wait_replicas_answers_only_writes_a_replica_confirmed() {
    let primary = RedisServer::start();
    let replica_of = |primary: &RedisServer| {
        let port = primary.port.to_string();
        RedisServer::start_with(&["--appendonly", "no", "--replicaof", "127.0.0.1", &port])
    };
    let mut replica = replica_of(&primary);
    let synced = || {
        primary.cli(&["INFO", "replication"]).is_some_and(|info| {
            info.contains("connected_slaves:1") && info.contains("state=online")
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !synced() {
        assert!(
            std::time::Instant::now() < deadline,
            "the replica never synced"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let store = format!(
        "url = \"{}\"\nwait_replicas = 1\nwait_timeout = \"300ms\"",
        primary.url()
    );
    let server = TestServer::start_configured(config(&store, "2s", "24h")).await;
    let confirmed = server.send(&whatsapp(&["wamid.confirmed"])).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text());
    assert_eq!(
        replica
            .cli(&["XLEN", "porter:events"])
            .as_deref()
            .map(str::trim),
        Some("1"),
        "acknowledged only once on the replica"
    );

    replica.kill();
    let started = std::time::Instant::now();
    let unconfirmed = server.send(&whatsapp(&["wamid.unconfirmed"])).await;
    assert_eq!(unconfirmed.status, 503, "{}", unconfirmed.text());
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "WAIT waited"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no longer than the timeout"
    );

    let _replica = replica_of(&primary);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !synced() {
        assert!(
            std::time::Instant::now() < deadline,
            "the replica never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The provider retries; on a busy machine a retry's WAIT may still miss its 300 ms, as the
    // first did, and is answered 503 again: retry as a provider would, within a deadline.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let retried = loop {
        let answer = server.send(&whatsapp(&["wamid.unconfirmed"])).await;
        if answer.status != 503 || std::time::Instant::now() > deadline {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(retried.status, 200, "{}", retried.text());
    assert_eq!(
        ids(&stored(&server).await),
        ["wamid.confirmed", "wamid.unconfirmed"],
        "the retry found the stored event: once"
    );
}
