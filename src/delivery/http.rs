//! Signed HTTP delivery.
//!
//! Every event is POSTed as `application/cloudevents+json`, exactly as stored, with Standard
//! Webhooks headers (`webhook-id` = the event id, `webhook-timestamp`, `webhook-signature:
//! v1,<base64 HMAC-SHA256(key, id.timestamp.body)>`), so a receiver verifies it with any
//! Standard Webhooks library. An event that carries a `traceparent` (one stored while porter
//! exported traces) is sent with it as a `traceparent` header too. Only a 2xx is a delivery:
//! a 3xx is not followed (a redirect could send signed events elsewhere), and every other
//! answer, a timeout or a refused connection is a failure to retry.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use porter_providers::standard_webhooks::signature_headers;
use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER, USER_AGENT};

use super::Response;
use crate::config::{Delivery, HttpDestination};
use crate::trace::Traceparent;

/// Longest `Retry-After` porter honours; a destination asking for more is retried sooner.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// Posts signed events to one destination.
pub struct HttpSender {
    client: reqwest::Client,
    url: reqwest::Url,
    /// `host:port` of the URL, for failure reasons (the URL itself may carry credentials or a
    /// token in its query, and is never logged).
    address: String,
    key: Vec<u8>,
}

impl std::fmt::Debug for HttpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSender")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

impl HttpSender {
    pub fn new(destination: &HttpDestination, delivery: &Delivery) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(delivery.timeout)
            .connect_timeout(delivery.timeout.min(Duration::from_secs(10)))
            .build()?;
        let url = destination.url.clone();
        let address = super::address_of(url.as_str());
        Ok(Self {
            client,
            url,
            address,
            key: destination.key.clone(),
        })
    }

    /// One attempt; returns the outcome and how long it took.
    pub async fn send(&self, event_id: &str, body: &str, now: Timestamp) -> (Response, Duration) {
        let started = Instant::now();
        let headers = signature_headers(&self.key, event_id, now.as_second(), body.as_bytes());
        let mut request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/cloudevents+json")
            .header(USER_AGENT, concat!("porter/", env!("CARGO_PKG_VERSION")))
            .body(body.to_owned());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        // The event's own trace context, so that the receiver's spans join the ingest trace.
        if let Some(traceparent) = Traceparent::of_event(body) {
            request = request.header("traceparent", traceparent.to_string());
        }
        let response = match request.send().await {
            Ok(response) => classify(
                response.status().as_u16(),
                response.headers().get(RETRY_AFTER),
            ),
            Err(error) => Response::Failed {
                status: None,
                reason: describe(error, &self.address),
                retry_after: None,
            },
        };
        (response, started.elapsed())
    }
}

fn classify(status: u16, retry_after: Option<&HeaderValue>) -> Response {
    if (200..300).contains(&status) {
        return Response::Delivered {
            status: Some(status),
        };
    }
    let retry_after = match status {
        429 | 503 => retry_after.and_then(parse_retry_after),
        _ => None,
    };
    let reason = match status {
        300..=399 => format!("status {status} (redirects are not followed)"),
        _ => format!("status {status}"),
    };
    Response::Failed {
        status: Some(status),
        reason,
        retry_after,
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not honoured: the schedule applies).
fn parse_retry_after(value: &HeaderValue) -> Option<Duration> {
    let seconds: u64 = value.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

/// What went wrong, for the attempt log: the kind, the address, and the error's chain of
/// causes (`connection failed (127.0.0.1:9): tcp connect error: Connection refused (os error
/// 111)`). The URL is left out: it may carry credentials or a token.
fn describe(error: reqwest::Error, address: &str) -> String {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let error = error.without_url();
    let mut causes: Vec<String> = Vec::new();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.is_empty() && !causes.contains(&text) {
            causes.push(text);
        }
        source = cause.source();
    }
    if causes.is_empty() {
        causes.push(error.to_string());
    }
    format!("{kind} ({address}): {}", causes.join(": "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_2xx_is_delivered() {
        assert_eq!(
            classify(200, None),
            Response::Delivered { status: Some(200) }
        );
        assert_eq!(
            classify(204, None),
            Response::Delivered { status: Some(204) }
        );
        for status in [301, 400, 404, 410, 500] {
            assert!(
                matches!(classify(status, None), Response::Failed { .. }),
                "{status}"
            );
        }
    }

    #[test]
    fn retry_after_is_honoured_on_429_and_503_only() {
        let five = HeaderValue::from_static("5");
        let wish = |status| match classify(status, Some(&five)) {
            Response::Failed { retry_after, .. } => retry_after,
            Response::Delivered { .. } => None,
        };
        assert_eq!(wish(429), Some(Duration::from_secs(5)));
        assert_eq!(wish(503), Some(Duration::from_secs(5)));
        assert_eq!(wish(500), None);
        assert_eq!(
            parse_retry_after(&HeaderValue::from_static("Wed, 21 Oct 2026 07:28:00 GMT")),
            None
        );
        assert_eq!(
            parse_retry_after(&HeaderValue::from_static("99999999")),
            Some(MAX_RETRY_AFTER)
        );
    }

    #[tokio::test]
    async fn a_refused_connection_says_where_and_why_without_the_url() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let destination = HttpDestination {
            url: format!("http://user:pa55word@127.0.0.1:{port}/hook?token=s3cr3t")
                .parse()
                .expect("url"),
            key: vec![1; 16],
        };
        let delivery = Delivery {
            timeout: Duration::from_secs(2),
            ..Delivery::default()
        };
        let sender = HttpSender::new(&destination, &delivery).expect("client");
        let (response, _) = sender.send("evt_1", "{}", Timestamp::now()).await;
        let Response::Failed { reason, .. } = response else {
            panic!("nothing listens there")
        };
        assert!(
            reason.starts_with(&format!("connection failed (127.0.0.1:{port}): ")),
            "{reason}"
        );
        assert!(reason.to_lowercase().contains("refused"), "{reason}");
        assert!(
            !reason.contains("pa55word") && !reason.contains("s3cr3t"),
            "{reason}"
        );
    }

    #[test]
    fn signatures_follow_the_standard_webhooks_vector() {
        use base64::Engine;
        use base64::engine::general_purpose::STANDARD as BASE64;
        // The reference libraries' test_sign vector.
        let key = BASE64
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .expect("key");
        let [_, _, (_, signature)] = signature_headers(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
