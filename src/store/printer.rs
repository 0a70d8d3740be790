//! Events printed as JSON lines (stdout in `porter serve`), by a thread of their own.
//!
//! A store hands each request's new events over with [`Printer::offer`], which never blocks
//! on the writer: a slow reader of stdout fills the queue, and then the store answers 503 (the
//! provider retries) instead of every worker waiting on the pipe while holding the store's
//! lock. The thread is woken only when it sleeps on an empty queue, and after each write it
//! lets a millisecond of lines gather: a few wake-ups a second per thousand requests, not one
//! per request.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use super::StoreError;

/// Lines waiting for the writer before [`Printer::offer`] answers `Full`.
pub(super) const QUEUE: usize = 65_536;
/// How long the thread lets lines gather after a write.
const GATHER: Duration = Duration::from_millis(1);

/// The sending side; the thread owns the writer.
#[derive(Debug, Clone)]
pub(super) struct Printer {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    /// Why writing stopped (a closed stdout), once it has.
    failed: OnceLock<String>,
}

#[derive(Debug, Default)]
struct Queue {
    lines: Vec<Arc<str>>,
    /// The thread waits for lines (so an offer must wake it).
    idle: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Printer {
    /// Starts the thread writing to `writer`.
    pub(super) fn spawn(mut writer: Box<dyn Write + Send>) -> Self {
        let shared = Arc::new(Shared::default());
        let thread = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("porter-print".into())
            .spawn(move || {
                loop {
                    let lines = {
                        let mut queue = thread.lock();
                        while queue.lines.is_empty() {
                            queue.idle = true;
                            queue = thread.wake.wait(queue).unwrap_or_else(|p| p.into_inner());
                        }
                        queue.idle = false;
                        std::mem::take(&mut queue.lines)
                    };
                    let written = lines
                        .iter()
                        .try_for_each(|line| {
                            writer.write_all(line.as_bytes())?;
                            writer.write_all(b"\n")
                        })
                        .and_then(|()| writer.flush());
                    if let Err(error) = written {
                        tracing::error!(%error, lost = lines.len(), "writing events failed");
                        let _ = thread.failed.set(format!("writing events failed: {error}"));
                        return;
                    }
                    std::thread::sleep(GATHER);
                }
            });
        if let Err(error) = spawned {
            let _ = shared
                .failed
                .set(format!("cannot start the printing thread: {error}"));
        }
        Self { shared }
    }

    /// Queues `lines`, or says why not: the queue is full (`Full`), or writing has failed.
    pub(super) fn offer(&self, lines: Vec<Arc<str>>) -> Result<(), StoreError> {
        if let Some(reason) = self.shared.failed.get() {
            return Err(StoreError::Unavailable(reason.clone()));
        }
        let mut queue = self.shared.lock();
        if queue.lines.len() + lines.len() > QUEUE {
            return Err(StoreError::Full);
        }
        queue.lines.extend(lines);
        let wake = std::mem::take(&mut queue.idle);
        drop(queue);
        if wake {
            self.shared.wake.notify_one();
        }
        Ok(())
    }
}
