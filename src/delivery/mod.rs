//! Delivery: carrying stored events to the internal services that want them.
//!
//! Delivery never sits on the ingress path: a provider is answered once its events are stored,
//! and delivery reads the store afterwards. Per destination, a worker
//!
//! 1. takes new events from the store (on Redis through a consumer group named after the
//!    destination, so several porter instances share the work) and puts the ones the
//!    destination wants into its **schedule**, all due now;
//! 2. **leases** due entries (moves their due time to now + lease, so that if this instance
//!    dies mid-delivery another one delivers them when the lease runs out);
//! 3. **attempts** each: a signed POST for `http` destinations, a call for in-process handlers;
//! 4. on success removes it from the schedule; on failure records the attempt and schedules the
//!    next one after the destination's retry delay (with jitter; a `Retry-After` of a 429 or
//!    503 is honoured when longer); after the last delay it moves the event, with every
//!    attempt's status and reason, to the dead-letter stream.
//!
//! The schedules themselves belong to the store (`store::schedule`): the workers here run on
//! the [`Schedule`](crate::store::Schedule) trait, whichever store keeps the events.
//!
//! **Architecture Invariant:** an event leaves a destination's schedule only delivered or
//! dead-lettered. Everything else (a crash, a timeout, a store error) leaves it scheduled, so
//! delivery is at least once; a redelivery carries the same `webhook-id` (the event id), for
//! the receiver to deduplicate.

#[cfg(feature = "amqp")]
pub(crate) mod amqp;
#[cfg(any(feature = "nats", feature = "amqp"))]
mod cloudevent;
pub(crate) mod handler;
pub(crate) mod http;
#[cfg(feature = "nats")]
pub(crate) mod nats;
pub(crate) mod rate;
pub(crate) mod worker;

use std::sync::Arc;
use std::time::Duration;

pub use handler::{Handler, HandlerError};
pub use worker::Deliveries;

use crate::config::{Config, DEFAULT_RETRY, DestinationKind};
pub(crate) use crate::store::Schedules;
use crate::store::Store;
use crate::store::redis::layout::fnv1a;
use crate::vocab::Filter;

/// What a destination answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Delivered {
        status: Option<u16>,
    },
    /// Try again; `retry_after` is the destination's own wish (a 429 or 503 `Retry-After`).
    Failed {
        status: Option<u16>,
        reason: String,
        retry_after: Option<Duration>,
    },
}

/// The wait before attempt `failures + 1`, or `None` when the schedule is spent.
///
/// The destination's delay for this step, spread by ±20 % so that a thousand events that failed
/// together are not retried together; the spread is derived from the entry, so it is the same
/// on every instance. A `Retry-After` longer than that wins.
pub(crate) fn next_delay(
    schedule: &[Duration],
    failures: usize,
    entry: &str,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    let base = *schedule.get(failures.checked_sub(1)?)?;
    let spread = jitter(entry, failures);
    let delay = base.mul_f64(spread);
    Some(retry_after.map_or(delay, |wish| wish.max(delay)))
}

/// A factor in [0.8, 1.2) from FNV-1a of the entry and attempt number.
fn jitter(entry: &str, failures: usize) -> f64 {
    let mut bytes = entry.as_bytes().to_vec();
    bytes.extend_from_slice(&failures.to_le_bytes());
    0.8 + (fnv1a(&bytes) % 10_000) as f64 / 25_000.0
}

/// The lease on a job being attempted: long enough for the attempt to finish, after which
/// another instance may take the job over.
pub(crate) fn lease_for(timeout: Duration) -> Duration {
    timeout * 2 + Duration::from_secs(1)
}

/// What a worker needs to know about its destination.
#[derive(Clone)]
pub struct Route {
    pub name: String,
    pub filter: Filter,
    pub target: Target,
    pub retry: Vec<Duration>,
    pub concurrency: usize,
    pub ordered: bool,
    pub lease: Duration,
    /// At most this many attempts per second.
    pub rate: Option<f64>,
    /// Personal values hashed or removed before sending (`pii`); `None` sends events as stored.
    pub redaction: Option<crate::privacy::Redaction>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Where a destination's events go.
#[derive(Clone)]
pub enum Target {
    Http(Arc<http::HttpSender>),
    #[cfg(feature = "nats")]
    Nats(Arc<nats::NatsSender>),
    #[cfg(feature = "amqp")]
    Amqp(Arc<amqp::AmqpSender>),
    Handler(Arc<dyn Handler>),
}

impl Target {
    /// The destination's `kind`, as configured (`handler` for an in-process handler).
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Http(_) => "http",
            #[cfg(feature = "nats")]
            Target::Nats(_) => "nats",
            #[cfg(feature = "amqp")]
            Target::Amqp(_) => "amqp",
            Target::Handler(_) => "handler",
        }
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Http(sender) => sender.fmt(f),
            #[cfg(feature = "nats")]
            Target::Nats(sender) => sender.fmt(f),
            #[cfg(feature = "amqp")]
            Target::Amqp(sender) => sender.fmt(f),
            Target::Handler(_) => f.write_str("Handler"),
        }
    }
}

/// Every destination delivery serves: the configuration's, and in-process handlers.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Destinations porter delivers to itself (HTTP, handlers), one worker each.
    pub routes: Vec<Route>,
    /// Consumer groups of `redis_stream` destinations, which services read themselves.
    pub stream_groups: Vec<String>,
}

/// Why a configuration's destinations cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The HTTP client of a destination could not be built (its TLS setup, most likely).
    #[error("destination `{destination}`: {source}")]
    Client {
        destination: String,
        #[source]
        source: reqwest::Error,
    },
    /// A destination of a kind this build left out (refused when the configuration is read;
    /// this guards a configuration built by hand).
    #[error("destination `{0}`: this porter was built without its kind's feature")]
    NotBuiltIn(String),
}

