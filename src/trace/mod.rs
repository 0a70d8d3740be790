//! Distributed tracing: OpenTelemetry spans for ingest and delivery, exported over OTLP/HTTP,
//! and the W3C `traceparent` that joins a delivery to the request its event came in on.
//!
//! Why it is built this way:
//!
//! - **An event is stored, then delivered later** (by another task, perhaps another instance,
//!   perhaps after a restart), so one trace cannot hold both. The request's trace is named in
//!   the stored event itself, as the CloudEvents distributed-tracing extension attribute
//!   `traceparent`; each delivery attempt is the root of a trace of its own with an
//!   OpenTelemetry *link* to the request span. HTTP deliveries send the event's `traceparent`
//!   as a header (and brokers as a message header), so a receiver's own spans join the ingest
//!   trace.
//! - **Off unless `[telemetry] otlp_endpoint` is set, and then free.** Without it no layer is
//!   installed and every span constructor here returns [`Span::none`] after one relaxed atomic
//!   load ([`enabled`]): the request path creates, allocates and formats nothing for tracing,
//!   and events are stored byte for byte as without tracing.
//! - **Exporting never slows ingest.** A finished span goes onto the batch processor's bounded
//!   queue with a `try_send` (dropped when the queue is full); the batch is exported by a
//!   task of its own on the tokio runtime. A collector that is down costs spans, not requests.
//! - **Spans say what happened, never what was said**: source and destination names, counts,
//!   outcomes, reason codes, status codes, event ids (`evt_` + a hash). Never bodies, headers,
//!   query strings, secrets, provider event keys (a WhatsApp id embeds a phone number) or
//!   anything a guest wrote. Log events do not become span events: the OpenTelemetry layer
//!   sees only this module's spans (target [`TARGET`]), and the log lines do not show them.
//! - **A provider's own `traceparent` header is ignored**: it is unsigned, so anyone could
//!   attach porter's spans to a trace of their choosing. Every request starts a new trace.
//!
//! The spans:
//!
//! | span | when | attributes |
//! |---|---|---|
//! | `porter.request` (server) | a request on a source route | `porter.source`, `porter.provider`, `http.request.method`, `http.route`, `http.response.status_code`, `porter.outcome`, `porter.reason`, `porter.events`, `porter.duplicates` |
//! | `porter.verify` | its provider's signature check | `porter.outcome` (`verified`, `rejected`), `porter.reason` |
//! | `porter.normalize` | payload → events | `porter.outcome` (`normalized`, `rejected`), `porter.reason`, `porter.events` |
//! | `porter.store` | dedupe-and-enqueue | `porter.outcome` (`stored`, `duplicate`, `unavailable`), `porter.events`, `porter.duplicates` |
//! | `porter.quarantine` | an authentic body that does not parse is kept | `porter.outcome` |
//! | `porter.ohip.event` (consumer) | an OHIP Streaming event, with `porter.normalize` and `porter.store` under it | `porter.source`, `porter.provider` |
//! | `porter.deliver` (client, producer or internal) | one delivery attempt, linked to its event's `traceparent` | `porter.destination`, `porter.destination.kind`, `porter.event_id`, `porter.attempt`, `porter.outcome` (`delivered`, `failed`, `dead_lettered`, `store_error`), `http.response.status_code` |
//!
//! The event's `traceparent` names the `porter.request` (or `porter.ohip.event`) span.

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tracing::Span;
use tracing::field::Empty;

use porter_providers::{Normalization, Rejection};

#[cfg(feature = "otel")]
mod otel;
#[cfg(feature = "otel")]
pub use otel::Tracing;
#[cfg(not(feature = "otel"))]
pub use without_otel::Tracing;

/// Why spans cannot be exported as configured (`[telemetry]`).
#[derive(Debug, thiserror::Error)]
pub enum TracingError {
    #[error("tracing needs the tokio runtime to export from")]
    NoRuntime,
    #[cfg(feature = "otel")]
    #[error("cannot set up the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error(
        "[telemetry] otlp_endpoint is set, and this porter was built without the `otel` \
         feature (cargo build --features otel)"
    )]
    NotBuiltIn,
}

