//! Keeping secrets out of configuration errors.
//!
//! Errors are printed by `check-config` and at start-up, often into logs that many people read.
//! A message must never carry a secret, even when the mistake is in the secret's own key
//! (`secrets = "${META_APP_SECRET}"`, a string where a list belongs, used to print the
//! secret inside serde's "invalid type" message). Two layers:
//!
//! 1. Messages from serde and the TOML parser are rewritten without the values they quote
//!    ([`serde_message`], [`toml_syntax_message`]).
//! 2. Every message is scrubbed of every value that could be secret ([`Redactor`]): the values
//!    of secret-bearing keys, whatever their type; every value that came from an environment
//!    variable; and the credentials (`user:password@`) of every URL in the file.

/// Keys whose values are secrets, wherever they appear.
const SECRET_KEYS: &[&str] = &[
    "secrets",
    "secret",
    "verify_token",
    "url_token",
    "token",
    "password",
    "client_secret",
    "app_key",
    "key",
];

/// Shorter values are not scrubbed: replacing every `tok` would garble messages (`verify_***en`),
/// and a secret that short protects nothing anyway. Messages do not quote values to begin with;
/// the scrub is the second line of defence.
const MIN_SCRUBBED: usize = 6;

/// What to scrub from configuration error messages.
#[derive(Debug, Default)]
pub(super) struct Redactor {
    needles: Vec<String>,
}

impl Redactor {
    /// Collects the secret values of `value` (the configuration after `${ENV}` expansion) and
    /// the `expanded` values that came from the environment.
    pub(super) fn new(value: &toml::Value, expanded: Vec<String>) -> Self {
        let mut needles = expanded;
        collect(value, false, &mut needles);
        needles.retain(|needle| needle.len() >= MIN_SCRUBBED);
        // Longest first, so that a secret containing another is scrubbed whole.
        needles.sort_by_key(|needle| std::cmp::Reverse(needle.len()));
        needles.dedup();
        Self { needles }
    }

    /// `text` with every collected value replaced by `***`.
    pub(super) fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for needle in &self.needles {
            if text.contains(needle.as_str()) {
                text = text.replace(needle.as_str(), "***");
            }
        }
        text
    }
}

fn collect(value: &toml::Value, secret: bool, needles: &mut Vec<String>) {
    match value {
        toml::Value::String(text) => {
            if secret {
                needles.push(text.clone());
            }
            if let Some(userinfo) = url_userinfo(text) {
                needles.push(userinfo.to_owned());
            }
        }
        toml::Value::Array(items) => {
            for item in items {
                collect(item, secret, needles);
            }
        }
        toml::Value::Table(table) => {
            for (key, item) in table {
                collect(item, secret || SECRET_KEYS.contains(&key.as_str()), needles);
            }
        }
        other if secret => needles.push(other.to_string()),
        _ => {}
    }
}

/// The `user:password` of `scheme://user:password@host…`, if the text is such a URL.
fn url_userinfo(text: &str) -> Option<&str> {
    let (_, rest) = text.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let at = authority.rfind('@')?;
    Some(&authority[..at]).filter(|userinfo| !userinfo.is_empty())
}

/// serde's message for a value of the wrong type or shape, without the value: `invalid type:
/// string "hunter2", expected a sequence` becomes `invalid type: string, expected a
/// sequence`. Other messages (unknown or missing fields) name keys only and pass unchanged.
pub(super) fn serde_message(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: ", "invalid length "] {
        let Some(rest) = message.strip_prefix(prefix) else {
            continue;
        };
        // The quoted value comes first, and may itself contain ", expected ".
        let expected = rest
            .rfind(", expected ")
            .map(|at| &rest[at..])
            .unwrap_or_default();
        let kind = rest
            .split(['"', '`'])
            .next()
            .unwrap_or_default()
            .trim()
            .trim_end_matches(',');
        let kind = if kind.is_empty() { "value" } else { kind };
        return format!("{prefix}{kind}{expected}");
    }
    message.to_owned()
}

/// The TOML parser's message without the snippet of the file it quotes (the line may hold a
/// secret written in the file): the problem and where it is.
pub(super) fn toml_syntax_message(error: &toml::de::Error, text: &str) -> String {
    let problem = error
        .message()
        .lines()
        .next()
        .unwrap_or("syntax error")
        .trim();
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |at| at + 1) + 1;
            format!("invalid TOML at line {line}, column {column}: {problem}")
        }
        None => format!("invalid TOML: {problem}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_lose_their_values() {
        assert_eq!(
            serde_message(r#"invalid type: string "hunter2, expected x", expected a sequence"#),
            "invalid type: string, expected a sequence"
        );
        assert_eq!(
            serde_message("invalid type: integer `12345`, expected a string"),
            "invalid type: integer, expected a string"
        );
        assert_eq!(
            serde_message("unknown field `verfy_token`, expected one of `name`"),
            "unknown field `verfy_token`, expected one of `name`"
        );
    }

    #[test]
    fn secrets_env_values_and_url_credentials_are_scrubbed() {
        let value: toml::Value = toml::from_str(
            r#"
            [server]
            public_url = "https://user:pa55word@hooks.example.com"
            [[sources]]
            secrets = "s3cr3t-string"
            verify_token = 1234567
            hmac = { header = "X-Sig" }
            "#,
        )
        .expect("toml");
        let redactor = Redactor::new(&value, vec!["from-the-env".into(), "abcde".into()]);
        let message = "s3cr3t-string 1234567 user:pa55word from-the-env abcde X-Sig";
        assert_eq!(redactor.redact(message), "*** *** *** *** abcde X-Sig");
    }

    #[test]
    fn userinfo_is_found_only_in_urls() {
        assert_eq!(url_userinfo("redis://:pw@127.0.0.1:6379"), Some(":pw"));
        assert_eq!(url_userinfo("https://a:b@h/p?q=c@d"), Some("a:b"));
        assert_eq!(url_userinfo("https://h/p?q=c@d"), None);
        assert_eq!(url_userinfo("user@example.com"), None);
    }
}
