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
use crate::delivery::memory_queue::MemoryQueue;

/// How many quarantined bodies are kept; older ones are dropped first.
const QUARANTINE_CAPACITY: usize = 1_000;
/// Expired dedupe keys are swept after this many insertions.
const SWEEP_EVERY: usize = 1_024;
/// Stands in for a TTL too long to add to the clock.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// The in-process store.
#[derive(Debug)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    capacity: usize,
    /// Destinations' schedules: every new event is pushed here in the same step.
    deliveries: Option<Arc<MemoryQueue>>,
}

/// Where new events go.
enum Output {
    /// Kept in the log, up to the capacity.
    Keep,
    /// Written as JSON lines (stdout in `porter serve`); nothing is kept.
    Lines(Box<dyn Write + Send>),
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Output::Keep => "Keep",
            Output::Lines(_) => "Lines",
        })
    }
}

#[derive(Debug)]
struct Inner {
    output: Output,
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
        let output = if print_events {
            Output::Lines(Box::new(std::io::stdout()))
        } else {
            Output::Keep
        };
        Self::with_output(output, capacity)
    }

    /// A store that writes every new event as a JSON line to `writer` and keeps none.
    pub fn writing_to(writer: Box<dyn Write + Send>) -> Self {
        Self::with_output(Output::Lines(writer), 0)
    }

    fn with_output(output: Output, capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                output,
                dedupe: HashMap::new(),
                log: VecDeque::new(),
                quarantine: VecDeque::new(),
                inserts_since_sweep: 0,
            }),
            capacity,
            deliveries: None,
        }
    }

    /// Also schedules every new event for delivery (the destinations of the configuration).
    pub fn with_deliveries(mut self, deliveries: Arc<MemoryQueue>) -> Self {
        self.deliveries = Some(deliveries);
        self
    }

    /// The delivery schedules, when destinations are configured.
    pub fn deliveries(&self) -> Option<&Arc<MemoryQueue>> {
        self.deliveries.as_ref()
    }

    pub(super) fn enqueue(
        &self,
        events: &[Normalized],
        reply: &Reply,
        ttl: Duration,
    ) -> Result<Enqueued, StoreError> {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.sweep_if_due(now);
        // Classify first, commit second: a full store or a failed write leaves no key behind.
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
        if let Some(deliveries) = &self.deliveries
            && !deliveries.has_room_for(fresh.len())
        {
            return Err(StoreError::Full);
        }
        // Serialised before anything is committed, so that a failure leaves no key behind.
        let jsons: Vec<Arc<str>> = match &self.deliveries {
            None => Vec::new(),
            Some(_) => fresh
                .iter()
                .map(|event| serde_json::to_string(&event.event).map(Arc::from))
                .collect::<Result<_, _>>()
                .map_err(|e| StoreError::Unavailable(e.to_string()))?,
        };
        match &mut inner.output {
            Output::Keep => {
                if inner.log.len() + fresh.len() > self.capacity {
                    return Err(StoreError::Full);
                }
            }
            Output::Lines(writer) => write_lines(writer, &fresh)?,
        }
        let reply = Arc::new(reply.clone());
        // An absurd TTL means "for as long as this process lives".
        let expires = now.checked_add(ttl).unwrap_or(now + FOREVER);
        for event in &fresh {
            inner.dedupe.insert(
                event.dedupe_key.clone(),
                Remembered {
                    expires,
                    reply: Arc::clone(&reply),
                },
            );
            if let Output::Keep = inner.output {
                inner.log.push_back(event.event.clone());
            }
        }
        inner.inserts_since_sweep += fresh.len();
        if let Some(deliveries) = &self.deliveries {
            let now_ms = jiff::Timestamp::now().as_millisecond();
            for (event, json) in fresh.iter().zip(&jsons) {
                deliveries.push(&event.event, json, now_ms);
            }
        }
        Ok(Enqueued {
            new: fresh.len(),
            duplicates: events.len() - fresh.len(),
            original,
        })
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

/// Writes and flushes one JSON line per event; an error means the events did not get out.
fn write_lines(
    writer: &mut Box<dyn Write + Send>,
    events: &[&Normalized],
) -> Result<(), StoreError> {
    let failed = |e: std::io::Error| StoreError::Unavailable(format!("writing events failed: {e}"));
    for event in events {
        let line = serde_json::to_string(&event.event)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        writer.write_all(line.as_bytes()).map_err(failed)?;
        writer.write_all(b"\n").map_err(failed)?;
    }
    writer.flush().map_err(failed)
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

    /// A writer that fails, like a closed stdout.
    struct Broken;

    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "closed",
            ))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failed_write_refuses_the_events_and_remembers_nothing() {
        let store = MemoryStore::writing_to(Box::new(Broken));
        let refused = store.enqueue(&[event("a")], &Reply::text("1"), TTL);
        assert!(matches!(refused, Err(StoreError::Unavailable(_))));
        assert_eq!(
            store.remembered_keys(),
            0,
            "the retry must not be a duplicate"
        );
    }

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn written_events_are_lines_and_duplicates_are_not_written_again() {
        let out = Shared::default();
        let store = MemoryStore::writing_to(Box::new(out.clone()));
        store
            .enqueue(&[event("a"), event("b")], &Reply::text("1"), TTL)
            .expect("written");
        let again = store
            .enqueue(&[event("a")], &Reply::text("2"), TTL)
            .expect("duplicate");
        assert!(again.is_duplicate());
        let text = String::from_utf8(out.0.lock().expect("lock").clone()).expect("utf-8");
        assert_eq!(text.lines().count(), 2);
        assert!(
            store.events().is_empty(),
            "nothing is kept when events are written"
        );
    }

    #[test]
    fn an_enormous_ttl_does_not_overflow() {
        let store = MemoryStore::new(false, 10);
        let outcome = store.enqueue(&[event("a")], &Reply::text("1"), Duration::MAX);
        assert_eq!(outcome.map(|o| o.new), Ok(1));
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