/// The `tracing` target of porter's spans: what the OpenTelemetry layer exports, and what the
/// log lines leave out.
pub(crate) const TARGET: &str = "porter::trace";

/// Whether the process-wide subscriber exports porter's spans.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported; false until [`crate::telemetry::init_logging`] installs the
/// OpenTelemetry layer. Every span constructor checks it first.
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Called once the layer is installed in the process-wide subscriber, with the share of
/// traces to keep (`[telemetry] sample_ratio`).
#[cfg(feature = "otel")]
pub(crate) fn enable(sample_ratio: f64) {
    KEEP_BELOW.store(threshold(sample_ratio), Ordering::Relaxed);
    ENABLED.store(true, Ordering::Relaxed);
}

/// A new trace is kept when a random `u64` falls below this: `u64::MAX` keeps every one.
///
/// **Why porter samples, not the exporter's sampler:** a trace porter drops is never built.
/// The request's spans are `Span::none()` from the root down, as with tracing off, so an
/// unkept request pays one random number; a sampler in the OpenTelemetry SDK would decide
/// only after `tracing` had built every span. The decision is parent-based: the steps under a
/// request follow it, and a delivery attempt follows the trace its event came in on (its
/// `traceparent`, which only a kept request writes); an event without one (stored while
/// tracing was off, or unkept) is a new trace and drawn for.
static KEEP_BELOW: AtomicU64 = AtomicU64::new(u64::MAX);

#[cfg(any(feature = "otel", test))]
fn threshold(ratio: f64) -> u64 {
    if ratio >= 1.0 {
        u64::MAX
    } else if ratio > 0.0 {
        // Exact enough: 2^64 × ratio, below u64::MAX for any ratio < 1.
        (ratio * 18_446_744_073_709_551_616.0) as u64
    } else {
        0
    }
}

/// Whether a new trace is kept (see [`KEEP_BELOW`]).
#[inline]
fn keep_new_trace() -> bool {
    match KEEP_BELOW.load(Ordering::Relaxed) {
        u64::MAX => true,
        0 => false,
        below => random() < below,
    }
}

