//! The local store on a real directory: what it keeps across a restart, its lock, a torn last
//! write, damage, snapshots, and group commit. (What every store does alike is in
//! `stores.rs`; kill -9 under load, a power cut, a full and a read-only disk are in
//! `bench/faults`.)

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use porter::testing::config::Filter;
use porter::testing::server::Clock;
use porter::testing::store::inspect::EventQuery;
use porter::testing::store::{
    Attempt, LocalSettings, LocalStore, MemorySchedule, Next, Outcome, Quarantined, Schedule,
    Schedules, Store,
};
use porter_providers::{Normalized, Reply};

const TTL: Duration = Duration::from_secs(3600);

fn event(key: &str) -> Normalized {
    common::unknown_event(
        key,
        serde_json::json!({ "key": key, "text": "a \"quoted\" line\nand ünïcode" }),
    )
}

fn settings(dir: &Path) -> LocalSettings {
    LocalSettings::new(dir.join("data"))
}

fn open_with(settings: &LocalSettings) -> Store {
    let schedule = Arc::new(MemorySchedule::new(
        &[("crm".to_owned(), Filter::default())],
        1_000_000,
    ));
    let (store, _) = LocalStore::open(settings, Some(schedule), Clock::system()).expect("open");
    Store::Local(Arc::new(store))
}

fn local(store: &Store) -> &LocalStore {
    match store {
        Store::Local(local) => local,
        _ => unreachable!("a local store"),
    }
}

fn schedule(store: &Store) -> porter::testing::store::LocalSchedule {
    match store.schedules() {
        Some(Schedules::Local(schedule)) => porter::testing::store::LocalSchedule::clone(&schedule),
        _ => unreachable!("local schedules"),
    }
}

async fn enqueue(store: &Store, keys: &[&str]) {
    let events: Vec<Normalized> = keys.iter().map(|k| event(k)).collect();
    let outcome = store
        .enqueue(&events, &Reply::text("first"), TTL)
        .await
        .expect("enqueued");
    assert_eq!(outcome.new, keys.len());
}

fn journal(dir: &Path) -> std::path::PathBuf {
    let mut journals: Vec<_> = std::fs::read_dir(dir.join("data"))
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    journals.sort();
    journals.pop().expect("a journal")
}

