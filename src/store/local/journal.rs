//! The journal: group commit of records to one append-only file, on a thread of its own.
//!
//! Callers append a record (encoded on the spot into the open batch) and get the batch's
//! [`Signal`]; the writer thread takes the whole open batch, writes it, calls `fdatasync`
//! once, applies its records to the state in memory, and only then fires the signal. While it
//! syncs, new records gather in the next batch: one sync per batch, and a lone request waits
//! for exactly one write and one sync. Under concurrent load the writer starts syncs at most
//! every 2 ms (the writer's `PACE`), so that batches are larger and syncs fewer.
//!
//! A failed write or sync fails the whole batch (every caller answers 503, nothing of it is
//! applied) and cuts the file back to its last synced length; until that succeeds the journal
//! refuses appends, so nothing is ever acknowledged past a hole.

use std::fs::File;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use super::record::{HEADER, Record};
use crate::store::StoreError;

/// The outcome of one batch, which every caller of that batch waits for.
#[derive(Debug, Default)]
pub(super) struct Signal {
    outcome: OnceLock<Result<(), Arc<str>>>,
    fired: tokio::sync::Notify,
    /// Callers that have started waiting (what a test waits for before it lets a write end).
    #[cfg(test)]
    pub(super) waiters: std::sync::atomic::AtomicUsize,
}

impl Signal {
    pub(super) fn fire(&self, outcome: Result<(), Arc<str>>) {
        let _ = self.outcome.set(outcome);
        self.fired.notify_waiters();
    }

    /// Waits until the batch is on disk (`Ok`) or failed.
    pub(super) async fn wait(&self) -> Result<(), StoreError> {
        #[cfg(test)]
        self.waiters
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        loop {
            let fired = self.fired.notified();
            tokio::pin!(fired);
            fired.as_mut().enable();
            if let Some(outcome) = self.outcome.get() {
                return outcome
                    .clone()
                    .map_err(|e| StoreError::Unavailable(e.to_string()));
            }
            fired.await;
        }
    }
}

/// Records appended and not yet taken by the writer.
#[derive(Debug, Default)]
struct Open {
    bytes: Vec<u8>,
    records: Vec<Record>,
    signal: Arc<Signal>,
    /// Why appends are refused (a write failed and the file is not repaired yet).
    broken: Option<Arc<str>>,
    /// The writer waits for records (so an append must wake it; otherwise it takes the open
    /// batch when its write is done, and waking it would be a wasted system call).
    idle: bool,
    closing: bool,
}

/// The appending side, shared by every caller.
#[derive(Debug, Default)]
pub(super) struct Journal {
    open: Mutex<Open>,
    wake: Condvar,
}

/// What the writer takes at once.
#[derive(Debug)]
pub(super) struct Batch {
    pub bytes: Vec<u8>,
    pub records: Vec<Record>,
    pub signal: Arc<Signal>,
}

impl Journal {
    fn lock(&self) -> MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `record` to the open batch; the signal fires once it is on disk and applied.
    pub(super) fn append(&self, record: Record) -> Result<Arc<Signal>, StoreError> {
        let mut open = self.lock();
        if let Some(reason) = &open.broken {
            return Err(StoreError::Unavailable(reason.to_string()));
        }
        if open.closing {
            return Err(StoreError::Unavailable("the store is closing".into()));
        }
        record.encode(&mut open.bytes);
        open.records.push(record);
        let signal = Arc::clone(&open.signal);
        let wake = std::mem::take(&mut open.idle);
        drop(open);
        if wake {
            self.wake.notify_one();
        }
        Ok(signal)
    }

    /// Why appends are refused, if they are.
    pub(super) fn broken(&self) -> Option<Arc<str>> {
        self.lock().broken.clone()
    }

    /// Blocks the writer until there is a batch (or, closing, returns `None`). With
    /// `timeout`, returns an empty batch when it passes (the writer's chance to repair).
    pub(super) fn take(&self, timeout: Option<Duration>) -> Option<Batch> {
        let mut open = self.lock();
        while open.records.is_empty() {
            if open.closing {
                return None;
            }
            open.idle = true;
            match timeout {
                Some(timeout) => {
                    let (guard, waited) = self
                        .wake
                        .wait_timeout(open, timeout)
                        .unwrap_or_else(|p| p.into_inner());
                    open = guard;
                    if waited.timed_out() && open.records.is_empty() {
                        open.idle = false;
                        return Some(Batch {
                            bytes: Vec::new(),
                            records: Vec::new(),
                            signal: Arc::new(Signal::default()),
                        });
                    }
                }
                None => open = self.wake.wait(open).unwrap_or_else(|p| p.into_inner()),
            }
        }
        open.idle = false;
        let signal = std::mem::take(&mut open.signal);
        // The next batch starts with room for a batch like this one.
        let room = open.bytes.len();
        Some(Batch {
            bytes: std::mem::replace(&mut open.bytes, Vec::with_capacity(room)),
            records: std::mem::take(&mut open.records),
            signal,
        })
    }

