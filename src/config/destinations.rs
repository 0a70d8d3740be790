//! `[[destinations]]`: where porter delivers the events it stored.
//!
//! An `http` destination is POSTed every matching event, signed with Standard Webhooks headers
//! under its `whsec_` secret; a `nats` destination is published to a JetStream subject and an
//! `amqp` one to a RabbitMQ exchange, each confirmed by the broker. All three are retried on a
//! schedule until they succeed or the schedule runs out (then the event goes to the
//! dead-letter stream), and all three may be held to a `rate`. A `redis_stream` destination is
//! a service that reads the stream itself: porter creates its consumer group on every stream
//! shard and reports how far behind it is.

use crate::vocab::{Filter, glob_matches};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use porter_providers::EventType;
use serde::Deserialize;

use super::{ConfigError, duration};

/// The retry schedule when a destination names none: about a day in all, front-loaded so that
/// a blip is retried within seconds.
pub(crate) const DEFAULT_RETRY: &[Duration] = &[
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
    /// How porter delivers (not used by `redis_stream`, which the service reads itself).
    pub delivery: Delivery,
}

#[derive(Debug, Clone)]
pub enum DestinationKind {
    Http(HttpDestination),
    Nats(NatsDestination),
    Amqp(AmqpDestination),
    /// The service reads the stream itself with this consumer group.
    RedisStream,
}

impl DestinationKind {
    /// The `kind` as configured.
    pub fn name(&self) -> &'static str {
        match self {
            DestinationKind::Http(_) => "http",
            DestinationKind::Nats(_) => "nats",
            DestinationKind::Amqp(_) => "amqp",
            DestinationKind::RedisStream => "redis_stream",
        }
    }

    /// Whether porter itself carries events there (every kind but `redis_stream`).
    pub fn delivered_by_porter(&self) -> bool {
        !matches!(self, DestinationKind::RedisStream)
    }
}

/// How porter delivers to a destination, whatever its kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// How long one attempt may take (the request, or the wait for the broker's confirm).
    pub timeout: Duration,
    /// Delays before the second, third, … attempt; after the last, the event is dead-lettered.
    pub retry: Vec<Duration>,
    pub concurrency: usize,
    /// Deliver one event at a time, in stream order: a failing event holds back the next.
    pub ordered: bool,
    /// At most this many attempts per second (a token bucket holding at most `max(rate, 1)`).
    pub rate: Option<f64>,
    /// What leaves porter of the fields the schema marks personal.
    pub pii: crate::vocab::Pii,
}

impl Default for Delivery {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            retry: DEFAULT_RETRY.to_vec(),
            concurrency: DEFAULT_CONCURRENCY,
            ordered: false,
            rate: None,
            pii: crate::vocab::Pii::Keep,
        }
    }
}

/// How porter delivers to one HTTP endpoint.
#[derive(Debug, Clone)]
pub struct HttpDestination {
    pub url: reqwest::Url,
    /// The signing key: the base64 after `whsec_`, decoded.
    pub key: Vec<u8>,
}

/// A JetStream subject to publish to.
#[derive(Debug, Clone)]
pub struct NatsDestination {
    /// `nats://host:port` (credentials, if any, in the URL).
    pub url: String,
    pub subject: Template,
    /// CloudEvents binary mode (attributes in `ce-` headers, the body is `data`) instead of
    /// structured mode (the body is the whole event).
    pub binary: bool,
    /// Create the stream, named after the destination, over the subject's literal prefix.
    pub create_stream: Option<String>,
}

/// A RabbitMQ exchange to publish to.
#[derive(Debug, Clone)]
pub struct AmqpDestination {
    /// `amqp://user:password@host:port/vhost`.
    pub url: String,
    pub exchange: String,
    pub routing_key: Template,
    /// Declare the exchange (durable, topic) before publishing.
    pub declare: bool,
}

/// A subject or routing key with `{source}` and `{type}` in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(String);

impl Template {
    /// Fills in an event's source name and type.
    pub fn render(&self, source: &str, event_type: &str) -> String {
        self.0
            .replace("{source}", source)
            .replace("{type}", event_type)
    }

