//! The in-process store: one mutex over a dedupe map, an event log and a quarantine.
//!
//! For development, tests and single-instance trials: nothing survives a restart and nothing
//! is shared between instances. It is bounded: when the log holds `capacity` events it answers
//! [`StoreError::Full`] (503, the provider retries) rather than growing without limit. With
//! `print_events`, each new event is written to stdout as one JSON line and not kept: stdout
//! is then the consumer.
//!
//! A `std::sync::Mutex` rather than an async one: the critical section is short, never awaits,
//! and an async mutex would only add overhead (the tokio docs recommend exactly this).

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use porter_providers::{Event, Normalized, Reply};

use super::{Enqueued, Quarantined, StoreError};

/// How many quarantined bodies are kept; older ones are dropped first.
const QUARANTINE_CAPACITY: usize = 1_000;
/// Expired dedupe keys are swept after this many insertions.
const SWEEP_EVERY: usize = 1_024;

/// The in-process store.
#[derive(Debug)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    print_events: bool,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Inner {
    dedupe: HashMap<String, Remembered>,
    log: VecDeque<Event>,
    quarantine: VecDeque<Quarantined>,
    inserts_since_sweep: usize,
}

#[derive(Debug)]
struct Remembered {
    expires: Instant,
    reply: Arc<Reply>,
}

