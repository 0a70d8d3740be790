//! Dedupe-and-enqueue on a single Redis without Lua (`[store] enqueue = "transaction"`):
//! `WATCH` and `MGET` the dedupe keys, then `MULTI`, `XADD` and `SET` for the new events,
//! `EXEC`.
//!
//! `enqueue.lua` does the same work in one atomic step, but Redis copies every argument of a
//! script into Lua's string table first, and with 1.5 KB events that copy is most of the cost:
//! `bench/redis_cost.py` measured 14 to 21 µs of Redis CPU per event for the script and 9 to
//! 10 µs this way, about the 7.5 µs of a plain, non-atomic `SET NX` + `XADD`. It costs porter
//! a second round trip per batch, though: `bench/ab.py --store redis` gave 7 % more requests a
//! second with Redis on porter's core and 8 % fewer with Redis on the other core, which is why
//! the script stays the default.
//!
//! It stays atomic by optimism: `WATCH` makes `EXEC` do nothing when another writer (another
//! batch of this instance, another instance) set one of the keys between the `MGET` and the
//! `EXEC`; the batch is then read again, and the events the other writer stored are
//! duplicates. Every key is new when it is watched, so a transaction can only be aborted by a
//! writer storing the same event, which is rare; after [`ATTEMPTS`] aborts the batch goes to
//! the script, which cannot be aborted.
//!
//! The script also recreates consumer groups Redis lost before appending (see `groups.lua`).
//! Here `XINFO GROUPS` is read beside the `MGET`; when a group is missing, the batch goes to
//! the script, which creates it in the same step as it appends. (A group deleted between the
//! read and the `EXEC` is the one case left to the delivery side, which recreates a group it
//! finds missing at its cursor: nothing appended after that cursor is skipped.)
//!
//! A `WATCH` belongs to a connection, and on a multiplexed connection another task's commands
//! could land inside someone else's `MULTI`: each transaction therefore runs on a connection
//! of its own ([`Connections`], one per call in flight), and a connection that failed is
//! dropped, never reused with a `WATCH` it may have lost. Redis Cluster keeps the script (the
//! cluster client multiplexes one connection per node).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Value};
use tokio::sync::Mutex;

use crate::store::StoreError;
use crate::store::redis::batch::{Item, Outcome};

/// How many times a batch is read again after another writer changed one of its keys, before
/// it goes to the script.
pub(super) const ATTEMPTS: usize = 3;

