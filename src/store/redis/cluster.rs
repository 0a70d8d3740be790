//! The Redis Cluster connection, and a watch that follows failovers.
//!
//! redis-rs follows a slot that moved when a node answers `MOVED`, but when a master dies its
//! client keeps reconnecting to the dead address: the replica that Redis promoted is never
//! asked, so every call on that master's slots fails until porter restarts. So every second
//! porter asks the seed nodes for `CLUSTER SLOTS`; when the masters of the slots change (a
//! failover, a resharding), it opens a new cluster connection, which reads the new map, and
//! every handle moves to it at its next command. Nothing is lost by the switch: a command in
//! flight on the old connection completes or fails as it would have.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// How often the slots' masters are checked.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// The cluster connection every handle uses now, and how many times it was replaced.
pub(crate) struct Shared {
    current: RwLock<(u64, ClusterConnection)>,
}

/// One clone of the cluster connection; it moves to a replacement at its next command.
#[derive(Clone)]
pub(crate) struct ClusterHandle {
    shared: Arc<Shared>,
    generation: u64,
    connection: ClusterConnection,
}

impl ClusterHandle {
    /// The connection to send on: the current one.
    pub(crate) fn connection(&mut self) -> &mut ClusterConnection {
        let current = self
            .shared
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner());
        if current.0 != self.generation {
            self.generation = current.0;
            self.connection = current.1.clone();
        }
        drop(current);
        &mut self.connection
    }

    pub(crate) fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        use redis::aio::ConnectionLike;
        self.connection().req_packed_command(cmd)
    }

    pub(crate) fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        use redis::aio::ConnectionLike;
        self.connection().req_packed_commands(cmd, offset, count)
    }

    pub(crate) fn get_db(&self) -> i64 {
        0
    }
}

/// Connects, and starts the watch on the current runtime; it ends when the store is dropped.
pub(crate) async fn connect(
    client: &ClusterClient,
    seeds: &[String],
    timeout: Duration,
) -> Result<ClusterHandle, redis::RedisError> {
    let connection = client.get_async_connection().await?;
    let shared = Arc::new(Shared {
        current: RwLock::new((0, connection.clone())),
    });
    tokio::spawn(watch(
        Arc::downgrade(&shared),
        client.clone(),
        seeds.to_vec(),
        timeout,
    ));
    Ok(ClusterHandle {
        shared,
        generation: 0,
        connection,
    })
}

/// Every [`WATCH_EVERY`]: the slots' masters as a seed node sees them; a change replaces the
/// connection.
async fn watch(
    shared: std::sync::Weak<Shared>,
    client: ClusterClient,
    seeds: Vec<String>,
    timeout: Duration,
) {
    let mut known = masters(&seeds, timeout).await;
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let Some(now) = masters(&seeds, timeout).await else {
            tracing::debug!("Redis Cluster: no seed answered CLUSTER SLOTS with the cluster ok");
            continue;
        };
        tracing::debug!(ranges = now.len(), "Redis Cluster: slots checked");
        if known.as_ref() == Some(&now) {
            continue;
        }
        if known.is_some() {
            tracing::warn!(
                "Redis Cluster: the masters of the slots changed (a failover or a resharding); \
                 reconnecting to the new map"
            );
        }
        match client.get_async_connection().await {
            Ok(connection) => {
                let mut current = shared.current.write().unwrap_or_else(|e| e.into_inner());
                *current = (current.0 + 1, connection);
                known = Some(now);
            }
            Err(error) => tracing::warn!(%error, "Redis Cluster: cannot reconnect yet"),
        }
    }
}

/// Each slot range with its master's address (`start-end@host:port`, sorted), from the first
/// seed that answers `CLUSTER SLOTS` and says the cluster is ok.
async fn masters(seeds: &[String], timeout: Duration) -> Option<Vec<String>> {
    for seed in seeds {
        let Ok(client) = redis::Client::open(seed.as_str()) else {
            continue;
        };
        let asked = async {
            let mut connection = client.get_multiplexed_async_connection().await?;
            let info: String = redis::cmd("CLUSTER")
                .arg("INFO")
                .query_async(&mut connection)
                .await?;
            let slots: Vec<Vec<Value>> = redis::cmd("CLUSTER")
                .arg("SLOTS")
                .query_async(&mut connection)
                .await?;
            Ok::<_, redis::RedisError>((info, slots))
        };
        let (info, slots) = match tokio::time::timeout(timeout, asked).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) => {
                tracing::debug!(%error, "Redis Cluster: a seed did not answer CLUSTER SLOTS");
                continue;
            }
            Err(_) => continue,
        };
        if !info.contains("cluster_state:ok") {
            continue;
        }
        // Each entry: start, end, then the master's [host, port, id, ...], then replicas.
        let mut ranges: Vec<String> = slots
            .iter()
            .map(|entry| match entry.as_slice() {
                [Value::Int(start), Value::Int(end), Value::Array(master), ..] => {
                    format!("{start}-{end}@{}", address(master))
                }
                _ => String::new(),
            })
            .collect();
        ranges.sort();
        return Some(ranges);
    }
    None
}

/// `host:port` of a `CLUSTER SLOTS` node entry (`[host, port, id, ...]`).
fn address(node: &[Value]) -> String {
    let text = |value: Option<&Value>| match value {
        Some(Value::BulkString(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
        Some(Value::SimpleString(text)) => text.clone(),
        Some(Value::Int(n)) => n.to_string(),
        _ => String::new(),
    };
    format!("{}:{}", text(node.first()), text(node.get(1)))
}
