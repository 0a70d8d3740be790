//! Following a journal from another process (`porter events tail --follow`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::files::{Generations, journal_path};
use super::record::{self, Record};

/// Reads the events appended to a local store's journal from now on, for `porter events tail
/// --follow` (which may run while `porter serve` writes).
#[derive(Debug)]
pub(crate) struct Follower {
    dir: PathBuf,
    generation: u64,
    offset: u64,
}

impl Follower {
    /// Starts at the end of the newest journal.
    pub(crate) fn at_end(dir: &Path) -> std::io::Result<Self> {
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
    pub(crate) fn poll(&mut self) -> std::io::Result<Vec<Arc<str>>> {
        let mut events = Vec::new();
        loop {
            let path = journal_path(&self.dir, self.generation);
            let bytes = match super::private::read(&path) {
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
                Ok::<(), std::convert::Infallible>(())
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
