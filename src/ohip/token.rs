//! The OAuth token a stream is opened with: client credentials at
//! `POST {gateway_url}/oauth/v1/tokens`, with the app key and (OCIM) the enterprise id.
//!
//! A socket lives as long as its token (60 minutes), so the connector fetches one per
//! connection, and reuses a cached one unless it is due for rotation or OHIP refused it: Oracle
//! asks for a new token every ~50 minutes, "but not more frequently".

use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::config::OhipStreamConfig;
use crate::remote_text::quote;

/// The largest token answer porter reads: an OAuth token answer is a few KiB; a gateway that
/// sends more is broken or hostile, and is not read into memory.
pub(crate) const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// A bearer token and when porter should stop using it.
#[derive(Clone)]
pub(crate) struct Token {
    pub access: String,
    /// When the connector rotates: `rotate_every` after it was issued, or earlier when
    /// `expires_in` says so (five minutes before the expiry).
    pub rotate_at: Instant,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("access", &"***")
            .field("rotate_at", &self.rotate_at)
            .finish()
    }
}

/// Why no token came.
#[derive(Debug)]
pub(crate) enum TokenError {
    /// 400, 401 or 403: the credentials, app key or scope are wrong.
    Refused(u16),
    /// The endpoint failed or could not be reached.
    Unavailable(String),
}

#[derive(Deserialize)]
struct Answer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Fetches a token with the source's credentials.
pub(crate) async fn fetch(
    http: &reqwest::Client,
    config: &OhipStreamConfig,
) -> Result<Token, TokenError> {
    let url = config
        .gateway_url
        .join("oauth/v1/tokens")
        .map_err(|e| TokenError::Unavailable(e.to_string()))?;
    let mut request = http
        .post(url)
        .basic_auth(&config.client_id, Some(config.client_secret.expose()))
        .header("x-app-key", config.app_key.expose())
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(format!(
            "grant_type=client_credentials&scope={}",
            percent_encoding::utf8_percent_encode(
                &config.scope,
                percent_encoding::NON_ALPHANUMERIC
            )
        ));
    if let Some(enterprise) = &config.enterprise_id {
        request = request.header("enterpriseId", enterprise);
    }
    let issued = Instant::now();
    let response = request
        .send()
        .await
        .map_err(|e| TokenError::Unavailable(without_url(&e)))?;
    let status = response.status();
    if matches!(status.as_u16(), 400 | 401 | 403) {
        return Err(TokenError::Refused(status.as_u16()));
    }
    if !status.is_success() {
        return Err(TokenError::Unavailable(format!(
            "the token endpoint answered {status}"
        )));
    }
    let body = bounded_body(response).await?;
    let answer: Answer = serde_json::from_slice(&body).map_err(|e| {
        TokenError::Unavailable(format!(
            "unreadable token answer: {}",
            quote(&e.to_string())
        ))
    })?;
    if answer.access_token.is_empty() {
        return Err(TokenError::Unavailable("an empty access_token".to_owned()));
    }
    let mut lifetime = config.rotate_every;
    if let Some(seconds) = answer.expires_in {
        // Rotate five minutes before the expiry, or at half the lifetime of a short token.
        let expires = Duration::from_secs(seconds);
        let margin = Duration::from_secs(300).min(expires / 2);
        lifetime = lifetime.min(expires - margin);
    }
    Ok(Token {
        access: answer.access_token,
        rotate_at: issued + lifetime,
    })
}

/// The answer's body, read no further than [`MAX_ANSWER_BYTES`].
async fn bounded_body(mut response: reqwest::Response) -> Result<Vec<u8>, TokenError> {
    let too_large = || {
        TokenError::Unavailable(format!(
            "the token answer is larger than {} KiB: not read",
            MAX_ANSWER_BYTES / 1024
        ))
    };
    if response
        .content_length()
        .is_some_and(|length| length > MAX_ANSWER_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| TokenError::Unavailable(without_url(&e)))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// reqwest's error text without the URL (which holds nothing secret here, but keeps log lines
/// short and the same for every attempt).
fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), "the token endpoint");
    }
    quote(&text)
}
