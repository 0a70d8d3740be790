//! The Redis store: dedupe-and-enqueue as one atomic step, on a single Redis or on Redis
//! Cluster.
//!
//! By default the step is a Lua script. On a single Redis, `[store] enqueue = "transaction"`
//! makes it a transaction (`WATCH`, `MGET`, then `MULTI` … `EXEC`, see
//! [`transaction`](self::transaction)): about half the Redis CPU of the script, one more round
//! trip per batch (measured: a gain when Redis shares porter's core, a loss when it does not).
//! The script (`enqueue.lua`) runs atomically inside Redis: for each event, if its dedupe key
//! exists it returns the stored answer (a duplicate); otherwise it appends the event to its
//! stream and sets the dedupe key, holding the answer, with the TTL. Nothing can interleave
//! between the check and the write, so 50 concurrent deliveries of one event append it once, and a failure
//! before the script ran leaves nothing behind, so the provider's retry is not deduplicated
//! away.
//!
//! The events of concurrent requests are batched into shared calls (see
//! [`batch`](self::batch)). A request is acknowledged only when the call holding
//! its events answered; if it failed part-way, the retry finds the events that were stored as
//! duplicates and enqueues only what is missing.
//!
//! The connection is established lazily and re-established after failures, so porter starts
//! while Redis is down and recovers when it returns, answering 503 in between.

use crate::clock::Clock;
use crate::vocab::{RedisTarget, ReplicaWait};
use std::time::Duration;

use porter_providers::{Normalized, Reply};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::{Cmd, Pipeline, RedisFuture, Script, Value};
use tokio::sync::OnceCell;

pub(crate) mod archive;
pub(crate) mod batch;
mod cluster;
mod erase;
pub(crate) mod layout;
pub(crate) mod schedule;
mod transaction;

use self::batch::{Batcher, Groups, Item, QUEUE, SharedGroups};
use self::cluster::ClusterHandle;
use self::layout::Layout;
use self::transaction::Connections;
use super::{Enqueued, QUARANTINE_MAX_BYTES, Quarantined, StoreError};

/// How many quarantined bodies the quarantine stream keeps.
const QUARANTINE_MAX_LEN: u64 = 10_000;

/// The settings of a Redis store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSettings {
    pub target: RedisTarget,
    pub stream: String,
    pub key_prefix: String,
    /// Approximate `MAXLEN ~` trimming of the stream(s); `None` never trims.
    pub max_len: Option<u64>,
    /// Cluster only: how many stream shards.
    pub shards: u16,
    /// Single Redis only: dedupe-and-enqueue as a `WATCH`/`MULTI` transaction instead of
    /// the Lua script (`[store] enqueue = "transaction"`).
    pub transactions: bool,
    /// `[store] wait_replicas`: `WAIT` after each enqueue.
    pub wait_replicas: Option<ReplicaWait>,
    /// Bounds each Redis call, so that a stalled Redis is a 503, never a hang.
    pub timeout: Duration,
    /// `[archive] max_bytes`.
    pub archive_max_bytes: usize,
}

/// The Redis store.
pub struct RedisStore {
    connection: Connection,
    layout: Layout,
    max_len: Option<u64>,
    script: Script,
    quarantine_script: Script,
    /// The consumer groups every stream must have before an event is appended to it.
    groups: SharedGroups,
    /// Started on first use, on the runtime that serves requests.
    batcher: OnceCell<Batcher>,
    /// Single Redis: the client and timeout the enqueue transactions connect with.
    transactions: Option<(redis::Client, Duration)>,
    /// `WAIT` after each enqueue, when replicas must confirm writes.
    wait_replicas: Option<ReplicaWait>,
    /// `[archive] max_bytes`.
    archive_max_bytes: usize,
    /// porter's time, where the store keeps it (not Redis's TTLs).
    clock: Clock,
}

/// `enqueue.lua`, with the helpers of `groups.lua` it calls.
pub(crate) fn enqueue_script() -> Script {
    Script::new(concat!(
        include_str!("groups.lua"),
        include_str!("enqueue.lua")
    ))
}

