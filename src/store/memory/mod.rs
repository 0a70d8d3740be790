//! The in-process store: one mutex over a dedupe map, an event log and a quarantine.
//!
//! For development, tests and single-instance trials: nothing survives a restart and nothing
//! is shared between instances. It is bounded: when the log holds `capacity` events it answers
//! [`StoreError::Full`] (503, the provider retries) rather than growing without limit. With
//! `print_events`, each new event is written to stdout as one JSON line and not kept: stdout
//! is then the consumer.
//!
//! A `std::sync::Mutex` rather than an async one: the critical section is short, never awaits,
//! and an async mutex would only add overhead (the tokio docs recommend exactly this). Events
//! are serialised before the lock is taken, and expired keys are found through a heap ordered
//! by expiry, so the time under the lock does not grow with the number of keys remembered.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use porter_providers::{Event, Normalized, Reply};

use self::schedule::MemorySchedule;
use super::dedupe::Dedupe;
use super::printer::Printer;
use super::{Enqueued, QUARANTINE_MAX_BYTES, Quarantined, StoreError};
use crate::clock::Clock;

pub(crate) mod archive;
mod erase;
pub(crate) mod schedule;

/// How many quarantined bodies are kept; older ones are dropped first.
const QUARANTINE_CAPACITY: usize = 1_000;
/// How many of the newest events are kept for inspection (`GET /api/events`).
pub(crate) const RECENT_EVENTS: usize = 1_000;

/// A recently stored event, for inspection: its JSON shared with the schedules (not copied).
#[derive(Debug, Clone)]
pub struct Recent {
    pub id: String,
    /// The source's name (not the CloudEvents `source` URI).
    pub source: String,
    pub event_type: Cow<'static, str>,
    /// The CloudEvents JSON as stored.
    pub json: Arc<str>,
}

/// One new event as the store commits it: its dedupe key and what the schedules and the
/// recent events need, nothing that must be parsed again (the local store replays these from
/// disk).
#[derive(Debug, Clone)]
pub(crate) struct Item {
    /// Shared with the dedupe map, the journal's pending keys and the snapshot's key list.
    pub key: Arc<str>,
    pub event: Recent,
}

/// The in-process store.
#[derive(Debug)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    /// OHIP stream sources' offsets.
    offsets: Mutex<HashMap<String, String>>,
    capacity: usize,
    /// How many of the newest events are kept for inspection.
    recent_capacity: usize,
    /// Destinations' schedules: every new event is pushed here in the same step.
    deliveries: Option<Arc<MemorySchedule>>,
    /// Dedupe expiry and delivery due times.
    clock: Clock,
    /// Audit records of erasures.
    erasures: Mutex<VecDeque<super::erase::ErasureRecord>>,
    /// Raw requests kept for `porter reprocess` (empty unless `[archive]` is on).
    archive: self::archive::MemoryArchive,
    /// What erasures removed, so that it cannot come back ([`super::erase`]). Held while an
    /// archive write or a quarantine checks it and stores, so that an erasure that remembers
    /// comes wholly before or after that write.
    tombstones: Mutex<super::erase::Tombstones>,
    /// Each message's highest status ([`super::statuses`]).
    statuses: super::statuses::Ledger,
}

/// Where new events go.
enum Output {
    /// Kept in the log, up to the capacity.
    Keep,
    /// Written as JSON lines (stdout in `porter serve`); nothing is kept.
    Lines(Printer),
    /// Neither: only the recent events and the schedules hold them (the local store, which
    /// prints them itself, outside every lock).
    Schedules,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Output::Keep => "Keep",
            Output::Lines(_) => "Lines",
            Output::Schedules => "Schedules",
        })
    }
}

#[derive(Debug)]
struct Inner {
    output: Output,
    dedupe: Dedupe,
    log: VecDeque<Event>,
    /// The newest events (even when printed rather than kept), for the admin API.
    recent: VecDeque<Recent>,
    quarantine: VecDeque<Quarantined>,
    /// The bytes of the quarantined bodies.
    quarantine_bytes: usize,
}

/// Which of a request's events are new, and the answer remembered with the first duplicate.
#[derive(Debug, Default)]
pub(crate) struct Classified {
    /// Indexes of the events to store (a key repeated within the request counts once).
    pub fresh: Vec<usize>,
    pub original: Option<Reply>,
}

