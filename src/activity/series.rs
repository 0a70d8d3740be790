//! Time series at two resolutions: 10-second buckets over the last hour and 5-minute buckets
//! over the last day. They are what the console's charts, the overview's 5-minute and 1-hour
//! figures and the alerts are computed from.
//!
//! Per source: requests by outcome, rejections by reason and an ingest-latency histogram; per
//! destination: attempts delivered, failed and dead-lettered, and the backlog sampled by its
//! worker. Each series is a ring of slots indexed by the bucket's number (Unix seconds / the
//! bucket's length); a slot whose number is not the one asked for is stale and reads as empty.
//! Every record is counted at both resolutions as it is folded in, so the day's series needs
//! no pass over the hour's.
//!
//! Memory is fixed per source and destination, whatever the traffic: a source's slot is 576
//! bytes, so 360 ten-second slots take 203 KiB and 288 five-minute slots 162 KiB (365 KiB per
//! source, plus the reasons of refusals, a few dozen bytes each when there are any); a
//! destination's slot is 64 bytes (23 KiB and 18 KiB). `memory_per_source_is_as_documented`
//! checks these figures.

use std::collections::BTreeMap;

/// Seconds per bucket.
pub(crate) const BUCKET_SECONDS: i64 = 10;
/// Buckets kept: one hour.
pub(crate) const BUCKETS: usize = 360;
/// Seconds per coarse bucket: five minutes.
pub(crate) const COARSE_SECONDS: i64 = 300;
/// Coarse buckets kept: one day.
pub(crate) const COARSE_BUCKETS: usize = 288;

/// Which of the two series: 10-second buckets over an hour, or 5-minute buckets over a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    Fine,
    Coarse,
}

impl Resolution {
    /// Seconds per bucket.
    pub const fn seconds(self) -> i64 {
        match self {
            Resolution::Fine => BUCKET_SECONDS,
            Resolution::Coarse => COARSE_SECONDS,
        }
    }

    /// Buckets kept.
    pub const fn buckets(self) -> usize {
        match self {
            Resolution::Fine => BUCKETS,
            Resolution::Coarse => COARSE_BUCKETS,
        }
    }

    /// The number of the bucket holding a Unix second.
    pub fn bucket_of(self, unix_seconds: i64) -> i64 {
        unix_seconds.div_euclid(self.seconds())
    }
}

/// The outcomes of a request, in a fixed order (the labels of `Answer::outcome`).
pub(crate) const OUTCOMES: [&str; 15] = [
    "accepted",
    "duplicate",
    "handshake",
    "rejected",
    "address_not_allowed",
    "not_found",
    "method_not_allowed",
    "payload_too_large",
    "headers_too_large",
    "request_timeout",
    "incomplete_body",
    "unavailable",
    "busy",
    "throttled",
    "internal",
];

/// Latency classes: four per doubling from 1 µs (each about 19 % wide) up to about 70 s.
const LATENCY_CLASSES: usize = 104;

/// A latency histogram with about 19 % resolution.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: [u32; LATENCY_CLASSES],
    total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: [0; LATENCY_CLASSES],
            total: 0,
        }
    }
}

impl Histogram {
    pub fn record(&mut self, micros: u64) {
        self.record_class(Self::class_of(micros));
    }

    /// The class of a latency, computed once for both resolutions.
    pub fn class_of(micros: u64) -> usize {
        let class = if micros <= 1 {
            0
        } else {
            ((micros as f64).log2() * 4.0) as usize
        };
        class.min(LATENCY_CLASSES - 1)
    }

    pub fn record_class(&mut self, class: usize) {
        let class = class.min(LATENCY_CLASSES - 1);
        self.counts[class] = self.counts[class].saturating_add(1);
        self.total += 1;
    }

    pub fn add(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine = mine.saturating_add(*theirs);
        }
        self.total += other.total;
    }

    /// The `q` quantile in milliseconds (the upper bound of its class), if anything was
    /// recorded.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((self.total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (class, count) in self.counts.iter().enumerate() {
            seen += u64::from(*count);
            if seen >= rank {
                let micros = 2f64.powf((class + 1) as f64 / 4.0);
                return Some(micros / 1000.0);
            }
        }
        None
    }
}

/// One source's bucket (ten seconds or five minutes).
#[derive(Debug, Clone, Default)]
pub struct SourceBucket {
    pub outcomes: [u64; OUTCOMES.len()],
    pub reasons: BTreeMap<&'static str, u64>,
    pub latency: Histogram,
}

impl SourceBucket {
    pub fn add(&mut self, other: &SourceBucket) {
        for (mine, theirs) in self.outcomes.iter_mut().zip(&other.outcomes) {
            *mine += theirs;
        }
        for (reason, count) in &other.reasons {
            *self.reasons.entry(reason).or_default() += count;
        }
        self.latency.add(&other.latency);
    }

