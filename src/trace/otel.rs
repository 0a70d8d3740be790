//! The OpenTelemetry half of tracing (feature `otel`): the OTLP/HTTP exporter and the
//! `tracing` layer that feeds it, and the conversions between a [`Traceparent`] and
//! OpenTelemetry's span context.

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

use super::{TARGET, Traceparent, TracingError};
use crate::config::TelemetryConfig;

/// How long a graceful stop waits for the last spans to be exported.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// The context of an exported `span`, when it is valid.
pub(super) fn context_of(span: &Span) -> Option<Traceparent> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| traceparent(&span_context))
}

/// Links `span` to the trace `to` names.
pub(super) fn link(span: &Span, to: &Traceparent) {
    span.add_link(span_context(to));
}

/// The span context `traceparent` names, as received from elsewhere (remote).
pub(super) fn span_context(traceparent: &Traceparent) -> SpanContext {
    SpanContext::new(
        TraceId::from_bytes(traceparent.trace_id),
        SpanId::from_bytes(traceparent.span_id),
        TraceFlags::new(traceparent.flags),
        true,
        TraceState::default(),
    )
}

pub(super) fn traceparent(context: &SpanContext) -> Traceparent {
    Traceparent {
        trace_id: context.trace_id().to_bytes(),
        span_id: context.span_id().to_bytes(),
        flags: context.trace_flags().to_u8(),
    }
}

/// The exporter: a tracer provider whose batch processor runs on the tokio runtime and
/// POSTs OTLP/HTTP protobuf to `<otlp_endpoint>/v1/traces`.
#[derive(Debug)]
pub struct Tracing {
    provider: SdkTracerProvider,
    sample_ratio: f64,
}

impl Tracing {
    /// The share of traces kept (`[telemetry] sample_ratio`).
    pub fn sample_ratio(&self) -> f64 {
        self.sample_ratio
    }

    /// Sets up the exporter for `config`. Must run inside the tokio runtime, which runs the
    /// batch processor's task. The exporter also reads the standard `OTEL_EXPORTER_OTLP_HEADERS`
    /// (a collector's token) and `OTEL_EXPORTER_OTLP_TIMEOUT` variables.
    pub fn start(config: &TelemetryConfig) -> Result<Self, TracingError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(TracingError::NoRuntime);
        }
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(config.traces_url())
            .build()?;
        let processor =
            BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
        let resource = Resource::builder()
            .with_service_name(config.service_name.clone())
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(resource)
            .build();
        Ok(Self {
            provider,
            sample_ratio: config.sample_ratio,
        })
    }

    /// The `tracing` layer exporting porter's spans (target [`TARGET`]) and nothing else.
    pub fn layer<S>(&self) -> impl Layer<S> + use<S>
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    {
        let tracer = self.provider.tracer("porter");
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_location(false)
            .with_target(false)
            .with_threads(false)
            .with_tracked_inactivity(false)
            .with_filter(
                tracing_subscriber::filter::filter_fn(|meta| meta.target() == TARGET)
                    .with_max_level_hint(tracing::Level::INFO),
            )
    }

    /// Exports what is still queued and stops the exporter, waiting at most 5 s (a collector
    /// that does not answer must not hold up a graceful stop).
    pub async fn shutdown(self) {
        let provider = self.provider;
        // The processor's shutdown blocks until its task has exported the last batch; that
        // task runs on this runtime, so block elsewhere.
        let stopped = tokio::task::spawn_blocking(move || provider.shutdown());
        match tokio::time::timeout(SHUTDOWN_WAIT, stopped).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => tracing::warn!(%error, "the last spans may not be exported"),
            Ok(Err(error)) => tracing::warn!(%error, "the last spans may not be exported"),
            Err(_) => tracing::warn!(
                "the collector did not take the last spans within 5 s; stopping without them"
            ),
        }
    }
}
