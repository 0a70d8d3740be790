//! `[[destinations]]`: where porter delivers the events it stored.
//!
//! An `http` destination is POSTed every matching event, signed with Standard Webhooks headers
//! under its `whsec_` secret, and retried on a schedule until it answers 2xx or the schedule
//! runs out (then the event goes to the dead-letter stream). A `redis_stream` destination is a
//! service that reads the stream itself: porter creates its consumer group on every stream
//! shard and reports how far behind it is.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use porter_providers::EventType;
use serde::Deserialize;

use super::{ConfigError, duration};

/// The retry schedule when a destination names none: about a day in all, front-loaded so that
/// a blip is retried within seconds.
pub const DEFAULT_RETRY: &[Duration] = &[
    Duration::from_secs(5),
    Duration::from_secs(60),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(60 * 60),
    Duration::from_secs(2 * 60 * 60),
    Duration::from_secs(4 * 60 * 60),
    Duration::from_secs(8 * 60 * 60),
    Duration::from_secs(8 * 60 * 60),
];
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_CONCURRENCY: usize = 16;

/// A checked destination.
#[derive(Debug, Clone)]
pub struct DestinationConfig {
    pub name: String,
    pub kind: DestinationKind,
    pub filter: Filter,
}

#[derive(Debug, Clone)]
pub enum DestinationKind {
    Http(HttpDestination),
    /// The service reads the stream itself with this consumer group.
    RedisStream,
}

impl DestinationKind {
    /// The `kind` as configured.
    pub fn name(&self) -> &'static str {
        match self {
            DestinationKind::Http(_) => "http",
            DestinationKind::RedisStream => "redis_stream",
        }
    }
}

/// How porter delivers to one HTTP endpoint.
#[derive(Debug, Clone)]
pub struct HttpDestination {
    pub url: reqwest::Url,
    /// The signing key: the base64 after `whsec_`, decoded.
    pub key: Vec<u8>,
    pub timeout: Duration,
    /// Delays before the second, third, … attempt; after the last, the event is dead-lettered.
    pub retry: Vec<Duration>,
    pub concurrency: usize,
    /// Deliver one event at a time, in stream order: a failing event holds back the next.
    pub ordered: bool,
}

/// Which events a destination wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Type globs (`room.*`); empty means every type.
    pub events: Vec<String>,
    /// Source names; empty means every source.
    pub sources: Vec<String>,
}

impl Filter {
    /// Whether an event of `event_type` from the source named `source` is wanted.
    pub fn matches(&self, event_type: &str, source: &str) -> bool {
        let type_ok = self.events.is_empty()
            || self
                .events
                .iter()
                .any(|glob| glob_matches(glob, event_type));
        let source_ok = self.sources.is_empty() || self.sources.iter().any(|s| s == source);
        type_ok && source_ok
    }
}

/// `room.*, reservation.checked_out (sources: oracle)`, or `all`.
impl std::fmt::Display for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.events.as_slice() {
            [] => f.write_str("all")?,
            events => f.write_str(&events.join(", "))?,
        }
        if !self.sources.is_empty() {
            write!(f, " (sources: {})", self.sources.join(", "))?;
        }
        Ok(())
    }
}

