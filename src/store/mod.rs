//! The event store: atomic dedupe-and-enqueue, and a quarantine for bodies porter could not
//! parse.
//!
//! The store is the line between "not yet ours" and "ours": the pipeline answers a provider
//! 2xx only after [`Store::enqueue`] returned `Ok`, so every acknowledged event is in the
//! store. Deduplication and enqueueing happen in one atomic step per request, so two
//! concurrent deliveries of one event can never both be enqueued, and a failure can never
//! leave a dedupe key behind without its event (which would turn the provider's retry into a
//! silent drop).
//!
//! A closed enum rather than a trait object: the set of stores is small and known, and a
//! `match` keeps every implementation one jump away.

pub(crate) mod archive;
mod dedupe;
pub(crate) mod erase;
pub(crate) mod inspect;
pub(crate) mod local;
pub(crate) mod memory;
pub(crate) mod ohip;
mod printer;
pub(crate) mod redis;
pub(crate) mod schedule;
pub(crate) mod statuses;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use jiff::Timestamp;
use porter_providers::{Normalized, Reply};

pub use self::archive::{Archived, ArchivedOutcome};
pub use self::local::{LocalSchedule, LocalSettings, LocalStore};
pub use self::memory::MemoryStore;
pub use self::memory::schedule::MemorySchedule;
pub use self::redis::schedule::RedisSchedule;
pub use self::redis::{RedisSettings, RedisStore};
pub use self::schedule::{Attempt, Job, JobState, Lease, Next, Outcome, Schedule};
pub use crate::vocab::{RedisTarget, ReplicaWait};

/// The schedules of a store, by kind: what the delivery workers run on and the admin API
/// reads.
#[derive(Debug, Clone)]
pub enum Schedules {
    Memory(std::sync::Arc<MemorySchedule>),
    Local(std::sync::Arc<LocalSchedule>),
    Redis(std::sync::Arc<RedisSchedule>),
}

/// The dispatch over the schedules, written once: the admin API, the console, the operator
/// commands and the tests hold a `Schedules` and call the trait on it.
impl Schedule for Schedules {
    fn shards(&self) -> usize {
        match self {
            Schedules::Memory(s) => s.shards(),
            Schedules::Local(s) => s.shards(),
            Schedules::Redis(s) => s.shards(),
        }
    }

    async fn prepare(&self, destination: &str) -> Result<(), StoreError> {
        match self {
            Schedules::Memory(s) => s.prepare(destination).await,
            Schedules::Local(s) => s.prepare(destination).await,
            Schedules::Redis(s) => s.prepare(destination).await,
        }
    }

    async fn intake(
        &self,
        destination: &str,
        filter: &crate::vocab::Filter,
        shard: usize,
        now: Timestamp,
        reclaim: Option<Duration>,
    ) -> Result<usize, StoreError> {
        match self {
            Schedules::Memory(s) => s.intake(destination, filter, shard, now, reclaim).await,
            Schedules::Local(s) => s.intake(destination, filter, shard, now, reclaim).await,
            Schedules::Redis(s) => s.intake(destination, filter, shard, now, reclaim).await,
        }
    }

    async fn lease(
        &self,
        destination: &str,
        shard: usize,
        lease: Lease,
    ) -> Result<Vec<Job>, StoreError> {
        match self {
            Schedules::Memory(s) => s.lease(destination, shard, lease).await,
            Schedules::Local(s) => s.lease(destination, shard, lease).await,
            Schedules::Redis(s) => s.lease(destination, shard, lease).await,
        }
    }

    async fn finish(
        &self,
        destination: &str,
        job: &Job,
        attempt: Attempt,
        next: Next,
    ) -> Result<(), StoreError> {
        match self {
            Schedules::Memory(s) => s.finish(destination, job, attempt, next).await,
            Schedules::Local(s) => s.finish(destination, job, attempt, next).await,
            Schedules::Redis(s) => s.finish(destination, job, attempt, next).await,
        }
    }

    async fn backlog(&self, destination: &str) -> Result<u64, StoreError> {
        match self {
            Schedules::Memory(s) => s.backlog(destination).await,
            Schedules::Local(s) => s.backlog(destination).await,
            Schedules::Redis(s) => s.backlog(destination).await,
        }
    }

