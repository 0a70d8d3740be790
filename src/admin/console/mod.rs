//! The console: HTML pages rendered on the server from what the admin API returns, with SVG
//! charts and no script. Its forms post to console routes that act and redirect back
//! (post/redirect/get), so a reload never repeats an action.

mod charts;
mod erasure;
mod format;
mod layout;
mod pages;

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use self::layout::{Section, page};
use super::api::{self, DeadLetterJson};
use super::{Admin, views};

/// How many rows a console list shows.
const ROWS: usize = 200;

pub(super) fn routes() -> axum::Router<Arc<Admin>> {
    axum::Router::new()
        .route("/", get(overview))
        .route("/requests", get(requests))
        .route("/events", get(events))
        .route("/events/{id}", get(event))
        .route("/dead-letters", get(dead_letters))
        .route("/dead-letters/replay", post(replay_all))
        .route("/dead-letters/{id}/replay", post(replay))
        .route("/destinations", get(destinations))
        .route("/destinations/{name}/pause", post(pause))
        .route("/destinations/{name}/resume", post(resume))
        .route("/alerts", get(alerts))
        .route("/guest-data", get(erasure::show).post(erasure::submit))
}

pub(super) async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("style.css"),
    )
        .into_response()
}

/// The login page (its body; the caller picks the status).
pub(super) fn login(problem: Option<&str>) -> Html<String> {
    Html(layout::login(problem).into_string())
}

fn html(markup: maud::Markup) -> Response {
    Html(markup.into_string()).into_response()
}

