//! One suite of store semantics, run on every store: memory, local (a directory of its own)
//! and Redis (a `redis-server` of its own). Dedupe with the first answer, TTLs, the schedules
//! (lease, retry, dead letter, replay, delivered, pause), OHIP offsets, and the events kept
//! for inspection behave the same whichever store a deployment picks.

mod common;

use std::time::Duration;

use common::config_from;
use common::redis_server::RedisServer;
use porter::testing::config::Config;
use porter::testing::delivery::Plan;
use porter::testing::server::Clock;
use porter::testing::store::inspect::EventQuery;
use porter::testing::store::{Attempt, Job, JobState, Next, Outcome, Schedule, Schedules, Store};
use porter_providers::{Normalized, Reply};

/// A store under test, with what keeps it alive.
struct Subject {
    name: &'static str,
    store: Store,
    config: Config,
    /// Moves the store's clock (Redis's own TTLs keep Redis's time).
    hand: porter::testing::clock::Hand,
    _dir: Option<tempfile::TempDir>,
    redis: Option<RedisServer>,
}

impl Subject {
    /// Lets `by` pass for the store: its clock moves; Redis's TTLs are waited for on Redis's
    /// own clock.
    async fn pass(&self, by: Duration) {
        self.hand.advance(by);
        if let Some(redis) = &self.redis {
            let redis_ms = || -> i64 {
                let time = redis.cli(&["TIME"]).expect("time");
                let mut parts = time
                    .lines()
                    .map(|l| l.trim().parse::<i64>().expect("a number"));
                let (seconds, micros) = (parts.next().expect("s"), parts.next().expect("us"));
                seconds * 1000 + micros / 1000
            };
            let until = redis_ms() + i64::try_from(by.as_millis()).expect("ms");
            while redis_ms() < until {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

const KINDS: [&str; 3] = ["memory", "local", "redis"];

fn config(store_table: &str) -> Config {
    config_from(
        &format!(
            r#"
[store]
{store_table}

[[sources]]
name = "s"
provider = "hmac"
path = "/s"
secrets = ["secret"]
hmac = {{ header = "X-Signature" }}

[[destinations]]
name = "crm"
kind = "http"
secret = "whsec_cG9ydGVyLXRlc3QtZGVzdGluYXRpb24ta2V5"
url = "http://127.0.0.1:9/never-called"
retry = ["1s"]
"#
        ),
        &[],
    )
}

fn open(kind: &'static str) -> Subject {
    let (table, dir, redis) = match kind {
        "memory" => (
            "kind = \"memory\"\nprint_events = false".to_owned(),
            None,
            None,
        ),
        "local" => {
            let dir = tempfile::tempdir().expect("tempdir");
            let table = format!(
                "kind = \"local\"\npath = \"{}\"",
                dir.path().join("data").display()
            );
            (table, Some(dir), None)
        }
        _ => {
            let redis = RedisServer::start();
            (
                format!("kind = \"redis\"\nurl = \"{}\"", redis.url()),
                None,
                Some(redis),
            )
        }
    };
    let config = config(&table);
    let plan = Plan::of(&config).expect("plan");
    let (clock, hand) = Clock::manual(jiff::Timestamp::now());
    let store = porter::testing::app::store_for(&config, &plan, &clock).expect("store");
    Subject {
        name: kind,
        store,
        config,
        hand,
        _dir: dir,
        redis,
    }
}

fn event(key: &str) -> Normalized {
    common::unknown_event(key, serde_json::json!({ "key": key }))
}

const TTL: Duration = Duration::from_secs(3600);

/// Calls a [`Schedule`] method on whichever schedules a store has.
macro_rules! on {
    ($schedules:expr, |$s:ident| $call:expr) => {
        match $schedules {
            Schedules::Memory($s) => $call,
            Schedules::Local($s) => $call,
            Schedules::Redis($s) => $call,
        }
    };
}

async fn schedules(subject: &Subject) -> Schedules {
    let schedules = subject.store.schedules().expect("schedules");
    on!(&schedules, |s| s.prepare("crm").await).expect("prepare");
    schedules
}

async fn lease_due(subject: &Subject, schedules: &Schedules, now_ms: i64) -> Vec<Job> {
    let filter = subject.config.destinations[0].filter.clone();
    on!(schedules, |s| s
        .intake("crm", &filter, 0, common::at(now_ms), None)
        .await)
    .expect("intake");
    on!(schedules, |s| s
        .lease("crm", 0, common::lease(10, false, now_ms, now_ms + 30_000))
        .await)
    .expect("lease")
}

fn attempt(outcome: Outcome) -> Attempt {
    Attempt {
        at: jiff::Timestamp::now(),
        status: Some(500),
        outcome,
        duration_ms: 3,
    }
}

#[tokio::test]
async fn a_second_delivery_is_a_duplicate_with_the_first_answer() {
    for kind in KINDS {
        let subject = open(kind);
        let first = subject
            .store
            .enqueue(&[event("a")], &Reply::text("first"), TTL)
            .await
            .expect("enqueued");
        assert_eq!((first.new, first.duplicates), (1, 0), "{}", subject.name);
        let again = subject
            .store
            .enqueue(&[event("a")], &Reply::text("second"), TTL)
            .await
            .expect("enqueued");
        assert!(again.is_duplicate(), "{}", subject.name);
        assert_eq!(
            again.original,
            Some(Reply::text("first")),
            "{}",
            subject.name
        );
    }
}

#[tokio::test]
async fn a_partly_new_batch_stores_only_what_is_missing() {
    for kind in KINDS {
        let subject = open(kind);
        subject
            .store
            .enqueue(&[event("a")], &Reply::text("1"), TTL)
            .await
            .expect("enqueued");
        let outcome = subject
            .store
            .enqueue(
                &[event("a"), event("b"), event("b")],
                &Reply::text("2"),
                TTL,
            )
            .await
            .expect("enqueued");
        assert_eq!(
            (outcome.new, outcome.duplicates),
            (1, 2),
            "{}",
            subject.name
        );
        let kept = subject
            .store
            .recent_events(&EventQuery {
                limit: 10,
                ..EventQuery::default()
            })
            .await
            .expect("events");
        assert_eq!(kept.len(), 2, "{}", subject.name);
        let found = subject
            .store
            .find_event(&event("b").event.id)
            .await
            .expect("find");
        assert_eq!(
            found.map(|e| e.source),
            Some("s".to_owned()),
            "{}",
            subject.name
        );
    }
}

#[tokio::test]
async fn keys_are_forgotten_after_their_ttl() {
    for kind in KINDS {
        let subject = open(kind);
        let ttl = Duration::from_millis(700);
        subject
            .store
            .enqueue(&[event("a")], &Reply::text("1"), ttl)
            .await
            .expect("enqueued");
        let within = subject
            .store
            .enqueue(&[event("a")], &Reply::text("2"), ttl)
            .await
            .expect("enqueued");
        assert!(within.is_duplicate(), "{}", subject.name);
        subject.pass(Duration::from_millis(701)).await;
        let later = subject
            .store
            .enqueue(&[event("a")], &Reply::text("3"), ttl)
            .await
            .expect("enqueued");
        assert_eq!(later.new, 1, "{}: forgotten after its TTL", subject.name);
    }
}

#[tokio::test]
async fn a_job_is_retried_dead_lettered_replayed_and_delivered() {
    for kind in KINDS {
        let subject = open(kind);
        let schedules = schedules(&subject).await;
        let stored = event("job");
        subject
            .store
            .enqueue(std::slice::from_ref(&stored), &Reply::text("1"), TTL)
            .await
            .expect("enqueued");
        let now = Clock::system().now_ms();
        let jobs = lease_due(&subject, &schedules, now).await;
        assert_eq!(jobs.len(), 1, "{}", subject.name);
        assert_eq!(jobs[0].event_id, stored.event.id, "{}", subject.name);
        assert!(
            lease_due(&subject, &schedules, now).await.is_empty(),
            "{}: a leased job is not handed out twice",
            subject.name
        );
        on!(&schedules, |s| s
            .finish(
                "crm",
                &jobs[0],
                attempt(Outcome::Failed("status 500".into())),
                Next::Retry { due_ms: now + 1 }
            )
            .await)
        .expect("retry");
        let again = lease_due(&subject, &schedules, now + 2).await;
        assert_eq!(again.len(), 1, "{}: due again", subject.name);
        assert_eq!(again[0].attempts, 1, "{}", subject.name);
        on!(&schedules, |s| s
            .finish(
                "crm",
                &again[0],
                attempt(Outcome::Failed("status 500".into())),
                Next::DeadLettered
            )
            .await)
        .expect("dead letter");
        let dead = schedules.dead_letters(10).await.expect("dead letters");
        assert_eq!(dead.len(), 1, "{}", subject.name);
        assert_eq!(dead[0].attempts.len(), 2, "{}", subject.name);
        assert!(dead[0].event.contains(&stored.event.id), "{}", subject.name);
        let found = subject
            .store
            .find_event(&stored.event.id)
            .await
            .expect("find")
            .expect("kept");
        let state = schedules.state_of("crm", &found).await.expect("state");
        assert_eq!(
            state.map(|(s, _)| s),
            Some(JobState::DeadLettered),
            "{}",
            subject.name
        );

        let replayed = schedules
            .replay(&dead[0].id, now + 3)
            .await
            .expect("replay");
        assert_eq!(replayed.as_deref(), Some("crm"), "{}", subject.name);
        assert!(
            schedules.dead_letters(10).await.expect("dlq").is_empty(),
            "{}",
            subject.name
        );
        let back = lease_due(&subject, &schedules, now + 4).await;
        assert_eq!(back.len(), 1, "{}: replayed", subject.name);
        let delivered = Attempt {
            status: Some(200),
            ..attempt(Outcome::Delivered)
        };
        on!(&schedules, |s| s
            .finish("crm", &back[0], delivered, Next::Done)
            .await)
        .expect("done");
        let state = schedules.state_of("crm", &found).await.expect("state");
        assert_eq!(
            state.map(|(s, a)| (s, a.len())),
            Some((JobState::Delivered, 3)),
            "{}",
            subject.name
        );
        assert!(
            lease_due(&subject, &schedules, now + 60_000)
                .await
                .is_empty(),
            "{}: delivered means out of the schedule",
            subject.name
        );
    }
}

#[tokio::test]
async fn a_paused_destination_is_handed_nothing_until_resumed() {
    for kind in KINDS {
        let subject = open(kind);
        let schedules = schedules(&subject).await;
        on!(&schedules, |s| s.set_paused("crm", true).await).expect("pause");
        assert!(on!(&schedules, |s| s.is_paused("crm").await).expect("paused"));
        subject
            .store
            .enqueue(&[event("held")], &Reply::text("1"), TTL)
            .await
            .expect("enqueued");
        let now = Clock::system().now_ms();
        assert!(
            lease_due(&subject, &schedules, now).await.is_empty(),
            "{}",
            subject.name
        );
        on!(&schedules, |s| s.set_paused("crm", false).await).expect("resume");
        assert_eq!(
            lease_due(&subject, &schedules, now).await.len(),
            1,
            "{}",
            subject.name
        );
    }
}

#[tokio::test]
async fn ohip_offsets_are_kept() {
    for kind in KINDS {
        let subject = open(kind);
        assert_eq!(
            subject.store.ohip_offset("opera").await.expect("read"),
            None
        );
        subject
            .store
            .save_ohip_offset("opera", "1827")
            .await
            .expect("save");
        assert_eq!(
            subject.store.ohip_offset("opera").await.expect("read"),
            Some("1827".to_owned()),
            "{}",
            subject.name
        );
    }
}