impl Plan {
    /// The destinations of a configuration.
    pub fn of(config: &Config) -> Result<Self, PlanError> {
        let mut plan = Self::default();
        for destination in &config.destinations {
            let delivery = &destination.delivery;
            let target = match &destination.kind {
                DestinationKind::Http(http) => Target::Http(Arc::new(
                    http::HttpSender::new(http, delivery).map_err(|source| PlanError::Client {
                        destination: destination.name.clone(),
                        source,
                    })?,
                )),
                #[cfg(feature = "nats")]
                DestinationKind::Nats(nats) => Target::Nats(Arc::new(nats::NatsSender::new(
                    &destination.name,
                    nats,
                    delivery,
                ))),
                #[cfg(feature = "amqp")]
                DestinationKind::Amqp(amqp) => {
                    Target::Amqp(Arc::new(amqp::AmqpSender::new(amqp, delivery)))
                }
                // Refused when the configuration was read; a guard for a hand-built one.
                #[cfg(not(all(feature = "nats", feature = "amqp")))]
                #[allow(unreachable_patterns)]
                DestinationKind::Nats(_) | DestinationKind::Amqp(_) => {
                    return Err(PlanError::NotBuiltIn(destination.name.clone()));
                }
                DestinationKind::RedisStream => {
                    plan.stream_groups.push(destination.name.clone());
                    continue;
                }
            };
            plan.routes.push(Route {
                name: destination.name.clone(),
                filter: destination.filter.clone(),
                target,
                retry: delivery.retry.clone(),
                concurrency: delivery.concurrency,
                ordered: delivery.ordered,
                lease: lease_for(delivery.timeout),
                rate: delivery.rate,
                redaction: crate::privacy::Redaction::new(
                    delivery.pii,
                    config.privacy.as_ref().map(|p| p.key.as_slice()),
                ),
            });
        }
        Ok(plan)
    }

    /// Adds an in-process handler as a destination.
    pub fn handler(
        &mut self,
        name: &str,
        filter: Filter,
        handler: Arc<dyn Handler>,
        retry: Vec<Duration>,
        concurrency: usize,
    ) {
        self.routes.push(Route {
            name: name.to_owned(),
            filter,
            target: Target::Handler(handler),
            retry,
            concurrency: concurrency.max(1),
            ordered: false,
            lease: Duration::from_secs(60),
            rate: None,
            redaction: None,
        });
    }

    /// An in-process handler on the default retry schedule, one event at a time.
    pub fn default_retry() -> Vec<Duration> {
        DEFAULT_RETRY.to_vec()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty() && self.stream_groups.is_empty()
    }

    /// Every consumer group the plan needs (on Redis): one per destination.
    pub fn group_names(&self) -> Vec<String> {
        self.routes
            .iter()
            .map(|r| r.name.clone())
            .chain(self.stream_groups.iter().cloned())
            .collect()
    }

    /// What the memory store schedules for: every route's name and filter.
    pub fn memory_destinations(&self) -> Vec<(String, Filter)> {
        self.routes
            .iter()
            .map(|r| (r.name.clone(), r.filter.clone()))
            .collect()
    }
}

/// `host:port` of a URL, for failure reasons: the URL itself may carry credentials, or a token
/// in its query, and is never logged.
pub(crate) fn address_of(url: &str) -> String {
    let Ok(url) = reqwest::Url::parse(url) else {
        return String::from("?");
    };
    let port = url.port_or_known_default().or(match url.scheme() {
        "nats" | "tls" => Some(4222),
        "amqp" => Some(5672),
        "amqps" => Some(5671),
        _ => None,
    });
    match (url.host_str(), port) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        _ => String::from("?"),
    }
}

/// The delivery schedules of a store: its memory schedules, or Redis shared by every instance.
pub fn schedules_for(store: &Store) -> Option<Schedules> {
    store.schedules()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_follow_the_schedule_with_bounded_jitter() {
        let schedule = [Duration::from_secs(10), Duration::from_secs(100)];
        assert_eq!(
            next_delay(&schedule, 0, "e", None),
            None,
            "no failure yet, no delay"
        );
        let first = next_delay(&schedule, 1, "1-0", None).expect("delay");
        assert!(
            first >= Duration::from_secs(8) && first < Duration::from_secs(12),
            "{first:?}"
        );
        let second = next_delay(&schedule, 2, "1-0", None).expect("delay");
        assert!(
            second >= Duration::from_secs(80) && second < Duration::from_secs(120),
            "{second:?}"
        );
        assert_eq!(
            next_delay(&schedule, 3, "1-0", None),
            None,
            "spent: dead-letter"
        );
        assert_eq!(
            next_delay(&schedule, 1, "1-0", None),
            next_delay(&schedule, 1, "1-0", None),
            "same on every instance"
        );
        let spread: std::collections::HashSet<_> = (0..50)
            .map(|i| next_delay(&schedule, 1, &format!("{i}-0"), None))
            .collect();
        assert!(spread.len() > 40, "entries are spread");
    }

    #[test]
    fn a_longer_retry_after_wins() {
        let schedule = [Duration::from_secs(1)];
        assert_eq!(
            next_delay(&schedule, 1, "e", Some(Duration::from_secs(30))),
            Some(Duration::from_secs(30))
        );
        let short = next_delay(&schedule, 1, "e", Some(Duration::from_millis(1))).expect("delay");
        assert!(short >= Duration::from_millis(800));
    }
}
