//! Configuration: TOML in, a checked [`Config`] out, or every problem named by its key.
//!
//! Loading runs in stages so that one run reports as many problems as it can: TOML syntax,
//! then `${ENV}` expansion over every string, then each table on its own (`server`, `store`,
//! each `sources[i]`), then the checks across tables (unique names, clashing routes). A
//! source's provider-specific settings are checked by the provider itself
//! ([`porter_providers::Source::new`]), so the rules live beside the code that uses them.

mod admin;
mod alerts;
mod archive;
mod destinations;
mod env;
mod ohip;
mod privacy;
mod problems;
mod raw;
mod redact;
mod telemetry;

pub(crate) use admin::{
    AdminConfig, DEFAULT_DIAGNOSIS_SHARE, DEFAULT_RECENT_REQUESTS, MIN_DIAGNOSES_PER_SECOND,
};
pub(crate) use alerts::{AlertRule, Condition, NotifyConfig, NotifyTarget};
pub(crate) use archive::ArchiveConfig;
#[cfg(feature = "amqp")]
pub(crate) use destinations::AmqpDestination;
pub use destinations::DestinationKind;
#[cfg(feature = "nats")]
pub(crate) use destinations::NatsDestination;
pub(crate) use destinations::{DEFAULT_RETRY, Delivery, DestinationConfig, HttpDestination};
pub(crate) use ohip::OhipStreamConfig;
pub(crate) use privacy::PrivacyConfig;
pub(crate) use telemetry::TelemetryConfig;

pub use crate::vocab::Filter;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use porter_providers::{Context, Provider, Source};

use crate::connections::ConnectionLimits;
use crate::routes::RESERVED_PATHS;
use crate::vocab::{RedisTarget, ReplicaWait};

/// The configuration `porter serve` uses when given no file and no `porter.toml` exists.
pub const EMBEDDED_DEFAULT: &str = include_str!("default.toml");

/// The file `porter serve` reads when given no `--config`.
pub(crate) const DEFAULT_FILE: &str = "porter.toml";

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Where porter listens when the configuration does not say.
pub(crate) const DEFAULT_LISTEN_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);
const DEFAULT_MAX_BODY_BYTES: u64 = 3 * 1024 * 1024;
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `WAIT` waits for `wait_replicas` by default.
const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
const DEFAULT_MAX_CONNECTIONS_PER_PEER: usize = 1_000;
const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_H2_MAX_STREAMS: u32 = 64;
/// Bytes of request bodies being read at once: enough for 85 bodies of Meta's largest
/// (3 MiB), or tens of thousands of usual ones, on a machine of a few GB.
const DEFAULT_MAX_BUFFERED_BYTES: u64 = 256 * 1024 * 1024;
const DEFAULT_DEDUPE_TTL: Duration = Duration::from_secs(24 * 60 * 60);
const DEFAULT_STREAM: &str = "porter:events";
const DEFAULT_MEMORY_CAPACITY: usize = 100_000;
/// Jobs a local store schedules before answering 503: about 1.5 GB of memory at 1.5 KB.
const DEFAULT_LOCAL_CAPACITY: usize = 1_000_000;
/// The newest events a local store keeps for inspection, delivered or not.
const DEFAULT_RETAIN_EVENTS: usize = 10_000;
/// The local store's directory, relative to the working directory.
pub(crate) const DEFAULT_LOCAL_PATH: &str = "porter-data";
const DEFAULT_KEY_PREFIX: &str = "porter";
const DEFAULT_SHARDS: u16 = 16;

/// A checked configuration.
#[derive(Debug)]
pub struct Config {
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub sources: Vec<SourceConfig>,
    /// Sources porter connects out to (`oracle_ohip_stream`), in the order written.
    pub streams: Vec<OhipStreamConfig>,
    pub destinations: Vec<DestinationConfig>,
    /// The admin listener, when `[admin]` is configured (always in the embedded default).
    pub admin: Option<AdminConfig>,
    /// Trace export, when `[telemetry] otlp_endpoint` is set (off otherwise).
    pub telemetry: Option<TelemetryConfig>,
    /// `[privacy]`: the key of `pii = "hash"` destinations.
    pub privacy: Option<PrivacyConfig>,
    /// `[archive]`: raw requests kept for `porter reprocess` (off when absent).
    pub archive: Option<ArchiveConfig>,
    /// `[[notify]]`: where alerts are sent.
    pub notify: Vec<NotifyConfig>,
    /// `[[alerts]]`: the rules porter evaluates over its own activity.
    pub alerts: Vec<AlertRule>,
    /// Where the configuration came from, for messages.
    pub origin: ConfigOrigin,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub public_url: Option<String>,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    /// After SIGTERM or SIGINT, how long porter keeps serving while `/readyz` answers 503 and
    /// every HTTP/1.1 answer closes its connection, before it stops accepting (0: at once).
    pub drain_delay: Duration,
    /// `max_connections`, `max_connections_per_peer`, `idle_timeout`, `header_timeout`,
    /// `h2_max_streams`.
    pub connections: ConnectionLimits,
    /// Bytes of request bodies being read, all connections together.
    pub max_buffered_bytes: usize,
    /// Of those, the most one peer's requests may hold (a quarter by default).
    pub max_buffered_bytes_per_peer: usize,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub kind: StoreKind,
    pub dedupe_ttl: Duration,
    pub stream: String,
}

