//! `/api/*` (CONTRACT §6) and `/metrics`: JSON for the operator's tools.
//!
//! Each handler carries its `#[utoipa::path]`: the path, parameters and every answer it gives,
//! with the types it serialises. `openapi.rs` registers the handlers by those attributes, so
//! the route and its documentation are one registration.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, IntoResponses, ToSchema};

use super::openapi::CanonicalEvent;
use super::{Admin, views};
use crate::activity::{RecentRequest, RequestQuery};
use crate::store::inspect::{DeadLetterView, EventQuery, StoredEvent};
use crate::store::{Attempt, StoreError};

/// Items a list returns unless `limit` says otherwise, and at most.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1_000;

fn limit(asked: Option<usize>) -> usize {
    asked.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
}

/// Every refusal of the admin API: a code for programs, a sentence for people.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ApiError {
    /// What went wrong, to branch on: `unauthorized`, `foreign_origin`, `not_found`,
    /// `bad_window`, `store_unavailable`, …
    #[schema(example = "not_found")]
    pub error: String,
    /// What went wrong, in a sentence (absent from `unauthorized` and `foreign_origin`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl ApiError {
    pub(super) fn new(code: &str, message: Option<&str>) -> Self {
        Self {
            error: code.to_owned(),
            message: message.map(str::to_owned),
        }
    }
}

/// A JSON error answer.
pub(super) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(ApiError::new(code, Some(message)))).into_response()
}

/// How an operation that reads or writes the store answers when the store fails it.
#[derive(Debug, IntoResponses)]
pub(super) enum StoreFailure {
    /// `store_unavailable`: the store is down, slow or full; try again.
    #[response(status = 503)]
    Unavailable(ApiError),
    /// `store_error`: a defect or damaged data (logged on the server).
    #[response(status = 500)]
    Broken(ApiError),
}

impl StoreFailure {
    fn of(failure: &StoreError) -> Self {
        let message = failure.to_string();
        if failure.is_outage() {
            Self::Unavailable(ApiError::new("store_unavailable", Some(&message)))
        } else {
            tracing::error!(error = %failure, "the store could not answer");
            Self::Broken(ApiError::new("store_error", Some(&message)))
        }
    }
}

impl IntoResponse for StoreFailure {
    fn into_response(self) -> Response {
        match self {
            Self::Unavailable(body) => (StatusCode::SERVICE_UNAVAILABLE, Json(body)),
            Self::Broken(body) => (StatusCode::INTERNAL_SERVER_ERROR, Json(body)),
        }
        .into_response()
    }
}

/// 503 `store_unavailable` (down, slow or full: try again), or 500 `store_error` (a defect
/// or damaged data), with the store's reason.
pub(super) fn store_error(failure: &StoreError) -> Response {
    StoreFailure::of(failure).into_response()
}

/// Prometheus metrics, in its text format.
///
/// `[admin] metrics_token` opens this and nothing else.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "metrics",
    security(("bearer" = []), ("session" = []), ("metrics_token" = [])),
    responses(
        (status = 200, description = "Every metric of this instance", body = String,
            content_type = "text/plain; version=0.0.4"),
    ),
)]
pub(super) async fn metrics() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::telemetry::metrics_handle().render(),
    )
        .into_response()
}

