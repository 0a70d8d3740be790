//! Who may use the admin listener: whoever holds the token.
//!
//! - The API takes `Authorization: Bearer <token>`.
//! - The console's login (`GET /login?token=…`, or the form at `/login`) sets a session cookie
//!   (`HttpOnly`, `SameSite=Strict`) and redirects to `/`, so the token leaves the address bar
//!   and the history at once. The cookie holds a random session id ([`super::sessions`]),
//!   never the token; `POST /logout` ends that session and `POST /api/sessions/revoke` ends
//!   every one.
//! - `[admin] metrics_token`, when set, is accepted for `GET /metrics` and nothing else: a
//!   Prometheus server holds a key that can read figures, not erase, replay or pause.
//! - A state-changing request (anything but GET/HEAD) authenticated by the cookie must carry
//!   an `Origin` that is this listener's own: another site cannot make a logged-in browser
//!   replay dead letters. A bearer token cannot be sent by another site, so it needs none.
//!
//! Tokens and MACs are compared in constant time.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use porter_providers::signing::tokens_match;
use serde::Deserialize;

use super::Admin;
use super::api::ApiError;
use super::console;
use super::sessions::SESSION_SECONDS;

/// The session cookie's name.
pub(super) const COOKIE: &str = "porter_session";

pub(super) fn routes() -> axum::Router<Arc<Admin>> {
    axum::Router::new()
        .route("/login", get(login_page).post(login_form))
        .route("/logout", axum::routing::post(logout))
}

/// How a request proved itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Credential {
    Bearer,
    Cookie,
}

/// Lets through requests with the token or a valid session; anything else is 401 (the login
/// page for the console, JSON for the API), and a cookie-authenticated state change from
/// another origin is 403.
pub(super) async fn require(
    State(admin): State<Arc<Admin>>,
    request: Request,
    next: Next,
) -> Response {
    let now = admin.gateway.clock.now().as_second();
    let Some(credential) = credential(&admin, request.headers(), now) else {
        if is_metrics_scrape(&admin, &request) {
            return next.run(request).await;
        }
        return unauthorized(request.uri().path());
    };
    let changes_state = !matches!(*request.method(), Method::GET | Method::HEAD);
    if changes_state && credential == Credential::Cookie && !same_origin(request.headers()) {
        return (
            StatusCode::FORBIDDEN,
            axum::Json(ApiError::new("foreign_origin", None)),
        )
            .into_response();
    }
    next.run(request).await
}

fn credential(admin: &Admin, headers: &HeaderMap, now: i64) -> Option<Credential> {
    let token = admin.token.expose().as_bytes();
    if let Some(given) = bearer(headers) {
        return tokens_match(given, token).then_some(Credential::Bearer);
    }
    cookie_value(headers)
        .filter(|value| admin.sessions.valid(value, now))
        .map(|_| Credential::Cookie)
}

fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
}

/// `GET /metrics` with `[admin] metrics_token`: the one thing that token opens.
fn is_metrics_scrape(admin: &Admin, request: &Request) -> bool {
    let Some(metrics_token) = &admin.metrics_token else {
        return false;
    };
    matches!(*request.method(), Method::GET | Method::HEAD)
        && request.uri().path() == "/metrics"
        && bearer(request.headers())
            .is_some_and(|given| tokens_match(given, metrics_token.expose().as_bytes()))
}

fn unauthorized(path: &str) -> Response {
    if path.starts_with("/api/") || path == "/metrics" {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            axum::Json(ApiError::new("unauthorized", None)),
        )
            .into_response()
    } else {
        (StatusCode::UNAUTHORIZED, console::login(None)).into_response()
    }
}

/// Whether `Origin` names the host this request was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let (Some(origin), Some(host)) = (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    let Some(authority) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    authority.eq_ignore_ascii_case(host)
}

/// The session cookie's value, if the request carries one.
fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then_some(value)
        })
}

#[derive(Debug, Deserialize)]
struct Login {
    token: Option<String>,
}

/// `GET /login`: the form; `GET /login?token=…`: log in and leave the token behind.
async fn login_page(State(admin): State<Arc<Admin>>, Query(login): Query<Login>) -> Response {
    match login.token {
        None => console::login(None).into_response(),
        Some(token) => log_in(&admin, &token),
    }
}

/// `POST /login` from the form.
async fn login_form(State(admin): State<Arc<Admin>>, Form(login): Form<Login>) -> Response {
    log_in(&admin, login.token.as_deref().unwrap_or_default())
}

fn log_in(admin: &Admin, given: &str) -> Response {
    let token = admin.token.expose().as_bytes();
    if !tokens_match(given.as_bytes(), token) {
        tracing::warn!("admin login with a wrong token");
        return (
            StatusCode::UNAUTHORIZED,
            console::login(Some("That token is not the one porter was given.")),
        )
            .into_response();
    }
    let session = admin.sessions.open(admin.gateway.clock.now().as_second());
    let cookie =
        format!("{COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}");
    let mut response = Redirect::to("/").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// The answer of `POST /api/sessions/revoke`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(super) struct SessionsEnded {
    /// How many sessions were open.
    pub ended: usize,
}

/// Ends every console session, without changing the token.
#[utoipa::path(
    post,
    path = "/api/sessions/revoke",
    tag = "sessions",
    responses((status = 200, description = "Every session ended", body = SessionsEnded)),
)]
pub(super) async fn revoke_all(State(admin): State<Arc<Admin>>) -> Response {
    let ended = admin
        .sessions
        .end_all(admin.gateway.clock.now().as_second());
    tracing::info!(ended, "every console session ended from the admin API");
    axum::Json(SessionsEnded { ended }).into_response()
}

/// `POST /logout`: ends this session (its cookie is refused from now on) and clears the cookie.
async fn logout(State(admin): State<Arc<Admin>>, headers: HeaderMap) -> Response {
    if let Some(session) = cookie_value(&headers) {
        admin.sessions.end(session);
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("porter_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_origin_must_be_this_listener() {
        let headers = |origin: Option<&str>| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:9090"));
            if let Some(origin) = origin {
                headers.insert(
                    header::ORIGIN,
                    HeaderValue::from_str(origin).expect("value"),
                );
            }
            headers
        };
        assert!(same_origin(&headers(Some("http://127.0.0.1:9090"))));
        assert!(!same_origin(&headers(Some("http://evil.example"))));
        assert!(!same_origin(&headers(Some("http://127.0.0.1:9091"))));
        assert!(!same_origin(&headers(Some("null"))));
        assert!(!same_origin(&headers(None)));
    }
}