    async fn set_paused(&self, destination: &str, paused: bool) -> Result<(), StoreError> {
        match self {
            Schedules::Memory(s) => s.set_paused(destination, paused).await,
            Schedules::Local(s) => s.set_paused(destination, paused).await,
            Schedules::Redis(s) => s.set_paused(destination, paused).await,
        }
    }

    async fn is_paused(&self, destination: &str) -> Result<bool, StoreError> {
        match self {
            Schedules::Memory(s) => s.is_paused(destination).await,
            Schedules::Local(s) => s.is_paused(destination).await,
            Schedules::Redis(s) => s.is_paused(destination).await,
        }
    }
}

/// This instance's name in the consumer groups: host and process, unique per run.
fn consumer_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "porter".to_owned());
    let started = jiff::Timestamp::now().as_millisecond();
    format!("{host}-{}-{started}", std::process::id())
}

/// Where events go. Cheap to clone: every variant is shared (the gateway, the archive writer,
/// the OHIP connectors and the delivery schedules hold the same store).
#[derive(Debug, Clone)]
pub enum Store {
    Memory(std::sync::Arc<MemoryStore>),
    /// On disk in one directory; shared with its schedules.
    Local(std::sync::Arc<LocalStore>),
    /// Shared with the delivery queue, which works on the same connection.
    Redis(std::sync::Arc<RedisStore>),
}

/// What enqueueing one request's events did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    /// Events appended by this call.
    pub new: usize,
    /// Events already present (inside the dedupe window).
    pub duplicates: usize,
    /// The answer stored with the first duplicate, to repeat when nothing was new.
    pub original: Option<Reply>,
}

impl Enqueued {
    /// Every event was a duplicate: the request is a redelivery and gets the original answer.
    pub fn is_duplicate(&self) -> bool {
        self.new == 0 && self.duplicates > 0
    }
}

/// Why the store could not do what it was asked. Nothing was written; on a source route the
/// provider must retry, so every kind becomes a 5xx (see [`StoreError::is_outage`]).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("the store is full, or too busy to queue more")]
    Full,
    /// Redis could not be reached, timed out or refused a command.
    #[error("Redis: {0}")]
    Redis(#[source] Arc<::redis::RedisError>),
    /// A file of the local store could not be opened, read or written.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The store takes nothing in its present state: a failed write not yet mended, closing,
    /// its writer stopped, an answer it did not expect.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The local store's files are damaged or not porter's to open (what to do is in the
    /// message): porter will not guess.
    #[error("{0}")]
    Damaged(String),
    /// A value could not be encoded, or one read back decoded: a defect or damaged data, not
    /// an outage (the store itself answers).
    #[error("cannot encode or decode a stored value: {0}")]
    Encoding(#[source] Arc<serde_json::Error>),
    /// The local store's directory is held by another porter process (only when opening).
    #[error("{0}")]
    InUse(String),
}

impl StoreError {
    /// A file operation on `context` (a path and what was being done) that failed.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source: Arc::new(source),
        }
    }

    /// Whether the store is down, slow or full (a 503 with `Retry-After`, and not ready), as
    /// opposed to a defect that waiting will not mend (a 500, logged as an error).
    pub(crate) fn is_outage(&self) -> bool {
        !matches!(self, Self::Encoding(_) | Self::Damaged(_))
    }
}

