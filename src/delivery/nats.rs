//! NATS JetStream delivery.
//!
//! Each event is published to the destination's subject with `Nats-Msg-Id` = the event id, and
//! counts as delivered only when JetStream answers with a PubAck, that is once the stream has
//! stored it. A redelivery (porter crashed after the PubAck, or the PubAck was lost) carries the
//! same `Nats-Msg-Id`, and JetStream's duplicate window (2 minutes unless the stream says
//! otherwise) absorbs it: the PubAck then says `duplicate`, which is a delivery too.
//!
//! The body is the structured CloudEvent (`application/cloudevents+json`), or in binary mode
//! the event's `data` with its attributes in `ce-` headers (the CloudEvents NATS binding). The
//! connection is made on the first attempt and then kept: the client reconnects by itself,
//! and attempts made while it is away fail by timeout and are retried on the schedule. With
//! `create_stream`, the stream is created before the first publish and again after any
//! publish that no stream captured (someone deleted it): the next attempt recreates it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::{self, message::PublishMessage, stream};
use bytes::Bytes;
use tokio::sync::OnceCell;

use super::Response;
use super::cloudevent::StoredEvent;
use crate::config::{Delivery, NatsDestination};

/// Publishes events to one JetStream destination.
pub struct NatsSender {
    /// The destination's name: the stream's, when porter creates it.
    name: String,
    destination: NatsDestination,
    /// `host:port` for failure reasons (the URL may carry credentials).
    address: String,
    timeout: Duration,
    context: OnceCell<jetstream::Context>,
    /// Whether the stream porter creates is known to exist.
    stream_ready: AtomicBool,
}

impl std::fmt::Debug for NatsSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsSender")
            .field("address", &self.address)
            .field("subject", &self.destination.subject)
            .finish_non_exhaustive()
    }
}

impl NatsSender {
    pub fn new(name: &str, destination: &NatsDestination, delivery: &Delivery) -> Self {
        Self {
            name: name.to_owned(),
            address: super::address_of(&destination.url),
            destination: destination.clone(),
            timeout: delivery.timeout,
            context: OnceCell::new(),
            stream_ready: AtomicBool::new(false),
        }
    }

    /// Connects (once; the client then reconnects by itself).
    async fn context(&self) -> Result<&jetstream::Context, String> {
        self.context
            .get_or_try_init(|| async {
                let client = async_nats::ConnectOptions::new()
                    .connection_timeout(self.timeout)
                    .max_reconnects(None)
                    .name(concat!("porter/", env!("CARGO_PKG_VERSION")))
                    .connect(self.destination.url.as_str())
                    .await
                    .map_err(|e| format!("connection failed ({}): {e}", self.address))?;
                let mut context = jetstream::new(client);
                context.set_timeout(self.timeout);
                Ok(context)
            })
            .await
    }

    /// Creates the stream when asked to and not known to exist.
    async fn ensure_stream(&self, context: &jetstream::Context) -> Result<(), String> {
        let Some(subjects) = &self.destination.create_stream else {
            return Ok(());
        };
        if self.stream_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        context
            .get_or_create_stream(stream::Config {
                name: self.name.clone(),
                subjects: vec![subjects.clone()],
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| {
                format!(
                    "cannot create stream `{}` over `{subjects}` ({}): {e}",
                    self.name, self.address
                )
            })?;
        self.stream_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// One attempt; returns the outcome and how long it took.
    pub async fn send(&self, event_id: &str, json: &str) -> (Response, Duration) {
        let started = Instant::now();
        let response = match self.publish(event_id, json).await {
            Ok(()) => Response::Delivered { status: None },
            Err(reason) => Response::Failed {
                status: None,
                reason,
                retry_after: None,
            },
        };
        (response, started.elapsed())
    }

    async fn publish(&self, event_id: &str, json: &str) -> Result<(), String> {
        let event = StoredEvent::parse(json)
            .map_err(|e| format!("the stored event does not parse: {e}"))?;
        let subject = self
            .destination
            .subject
            .render(&event.source_name(), &event.event_type());
        let mut message = PublishMessage::build().message_id(event_id);
        if self.destination.binary {
            let (data, content_type) = event.data();
            for (name, value) in event.binary_headers() {
                message = message.header(name, value);
            }
            message = message
                .header("Content-Type", content_type)
                .payload(Bytes::copy_from_slice(data.as_bytes()));
        } else {
            message = message
                .header("Content-Type", "application/cloudevents+json")
                .payload(Bytes::copy_from_slice(json.as_bytes()));
        }
        if let Some(traceparent) = event.traceparent() {
            message = message.header("traceparent", traceparent);
        }
        let context = self.context().await?;
        self.ensure_stream(context).await?;
        let publish = async {
            let pending = context
                .send_publish(subject.clone(), message)
                .await
                .map_err(|e| format!("publish to `{subject}` failed ({}): {e}", self.address))?;
            pending.await.map_err(|e| {
                if e.kind() == PublishErrorKind::StreamNotFound {
                    // Deleted since porter created it (or never created): again next time.
                    self.stream_ready.store(false, Ordering::Release);
                }
                format!("no PubAck for `{subject}` ({}): {e}", self.address)
            })
        };
        let ack = tokio::time::timeout(self.timeout, publish)
            .await
            .map_err(|_| {
                format!(
                    "no PubAck for `{subject}` within {:?} ({})",
                    self.timeout, self.address
                )
            })??;
        if ack.duplicate {
            tracing::debug!(destination = %self.name, event = event_id, stream = %ack.stream, "JetStream already had this event");
        }
        Ok(())
    }
}
