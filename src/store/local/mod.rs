//! The local store: everything the Redis store offers, on one machine, in one directory, with
//! no server to run; durable to the disk (a 2xx only after `fdatasync`).
//!
//! **Design.** The state lives in memory in the memory store's own structures (dedupe keys
//! with their expiry heap, schedules with leases and dead letters, the newest events), and
//! every change to it is first a record in an append-only journal:
//!
//! 1. a request classifies its events against the state *and* the keys still on their way to
//!    disk (`pending`), and appends one `enqueue` record for the new ones, under one lock, so
//!    the journal's order is the order of decisions;
//! 2. the writer thread ([`journal`]) writes and syncs whole batches (group commit), then
//!    applies each record to the state, then answers the batch's callers;
//! 3. so the state in memory is always exactly "the journal on disk, replayed": start-up
//!    replays it with the same `apply`, and a failed write leaves nothing behind.
//!
//! Snapshots ([`snapshot`]) bound the journal: when it outgrows the last snapshot, the writer
//! starts a new journal generation and a background thread writes the state as it was at
//! that switch.
//!
//! **Why a journal of our own** rather than an embedded engine: the state is the memory
//! store's (one code path for two stores), and the journal only has to append and replay. An
//! engine would keep a second copy of what the memory structures already index, and the
//! measured engines (fjall 48k events/s, SQLite WAL 31k/s, redb 27k/s with group commit, on
//! these 2-core machines, in isolation) leave less of the CPU to porter than an append and one
//! `fdatasync` per batch (96–150k/s). See ARCHITECTURE.md.
//!
//! One process per directory: `LOCK` is held with an exclusive `flock` for the store's life;
//! `porter serve` leaves its admin listener's address and token beside it ([`running`]).

pub(crate) mod archive;
mod erase;
mod files;
mod follow;
mod journal;
mod keys;
mod private;
pub(crate) mod record;
pub(crate) mod running;
mod schedule;
mod snapshot;
mod writer;

pub(crate) use self::follow::Follower;
pub use self::schedule::LocalSchedule;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use porter_providers::{Normalized, Reply};

use self::files::{journal_path, load, sync_dir, take_lock};
use self::journal::{Fault, Journal, Signal};
use self::record::Record;
use self::writer::Writer;
use super::erase::Found;
use super::memory::{Item, MemoryStore, expiry, item};
use super::printer::Printer;
use super::{Enqueued, MemorySchedule, Quarantined, StoreError};
use crate::clock::Clock;

/// The journal may grow to this size before a snapshot, or to the last snapshot's size if
/// that is larger (writing a snapshot then costs no more than the journal it replaces).
const SNAPSHOT_AFTER_BYTES: u64 = 64 * 1024 * 1024;
/// How long dropping the store waits for a snapshot under way.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(60);
/// How often a broken journal tries to mend (cut back to its synced length).
const MEND_EVERY: Duration = Duration::from_secs(1);

/// How to open a local store.
#[derive(Debug, Clone)]
pub struct LocalSettings {
    pub path: PathBuf,
    /// Writes each new event as a JSON line on stdout, once it is on disk.
    pub print_events: bool,
    /// Jobs scheduled across all destinations before the store answers 503.
    pub capacity: usize,
    /// How many of the newest events are kept for `porter events`, the console and the admin
    /// API (delivered or not).
    pub retain_events: usize,
    /// The journal grows to this many bytes (or the last snapshot's size, if larger) before
    /// a snapshot replaces it.
    pub snapshot_after: u64,
    /// `[archive] max_bytes`.
    pub archive_max_bytes: usize,
}

impl LocalSettings {
    /// The defaults for a store in `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            print_events: false,
            capacity: 1_000_000,
            retain_events: 10_000,
            snapshot_after: SNAPSHOT_AFTER_BYTES,
            archive_max_bytes: crate::vocab::DEFAULT_ARCHIVE_MAX_BYTES,
        }
    }
}