/// This instance at a glance.
///
/// Per source and destination, the figures of the last 5 minutes and hour; the store's health;
/// the OHIP streams.
#[utoipa::path(
    get,
    path = "/api/overview",
    tag = "overview",
    responses((status = 200, description = "This instance's overview", body = views::Overview)),
)]
pub(super) async fn overview(State(admin): State<Arc<Admin>>) -> Response {
    Json(views::overview(&admin).await).into_response()
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct RequestsParams {
    /// Only this source's requests (a source's name).
    source: Option<String>,
    /// Only requests with this outcome: `accepted`, `duplicate`, `rejected`, `not_found`, …
    outcome: Option<String>,
    /// At most this many (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// The answer of `GET /api/requests`.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct RequestList {
    /// Newest first.
    pub requests: Vec<RecentRequest>,
}

pub(super) fn request_query(
    source: Option<String>,
    outcome: Option<String>,
    limit_asked: Option<usize>,
) -> RequestQuery {
    RequestQuery {
        source: source.filter(|s| !s.is_empty()),
        outcome: outcome.filter(|s| !s.is_empty()),
        limit: limit(limit_asked),
    }
}

/// Recent requests on the providers' listener.
///
/// As this instance recorded them, newest first: never bodies, query strings or secrets.
#[utoipa::path(
    get,
    path = "/api/requests",
    tag = "requests",
    params(RequestsParams),
    responses((status = 200, description = "Recent requests, newest first", body = RequestList)),
)]
pub(super) async fn requests(
    State(admin): State<Arc<Admin>>,
    Query(params): Query<RequestsParams>,
) -> Response {
    let query = request_query(params.source, params.outcome, params.limit);
    let requests = admin.gateway.activity.requests(&query);
    Json(RequestList { requests }).into_response()
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct EventsParams {
    /// Only this source's events (a source's name).
    source: Option<String>,
    /// Only events of this type (`message.received`, …).
    #[serde(rename = "type")]
    event_type: Option<String>,
    /// At most this many (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// The answer of `GET /api/events`.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct EventList {
    /// Canonical events, newest first.
    #[schema(value_type = Vec<CanonicalEvent>)]
    pub events: Vec<Box<RawValue>>,
}

/// The answer of `GET /api/events/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct EventDetail {
    #[schema(value_type = CanonicalEvent)]
    pub event: Box<RawValue>,
    /// Where the event stands with each destination.
    pub deliveries: Vec<views::Delivery>,
}

pub(super) fn event_query(
    source: Option<String>,
    event_type: Option<String>,
    limit_asked: Option<usize>,
) -> EventQuery {
    EventQuery {
        source: source.filter(|s| !s.is_empty()),
        event_type: event_type.filter(|s| !s.is_empty()),
        limit: limit(limit_asked),
    }
}

/// A stored event's JSON as it is (it was serialised by porter; anything else is `null`).
fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_owned())
        .unwrap_or_else(|_| RawValue::from_string("null".to_owned()).expect("null is JSON"))
}

/// Recent stored events, newest first.
#[utoipa::path(
    get,
    path = "/api/events",
    tag = "events",
    params(EventsParams),
    responses(
        (status = 200, description = "Recent events, newest first", body = EventList),
        StoreFailure,
    ),
)]
pub(super) async fn events(
    State(admin): State<Arc<Admin>>,
    Query(params): Query<EventsParams>,
) -> Response {
    let query = event_query(params.source, params.event_type, params.limit);
    match admin.gateway.store.recent_events(&query).await {
        Ok(events) => Json(EventList {
            events: events.iter().map(|e| raw(&e.json)).collect(),
        })
        .into_response(),
        Err(e) => store_error(&e),
    }
}

/// The event with `id` and where it stands with every destination.
pub(super) async fn find(
    admin: &Admin,
    id: &str,
) -> Result<Option<(StoredEvent, Vec<views::Delivery>)>, StoreError> {
    let Some(event) = admin.gateway.store.find_event(id).await? else {
        return Ok(None);
    };
    let deliveries = views::deliveries(admin, &event).await?;
    Ok(Some((event, deliveries)))
}

/// One stored event and, per destination, its state and every attempt.
#[utoipa::path(
    get,
    path = "/api/events/{id}",
    tag = "events",
    params(("id" = String, Path, description = "The event's id (`evt_` + 32 hex digits)")),
    responses(
        (status = 200, description = "The event and its deliveries", body = EventDetail),
        (status = 404, description = "`not_found`: no such event among the newest stored",
            body = ApiError),
        StoreFailure,
    ),
)]
pub(super) async fn event(State(admin): State<Arc<Admin>>, Path(id): Path<String>) -> Response {
    match find(&admin, &id).await {
        Ok(Some((event, deliveries))) => Json(EventDetail {
            event: raw(&event.json),
            deliveries,
        })
        .into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such event among the newest stored",
        ),
        Err(e) => store_error(&e),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct LimitParams {
    /// At most this many (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// A dead letter: an event a destination did not take after every retry.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DeadLetter)]
pub(super) struct DeadLetterJson {
    /// The entry's id, for `POST /api/dlq/{entry}/replay`.
    pub id: String,
    pub destination: String,
    pub event_id: String,
    /// The last attempt's outcome.
    pub last_error: Option<String>,
    pub attempts: Vec<Attempt>,
    /// The event, or `null` when the store no longer holds it.
    #[schema(value_type = Option<CanonicalEvent>)]
    pub event: Box<RawValue>,
}

/// The answer of `GET /api/dlq`.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct DeadLetterList {
    pub dead_letters: Vec<DeadLetterJson>,
}

/// The answer of `POST /api/dlq/{entry}/replay`.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Replayed {
    /// The dead letter's id.
    pub replayed: String,
    /// The destination it is scheduled for again.
    pub destination: String,
}

