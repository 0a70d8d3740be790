//! The configuration file as written: serde mirrors of the TOML tables.
//!
//! Every table denies unknown keys, so a typo (`verfy_token`) is an error rather than a
//! silently missing setting. Values stay as written here (durations as text, URLs as text);
//! [`super::Config::from_value`] checks and converts them, naming each problem by its key.

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTable {
    pub listen: Option<String>,
    pub public_url: Option<String>,
    pub max_body_bytes: Option<u64>,
    pub request_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub max_connections: Option<usize>,
    pub max_connections_per_peer: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreTable {
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
    /// Memory store: also write each new event as a JSON line on stdout.
    pub print_events: Option<bool>,
    /// Memory store: how many events it holds before answering 503.
    pub capacity: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceTable {
    pub name: String,
    pub provider: String,
    pub path: String,
    pub secrets: Option<Vec<String>>,
    pub verify_token: Option<String>,
    pub url_token: Option<String>,
    pub tolerance: Option<String>,
    pub dedupe_ttl: Option<String>,
    pub public_url: Option<String>,
    pub allow_ips: Option<Vec<String>>,
    pub insecure_allow_unsigned: Option<bool>,
    pub event_types: Option<std::collections::BTreeMap<String, String>>,
    pub hmac: Option<HmacTable>,
}

/// The `hmac` table of a generic HMAC source.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmacTable {
    pub header: String,
    pub algorithm: Option<String>,
    pub encoding: Option<String>,
    pub prefix: Option<String>,
    pub signed: Option<String>,
    pub timestamp_header: Option<String>,
    pub id_header: Option<String>,
    pub id_pointer: Option<String>,
    pub type_pointer: Option<String>,
}

impl SourceTable {
    /// The provider-specific keys that are set, for checking them against what the provider
    /// reads. (`name`, `provider`, `path`, `dedupe_ttl` and `allow_ips` apply to every source.)
    pub fn provider_keys_set(&self) -> Vec<&'static str> {
        let set = [
            ("secrets", self.secrets.is_some()),
            ("verify_token", self.verify_token.is_some()),
            ("url_token", self.url_token.is_some()),
            ("tolerance", self.tolerance.is_some()),
            ("public_url", self.public_url.is_some()),
            (
                "insecure_allow_unsigned",
                self.insecure_allow_unsigned.is_some(),
            ),
            ("event_types", self.event_types.is_some()),
            ("hmac", self.hmac.is_some()),
        ];
        set.into_iter()
            .filter_map(|(key, present)| present.then_some(key))
            .collect()
    }
}