/// `group.lua`, with the helpers of `groups.lua` it calls.
pub(crate) fn group_script() -> Script {
    Script::new(concat!(
        include_str!("groups.lua"),
        include_str!("group.lua")
    ))
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("layout", &self.layout)
            .field("max_len", &self.max_len)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Prepares the store; connects lazily (on first use), so Redis may be down at start.
    /// A store on `settings`' Redis, reading porter's time (archive expiry, erasure marks and
    /// tombstones) from `clock`; Redis's own TTLs and stream ids keep Redis's time.
    pub fn new(settings: &RedisSettings, clock: Clock) -> Result<Self, StoreError> {
        let mut transactions = None;
        let (connection, layout) = match &settings.target {
            RedisTarget::Single(url) => {
                let client = redis::Client::open(url.as_str())?;
                if settings.transactions {
                    transactions = Some((client.clone(), settings.timeout));
                }
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(settings.timeout))
                    .set_response_timeout(Some(settings.timeout))
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_millis(500));
                let manager = ConnectionManager::new_lazy_with_config(client, config)?;
                let layout = Layout::single(&settings.key_prefix, &settings.stream);
                (Connection::Single(manager), layout)
            }
            RedisTarget::Cluster(urls) => {
                let client = ClusterClient::builder(urls.iter().map(String::as_str))
                    .connection_timeout(settings.timeout)
                    .response_timeout(settings.timeout)
                    .retries(2)
                    .build()?;
                let layout =
                    Layout::cluster(&settings.key_prefix, &settings.stream, settings.shards);
                let lazy = LazyCluster {
                    client,
                    seeds: urls.clone(),
                    timeout: settings.timeout,
                    connection: OnceCell::new(),
                };
                (Connection::Cluster(Box::new(lazy)), layout)
            }
        };
        Ok(Self {
            connection,
            layout,
            max_len: settings.max_len,
            script: enqueue_script(),
            quarantine_script: Script::new(include_str!("quarantine.lua")),
            groups: SharedGroups::default(),
            batcher: OnceCell::new(),
            transactions,
            wait_replicas: settings.wait_replicas,
            archive_max_bytes: settings.archive_max_bytes,
            clock,
        })
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Raises each message's status mark for `ttl` (`status.lua`, one call per message: the
    /// marks of a request may lie in several hash slots); the rank each held before.
    pub(crate) async fn raise_statuses(
        &self,
        marks: &[super::statuses::Mark],
        ttl: Duration,
    ) -> Result<Vec<Option<u8>>, StoreError> {
        static STATUS: std::sync::LazyLock<Script> =
            std::sync::LazyLock::new(|| Script::new(include_str!("status.lua")));
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut connection = self.connection().await?;
        let mut before = Vec::with_capacity(marks.len());
        for mark in marks {
            let held: Option<i64> = STATUS
                .key(self.layout.status(&mark.key))
                .arg(mark.rank)
                .arg(ttl_ms)
                .invoke_async(&mut connection)
                .await?;
            before.push(held.and_then(|rank| u8::try_from(rank).ok()));
        }
        Ok(before)
    }

    /// porter's time, in Unix milliseconds.
    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The most bytes the raw archive keeps.
    pub fn archive_max_bytes(&self) -> usize {
        self.archive_max_bytes
    }

    /// Names the consumer groups (one per destination) that must exist on every stream before
    /// an event is appended to it: from now on, the append recreates any that Redis lost, in
    /// the same atomic step. Set once, before events are stored; later calls are ignored.
    pub fn expect_groups(&self, names: &[String]) {
        let cursors = (0..self.layout.shard_count())
            .map(|shard| {
                names
                    .iter()
                    .map(|name| self.layout.cursor(name, shard))
                    .collect()
            })
            .collect();
        let _ = self.groups.set(Groups {
            names: names.to_vec(),
            cursors,
        });
    }

    /// The saved offset of OHIP stream source `source`.
    pub async fn ohip_offset(&self, source: &str) -> Result<Option<String>, StoreError> {
        let mut connection = self.connection.get().await?;
        redis::cmd("GET")
            .arg(self.layout.ohip_offset(source))
            .query_async(&mut connection)
            .await
            .map_err(StoreError::from)
    }

    /// Saves the offset of OHIP stream source `source`.
    pub async fn save_ohip_offset(&self, source: &str, offset: &str) -> Result<(), StoreError> {
        let mut connection = self.connection.get().await?;
        redis::cmd("SET")
            .arg(self.layout.ohip_offset(source))
            .arg(offset)
            .query_async::<()>(&mut connection)
            .await
            .map_err(StoreError::from)
    }

    /// A handle on the connection, for the delivery queue that shares it.
    pub(crate) async fn connection(&self) -> Result<Handle, StoreError> {
        self.connection.get().await
    }

    /// The collector that batches enqueues across requests, started on first use.
    async fn batcher(&self) -> Result<&Batcher, StoreError> {
        self.batcher
            .get_or_try_init(|| async {
                let connection = self.connection.get().await?;
                Ok(Batcher::start(
                    connection,
                    self.script.clone(),
                    self.max_len.unwrap_or(0),
                    std::sync::Arc::clone(&self.groups),
                    self.transactions.as_ref().map(|(client, timeout)| {
                        std::sync::Arc::new(Connections::new(
                            client.clone(),
                            *timeout,
                            batch::IN_FLIGHT,
                        ))
                    }),
                    self.wait_replicas,
                    QUEUE,
                ))
            })
            .await
    }

    pub(super) async fn enqueue(
        &self,
        events: &[Normalized],
        reply: &Reply,
        ttl: Duration,
    ) -> Result<Enqueued, StoreError> {
        let answer = serde_json::to_string(reply).map_err(StoreError::from)?;
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        // An event repeated inside one request is stored once.
        let mut unique: Vec<&Normalized> = Vec::with_capacity(events.len());
        for event in events {
            if !unique.iter().any(|u| u.dedupe_key == event.dedupe_key) {
                unique.push(event);
            }
        }
        let answer: std::sync::Arc<str> = answer.into();
        let items = unique
            .iter()
            .map(|event| {
                let placement = self.layout.place(&event.dedupe_key);
                let json = serde_json::to_string(&event.event)?;
                Ok(Item {
                    dedupe_key: placement.dedupe_key,
                    stream: placement.stream,
                    shard: placement.shard,
                    ttl_ms,
                    answer: std::sync::Arc::clone(&answer),
                    json,
                    event_type: event.event.event_type().as_str(),
                    source: event.event.source.clone(),
                    id: event.event.id.clone(),
                })
            })
            .collect::<Result<Vec<Item>, StoreError>>()?;
        let outcomes = self.batcher().await?.submit(items).await?;
        let mut new = 0;
        let mut original = None;
        for outcome in outcomes {
            match outcome {
                None => new += 1,
                Some(stored) => {
                    if original.is_none() {
                        original = serde_json::from_str::<Reply>(&stored).ok();
                    }
                }
            }
        }
        Ok(Enqueued {
            new,
            duplicates: events.len() - new,
            original,
        })
    }

    /// Keeps the body in the quarantine stream, which holds at most [`QUARANTINE_MAX_LEN`]
    /// entries and [`QUARANTINE_MAX_BYTES`] of bodies (oldest dropped first).
    pub(super) async fn quarantine(&self, item: Quarantined) -> Result<(), StoreError> {
        let mut connection = self.connection.get().await?;
        self.quarantine_script
            .key(self.layout.quarantine())
            .key(self.layout.quarantine_bytes())
            .key(self.layout.quarantine_tombstones())
            .arg(QUARANTINE_MAX_LEN)
            .arg(QUARANTINE_MAX_BYTES)
            .arg(item.body.len())
            .arg(super::erase::body_tombstone(&item.source, &item.body))
            .arg(self.now_ms())
            .arg("source")
            .arg(&item.source)
            .arg("reason")
            .arg(&item.reason)
            .arg("received_at")
            .arg(item.received_at.to_string())
            .arg("content_type")
            .arg(item.content_type.as_deref().unwrap_or(""))
            .arg("body")
            .arg(item.body.as_ref())
            .invoke_async::<i64>(&mut connection)
            .await
            .map(|length| {
                if length < 0 {
                    tracing::info!(source = %item.source, "an erased body came again: not kept");
                }
            })
            .map_err(StoreError::from)
    }

    pub(super) async fn ready(&self) -> Result<(), StoreError> {
        let mut connection = self.connection.get().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .map(drop)
            .map_err(StoreError::from)
    }

    /// What Redis's persistence settings mean for acknowledged events, as warnings.
    pub async fn durability_warnings(&self) -> Result<Vec<String>, StoreError> {
        let connection = self.connection.get().await?;
        let mut values = Vec::new();
        for name in ["appendonly", "appendfsync", "save", "maxmemory-policy"] {
            let mut connection = connection.clone();
            // CONFIG is often disabled on managed Redis: an error means "unknown".
            let value = redis::cmd("CONFIG")
                .arg("GET")
                .arg(name)
                .query_async::<Vec<String>>(&mut connection)
                .await
                .ok()
                .and_then(|pair| pair.into_iter().nth(1));
            values.push(value);
        }
        Ok(durability_warnings(
            values[0].as_deref(),
            values[1].as_deref(),
            values[2].as_deref(),
            values[3].as_deref(),
        ))
    }

    /// Reads up to `count` entries after `after` (exclusive; `-` for the start) from a stream.
    pub async fn read(
        &self,
        stream: &str,
        after: &str,
        count: usize,
    ) -> Result<Vec<StreamEntry>, StoreError> {
        let mut connection = self.connection.get().await?;
        let start = if after == "-" {
            "-".to_owned()
        } else {
            format!("({after}")
        };
        let reply: Vec<RawEntry> = redis::cmd("XRANGE")
            .arg(stream)
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut connection)
            .await?;
        Ok(reply.into_iter().map(StreamEntry::from_pair).collect())
    }

    /// The entries of a stream from `first` to `last`, both included.
    pub async fn read_range(
        &self,
        stream: &str,
        first: &str,
        last: &str,
    ) -> Result<Vec<StreamEntry>, StoreError> {
        let mut connection = self.connection.get().await?;
        let reply: Vec<RawEntry> = redis::cmd("XRANGE")
            .arg(stream)
            .arg(first)
            .arg(last)
            .query_async(&mut connection)
            .await?;
        Ok(reply.into_iter().map(StreamEntry::from_pair).collect())
    }

    /// Up to `count` entries before `before` (exclusive; `None` for the newest), newest first.
    pub async fn read_back(
        &self,
        stream: &str,
        before: Option<&str>,
        count: usize,
    ) -> Result<Vec<StreamEntry>, StoreError> {
        let mut connection = self.connection.get().await?;
        let end = before.map_or_else(|| "+".to_owned(), |id| format!("({id}"));
        let reply: Vec<RawEntry> = redis::cmd("XREVRANGE")
            .arg(stream)
            .arg(end)
            .arg("-")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut connection)
            .await?;
        Ok(reply.into_iter().map(StreamEntry::from_pair).collect())
    }

    /// The last `count` entries of a stream, oldest first.
    pub async fn last(&self, stream: &str, count: usize) -> Result<Vec<StreamEntry>, StoreError> {
        let mut connection = self.connection.get().await?;
        let reply: Vec<RawEntry> = redis::cmd("XREVRANGE")
            .arg(stream)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut connection)
            .await?;
        let mut entries: Vec<StreamEntry> = reply.into_iter().map(StreamEntry::from_pair).collect();
        entries.reverse();
        Ok(entries)
    }
}