/// The answer of `POST /api/dlq/replay`.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ReplayedAll {
    /// How many dead letters were scheduled again.
    pub replayed: usize,
}

impl From<&DeadLetterView> for DeadLetterJson {
    fn from(dead: &DeadLetterView) -> Self {
        Self {
            id: dead.id.clone(),
            destination: dead.destination.clone(),
            event_id: dead.event_id.clone(),
            last_error: dead.attempts.last().map(|a| a.outcome.to_string()),
            attempts: dead.attempts.clone(),
            event: raw(if dead.event.is_empty() {
                "null"
            } else {
                &dead.event
            }),
        }
    }
}

/// The dead letters of every destination.
#[utoipa::path(
    get,
    path = "/api/dlq",
    tag = "dead letters",
    params(LimitParams),
    responses(
        (status = 200, description = "Dead letters", body = DeadLetterList),
        StoreFailure,
    ),
)]
pub(super) async fn dead_letters(
    State(admin): State<Arc<Admin>>,
    Query(params): Query<LimitParams>,
) -> Response {
    let Some(schedules) = &admin.schedules else {
        return Json(DeadLetterList {
            dead_letters: Vec::new(),
        })
        .into_response();
    };
    match schedules.dead_letters(limit(params.limit)).await {
        Ok(dead) => Json(DeadLetterList {
            dead_letters: dead.iter().map(DeadLetterJson::from).collect(),
        })
        .into_response(),
        Err(e) => store_error(&e),
    }
}

/// Schedules one dead letter again, for its destination, now.
#[utoipa::path(
    post,
    path = "/api/dlq/{entry}/replay",
    tag = "dead letters",
    params(("entry" = String, Path, description = "The dead letter's `id`")),
    responses(
        (status = 200, description = "Scheduled again", body = Replayed),
        (status = 404, description = "`not_found`: no such dead letter", body = ApiError),
        StoreFailure,
    ),
)]
pub(super) async fn replay(State(admin): State<Arc<Admin>>, Path(entry): Path<String>) -> Response {
    let Some(schedules) = &admin.schedules else {
        return error(StatusCode::NOT_FOUND, "not_found", "no such dead letter");
    };
    let now = admin.gateway.clock.now_ms();
    match schedules.replay(&entry, now).await {
        Ok(Some(destination)) => {
            tracing::info!(dead_letter = %entry, %destination, "dead letter replayed from the admin API");
            Json(Replayed {
                replayed: entry,
                destination,
            })
            .into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, "not_found", "no such dead letter"),
        Err(e) => store_error(&e),
    }
}

/// Schedules every dead letter again, now.
#[utoipa::path(
    post,
    path = "/api/dlq/replay",
    tag = "dead letters",
    responses(
        (status = 200, description = "How many were scheduled again", body = ReplayedAll),
        StoreFailure,
    ),
)]
pub(super) async fn replay_all(State(admin): State<Arc<Admin>>) -> Response {
    let Some(schedules) = &admin.schedules else {
        return Json(ReplayedAll { replayed: 0 }).into_response();
    };
    let now = admin.gateway.clock.now_ms();
    match schedules.replay_all(now).await {
        Ok(count) => {
            tracing::info!(count, "every dead letter replayed from the admin API");
            Json(ReplayedAll { replayed: count }).into_response()
        }
        Err(e) => store_error(&e),
    }
}

/// Holds or releases a destination: 404 for an unknown one, 409 for one porter does not
/// deliver to (a `redis_stream` group is read by its service).
pub(super) async fn hold(admin: &Admin, name: &str, paused: bool) -> Result<(), Response> {
    let Some(destination) = admin.destination(name) else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such destination",
        ));
    };
    if !destination.delivered_by_porter() {
        return Err(error(
            StatusCode::CONFLICT,
            "not_delivered_by_porter",
            "a redis_stream destination is read by its own consumers; porter cannot hold it",
        ));
    }
    let Some(schedules) = &admin.schedules else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such destination",
        ));
    };
    views::set_paused(schedules, name, paused)
        .await
        .map_err(|e| store_error(&e))?;
    tracing::info!(
        destination = name,
        paused,
        "destination {} from the admin API",
        if paused { "paused" } else { "resumed" }
    );
    Ok(())
}