    pub fn requests(&self) -> u64 {
        self.outcomes.iter().sum()
    }

    /// Counts one request: its outcome's index, its reason, its latency class.
    pub fn count(&mut self, outcome: Option<usize>, reason: Option<&'static str>, class: usize) {
        if let Some(i) = outcome {
            self.outcomes[i] += 1;
        }
        if let Some(reason) = reason {
            *self.reasons.entry(reason).or_default() += 1;
        }
        self.latency.record_class(class);
    }

    pub fn outcome(&self, label: &str) -> u64 {
        OUTCOMES
            .iter()
            .position(|o| *o == label)
            .map_or(0, |i| self.outcomes[i])
    }
}

/// One destination's bucket (ten seconds or five minutes).
#[derive(Debug, Clone, Copy, Default)]
pub struct DestinationBucket {
    pub delivered: u64,
    pub failed: u64,
    pub dead_lettered: u64,
    /// The last backlog sampled in this bucket.
    pub lag: Option<u64>,
    /// The largest backlog sampled in this bucket.
    pub lag_peak: Option<u64>,
}

impl DestinationBucket {
    /// Adds `other`, a later bucket: its lag is the newer sample.
    pub fn add(&mut self, other: &DestinationBucket) {
        self.delivered += other.delivered;
        self.failed += other.failed;
        self.dead_lettered += other.dead_lettered;
        self.lag = other.lag.or(self.lag);
        self.lag_peak = self.lag_peak.max(other.lag_peak);
    }

    /// Records a backlog sample.
    pub fn sample(&mut self, backlog: u64) {
        self.lag = Some(backlog);
        self.lag_peak = Some(self.lag_peak.map_or(backlog, |peak| peak.max(backlog)));
    }
}

/// A ring of buckets indexed by bucket number.
#[derive(Debug, Clone)]
pub struct Buckets<B> {
    slots: Vec<(i64, B)>,
}

impl<B: Default + Clone> Default for Buckets<B> {
    fn default() -> Self {
        Self::new(BUCKETS)
    }
}

impl<B: Default + Clone> Buckets<B> {
    /// A ring of `len` empty slots.
    pub fn new(len: usize) -> Self {
        Self {
            slots: vec![(i64::MIN, B::default()); len.max(1)],
        }
    }

    fn slot(&self, number: i64) -> usize {
        number.rem_euclid(self.slots.len() as i64) as usize
    }

    /// The bucket number `number`, emptied first if it held an older one.
    pub fn at(&mut self, number: i64) -> &mut B {
        let index = self.slot(number);
        let slot = &mut self.slots[index];
        if slot.0 != number {
            *slot = (number, B::default());
        }
        &mut slot.1
    }

    /// Bucket `number`, if it is still held.
    pub fn get(&self, number: i64) -> Option<&B> {
        let slot = &self.slots[self.slot(number)];
        (slot.0 == number).then_some(&slot.1)
    }
}

/// One source's or destination's series at both resolutions.
#[derive(Debug, Clone)]
pub struct Tracks<B> {
    pub fine: Buckets<B>,
    pub coarse: Buckets<B>,
}

impl<B: Default + Clone> Default for Tracks<B> {
    fn default() -> Self {
        Self {
            fine: Buckets::new(BUCKETS),
            coarse: Buckets::new(COARSE_BUCKETS),
        }
    }
}

impl<B: Default + Clone> Tracks<B> {
    /// Applies `change` to the buckets holding Unix second `at`, at both resolutions.
    pub fn record(&mut self, at: i64, change: impl Fn(&mut B)) {
        change(self.fine.at(Resolution::Fine.bucket_of(at)));
        change(self.coarse.at(Resolution::Coarse.bucket_of(at)));
    }

    pub fn at(&self, resolution: Resolution) -> &Buckets<B> {
        match resolution {
            Resolution::Fine => &self.fine,
            Resolution::Coarse => &self.coarse,
        }
    }
}

/// The 10-second bucket number of a Unix second.
pub(crate) fn bucket_of(unix_seconds: i64) -> i64 {
    Resolution::Fine.bucket_of(unix_seconds)
}

/// Every series of this instance.
#[derive(Debug, Default)]
pub struct Series {
    /// By source index (the gateway's order).
    pub sources: Vec<Tracks<SourceBucket>>,
    pub destinations: BTreeMap<String, Tracks<DestinationBucket>>,
}

impl Series {
    pub fn new(sources: usize) -> Self {
        Self {
            sources: vec![Tracks::default(); sources],
            destinations: BTreeMap::new(),
        }
    }

