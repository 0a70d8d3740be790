//! Delivery schedules in Redis, shared by every porter instance.
//!
//! Per destination and stream shard: a consumer group named after the destination reads new
//! entries (`XREADGROUP … >`), and `schedule.lua` moves the wanted ones into a sorted set of
//! entry ids by due time while acknowledging them, in one step. Entries a crashed instance had
//! read but not yet scheduled stay pending in the group and are reclaimed with `XAUTOCLAIM`
//! once idle for a lease. `lease.lua` hands out due entries and pushes their due time to the
//! lease's end. Attempts are logged per entry in a list (kept 7 days); dead letters go to one
//! stream with the event and every attempt.
//!
//! Redis may lose a consumer group (a restart without persistence, a FLUSHALL, a failover, an
//! operator's `XGROUP DESTROY`). The append recreates missing groups before it stores anything
//! (`store/groups.lua`), and a worker that meets `NOGROUP` recreates its group itself; either
//! way at the group's *cursor*, the latest entry porter scheduled for it, which
//! `schedule.lua` moves in the same step as it schedules, or at the stream's start when the
//! cursor was lost too. Nothing stored meanwhile is skipped.

use std::sync::Arc;
use std::time::Duration;

use porter_providers::EventType;
use redis::Script;
use serde_json::Value;

use crate::store::redis::StreamEntry;
use crate::store::schedule::{Attempt, Job, Lease, Next, Outcome, Schedule, source_name};
use crate::store::{RedisStore, StoreError};
use crate::vocab::{Filter, is_status_regression};
use jiff::Timestamp;

/// A stream entry's field/value pairs, and the entry with its id.
type Fields = Vec<(String, Vec<u8>)>;
type Entry = (String, Fields);
/// `XAUTOCLAIM`'s reply: the next cursor, the claimed entries (fields absent when deleted),
/// and the ids of deleted entries.
type AutoClaim = (String, Vec<(String, Option<Fields>)>, Vec<String>);

/// How long attempt logs are kept after the last attempt.
const ATTEMPT_LOG_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// How many entries one read or claim takes.
const BATCH: usize = 256;

/// The delivery queue on the Redis store.
pub struct RedisSchedule {
    store: Arc<RedisStore>,
    /// This instance's consumer name in every group.
    consumer: String,
    schedule: Script,
    lease: Script,
    complete: Script,
    group: Script,
    rate: Script,
    dead_letter: Script,
}

impl std::fmt::Debug for RedisSchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSchedule")
            .field("consumer", &self.consumer)
            .finish_non_exhaustive()
    }
}

/// Redis's answer when the consumer group (or its stream) does not exist.
fn is_nogroup(error: &redis::RedisError) -> bool {
    error.code() == Some("NOGROUP")
}

fn warn_recreated(group: &str, shard: usize) {
    tracing::warn!(
        destination = group,
        shard,
        "the consumer group was missing (Redis lost its data, or the group was deleted): \
         recreated from the last entry porter scheduled for it, or from the stream's start"
    );
}

impl RedisSchedule {
    pub fn new(store: Arc<RedisStore>, consumer: String) -> Self {
        Self {
            store,
            consumer,
            schedule: Script::new(concat!(
                include_str!("groups.lua"),
                include_str!("schedule.lua")
            )),
            lease: Script::new(include_str!("lease.lua")),
            complete: Script::new(include_str!("complete.lua")),
            group: crate::store::redis::group_script(),
            rate: Script::new(include_str!("rate.lua")),
            dead_letter: Script::new(include_str!("dead_letter.lua")),
        }
    }

    /// Takes up to `wanted` tokens from `destination`'s shared bucket (a negative `wanted`
    /// gives tokens back); returns how many were granted.
    pub async fn take_tokens(
        &self,
        destination: &str,
        rate: f64,
        burst: f64,
        wanted: i64,
    ) -> Result<i64, StoreError> {
        let mut connection = self.store.connection().await?;
        self.rate
            .key(self.store.layout().rate(destination))
            .arg(rate)
            .arg(burst)
            .arg(wanted)
            .invoke_async(&mut connection)
            .await
            .map_err(StoreError::from)
    }

    pub fn store(&self) -> &RedisStore {
        &self.store
    }

    pub fn shard_count(&self) -> usize {
        self.store.layout().shard_count()
    }