impl StoreConfig {
    /// `memory`, `local` or `redis`.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            StoreKind::Memory { .. } => "memory",
            StoreKind::Local { .. } => "local",
            StoreKind::Redis { .. } => "redis",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    /// In-process: single instance, lost on exit. For development and tests.
    Memory { print_events: bool, capacity: usize },
    /// On disk in one directory, one process at a time: durable (fsync) without a server.
    Local {
        path: std::path::PathBuf,
        print_events: bool,
        capacity: usize,
        retain_events: usize,
    },
    /// Redis or Redis Cluster: shared by every instance, as durable as Redis is configured.
    Redis {
        target: RedisTarget,
        key_prefix: String,
        /// `None` never trims.
        max_len: Option<u64>,
        /// Cluster only.
        shards: u16,
        /// Single Redis only: `WATCH`/`MULTI` instead of the Lua script.
        transactions: bool,
        /// `WAIT` for replicas after each write before answering.
        wait_replicas: Option<ReplicaWait>,
    },
}

/// A configured source: the provider's verifier plus the gateway's per-source settings.
#[derive(Debug)]
pub struct SourceConfig {
    pub source: Source,
    /// The base route.
    pub path: String,
    pub dedupe_ttl: Duration,
    /// Empty means every address is allowed.
    pub allow_ips: Vec<IpNet>,
    /// `max_in_flight` and `rate` ([`crate::admission`]).
    pub share: crate::admission::Share,
}

/// What a configuration is read for: serving (every key checked), or a command that never
/// uses the admin token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    Serve,
    Client,
}

/// Where a configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOrigin {
    File(PathBuf),
    EmbeddedDefault,
}

impl fmt::Display for ConfigOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigOrigin::File(path) => write!(f, "{}", path.display()),
            ConfigOrigin::EmbeddedDefault => f.write_str("the embedded default configuration"),
        }
    }
}

/// One problem, named by its key (`sources[1].secrets`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

/// Every problem found in one configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors {
    pub origin: String,
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.errors.len();
        let plural = if count == 1 { "problem" } else { "problems" };
        write!(f, "{} has {count} {plural}:", self.origin)?;
        for error in &self.errors {
            write!(f, "\n  - {error}")?;
        }
        Ok(())
    }
}

/// The route table of `sources` (in order: a route leads to its source's index).
pub fn route_table(sources: &[SourceConfig]) -> crate::routes::RouteTable {
    crate::routes::RouteTable::new(
        sources
            .iter()
            .map(|s| (s.path.as_str(), s.source.provider())),
    )
}

impl Config {
    /// Reads `--config FILE`, else `porter.toml` if present, else the embedded default.
    pub fn resolve(path: Option<&Path>) -> Result<Self, ConfigErrors> {
        match path {
            Some(path) => Self::load(path),
            None if Path::new(DEFAULT_FILE).exists() => Self::load(Path::new(DEFAULT_FILE)),
            None => Self::parse(EMBEDDED_DEFAULT, ConfigOrigin::EmbeddedDefault, &|name| {
                std::env::var(name).ok()
            }),
        }
    }

