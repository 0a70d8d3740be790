//! A mock of Oracle's OHIP Streaming API on loopback, written from Oracle's documentation
//! (`ohip-streaming.md` §10): `POST /oauth/v1/tokens` and `GET /subscriptions` upgraded to
//! `graphql-transport-ws` on one port. It checks what the real server checks (the key hash,
//! the subprotocol, `connection_init` within 5 s with a token it issued, one consumer per
//! chain, 5 s between a `complete` and the next subscribe), replays from an offset inclusively,
//! and injects faults on demand (close with any code, drop the TCP connection, refuse the
//! upgrade or the credentials, short-lived tokens). It records every client frame.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

pub const APP_KEY: &str = "41ecd082-8997-4c69-af34-2f72b83645ff";
pub const CLIENT_ID: &str = "porter-test-client";
pub const CLIENT_SECRET: &str = "porter-test-client-secret";
pub const CHAIN: &str = "CHAIN1";

/// A fault to inject once, after the connection has sent `after` events.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Close with this code.
    Close(u16),
    /// Drop the TCP connection without a close frame (the client sees 1006).
    Drop,
}

/// What the test can turn.
#[derive(Debug)]
pub struct Knobs {
    /// Lifetime of issued tokens.
    pub token_ttl: Duration,
    /// Refuse the token request with 401.
    pub refuse_credentials: bool,
    /// Answer upgrades with this HTTP status instead of 101.
    pub refuse_upgrade: Option<u16>,
    /// Faults to inject, in order, each once: (events sent on the connection, fault).
    pub faults: Vec<(usize, Fault)>,
    /// After a connection ends without `complete`, subscribing within this is 4409.
    pub lockout_window: Duration,
    /// Refuse the next subscribe with 4409 this many times.
    pub busy: usize,
    /// Close every subscription with this code at once (4400, 4403…).
    pub refuse_subscription: Option<u16>,
    /// Send a `ping` right after each subscribe (the client must answer `pong`).
    pub server_ping: bool,
    /// Never answer the client's pings (OHIP defers pongs during bursts).
    pub withhold_pongs: bool,
    /// Close every `connection_init` with 4401, whatever its token.
    pub refuse_init: bool,
    /// The reason of the close that `refuse_subscription` sends.
    pub refusal_reason: String,
    /// Answer a good token request with this many bytes of padding in the JSON (a broken or
    /// hostile gateway); with `chunked`, without a `content-length`.
    pub token_padding: Option<(usize, bool)>,
    /// Answer every subscribe with an `error` frame whose payload is this many bytes.
    pub error_payload: Option<usize>,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            token_ttl: Duration::from_secs(3600),
            refuse_credentials: false,
            refuse_upgrade: None,
            faults: Vec::new(),
            lockout_window: Duration::ZERO,
            busy: 0,
            refuse_subscription: None,
            server_ping: false,
            withhold_pongs: false,
            refuse_init: false,
            refusal_reason: "Value for chainCode is invalid".to_owned(),
            token_padding: None,
            error_payload: None,
        }
    }
}

/// One connection as the mock saw it.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    pub opened: Option<Instant>,
    /// The offset argument of each subscribe (`None`: no offset).
    pub subscribed_from: Vec<Option<String>>,
    pub subscribed_at: Vec<Instant>,
    pub completed_at: Option<Instant>,
    pub closed_with: Option<u16>,
    pub pings: usize,
    /// `pong`s the client sent (answers to the server's pings).
    pub pongs: usize,
    pub init: Option<Value>,
    pub events_sent: usize,
}

#[derive(Debug, Default)]
struct Inner {
    events: Vec<Value>,
    /// The server's own cursor: the index after the last event sent.
    cursor: usize,
    tokens: Vec<(String, Instant)>,
    connections: Vec<Connection>,
    active: bool,
    /// When the last connection ended without `complete`, or when the last `complete` came.
    last_unclean_end: Option<Instant>,
    last_complete: Option<Instant>,
    upgrades: usize,
    token_requests: usize,
    /// Bytes of padded token answers the client took before it hung up.
    pub padding_written: usize,
}