    /// The text before the first placeholder.
    pub fn literal_prefix(&self) -> &str {
        self.0.split('{').next().unwrap_or("")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A destination kind this build of porter was compiled without.
fn without_feature(
    key: &str,
    kind: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<DestinationKind> {
    errors.push(ConfigError::new(
        format!("{key}.kind"),
        format!(
            "this porter was built without the `{kind}` feature (cargo build --features {kind})"
        ),
    ));
    None
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
    rate: Option<f64>,
    pii: Option<String>,
    /// `all` (default) or `forward_only`: whether status regressions are delivered.
    statuses: Option<String>,
    subject: Option<String>,
    mode: Option<String>,
    create_stream: Option<bool>,
    exchange: Option<String>,
    routing_key: Option<String>,
    declare: Option<bool>,
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
    let forward_only = match table.statuses.as_deref() {
        None | Some("all") => false,
        Some("forward_only") => true,
        Some(other) => {
            errors.push(ConfigError::new(
                format!("{key}.statuses"),
                format!("`{other}` is not `all` (the default) or `forward_only`"),
            ));
            false
        }
    };
    let filter = Filter {
        events: table.events.clone().unwrap_or_default(),
        sources: table.sources.clone().unwrap_or_default(),
        forward_only,
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
    unused_keys(key, &table, errors);
    let kind = match table.kind.as_str() {
        "http" => http(key, &table, errors).map(DestinationKind::Http),
        "nats" if !cfg!(feature = "nats") => without_feature(key, "nats", errors),
        "amqp" if !cfg!(feature = "amqp") => without_feature(key, "amqp", errors),
        "nats" => nats(key, &table, errors).map(DestinationKind::Nats),
        "amqp" => amqp(key, &table, errors).map(DestinationKind::Amqp),
        "redis_stream" => {
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
                format!(
                    "unknown kind `{other}` (expected `http`, `nats`, `amqp` or `redis_stream`)"
                ),
            ));
            None
        }
    };
    let delivery = delivery(key, &table, errors);
    if errors.len() > before {
        return None;
    }
    Some(DestinationConfig {
        name: table.name,
        kind: kind?,
        filter,
        delivery: delivery?,
    })
}

/// Keys set for a kind that does not use them are errors, not silently ignored settings.
fn unused_keys(key: &str, table: &DestinationTable, errors: &mut Vec<ConfigError>) {
    const DELIVERED: &[&str] = &["http", "nats", "amqp"];
    let keys: [(&str, bool, &[&str]); 15] = [
        ("pii", table.pii.is_some(), DELIVERED),
        ("statuses", table.statuses.is_some(), DELIVERED),
        ("url", table.url.is_some(), DELIVERED),
        ("timeout", table.timeout.is_some(), DELIVERED),
        ("retry", table.retry.is_some(), DELIVERED),
        ("concurrency", table.concurrency.is_some(), DELIVERED),
        ("ordered", table.ordered.is_some(), DELIVERED),
        ("rate", table.rate.is_some(), DELIVERED),
        ("secret", table.secret.is_some(), &["http"]),
        ("subject", table.subject.is_some(), &["nats"]),
        ("mode", table.mode.is_some(), &["nats"]),
        ("create_stream", table.create_stream.is_some(), &["nats"]),
        ("exchange", table.exchange.is_some(), &["amqp"]),
        ("routing_key", table.routing_key.is_some(), &["amqp"]),
        ("declare", table.declare.is_some(), &["amqp"]),
    ];
    let kind = table.kind.as_str();
    if !["http", "nats", "amqp", "redis_stream"].contains(&kind) {
        return;
    }
    for (name, set, kinds) in keys {
        if set && !kinds.contains(&kind) {
            let why = if kind == "redis_stream" {
                " (the service reads the stream itself)"
            } else {
                ""
            };
            errors.push(ConfigError::new(
                format!("{key}.{name}"),
                format!("not used by kind = \"{kind}\"{why}"),
            ));
        }
    }
}

/// The settings every kind porter delivers to shares.
fn delivery(
    key: &str,
    table: &DestinationTable,
    errors: &mut Vec<ConfigError>,
) -> Option<Delivery> {
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
    if let Some(rate) = table.rate
        && !(rate.is_finite() && (0.001..=1_000_000.0).contains(&rate))
    {
        errors.push(ConfigError::new(
            format!("{key}.rate"),
            "events per second: a number from 0.001 to 1000000",
        ));
    }
    let pii = match table.pii.as_deref() {
        None => Some(crate::vocab::Pii::Keep),
        Some(text) => {
            let pii = crate::vocab::Pii::parse(text);
            if pii.is_none() {
                errors.push(ConfigError::new(
                    format!("{key}.pii"),
                    format!("unknown `{text}` (expected `keep`, `hash` or `drop`)"),
                ));
            }
            pii
        }
    };
    let ordered = table.ordered.unwrap_or(false);
    Some(Delivery {
        timeout: timeout?,
        retry: retry?,
        concurrency: if ordered { 1 } else { concurrency },
        ordered,
        rate: table.rate,
        pii: pii?,
    })
}

fn required<'a>(
    key: &str,
    name: &str,
    value: Option<&'a str>,
    kind: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<&'a str> {
    if value.is_none() {
        errors.push(ConfigError::new(
            format!("{key}.{name}"),
            format!("required for kind = \"{kind}\""),
        ));
    }
    value
}

fn http(
    key: &str,
    table: &DestinationTable,
    errors: &mut Vec<ConfigError>,
) -> Option<HttpDestination> {
    let url = match required(key, "url", table.url.as_deref(), "http", errors) {
        None => None,
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
    let key_bytes = whsec_key(key, table.secret.as_deref(), errors);
    Some(HttpDestination {
        url: url?,
        key: key_bytes?,
    })
}

/// A Standard Webhooks secret (`whsec_` + base64 of at least 16 bytes), decoded: what an
/// `http` destination and a `webhook` notify target sign with.
pub(super) fn whsec_key(
    key: &str,
    secret: Option<&str>,
    errors: &mut Vec<ConfigError>,
) -> Option<Vec<u8>> {
    let Some(secret) = secret else {
        errors.push(ConfigError::new(
            format!("{key}.secret"),
            "required: a Standard Webhooks secret (`whsec_` + base64) the receiver verifies with",
        ));
        return None;
    };
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

/// A URL of one of `schemes` with a host.
fn broker_url(
    key: &str,
    url: Option<&str>,
    kind: &str,
    schemes: &[&str],
    errors: &mut Vec<ConfigError>,
) -> Option<String> {
    let url = required(key, "url", url, kind, errors)?;
    match reqwest::Url::parse(url) {
        Ok(parsed) if schemes.contains(&parsed.scheme()) && parsed.host_str().is_some() => {
            Some(url.to_owned())
        }
        _ => {
            let schemes: Vec<String> = schemes.iter().map(|s| format!("{s}://")).collect();
            errors.push(ConfigError::new(
                format!("{key}.url"),
                format!("must be a {} URL", schemes.join(" or ")),
            ));
            None
        }
    }
}

/// A template of literal parts and `{source}`/`{type}`, whose literal parts use only `allowed`
/// characters besides ASCII letters and digits.
fn template(
    key: &str,
    name: &str,
    text: &str,
    allowed: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Template> {
    let literal = text.replace("{source}", "").replace("{type}", "");
    let ok = !text.is_empty()
        && literal
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || allowed.contains(c));
    if !ok {
        errors.push(ConfigError::new(
            format!("{key}.{name}"),
            format!("`{text}`: use {{source}}, {{type}}, letters, digits and `{allowed}` only"),
        ));
        return None;
    }
    Some(Template(text.to_owned()))
}

fn nats(
    key: &str,
    table: &DestinationTable,
    errors: &mut Vec<ConfigError>,
) -> Option<NatsDestination> {
    let url = broker_url(key, table.url.as_deref(), "nats", &["nats", "tls"], errors);
    let subject = template(
        key,
        "subject",
        table.subject.as_deref().unwrap_or("porter.{source}.{type}"),
        ".-_",
        errors,
    );
    let binary = match table.mode.as_deref() {
        None | Some("structured") => Some(false),
        Some("binary") => Some(true),
        Some(other) => {
            errors.push(ConfigError::new(
                format!("{key}.mode"),
                format!("unknown mode `{other}` (expected `structured` or `binary`)"),
            ));
            None
        }
    };
    let subject = subject?;
    let create_stream = if table.create_stream.unwrap_or(false) {
        let prefix = subject.literal_prefix();
        let Some(cut) = prefix.rfind('.') else {
            errors.push(ConfigError::new(
                format!("{key}.create_stream"),
                "the subject needs a literal prefix ending in `.` (like `porter.`) for the stream to cover",
            ));
            return None;
        };
        Some(format!("{}.>", &prefix[..cut]))
    } else {
        None
    };
    Some(NatsDestination {
        url: url?,
        subject,
        binary: binary?,
        create_stream,
    })
}

fn amqp(
    key: &str,
    table: &DestinationTable,
    errors: &mut Vec<ConfigError>,
) -> Option<AmqpDestination> {
    let url = broker_url(
        key,
        table.url.as_deref(),
        "amqp",
        &["amqp", "amqps"],
        errors,
    );
    let exchange = table
        .exchange
        .clone()
        .unwrap_or_else(|| "porter".to_owned());
    if exchange.is_empty()
        || exchange.len() > 255
        || !exchange
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
    {
        errors.push(ConfigError::new(
            format!("{key}.exchange"),
            "a name of letters, digits, `-`, `_`, `.` and `:` (the default exchange cannot be used: it does not route by key)",
        ));
    }
    let routing_key = template(
        key,
        "routing_key",
        table.routing_key.as_deref().unwrap_or("{type}"),
        ".-_:",
        errors,
    );
    Some(AmqpDestination {
        url: url?,
        exchange,
        routing_key: routing_key?,
        declare: table.declare.unwrap_or(true),
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
            forward_only: false,
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
