//! A provider's settings: typed, one struct per provider, read from the source's table.
//!
//! Each provider declares the keys it reads as a `Settings` struct that refuses any other key
//! (`#[serde(deny_unknown_fields)]`), so the list of a provider's keys is written once, where
//! the provider uses them. The value types shared by several providers are here: secrets, a
//! duration, the `event_types` table, a public URL, the `hmac` table; and [`SettingError`], a
//! problem named by its key, which the server reports with the source's name.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::{EventType, Secret};

/// What a provider may need from outside its source's table.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// `server.public_url`: the base URL providers call, when the source sets none.
    pub public_url: Option<String>,
}

/// A problem with a source's settings, named by its key within the source's table (`""`: the
/// table itself, as for a key the provider does not read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    pub key: String,
    pub problem: String,
}

impl SettingError {
    pub fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

/// Requires at least one secret, none of them empty.
pub fn require_secrets(secrets: Vec<Secret>) -> Result<Vec<Secret>, SettingError> {
    if secrets.is_empty() {
        return Err(SettingError::new(
            "secrets",
            "at least one secret is required",
        ));
    }
    if secrets.iter().any(|s| s.expose().is_empty()) {
        return Err(SettingError::new("secrets", "a secret may not be empty"));
    }
    Ok(secrets)
}

/// Requires a `url_token` of at least 16 characters: it is the whole of the authentication for
/// vendors that cannot sign, so it must not be guessable.
pub fn require_url_token(token: Option<Secret>) -> Result<Secret, SettingError> {
    match token {
        None => Err(SettingError::new(
            "url_token",
            "required: this vendor cannot sign, so its URL carries a secret token",
        )),
        Some(token) if token.expose().len() < 16 => Err(SettingError::new(
            "url_token",
            "must be at least 16 characters: it is the only thing that authenticates the vendor",
        )),
        Some(token) => Ok(token),
    }
}

/// The longest duration porter accepts anywhere in its configuration: longer ones are surely
/// mistakes, and would overflow clock arithmetic.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// A duration as configured (`"10s"`, `"5m"`, `"24h"`, `"7d"`): more than zero, at most ten
/// years.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d > MAX_DURATION => Err("must be at most 10 years".to_owned()),
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("must be longer than 0".to_owned()),
        Err(e) => Err(format!(
            "`{text}` is not a duration like \"10s\", \"5m\" or \"24h\": {e}"
        )),
    }
}

/// `#[serde(deserialize_with = "duration")]` for an optional duration key.
pub fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    Option::<String>::deserialize(deserializer)?
        .map(|text| parse_duration(&text).map_err(serde::de::Error::custom))
        .transpose()
}

/// The `event_types` table of the generic schemes: the vendor's type → a canonical type.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct EventTypes(BTreeMap<String, String>);

/// A table of canonical types, as tests write it.
impl FromIterator<(String, EventType)> for EventTypes {
    fn from_iter<I: IntoIterator<Item = (String, EventType)>>(pairs: I) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(vendor, canonical)| (vendor, canonical.as_str().to_owned()))
                .collect(),
        )
    }
}

impl EventTypes {
    /// The table with every canonical type checked, each unknown one a problem of its own.
    pub fn resolve(self) -> Result<Vec<(String, EventType)>, Vec<SettingError>> {
        let mut problems = Vec::new();
        let table = self
            .0
            .into_iter()
            .filter_map(
                |(vendor, canonical)| match EventType::from_name(&canonical) {
                    Some(EventType::ErasureRequested) => {
                        problems.push(SettingError::new(
                            format!("event_types.{vendor}"),
                            "`erasure.requested` is porter's own event (`porter erase`): no \
                             vendor event may become it",
                        ));
                        None
                    }
                    Some(event_type) => Some((vendor, event_type)),
                    None => {
                        problems.push(SettingError::new(
                            format!("event_types.{vendor}"),
                            format!("`{canonical}` is not a canonical event type (see the README)"),
                        ));
                        None
                    }
                },
            )
            .collect();
        if problems.is_empty() {
            Ok(table)
        } else {
            Err(problems)
        }
    }
}

/// Whether `url` can be a public base URL: http(s), a host, no query. Never echoes the URL in
/// its problem: it may carry credentials (`https://user:pass@host`).
pub fn check_public_url(url: &str) -> Result<(), String> {
    let ok = url.parse::<http::Uri>().is_ok_and(|uri| {
        matches!(uri.scheme_str(), Some("http" | "https"))
            && uri.authority().is_some()
            && uri.query().is_none()
    });
    if ok {
        Ok(())
    } else {
        Err("must be an http:// or https:// URL with a host and no query".to_owned())
    }
}

/// The source's own `public_url`, else the server's, checked and without a trailing slash.
pub fn public_url(own: Option<String>, context: &Context) -> Result<Option<String>, SettingError> {
    if let Some(url) = &own {
        check_public_url(url).map_err(|problem| SettingError::new("public_url", problem))?;
    }
    Ok(own
        .or_else(|| context.public_url.clone())
        .map(|url| url.trim_end_matches('/').to_owned()))
}

/// The `hmac.*` keys of a generic HMAC source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmacSettings {
    /// The header carrying the signature.
    pub header: String,
    /// `sha1`, `sha256` (default) or `sha512`.
    pub algorithm: Option<String>,
    /// `hex` (default) or `base64`.
    pub encoding: Option<String>,
    /// Text before the encoded MAC in the header (`sha256=`).
    pub prefix: Option<String>,
    /// What is signed, over `{id}`, `{timestamp}`, `{body}`, `{url}` (default `{body}`).
    pub signed: Option<String>,
    /// The header carrying Unix seconds, checked against `tolerance`.
    pub timestamp_header: Option<String>,
    /// The header carrying the event id.
    pub id_header: Option<String>,
    /// JSON pointer to the event id in the body (`/id`).
    pub id_pointer: Option<String>,
    /// JSON pointer to the event type in the body (`/type`).
    pub type_pointer: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_positive_and_bounded() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("11y").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn unknown_canonical_types_are_named_by_key() {
        let table: EventTypes =
            serde_json::from_value(serde_json::json!({"a": "room.status_changed", "b": "nope"}))
                .expect("a table");
        assert_eq!(
            table.resolve().expect_err("b is unknown"),
            [SettingError::new(
                "event_types.b",
                "`nope` is not a canonical event type (see the README)"
            )]
        );
    }
}