    /// Creates the destination's consumer group on every shard if missing, when porter
    /// starts: at its cursor if porter delivered for it before (Redis lost the group), else at
    /// the stream's end (a new destination gets new events only).
    pub async fn ensure_group(&self, destination: &str) -> Result<(), StoreError> {
        for shard in 0..self.shard_count() {
            self.run_group(destination, shard, "$", false).await?;
        }
        Ok(())
    }

    /// For a group that services read themselves: recreates it if Redis lost it, and keeps its
    /// cursor at the group's last delivered entry.
    pub async fn track_group(&self, group: &str) -> Result<(), StoreError> {
        for shard in 0..self.shard_count() {
            if self.run_group(group, shard, "0", true).await? {
                warn_recreated(group, shard);
            }
        }
        Ok(())
    }

    /// Recreates a group a read found missing (`NOGROUP`), at its cursor or the stream's start.
    async fn recover_group(&self, destination: &str, shard: usize) -> Result<(), StoreError> {
        if self.run_group(destination, shard, "0", false).await? {
            warn_recreated(destination, shard);
        }
        Ok(())
    }

    /// Runs `group.lua`; whether it created the group.
    async fn run_group(
        &self,
        group: &str,
        shard: usize,
        start: &str,
        follow: bool,
    ) -> Result<bool, StoreError> {
        let layout = self.store.layout();
        let mut connection = self.store.connection().await?;
        let created: i64 = self
            .group
            .key(layout.stream(shard))
            .key(layout.cursor(group, shard))
            .arg(group)
            .arg(start)
            .arg(if follow { "1" } else { "0" })
            .invoke_async(&mut connection)
            .await?;
        Ok(created > 0)
    }

    /// Reads new entries of one shard into the schedule; returns how many it read.
    async fn intake_new(
        &self,
        destination: &str,
        filter: &Filter,
        shard: usize,
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        let mut connection = self.store.connection().await?;
        let stream = self.store.layout().stream(shard);
        let reply: Option<Vec<(String, Vec<Entry>)>> = match redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(destination)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(BATCH)
            .arg("STREAMS")
            .arg(&stream)
            .arg(">")
            .query_async(&mut connection)
            .await
        {
            Err(error) if is_nogroup(&error) => {
                self.recover_group(destination, shard).await?;
                return Ok(0);
            }
            reply => reply.map_err(StoreError::from)?,
        };
        let entries: Vec<Entry> = reply
            .into_iter()
            .flatten()
            .flat_map(|(_, entries)| entries)
            .collect();
        self.schedule_entries(destination, filter, shard, now_ms, &entries)
            .await?;
        Ok(entries.len())
    }

    /// Takes over entries another instance read but never scheduled (it died in between).
    async fn reclaim(
        &self,
        destination: &str,
        filter: &Filter,
        shard: usize,
        idle: Duration,
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        let mut connection = self.store.connection().await?;
        let stream = self.store.layout().stream(shard);
        let reply: AutoClaim = match redis::cmd("XAUTOCLAIM")
            .arg(&stream)
            .arg(destination)
            .arg(&self.consumer)
            .arg(u64::try_from(idle.as_millis()).unwrap_or(u64::MAX))
            .arg("0-0")
            .arg("COUNT")
            .arg(BATCH)
            .query_async(&mut connection)
            .await
        {
            Err(error) if is_nogroup(&error) => {
                self.recover_group(destination, shard).await?;
                return Ok(0);
            }
            reply => reply.map_err(StoreError::from)?,
        };
        let entries: Vec<Entry> = reply
            .1
            .into_iter()
            .map(|(id, fields)| (id, fields.unwrap_or_default()))
            .collect();
        self.schedule_entries(destination, filter, shard, now_ms, &entries)
            .await?;
        Ok(entries.len())
    }

