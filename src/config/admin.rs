//! `[admin]`: the operator's listener, which serves the console, the admin API and `/metrics`.
//!
//! It is a second listener so that the providers' side never exposes anything but source
//! routes and health: a network policy can open the one to vendors and keep the other inside.
//! Everything on it is behind one token. A configuration file without `[admin]` runs no
//! admin listener (and says so at start-up); the embedded development default runs one on
//! 127.0.0.1:9090 with a random token, whose login URL `porter serve` prints.

use std::net::SocketAddr;

use porter_providers::Secret;
use serde::Deserialize;

use super::ConfigError;

/// Where the admin listener binds when `[admin]` does not say.
pub(super) const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9090";
/// The shortest token accepted: 24 characters.
pub(super) const MIN_TOKEN_CHARS: usize = 24;
/// Requests kept in the recent-requests ring, per instance.
pub(crate) const DEFAULT_RECENT_REQUESTS: usize = 10_000;
/// The most requests the ring may keep (about 300 bytes each).
const MAX_RECENT_REQUESTS: usize = 1_000_000;
/// The share of the last second's requests that may be diagnosed (a floor of
/// [`MIN_DIAGNOSES_PER_SECOND`] keeps a quiet source diagnosable).
pub(crate) const DEFAULT_DIAGNOSIS_SHARE: f64 = 0.1;
pub(crate) const MIN_DIAGNOSES_PER_SECOND: u32 = 10;

/// The `[admin]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AdminTable {
    pub listen: Option<String>,
    pub token: Option<Secret>,
    pub metrics_token: Option<Secret>,
    pub recent_requests: Option<usize>,
    pub diagnosis_share: Option<f64>,
}

/// A checked `[admin]`.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    /// Guards everything on the admin listener.
    pub token: Secret,
    /// Whether porter made the token up (the embedded default): then it prints the login URL.
    pub generated_token: bool,
    /// Accepted for `GET /metrics` only (a scraper need not hold the admin token).
    pub metrics_token: Option<Secret>,
    pub recent_requests: usize,
    /// At most this share of the requests of the last second are diagnosed when refused.
    pub diagnosis_share: f64,
}

/// Checks `[admin]`; `generate` makes a random token when none is configured (the embedded
/// default only: a file must set one).
pub(super) fn admin_config(
    table: AdminTable,
    server_listen: Option<SocketAddr>,
    generate: bool,
    errors: &mut Vec<ConfigError>,
) -> Option<AdminConfig> {
    let text = table.listen.as_deref().unwrap_or(DEFAULT_ADMIN_LISTEN);
    let listen: Option<SocketAddr> = match text.parse() {
        Ok(listen) => Some(listen),
        Err(_) => {
            errors.push(ConfigError::new(
                "admin.listen",
                format!("`{text}` is not an address like {DEFAULT_ADMIN_LISTEN}"),
            ));
            None
        }
    };
    if let (Some(admin), Some(server)) = (listen, server_listen)
        && admin == server
        && admin.port() != 0
    {
        errors.push(ConfigError::new(
            "admin.listen",
            "must differ from server.listen: the providers' listener serves source routes only",
        ));
    }
    let (token, generated_token) = match table.token {
        Some(token) if token.expose().chars().count() >= MIN_TOKEN_CHARS => (Some(token), false),
        Some(_) => {
            errors.push(ConfigError::new(
                "admin.token",
                format!(
                    "must be at least {MIN_TOKEN_CHARS} characters (generate one with \
                     `openssl rand -hex 24`)"
                ),
            ));
            (None, false)
        }
        None if generate => (Some(random_token()), true),
        None => {
            errors.push(ConfigError::new(
                "admin.token",
                format!(
                    "required: the password of the console and the admin API, at least \
                     {MIN_TOKEN_CHARS} characters (e.g. token = \"${{PORTER_ADMIN_TOKEN}}\")"
                ),
            ));
            (None, false)
        }
    };
    let recent_requests = match table.recent_requests.unwrap_or(DEFAULT_RECENT_REQUESTS) {
        n @ 1..=MAX_RECENT_REQUESTS => Some(n),
        _ => {
            errors.push(ConfigError::new(
                "admin.recent_requests",
                format!("must be between 1 and {MAX_RECENT_REQUESTS}"),
            ));
            None
        }
    };
    let diagnosis_share = match table.diagnosis_share.unwrap_or(DEFAULT_DIAGNOSIS_SHARE) {
        share if (0.0..=1.0).contains(&share) => Some(share),
        _ => {
            errors.push(ConfigError::new(
                "admin.diagnosis_share",
                "must be between 0 and 1 (the share of requests per second that may be diagnosed)",
            ));
            None
        }
    };
    let metrics_token = match table.metrics_token {
        Some(metrics) if metrics.expose().chars().count() < MIN_TOKEN_CHARS => {
            errors.push(ConfigError::new(
                "admin.metrics_token",
                format!("must be at least {MIN_TOKEN_CHARS} characters"),
            ));
            return None;
        }
        Some(metrics)
            if token
                .as_ref()
                .is_some_and(|token| token.expose() == metrics.expose()) =>
        {
            errors.push(ConfigError::new(
                "admin.metrics_token",
                "must differ from admin.token (it opens /metrics only)",
            ));
            return None;
        }
        metrics => metrics,
    };
    Some(AdminConfig {
        listen: listen?,
        token: token?,
        generated_token,
        metrics_token,
        recent_requests: recent_requests?,
        diagnosis_share: diagnosis_share?,
    })
}

/// 32 random bytes as 64 hex characters, from the operating system's generator.
fn random_token() -> Secret {
    let mut bytes = [0u8; 32];
    // Without the OS generator no token can be made safely; this cannot happen on the
    // platforms porter runs on, and failing loudly beats a guessable token.
    getrandom::fill(&mut bytes).expect("the operating system's random generator works");
    Secret::new(hex::encode(bytes))
}
