//! The view of an inbound HTTP request that providers read.
//!
//! Borrowed, so that the server hands over the bytes it already holds without copying, and
//! raw: the path and query exactly as received and the body exactly as sent, because
//! signatures are computed over exactly those bytes.

use http::{HeaderMap, Method};

/// An inbound request as a provider sees it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a Method,
    /// The route suffix below the source's base path that matched (`""`, `"/status"`).
    pub endpoint: &'a str,
    /// The request path exactly as received (no decoding, no normalisation).
    pub path: &'a str,
    /// The raw query string, without the `?`, exactly as received.
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    /// The raw body exactly as received.
    pub body: &'a [u8],
}

/// The outcome of looking up a header that must appear at most once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderValue<'a> {
    Missing,
    One(&'a [u8]),
    /// Present more than once: a request carrying two signatures is refused rather than
    /// letting one of them win.
    Repeated,
}

impl<'a> Request<'a> {
    /// The header `name`, requiring that it appear at most once.
    pub fn single_header(&self, name: &str) -> HeaderValue<'a> {
        let mut values = self.headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (None, _) => HeaderValue::Missing,
            (Some(value), None) => HeaderValue::One(value.as_bytes()),
            (Some(_), Some(_)) => HeaderValue::Repeated,
        }
    }

    /// The header `name` as text, if it appears exactly once and is visible ASCII.
    pub fn header_str(&self, name: &str) -> Option<&'a str> {
        match self.single_header(name) {
            HeaderValue::One(bytes) => std::str::from_utf8(bytes).ok(),
            _ => None,
        }
    }
}
