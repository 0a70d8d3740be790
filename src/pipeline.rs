//! The ingress pipeline, in order, in one place:
//!
//! route → source → allow-list → method → header size → the source's share → body (limit,
//! deadline) → handshake → verify → normalize →
//! dedupe-and-enqueue → answer.
//!
//! **Architecture invariant:** a provider gets 2xx only after every event of its request is
//! in the store (or was already there). Every step before the store either rejects with the
//! status of the README's "What providers get back" or passes the raw bytes on untouched; nothing is parsed
//! before the signature over those bytes has been checked.
//!
//! With `[archive]` on, an authenticated request that was stored (or quarantined) is handed to
//! [`crate::archive`] after its answer is decided; the archive write never changes it.
//!
//! With tracing on, a request on a source route is a `porter.request` span and verify,
//! normalize and store each a child span ([`crate::trace`]), and its events carry the
//! request's `traceparent`; with tracing off those calls return at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::BodyExt;
use porter_providers::rejection::RejectionClass;
use porter_providers::{Normalization, Request};
use tokio::time::timeout_at;
use tracing::Span;

use crate::activity::{Diagnosed, EventId, RequestEntry, Routed};
use crate::answer::Answer;
use crate::config::SourceConfig;
use crate::connections::{OverBudget, Peer, Reservation};
use crate::gateway::Gateway;
use crate::routes::Route;
use crate::store::{Archived, ArchivedOutcome, Quarantined};
use crate::telemetry::RequestRecord;
use crate::trace::{self, Step, Traceparent};

/// The most header bytes (names and values) a request on a source route may carry.
const MAX_HEADER_BYTES: usize = 32 * 1024;

/// The handler behind every source route (the router's fallback).
pub(crate) async fn handle(
    State(gateway): State<Arc<Gateway>>,
    request: axum::extract::Request,
) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let Some(route) = gateway.routes.get(parts.uri.path()).copied() else {
        tracing::debug!(path = parts.uri.path(), "no route");
        let answer = Answer::NotFound;
        gateway.activity.record(RequestEntry {
            time: gateway.clock.now(),
            routed: Routed::unrouted(parts.uri.path()),
            method: parts.method.clone(),
            status: answer.status().as_u16(),
            outcome: answer.outcome(),
            reason: None,
            diagnosis: None,
            event_ids: Vec::new(),
            latency: started.elapsed(),
        });
        return answer.into_response();
    };
    let config = &gateway.sources[route.source];
    // One trace per request on a source route (none when tracing is off).
    let span = trace::request(
        config.source.name(),
        config.source.provider().id(),
        parts.method.as_str(),
        parts.uri.path(),
    );
    let mut outcome = process(&gateway, route, config, &parts, body, started, &span).await;
    if let (Some(item), Some(archiver)) = (outcome.archive.take(), &gateway.archive) {
        archiver.keep(gateway.store.clone(), item);
    }
    let reason = outcome.answer.reason();
    let latency = started.elapsed();
    let status = outcome.answer.status().as_u16();
    trace::answered(
        &span,
        status,
        outcome.answer.outcome(),
        reason,
        outcome.new,
        outcome.duplicates,
    );
    RequestRecord {
        source: config.source.name(),
        provider: config.source.provider().id(),
        method: parts.method.as_str(),
        path: parts.uri.path(),
        status,
        outcome: outcome.answer.outcome(),
        reason,
        diagnosis: outcome.diagnosis.as_ref(),
        events: outcome.new,
        duplicates: outcome.duplicates,
        latency,
    }
    .emit();
    gateway.activity.record(RequestEntry {
        time: outcome.received.unwrap_or_else(|| gateway.clock.now()),
        routed: Routed::Source {
            index: u32::try_from(route.source).unwrap_or(u32::MAX),
            suffix: route.endpoint.suffix,
        },
        method: parts.method.clone(),
        status,
        outcome: outcome.answer.outcome(),
        reason,
        diagnosis: outcome.diagnosis.map(Box::new),
        event_ids: outcome.event_ids,
        latency,
    });
    outcome.answer.into_response()
}