#[tokio::test]
async fn everything_is_there_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = settings(dir.path());
    let dead_id;
    {
        let store = open_with(&settings);
        enqueue(&store, &["a", "b", "c"]).await;
        let now = Clock::system().now_ms();
        let schedule = schedule(&store);
        let jobs = schedule
            .lease("crm", 0, common::lease(10, false, now + 1, now + 30_000))
            .await
            .expect("lease");
        assert_eq!(jobs.len(), 3);
        let failed = Attempt {
            at: jiff::Timestamp::now(),
            status: Some(503),
            outcome: Outcome::Failed("status 503".into()),
            duration_ms: 2,
        };
        schedule
            .finish("crm", &jobs[0], failed.clone(), Next::DeadLettered)
            .await
            .expect("dead");
        schedule
            .finish(
                "crm",
                &jobs[1],
                failed.clone(),
                Next::Retry { due_ms: now + 5 },
            )
            .await
            .expect("retry");
        let delivered = Attempt {
            status: Some(200),
            outcome: Outcome::Delivered,
            ..failed
        };
        schedule
            .finish("crm", &jobs[2], delivered, Next::Done)
            .await
            .expect("done");
        schedule.set_paused("crm", true).await.expect("pause");
        store.save_ohip_offset("opera", "42").await.expect("offset");
        store
            .quarantine(Quarantined {
                source: "s".into(),
                reason: "not JSON".into(),
                received_at: jiff::Timestamp::now(),
                content_type: Some("text/plain".into()),
                body: bytes::Bytes::from_static(b"\xff\x00 binary"),
            })
            .await
            .expect("quarantine");
        dead_id = Schedules::Local(Arc::new(schedule))
            .dead_letters(10)
            .await
            .expect("dlq")[0]
            .id
            .clone();
    }

    let store = open_with(&settings);
    let again = store
        .enqueue(&[event("b")], &Reply::text("second"), TTL)
        .await
        .expect("enqueued");
    assert!(again.is_duplicate(), "the dedupe key survived");
    assert_eq!(again.original, Some(Reply::text("first")));
    let kept = store
        .recent_events(&EventQuery {
            limit: 10,
            ..EventQuery::default()
        })
        .await
        .expect("events");
    assert_eq!(kept.len(), 3);
    assert!(kept[0].json.contains("ünïcode"), "{}", kept[0].json);
    let schedules = store.schedules().expect("schedules");
    let dead = schedules.dead_letters(10).await.expect("dlq");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, dead_id);
    let schedule = schedule(&store);
    assert!(
        schedule.is_paused("crm").await.expect("paused"),
        "pause kept"
    );
    assert_eq!(
        schedule.backlog("crm").await.expect("backlog"),
        1,
        "one retry"
    );
    schedule.set_paused("crm", false).await.expect("resume");
    let now = Clock::system().now_ms();
    let jobs = schedule
        .lease("crm", 0, common::lease(10, false, now + 10, now + 30_000))
        .await
        .expect("lease");
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].attempts, 1, "its attempt kept");
    let delivered = store.find_event(&event("c").event.id).await.expect("find");
    let state = schedules
        .state_of("crm", &delivered.expect("kept"))
        .await
        .expect("state");
    assert_eq!(
        state.map(|(s, _)| s),
        Some(porter::testing::store::JobState::Delivered)
    );
    assert_eq!(
        store.ohip_offset("opera").await.expect("offset").as_deref(),
        Some("42")
    );
    let quarantined = local(&store).memory().quarantined();
    assert_eq!(quarantined.len(), 1);
    assert_eq!(&quarantined[0].body[..], b"\xff\x00 binary");
}

#[tokio::test]
async fn a_second_process_on_the_directory_is_refused_and_can_still_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = settings(dir.path());
    let store = open_with(&settings);
    enqueue(&store, &["a"]).await;
    let refused = LocalStore::open(&settings, None, Clock::system()).expect_err("locked");
    let message = refused.to_string();
    assert!(
        message.contains("in use by another porter process")
            && message.contains(&format!("pid {}", std::process::id())),
        "{message}"
    );
    let read = LocalStore::read_only(&settings, None, Clock::system()).expect("read-only");
    assert_eq!(
        read.recent().len(),
        1,
        "what is on disk can be read meanwhile"
    );
    drop(store);
    LocalStore::open(&settings, None, Clock::system()).expect("free once the first one is gone");
}

#[tokio::test]
async fn a_torn_last_write_is_cut_off_and_the_rest_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = settings(dir.path());
    {
        let store = open_with(&settings);
        enqueue(&store, &["a", "b"]).await;
    }
    // What a power cut in the middle of the next write leaves: half of a frame.
    let path = journal(dir.path());
    let whole = std::fs::read(&path).expect("journal");
    let mut torn = whole.clone();
    torn.extend_from_slice(&whole[..whole.len() / 2]);
    std::fs::write(&path, &torn).expect("tear");

    let (store, recovery) = LocalStore::open(&settings, None, Clock::system()).expect("open");
    assert_eq!(recovery.torn_bytes, (whole.len() / 2) as u64);
    assert_eq!(store.memory().recent().len(), 2);
    assert_eq!(
        std::fs::metadata(&path).expect("journal").len(),
        whole.len() as u64,
        "the torn bytes are cut, so the next write follows whole records"
    );
    let store = Store::Local(Arc::new(store));
    enqueue(&store, &["c"]).await;
    drop(store);
    let (store, recovery) = LocalStore::open(&settings, None, Clock::system()).expect("open");
    assert_eq!(recovery.torn_bytes, 0);
    assert_eq!(store.memory().recent().len(), 3);
}

