//! The local store's delivery schedules: the memory schedules, with every change (an
//! attempt's outcome, a replayed dead letter, a pause) written to the journal before it is
//! applied, so a restart finds each job where it was.
//!
//! Leases are not written: after a restart every scheduled job is due at its recorded time,
//! which is what a lease running out means anyway.

use std::sync::Arc;
use std::time::Duration;

use super::Shared;
use super::record::Record;
use crate::store::schedule::{Attempt, Job, Lease, Next, Schedule};
use crate::store::{MemorySchedule, StoreError};
use crate::vocab::Filter;
use jiff::Timestamp;

/// Every destination's schedule in a local store.
#[derive(Debug, Clone)]
pub struct LocalSchedule {
    shared: Arc<Shared>,
    schedule: Arc<MemorySchedule>,
}

impl LocalSchedule {
    pub(crate) fn new(shared: Arc<Shared>, schedule: Arc<MemorySchedule>) -> Self {
        Self { shared, schedule }
    }

    /// The schedules as they stand (what is on disk), for reading.
    pub fn memory(&self) -> &Arc<MemorySchedule> {
        &self.schedule
    }

    /// Puts dead letter `id` back into its destination's schedule, due at `now_ms`; its
    /// destination, or `None` if there is no such dead letter.
    pub async fn replay(&self, id: u64, now_ms: i64) -> Result<Option<String>, StoreError> {
        let Some(destination) = self.schedule.dead_letter_destination(id) else {
            return Ok(None);
        };
        self.shared
            .write(Record::Replay { id, now: now_ms })
            .await?;
        Ok(Some(destination))
    }
}

impl Schedule for LocalSchedule {
    async fn prepare(&self, destination: &str) -> Result<(), StoreError> {
        self.schedule.prepare(destination).await
    }

    async fn intake(
        &self,
        destination: &str,
        filter: &Filter,
        shard: usize,
        now: Timestamp,
        reclaim: Option<Duration>,
    ) -> Result<usize, StoreError> {
        self.schedule
            .intake(destination, filter, shard, now, reclaim)
            .await
    }

    /// Only events on disk are in the schedules (they are applied after their sync), so
    /// nothing leaves porter before it is durable.
    async fn lease(
        &self,
        destination: &str,
        shard: usize,
        lease: Lease,
    ) -> Result<Vec<Job>, StoreError> {
        self.schedule.lease(destination, shard, lease).await
    }

    async fn finish(
        &self,
        destination: &str,
        job: &Job,
        attempt: Attempt,
        next: Next,
    ) -> Result<(), StoreError> {
        self.shared
            .write(Record::Finish {
                destination: destination.to_owned(),
                entry: job.entry.clone(),
                attempt,
                next,
            })
            .await
    }

    async fn backlog(&self, destination: &str) -> Result<u64, StoreError> {
        self.schedule.backlog(destination).await
    }

    async fn set_paused(&self, destination: &str, paused: bool) -> Result<(), StoreError> {
        if !self.schedule.has_destination(destination) {
            return Ok(());
        }
        self.shared
            .write(Record::Pause {
                destination: destination.to_owned(),
                paused,
            })
            .await
    }

    async fn is_paused(&self, destination: &str) -> Result<bool, StoreError> {
        self.schedule.is_paused(destination).await
    }
}