/// An answer and what it did to the store.
struct Outcome {
    answer: Answer,
    new: usize,
    duplicates: usize,
    /// The ids of the request's events (new and duplicate).
    event_ids: Vec<EventId>,
    /// Which known mistake a refused request makes, when it was diagnosed.
    diagnosis: Option<Diagnosed>,
    /// The time the request was verified against, when it got that far (the record reuses it
    /// rather than read the clock again).
    received: Option<jiff::Timestamp>,
    /// The request as the raw archive keeps it, when `[archive]` is on and it was stored.
    archive: Option<Archived>,
}

impl From<Answer> for Outcome {
    fn from(answer: Answer) -> Self {
        Self {
            answer,
            new: 0,
            duplicates: 0,
            event_ids: Vec::new(),
            diagnosis: None,
            received: None,
            archive: None,
        }
    }
}

async fn process(
    gateway: &Gateway,
    route: Route,
    config: &SourceConfig,
    parts: &Parts,
    body: Body,
    started: Instant,
    span: &Span,
) -> Outcome {
    if !config.allow_ips.is_empty() {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        // Without a peer address the allow-list cannot pass: fail closed.
        if !peer.is_some_and(|ip| config.allow_ips.iter().any(|net| net.contains(&ip))) {
            return Answer::AddressNotAllowed.into();
        }
    }
    if !route.endpoint.methods.contains(&parts.method) {
        return Answer::MethodNotAllowed(route.endpoint.methods).into();
    }
    // Providers send a few hundred bytes of headers; hyper already caps them at about 400 KiB.
    let header_bytes: usize = parts
        .headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len())
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Answer::HeadersTooLarge.into();
    }
    // The source's share, before a byte of the body is read; held until the answer.
    let _ticket = match gateway.admissions[route.source].admit() {
        Ok(ticket) => ticket,
        Err(refusal) => {
            return Answer::Throttled {
                status: config.source.provider().throttle().status(),
                retry_after: refusal.retry_after,
                reason: refusal.over.reason(),
            }
            .into();
        }
    };
    let deadline = started
        .checked_add(gateway.limits.request_timeout)
        .unwrap_or(started + std::time::Duration::from_secs(3600));
    let deadline = tokio::time::Instant::from_std(deadline);
    // Held until the request is answered: its body is held until then.
    let (body, _reservation) = match read_body(parts, body, &gateway.limits, deadline).await {
        Ok(read) => read,
        Err(answer) => return answer.into(),
    };
    let request = Request {
        method: &parts.method,
        endpoint: route.endpoint.suffix,
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        body: &body,
    };
    let source = &config.source;
    let now = gateway.clock.now();
    if let Some(handshake) = source.handshake(&request, now) {
        return match handshake {
            Ok(reply) => Answer::Handshake(reply),
            Err(rejection) => Answer::Rejected(rejection),
        }
        .into();
    }
    let step = trace::step(span, Step::Verify);
    let verified = source.verify(&request, now);
    trace::finish(step, &verified, "verified");
    let verified = match verified {
        Ok(verified) => verified,
        Err(rejection) => {
            let diagnosis = diagnose(gateway, config, &request, &rejection, now);
            return Outcome {
                diagnosis,
                received: Some(now),
                ..Answer::Rejected(rejection).into()
            };
        }
    };
    let draft = gateway
        .archive
        .as_ref()
        .map(|archiver| archiver.draft(route.source, source.name(), &request, &body, now));
    let step = trace::step(span, Step::Normalize);
    let normalization = source.normalize(verified, now);
    trace::normalized(step, &normalization);
    let mut normalization = match normalization {
        Ok(normalization) => normalization,
        // Authentic but not understood: kept for inspection.
        Err(rejection) if rejection.class() == RejectionClass::BadRequest => {
            let reason = rejection.to_string();
            let mut outcome = quarantine(
                gateway,
                config,
                parts,
                body.clone(),
                rejection,
                deadline,
                span,
            )
            .await;
            if matches!(outcome.answer, Answer::Rejected(_)) {
                outcome.archive = draft.map(|mut item| {
                    item.outcome = ArchivedOutcome::Quarantined(reason);
                    item
                });
            }
            return outcome;
        }
        // A payload whose kind needs more authentication than it came with (a Mews POS
        // webhook on the URL token alone): refused like a forgery, and not kept.
        Err(rejection) => return Answer::Rejected(rejection).into(),
    };
    // The events name the request's trace (CloudEvents distributed tracing), so that their
    // deliveries can link to it.
    if let Some(traceparent) = Traceparent::for_events(span) {
        let traceparent = traceparent.to_string();
        for normalized in &mut normalization.events {
            normalized.event.traceparent = Some(traceparent.clone());
        }
    }
    // What the archive records of the request's events (only when it is on).
    let stored: Option<Vec<(String, String)>> = draft.is_some().then(|| {
        normalization
            .events
            .iter()
            .map(|n| (n.event.id.clone(), n.event.event_type().as_str().to_owned()))
            .collect()
    });
    let mut outcome = store(gateway, config, normalization, deadline, span).await;
    outcome.received = Some(now);
    // A request of duplicates only is not archived: its first copy was (or was erased since).
    if matches!(outcome.answer, Answer::Accepted(_)) && outcome.new > 0 {
        outcome.archive = draft.map(|mut item| {
            item.outcome = ArchivedOutcome::Events(stored.unwrap_or_default());
            item
        });
    }
    outcome
}

