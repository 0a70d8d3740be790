//! The OHIP Streaming connector: a source porter connects out to, rather than one that calls.
//!
//! OPERA Cloud's business events come from a GraphQL subscription over WebSocket. For each
//! `oracle_ohip_stream` source, one task ([`Connector`]) holds the stream: it fetches a token
//! ([`token`]), opens a connection ([`session`]), stores every event through the same atomic
//! dedupe-and-enqueue as a webhook, saves the stream offset in the store only once the event
//! at it is stored, and on any end of the connection decides what comes next ([`policy`]):
//! reconnect with backoff, wait out a 4409 lockout, or stop and say why.
//!
//! Guarantees: OHIP delivers at least once and replays from an offset inclusively; porter
//! subscribes from the last stored offset, so after a crash at most the events after it come
//! again, and their `uniqueEventId` keys make them duplicates: exactly once into the store.
//! Between two connection attempts there are at least `reconnect_delay` (≥ 5 s, Oracle's
//! minimum after a `complete`).
//!
//! What the pure parts (normalization, the query, the key hash) are lives in
//! `porter_providers::oracle_ohip_stream`.

pub(crate) mod policy;
pub(crate) mod session;
pub(crate) mod token;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::config::OhipStreamConfig;
use crate::store::Store;
use policy::{Ended, Next};
use session::Session;

/// What a connector is doing, for `/readyz`, the console and `porter ohip status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[schema(as = StreamState)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum State {
    Connecting,
    Streaming,
    Completing,
    /// Waiting before the next attempt.
    Waiting {
        until: Timestamp,
        after: String,
    },
    /// A configuration or permission problem: no more attempts until porter restarts.
    Stopped {
        /// The close code (`4403`), HTTP status (`http_400`) or token answer (`token_401`).
        code: String,
        reason: String,
    },
}

impl State {
    /// One line for `/readyz` and the console.
    pub fn label(&self) -> String {
        match self {
            State::Connecting => "connecting".to_owned(),
            State::Streaming => "streaming".to_owned(),
            State::Completing => "completing".to_owned(),
            State::Waiting { until, after } => format!("waiting until {until} (after {after})"),
            State::Stopped { code, reason } => format!("stopped ({code}): {reason}"),
        }
    }
}

/// A connector's status.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = StreamStatus)]
pub struct Status {
    pub source: String,
    #[serde(flatten)]
    pub state: State,
    pub connected: bool,
    /// The offset of the last event stored.
    pub offset: Option<String>,
    pub last_event_at: Option<Timestamp>,
    pub events: u64,
    /// This instance's id while it holds the stream's lease.
    pub holder: Option<String>,
    /// The last gap seen: a resume from offset A whose first event was past A, so A itself
    /// (and maybe more) had left OHIP's 7-day retention: `A..B`.
    pub gap: Option<String>,
    /// The offset the current subscription resumed from, until its first event.
    #[serde(skip)]
    resumed_from: Option<String>,
    /// Connections ended, by close code (`1006`, `4409`, `http_400`, `rotated`…).
    pub disconnects: BTreeMap<String, u64>,
    /// What ended the last connection (or attempt), in one line.
    pub last_error: Option<String>,
}

/// A connector's status, shared with whoever reads it.
#[derive(Debug)]
pub struct Shared {
    status: Mutex<Status>,
    /// Whether the current connection got as far as a subscription (then its end is not a
    /// failure in a row).
    subscribed: std::sync::atomic::AtomicBool,
}

impl Status {
    /// A status in `state`, nothing stored yet (tests of what reads statuses).
    #[cfg(test)]
    pub(crate) fn in_state(source: &str, state: State) -> Self {
        let mut status = Shared::new(source).status();
        status.state = state;
        status
    }
}

