//! Sending a notification to its targets: a signed webhook (Standard Webhooks, as deliveries
//! are signed: the same `signature_headers`), Slack-compatible incoming-webhook JSON, or an
//! e-mail through an SMTP relay.
//!
//! Each send is bounded (a timeout per attempt, [`ATTEMPTS`] attempts at most) and runs on a
//! task of its own, so a slow or dead target delays nothing else. A failure is logged with the
//! target's name and the address it could not reach, never its URL (a Slack URL's path is its
//! credential) or its secret.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use porter_providers::standard_webhooks::signature_headers;
use reqwest::header::{CONTENT_TYPE, USER_AGENT};
use serde::Serialize;

use crate::clock::Clock;
use crate::config::{NotifyConfig, NotifyTarget};

/// Attempts per notification and target: the first and two retries.
pub(crate) const ATTEMPTS: usize = 3;
/// The waits before the retries.
pub(crate) const RETRY_AFTER: [Duration; ATTEMPTS - 1] =
    [Duration::from_secs(2), Duration::from_secs(10)];
/// How long one attempt may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// One notification: an alert fired (again) or resolved.
#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    pub alert: String,
    /// `firing` or `resolved`.
    pub state: &'static str,
    /// Firing: since when the condition holds; resolved: when it stopped holding.
    pub since: Timestamp,
    pub summary: String,
    pub details: serde_json::Value,
    /// A reminder of an alert already firing.
    #[serde(skip)]
    pub repeat: bool,
    /// The `[[notify]]` names to send it to.
    #[serde(skip)]
    pub targets: Vec<String>,
}

impl Notice {
    /// The JSON a webhook target receives (CONTRACT §13).
    pub(crate) fn body(&self) -> String {
        serde_json::json!({
            "alert": self.alert,
            "state": self.state,
            "since": self.since,
            "summary": self.summary,
            "details": self.details,
        })
        .to_string()
    }

    /// One line for a chat message or a mail subject.
    pub(crate) fn headline(&self) -> String {
        let state = match (self.state, self.repeat) {
            ("firing", true) => "FIRING (still)",
            ("firing", false) => "FIRING",
            _ => "RESOLVED",
        };
        format!("[porter] {state} {}", self.alert)
    }

    fn text(&self) -> String {
        let since = match self.state {
            "firing" => "holding since",
            _ => "resolved at",
        };
        format!(
            "{}: {}\n{since} {}",
            self.headline(),
            self.summary,
            self.since
        )
    }
}

/// How a target has fared, for the admin API and the console.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TargetStatus {
    pub name: String,
    pub kind: &'static str,
    /// Notifications it took.
    pub sent: u64,
    /// Notifications given up on after every attempt.
    pub failed: u64,
    pub last_sent_at: Option<Timestamp>,
    /// The last attempt's failure, if the last notification failed.
    pub last_error: Option<String>,
}

/// Every configured target, ready to send.
pub(crate) struct Targets {
    targets: Vec<Target>,
    http: reqwest::Client,
    clock: Clock,
    retry_after: Mutex<Vec<Duration>>,
    status: Mutex<BTreeMap<String, TargetStatus>>,
}