/// The mock's state, shared with the test.
pub struct MockState {
    pub knobs: Mutex<Knobs>,
    inner: Mutex<Inner>,
    appended: Notify,
}

impl MockState {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn knobs(&self) -> std::sync::MutexGuard<'_, Knobs> {
        self.knobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends an event to the chain's stream; returns its offset (offsets step by 3: OHIP's
    /// are not promised to be contiguous).
    pub fn push(&self, module: &str, name: &str, primary_key: &str) -> String {
        let mut inner = self.lock();
        let offset = (100 + 3 * inner.events.len()).to_string();
        inner.events.push(json!({
            "metadata": {"offset": offset, "uniqueEventId": format!("uid-{offset}")},
            "moduleName": module,
            "eventName": name,
            "primaryKey": primary_key,
            "timestamp": "28-APR-24 06.18.59.028027 AM",
            "hotelId": "HOTEL1",
            "publisherId": "159",
            "actionInstanceId": "4567",
            "detail": [{"elementName": "RESV STATUS", "oldValue": "RESERVED", "newValue": "CHECKED IN"}]
        }));
        drop(inner);
        self.appended.notify_waiters();
        offset
    }

    /// Drops the events at offsets below `offset`, as OHIP's retention does after 7 days.
    pub fn expire_before(&self, offset: u64) {
        let mut inner = self.lock();
        inner.events.retain(|e| {
            e["metadata"]["offset"]
                .as_str()
                .and_then(|o| o.parse::<u64>().ok())
                .is_some_and(|o| o >= offset)
        });
        inner.cursor = 0;
    }

    /// Appends `event` exactly as given (a malformed one, say).
    pub fn push_raw(&self, event: Value) {
        self.lock().events.push(event);
        self.appended.notify_waiters();
    }

    pub fn connections(&self) -> Vec<Connection> {
        self.lock().connections.clone()
    }

    pub fn token_requests(&self) -> usize {
        self.lock().token_requests
    }

    pub fn upgrades(&self) -> usize {
        self.lock().upgrades
    }

    /// Bytes of padded token answers written before the client stopped reading.
    pub fn padding_written(&self) -> usize {
        self.lock().padding_written
    }
}

pub struct OhipMock {
    pub addr: SocketAddr,
    pub state: Arc<MockState>,
    task: JoinHandle<()>,
}

impl Drop for OhipMock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl OhipMock {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(MockState {
            knobs: Mutex::new(Knobs::default()),
            inner: Mutex::new(Inner::default()),
            appended: Notify::new(),
        });
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = Arc::clone(&shared);
                tokio::spawn(async move { serve(stream, state).await });
            }
        });
        Self { addr, state, task }
    }

    pub fn gateway_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The TOML of a stream source pointing at this mock.
    pub fn source_toml(&self, name: &str, extra: &str) -> String {
        format!(
            r#"
[[sources]]
name = "{name}"
provider = "oracle_ohip_stream"
gateway_url = "{url}"
app_key = "{APP_KEY}"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
chain_code = "{CHAIN}"
reconnect_delay = "5s"
insecure_allow_http = true
{extra}
"#,
            url = self.gateway_url()
        )
    }
}

async fn serve(stream: TcpStream, state: Arc<MockState>) {
    let mut head = [0u8; 64];
    let Ok(n) = stream.peek(&mut head).await else {
        return;
    };
    if head[..n].starts_with(b"POST /oauth/v1/tokens") {
        token(stream, &state).await;
    } else {
        subscriptions(stream, state).await;
    }
}