/// For a signature or timestamp refusal, within the diagnosis budget: which known mistake
/// the request makes. For the operator only: it never changes the answer.
fn diagnose(
    gateway: &Gateway,
    config: &SourceConfig,
    request: &Request<'_>,
    rejection: &porter_providers::Rejection,
    now: jiff::Timestamp,
) -> Option<Diagnosed> {
    use porter_providers::Rejection;
    let worth_it = matches!(
        rejection,
        Rejection::SignatureMismatch | Rejection::MalformedSignature(_) | Rejection::StaleTimestamp
    );
    if !worth_it || !gateway.activity.may_diagnose() {
        return None;
    }
    let diagnosis = config.source.diagnose(request, rejection, now);
    let mut details = serde_json::to_value(&diagnosis).unwrap_or_default();
    if let Some(fields) = details.as_object_mut() {
        fields.remove("code");
    }
    Some(Diagnosed {
        code: diagnosis.code(),
        message: diagnosis.to_string(),
        details,
    })
}

/// Reads the body within the size limit, the body budget and the request deadline.
///
/// The bytes are reserved against the budget before they are buffered: a declared length
/// whole and up front (nothing is read when it does not fit), otherwise as they arrive. The
/// reservation is returned with the body and held until the request is answered.
async fn read_body(
    parts: &Parts,
    body: Body,
    limits: &crate::gateway::Limits,
    deadline: tokio::time::Instant,
) -> Result<(Bytes, Reservation), Answer> {
    let limit = limits.max_body_bytes;
    let declared = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(Answer::PayloadTooLarge);
    }
    // At most `limit`, which fits in usize.
    let declared = declared.map(|length| length as usize);
    let peer = parts.extensions.get::<Peer>().copied();
    let over_budget = |over: OverBudget| {
        metrics::counter!("porter_requests_refused_total", "listener" => "providers", "reason" => over.label())
            .increment(1);
        tracing::debug!(reason = over.label(), "body over budget");
        Answer::Busy
    };
    let mut reservation = limits
        .body_budget
        .reserve(peer, declared.unwrap_or(0))
        .map_err(over_budget)?;
    let read = async {
        let mut body = body;
        let mut first: Option<Bytes> = None;
        let mut rest = bytes::BytesMut::new();
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame.map_err(|_| Answer::IncompleteBody)?.into_data() else {
                continue; // trailers
            };
            let held = first.as_ref().map_or(0, Bytes::len) + rest.len();
            let total = held + data.len();
            if total > limit {
                return Err(Answer::PayloadTooLarge);
            }
            if total > reservation.bytes() {
                reservation
                    .grow(total - reservation.bytes())
                    .map_err(over_budget)?;
            }
            // The usual body is one frame: kept as it came, without a copy.
            match first.take() {
                None if rest.is_empty() => first = Some(data),
                None => rest.extend_from_slice(&data),
                Some(earlier) => {
                    rest.reserve(declared.unwrap_or(total).max(total));
                    rest.extend_from_slice(&earlier);
                    rest.extend_from_slice(&data);
                }
            }
        }
        Ok(first.unwrap_or_else(|| rest.freeze()))
    };
    match timeout_at(deadline, read).await {
        Err(_elapsed) => Err(Answer::RequestTimeout),
        Ok(Ok(body)) => Ok((body, reservation)),
        Ok(Err(answer)) => Err(answer),
    }
}