    /// The text `resolve` would read, and where it is from.
    pub fn text(path: Option<&Path>) -> Result<(String, ConfigOrigin), ConfigErrors> {
        let path = match path {
            Some(path) => path,
            None if Path::new(DEFAULT_FILE).exists() => Path::new(DEFAULT_FILE),
            None => return Ok((EMBEDDED_DEFAULT.to_owned(), ConfigOrigin::EmbeddedDefault)),
        };
        let origin = ConfigOrigin::File(path.to_owned());
        let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
            origin: origin.to_string(),
            errors: vec![ConfigError::new("", format!("cannot read the file: {e}"))],
        })?;
        Ok((text, origin))
    }

    /// Reads and checks a configuration file, expanding `${ENV}` from the process environment.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let origin = ConfigOrigin::File(path.to_owned());
        let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
            origin: origin.to_string(),
            errors: vec![ConfigError::new("", format!("cannot read the file: {e}"))],
        })?;
        Self::parse(&text, origin, &|name| std::env::var(name).ok())
    }

    /// Parses and checks configuration text; `lookup` resolves `${NAME}` references.
    pub fn parse(
        text: &str,
        origin: ConfigOrigin,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigErrors> {
        Self::parse_for(text, origin, lookup, Use::Serve)
    }

    /// [`Config::resolve`] for a command that never uses the admin token (`porter send`,
    /// `porter-load`): `[admin] token` and `metrics_token` are not read, so a file whose token
    /// comes from an environment variable this shell lacks, or a copy of the embedded default,
    /// still works. The configuration it answers has a random token nobody knows.
    pub fn resolve_without_admin_token(path: Option<&Path>) -> Result<Self, ConfigErrors> {
        let (text, origin) = Self::text(path)?;
        Self::parse_for(&text, origin, &|name| std::env::var(name).ok(), Use::Client)
    }

    /// [`Config::parse`] for a command that never uses the admin token (see
    /// [`Config::resolve_without_admin_token`]).
    pub fn parse_without_admin_token(
        text: &str,
        origin: ConfigOrigin,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigErrors> {
        Self::parse_for(text, origin, lookup, Use::Client)
    }

    fn parse_for(
        text: &str,
        origin: ConfigOrigin,
        lookup: &dyn Fn(&str) -> Option<String>,
        purpose: Use,
    ) -> Result<Self, ConfigErrors> {
        let fail = |errors| ConfigErrors {
            origin: origin.to_string(),
            errors,
        };
        let mut value: toml::Value = toml::from_str(text).map_err(|e| {
            let message = redact::toml_syntax_message(&e, text);
            fail(vec![ConfigError::new("", message)])
        })?;
        if purpose == Use::Client
            && let Some(admin) = value.get_mut("admin").and_then(toml::Value::as_table_mut)
        {
            admin.remove("token");
            admin.remove("metrics_token");
        }
        let mut unset = Vec::new();
        let substituted = env::expand(&mut value, "", lookup, &mut unset);
        // Taken before the checks consume the value: the report names tables and scrubs
        // secrets with them.
        let redactor = redact::Redactor::new(&value, substituted);
        let names = problems::TableNames::of(&value);
        let mut checks = Vec::new();
        let config = Self::from_value(value, origin.clone(), purpose, &mut checks);
        match config {
            Some(config) if unset.is_empty() && checks.is_empty() => Ok(config),
            _ => Err(fail(problems::report(unset, checks, &names, &redactor))),
        }
    }

    fn from_value(
        value: toml::Value,
        origin: ConfigOrigin,
        purpose: Use,
        errors: &mut Vec<ConfigError>,
    ) -> Option<Self> {
        let toml::Value::Table(mut root) = value else {
            errors.push(ConfigError::new(
                "",
                "the configuration must be a TOML table",
            ));
            return None;
        };
        let server_table = take_table::<raw::ServerTable>(&mut root, "server", errors);
        let store_table = take_table::<raw::StoreTable>(&mut root, "store", errors);
        let source_tables = take_array::<raw::SourceTable>(&mut root, "sources", errors);
        let destination_tables =
            take_array::<destinations::DestinationTable>(&mut root, "destinations", errors);
        let admin_table = take_table::<admin::AdminTable>(&mut root, "admin", errors);
        let telemetry_table =
            take_table::<telemetry::TelemetryTable>(&mut root, "telemetry", errors);
        let privacy_table = take_table::<privacy::PrivacyTable>(&mut root, "privacy", errors);
        let archive_table = take_table::<archive::ArchiveTable>(&mut root, "archive", errors);
        let notify_tables = take_array::<alerts::NotifyTable>(&mut root, "notify", errors);
        let alert_tables = take_array::<alerts::AlertTable>(&mut root, "alerts", errors);
        for key in root.keys() {
            errors.push(ConfigError::new(
                key.as_str(),
                "unknown key (expected server, store, sources, destinations, admin, telemetry, privacy, archive, notify, alerts)",
            ));
        }
        let privacy = privacy_table.and_then(|table| privacy::privacy_config(table, errors));
        let archive = archive_table.and_then(|table| archive::archive_config(table, errors));
        let telemetry =
            telemetry_table.and_then(|table| telemetry::telemetry_config(table, errors));

        let server_table = server_table.unwrap_or_default();
        // Sources inherit this even when another server key is wrong, so that one mistake
        // is not reported again as a missing public_url on every Twilio source.
        let public_url = server_table
            .public_url
            .as_deref()
            .map(|u| u.trim_end_matches('/').to_owned());
        let server = server_config(server_table, errors);
        let generate_token = origin == ConfigOrigin::EmbeddedDefault || purpose == Use::Client;
        let admin = admin_table.map(|table| {
            admin::admin_config(
                table,
                server.as_ref().map(|s| s.listen),
                generate_token,
                errors,
            )
        });
        let store = store_config(store_table.unwrap_or_default(), errors);
        let mut sources = Vec::new();
        let mut streams: Vec<OhipStreamConfig> = Vec::new();
        for (i, table) in source_tables.into_iter().enumerate() {
            let Some(table) = table else { continue };
            let key = format!("sources[{i}]");
            if table.provider == porter_providers::oracle_ohip_stream::PROVIDER {
                if let Some(stream) = stream_source(&key, table, errors) {
                    if sources
                        .iter()
                        .any(|s: &SourceConfig| s.source.name() == stream.name)
                        || streams.iter().any(|s| s.name == stream.name)
                    {
                        errors.push(ConfigError::new(
                            format!("{key}.name"),
                            format!("`{}` is already the name of another source", stream.name),
                        ));
                    }
                    streams.push(stream);
                }
                continue;
            }
            if let Some(source) =
                source_config(&key, table, public_url.as_deref(), store.as_ref(), errors)
            {
                sources.push(source);
            }
        }
        check_sources(&sources, errors);
        for stream in &streams {
            if sources.iter().any(|s| s.source.name() == stream.name) {
                errors.push(ConfigError::new(
                    "sources",
                    format!("`{}` is the name of two sources", stream.name),
                ));
            }
        }
        let source_names: Vec<&str> = sources
            .iter()
            .map(|s| s.source.name())
            .chain(streams.iter().map(|s| s.name.as_str()))
            .collect();
        let mut destination_list = Vec::new();
        for (i, table) in destination_tables.into_iter().enumerate() {
            let Some(table) = table else { continue };
            let key = format!("destinations[{i}]");
            if let Some(destination) = destinations::destination(&key, table, &source_names, errors)
            {
                destination_list.push((key, destination));
            }
        }
        check_destinations(&destination_list, store.as_ref(), errors);
        for (key, destination) in &destination_list {
            if destination.delivery.pii == crate::vocab::Pii::Hash && privacy.is_none() {
                errors.push(ConfigError::new(
                    format!("{key}.pii"),
                    "\"hash\" needs [privacy] key (the secret personal values are hashed under)",
                ));
            }
        }
        let notify = notify_list(notify_tables, errors);
        let names = alerts::Names {
            sources: sources.iter().map(|s| s.source.name()).collect(),
            streams: streams.iter().map(|s| s.name.as_str()).collect(),
            destinations: destination_list
                .iter()
                .map(|(_, d)| (d.name.as_str(), d.kind.delivered_by_porter()))
                .collect(),
            notify: notify.iter().map(|n| n.name.as_str()).collect(),
        };
        let alert_rules = alert_list(alert_tables, &names, errors);
        if sources.is_empty() && streams.is_empty() && errors.is_empty() {
            errors.push(ConfigError::new(
                "sources",
                "no sources are configured; porter would accept nothing",
            ));
        }
        Some(Self {
            server: server?,
            store: store?,
            sources,
            streams,
            destinations: destination_list.into_iter().map(|(_, d)| d).collect(),
            admin: match admin {
                None => None,
                Some(admin) => Some(admin?),
            },
            telemetry,
            privacy,
            archive,
            notify,
            alerts: alert_rules,
            origin,
        })
    }

    /// The source named `name`.
    pub fn source(&self, name: &str) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| s.source.name() == name)
    }
}

