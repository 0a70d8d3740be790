//! What this instance has been doing: the recent requests, the time series behind the
//! console's charts (10-second buckets over an hour, 5-minute buckets over a day), and the
//! budget for diagnosing refused requests.
//!
//! The ingest path must not wait on any of it, so a request's record is handed over with a
//! `try_send` on a bounded channel (no lock, no wake-up: nobody waits on the receiving end)
//! and folded into the ring and the series by a thread of its own every 50 ms, or by a reader
//! of the admin API first, so that what it reads is complete. A full channel drops the record
//! and counts it (`dropped`): losing a line of the console beats slowing a provider down.
//! Delivery workers record their attempts directly: they are not on the ingest path.

pub(crate) mod ring;
pub(crate) mod series;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::mpsc;

pub(crate) use ring::{RequestQuery, Ring};
pub(crate) use series::{
    BUCKET_SECONDS, BUCKETS, DestinationBucket, OUTCOMES, Resolution, Series, SourceBucket,
};

use crate::clock::Clock;
use crate::config::MIN_DIAGNOSES_PER_SECOND;

/// Records waiting to be folded in; 50 ms of 300 000 requests a second.
const CHANNEL: usize = 16_384;
/// How often the folding thread wakes.
const FOLD_EVERY: Duration = Duration::from_millis(50);

/// A source as the activity names it (requests record its index only).
#[derive(Debug, Clone)]
pub struct SourceInfo {
    pub name: String,
    pub provider: &'static str,
    pub path: String,
}

/// Where a request went: a source's route (its index and the endpoint's suffix), or a path no
/// source has. Indexes, not names, so that recording a request copies no string.
#[derive(Debug, Clone)]
pub enum Routed {
    Source {
        index: u32,
        suffix: &'static str,
    },
    /// The path as received, cut to [`MAX_RECORDED_PATH`] bytes.
    Unrouted(Box<str>),
}

/// The longest path kept of a request on no route.
pub(crate) const MAX_RECORDED_PATH: usize = 256;

impl Routed {
    /// `path`, cut to [`MAX_RECORDED_PATH`] bytes on a character boundary.
    pub fn unrouted(path: &str) -> Self {
        let mut end = path.len().min(MAX_RECORDED_PATH);
        while !path.is_char_boundary(end) {
            end -= 1;
        }
        Routed::Unrouted(path[..end].into())
    }
}

/// An event id (`evt_` + 32 hex digits) as its 128 bits: recording one allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventId(pub u128);

impl EventId {
    pub fn parse(id: &str) -> Option<Self> {
        let hex = id.strip_prefix("evt_")?;
        (hex.len() == 32)
            .then(|| u128::from_str_radix(hex, 16).ok())
            .flatten()
            .map(EventId)
    }
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "evt_{:032x}", self.0)
    }
}

/// One request on the providers' listener, as recorded. Never a body, a query string or a
/// header value.
#[derive(Debug, Clone)]
pub struct RequestEntry {
    pub time: Timestamp,
    pub routed: Routed,
    pub method: http::Method,
    pub status: u16,
    pub outcome: &'static str,
    pub reason: Option<&'static str>,
    pub diagnosis: Option<Box<Diagnosed>>,
    pub event_ids: Vec<EventId>,
    pub latency: Duration,
}

/// A recorded request with its source named: what the API and the console show.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RecentRequest {
    pub time: Timestamp,
    pub source: Option<String>,
    pub provider: Option<&'static str>,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub outcome: &'static str,
    pub reason: Option<&'static str>,
    pub diagnosis: Option<Diagnosed>,
    pub event_ids: Vec<String>,
    pub latency_ms: f64,
}

/// Which known mistake a refused request makes, for the operator only.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Diagnosed {
    /// `url_mismatch`, `secret_encoding`, `signature_encoding`, `algorithm`, `clock_skew`,
    /// `no_known_variant`.
    pub code: &'static str,
    /// What to change, in a sentence.
    pub message: String,
    /// The diagnosis's own fields (`url`, `seconds`, …).
    pub details: serde_json::Value,
}

