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
//! One process per directory: `LOCK` is held with an exclusive `flock` for the store's life.

mod journal;
pub mod record;
mod schedule;
mod snapshot;

pub use self::schedule::LocalSchedule;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use porter_providers::{Normalized, Reply};

use self::journal::{Fault, Journal};
use self::record::{End, Record};
use super::memory::{Item, MemoryStore, expiry, item};
use super::{Enqueued, MemorySchedule, Quarantined, StoreError};
use crate::clock::Clock;

/// The journal may grow to this size before a snapshot, or to the last snapshot's size if
/// that is larger (writing a snapshot then costs no more than the journal it replaces).
const SNAPSHOT_AFTER_BYTES: u64 = 64 * 1024 * 1024;
/// How often a broken journal tries to mend (cut back to its synced length).
const MEND_EVERY: Duration = Duration::from_secs(1);
/// Batches of lines waiting for stdout before new ones are dropped (stdout is a view; the
/// store holds the events).
const PRINT_QUEUE: usize = 4_096;

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
        }
    }
}

/// The local store.
#[derive(Debug)]
pub struct LocalStore {
    shared: Arc<Shared>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
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
    printer: Option<std::sync::mpsc::SyncSender<Vec<Arc<str>>>>,
    journal_bytes: AtomicU64,
    snapshot_bytes: AtomicU64,
    /// Batches written and synced since opening (each one `fdatasync`).
    syncs: AtomicU64,
    /// Snapshots written since opening.
    snapshots: AtomicU64,
    snapshot_after: u64,
    /// Held (locked) for the store's life.
    _lock: File,
}

