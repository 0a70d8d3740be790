//! A `[[sources]]` table with `provider = "oracle_ohip_stream"`: a source porter connects out
//! to (no `path`), with the OHIP Developer Portal's values.

use std::time::Duration;

use jiff::tz::TimeZone;
use porter_providers::Secret;
use porter_providers::oracle_ohip_stream::{valid_chain_code, valid_hotel_codes};
use serde::Deserialize;

use super::ConfigError;

/// Oracle's scope for client-credentials tokens in OCIM environments.
pub(super) const DEFAULT_SCOPE: &str = "urn:opc:hgbu:ws:__myscopes__";
/// OHIP keeps 7 days of events: a replay can reach that far back, so keys are kept as long.
pub(super) const DEFAULT_DEDUPE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The keys of a stream source besides `name`, `provider` and `dedupe_ttl`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OhipStreamTable {
    gateway_url: String,
    app_key: Secret,
    client_id: String,
    client_secret: Secret,
    #[serde(default)]
    enterprise_id: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    chain_code: String,
    #[serde(default)]
    hotel_codes: Vec<String>,
    #[serde(default)]
    delta: bool,
    /// The IANA zone OPERA writes its timestamps in (default UTC).
    #[serde(default)]
    timestamp_zone: Option<String>,
    /// How long to wait after a 4409 (default 120 s, plus up to a quarter of it as jitter).
    #[serde(default)]
    lockout: Option<String>,
    /// The least time between two connection attempts (default 10 s, at least 5 s).
    #[serde(default)]
    reconnect_delay: Option<String>,
    /// Rotate the token (and the connection) this often at most (default 50 min).
    #[serde(default)]
    rotate_every: Option<String>,
    /// porter's ping interval (default 10 s, at most 15 s).
    #[serde(default)]
    ping_every: Option<String>,
    /// Silence from the server that ends a connection (default 120 s).
    #[serde(default)]
    liveness: Option<String>,
    /// The single-consumer lease among instances sharing a Redis store (default 15 s):
    /// another instance takes over within this after the holder dies.
    #[serde(default)]
    lease: Option<String>,
    /// Accept an `http://` gateway (a local test gateway only): the client secret and every
    /// token then cross the network in clear. Warned at every start.
    #[serde(default)]
    insecure_allow_http: bool,
}

/// A checked stream source.
#[derive(Debug, Clone)]
pub struct OhipStreamConfig {
    pub name: String,
    pub gateway_url: reqwest::Url,
    /// `wss://{host}/subscriptions` (`ws://` for an `http://` gateway).
    pub ws_url: reqwest::Url,
    pub app_key: Secret,
    pub client_id: String,
    pub client_secret: Secret,
    pub enterprise_id: Option<String>,
    pub scope: String,
    pub chain_code: String,
    pub hotel_codes: Vec<String>,
    pub delta: bool,
    pub zone: TimeZone,
    pub lockout: Duration,
    pub reconnect_delay: Duration,
    pub rotate_every: Duration,
    pub ping_every: Duration,
    pub liveness: Duration,
    pub lease: Duration,
    pub dedupe_ttl: Duration,
    /// `insecure_allow_http`: the gateway is `http://` (warned at every start).
    pub insecure_http: bool,
}

impl OhipStreamConfig {
    /// Names the stream for its lease: OHIP allows one consumer per (gateway, app key, chain).
    /// A hash, so that the app key never appears in a key name.
    pub fn lease_key(&self) -> String {
        let digest = porter_providers::oracle_ohip_stream::key_hash(&format!(
            "{}|{}|{}",
            self.gateway_url,
            self.app_key.expose(),
            self.chain_code
        ));
        digest[..32].to_owned()
    }
}