/// A remembered dedupe key, as a snapshot holds it: shared with the live map, so that
/// capturing a million keys for a snapshot copies pointers, not strings (the capture holds
/// the store's lock, and the journal waits for it).
#[derive(Debug, Clone)]
pub struct RememberedKey {
    pub key: Arc<str>,
    pub expires: i64,
    pub reply: Arc<Reply>,
}

/// Everything a memory store holds that a restart must bring back (the local store's
/// snapshot), but the schedules, which export their own.
#[derive(Debug, Default)]
pub struct Contents {
    pub keys: Vec<RememberedKey>,
    pub recent: Vec<Recent>,
    pub quarantine: Vec<Quarantined>,
    pub offsets: Vec<(String, String)>,
    pub erasures: Vec<super::erase::ErasureRecord>,
}

impl MemoryStore {
    /// A store of `capacity` events, reading time from `clock` (dedupe expiry, the archive's
    /// retention, tombstones), and with `print_events` writing each new event on stdout.
    pub fn new(print_events: bool, capacity: usize, clock: Clock) -> Self {
        let output = if print_events {
            Output::Lines(Printer::spawn(Box::new(std::io::stdout())))
        } else {
            Output::Keep
        };
        Self::with_output(output, capacity, clock)
    }

    /// A store that writes every new event as a JSON line to `writer` and keeps none.
    pub fn writing_to(writer: Box<dyn Write + Send>, clock: Clock) -> Self {
        Self::with_output(Output::Lines(Printer::spawn(writer)), 0, clock)
    }

    /// A store that keeps new events only in its schedules and its `recent` newest (the
    /// local store's state in memory).
    pub fn for_schedules(recent: usize, clock: Clock) -> Self {
        let mut store = Self::with_output(Output::Schedules, 0, clock);
        store.recent_capacity = recent;
        store
    }

    fn with_output(output: Output, capacity: usize, clock: Clock) -> Self {
        Self {
            offsets: Mutex::new(HashMap::new()),
            inner: Mutex::new(Inner {
                output,
                dedupe: Dedupe::default(),
                log: VecDeque::new(),
                recent: VecDeque::new(),
                quarantine: VecDeque::new(),
                quarantine_bytes: 0,
            }),
            capacity,
            recent_capacity: RECENT_EVENTS,
            deliveries: None,
            erasures: Mutex::new(VecDeque::new()),
            clock,
            archive: self::archive::MemoryArchive::default(),
            tombstones: Mutex::default(),
            statuses: super::statuses::Ledger::default(),
        }
    }

    /// Raises each message's status mark for `ttl`; the rank each held before.
    pub(crate) fn raise_statuses(
        &self,
        marks: &[super::statuses::Mark],
        ttl: Duration,
    ) -> Vec<Option<u8>> {
        let now = self.clock.now_ms();
        self.statuses.raise(marks, now, expiry(now, ttl))
    }

    /// The raw archive ([`super::archive`]).
    pub(crate) fn raw_archive(&self) -> &self::archive::MemoryArchive {
        &self.archive
    }

    pub(crate) fn tombstones(&self) -> std::sync::MutexGuard<'_, super::erase::Tombstones> {
        self.tombstones
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Remembers `keys` as erased until `until` (Unix ms).
    pub(crate) fn remember_erased(&self, keys: Vec<String>, until: i64) {
        if keys.is_empty() {
            return;
        }
        let now = self.now_ms();
        self.tombstones().insert(keys, until, now);
    }

    /// Of `keys`, those an erasure removed and still remembers.
    pub(crate) fn erased_among(&self, keys: &[String]) -> std::collections::HashSet<String> {
        let now = self.now_ms();
        let tombstones = self.tombstones();
        keys.iter()
            .filter(|key| tombstones.contains(key, now))
            .cloned()
            .collect()
    }

    /// Archives `item` (its id assigned) until `expires`, unless an erasure removed one of its
    /// events or its body: `false` then, and nothing is kept.
    pub(crate) fn archive_unless_erased(&self, item: super::Archived, expires: i64) -> bool {
        let now = self.now_ms();
        let tombstones = self.tombstones();
        if super::erase::archived_tombstones(&item)
            .iter()
            .any(|key| tombstones.contains(key, now))
        {
            return false;
        }
        self.archive.insert(item, expires, now);
        drop(tombstones);
        true
    }