/// Keys appended to the journal and not yet applied: a second request with one of them is a
/// duplicate that waits for the first one's batch.
#[derive(Debug, Default)]
struct Pending {
    keys: HashMap<String, Arc<Reply>>,
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
        let started = Instant::now();
        let dir = settings.path.clone();
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            StoreError::Unavailable(format!("{what} {}: {e}", dir.display()))
        };
        std::fs::create_dir_all(&dir).map_err(|e| failed("cannot create", &e))?;
        let lock = take_lock(&dir)?;
        let mut memory =
            MemoryStore::for_schedules(settings.retain_events).with_clock(clock.clone());
        if let Some(schedule) = schedule {
            memory = memory.with_deliveries(schedule);
        }
        let (mut recovery, base, current) = load(&dir, &memory, true)?;
        let path = journal_path(&dir, current);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| failed("cannot open", &e))?;
        let journal_len = file
            .seek(SeekFrom::End(0))
            .map_err(|e| failed("cannot open", &e))?;
        sync_dir(&dir).map_err(|e| failed("cannot sync", &e))?;
        let snapshot_bytes = std::fs::metadata(snapshot::snapshot_path(&dir, base))
            .map(|m| m.len())
            .unwrap_or(0);
        let printer = settings.print_events.then(start_printer);
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
            snapshot_after: settings.snapshot_after,
            _lock: lock,
        });
        let writer = Writer {
            shared: Arc::clone(&shared),
            file,
            generation: current,
            synced_len: journal_len,
            batches: 0,
            fault: Fault::from_env(),
            snapshotting: Arc::new(AtomicBool::new(false)),
            clock: clock.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("porter-journal".into())
            .spawn(move || writer.run())
            .map_err(|e| StoreError::Unavailable(format!("cannot start the journal: {e}")))?;
        recovery.elapsed = started.elapsed();
        Ok((
            Self {
                shared,
                writer: Mutex::new(Some(handle)),
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
    ) -> Result<MemoryStore, StoreError> {
        if !settings.path.is_dir() {
            return Err(StoreError::Unavailable(format!(
                "{} does not exist (no local store has been opened there)",
                settings.path.display()
            )));
        }
        let mut memory = MemoryStore::for_schedules(settings.retain_events);
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
            .collect::<Result<_, _>>()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let now = self.clock.now_ms();
        let shared = &self.shared;
        let (classified, wait) = {
            let mut pending = shared.pending();
            let classified = shared.memory.classify(events, now, pending.events, |key| {
                pending.keys.get(key).cloned()
            })?;
            if classified.fresh.is_empty() {
                let wait = if classified.pending_original {
                    shared.journal.barrier()
                } else {
                    None
                };
                (classified, wait)
            } else {
                let reply = Arc::new(reply.clone());
                let items: Vec<Item> = classified
                    .fresh
                    .iter()
                    .map(|&i| item(&events[i], std::mem::take(&mut jsons[i])))
                    .collect();
                let keys: Vec<String> = items.iter().map(|i| i.key.clone()).collect();
                let record = Record::Enqueue {
                    now,
                    expires: expiry(now, ttl),
                    reply: Arc::clone(&reply),
                    items,
                };
                let signal = shared.journal.append(record)?;
                pending.events += keys.len();
                for key in keys {
                    pending.keys.insert(key, Arc::clone(&reply));
                }
                (classified, Some(signal))
            }
        };
        if let Some(signal) = wait {
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

    pub(super) async fn quarantine(&self, item: Quarantined) -> Result<(), StoreError> {
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
    }
}

/// Loads the newest snapshot and replays the journals after it into `memory`; with `repair`,
/// cuts a torn tail off and removes files of older generations. The recovery, the snapshot's
/// generation and the current journal's.
fn load(
    dir: &Path,
    memory: &MemoryStore,
    repair: bool,
) -> Result<(Recovery, u64, u64), StoreError> {
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        StoreError::Unavailable(format!("{what} {}: {e}", dir.display()))
    };
    let found = Generations::list(dir).map_err(|e| failed("cannot read", &e))?;
    let mut recovery = Recovery::default();
    let base = load_snapshot(dir, &found, memory)?;
    let journals: Vec<u64> = found
        .journals
        .iter()
        .copied()
        .filter(|g| *g >= base)
        .collect();
    let current = journals.last().copied().unwrap_or(base);
    for &generation in &journals {
        let path = journal_path(dir, generation);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            // Read-only, the snapshot thread may have removed an old journal meanwhile.
            Err(e) if !repair && e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(failed("cannot read", &e)),
        };
        let end = record::read_frames(&bytes, |payload| {
            apply(memory, None, Record::decode(payload)?);
            recovery.records += 1;
            Ok(())
        })
        .map_err(|e| StoreError::Unavailable(format!("{}: {e}", path.display())))?;
        match end {
            End::Clean => {}
            End::Torn(at) if generation == current => {
                recovery.torn_bytes = bytes.len() as u64 - at;
                if repair {
                    let file = OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(|e| failed("cannot open", &e))?;
                    file.set_len(at).map_err(|e| failed("cannot repair", &e))?;
                    file.sync_all().map_err(|e| failed("cannot repair", &e))?;
                }
            }
            End::Torn(_) if !repair => {}
            End::Torn(at) | End::Corrupt(at) => {
                return Err(StoreError::Unavailable(format!(
                    "{} is damaged at byte {at} (whole records follow, or a later journal \
                     exists): porter will not guess; move the directory aside and restore \
                     it, or remove that file to start from its snapshot",
                    path.display()
                )));
            }
        }
    }
    if repair {
        found.remove_older_than(dir, base);
    }
    recovery.generation = current;
    Ok((recovery, base, current))
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
                    pending.keys.remove(&item.key);
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
    }
}

/// The writer thread's own state.
struct Writer {
    shared: Arc<Shared>,
    file: File,
    generation: u64,
    /// The journal's length up to the last sync that succeeded.
    synced_len: u64,
    batches: u64,
    fault: Fault,
    snapshotting: Arc<AtomicBool>,
    clock: Clock,
}

impl Writer {
    fn run(mut self) {
        loop {
            let broken = self.shared.journal.broken().is_some();
            let Some(batch) = self.shared.journal.take(broken.then_some(MEND_EVERY)) else {
                return;
            };
            if broken {
                self.mend();
            }
            if batch.records.is_empty() {
                continue;
            }
            self.fault
                .before_write(&mut self.file, self.batches, &batch.bytes);
            self.batches += 1;
            let written = self
                .file
                .write_all(&batch.bytes)
                .and_then(|()| self.file.sync_data());
            match written {
                Ok(()) => {
                    self.synced_len += batch.bytes.len() as u64;
                    self.shared.syncs.fetch_add(1, Ordering::Relaxed);
                    self.shared
                        .journal_bytes
                        .store(self.synced_len, Ordering::Relaxed);
                    let mut lines = Vec::new();
                    {
                        let mut pending = self.shared.pending();
                        for record in batch.records {
                            if self.shared.printer.is_some()
                                && let Record::Enqueue { items, .. } = &record
                            {
                                lines.extend(items.iter().map(|i| Arc::clone(&i.event.json)));
                            }
                            apply(&self.shared.memory, Some(&mut pending), record);
                        }
                    }
                    self.shared.journal.landed();
                    batch.signal.fire(Ok(()));
                    if let Some(printer) = &self.shared.printer
                        && !lines.is_empty()
                    {
                        let _ = printer.try_send(lines);
                    }
                    self.maybe_snapshot();
                }
                Err(error) => {
                    let reason: Arc<str> =
                        Arc::from(format!("writing the journal failed: {error}").as_str());
                    tracing::error!(%error, dir = %self.shared.dir.display(), "the local store cannot write: answering 503 until it can");
                    {
                        let mut pending = self.shared.pending();
                        for record in &batch.records {
                            if let Record::Enqueue { items, .. } = record {
                                for item in items {
                                    pending.keys.remove(&item.key);
                                }
                                pending.events = pending.events.saturating_sub(items.len());
                            }
                        }
                    }
                    self.shared.journal.set_broken(Arc::clone(&reason));
                    self.shared.journal.landed();
                    batch.signal.fire(Err(reason));
                    self.mend();
                }
            }
        }
    }

    /// Cuts the journal back to its synced length, so a later batch does not follow a hole;
    /// appends are taken again once that worked.
    fn mend(&mut self) {
        let mended = self
            .file
            .set_len(self.synced_len)
            .and_then(|()| self.file.sync_all())
            .and_then(|()| self.file.seek(SeekFrom::End(0)).map(|_| ()));
        match mended {
            Ok(()) => {
                if self.shared.journal.broken().is_some() {
                    tracing::info!(dir = %self.shared.dir.display(), "the local store's journal is mended: taking events again");
                }
                self.shared.journal.mend();
            }
            Err(error) => tracing::debug!(%error, "the journal cannot be mended yet"),
        }
    }

    /// Starts a new journal generation and has the state at that point written as its
    /// snapshot, when the journal has outgrown the last snapshot.
    fn maybe_snapshot(&mut self) {
        let limit = self
            .shared
            .snapshot_after
            .max(self.shared.snapshot_bytes.load(Ordering::Relaxed));
        if self.synced_len < limit || self.snapshotting.load(Ordering::Acquire) {
            return;
        }
        let next = self.generation + 1;
        let path = journal_path(&self.shared.dir, next);
        let opened = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .and_then(|file| sync_dir(&self.shared.dir).map(|()| file));
        let file = match opened {
            Ok(file) => file,
            Err(error) => {
                tracing::warn!(%error, path = %path.display(), "cannot start a new journal; the current one keeps growing");
                // Try again after as many bytes again.
                self.shared
                    .snapshot_bytes
                    .fetch_add(self.synced_len, Ordering::Relaxed);
                return;
            }
        };
        // Every record of the old generation is applied and nothing of the new one is: the
        // state now is exactly what the snapshot must hold.
        let state = snapshot::State {
            store: self.shared.memory.contents(self.clock.now_ms()),
            schedule: self
                .shared
                .memory
                .deliveries()
                .map(|s| s.contents())
                .unwrap_or_default(),
        };
        self.file = file;
        self.generation = next;
        self.synced_len = 0;
        self.snapshotting.store(true, Ordering::Release);
        let shared = Arc::clone(&self.shared);
        let snapshotting = Arc::clone(&self.snapshotting);
        let spawned = std::thread::Builder::new()
            .name("porter-snapshot".into())
            .spawn(move || {
                let started = Instant::now();
                match snapshot::write(&shared.dir, next, &state) {
                    Ok(size) => {
                        shared.snapshot_bytes.store(size, Ordering::Relaxed);
                        shared.snapshots.fetch_add(1, Ordering::Relaxed);
                        if let Ok(found) = Generations::list(&shared.dir) {
                            found.remove_older_than(&shared.dir, next);
                        }
                        tracing::info!(generation = next, bytes = size, ms = started.elapsed().as_millis() as u64, "local store snapshot written");
                    }
                    Err(error) => {
                        tracing::warn!(%error, "writing a snapshot failed; the journals still hold everything")
                    }
                }
                snapshotting.store(false, Ordering::Release);
            });
        if spawned.is_err() {
            self.snapshotting.store(false, Ordering::Release);
        }
    }
}

fn start_printer() -> std::sync::mpsc::SyncSender<Vec<Arc<str>>> {
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<Arc<str>>>(PRINT_QUEUE);
    let _ = std::thread::Builder::new()
        .name("porter-print".into())
        .spawn(move || {
            for lines in receiver {
                let mut out = std::io::stdout().lock();
                for line in lines {
                    let _ = out.write_all(line.as_bytes());
                    let _ = out.write_all(b"\n");
                }
                let _ = out.flush();
            }
        });
    sender
}

/// Takes `dir/LOCK`, or says who has it.
fn take_lock(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join("LOCK");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            return Err(StoreError::Unavailable(format!(
                "{} is in use by another porter process ({}): one process per directory",
                dir.display(),
                match holder.trim() {
                    "" => "pid unknown".to_owned(),
                    pid => format!("pid {pid}"),
                }
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(StoreError::Unavailable(format!(
                "cannot lock {}: {e}",
                path.display()
            )));
        }
    }
    let _ = file.set_len(0);
    let _ = write!(file, "{}", std::process::id());
    Ok(file)
}

/// The generations found in a directory.
#[derive(Debug, Default)]
struct Generations {
    snapshots: Vec<u64>,
    journals: Vec<u64>,
    temporary: Vec<PathBuf>,
}

impl Generations {
    fn list(dir: &Path) -> std::io::Result<Self> {
        let mut found = Generations::default();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let number = |prefix: &str, suffix: &str| -> Option<u64> {
                name.strip_prefix(prefix)?
                    .strip_suffix(suffix)?
                    .parse()
                    .ok()
            };
            if let Some(g) = number("journal-", ".log") {
                found.journals.push(g);
            } else if let Some(g) = number("snapshot-", ".snap") {
                found.snapshots.push(g);
            } else if number("snapshot-", ".tmp").is_some() {
                found.temporary.push(entry.path());
            }
        }
        found.snapshots.sort_unstable();
        found.journals.sort_unstable();
        Ok(found)
    }

    /// Removes the files of generations before `base` and unfinished snapshots.
    fn remove_older_than(&self, dir: &Path, base: u64) {
        for &g in self.journals.iter().filter(|g| **g < base) {
            let _ = std::fs::remove_file(journal_path(dir, g));
        }
        for &g in self.snapshots.iter().filter(|g| **g < base) {
            let _ = std::fs::remove_file(snapshot::snapshot_path(dir, g));
        }
        for path in &self.temporary {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Loads the newest whole snapshot into `memory`; its generation (0 when there is none).
fn load_snapshot(dir: &Path, found: &Generations, memory: &MemoryStore) -> Result<u64, StoreError> {
    for &generation in found.snapshots.iter().rev() {
        match snapshot::read(dir, generation) {
            Ok(Some(state)) => {
                memory.restore(state.store);
                if let Some(schedule) = memory.deliveries() {
                    let orphaned = schedule.restore(state.schedule);
                    if orphaned > 0 {
                        tracing::warn!(
                            orphaned,
                            "jobs and dead letters of destinations no longer configured were left behind"
                        );
                    }
                }
                return Ok(generation);
            }
            Ok(None) => {
                tracing::warn!(generation, "an incomplete snapshot was passed over");
            }
            Err(error) => {
                return Err(StoreError::Unavailable(format!(
                    "snapshot {generation} in {} cannot be read: {error}",
                    dir.display()
                )));
            }
        }
    }
    Ok(found.journals.first().copied().unwrap_or(0))
}

fn journal_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("journal-{generation:08}.log"))
}

/// Makes a directory's entries (a created or renamed file) durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Reads the events appended to a local store's journal from now on, for `porter events tail
/// --follow` (which may run while `porter serve` writes).
#[derive(Debug)]
pub struct Follower {
    dir: PathBuf,
    generation: u64,
    offset: u64,
}

impl Follower {
    /// Starts at the end of the newest journal.
    pub fn at_end(dir: &Path) -> std::io::Result<Self> {
        let found = Generations::list(dir)?;
        let generation = found.journals.last().copied().unwrap_or(0);
        let offset = std::fs::metadata(journal_path(dir, generation)).map_or(0, |m| m.len());
        Ok(Self {
            dir: dir.to_owned(),
            generation,
            offset,
        })
    }

    /// The JSON of the events whose records became whole since the last call, oldest first.
    pub fn poll(&mut self) -> std::io::Result<Vec<Arc<str>>> {
        let mut events = Vec::new();
        loop {
            let path = journal_path(&self.dir, self.generation);
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(e),
            };
            let from = usize::try_from(self.offset)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            let mut read = 0usize;
            let _ = record::read_frames(&bytes[from..], |payload| {
                read += record::HEADER + payload.len();
                if let Ok(Record::Enqueue { items, .. }) = Record::decode(payload) {
                    events.extend(items.into_iter().map(|i| i.event.json));
                }
                Ok(())
            });
            self.offset = (from + read) as u64;
            // A newer journal means this one is finished: move on once it is read.
            let newer = Generations::list(&self.dir)?
                .journals
                .into_iter()
                .find(|g| *g > self.generation);
            match newer {
                Some(next) if self.offset as usize >= bytes.len() => {
                    self.generation = next;
                    self.offset = 0;
                }
                _ => return Ok(events),
            }
        }
    }
}
