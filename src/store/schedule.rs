//! Delivery schedules: what a store offers the delivery workers.
//!
//! Every store that keeps events also keeps, per destination, a schedule of the events that
//! destination still has to get: due times, leases, the attempts made, dead letters. The
//! workers (`crate::delivery`) run on the [`Schedule`] trait alone, so each store implements it
//! once and gets the same delivery code and the same delivery tests: the memory store in
//! `memory/schedule/`, Redis in `redis/schedule.rs`.
//!
//! **Invariant:** an event leaves a destination's schedule only delivered or dead-lettered
//! ([`Next::Done`], [`Next::DeadLettered`]). A crash, a timeout or a store error leaves it
//! scheduled, and its lease running out makes it due again.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::vocab::Filter;

/// One attempt to deliver an event to a destination, as kept in the attempt log and the
/// dead-letter entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Attempt {
    pub at: Timestamp,
    /// The HTTP status, when the destination answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `delivered`, or why the attempt failed (`status 503`, `timeout (host:port): …`).
    #[schema(value_type = String)]
    pub outcome: Outcome,
    pub duration_ms: u64,
}

impl Attempt {
    pub fn delivered(&self) -> bool {
        self.outcome == Outcome::Delivered
    }
}

/// What an attempt came to. Kept as text (`"delivered"`, or the reason it failed), which is
/// how attempt logs and dead letters store it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum Outcome {
    Delivered,
    /// Why not: `status 503`, `timeout (host:port): …`, `connection failed (host:port): …`.
    Failed(String),
}

impl From<String> for Outcome {
    fn from(text: String) -> Self {
        if text == "delivered" {
            Outcome::Delivered
        } else {
            Outcome::Failed(text)
        }
    }
}

impl From<Outcome> for String {
    fn from(outcome: Outcome) -> Self {
        outcome.to_string()
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Delivered => f.write_str("delivered"),
            Outcome::Failed(reason) => f.write_str(reason),
        }
    }
}

/// An event scheduled for one destination, leased to this instance for an attempt.
#[derive(Debug, Clone)]
pub struct Job {
    /// Where the event is: the stream entry id (Redis) or a sequence number (memory).
    pub entry: String,
    /// The stream shard the entry is in (0 on a single stream).
    pub shard: usize,
    pub event_id: String,
    /// The CloudEvents JSON, exactly as stored; `None` when the stream was trimmed (`max_len`)
    /// before the event was delivered: it can only be dead-lettered.
    pub event: Option<Arc<str>>,
    /// Attempts made before this one.
    pub attempts: usize,
    /// When this instance's lease on it ends (Unix milliseconds): its due time until then.
    pub leased_until: i64,
}

/// Where an event stands with one destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Waiting for its next attempt (or being attempted: a lease moves the due time on).
    Scheduled {
        due_ms: i64,
    },
    Delivered,
    DeadLettered,
}

/// What becomes of a job after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Delivered: out of the schedule.
    Done,
    /// Due again at this Unix millisecond.
    Retry { due_ms: i64 },
    /// Out of attempts: to the dead letters, with every attempt.
    DeadLettered,
}

/// What a worker asks of a destination's schedule in one round: up to `limit` due jobs,
/// leased until `until`; an ordered destination gets only its oldest job, and only when it is
/// due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub limit: usize,
    pub ordered: bool,
    /// Porter's time now: what is due by then is handed out.
    pub now: Timestamp,
    /// When the lease runs out and an unfinished job is due again.
    pub until: Timestamp,
}

/// A store's delivery schedules, per destination and stream shard.
pub trait Schedule: Send + Sync + 'static {
    /// How many stream shards there are (1 but on Redis Cluster).
    fn shards(&self) -> usize {
        1
    }

    /// Makes a destination's schedule ready before its first event is stored (on Redis: its
    /// consumer group, at its cursor or, for a new destination, at the stream's end).
    fn prepare(&self, destination: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Takes newly stored events of one shard into the destination's schedule, and with
    /// `reclaim` also those another instance took but never scheduled (idle that long); how
    /// many. The memory store schedules in the same step that stores, so it has nothing to do.
    fn intake(
        &self,
        destination: &str,
        filter: &Filter,
        shard: usize,
        now: Timestamp,
        reclaim: Option<Duration>,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// The due jobs of one shard, as `lease` asks.
    fn lease(
        &self,
        destination: &str,
        shard: usize,
        lease: Lease,
    ) -> impl Future<Output = Result<Vec<Job>, StoreError>> + Send;

    /// Records an attempt and moves the job on as `next` says.
    fn finish(
        &self,
        destination: &str,
        job: &Job,
        attempt: Attempt,
        next: Next,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Events waiting for a destination: scheduled, plus stored but not yet taken in.
    fn backlog(&self, destination: &str) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Holds (`true`) or releases a destination's deliveries. While held, [`Schedule::lease`]
    /// hands out nothing and events keep accumulating in the schedule; on Redis the hold is
    /// shared by every instance and survives restarts.
    fn set_paused(
        &self,
        destination: &str,
        paused: bool,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Whether a destination's deliveries are held.
    fn is_paused(&self, destination: &str)
    -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// The name of the source behind a CloudEvents `source` (`/sources/<name>`).
pub(crate) fn source_name(source_uri: &str) -> &str {
    source_uri.strip_prefix("/sources/").unwrap_or(source_uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_stored_as_text() {
        let delivered: Outcome = serde_json::from_str("\"delivered\"").expect("json");
        assert_eq!(delivered, Outcome::Delivered);
        let failed: Outcome = serde_json::from_str("\"status 503\"").expect("json");
        assert_eq!(failed, Outcome::Failed("status 503".into()));
        assert_eq!(
            serde_json::to_string(&Outcome::Failed("timeout".into())).expect("json"),
            "\"timeout\""
        );
    }
}
