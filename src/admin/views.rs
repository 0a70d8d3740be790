//! What the API and the console both show, computed once: the overview, the chart series and
//! an event's deliveries. The API serialises these; the console renders them.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;

use super::{Admin, DestinationInfo};
use crate::activity::{BUCKET_SECONDS, DestinationBucket, OUTCOMES, Resolution, SourceBucket};
use crate::store::inspect::StoredEvent;
use crate::store::{Attempt, JobState, Schedule, Schedules, StoreError};

/// Windows the overview sums over.
const FIVE_MINUTES: i64 = 5 * 60;
pub(super) const ONE_HOUR: i64 = 60 * 60;
/// The longest window of the charts.
pub(super) const ONE_DAY: i64 = 24 * ONE_HOUR;

/// One source's figures over a window.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(super) struct SourceFigures {
    pub requests: u64,
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// Every other refusal (`not_found`, `payload_too_large`, `unavailable`, …) by outcome.
    pub other: BTreeMap<&'static str, u64>,
    pub rejections: BTreeMap<&'static str, u64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl SourceFigures {
    fn of(bucket: &SourceBucket) -> Self {
        let other = OUTCOMES
            .iter()
            .zip(bucket.outcomes)
            .filter(|(label, count)| {
                *count > 0 && !matches!(**label, "accepted" | "duplicate" | "rejected")
            })
            .map(|(label, count)| (*label, count))
            .collect();
        Self {
            requests: bucket.requests(),
            accepted: bucket.outcome("accepted"),
            duplicates: bucket.outcome("duplicate"),
            rejected: bucket.outcome("rejected"),
            other,
            rejections: bucket.reasons.clone(),
            p50_ms: bucket.latency.quantile_ms(0.5),
            p99_ms: bucket.latency.quantile_ms(0.99),
        }
    }
}

/// One source: what it is and its figures over the last 5 minutes and hour.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(super) struct SourceOverview {
    pub name: String,
    pub provider: &'static str,
    pub path: String,
    pub last_5m: SourceFigures,
    pub last_1h: SourceFigures,
}

/// One destination's attempts over a window.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(super) struct DestinationFigures {
    pub delivered: u64,
    pub failed: u64,
    pub dead_lettered: u64,
}

impl DestinationFigures {
    fn of(bucket: &DestinationBucket) -> Self {
        Self {
            delivered: bucket.delivered,
            failed: bucket.failed,
            dead_lettered: bucket.dead_lettered,
        }
    }
}

/// One destination: what it is, whether it is held, and its figures.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(super) struct DestinationOverview {
    pub name: String,
    /// `http`, `nats`, `amqp`, `redis_stream` or `handler`.
    pub kind: &'static str,
    /// Where it goes (the URL without credentials or query).
    pub target: Option<String>,
    /// Events waiting: the last sample (every 5 s), if any yet.
    pub lag: Option<u64>,
    pub paused: bool,
    pub last_5m: DestinationFigures,
    pub last_1h: DestinationFigures,
}

/// Whether the store answers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(super) struct StoreHealth {
    /// `memory`, `local` or `redis`.
    pub kind: &'static str,
    pub ready: bool,
    /// Why not, when not.
    pub error: Option<String>,
    /// Whether events are being stored (delivery groups exist).
    pub intake_open: bool,
}

/// This instance at a glance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(super) struct Overview {
    pub now: Timestamp,
    /// When this instance started.
    pub started_at: Timestamp,
    /// porter's version.
    pub version: &'static str,
    pub store: StoreHealth,
    pub sources: Vec<SourceOverview>,
    pub destinations: Vec<DestinationOverview>,
    /// OHIP stream sources: state, offset, last event, disconnects.
    pub streams: Vec<crate::ohip::Status>,
    /// Recent-request records dropped because the recorder could not keep up.
    pub records_dropped: u64,
}

