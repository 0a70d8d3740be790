//! `[[notify]]` and `[[alerts]]`: the rules porter evaluates over its own activity, and where
//! it says so.
//!
//! Each rule kind (`when`) reads only its own keys: a key another kind reads is an error named
//! by its key, not a setting silently ignored, and so is a `source`, `destination` or `notify`
//! name that nothing configured carries. What each kind means precisely is in the README's
//! "Alerts" and in [`crate::alerts`].

use std::time::Duration;

use lettre::message::Mailbox;
use serde::Deserialize;

use super::ConfigError;

/// How long `for` waits before firing when a rule names none: at once.
const DEFAULT_FOR: Duration = Duration::ZERO;
/// How often a firing alert is notified again when a rule names nothing.
const DEFAULT_REPEAT: Duration = Duration::from_secs(60 * 60);
/// The window of `refusal_share`, `destination_failing` and `backlog` when a rule names none.
const DEFAULT_WINDOW: Duration = Duration::from_secs(5 * 60);
/// `quiet`'s silence when a rule names none.
const DEFAULT_QUIET: Duration = Duration::from_secs(15 * 60);
/// Fewer requests than this in the window never make a refusal share: 1 of 1 does not page.
const DEFAULT_MIN_REQUESTS: u64 = 10;
/// Fewer attempts than this in the window never make a failure share.
const DEFAULT_MIN_ATTEMPTS: u64 = 5;
/// The activity keeps one hour: a window must fit in it.
const MAX_WINDOW: Duration = Duration::from_secs(60 * 60);
/// `quiet` also needs the traffic before the silence, within the same hour.
const MAX_QUIET: Duration = Duration::from_secs(50 * 60);
/// The activity's buckets are ten seconds long.
const MIN_WINDOW: Duration = Duration::from_secs(10);

/// A checked `[[notify]]` target.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    pub name: String,
    pub target: NotifyTarget,
}

#[derive(Debug, Clone)]
pub enum NotifyTarget {
    /// POSTed as JSON, signed with Standard Webhooks headers as deliveries are.
    Webhook { url: reqwest::Url, key: Vec<u8> },
    /// Slack-compatible incoming-webhook JSON (`{"text": …}`).
    Slack { url: reqwest::Url },
    /// An e-mail through an SMTP relay.
    Email {
        /// `host:port`.
        host: String,
        port: u16,
        from: Mailbox,
        to: Vec<Mailbox>,
        /// Require STARTTLS (otherwise plain SMTP, as to a relay on the same network).
        starttls: bool,
    },
}

impl NotifyTarget {
    /// The `kind` as configured.
    pub fn kind(&self) -> &'static str {
        match self {
            NotifyTarget::Webhook { .. } => "webhook",
            NotifyTarget::Slack { .. } => "slack",
            NotifyTarget::Email { .. } => "email",
        }
    }
}

/// A checked `[[alerts]]` rule.
#[derive(Debug, Clone)]
pub struct AlertRule {
    pub name: String,
    pub condition: Condition,
    /// How long the condition holds before the alert fires (`for`).
    pub hold: Duration,
    /// Notify again this often while it fires (`None`: once).
    pub repeat: Option<Duration>,
    /// `[[notify]]` names.
    pub notify: Vec<String>,
}

/// What a rule watches, by `when`.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// A source's refused requests (every answer but 2xx) within `window`: a share of its
    /// requests above `above` (when it had at least `min_requests`), or a rate per second
    /// above `rate_above`.
    RefusalShare {
        source: String,
        above: Option<f64>,
        rate_above: Option<f64>,
        window: Duration,
        min_requests: u64,
    },
    /// No request on a source for `window`, after at least `min_requests` in the hour up to
    /// its last one.
    Quiet {
        source: String,
        window: Duration,
        min_requests: u64,
    },
    /// A destination's attempts within `window`: a failure share above `above` (of at least
    /// `min_attempts`), or more than `dead_letters_above` dead letters.
    DestinationFailing {
        destination: String,
        above: Option<f64>,
        dead_letters_above: Option<u64>,
        window: Duration,
        min_attempts: u64,
    },
    /// A destination's backlog: above `above` events, or growing at every sample of `window`.
    Backlog {
        destination: String,
        above: Option<u64>,
        growing: bool,
        window: Duration,
    },
    /// An OHIP stream this instance holds is not streaming, or has stored no event for `lag`.
    OhipStopped {
        source: String,
        lag: Option<Duration>,
    },
    /// The store does not take events (what `/readyz` reports, draining aside).
    StoreUnready,
}