/// How a delivery attempt ended, for the destination's series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    Delivered,
    Failed,
    DeadLettered,
}

/// This instance's activity. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct Activity {
    sender: mpsc::Sender<RequestEntry>,
    shared: Arc<Shared>,
    clock: Clock,
}

#[derive(Debug)]
struct Shared {
    sources: Vec<SourceInfo>,
    receiver: Mutex<mpsc::Receiver<RequestEntry>>,
    ring: Mutex<Ring>,
    series: Mutex<Series>,
    /// Records the channel had no room for.
    dropped: AtomicU64,
    budget: Budget,
    share: f64,
    clock: Clock,
}

impl Activity {
    /// For `sources` (in the gateway's order): keeps the newest `recent` requests, diagnoses
    /// at most `share` of the requests of a second, and reads time from `clock`.
    pub fn new(sources: Vec<SourceInfo>, recent: usize, share: f64, clock: Clock) -> Self {
        let (sender, receiver) = mpsc::channel(CHANNEL);
        let series = Series::new(sources.len());
        let shared = Arc::new(Shared {
            sources,
            receiver: Mutex::new(receiver),
            ring: Mutex::new(Ring::new(recent)),
            series: Mutex::new(series),
            dropped: AtomicU64::new(0),
            budget: Budget::new(MIN_DIAGNOSES_PER_SECOND),
            share,
            clock: clock.clone(),
        });
        let folding = Arc::downgrade(&shared);
        // Ends when the activity is dropped (the weak reference fails to upgrade).
        let _ = std::thread::Builder::new()
            .name("porter-activity".to_owned())
            .spawn(move || {
                loop {
                    std::thread::sleep(FOLD_EVERY);
                    match folding.upgrade() {
                        Some(shared) => shared.fold(),
                        None => break,
                    }
                }
            });
        Self {
            sender,
            shared,
            clock,
        }
    }

