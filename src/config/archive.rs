//! `[archive]`: how long the raw bytes of authenticated requests are kept, so that
//! `porter reprocess` can verify and normalize them again with today's code.
//!
//! Off unless the table is present. The archive holds guests' personal data exactly as the
//! vendor sent it (and, for URL-token vendors, the token in the query), so its retention is
//! bounded: at least a minute (shorter is surely a unit mistake) and at most 90 days.
//! Every store keeps it (memory, local, Redis); see [`crate::store::archive`].

use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// The shortest retention accepted.
pub(super) const MIN_RETENTION: Duration = Duration::from_secs(60);
/// The longest retention accepted: raw bodies are personal data.
pub(super) const MAX_RETENTION: Duration = Duration::from_secs(90 * 24 * 60 * 60);

/// The `[archive]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ArchiveTable {
    pub retention: Option<String>,
    pub max_bytes: Option<u64>,
}

/// A checked `[archive]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveConfig {
    /// How long an archived request is kept after it was received.
    pub retention: Duration,
    /// The most bytes (bodies, headers, paths, queries) kept; the oldest go first.
    pub max_bytes: usize,
}

pub(super) fn archive_config(
    table: ArchiveTable,
    errors: &mut Vec<ConfigError>,
) -> Option<ArchiveConfig> {
    let key = "archive.retention";
    let Some(text) = table.retention else {
        errors.push(ConfigError::new(
            key,
            "required in [archive]: how long raw requests are kept, like \"7d\"",
        ));
        return None;
    };
    let retention = match porter_providers::settings::parse_duration(&text) {
        Ok(retention) => retention,
        Err(problem) => {
            errors.push(ConfigError::new(key, problem));
            return None;
        }
    };
    if retention < MIN_RETENTION {
        errors.push(ConfigError::new(key, "must be at least 1 minute"));
        return None;
    }
    if retention > MAX_RETENTION {
        errors.push(ConfigError::new(
            key,
            "must be at most 90 days (the archive holds raw personal data)",
        ));
        return None;
    }
    let max_bytes = match table.max_bytes {
        None => crate::vocab::DEFAULT_ARCHIVE_MAX_BYTES,
        Some(0) => {
            errors.push(ConfigError::new("archive.max_bytes", "must be more than 0"));
            return None;
        }
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
    };
    Some(ArchiveConfig {
        retention,
        max_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(retention: Option<&str>) -> Result<ArchiveConfig, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let table = ArchiveTable {
            retention: retention.map(str::to_owned),
            max_bytes: None,
        };
        archive_config(table, &mut errors).ok_or(errors)
    }

    #[test]
    fn retention_is_a_duration() {
        let config = check(Some("7d")).expect("valid");
        assert_eq!(config.retention, Duration::from_secs(7 * 24 * 3600));
        assert_eq!(
            check(Some("1m")).expect("valid").retention,
            Duration::from_secs(60)
        );
    }

    #[test]
    fn zero_short_long_and_garbage_are_refused_by_key() {
        for text in ["0s", "30s", "91d", "20years", "soon", ""] {
            let errors = check(Some(text)).expect_err(text);
            assert_eq!(errors.len(), 1, "{text}: {errors:?}");
            assert_eq!(errors[0].key, "archive.retention", "{text}");
        }
        let errors = check(None).expect_err("missing");
        assert_eq!(errors[0].key, "archive.retention");
    }
}
