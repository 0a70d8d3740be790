//! The composition root: everything `porter serve` runs, assembled in one place.
//!
//! From a configuration (and, for a program embedding porter, its in-process handlers) this
//! derives the delivery [`Plan`] once, builds the store (whose memory schedules follow the
//! plan), the [`Gateway`], and starts the delivery workers on the store's schedules. Both
//! `porter serve` and [`Embedded`](crate::embed::Embedded) serve through [`App`], which also
//! evaluates the `[[alerts]]` rules while it serves.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::admin::{self, Admin};
use crate::alerts::{self, Alerts};
use crate::clock::Clock;
use crate::config::Config;
use crate::config::StoreKind;
use crate::delivery::{self, Deliveries, Plan, PlanError};
use crate::gateway::Gateway;
use crate::server;
use crate::store::{
    LocalSettings, LocalStore, MemorySchedule, MemoryStore, RedisSettings, RedisStore, Store,
    StoreError,
};

/// A gateway and the delivery it needs, ready to serve.
#[derive(Debug)]
pub struct App {
    gateway: Arc<Gateway>,
    plan: Plan,
    /// The admin listener's state and address, when `[admin]` is configured.
    admin: Option<(Arc<Admin>, SocketAddr)>,
    /// The admin listener, when the caller bound it already.
    admin_listener: Option<TcpListener>,
    /// The sources porter connects out to (OHIP Streaming).
    streams: Vec<crate::config::OhipStreamConfig>,
    /// The `[[alerts]]` rules and their `[[notify]]` targets.
    alerts: Arc<Alerts>,
    /// How often the rules are evaluated.
    alert_every: Duration,
}

/// Why porter cannot start serving a configuration.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("cannot set up the store: {0}")]
    Store(#[from] StoreError),
}

impl App {
    /// Builds the gateway and the delivery plan of `config` plus `plan`'s own destinations (in-
    /// process handlers). Must run inside the tokio runtime (the Redis store spawns its
    /// connection task there); it does not wait for Redis, which may come up later.
    pub fn build(config: Config, mut plan: Plan, clock: Clock) -> Result<Self, StartError> {
        let configured = Plan::of(&config)?;
        plan.routes.extend(configured.routes);
        plan.stream_groups.extend(configured.stream_groups);
        let store = store_for(&config, &plan, &clock)?;
        let admin_config = config.admin.clone();
        let streams = config.streams.clone();
        let destinations = Admin::destinations_of(&config, &plan);
        let privacy_key = config.privacy.as_ref().map(|p| p.key.clone());
        let alerts = Arc::new(Alerts::new(
            config.alerts.clone(),
            &config.notify,
            clock.clone(),
            alerts::notify::RETRY_AFTER.to_vec(),
        ));
        let gateway = Arc::new(Gateway::with_store(config, store, clock));
        let admin = admin_config.map(|settings| {
            let admin = Admin::new(Arc::clone(&gateway), &settings, destinations)
                .with_privacy_key(privacy_key.as_deref())
                .with_alerts(Arc::clone(&alerts));
            (Arc::new(admin), settings.listen)
        });
        Ok(Self {
            gateway,
            plan,
            admin,
            admin_listener: None,
            streams,
            alerts,
            alert_every: alerts::EVALUATE_EVERY,
        })
    }

    /// Serves the admin listener on `listener` (bound by the caller) rather than binding
    /// `[admin] listen` itself.
    pub fn with_admin_listener(mut self, listener: TcpListener) -> Self {
        self.admin_listener = Some(listener);
        self
    }

    /// Evaluates the alert rules every `every` (rather than every 5 s), and waits
    /// `retry_after` before each retry of a failed notification: for tests, which move a
    /// manual clock and should not wait seconds for the next evaluation.
    pub fn with_alert_timing(mut self, every: Duration, retry_after: Vec<Duration>) -> Self {
        self.alert_every = every;
        self.alerts.set_retry_after(retry_after);
        self
    }