/// The overview: every source and destination over the last 5 minutes and hour.
pub(super) async fn overview(admin: &Admin) -> Overview {
    let activity = &admin.gateway.activity;
    let now_bucket = activity.current_bucket();
    let first = |seconds: i64| now_bucket - seconds / BUCKET_SECONDS + 1;
    let (sources, mut destinations) = activity.with_series(|series| {
        let sources = admin
            .gateway
            .sources
            .iter()
            .enumerate()
            .map(|(index, source)| {
                let name = source.source.name();
                let index = u32::try_from(index).ok();
                SourceOverview {
                    name: name.to_owned(),
                    provider: source.source.provider().id(),
                    path: source.path.clone(),
                    last_5m: SourceFigures::of(&series.sources_sum(
                        index,
                        first(FIVE_MINUTES),
                        now_bucket,
                    )),
                    last_1h: SourceFigures::of(&series.sources_sum(
                        index,
                        first(ONE_HOUR),
                        now_bucket,
                    )),
                }
            })
            .collect::<Vec<_>>();
        let destinations = admin
            .destinations
            .iter()
            .map(|d| {
                let hour = series.destination_sum(&d.name, first(ONE_HOUR), now_bucket);
                DestinationOverview {
                    name: d.name.clone(),
                    kind: d.kind,
                    target: d.target.clone(),
                    lag: hour.lag,
                    paused: false,
                    last_5m: DestinationFigures::of(&series.destination_sum(
                        &d.name,
                        first(FIVE_MINUTES),
                        now_bucket,
                    )),
                    last_1h: DestinationFigures::of(&hour),
                }
            })
            .collect::<Vec<_>>();
        (sources, destinations)
    });
    if let Some(schedules) = &admin.schedules {
        for destination in &mut destinations {
            if admin
                .destination(&destination.name)
                .is_some_and(DestinationInfo::delivered_by_porter)
            {
                destination.paused = is_paused(schedules, &destination.name)
                    .await
                    .unwrap_or(false);
            }
        }
    }
    let ready = admin.gateway.store.ready().await;
    Overview {
        now: activity.now(),
        started_at: admin.started,
        version: env!("CARGO_PKG_VERSION"),
        store: StoreHealth {
            kind: admin.gateway.store.kind(),
            ready: ready.is_ok(),
            error: ready.err().map(|e| e.to_string()),
            intake_open: admin.gateway.intake_open(),
        },
        sources,
        destinations,
        streams: admin.gateway.stream_statuses(),
        records_dropped: activity.dropped(),
    }
}

pub(super) async fn is_paused(
    schedules: &Schedules,
    destination: &str,
) -> Result<bool, StoreError> {
    schedules.is_paused(destination).await
}

pub(super) async fn set_paused(
    schedules: &Schedules,
    destination: &str,
    paused: bool,
) -> Result<(), StoreError> {
    schedules.set_paused(destination, paused).await
}

/// One point of the charts: ten seconds, or five minutes in a window longer than an hour.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = StatsPoint)]
pub(super) struct Point {
    pub time: Timestamp,
    /// Requests per second, by outcome (outcomes with none left out).
    pub requests_per_second: BTreeMap<&'static str, f64>,
    pub rejections: BTreeMap<&'static str, u64>,
    pub ingest_p99_ms: Option<f64>,
    /// Events waiting per destination: the last sample in this point's time, where one fell.
    pub delivery_lag: BTreeMap<String, u64>,
}

/// A destination's backlog over the window.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub(super) struct LagFigures {
    /// The newest sample.
    pub latest: u64,
    /// The largest sample.
    pub peak: u64,
}

/// The window's figures, summed over all of it (what a chart shows beside its picture).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(super) struct StatsTotals {
    /// Requests received.
    pub requests: u64,
    /// Requests by outcome (outcomes with none left out).
    pub outcomes: BTreeMap<&'static str, u64>,
    /// Requests refused: every outcome but `accepted`, `duplicate` and `handshake`.
    pub refused: u64,
    /// Rejections by reason.
    pub rejections: BTreeMap<&'static str, u64>,
    /// The highest point's requests per second.
    pub peak_requests_per_second: f64,
    /// Ingest latency over the whole window.
    pub ingest_p50_ms: Option<f64>,
    pub ingest_p99_ms: Option<f64>,
    /// Per destination sampled in the window.
    pub delivery_lag: BTreeMap<String, LagFigures>,
}

/// The charts' time series.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(super) struct Stats {
    /// Seconds per point: 10 in a window of up to an hour, 300 beyond.
    pub bucket_seconds: i64,
    /// The window the points cover.
    pub window_seconds: i64,
    /// The source the figures are limited to, if any.
    pub source: Option<String>,
    /// Oldest first.
    pub points: Vec<Point>,
    /// The whole window's figures.
    pub totals: StatsTotals,
}

/// Outcomes that are not refusals.
const NOT_REFUSED: [&str; 3] = ["accepted", "duplicate", "handshake"];