/// The answer of `POST /api/destinations/{name}/pause` and `…/resume`.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Held {
    pub destination: String,
    /// Whether the destination's deliveries are now held.
    pub paused: bool,
}

/// Holds a destination's deliveries; events keep accumulating for it.
#[utoipa::path(
    post,
    path = "/api/destinations/{name}/pause",
    tag = "destinations",
    params(("name" = String, Path, description = "The destination's name")),
    responses(
        (status = 200, description = "Held", body = Held),
        (status = 404, description = "`not_found`: no such destination", body = ApiError),
        (status = 409, description = "`not_delivered_by_porter`: a `redis_stream` destination, \
            read by its own consumers", body = ApiError),
        StoreFailure,
    ),
)]
pub(super) async fn pause(State(admin): State<Arc<Admin>>, Path(name): Path<String>) -> Response {
    match hold(&admin, &name, true).await {
        Ok(()) => Json(Held {
            destination: name,
            paused: true,
        })
        .into_response(),
        Err(response) => response,
    }
}

/// Releases a destination held by pause.
#[utoipa::path(
    post,
    path = "/api/destinations/{name}/resume",
    tag = "destinations",
    params(("name" = String, Path, description = "The destination's name")),
    responses(
        (status = 200, description = "Released", body = Held),
        (status = 404, description = "`not_found`: no such destination", body = ApiError),
        (status = 409, description = "`not_delivered_by_porter`: a `redis_stream` destination, \
            read by its own consumers", body = ApiError),
        StoreFailure,
    ),
)]
pub(super) async fn resume(State(admin): State<Arc<Admin>>, Path(name): Path<String>) -> Response {
    match hold(&admin, &name, false).await {
        Ok(()) => Json(Held {
            destination: name,
            paused: false,
        })
        .into_response(),
        Err(response) => response,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct StatsParams {
    /// How far back: a duration from `10s` to `24h`, like `5m`; `1h` when absent. Up to an
    /// hour the points are 10 seconds apart, beyond it 5 minutes.
    #[param(example = "15m")]
    window: Option<String>,
    /// Only this source's requests (a source's name).
    source: Option<String>,
}

/// `5m`, `15m`, `1h`, `24h`, `600s`…: a window of at most a day.
pub(super) fn window_seconds(text: Option<&str>) -> Result<i64, String> {
    let Some(text) = text else {
        return Ok(views::ONE_HOUR);
    };
    let seconds = humantime::parse_duration(text)
        .map_err(|_| format!("`window` must be a duration like 5m or 1h, not `{text}`"))?
        .as_secs();
    match i64::try_from(seconds) {
        Ok(seconds @ 10..=views::ONE_DAY) => Ok(seconds),
        _ => Err("`window` must be between 10s and 24h".to_owned()),
    }
}

/// The charts' time series.
///
/// Points of requests per second by outcome, rejections, ingest p99 and delivery lag (10
/// seconds apart up to an hour, 5 minutes beyond), and the whole window's totals.
#[utoipa::path(
    get,
    path = "/api/stats",
    tag = "overview",
    params(StatsParams),
    responses(
        (status = 200, description = "The series, oldest point first", body = views::Stats),
        (status = 400, description = "`bad_window`: not a duration from 10s to 24h", body = ApiError),
    ),
)]
pub(super) async fn stats(
    State(admin): State<Arc<Admin>>,
    Query(params): Query<StatsParams>,
) -> Response {
    match window_seconds(params.window.as_deref()) {
        Ok(seconds) => Json(views::stats(
            &admin,
            seconds,
            params.source.as_deref().filter(|s| !s.is_empty()),
        ))
        .into_response(),
        Err(message) => error(StatusCode::BAD_REQUEST, "bad_window", &message),
    }
}

/// The alert rules, where each stands, the recent history (newest first) and the targets.
///
/// Empty lists without `[[alerts]]`. History and states are this instance's own.
#[utoipa::path(
    get,
    path = "/api/alerts",
    tag = "alerts",
    responses(
        (status = 200, description = "Rules, states, recent history and targets",
            body = crate::alerts::Snapshot),
    ),
)]
pub(super) async fn alerts(State(admin): State<Arc<Admin>>) -> Response {
    Json(admin.alerts()).into_response()
}
