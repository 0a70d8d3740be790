//! The writer thread: takes each batch, writes and syncs it, applies its records, answers
//! its callers; mends a journal whose write failed; starts snapshots.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::files::{Generations, journal_path, sync_dir};
use super::journal::Fault;
use super::keys::KeyList;
use super::record::Record;
use super::{MEND_EVERY, Shared, apply, snapshot};
use crate::clock::Clock;

/// The writer thread's own state.
pub(super) struct Writer {
    pub(super) shared: Arc<Shared>,
    pub(super) file: File,
    pub(super) generation: u64,
    /// The journal's length up to the last sync that succeeded.
    pub(super) synced_len: u64,
    pub(super) batches: u64,
    /// When the last batch's write began, and how many records it had.
    pub(super) paced: (Instant, usize),
    /// The dedupe keys the snapshots write.
    pub(super) keys: KeyList,
    pub(super) fault: Fault,
    pub(super) snapshotting: Arc<AtomicBool>,
    /// An erasure waits for a snapshot: start one whatever the journal's size.
    pub(super) compact: bool,
    pub(super) clock: Clock,
    /// When the metrics were last set, and the syncs counted by then.
    pub(super) reported: (Instant, u64),
}

/// The snapshot thread's nice value (Linux's is per thread): under contention it gets about
/// a tenth of what a request-path thread gets, so a snapshot stretches out instead of
/// stalling requests; on an idle core it runs at full speed.
const SNAPSHOT_NICE: i32 = 10;

/// The least time between the starts of two syncs while requests arrive together.
///
/// **Why.** A sync costs about the same kernel CPU whatever it carries (150 µs here), and at
/// moderate rates the batches are small: at 9 000 req/s, pinned to one core, syncs as fast
/// as the disk allowed took 23 µs of the journal thread's CPU per request. Waiting until
/// 2 ms have passed since the last sync began lets the next batch gather more: 9 µs per
/// request, and 11 % more throughput flat out (`bench/ab.py --store local --pinned`). The
/// wait only applies when the last batch held two records or more (requests are arriving
/// together): a lone request still waits for exactly one write and one sync. PostgreSQL's
/// `commit_delay` is the same idea.
const PACE: Duration = Duration::from_millis(2);

/// How long to wait before the next sync, when the last one began `since` ago carrying
/// `records` records: none for a lone request or a journal being mended.
fn wait_before_sync(broken: bool, records: usize, since: Duration) -> Option<Duration> {
    if broken || records < 2 {
        return None;
    }
    PACE.checked_sub(since).filter(|rest| !rest.is_zero())
}

/// How often the writer sets the store's metrics (not on every batch: thousands a second).
const REPORT_EVERY: Duration = Duration::from_secs(1);

impl Writer {
    pub(super) fn report(&mut self, force: bool) {
        if !force && self.reported.0.elapsed() < REPORT_EVERY {
            return;
        }
        let syncs = self.shared.syncs.load(Ordering::Relaxed);
        metrics::counter!("porter_store_syncs_total").increment(syncs - self.reported.1);
        let bytes = self.shared.journal_bytes.load(Ordering::Relaxed)
            + self.shared.snapshot_bytes.load(Ordering::Relaxed);
        metrics::gauge!("porter_store_disk_bytes").set(bytes as f64);
        self.reported = (Instant::now(), syncs);
    }

    /// Under concurrent load, waits until [`PACE`] has passed since the last sync began, so
    /// that the next batch gathers what arrives meanwhile.
    fn pace(&self, broken: bool) {
        let (began, records) = self.paced;
        if let Some(rest) = wait_before_sync(broken, records, began.elapsed()) {
            std::thread::sleep(rest);
        }
    }

