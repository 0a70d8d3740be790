//! The gateway: what every request on a source route shares (the sources and their routes,
//! the store, the limits, the clock, this instance's activity, the OHIP streams' statuses, the
//! raw archive's writer). Built once by the composition root ([`crate::app`]) and handed to
//! the pipeline, the server and the admin listener; it reaches up to none of them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::activity::{Activity, SourceInfo};
use crate::admission::Admission;
use crate::clock::Clock;
use crate::config::{Config, DEFAULT_DIAGNOSIS_SHARE, DEFAULT_RECENT_REQUESTS, SourceConfig};
use crate::connections::{BodyBudget, ConnectionLimits};
use crate::routes::RouteTable;
use crate::store::Store;

/// Per-request and per-connection limits.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    /// See [`crate::config::ServerConfig::drain_delay`].
    pub drain_delay: Duration,
    pub connections: ConnectionLimits,
    /// The bytes of request bodies being read, in all and per peer.
    pub body_budget: Arc<BodyBudget>,
}

/// Everything a request needs, shared by all requests.
#[derive(Debug)]
pub struct Gateway {
    pub sources: Vec<SourceConfig>,
    /// Each source's share (`max_in_flight`, `rate`), by the same index as `sources`.
    pub admissions: Vec<Admission>,
    pub routes: RouteTable,
    pub store: Store,
    pub limits: Limits,
    pub clock: Clock,
    /// Whether events may be stored. Closed until every destination's consumer group exists:
    /// a group created after an event was stored would never deliver that event.
    pub intake: Arc<AtomicBool>,
    /// What this instance did: recent requests and time series for the admin listener.
    pub activity: Arc<Activity>,
    /// The OHIP stream connectors' statuses, once they run (`/readyz`, the console).
    pub streams: std::sync::OnceLock<Vec<Arc<crate::ohip::Shared>>>,
    /// The raw archive, when `[archive]` is on.
    pub archive: Option<crate::archive::Archiver>,
    /// Set at SIGTERM or SIGINT while `drain_delay` runs: `/readyz` answers 503 so that load
    /// balancers stop sending, and HTTP/1.1 answers close their connections so that clients
    /// reconnect elsewhere.
    pub draining: AtomicBool,
}

impl Gateway {
    /// Every OHIP stream connector's status (none before they start).
    pub fn stream_statuses(&self) -> Vec<crate::ohip::Status> {
        self.streams
            .get()
            .map(|streams| streams.iter().map(|s| s.status()).collect())
            .unwrap_or_default()
    }
}

impl Gateway {
    /// Builds a gateway around a given store and clock (tests inspect the store).
    pub fn with_store(config: Config, store: Store, clock: Clock) -> Self {
        let routes = crate::config::route_table(&config.sources);
        let (recent, share) = config.admin.as_ref().map_or(
            (DEFAULT_RECENT_REQUESTS, DEFAULT_DIAGNOSIS_SHARE),
            |admin| (admin.recent_requests, admin.diagnosis_share),
        );
        let infos = config
            .sources
            .iter()
            .map(|s| SourceInfo {
                name: s.source.name().to_owned(),
                provider: s.source.provider().id(),
                path: s.path.clone(),
            })
            .collect();
        let activity = Arc::new(Activity::new(infos, recent, share, clock.clone()));
        let archive = config
            .archive
            .map(|archive| crate::archive::Archiver::new(archive, &config.sources));
        let admissions = config
            .sources
            .iter()
            .map(|s| Admission::new(s.share))
            .collect();
        Self {
            sources: config.sources,
            admissions,
            routes,
            store,
            limits: Limits {
                max_body_bytes: config.server.max_body_bytes,
                request_timeout: config.server.request_timeout,
                drain_delay: config.server.drain_delay,
                connections: config.server.connections,
                body_budget: BodyBudget::new(
                    config.server.max_buffered_bytes,
                    config.server.max_buffered_bytes_per_peer,
                ),
            },
            clock,
            intake: Arc::new(AtomicBool::new(true)),
            activity,
            streams: std::sync::OnceLock::new(),
            archive,
            draining: AtomicBool::new(false),
        }
    }

    /// Whether porter is draining before it stops (see [`Gateway::draining`]).
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Whether events may be stored now.
    pub fn intake_open(&self) -> bool {
        self.intake.load(Ordering::Acquire)
    }

    /// Whether this instance takes events: what `/readyz` answers and `store_unready` alerts
    /// watch.
    pub async fn readiness(&self) -> Result<(), NotReady> {
        if self.is_draining() {
            Err(NotReady::Draining)
        } else if !self.intake_open() {
            Err(NotReady::PreparingDelivery)
        } else {
            self.store.ready().await.map_err(NotReady::Store)
        }
    }
}

/// Why an instance does not take events.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    /// Stopping: the drain delay runs.
    #[error("draining")]
    Draining,
    /// Delivery groups are being created; nothing is stored until they exist.
    #[error("preparing delivery")]
    PreparingDelivery,
    #[error("store unavailable: {0}")]
    Store(#[source] crate::store::StoreError),
}
