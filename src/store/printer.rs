//! Events printed as JSON lines (stdout in `porter serve`), by a thread of their own.
//!
//! A store hands each request's new events over with [`Printer::offer`], which never blocks:
//! a slow reader of stdout fills the queue, and then the store answers 503 (the provider
//! retries) instead of every worker waiting on the pipe while holding the store's lock.

use std::io::Write;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};

use super::StoreError;

/// Batches of lines waiting for the writer.
pub const QUEUE: usize = 4_096;

/// The sending side; the thread owns the writer.
#[derive(Debug, Clone)]
pub struct Printer {
    sender: SyncSender<Vec<Arc<str>>>,
    /// Why writing stopped (a closed stdout), once it has.
    failed: Arc<OnceLock<String>>,
}

impl Printer {
    /// Starts the thread writing to `writer`.
    pub fn spawn(mut writer: Box<dyn Write + Send>) -> Self {
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<Arc<str>>>(QUEUE);
        let failed = Arc::new(OnceLock::new());
        let failure = Arc::clone(&failed);
        let spawned = std::thread::Builder::new()
            .name("porter-print".into())
            .spawn(move || {
                for lines in receiver {
                    let written = lines
                        .iter()
                        .try_for_each(|line| {
                            writer.write_all(line.as_bytes())?;
                            writer.write_all(b"\n")
                        })
                        .and_then(|()| writer.flush());
                    if let Err(error) = written {
                        tracing::error!(%error, lost = lines.len(), "writing events failed");
                        let _ = failure.set(format!("writing events failed: {error}"));
                        return;
                    }
                }
            });
        if let Err(error) = spawned {
            let _ = failed.set(format!("cannot start the printing thread: {error}"));
        }
        Self { sender, failed }
    }

    /// Queues `lines`, or says why not: the queue is full (`Full`), or writing has failed.
    pub fn offer(&self, lines: Vec<Arc<str>>) -> Result<(), StoreError> {
        if let Some(reason) = self.failed.get() {
            return Err(StoreError::Unavailable(reason.clone()));
        }
        match self.sender.try_send(lines) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(StoreError::Full),
            Err(TrySendError::Disconnected(_)) => Err(StoreError::Unavailable(
                self.failed
                    .get()
                    .cloned()
                    .unwrap_or_else(|| "writing events stopped".to_owned()),
            )),
        }
    }
}
