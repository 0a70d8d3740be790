//! Batching dedupe-and-enqueue across concurrent requests.
//!
//! Every request used to cost Redis one script call per event. A script call has a fixed cost
//! in Redis (argument parsing, a Lua context switch) several times that of the `GET`, `XADD`
//! and `SET` it runs, and porter pays a fixed cost per command on its side too. So requests in
//! flight hand their events to one collector task, which sends whatever has queued up as one
//! call of `enqueue.lua` per stream (one hash slot on a cluster):
//!
//! - At most [`IN_FLIGHT`] calls run at once. While they run, new events queue, so batches grow
//!   exactly when Redis is busy and stay at one event when it is idle: batching adds no waiting
//!   of its own.
//! - A call holds at most [`MAX_EVENTS`] events and about [`MAX_BYTES`] of payload.
//! - The script handles the events in order inside one atomic call, so two requests carrying
//!   the same event in one batch still store it once (the second sees the first's key).
//! - A failed call fails every request in it (503, the providers retry); events it stored
//!   before failing are found as duplicates by the retry, as with a partly stored request.
//! - The queue is bounded ([`QUEUE`] requests): when it is full the request is refused at once
//!   with [`StoreError::Full`] (503 with `Retry-After`) instead of waiting in an unbounded line.

use std::sync::{Arc, OnceLock};

use redis::Script;

use crate::vocab::ReplicaWait;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::store::StoreError;
use crate::store::redis::Handle;
use crate::store::redis::transaction::Connections;

/// How many script calls may be in flight at once.
pub(super) const IN_FLIGHT: usize = 4;
/// The most events in one script call.
pub(super) const MAX_EVENTS: usize = 128;
/// Roughly the most payload bytes in one script call (a single larger request still goes alone).
pub(super) const MAX_BYTES: usize = 1024 * 1024;
/// How many requests may wait for a call before new ones are refused.
pub(super) const QUEUE: usize = 8192;

/// The consumer groups every stream must have before anything is appended to it (see
/// `groups.lua`), with each group's cursor key on each shard.
#[derive(Debug, Default)]
pub(super) struct Groups {
    pub names: Vec<String>,
    /// `cursors[shard][group]`.
    pub cursors: Vec<Vec<String>>,
}

/// Set once, when the delivery workers know their destinations (before intake opens).
pub(super) type SharedGroups = Arc<OnceLock<Groups>>;

/// One event's part of a script call.
#[derive(Debug)]
pub(crate) struct Item {
    pub dedupe_key: String,
    pub stream: String,
    pub shard: usize,
    pub ttl_ms: u64,
    pub answer: Arc<str>,
    pub json: String,
    pub event_type: &'static str,
    pub source: String,
    pub id: String,
}

impl Item {
    fn size(&self) -> usize {
        self.json.len() + self.answer.len() + self.dedupe_key.len() + 64
    }
}

/// What Redis said for one event: `None` when it was appended, the stored answer when it was
/// already there.
pub(crate) type Outcome = Option<String>;

/// One request's events, and where to send their outcomes (in the same order).
struct Submission {
    items: Vec<Item>,
    reply: oneshot::Sender<Result<Vec<Outcome>, StoreError>>,
}

/// The handle requests submit through.
#[derive(Debug, Clone)]
pub(super) struct Batcher {
    queue: mpsc::Sender<Submission>,
}

impl std::fmt::Debug for Submission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Submission")
            .field("items", &self.items.len())
            .finish_non_exhaustive()
    }
}

impl Batcher {
    /// Starts the collector on the current tokio runtime, with room for `queue` waiting
    /// requests ([`QUEUE`] in service). It stops when every `Batcher` clone is dropped, after
    /// finishing what was queued.
    pub(super) fn start(
        connection: Handle,
        script: Script,
        max_len: u64,
        groups: SharedGroups,
        transactions: Option<Arc<Connections>>,
        wait_replicas: Option<ReplicaWait>,
        queue: usize,
    ) -> Self {
        let (queue, receiver) = mpsc::channel(queue);
        let call = Call {
            script: Arc::new(script),
            max_len,
            groups,
            transactions,
            wait_replicas,
        };
        tokio::spawn(collect(receiver, connection, call));
        Self { queue }
    }

    /// Stores `items` (deduplicated against each other by the caller) and returns one outcome
    /// per item, in order.
    pub(super) async fn submit(&self, items: Vec<Item>) -> Result<Vec<Outcome>, StoreError> {
        let (reply, outcome) = oneshot::channel();
        self.queue
            .try_send(Submission { items, reply })
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => StoreError::Full,
                mpsc::error::TrySendError::Closed(_) => {
                    StoreError::Unavailable("the Redis writer has stopped".to_owned())
                }
            })?;
        outcome.await.map_err(|_| {
            StoreError::Unavailable("the Redis writer dropped the request".to_owned())
        })?
    }
}

