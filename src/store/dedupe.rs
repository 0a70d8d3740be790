//! The dedupe keys of the memory and local stores: a map from key to its expiry and answer,
//! built so that no single operation takes time proportional to the number of keys.
//!
//! A store remembers every key for its TTL (a day by default, a week for OHIP): millions of
//! keys at a few hundred requests per second. One `HashMap` of millions doubles by rehashing
//! every entry at once, under the store's lock (tens of milliseconds, every request waiting),
//! and one `BinaryHeap` of expiries grows by copying all of it. So:
//!
//! - the map is split into [`SHARDS`] maps by the key's hash: each grows on its own, so a
//!   resize moves 1/64 of the keys;
//! - expiries are queued per TTL (keys remembered with one TTL expire in the order they were
//!   remembered, so a FIFO per TTL is a priority queue), in fixed-size chunks that are never
//!   copied;
//! - forgetting is bounded per call ([`FORGET_PER_CALL`]): a key past its expiry that is
//!   still in the map is treated as absent by [`Dedupe::get`], so forgetting late changes
//!   memory, never answers.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::Arc;

use porter_providers::Reply;

/// How many maps the keys are split into.
pub(super) const SHARDS: usize = 64;
/// Entries per chunk of an expiry queue.
const CHUNK: usize = 4_096;
/// The most expired keys one call forgets (the rest go on the next calls).
pub(super) const FORGET_PER_CALL: usize = 1_024;
/// The queue of keys restored from a snapshot, whose TTLs are not known (sorted by expiry).
const RESTORED: i64 = i64::MIN;

/// A remembered key.
#[derive(Debug)]
pub(super) struct Remembered {
    /// Unix milliseconds.
    pub expires: i64,
    pub reply: Arc<Reply>,
}

#[derive(Debug)]
pub(super) struct Dedupe {
    shards: Box<[HashMap<Arc<str>, Remembered>]>,
    hasher: std::collections::hash_map::RandomState,
    /// Per TTL in milliseconds: the keys in the order they expire.
    queues: Vec<(i64, Fifo)>,
}

impl Default for Dedupe {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| HashMap::new()).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
            queues: Vec::new(),
        }
    }
}

impl Dedupe {
    fn shard(&self, key: &str) -> usize {
        (self.hasher.hash_one(key) % SHARDS as u64) as usize
    }

    /// The key's entry if it is remembered at `now`.
    pub(super) fn get(&self, key: &str, now: i64) -> Option<&Remembered> {
        self.shards[self.shard(key)]
            .get(key)
            .filter(|remembered| remembered.expires > now)
    }

    /// Remembers `key` until `expires`; `ttl` (milliseconds) picks its expiry queue.
    pub(super) fn remember(&mut self, key: Arc<str>, expires: i64, ttl: i64, reply: Arc<Reply>) {
        let queue = match self.queues.iter_mut().position(|(t, _)| *t == ttl) {
            Some(at) => at,
            None => {
                self.queues.push((ttl, Fifo::default()));
                self.queues.len() - 1
            }
        };
        self.queues[queue].1.push((expires, Arc::clone(&key)));
        let shard = self.shard(&key);
        self.shards[shard].insert(key, Remembered { expires, reply });
    }

    /// Remembers keys whose TTLs are unknown (a snapshot's), in any order.
    pub(super) fn restore(&mut self, mut keys: Vec<(Arc<str>, i64, Arc<Reply>)>) {
        keys.sort_by_key(|(_, expires, _)| *expires);
        for (key, expires, reply) in keys {
            self.remember(key, expires, RESTORED, reply);
        }
    }

