//! `POST /api/erase` and `GET /api/erasures`: erasure on request, from the console, the CLI
//! (when it cannot open the store itself) or an operator's tools.
//!
//! The request body names the person by one of `phone`, `email` or `guest_id`; `source`
//! limits the erasure to one source; `dry_run` only counts. The answer is the report: counts
//! per kind, the value's keyed hash and the audit record. The value itself is never logged
//! or echoed.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::Admin;
use super::api::{ApiError, StoreFailure, error, store_error};
use crate::privacy::erase::{EraseError, Report, Request, erase as run};
use crate::privacy::{Person, PersonKind};
use crate::store::erase::ErasureRecord;

/// What `POST /api/erase` takes: exactly one of `phone`, `email` and `guest_id`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = EraseRequest)]
pub(super) struct EraseBody {
    /// A phone number (compared in E.164).
    phone: Option<String>,
    /// An email address (compared lower-cased).
    email: Option<String>,
    /// A guest's id in a PMS.
    guest_id: Option<String>,
    /// Only this source's data (a source's name).
    source: Option<String>,
    /// Only count what would be erased.
    #[serde(default)]
    dry_run: bool,
}

impl EraseBody {
    /// The one person named, or why not.
    pub(super) fn person(&self) -> Result<Person, String> {
        let named: Vec<(PersonKind, &String)> = [
            (PersonKind::Phone, &self.phone),
            (PersonKind::Email, &self.email),
            (PersonKind::GuestId, &self.guest_id),
        ]
        .into_iter()
        .filter_map(|(kind, value)| value.as_ref().map(|v| (kind, v)))
        .collect();
        match named.as_slice() {
            [(kind, value)] => {
                Person::new(*kind, value).map_err(|e| format!("{}: {e}", kind.as_str()))
            }
            [] => Err("name the person: one of phone, email, guest_id".to_owned()),
            _ => Err("name one of phone, email, guest_id, not several".to_owned()),
        }
    }
}

/// Erases one person's data.
///
/// From everything stored (events, quarantined bodies, archived requests, dead letters,
/// attempt records); keeps an audit record holding the value's keyed hash, never the value.
#[utoipa::path(
    post,
    path = "/api/erase",
    tag = "guest data",
    request_body = EraseBody,
    responses(
        (status = 200, description = "What was erased (or, with `dry_run`, would be)",
            body = Report),
        (status = 400, description = "`bad_request` (no JSON body), `bad_person` (none or \
            several of phone, email, guest_id, or a value that is not one); malformed JSON is \
            answered as text", content(
                (ApiError = "application/json"),
                (String = "text/plain"),
            )),
        (status = 404, description = "`not_found`: no such source", body = ApiError),
        (status = 409, description = "`no_privacy_key`: erasure needs `[privacy] key`",
            body = ApiError),
        (status = 415, description = "A body that is not `Content-Type: application/json`",
            body = String, content_type = "text/plain"),
        (status = 422, description = "JSON that is not an erase request (an unknown key, a \
            wrong type)", body = String, content_type = "text/plain"),
        StoreFailure,
    ),
)]
pub(super) async fn erase(
    State(admin): State<Arc<Admin>>,
    body: Option<Json<EraseBody>>,
) -> Response {
    let Some(Json(body)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "a JSON body: {\"phone\"|\"email\"|\"guest_id\": \"…\", \"source\": \"…\", \"dry_run\": true}",
        );
    };
    let person = match body.person() {
        Ok(person) => person,
        Err(message) => return error(StatusCode::BAD_REQUEST, "bad_person", &message),
    };
    let source = body.source.filter(|s| !s.is_empty());
    if let Some(name) = &source
        && !admin
            .gateway
            .sources
            .iter()
            .any(|s| s.source.name() == name)
        && !admin
            .gateway
            .stream_statuses()
            .iter()
            .any(|s| &s.source == name)
    {
        return error(StatusCode::NOT_FOUND, "not_found", "no such source");
    }
    let request = Request {
        person,
        source,
        dry_run: body.dry_run,
        remember_for: crate::privacy::erase::remember_for(&admin.gateway.sources),
    };
    let destinations = admin.delivered_destinations();
    let now = admin.gateway.clock.now();
    match run(
        &admin.gateway.store,
        &destinations,
        admin.privacy_key(),
        &request,
        now,
    )
    .await
    {
        Ok(report) => {
            tracing::info!(
                kind = report.kind.as_str(),
                token = %report.token,
                dry_run = report.dry_run,
                erased = report.erased.total(),
                "erasure from the admin API"
            );
            Json(report).into_response()
        }
        Err(EraseError::NoKey) => error(
            StatusCode::CONFLICT,
            "no_privacy_key",
            &EraseError::NoKey.to_string(),
        ),
        Err(EraseError::Store(e)) => store_error(&e),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ErasuresParams {
    /// At most this many (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// The answer of `GET /api/erasures`.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ErasureList {
    /// Newest first.
    pub erasures: Vec<ErasureRecord>,
}

/// The audit records of past erasures.
#[utoipa::path(
    get,
    path = "/api/erasures",
    tag = "guest data",
    params(ErasuresParams),
    responses(
        (status = 200, description = "Erasure records", body = ErasureList),
        StoreFailure,
    ),
)]
pub(super) async fn erasures(
    State(admin): State<Arc<Admin>>,
    Query(params): Query<ErasuresParams>,
) -> Response {
    let limit = params.limit.unwrap_or(100).clamp(1, 1_000);
    match admin.gateway.store.erasures(limit).await {
        Ok(erasures) => Json(ErasureList { erasures }).into_response(),
        Err(e) => store_error(&e),
    }
}