    /// The store's clock, in Unix milliseconds.
    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Also schedules every new event for delivery (the destinations of the configuration).
    pub fn with_deliveries(mut self, deliveries: Arc<MemorySchedule>) -> Self {
        self.deliveries = Some(deliveries);
        self
    }

    /// The delivery schedules, when destinations are configured.
    pub fn deliveries(&self) -> Option<&Arc<MemorySchedule>> {
        self.deliveries.as_ref()
    }

    pub(super) fn enqueue(
        &self,
        events: &[Normalized],
        reply: &Reply,
        ttl: Duration,
    ) -> Result<Enqueued, StoreError> {
        // Serialised before the lock is taken (a duplicate's JSON is then thrown away), and
        // before anything is committed, so that a failure leaves no key behind.
        let jsons: Vec<String> = events
            .iter()
            .map(|event| serde_json::to_string(&event.event))
            .collect::<Result<_, _>>()?;
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        inner.forget_expired(now);
        // Classify first, commit second: a full store or a failed write leaves no key behind.
        let classified = self.classify_locked(&inner, events, now, 0, |_| None)?;
        if let Output::Keep = inner.output
            && inner.log.len() + classified.fresh.len() > self.capacity
        {
            return Err(StoreError::Full);
        }
        let mut jsons = jsons;
        let items: Vec<Item> = classified
            .fresh
            .iter()
            .map(|&index| item(&events[index], std::mem::take(&mut jsons[index])))
            .collect();
        // Queued for the printing thread, never written under this lock; a full queue or a
        // closed stdout refuses the events before anything is remembered.
        if let Output::Lines(printer) = &inner.output
            && !items.is_empty()
        {
            printer.offer(items.iter().map(|i| Arc::clone(&i.event.json)).collect())?;
        }
        if let Output::Keep = inner.output {
            for &index in &classified.fresh {
                inner.log.push_back(events[index].event.clone());
            }
        }
        self.commit_locked(
            &mut inner,
            now,
            expiry(now, ttl),
            Arc::new(reply.clone()),
            items,
        );
        drop(inner);
        Ok(Enqueued {
            new: classified.fresh.len(),
            duplicates: events.len() - classified.fresh.len(),
            original: classified.original,
        })
    }

    /// Which of `events` are new at `now`: neither remembered nor (`pending`) about to be.
    /// `Full` when they would not fit the schedules with `extra` more events on their way.
    pub(crate) fn classify(
        &self,
        events: &[Normalized],
        now: i64,
        extra: usize,
        pending: impl Fn(&str) -> Option<Arc<Reply>>,
    ) -> Result<Classified, StoreError> {
        let mut inner = self.lock();
        inner.forget_expired(now);
        self.classify_locked(&inner, events, now, extra, pending)
    }

    fn classify_locked(
        &self,
        inner: &Inner,
        events: &[Normalized],
        now: i64,
        extra: usize,
        pending: impl Fn(&str) -> Option<Arc<Reply>>,
    ) -> Result<Classified, StoreError> {
        let mut classified = Classified::default();
        for (index, event) in events.iter().enumerate() {
            let key = event.dedupe_key.as_str();
            let seen_in_batch = classified
                .fresh
                .iter()
                .any(|&f| events[f].dedupe_key == event.dedupe_key);
            match inner.dedupe.get(key, now) {
                Some(known) => {
                    classified
                        .original
                        .get_or_insert_with(|| Reply::clone(&known.reply));
                }
                _ if seen_in_batch => {}
                _ => match pending(key) {
                    Some(reply) => {
                        classified
                            .original
                            .get_or_insert_with(|| Reply::clone(&reply));
                    }
                    None => classified.fresh.push(index),
                },
            }
        }
        if let Some(deliveries) = &self.deliveries
            && !deliveries.has_room_for(classified.fresh.len() + extra)
        {
            return Err(StoreError::Full);
        }
        Ok(classified)
    }

    /// Remembers the items' keys until `expires` with `reply`, schedules them and keeps them
    /// among the recent events. The caller decided they are new.
    pub(crate) fn commit(&self, now: i64, expires: i64, reply: Arc<Reply>, items: Vec<Item>) {
        let mut inner = self.lock();
        self.commit_locked(&mut inner, now, expires, reply, items);
    }