/// `*` matches any run of characters (dots included); everything else matches itself.
pub fn glob_matches(glob: &str, text: &str) -> bool {
    match glob.split_once('*') {
        None => glob == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|&at| rest.is_char_boundary(at))
                .any(|at| glob_matches(tail, &rest[at..]))
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DestinationTable {
    name: String,
    kind: String,
    url: Option<String>,
    secret: Option<String>,
    events: Option<Vec<String>>,
    sources: Option<Vec<String>>,
    timeout: Option<String>,
    retry: Option<Vec<String>>,
    concurrency: Option<usize>,
    ordered: Option<bool>,
}

/// Checks one `[[destinations]]` table; `source_names` are the configured sources.
pub(super) fn destination(
    key: &str,
    table: DestinationTable,
    source_names: &[&str],
    errors: &mut Vec<ConfigError>,
) -> Option<DestinationConfig> {
    let before = errors.len();
    super::check_name(key, &table.name, errors);
    let filter = Filter {
        events: table.events.clone().unwrap_or_default(),
        sources: table.sources.clone().unwrap_or_default(),
    };
    for (i, glob) in filter.events.iter().enumerate() {
        if !EventType::ALL
            .iter()
            .any(|t| glob_matches(glob, t.as_str()))
        {
            errors.push(ConfigError::new(
                format!("{key}.events[{i}]"),
                format!("`{glob}` matches no event type"),
            ));
        }
    }
    for (i, source) in filter.sources.iter().enumerate() {
        if !source_names.contains(&source.as_str()) {
            errors.push(ConfigError::new(
                format!("{key}.sources[{i}]"),
                format!("no source is named `{source}`"),
            ));
        }
    }
    let kind = match table.kind.as_str() {
        "http" => http(key, &table, errors).map(DestinationKind::Http),
        "redis_stream" => {
            let unused = [
                ("url", table.url.is_some()),
                ("secret", table.secret.is_some()),
                ("timeout", table.timeout.is_some()),
                ("retry", table.retry.is_some()),
                ("concurrency", table.concurrency.is_some()),
                ("ordered", table.ordered.is_some()),
            ];
            for (name, set) in unused {
                if set {
                    errors.push(ConfigError::new(
                        format!("{key}.{name}"),
                        "not used by kind = \"redis_stream\" (the service reads the stream itself)",
                    ));
                }
            }
            if !filter.events.is_empty() || !filter.sources.is_empty() {
                errors.push(ConfigError::new(
                    format!("{key}.events"),
                    "a redis_stream destination reads every event; filter in the consumer",
                ));
            }
            Some(DestinationKind::RedisStream)
        }
        other => {
            errors.push(ConfigError::new(
                format!("{key}.kind"),
                format!("unknown kind `{other}` (expected `http` or `redis_stream`)"),
            ));
            None
        }
    };
    if errors.len() > before {
        return None;
    }
    Some(DestinationConfig {
        name: table.name,
        kind: kind?,
        filter,
    })
}

fn http(
    key: &str,
    table: &DestinationTable,
    errors: &mut Vec<ConfigError>,
) -> Option<HttpDestination> {
    let url = match &table.url {
        None => {
            errors.push(ConfigError::new(
                format!("{key}.url"),
                "required for kind = \"http\"",
            ));
            None
        }
        Some(url) => match reqwest::Url::parse(url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url),
            _ => {
                errors.push(ConfigError::new(
                    format!("{key}.url"),
                    "must be an http:// or https:// URL",
                ));
                None
            }
        },
    };
    let key_bytes = match table.secret.as_deref() {
        None => {
            errors.push(ConfigError::new(
                format!("{key}.secret"),
                "required: a Standard Webhooks secret (`whsec_` + base64) the receiver verifies with",
            ));
            None
        }
        Some(secret) => {
            let decoded = secret
                .strip_prefix("whsec_")
                .and_then(|b64| {
                    STANDARD
                        .decode(b64)
                        .or_else(|_| STANDARD_NO_PAD.decode(b64))
                        .ok()
                })
                .filter(|k| k.len() >= 16);
            if decoded.is_none() {
                errors.push(ConfigError::new(
                    format!("{key}.secret"),
                    "must be `whsec_` followed by the base64 of at least 16 random bytes",
                ));
            }
            decoded
        }
    };
    let timeout = duration(
        &format!("{key}.timeout"),
        table.timeout.as_deref(),
        DEFAULT_TIMEOUT,
        errors,
    );
    let retry = match &table.retry {
        None => Some(DEFAULT_RETRY.to_vec()),
        Some(delays) => delays
            .iter()
            .enumerate()
            .map(|(i, d)| {
                duration(
                    &format!("{key}.retry[{i}]"),
                    Some(d),
                    Duration::ZERO,
                    errors,
                )
            })
            .collect::<Option<Vec<_>>>(),
    };
    let concurrency = table.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
    if concurrency == 0 || concurrency > 1024 {
        errors.push(ConfigError::new(
            format!("{key}.concurrency"),
            "must be from 1 to 1024",
        ));
    }
    Some(HttpDestination {
        url: url?,
        key: key_bytes?,
        timeout: timeout?,
        retry: retry?,
        concurrency,
        ordered: table.ordered.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_types() {
        assert!(glob_matches("room.*", "room.status_changed"));
        assert!(glob_matches("room.*", "room.maintenance_required"));
        assert!(!glob_matches("room.*", "guest_request.created"));
        assert!(glob_matches("*", "unknown"));
        assert!(glob_matches(
            "reservation.checked_*",
            "reservation.checked_out"
        ));
        assert!(glob_matches("*.created", "order.created"));
        assert!(!glob_matches("reservation.created", "reservation.created2"));
        assert!(!glob_matches("*d*", "unknown"));
        assert!(glob_matches("*n*", "unknown"));
    }

    #[test]
    fn filters_combine_types_and_sources() {
        let filter = Filter {
            events: vec!["room.*".into(), "reservation.checked_out".into()],
            sources: vec!["oracle".into()],
        };
        assert!(filter.matches("room.status_changed", "oracle"));
        assert!(filter.matches("reservation.checked_out", "oracle"));
        assert!(!filter.matches("reservation.created", "oracle"));
        assert!(!filter.matches("room.status_changed", "mews"));
        assert!(Filter::default().matches("anything", "anyone"));
    }

    #[test]
    fn the_default_schedule_reaches_about_a_day() {
        let total: Duration = DEFAULT_RETRY.iter().sum();
        assert!(
            total > Duration::from_secs(22 * 3600) && total < Duration::from_secs(26 * 3600),
            "{total:?}"
        );
    }
}