/// What every script call shares.
#[derive(Clone)]
struct Call {
    script: Arc<Script>,
    max_len: u64,
    groups: SharedGroups,
    /// Single Redis: connections of their own for `WATCH`/`MULTI` (see `transaction.rs`).
    transactions: Option<Arc<Connections>>,
    /// `[store] wait_replicas`: `WAIT` after each script call, on the same connection.
    wait_replicas: Option<ReplicaWait>,
}

/// The collector: waits for work and a free slot, then takes everything queued (up to the
/// limits) as one batch.
async fn collect(mut receiver: mpsc::Receiver<Submission>, connection: Handle, call: Call) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut held: Option<Submission> = None;
    loop {
        let first = match held.take() {
            Some(submission) => submission,
            None => match receiver.recv().await {
                Some(submission) => submission,
                None => break,
            },
        };
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            break;
        };
        let mut events = first.items.len();
        let mut bytes: usize = first.items.iter().map(Item::size).sum();
        let mut batch = vec![first];
        while events < MAX_EVENTS && bytes < MAX_BYTES {
            let Ok(next) = receiver.try_recv() else { break };
            let size: usize = next.items.iter().map(Item::size).sum();
            if events + next.items.len() > MAX_EVENTS || bytes + size > MAX_BYTES {
                held = Some(next);
                break;
            }
            events += next.items.len();
            bytes += size;
            batch.push(next);
        }
        let connection = connection.clone();
        let call = call.clone();
        tokio::spawn(async move {
            run(batch, connection, &call).await;
            drop(slot);
        });
    }
    // Wait for the calls in flight before returning.
    let _ = slots.acquire_many(IN_FLIGHT as u32).await;
}

/// One script call's stream, its shard, and the (submission, item) positions of its events.
type StreamCall<'a> = (&'a str, usize, Vec<(usize, usize)>);

/// Sends one batch, one script call per stream, and answers every submission in it.
async fn run(batch: Vec<Submission>, connection: Handle, call: &Call) {
    // Group (submission, item) positions by stream: a script call may touch one slot only.
    let mut streams: Vec<StreamCall<'_>> = Vec::new();
    for (s, submission) in batch.iter().enumerate() {
        for (i, item) in submission.items.iter().enumerate() {
            match streams.iter_mut().find(|(name, _, _)| *name == item.stream) {
                Some((_, _, positions)) => positions.push((s, i)),
                None => streams.push((&item.stream, item.shard, vec![(s, i)])),
            }
        }
    }
    let calls = streams.iter().map(|(stream, shard, positions)| {
        let items: Vec<&Item> = positions.iter().map(|&(s, i)| &batch[s].items[i]).collect();
        let connection = connection.clone();
        async move { store_stream(call, connection, stream, *shard, &items).await }
    });
    let results = futures_util::future::join_all(calls).await;
    let mut answers: Vec<Result<Vec<Outcome>, StoreError>> = batch
        .iter()
        .map(|submission| Ok(vec![None; submission.items.len()]))
        .collect();
    for ((_, _, positions), result) in streams.iter().zip(results) {
        match result {
            Ok(outcomes) => {
                for (&(s, i), outcome) in positions.iter().zip(outcomes) {
                    if let Ok(slots) = &mut answers[s] {
                        slots[i] = outcome;
                    }
                }
            }
            Err(error) => {
                for &(s, _) in positions {
                    answers[s] = Err(error.clone());
                }
            }
        }
    }
    for (submission, answer) in batch.into_iter().zip(answers) {
        let _ = submission.reply.send(answer);
    }
}

/// Stores one stream's events: as a transaction where that is possible, else by the script.
async fn store_stream(
    call: &Call,
    connection: Handle,
    stream: &str,
    shard: usize,
    items: &[&Item],
) -> Result<Vec<Outcome>, StoreError> {
    let groups = call.groups.get();
    if let Some(transactions) = &call.transactions {
        let names = groups.map(|g| g.names.as_slice()).unwrap_or_default();
        if let Some(outcomes) = transactions
            .store(stream, items, call.max_len, names)
            .await?
        {
            return Ok(outcomes);
        }
    }
    let eval = eval_command(call, stream, shard, items);
    let mut connection = connection;
    if let Some(wait) = call.wait_replicas {
        return store_and_wait(call, &mut connection, stream, eval, items.len(), wait).await;
    }
    type Answer = (Vec<String>, Vec<Outcome>);
    let (created, outcomes) = match eval.query_async::<Answer>(&mut connection).await {
        // Redis lost its script cache (a restart, `SCRIPT FLUSH`): load it and call again.
        Err(error)
            if error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
        {
            call.script
                .prepare_invoke()
                .load_async(&mut connection)
                .await?;
            eval.query_async(&mut connection).await?
        }
        other => other?,
    };
    checked_outcomes(stream, created, outcomes, items.len())
}