impl std::fmt::Debug for Targets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Targets")
            .field(
                "targets",
                &self.targets.iter().map(|t| &t.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

struct Target {
    name: String,
    /// `host:port`, for failure reasons (never the URL).
    address: String,
    kind: Kind,
}

enum Kind {
    Webhook {
        url: reqwest::Url,
        key: Vec<u8>,
    },
    Slack {
        url: reqwest::Url,
    },
    Email {
        mailer: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
        to: Vec<Mailbox>,
    },
}

impl Targets {
    /// The targets of `config`; `retry_after` are the waits before each retry.
    pub(crate) fn new(config: &[NotifyConfig], clock: Clock, retry_after: Vec<Duration>) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .build()
            .unwrap_or_default();
        let mut status = BTreeMap::new();
        let targets = config
            .iter()
            .filter_map(|notify| {
                status.insert(
                    notify.name.clone(),
                    TargetStatus {
                        name: notify.name.clone(),
                        kind: notify.target.kind(),
                        sent: 0,
                        failed: 0,
                        last_sent_at: None,
                        last_error: None,
                    },
                );
                let (address, kind) = match &notify.target {
                    NotifyTarget::Webhook { url, key } => (
                        crate::delivery::address_of(url.as_str()),
                        Kind::Webhook {
                            url: url.clone(),
                            key: key.clone(),
                        },
                    ),
                    NotifyTarget::Slack { url } => (
                        crate::delivery::address_of(url.as_str()),
                        Kind::Slack { url: url.clone() },
                    ),
                    NotifyTarget::Email {
                        host,
                        port,
                        from,
                        to,
                        starttls,
                    } => {
                        let tls = if *starttls {
                            match TlsParameters::new(host.clone()) {
                                Ok(parameters) => Tls::Required(parameters),
                                Err(error) => {
                                    tracing::error!(target_name = %notify.name, %error, "cannot set up TLS for this e-mail target; it is left out");
                                    return None;
                                }
                            }
                        } else {
                            Tls::None
                        };
                        let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                            .port(*port)
                            .timeout(Some(TIMEOUT))
                            .tls(tls)
                            .build();
                        (
                            format!("{host}:{port}"),
                            Kind::Email {
                                mailer,
                                from: from.clone(),
                                to: to.clone(),
                            },
                        )
                    }
                };
                Some(Target {
                    name: notify.name.clone(),
                    address,
                    kind,
                })
            })
            .collect();
        Self {
            targets,
            http,
            clock,
            retry_after: Mutex::new(retry_after),
            status: Mutex::new(status),
        }
    }

    pub(crate) fn set_retry_after(&self, retry_after: Vec<Duration>) {
        *lock(&self.retry_after) = retry_after;
    }

    /// Each target's record.
    pub(crate) fn statuses(&self) -> Vec<TargetStatus> {
        lock(&self.status).values().cloned().collect()
    }

    /// Whether a target of that name can be sent to.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.targets.iter().any(|t| t.name == name)
    }

    /// Sends `notice` to the target `name`, retrying within the bounds; records the result.
    pub(crate) async fn deliver(&self, name: &str, notice: &Notice) {
        let Some(target) = self.targets.iter().find(|t| t.name == name) else {
            return;
        };
        let mut last_error = String::new();
        let id = message_id();
        let retry_after = lock(&self.retry_after).clone();
        for attempt in 0..=retry_after.len() {
            if attempt > 0 {
                tokio::time::sleep(retry_after[attempt - 1]).await;
            }
            match self.send(target, notice, &id).await {
                Ok(()) => {
                    tracing::info!(alert = %notice.alert, state = notice.state, target_name = %target.name, "alert notification sent");
                    metrics::counter!("porter_alert_notifications_total", "target" => target.name.clone(), "result" => "sent").increment(1);
                    let mut status = lock(&self.status);
                    if let Some(status) = status.get_mut(&target.name) {
                        status.sent += 1;
                        status.last_sent_at = Some(self.clock.now());
                        status.last_error = None;
                    }
                    return;
                }
                Err(error) => {
                    tracing::warn!(alert = %notice.alert, state = notice.state, target_name = %target.name, attempt = attempt + 1, %error, "alert notification failed");
                    last_error = error;
                }
            }
        }
        tracing::error!(alert = %notice.alert, state = notice.state, target_name = %target.name, attempts = retry_after.len() + 1, error = %last_error, "alert notification given up");
        metrics::counter!("porter_alert_notifications_total", "target" => target.name.clone(), "result" => "failed").increment(1);
        let mut status = lock(&self.status);
        if let Some(status) = status.get_mut(&target.name) {
            status.failed += 1;
            status.last_error = Some(last_error);
        }
    }

    /// One attempt.
    async fn send(&self, target: &Target, notice: &Notice, id: &str) -> Result<(), String> {
        match &target.kind {
            Kind::Webhook { url, key } => {
                let body = notice.body();
                let headers =
                    signature_headers(key, id, self.clock.now().as_second(), body.as_bytes());
                let mut request = self
                    .http
                    .post(url.clone())
                    .header(CONTENT_TYPE, "application/json")
                    .header(USER_AGENT, concat!("porter/", env!("CARGO_PKG_VERSION")))
                    .body(body);
                for (name, value) in headers {
                    request = request.header(name, value);
                }
                self.post(request, &target.address).await
            }
            Kind::Slack { url } => {
                let body = serde_json::json!({ "text": notice.text() }).to_string();
                let request = self
                    .http
                    .post(url.clone())
                    .header(CONTENT_TYPE, "application/json")
                    .body(body);
                self.post(request, &target.address).await
            }
            Kind::Email { mailer, from, to } => {
                let mut message = Message::builder()
                    .from(from.clone())
                    .subject(notice.headline())
                    .header(ContentType::TEXT_PLAIN)
                    .date(std::time::SystemTime::from(self.clock.now()));
                for address in to {
                    message = message.to(address.clone());
                }
                let details = serde_json::to_string_pretty(&notice.details).unwrap_or_default();
                let message = message
                    .body(format!("{}\n\n{details}\n", notice.text()))
                    .map_err(|error| format!("cannot build the message: {error}"))?;
                mailer
                    .send(message)
                    .await
                    .map(|_| ())
                    .map_err(|error| format!("smtp ({}): {error}", target.address))
            }
        }
    }

    /// Only a 2xx is taken; redirects are not followed.
    async fn post(&self, request: reqwest::RequestBuilder, address: &str) -> Result<(), String> {
        match request.send().await {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => Err(format!("status {} ({address})", response.status().as_u16())),
            Err(error) => Err(format!(
                "{} ({address}): {}",
                if error.is_timeout() {
                    "timeout"
                } else if error.is_connect() {
                    "connection failed"
                } else {
                    "request failed"
                },
                error.without_url()
            )),
        }
    }
}

/// A fresh Standard Webhooks message id, one per notification and target: its retries carry
/// the same, so that a receiver can deduplicate them.
fn message_id() -> String {
    let mut bytes = [0u8; 16];
    let _ = getrandom::fill(&mut bytes);
    format!("msg_{}", hex::encode(bytes))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