fn take_table<T: serde::de::DeserializeOwned>(
    root: &mut toml::Table,
    key: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    let value = root.remove(key)?;
    value
        .try_into()
        .map_err(|e: toml::de::Error| {
            errors.push(ConfigError::new(key, redact::serde_message(e.message())));
        })
        .ok()
}

fn take_array<T: serde::de::DeserializeOwned>(
    root: &mut toml::Table,
    key: &str,
    errors: &mut Vec<ConfigError>,
) -> Vec<Option<T>> {
    match root.remove(key) {
        None => Vec::new(),
        Some(toml::Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                item.try_into()
                    .map_err(|e: toml::de::Error| {
                        errors.push(ConfigError::new(
                            format!("{key}[{i}]"),
                            redact::serde_message(e.message()),
                        ));
                    })
                    .ok()
            })
            .collect(),
        Some(_) => {
            errors.push(ConfigError::new(
                key,
                format!("must be an array of tables ([[{key}]])"),
            ));
            Vec::new()
        }
    }
}

fn server_config(table: raw::ServerTable, errors: &mut Vec<ConfigError>) -> Option<ServerConfig> {
    let listen = table.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let listen = listen
        .parse()
        .map_err(|_| {
            errors.push(ConfigError::new(
                "server.listen",
                format!("`{listen}` is not an address like 127.0.0.1:8080"),
            ));
        })
        .ok();
    if let Some(url) = &table.public_url {
        check_public_url("server.public_url", url, errors);
    }
    let max_body_bytes = match table.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES) {
        0 => {
            errors.push(ConfigError::new(
                "server.max_body_bytes",
                "must be more than 0",
            ));
            None
        }
        n => usize::try_from(n).ok(),
    };
    let request_timeout = duration(
        "server.request_timeout",
        table.request_timeout.as_deref(),
        DEFAULT_REQUEST_TIMEOUT,
        errors,
    );
    let drain_delay = duration(
        "server.drain_delay",
        table.drain_delay.as_deref(),
        Duration::ZERO,
        errors,
    );
    let idle_timeout = duration(
        "server.idle_timeout",
        table.idle_timeout.as_deref(),
        DEFAULT_IDLE_TIMEOUT,
        errors,
    );
    if let (Some(idle), Some(request)) = (idle_timeout, request_timeout)
        && idle <= request
    {
        errors.push(ConfigError::new(
            "server.idle_timeout",
            "must be longer than request_timeout: a request being processed reads nothing, \
             and must not be taken for an idle connection",
        ));
    }
    let count = |key: &str, value: Option<usize>, default: usize, errors: &mut Vec<ConfigError>| {
        match value.unwrap_or(default) {
            0 => {
                errors.push(ConfigError::new(key, "must be more than 0"));
                None
            }
            n => Some(n),
        }
    };
    let max_connections = count(
        "server.max_connections",
        table.max_connections,
        DEFAULT_MAX_CONNECTIONS,
        errors,
    );
    let per_peer = count(
        "server.max_connections_per_peer",
        table.max_connections_per_peer,
        DEFAULT_MAX_CONNECTIONS_PER_PEER.min(max_connections.unwrap_or(usize::MAX)),
        errors,
    );
    // By default 10 s, or the idle timeout when that is shorter.
    let header_timeout = duration(
        "server.header_timeout",
        table.header_timeout.as_deref(),
        DEFAULT_HEADER_TIMEOUT.min(idle_timeout.unwrap_or(DEFAULT_HEADER_TIMEOUT)),
        errors,
    );
    if let (Some(header), Some(idle)) = (header_timeout, idle_timeout)
        && header > idle
    {
        errors.push(ConfigError::new(
            "server.header_timeout",
            "must not be longer than idle_timeout",
        ));
    }
    let h2_max_streams = match table.h2_max_streams.unwrap_or(DEFAULT_H2_MAX_STREAMS) {
        0 => {
            errors.push(ConfigError::new(
                "server.h2_max_streams",
                "must be more than 0",
            ));
            None
        }
        n => Some(n),
    };
    let (max_buffered_bytes, max_buffered_bytes_per_peer) =
        buffered_bytes(&table, max_body_bytes, errors);
    Some(ServerConfig {
        listen: listen?,
        public_url: table.public_url.map(|u| u.trim_end_matches('/').to_owned()),
        max_body_bytes: max_body_bytes?,
        request_timeout: request_timeout?,
        drain_delay: drain_delay?,
        connections: ConnectionLimits {
            max_connections: max_connections?,
            max_connections_per_peer: per_peer?,
            idle_timeout: idle_timeout?,
            header_timeout: header_timeout?,
            h2_max_streams: h2_max_streams?,
        },
        max_buffered_bytes: max_buffered_bytes?,
        max_buffered_bytes_per_peer: max_buffered_bytes_per_peer?,
    })
}

