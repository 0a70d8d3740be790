//! `${NAME}` expansion in configuration strings.
//!
//! Secrets belong in the environment (or a secret manager that fills it), not in a file that
//! gets committed; the config names them as `${META_APP_SECRET}`. Expansion runs over every
//! string value before the typed parse, and a variable that is not set is an error naming the
//! key, never an empty secret.

use super::ConfigError;

/// Expands `${NAME}` in every string of `value`, collecting one error per missing variable;
/// returns every value substituted (for scrubbing error messages: porter cannot know which
/// environment variables hold secrets).
pub(super) fn expand(
    value: &mut toml::Value,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
) -> Vec<String> {
    let substituted = std::cell::RefCell::new(Vec::new());
    let recording = |name: &str| {
        let value = lookup(name);
        substituted.borrow_mut().extend(value.clone());
        value
    };
    expand_into(value, path, &recording, errors);
    substituted.into_inner()
}

fn expand_into(
    value: &mut toml::Value,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
) {
    match value {
        toml::Value::String(text) => match expand_str(text, lookup) {
            Ok(expanded) => *text = expanded,
            Err(problem) => errors.push(ConfigError::new(path, problem)),
        },
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_into(item, &format!("{path}[{i}]"), lookup, errors);
            }
        }
        toml::Value::Table(table) => {
            for (key, item) in table.iter_mut() {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                expand_into(item, &child, lookup, errors);
            }
        }
        _ => {}
    }
}

fn expand_str(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "unterminated `${` in value".to_owned())?;
        let name = &after[..end];
        let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "`${{{name}}}` is not a valid environment variable reference"
            ));
        }
        let value =
            lookup(name).ok_or_else(|| format!("environment variable `{name}` is not set"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        match name {
            "SECRET" => Some("s3cr3t".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_and_names_missing_variables_by_key() {
        let mut value: toml::Value = toml::from_str(
            r#"
            plain = "no vars"
            [[sources]]
            secrets = ["${SECRET}", "pre-${SECRET}-post", "${MISSING}"]
            "#,
        )
        .expect("toml");
        let mut errors = Vec::new();
        expand(&mut value, "", &lookup, &mut errors);
        assert_eq!(value["sources"][0]["secrets"][0].as_str(), Some("s3cr3t"));
        assert_eq!(
            value["sources"][0]["secrets"][1].as_str(),
            Some("pre-s3cr3t-post")
        );
        assert_eq!(value["plain"].as_str(), Some("no vars"));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].key, "sources[0].secrets[2]");
        assert!(errors[0].message.contains("MISSING"));
    }

    #[test]
    fn rejects_malformed_references() {
        for text in ["${", "${}", "${A-B}", "x${SECRET"] {
            assert!(expand_str(text, &lookup).is_err(), "{text}");
        }
        assert_eq!(expand_str("${EMPTY}", &lookup), Ok(String::new()));
    }
}
