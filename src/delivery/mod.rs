//! Delivery: carrying stored events to the internal services that want them.
//!
//! Delivery never sits on the ingress path: a provider is answered once its events are stored,
//! and delivery reads the store afterwards. Per destination, a worker
//!
//! 1. takes new events from the store (on Redis through a consumer group named after the
//!    destination, so several porter instances share the work) and puts the ones the
//!    destination wants into its **schedule**, all due now;
//! 2. **leases** due entries (moves their due time to now + lease, so that if this instance
//!    dies mid-delivery another one delivers them when the lease runs out);
//! 3. **attempts** each: a signed POST for `http` destinations, a call for in-process handlers;
//! 4. on success removes it from the schedule; on failure records the attempt and schedules the
//!    next one after the destination's retry delay (with jitter; a `Retry-After` of a 429 or
//!    503 is honoured when longer); after the last delay it moves the event, with every
//!    attempt's status and reason, to the dead-letter stream.
//!
//! **Architecture Invariant:** an event leaves a destination's schedule only delivered or
//! dead-lettered. Everything else (a crash, a timeout, a store error) leaves it scheduled, so
//! delivery is at least once; a redelivery carries the same `webhook-id` (the event id), for
//! the receiver to deduplicate.

pub mod handler;
pub mod http;
pub mod memory_queue;
pub mod redis_queue;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub use handler::{Handler, HandlerError};

use crate::config::{Config, DestinationKind, Filter};
use crate::store::Store;
pub use worker::{Deliveries, Queue};

/// One attempt to deliver an event to a destination, as kept in the attempt log and the
/// dead-letter entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub at: Timestamp,
    /// The HTTP status, when the destination answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `delivered`, or why not (`status 503`, `timeout`, `connection refused`, …).
    pub outcome: String,
    pub duration_ms: u64,
}

impl Attempt {
    pub fn delivered(&self) -> bool {
        self.outcome == "delivered"
    }
}

/// An event scheduled for one destination.
#[derive(Debug, Clone)]
pub struct Job {
    /// Where the event is: the stream entry id (Redis) or a sequence number (memory).
    pub entry: String,
    /// The stream shard the entry is in (0 on a single stream).
    pub shard: usize,
    pub event_id: String,
    /// The CloudEvents JSON, exactly as stored.
    pub event: Arc<str>,
    /// Attempts made before this one.
    pub attempts: usize,
    /// When this instance's lease on it ends (Unix milliseconds): its due time until then.
    pub leased_until: i64,
}

/// What a destination answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Delivered {
        status: Option<u16>,
    },
    /// Try again; `retry_after` is the destination's own wish (a 429 or 503 `Retry-After`).
    Failed {
        status: Option<u16>,
        reason: String,
        retry_after: Option<Duration>,
    },
}

/// The wait before attempt `failures + 1`, or `None` when the schedule is spent.
///
/// The destination's delay for this step, spread by ±20 % so that a thousand events that failed
/// together are not retried together; the spread is derived from the entry, so it is the same
/// on every instance. A `Retry-After` longer than that wins.
pub fn next_delay(
    schedule: &[Duration],
    failures: usize,
    entry: &str,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    let base = *schedule.get(failures.checked_sub(1)?)?;
    let spread = jitter(entry, failures);
    let delay = base.mul_f64(spread);
    Some(retry_after.map_or(delay, |wish| wish.max(delay)))
}

/// A factor in [0.8, 1.2) from FNV-1a of the entry and attempt number.
fn jitter(entry: &str, failures: usize) -> f64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in entry.bytes().chain(failures.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    0.8 + (hash % 10_000) as f64 / 25_000.0
}

/// The lease on a job being attempted: long enough for the attempt to finish, after which
/// another instance may take the job over.
pub fn lease_for(timeout: Duration) -> Duration {
    timeout * 2 + Duration::from_secs(1)
}