/// A stream entry as Redis returns it: the id and the field/value pairs.
type RawEntry = (String, Vec<(String, Vec<u8>)>);

/// One stream entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    pub id: String,
    pub fields: Vec<(String, Vec<u8>)>,
}

impl StreamEntry {
    fn from_pair((id, fields): RawEntry) -> Self {
        Self { id, fields }
    }

    pub fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// The warnings for a Redis persistence configuration (`None` = could not be read).
pub(crate) fn durability_warnings(
    appendonly: Option<&str>,
    appendfsync: Option<&str>,
    save: Option<&str>,
    maxmemory_policy: Option<&str>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    match (appendonly, save) {
        (None, _) => warnings.push(
            "could not read Redis's persistence settings (CONFIG GET is refused); make sure \
             AOF is on: acknowledged events live only in Redis"
                .to_owned(),
        ),
        (Some("no"), Some("")) => warnings.push(
            "Redis persistence is OFF (appendonly no, no RDB snapshots): every acknowledged \
             event is lost if Redis restarts. Set appendonly yes."
                .to_owned(),
        ),
        (Some("no"), _) => warnings.push(
            "Redis has only RDB snapshots (appendonly no): events acknowledged since the last \
             snapshot are lost if Redis crashes. Set appendonly yes."
                .to_owned(),
        ),
        (Some(_), _) if appendfsync == Some("no") => warnings.push(
            "Redis appendfsync is `no`: the OS decides when the AOF reaches the disk, so a \
             machine crash can lose many seconds of acknowledged events. Use everysec or always."
                .to_owned(),
        ),
        _ => {}
    }
    if let Some(policy) = maxmemory_policy
        && policy != "noeviction"
    {
        warnings.push(format!(
            "Redis maxmemory-policy is `{policy}`: under memory pressure Redis may evict unread \
             events or dedupe keys. Use noeviction (porter then answers 503 when Redis is full)."
        ));
    }
    warnings
}

/// A single-Redis connection manager or a lazily connected cluster connection.
enum Connection {
    Single(ConnectionManager),
    Cluster(Box<LazyCluster>),
}

/// A cluster connection made on first use, so that porter starts while the cluster is down;
/// from then on, watched for failovers (see `cluster.rs`).
struct LazyCluster {
    client: ClusterClient,
    seeds: Vec<String>,
    timeout: Duration,
    connection: OnceCell<ClusterHandle>,
}

impl Connection {
    async fn get(&self) -> Result<Handle, StoreError> {
        match self {
            Connection::Single(manager) => Ok(Handle::Single(manager.clone())),
            Connection::Cluster(lazy) => lazy
                .connection
                .get_or_try_init(|| cluster::connect(&lazy.client, &lazy.seeds, lazy.timeout))
                .await
                .map(|c| Handle::Cluster(c.clone()))
                .map_err(StoreError::from),
        }
    }
}

/// A cheap clone of a connection, to issue one command on.
#[derive(Clone)]
pub(crate) enum Handle {
    Single(ConnectionManager),
    Cluster(ClusterHandle),
}

impl ConnectionLike for Handle {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Handle::Single(c) => c.req_packed_command(cmd),
            Handle::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Handle::Single(c) => c.req_packed_commands(cmd, offset, count),
            Handle::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Handle::Single(c) => c.get_db(),
            Handle::Cluster(c) => c.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::durability_warnings;

    #[test]
    fn durability_warnings_say_what_is_at_risk() {
        assert!(
            durability_warnings(Some("yes"), Some("everysec"), Some(""), Some("noeviction"))
                .is_empty()
        );
        assert!(
            durability_warnings(
                Some("yes"),
                Some("always"),
                Some("3600 1"),
                Some("noeviction")
            )
            .is_empty()
        );
        let off = durability_warnings(Some("no"), Some("everysec"), Some(""), Some("noeviction"));
        assert!(off[0].contains("OFF"), "{off:?}");
        let rdb = durability_warnings(
            Some("no"),
            Some("everysec"),
            Some("3600 1"),
            Some("noeviction"),
        );
        assert!(rdb[0].contains("RDB"), "{rdb:?}");
        let lazy = durability_warnings(Some("yes"), Some("no"), Some(""), Some("noeviction"));
        assert!(lazy[0].contains("appendfsync"), "{lazy:?}");
        let evicting =
            durability_warnings(Some("yes"), Some("everysec"), Some(""), Some("allkeys-lru"));
        assert!(evicting[0].contains("allkeys-lru"), "{evicting:?}");
        assert_eq!(durability_warnings(None, None, None, None).len(), 1);
    }
}
