//! Time series in 10-second buckets over the last hour: what the console's charts and the
//! overview's 5-minute and 1-hour figures are computed from.
//!
//! Per source: requests by outcome, rejections by reason and an ingest-latency histogram; per
//! destination: attempts delivered, failed and dead-lettered, and the backlog sampled by its
//! worker. Each series is a ring of [`BUCKETS`] slots indexed by the bucket's number (Unix
//! seconds / 10); a slot whose number is not the one asked for is stale and reads as empty.
//! Memory is fixed per source and destination (about 180 KiB per source), whatever the traffic.

use std::collections::BTreeMap;

/// Seconds per bucket.
pub(crate) const BUCKET_SECONDS: i64 = 10;
/// Buckets kept: one hour.
pub(crate) const BUCKETS: usize = 360;

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
        let class = if micros <= 1 {
            0
        } else {
            ((micros as f64).log2() * 4.0) as usize
        };
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

/// One source's ten seconds.
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

    pub fn outcome(&self, label: &str) -> u64 {
        OUTCOMES
            .iter()
            .position(|o| *o == label)
            .map_or(0, |i| self.outcomes[i])
    }
}

/// One destination's ten seconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct DestinationBucket {
    pub delivered: u64,
    pub failed: u64,
    pub dead_lettered: u64,
    /// The last backlog sampled in these ten seconds.
    pub lag: Option<u64>,
}

impl DestinationBucket {
    pub fn add(&mut self, other: &DestinationBucket) {
        self.delivered += other.delivered;
        self.failed += other.failed;
        self.dead_lettered += other.dead_lettered;
        self.lag = other.lag.or(self.lag);
    }
}

/// A ring of buckets indexed by bucket number.
#[derive(Debug, Clone)]
pub struct Buckets<B> {
    slots: Vec<(i64, B)>,
}

impl<B: Default + Clone> Default for Buckets<B> {
    fn default() -> Self {
        Self {
            slots: vec![(i64::MIN, B::default()); BUCKETS],
        }
    }
}

impl<B: Default + Clone> Buckets<B> {
    /// The bucket number `number`, emptied first if it held an older one.
    pub fn at(&mut self, number: i64) -> &mut B {
        let slot = &mut self.slots[number.rem_euclid(BUCKETS as i64) as usize];
        if slot.0 != number {
            *slot = (number, B::default());
        }
        &mut slot.1
    }

    /// Bucket `number`, if it is still held.
    pub fn get(&self, number: i64) -> Option<&B> {
        let slot = &self.slots[number.rem_euclid(BUCKETS as i64) as usize];
        (slot.0 == number).then_some(&slot.1)
    }
}

/// The bucket number of a Unix second.
pub(crate) fn bucket_of(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(BUCKET_SECONDS)
}

/// Every series of this instance.
#[derive(Debug, Default)]
pub struct Series {
    /// By source index (the gateway's order).
    pub sources: Vec<Buckets<SourceBucket>>,
    pub destinations: BTreeMap<String, Buckets<DestinationBucket>>,
}

impl Series {
    pub fn new(sources: usize) -> Self {
        Self {
            sources: vec![Buckets::default(); sources],
            destinations: BTreeMap::new(),
        }
    }

    /// The sum of the buckets `first..=last` of source `source` (every source when `None`).
    pub fn sources_sum(&self, source: Option<u32>, first: i64, last: i64) -> SourceBucket {
        let mut sum = SourceBucket::default();
        for (index, buckets) in self.sources.iter().enumerate() {
            if source.is_some_and(|wanted| wanted as usize != index) {
                continue;
            }
            for number in first..=last {
                if let Some(bucket) = buckets.get(number) {
                    sum.add(bucket);
                }
            }
        }
        sum
    }

    /// The sum of a destination's buckets `first..=last`; its lag is the newest sampled.
    pub fn destination_sum(&self, destination: &str, first: i64, last: i64) -> DestinationBucket {
        let mut sum = DestinationBucket::default();
        if let Some(buckets) = self.destinations.get(destination) {
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
