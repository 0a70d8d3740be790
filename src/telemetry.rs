//! Logs and metrics.
//!
//! Logs go to stderr (stdout carries events in the embedded default), one line per request
//! with the source, outcome, event count and latency. They never carry secrets, bodies, query
//! strings (URL tokens live there) or event keys (a WhatsApp message id embeds the guest's
//! phone number). Metrics are Prometheus text on the admin listener's `/metrics`.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

use crate::activity::Diagnosed;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global log subscriber (`RUST_LOG` filters; default `info`). With `tracing`
/// (`[telemetry]` is set), the subscriber also exports porter's spans through its
/// OpenTelemetry layer, and the log lines leave those spans out; without it, the subscriber
/// is the log lines alone and no span is ever created (see [`crate::trace`]).
pub fn init_logging(format: LogFormat, tracing: Option<&crate::trace::Tracing>) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    match tracing {
        #[cfg(feature = "otel")]
        Some(tracing) => with_spans(format, filter, tracing),
        // Without the `otel` feature there is no exporter (`Tracing::start` refuses).
        _ => lines_only(format, filter),
    }
}

/// The log lines alone.
fn lines_only(format: LogFormat, filter: EnvFilter) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // A second initialisation (tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// The log lines, and porter's spans exported through `tracing`'s layer.
#[cfg(feature = "otel")]
fn with_spans(format: LogFormat, filter: EnvFilter, tracing: &crate::trace::Tracing) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::filter::{FilterExt, filter_fn};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let lines = match format {
        LogFormat::Text => lines.boxed(),
        LogFormat::Json => lines.json().flatten_event(true).boxed(),
    };
    // Spans are for the collector: a log line does not carry them as its context.
    let lines =
        lines.with_filter(filter.and(filter_fn(|meta| meta.target() != crate::trace::TARGET)));
    let installed = tracing_subscriber::registry()
        .with(lines)
        .with(tracing.layer())
        .try_init();
    if installed.is_ok() {
        crate::trace::enable(tracing.sample_ratio());
    }
}

/// The process-wide metrics recorder, installed on first use.
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("_seconds".to_owned()),
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0,
                ],
            )
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        // Fails only if another recorder was installed first; metrics then go there.
        let _ = metrics::set_global_recorder(recorder);
        describe_metrics();
        // Histogram samples wait in a buffer until they are folded into the buckets, which a
        // scrape does; without scrapes the buffer would grow for ever (8 bytes a request). So
        // fold them every 5 s on a thread of its own, whatever runtime porter runs in.
        let upkeep = handle.clone();
        let _ = std::thread::Builder::new()
            .name("porter-metrics-upkeep".to_owned())
            .spawn(move || {
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            });
        handle
    })
}

/// The `# HELP` line of every metric porter exports.
fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "porter_requests_total",
        "Requests on source routes, by source and outcome (accepted, duplicate, rejected, ...)."
    );
    describe_counter!(
        "porter_rejections_total",
        "Refused requests, by source and reason (signature_mismatch, stale_timestamp, ...)."
    );
    describe_counter!(
        "porter_events_enqueued_total",
        "Events stored as new, by source."
    );
    describe_counter!(
        "porter_duplicates_total",
        "Events found already stored (redeliveries inside the dedupe window), by source."
    );
    describe_histogram!(
        "porter_ingest_duration_seconds",
        metrics::Unit::Seconds,
        "From a request's arrival to its answer, by source."
    );
    describe_counter!(
        "porter_archive_failures_total",
        "Authenticated requests not archived, by source and reason (store, busy); their answers were unchanged."
    );
    describe_counter!(
        "porter_delivery_attempts_total",
        "Delivery attempts, by destination."
    );
    describe_counter!(
        "porter_deliveries_total",
        "Delivery attempts by destination and result (delivered, failed, dead_lettered, store_error)."
    );
    describe_counter!(
        "porter_dead_letters_total",
        "Events dead-lettered after their destination's last retry, by destination."
    );
    describe_histogram!(
        "porter_delivery_duration_seconds",
        metrics::Unit::Seconds,
        "How long one delivery attempt took, by destination."
    );
    describe_gauge!(
        "porter_consumer_lag",
        "Events waiting for a destination: scheduled plus not yet read by its consumer group."
    );
    describe_gauge!(
        "porter_connections_open",
        "Client connections open, by listener (providers, admin)."
    );
    describe_gauge!(
        "porter_store_disk_bytes",
        metrics::Unit::Bytes,
        "Bytes the local store holds on disk (journal and snapshot)."
    );
    describe_counter!(
        "porter_store_syncs_total",
        "Journal writes the local store synced (fdatasync), each a batch of requests."
    );
    describe_gauge!(
        "porter_alerts_firing",
        "1 while an [[alerts]] rule fires, 0 otherwise, by alert."
    );
    describe_counter!(
        "porter_alert_notifications_total",
        "Alert notifications by target and result (sent, failed after every attempt, dropped)."
    );
    describe_counter!(
        "porter_connections_refused_total",
        "Connections closed on arrival, by the limit they hit (max_connections, max_connections_per_peer)."
    );
}

/// What one request on a source route did, for the log line and the metrics.
#[derive(Debug)]
pub(crate) struct RequestRecord<'a> {
    pub source: &'a str,
    pub provider: &'static str,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub outcome: &'static str,
    /// Why it was rejected, when it was.
    pub reason: Option<&'static str>,
    /// Which known mistake a refused request makes, when it was diagnosed.
    pub diagnosis: Option<&'a Diagnosed>,
    pub events: usize,
    pub duplicates: usize,
    pub latency: Duration,
}

impl RequestRecord<'_> {
    pub(crate) fn emit(&self) {
        let latency_ms = self.latency.as_secs_f64() * 1000.0;
        if let Some(diagnosis) = self.diagnosis {
            tracing::info!(
                target: "porter::request",
                source = self.source,
                provider = self.provider,
                path = self.path,
                status = self.status,
                reason = self.reason.unwrap_or("-"),
                diagnosis = diagnosis.code,
                hint = %diagnosis.message,
                "refused request diagnosed"
            );
        }
        tracing::info!(
            target: "porter::request",
            source = self.source,
            provider = self.provider,
            method = self.method,
            path = self.path,
            status = self.status,
            outcome = self.outcome,
            reason = self.reason.unwrap_or("-"),
            events = self.events,
            duplicates = self.duplicates,
            latency_ms = format!("{latency_ms:.3}"),
            "request"
        );
        let source = self.source.to_owned();
        metrics::counter!("porter_requests_total", "source" => source.clone(), "outcome" => self.outcome)
            .increment(1);
        if let Some(reason) = self.reason {
            metrics::counter!("porter_rejections_total", "source" => source.clone(), "reason" => reason)
                .increment(1);
        }
        if self.events > 0 {
            metrics::counter!("porter_events_enqueued_total", "source" => source.clone())
                .increment(self.events as u64);
        }
        if self.duplicates > 0 {
            metrics::counter!("porter_duplicates_total", "source" => source.clone())
                .increment(self.duplicates as u64);
        }
        metrics::histogram!("porter_ingest_duration_seconds", "source" => source)
            .record(self.latency.as_secs_f64());
    }
}