impl Condition {
    /// The `when` as configured.
    pub fn kind(&self) -> &'static str {
        match self {
            Condition::RefusalShare { .. } => "refusal_share",
            Condition::Quiet { .. } => "quiet",
            Condition::DestinationFailing { .. } => "destination_failing",
            Condition::Backlog { .. } => "backlog",
            Condition::OhipStopped { .. } => "ohip_stopped",
            Condition::StoreUnready => "store_unready",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NotifyTable {
    name: String,
    kind: String,
    url: Option<String>,
    secret: Option<String>,
    smtp: Option<String>,
    from: Option<String>,
    to: Option<Vec<String>>,
    starttls: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AlertTable {
    name: String,
    when: String,
    source: Option<String>,
    destination: Option<String>,
    above: Option<f64>,
    rate_above: Option<f64>,
    min_requests: Option<u64>,
    min_attempts: Option<u64>,
    dead_letters_above: Option<u64>,
    growing: Option<bool>,
    lag: Option<String>,
    window: Option<String>,
    #[serde(rename = "for")]
    hold: Option<String>,
    repeat: Option<String>,
    notify: Option<Vec<String>>,
}

const KINDS: [&str; 6] = [
    "refusal_share",
    "quiet",
    "destination_failing",
    "backlog",
    "ohip_stopped",
    "store_unready",
];

/// Checks one `[[notify]]` table.
pub(super) fn notify(
    key: &str,
    table: NotifyTable,
    errors: &mut Vec<ConfigError>,
) -> Option<NotifyConfig> {
    let before = errors.len();
    super::check_name(key, &table.name, errors);
    let kind = table.kind.as_str();
    let keys: [(&str, bool, &[&str]); 6] = [
        ("url", table.url.is_some(), &["webhook", "slack"]),
        ("secret", table.secret.is_some(), &["webhook"]),
        ("smtp", table.smtp.is_some(), &["email"]),
        ("from", table.from.is_some(), &["email"]),
        ("to", table.to.is_some(), &["email"]),
        ("starttls", table.starttls.is_some(), &["email"]),
    ];
    if ["webhook", "slack", "email"].contains(&kind) {
        for (name, set, kinds) in keys {
            if set && !kinds.contains(&kind) {
                errors.push(ConfigError::new(
                    format!("{key}.{name}"),
                    format!("not used by kind = \"{kind}\""),
                ));
            }
        }
    }
    let target = match kind {
        "webhook" => {
            let url = url(key, table.url.as_deref(), kind, errors);
            let secret = super::destinations::whsec_key(key, table.secret.as_deref(), errors);
            Some(NotifyTarget::Webhook {
                url: url?,
                key: secret?,
            })
        }
        "slack" => {
            url(key, table.url.as_deref(), kind, errors).map(|url| NotifyTarget::Slack { url })
        }
        "email" => email(key, &table, errors),
        other => {
            errors.push(ConfigError::new(
                format!("{key}.kind"),
                format!("unknown kind `{other}` (expected `webhook`, `slack` or `email`)"),
            ));
            None
        }
    };
    if errors.len() > before {
        return None;
    }
    Some(NotifyConfig {
        name: table.name,
        target: target?,
    })
}

/// An `http(s)://` URL. Never echoed: a Slack URL's path is its credential.
fn url(
    key: &str,
    url: Option<&str>,
    kind: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<reqwest::Url> {
    let Some(url) = url else {
        errors.push(ConfigError::new(
            format!("{key}.url"),
            format!("required for kind = \"{kind}\""),
        ));
        return None;
    };
    match reqwest::Url::parse(url) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {
            Some(url)
        }
        _ => {
            errors.push(ConfigError::new(
                format!("{key}.url"),
                "must be an http:// or https:// URL",
            ));
            None
        }
    }
}

fn email(key: &str, table: &NotifyTable, errors: &mut Vec<ConfigError>) -> Option<NotifyTarget> {
    let relay = match table.smtp.as_deref() {
        None => {
            errors.push(ConfigError::new(
                format!("{key}.smtp"),
                "required for kind = \"email\": the relay's host:port, like \"127.0.0.1:25\"",
            ));
            None
        }
        Some(text) => {
            let parsed = text
                .rsplit_once(':')
                .filter(|(host, _)| !host.is_empty() && !host.contains(['/', '@', ' ']))
                .and_then(|(host, port)| Some((host.to_owned(), port.parse::<u16>().ok()?)))
                .filter(|(_, port)| *port > 0);
            if parsed.is_none() {
                errors.push(ConfigError::new(
                    format!("{key}.smtp"),
                    format!("`{text}` is not a host:port like \"127.0.0.1:25\""),
                ));
            }
            parsed
        }
    };
    let mailbox = |at: String, text: &str, errors: &mut Vec<ConfigError>| {
        text.parse::<Mailbox>()
            .map_err(|_| {
                errors.push(ConfigError::new(
                    at,
                    format!("`{text}` is not an e-mail address"),
                ));
            })
            .ok()
    };
    let from = match table.from.as_deref() {
        None => {
            errors.push(ConfigError::new(
                format!("{key}.from"),
                "required for kind = \"email\": the sender's address",
            ));
            None
        }
        Some(text) => mailbox(format!("{key}.from"), text, errors),
    };
    let to = match table.to.as_deref() {
        None | Some([]) => {
            errors.push(ConfigError::new(
                format!("{key}.to"),
                "required for kind = \"email\": a list of at least one address",
            ));
            None
        }
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(i, text)| mailbox(format!("{key}.to[{i}]"), text, errors))
            .collect::<Vec<_>>()
            .into_iter()
            .collect::<Option<Vec<_>>>(),
    };
    let (host, port) = relay?;
    Some(NotifyTarget::Email {
        host,
        port,
        from: from?,
        to: to?,
        starttls: table.starttls.unwrap_or(false),
    })
}

/// What the alert rules may name: sources, OHIP stream sources, destinations (and whether
/// porter delivers to each), notify targets.
#[derive(Debug)]
pub(super) struct Names<'a> {
    pub sources: Vec<&'a str>,
    pub streams: Vec<&'a str>,
    pub destinations: Vec<(&'a str, bool)>,
    pub notify: Vec<&'a str>,
}

/// Checks one `[[alerts]]` table.
pub(super) fn alert(
    key: &str,
    table: AlertTable,
    names: &Names<'_>,
    errors: &mut Vec<ConfigError>,
) -> Option<AlertRule> {
    let before = errors.len();
    super::check_name(key, &table.name, errors);
    let when = table.when.as_str();
    if !KINDS.contains(&when) {
        errors.push(ConfigError::new(
            format!("{key}.when"),
            format!("unknown `{when}` (expected {})", KINDS.join(", ")),
        ));
        return None;
    }
    unused_keys(key, &table, errors);
    let hold = duration_or_zero(
        &format!("{key}.for"),
        table.hold.as_deref(),
        DEFAULT_FOR,
        errors,
    );
    let repeat = duration_or_zero(
        &format!("{key}.repeat"),
        table.repeat.as_deref(),
        DEFAULT_REPEAT,
        errors,
    );
    let notify = table.notify.clone().unwrap_or_default();
    for (i, name) in notify.iter().enumerate() {
        if !names.notify.contains(&name.as_str()) {
            errors.push(ConfigError::new(
                format!("{key}.notify[{i}]"),
                format!("no [[notify]] target is named `{name}`"),
            ));
        }
    }
    let condition = condition(key, when, &table, names, errors);
    if errors.len() > before {
        return None;
    }
    Some(AlertRule {
        name: table.name,
        condition: condition?,
        hold: hold?,
        repeat: repeat.filter(|r| !r.is_zero()),
        notify,
    })
}

/// Keys set for a kind that does not read them.
fn unused_keys(key: &str, table: &AlertTable, errors: &mut Vec<ConfigError>) {
    let keys: [(&str, bool, &[&str]); 10] = [
        (
            "source",
            table.source.is_some(),
            &["refusal_share", "quiet", "ohip_stopped"],
        ),
        (
            "destination",
            table.destination.is_some(),
            &["destination_failing", "backlog"],
        ),
        (
            "above",
            table.above.is_some(),
            &["refusal_share", "destination_failing", "backlog"],
        ),
        ("rate_above", table.rate_above.is_some(), &["refusal_share"]),
        (
            "min_requests",
            table.min_requests.is_some(),
            &["refusal_share", "quiet"],
        ),
        (
            "min_attempts",
            table.min_attempts.is_some(),
            &["destination_failing"],
        ),
        (
            "dead_letters_above",
            table.dead_letters_above.is_some(),
            &["destination_failing"],
        ),
        ("growing", table.growing.is_some(), &["backlog"]),
        ("lag", table.lag.is_some(), &["ohip_stopped"]),
        (
            "window",
            table.window.is_some(),
            &["refusal_share", "quiet", "destination_failing", "backlog"],
        ),
    ];
    for (name, set, kinds) in keys {
        if set && !kinds.contains(&table.when.as_str()) {
            errors.push(ConfigError::new(
                format!("{key}.{name}"),
                format!("not used by when = \"{}\"", table.when),
            ));
        }
    }
}

fn condition(
    key: &str,
    when: &str,
    table: &AlertTable,
    names: &Names<'_>,
    errors: &mut Vec<ConfigError>,
) -> Option<Condition> {
    let window = |default: Duration, max: Duration, errors: &mut Vec<ConfigError>| {
        let at = format!("{key}.window");
        let window = super::duration(&at, table.window.as_deref(), default, errors)?;
        if window < MIN_WINDOW || window > max {
            errors.push(ConfigError::new(
                at,
                format!(
                    "must be from 10s to {} (porter keeps an hour of activity, in 10-second steps)",
                    humantime::format_duration(max)
                ),
            ));
            return None;
        }
        Some(window)
    };
    let share = |name: &str, value: Option<f64>, errors: &mut Vec<ConfigError>| {
        if let Some(share) = value
            && !(share.is_finite() && (0.0..1.0).contains(&share))
        {
            errors.push(ConfigError::new(
                format!("{key}.{name}"),
                "a share from 0 up to (not including) 1, like 0.5",
            ));
        }
    };
    match when {
        "refusal_share" => {
            let source = source(
                key,
                table.source.as_deref(),
                &names.sources,
                "a source with a path",
                errors,
            );
            share("above", table.above, errors);
            if let Some(rate) = table.rate_above
                && !(rate.is_finite() && rate >= 0.0)
            {
                errors.push(ConfigError::new(
                    format!("{key}.rate_above"),
                    "refusals per second: a number of 0 or more",
                ));
            }
            if table.above.is_none() && table.rate_above.is_none() {
                errors.push(ConfigError::new(
                    format!("{key}.above"),
                    "required: the share of requests refused (or `rate_above`, refusals per second)",
                ));
            }
            let window = window(DEFAULT_WINDOW, MAX_WINDOW, errors);
            let min_requests = table.min_requests.unwrap_or(DEFAULT_MIN_REQUESTS).max(1);
            Some(Condition::RefusalShare {
                source: source?,
                above: table.above,
                rate_above: table.rate_above,
                window: window?,
                min_requests,
            })
        }
        "quiet" => {
            let source = source(
                key,
                table.source.as_deref(),
                &names.sources,
                "a source with a path",
                errors,
            );
            let window = window(DEFAULT_QUIET, MAX_QUIET, errors);
            Some(Condition::Quiet {
                source: source?,
                window: window?,
                min_requests: table.min_requests.unwrap_or(1).max(1),
            })
        }
        "destination_failing" => {
            let destination = destination(key, table.destination.as_deref(), names, true, errors);
            share("above", table.above, errors);
            if table.above.is_none() && table.dead_letters_above.is_none() {
                errors.push(ConfigError::new(
                    format!("{key}.above"),
                    "required: the share of attempts that failed (or `dead_letters_above`)",
                ));
            }
            let window = window(DEFAULT_WINDOW, MAX_WINDOW, errors);
            Some(Condition::DestinationFailing {
                destination: destination?,
                above: table.above,
                dead_letters_above: table.dead_letters_above,
                window: window?,
                min_attempts: table.min_attempts.unwrap_or(DEFAULT_MIN_ATTEMPTS).max(1),
            })
        }
        "backlog" => {
            let destination = destination(key, table.destination.as_deref(), names, false, errors);
            let above = match table.above {
                None => None,
                Some(n) if n.is_finite() && n >= 0.0 && n.fract() == 0.0 => Some(n as u64),
                Some(_) => {
                    errors.push(ConfigError::new(
                        format!("{key}.above"),
                        "a whole number of events waiting",
                    ));
                    None
                }
            };
            let growing = table.growing.unwrap_or(false);
            if table.above.is_none() && !growing {
                errors.push(ConfigError::new(
                    format!("{key}.above"),
                    "required: the number of events waiting (or `growing = true`)",
                ));
            }
            let window = window(DEFAULT_WINDOW, MAX_WINDOW, errors);
            Some(Condition::Backlog {
                destination: destination?,
                above,
                growing,
                window: window?,
            })
        }
        "ohip_stopped" => {
            let source = source(
                key,
                table.source.as_deref(),
                &names.streams,
                "an oracle_ohip_stream source",
                errors,
            );
            let lag = match table.lag.as_deref() {
                None => Some(None),
                Some(text) => {
                    super::duration(&format!("{key}.lag"), Some(text), Duration::ZERO, errors)
                        .map(Some)
                }
            };
            Some(Condition::OhipStopped {
                source: source?,
                lag: lag?,
            })
        }
        _ => Some(Condition::StoreUnready),
    }
}

fn source(
    key: &str,
    name: Option<&str>,
    known: &[&str],
    what: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<String> {
    let Some(name) = name else {
        errors.push(ConfigError::new(
            format!("{key}.source"),
            format!("required: the name of {what}"),
        ));
        return None;
    };
    if !known.contains(&name) {
        errors.push(ConfigError::new(
            format!("{key}.source"),
            format!("no {what} is named `{name}`"),
        ));
        return None;
    }
    Some(name.to_owned())
}

fn destination(
    key: &str,
    name: Option<&str>,
    names: &Names<'_>,
    delivered_by_porter: bool,
    errors: &mut Vec<ConfigError>,
) -> Option<String> {
    let Some(name) = name else {
        errors.push(ConfigError::new(
            format!("{key}.destination"),
            "required: the name of a destination",
        ));
        return None;
    };
    match names.destinations.iter().find(|(n, _)| *n == name) {
        None => {
            errors.push(ConfigError::new(
                format!("{key}.destination"),
                format!("no destination is named `{name}`"),
            ));
            None
        }
        Some((_, false)) if delivered_by_porter => {
            errors.push(ConfigError::new(
                format!("{key}.destination"),
                format!(
                    "`{name}` is a redis_stream destination: its consumers read the stream, \
                     porter makes no attempts to fail (watch it with when = \"backlog\")"
                ),
            ));
            None
        }
        Some(_) => Some(name.to_owned()),
    }
}

/// A duration that may be `0s` (`for`, `repeat`).
fn duration_or_zero(
    key: &str,
    text: Option<&str>,
    default: Duration,
    errors: &mut Vec<ConfigError>,
) -> Option<Duration> {
    match text {
        None => Some(default),
        Some(text) if humantime::parse_duration(text).is_ok_and(|d| d.is_zero()) => {
            Some(Duration::ZERO)
        }
        Some(text) => super::duration(key, Some(text), default, errors),
    }
}