    /// The alert rules and where each stands.
    pub fn alerts(&self) -> &Arc<Alerts> {
        &self.alerts
    }

    /// The admin side, when `[admin]` is configured.
    pub fn admin(&self) -> Option<&Arc<Admin>> {
        self.admin.as_ref().map(|(admin, _)| admin)
    }

    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    /// Warns about what puts events at risk, starts delivery, serves `listener` until
    /// `shutdown` resolves, then drains requests and deliveries in flight.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        warn_about_durability(&self.gateway.store).await;
        for source in &self.gateway.sources {
            if source.source.allows_unsigned() {
                tracing::warn!(
                    source = source.source.name(),
                    path = %source.path,
                    "INSECURE: this source accepts requests without any secret \
                     (insecure_allow_unsigned = true); anyone who can reach it can inject events"
                );
            }
        }
        for stream in self.streams.iter().filter(|s| s.insecure_http) {
            tracing::warn!(
                source = %stream.name,
                gateway = %stream.gateway_url,
                "INSECURE: this OHIP stream's gateway is plain http (insecure_allow_http = true): \
                 the client secret and the tokens cross the network in clear; for a local test \
                 gateway only"
            );
        }
        let deliveries = self.start_deliveries()?;
        let connectors =
            crate::ohip::Connectors::start(&self.streams, &self.gateway.store, &self.gateway.clock);
        let _ = self.gateway.streams.set(connectors.shared());
        let evaluating = (!self.alerts.is_empty())
            .then(|| Arc::clone(&self.alerts).start(Arc::clone(&self.gateway), self.alert_every));
        // One shutdown for both listeners.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let admin = match self.admin {
            None => {
                tracing::warn!(
                    "no [admin] table: the console, the admin API and /metrics are off \
                     (see the README's \"The console\")"
                );
                None
            }
            Some((admin, address)) => {
                let listener = match self.admin_listener {
                    Some(listener) => listener,
                    None => TcpListener::bind(address).await.map_err(|error| {
                        std::io::Error::new(
                            error.kind(),
                            format!("cannot listen on {address} ([admin] listen): {error}"),
                        )
                    })?,
                };
                let mut stopped = stopped.clone();
                Some(tokio::spawn(admin::serve(listener, admin, async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                })))
            }
        };
        let mut providers_stopped = stopped.clone();
        let providers = tokio::spawn(server::serve(
            listener,
            Arc::clone(&self.gateway),
            async move {
                let _ = providers_stopped.wait_for(|stop| *stop).await;
            },
        ));
        shutdown.await;
        let delay = self.gateway.limits.drain_delay;
        if !delay.is_zero() {
            self.gateway
                .draining
                .store(true, std::sync::atomic::Ordering::Release);
            tracing::info!(
                drain_delay_ms = delay.as_millis() as u64,
                "draining: /readyz answers 503 and answers close their connections; \
                 still serving until the delay ends"
            );
            tokio::time::sleep(delay).await;
        }
        let _ = stop.send(true);
        let served = providers
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        if let Some(admin) = admin {
            match admin.await {
                Ok(Err(error)) => tracing::warn!(%error, "the admin listener failed"),
                Err(error) => tracing::warn!(%error, "the admin listener failed"),
                Ok(Ok(())) => {}
            }
        }
        // Alerts stop before the streams do: a planned stop is not an outage to report.
        if let Some(evaluating) = evaluating {
            evaluating.stop().await;
        }
        // Streams complete first (storing what is in flight), then delivery drains.
        connectors.stop().await;
        if let Some(deliveries) = deliveries {
            deliveries.stop().await;
        }
        served
    }

    /// Starts the delivery workers, when there is anything to deliver.
    pub fn start_deliveries(&self) -> std::io::Result<Option<Deliveries>> {
        if self.plan.is_empty() {
            return Ok(None);
        }
        let schedules = delivery::schedules_for(&self.gateway.store)
            .ok_or_else(|| std::io::Error::other("the store has no delivery schedules"))?;
        for route in &self.plan.routes {
            tracing::info!(destination = %route.name, "delivering");
        }
        Ok(Some(Deliveries::start(
            schedules,
            self.plan.clone(),
            Arc::clone(&self.gateway.intake),
            self.gateway.clock.clone(),
            Arc::clone(&self.gateway.activity),
        )))
    }
}

