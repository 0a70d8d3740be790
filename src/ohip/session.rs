//! One connection to the OHIP Streaming API, from the upgrade to its close.
//!
//! ```text
//! GET wss://host/subscriptions?key=<sha256 hex of the app key>   (graphql-transport-ws)
//! → connection_init {Authorization, x-app-key[, enterpriseId]}   within 5 s
//! ← connection_ack
//! → subscribe { newEvent(input: {chainCode, offset…}) }           offset = the stored one
//! ← next … next …   each stored (dedupe-and-enqueue), then its offset saved
//! ↔ ping / pong      porter pings every `ping_every` (≤ 15 s) and answers the server's
//! → complete         before a planned close (token rotation, shutdown); the server closes
//! ```
//!
//! Liveness is any frame from the server: during a burst OHIP withholds pongs, so only
//! silence for `liveness` ends the connection.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use porter_providers::Reply;
use porter_providers::event::Origin;
use porter_providers::oracle_ohip_stream::{self as ohip, Subscription};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::policy::Ended;
use super::token::Token;
use super::{Shared, State};
use crate::clock::Clock;
use crate::config::OhipStreamConfig;
use crate::remote_text::quote;
use crate::store::Store;
use crate::trace::{self, Traceparent};

/// The WebSocket subprotocol OHIP speaks.
pub(crate) const SUBPROTOCOL: &str = "graphql-transport-ws";
/// OHIP bursts up to ~1.8 MB of queued events; one frame is far smaller, but allow room.
const MAX_FRAME_BYTES: usize = 16 << 20;
/// How long the upgrade and the `connection_ack` may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long porter waits for the server's close after its `complete`.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// What one connection needs.
#[derive(Debug)]
pub(crate) struct Session<'a> {
    pub config: &'a OhipStreamConfig,
    pub store: &'a Store,
    pub clock: &'a Clock,
    pub shared: &'a Shared,
    /// The lease this connection holds: (key, holder); renewed every third of its period.
    pub lease: (&'a str, &'a str),
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl Session<'_> {
    /// Connects, subscribes from `offset`, and stores events until the connection ends.
    pub(crate) async fn run(&self, token: &Token, shutdown: &mut watch::Receiver<bool>) -> Ended {
        let mut socket = match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.connect(token)).await {
            Ok(Ok(socket)) => socket,
            Ok(Err(ended)) => return ended,
            Err(_) => return Ended::Dropped("no WebSocket upgrade within 10 s".to_owned()),
        };
        if let Err(ended) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acknowledged(&mut socket))
            .await
            .unwrap_or_else(|_| Err(Ended::Dropped("no connection_ack within 10 s".to_owned())))
        {
            return ended;
        }
        let offset = match self.store.ohip_offset(&self.config.name).await {
            Ok(offset) => offset,
            Err(error) => return Ended::Store(error.to_string()),
        };
        let id = subscription_id();
        let query = ohip::subscribe_query(&Subscription {
            chain_code: &self.config.chain_code,
            offset: offset.as_deref(),
            hotel_codes: &self.config.hotel_codes,
            delta: self.config.delta,
        });
        let subscribe = json!({
            "id": id, "type": "subscribe",
            "payload": {"variables": {}, "extensions": {}, "operationName": null, "query": query}
        });
        if let Err(e) = socket.send(text(&subscribe)).await {
            return dropped(e);
        }
        tracing::info!(
            source = %self.config.name,
            offset = offset.as_deref().unwrap_or("(the server's cursor)"),
            "OHIP stream subscribed"
        );
        self.shared.resuming(offset.as_deref());
        self.shared.set_state(State::Streaming);
        super::publish(self.store, self.shared).await;
        self.stream(&mut socket, &id, token, shutdown).await
    }

    async fn connect(&self, token: &Token) -> Result<Socket, Ended> {
        let mut url = self.config.ws_url.clone();
        url.query_pairs_mut()
            .append_pair("key", &ohip::key_hash(self.config.app_key.expose()));
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| Ended::Protocol(e.to_string()))?;
        let headers = request.headers_mut();
        headers.insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
        // Oracle's examples carry the token in `connection_init`; the header is harmless.
        if let Ok(value) = HeaderValue::from_str(&format!("Bearer {}", token.access)) {
            headers.insert("Authorization", value);
        }
        let mut config = WebSocketConfig::default();
        config.max_message_size = Some(MAX_FRAME_BYTES);
        config.max_frame_size = Some(MAX_FRAME_BYTES);
        let (socket, response) =
            tokio_tungstenite::connect_async_with_config(request, Some(config), true)
                .await
                .map_err(|error| match error {
                    WsError::Http(response) => Ended::Refused {
                        status: response.status().as_u16(),
                    },
                    WsError::Io(e) => Ended::Unreachable(quote(&e.to_string())),
                    other => Ended::Dropped(quote(&other.to_string())),
                })?;
        let agreed = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok());
        if agreed != Some(SUBPROTOCOL) {
            return Err(Ended::Protocol(format!(
                "the server did not agree to {SUBPROTOCOL} (it answered {agreed:?})"
            )));
        }
        let mut socket = socket;
        let mut init = json!({
            "Authorization": format!("Bearer {}", token.access),
            "x-app-key": self.config.app_key.expose(),
        });
        if let Some(enterprise) = &self.config.enterprise_id {
            init["enterpriseId"] = json!(enterprise);
        }
        socket
            .send(text(&json!({"type": "connection_init", "payload": init})))
            .await
            .map_err(dropped)?;
        Ok(socket)
    }

    /// Reads frames until the connection ends; stores each event, then saves its offset.
    async fn stream(
        &self,
        socket: &mut Socket,
        id: &str,
        token: &Token,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Ended {
        let mut ping = tokio::time::interval(self.config.ping_every);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        let mut last_frame = Instant::now();
        let rotate_at = tokio::time::Instant::from_std(token.rotate_at);
        let mut renew = tokio::time::interval(self.config.lease / 3);
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        renew.tick().await;
        loop {
            let silent_until = tokio::time::Instant::from_std(last_frame + self.config.liveness);
            tokio::select! {
                frame = socket.next() => {
                    last_frame = Instant::now();
                    match self.frame(socket, frame).await {
                        Step::Continue => {}
                        Step::End(ended) => return ended,
                    }
                }
                _ = renew.tick() => {
                    let (key, holder) = self.lease;
                    match self.store.ohip_lease(key, holder, self.config.lease).await {
                        Ok(true) => super::publish(self.store, self.shared).await,
                        Ok(false) => {
                            tracing::warn!(source = %self.config.name, "another instance holds the OHIP stream now; completing");
                            return match self.complete(socket, id).await {
                                Some(ended) => ended,
                                None => Ended::LeaseLost,
                            };
                        }
                        Err(error) => return Ended::Store(error.to_string()),
                    }
                }
                _ = ping.tick() => {
                    if let Err(e) = socket.send(text(&json!({"type": "ping"}))).await {
                        return dropped(e);
                    }
                }
                () = tokio::time::sleep_until(silent_until) => {
                    return Ended::Dropped(format!(
                        "nothing from the server for {} s",
                        self.config.liveness.as_secs()
                    ));
                }
                () = tokio::time::sleep_until(rotate_at) => {
                    tracing::info!(source = %self.config.name, "OHIP token due: completing the stream to reconnect");
                    return match self.complete(socket, id).await {
                        Some(ended) => ended,
                        None => Ended::Rotated,
                    };
                }
                () = super::stopped(shutdown) => {
                    return match self.complete(socket, id).await {
                        Some(Ended::Store(e)) => Ended::Store(e),
                        _ => Ended::Shutdown,
                    };
                }
            }
        }
    }

    /// Sends `complete`, then stores what is still in flight until the server closes (it must
    /// close first). `None` when it closed as expected.
    async fn complete(&self, socket: &mut Socket, id: &str) -> Option<Ended> {
        self.shared.set_state(State::Completing);
        if let Err(e) = socket
            .send(text(&json!({"id": id, "type": "complete"})))
            .await
        {
            return Some(dropped(e));
        }
        let drain = async {
            loop {
                let frame = socket.next().await;
                match self.frame(socket, frame).await {
                    Step::Continue => {}
                    Step::End(Ended::Closed { .. } | Ended::Dropped(_)) => return None,
                    Step::End(other) => return Some(other),
                }
            }
        };
        match tokio::time::timeout(DRAIN_TIMEOUT, drain).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(source = %self.config.name, "OHIP did not close within 10 s of complete; closing");
                let _ = socket.close(None).await;
                None
            }
        }
    }

    async fn frame(&self, socket: &mut Socket, frame: Option<Result<Message, WsError>>) -> Step {
        let message = match frame {
            None => return Step::End(Ended::Dropped("the connection ended".to_owned())),
            Some(Err(e)) => return Step::End(dropped(e)),
            Some(Ok(message)) => message,
        };
        let text = match message {
            Message::Text(text) => text,
            Message::Close(frame) => {
                let (code, reason) = frame.map_or((1005, String::new()), |f| {
                    (u16::from(f.code), quote(&f.reason))
                });
                return Step::End(Ended::Closed { code, reason });
            }
            // WebSocket pings are answered by the library; binary frames are not OHIP's.
            _ => return Step::Continue,
        };
        let Ok(value) = serde_json::from_str::<Value>(text.as_str()) else {
            return Step::End(Ended::Protocol("a frame that is not JSON".to_owned()));
        };
        match value.get("type").and_then(Value::as_str) {
            Some("next") => self.event(&value).await,
            Some("ping") => match socket.send(self::text(&json!({"type": "pong"}))).await {
                Ok(()) => Step::Continue,
                Err(e) => Step::End(dropped(e)),
            },
            Some("pong" | "connection_ack") => Step::Continue,
            Some("complete") => Step::End(Ended::Closed {
                code: 1000,
                reason: "the server completed the subscription".to_owned(),
            }),
            // An operation error: OHIP's way of refusing a subscription besides 4400.
            Some("error") => Step::End(Ended::Closed {
                code: 4400,
                reason: value
                    .get("payload")
                    .map(|payload| quote(&payload.to_string()))
                    .unwrap_or_default(),
            }),
            _ => Step::Continue,
        }
    }

    /// Stores one `next` frame's event, then saves its offset.
    async fn event(&self, frame: &Value) -> Step {
        let payload = &frame["payload"];
        if payload.get("errors").is_some_and(|e| !e.is_null()) {
            return Step::End(Ended::Protocol(format!(
                "OHIP sent errors: {}",
                quote(&payload["errors"].to_string())
            )));
        }
        let event = &payload["data"]["newEvent"];
        let origin = Origin {
            source_name: &self.config.name,
            provider: ohip::PROVIDER,
            received_at: self.clock.now(),
        };
        // One trace per event (none when tracing is off), named by the event it stores.
        let span = trace::ohip_event(&self.config.name, ohip::PROVIDER);
        let step = trace::step(&span, trace::Step::Normalize);
        let stream = ohip::normalize(&origin, event, &self.config.chain_code, &self.config.zone);
        trace::finish(step, &stream, "normalized");
        let mut stream = match stream {
            Ok(stream) => stream,
            // Not an event porter can store (no offset, module or name): kept in the
            // quarantine and passed over, or it would come back at every resume and hold
            // the stream up for good.
            Err(rejection) => {
                return self.quarantine(frame, event, &rejection.to_string()).await;
            }
        };
        if let Some(traceparent) = Traceparent::for_events(&span) {
            stream.normalized.event.traceparent = Some(traceparent.to_string());
        }
        let type_name = stream.normalized.event.event_type().as_str();
        let reply = Reply::accepted(1);
        let step = trace::step(&span, trace::Step::Store);
        let enqueued = self
            .store
            .enqueue(
                std::slice::from_ref(&stream.normalized),
                &reply,
                self.config.dedupe_ttl,
            )
            .await;
        match &enqueued {
            Ok(enqueued) => trace::stored(&step, enqueued.new, enqueued.duplicates),
            Err(_) => {
                trace::outcome(&step, "unavailable", None);
                trace::failed(&step);
                trace::failed(&span);
            }
        }
        drop(step);
        match enqueued {
            Ok(enqueued) => {
                if let Err(error) = self
                    .store
                    .save_ohip_offset(&self.config.name, &stream.offset)
                    .await
                {
                    return Step::End(Ended::Store(error.to_string()));
                }
                self.shared
                    .event(&stream.offset, self.clock.now(), enqueued.new > 0);
                tracing::debug!(
                    source = %self.config.name,
                    offset = %stream.offset,
                    r#type = type_name,
                    new = enqueued.new,
                    "OHIP event stored"
                );
                Step::Continue
            }
            Err(error) => Step::End(Ended::Store(error.to_string())),
        }
    }
}

