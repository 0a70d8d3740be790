//! The memory store's raw archive: a queue beside the event log, oldest first, bounded by
//! [`MEMORY_MAX_ENTRIES`] and `[archive] max_bytes`, each entry dropped once its retention
//! has passed (by the store's clock). The local store keeps the same queue, every change a
//! journal record first.

use jiff::Timestamp;
use std::collections::VecDeque;
use std::sync::Mutex;

use crate::store::archive::{Archived, DEFAULT_MAX_BYTES, MEMORY_MAX_ENTRIES, wanted};

/// The memory store's archive.
#[derive(Debug)]
pub(crate) struct MemoryArchive {
    inner: Mutex<MemoryInner>,
    /// `[archive] max_bytes`.
    max_bytes: std::sync::atomic::AtomicUsize,
}

impl Default for MemoryArchive {
    fn default() -> Self {
        Self {
            inner: Mutex::default(),
            max_bytes: std::sync::atomic::AtomicUsize::new(DEFAULT_MAX_BYTES),
        }
    }
}

#[derive(Debug, Default)]
struct MemoryInner {
    /// Entries with the time (ms) each expires at, oldest first.
    entries: VecDeque<(i64, Archived)>,
    bytes: usize,
    /// The last id's milliseconds and sequence.
    last: (i64, u64),
}

