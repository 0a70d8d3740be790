//! Helpers for the providers' unit tests.

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use jiff::Timestamp;

use crate::event::Origin;
use crate::{Request, Secret};

/// An owned request that hands out [`Request`] views.
#[derive(Clone)]
pub struct OwnedRequest {
    pub method: Method,
    pub endpoint: &'static str,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl OwnedRequest {
    pub fn post(path: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            method: Method::POST,
            endpoint: "",
            path: path.to_owned(),
            query: None,
            headers: HeaderMap::new(),
            body: body.into(),
        }
    }

    pub fn get(path: &str, query: &str) -> Self {
        Self {
            method: Method::GET,
            query: Some(query.to_owned()),
            ..Self::post(path, Vec::new())
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.append(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_bytes(value.as_bytes()).expect("header value"),
        );
        self
    }

    /// A header whose value is any bytes (HTTP allows obs-text, 0x80 to 0xff).
    pub fn header_bytes(mut self, name: &str, value: &[u8]) -> Self {
        self.headers.append(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_bytes(value).expect("header value"),
        );
        self
    }

    pub fn view(&self) -> Request<'_> {
        Request {
            method: &self.method,
            endpoint: self.endpoint,
            path: &self.path,
            query: self.query.as_deref(),
            headers: &self.headers,
            body: &self.body,
        }
    }
}

pub fn secrets(values: &[&str]) -> Vec<Secret> {
    values.iter().map(|v| Secret::new(*v)).collect()
}

pub fn now() -> Timestamp {
    "2024-03-15T14:00:01.123Z".parse().expect("timestamp")
}

pub fn origin(source_name: &'static str, provider: &'static str) -> Origin<'static> {
    Origin {
        source_name,
        provider,
        received_at: now(),
    }
}

/// `verify` as the tests read it: `Ok(())` or the rejection.
pub trait Check: crate::WebhookProvider {
    fn check(&self, request: &Request<'_>, now: Timestamp) -> Result<(), crate::Rejection> {
        self.verify(request, now).map(drop)
    }
}

impl<P: crate::WebhookProvider> Check for P {}

/// Normalizes a request as if it had passed verification, for providers whose verification
/// hands on nothing but the request.
pub trait NormalizeChecked {
    fn normalize_events(
        &self,
        request: &Request<'_>,
        origin: &Origin<'_>,
    ) -> Result<Vec<crate::Normalized>, crate::Rejection>;
}

impl<P> NormalizeChecked for P
where
    P: for<'a> crate::WebhookProvider<Verified<'a> = crate::provider::Checked<'a>>,
{
    fn normalize_events(
        &self,
        request: &Request<'_>,
        origin: &Origin<'_>,
    ) -> Result<Vec<crate::Normalized>, crate::Rejection> {
        self.normalize(crate::provider::Checked::new(request), origin)
            .map(|normalization| normalization.events)
    }
}