/// `max_buffered_bytes` and its per-peer share: each must hold at least one body of
/// `max_body_bytes` (or a request of that size could never be read), and the share no more
/// than the whole.
fn buffered_bytes(
    table: &raw::ServerTable,
    max_body_bytes: Option<usize>,
    errors: &mut Vec<ConfigError>,
) -> (Option<usize>, Option<usize>) {
    let body = max_body_bytes.unwrap_or(0);
    let total = usize::try_from(
        table
            .max_buffered_bytes
            .unwrap_or(DEFAULT_MAX_BUFFERED_BYTES),
    )
    .unwrap_or(usize::MAX);
    let total = if total < body {
        errors.push(ConfigError::new(
            "server.max_buffered_bytes",
            format!("must be at least max_body_bytes ({body})"),
        ));
        None
    } else {
        Some(total)
    };
    let per_peer = match table.max_buffered_bytes_per_peer {
        None => total.map(|total| (total / 4).max(body).min(total)),
        Some(n) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if n < body {
                errors.push(ConfigError::new(
                    "server.max_buffered_bytes_per_peer",
                    format!("must be at least max_body_bytes ({body})"),
                ));
                None
            } else if total.is_some_and(|total| n > total) {
                errors.push(ConfigError::new(
                    "server.max_buffered_bytes_per_peer",
                    "must not be more than max_buffered_bytes",
                ));
                None
            } else {
                Some(n)
            }
        }
    };
    (total, per_peer)
}

fn store_config(table: raw::StoreTable, errors: &mut Vec<ConfigError>) -> Option<StoreConfig> {
    // The durable store of one machine unless another is named: a file without `[store]`
    // never keeps acknowledged events in memory only.
    let kind_name = table.kind.as_deref().unwrap_or("local");
    if ["memory", "local", "redis"].contains(&kind_name) {
        for (key, set, kinds) in store_keys(&table) {
            if set && !kinds.contains(&kind_name) {
                let names: Vec<String> = kinds.iter().map(|k| format!("\"{k}\"")).collect();
                errors.push(ConfigError::new(
                    format!("store.{key}"),
                    format!("only used with kind = {}", names.join(" or ")),
                ));
            }
        }
    }
    let kind = match kind_name {
        "memory" => {
            let capacity = table.capacity.unwrap_or(DEFAULT_MEMORY_CAPACITY);
            if capacity == 0 {
                errors.push(ConfigError::new("store.capacity", "must be more than 0"));
            }
            Some(StoreKind::Memory {
                // Default on: otherwise events held in memory reach only code embedding porter.
                print_events: table.print_events.unwrap_or(true),
                capacity,
            })
        }
        "local" => {
            let capacity = table.capacity.unwrap_or(DEFAULT_LOCAL_CAPACITY);
            if capacity == 0 {
                errors.push(ConfigError::new("store.capacity", "must be more than 0"));
            }
            let path = table.path.as_deref().unwrap_or(DEFAULT_LOCAL_PATH);
            if path.trim().is_empty() {
                errors.push(ConfigError::new("store.path", "must name a directory"));
            }
            Some(StoreKind::Local {
                path: path.into(),
                print_events: table.print_events.unwrap_or(false),
                capacity,
                retain_events: table.retain_events.unwrap_or(DEFAULT_RETAIN_EVENTS),
            })
        }
        "redis" => redis_kind(&table, errors),
        other => {
            errors.push(ConfigError::new(
                "store.kind",
                format!("unknown store `{other}` (expected `memory`, `local` or `redis`)"),
            ));
            None
        }
    };
    let dedupe_ttl = duration(
        "store.dedupe_ttl",
        table.dedupe_ttl.as_deref(),
        DEFAULT_DEDUPE_TTL,
        errors,
    );
    let stream = table.stream.unwrap_or_else(|| DEFAULT_STREAM.to_owned());
    if let Err(problem) = check_key_name(&stream) {
        errors.push(ConfigError::new("store.stream", problem));
    }
    Some(StoreConfig {
        kind: kind?,
        dedupe_ttl: dedupe_ttl?,
        stream,
    })
}