/// `POST /oauth/v1/tokens`: Basic credentials, `x-app-key`, client-credentials form.
async fn token(mut stream: TcpStream, state: &MockState) {
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    let (head, body) = loop {
        let Ok(n) = stream.read(&mut buffer).await else {
            return;
        };
        if n == 0 {
            return;
        }
        bytes.extend_from_slice(&buffer[..n]);
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
            let length = header(&head, "content-length")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            while bytes.len() < end + 4 + length {
                let Ok(n) = stream.read(&mut buffer).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                bytes.extend_from_slice(&buffer[..n]);
            }
            break (
                head,
                String::from_utf8_lossy(&bytes[end + 4..]).into_owned(),
            );
        }
    };
    use base64::Engine;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    let (ttl, refuse, padding) = {
        let knobs = state.knobs();
        (
            knobs.token_ttl,
            knobs.refuse_credentials,
            knobs.token_padding,
        )
    };
    let good = !refuse
        && header(&head, "authorization").as_deref() == Some(basic.as_str())
        && header(&head, "x-app-key").as_deref() == Some(APP_KEY)
        && body.contains("grant_type=client_credentials")
        && body.contains("scope=");
    let (status, answer) = if good {
        let mut inner = state.lock();
        inner.token_requests += 1;
        let access = format!("token-{}", inner.token_requests);
        inner.tokens.push((access.clone(), Instant::now() + ttl));
        (
            "200 OK",
            json!({"access_token": access, "expires_in": ttl.as_secs(), "token_type": "Bearer",
                   "oracle_tk_context": "user_assertion"})
            .to_string(),
        )
    } else {
        state.lock().token_requests += 1;
        (
            "401 Unauthorized",
            json!({"error": "invalid_client"}).to_string(),
        )
    };
    if let (Some((size, chunked)), true) = (padding, good) {
        padded_token(stream, state, &answer, size, chunked).await;
        return;
    }
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
        answer.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
}

/// A token answer with `size` bytes of padding in a JSON string before the token, written a
/// piece at a time (counted) until the client stops reading.
async fn padded_token(
    mut stream: TcpStream,
    state: &MockState,
    answer: &str,
    size: usize,
    chunked: bool,
) {
    static PAD: [u8; 64 * 1024] = [b'p'; 64 * 1024];
    let open = br#"{"padding":""#;
    let close = format!(r#"",{}"#, &answer[1..]);
    let length = open.len() + size + close.len();
    let head = if chunked {
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".to_owned()
    } else {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {length}\r\nconnection: close\r\n\r\n"
        )
    };
    let frame = |bytes: &[u8]| -> Vec<u8> {
        if chunked {
            let mut out = format!("{:x}\r\n", bytes.len()).into_bytes();
            out.extend_from_slice(bytes);
            out.extend_from_slice(b"\r\n");
            out
        } else {
            bytes.to_vec()
        }
    };
    if stream.write_all(head.as_bytes()).await.is_err()
        || stream.write_all(&frame(open)).await.is_err()
    {
        return;
    }
    let mut left = size;
    while left > 0 {
        let n = left.min(PAD.len());
        if stream.write_all(&frame(&PAD[..n])).await.is_err() {
            return;
        }
        left -= n;
        state.lock().padding_written += n;
    }
    let _ = stream.write_all(&frame(close.as_bytes())).await;
    if chunked {
        let _ = stream.write_all(b"0\r\n\r\n").await;
    }
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

fn reject(status: u16) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(format!("refused with {status}")));
    *response.status_mut() =
        tokio_tungstenite::tungstenite::http::StatusCode::from_u16(status).expect("status");
    response
}