impl Session<'_> {
    async fn quarantine(&self, frame: &Value, event: &Value, reason: &str) -> Step {
        tracing::warn!(source = %self.config.name, %reason, "an OHIP frame is not an event; quarantined");
        let item = crate::store::Quarantined {
            source: self.config.name.clone(),
            reason: format!("OHIP frame: {reason}"),
            received_at: self.clock.now(),
            content_type: Some("application/json".to_owned()),
            body: frame.to_string().into(),
        };
        if let Err(error) = self.store.quarantine(item).await {
            return Step::End(Ended::Store(error.to_string()));
        }
        // Past it, when it says where it is.
        if let Some(offset) = event["metadata"]["offset"]
            .as_str()
            .filter(|o| ohip::is_offset(o))
            && let Err(error) = self.store.save_ohip_offset(&self.config.name, offset).await
        {
            return Step::End(Ended::Store(error.to_string()));
        }
        Step::Continue
    }
}

enum Step {
    Continue,
    End(Ended),
}

/// Waits for `connection_ack`, answering pings meanwhile.
async fn acknowledged(socket: &mut Socket) -> Result<(), Ended> {
    loop {
        match socket.next().await {
            None => return Err(Ended::Dropped("closed before connection_ack".to_owned())),
            Some(Err(e)) => return Err(dropped(e)),
            Some(Ok(Message::Close(frame))) => {
                let (code, reason) = frame.map_or((1005, String::new()), |f| {
                    (u16::from(f.code), quote(&f.reason))
                });
                return Err(Ended::Closed { code, reason });
            }
            Some(Ok(Message::Text(text))) => {
                let value: Value = serde_json::from_str(text.as_str())
                    .map_err(|_| Ended::Protocol("a frame that is not JSON".to_owned()))?;
                match value.get("type").and_then(Value::as_str) {
                    Some("connection_ack") => return Ok(()),
                    Some("ping") => socket
                        .send(self::text(&json!({"type": "pong"})))
                        .await
                        .map_err(dropped)?,
                    _ => {}
                }
            }
            Some(Ok(_)) => {}
        }
    }
}

fn text(value: &Value) -> Message {
    Message::text(value.to_string())
}

fn dropped(error: WsError) -> Ended {
    match error {
        WsError::ConnectionClosed | WsError::AlreadyClosed => {
            Ended::Dropped("the connection closed".to_owned())
        }
        other => Ended::Dropped(quote(&other.to_string())),
    }
}

/// A subscription id unique for the life of the stream.
fn subscription_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the system's random source");
    hex::encode(bytes)
}