impl MemoryStore {
    pub fn new(print_events: bool, capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            print_events,
            capacity,
        }
    }

    pub(super) fn enqueue(
        &self,
        events: &[Normalized],
        reply: &Reply,
        ttl: Duration,
    ) -> Result<Enqueued, StoreError> {
        let now = Instant::now();
        let mut printed = Vec::new();
        let outcome = {
            let mut inner = self.lock();
            inner.sweep_if_due(now);
            // Classify first, commit second: a full store must leave no key behind.
            let mut fresh: Vec<&Normalized> = Vec::new();
            let mut original = None;
            for event in events {
                let seen_in_batch = fresh.iter().any(|f| f.dedupe_key == event.dedupe_key);
                match inner.dedupe.get(&event.dedupe_key) {
                    Some(known) if known.expires > now => {
                        original.get_or_insert_with(|| Reply::clone(&known.reply));
                    }
                    _ if seen_in_batch => {}
                    _ => fresh.push(event),
                }
            }
            if !self.print_events && inner.log.len() + fresh.len() > self.capacity {
                return Err(StoreError::Full);
            }
            let reply = Arc::new(reply.clone());
            for event in &fresh {
                inner.dedupe.insert(
                    event.dedupe_key.clone(),
                    Remembered {
                        expires: now + ttl,
                        reply: Arc::clone(&reply),
                    },
                );
                if self.print_events {
                    printed.push(event.event.clone());
                } else {
                    inner.log.push_back(event.event.clone());
                }
            }
            inner.inserts_since_sweep += fresh.len();
            Enqueued {
                new: fresh.len(),
                duplicates: events.len() - fresh.len(),
                original,
            }
        };
        if !printed.is_empty() {
            print_lines(&printed);
        }
        Ok(outcome)
    }

    pub(super) fn quarantine(&self, item: Quarantined) {
        let mut inner = self.lock();
        if inner.quarantine.len() == QUARANTINE_CAPACITY {
            inner.quarantine.pop_front();
        }
        inner.quarantine.push_back(item);
    }

    /// A copy of the events held, oldest first.
    pub fn events(&self) -> Vec<Event> {
        self.lock().log.iter().cloned().collect()
    }

    /// Removes and returns the events held, oldest first.
    pub fn drain(&self) -> Vec<Event> {
        self.lock().log.drain(..).collect()
    }

    /// A copy of the quarantined bodies, oldest first.
    pub fn quarantined(&self) -> Vec<Quarantined> {
        self.lock().quarantine.iter().cloned().collect()
    }

    /// Dedupe keys currently remembered (expired ones may linger until the next sweep).
    pub fn remembered_keys(&self) -> usize {
        self.lock().dedupe.len()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than refusing all further requests would, so recover the guard.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Inner {
    fn sweep_if_due(&mut self, now: Instant) {
        if self.inserts_since_sweep >= SWEEP_EVERY {
            self.dedupe.retain(|_, remembered| remembered.expires > now);
            self.inserts_since_sweep = 0;
        }
    }
}

fn print_lines(events: &[Event]) {
    let mut out = std::io::stdout().lock();
    for event in events {
        if let Ok(line) = serde_json::to_string(event) {
            // A closed stdout must not fail the request: the event is already accepted.
            let _ = writeln!(out, "{line}");
        }
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use porter_providers::EventBody;
    use porter_providers::event::{Attributes, Origin, UnknownData};

    use super::*;

    fn event(key: &str) -> Normalized {
        let origin = Origin {
            source_name: "s",
            provider: "meta",
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

    const TTL: Duration = Duration::from_secs(60);

    #[test]
    fn second_delivery_is_a_duplicate_with_the_first_answer() {
        let store = MemoryStore::new(false, 10);
        let first = store
            .enqueue(&[event("a")], &Reply::text("first"), TTL)
            .expect("enqueued");
        assert_eq!(first.new, 1);
        assert!(!first.is_duplicate());
        let again = store
            .enqueue(&[event("a")], &Reply::text("second"), TTL)
            .expect("enqueued");
        assert!(again.is_duplicate());
        assert_eq!(again.original, Some(Reply::text("first")));
        assert_eq!(store.events().len(), 1);
    }

    #[test]
    fn a_partly_new_batch_enqueues_only_what_is_missing() {
        let store = MemoryStore::new(false, 10);
        store
            .enqueue(&[event("a")], &Reply::text("1"), TTL)
            .expect("enqueued");
        let outcome = store
            .enqueue(
                &[event("a"), event("b"), event("b")],
                &Reply::text("2"),
                TTL,
            )
            .expect("enqueued");
        assert_eq!((outcome.new, outcome.duplicates), (1, 2));
        assert!(!outcome.is_duplicate());
        assert_eq!(store.events().len(), 2);
    }

    #[test]
    fn a_full_store_refuses_the_whole_batch_and_remembers_nothing() {
        let store = MemoryStore::new(false, 2);
        store
            .enqueue(&[event("a")], &Reply::text("1"), TTL)
            .expect("enqueued");
        let refused = store.enqueue(&[event("b"), event("c")], &Reply::text("2"), TTL);
        assert_eq!(refused, Err(StoreError::Full));
        assert_eq!(store.remembered_keys(), 1);
        store.drain();
        let retried = store
            .enqueue(&[event("b"), event("c")], &Reply::text("2"), TTL)
            .expect("room again");
        assert_eq!(retried.new, 2, "the retry is not deduplicated away");
    }

    #[test]
    fn keys_expire_after_the_ttl() {
        let store = MemoryStore::new(false, 10);
        let short = Duration::from_millis(20);
        store
            .enqueue(&[event("a")], &Reply::text("1"), short)
            .expect("enqueued");
        std::thread::sleep(Duration::from_millis(40));
        let later = store
            .enqueue(&[event("a")], &Reply::text("2"), short)
            .expect("enqueued");
        assert_eq!(later.new, 1);
    }

    #[test]
    fn quarantine_is_bounded() {
        let store = MemoryStore::new(false, 10);
        for i in 0..(QUARANTINE_CAPACITY + 5) {
            store.quarantine(Quarantined {
                source: "s".into(),
                reason: i.to_string(),
                received_at: jiff::Timestamp::UNIX_EPOCH,
                content_type: None,
                body: bytes::Bytes::new(),
            });
        }
        let kept = store.quarantined();
        assert_eq!(kept.len(), QUARANTINE_CAPACITY);
        assert_eq!(kept[0].reason, "5");
    }
}