/// A per-thread SplitMix64 stream seeded from the OS: not for secrets, only for sampling.
fn random() -> u64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(getrandom::u64().unwrap_or(0x9E37_79B9_7F4A_7C15));
    }
    STATE.with(|state| {
        let next = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        state.set(next);
        let mut z = next;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

/// A W3C trace context (`traceparent`): `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traceparent {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub flags: u8,
}

impl Traceparent {
    /// Parses a `traceparent` as W3C Trace Context level 1 reads it: lowercase hex, neither id
    /// all zeros, version `ff` invalid, version `00` exactly 55 characters (a later version
    /// may append `-`-separated fields, which are ignored). Anything else is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        let (Some(head), tail) = (bytes.get(..55), bytes.get(55..).unwrap_or_default()) else {
            return None;
        };
        let version = &head[..2];
        if !is_lower_hex(version) || version == b"ff" {
            return None;
        }
        // Version 00 is exactly this long; a later one may go on after a `-`.
        if (version == b"00" && !tail.is_empty()) || tail.first().is_some_and(|&b| b != b'-') {
            return None;
        }
        if head[2] != b'-' || head[35] != b'-' || head[52] != b'-' {
            return None;
        }
        let (trace, span, flags) = (&head[3..35], &head[36..52], &head[53..55]);
        if !(is_lower_hex(trace) && is_lower_hex(span) && is_lower_hex(flags)) {
            return None;
        }
        let mut trace_id = [0u8; 16];
        let mut span_id = [0u8; 8];
        let mut flag = [0u8; 1];
        hex::decode_to_slice(trace, &mut trace_id).ok()?;
        hex::decode_to_slice(span, &mut span_id).ok()?;
        hex::decode_to_slice(flags, &mut flag).ok()?;
        let parsed = Self {
            trace_id,
            span_id,
            flags: flag[0],
        };
        (trace_id != [0; 16] && span_id != [0; 8]).then_some(parsed)
    }

    /// What the events of a request (or OHIP event) traced by `span` carry: the span's own
    /// context; for a trace not kept (`sample_ratio`), fresh ids with the sampled flag off, so
    /// that the delivery and the receivers follow the decision and logs can still be joined
    /// by trace id; nothing with tracing off.
    pub(crate) fn for_events(span: &Span) -> Option<Self> {
        if !enabled() {
            return None;
        }
        Self::of_span(span).or_else(|| {
            let (high, low, span) = (random() | 1, random(), random() | 1);
            let mut trace_id = [0u8; 16];
            trace_id[..8].copy_from_slice(&high.to_be_bytes());
            trace_id[8..].copy_from_slice(&low.to_be_bytes());
            Some(Self {
                trace_id,
                span_id: span.to_be_bytes(),
                flags: 0,
            })
        })
    }

    /// The `traceparent` attribute of a stored event (its JSON exactly as stored): the
    /// top-level attribute only, and only when it is a valid one. Malformed, absent or not a
    /// string: `None`, never a panic. Events without the word are refused without parsing.
    pub fn of_event(json: &str) -> Option<Self> {
        #[derive(serde::Deserialize)]
        struct TopLevel<'a> {
            #[serde(borrow, default)]
            traceparent: Option<std::borrow::Cow<'a, str>>,
        }
        if !json.contains("\"traceparent\"") {
            return None;
        }
        let event: TopLevel<'_> = serde_json::from_str(json).ok()?;
        Self::parse(&event.traceparent?)
    }

    /// The context of `span`, when it is exported.
    #[inline]
    pub fn of_span(span: &Span) -> Option<Self> {
        if span.is_disabled() {
            None
        } else {
            Self::of_exported(span)
        }
    }

    #[inline(never)]
    fn of_exported(span: &Span) -> Option<Self> {
        #[cfg(feature = "otel")]
        return otel::context_of(span);
        #[cfg(not(feature = "otel"))]
        {
            let _ = span;
            None
        }
    }

    /// Whether the sender asked for the trace to be recorded (the `sampled` flag).
    pub fn is_sampled(&self) -> bool {
        self.flags & 1 == 1
    }
}

impl fmt::Display for Traceparent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            hex::encode(self.trace_id),
            hex::encode(self.span_id),
            self.flags
        )
    }
}

