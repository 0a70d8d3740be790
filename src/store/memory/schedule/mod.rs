//! Delivery schedules in memory, for the memory store: the same semantics as on Redis (leases,
//! retries, dead letters) within one process, so the embedded default and library users
//! deliver exactly like a Redis deployment, minus surviving a restart.
//!
//! The memory store pushes each new event here in the same step that stores it; the queue is
//! bounded, and a full queue makes the store answer 503.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::store::StoreError;
use crate::store::memory::Recent;
use crate::store::schedule::{Attempt, Job, JobState, Lease, Next, Schedule};
use crate::vocab::Filter;
use jiff::Timestamp;

mod erase;

/// How many dead letters are kept per destination; older ones are dropped first.
const DEAD_LETTER_CAPACITY: usize = 10_000;
/// How many delivered jobs, with their attempts, are remembered per destination for
/// inspection.
const DELIVERED_HISTORY: usize = 1_000;

/// Every destination's schedule.
#[derive(Debug)]
pub struct MemorySchedule {
    destinations: Vec<Destination>,
    /// Jobs scheduled across all destinations before the store refuses events.
    capacity: usize,
    /// The id of the next dead letter.
    next_dead: AtomicU64,
}

#[derive(Debug)]
struct Destination {
    name: String,
    filter: Filter,
    state: Mutex<State>,
    /// Deliveries held (`pause`): nothing is leased.
    paused: AtomicBool,
}

#[derive(Debug, Default)]
struct State {
    next_seq: u64,
    /// Scheduled jobs by sequence number (which is arrival order).
    jobs: BTreeMap<u64, Scheduled>,
    dead: VecDeque<DeadLetter>,
    /// The newest delivered jobs: event id and attempts.
    delivered: VecDeque<(String, Vec<Attempt>)>,
}

#[derive(Debug)]
struct Scheduled {
    event_id: String,
    event: Arc<str>,
    /// Unix milliseconds.
    due: i64,
    attempts: Vec<Attempt>,
}

/// A scheduled job, as a snapshot holds it.
#[derive(Debug, Clone)]
pub struct SavedJob {
    pub seq: u64,
    pub event_id: String,
    pub event: Arc<str>,
    pub due: i64,
    pub attempts: Vec<Attempt>,
}

/// One destination's schedule, as a snapshot holds it.
#[derive(Debug, Clone)]
pub struct DestinationContents {
    pub name: String,
    pub paused: bool,
    pub next_seq: u64,
    pub jobs: Vec<SavedJob>,
    pub dead: Vec<DeadLetter>,
    pub delivered: Vec<(String, Vec<Attempt>)>,
}

/// Every destination's schedule, as a snapshot holds it.
#[derive(Debug, Clone, Default)]
pub struct ScheduleContents {
    pub next_dead: u64,
    pub destinations: Vec<DestinationContents>,
}

/// An event that ran out of attempts.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Unique in this process, in order of dead-lettering.
    pub id: u64,
    pub destination: String,
    pub event_id: String,
    pub event: Arc<str>,
    pub attempts: Vec<Attempt>,
}

impl MemorySchedule {
    /// Schedules for `(name, filter)` destinations, holding at most `capacity` jobs.
    pub fn new(destinations: &[(String, Filter)], capacity: usize) -> Self {
        Self {
            destinations: destinations
                .iter()
                .map(|(name, filter)| Destination {
                    name: name.clone(),
                    filter: filter.clone(),
                    state: Mutex::new(State::default()),
                    paused: AtomicBool::new(false),
                })
                .collect(),
            capacity,
            next_dead: AtomicU64::new(1),
        }
    }

    /// Whether `count` more events fit (each may be scheduled for every destination).
    pub fn has_room_for(&self, count: usize) -> bool {
        let scheduled: usize = self
            .destinations
            .iter()
            .map(|d| lock(&d.state).jobs.len())
            .sum();
        scheduled + count * self.destinations.len().max(1) <= self.capacity
    }

    /// Schedules a newly stored event, due now, for every destination that wants it.
    pub fn push(&self, event: &Recent, now_ms: i64) {
        for destination in &self.destinations {
            if !destination
                .filter
                .wants(&event.event_type, &event.source, &event.json)
            {
                continue;
            }
            let mut state = lock(&destination.state);
            let seq = state.next_seq;
            state.next_seq += 1;
            state.jobs.insert(
                seq,
                Scheduled {
                    event_id: event.id.clone(),
                    event: Arc::clone(&event.json),
                    due: now_ms,
                    attempts: Vec::new(),
                },
            );
        }
    }

    /// Records an attempt and moves the job on as `next` says (what [`Schedule::finish`]
    /// does, without a future: the local store applies it once it is on disk).
    pub fn finish_now(&self, name: &str, job: &Job, attempt: Attempt, next: Next) {
        self.record(name, job, attempt);
        match next {
            Next::Done => self.complete(name, job),
            Next::Retry { due_ms } => self.reschedule(name, job, due_ms),
            Next::DeadLettered => self.dead_letter(name, job),
        }
    }

