//! A secret that cannot leak through `Debug` or `Display`.
//!
//! Secrets reach log lines mostly by accident (a `{:?}` of a config struct); this type makes
//! that accident print `Secret(***)`. The bytes are available only through [`Secret::expose`],
//! which is easy to grep for.

use std::fmt;

/// A signing secret, verify token or URL token.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret's bytes, for MAC keys and constant-time comparisons only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Read from a configuration string (after `${ENV}` expansion).
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The key bytes of a `whsec_<base64>` secret (Standard Webhooks; padding optional, as in the
/// Python library); `None` when it is not base64 or empty.
pub(crate) fn decode_whsec(secret: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key = STANDARD
        .decode(encoded)
        .or_else(|_| STANDARD_NO_PAD.decode(encoded))
        .ok()?;
    (!key.is_empty()).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn debug_never_shows_the_value() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(format!("{:?}", vec![secret]), "[Secret(***)]");
    }
}