async fn subscriptions(stream: TcpStream, state: Arc<MockState>) {
    let expected_key = hex::encode(Sha256::digest(APP_KEY.as_bytes()));
    let refuse = state.knobs().refuse_upgrade;
    state.lock().upgrades += 1;
    // tungstenite's callback type fixes the error type.
    #[allow(clippy::result_large_err)]
    let check = |request: &Request, mut response: Response| {
        if let Some(status) = refuse {
            return Err(reject(status));
        }
        let uri = request.uri();
        let key_ok = uri.path() == "/subscriptions"
            && uri.query() == Some(format!("key={expected_key}").as_str());
        let protocol_ok = request
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|p| p.trim() == "graphql-transport-ws"));
        if !key_ok || !protocol_ok {
            return Err(reject(400));
        }
        response.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "graphql-transport-ws".parse().expect("header"),
        );
        Ok(response)
    };
    let Ok(mut socket) = tokio_tungstenite::accept_hdr_async(stream, check).await else {
        return;
    };
    let index = {
        let mut inner = state.lock();
        inner.connections.push(Connection {
            opened: Some(Instant::now()),
            ..Connection::default()
        });
        inner.connections.len() - 1
    };
    let record = |f: &dyn Fn(&mut Connection)| {
        let mut inner = state.lock();
        f(&mut inner.connections[index]);
    };
    let close = |code: u16, reason: &str| {
        Message::Close(Some(CloseFrame {
            code: CloseCode::from(code),
            reason: reason.to_owned().into(),
        }))
    };

    // connection_init within 5 s, with a token the mock issued and the app key itself.
    let init = tokio::time::timeout(Duration::from_secs(5), next_json(&mut socket)).await;
    let Ok(Some(init)) = init else {
        let _ = socket
            .send(close(4408, "Connection initialisation timeout"))
            .await;
        record(&|c| c.closed_with = Some(4408));
        return;
    };
    record(&|c| c.init = Some(init.clone()));
    let bearer = init["payload"]["Authorization"]
        .as_str()
        .unwrap_or_default();
    let token_expires = {
        let inner = state.lock();
        inner
            .tokens
            .iter()
            .find(|(t, _)| format!("Bearer {t}") == bearer)
            .map(|(_, expires)| *expires)
    };
    let app_key_ok =
        init["payload"]["x-app-key"].as_str() == Some(APP_KEY) && !state.knobs().refuse_init;
    let Some(token_expires) = token_expires.filter(|e| *e > Instant::now() && app_key_ok) else {
        let _ = socket.send(close(4401, "Unauthorized")).await;
        record(&|c| c.closed_with = Some(4401));
        return;
    };
    if init["type"] != "connection_init" {
        let _ = socket.send(close(4401, "Unauthorized")).await;
        return;
    }
    let _ = socket
        .send(Message::text(json!({"type": "connection_ack"}).to_string()))
        .await;

    let mut subscription: Option<String> = None;
    let mut completed = false;
    let mut cursor = 0usize;
    let mut sent = 0usize;
    let token_deadline = tokio::time::Instant::from_std(token_expires);
    let outcome: Option<u16> = loop {
        // Send what is due.
        if let Some(id) = &subscription {
            let event = {
                let inner = state.lock();
                inner.events.get(cursor).cloned()
            };
            if let Some(event) = event {
                let frame =
                    json!({"id": id, "type": "next", "payload": {"data": {"newEvent": event}}});
                if socket.send(Message::text(frame.to_string())).await.is_err() {
                    break None;
                }
                cursor += 1;
                sent += 1;
                {
                    let mut inner = state.lock();
                    inner.cursor = inner.cursor.max(cursor);
                    inner.connections[index].events_sent = sent;
                }
                let fault = {
                    let mut knobs = state.knobs();
                    match knobs.faults.first() {
                        Some((after, _)) if *after == sent => Some(knobs.faults.remove(0).1),
                        _ => None,
                    }
                };
                match fault {
                    Some(Fault::Close(code)) => {
                        let _ = socket.send(close(code, "injected")).await;
                        break Some(code);
                    }
                    Some(Fault::Drop) => {
                        // Dropping the socket without a close frame: the client sees 1006.
                        break Some(1006);
                    }
                    None => continue,
                }
            }
        }
        let appended = state.appended.notified();
        tokio::select! {
            frame = next_json(&mut socket) => {
                let Some(frame) = frame else { break None };
                match frame["type"].as_str() {
                    Some("ping") => {
                        record(&|c| c.pings += 1);
                        let withhold = state.knobs().withhold_pongs;
                        if !withhold {
                            let _ = socket.send(Message::text(json!({"type": "pong"}).to_string())).await;
                        }
                    }
                    Some("pong") => record(&|c| c.pongs += 1),
                    Some("subscribe") => {
                        let query = frame["payload"]["query"].as_str().unwrap_or_default().to_owned();
                        let offset = argument(&query, "offset");
                        let now = Instant::now();
                        record(&|c| {
                            c.subscribed_from.push(offset.clone());
                            c.subscribed_at.push(now);
                        });
                        let (refused, reason, error_payload) = {
                            let knobs = state.knobs();
                            (knobs.refuse_subscription, knobs.refusal_reason.clone(), knobs.error_payload)
                        };
                        if let Some(code) = refused {
                            let _ = socket.send(close(code, &reason)).await;
                            break Some(code);
                        }
                        if let Some(size) = error_payload {
                            let id = frame["id"].clone();
                            let error = json!({"id": id, "type": "error", "payload": [{"message": "x".repeat(size)}]});
                            let _ = socket.send(Message::text(error.to_string())).await;
                            continue;
                        }
                        let (busy, window) = {
                            let mut knobs = state.knobs();
                            let busy = knobs.busy > 0;
                            if busy { knobs.busy -= 1; }
                            (busy, knobs.lockout_window)
                        };
                        let locked = {
                            let inner = state.lock();
                            inner.active
                                || inner.last_unclean_end.is_some_and(|t| now < t + window)
                                || inner.last_complete.is_some_and(|t| now < t + Duration::from_secs(5))
                        };
                        if busy || locked || argument(&query, "chainCode").as_deref() != Some(CHAIN) {
                            let _ = socket.send(close(4409, "Subscriber already exists")).await;
                            break Some(4409);
                        }
                        state.lock().active = true;
                        cursor = match offset {
                            // Inclusive replay: the event at the offset comes again.
                            Some(offset) => {
                                let inner = state.lock();
                                let wanted: u64 = offset.parse().unwrap_or(0);
                                inner.events.iter().position(|e| {
                                    e["metadata"]["offset"].as_str().and_then(|o| o.parse::<u64>().ok()).unwrap_or(0) >= wanted
                                }).unwrap_or(inner.events.len())
                            }
                            None => state.lock().cursor,
                        };
                        subscription = frame["id"].as_str().map(str::to_owned);
                        let ping = state.knobs().server_ping;
                        if ping {
                            let _ = socket.send(Message::text(json!({"type": "ping"}).to_string())).await;
                        }
                    }
                    Some("complete") => {
                        completed = true;
                        let now = Instant::now();
                        record(&|c| c.completed_at = Some(now));
                        state.lock().last_complete = Some(now);
                        // Finish in-flight sending, then the server closes (the client must not).
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        let _ = socket.send(close(1000, "Normal Closure")).await;
                        break Some(1000);
                    }
                    _ => {}
                }
            }
            () = appended => {}
            () = tokio::time::sleep_until(token_deadline) => {
                let _ = socket.send(close(4401, "Token expired")).await;
                break Some(4401);
            }
        }
    };
    let mut inner = state.lock();
    if subscription.is_some() {
        inner.active = false;
    }
    if !completed {
        inner.last_unclean_end = Some(Instant::now());
    }
    inner.connections[index].closed_with = outcome;
}

async fn next_json<S>(socket: &mut tokio_tungstenite::WebSocketStream<S>) -> Option<Value>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match socket.next().await? {
            Ok(Message::Text(text)) => return serde_json::from_str(text.as_str()).ok(),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// An inline string argument of the subscription query: `name: "value"`.
fn argument(query: &str, name: &str) -> Option<String> {
    let start = query.find(&format!("{name}: \""))? + name.len() + 3;
    let end = query[start..].find('"')?;
    Some(query[start..start + end].to_owned())
}