    async fn schedule_entries(
        &self,
        destination: &str,
        filter: &Filter,
        shard: usize,
        now_ms: i64,
        entries: &[Entry],
    ) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let field = |fields: &[(String, Vec<u8>)], name: &str| {
            fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        };
        let (mut wanted, mut skipped) = (Vec::new(), Vec::new());
        for (id, fields) in entries {
            let event_type = field(fields, "type").unwrap_or_default();
            let source = field(fields, "source").unwrap_or_default();
            // An entry without a known type is not porter's; no destination gets it.
            let wants = EventType::from_name(&event_type).is_some()
                && filter.matches(&event_type, source_name(&source))
                && !(filter.forward_only
                    && event_type == "message.status_changed"
                    && is_status_regression(
                        &event_type,
                        &field(fields, "event").unwrap_or_default(),
                    ));
            if wants {
                wanted.push(id)
            } else {
                skipped.push(id)
            }
        }
        let layout = self.store.layout();
        let mut connection = self.store.connection().await?;
        let mut invocation = self.schedule.key(layout.stream(shard));
        invocation
            .key(layout.schedule(destination, shard))
            .key(layout.cursor(destination, shard))
            .arg(destination)
            .arg(now_ms)
            .arg(wanted.len());
        for id in wanted.iter().chain(skipped.iter()) {
            invocation.arg(id.as_str());
        }
        invocation.invoke_async::<i64>(&mut connection).await?;
        Ok(())
    }

    /// Up to `limit` due entries of one shard, leased until `until_ms`.
    async fn lease_due(
        &self,
        destination: &str,
        shard: usize,
        lease: Lease,
    ) -> Result<Vec<Job>, StoreError> {
        let Lease {
            limit,
            ordered,
            now,
            until,
        } = lease;
        let (now_ms, until_ms) = (now.as_millisecond(), until.as_millisecond());
        let layout = self.store.layout();
        let mut connection = self.store.connection().await?;
        let ids: Vec<String> = self
            .lease
            .key(layout.schedule(destination, shard))
            .key(layout.paused(destination, shard))
            .arg(now_ms)
            .arg(until_ms)
            .arg(limit)
            .arg(if ordered { "1" } else { "0" })
            .invoke_async(&mut connection)
            .await?;
        let mut jobs = Vec::with_capacity(ids.len());
        for id in ids {
            let entries = self
                .store
                .read_range(&layout.stream(shard), &id, &id)
                .await?;
            let attempts: usize = redis::cmd("LLEN")
                .arg(layout.attempts(destination, shard, &id))
                .query_async(&mut connection)
                .await?;
            match entries.into_iter().next() {
                Some(entry) => jobs.push(Job {
                    entry: id,
                    shard,
                    event_id: entry
                        .field("id")
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                        .unwrap_or_default(),
                    event: Some(Arc::from(
                        String::from_utf8_lossy(entry.field("event").unwrap_or_default()).as_ref(),
                    )),
                    attempts,
                    leased_until: until_ms,
                }),
                // Trimmed away (MAXLEN) before it was delivered: it can only be dead-lettered.
                None => jobs.push(Job {
                    entry: id,
                    shard,
                    event_id: String::new(),
                    event: None,
                    attempts,
                    leased_until: until_ms,
                }),
            }
        }
        Ok(jobs)
    }

    async fn record(
        &self,
        destination: &str,
        job: &Job,
        attempt: &Attempt,
    ) -> Result<(), StoreError> {
        let key = self
            .store
            .layout()
            .attempts(destination, job.shard, &job.entry);
        let json = serde_json::to_string(attempt).map_err(StoreError::from)?;
        let mut connection = self.store.connection().await?;
        redis::pipe()
            .cmd("RPUSH")
            .arg(&key)
            .arg(json)
            .ignore()
            .cmd("EXPIRE")
            .arg(&key)
            .arg(ATTEMPT_LOG_TTL.as_secs())
            .ignore()
            .query_async::<()>(&mut connection)
            .await
            .map_err(StoreError::from)
    }

    /// Takes the job out of the schedule, unless it was rescheduled since it was leased.
    pub async fn complete(&self, destination: &str, job: &Job) -> Result<(), StoreError> {
        let mut connection = self.store.connection().await?;
        self.complete
            .key(self.store.layout().schedule(destination, job.shard))
            .arg(&job.entry)
            .arg(job.leased_until)
            .invoke_async::<i64>(&mut connection)
            .await
            .map(drop)
            .map_err(StoreError::from)
    }

    async fn reschedule(
        &self,
        destination: &str,
        job: &Job,
        due_ms: i64,
    ) -> Result<(), StoreError> {
        let mut connection = self.store.connection().await?;
        redis::cmd("ZADD")
            .arg(self.store.layout().schedule(destination, job.shard))
            .arg("XX")
            .arg(due_ms)
            .arg(&job.entry)
            .query_async::<i64>(&mut connection)
            .await
            .map(drop)
            .map_err(StoreError::from)
    }

    /// When an entry is next due for a destination, if it is scheduled (Unix milliseconds).
    pub async fn scheduled_at(
        &self,
        destination: &str,
        shard: usize,
        entry: &str,
    ) -> Result<Option<i64>, StoreError> {
        let mut connection = self.store.connection().await?;
        let score: Option<f64> = redis::cmd("ZSCORE")
            .arg(self.store.layout().schedule(destination, shard))
            .arg(entry)
            .query_async(&mut connection)
            .await?;
        Ok(score.map(|s| s as i64))
    }

    /// The attempts logged for a job.
    pub async fn attempts(
        &self,
        destination: &str,
        shard: usize,
        entry: &str,
    ) -> Result<Vec<Attempt>, StoreError> {
        let mut connection = self.store.connection().await?;
        let items: Vec<String> = redis::cmd("LRANGE")
            .arg(self.store.layout().attempts(destination, shard, entry))
            .arg(0)
            .arg(-1)
            .query_async(&mut connection)
            .await?;
        Ok(items
            .iter()
            .filter_map(|item| serde_json::from_str(item).ok())
            .collect())
    }

    /// Appends the job, its event and every attempt to the dead-letter stream (unless an
    /// erasure took its entry while the attempt was in flight), then takes it out of the
    /// schedule. (In that order: a crash in between dead-letters it twice, never loses it.)
    async fn dead_letter(
        &self,
        destination: &str,
        job: &Job,
        reason: &str,
    ) -> Result<(), StoreError> {
        let attempts = self.attempts(destination, job.shard, &job.entry).await?;
        let attempts = serde_json::to_string(&attempts).map_err(StoreError::from)?;
        let mut connection = self.store.connection().await?;
        let layout = self.store.layout();
        self.dead_letter
            .key(layout.dead_letters())
            .key(layout.erased())
            .arg(format!("{}:{}", job.shard, job.entry))
            .arg("destination")
            .arg(destination)
            .arg("shard")
            .arg(job.shard)
            .arg("entry")
            .arg(&job.entry)
            .arg("event_id")
            .arg(&job.event_id)
            .arg("reason")
            .arg(reason)
            .arg("event")
            .arg(job.event.as_deref().unwrap_or_default())
            .arg("attempts")
            .arg(attempts)
            .invoke_async::<i64>(&mut connection)
            .await?;
        self.complete(destination, job).await
    }

    /// Puts a dead-lettered entry back into its destination's schedule, due now, and removes
    /// it from the dead letters.
    pub async fn replay(
        &self,
        dead_letter: &StreamEntry,
        now_ms: i64,
    ) -> Result<String, StoreError> {
        let text = |name: &str| {
            dead_letter
                .field(name)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        let (Some(destination), Some(entry)) = (text("destination"), text("entry")) else {
            return Err(StoreError::Unavailable(format!(
                "{} is not a dead letter",
                dead_letter.id
            )));
        };
        let shard: usize = text("shard").and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut connection = self.store.connection().await?;
        // Due now, whatever its due time was: if the instance that dead-lettered it has not
        // taken it out of the schedule yet, the changed due time tells it not to.
        redis::cmd("ZADD")
            .arg(self.store.layout().schedule(&destination, shard))
            .arg(now_ms)
            .arg(&entry)
            .query_async::<i64>(&mut connection)
            .await?;
        redis::cmd("XDEL")
            .arg(self.store.layout().dead_letters())
            .arg(&dead_letter.id)
            .query_async::<i64>(&mut connection)
            .await?;
        Ok(destination)
    }

    /// Entries waiting for a destination: scheduled plus not yet read by its group.
    async fn waiting(&self, destination: &str) -> Result<u64, StoreError> {
        let mut connection = self.store.connection().await?;
        let mut total = 0u64;
        for shard in 0..self.shard_count() {
            let scheduled: u64 = redis::cmd("ZCARD")
                .arg(self.store.layout().schedule(destination, shard))
                .query_async(&mut connection)
                .await?;
            total += scheduled + self.unread(destination, shard).await?;
        }
        Ok(total)
    }

    /// Entries of a shard the destination's group has not read yet (`XINFO GROUPS` lag).
    pub async fn unread(&self, group: &str, shard: usize) -> Result<u64, StoreError> {
        let mut connection = self.store.connection().await?;
        let groups: Vec<Value> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(self.store.layout().stream(shard))
            .query_async::<redis::Value>(&mut connection)
            .await
            .map_err(StoreError::from)
            .map(|value| {
                value_to_json(&value)
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })?;
        Ok(groups
            .iter()
            .filter_map(|g| g.as_array())
            .find(|fields| {
                fields
                    .chunks(2)
                    .any(|kv| kv[0] == "name" && kv.get(1).is_some_and(|v| v == group))
            })
            .and_then(|fields| {
                fields
                    .chunks(2)
                    .find(|kv| kv[0] == "lag")
                    .and_then(|kv| kv.get(1)?.as_u64())
            })
            .unwrap_or(0))
    }
}