    /// Forgets up to [`FORGET_PER_CALL`] keys whose time is up.
    pub(super) fn forget_expired(&mut self, now: i64) {
        let mut budget = FORGET_PER_CALL;
        for index in 0..self.queues.len() {
            while budget > 0 {
                let Some((expires, _)) = self.queues[index].1.front() else {
                    break;
                };
                if *expires > now {
                    break;
                }
                let Some((_, key)) = self.queues[index].1.pop() else {
                    break;
                };
                budget -= 1;
                let shard = self.shard(&key);
                // The key may have been remembered again since, with a later expiry.
                if self.shards[shard]
                    .get(&key)
                    .is_some_and(|remembered| remembered.expires <= now)
                {
                    self.shards[shard].remove(&key);
                }
            }
        }
        self.queues.retain(|(_, queue)| !queue.is_empty());
    }

    /// Keys in the map (some may be expired and not yet forgotten).
    pub(super) fn len(&self) -> usize {
        self.shards.iter().map(HashMap::len).sum()
    }

    /// Every key remembered at `now`.
    pub(super) fn live(&self, now: i64) -> impl Iterator<Item = (&Arc<str>, &Remembered)> {
        self.shards
            .iter()
            .flat_map(|shard| shard.iter())
            .filter(move |(_, r)| r.expires > now)
    }
}

/// A queue in chunks: pushing never moves what is queued.
#[derive(Debug, Default)]
struct Fifo {
    chunks: VecDeque<VecDeque<(i64, Arc<str>)>>,
}

impl Fifo {
    fn push(&mut self, entry: (i64, Arc<str>)) {
        match self.chunks.back_mut() {
            Some(chunk) if chunk.len() < CHUNK => chunk.push_back(entry),
            _ => {
                let mut chunk = VecDeque::with_capacity(CHUNK);
                chunk.push_back(entry);
                self.chunks.push_back(chunk);
            }
        }
    }

    fn front(&self) -> Option<&(i64, Arc<str>)> {
        self.chunks.front()?.front()
    }

    fn pop(&mut self) -> Option<(i64, Arc<str>)> {
        let chunk = self.chunks.front_mut()?;
        let entry = chunk.pop_front();
        if chunk.is_empty() {
            self.chunks.pop_front();
        }
        entry
    }

    fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply() -> Arc<Reply> {
        Arc::new(Reply::text("ok"))
    }

    #[test]
    fn keys_are_found_until_they_expire_and_forgotten_in_bounded_steps() {
        let mut dedupe = Dedupe::default();
        for i in 0..(3 * FORGET_PER_CALL) {
            dedupe.remember(Arc::from(format!("k{i}")), 100, 100, reply());
        }
        dedupe.remember(Arc::from("long"), 1_000, 1_000, reply());
        assert!(dedupe.get("k0", 99).is_some());
        assert!(dedupe.get("k0", 100).is_none(), "expired means absent");
        dedupe.forget_expired(100);
        assert_eq!(
            dedupe.len(),
            2 * FORGET_PER_CALL + 1,
            "one call's worth forgotten"
        );
        dedupe.forget_expired(100);
        dedupe.forget_expired(100);
        assert_eq!(dedupe.len(), 1);
        assert!(dedupe.get("long", 100).is_some());
    }

    #[test]
    fn a_key_remembered_again_outlives_its_first_expiry() {
        let mut dedupe = Dedupe::default();
        dedupe.remember(Arc::from("k"), 100, 100, reply());
        dedupe.remember(Arc::from("k"), 500, 400, reply());
        dedupe.forget_expired(200);
        assert!(dedupe.get("k", 200).is_some());
        dedupe.forget_expired(500);
        assert_eq!(dedupe.len(), 0);
    }

    #[test]
    fn restored_keys_expire_in_order_whatever_order_they_came_in() {
        let mut dedupe = Dedupe::default();
        dedupe.restore(vec![
            (Arc::from("late"), 300, reply()),
            (Arc::from("early"), 100, reply()),
        ]);
        dedupe.forget_expired(150);
        assert_eq!(dedupe.len(), 1);
        assert!(dedupe.get("late", 150).is_some());
    }
}