/// The `[store]` keys that only some kinds read: whether each is set, and those kinds.
fn store_keys(table: &raw::StoreTable) -> [(&'static str, bool, &'static [&'static str]); 12] {
    const REDIS: &[&str] = &["redis"];
    const LOCAL: &[&str] = &["local"];
    const IN_PROCESS: &[&str] = &["memory", "local"];
    [
        ("url", table.url.is_some(), REDIS),
        ("urls", table.urls.is_some(), REDIS),
        ("key_prefix", table.key_prefix.is_some(), REDIS),
        ("max_len", table.max_len.is_some(), REDIS),
        ("shards", table.shards.is_some(), REDIS),
        ("enqueue", table.enqueue.is_some(), REDIS),
        ("wait_replicas", table.wait_replicas.is_some(), REDIS),
        ("wait_timeout", table.wait_timeout.is_some(), REDIS),
        ("path", table.path.is_some(), LOCAL),
        ("retain_events", table.retain_events.is_some(), LOCAL),
        ("print_events", table.print_events.is_some(), IN_PROCESS),
        ("capacity", table.capacity.is_some(), IN_PROCESS),
    ]
}

fn redis_kind(table: &raw::StoreTable, errors: &mut Vec<ConfigError>) -> Option<StoreKind> {
    let target = match (&table.url, &table.urls) {
        (Some(url), None) => {
            check_redis_url("store.url", url, errors);
            RedisTarget::Single(url.clone())
        }
        (None, Some(urls)) if !urls.is_empty() => {
            for (i, url) in urls.iter().enumerate() {
                check_redis_url(&format!("store.urls[{i}]"), url, errors);
            }
            RedisTarget::Cluster(urls.clone())
        }
        (None, Some(_)) => {
            errors.push(ConfigError::new(
                "store.urls",
                "must list at least one node",
            ));
            return None;
        }
        (None, None) => {
            errors.push(ConfigError::new(
                "store.url",
                "required with kind = \"redis\" (or `urls` for Redis Cluster)",
            ));
            return None;
        }
        (Some(_), Some(_)) => {
            errors.push(ConfigError::new(
                "store.urls",
                "set either `url` (one Redis) or `urls` (Redis Cluster), not both",
            ));
            return None;
        }
    };
    if table.shards.is_some() && matches!(target, RedisTarget::Single(_)) {
        errors.push(ConfigError::new(
            "store.shards",
            "only used with `urls` (Redis Cluster)",
        ));
    }
    let shards = table.shards.unwrap_or(DEFAULT_SHARDS);
    if shards == 0 || shards > 1024 {
        errors.push(ConfigError::new("store.shards", "must be from 1 to 1024"));
    }
    if table.max_len == Some(0) {
        errors.push(ConfigError::new(
            "store.max_len",
            "must be more than 0 (leave it out to never trim)",
        ));
    }
    let key_prefix = table
        .key_prefix
        .clone()
        .unwrap_or_else(|| DEFAULT_KEY_PREFIX.to_owned());
    if let Err(problem) = check_key_name(&key_prefix) {
        errors.push(ConfigError::new("store.key_prefix", problem));
    }
    let transactions = match table.enqueue.as_deref() {
        None | Some("script") => false,
        Some("transaction") if matches!(target, RedisTarget::Single(_)) => true,
        Some("transaction") => {
            errors.push(ConfigError::new(
                "store.enqueue",
                "`transaction` needs a single Redis (`url`): Redis Cluster uses the script",
            ));
            false
        }
        Some(other) => {
            errors.push(ConfigError::new(
                "store.enqueue",
                format!("`{other}`: expected `script` or `transaction`"),
            ));
            false
        }
    };
    let wait_replicas = redis_wait(table, transactions, errors);
    Some(StoreKind::Redis {
        target,
        key_prefix,
        max_len: table.max_len,
        shards,
        transactions,
        wait_replicas,
    })
}

/// `wait_replicas` and `wait_timeout`: `None` unless replicas are asked for.
fn redis_wait(
    table: &raw::StoreTable,
    transactions: bool,
    errors: &mut Vec<ConfigError>,
) -> Option<ReplicaWait> {
    let timeout = duration(
        "store.wait_timeout",
        table.wait_timeout.as_deref(),
        DEFAULT_WAIT_TIMEOUT,
        errors,
    );
    match table.wait_replicas {
        None | Some(0) => {
            if table.wait_timeout.is_some() {
                errors.push(ConfigError::new(
                    "store.wait_timeout",
                    "only used with wait_replicas",
                ));
            }
            None
        }
        Some(_) if transactions => {
            errors.push(ConfigError::new(
                "store.wait_replicas",
                "not available with enqueue = \"transaction\" (the script's connection is the \
                 one WAIT must follow)",
            ));
            None
        }
        Some(replicas) => Some(ReplicaWait {
            replicas,
            timeout: timeout?,
        }),
    }
}

/// Never echoes the URL: it may carry a password.
fn check_redis_url(key: &str, url: &str, errors: &mut Vec<ConfigError>) {
    let scheme_ok = url.starts_with("redis://") || url.starts_with("rediss://");
    if !scheme_ok || redis::Client::open(url).is_err() {
        errors.push(ConfigError::new(
            key,
            "must be a redis:// or rediss:// URL such as redis://127.0.0.1:6379",
        ));
    }
}

/// Stream names and prefixes may not carry hash tags: porter places the tags itself.
fn check_key_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains(['{', '}']) || name.chars().any(char::is_whitespace) {
        Err(format!(
            "`{name}` must be non-empty, without spaces or braces (porter adds the hash tags)"
        ))
    } else {
        Ok(())
    }
}

/// A source's or destination's name: it appears in CloudEvents `source` URIs, metrics labels
/// and Redis key names, so only letters, digits, `-` and `_`.
pub(crate) fn check_name(key: &str, name: &str, errors: &mut Vec<ConfigError>) {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        errors.push(ConfigError::new(
            format!("{key}.name"),
            "must be non-empty and use only letters, digits, `-` and `_`",
        ));
    }
}