impl Schedule for RedisSchedule {
    fn shards(&self) -> usize {
        self.shard_count()
    }

    async fn prepare(&self, destination: &str) -> Result<(), StoreError> {
        self.ensure_group(destination).await
    }

    async fn intake(
        &self,
        destination: &str,
        filter: &Filter,
        shard: usize,
        now: Timestamp,
        reclaim: Option<Duration>,
    ) -> Result<usize, StoreError> {
        let now_ms = now.as_millisecond();
        let mut found = self.intake_new(destination, filter, shard, now_ms).await?;
        if let Some(idle) = reclaim {
            found += self
                .reclaim(destination, filter, shard, idle, now_ms)
                .await?;
        }
        Ok(found)
    }

    async fn lease(
        &self,
        destination: &str,
        shard: usize,
        lease: Lease,
    ) -> Result<Vec<Job>, StoreError> {
        self.lease_due(destination, shard, lease).await
    }

    async fn finish(
        &self,
        destination: &str,
        job: &Job,
        attempt: Attempt,
        next: Next,
    ) -> Result<(), StoreError> {
        self.record(destination, job, &attempt).await?;
        match next {
            Next::Done => self.complete(destination, job).await,
            Next::Retry { due_ms } => self.reschedule(destination, job, due_ms).await,
            Next::DeadLettered => {
                let reason = match &attempt.outcome {
                    Outcome::Failed(reason) => reason.as_str(),
                    Outcome::Delivered => "",
                };
                self.dead_letter(destination, job, reason).await
            }
        }
    }

