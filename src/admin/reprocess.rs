//! `POST /api/reprocess`: a reprocess inside this server ([`crate::reprocess`]).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Deserialize;

use super::Admin;
use crate::reprocess::{Options, ReprocessError, run};

/// The body of `POST /api/reprocess`.
#[derive(Debug, Deserialize)]
pub(super) struct ApiRequest {
    pub source: String,
    /// How far back, like `"1h"` or `"7d"`.
    pub since: String,
    #[serde(default)]
    pub dry_run: bool,
}

/// `POST /api/reprocess`: runs a reprocess inside this server and answers its [`Summary`].
pub(super) async fn reprocess(
    State(admin): State<Arc<Admin>>,
    Json(asked): Json<ApiRequest>,
) -> Response {
    let problem = |status: StatusCode, code: &str, message: &str| {
        (
            status,
            Json(serde_json::json!({ "error": code, "message": message })),
        )
            .into_response()
    };
    let since = match porter_providers::settings::parse_duration(&asked.since) {
        Ok(back) => back,
        Err(message) => return problem(StatusCode::BAD_REQUEST, "bad_since", &message),
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
        Err(error @ ReprocessError::ArchiveOff) => {
            problem(StatusCode::CONFLICT, "archive_off", &error.to_string())
        }
        Err(error @ ReprocessError::UnknownSource(_)) => {
            problem(StatusCode::NOT_FOUND, "unknown_source", &error.to_string())
        }
        Err(ReprocessError::Store(error)) => super::api::store_error(&error),
    }
}