/// The store a configuration describes; a memory store schedules deliveries for `plan`'s
/// destinations. Redis calls are bounded by the request timeout.
pub fn store_for(config: &Config, plan: &Plan, clock: &Clock) -> Result<Store, StoreError> {
    let archive_max_bytes = config
        .archive
        .map_or(crate::vocab::DEFAULT_ARCHIVE_MAX_BYTES, |a| a.max_bytes);
    Ok(match &config.store.kind {
        StoreKind::Memory {
            print_events,
            capacity,
        } => {
            let store = MemoryStore::new(*print_events, *capacity, clock.clone());
            store.raw_archive().set_max_bytes(archive_max_bytes);
            let destinations = plan.memory_destinations();
            if destinations.is_empty() {
                Store::Memory(Arc::new(store))
            } else {
                let schedule = MemorySchedule::new(&destinations, *capacity);
                Store::Memory(Arc::new(store.with_deliveries(Arc::new(schedule))))
            }
        }
        StoreKind::Local {
            path,
            print_events,
            capacity,
            retain_events,
        } => {
            let destinations = plan.memory_destinations();
            let schedule = (!destinations.is_empty())
                .then(|| Arc::new(MemorySchedule::new(&destinations, *capacity)));
            let settings = LocalSettings {
                print_events: *print_events,
                capacity: *capacity,
                retain_events: *retain_events,
                archive_max_bytes,
                ..LocalSettings::new(path.clone())
            };
            let (store, recovery) = LocalStore::open(&settings, schedule, clock.clone())?;
            tracing::info!(
                path = %path.display(),
                records = recovery.records,
                torn_bytes = recovery.torn_bytes,
                ms = recovery.elapsed.as_millis() as u64,
                "local store opened"
            );
            Store::Local(Arc::new(store))
        }
        StoreKind::Redis {
            target,
            key_prefix,
            max_len,
            shards,
            transactions,
            wait_replicas,
        } => Store::Redis(Arc::new(RedisStore::new(
            &RedisSettings {
                target: target.clone(),
                stream: config.store.stream.clone(),
                key_prefix: key_prefix.clone(),
                max_len: *max_len,
                shards: *shards,
                transactions: *transactions,
                wait_replicas: *wait_replicas,
                timeout: config.server.request_timeout,
                archive_max_bytes,
            },
            clock.clone(),
        )?)),
    })
}

/// Says, at start-up, what the store's persistence means for acknowledged events.
async fn warn_about_durability(store: &Store) {
    match store {
        Store::Memory(_) => tracing::warn!(
            "the memory store keeps events in this process only: they are lost when it exits \
             (use the local or redis store in production)"
        ),
        Store::Local(local) => tracing::info!(
            path = %local.path().display(),
            "events are kept in the local store: each acknowledged only once it is on disk"
        ),
        Store::Redis(redis) => {
            let check = tokio::time::timeout(Duration::from_secs(3), redis.durability_warnings());
            match check.await {
                Ok(Ok(warnings)) => {
                    for warning in warnings {
                        tracing::warn!("{warning}");
                    }
                }
                Ok(Err(error)) => {
                    tracing::warn!(%error, "Redis is not reachable yet; answering 503 until it is")
                }
                Err(_) => {
                    tracing::warn!("Redis did not answer within 3 s; answering 503 until it does")
                }
            }
        }
    }
}
