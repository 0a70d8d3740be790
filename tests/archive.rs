//! The raw archive and `porter reprocess` against real components: a porter listener, real
//! HMAC signatures computed as the vendor computes them, a real `redis-server` (single and
//! Cluster), the admin API and the `porter` binary.

mod common;

use std::time::Duration;

use common::redis_server::{RedisCluster, RedisServer};
use common::{ADMIN_TABLE, RawRequest, TestServer, config_from, repo_path};
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use porter::testing::clock::Clock;
use porter::testing::reprocess::{Options, Summary};
use porter::testing::store::{Archived, ArchivedOutcome};
use serde_json::{Value, json};
use sha2::Sha256;

const NEW_SECRET: &str = "vendor-secret-of-today";
const OLD_SECRET: &str = "vendor-secret-rotated-away";

/// A generic `hmac` vendor that signs `{timestamp}.{body}` (a 5-minute window), names its
/// events by `/id` and types by `/type`; `mapping` is its `event_types` table.
fn config(
    store: &str,
    secrets: &[&str],
    mapping: &str,
    retention: &str,
) -> porter::testing::config::Config {
    config_from(&config_text(store, secrets, mapping, retention), &[])
}

fn config_text(store: &str, secrets: &[&str], mapping: &str, retention: &str) -> String {
    let secrets: Vec<String> = secrets.iter().map(|s| format!("\"{s}\"")).collect();
    format!(
        r#"
[store]
{store}

[archive]
retention = "{retention}"

[[sources]]
name = "vendor"
provider = "hmac"
path = "/vendor"
secrets = [{secrets}]
hmac = {{ header = "X-Signature", prefix = "sha256=", signed = "{{timestamp}}.{{body}}", timestamp_header = "X-Timestamp", id_pointer = "/id", type_pointer = "/type" }}
event_types = {{ {mapping} }}

{ADMIN_TABLE}
"#,
        secrets = secrets.join(", ")
    )
}

/// The request as the vendor sends it, signed with `secret` at `at`.
fn signed(secret: &str, at: Timestamp, body: &Value) -> RawRequest {
    let body = body.to_string();
    let timestamp = at.as_second().to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    RawRequest::post("/vendor", body)
        .header("Content-Type", "application/json")
        .header("X-Timestamp", &timestamp)
        .header("X-Signature", &format!("sha256={signature}"))
        .header("Cookie", "session=not-for-the-archive")
}