/// A count as OpenTelemetry's integer (the layer would record a `u64` as text).
fn int(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

fn is_lower_hex(text: &[u8]) -> bool {
    text.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The steps of ingest that get a span of their own under the request's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Verify,
    Normalize,
    Store,
    Quarantine,
}

// Each function below is a check that inlines into its caller (one atomic load, or a look at
// the span) and, only when tracing is on, a call to an out-of-line body: with tracing off the
// request path pays a few instructions per step and no call.

/// The root span of a request on a source route (`route` is the matched route: a configured
/// path, never a query).
#[inline]
pub(crate) fn request(source: &str, provider: &'static str, method: &str, route: &str) -> Span {
    if enabled() && keep_new_trace() {
        request_span(source, provider, method, route)
    } else {
        Span::none()
    }
}

#[inline(never)]
fn request_span(source: &str, provider: &'static str, method: &str, route: &str) -> Span {
    tracing::info_span!(
        target: TARGET,
        parent: None,
        "porter.request",
        otel.kind = "server",
        porter.source = source,
        porter.provider = provider,
        http.request.method = method,
        http.route = route,
        http.response.status_code = Empty,
        porter.outcome = Empty,
        porter.reason = Empty,
        porter.events = Empty,
        porter.duplicates = Empty,
        otel.status_code = Empty,
    )
}

/// The root span of one event from an OHIP stream.
pub(crate) fn ohip_event(source: &str, provider: &'static str) -> Span {
    if !enabled() || !keep_new_trace() {
        return Span::none();
    }
    tracing::info_span!(
        target: TARGET,
        parent: None,
        "porter.ohip.event",
        otel.kind = "consumer",
        porter.source = source,
        porter.provider = provider,
        otel.status_code = Empty,
    )
}

/// A step's span under `parent` (none when `parent` is not exported).
#[inline]
pub(crate) fn step(parent: &Span, step: Step) -> Span {
    if parent.is_disabled() {
        Span::none()
    } else {
        step_span(parent, step)
    }
}

#[inline(never)]
fn step_span(parent: &Span, step: Step) -> Span {
    match step {
        Step::Verify => tracing::info_span!(
            target: TARGET,
            parent: parent,
            "porter.verify",
            porter.outcome = Empty,
            porter.reason = Empty,
        ),
        Step::Normalize => tracing::info_span!(
            target: TARGET,
            parent: parent,
            "porter.normalize",
            porter.outcome = Empty,
            porter.reason = Empty,
            porter.events = Empty,
        ),
        Step::Store => tracing::info_span!(
            target: TARGET,
            parent: parent,
            "porter.store",
            porter.outcome = Empty,
            porter.events = Empty,
            porter.duplicates = Empty,
            otel.status_code = Empty,
        ),
        Step::Quarantine => tracing::info_span!(
            target: TARGET,
            parent: parent,
            "porter.quarantine",
            porter.outcome = Empty,
            otel.status_code = Empty,
        ),
    }
}

/// Records how a step or a request ended: `outcome`, and `reason` when refused.
#[inline]
pub(crate) fn outcome(span: &Span, outcome: &'static str, reason: Option<&'static str>) {
    if !span.is_disabled() {
        record_outcome(span, outcome, reason);
    }
}

#[inline(never)]
fn record_outcome(span: &Span, outcome: &'static str, reason: Option<&'static str>) {
    span.record("porter.outcome", outcome);
    if let Some(reason) = reason {
        span.record("porter.reason", reason);
    }
}

/// Ends a step that either passes (`ok`) or refuses the request with a rejection.
#[inline]
pub(crate) fn finish<T>(span: Span, result: &Result<T, Rejection>, ok: &'static str) {
    if !span.is_disabled() {
        let reason = result.as_ref().err().map(Rejection::reason);
        record_outcome(
            &span,
            if reason.is_some() { "rejected" } else { ok },
            reason,
        );
    }
}

/// Ends the normalize step, with the number of events when it passed.
#[inline]
pub(crate) fn normalized(span: Span, result: &Result<Normalization, Rejection>) {
    if !span.is_disabled() {
        if let Ok(normalization) = result {
            span.record("porter.events", int(normalization.events.len()));
        }
        finish(span, result, "normalized");
    }
}

/// Records what dedupe-and-enqueue did.
#[inline]
pub(crate) fn stored(span: &Span, new: usize, duplicates: usize) {
    if !span.is_disabled() {
        record_stored(span, new, duplicates);
    }
}

#[inline(never)]
fn record_stored(span: &Span, new: usize, duplicates: usize) {
    record_outcome(span, if new > 0 { "stored" } else { "duplicate" }, None);
    span.record("porter.events", int(new));
    span.record("porter.duplicates", int(duplicates));
}

/// Marks a span as failed (ours, not the caller's: a 5xx, a store that did not answer).
#[inline]
pub(crate) fn failed(span: &Span) {
    if !span.is_disabled() {
        span.record("otel.status_code", "error");
    }
}

/// Records the answer of a request: its status, outcome, reason and event counts.
#[inline]
pub(crate) fn answered(
    span: &Span,
    status: u16,
    outcome: &'static str,
    reason: Option<&'static str>,
    events: usize,
    duplicates: usize,
) {
    if !span.is_disabled() {
        record_answer(span, status, outcome, reason, events, duplicates);
    }
}

#[inline(never)]
fn record_answer(
    span: &Span,
    status: u16,
    outcome: &'static str,
    reason: Option<&'static str>,
    events: usize,
    duplicates: usize,
) {
    span.record("http.response.status_code", i64::from(status));
    record_outcome(span, outcome, reason);
    span.record("porter.events", int(events));
    span.record("porter.duplicates", int(duplicates));
    if status >= 500 {
        failed(span);
    }
}

/// The span of one delivery attempt: the root of its own trace, linked to the span the
/// event's `traceparent` names (when it carries a valid one).
#[inline]
pub(crate) fn attempt(
    destination: &str,
    kind: &'static str,
    event_id: &str,
    attempt: usize,
    event: Option<&str>,
) -> Span {
    if !enabled() {
        return Span::none();
    }
    let ingest = event.and_then(Traceparent::of_event);
    let keep = match ingest {
        Some(ingest) => ingest.is_sampled(),
        None => keep_new_trace(),
    };
    if keep {
        attempt_span(destination, kind, event_id, attempt, ingest)
    } else {
        Span::none()
    }
}

#[inline(never)]
fn attempt_span(
    destination: &str,
    kind: &'static str,
    event_id: &str,
    attempt: usize,
    ingest: Option<Traceparent>,
) -> Span {
    let span_kind = match kind {
        "http" => "client",
        "handler" => "internal",
        _ => "producer",
    };
    let span = tracing::info_span!(
        target: TARGET,
        parent: None,
        "porter.deliver",
        otel.kind = span_kind,
        porter.destination = destination,
        porter.destination.kind = kind,
        porter.event_id = event_id,
        porter.attempt = int(attempt),
        porter.outcome = Empty,
        http.response.status_code = Empty,
        otel.status_code = Empty,
    );
    #[cfg(feature = "otel")]
    if let Some(ingest) = ingest {
        otel::link(&span, &ingest);
    }
    #[cfg(not(feature = "otel"))]
    let _ = ingest;
    span
}

/// Records how a delivery attempt ended.
#[inline]
pub(crate) fn attempted(span: &Span, outcome: &'static str, status: Option<u16>) {
    if !span.is_disabled() {
        record_attempt(span, outcome, status);
    }
}

#[inline(never)]
fn record_attempt(span: &Span, outcome: &'static str, status: Option<u16>) {
    span.record("porter.outcome", outcome);
    if let Some(status) = status {
        span.record("http.response.status_code", i64::from(status));
    }
    if outcome != "delivered" {
        failed(span);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn the_sample_ratio_keeps_its_share_of_new_traces() {
        assert_eq!(threshold(1.0), u64::MAX);
        assert_eq!(threshold(0.0), 0);
        assert_eq!(threshold(0.5), 1 << 63);
        for ratio in [0.01, 0.1, 0.25, 0.9] {
            let below = threshold(ratio);
            let draws = 200_000;
            let kept = (0..draws).filter(|_| random() < below).count();
            let share = kept as f64 / draws as f64;
            // Five standard deviations of a binomial share either side.
            let slack = 5.0 * (ratio * (1.0 - ratio) / draws as f64).sqrt();
            assert!((share - ratio).abs() < slack, "{ratio}: kept {share}");
        }
    }

    #[test]
    fn with_tracing_off_events_carry_no_traceparent() {
        assert!(!enabled());
        assert_eq!(Traceparent::for_events(&Span::none()), None);
    }

    #[test]
    fn a_traceparent_is_parsed_and_formatted_back_exactly() {
        let parsed = Traceparent::parse(VALID).expect("valid");
        assert_eq!(
            hex::encode(parsed.trace_id),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(hex::encode(parsed.span_id), "b7ad6b7169203331");
        assert!(parsed.is_sampled());
        assert_eq!(parsed.to_string(), VALID);
        let unsampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
        assert_eq!(
            Traceparent::parse(unsampled).expect("valid").to_string(),
            unsampled
        );
        #[cfg(feature = "otel")]
        {
            let context = otel::span_context(&parsed);
            assert!(context.is_valid() && context.is_remote());
            assert_eq!(otel::traceparent(&context), parsed);
        }
    }

    #[test]
    fn later_versions_are_read_as_version_00() {
        let later = "cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-comes-next";
        assert_eq!(
            Traceparent::parse(later)
                .expect("a later version")
                .to_string(),
            VALID
        );
        assert!(
            Traceparent::parse(&VALID.replacen("00", "cc", 1)).is_some(),
            "exactly 55"
        );
    }

    #[test]
    fn malformed_traceparents_are_refused() {
        let cases = [
            "",
            "00",
            "garbage",
            &VALID[..54],
            &format!("{VALID}-"),
            &format!("{VALID}0"),
            "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "0g-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331_01",
            "00-0af7651916cd43dd8448eb211c8031-9c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0x",
            "cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b71692033é1-01",
            "é0-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ];
        for case in cases {
            assert_eq!(Traceparent::parse(case), None, "{case:?}");
        }
    }

    #[test]
    fn any_text_parses_or_is_refused_without_panicking() {
        // Every prefix and every one-byte change of a valid value, including multi-byte
        // characters at the positions the parser slices at.
        for end in 0..=VALID.len() {
            let _ = Traceparent::parse(&VALID[..end]);
        }
        for at in 0..VALID.len() {
            for replacement in ["-", "0", "f", "g", "é", "\u{0}", "€"] {
                let mut text = VALID.to_owned();
                text.replace_range(at..=at, replacement);
                let _ = Traceparent::parse(&text);
            }
        }
    }

    #[test]
    fn an_events_traceparent_is_read_from_the_top_level_only() {
        let event = |attributes: &str| {
            format!(
                r#"{{"specversion":"1.0","id":"evt_1","source":"/sources/s"{attributes},"type":"unknown","data":{{"reason":"","raw":{{"traceparent":"00-11111111111111111111111111111111-2222222222222222-01"}}}}}}"#
            )
        };
        let with = event(&format!(r#","traceparent":"{VALID}""#));
        assert_eq!(
            Traceparent::of_event(&with)
                .map(|t| t.to_string())
                .as_deref(),
            Some(VALID)
        );
        // Only the provider's payload names one: not the event's.
        assert_eq!(Traceparent::of_event(&event("")), None);
        for bad in [
            r#","traceparent":"not-a-traceparent""#,
            r#","traceparent":7"#,
            r#","traceparent":null"#,
            r#","traceparent":{"a":1}"#,
        ] {
            assert_eq!(Traceparent::of_event(&event(bad)), None, "{bad}");
        }
        for garbage in [
            "",
            "{",
            "[]",
            "null",
            "\"traceparent\"",
            "{\"traceparent\":",
        ] {
            assert_eq!(Traceparent::of_event(garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn with_tracing_off_spans_are_none() {
        // Nothing in this test binary installs the layer.
        assert!(!enabled());
        let span = request("s", "meta", "POST", "/s");
        assert!(span.is_none());
        assert!(step(&span, Step::Verify).is_none());
        assert!(attempt("d", "http", "evt_1", 1, Some("{}")).is_none());
        assert_eq!(Traceparent::of_span(&span), None);
    }
}

/// A build without the `otel` feature: `[telemetry] otlp_endpoint` is refused at start.
#[cfg(not(feature = "otel"))]
mod without_otel {
    use crate::config::TelemetryConfig;

    /// The exporter this build does not have.
    #[derive(Debug)]
    pub struct Tracing;

    impl Tracing {
        pub fn start(_: &TelemetryConfig) -> Result<Self, super::TracingError> {
            Err(super::TracingError::NotBuiltIn)
        }

        pub async fn shutdown(self) {}
    }
}