/// The local store.
#[derive(Debug)]
pub struct LocalStore {
    shared: Arc<Shared>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Set while a snapshot is being written (its thread holds the directory's lock).
    snapshotting: Arc<AtomicBool>,
    clock: Clock,
}

/// What the callers and the writer thread share.
#[derive(Debug)]
pub(crate) struct Shared {
    dir: PathBuf,
    journal: Journal,
    /// The state: what the journal on disk says, replayed.
    memory: MemoryStore,
    pending: Mutex<Pending>,
    printer: Option<Printer>,
    journal_bytes: AtomicU64,
    snapshot_bytes: AtomicU64,
    /// Batches written and synced since opening (each one `fdatasync`).
    syncs: AtomicU64,
    /// Snapshots written since opening.
    snapshots: AtomicU64,
    /// The journal generation being written.
    generation: AtomicU64,
    /// The generation of the newest snapshot written since opening (0: none yet).
    snapshot_generation: AtomicU64,
    snapshot_after: u64,
    /// Held (locked) for the store's life.
    _lock: File,
}

/// Keys appended to the journal and not yet applied: a second request with one of them is a
/// duplicate that waits for the first one's batch.
#[derive(Debug, Default)]
struct Pending {
    /// Each with its answer and the batch its record is in.
    keys: HashMap<Arc<str>, (Arc<Reply>, Arc<Signal>)>,
    /// Events appended and not yet applied (they count against the capacity).
    events: usize,
}

/// What opening found on disk.
#[derive(Debug, Clone, Default)]
pub struct Recovery {
    pub generation: u64,
    pub records: u64,
    /// Bytes of a torn last write cut off (never acknowledged).
    pub torn_bytes: u64,
    pub elapsed: Duration,
}

impl LocalStore {
    /// Opens (creating if need be) the store in `settings.path`, replays it, and starts its
    /// writer. `schedule` receives the destinations' jobs.
    pub fn open(
        settings: &LocalSettings,
        schedule: Option<Arc<MemorySchedule>>,
        clock: Clock,
    ) -> Result<(Self, Recovery), StoreError> {
        Self::open_with(settings, schedule, clock, Fault::from_env())
    }

    fn open_with(
        settings: &LocalSettings,
        schedule: Option<Arc<MemorySchedule>>,
        clock: Clock,
        fault: Fault,
    ) -> Result<(Self, Recovery), StoreError> {
        let started = Instant::now();
        let dir = settings.path.clone();
        let failed = |what: &str, e| StoreError::io(format!("{what} {}", dir.display()), e);
        private::prepare_dir(&dir)?;
        let lock = take_lock(&dir)?;
        let mut memory = MemoryStore::for_schedules(settings.retain_events, clock.clone());
        if let Some(schedule) = schedule {
            memory = memory.with_deliveries(schedule);
        }
        memory
            .raw_archive()
            .set_max_bytes(settings.archive_max_bytes);
        let (mut recovery, base, current) = load(&dir, &memory, true)?;
        let path = journal_path(&dir, current);
        let mut file = private::open(&path, OpenOptions::new().create(true).append(true))
            .map_err(|e| failed("cannot open", e))?;
        let journal_len = file
            .seek(SeekFrom::End(0))
            .map_err(|e| failed("cannot open", e))?;
        sync_dir(&dir).map_err(|e| failed("cannot sync", e))?;
        let snapshot_bytes = std::fs::metadata(snapshot::snapshot_path(&dir, base))
            .map(|m| m.len())
            .unwrap_or(0);
        let printer = settings
            .print_events
            .then(|| Printer::spawn(Box::new(std::io::stdout())));
        let shared = Arc::new(Shared {
            dir,
            journal: Journal::default(),
            memory,
            pending: Mutex::new(Pending::default()),
            printer,
            journal_bytes: AtomicU64::new(journal_len),
            snapshot_bytes: AtomicU64::new(snapshot_bytes),
            syncs: AtomicU64::new(0),
            snapshots: AtomicU64::new(0),
            generation: AtomicU64::new(current),
            snapshot_generation: AtomicU64::new(0),
            snapshot_after: settings.snapshot_after,
            _lock: lock,
        });
        let snapshotting = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            shared: Arc::clone(&shared),
            file,
            generation: current,
            synced_len: journal_len,
            batches: 0,
            paced: (Instant::now(), 0),
            keys: keys::KeyList::new(shared.memory.keys(clock.now_ms())),
            fault,
            snapshotting: Arc::clone(&snapshotting),
            compact: false,
            clock: clock.clone(),
            reported: (Instant::now(), 0),
        };
        let handle = std::thread::Builder::new()
            .name("porter-journal".into())
            .spawn(move || writer.run())
            .map_err(|e| StoreError::io("cannot start the journal's thread", e))?;
        recovery.elapsed = started.elapsed();
        Ok((
            Self {
                shared,
                writer: Mutex::new(Some(handle)),
                snapshotting,
                clock,
            },
            recovery,
        ))
    }