/// The series of the last `window_seconds` (at most a day), oldest point first: 10-second
/// points up to an hour, 5-minute points beyond.
pub(super) fn stats(admin: &Admin, window_seconds: i64, source: Option<&str>) -> Stats {
    let activity = &admin.gateway.activity;
    let resolution = if window_seconds <= ONE_HOUR {
        Resolution::Fine
    } else {
        Resolution::Coarse
    };
    let seconds = resolution.seconds();
    let now_bucket = resolution.bucket_of(activity.now().as_second());
    let count = (window_seconds / seconds).clamp(1, resolution.buckets() as i64);
    let first = now_bucket - count + 1;
    // An unknown source has no requests: an index past every source.
    let index = source.map(|name| activity.source_index(name).unwrap_or(u32::MAX));
    activity.with_series(|series| {
        let points: Vec<Point> = (first..=now_bucket)
            .map(|number| {
                let bucket = series.sources_sum_at(resolution, index, number, number);
                let requests_per_second = OUTCOMES
                    .iter()
                    .zip(bucket.outcomes)
                    .filter(|(_, n)| *n > 0)
                    .map(|(label, n)| (*label, n as f64 / seconds as f64))
                    .collect();
                let delivery_lag = admin
                    .destinations
                    .iter()
                    .filter_map(|d| {
                        let lag = series
                            .destination_sum_at(resolution, &d.name, number, number)
                            .lag?;
                        Some((d.name.clone(), lag))
                    })
                    .collect();
                Point {
                    time: Timestamp::from_second(number * seconds).unwrap_or(Timestamp::UNIX_EPOCH),
                    requests_per_second,
                    rejections: bucket.reasons.clone(),
                    ingest_p99_ms: bucket.latency.quantile_ms(0.99),
                    delivery_lag,
                }
            })
            .collect();
        let whole = series.sources_sum_at(resolution, index, first, now_bucket);
        let outcomes: BTreeMap<&'static str, u64> = OUTCOMES
            .iter()
            .zip(whole.outcomes)
            .filter(|(_, n)| *n > 0)
            .map(|(label, n)| (*label, n))
            .collect();
        let refused = outcomes
            .iter()
            .filter(|(label, _)| !NOT_REFUSED.contains(label))
            .map(|(_, n)| n)
            .sum();
        let delivery_lag = admin
            .destinations
            .iter()
            .filter_map(|d| {
                let sum = series.destination_sum_at(resolution, &d.name, first, now_bucket);
                Some((
                    d.name.clone(),
                    LagFigures {
                        latest: sum.lag?,
                        peak: sum.lag_peak?,
                    },
                ))
            })
            .collect();
        let totals = StatsTotals {
            requests: whole.requests(),
            outcomes,
            refused,
            rejections: whole.reasons.clone(),
            peak_requests_per_second: points
                .iter()
                .map(|p| p.requests_per_second.values().sum::<f64>())
                .fold(0.0, f64::max),
            ingest_p50_ms: whole.latency.quantile_ms(0.5),
            ingest_p99_ms: whole.latency.quantile_ms(0.99),
            delivery_lag,
        };
        Stats {
            bucket_seconds: seconds,
            window_seconds: count * seconds,
            source: source.map(str::to_owned),
            points,
            totals,
        }
    })
}

/// Where an event stands with one destination.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(super) struct Delivery {
    pub destination: String,
    pub kind: &'static str,
    /// `delivered`, `scheduled`, `dead_lettered`, `waiting` (stored, not taken in yet),
    /// `filtered_out` (the destination does not want it) or `read_by_consumers` (a
    /// `redis_stream` group, which porter does not deliver to).
    pub state: &'static str,
    pub next_attempt_at: Option<Timestamp>,
    pub attempts: Vec<Attempt>,
}

/// An event's deliveries, per destination.
pub(super) async fn deliveries(
    admin: &Admin,
    event: &StoredEvent,
) -> Result<Vec<Delivery>, StoreError> {
    let mut deliveries = Vec::new();
    for destination in &admin.destinations {
        let wanted = destination
            .filter
            .wants(&event.event_type, &event.source, &event.json);
        let mut delivery = Delivery {
            destination: destination.name.clone(),
            kind: destination.kind,
            state: "waiting",
            next_attempt_at: None,
            attempts: Vec::new(),
        };
        if !destination.delivered_by_porter() {
            delivery.state = if wanted {
                "read_by_consumers"
            } else {
                "filtered_out"
            };
        } else if !wanted {
            delivery.state = "filtered_out";
        } else if let Some(schedules) = &admin.schedules
            && let Some((state, attempts)) = schedules.state_of(&destination.name, event).await?
        {
            delivery.attempts = attempts;
            delivery.state = match state {
                JobState::Delivered => "delivered",
                JobState::DeadLettered => "dead_lettered",
                JobState::Scheduled { due_ms } => {
                    delivery.next_attempt_at = Timestamp::from_millisecond(due_ms).ok();
                    "scheduled"
                }
            };
        }
        deliveries.push(delivery);
    }
    Ok(deliveries)
}
