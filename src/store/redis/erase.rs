//! Erasure on Redis (single or Cluster): every stream shard, every destination's schedule and
//! attempt logs, the dead letters, the quarantine, the erasure records.
//!
//! Streams are read in pages (`XRANGE … COUNT`) and matching entries removed with `XDEL`, one
//! command per key, so that on a cluster each command goes to the node of its key's slot.
//! A scheduled delivery is cancelled with `ZREM` before its entry is deleted; a worker that
//! leases it later finds nothing to lease, and one that holds it at this moment finishes its
//! attempt (`reschedule` is `ZADD XX`, so it cannot bring the entry back). Each entry taken is
//! first marked (`Layout::erased`), before the dead letters are searched, so that such an
//! attempt, if it was the last, does not dead-letter the event afterwards
//! (`dead_letter.lua` checks the mark in the same step as it writes).

use std::collections::HashSet;

use super::super::erase::{Erase, Erased, ErasureRecord, body_tombstone, event_tombstone};
use super::{RedisStore, StreamEntry};
use crate::store::StoreError;

/// Entries read per page.
const PAGE: usize = 500;
/// How long an erased entry stays marked against dead-lettering (Unix milliseconds).
const ERASED_MARKS_MS: i64 = 24 * 60 * 60 * 1000;

fn text(entry: &StreamEntry, name: &str) -> String {
    String::from_utf8_lossy(entry.field(name).unwrap_or_default()).into_owned()
}

impl RedisStore {
    /// Finds and (unless `dry_run`) removes everything that holds the person; `destinations`
    /// are the names of the destinations porter delivers to (their schedules and attempt logs).
    pub async fn erase(
        &self,
        erase: &Erase,
        destinations: &[String],
        dry_run: bool,
    ) -> Result<(Erased, HashSet<String>), StoreError> {
        let mut erased = Erased::default();
        if !dry_run {
            // Marks live as long as a lease could: a day is far longer.
            let day_ago = self.now_ms() - ERASED_MARKS_MS;
            self.command::<u64>(
                redis::cmd("ZREMRANGEBYSCORE")
                    .arg(self.layout.erased())
                    .arg("-inf")
                    .arg(day_ago),
            )
            .await?;
        }
        let mut events: HashSet<String> = HashSet::new();
        // An entry's attempt log outlives its dead letter's move: count each key once.
        let mut logs: HashSet<String> = HashSet::new();
        for (shard, stream) in self.layout.streams().iter().enumerate() {
            let mut matched = Vec::new();
            self.each_entry(stream, |entry| {
                let json = String::from_utf8_lossy(entry.field("event").unwrap_or_default());
                if erase.wants(&text(entry, "source"), &text(entry, "type"), &json) {
                    events.insert(text(entry, "id"));
                    matched.push(entry.id.clone());
                }
            })
            .await?;
            if !dry_run && !matched.is_empty() {
                // Marked before the dead letters are searched: an attempt in flight now will
                // not dead-letter the entry afterwards.
                let now = self.now_ms();
                let mut mark = redis::cmd("ZADD");
                mark.arg(self.layout.erased());
                for entry in &matched {
                    mark.arg(now).arg(format!("{shard}:{entry}"));
                }
                self.command::<u64>(&mark).await?;
            }
            for entry in matched {
                for destination in destinations {
                    let schedule = self.layout.schedule(destination, shard);
                    let attempts = self.layout.attempts(destination, shard, &entry);
                    erased.scheduled += self.remove_member(&schedule, &entry, dry_run).await?;
                    if logs.insert(attempts.clone()) {
                        erased.attempt_records += self.remove_key(&attempts, dry_run).await?;
                    }
                }
                if !dry_run {
                    self.command::<u64>(redis::cmd("XDEL").arg(stream).arg(&entry))
                        .await?;
                }
            }
        }
        let dead_letters = self.layout.dead_letters();
        let mut dead = Vec::new();
        self.each_entry(&dead_letters, |entry| {
            let json = String::from_utf8_lossy(entry.field("event").unwrap_or_default());
            let event_id = text(entry, "event_id");
            if events.contains(&event_id) || (!json.is_empty() && erase.wants_json(&json)) {
                if !event_id.is_empty() {
                    events.insert(event_id);
                }
                dead.push(entry.clone());
            }
        })
        .await?;
        for entry in dead {
            erased.dead_letters += 1;
            let shard = text(&entry, "shard").parse().unwrap_or(0);
            let attempts =
                self.layout
                    .attempts(&text(&entry, "destination"), shard, &text(&entry, "entry"));
            if logs.insert(attempts.clone()) {
                erased.attempt_records += self.remove_key(&attempts, dry_run).await?;
            }
            if !dry_run {
                self.command::<u64>(redis::cmd("XDEL").arg(&dead_letters).arg(&entry.id))
                    .await?;
            }
        }
        erased.events = events.len() as u64;
        let quarantine = self.layout.quarantine();
        let mut bodies = Vec::new();
        let mut tombstones: Vec<String> = events.iter().map(|id| event_tombstone(id)).collect();
        self.each_entry(&quarantine, |entry| {
            let source = text(entry, "source");
            let body = entry.field("body").unwrap_or_default();
            if erase.wants_body(&source, body) {
                tombstones.push(body_tombstone(&source, body));
                bodies.push((entry.id.clone(), text(entry, "size")));
            }
        })
        .await?;
        if !dry_run {
            // Remembered before anything else is searched (the raw archive next): a write
            // landing meanwhile is found, or refused.
            let until = self
                .now_ms()
                .saturating_add(i64::try_from(erase.remember_for.as_millis()).unwrap_or(i64::MAX));
            self.remember_erased(&tombstones, until).await?;
        }
        for (id, size) in bodies {
            if dry_run {
                erased.quarantined += 1;
                continue;
            }
            let removed: u64 = self
                .command(redis::cmd("XDEL").arg(&quarantine).arg(&id))
                .await?;
            if removed == 1 {
                erased.quarantined += 1;
                let size: i64 = size.parse().unwrap_or(0);
                self.command::<i64>(
                    redis::cmd("DECRBY")
                        .arg(self.layout.quarantine_bytes())
                        .arg(size),
                )
                .await?;
            }
        }
        Ok((erased, events))
    }

