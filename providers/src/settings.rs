//! The settings a source hands its provider: secrets and options from the configuration,
//! already parsed and with `${ENV}` expanded, and the problems a provider finds with them,
//! named by key.

use std::time::Duration;

use crate::Secret;

/// The provider-facing settings of a source, already parsed and with `${ENV}` expanded.
#[derive(Debug, Clone, Default)]
pub struct SourceSettings {
    /// Signing secrets; several = rotation, any one may match.
    pub secrets: Vec<Secret>,
    /// Meta's hub verify token.
    pub verify_token: Option<Secret>,
    /// The token of vendors that cannot sign.
    pub url_token: Option<Secret>,
    /// Timestamp window, where the scheme has a timestamp.
    pub tolerance: Option<Duration>,
    /// The public base URL providers call (Twilio signs it).
    pub public_url: Option<String>,
    /// `pms` only: accept requests without a secret (loudly warned about).
    pub insecure_allow_unsigned: bool,
    /// Generic schemes: the vendor's event type → porter's canonical type.
    pub event_types: Vec<(String, crate::EventType)>,
    /// `hmac` only: how the vendor signs.
    pub hmac: Option<HmacSettings>,
}

/// The `hmac.*` keys of a generic HMAC source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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

/// A problem with a source's settings, named by its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    pub key: &'static str,
    pub problem: String,
}

impl SettingError {
    pub(crate) fn new(key: &'static str, problem: impl Into<String>) -> Self {
        Self {
            key,
            problem: problem.into(),
        }
    }
}

/// Requires at least one non-empty secret.
pub(crate) fn require_secrets(settings: &SourceSettings) -> Result<Vec<Secret>, SettingError> {
    if settings.secrets.is_empty() {
        return Err(SettingError::new(
            "secrets",
            "at least one secret is required",
        ));
    }
    if settings.secrets.iter().any(|s| s.expose().is_empty()) {
        return Err(SettingError::new("secrets", "a secret may not be empty"));
    }
    Ok(settings.secrets.clone())
}

/// Requires a non-empty `url_token` of at least 16 characters: it is the whole of the
/// authentication for vendors that cannot sign, so it must not be guessable.
pub(crate) fn require_url_token(settings: &SourceSettings) -> Result<Secret, SettingError> {
    match &settings.url_token {
        None => Err(SettingError::new(
            "url_token",
            "required: this vendor cannot sign, so its URL carries a secret token",
        )),
        Some(token) if token.expose().len() < 16 => Err(SettingError::new(
            "url_token",
            "must be at least 16 characters: it is the only thing that authenticates the vendor",
        )),
        Some(token) => Ok(token.clone()),
    }
}
