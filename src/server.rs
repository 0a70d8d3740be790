//! The HTTP server: the providers' router, serving a listener within the connection bounds,
//! and a graceful shutdown.
//!
//! Source routes are not axum routes: one fallback handler looks the raw path up in the
//! [`RouteTable`], so matching stays exact and the same table prints in `check-config`.
//! On SIGTERM or SIGINT the listener stops accepting, requests in flight finish (each is
//! bounded by the request timeout), and only then does the process exit: a provider that got
//! its request in gets its answer.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;

pub use crate::clock::Clock;
use crate::connections::{self, Admissions, Bounded, ConnectionLimits};
pub use crate::gateway::Gateway;
use crate::gateway::NotReady;
use crate::pipeline;
use crate::telemetry;

/// The providers' router: health, readiness and every source route (metrics are on the
/// admin listener).
pub(crate) fn app(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(pipeline::handle)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&gateway),
            close_while_draining,
        ))
        .with_state(gateway)
}

/// While porter drains, each HTTP/1.1 answer says `Connection: close`: the client gets its
/// answer and opens its next connection, which the load balancer sends to another instance.
/// (HTTP/2 has no such header; its connections get a GOAWAY when porter stops accepting.)
async fn close_while_draining(
    State(gateway): State<Arc<Gateway>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let http1 = request.version() <= axum::http::Version::HTTP_11;
    let mut response = next.run(request).await;
    if http1 && gateway.is_draining() {
        response.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    response
}

async fn healthz() -> impl IntoResponse {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain")],
        "ok\n",
    )
}

/// Ready when the store takes events. OHIP stream sources add a line each with their state
/// (detail only: a stopped stream does not make the webhook sources unready).
async fn readyz(State(gateway): State<Arc<Gateway>>) -> impl IntoResponse {
    let (status, mut body) = match gateway.readiness().await {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
        Err(NotReady::Store(error)) => {
            tracing::warn!(%error, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "store unavailable\n".to_owned(),
            )
        }
        Err(not_ready) => (StatusCode::SERVICE_UNAVAILABLE, format!("{not_ready}\n")),
    };
    for stream in gateway.stream_statuses() {
        body.push_str(&format!(
            "ohip {}: {}\n",
            stream.source,
            stream.state.label()
        ));
    }
    (status, body)
}

/// Serves `gateway` on `listener` until `shutdown` resolves, then drains requests in flight.
///
/// Connections are accepted within the gateway's [`ConnectionLimits`] (see
/// [`connections`](crate::connections)); each is served by hyper (HTTP/1.1, or HTTP/2 with
/// prior knowledge) with the peer address available to the pipeline for `allow_ips`.
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    telemetry::metrics_handle();
    let limits = gateway.limits.connections;
    serve_router(listener, app(gateway), "providers", limits, shutdown).await
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves, then drains
/// requests in flight (the providers' listener and the admin listener both run this loop).
pub(crate) async fn serve_router(
    listener: TcpListener,
    router: Router,
    name: &'static str,
    limits: ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let admissions = Admissions::new(name);
    let mut builder = ConnectionBuilder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // Enough for the largest head porter accepts (32 KiB) and a body chunk; hyper's default
        // (~400 KiB) would let each half-sent head hold that much.
        .max_buf_size(H1_MAX_BUF_SIZE);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.h2_max_streams)
        .max_header_list_size(H2_MAX_HEADER_LIST_SIZE);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) if connections::is_connection_error(&error) => continue,
            Err(error) => {
                // Out of file descriptors, most likely: wait for some to close.
                tracing::warn!(%error, "cannot accept connections");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let conn = match admissions.admit(peer.ip(), &limits) {
            Ok(conn) => conn,
            Err(refused) => {
                metrics::counter!("porter_connections_refused_total", "listener" => name, "reason" => refused.label())
                    .increment(1);
                tracing::debug!(reason = refused.label(), "connection refused");
                continue;
            }
        };
        // Answers are small and sent as soon as they are ready: without TCP_NODELAY, Nagle's
        // algorithm may hold back the last piece of one until the client's delayed ACK arrives.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "TCP_NODELAY could not be set");
        }
        let io = TokioIo::new(Bounded::new(stream, limits.idle_timeout, Arc::clone(&conn)));
        let service = in_flight_service(router.clone(), Arc::clone(&conn), peer, limits, name);
        let connection = builder
            .serve_connection_with_upgrades(io, TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(run_connection(
            connection,
            conn,
            limits.header_timeout,
            name,
        ));
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// hyper's HTTP/1 read buffer per connection.
const H1_MAX_BUF_SIZE: usize = 64 * 1024;
/// The largest HTTP/2 header list porter accepts (as the 32 KiB of the pipeline's check).
const H2_MAX_HEADER_LIST_SIZE: u32 = 32 * 1024;

/// Runs one connection until it ends, is chosen to make room for another, or has not completed
/// a request head within `header_timeout` of its start (HTTP/2's preface and first stream
/// included, which hyper's HTTP/1 head timeout does not cover).
async fn run_connection<C, E>(
    connection: C,
    conn: Arc<connections::Conn>,
    header_timeout: Duration,
    listener: &'static str,
) where
    C: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut connection = std::pin::pin!(connection);
    let first_head = tokio::time::sleep(header_timeout);
    let mut first_head = std::pin::pin!(first_head);
    let mut waiting_for_head = true;
    loop {
        tokio::select! {
            ended = &mut connection => {
                if let Err(error) = ended {
                    tracing::debug!(error = %error, "connection ended with an error");
                }
                return;
            }
            () = conn.evicted() => {
                tracing::debug!(peer = %conn.peer(), "connection closed to make room");
                return;
            }
            () = &mut first_head, if waiting_for_head => {
                if !conn.served() {
                    metrics::counter!("porter_connections_refused_total", "listener" => listener, "reason" => "header_timeout").increment(1);
                    tracing::debug!(peer = %conn.peer(), "no request head within header_timeout");
                    return;
                }
                waiting_for_head = false;
            }
        }
    }
}

/// `router` behind the per-peer bound on requests in flight: each request (an HTTP/2 stream
/// too) is counted in flight until its answer is ready; one over its peer's bound is answered
/// 503 with `Retry-After` and the connection lives.
fn in_flight_service(
    router: Router,
    conn: Arc<connections::Conn>,
    peer: std::net::SocketAddr,
    limits: ConnectionLimits,
    listener: &'static str,
) -> impl tower::Service<
    axum::http::Request<Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl std::future::Future<
        Output = Result<axum::response::Response, std::convert::Infallible>,
    > + Send,
> + Clone {
    tower::service_fn(move |mut request: axum::http::Request<Incoming>| {
        let in_flight = conn.begin_request(&limits);
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(conn.peer());
        let router = router.clone();
        async move {
            let in_flight = match in_flight {
                Ok(in_flight) => in_flight,
                Err(refused) => {
                    metrics::counter!("porter_requests_refused_total", "listener" => listener, "reason" => refused.label())
                        .increment(1);
                    return Ok(crate::answer::Answer::Busy.into_response());
                }
            };
            let response = router.oneshot(request).await;
            drop(in_flight);
            response
        }
    })
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received: draining requests in flight"),
        () = terminate => tracing::info!("SIGTERM received: draining requests in flight"),
    }
}