/// Dedupe-and-enqueue, then the provider's answer: the original one for a redelivery.
async fn store(
    gateway: &Gateway,
    config: &SourceConfig,
    normalization: Normalization,
    deadline: tokio::time::Instant,
    span: &Span,
) -> Outcome {
    if !gateway.intake_open() {
        tracing::warn!(
            source = config.source.name(),
            "not storing yet: delivery groups are being created"
        );
        return Answer::Unavailable.into();
    }
    let Normalization { mut events, reply } = normalization;
    let event_ids = events
        .iter()
        .filter_map(|n| EventId::parse(&n.event.id))
        .collect();
    let step = trace::step(span, Step::Store);
    // A status behind its message's highest is marked first (`statusregression`), then
    // everything is stored in the one atomic step.
    let enqueue = async {
        gateway
            .store
            .mark_status_regressions(&mut events, config.dedupe_ttl)
            .await?;
        gateway
            .store
            .enqueue(&events, &reply, config.dedupe_ttl)
            .await
    };
    let enqueued = timeout_at(deadline, enqueue).await;
    match &enqueued {
        Ok(Ok(enqueued)) => trace::stored(&step, enqueued.new, enqueued.duplicates),
        Ok(Err(error)) if !error.is_outage() => {
            trace::outcome(&step, "internal", None);
            trace::failed(&step);
        }
        Ok(Err(_)) | Err(_) => {
            trace::outcome(&step, "unavailable", None);
            trace::failed(&step);
        }
    }
    drop(step);
    match enqueued {
        Ok(Ok(enqueued)) => {
            let answer = match enqueued.original {
                Some(original) if enqueued.is_duplicate() => Answer::Duplicate(original),
                _ => Answer::Accepted(reply),
            };
            Outcome {
                answer,
                new: enqueued.new,
                duplicates: enqueued.duplicates,
                event_ids,
                diagnosis: None,
                received: None,
                archive: None,
            }
        }
        Ok(Err(error)) if error.is_outage() => {
            tracing::warn!(source = config.source.name(), %error, "store refused events");
            Answer::Unavailable.into()
        }
        Ok(Err(error)) => {
            tracing::error!(source = config.source.name(), %error, "events could not be stored");
            Answer::Internal.into()
        }
        Err(_elapsed) => {
            tracing::warn!(
                source = config.source.name(),
                "store did not answer in time"
            );
            Answer::Unavailable.into()
        }
    }
}

/// An authentic body that does not parse: 400, and the body is kept for inspection. If even
/// the quarantine fails the provider gets 503, so that the body is not lost.
async fn quarantine(
    gateway: &Gateway,
    config: &SourceConfig,
    parts: &Parts,
    body: Bytes,
    rejection: porter_providers::Rejection,
    deadline: tokio::time::Instant,
    span: &Span,
) -> Outcome {
    let item = Quarantined {
        source: config.source.name().to_owned(),
        reason: rejection.to_string(),
        received_at: gateway.clock.now(),
        content_type: parts
            .headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body,
    };
    let step = trace::step(span, Step::Quarantine);
    match timeout_at(deadline, gateway.store.quarantine(item)).await {
        Ok(Ok(())) => {
            trace::outcome(&step, "quarantined", None);
            Answer::Rejected(rejection).into()
        }
        Ok(Err(error)) if !error.is_outage() => {
            trace::outcome(&step, "internal", None);
            trace::failed(&step);
            tracing::error!(source = config.source.name(), %error, "a body could not be quarantined");
            Answer::Internal.into()
        }
        Ok(Err(_)) | Err(_) => {
            trace::outcome(&step, "unavailable", None);
            trace::failed(&step);
            Answer::Unavailable.into()
        }
    }
}