impl MemoryInner {
    fn expire(&mut self, now_ms: i64) {
        while let Some((expires, _)) = self.entries.front() {
            if *expires > now_ms {
                break;
            }
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        if let Some((_, oldest)) = self.entries.pop_front() {
            self.bytes = self.bytes.saturating_sub(oldest.size());
        }
    }
}

impl MemoryArchive {
    /// Bounds the archive to `max_bytes` (from the next insert on).
    pub(crate) fn set_max_bytes(&self, max_bytes: usize) {
        self.max_bytes
            .store(max_bytes, std::sync::atomic::Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends `item` (its id assigned here), kept for `retention` after `now_ms`.
    #[cfg(test)]
    pub(crate) fn append(
        &self,
        mut item: Archived,
        retention: std::time::Duration,
        now_ms: i64,
    ) -> String {
        use crate::store::archive::expiry;
        item.id = self.reserve(now_ms);
        let id = item.id.clone();
        self.insert(item, expiry(now_ms, retention), now_ms);
        id
    }

    /// The next id, at `now_ms` (the local store writes it to its journal before applying).
    pub(crate) fn reserve(&self, now_ms: i64) -> String {
        let mut inner = self.lock();
        let ms = now_ms.max(inner.last.0);
        let seq = if ms == inner.last.0 {
            inner.last.1 + 1
        } else {
            0
        };
        inner.last = (ms, seq);
        format!("{ms}-{seq}")
    }

    /// Keeps `item`, whose id is assigned, until `expires`; the oldest go first beyond the
    /// bounds.
    pub(crate) fn insert(&self, item: Archived, expires: i64, now_ms: i64) {
        let mut inner = self.lock();
        inner.expire(now_ms);
        if let Some((Ok(ms), Ok(seq))) = item
            .id
            .split_once('-')
            .map(|(ms, seq)| (ms.parse::<i64>(), seq.parse::<u64>()))
        {
            inner.last = inner.last.max((ms, seq));
        }
        inner.bytes += item.size();
        inner.entries.push_back((expires, item));
        let max_bytes = self.max_bytes.load(std::sync::atomic::Ordering::Relaxed);
        while inner.entries.len() > 1
            && (inner.entries.len() > MEMORY_MAX_ENTRIES || inner.bytes > max_bytes)
        {
            inner.pop_front();
        }
    }

    /// Every entry with its expiry, oldest first (the local store's snapshot).
    pub(crate) fn entries(&self) -> Vec<(i64, Archived)> {
        self.lock().entries.iter().cloned().collect()
    }

    pub(crate) fn list(
        &self,
        source: Option<&str>,
        since: Option<Timestamp>,
        now_ms: i64,
    ) -> Vec<Archived> {
        let mut inner = self.lock();
        inner.expire(now_ms);
        inner
            .entries
            .iter()
            // Expiries are in order unless the retention changed between runs of a local
            // store: the front alone is not enough then.
            .filter(|(expires, _)| *expires > now_ms)
            .map(|(_, item)| item)
            .filter(|item| wanted(item, source, since))
            .cloned()
            .collect()
    }

    /// Those of `ids` still kept.
    pub(crate) fn present(&self, ids: &[String]) -> Vec<String> {
        let inner = self.lock();
        ids.iter()
            .filter(|id| inner.entries.iter().any(|(_, item)| &item.id == *id))
            .cloned()
            .collect()
    }

    pub(crate) fn remove(&self, ids: &[String]) -> usize {
        let mut inner = self.lock();
        let before = inner.entries.len();
        inner.entries.retain(|(_, item)| !ids.contains(&item.id));
        let removed = before - inner.entries.len();
        inner.bytes = inner.entries.iter().map(|(_, item)| item.size()).sum();
        removed
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::store::archive::ArchivedOutcome;

    fn item(source: &str, at_ms: i64, body: &[u8]) -> Archived {
        Archived {
            id: String::new(),
            source: source.to_owned(),
            received_at: Timestamp::from_millisecond(at_ms).expect("time"),
            method: "POST".to_owned(),
            endpoint: String::new(),
            path: "/p".to_owned(),
            query: None,
            headers: vec![("x-signature".to_owned(), Bytes::from_static(b"sig"))],
            body: Bytes::copy_from_slice(body),
            outcome: ArchivedOutcome::Events(vec![("evt_1".to_owned(), "unknown".to_owned())]),
        }
    }

    #[test]
    fn memory_ids_are_ordered_and_entries_expire_by_time() {
        let archive = MemoryArchive::default();
        let minute = Duration::from_secs(60);
        let a = archive.append(item("a", 1_000, b"1"), minute, 1_000);
        let b = archive.append(item("b", 1_000, b"2"), minute, 1_000);
        assert_eq!((a.as_str(), b.as_str()), ("1000-0", "1000-1"));
        assert_eq!(archive.list(None, None, 1_000).len(), 2);
        assert_eq!(archive.list(Some("b"), None, 1_000)[0].id, b);
        assert!(archive.list(None, None, 61_000).is_empty());
    }

    #[test]
    fn an_entry_past_its_expiry_is_never_listed_even_behind_a_longer_one() {
        let archive = MemoryArchive::default();
        let mut long = item("s", 0, b"1");
        long.id = "1-0".to_owned();
        archive.insert(long, 10_000, 0);
        let mut short = item("s", 0, b"2");
        short.id = "2-0".to_owned();
        archive.insert(short, 100, 0);
        let listed = archive.list(None, None, 500);
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, "1-0");
    }

    #[test]
    fn memory_is_bounded_by_entries_and_removal_is_idempotent() {
        let archive = MemoryArchive::default();
        let day = Duration::from_secs(86_400);
        for i in 0..(MEMORY_MAX_ENTRIES + 5) {
            archive.append(item("s", 0, b"x"), day, i64::try_from(i).unwrap_or(0));
        }
        let kept = archive.list(None, None, 0);
        assert_eq!(kept.len(), MEMORY_MAX_ENTRIES);
        assert_eq!(kept[0].id, "5-0");
        let ids = vec!["5-0".to_owned(), "nope".to_owned()];
        assert_eq!(archive.remove(&ids), 1);
        assert_eq!(archive.remove(&ids), 0);
    }

    #[test]
    fn reserved_ids_survive_a_replay() {
        let archive = MemoryArchive::default();
        let mut entry = item("s", 0, b"x");
        entry.id = "5000-3".to_owned();
        archive.insert(entry, 10_000, 0);
        assert_eq!(archive.reserve(4_000), "5000-4", "never an id already used");
    }

    #[test]
    fn memory_is_bounded_by_bytes() {
        let archive = MemoryArchive::default();
        let big = vec![0u8; DEFAULT_MAX_BYTES / 2];
        for _ in 0..3 {
            archive.append(item("s", 0, &big), Duration::from_secs(60), 0);
        }
        assert_eq!(archive.list(None, Some(Timestamp::UNIX_EPOCH), 0).len(), 1);
    }
}
