//! `[privacy]`: the key that `pii = "hash"` destinations hash personal values under.
//!
//! The key is a secret (set it from the environment, `key = "${PORTER_PRIVACY_KEY}"`): whoever
//! holds it can test a guess (a phone number) against a token. At least 32 bytes, so that it
//! cannot be guessed; it is never printed.

use serde::Deserialize;

use super::ConfigError;

/// The `[privacy]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PrivacyTable {
    pub key: Option<String>,
}

/// A checked `[privacy]`.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivacyConfig {
    pub key: Vec<u8>,
}

impl std::fmt::Debug for PrivacyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivacyConfig").finish_non_exhaustive()
    }
}

pub(super) fn privacy_config(
    table: PrivacyTable,
    errors: &mut Vec<ConfigError>,
) -> Option<PrivacyConfig> {
    match table.key {
        Some(key) if key.len() >= 32 => Some(PrivacyConfig {
            key: key.into_bytes(),
        }),
        Some(_) => {
            errors.push(ConfigError::new(
                "privacy.key",
                "must be at least 32 bytes (a random secret, from the environment)",
            ));
            None
        }
        None => {
            errors.push(ConfigError::new(
                "privacy.key",
                "required in [privacy]: the secret pii = \"hash\" destinations hash under",
            ));
            None
        }
    }
}