    fn commit_locked(
        &self,
        inner: &mut Inner,
        now: i64,
        expires: i64,
        reply: Arc<Reply>,
        items: Vec<Item>,
    ) {
        for Item { key, event } in items {
            inner
                .dedupe
                .remember(key, expires, expires - now, Arc::clone(&reply));
            if let Some(deliveries) = &self.deliveries {
                deliveries.push(&event, now);
            }
            if self.recent_capacity > 0 {
                if inner.recent.len() >= self.recent_capacity {
                    inner.recent.pop_front();
                }
                inner.recent.push_back(event);
            }
        }
    }

    /// Keeps `item`, dropping the oldest bodies while more than [`QUARANTINE_CAPACITY`]
    /// entries or [`QUARANTINE_MAX_BYTES`] would be held (the newest is always kept).
    /// Keeps an unparseable body, unless an erasure removed the same body (a redelivery):
    /// then it is refused as before, but not kept.
    pub(super) fn quarantine(&self, item: Quarantined) {
        let tombstones = self.tombstones();
        if tombstones.contains(
            &super::erase::body_tombstone(&item.source, &item.body),
            self.now_ms(),
        ) {
            tracing::info!(source = %item.source, "an erased body came again: not kept");
            return;
        }
        self.keep_quarantined(item);
        drop(tombstones);
    }

    /// Keeps an unparseable body as it is (a replay of the local store's journal).
    pub(super) fn keep_quarantined(&self, item: Quarantined) {
        let mut inner = self.lock();
        inner.quarantine_bytes += item.body.len();
        inner.quarantine.push_back(item);
        while inner.quarantine.len() > 1
            && (inner.quarantine.len() > QUARANTINE_CAPACITY
                || inner.quarantine_bytes > QUARANTINE_MAX_BYTES)
        {
            if let Some(oldest) = inner.quarantine.pop_front() {
                inner.quarantine_bytes -= oldest.body.len();
            }
        }
    }

    /// A copy of the events held, oldest first.
    pub fn events(&self) -> Vec<Event> {
        self.lock().log.iter().cloned().collect()
    }

    /// The saved offset of OHIP stream source `source`.
    pub fn ohip_offset(&self, source: &str) -> Option<String> {
        self.offsets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(source)
            .cloned()
    }

    /// Saves the offset of OHIP stream source `source`.
    pub fn save_ohip_offset(&self, source: &str, offset: &str) {
        self.offsets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(source.to_owned(), offset.to_owned());
    }

    /// The newest events stored (at most [`RECENT_EVENTS`], or the local store's retention),
    /// oldest first.
    pub fn recent(&self) -> Vec<Recent> {
        self.lock().recent.iter().cloned().collect()
    }

    /// Removes and returns the events held, oldest first.
    pub fn drain(&self) -> Vec<Event> {
        self.lock().log.drain(..).collect()
    }

    /// A copy of the quarantined bodies, oldest first.
    pub fn quarantined(&self) -> Vec<Quarantined> {
        self.lock().quarantine.iter().cloned().collect()
    }

    /// Dedupe keys currently remembered (expired ones linger until the next enqueue).
    pub fn remembered_keys(&self) -> usize {
        self.lock().dedupe.len()
    }

    /// The dedupe keys remembered at `now`.
    pub fn keys(&self, now: i64) -> Vec<RememberedKey> {
        self.lock()
            .dedupe
            .live(now)
            .map(|(key, r)| RememberedKey {
                key: Arc::clone(key),
                expires: r.expires,
                reply: Arc::clone(&r.reply),
            })
            .collect()
    }

    /// A copy of what a restart must bring back but the dedupe keys ([`MemoryStore::keys`]):
    /// what the local store's snapshot copies at a generation's switch (it keeps its own
    /// list of the keys, see `store::local::keys`).
    pub fn contents_but_keys(&self) -> Contents {
        let inner = self.lock();
        Contents {
            keys: Vec::new(),
            recent: inner.recent.iter().cloned().collect(),
            quarantine: inner.quarantine.iter().cloned().collect(),
            offsets: self
                .offsets
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            erasures: self.erasures(),
        }
    }