/// Waits until the archive holds `count` requests (it is written after the answer).
async fn archived(server: &TestServer, count: usize) -> Vec<Archived> {
    for _ in 0..200 {
        let items = server
            .gateway
            .store
            .list_archived(Some("vendor"), None)
            .await
            .expect("list");
        if items.len() >= count {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the archive never held {count} requests");
}

async fn reprocess(server: &TestServer, since: &str, dry_run: bool) -> Summary {
    let body = json!({ "source": "vendor", "since": since, "dry_run": dry_run }).to_string();
    let response = server
        .admin(&RawRequest::post("/api/reprocess", body).header("Content-Type", "application/json"))
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    serde_json::from_str(&response.text()).expect("summary")
}

async fn events(server: &TestServer) -> Vec<Value> {
    let response = server
        .admin(&RawRequest::get("/api/events?source=vendor&limit=1000"))
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    let value: Value = serde_json::from_str(&response.text()).expect("json");
    value["events"].as_array().cloned().unwrap_or_default()
}

/// The issue's scenario on a store that survives a restart: a vendor type porter did not map
/// is stored as `unknown`; porter restarts with the mapping added and the old secret rotated
/// away, an hour later (far outside the timestamp window); reprocess turns the archived
/// request into one typed event, once.
async fn mapping_change_on(store: &str) {
    let then = Timestamp::now();
    let (clock, _hand) = Clock::manual(then);
    let before = config(store, &[NEW_SECRET, OLD_SECRET], "", "7d");
    let store_before = porter::testing::app::store_for(
        &before,
        &porter::testing::delivery::Plan::default(),
        &clock,
    )
    .expect("store");
    let server = TestServer::start_store(before, store_before, clock.clone()).await;
    let booking = json!({"id": "b-1", "type": "booking.made", "reservation_id": "R-1"});
    let other = json!({"id": "b-2", "type": "noise.other"});
    let rotated = json!({"id": "b-3", "type": "booking.made", "reservation_id": "R-3"});
    for request in [
        signed(NEW_SECRET, then, &booking),
        signed(NEW_SECRET, then, &other),
        signed(OLD_SECRET, then, &rotated),
    ] {
        let response = server.send(&request).await;
        assert_eq!(response.status, 200, "{}", response.text());
    }
    // A forgery is not archived.
    let forged = server.send(&signed("guess", then, &booking)).await;
    assert_eq!(forged.status, 401);
    let items = archived(&server, 3).await;
    assert_eq!(items.len(), 3, "authenticated requests only");
    let names: Vec<&str> = items[0].headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["content-type", "x-signature", "x-timestamp"],
        "no cookie"
    );
    let original = events(&server).await;
    assert_eq!(original.len(), 3);
    assert!(original.iter().all(|e| e["type"] == "unknown"));
    let booking_id = original
        .iter()
        .find(|e| e["data"]["raw"]["id"] == "b-1")
        .and_then(|e| e["id"].as_str())
        .expect("the booking's event")
        .to_owned();
    server.stop().await;

    // An hour later, with the mapping added and only today's secret.
    let (later, _hand) = Clock::manual(then + jiff::SignedDuration::from_hours(1));
    let after = config(
        store,
        &[NEW_SECRET],
        r#""booking.made" = "reservation.created""#,
        "7d",
    );
    // A local store is free once the first server has let go of it.
    let mut store_after = None;
    for _ in 0..250 {
        match porter::testing::app::store_for(
            &after,
            &porter::testing::delivery::Plan::default(),
            &later,
        ) {
            Ok(store) => {
                store_after = Some(store);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let store_after = store_after.expect("the store opens again");
    let server = TestServer::start_store(after, store_after, later).await;

    let dry = reprocess(&server, "2h", true).await;
    assert_eq!(
        (dry.read, dry.reverified, dry.failed_verification),
        (3, 2, 1),
        "{dry:?}"
    );
    assert_eq!(
        (dry.unchanged, dry.changed, dry.stored),
        (1, 1, 0),
        "{dry:?}"
    );
    assert_eq!(dry.changes.len(), 1);
    assert_eq!(events(&server).await.len(), 3, "a dry run stores nothing");

    // Two reprocesses at once: the store's atomic step keeps one new event.
    let (first, rival) = tokio::join!(
        reprocess(&server, "2h", false),
        reprocess(&server, "2h", false)
    );
    assert_eq!(first.changed, 1, "{first:?}");
    assert_eq!(
        (
            first.stored + rival.stored,
            first.already_stored + rival.already_stored
        ),
        (1, 1),
        "{first:?} {rival:?}"
    );
    assert_eq!(
        first.changes, rival.changes,
        "both derive the same new event"
    );
    assert_eq!(
        first.changes, dry.changes,
        "the dry run named what was stored"
    );
    let change = &first.changes[0];
    assert_eq!(change.reprocessed_from, booking_id);
    assert_eq!(change.event_type, "reservation.created");
    assert_ne!(change.id, booking_id);
    let stored = events(&server).await;
    assert_eq!(stored.len(), 4);
    let new = stored
        .iter()
        .find(|e| e["id"] == change.id.as_str())
        .expect("the new event is stored");
    assert_eq!(new["type"], "reservation.created");
    assert_eq!(new["reprocessedfrom"], booking_id.as_str());
    assert_eq!(new["data"]["reservation_id"], "R-1");
    assert_eq!(
        new["receivedat"], original[0]["receivedat"],
        "received then"
    );

    let second = reprocess(&server, "2h", false).await;
    assert_eq!((second.stored, second.already_stored), (0, 1), "{second:?}");
    assert_eq!(second.changes, first.changes, "reruns derive the same id");
    assert_eq!(
        events(&server).await.len(),
        4,
        "a second reprocess changes nothing"
    );

    // `since` bounds what is read.
    let none = reprocess(&server, "30m", false).await;
    assert_eq!(none.read, 0, "{none:?}");
    server.stop().await;
}

#[tokio::test]
async fn reprocess_maps_an_unknown_event_once_on_redis() {
    let redis = RedisServer::start();
    mapping_change_on(&format!("kind = \"redis\"\nurl = \"{}\"", redis.url())).await;
    // The archive is one stream that expires whole when nothing is appended any more.
    let ttl: i64 = redis
        .cli(&["PTTL", "porter:archive"])
        .expect("pttl")
        .trim()
        .parse()
        .expect("number");
    assert!(ttl > 6 * 86_400_000 && ttl <= 7 * 86_400_000, "{ttl}");
}

#[tokio::test]
async fn reprocess_maps_an_unknown_event_once_on_a_redis_cluster() {
    let cluster = tokio::task::spawn_blocking(|| RedisCluster::start(3))
        .await
        .expect("cluster");
    let urls: Vec<String> = cluster.urls().iter().map(|u| format!("\"{u}\"")).collect();
    mapping_change_on(&format!(
        "kind = \"redis\"\nurls = [{}]\nshards = 8",
        urls.join(", ")
    ))
    .await;
    drop(cluster);
}

#[tokio::test]
async fn reprocess_maps_an_unknown_event_once_on_the_local_store() {
    let dir = tempfile::tempdir().expect("dir");
    mapping_change_on(&format!(
        "kind = \"local\"\npath = \"{}\"",
        dir.path().join("data").display()
    ))
    .await;
}

/// The issue's erasure scenario: a vendor type porter did not map is stored as `unknown`, with
/// a guest's email in it; the guest is erased; the vendor retries the same signed request (a
/// duplicate); porter restarts with the mapping added; a reprocess must not bring her back
/// (before, the duplicate's bytes were archived again and reprocess stored a typed event with
/// her email).
async fn erased_requests_are_not_reprocessed_on(store: &str) {
    const PRIVACY: &str = "[privacy]\nkey = \"a-reprocess-test-privacy-key-of-32-bytes\"\n";
    let then = Timestamp::now();
    let (clock, _hand) = Clock::manual(then);
    let text = config_text(store, &[NEW_SECRET], "", "7d") + PRIVACY;
    let before = config_from(&text, &[]);
    let opened = porter::testing::app::store_for(
        &before,
        &porter::testing::delivery::Plan::default(),
        &clock,
    )
    .expect("store");
    let server = TestServer::start_store(before, opened, clock.clone()).await;
    let hers = json!({"id": "g-1", "type": "booking.made", "guest": {"email": "anna@example.com"}});
    let other = json!({"id": "g-2", "type": "booking.made", "guest": {"email": "ben@example.com"}});
    for body in [&hers, &other] {
        assert_eq!(
            server.send(&signed(NEW_SECRET, then, body)).await.status,
            200
        );
    }
    archived(&server, 2).await;
    let erased = server
        .admin(
            &RawRequest::post(
                "/api/erase",
                json!({"email": "anna@example.com"}).to_string(),
            )
            .header("Content-Type", "application/json"),
        )
        .await;
    assert_eq!(erased.status, 200, "{}", erased.text());
    let erased: Value = serde_json::from_str(&erased.text()).expect("json");
    assert_eq!(erased["erased"]["events"], 1, "{erased}");
    assert_eq!(erased["erased"]["archived"], 1, "{erased}");
    // The vendor's retry: the same bytes, the same signature.
    let retry = server.send(&signed(NEW_SECRET, then, &hers)).await;
    assert_eq!(retry.status, 200);
    assert_eq!(retry.header("porter-duplicate"), Some("true"));
    // A later request; once it is archived, the retry's archive write would have been done.
    let later = json!({"id": "g-3", "type": "booking.made"});
    assert_eq!(
        server.send(&signed(NEW_SECRET, then, &later)).await.status,
        200
    );
    let kept = archived(&server, 2).await;
    assert!(
        kept.iter()
            .all(|item| !String::from_utf8_lossy(&item.body).contains("anna@")),
        "the duplicate was archived"
    );
    server.stop().await;

    let (later_clock, _hand) = Clock::manual(then + jiff::SignedDuration::from_hours(1));
    let text = config_text(
        store,
        &[NEW_SECRET],
        r#""booking.made" = "reservation.created""#,
        "7d",
    ) + PRIVACY;
    let after = config_from(&text, &[]);
    let mut reopened = None;
    for _ in 0..250 {
        match porter::testing::app::store_for(
            &after,
            &porter::testing::delivery::Plan::default(),
            &later_clock,
        ) {
            Ok(store) => {
                reopened = Some(store);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let server =
        TestServer::start_store(after, reopened.expect("the store opens again"), later_clock).await;
    let summary = reprocess(&server, "2h", false).await;
    assert_eq!(summary.stored, 2, "Ben's and the later one: {summary:?}");
    let stored = events(&server).await;
    let text = serde_json::to_string(&stored).expect("json");
    assert!(!text.contains("anna@"), "her data came back: {text}");
    server.stop().await;
}

#[tokio::test]
async fn erased_requests_are_not_reprocessed_on_the_local_store() {
    let dir = tempfile::tempdir().expect("dir");
    erased_requests_are_not_reprocessed_on(&format!(
        "kind = \"local\"\npath = \"{}\"",
        dir.path().join("data").display()
    ))
    .await;
}

#[tokio::test]
async fn erased_requests_are_not_reprocessed_on_redis() {
    let redis = RedisServer::start();
    erased_requests_are_not_reprocessed_on(&format!("kind = \"redis\"\nurl = \"{}\"", redis.url()))
        .await;
}

/// Replays cost nothing but the answer, and the Redis archive is bounded in bytes as well as
/// by time: 50 replays of one signed request add nothing; 30 distinct requests of 100 KB keep
/// the archive within `max_bytes` (before, Redis grew by every replay's bytes: 100 replays of a
/// 3 MiB request took 357 MB).
#[tokio::test]
async fn replays_add_nothing_and_the_redis_archive_is_bounded_in_bytes() {
    let redis = RedisServer::start();
    let max_bytes = 1024 * 1024;
    let text = config_text(
        &format!("kind = \"redis\"\nurl = \"{}\"", redis.url()),
        &[NEW_SECRET],
        "",
        "1h",
    )
    .replace(
        "retention = \"1h\"",
        &format!("retention = \"1h\"\nmax_bytes = {max_bytes}"),
    );
    let server = TestServer::start_configured(config_from(&text, &[])).await;
    let now: Timestamp = common::FIXTURE_TIME.parse().expect("time");
    let padding = "x".repeat(100 * 1024);
    let request = |n: usize| {
        signed(
            NEW_SECRET,
            now,
            &json!({"id": format!("r-{n}"), "type": "t", "pad": padding}),
        )
    };
    assert_eq!(server.send(&request(0)).await.status, 200);
    archived(&server, 1).await;
    let used = |redis: &RedisServer| -> i64 {
        redis
            .cli(&["GET", "porter:archive:bytes"])
            .expect("get")
            .trim()
            .parse()
            .expect("a count")
    };
    let after_one = used(&redis);
    for _ in 0..50 {
        let replay = server.send(&request(0)).await;
        assert_eq!(replay.header("porter-duplicate"), Some("true"));
    }
    // One more new request: once it is archived, a replay's write would have been too.
    assert_eq!(server.send(&request(1)).await.status, 200);
    let items = archived(&server, 2).await;
    assert_eq!(items.len(), 2, "the replays were not archived");
    assert!(
        used(&redis) < 2 * after_one + 1024,
        "{} bytes",
        used(&redis)
    );
    for n in 2..32 {
        assert_eq!(server.send(&request(n)).await.status, 200);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let items = server
            .gateway
            .store
            .list_archived(None, None)
            .await
            .expect("list");
        if items
            .iter()
            .any(|i| String::from_utf8_lossy(&i.body).contains("\"r-31\""))
        {
            let total: usize = items
                .iter()
                .map(porter::testing::store::Archived::size)
                .sum();
            assert!(total <= max_bytes, "{total} bytes archived");
            assert!(items.len() >= 9, "the newest are kept: {}", items.len());
            assert_eq!(used(&redis) as usize, total, "the byte count is exact");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "r-31 was never archived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
}

/// Local: the archive is journaled and snapshotted like the events: after snapshots, more
/// appends and a removal, a restart finds exactly what was kept.
#[tokio::test]
async fn the_local_archive_survives_snapshots_and_restarts() {
    use porter::testing::store::{LocalSettings, LocalStore, Store};
    let dir = tempfile::tempdir().expect("dir");
    let settings = LocalSettings {
        snapshot_after: 16 * 1024,
        ..LocalSettings::new(dir.path().join("data"))
    };
    let open = || {
        let (store, _) = LocalStore::open(&settings, None, Clock::system()).expect("open");
        Store::Local(std::sync::Arc::new(store))
    };
    let at = Timestamp::from_millisecond(Timestamp::now().as_millisecond()).expect("now");
    let item = |i: usize| {
        vendor_request(
            at,
            vec![(
                "x-signature".to_owned(),
                bytes::Bytes::from(format!("sig{i}")),
            )],
            bytes::Bytes::from(vec![b'x'; 1000 + i]),
            ArchivedOutcome::Events(vec![(format!("evt_{i}"), "unknown".to_owned())]),
        )
    };
    let day = Duration::from_secs(86_400);
    let kept = {
        let store = open();
        let mut ids = Vec::new();
        for i in 0..60 {
            ids.push(
                store
                    .archive(item(i), day)
                    .await
                    .expect("archived")
                    .expect("kept"),
            );
        }
        let Store::Local(local) = &store else {
            unreachable!()
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while local.snapshots() < 1 {
            assert!(std::time::Instant::now() < deadline, "no snapshot written");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ids.push(
            store
                .archive(item(60), day)
                .await
                .expect("after the snapshot")
                .expect("kept"),
        );
        assert_eq!(
            store.remove_archived(&[ids[3].clone()]).await.expect("rm"),
            1
        );
        assert_eq!(
            store.remove_archived(&[ids[3].clone()]).await.expect("rm"),
            0
        );
        store.list_archived(None, None).await.expect("list")
    };
    assert_eq!(kept.len(), 60);
    let store = open();
    let restored = store.list_archived(None, None).await.expect("list");
    assert_eq!(
        restored, kept,
        "the same entries, ids and bytes after a restart"
    );
    let next = store
        .archive(item(61), day)
        .await
        .expect("archived")
        .expect("kept");
    assert!(
        !restored.iter().any(|a| a.id == next),
        "ids are never reused"
    );
}

const MEMORY: &str = "kind = \"memory\"\nprint_events = false";

/// An archived request whose body an older porter quarantined and today's parses: stored as a
/// new event naming the archived request. (Today's code cannot quarantine this body, so the
/// older porter's archive entry is written directly; its signature is real.)
#[tokio::test]
async fn a_body_quarantined_then_that_parses_now_becomes_an_event_once() {
    let at = Timestamp::now();
    let (clock, _hand) = Clock::manual(at);
    let mapping = r#""booking.made" = "reservation.created""#;
    let server = TestServer::start_with(
        config(MEMORY, &[NEW_SECRET], mapping, "1h"),
        1000,
        clock.clone(),
    )
    .await;
    let body = json!({"id": "q-1", "type": "booking.made", "reservation_id": "R-9"});
    let request = signed(NEW_SECRET, at, &body);
    let item = vendor_request(
        at,
        request
            .headers
            .iter()
            .filter(|(n, _)| n != "Cookie")
            .map(|(n, v)| (n.to_ascii_lowercase(), bytes::Bytes::from(v.clone())))
            .collect(),
        bytes::Bytes::from(request.body.clone()),
        ArchivedOutcome::Quarantined("the body is not JSON".to_owned()),
    );
    let id = server
        .gateway
        .store
        .archive(item, Duration::from_secs(3600))
        .await
        .expect("archived")
        .expect("kept");
    let dry = reprocess(&server, "1h", true).await;
    assert_eq!((dry.read, dry.changed, dry.stored), (1, 1, 0), "{dry:?}");
    assert!(events(&server).await.is_empty(), "a dry run stores nothing");
    let first = reprocess(&server, "1h", false).await;
    assert_eq!((first.changed, first.stored), (1, 1), "{first:?}");
    assert_eq!(first.changes[0].reprocessed_from, id);
    let stored = events(&server).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["reprocessedfrom"], id.as_str());
    assert_eq!(stored[0]["type"], "reservation.created");
    let second = reprocess(&server, "1h", false).await;
    assert_eq!((second.stored, second.already_stored), (0, 1), "{second:?}");
    assert_eq!(events(&server).await.len(), 1);
    server.stop().await;
}

/// Tampering: an archived body changed after the fact fails re-verification and is skipped.
#[tokio::test]
async fn a_tampered_archive_entry_fails_verification_and_is_skipped() {
    let at = Timestamp::now();
    let (clock, _hand) = Clock::manual(at);
    let server =
        TestServer::start_with(config(MEMORY, &[NEW_SECRET], "", "1h"), 1000, clock.clone()).await;
    let body = json!({"id": "t-1", "type": "booking.made"});
    assert_eq!(
        server.send(&signed(NEW_SECRET, at, &body)).await.status,
        200
    );
    let mut item = archived(&server, 1).await.remove(0);
    let store = &server.gateway.store;
    assert_eq!(
        store.remove_archived(&[item.id.clone()]).await.expect("rm"),
        1
    );
    assert_eq!(
        store.remove_archived(&[item.id.clone()]).await.expect("rm"),
        0
    );
    item.body = bytes::Bytes::from(body.to_string().replace("booking.made", "booking.mad"));
    store
        .archive(item, Duration::from_secs(3600))
        .await
        .expect("archived");
    let summary = reprocess(&server, "1h", false).await;
    assert_eq!(
        (
            summary.read,
            summary.reverified,
            summary.failed_verification,
            summary.stored
        ),
        (1, 0, 1, 0),
        "{summary:?}"
    );
    server.stop().await;
}

/// Memory: entries leave at their retention by the store's clock; `porter reprocess` then
/// finds nothing.
#[tokio::test]
async fn memory_archive_entries_expire_with_the_retention() {
    let at = Timestamp::now();
    let (clock, hand) = Clock::manual(at);
    let store = porter::testing::store::Store::Memory(std::sync::Arc::new(
        porter::testing::store::MemoryStore::new(false, 1000, clock.clone()),
    ));
    let server =
        TestServer::start_store(config(MEMORY, &[NEW_SECRET], "", "10m"), store, clock).await;
    let body = json!({"id": "e-1", "type": "x"});
    assert_eq!(
        server.send(&signed(NEW_SECRET, at, &body)).await.status,
        200
    );
    archived(&server, 1).await;
    hand.advance(Duration::from_secs(9 * 60));
    assert_eq!(reprocess(&server, "1h", true).await.read, 1);
    hand.advance(Duration::from_secs(61));
    assert_eq!(reprocess(&server, "1h", true).await.read, 0, "expired");
    server.stop().await;
}

/// Redis: each append trims what its retention has passed (`XADD … MINID`), no scan.
#[tokio::test]
async fn redis_appends_trim_entries_past_the_retention() {
    let redis = RedisServer::start();
    let store = porter::testing::store::Store::Redis(std::sync::Arc::new(
        common::redis_server::store_on(&redis),
    ));
    // The archive keeps received-at to the millisecond, as the system clock reads it.
    let now = Timestamp::from_millisecond(Timestamp::now().as_millisecond()).expect("now");
    let item = |at: Timestamp| Archived {
        query: Some("token=t".to_owned()),
        ..vendor_request(
            at,
            vec![("x-signature".to_owned(), bytes::Bytes::from_static(b"s"))],
            bytes::Bytes::from_static(b"{}"),
            ArchivedOutcome::Events(vec![("evt_1".to_owned(), "unknown".to_owned())]),
        )
    };
    let retention = Duration::from_secs(1);
    let first = store
        .archive(item(now), retention)
        .await
        .expect("first")
        .expect("kept");
    store.archive(item(now), retention).await.expect("second");
    assert_eq!(
        redis.cli(&["XLEN", "porter:archive"]).expect("xlen").trim(),
        "2"
    );
    let listed = store.list_archived(None, None).await.expect("list");
    assert_eq!(listed[0].id, first);
    assert_eq!(
        listed[0],
        Archived {
            id: first.clone(),
            ..item(now)
        },
        "round trip"
    );
    // Appended once Redis's clock (the one the entry ids and the trim read) is past the 1 s
    // retention of the first two: they are trimmed by this append.
    let second_ms: i64 = {
        let last = redis.cli(&["XREVRANGE", "porter:archive", "+", "-", "COUNT", "1"]);
        let last = last.expect("xrevrange");
        let id = last.lines().next().expect("an entry").trim().to_owned();
        id.split('-')
            .next()
            .and_then(|ms| ms.parse().ok())
            .expect("ms")
    };
    let redis_ms = || -> i64 {
        let time = redis.cli(&["TIME"]).expect("time");
        let mut parts = time
            .lines()
            .map(|l| l.trim().parse::<i64>().expect("a number"));
        let (seconds, micros) = (parts.next().expect("s"), parts.next().expect("us"));
        seconds * 1000 + micros / 1000
    };
    while redis_ms() <= second_ms + 1000 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    store.archive(item(now), retention).await.expect("third");
    assert_eq!(
        redis.cli(&["XLEN", "porter:archive"]).expect("xlen").trim(),
        "1"
    );
    assert_eq!(
        store.remove_archived(&[first]).await.expect("rm"),
        0,
        "already trimmed"
    );
    let pttl: i64 = redis
        .cli(&["PTTL", "porter:archive"])
        .expect("pttl")
        .trim()
        .parse()
        .expect("number");
    assert!(
        pttl > 0 && pttl <= 1000,
        "the key expires a retention after the last append: {pttl}"
    );
}

/// Every fixture's authenticated request, archived by the real server with only the headers
/// kept, verifies again: the kept headers are enough for every provider.
#[tokio::test]
async fn every_provider_verifies_again_from_what_the_archive_keeps() {
    let text = std::fs::read_to_string(repo_path("fixtures/porter.toml")).expect("fixtures");
    let config = config_from(&format!("{text}\n[archive]\nretention = \"7d\"\n"), &[]);
    let names: Vec<String> = config
        .sources
        .iter()
        .map(|s| s.source.name().to_owned())
        .collect();
    let server = TestServer::start(config).await;
    let mut sent = 0;
    for provider in sorted_dirs(&repo_path("fixtures")) {
        for case in sorted_dirs(&provider) {
            if let Some(request) = load_request(&case) {
                server.send(&request).await;
                sent += 1;
            }
        }
    }
    assert!(sent >= 30, "{sent}");
    // The archive is written after each answer: wait until no write is under way.
    let archiver = server.gateway.archive.as_ref().expect("archive on");
    while archiver.writing() > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut read = 0;
    let mut providers = std::collections::BTreeSet::new();
    for name in names {
        let options = Options {
            source: name.clone(),
            since: Timestamp::UNIX_EPOCH,
            dry_run: true,
        };
        let summary = porter::testing::reprocess::run(&server.gateway, &options)
            .await
            .expect("reprocess");
        assert_eq!(summary.failed_verification, 0, "{name}: {summary:?}");
        assert_eq!(summary.changed, 0, "{name}: today's code is then's code");
        if summary.read > 0 {
            providers.insert(name);
        }
        read += summary.read;
    }
    assert!(read >= 20, "{read} archived");
    assert!(providers.len() >= 10, "{providers:?}");
    server.stop().await;
}

fn sorted_dirs(path: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut dirs: Vec<_> = std::fs::read_dir(path)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn load_request(dir: &std::path::Path) -> Option<RawRequest> {
    let text = std::fs::read_to_string(dir.join("request")).ok()?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let (method, target) = lines.next()?.split_once(' ')?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Some(RawRequest {
        method: method.to_owned(),
        target: target.to_owned(),
        headers,
        body: std::fs::read(dir.join("body")).unwrap_or_default(),
    })
}

/// `porter reprocess` is a client of the running server's admin API.
#[tokio::test]
async fn the_command_asks_the_admin_api_and_prints_the_summary() {
    let at = Timestamp::now();
    let (clock, _hand) = Clock::manual(at);
    let mapping = r#""booking.made" = "reservation.created""#;
    let text = config_text(MEMORY, &[NEW_SECRET], mapping, "1h");
    let server = TestServer::start_with(config_from(&text, &[]), 1000, clock).await;
    let body = json!({"id": "c-1", "type": "booking.made"});
    assert_eq!(
        server.send(&signed(NEW_SECRET, at, &body)).await.status,
        200
    );
    archived(&server, 1).await;
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("porter.toml"), &text).expect("write");
    let admin = server.admin_addr.expect("admin").to_string();
    let run = move |extra: &'static [&'static str]| {
        let dir = dir.path().to_owned();
        let admin = admin.clone();
        move || {
            common::served::porter()
                .args(["reprocess", "--source", "vendor", "--since", "1h"])
                .args(["--config", "porter.toml", "--admin", &admin])
                .args(extra)
                .current_dir(dir)
                .output()
                .expect("runs")
        }
    };
    let output = tokio::task::spawn_blocking(run(&["--dry-run"]))
        .await
        .expect("ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("read 1, re-verified 1, failed verification 0, unchanged 1, changed 0"),
        "{stdout}"
    );
    assert!(stdout.contains("dry run"), "{stdout}");
    server.stop().await;
}

/// An archive write that fails changes nothing for the provider: the same answer, the event
/// stored; the failure is counted.
#[tokio::test]
async fn a_failing_archive_write_never_changes_the_answer() {
    let redis = RedisServer::start();
    // The archive's key holds a string: every XADD to it fails (WRONGTYPE).
    redis
        .cli(&["SET", "porter:archive", "not a stream"])
        .expect("set");
    let store = format!("kind = \"redis\"\nurl = \"{}\"", redis.url());
    let at = Timestamp::now();
    let (clock, _hand) = Clock::manual(at);
    let config = config(&store, &[NEW_SECRET], "", "1h");
    let built = porter::testing::app::store_for(
        &config,
        &porter::testing::delivery::Plan::default(),
        &clock,
    )
    .expect("store");
    let server = TestServer::start_store(config, built, clock).await;
    let response = server
        .send(&signed(NEW_SECRET, at, &json!({"id": "f-1", "type": "x"})))
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.text(), r#"{"status":"accepted","events":1}"#);
    assert_eq!(events(&server).await.len(), 1, "the event is stored");
    let mut counted = String::new();
    for _ in 0..100 {
        counted = server.metrics().await;
        if counted.contains("porter_archive_failures_total{") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let line = counted
        .lines()
        .find(|l| l.starts_with("porter_archive_failures_total{"))
        .unwrap_or_else(|| panic!("no failure counted:\n{counted}"));
    assert!(
        line.contains(r#"source="vendor""#) && line.contains(r#"reason="store""#),
        "{line}"
    );
    assert!(line.ends_with(" 1"), "{line}");
    assert_eq!(
        server
            .gateway
            .store
            .list_archived(None, None)
            .await
            .map(|items| items.len())
            .ok(),
        None,
        "the archive's key is still not a stream"
    );
    server.stop().await;
}

/// An archived POST to the `vendor` source's `/vendor`, not yet given an id.
fn vendor_request(
    at: Timestamp,
    headers: Vec<(String, bytes::Bytes)>,
    body: bytes::Bytes,
    outcome: ArchivedOutcome,
) -> Archived {
    Archived {
        id: String::new(),
        source: "vendor".to_owned(),
        received_at: at,
        method: "POST".to_owned(),
        endpoint: String::new(),
        path: "/vendor".to_owned(),
        query: None,
        headers,
        body,
        outcome,
    }
}
