//! Who may use the admin listener: whoever holds the token.
//!
//! - The API takes `Authorization: Bearer <token>`.
//! - The console's login (`GET /login?token=…`, or the form at `/login`) sets a session cookie
//!   (`HttpOnly`, `SameSite=Strict`) and redirects to `/`, so the token leaves the address bar
//!   and the history at once. The cookie is `<expiry>.<HMAC-SHA256(token, expiry)>`: nothing
//!   to store, valid on every instance that shares the token, void when the token changes,
//!   and it never contains the token.
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
use porter_providers::signing::{Algorithm, ct_eq, hmac, tokens_match};
use serde::Deserialize;

use super::Admin;
use super::console;

/// The session cookie's name.
pub const COOKIE: &str = "porter_session";
/// How long a console session lasts.
const SESSION_SECONDS: i64 = 12 * 60 * 60;

pub fn routes() -> axum::Router<Arc<Admin>> {
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
pub async fn require(State(admin): State<Arc<Admin>>, request: Request, next: Next) -> Response {
    let now = admin.gateway.clock.now().as_second();
    let Some(credential) = credential(&admin, request.headers(), now) else {
        return unauthorized(request.uri().path());
    };
    let changes_state = !matches!(*request.method(), Method::GET | Method::HEAD);
    if changes_state && credential == Credential::Cookie && !same_origin(request.headers()) {
        return (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"error":"foreign_origin"}"#,
        )
            .into_response();
    }
    next.run(request).await
}

fn credential(admin: &Admin, headers: &HeaderMap, now: i64) -> Option<Credential> {
    let token = admin.token.expose().as_bytes();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
    if let Some(given) = bearer {
        return tokens_match(given, token).then_some(Credential::Bearer);
    }
    cookie_value(headers)
        .filter(|value| session_valid(token, value, now))
        .map(|_| Credential::Cookie)
}

fn unauthorized(path: &str) -> Response {
    if path.starts_with("/api/") || path == "/metrics" {
        (
            StatusCode::UNAUTHORIZED,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::WWW_AUTHENTICATE, "Bearer"),
            ],
            r#"{"error":"unauthorized"}"#,
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

/// `<expiry>.<hex MAC>` for a session ending at `expiry` (Unix seconds).
fn session(token: &[u8], expiry: i64) -> String {
    let mac = hmac(
        Algorithm::Sha256,
        token,
        &[b"porter-session:", expiry.to_string().as_bytes()],
    );
    format!("{expiry}.{}", hex::encode(mac))
}

fn session_valid(token: &[u8], value: &str, now: i64) -> bool {
    let Some((expiry, mac)) = value.split_once('.') else {
        return false;
    };
    let (Ok(expiry), Ok(mac)) = (expiry.parse::<i64>(), hex::decode(mac)) else {
        return false;
    };
    let expected = hmac(
        Algorithm::Sha256,
        token,
        &[b"porter-session:", expiry.to_string().as_bytes()],
    );
    ct_eq(&mac, &expected) && expiry > now
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
    let expiry = admin.gateway.clock.now().as_second() + SESSION_SECONDS;
    let cookie = format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}",
        session(token, expiry)
    );
    let mut response = Redirect::to("/").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn logout() -> Response {
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
    fn a_session_is_valid_until_it_expires_and_only_for_its_token() {
        let token = b"a-token-of-at-least-24-characters";
        let value = session(token, 1_000);
        assert!(session_valid(token, &value, 999));
        assert!(!session_valid(token, &value, 1_000), "expired");
        assert!(!session_valid(
            b"another-token-of-24-characters!",
            &value,
            999
        ));
        let forged = value.replacen("1000.", "9999.", 1);
        assert!(!session_valid(token, &forged, 999), "the expiry is signed");
        for bad in ["", ".", "1000", "1000.zz", "x.00"] {
            assert!(!session_valid(token, bad, 0), "{bad}");
        }
        assert!(
            !value.contains("a-token"),
            "the cookie never holds the token"
        );
    }

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