    /// Takes back what [`MemoryStore::contents_but_keys`] and [`MemoryStore::keys`] gave
    /// (on an empty store).
    pub fn restore(&self, contents: Contents) {
        {
            let mut inner = self.lock();
            inner.dedupe.restore(
                contents
                    .keys
                    .into_iter()
                    .map(|k| (k.key, k.expires, k.reply))
                    .collect(),
            );
            for recent in contents.recent {
                if inner.recent.len() >= self.recent_capacity.max(1) {
                    inner.recent.pop_front();
                }
                inner.recent.push_back(recent);
            }
        }
        for item in contents.quarantine {
            self.keep_quarantined(item);
        }
        for (source, offset) in contents.offsets {
            self.save_ohip_offset(&source, &offset);
        }
        for record in contents.erasures {
            self.record_erasure(record);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than refusing all further requests would, so recover the guard.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// When a key remembered at `now` for `ttl` expires: an absurd TTL means "for as long as
/// this process lives".
pub(crate) fn expiry(now: i64, ttl: Duration) -> i64 {
    now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX))
}

/// The item of a new event whose JSON is `json`.
pub(crate) fn item(event: &Normalized, json: String) -> Item {
    Item {
        key: Arc::from(event.dedupe_key.as_str()),
        event: Recent {
            id: event.event.id.clone(),
            source: super::schedule::source_name(&event.event.source).to_owned(),
            event_type: Cow::Borrowed(event.event.event_type().as_str()),
            json: Arc::from(json),
        },
    }
}

impl Inner {
    /// Forgets some of the keys whose time is up (see [`Dedupe::forget_expired`]).
    fn forget_expired(&mut self, now: i64) {
        self.dedupe.forget_expired(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_event as event;

    const TTL: Duration = Duration::from_secs(60);

    #[test]
    fn second_delivery_is_a_duplicate_with_the_first_answer() {
        let store = MemoryStore::new(false, 10, Clock::system());
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
        let store = MemoryStore::new(false, 10, Clock::system());
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
        let store = MemoryStore::new(false, 2, Clock::system());
        store
            .enqueue(&[event("a")], &Reply::text("1"), TTL)
            .expect("enqueued");
        let refused = store.enqueue(&[event("b"), event("c")], &Reply::text("2"), TTL);
        assert!(matches!(refused, Err(StoreError::Full)), "{refused:?}");
        assert_eq!(store.remembered_keys(), 1);
        store.drain();
        let retried = store
            .enqueue(&[event("b"), event("c")], &Reply::text("2"), TTL)
            .expect("room again");
        assert_eq!(retried.new, 2, "the retry is not deduplicated away");
    }

    fn manual_clock() -> (Clock, crate::clock::Hand) {
        Clock::manual(jiff::Timestamp::from_second(1_700_000_000).expect("ts"))
    }

    #[test]
    fn keys_expire_after_the_ttl() {
        let (clock, hand) = manual_clock();
        let store = MemoryStore::new(false, 10, clock);
        let ttl = Duration::from_secs(60);
        store
            .enqueue(&[event("a")], &Reply::text("1"), ttl)
            .expect("enqueued");
        hand.advance(Duration::from_secs(59));
        let within = store
            .enqueue(&[event("a")], &Reply::text("2"), ttl)
            .expect("enqueued");
        assert_eq!(within.duplicates, 1, "still remembered just before the TTL");
        hand.advance(Duration::from_secs(1));
        let later = store
            .enqueue(&[event("a")], &Reply::text("2"), ttl)
            .expect("enqueued");
        assert_eq!(later.new, 1, "forgotten once the TTL has passed");
    }

    #[test]
    fn expired_keys_are_forgotten_and_a_key_remembered_again_outlives_its_first_expiry() {
        let (clock, hand) = manual_clock();
        let store = MemoryStore::new(false, 100, clock);
        let short = Duration::from_secs(30);
        let keys: Vec<Normalized> = (0..20).map(|i| event(&format!("k{i}"))).collect();
        store
            .enqueue(&keys, &Reply::text("1"), short)
            .expect("enqueued");
        store
            .enqueue(&[event("long")], &Reply::text("1"), TTL)
            .expect("enqueued");
        assert_eq!(store.remembered_keys(), 21);
        hand.advance(Duration::from_secs(31));

        // "k0" again, now with a long TTL: its first, expired entry must not take it away.
        store
            .enqueue(&[event("k0")], &Reply::text("2"), TTL)
            .expect("enqueued");
        assert_eq!(store.remembered_keys(), 2, "the 19 expired keys are gone");
        // Past k0's first expiry again (popped from the heap), within both long TTLs.
        hand.advance(Duration::from_secs(10));
        let again = store
            .enqueue(&[event("k0"), event("long")], &Reply::text("3"), TTL)
            .expect("enqueued");
        assert!(again.is_duplicate(), "both are still remembered");
        assert_eq!(again.original, Some(Reply::text("2")));
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
    fn once_writing_fails_events_are_refused_and_nothing_is_remembered() {
        let store = MemoryStore::writing_to(Box::new(Broken), Clock::system());
        // The first batch is queued; the printing thread then finds stdout closed.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut n = 0;
        let refused = loop {
            n += 1;
            match store.enqueue(&[event(&format!("k{n}"))], &Reply::text("1"), TTL) {
                Err(error) => break error,
                Ok(_) => assert!(std::time::Instant::now() < deadline, "never refused"),
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        assert!(matches!(refused, StoreError::Unavailable(_)), "{refused:?}");
        let remembered = store.remembered_keys();
        assert_eq!(
            remembered,
            n - 1,
            "the refused request's key is not remembered"
        );
        let again = store.enqueue(&[event(&format!("k{n}"))], &Reply::text("1"), TTL);
        assert!(
            again.is_err(),
            "the retry is refused too, not taken for a duplicate"
        );
    }

    /// A writer that never returns, like a stdout nobody reads.
    struct Stuck;

    impl Write for Stuck {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            std::thread::sleep(Duration::from_secs(3600));
            Ok(0)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stdout_nobody_reads_fills_a_queue_and_then_refuses_without_blocking() {
        let store = MemoryStore::writing_to(Box::new(Stuck), Clock::system());
        let mut full = None;
        let mut slowest = Duration::ZERO;
        // The printer takes everything queued when it wakes (up to a queue's worth) and then
        // sticks on writing it; after that, one more queue's worth fills up.
        for n in 0..(2 * super::super::printer::QUEUE + 10) {
            let started = std::time::Instant::now();
            let outcome = store.enqueue(&[event(&format!("k{n}"))], &Reply::text("1"), TTL);
            slowest = slowest.max(started.elapsed());
            if let Err(error) = outcome {
                full = Some(error);
                break;
            }
        }
        assert!(matches!(full, Some(StoreError::Full)), "{full:?}");
        // A call that waited for the stuck writer would wait an hour.
        assert!(
            slowest < Duration::from_secs(60),
            "a call waited for stdout: {slowest:?}"
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
        let store = MemoryStore::writing_to(Box::new(out.clone()), Clock::system());
        store
            .enqueue(&[event("a"), event("b")], &Reply::text("1"), TTL)
            .expect("written");
        let again = store
            .enqueue(&[event("a")], &Reply::text("2"), TTL)
            .expect("duplicate");
        assert!(again.is_duplicate());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let text = loop {
            let text = String::from_utf8(out.0.lock().expect("lock").clone()).expect("utf-8");
            if text.lines().count() >= 2 || std::time::Instant::now() > deadline {
                break text;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        assert_eq!(text.lines().count(), 2);
        assert!(
            store.events().is_empty(),
            "nothing is kept when events are written"
        );
    }

    #[test]
    fn an_enormous_ttl_does_not_overflow() {
        let store = MemoryStore::new(false, 10, Clock::system());
        let outcome = store.enqueue(&[event("a")], &Reply::text("1"), Duration::MAX);
        assert_eq!(outcome.expect("stored").new, 1);
    }

    #[test]
    fn quarantine_is_bounded() {
        let store = MemoryStore::new(false, 10, Clock::system());
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

    #[test]
    fn quarantine_is_bounded_by_bytes() {
        let store = MemoryStore::new(false, 10, Clock::system());
        let body = bytes::Bytes::from(vec![b'x'; 3 * 1024 * 1024]);
        for i in 0..40 {
            store.quarantine(Quarantined {
                source: "s".into(),
                reason: i.to_string(),
                received_at: jiff::Timestamp::UNIX_EPOCH,
                content_type: None,
                body: body.clone(),
            });
        }
        let kept = store.quarantined();
        let bytes: usize = kept.iter().map(|q| q.body.len()).sum();
        assert!(bytes <= QUARANTINE_MAX_BYTES, "{bytes}");
        assert_eq!(kept.len(), QUARANTINE_MAX_BYTES / body.len());
        assert_eq!(kept.last().map(|q| q.reason.as_str()), Some("39"));
    }
}
