//! Erasure on the local store: found in the state in memory, removed through the journal
//! (by ids), and then out of the files: a new journal generation and a snapshot of the state
//! after the removal, after which the older journals and snapshots, which still held the
//! person, are deleted. The erasure answers only once that is done.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::LocalStore;
use super::files::Generations;
use super::record::Record;
use crate::store::StoreError;
use crate::store::erase::tombstones_of;
use crate::store::erase::{Erase, Erased, ErasureRecord, archived_holding};

/// How long an erasure waits for the snapshot that takes the person out of the files.
const COMPACT_WITHIN: Duration = Duration::from_secs(60);
/// How often it wakes the writer meanwhile (a snapshot may be under way already).
const KICK_EVERY: Duration = Duration::from_millis(100);

impl LocalStore {
    /// Finds and (unless `dry_run`) removes everything that holds the person, from memory
    /// and from the files; remembers what it removed ([`crate::store::erase::Tombstones`])
    /// before it searches the raw archive, so that an archive write landing meanwhile is
    /// either found or refused.
    pub async fn erase(&self, erase: &Erase, dry_run: bool) -> Result<Erased, StoreError> {
        let memory = self.memory();
        let found = memory.find_erasable(erase);
        // Counted before the removal, which the journal applies.
        let mut erased = memory.remove(&found, true);
        let until = memory.now_ms().saturating_add(millis(erase.remember_for));
        if !dry_run && (!found.events.is_empty() || !found.quarantined.is_empty()) {
            self.write(Record::Erase {
                tombstones: tombstones_of(&found),
                events: found.events.iter().cloned().collect(),
                quarantined: found.quarantined.iter().cloned().collect(),
                until,
            })
            .await?;
        }
        let archived = memory
            .raw_archive()
            .list(erase.source.as_deref(), None, memory.now_ms());
        let requests = archived_holding(&archived, erase, &found.events);
        erased.archived = requests.len() as u64;
        if dry_run {
            return Ok(erased);
        }
        if !requests.is_empty() {
            let bodies = archived
                .iter()
                .filter(|item| requests.contains(&item.id))
                .flat_map(crate::store::erase::archived_tombstones)
                .collect();
            self.write(Record::Erase {
                events: Vec::new(),
                quarantined: Vec::new(),
                tombstones: bodies,
                until,
            })
            .await?;
            self.write(Record::RemoveArchived(requests)).await?;
        }
        // Even when nothing is found: an earlier erasure cut short (a crash before its
        // snapshot) left the person in the older files, and this run takes them out.
        self.compact().await?;
        Ok(erased)
    }

    /// Keeps an erasure's audit record, on disk.
    pub async fn record_erasure(&self, record: ErasureRecord) -> Result<(), StoreError> {
        self.write(Record::Erasure(record)).await
    }

    /// Waits for a snapshot of a generation started after every record written so far was
    /// applied, and checks that no older file is left.
    async fn compact(&self) -> Result<(), StoreError> {
        let shared = self.shared();
        let after = shared.generation.load(Ordering::Acquire);
        let started = Instant::now();
        while shared.snapshot_generation.load(Ordering::Acquire) <= after {
            if started.elapsed() > COMPACT_WITHIN {
                return Err(StoreError::Unavailable(format!(
                    "erased from the store's state, but no snapshot was written within {} s: \
                     the journal files in {} still hold it until the next snapshot",
                    COMPACT_WITHIN.as_secs(),
                    shared.dir.display()
                )));
            }
            tokio::time::sleep(KICK_EVERY).await;
            if shared.snapshot_generation.load(Ordering::Acquire) <= after {
                self.write(Record::Compact).await?;
            }
        }
        let base = shared.snapshot_generation.load(Ordering::Acquire);
        let left = Generations::list(&shared.dir)
            .map_err(|e| StoreError::io(format!("cannot list {}", shared.dir.display()), e))?
            .older_than(base);
        if left.is_empty() {
            Ok(())
        } else {
            Err(StoreError::Unavailable(format!(
                "erased from the store's state, but older files could not be deleted: {}",
                left.join(", ")
            )))
        }
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