/// Checks a stream source's table (`settings` = every key but `name`, `provider`, `path`,
/// `dedupe_ttl`, `allow_ips`).
pub(super) fn ohip_stream_config(
    key: &str,
    name: String,
    settings: toml::Table,
    dedupe_ttl: Option<Duration>,
    errors: &mut Vec<ConfigError>,
) -> Option<OhipStreamConfig> {
    let before = errors.len();
    let table: OhipStreamTable = match settings.try_into() {
        Ok(table) => table,
        Err(error) => {
            errors.push(ConfigError::new(
                key,
                super::redact::serde_message(&error.to_string()),
            ));
            return None;
        }
    };
    let gateway_url = match reqwest::Url::parse(&table.gateway_url) {
        Ok(url) if url.scheme() == "http" && url.host().is_some() && !table.insecure_allow_http => {
            errors.push(ConfigError::new(
                format!("{key}.gateway_url"),
                "must be https://: the client secret and the tokens cross it (for a local \
                 test gateway only, set insecure_allow_http = true)",
            ));
            None
        }
        Ok(url) if matches!(url.scheme(), "https" | "http") && url.host().is_some() => {
            Some(with_trailing_slash(url))
        }
        _ => {
            errors.push(ConfigError::new(
                format!("{key}.gateway_url"),
                "must be the environment's gateway URL, like https://ohip.example.com",
            ));
            None
        }
    };
    if !valid_chain_code(&table.chain_code) {
        errors.push(ConfigError::new(
            format!("{key}.chain_code"),
            "must be 1 to 20 letters, digits, spaces or _%#$&-",
        ));
    }
    if !table.hotel_codes.is_empty() && !valid_hotel_codes(&table.hotel_codes) {
        errors.push(ConfigError::new(
            format!("{key}.hotel_codes"),
            "each must be letters, digits, spaces or _%#$&-, at most 50 characters joined",
        ));
    }
    if table.app_key.expose().is_empty() || table.client_secret.expose().is_empty() {
        errors.push(ConfigError::new(
            format!("{key}.app_key"),
            "app_key and client_secret must not be empty",
        ));
    }
    if let Some(enterprise) = &table.enterprise_id
        && (enterprise.is_empty()
            || enterprise.len() > 8
            || !enterprise
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()))
    {
        errors.push(ConfigError::new(
            format!("{key}.enterprise_id"),
            "must be 1 to 8 upper-case letters or digits",
        ));
    }
    let zone = match table.timestamp_zone.as_deref() {
        None => Some(TimeZone::UTC),
        Some(zone) => TimeZone::get(zone)
            .map_err(|_| {
                errors.push(ConfigError::new(
                    format!("{key}.timestamp_zone"),
                    format!("`{zone}` is not a time zone name like UTC or Europe/Berlin"),
                ));
            })
            .ok(),
    };
    let mut wait = |field: &str, text: Option<&str>, default: Duration, range: (u64, u64)| {
        let value = match text {
            None => return Some(default),
            Some(text) => humantime::parse_duration(text).ok(),
        };
        match value {
            Some(value) if (range.0..=range.1).contains(&value.as_secs()) => Some(value),
            _ => {
                errors.push(ConfigError::new(
                    format!("{key}.{field}"),
                    format!("must be a duration from {} s to {} s", range.0, range.1),
                ));
                None
            }
        }
    };
    let lockout = wait(
        "lockout",
        table.lockout.as_deref(),
        Duration::from_secs(120),
        (1, 3600),
    );
    let reconnect_delay = wait(
        "reconnect_delay",
        table.reconnect_delay.as_deref(),
        Duration::from_secs(10),
        (5, 600),
    );
    let rotate_every = wait(
        "rotate_every",
        table.rotate_every.as_deref(),
        Duration::from_secs(50 * 60),
        (1, 3600),
    );
    let ping_every = wait(
        "ping_every",
        table.ping_every.as_deref(),
        Duration::from_secs(10),
        (1, 15),
    );
    let lease = wait(
        "lease",
        table.lease.as_deref(),
        Duration::from_secs(15),
        (3, 300),
    );
    let liveness = wait(
        "liveness",
        table.liveness.as_deref(),
        Duration::from_secs(120),
        (5, 3600),
    );
    if errors.len() > before {
        return None;
    }
    let gateway_url = gateway_url?;
    let insecure_http = gateway_url.scheme() == "http";
    let mut ws_url = gateway_url.clone();
    let scheme = if gateway_url.scheme() == "https" {
        "wss"
    } else {
        "ws"
    };
    ws_url.set_scheme(scheme).ok()?;
    ws_url.set_path("/subscriptions");
    ws_url.set_query(None);
    Some(OhipStreamConfig {
        name,
        gateway_url,
        ws_url,
        app_key: table.app_key,
        client_id: table.client_id,
        client_secret: table.client_secret,
        enterprise_id: table.enterprise_id,
        scope: table.scope.unwrap_or_else(|| DEFAULT_SCOPE.to_owned()),
        chain_code: table.chain_code,
        hotel_codes: table.hotel_codes,
        delta: table.delta,
        zone: zone?,
        lockout: lockout?,
        reconnect_delay: reconnect_delay?,
        rotate_every: rotate_every?,
        ping_every: ping_every?,
        liveness: liveness?,
        lease: lease?,
        dedupe_ttl: dedupe_ttl.unwrap_or(DEFAULT_DEDUPE_TTL),
        insecure_http,
    })
}

/// `Url::join` replaces the last segment unless the base ends in `/`.
fn with_trailing_slash(mut url: reqwest::Url) -> reqwest::Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}