/// The script's answer: warns about recreated groups, and checks there is one outcome per
/// event.
fn checked_outcomes(
    stream: &str,
    created: Vec<String>,
    outcomes: Vec<Outcome>,
    events: usize,
) -> Result<Vec<Outcome>, StoreError> {
    if !created.is_empty() {
        tracing::warn!(
            stream,
            groups = ?created,
            "consumer groups were missing (Redis lost its data, or they were deleted): \
             recreated before storing, from the last entry porter scheduled for each, \
             or from the stream's start"
        );
    }
    if outcomes.len() == events {
        Ok(outcomes)
    } else {
        Err(StoreError::Unavailable(format!(
            "the enqueue script answered {} outcomes for {events} events",
            outcomes.len(),
        )))
    }
}

/// The script's call as an `EVALSHA` command, with the keys and arguments of `enqueue.lua`:
/// sent alone, or in `wait_replicas`' pipeline.
fn eval_command(call: &Call, stream: &str, shard: usize, items: &[&Item]) -> redis::Cmd {
    let groups = call.groups.get();
    let cursors: &[String] = groups
        .map(|g| g.cursors[shard].as_slice())
        .unwrap_or_default();
    let names: &[String] = groups.map(|g| g.names.as_slice()).unwrap_or_default();
    let mut eval = redis::cmd("EVALSHA");
    eval.arg(call.script.get_hash())
        .arg(1 + cursors.len() + items.len())
        .arg(stream)
        .arg(cursors);
    for item in items {
        eval.arg(&item.dedupe_key);
    }
    eval.arg(call.max_len).arg(names.len()).arg(names);
    for item in items {
        eval.arg(item.ttl_ms)
            .arg(&*item.answer)
            .arg(&item.json)
            .arg(item.event_type)
            .arg(&item.source)
            .arg(&item.id);
    }
    eval
}