impl Shared {
    fn new(source: &str) -> Self {
        Self {
            subscribed: std::sync::atomic::AtomicBool::new(false),
            status: Mutex::new(Status {
                source: source.to_owned(),
                state: State::Connecting,
                connected: false,
                offset: None,
                last_event_at: None,
                events: 0,
                holder: None,
                gap: None,
                resumed_from: None,
                disconnects: BTreeMap::new(),
                last_error: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn status(&self) -> Status {
        self.lock().clone()
    }

    fn set_state(&self, state: State) {
        if state == State::Streaming {
            self.subscribed
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let mut status = self.lock();
        status.connected = matches!(state, State::Streaming | State::Completing);
        metrics::gauge!("porter_ohip_connected", "source" => status.source.clone())
            .set(if status.connected { 1.0 } else { 0.0 });
        status.state = state;
    }

    /// Notes the offset a subscription resumes from (inclusively: the first event should be
    /// at it).
    fn resuming(&self, offset: Option<&str>) {
        self.lock().resumed_from = offset.map(str::to_owned);
    }

    fn event(&self, offset: &str, at: Timestamp, new: bool) {
        let mut status = self.lock();
        if let Some(from) = status.resumed_from.take()
            && porter_providers::oracle_ohip_stream::offset_cmp(offset, &from).is_gt()
        {
            tracing::error!(
                source = %status.source,
                resumed_from = %from,
                first_event = %offset,
                "OHIP resumed past the stored offset: events from it up to the first one received                  left OHIP's retention and are lost; resync the state through OHIP's REST APIs"
            );
            metrics::counter!("porter_ohip_gaps_total", "source" => status.source.clone())
                .increment(1);
            status.gap = Some(format!("{from}..{offset}"));
        }
        status.offset = Some(offset.to_owned());
        status.last_event_at = Some(at);
        if new {
            status.events += 1;
            metrics::counter!("porter_ohip_events_total", "source" => status.source.clone())
                .increment(1);
        }
        if let Ok(number) = offset.parse::<f64>() {
            metrics::gauge!("porter_ohip_offset", "source" => status.source.clone()).set(number);
        }
    }

    fn holding(&self, holder: Option<&str>) {
        self.lock().holder = holder.map(str::to_owned);
    }

    fn ended(&self, ended: &Ended) {
        let mut status = self.lock();
        let code = ended.code();
        metrics::counter!("porter_ohip_disconnects_total", "source" => status.source.clone(), "code" => code.clone())
            .increment(1);
        *status.disconnects.entry(code).or_default() += 1;
        status.last_error = Some(ended.describe());
    }
}

/// The running connectors of a porter process.
#[derive(Debug, Default)]
pub struct Connectors {
    running: Vec<(Arc<Shared>, JoinHandle<()>)>,
    stop: Option<watch::Sender<bool>>,
}

impl Connectors {
    /// Starts one connector per stream source, storing into `store` with `clock`'s time.
    pub fn start(streams: &[OhipStreamConfig], store: &Store, clock: &Clock) -> Self {
        if streams.is_empty() {
            return Self::default();
        }
        let (stop, stopped) = watch::channel(false);
        // This process's id in the streams' leases.
        let mut id = [0u8; 8];
        getrandom::fill(&mut id).expect("the system's random source");
        let holder = format!("{}-{}", std::process::id(), hex::encode(id));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client with rustls");
        let running: Vec<(Arc<Shared>, JoinHandle<()>)> = streams
            .iter()
            .map(|config| {
                let shared = Arc::new(Shared::new(&config.name));
                let connector = Connector {
                    config: config.clone(),
                    store: store.clone(),
                    clock: clock.clone(),
                    holder: holder.clone(),
                    shared: Arc::clone(&shared),
                    http: http.clone(),
                };
                let task = tokio::spawn(connector.run(stopped.clone()));
                (shared, task)
            })
            .collect();
        Self {
            running,
            stop: Some(stop),
        }
    }

    /// Each connector's shared status, for whoever shows it (the gateway's `/readyz`, the
    /// console).
    pub fn shared(&self) -> Vec<Arc<Shared>> {
        self.running
            .iter()
            .map(|(shared, _)| Arc::clone(shared))
            .collect()
    }

    /// Every connector's status.
    pub fn statuses(&self) -> Vec<Status> {
        self.running.iter().map(|(s, _)| s.status()).collect()
    }

    /// Completes every stream (storing what is in flight) and waits for the connectors.
    pub async fn stop(self) {
        if let Some(stop) = self.stop {
            let _ = stop.send(true);
        }
        for (_, task) in self.running {
            let _ = task.await;
        }
    }
}

/// One stream source's connector.
struct Connector {
    config: OhipStreamConfig,
    store: Store,
    clock: Clock,
    /// This process's id in the stream's lease.
    holder: String,
    shared: Arc<Shared>,
    http: reqwest::Client,
}

impl Connector {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let name = self.config.name.clone();
        let mut token: Option<token::Token> = None;
        let mut failures = 0u32;
        let lease_key = self.config.lease_key();
        loop {
            if *shutdown.borrow() {
                return;
            }
            if !self.standby(&lease_key, &mut shutdown).await {
                return;
            }
            self.shared.set_state(State::Connecting);
            let ended = match self.token(&mut token).await {
                Err(ended) => ended,
                Ok(current) => {
                    let session = Session {
                        config: &self.config,
                        store: &self.store,
                        clock: &self.clock,
                        shared: &self.shared,
                        lease: (&lease_key, &self.holder),
                    };
                    session.run(&current, &mut shutdown).await
                }
            };
            self.shared.ended(&ended);
            self.publish().await;
            // A connection that subscribed was not a failed attempt; one that ended before is.
            let subscribed = self
                .shared
                .subscribed
                .swap(false, std::sync::atomic::Ordering::Relaxed);
            failures = if subscribed || matches!(ended, Ended::Rotated) {
                0
            } else {
                failures.saturating_add(1)
            };
            if matches!(ended, Ended::Shutdown) {
                let _ = self
                    .store
                    .release_ohip_lease(&lease_key, &self.holder)
                    .await;
                self.shared.holding(None);
                return;
            }
            let next = policy::next(
                &ended,
                failures.saturating_sub(1),
                self.config.reconnect_delay,
            );
            let wait = match next {
                Next::Stop(reason) => {
                    if !matches!(ended, Ended::Shutdown) {
                        tracing::error!(source = %name, code = %ended.code(), %reason, "OHIP stream stopped");
                        self.shared.set_state(State::Stopped {
                            code: ended.code(),
                            reason,
                        });
                        // What `porter ohip status` reads: stopped, not the connecting before.
                        self.publish().await;
                    }
                    return;
                }
                Next::Lockout => {
                    tracing::warn!(source = %name, lockout_s = self.config.lockout.as_secs(), "OHIP says another consumer holds the stream (4409): waiting the lockout");
                    self.config.lockout + jitter(self.config.lockout / 4)
                }
                Next::Reconnect { after, fresh_token } => {
                    if fresh_token {
                        token = None;
                    }
                    tracing::info!(source = %name, code = %ended.code(), detail = ?ended, "OHIP connection ended; reconnecting");
                    after.max(self.config.reconnect_delay) + jitter(self.config.reconnect_delay / 4)
                }
            };
            let until = self.clock.now() + wait;
            self.shared.set_state(State::Waiting {
                until,
                after: ended.code(),
            });
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stopped(&mut shutdown) => return,
            }
        }
    }

    /// Publishes the status in the store for `porter ohip status` (best effort).
    async fn publish(&self) {
        publish(&self.store, &self.shared).await;
    }

    /// Waits until this instance holds the stream's lease (at once on a memory store);
    /// `false` when porter is shutting down first.
    async fn standby(&self, key: &str, shutdown: &mut watch::Receiver<bool>) -> bool {
        let mut said = false;
        loop {
            match self
                .store
                .ohip_lease(key, &self.holder, self.config.lease)
                .await
            {
                Ok(true) => {
                    self.shared.holding(Some(&self.holder));
                    self.publish().await;
                    return true;
                }
                Ok(false) if !said => {
                    tracing::info!(source = %self.config.name, "another instance holds the OHIP stream; standing by");
                    said = true;
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(source = %self.config.name, %error, "cannot take the OHIP stream's lease")
                }
            }
            self.shared.holding(None);
            let wait = self.config.lease / 3;
            self.shared.set_state(State::Waiting {
                until: self.clock.now() + wait,
                after: "standby".to_owned(),
            });
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stopped(shutdown) => return false,
            }
        }
    }

    /// The cached token unless it is due, else a new one.
    async fn token(&self, cached: &mut Option<token::Token>) -> Result<token::Token, Ended> {
        if let Some(current) = cached.as_ref()
            && current.rotate_at > std::time::Instant::now() + Duration::from_secs(60)
        {
            return Ok(current.clone());
        }
        match token::fetch(&self.http, &self.config).await {
            Ok(fresh) => {
                *cached = Some(fresh.clone());
                Ok(fresh)
            }
            Err(token::TokenError::Refused(status)) => Err(Ended::TokenRefused { status }),
            Err(token::TokenError::Unavailable(detail)) => Err(Ended::Unreachable(detail)),
        }
    }
}

/// Publishes `shared`'s status in `store` (best effort: a status is not worth failing for).
async fn publish(store: &crate::store::Store, shared: &Shared) {
    let status = shared.status();
    if let Ok(json) = serde_json::to_string(&status) {
        let _ = store.save_ohip_status(&status.source, &json).await;
    }
}

/// Resolves once porter is shutting down.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// A random wait in `[0, up_to)`, so that instances do not reconnect in step.
fn jitter(up_to: Duration) -> Duration {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() || up_to.is_zero() {
        return Duration::ZERO;
    }
    let fraction = u64::from_le_bytes(bytes) as f64 / u64::MAX as f64;
    up_to.mul_f64(fraction)
}
