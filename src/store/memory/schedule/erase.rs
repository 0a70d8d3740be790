//! Erasure on the memory schedules: jobs, dead letters and the delivered history of the
//! events an erasure found.

use std::collections::HashSet;

use super::{MemorySchedule, lock};
use crate::store::erase::{Erase, Erased};

impl MemorySchedule {
    /// Adds the ids of the scheduled and dead-lettered events that hold the person.
    pub fn find_erasable(&self, erase: &Erase, events: &mut HashSet<String>) {
        for destination in &self.destinations {
            let state = lock(&destination.state);
            for job in state.jobs.values() {
                if !events.contains(&job.event_id) && erase.wants_json(&job.event) {
                    events.insert(job.event_id.clone());
                }
            }
            for dead in &state.dead {
                if !events.contains(&dead.event_id) && erase.wants_json(&dead.event) {
                    events.insert(dead.event_id.clone());
                }
            }
        }
    }

    /// Removes the jobs, dead letters and delivered history of `events` (with `dry_run`,
    /// only counts them). A job leased at this moment is delivered or not by its worker, whose
    /// finish then finds nothing to update.
    pub fn remove_events(&self, events: &HashSet<String>, dry_run: bool, erased: &mut Erased) {
        for destination in &self.destinations {
            let mut state = lock(&destination.state);
            for job in state.jobs.values().filter(|j| events.contains(&j.event_id)) {
                erased.scheduled += 1;
                erased.attempt_records += u64::from(!job.attempts.is_empty());
            }
            erased.dead_letters += state
                .dead
                .iter()
                .filter(|d| events.contains(&d.event_id))
                .count() as u64;
            erased.attempt_records += state
                .delivered
                .iter()
                .filter(|(id, _)| events.contains(id))
                .count() as u64;
            if !dry_run {
                state.jobs.retain(|_, job| !events.contains(&job.event_id));
                state.dead.retain(|dead| !events.contains(&dead.event_id));
                state.delivered.retain(|(id, _)| !events.contains(id));
            }
        }
    }
}