    pub(super) fn run(mut self) {
        self.report(true);
        loop {
            self.report(false);
            let broken = self.shared.journal.broken().is_some();
            self.pace(broken);
            let Some(batch) = self.shared.journal.take(broken.then_some(MEND_EVERY)) else {
                return;
            };
            if broken {
                self.mend();
            }
            if batch.records.is_empty() {
                continue;
            }
            let began = Instant::now();
            let written = self
                .fault
                .before_write(&mut self.file, self.batches, &batch.bytes)
                .and_then(|()| self.file.write_all(&batch.bytes))
                .and_then(|()| self.file.sync_data());
            self.batches += 1;
            self.paced = (began, batch.records.len());
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
                            if matches!(record, Record::Erase { .. } | Record::Compact) {
                                self.compact = true;
                            }
                            if self.shared.printer.is_some()
                                && let Record::Enqueue { items, .. } = &record
                            {
                                lines.extend(items.iter().map(|i| Arc::clone(&i.event.json)));
                            }
                            self.keys.applied(&record);
                            apply(&self.shared.memory, Some(&mut pending), record);
                        }
                    }
                    batch.signal.fire(Ok(()));
                    // stdout is a view here (the journal holds the events): a full queue or a
                    // closed stdout drops lines, never requests.
                    if let Some(printer) = &self.shared.printer
                        && !lines.is_empty()
                    {
                        let _ = printer.offer(lines);
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
                                    pending.keys.remove(&*item.key);
                                }
                                pending.events = pending.events.saturating_sub(items.len());
                            }
                        }
                    }
                    self.shared.journal.set_broken(Arc::clone(&reason));
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
        if (self.synced_len < limit && !self.compact) || self.snapshotting.load(Ordering::Acquire) {
            return;
        }
        self.compact = false;
        let next = self.generation + 1;
        let path = journal_path(&self.shared.dir, next);
        let opened = super::private::open(&path, OpenOptions::new().create_new(true).append(true))
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
        let captured = Instant::now();
        let mut state = snapshot::State {
            store: self.shared.memory.contents_but_keys(),
            schedule: self
                .shared
                .memory
                .deliveries()
                .map(|s| s.contents())
                .unwrap_or_default(),
            archive: self.shared.memory.raw_archive().entries(),
            tombstones: {
                let now = self.clock.now_ms();
                let tombstones = self.shared.memory.tombstones();
                tombstones
                    .live(now)
                    .map(|(k, until)| (k.clone(), until))
                    .collect()
            },
        };
        // The keys are not copied here (see `keys`): this generation's are handed over.
        let keys = self.keys.switch();
        // The requests' batches wait while the state is copied: the log says how long.
        let capture_us = captured.elapsed().as_micros() as u64;
        self.file = file;
        self.generation = next;
        self.shared.generation.store(next, Ordering::Release);
        self.synced_len = 0;
        self.snapshotting.store(true, Ordering::Release);
        let shared = Arc::clone(&self.shared);
        let snapshotting = Arc::clone(&self.snapshotting);
        let clock = self.clock.clone();
        let spawned = std::thread::Builder::new()
            .name("porter-snapshot".into())
            .spawn(move || {
                // Below the request path's threads: on a busy core, requests first.
                let _ = rustix::process::setpriority_process(None, SNAPSHOT_NICE);
                let started = Instant::now();
                state.store.keys = keys.live(clock.now_ms());
                match snapshot::write(&shared.dir, next, &state) {
                    Ok(size) => {
                        shared.snapshot_bytes.store(size, Ordering::Relaxed);
                        if let Ok(found) = Generations::list(&shared.dir) {
                            found.remove_older_than(&shared.dir, next);
                        }
                        shared.snapshot_generation.store(next, Ordering::Release);
                        shared.snapshots.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(generation = next, bytes = size, capture_us, ms = started.elapsed().as_millis() as u64, "local store snapshot written");
                    }
                    Err(error) => {
                        tracing::warn!(%error, "writing a snapshot failed; the journals still hold everything")
                    }
                }
                // Let go of the store (its lock) before saying the snapshot is done.
                drop(shared);
                snapshotting.store(false, Ordering::Release);
            });
        if spawned.is_err() {
            self.snapshotting.store(false, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syncs_are_paced_only_while_requests_arrive_together() {
        let ms = Duration::from_millis;
        assert_eq!(
            wait_before_sync(false, 1, ms(0)),
            None,
            "a lone request: at once"
        );
        assert_eq!(wait_before_sync(false, 0, ms(0)), None);
        assert_eq!(
            wait_before_sync(false, 5, Duration::from_micros(500)),
            Some(Duration::from_micros(1500)),
            "after a batch of five, the rest of the 2 ms"
        );
        assert_eq!(wait_before_sync(false, 5, ms(2)), None, "2 ms have passed");
        assert_eq!(wait_before_sync(false, 5, ms(7)), None);
        assert_eq!(wait_before_sync(true, 5, ms(0)), None, "mending: at once");
    }
}
