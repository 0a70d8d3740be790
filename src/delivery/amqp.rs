//! RabbitMQ (AMQP 0-9-1) delivery.
//!
//! Each event is published to the destination's exchange as a persistent message
//! (`delivery_mode` 2) with `message_id` = the event id and content type
//! `application/cloudevents+json`, on a channel in confirm mode, with `mandatory` set. It counts
//! as delivered only when the broker acks it *and* did not return it: a nack (a full queue with
//! `overflow = reject-publish`, say), a returned message (no queue bound for the routing key),
//! a closed channel or a lost connection are failed attempts, retried on the schedule. A
//! redelivery carries the same `message_id`, for consumers to deduplicate.
//!
//! The connection and its channel are opened on the first attempt and kept; when either is
//! lost, the next attempt opens new ones (declaring the exchange again unless `declare =
//! false`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use tokio::sync::Mutex;

use super::Response;
use super::cloudevent::StoredEvent;
use crate::config::{AmqpDestination, Delivery};

/// Publishes events to one exchange.
pub struct AmqpSender {
    destination: AmqpDestination,
    /// `host:port` for failure reasons (the URL carries credentials).
    address: String,
    timeout: Duration,
    link: Mutex<Option<Arc<Link>>>,
}

/// An open connection and its confirm-mode channel.
struct Link {
    /// Kept so the connection lives as long as its channel.
    _connection: Connection,
    channel: Channel,
}

impl std::fmt::Debug for AmqpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpSender")
            .field("address", &self.address)
            .field("exchange", &self.destination.exchange)
            .finish_non_exhaustive()
    }
}

impl AmqpSender {
    pub fn new(destination: &AmqpDestination, delivery: &Delivery) -> Self {
        Self {
            address: super::address_of(&destination.url),
            destination: destination.clone(),
            timeout: delivery.timeout,
            link: Mutex::new(None),
        }
    }

    /// One attempt; returns the outcome and how long it took.
    pub async fn send(&self, event_id: &str, json: &str) -> (Response, Duration) {
        let started = Instant::now();
        let outcome = tokio::time::timeout(self.timeout, self.publish(event_id, json))
            .await
            .unwrap_or_else(|_| {
                // A link that gave no confirm in time is suspect (a broker that died or
                // restarted without the connection noticing keeps a channel that looks
                // open): the next attempt opens a new one. An attempt opening one holds the
                // slot, and replaces it anyway.
                if let Ok(mut slot) = self.link.try_lock() {
                    *slot = None;
                }
                Err(format!(
                    "no confirm within {:?} ({})",
                    self.timeout, self.address
                ))
            });
        let response = match outcome {
            Ok(()) => Response::Delivered { status: None },
            Err(reason) => Response::Failed {
                status: None,
                reason,
                retry_after: None,
            },
        };
        (response, started.elapsed())
    }

    /// The open link, or a new one when there is none or its channel is gone.
    async fn link(&self) -> Result<Arc<Link>, String> {
        let mut slot = self.link.lock().await;
        if let Some(link) = slot.as_ref()
            && link.channel.status().connected()
        {
            return Ok(Arc::clone(link));
        }
        *slot = None;
        let link = Arc::new(self.open().await?);
        *slot = Some(Arc::clone(&link));
        Ok(link)
    }

    async fn open(&self) -> Result<Link, String> {
        let failed = |what: &str, e: lapin::Error| format!("{what} ({}): {e}", self.address);
        let connection =
            Connection::connect(&self.destination.url, ConnectionProperties::default())
                .await
                .map_err(|e| failed("connection failed", e))?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| failed("cannot open a channel", e))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| failed("cannot turn on publisher confirms", e))?;
        if self.destination.declare {
            channel
                .exchange_declare(
                    self.destination.exchange.as_str().into(),
                    ExchangeKind::Topic,
                    ExchangeDeclareOptions {
                        durable: true,
                        ..ExchangeDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
                .map_err(|e| {
                    failed(
                        &format!("cannot declare exchange `{}`", self.destination.exchange),
                        e,
                    )
                })?;
        }
        Ok(Link {
            _connection: connection,
            channel,
        })
    }

    /// Forgets `link` if it is still the current one, so that the next attempt opens another.
    async fn drop_link(&self, link: &Arc<Link>) {
        let mut slot = self.link.lock().await;
        if slot
            .as_ref()
            .is_some_and(|current| Arc::ptr_eq(current, link))
        {
            *slot = None;
        }
    }

    async fn publish(&self, event_id: &str, json: &str) -> Result<(), String> {
        let event = StoredEvent::parse(json)
            .map_err(|e| format!("the stored event does not parse: {e}"))?;
        let routing_key = self
            .destination
            .routing_key
            .render(&event.source_name(), &event.event_type());
        let mut headers = FieldTable::default();
        if let Some(traceparent) = event.traceparent() {
            headers.insert(
                "traceparent".into(),
                AMQPValue::LongString(LongString::from(traceparent)),
            );
        }
        let properties = BasicProperties::default()
            .with_message_id(event_id.into())
            .with_content_type("application/cloudevents+json".into())
            .with_delivery_mode(2)
            .with_type(event.event_type().into())
            .with_app_id("porter".into())
            .with_headers(headers);
        let link = self.link().await?;
        let published = async {
            link.channel
                .basic_publish(
                    self.destination.exchange.as_str().into(),
                    routing_key.as_str().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    json.as_bytes(),
                    properties,
                )
                .await?
                .await
        }
        .await;
        let confirmation = match published {
            Ok(confirmation) => confirmation,
            Err(error) => {
                self.drop_link(&link).await;
                return Err(format!(
                    "publish to `{}` failed ({}): {error}",
                    self.destination.exchange, self.address
                ));
            }
        };
        match confirmation {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)) => Err(format!(
                "returned by the broker: {} {} (no queue is bound to `{}` for `{routing_key}`)",
                returned.reply_code, returned.reply_text, self.destination.exchange
            )),
            Confirmation::Nack(None) => Err(format!(
                "nacked by the broker ({}): a queue for `{routing_key}` refused it (full, or rejecting publishes)",
                self.address
            )),
            Confirmation::NotRequested => Err("the channel is not in confirm mode".to_owned()),
        }
    }
}