/// What a worker needs to know about its destination.
#[derive(Clone)]
pub struct Route {
    pub name: String,
    pub filter: Filter,
    pub target: Target,
    pub retry: Vec<Duration>,
    pub concurrency: usize,
    pub ordered: bool,
    pub lease: Duration,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Where a destination's events go.
#[derive(Clone)]
pub enum Target {
    Http(Arc<http::HttpSender>),
    Handler(Arc<dyn Handler>),
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Http(sender) => sender.fmt(f),
            Target::Handler(_) => f.write_str("Handler"),
        }
    }
}

/// The routes of a configuration's `http` destinations, and the consumer groups of its
/// `redis_stream` ones.
pub fn routes(config: &Config) -> Result<(Vec<Route>, Vec<String>), String> {
    let mut routes = Vec::new();
    let mut groups = Vec::new();
    for destination in &config.destinations {
        match &destination.kind {
            DestinationKind::Http(http) => {
                let sender = http::HttpSender::new(http)
                    .map_err(|e| format!("destination `{}`: {e}", destination.name))?;
                routes.push(Route {
                    name: destination.name.clone(),
                    filter: destination.filter.clone(),
                    target: Target::Http(Arc::new(sender)),
                    retry: http.retry.clone(),
                    concurrency: if http.ordered { 1 } else { http.concurrency },
                    ordered: http.ordered,
                    lease: lease_for(http.timeout),
                });
            }
            DestinationKind::RedisStream => groups.push(destination.name.clone()),
        }
    }
    Ok((routes, groups))
}

/// The delivery queue of a store: its memory schedules, or Redis shared by every instance.
pub fn queue_for(store: &Store) -> Option<Queue> {
    match store {
        Store::Memory(memory) => memory
            .deliveries()
            .map(|queue| Queue::Memory(Arc::clone(queue))),
        Store::Redis(redis) => Some(Queue::Redis(Arc::new(redis_queue::RedisQueue::new(
            Arc::clone(redis),
            consumer_name(),
        )))),
    }
}

/// This instance's name in the consumer groups: host and process, unique per run.
fn consumer_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "porter".to_owned());
    let started = Timestamp::now().as_millisecond();
    format!("{host}-{}-{started}", std::process::id())
}

/// The name of the source behind a CloudEvents `source` (`/sources/<name>`).
pub fn source_name(source_uri: &str) -> &str {
    source_uri.strip_prefix("/sources/").unwrap_or(source_uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_follow_the_schedule_with_bounded_jitter() {
        let schedule = [Duration::from_secs(10), Duration::from_secs(100)];
        assert_eq!(
            next_delay(&schedule, 0, "e", None),
            None,
            "no failure yet, no delay"
        );
        let first = next_delay(&schedule, 1, "1-0", None).expect("delay");
        assert!(
            first >= Duration::from_secs(8) && first < Duration::from_secs(12),
            "{first:?}"
        );
        let second = next_delay(&schedule, 2, "1-0", None).expect("delay");
        assert!(
            second >= Duration::from_secs(80) && second < Duration::from_secs(120),
            "{second:?}"
        );
        assert_eq!(
            next_delay(&schedule, 3, "1-0", None),
            None,
            "spent: dead-letter"
        );
        assert_eq!(
            next_delay(&schedule, 1, "1-0", None),
            next_delay(&schedule, 1, "1-0", None),
            "same on every instance"
        );
        let spread: std::collections::HashSet<_> = (0..50)
            .map(|i| next_delay(&schedule, 1, &format!("{i}-0"), None))
            .collect();
        assert!(spread.len() > 40, "entries are spread");
    }

    #[test]
    fn a_longer_retry_after_wins() {
        let schedule = [Duration::from_secs(1)];
        assert_eq!(
            next_delay(&schedule, 1, "e", Some(Duration::from_secs(30))),
            Some(Duration::from_secs(30))
        );
        let short = next_delay(&schedule, 1, "e", Some(Duration::from_millis(1))).expect("delay");
        assert!(short >= Duration::from_millis(800));
    }
}
