//! The journal: group commit of records to one append-only file, on a thread of its own.
//!
//! Callers append a record (encoded on the spot into the open batch) and get the batch's
//! [`Signal`]; the writer thread takes the whole open batch, writes it, calls `fdatasync`
//! once, applies its records to the state in memory, and only then fires the signal. While it
//! syncs, new records gather in the next batch: one sync per batch, no timer, and a lone
//! request waits for exactly one write and one sync.
//!
//! A failed write or sync fails the whole batch (every caller answers 503, nothing of it is
//! applied) and cuts the file back to its last synced length; until that succeeds the journal
//! refuses appends, so nothing is ever acknowledged past a hole.

use std::fs::File;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use super::record::Record;
use crate::store::StoreError;

/// The outcome of one batch, which every caller of that batch waits for.
#[derive(Debug, Default)]
pub struct Signal {
    outcome: OnceLock<Result<(), Arc<str>>>,
    fired: tokio::sync::Notify,
}

impl Signal {
    pub fn fire(&self, outcome: Result<(), Arc<str>>) {
        let _ = self.outcome.set(outcome);
        self.fired.notify_waiters();
    }

    /// Waits until the batch is on disk (`Ok`) or failed.
    pub async fn wait(&self) -> Result<(), StoreError> {
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
    /// The batch being written, for callers that must wait for what is already on its way.
    in_flight: Option<Arc<Signal>>,
    /// Why appends are refused (a write failed and the file is not repaired yet).
    broken: Option<Arc<str>>,
    closing: bool,
}

/// The appending side, shared by every caller.
#[derive(Debug, Default)]
pub struct Journal {
    open: Mutex<Open>,
    wake: Condvar,
}

/// What the writer takes at once.
#[derive(Debug)]
pub struct Batch {
    pub bytes: Vec<u8>,
    pub records: Vec<Record>,
    pub signal: Arc<Signal>,
}

impl Journal {
    fn lock(&self) -> MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `record` to the open batch; the signal fires once it is on disk and applied.
    pub fn append(&self, record: Record) -> Result<Arc<Signal>, StoreError> {
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
        drop(open);
        self.wake.notify_one();
        Ok(signal)
    }

    /// The signal of the newest batch holding anything, for a caller that must not answer
    /// before what was appended so far is on disk; `None` when everything is.
    pub fn barrier(&self) -> Option<Arc<Signal>> {
        let open = self.lock();
        if open.records.is_empty() {
            open.in_flight.clone()
        } else {
            Some(Arc::clone(&open.signal))
        }
    }

    /// Why appends are refused, if they are.
    pub fn broken(&self) -> Option<Arc<str>> {
        self.lock().broken.clone()
    }

    /// Blocks the writer until there is a batch (or, closing, returns `None`). With
    /// `timeout`, returns an empty batch when it passes (the writer's chance to repair).
    pub fn take(&self, timeout: Option<Duration>) -> Option<Batch> {
        let mut open = self.lock();
        while open.records.is_empty() {
            if open.closing {
                return None;
            }
            match timeout {
                Some(timeout) => {
                    let (guard, waited) = self
                        .wake
                        .wait_timeout(open, timeout)
                        .unwrap_or_else(|p| p.into_inner());
                    open = guard;
                    if waited.timed_out() && open.records.is_empty() {
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
        let signal = std::mem::take(&mut open.signal);
        open.in_flight = Some(Arc::clone(&signal));
        // The next batch starts with room for a batch like this one.
        let room = open.bytes.len();
        Some(Batch {
            bytes: std::mem::replace(&mut open.bytes, Vec::with_capacity(room)),
            records: std::mem::take(&mut open.records),
            signal,
        })
    }

    /// Refuses appends with `reason` until [`Journal::mend`].
    pub fn set_broken(&self, reason: Arc<str>) {
        self.lock().broken = Some(reason);
    }

    pub fn mend(&self) {
        self.lock().broken = None;
    }

    /// The writer is done with its batch.
    pub fn landed(&self) {
        self.lock().in_flight = None;
    }

    /// Refuses further appends and lets the writer finish what it has.
    pub fn close(&self) {
        self.lock().closing = true;
        self.wake.notify_all();
    }
}

/// A fault point for the crash tests: `PORTER_LOCAL_FAULT=torn_write_after:N` makes the
/// process write half of batch N+1 and abort before syncing it, which is what a power cut
/// leaves on disk (a torn tail whose requests were never answered).
#[derive(Debug, Clone, Copy)]
pub struct Fault {
    torn_after: Option<u64>,
}

impl Fault {
    pub fn from_env() -> Self {
        let torn_after = std::env::var("PORTER_LOCAL_FAULT")
            .ok()
            .and_then(|v| v.strip_prefix("torn_write_after:")?.parse().ok());
        if torn_after.is_some() {
            tracing::warn!("PORTER_LOCAL_FAULT is set: this process will abort on purpose");
        }
        Self { torn_after }
    }

    /// Before writing batch number `batch` (from 0): tears it and aborts if asked to.
    pub fn before_write(&self, file: &mut File, batch: u64, bytes: &[u8]) {
        if self.torn_after == Some(batch) {
            let _ = file.write_all(&bytes[..bytes.len() / 2]);
            std::process::abort();
        }
    }
}