    /// Whether dead letter `id` exists, and its destination.
    pub fn dead_letter_destination(&self, id: u64) -> Option<String> {
        self.destinations
            .iter()
            .find(|d| lock(&d.state).dead.iter().any(|dead| dead.id == id))
            .map(|d| d.name.clone())
    }

    /// Holds or releases a destination's deliveries.
    pub fn pause_now(&self, name: &str, paused: bool) {
        if let Some(destination) = self.destination(name) {
            destination.paused.store(paused, Ordering::Release);
        }
    }

    /// Whether `name` is one of the destinations.
    pub fn has_destination(&self, name: &str) -> bool {
        self.destination(name).is_some()
    }

    /// A copy of every destination's state, for a snapshot.
    pub fn contents(&self) -> ScheduleContents {
        ScheduleContents {
            next_dead: self.next_dead.load(Ordering::Relaxed),
            destinations: self
                .destinations
                .iter()
                .map(|d| {
                    let state = lock(&d.state);
                    DestinationContents {
                        name: d.name.clone(),
                        paused: d.paused.load(Ordering::Acquire),
                        next_seq: state.next_seq,
                        jobs: state
                            .jobs
                            .iter()
                            .map(|(seq, job)| SavedJob {
                                seq: *seq,
                                event_id: job.event_id.clone(),
                                event: Arc::clone(&job.event),
                                due: job.due,
                                attempts: job.attempts.clone(),
                            })
                            .collect(),
                        dead: state.dead.iter().cloned().collect(),
                        delivered: state.delivered.iter().cloned().collect(),
                    }
                })
                .collect(),
        }
    }

    /// Takes back what [`MemorySchedule::contents`] gave, for the destinations that still
    /// exist; how many jobs and dead letters of destinations no longer configured were left
    /// behind.
    pub fn restore(&self, contents: ScheduleContents) -> usize {
        self.next_dead
            .fetch_max(contents.next_dead, Ordering::Relaxed);
        let mut orphaned = 0;
        for saved in contents.destinations {
            let Some(destination) = self.destination(&saved.name) else {
                orphaned += saved.jobs.len() + saved.dead.len();
                continue;
            };
            destination.paused.store(saved.paused, Ordering::Release);
            let mut state = lock(&destination.state);
            state.next_seq = state.next_seq.max(saved.next_seq);
            for job in saved.jobs {
                state.jobs.insert(
                    job.seq,
                    Scheduled {
                        event_id: job.event_id,
                        event: job.event,
                        due: job.due,
                        attempts: job.attempts,
                    },
                );
            }
            state.dead.extend(saved.dead);
            state.delivered.extend(saved.delivered);
        }
        orphaned
    }

    fn destination(&self, name: &str) -> Option<&Destination> {
        self.destinations.iter().find(|d| d.name == name)
    }

    /// Up to `limit` due jobs, leased until `until_ms`. Ordered destinations get only their
    /// oldest job, and only when it is due.
    fn lease_now(&self, name: &str, lease: Lease) -> Vec<Job> {
        let Lease {
            limit,
            ordered,
            now,
            until,
        } = lease;
        let (now_ms, until_ms) = (now.as_millisecond(), until.as_millisecond());
        let Some(destination) = self.destination(name) else {
            return Vec::new();
        };
        if destination.paused.load(Ordering::Acquire) {
            return Vec::new();
        }
        let mut state = lock(&destination.state);
        let candidates: Vec<u64> = if ordered {
            state
                .jobs
                .iter()
                .next()
                .filter(|(_, job)| job.due <= now_ms)
                .map(|(seq, _)| *seq)
                .into_iter()
                .collect()
        } else {
            state
                .jobs
                .iter()
                .filter(|(_, job)| job.due <= now_ms)
                .map(|(seq, _)| *seq)
                .take(limit)
                .collect()
        };
        candidates
            .into_iter()
            .filter_map(|seq| {
                let job = state.jobs.get_mut(&seq)?;
                job.due = until_ms;
                Some(Job {
                    entry: seq.to_string(),
                    shard: 0,
                    event_id: job.event_id.clone(),
                    event: Some(Arc::clone(&job.event)),
                    attempts: job.attempts.len(),
                    leased_until: until_ms,
                })
            })
            .collect()
    }

    fn record(&self, name: &str, job: &Job, attempt: Attempt) {
        self.with_job(name, job, |scheduled| scheduled.attempts.push(attempt));
    }

    fn complete(&self, name: &str, job: &Job) {
        if let (Some(destination), Ok(seq)) = (self.destination(name), job.entry.parse::<u64>()) {
            let mut state = lock(&destination.state);
            if let Some(done) = state.jobs.remove(&seq) {
                if state.delivered.len() == DELIVERED_HISTORY {
                    state.delivered.pop_front();
                }
                state.delivered.push_back((done.event_id, done.attempts));
            }
        }
    }

    fn reschedule(&self, name: &str, job: &Job, due_ms: i64) {
        self.with_job(name, job, |scheduled| scheduled.due = due_ms);
    }

