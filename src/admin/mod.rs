//! The admin listener: the operator's console, the admin API and `/metrics`, behind one token.
//!
//! A listener of its own (CONTRACT §6), so that the providers' side exposes source routes and
//! health only. Everything here reads what the gateway already has: the [`Activity`] of this
//! instance (recent requests, time series) and the store (events, attempts, dead letters).
//! Nothing here is on the ingest path.
//!
//! - `auth.rs`: the bearer token, the metrics-only token, the console's session cookie, the
//!   `Origin` rule; `sessions.rs`: the open sessions (so that they can be ended).
//! - `api.rs`: `/api/*`, JSON (`/api/alerts` lists what [`crate::alerts`] keeps); `erase.rs`
//!   and `reprocess.rs`: the operations of those names.
//! - `openapi.rs`: the one registration of the API's routes, from which the OpenAPI document
//!   (`GET /api/openapi.json`) is generated.
//! - `views.rs`: what the API and the console both show (overview, series, an event's
//!   deliveries), computed once.
//! - `console/`: the HTML pages, rendered on the server (maud escapes every value), with SVG
//!   charts and no script.
//!
//! [`Activity`]: crate::activity::Activity

mod api;
mod auth;
mod console;
mod erase;
mod openapi;
mod reprocess;
mod sessions;
mod views;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::get;
use jiff::Timestamp;
use porter_providers::Secret;
use tokio::net::TcpListener;

use crate::alerts::Alerts;
use crate::config::{AdminConfig, Config, DestinationKind};
use crate::connections::ConnectionLimits;
use crate::delivery::Plan;
use crate::gateway::Gateway;
use crate::server;
use crate::store::Schedules;
use crate::vocab::Filter;

/// Connections the admin listener takes: a few operators and a metrics scraper.
const ADMIN_CONNECTIONS: ConnectionLimits = ConnectionLimits {
    max_connections: 256,
    max_connections_per_peer: 64,
    idle_timeout: std::time::Duration::from_secs(60),
    header_timeout: std::time::Duration::from_secs(10),
    h2_max_streams: 16,
};

/// A destination as the operator sees it.
#[derive(Debug, Clone)]
pub struct DestinationInfo {
    pub name: String,
    /// `http`, `nats`, `amqp`, `redis_stream` or `handler`.
    pub kind: &'static str,
    pub filter: Filter,
    /// Where it goes (the URL without credentials or query).
    pub target: Option<String>,
}

impl DestinationInfo {
    /// Whether porter delivers to it (and so can hold it); a `redis_stream` group is read by
    /// its service.
    pub fn delivered_by_porter(&self) -> bool {
        self.kind != "redis_stream"
    }
}

/// What every admin handler shares.
#[derive(Debug)]
pub struct Admin {
    pub gateway: Arc<Gateway>,
    token: Secret,
    /// `[admin] metrics_token`: `GET /metrics` only.
    metrics_token: Option<Secret>,
    /// The console's open sessions.
    sessions: sessions::Sessions,
    pub destinations: Vec<DestinationInfo>,
    pub schedules: Option<Schedules>,
    pub started: Timestamp,
    /// `[privacy] key`: erasures record the value's keyed hash under it.
    privacy_key: Option<Arc<[u8]>>,
    /// The `[[alerts]]` rules, where each stands, and their history.
    alerts: Option<Arc<Alerts>>,
}

impl Admin {
    /// The admin side of `gateway`.
    pub fn new(
        gateway: Arc<Gateway>,
        admin: &AdminConfig,
        destinations: Vec<DestinationInfo>,
    ) -> Self {
        let schedules = gateway.store.schedules();
        Self {
            started: gateway.clock.now(),
            gateway,
            token: admin.token.clone(),
            metrics_token: admin.metrics_token.clone(),
            sessions: sessions::Sessions::default(),
            destinations,
            schedules,
            privacy_key: None,
            alerts: None,
        }
    }

    /// Lists `alerts` (`GET /api/alerts`, the console's Alerts page).
    pub fn with_alerts(mut self, alerts: Arc<Alerts>) -> Self {
        self.alerts = Some(alerts);
        self
    }

    /// The alert rules, where each stands, the recent history and the targets.
    pub fn alerts(&self) -> crate::alerts::Snapshot {
        self.alerts
            .as_ref()
            .map(|alerts| alerts.snapshot())
            .unwrap_or_else(|| crate::alerts::Snapshot {
                rules: Vec::new(),
                history: Vec::new(),
                targets: Vec::new(),
            })
    }

    /// Erasures (`POST /api/erase`) record values hashed under `key`; without it they are
    /// refused.
    pub fn with_privacy_key(mut self, key: Option<&[u8]>) -> Self {
        self.privacy_key = key.map(Arc::from);
        self
    }

    pub fn privacy_key(&self) -> Option<&[u8]> {
        self.privacy_key.as_deref()
    }

    /// The destinations porter delivers to (whose schedules hold events).
    pub fn delivered_destinations(&self) -> Vec<String> {
        self.destinations
            .iter()
            .filter(|d| d.delivered_by_porter())
            .map(|d| d.name.clone())
            .collect()
    }

    /// The destinations of `config` and `plan` (in-process handlers), as the operator sees
    /// them.
    pub fn destinations_of(config: &Config, plan: &Plan) -> Vec<DestinationInfo> {
        let mut destinations: Vec<DestinationInfo> = config
            .destinations
            .iter()
            .map(|d| DestinationInfo {
                name: d.name.clone(),
                kind: d.kind.name(),
                filter: d.filter.clone(),
                target: match &d.kind {
                    DestinationKind::Http(http) => Some(display_url(&http.url)),
                    DestinationKind::Nats(nats) => Some(display_url(
                        &reqwest::Url::parse(&nats.url).expect("checked when loaded"),
                    )),
                    DestinationKind::Amqp(amqp) => Some(display_url(
                        &reqwest::Url::parse(&amqp.url).expect("checked when loaded"),
                    )),
                    DestinationKind::RedisStream => None,
                },
            })
            .collect();
        for route in &plan.routes {
            if !destinations.iter().any(|d| d.name == route.name) {
                destinations.push(DestinationInfo {
                    name: route.name.clone(),
                    kind: "handler",
                    filter: route.filter.clone(),
                    target: None,
                });
            }
        }
        destinations
    }

    pub fn destination(&self, name: &str) -> Option<&DestinationInfo> {
        self.destinations.iter().find(|d| d.name == name)
    }
}

/// A URL without its credentials, query and fragment.
fn display_url(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// Every route of the admin listener.
pub(crate) fn router(admin: Arc<Admin>) -> Router {
    // The API's routes come with their documentation, from one registration.
    let (api, _) = openapi::routes().split_for_parts();
    let protected = api
        .merge(console::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&admin),
            auth::require,
        ));
    Router::new()
        .merge(protected)
        .merge(auth::routes())
        .route("/console.css", get(console::stylesheet))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(admin)
}

/// Headers on every admin response: no framing, no sniffing, no caching, no script, no
/// referrer beyond this origin.
async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // `same-origin`, not `no-referrer`: under `no-referrer` a browser sends `Origin: null` on
    // a form's POST, and the console's own forms would fail the Origin check.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Serves the admin listener until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    admin: Arc<Admin>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    crate::telemetry::metrics_handle();
    server::serve_router(
        listener,
        router(admin),
        "admin",
        ADMIN_CONNECTIONS,
        shutdown,
    )
    .await
}
