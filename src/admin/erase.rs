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
use serde::Deserialize;

use super::Admin;
use super::api::{error, store_error};
use crate::privacy::erase::{EraseError, Request, erase as run};
use crate::privacy::{Person, PersonKind};

/// What `POST /api/erase` takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EraseBody {
    phone: Option<String>,
    email: Option<String>,
    guest_id: Option<String>,
    source: Option<String>,
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

#[derive(Debug, Deserialize)]
pub(super) struct ErasuresParams {
    limit: Option<usize>,
}

pub(super) async fn erasures(
    State(admin): State<Arc<Admin>>,
    Query(params): Query<ErasuresParams>,
) -> Response {
    let limit = params.limit.unwrap_or(100).clamp(1, 1_000);
    match admin.gateway.store.erasures(limit).await {
        Ok(records) => Json(serde_json::json!({ "erasures": records })).into_response(),
        Err(e) => store_error(&e),
    }
}
