//! `/api/*` (CONTRACT §6) and `/metrics`: JSON for the operator's tools.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{Admin, views};
use crate::activity::RequestQuery;
use crate::store::inspect::{DeadLetterView, EventQuery, StoredEvent};
use crate::store::{Attempt, StoreError};

/// Items a list returns unless `limit` says otherwise, and at most.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1_000;

fn limit(asked: Option<usize>) -> usize {
    asked.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
}

/// A JSON error answer.
pub(super) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": code, "message": message })),
    )
        .into_response()
}

/// 503 `store_unavailable` (down, slow or full: try again), or 500 `store_error` (a defect
/// or damaged data), with the store's reason.
pub(super) fn store_error(failure: &StoreError) -> Response {
    if failure.is_outage() {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            &failure.to_string(),
        )
    } else {
        tracing::error!(error = %failure, "the store could not answer");
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store_error",
            &failure.to_string(),
        )
    }
}

pub(super) async fn metrics() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::telemetry::metrics_handle().render(),
    )
        .into_response()
}

pub(super) async fn overview(State(admin): State<Arc<Admin>>) -> Response {
    Json(views::overview(&admin).await).into_response()
}

#[derive(Debug, Deserialize)]
pub(super) struct RequestsParams {
    source: Option<String>,
    outcome: Option<String>,
    limit: Option<usize>,
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

pub(super) async fn requests(
    State(admin): State<Arc<Admin>>,
    Query(params): Query<RequestsParams>,
) -> Response {
    let query = request_query(params.source, params.outcome, params.limit);
    let requests = admin.gateway.activity.requests(&query);
    Json(serde_json::json!({ "requests": requests })).into_response()
}

#[derive(Debug, Deserialize)]
pub(super) struct EventsParams {
    source: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    limit: Option<usize>,
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

pub(super) async fn events(
    State(admin): State<Arc<Admin>>,
    Query(params): Query<EventsParams>,
) -> Response {
    let query = event_query(params.source, params.event_type, params.limit);
    match admin.gateway.store.recent_events(&query).await {
        Ok(events) => {
            let events: Vec<Box<RawValue>> = events.iter().map(|e| raw(&e.json)).collect();
            Json(serde_json::json!({ "events": events })).into_response()
        }
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

pub(super) async fn event(State(admin): State<Arc<Admin>>, Path(id): Path<String>) -> Response {
    match find(&admin, &id).await {
        Ok(Some((event, deliveries))) => Json(serde_json::json!({
            "event": raw(&event.json),
            "deliveries": deliveries,
        }))
        .into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such event among the newest stored",
        ),
        Err(e) => store_error(&e),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct LimitParams {
    limit: Option<usize>,
}

#[derive(Debug, Serialize)]
pub(super) struct DeadLetterJson {
    pub id: String,
    pub destination: String,
    pub event_id: String,
    pub last_error: Option<String>,
    pub attempts: Vec<Attempt>,
    pub event: Box<RawValue>,
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

pub(super) async fn dead_letters(
    State(admin): State<Arc<Admin>>,
    Query(params): Query<LimitParams>,
) -> Response {
    let Some(schedules) = &admin.schedules else {
        return Json(serde_json::json!({ "dead_letters": [] })).into_response();
    };
    match schedules.dead_letters(limit(params.limit)).await {
        Ok(dead) => {
            let dead: Vec<DeadLetterJson> = dead.iter().map(DeadLetterJson::from).collect();
            Json(serde_json::json!({ "dead_letters": dead })).into_response()
        }
        Err(e) => store_error(&e),
    }
}

pub(super) async fn replay(State(admin): State<Arc<Admin>>, Path(entry): Path<String>) -> Response {
    let Some(schedules) = &admin.schedules else {
        return error(StatusCode::NOT_FOUND, "not_found", "no such dead letter");
    };
    let now = admin.gateway.clock.now_ms();
    match schedules.replay(&entry, now).await {
        Ok(Some(destination)) => {
            tracing::info!(dead_letter = %entry, %destination, "dead letter replayed from the admin API");
            Json(serde_json::json!({ "replayed": entry, "destination": destination }))
                .into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, "not_found", "no such dead letter"),
        Err(e) => store_error(&e),
    }
}

pub(super) async fn replay_all(State(admin): State<Arc<Admin>>) -> Response {
    let Some(schedules) = &admin.schedules else {
        return Json(serde_json::json!({ "replayed": 0 })).into_response();
    };
    let now = admin.gateway.clock.now_ms();
    match schedules.replay_all(now).await {
        Ok(count) => {
            tracing::info!(count, "every dead letter replayed from the admin API");
            Json(serde_json::json!({ "replayed": count })).into_response()
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

pub(super) async fn pause(State(admin): State<Arc<Admin>>, Path(name): Path<String>) -> Response {
    match hold(&admin, &name, true).await {
        Ok(()) => Json(serde_json::json!({ "destination": name, "paused": true })).into_response(),
        Err(response) => response,
    }
}

pub(super) async fn resume(State(admin): State<Arc<Admin>>, Path(name): Path<String>) -> Response {
    match hold(&admin, &name, false).await {
        Ok(()) => Json(serde_json::json!({ "destination": name, "paused": false })).into_response(),
        Err(response) => response,
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct StatsParams {
    window: Option<String>,
    source: Option<String>,
}

/// `5m`, `15m`, `1h`, `600s`…: a window of at most an hour.
pub(super) fn window_seconds(text: Option<&str>) -> Result<i64, String> {
    let Some(text) = text else {
        return Ok(3600);
    };
    let seconds = humantime::parse_duration(text)
        .map_err(|_| format!("`window` must be a duration like 5m or 1h, not `{text}`"))?
        .as_secs();
    match i64::try_from(seconds) {
        Ok(seconds @ 10..=3600) => Ok(seconds),
        _ => Err("`window` must be between 10s and 1h".to_owned()),
    }
}

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
pub(super) async fn alerts(State(admin): State<Arc<Admin>>) -> Response {
    Json(admin.alerts()).into_response()
}