    /// The sum of the 10-second buckets `first..=last` of source `source` (every source when
    /// `None`).
    pub fn sources_sum(&self, source: Option<u32>, first: i64, last: i64) -> SourceBucket {
        self.sources_sum_at(Resolution::Fine, source, first, last)
    }

    /// The sum of the buckets `first..=last` at `resolution` of source `source` (every source
    /// when `None`).
    pub fn sources_sum_at(
        &self,
        resolution: Resolution,
        source: Option<u32>,
        first: i64,
        last: i64,
    ) -> SourceBucket {
        let mut sum = SourceBucket::default();
        for (index, tracks) in self.sources.iter().enumerate() {
            if source.is_some_and(|wanted| wanted as usize != index) {
                continue;
            }
            let buckets = tracks.at(resolution);
            for number in first..=last {
                if let Some(bucket) = buckets.get(number) {
                    sum.add(bucket);
                }
            }
        }
        sum
    }

    /// The sum of a destination's 10-second buckets `first..=last`; its lag is the newest
    /// sampled.
    pub fn destination_sum(&self, destination: &str, first: i64, last: i64) -> DestinationBucket {
        self.destination_sum_at(Resolution::Fine, destination, first, last)
    }

    /// The sum of a destination's buckets `first..=last` at `resolution`.
    pub fn destination_sum_at(
        &self,
        resolution: Resolution,
        destination: &str,
        first: i64,
        last: i64,
    ) -> DestinationBucket {
        let mut sum = DestinationBucket::default();
        if let Some(tracks) = self.destinations.get(destination) {
            let buckets = tracks.at(resolution);
            for number in first..=last {
                if let Some(bucket) = buckets.get(number) {
                    sum.add(bucket);
                }
            }
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_a_class_of_the_truth() {
        let mut histogram = Histogram::default();
        for micros in 1..=10_000u64 {
            histogram.record(micros);
        }
        let p50 = histogram.quantile_ms(0.5).expect("p50");
        let p99 = histogram.quantile_ms(0.99).expect("p99");
        assert!((5.0..=6.0).contains(&p50), "{p50}");
        assert!((9.9..=11.8).contains(&p99), "{p99}");
        assert_eq!(Histogram::default().quantile_ms(0.5), None);
    }

    #[test]
    fn memory_per_source_is_as_documented() {
        let source_slot = std::mem::size_of::<(i64, SourceBucket)>();
        let destination_slot = std::mem::size_of::<(i64, DestinationBucket)>();
        assert_eq!((source_slot, destination_slot), (576, 64));
        assert_eq!(source_slot * BUCKETS / 1024, 202, "203 KiB, rounded up");
        assert_eq!(source_slot * COARSE_BUCKETS / 1024, 162);
        let tracks: Tracks<SourceBucket> = Tracks::default();
        assert_eq!(tracks.fine.slots.len() + tracks.coarse.slots.len(), 648);
    }

    #[test]
    fn a_record_lands_at_both_resolutions() {
        let mut tracks: Tracks<DestinationBucket> = Tracks::default();
        // 12:04:55 and 12:00:05 UTC share a five-minute bucket, not a ten-second one.
        let noon = 1_767_268_800;
        tracks.record(noon + 295, |b| b.delivered += 1);
        tracks.record(noon + 5, |b| b.sample(97_773));
        tracks.record(noon + 6, |b| b.sample(12));
        let coarse = tracks.coarse.get(noon / COARSE_SECONDS).expect("coarse");
        assert_eq!(
            (coarse.delivered, coarse.lag, coarse.lag_peak),
            (1, Some(12), Some(97_773))
        );
        assert_eq!(
            tracks.fine.get((noon + 295) / 10).map(|b| b.delivered),
            Some(1)
        );
        assert_eq!(
            tracks.fine.get(noon / 10).and_then(|b| b.lag_peak),
            Some(97_773)
        );
        // A day later the five-minute slot is reused.
        tracks.record(noon + 86_400, |b| b.failed += 1);
        assert!(tracks.coarse.get(noon / COARSE_SECONDS).is_none());
    }

    #[test]
    fn a_slot_reused_for_a_later_bucket_starts_empty() {
        let mut buckets: Buckets<DestinationBucket> = Buckets::default();
        buckets.at(5).delivered = 3;
        assert_eq!(buckets.get(5).map(|b| b.delivered), Some(3));
        buckets.at(5 + BUCKETS as i64).delivered += 1;
        assert!(
            buckets.get(5).is_none(),
            "an hour later the slot holds the new bucket"
        );
        assert_eq!(
            buckets.get(5 + BUCKETS as i64).map(|b| b.delivered),
            Some(1)
        );
    }
}