impl From<::redis::RedisError> for StoreError {
    fn from(error: ::redis::RedisError) -> Self {
        Self::Redis(Arc::new(error))
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(error: serde_json::Error) -> Self {
        Self::Encoding(Arc::new(error))
    }
}

/// A request's event of unknown type with dedupe key `key`, for the stores' unit tests.
#[cfg(test)]
pub(crate) fn test_event(key: &str) -> Normalized {
    use porter_providers::EventBody;
    use porter_providers::event::{Attributes, Origin, UnknownData};
    let origin = Origin {
        source_name: "s",
        provider: "hmac",
        received_at: jiff::Timestamp::UNIX_EPOCH,
    };
    let attributes = Attributes {
        key: key.to_owned(),
        ..Attributes::default()
    };
    let body = EventBody::Unknown(UnknownData {
        reason: String::new(),
        raw: serde_json::Value::Null,
    });
    origin.event(attributes, body).into()
}

/// The most bytes of quarantined bodies a store keeps; the oldest go first. Entries are
/// bounded too (by each store), but a few thousand 3 MiB bodies are many gigabytes, and a
/// source that anyone holding its URL may call (a URL token) could fill memory with them.
pub const QUARANTINE_MAX_BYTES: usize = 64 * 1024 * 1024;

/// An authentic body porter could not parse, kept for inspection. Headers are not kept:
/// they may carry credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    pub source: String,
    pub reason: String,
    pub received_at: Timestamp,
    pub content_type: Option<String>,
    pub body: Bytes,
}

impl Store {
    /// Atomically: for each event, if its dedupe key is known it is a duplicate; otherwise
    /// append it and remember its key for `ttl` together with `reply`. All or nothing.
    pub async fn enqueue(
        &self,
        events: &[Normalized],
        reply: &Reply,
        ttl: Duration,
    ) -> Result<Enqueued, StoreError> {
        match self {
            Store::Memory(store) => store.enqueue(events, reply, ttl),
            Store::Local(store) => store.enqueue(events, reply, ttl).await,
            Store::Redis(store) => store.enqueue(events, reply, ttl).await,
        }
    }

    /// Marks each `message.status_changed` among `events` whose status is behind one already
    /// stored for its message (`statusregression`, see [`statuses`]), raising each message's
    /// mark for `ttl`; answers how many it marked. Called before [`Store::enqueue`].
    pub async fn mark_status_regressions(
        &self,
        events: &mut [Normalized],
        ttl: Duration,
    ) -> Result<usize, StoreError> {
        let (marked, marks): (Vec<usize>, Vec<statuses::Mark>) = events
            .iter()
            .enumerate()
            .filter_map(|(i, e)| statuses::mark_of(&e.event).map(|mark| (i, mark)))
            .unzip();
        if marks.is_empty() {
            return Ok(0);
        }
        let before = match self {
            Store::Memory(store) => store.raise_statuses(&marks, ttl),
            Store::Local(store) => store.memory().raise_statuses(&marks, ttl),
            Store::Redis(store) => store.raise_statuses(&marks, ttl).await?,
        };
        Ok(statuses::apply(events, &marked, &before))
    }

    /// Keeps an unparseable body for inspection.
    pub async fn quarantine(&self, item: Quarantined) -> Result<(), StoreError> {
        match self {
            Store::Memory(store) => {
                store.quarantine(item);
                Ok(())
            }
            Store::Local(store) => store.quarantine(item).await,
            Store::Redis(store) => store.quarantine(item).await,
        }
    }

    /// Whether the store can take events now (`/readyz`).
    pub async fn ready(&self) -> Result<(), StoreError> {
        match self {
            Store::Memory(_) => Ok(()),
            Store::Local(store) => store.ready(),
            Store::Redis(store) => store.ready().await,
        }
    }

    /// The delivery schedules of this store: the memory store's own (when it has
    /// destinations), or the Redis schedules every instance shares.
    pub fn schedules(&self) -> Option<Schedules> {
        match self {
            Store::Memory(memory) => memory
                .deliveries()
                .map(|schedule| Schedules::Memory(std::sync::Arc::clone(schedule))),
            Store::Local(local) => local.memory().deliveries().map(|schedule| {
                Schedules::Local(std::sync::Arc::new(LocalSchedule::new(
                    std::sync::Arc::clone(local.shared()),
                    std::sync::Arc::clone(schedule),
                )))
            }),
            Store::Redis(redis) => Some(Schedules::Redis(std::sync::Arc::new(RedisSchedule::new(
                std::sync::Arc::clone(redis),
                consumer_name(),
            )))),
        }
    }

    /// A short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Store::Memory(_) => "memory",
            Store::Local(_) => "local",
            Store::Redis(_) => "redis",
        }
    }
}