    /// Remembers `keys` (tombstones) as erased until `until` (Unix ms), where the archive and
    /// the quarantine check them.
    pub async fn remember_erased(&self, keys: &[String], until: i64) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        for set in [
            self.layout.archive_tombstones(),
            self.layout.quarantine_tombstones(),
        ] {
            for chunk in keys.chunks(PAGE) {
                let mut add = redis::cmd("ZADD");
                add.arg(&set).arg("GT");
                for key in chunk {
                    add.arg(until).arg(key);
                }
                self.command::<u64>(&add).await?;
            }
        }
        Ok(())
    }

    /// Of `keys`, those an erasure removed and still remembers.
    pub async fn erased_among(&self, keys: &[String]) -> Result<HashSet<String>, StoreError> {
        let now = self.now_ms();
        let set = self.layout.archive_tombstones();
        let mut erased = HashSet::new();
        for key in keys {
            let until: Option<f64> = self
                .command(redis::cmd("ZSCORE").arg(&set).arg(key))
                .await?;
            if until.is_some_and(|until| until > now as f64) {
                erased.insert(key.clone());
            }
        }
        Ok(erased)
    }

    /// Keeps an erasure's audit record (a stream of its own, never trimmed).
    pub async fn record_erasure(&self, record: &ErasureRecord) -> Result<(), StoreError> {
        let json = serde_json::to_string(record).map_err(StoreError::from)?;
        self.command::<String>(
            redis::cmd("XADD")
                .arg(self.layout.erasures())
                .arg("*")
                .arg("record")
                .arg(json),
        )
        .await
        .map(drop)
    }

    /// The newest `count` erasure records, oldest first.
    pub async fn erasures(&self, count: usize) -> Result<Vec<ErasureRecord>, StoreError> {
        let entries = self.last(&self.layout.erasures(), count).await?;
        Ok(entries
            .iter()
            .filter_map(|entry| serde_json::from_slice(entry.field("record")?).ok())
            .collect())
    }

    /// Calls `visit` with every entry of `stream`, oldest first, a page at a time.
    async fn each_entry(
        &self,
        stream: &str,
        mut visit: impl FnMut(&StreamEntry),
    ) -> Result<(), StoreError> {
        let mut after = "-".to_owned();
        loop {
            let page = self.read(stream, &after, PAGE).await?;
            for entry in &page {
                visit(entry);
            }
            match page.last() {
                Some(last) if page.len() == PAGE => after = last.id.clone(),
                _ => return Ok(()),
            }
        }
    }

    /// Removes `member` from a sorted set (or, in a dry run, says whether it is there).
    async fn remove_member(
        &self,
        key: &str,
        member: &str,
        dry_run: bool,
    ) -> Result<u64, StoreError> {
        if dry_run {
            let score: Option<f64> = self
                .command(redis::cmd("ZSCORE").arg(key).arg(member))
                .await?;
            return Ok(u64::from(score.is_some()));
        }
        self.command(redis::cmd("ZREM").arg(key).arg(member)).await
    }

    /// Deletes a key (or, in a dry run, says whether it exists).
    async fn remove_key(&self, key: &str, dry_run: bool) -> Result<u64, StoreError> {
        let command = if dry_run { "EXISTS" } else { "DEL" };
        self.command(redis::cmd(command).arg(key)).await
    }

    async fn command<T: redis::FromRedisValue>(
        &self,
        command: &redis::Cmd,
    ) -> Result<T, StoreError> {
        let mut connection = self.connection.get().await?;
        command
            .query_async(&mut connection)
            .await
            .map_err(StoreError::from)
    }
}