#[derive(Debug, Deserialize)]
pub(super) struct Done {
    pub(super) done: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WindowChoice {
    window: Option<String>,
}

async fn overview(State(admin): State<Arc<Admin>>, Query(choice): Query<WindowChoice>) -> Response {
    let overview = views::overview(&admin).await;
    let uptime = overview.now.as_second() - overview.started_at.as_second();
    let window = choice
        .window
        .as_deref()
        .and_then(pages::Window::parse)
        .unwrap_or_else(|| pages::Window::default_for(uptime));
    let stats = views::stats(&admin, window.seconds(), None);
    html(page(
        "Overview",
        Section::Overview,
        Some(10),
        pages::overview(&overview, &stats, window),
    ))
}

/// Sources that store events: the webhook sources and the OHIP stream sources.
fn event_source_names(admin: &Admin) -> Vec<String> {
    let mut names = source_names(admin);
    names.extend(
        admin
            .gateway
            .stream_statuses()
            .into_iter()
            .map(|s| s.source),
    );
    names
}

/// Sources that receive requests.
fn source_names(admin: &Admin) -> Vec<String> {
    admin
        .gateway
        .sources
        .iter()
        .map(|s| s.source.name().to_owned())
        .collect()
}

#[derive(Debug, Deserialize)]
struct RequestFilters {
    source: Option<String>,
    outcome: Option<String>,
}

async fn requests(
    State(admin): State<Arc<Admin>>,
    Query(filters): Query<RequestFilters>,
) -> Response {
    let query = api::request_query(filters.source, filters.outcome, Some(ROWS));
    let rows = admin.gateway.activity.requests(&query);
    html(page(
        "Requests",
        Section::Requests,
        None,
        pages::requests(
            &rows,
            &source_names(&admin),
            query.source.as_deref(),
            query.outcome.as_deref(),
        ),
    ))
}

#[derive(Debug, Deserialize)]
struct EventFilters {
    source: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
}

async fn events(State(admin): State<Arc<Admin>>, Query(filters): Query<EventFilters>) -> Response {
    let query = api::event_query(filters.source, filters.event_type, Some(ROWS));
    let body = match admin.gateway.store.recent_events(&query).await {
        Ok(events) => {
            let summaries: Vec<pages::EventSummary> = events
                .iter()
                .filter_map(|e| serde_json::from_str(&e.json).ok())
                .collect();
            pages::events(
                &summaries,
                &event_source_names(&admin),
                query.source.as_deref(),
                query.event_type.as_deref(),
            )
        }
        Err(error) => pages::store_problem(&error.to_string()),
    };
    html(page("Events", Section::Events, None, body))
}

async fn event(State(admin): State<Arc<Admin>>, Path(id): Path<String>) -> Response {
    match api::find(&admin, &id).await {
        Ok(Some((event, deliveries))) => {
            let pretty = serde_json::from_str::<serde_json::Value>(&event.json)
                .and_then(|v| serde_json::to_string_pretty(&v))
                .unwrap_or_else(|_| event.json.to_string());
            html(page(
                "Event",
                Section::Events,
                None,
                pages::event(&id, &pretty, &deliveries),
            ))
        }
        Ok(None) => (
            StatusCode::NOT_FOUND,
            Html(
                page(
                    "Not found",
                    Section::Events,
                    None,
                    pages::not_found("No such event among the newest stored."),
                )
                .into_string(),
            ),
        )
            .into_response(),
        Err(error) => html(page(
            "Event",
            Section::Events,
            None,
            pages::store_problem(&error.to_string()),
        )),
    }
}

async fn dead_letters(State(admin): State<Arc<Admin>>, Query(done): Query<Done>) -> Response {
    let listed = match &admin.schedules {
        None => Ok(Vec::new()),
        Some(schedules) => schedules.dead_letters(ROWS).await,
    };
    let body = match listed {
        Ok(dead) => {
            let dead: Vec<DeadLetterJson> = dead.iter().map(DeadLetterJson::from).collect();
            maud::html! { (pages::notice(done.done.as_deref())) (pages::dead_letters(&dead)) }
        }
        Err(error) => pages::store_problem(&error.to_string()),
    };
    html(page("Dead letters", Section::DeadLetters, None, body))
}

async fn replay(State(admin): State<Arc<Admin>>, Path(id): Path<String>) -> Response {
    let Some(schedules) = &admin.schedules else {
        return Redirect::to("/dead-letters?done=not_found").into_response();
    };
    match schedules.replay(&id, admin.gateway.clock.now_ms()).await {
        Ok(Some(destination)) => {
            tracing::info!(dead_letter = %id, %destination, "dead letter replayed from the console");
            Redirect::to("/dead-letters?done=replayed").into_response()
        }
        Ok(None) => Redirect::to("/dead-letters?done=not_found").into_response(),
        Err(error) => html(page(
            "Dead letters",
            Section::DeadLetters,
            None,
            pages::store_problem(&error.to_string()),
        )),
    }
}

async fn replay_all(State(admin): State<Arc<Admin>>) -> Response {
    if let Some(schedules) = &admin.schedules {
        match schedules.replay_all(admin.gateway.clock.now_ms()).await {
            Ok(count) => tracing::info!(count, "every dead letter replayed from the console"),
            Err(error) => {
                return html(page(
                    "Dead letters",
                    Section::DeadLetters,
                    None,
                    pages::store_problem(&error.to_string()),
                ));
            }
        }
    }
    Redirect::to("/dead-letters?done=replayed_all").into_response()
}

async fn destinations(State(admin): State<Arc<Admin>>, Query(done): Query<Done>) -> Response {
    let overview = views::overview(&admin).await;
    let body = maud::html! {
        (pages::notice(done.done.as_deref()))
        h1 { "Destinations" }
        (pages::destinations_table(&overview.destinations, Some(&admin.destinations)))
    };
    html(page("Destinations", Section::Destinations, None, body))
}

async fn pause(State(admin): State<Arc<Admin>>, Path(name): Path<String>) -> Response {
    match api::hold(&admin, &name, true).await {
        Ok(()) => Redirect::to("/destinations?done=paused").into_response(),
        Err(response) => response,
    }
}

async fn resume(State(admin): State<Arc<Admin>>, Path(name): Path<String>) -> Response {
    match api::hold(&admin, &name, false).await {
        Ok(()) => Redirect::to("/destinations?done=resumed").into_response(),
        Err(response) => response,
    }
}

async fn alerts(State(admin): State<Arc<Admin>>) -> Response {
    let snapshot = admin.alerts();
    html(page(
        "Alerts",
        Section::Alerts,
        Some(10),
        pages::alerts(&snapshot),
    ))
}