/// Dedicated connections, one per call in flight, each made on first use and dropped after
/// an error.
pub(super) struct Connections {
    client: redis::Client,
    config: AsyncConnectionConfig,
    slots: Vec<Mutex<Option<MultiplexedConnection>>>,
    /// Transactions aborted by another writer (also the metric
    /// `porter_redis_enqueue_contended_total`).
    contended: AtomicU64,
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections")
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl Connections {
    /// `count` connections to `client`'s Redis, each waiting at most `timeout` to connect and
    /// for each answer.
    pub(super) fn new(client: redis::Client, timeout: Duration, count: usize) -> Self {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        Self {
            client,
            config,
            slots: (0..count).map(|_| Mutex::new(None)).collect(),
            contended: AtomicU64::new(0),
        }
    }

    /// Stores `items` on `stream` in a transaction, read again after each abort up to
    /// [`ATTEMPTS`] times; `None` when the script must store them instead (a group is missing,
    /// or other writers kept changing the keys). The connection is kept when it answered as
    /// expected and dropped otherwise.
    pub(super) async fn store(
        &self,
        stream: &str,
        items: &[&Item],
        max_len: u64,
        groups: &[String],
    ) -> Result<Option<Vec<Outcome>>, StoreError> {
        // The caller holds one of as many permits as there are slots, so one is free; waiting
        // on the first only matters if that ever stops being true.
        let mut slot = match self.slots.iter().find_map(|slot| slot.try_lock().ok()) {
            Some(slot) => slot,
            None => self.slots[0].lock().await,
        };
        let mut connection = match slot.take() {
            Some(connection) => connection,
            None => self
                .client
                .get_multiplexed_async_connection_with_config(&self.config)
                .await
                .map_err(StoreError::from)?,
        };
        for _ in 0..ATTEMPTS {
            match attempt(&mut connection, stream, items, max_len, groups).await? {
                Attempt::Stored(outcomes) => {
                    *slot = Some(connection);
                    return Ok(Some(outcomes));
                }
                Attempt::GroupsMissing => break,
                Attempt::Contended => {
                    self.contended.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("porter_redis_enqueue_contended_total").increment(1);
                }
            }
        }
        *slot = Some(connection);
        Ok(None)
    }
}

impl Connections {
    /// How many transactions another writer aborted.
    #[cfg(test)]
    pub(super) fn contended(&self) -> u64 {
        self.contended.load(Ordering::Relaxed)
    }
}

/// What one attempt came to.
#[derive(Debug)]
pub(super) enum Attempt {
    /// Stored: one outcome per item, in order.
    Stored(Vec<Outcome>),
    /// Another writer set one of the keys meanwhile: read the batch again.
    Contended,
    /// A consumer group the stream must have is missing: the script must store this batch.
    GroupsMissing,
}

/// Stores `items` on `stream` in one transaction, if nothing interferes.
pub(super) async fn attempt(
    connection: &mut MultiplexedConnection,
    stream: &str,
    items: &[&Item],
    max_len: u64,
    groups: &[String],
) -> Result<Attempt, StoreError> {
    let mut read = redis::pipe();
    read.ignore_errors();
    read.cmd("WATCH");
    for item in items {
        read.arg(&item.dedupe_key);
    }
    read.cmd("MGET");
    for item in items {
        read.arg(&item.dedupe_key);
    }
    if !groups.is_empty() {
        read.cmd("XINFO").arg("GROUPS").arg(stream);
    }
    let mut replies: Vec<Value> = read.query_async(connection).await?;
    let groups_reply = (!groups.is_empty()).then(|| replies.pop());
    let stored = replies.pop();
    let watched = replies.pop();
    if let Some(Value::ServerError(error)) = watched {
        return Err(StoreError::Unavailable(format!(
            "Redis refused WATCH: {error}"
        )));
    }
    let stored = match stored {
        Some(Value::Array(values)) if values.len() == items.len() => values,
        other => {
            return Err(StoreError::Unavailable(format!(
                "Redis answered MGET with {other:?}"
            )));
        }
    };
    if let Some(reply) = groups_reply {
        let present = group_names(reply.as_ref());
        if groups.iter().any(|name| !present.contains(name.as_str())) {
            unwatch(connection).await?;
            return Ok(Attempt::GroupsMissing);
        }
    }

    let mut outcomes: Vec<Outcome> = Vec::with_capacity(items.len());
    let mut fresh: Vec<usize> = Vec::with_capacity(items.len());
    for (i, (item, value)) in items.iter().zip(stored).enumerate() {
        let outcome = match value {
            Value::Nil => fresh
                .iter()
                .find(|&&j| items[j].dedupe_key == item.dedupe_key)
                .map(|&j| items[j].answer.to_string()),
            Value::BulkString(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
            Value::SimpleString(text) => Some(text),
            other => {
                return Err(StoreError::Unavailable(format!(
                    "Redis answered MGET with {other:?} for a dedupe key"
                )));
            }
        };
        if outcome.is_none() {
            fresh.push(i);
        }
        outcomes.push(outcome);
    }
    if fresh.is_empty() {
        unwatch(connection).await?;
        return Ok(Attempt::Stored(outcomes));
    }

    let mut write = redis::pipe();
    write.atomic().ignore_errors();
    for &i in &fresh {
        let item = items[i];
        write.cmd("XADD").arg(stream);
        if max_len > 0 {
            write.arg("MAXLEN").arg("~").arg(max_len);
        }
        write
            .arg("*")
            .arg("event")
            .arg(&item.json)
            .arg("type")
            .arg(item.event_type)
            .arg("source")
            .arg(&item.source)
            .arg("id")
            .arg(&item.id);
        write
            .cmd("SET")
            .arg(&item.dedupe_key)
            .arg(&*item.answer)
            .arg("PX")
            .arg(item.ttl_ms);
    }
    let Some(results): Option<Vec<Value>> = write.query_async(connection).await? else {
        return Ok(Attempt::Contended);
    };
    // Redis runs every command of an EXEC even when one fails. An append that failed (the key
    // is not a stream: something else wrote into porter's key space) must not leave its
    // dedupe key behind, or the provider's retry would be taken for a duplicate.
    let mut failed = Vec::new();
    for (&i, pair) in fresh.iter().zip(results.chunks(2)) {
        if let Some(Value::ServerError(error)) = pair.first() {
            failed.push((items[i], error.to_string()));
        }
    }
    if let Some((_, error)) = failed.first() {
        let error = format!("Redis refused to append an event: {error}");
        let mut undo = redis::cmd("DEL");
        for (item, _) in &failed {
            undo.arg(&item.dedupe_key);
        }
        if let Err(undo_error) = undo.query_async::<()>(connection).await {
            tracing::error!(
                error = %undo_error,
                "an event Redis refused to append kept its dedupe key: its retry will be \
                 taken for a duplicate"
            );
        }
        return Err(StoreError::Unavailable(error));
    }
    Ok(Attempt::Stored(outcomes))
}

async fn unwatch(connection: &mut MultiplexedConnection) -> Result<(), StoreError> {
    redis::cmd("UNWATCH")
        .query_async::<()>(connection)
        .await
        .map_err(StoreError::from)
}

/// The group names in an `XINFO GROUPS` reply (RESP2 arrays of name/value pairs, or RESP3
/// maps); none for an error (the stream does not exist) or an answer of another shape.
fn group_names(reply: Option<&Value>) -> HashSet<&str> {
    let mut names = HashSet::new();
    let Some(Value::Array(groups)) = reply else {
        return names;
    };
    for group in groups {
        let name = match group {
            Value::Array(fields) => fields
                .chunks(2)
                .find(|pair| is_text(&pair[0], "name"))
                .and_then(|pair| pair.get(1)),
            Value::Map(fields) => fields
                .iter()
                .find(|(key, _)| is_text(key, "name"))
                .map(|(_, value)| value),
            _ => None,
        };
        match name {
            Some(Value::BulkString(bytes)) => {
                if let Ok(name) = std::str::from_utf8(bytes) {
                    names.insert(name);
                }
            }
            Some(Value::SimpleString(name)) => {
                names.insert(name.as_str());
            }
            _ => {}
        }
    }
    names
}

fn is_text(value: &Value, text: &str) -> bool {
    match value {
        Value::BulkString(bytes) => bytes == text.as_bytes(),
        Value::SimpleString(s) => s == text,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn group_names_read_both_protocols_and_nothing_from_an_error() {
        let resp2 = Value::Array(vec![
            Value::Array(vec![
                text("name"),
                text("a"),
                text("consumers"),
                Value::Int(0),
            ]),
            Value::Array(vec![
                text("consumers"),
                Value::Int(1),
                text("name"),
                text("b"),
            ]),
        ]);
        assert_eq!(group_names(Some(&resp2)), HashSet::from(["a", "b"]));
        let resp3 = Value::Array(vec![Value::Map(vec![(text("name"), text("c"))])]);
        assert_eq!(group_names(Some(&resp3)), HashSet::from(["c"]));
        assert!(group_names(None).is_empty());
        assert!(group_names(Some(&Value::Nil)).is_empty());
        // A field list with an odd length must not panic.
        let odd = Value::Array(vec![Value::Array(vec![text("name")])]);
        assert!(group_names(Some(&odd)).is_empty());
    }
}
