//! Every answer porter gives on a source route, and the one place that turns it into HTTP.
//!
//! This is the README's "What providers get back" as code. The provider learns the class of a failure (bad
//! signature, stale timestamp, our fault) and never the detail: which header, which secret or
//! which byte stays in porter's logs. Internal failures are always 5xx so that the provider
//! retries instead of dropping the event.

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use porter_providers::rejection::RejectionClass;
use porter_providers::{Rejection, Reply};

/// Seconds a provider is asked to wait when porter cannot take events.
pub(crate) const RETRY_AFTER_SECONDS: u64 = 5;

/// The header that marks the repeat of an original answer.
pub(crate) const DUPLICATE_HEADER: &str = "porter-duplicate";

/// An answer on a source route.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    /// All events are durably stored: the provider's expected success answer.
    Accepted(Reply),
    /// Every event was already stored: the original answer, marked.
    Duplicate(Reply),
    /// A protocol handshake (Meta's `hub.challenge`), answered without events.
    Handshake(Reply),
    /// The provider's request failed verification, or its body could not be parsed.
    Rejected(Rejection),
    /// The peer address is not in the source's `allow_ips`.
    AddressNotAllowed,
    NotFound,
    MethodNotAllowed(&'static [Method]),
    PayloadTooLarge,
    /// The request's headers are larger than porter accepts.
    HeadersTooLarge,
    /// The client did not send its body within the request timeout.
    RequestTimeout,
    /// The body stream broke off before it was complete.
    IncompleteBody,
    /// The store could not take the events (down, slow or full): retry later.
    Unavailable,
    /// A defect on porter's side that waiting will not mend (an event that does not encode):
    /// 500, so that the provider still retries, and an error in porter's log.
    Internal,
    /// Over a bound on what is held before authentication (body bytes being read, requests in
    /// flight from one peer): retry later.
    Busy,
    /// The source is over its share (`max_in_flight`, `rate`): the provider's throttle status
    /// (429 or 503), how many seconds to wait, and which bound (`over_max_in_flight`,
    /// `over_rate`).
    Throttled {
        status: u16,
        retry_after: u64,
        reason: &'static str,
    },
}

impl Answer {
    /// Why a request was refused, when it says more than its outcome.
    pub(crate) fn reason(&self) -> Option<&'static str> {
        match self {
            Answer::Rejected(rejection) => Some(rejection.reason()),
            Answer::Throttled { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// A stable label for logs and metrics.
    pub(crate) fn outcome(&self) -> &'static str {
        match self {
            Answer::Accepted(_) => "accepted",
            Answer::Duplicate(_) => "duplicate",
            Answer::Handshake(_) => "handshake",
            Answer::Rejected(_) => "rejected",
            Answer::AddressNotAllowed => "address_not_allowed",
            Answer::NotFound => "not_found",
            Answer::MethodNotAllowed(_) => "method_not_allowed",
            Answer::PayloadTooLarge => "payload_too_large",
            Answer::HeadersTooLarge => "headers_too_large",
            Answer::RequestTimeout => "request_timeout",
            Answer::IncompleteBody => "incomplete_body",
            Answer::Unavailable => "unavailable",
            Answer::Busy => "busy",
            Answer::Throttled { .. } => "throttled",
            Answer::Internal => "internal",
        }
    }

    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Answer::Accepted(reply) | Answer::Duplicate(reply) | Answer::Handshake(reply) => {
                StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK)
            }
            Answer::Rejected(rejection) => match rejection.class() {
                RejectionClass::InvalidSignature | RejectionClass::StaleTimestamp => {
                    StatusCode::UNAUTHORIZED
                }
                RejectionClass::Forbidden => StatusCode::FORBIDDEN,
                RejectionClass::BadRequest | RejectionClass::InvalidHeader => {
                    StatusCode::BAD_REQUEST
                }
            },
            Answer::AddressNotAllowed => StatusCode::FORBIDDEN,
            Answer::NotFound => StatusCode::NOT_FOUND,
            Answer::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Answer::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Answer::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Answer::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Answer::IncompleteBody => StatusCode::BAD_REQUEST,
            Answer::Unavailable | Answer::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Answer::Throttled { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
            }
            Answer::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_code(&self) -> &'static str {
        match self {
            Answer::Rejected(rejection) => match rejection.class() {
                RejectionClass::InvalidSignature => "invalid_signature",
                RejectionClass::StaleTimestamp => "stale_timestamp",
                RejectionClass::Forbidden => "forbidden",
                RejectionClass::BadRequest => "bad_request",
                RejectionClass::InvalidHeader => "invalid_header",
            },
            Answer::AddressNotAllowed => "forbidden",
            Answer::IncompleteBody => "bad_request",
            other => other.outcome(),
        }
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = match &self {
            Answer::Accepted(reply) | Answer::Duplicate(reply) | Answer::Handshake(reply) => {
                let content_type = HeaderValue::from_str(&reply.content_type)
                    .unwrap_or(HeaderValue::from_static("application/octet-stream"));
                (
                    status,
                    [(header::CONTENT_TYPE, content_type)],
                    reply.body.clone(),
                )
                    .into_response()
            }
            _ => {
                let body = format!(r#"{{"error":"{}"}}"#, self.error_code());
                (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
            }
        };
        let headers = response.headers_mut();
        if let Answer::Accepted(reply) | Answer::Duplicate(reply) | Answer::Handshake(reply) = &self
        {
            for (name, value) in &reply.headers {
                if let (Ok(name), Ok(value)) = (
                    header::HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(value),
                ) {
                    headers.insert(name, value);
                }
            }
        }
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        match &self {
            Answer::Duplicate(_) => {
                headers.insert(DUPLICATE_HEADER, HeaderValue::from_static("true"));
            }
            Answer::MethodNotAllowed(methods) => {
                let allow: Vec<&str> = methods.iter().map(Method::as_str).collect();
                if let Ok(value) = HeaderValue::from_str(&allow.join(", ")) {
                    headers.insert(header::ALLOW, value);
                }
            }
            Answer::Unavailable | Answer::Busy => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
            }
            Answer::Throttled { retry_after, .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    async fn body(answer: Answer) -> (StatusCode, Option<String>, String) {
        let response = answer.into_response();
        let status = response.status();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().expect("ascii").to_owned());
        let bytes = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .expect("body");
        (
            status,
            retry_after,
            String::from_utf8(bytes.to_vec()).expect("utf-8"),
        )
    }

    #[tokio::test]
    async fn an_outage_asks_for_a_retry_later_and_a_defect_is_a_500() {
        assert_eq!(
            body(Answer::Unavailable).await,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Some("5".to_owned()),
                r#"{"error":"unavailable"}"#.to_owned()
            )
        );
        assert_eq!(
            body(Answer::Internal).await,
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                r#"{"error":"internal"}"#.to_owned()
            )
        );
    }

    #[test]
    fn which_store_errors_are_outages() {
        let encoding = serde_json::from_str::<u8>("x").expect_err("not a number");
        assert!(!StoreError::from(encoding).is_outage());
        assert!(!StoreError::Damaged("journal 3 is damaged".into()).is_outage());
        let refused =
            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(StoreError::from(refused).is_outage());
        assert!(StoreError::Full.is_outage());
        let io = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let error = StoreError::io("cannot open /var/lib/porter/journal-1", io);
        assert!(error.is_outage());
        assert_eq!(
            error.to_string(),
            "cannot open /var/lib/porter/journal-1: permission denied"
        );
        assert!(
            std::error::Error::source(&error).is_some(),
            "the cause is kept"
        );
    }
}
