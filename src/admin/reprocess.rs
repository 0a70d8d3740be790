//! `POST /api/reprocess`: a reprocess inside this server ([`crate::reprocess`]).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Deserialize;
use utoipa::ToSchema;

use super::Admin;
use super::api::{ApiError, StoreFailure, error, store_error};
use crate::reprocess::{Options, ReprocessError, Summary, run};

/// The body of `POST /api/reprocess`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ReprocessRequest)]
pub(super) struct ApiRequest {
    /// The source whose archived requests are read again.
    pub source: String,
    /// How far back, like `"1h"` or `"7d"`.
    #[schema(example = "1h")]
    pub since: String,
    /// Only report what would change.
    #[serde(default)]
    pub dry_run: bool,
}

/// Maps a source's archived requests again.
///
/// Verifies them again with today's secrets and normalizes them with today's code, storing as
/// new events what now maps (an event that was `unknown`, a body that was quarantined).
#[utoipa::path(
    post,
    path = "/api/reprocess",
    tag = "reprocess",
    request_body = ApiRequest,
    responses(
        (status = 200, description = "What changed (or, with `dry_run`, would)", body = Summary),
        (status = 400, description = "`bad_since`: not a duration; malformed JSON is answered \
            as text", content(
                (ApiError = "application/json"),
                (String = "text/plain"),
            )),
        (status = 404, description = "`unknown_source`: no such source", body = ApiError),
        (status = 409, description = "`archive_off`: the raw archive is not enabled",
            body = ApiError),
        (status = 415, description = "A body that is not `Content-Type: application/json`",
            body = String, content_type = "text/plain"),
        (status = 422, description = "JSON that is not a reprocess request (a missing key, a \
            wrong type)", body = String, content_type = "text/plain"),
        StoreFailure,
    ),
)]
pub(super) async fn reprocess(
    State(admin): State<Arc<Admin>>,
    Json(asked): Json<ApiRequest>,
) -> Response {
    let since = match porter_providers::settings::parse_duration(&asked.since) {
        Ok(back) => back,
        Err(message) => return error(StatusCode::BAD_REQUEST, "bad_since", &message),
    };
    let now = admin.gateway.clock.now();
    let since = jiff::SignedDuration::try_from(since)
        .ok()
        .and_then(|back| now.checked_sub(back).ok())
        .unwrap_or(Timestamp::MIN);
    let options = Options {
        source: asked.source,
        since,
        dry_run: asked.dry_run,
    };
    match run(&admin.gateway, &options).await {
        Ok(summary) => {
            tracing::info!(
                source = options.source,
                dry_run = options.dry_run,
                read = summary.read,
                failed_verification = summary.failed_verification,
                stored = summary.stored,
                "reprocessed from the admin API"
            );
            Json(summary).into_response()
        }
        Err(failure @ ReprocessError::ArchiveOff) => {
            error(StatusCode::CONFLICT, "archive_off", &failure.to_string())
        }
        Err(failure @ ReprocessError::UnknownSource(_)) => error(
            StatusCode::NOT_FOUND,
            "unknown_source",
            &failure.to_string(),
        ),
        Err(ReprocessError::Store(failure)) => store_error(&failure),
    }
}