#[tokio::test]
async fn damage_before_whole_records_refuses_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = settings(dir.path());
    {
        let store = open_with(&settings);
        enqueue(&store, &["a"]).await;
        enqueue(&store, &["b"]).await;
    }
    let path = journal(dir.path());
    let mut bytes = std::fs::read(&path).expect("journal");
    bytes[20] ^= 0x55;
    std::fs::write(&path, &bytes).expect("damage");
    let refused = LocalStore::open(&settings, None, Clock::system()).expect_err("damaged");
    assert!(
        refused.to_string().contains("is damaged at byte 0"),
        "{refused}"
    );
    assert_eq!(
        std::fs::read(&path).expect("journal"),
        bytes,
        "nothing is cut from a damaged journal"
    );
}

#[tokio::test]
async fn snapshots_replace_old_journals_and_restore_the_same_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = LocalSettings {
        snapshot_after: 16 * 1024,
        ..settings(dir.path())
    };
    let keys: Vec<String> = (0..300).map(|i| format!("k{i}")).collect();
    {
        let store = open_with(&settings);
        for chunk in keys.chunks(3) {
            let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
            enqueue(&store, &chunk).await;
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while local(&store).snapshots() < 2 {
            assert!(std::time::Instant::now() < deadline, "no snapshot written");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // More after the last snapshot, so the restart needs snapshot and journal.
        enqueue(&store, &["after"]).await;
    }
    let files: Vec<String> = std::fs::read_dir(dir.path().join("data"))
        .expect("dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    let snapshots = files.iter().filter(|f| f.ends_with(".snap")).count();
    assert_eq!(snapshots, 1, "older snapshots are removed: {files:?}");
    let store = open_with(&settings);
    for key in keys.iter().map(String::as_str).chain(["after"]) {
        let again = store
            .enqueue(&[event(key)], &Reply::text("x"), TTL)
            .await
            .expect("enqueued");
        assert!(again.is_duplicate(), "{key} remembered");
    }
    let schedule = schedule(&store);
    assert_eq!(schedule.backlog("crm").await.expect("backlog"), 301);

    // Keys known at start-up stay in the snapshots written later (the writer lists the keys
    // it applies; what it found at start-up is where that list begins).
    let more: Vec<String> = (0..600).map(|i| format!("m{i}")).collect();
    let before = local(&store).snapshots();
    for chunk in more.chunks(3) {
        let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
        enqueue(&store, &chunk).await;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while local(&store).snapshots() < before + 1 {
        assert!(std::time::Instant::now() < deadline, "no snapshot written");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(schedule);
    drop(store);
    let store = open_with(&settings);
    for key in keys
        .iter()
        .chain(&more)
        .map(String::as_str)
        .chain(["after"])
    {
        let again = store
            .enqueue(&[event(key)], &Reply::text("x"), TTL)
            .await
            .expect("enqueued");
        assert!(
            again.is_duplicate(),
            "{key} remembered after a second restart"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_share_their_syncs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(open_with(&settings(dir.path())));
    let tasks: Vec<_> = (0..400)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .enqueue(&[event(&format!("g{i}"))], &Reply::text("ok"), TTL)
                    .await
                    .expect("enqueued")
                    .new
            })
        })
        .collect();
    let mut new = 0;
    for task in tasks {
        new += task.await.expect("task");
    }
    assert_eq!(new, 400);
    let syncs = local(&store).syncs();
    assert!(
        syncs < 400,
        "400 requests took {syncs} syncs: no group commit"
    );
    // And the same key from many requests at once is stored once, the others duplicates.
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .enqueue(&[event("same")], &Reply::text("ok"), TTL)
                    .await
                    .expect("enqueued")
            })
        })
        .collect();
    let mut stored = 0;
    for task in tasks {
        let outcome = task.await.expect("task");
        stored += outcome.new;
        if outcome.new == 0 {
            assert_eq!(outcome.original, Some(Reply::text("ok")));
        }
    }
    assert_eq!(stored, 1);
}