    async fn backlog(&self, destination: &str) -> Result<u64, StoreError> {
        self.waiting(destination).await
    }

    async fn set_paused(&self, destination: &str, paused: bool) -> Result<(), StoreError> {
        let layout = self.store.layout();
        let mut connection = self.store.connection().await?;
        // One command per shard: on a cluster the keys live in different slots.
        for shard in 0..self.shard_count() {
            let key = layout.paused(destination, shard);
            let command = if paused {
                redis::cmd("SET").arg(key).arg(1).clone()
            } else {
                redis::cmd("DEL").arg(key).clone()
            };
            command.query_async::<()>(&mut connection).await?;
        }
        Ok(())
    }

    async fn is_paused(&self, destination: &str) -> Result<bool, StoreError> {
        let mut connection = self.store.connection().await?;
        let held: i64 = redis::cmd("EXISTS")
            .arg(self.store.layout().paused(destination, 0))
            .query_async(&mut connection)
            .await?;
        Ok(held == 1)
    }
}

/// A RESP value as JSON, for reading `XINFO`'s mixed replies.
fn value_to_json(value: &redis::Value) -> Value {
    match value {
        redis::Value::Int(n) => Value::from(*n),
        redis::Value::BulkString(bytes) => Value::from(String::from_utf8_lossy(bytes).into_owned()),
        redis::Value::SimpleString(text) => Value::from(text.clone()),
        redis::Value::Array(items) | redis::Value::Set(items) => {
            items.iter().map(value_to_json).collect()
        }
        redis::Value::Map(pairs) => pairs
            .iter()
            .flat_map(|(k, v)| [value_to_json(k), value_to_json(v)])
            .collect(),
        _ => Value::Null,
    }
}