/// `wait_replicas`: the script, a write of the stream's marker key and `WAIT`, as one
/// pipeline on one connection (on Redis Cluster, the master of the stream's slot).
///
/// `WAIT` counts the replicas holding the last write *of the connection it is sent on*. Sent
/// on its own, a client library that reconnects or retries between the script and `WAIT`
/// (redis-rs does, on another node after a failover) would ask a connection that wrote
/// nothing, and `WAIT` would confirm at once. In one pipeline they share a connection, and
/// if the library sends the pipeline again elsewhere, it sends all of it. The marker write
/// makes the connection's last write come after the script even when every event was a
/// duplicate (the script then writes nothing): since replication is in order, a replica
/// holding the marker holds the original events too. Fewer replicas than asked within the
/// timeout fail the step as an outage (503, the provider retries; its retry finds the stored
/// events as duplicates and waits again).
async fn store_and_wait(
    call: &Call,
    connection: &mut Handle,
    stream: &str,
    eval: redis::Cmd,
    events: usize,
    wait: ReplicaWait,
) -> Result<Vec<Outcome>, StoreError> {
    let mut pipe = redis::pipe();
    pipe.add_command(eval)
        .cmd("SET")
        .arg(format!("{stream}:wait"))
        .arg(1)
        .arg("PX")
        .arg(60_000)
        .ignore()
        .cmd("WAIT")
        .arg(wait.replicas)
        .arg(wait.timeout.as_millis() as u64);
    type Answer = ((Vec<String>, Vec<Outcome>), i64);
    let answer: Answer = match pipe.query_async::<Answer>(connection).await {
        Err(error)
            if error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
        {
            call.script.prepare_invoke().load_async(connection).await?;
            pipe.query_async(connection).await?
        }
        other => other?,
    };
    let ((created, outcomes), confirmed) = answer;
    let outcomes = checked_outcomes(stream, created, outcomes, events)?;
    if confirmed >= i64::from(wait.replicas) {
        Ok(outcomes)
    } else {
        metrics::counter!("porter_redis_replica_waits_short_total").increment(1);
        Err(StoreError::Unavailable(format!(
            "{confirmed} of {} replicas confirmed the write within {} ms (wait_replicas)",
            wait.replicas,
            wait.timeout.as_millis()
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use redis::aio::{ConnectionManager, ConnectionManagerConfig};

    use super::*;

    /// A throwaway redis-server on a free port, killed on drop.
    struct Server {
        child: Child,
        port: u16,
    }

    impl Server {
        fn start() -> Self {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server (scripts/test installs it)");
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < deadline, "redis-server did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
            Self { child, port }
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn item(n: usize) -> Item {
        Item {
            dedupe_key: format!("test:dedupe:{n}"),
            stream: "test:events".to_owned(),
            shard: 0,
            ttl_ms: 60_000,
            answer: Arc::from("{}"),
            json: format!("{{\"n\":{n}}}"),
            event_type: "message.received",
            source: "/sources/test".to_owned(),
            id: format!("evt_{n}"),
        }
    }

    async fn admin(server: &Server) -> redis::aio::MultiplexedConnection {
        redis::Client::open(format!("redis://127.0.0.1:{}", server.port))
            .expect("client")
            .get_multiplexed_async_connection()
            .await
            .expect("connect")
    }

    /// A batcher as porter starts it on a single Redis: transactions on connections of their
    /// own, the script behind them.
    async fn transacting(server: &Server, groups: SharedGroups) -> (Batcher, Arc<Connections>) {
        let client =
            redis::Client::open(format!("redis://127.0.0.1:{}", server.port)).expect("client");
        let manager = ConnectionManager::new(client.clone())
            .await
            .expect("connect");
        let connections = Arc::new(Connections::new(client, Duration::from_secs(5), IN_FLIGHT));
        let batcher = Batcher::start(
            Handle::Single(manager),
            crate::store::redis::enqueue_script(),
            0,
            groups,
            Some(Arc::clone(&connections)),
            None,
            QUEUE,
        );
        (batcher, connections)
    }

    fn answered(n: usize, answer: &str) -> Item {
        Item {
            answer: Arc::from(answer),
            ..item(n)
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_transaction_stores_new_events_once_and_answers_repeats_with_the_first_answer() {
        let server = Server::start();
        let mut admin = admin(&server).await;
        let (batcher, _) = transacting(&server, SharedGroups::default()).await;
        // One request carrying the same event twice, then a request repeating it.
        let first = batcher
            .submit(vec![
                answered(1, "first"),
                answered(2, "first"),
                answered(1, "x"),
            ])
            .await
            .expect("stored");
        assert_eq!(first, vec![None, None, Some("first".to_owned())]);
        let again = batcher
            .submit(vec![answered(2, "later"), answered(3, "later")])
            .await
            .expect("stored");
        assert_eq!(again, vec![Some("first".to_owned()), None]);
        let length: usize = redis::cmd("XLEN")
            .arg("test:events")
            .query_async(&mut admin)
            .await
            .expect("XLEN");
        assert_eq!(length, 3);
        let ttl: i64 = redis::cmd("PTTL")
            .arg("test:dedupe:3")
            .query_async(&mut admin)
            .await
            .expect("PTTL");
        assert!((1..=60_000).contains(&ttl), "{ttl}");
        let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg("test:events")
            .arg("-")
            .arg("+")
            .query_async(&mut admin)
            .await
            .expect("XRANGE");
        let fields: Vec<&str> = entries[2].1.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["event", "type", "source", "id"]);
        assert_eq!(entries[2].1[0].1, "{\"n\":3}");
        assert_eq!(entries[2].1[3].1, "evt_3");
    }

    /// Two instances racing to store the same events: every event is stored exactly once and
    /// exactly one of them is told it stored it, whether or not a transaction was aborted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_writers_store_each_event_once() {
        let server = Server::start();
        let mut admin = admin(&server).await;
        let (a, a_connections) = transacting(&server, SharedGroups::default()).await;
        let (b, b_connections) = transacting(&server, SharedGroups::default()).await;
        let events = 400;
        let send = |batcher: Batcher| {
            tokio::spawn(async move {
                let requests = (0..events).map(|n| {
                    let batcher = batcher.clone();
                    async move { batcher.submit(vec![item(n), item(n + 1)]).await }
                });
                futures_util::future::join_all(requests).await
            })
        };
        let (from_a, from_b) = tokio::join!(send(a), send(b));
        let (from_a, from_b) = (from_a.expect("a"), from_b.expect("b"));
        let mut stored = vec![0; events + 1];
        for (n, (ra, rb)) in from_a.iter().zip(&from_b).enumerate() {
            let (ra, rb) = (ra.as_ref().expect("a"), rb.as_ref().expect("b"));
            for k in 0..2 {
                if ra[k].is_none() {
                    stored[n + k] += 1;
                }
                if rb[k].is_none() {
                    stored[n + k] += 1;
                }
            }
        }
        assert!(stored.iter().all(|&s| s == 1), "{stored:?}");
        let length: usize = redis::cmd("XLEN")
            .arg("test:events")
            .query_async(&mut admin)
            .await
            .expect("XLEN");
        assert_eq!(length, events + 1);
        eprintln!(
            "transactions aborted by the other writer: {} and {}",
            a_connections.contended(),
            b_connections.contended()
        );
    }

    /// A missing consumer group sends the batch to the script, which creates the group at its
    /// cursor in the same step as it appends.
    #[tokio::test(flavor = "current_thread")]
    async fn a_missing_group_is_created_before_the_append() {
        let server = Server::start();
        let mut admin = admin(&server).await;
        let groups = SharedGroups::default();
        let _ = groups.set(Groups {
            names: vec!["receiver".to_owned()],
            cursors: vec![vec!["test:cursor:receiver".to_owned()]],
        });
        let (batcher, _) = transacting(&server, groups).await;
        assert_eq!(
            batcher.submit(vec![item(1)]).await.expect("stored"),
            vec![None]
        );
        // Group present now: the next batch is a transaction, and the group reads both.
        assert_eq!(
            batcher.submit(vec![item(2)]).await.expect("stored"),
            vec![None]
        );
        let read: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("receiver")
            .arg("c")
            .arg("STREAMS")
            .arg("test:events")
            .arg(">")
            .query_async(&mut admin)
            .await
            .expect("XREADGROUP");
        assert_eq!(read.keys[0].ids.len(), 2);
    }

    /// An append Redis refuses (the stream's key holds something else) fails the request and
    /// leaves no dedupe key behind: the provider's retry is stored, not taken for a duplicate.
    #[tokio::test(flavor = "current_thread")]
    async fn a_refused_append_leaves_no_dedupe_key() {
        let server = Server::start();
        let mut admin = admin(&server).await;
        let (batcher, _) = transacting(&server, SharedGroups::default()).await;
        redis::cmd("SET")
            .arg("test:events")
            .arg("not a stream")
            .query_async::<()>(&mut admin)
            .await
            .expect("SET");
        let refused = batcher.submit(vec![item(7)]).await;
        assert!(
            matches!(&refused, Err(StoreError::Unavailable(m)) if m.contains("WRONGTYPE")),
            "{refused:?}"
        );
        let exists: bool = redis::cmd("EXISTS")
            .arg("test:dedupe:7")
            .query_async(&mut admin)
            .await
            .expect("EXISTS");
        assert!(!exists);
        redis::cmd("DEL")
            .arg("test:events")
            .query_async::<()>(&mut admin)
            .await
            .expect("DEL");
        assert_eq!(
            batcher.submit(vec![item(7)]).await.expect("stored"),
            vec![None]
        );
    }

    /// With Redis stalled, a full queue refuses new requests at once (the pipeline answers 503
    /// with `Retry-After`) instead of letting them pile up; what was accepted completes when
    /// Redis answers again.
    #[tokio::test(flavor = "current_thread")]
    async fn a_full_queue_refuses_at_once_and_the_accepted_complete_after_a_stall() {
        let server = Server::start();
        let client =
            redis::Client::open(format!("redis://127.0.0.1:{}", server.port)).expect("client");
        let mut admin = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        let config =
            ConnectionManagerConfig::new().set_response_timeout(Some(Duration::from_secs(5)));
        let manager = ConnectionManager::new_with_config(client, config)
            .await
            .expect("connect");
        redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(700)
            .arg("ALL")
            .query_async::<()>(&mut admin)
            .await
            .expect("pause");
        let batcher = Batcher::start(
            Handle::Single(manager),
            crate::store::redis::enqueue_script(),
            0,
            SharedGroups::default(),
            None,
            None,
            2,
        );
        let started = Instant::now();
        let results =
            futures_util::future::join_all((0..20).map(|n| batcher.submit(vec![item(n)]))).await;
        let refused = results
            .iter()
            .filter(|r| matches!(r, Err(StoreError::Full)))
            .count();
        let stored: Vec<&Vec<Outcome>> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(refused, 18, "{results:?}");
        assert_eq!(stored, vec![&vec![None], &vec![None]], "{results:?}");
        assert!(
            started.elapsed() >= Duration::from_millis(500),
            "Redis was paused"
        );
        // A repeat of an accepted event is now a duplicate carrying the stored answer.
        let again = batcher.submit(vec![item(0)]).await.expect("stored");
        assert_eq!(again, vec![Some("{}".to_owned())]);
    }
}