    /// Hands a request's record over without waiting.
    pub fn record(&self, entry: RequestEntry) {
        if self.sender.try_send(entry).is_err() {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether a refused request may be diagnosed now (within the budget).
    pub fn may_diagnose(&self) -> bool {
        self.shared.budget.take(self.clock.now().as_second())
    }

    /// Records the end of a delivery attempt.
    pub fn attempt(&self, destination: &str, result: AttemptResult) {
        let now = self.clock.now().as_second();
        let mut series = self.shared.series();
        series
            .destinations
            .entry(destination.to_owned())
            .or_default()
            .record(now, |bucket| match result {
                AttemptResult::Delivered => bucket.delivered += 1,
                AttemptResult::Failed => bucket.failed += 1,
                AttemptResult::DeadLettered => bucket.dead_lettered += 1,
            });
    }

    /// Records a destination's backlog.
    pub fn lag(&self, destination: &str, backlog: u64) {
        let now = self.clock.now().as_second();
        let mut series = self.shared.series();
        series
            .destinations
            .entry(destination.to_owned())
            .or_default()
            .record(now, |bucket| bucket.sample(backlog));
    }

    /// The newest requests matching `query`, newest first.
    pub fn requests(&self, query: &RequestQuery) -> Vec<RecentRequest> {
        self.shared.fold();
        let source = match query.source.as_deref() {
            None => None,
            Some(name) => match self.source_index(name) {
                Some(index) => Some(index),
                // A source that does not exist has no requests.
                None => return Vec::new(),
            },
        };
        lock(&self.shared.ring)
            .query(source, query.outcome.as_deref(), query.limit)
            .into_iter()
            .map(|entry| self.shared.resolve(entry))
            .collect()
    }

    /// The index of the source named `name`.
    pub fn source_index(&self, name: &str) -> Option<u32> {
        self.shared
            .sources
            .iter()
            .position(|s| s.name == name)
            .and_then(|i| u32::try_from(i).ok())
    }

    /// How many requests the ring holds, and at most.
    pub fn ring_size(&self) -> (usize, usize) {
        self.shared.fold();
        let ring = lock(&self.shared.ring);
        (ring.len(), ring.capacity())
    }

    /// Records dropped because the channel was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Reads the series (after folding in what is waiting).
    pub fn with_series<T>(&self, read: impl FnOnce(&Series) -> T) -> T {
        self.shared.fold();
        read(&self.shared.series())
    }

    /// The current bucket number.
    pub fn current_bucket(&self) -> i64 {
        series::bucket_of(self.clock.now().as_second())
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

impl Shared {
    fn series(&self) -> MutexGuard<'_, Series> {
        lock(&self.series)
    }

    /// An entry with its source and path named.
    fn resolve(&self, entry: &RequestEntry) -> RecentRequest {
        let (source, path) = match &entry.routed {
            Routed::Source { index, suffix } => {
                let info = self.sources.get(*index as usize);
                (
                    info,
                    format!("{}{suffix}", info.map_or("", |i| i.path.as_str())),
                )
            }
            Routed::Unrouted(path) => (None, path.to_string()),
        };
        RecentRequest {
            time: entry.time,
            source: source.map(|s| s.name.clone()),
            provider: source.map(|s| s.provider),
            method: entry.method.to_string(),
            path,
            status: entry.status,
            outcome: entry.outcome,
            reason: entry.reason,
            diagnosis: entry.diagnosis.as_deref().cloned(),
            event_ids: entry.event_ids.iter().map(ToString::to_string).collect(),
            latency_ms: entry.latency.as_secs_f64() * 1000.0,
        }
    }

    /// Moves waiting records into the ring and the series, and resizes the diagnosis budget.
    ///
    /// Records go straight from the channel into the series and the ring, with no buffer in
    /// between: a fold every 50 ms at tens of thousands of requests a second would otherwise
    /// allocate (and page-fault) a fresh megabyte each time. Locks are taken in the order
    /// receiver, series, ring; every other user takes one of them alone.
    fn fold(&self) {
        let receiver = &mut *lock(&self.receiver);
        let now = self.clock.now().as_second();
        let mut series = self.series();
        let mut ring = None;
        while let Ok(entry) = receiver.try_recv() {
            if let Routed::Source { index, .. } = entry.routed
                && let Some(tracks) = series.sources.get_mut(index as usize)
            {
                let outcome = OUTCOMES.iter().position(|o| *o == entry.outcome);
                let class = series::Histogram::class_of(
                    u64::try_from(entry.latency.as_micros()).unwrap_or(u64::MAX),
                );
                tracks.record(entry.time.as_second(), |bucket| {
                    bucket.count(outcome, entry.reason, class);
                });
            }
            ring.get_or_insert_with(|| lock(&self.ring)).push(entry);
        }
        drop(ring);
        // The last complete bucket's rate sets how many diagnoses a second are allowed.
        let last = series::bucket_of(now) - 1;
        let per_second =
            series.sources_sum(None, last, last).requests() as f64 / BUCKET_SECONDS as f64;
        drop(series);
        let allowed = (per_second * self.share) as u32;
        self.budget
            .allowed
            .store(allowed.max(MIN_DIAGNOSES_PER_SECOND), Ordering::Relaxed);
    }
}

/// Diagnoses allowed per second: a count per Unix second in one atomic word.
#[derive(Debug)]
struct Budget {
    allowed: AtomicU32,
    /// The second (high 32 bits) and how many were taken in it (low 32 bits).
    window: AtomicU64,
}

impl Budget {
    fn new(allowed: u32) -> Self {
        Self {
            allowed: AtomicU32::new(allowed),
            window: AtomicU64::new(0),
        }
    }

    fn take(&self, second: i64) -> bool {
        let second = (second as u64) & 0xffff_ffff;
        let allowed = u64::from(self.allowed.load(Ordering::Relaxed));
        self.window
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |window| {
                let (at, taken) = (window >> 32, window & 0xffff_ffff);
                if at != second {
                    Some(second << 32 | 1)
                } else if taken < allowed {
                    Some(window + 1)
                } else {
                    None
                }
            })
            .is_ok()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests;
