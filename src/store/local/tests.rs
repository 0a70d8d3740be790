//! What needs the writer's fault points: a failed write and the requests around it.

use std::sync::Arc;
use std::time::Duration;

use porter_providers::Reply;

use super::journal::Fault;
use super::{LocalSettings, LocalStore};
use crate::clock::Clock;
use crate::store::{StoreError, test_event as event};

const TTL: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_of_a_failed_write_is_refused_and_a_later_batch_is_not_mistaken_for_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fault = Fault::default();
    let failing = Arc::clone(&fault.failing);
    let (store, _) = LocalStore::open_with(
        &LocalSettings::new(dir.path().join("data")),
        None,
        Clock::system(),
        fault,
    )
    .expect("open");
    let store = Arc::new(store);
    failing.arm();
    let first = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store
                .enqueue(&[event("k")], &Reply::text("first"), TTL)
                .await
        })
    };
    while !failing.holding() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // The first request's batch is being written (and will fail); a second delivery of the
    // same event, and an unrelated request that lands in the next batch, arrive meanwhile.
    let second = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store
                .enqueue(&[event("k")], &Reply::text("second"), TTL)
                .await
        })
    };
    let unrelated = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store
                .enqueue(&[event("other")], &Reply::text("other"), TTL)
                .await
        })
    };
    // Both are waiting (the duplicate on the first batch, the other on its own) before the
    // first write is let fail.
    while store.shared.in_flight() != (2, 3) {
        tokio::task::yield_now().await;
    }
    failing.release();
    let first = first.await.expect("task");
    assert!(
        matches!(first, Err(StoreError::Unavailable(_))),
        "{first:?}"
    );
    let second = second.await.expect("task");
    assert!(
        matches!(second, Err(StoreError::Unavailable(_))),
        "a duplicate of an event that never reached the disk must not be acknowledged: {second:?}"
    );
    // The unrelated one was appended before the failure was known: refused (the journal is
    // broken until mended) or stored, never lost.
    let unrelated = unrelated.await.expect("task");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let retried = loop {
        match store
            .enqueue(&[event("k")], &Reply::text("retry"), TTL)
            .await
        {
            Ok(outcome) => break outcome,
            Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("the journal was not mended: {error}"),
        }
    };
    assert_eq!(retried.new, 1, "the provider's retry stores the event");
    let stored: Vec<String> = store.memory().recent().into_iter().map(|r| r.id).collect();
    assert!(stored.contains(&event("k").event.id));
    if unrelated.is_ok() {
        assert!(
            stored.contains(&event("other").event.id),
            "acknowledged means stored"
        );
    }
    drop(store);
    let (store, _) = LocalStore::open(
        &LocalSettings::new(dir.path().join("data")),
        None,
        Clock::system(),
    )
    .expect("reopen");
    let ids: Vec<String> = store.memory().recent().into_iter().map(|r| r.id).collect();
    assert_eq!(
        ids.iter().filter(|id| **id == event("k").event.id).count(),
        1
    );
}

/// `porter events tail --follow` on a local store: it starts after what is there (not after
/// the zeros written ahead) and goes on into the next journal when a snapshot starts one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_reads_new_events_across_journals_and_not_the_zeros_ahead() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = LocalSettings::new(dir.path().join("data"));
    settings.snapshot_after = 4096;
    let (store, _) = LocalStore::open(&settings, None, Clock::system()).expect("open");
    store
        .enqueue(&[event("before")], &Reply::text("ok"), TTL)
        .await
        .expect("enqueue");
    let mut follower = super::Follower::at_end(&settings.path).expect("follow");
    assert!(follower.poll().expect("poll").is_empty(), "nothing new yet");
    let generation = store
        .shared
        .generation
        .load(std::sync::atomic::Ordering::Acquire);
    let mut keys = Vec::new();
    let mut seen = Vec::new();
    let mut n = 0;
    // Until a new journal has started and holds an event of its own, polling as the command
    // does (a journal is removed once the snapshot after it is written).
    while store
        .shared
        .generation
        .load(std::sync::atomic::Ordering::Acquire)
        < generation + 2
    {
        let key = format!("after-{n}");
        store
            .enqueue(&[event(&key)], &Reply::text("ok"), TTL)
            .await
            .expect("enqueue");
        keys.push(key);
        seen.extend(follower.poll().expect("poll"));
        n += 1;
        assert!(n < 10_000, "no new journal was started");
    }
    seen.extend(follower.poll().expect("poll"));
    let ids: Vec<String> = seen
        .iter()
        .map(|json| {
            let value: serde_json::Value = serde_json::from_str(json).expect("json");
            value["id"].as_str().expect("id").to_owned()
        })
        .collect();
    let expected: Vec<String> = keys.iter().map(|k| event(k).event.id.clone()).collect();
    assert_eq!(
        ids, expected,
        "every new event once, in order, none from before"
    );
}