fn source_config(
    key: &str,
    table: raw::SourceTable,
    server_public_url: Option<&str>,
    store: Option<&StoreConfig>,
    errors: &mut Vec<ConfigError>,
) -> Option<SourceConfig> {
    let before = errors.len();
    check_name(key, &table.name, errors);
    let Some(path) = table.path else {
        errors.push(ConfigError::new(
            format!("{key}.path"),
            "required: the route the provider calls, like /webhooks/whatsapp",
        ));
        return None;
    };
    if let Err(problem) = check_path(&path) {
        errors.push(ConfigError::new(format!("{key}.path"), problem));
    }
    let Some(provider) = Provider::from_id(&table.provider) else {
        let known: Vec<_> = Provider::ALL.iter().map(|p| p.id()).collect();
        errors.push(ConfigError::new(
            format!("{key}.provider"),
            format!(
                "unknown provider `{}` (this version supports: {})",
                table.provider,
                known.join(", ")
            ),
        ));
        return None;
    };
    let store_ttl = store.map_or(DEFAULT_DEDUPE_TTL, |s| s.dedupe_ttl);
    let dedupe_ttl = duration(
        &format!("{key}.dedupe_ttl"),
        table.dedupe_ttl.as_deref(),
        provider.default_dedupe_ttl().unwrap_or(store_ttl),
        errors,
    );
    let allow_ips: Vec<IpNet> = table
        .allow_ips
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, cidr)| {
            parse_cidr(cidr)
                .map_err(|problem| {
                    errors.push(ConfigError::new(format!("{key}.allow_ips[{i}]"), problem));
                })
                .ok()
        })
        .collect();
    let share = source_share(key, table.max_in_flight, table.rate, errors);
    let context = Context {
        public_url: server_public_url.map(str::to_owned),
    };
    // A source without a public_url of its own checks the server's: when that is wrong, it
    // is reported once, under server.public_url, the key the user wrote.
    let inherited_bad_url = !table.settings.contains_key("public_url")
        && server_public_url
            .is_some_and(|url| porter_providers::settings::check_public_url(url).is_err());
    let source = Source::new(table.name, provider, table.settings, &context)
        .map_err(|problems| {
            for problem in problems {
                if inherited_bad_url && problem.key == "public_url" {
                    continue;
                }
                let at = match problem.key.as_str() {
                    "" => key.to_owned(),
                    setting => format!("{key}.{setting}"),
                };
                errors.push(ConfigError::new(
                    at,
                    redact::serde_message(&problem.problem),
                ));
            }
        })
        .ok();
    if errors.len() > before {
        return None;
    }
    Some(SourceConfig {
        source: source?,
        path,
        dedupe_ttl: dedupe_ttl?,
        allow_ips,
        share,
    })
}

/// `max_in_flight` (at least 1) and `rate` (0.001 to 1 000 000 per second).
fn source_share(
    key: &str,
    max_in_flight: Option<u32>,
    rate: Option<f64>,
    errors: &mut Vec<ConfigError>,
) -> crate::admission::Share {
    if max_in_flight == Some(0) {
        errors.push(ConfigError::new(
            format!("{key}.max_in_flight"),
            "must be at least 1 (leave it out for no bound)",
        ));
    }
    if let Some(rate) = rate
        && !(rate.is_finite() && (0.001..=1_000_000.0).contains(&rate))
    {
        errors.push(ConfigError::new(
            format!("{key}.rate"),
            "must be between 0.001 and 1000000 requests per second",
        ));
    }
    crate::admission::Share {
        max_in_flight,
        rate,
    }
}

/// A source porter connects out to: no route, no allow-list.
fn stream_source(
    key: &str,
    table: raw::SourceTable,
    errors: &mut Vec<ConfigError>,
) -> Option<OhipStreamConfig> {
    let before = errors.len();
    check_name(key, &table.name, errors);
    if table.path.is_some() {
        errors.push(ConfigError::new(
            format!("{key}.path"),
            "an oracle_ohip_stream source has no path: porter connects out to OHIP",
        ));
    }
    for (set, name) in [
        (table.allow_ips.is_some(), "allow_ips"),
        (table.max_in_flight.is_some(), "max_in_flight"),
        (table.rate.is_some(), "rate"),
    ] {
        if set {
            errors.push(ConfigError::new(
                format!("{key}.{name}"),
                "an oracle_ohip_stream source receives no requests",
            ));
        }
    }
    let dedupe_ttl = duration(
        &format!("{key}.dedupe_ttl"),
        table.dedupe_ttl.as_deref(),
        ohip::DEFAULT_DEDUPE_TTL,
        errors,
    );
    let stream = ohip::ohip_stream_config(key, table.name, table.settings, dedupe_ttl, errors);
    if errors.len() > before {
        return None;
    }
    stream
}

