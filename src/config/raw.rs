//! The configuration file as written: serde mirrors of the TOML tables.
//!
//! Every table denies unknown keys, so a typo (`verfy_token`) is an error rather than a
//! silently missing setting. Values stay as written here (durations as text, URLs as text);
//! [`super::Config::from_value`] checks and converts them, naming each problem by its key.

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ServerTable {
    pub listen: Option<String>,
    pub public_url: Option<String>,
    pub max_body_bytes: Option<u64>,
    pub request_timeout: Option<String>,
    pub drain_delay: Option<String>,
    pub idle_timeout: Option<String>,
    pub max_connections: Option<usize>,
    pub max_connections_per_peer: Option<usize>,
    pub header_timeout: Option<String>,
    pub h2_max_streams: Option<u32>,
    pub max_buffered_bytes: Option<u64>,
    pub max_buffered_bytes_per_peer: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StoreTable {
    pub kind: Option<String>,
    pub url: Option<String>,
    pub urls: Option<Vec<String>>,
    pub dedupe_ttl: Option<String>,
    pub stream: Option<String>,
    /// Redis: the prefix of dedupe and quarantine keys.
    pub key_prefix: Option<String>,
    /// Redis: approximate MAXLEN trimming of the stream(s); absent = never trim.
    pub max_len: Option<u64>,
    /// Redis Cluster: how many stream shards.
    pub shards: Option<u16>,
    /// Single Redis: `script` (default) or `transaction`, how dedupe-and-enqueue is done.
    pub enqueue: Option<String>,
    /// Redis: how many replicas must confirm each write before porter answers (`WAIT`).
    pub wait_replicas: Option<u32>,
    /// Redis: how long to wait for them (default 1s).
    pub wait_timeout: Option<String>,
    /// Memory store: also write each new event as a JSON line on stdout.
    pub print_events: Option<bool>,
    /// Memory and local stores: how many events (memory) or scheduled jobs (local) they hold
    /// before answering 503.
    pub capacity: Option<usize>,
    /// Local store: the directory.
    pub path: Option<String>,
    /// Local store: how many of the newest events are kept for inspection.
    pub retain_events: Option<usize>,
}

/// A `[[sources]]` table: the keys every source has, and the rest, which belong to the source's
/// provider (whose `Settings` struct refuses any it does not read).
#[derive(Debug, Deserialize)]
pub(super) struct SourceTable {
    pub name: String,
    pub provider: String,
    /// Absent for a source porter connects out to (`oracle_ohip_stream`).
    pub path: Option<String>,
    pub dedupe_ttl: Option<String>,
    pub allow_ips: Option<Vec<String>>,
    /// The source's share of the providers' listener: requests in flight.
    pub max_in_flight: Option<u32>,
    /// The source's share: requests per second.
    pub rate: Option<f64>,
    #[serde(flatten)]
    pub settings: toml::Table,
}