    /// Refuses appends with `reason` until [`Journal::mend`].
    pub(super) fn set_broken(&self, reason: Arc<str>) {
        self.lock().broken = Some(reason);
    }

    pub(super) fn mend(&self) {
        self.lock().broken = None;
    }

    /// Refuses further appends and lets the writer finish what it has.
    pub(super) fn close(&self) {
        self.lock().closing = true;
        self.wake.notify_all();
    }
}

/// Fault points for the crash tests. `PORTER_LOCAL_FAULT=torn_write_after:N` makes the
/// process write half of batch N+1 and abort before syncing it, which is what a power cut
/// leaves on disk (a torn tail whose requests were never answered). Unit tests can also hold
/// the writer before a write and fail it.
#[derive(Debug, Clone, Default)]
pub(super) struct Fault {
    torn_after: Option<u64>,
    #[cfg(test)]
    pub failing: Arc<Failing>,
}

/// A write the unit tests fail on purpose, after holding it until released.
#[cfg(test)]
#[derive(Debug, Default)]
pub(super) struct Failing {
    /// `Some(released)` while armed.
    state: Mutex<Option<bool>>,
    changed: Condvar,
    held: std::sync::atomic::AtomicBool,
}

#[cfg(test)]
impl Failing {
    /// Fails the next write, holding it until [`Failing::release`].
    pub(super) fn arm(&self) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = Some(false);
    }

    pub(super) fn release(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.is_some() {
            *state = Some(true);
        }
        self.changed.notify_all();
    }

    /// Whether the writer is holding a write (its batch is in flight).
    pub(super) fn holding(&self) -> bool {
        self.held.load(std::sync::atomic::Ordering::Acquire)
    }

    fn before_write(&self) -> std::io::Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.is_none() {
            return Ok(());
        }
        self.held.store(true, std::sync::atomic::Ordering::Release);
        while *state == Some(false) {
            state = self.changed.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        self.held.store(false, std::sync::atomic::Ordering::Release);
        *state = None;
        Err(std::io::Error::other("a write failed on purpose"))
    }
}

/// Where to tear a batch: about its middle, but never between two frames (a batch of two
/// frames of one size would otherwise tear cleanly, and leave nothing torn to find).
fn tear_point(bytes: &[u8]) -> usize {
    let middle = bytes.len() / 2;
    let mut at = 0;
    while at + HEADER <= bytes.len() {
        if at == middle {
            return middle + 1;
        }
        let length = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        at += HEADER + length as usize;
    }
    middle
}

impl Fault {
    /// `PORTER_LOCAL_FAULT`, read only in a build with the `failpoints` feature: a release
    /// build cannot be told to tear a write.
    pub(super) fn from_env() -> Self {
        #[cfg(feature = "failpoints")]
        let torn_after = std::env::var("PORTER_LOCAL_FAULT")
            .ok()
            .and_then(|v| v.strip_prefix("torn_write_after:")?.parse().ok());
        #[cfg(not(feature = "failpoints"))]
        let torn_after = None;
        if torn_after.is_some() {
            tracing::warn!("PORTER_LOCAL_FAULT is set: this process will abort on purpose");
        }
        Self {
            torn_after,
            #[cfg(test)]
            failing: Arc::default(),
        }
    }

    /// Before writing batch number `batch` (from 0): tears it and aborts if asked to; an
    /// error fails the write.
    pub(super) fn before_write(
        &self,
        file: &mut File,
        batch: u64,
        bytes: &[u8],
    ) -> std::io::Result<()> {
        if self.torn_after == Some(batch) {
            let _ = file.write_all(&bytes[..tear_point(bytes)]);
            std::process::abort();
        }
        #[cfg(test)]
        self.failing.before_write()?;
        Ok(())
    }
}

#[cfg(test)]
mod tear {
    use super::*;

    #[test]
    fn a_tear_never_falls_between_two_frames() {
        let mut two = Vec::new();
        for _ in 0..2 {
            Record::Compact.encode(&mut two);
        }
        let at = tear_point(&two);
        assert_eq!(
            at,
            two.len() / 2 + 1,
            "two frames of one size: past the boundary"
        );
        let mut one = Vec::new();
        Record::Compact.encode(&mut one);
        assert_eq!(tear_point(&one), one.len() / 2);
    }
}