    /// Moves a job to the dead letters, with its attempts.
    fn dead_letter(&self, name: &str, job: &Job) {
        let (Some(destination), Ok(seq)) = (self.destination(name), job.entry.parse::<u64>())
        else {
            return;
        };
        let mut state = lock(&destination.state);
        if let Some(scheduled) = state.jobs.remove(&seq) {
            if state.dead.len() == DEAD_LETTER_CAPACITY {
                state.dead.pop_front();
            }
            state.dead.push_back(DeadLetter {
                id: self.next_dead.fetch_add(1, Ordering::Relaxed),
                destination: name.to_owned(),
                event_id: scheduled.event_id,
                event: scheduled.event,
                attempts: scheduled.attempts,
            });
        }
    }

    /// The attempts made so far on a job.
    pub fn attempts(&self, name: &str, job: &Job) -> Vec<Attempt> {
        let mut attempts = Vec::new();
        self.with_job(name, job, |scheduled| attempts = scheduled.attempts.clone());
        attempts
    }

    /// The dead letters of every destination, oldest first.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.destinations
            .iter()
            .flat_map(|d| lock(&d.state).dead.iter().cloned().collect::<Vec<_>>())
            .collect()
    }

    /// Puts dead letter `id` back into its destination's schedule, due at `now_ms`, with its
    /// attempts; its destination, or `None` if there is no such dead letter.
    pub fn replay(&self, id: u64, now_ms: i64) -> Option<String> {
        for destination in &self.destinations {
            let mut state = lock(&destination.state);
            let Some(at) = state.dead.iter().position(|d| d.id == id) else {
                continue;
            };
            let dead = state.dead.remove(at)?;
            let seq = state.next_seq;
            state.next_seq += 1;
            state.jobs.insert(
                seq,
                Scheduled {
                    event_id: dead.event_id,
                    event: dead.event,
                    due: now_ms,
                    attempts: dead.attempts,
                },
            );
            return Some(destination.name.clone());
        }
        None
    }

    /// Where an event stands with a destination, and its attempts: scheduled (due at), dead-
    /// lettered, delivered (among the newest remembered), or `None` when the destination has
    /// no trace of it.
    pub fn find(&self, name: &str, event_id: &str) -> Option<(JobState, Vec<Attempt>)> {
        let destination = self.destination(name)?;
        let state = lock(&destination.state);
        if let Some(job) = state.jobs.values().find(|j| j.event_id == event_id) {
            return Some((
                JobState::Scheduled { due_ms: job.due },
                job.attempts.clone(),
            ));
        }
        if let Some(dead) = state.dead.iter().rev().find(|d| d.event_id == event_id) {
            return Some((JobState::DeadLettered, dead.attempts.clone()));
        }
        state
            .delivered
            .iter()
            .rev()
            .find(|(id, _)| id == event_id)
            .map(|(_, attempts)| (JobState::Delivered, attempts.clone()))
    }

    /// Jobs waiting per destination (for the lag metric).
    pub fn waiting(&self, name: &str) -> usize {
        self.destination(name)
            .map_or(0, |d| lock(&d.state).jobs.len())
    }

    fn with_job(&self, name: &str, job: &Job, change: impl FnOnce(&mut Scheduled)) {
        if let (Some(destination), Ok(seq)) = (self.destination(name), job.entry.parse::<u64>())
            && let Some(scheduled) = lock(&destination.state).jobs.get_mut(&seq)
        {
            change(scheduled);
        }
    }
}

impl Schedule for MemorySchedule {
    /// Nothing to prepare: the memory store schedules each event as it stores it.
    async fn prepare(&self, _destination: &str) -> Result<(), StoreError> {
        Ok(())
    }

    async fn intake(
        &self,
        _destination: &str,
        _filter: &Filter,
        _shard: usize,
        _now: Timestamp,
        _reclaim: Option<Duration>,
    ) -> Result<usize, StoreError> {
        Ok(0)
    }

    async fn lease(
        &self,
        destination: &str,
        _shard: usize,
        lease: Lease,
    ) -> Result<Vec<Job>, StoreError> {
        Ok(self.lease_now(destination, lease))
    }

    async fn finish(
        &self,
        destination: &str,
        job: &Job,
        attempt: Attempt,
        next: Next,
    ) -> Result<(), StoreError> {
        self.finish_now(destination, job, attempt, next);
        Ok(())
    }

    async fn backlog(&self, destination: &str) -> Result<u64, StoreError> {
        Ok(self.waiting(destination) as u64)
    }

    async fn set_paused(&self, destination: &str, paused: bool) -> Result<(), StoreError> {
        if let Some(destination) = self.destination(destination) {
            destination.paused.store(paused, Ordering::Release);
        }
        Ok(())
    }

    async fn is_paused(&self, destination: &str) -> Result<bool, StoreError> {
        Ok(self
            .destination(destination)
            .is_some_and(|d| d.paused.load(Ordering::Acquire)))
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
