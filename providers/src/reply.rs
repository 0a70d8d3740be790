//! The answer a provider expects when a request is accepted.
//!
//! A reply is plain data (status, media type, body) so that the store can keep it with the
//! dedupe key and give a duplicate the original answer byte for byte.

use serde::{Deserialize, Serialize};

/// An HTTP answer: status, `Content-Type` and body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: String,
    /// Headers the answer must carry besides `Content-Type` (the CloudEvents webhook
    /// handshake's `WebHook-Allowed-Origin`); none for almost every provider.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
}

impl Reply {
    /// `200` with a JSON body.
    pub fn json(body: &serde_json::Value) -> Self {
        Self {
            status: 200,
            content_type: "application/json".to_owned(),
            body: body.to_string(),
            headers: Vec::new(),
        }
    }

    /// `200` with a plain-text body.
    pub fn text(body: impl Into<String>) -> Self {
        Self {
            status: 200,
            content_type: "text/plain; charset=utf-8".to_owned(),
            body: body.into(),
            headers: Vec::new(),
        }
    }

    /// `200` with an XML body (Twilio's TwiML).
    pub fn xml(body: impl Into<String>) -> Self {
        Self {
            status: 200,
            content_type: "text/xml; charset=utf-8".to_owned(),
            body: body.into(),
            headers: Vec::new(),
        }
    }

    /// The default answer: `{"status":"accepted","events":N}`.
    pub fn accepted(events: usize) -> Self {
        Self {
            status: 200,
            content_type: "application/json".to_owned(),
            body: format!(r#"{{"status":"accepted","events":{events}}}"#),
            headers: Vec::new(),
        }
    }
}
