//! How configuration problems are reported: each named by its key, with the name of the source
//! destination, notify target or alert it belongs to (`sources[3] (channel-manager).secrets`, since nobody counts
//! tables in a long file), without knock-on problems of a variable already reported unset, and
//! with every secret scrubbed out (see [`redact`](super::redact)).

use super::ConfigError;
use super::redact::Redactor;

/// The `name` of every `[[sources]]` and `[[destinations]]` table, as written.
#[derive(Debug, Default)]
pub(super) struct TableNames {
    sources: Vec<Option<String>>,
    destinations: Vec<Option<String>>,
    notify: Vec<Option<String>>,
    alerts: Vec<Option<String>>,
}

impl TableNames {
    pub(super) fn of(value: &toml::Value) -> Self {
        let names = |key: &str| -> Vec<Option<String>> {
            value
                .get(key)
                .and_then(toml::Value::as_array)
                .map(|tables| {
                    tables
                        .iter()
                        .map(|t| {
                            t.get("name")
                                .and_then(toml::Value::as_str)
                                .map(str::to_owned)
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        Self {
            sources: names("sources"),
            destinations: names("destinations"),
            notify: names("notify"),
            alerts: names("alerts"),
        }
    }

    /// `sources[3].secrets` → `sources[3] (channel-manager).secrets`. The name is scrubbed
    /// like any message (it could come from the environment); the key itself is structure.
    fn name_key(&self, key: &str, redactor: &Redactor) -> String {
        for (array, names) in [
            ("sources", &self.sources),
            ("destinations", &self.destinations),
            ("notify", &self.notify),
            ("alerts", &self.alerts),
        ] {
            let Some(rest) = key
                .strip_prefix(array)
                .and_then(|rest| rest.strip_prefix('['))
            else {
                continue;
            };
            let Some((index, tail)) = rest.split_once(']') else {
                continue;
            };
            let name = index
                .parse::<usize>()
                .ok()
                .and_then(|i| names.get(i).cloned().flatten());
            if let Some(name) = name {
                let name = redactor.redact(&name);
                return format!("{array}[{index}] ({name}){tail}");
            }
        }
        key.to_owned()
    }
}

/// The problems as reported: `unset` are the problems of `${NAME}` expansion (reported first),
/// `checks` those found afterwards, a check on a key whose value could not be expanded is left
/// out (it only repeats the first problem in other words), and keys get their table's name.
pub(super) fn report(
    unset: Vec<ConfigError>,
    checks: Vec<ConfigError>,
    names: &TableNames,
    redactor: &Redactor,
) -> Vec<ConfigError> {
    // A check repeats an unset variable's problem when it is about that very value, or about
    // the list it is an element of (`sources[3].secrets` after `sources[3].secrets[0]`); a
    // check of the whole table (`sources[3]: unknown field`) is another problem.
    let repeats = |unset: &str, check: &str| {
        unset == check
            || unset
                .strip_prefix(check)
                .is_some_and(|rest| rest.starts_with('[') && !rest[1..].contains(['.', '[']))
    };
    let knock_on = |check: &ConfigError| unset.iter().any(|u| repeats(&u.key, &check.key));
    let checks: Vec<ConfigError> = checks.into_iter().filter(|c| !knock_on(c)).collect();
    unset
        .into_iter()
        .chain(checks)
        .map(|error| ConfigError {
            key: names.name_key(&error.key, redactor),
            message: redactor.redact(&error.message),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> TableNames {
        TableNames::of(
            &toml::from_str(
                r#"
                [[sources]]
                name = "whatsapp"
                [[sources]]
                provider = "x"
                [[destinations]]
                name = "crm"
                "#,
            )
            .expect("toml"),
        )
    }

    #[test]
    fn keys_carry_the_tables_name() {
        let names = names();
        let name = |key: &str| names.name_key(key, &Redactor::default());
        assert_eq!(
            name("sources[0].secrets[1]"),
            "sources[0] (whatsapp).secrets[1]"
        );
        assert_eq!(name("sources[0]"), "sources[0] (whatsapp)");
        assert_eq!(name("sources[1].path"), "sources[1].path");
        assert_eq!(name("destinations[0].url"), "destinations[0] (crm).url");
        assert_eq!(name("server.listen"), "server.listen");
    }

    #[test]
    fn checks_on_an_unset_value_are_left_out() {
        let unset = vec![ConfigError::new("sources[0].secrets[0]", "not set")];
        let checks = vec![
            ConfigError::new("sources[0].secrets", "must be whsec_"),
            ConfigError::new("sources[0].secrets[0]", "must be whsec_"),
            ConfigError::new("sources[0].secretsx", "other"),
            ConfigError::new("sources[0].path", "bad path"),
            ConfigError::new("sources[0]", "unknown field `colour`"),
        ];
        let reported = report(unset, checks, &names(), &Redactor::default());
        let keys: Vec<&str> = reported.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "sources[0] (whatsapp).secrets[0]",
                "sources[0] (whatsapp).secretsx",
                "sources[0] (whatsapp).path",
                "sources[0] (whatsapp)"
            ]
        );
    }
}