    /// The state of the store in `settings.path` as its files say, without taking the lock
    /// or changing anything: how `porter events` and `porter dlq list` read a store that
    /// `porter serve` holds. A torn tail is read up to the tear.
    pub fn read_only(
        settings: &LocalSettings,
        schedule: Option<Arc<MemorySchedule>>,
        clock: Clock,
    ) -> Result<MemoryStore, StoreError> {
        if !settings.path.is_dir() {
            return Err(StoreError::Unavailable(format!(
                "{} does not exist (no local store has been opened there)",
                settings.path.display()
            )));
        }
        let mut memory = MemoryStore::for_schedules(settings.retain_events, clock);
        if let Some(schedule) = schedule {
            memory = memory.with_deliveries(schedule);
        }
        load(&settings.path, &memory, false)?;
        Ok(memory)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.shared.dir
    }

    /// The state in memory (what is on disk), for reading.
    pub fn memory(&self) -> &MemoryStore {
        &self.shared.memory
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Batches synced since opening: with concurrent requests, fewer than the requests.
    pub fn syncs(&self) -> u64 {
        self.shared.syncs.load(Ordering::Relaxed)
    }

    /// Snapshots written since opening.
    pub fn snapshots(&self) -> u64 {
        self.shared.snapshots.load(Ordering::Relaxed)
    }

    /// Bytes on disk: journal and snapshot.
    pub fn disk_bytes(&self) -> u64 {
        self.shared.journal_bytes.load(Ordering::Relaxed)
            + self.shared.snapshot_bytes.load(Ordering::Relaxed)
    }

    /// See [`super::Store::enqueue`]: answers once the new events (or, for a duplicate, the
    /// original) are on disk.
    pub(super) async fn enqueue(
        &self,
        events: &[Normalized],
        reply: &Reply,
        ttl: Duration,
    ) -> Result<Enqueued, StoreError> {
        let mut jsons: Vec<String> = events
            .iter()
            .map(|event| serde_json::to_string(&event.event))
            .collect::<Result<_, _>>()?;
        let now = self.clock.now_ms();
        let shared = &self.shared;
        // The batches to wait for: this request's own, and those holding the originals of
        // its duplicates that are not on disk yet (if one of those fails, so does this
        // answer: a duplicate is acknowledged only once its original is durable).
        let mut waits: Vec<Arc<Signal>> = Vec::new();
        let classified = {
            let mut pending = shared.pending();
            let originals = std::cell::RefCell::new(Vec::new());
            let classified = shared.memory.classify(events, now, pending.events, |key| {
                let (reply, signal) = pending.keys.get(key)?;
                originals.borrow_mut().push(Arc::clone(signal));
                Some(Arc::clone(reply))
            })?;
            waits.extend(originals.into_inner());
            if !classified.fresh.is_empty() {
                let reply = Arc::new(reply.clone());
                let items: Vec<Item> = classified
                    .fresh
                    .iter()
                    .map(|&i| item(&events[i], std::mem::take(&mut jsons[i])))
                    .collect();
                let keys: Vec<Arc<str>> = items.iter().map(|i| Arc::clone(&i.key)).collect();
                let record = Record::Enqueue {
                    now,
                    expires: expiry(now, ttl),
                    reply: Arc::clone(&reply),
                    items,
                };
                let signal = shared.journal.append(record)?;
                pending.events += keys.len();
                for key in keys {
                    pending
                        .keys
                        .insert(key, (Arc::clone(&reply), Arc::clone(&signal)));
                }
                waits.push(signal);
            }
            classified
        };
        waits.dedup_by(|a, b| Arc::ptr_eq(a, b));
        for signal in waits {
            signal.wait().await?;
        }
        Ok(Enqueued {
            new: classified.fresh.len(),
            duplicates: events.len() - classified.fresh.len(),
            original: classified.original,
        })
    }

    /// Writes `record` and waits until it is on disk and applied.
    pub(crate) async fn write(&self, record: Record) -> Result<(), StoreError> {
        self.shared.write(record).await
    }

    /// Keeps an unparseable body on disk, unless an erasure removed the same body: then its
    /// bytes are not even written to the journal.
    pub(super) async fn quarantine(&self, item: Quarantined) -> Result<(), StoreError> {
        let memory = self.memory();
        let tombstone = crate::store::erase::body_tombstone(&item.source, &item.body);
        if memory.tombstones().contains(&tombstone, memory.now_ms()) {
            tracing::info!(source = %item.source, "an erased body came again: not kept");
            return Ok(());
        }
        self.write(Record::Quarantine(item)).await
    }

    /// Whether the journal takes records.
    pub(super) fn ready(&self) -> Result<(), StoreError> {
        match self.shared.journal.broken() {
            Some(reason) => Err(StoreError::Unavailable(reason.to_string())),
            None => Ok(()),
        }
    }
}

impl Shared {
    /// The events appended and not yet on disk, and the callers waiting for their batches.
    #[cfg(test)]
    pub(super) fn in_flight(&self) -> (usize, usize) {
        let pending = self.pending();
        let mut signals: Vec<&Arc<Signal>> = pending.keys.values().map(|(_, s)| s).collect();
        signals.sort_by_key(|s| Arc::as_ptr(s));
        signals.dedup_by(|a, b| Arc::ptr_eq(a, b));
        let waiting = signals
            .iter()
            .map(|s| s.waiters.load(std::sync::atomic::Ordering::SeqCst))
            .sum();
        (pending.events, waiting)
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) async fn write(&self, record: Record) -> Result<(), StoreError> {
        self.journal.append(record)?.wait().await
    }
}

impl Drop for LocalStore {
    fn drop(&mut self) {
        self.shared.journal.close();
        let handle = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
        // A snapshot under way holds the store (and its lock) until it is written: wait, so
        // that the directory is free once the store is dropped.
        let started = Instant::now();
        while self.snapshotting.load(Ordering::Acquire) && started.elapsed() < SNAPSHOT_WAIT {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Applies one record to the state; `pending` (live, not replaying) loses the keys applied.
fn apply(memory: &MemoryStore, pending: Option<&mut Pending>, record: Record) {
    match record {
        Record::Enqueue {
            now,
            expires,
            reply,
            items,
        } => {
            if let Some(pending) = pending {
                for item in &items {
                    pending.keys.remove(&*item.key);
                }
                pending.events = pending.events.saturating_sub(items.len());
            }
            memory.commit(now, expires, reply, items);
        }
        Record::Finish {
            destination,
            entry,
            attempt,
            next,
        } => {
            if let Some(schedule) = memory.deliveries() {
                schedule.finish_now(&destination, &Record::job(&entry), attempt, next);
            }
        }
        Record::Replay { id, now } => {
            if let Some(schedule) = memory.deliveries() {
                schedule.replay(id, now);
            }
        }
        Record::Pause {
            destination,
            paused,
        } => {
            if let Some(schedule) = memory.deliveries() {
                schedule.pause_now(&destination, paused);
            }
        }
        Record::Offset { source, offset } => memory.save_ohip_offset(&source, &offset),
        Record::Quarantine(item) => memory.quarantine(item),
        Record::Erase {
            events,
            quarantined,
            tombstones,
            until,
        } => {
            memory.remember_erased(tombstones, until);
            let found = Found {
                events: events.into_iter().collect(),
                quarantined: quarantined.into_iter().collect(),
            };
            memory.remove(&found, false);
        }
        Record::Erasure(record) => memory.record_erasure(record),
        Record::Compact => {}
        Record::Archive { expires, item } => {
            // An erasure applied since this was written (or earlier in a replay) wins.
            memory.archive_unless_erased(item, expires);
        }
        Record::RemoveArchived(ids) => {
            memory.raw_archive().remove(&ids);
        }
    }
}