/// The `[[notify]]` targets, each checked, names unique.
fn notify_list(
    tables: Vec<Option<alerts::NotifyTable>>,
    errors: &mut Vec<ConfigError>,
) -> Vec<NotifyConfig> {
    let mut list: Vec<NotifyConfig> = Vec::new();
    for (i, table) in tables.into_iter().enumerate() {
        let Some(table) = table else { continue };
        let key = format!("notify[{i}]");
        if let Some(target) = alerts::notify(&key, table, errors) {
            if list.iter().any(|n| n.name == target.name) {
                errors.push(ConfigError::new(
                    format!("{key}.name"),
                    format!(
                        "`{}` is already the name of another notify target",
                        target.name
                    ),
                ));
            }
            list.push(target);
        }
    }
    list
}

/// The `[[alerts]]` rules, each checked against what it names, names unique.
fn alert_list(
    tables: Vec<Option<alerts::AlertTable>>,
    names: &alerts::Names<'_>,
    errors: &mut Vec<ConfigError>,
) -> Vec<AlertRule> {
    let mut list: Vec<AlertRule> = Vec::new();
    for (i, table) in tables.into_iter().enumerate() {
        let Some(table) = table else { continue };
        let key = format!("alerts[{i}]");
        if let Some(rule) = alerts::alert(&key, table, names, errors) {
            if list.iter().any(|r| r.name == rule.name) {
                errors.push(ConfigError::new(
                    format!("{key}.name"),
                    format!("`{}` is already the name of another alert", rule.name),
                ));
            }
            list.push(rule);
        }
    }
    list
}

/// Unique names; kinds the store can serve.
fn check_destinations(
    destinations: &[(String, DestinationConfig)],
    store: Option<&StoreConfig>,
    errors: &mut Vec<ConfigError>,
) {
    for (i, (key, destination)) in destinations.iter().enumerate() {
        if destinations[..i]
            .iter()
            .any(|(_, d)| d.name == destination.name)
        {
            errors.push(ConfigError::new(
                format!("{key}.name"),
                format!(
                    "`{}` is already the name of another destination",
                    destination.name
                ),
            ));
        }
        let store_kind = store.map(|s| &s.kind);
        match &destination.kind {
            DestinationKind::RedisStream
                if matches!(store_kind, Some(StoreKind::Memory { .. })) =>
            {
                errors.push(ConfigError::new(
                    format!("{key}.kind"),
                    "redis_stream needs store.kind = \"redis\": the memory store has no stream to read",
                ));
            }
            _ if destination.delivery.ordered
                && matches!(
                    store_kind,
                    Some(StoreKind::Redis {
                        target: RedisTarget::Cluster(_),
                        ..
                    })
                ) =>
            {
                errors.push(ConfigError::new(
                    format!("{key}.ordered"),
                    "not available on Redis Cluster: events of one subject may live on different \
                     stream shards, so their order cannot be kept",
                ));
            }
            _ => {}
        }
    }
}

/// Unique names and routes that no two sources (and no built-in route) claim.
fn check_sources(sources: &[SourceConfig], errors: &mut Vec<ConfigError>) {
    let mut names = HashMap::new();
    let mut routes: HashMap<String, &str> = RESERVED_PATHS
        .iter()
        .map(|p| ((*p).to_owned(), "porter itself"))
        .collect();
    for (i, config) in sources.iter().enumerate() {
        let name = config.source.name();
        if name == crate::vocab::PORTER_SOURCE {
            errors.push(ConfigError::new(
                format!("sources[{i}].name"),
                "`porter` is the source name of porter's own events (`erasure.requested`)",
            ));
        }
        if let Some(first) = names.insert(name, i) {
            errors.push(ConfigError::new(
                format!("sources[{i}].name"),
                format!("`{name}` is already the name of sources[{first}]"),
            ));
        }
        for endpoint in config.source.provider().endpoints() {
            let route = format!("{}{}", config.path, endpoint.suffix);
            if let Some(owner) = routes.get(&route) {
                errors.push(ConfigError::new(
                    format!("sources[{i}].path"),
                    format!("route `{route}` is already claimed by {owner}"),
                ));
            } else {
                routes.insert(route, name);
            }
        }
    }
}

/// Routes are matched exactly against the raw request path, so only plain paths are allowed:
/// no encoding, no dot segments, no empty segments, no trailing slash.
fn check_path(path: &str) -> Result<(), String> {
    let plain = path.starts_with('/')
        && path.len() > 1
        && !path.ends_with('/')
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b))
        && path
            .split('/')
            .skip(1)
            .all(|segment| !segment.is_empty() && segment != "." && segment != "..");
    if plain {
        Ok(())
    } else {
        Err(format!(
            "`{path}` must be an absolute path of plain segments (letters, digits, `-_.~`), \
             with no trailing slash"
        ))
    }
}

/// Never echoes the URL: it may carry credentials (`https://user:pass@host`).
fn check_public_url(key: &str, url: &str, errors: &mut Vec<ConfigError>) {
    if let Err(problem) = porter_providers::settings::check_public_url(url) {
        errors.push(ConfigError::new(key, problem));
    }
}

fn parse_cidr(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{text}` is not an IP address or CIDR block"))
}

pub(crate) fn duration(
    key: &str,
    text: Option<&str>,
    default: Duration,
    errors: &mut Vec<ConfigError>,
) -> Option<Duration> {
    let Some(text) = text else {
        return Some(default);
    };
    porter_providers::settings::parse_duration(text)
        .map_err(|problem| errors.push(ConfigError::new(key, problem)))
        .ok()
}

#[cfg(test)]
mod tests;
