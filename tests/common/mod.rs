//! Shared test harness: a real porter server on a loopback port, and a raw HTTP/1.1 client
//! that sends exactly the bytes it is given (no URL normalisation, repeated headers kept).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use porter::testing::config::{Config, ConfigOrigin};
use porter::testing::server::{self, Clock, Gateway};
use porter::testing::store::{MemoryStore, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A lease of up to `limit` jobs at `now_ms` until `until_ms` (Unix milliseconds).
pub fn lease(
    limit: usize,
    ordered: bool,
    now_ms: i64,
    until_ms: i64,
) -> porter::testing::store::Lease {
    porter::testing::store::Lease {
        limit,
        ordered,
        now: at(now_ms),
        until: at(until_ms),
    }
}

/// A Unix millisecond as a time.
pub fn at(ms: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(ms).expect("a time")
}

/// The clock fixtures are recorded with.
pub const FIXTURE_TIME: &str = "2024-03-15T14:00:01.123Z";

pub mod browser;
#[cfg(feature = "otel")]
pub mod collector;
pub mod nats_server;
pub mod ohip_mock;
pub mod rabbitmq;
pub mod receiver;
pub mod redis_server;
pub mod served;
pub mod smtp;
pub mod tls_proxy;
pub mod whatsapp;

/// An event of unknown type from source `s` with dedupe key `key` and `raw` as its payload,
/// for the store suites.
pub fn unknown_event(key: &str, raw: serde_json::Value) -> porter_providers::Normalized {
    use porter_providers::EventBody;
    use porter_providers::event::{Attributes, Origin, UnknownData};
    let origin = Origin {
        source_name: "s",
        provider: "hmac",
        received_at: jiff::Timestamp::now(),
    };
    let attributes = Attributes {
        key: key.to_owned(),
        ..Attributes::default()
    };
    let body = EventBody::Unknown(UnknownData {
        reason: String::new(),
        raw,
    });
    origin.event(attributes, body).into()
}

pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Parses configuration text, resolving `${NAME}` from `env`.
pub fn config_from(text: &str, env: &[(&str, &str)]) -> Config {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Config::parse(text, ConfigOrigin::File("test.toml".into()), &move |name| {
        env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    })
    .unwrap_or_else(|e| panic!("test config is invalid: {e}"))
}

/// The admin token of [`ADMIN_TABLE`].
pub const ADMIN_TOKEN: &str = "test-admin-token-of-at-least-24-chars";
/// An `[admin]` table for test configurations (its listen address is replaced by a free port).
pub const ADMIN_TABLE: &str =
    "[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"test-admin-token-of-at-least-24-chars\"\n";

/// A porter server running in this process on a loopback port.
pub struct TestServer {
    pub addr: SocketAddr,
    pub gateway: Arc<Gateway>,
    /// The admin listener, when the configuration has `[admin]`.
    pub admin_addr: Option<SocketAddr>,
    deliveries: Option<porter::testing::delivery::Deliveries>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    admin_stop: Option<oneshot::Sender<()>>,
}

impl TestServer {
    /// Starts a server for `config` with a memory store of `capacity` and a fixed clock.
    pub async fn start(config: Config) -> Self {
        Self::start_with(
            config,
            100_000,
            Clock::fixed(FIXTURE_TIME.parse().expect("time")),
        )
        .await
    }

    pub async fn start_with(config: Config, capacity: usize, clock: Clock) -> Self {
        let store = Store::Memory(std::sync::Arc::new(MemoryStore::new(
            false,
            capacity,
            clock.clone(),
        )));
        Self::start_store(config, store, clock).await
    }

    /// Starts a server with the store its configuration describes (Redis included).
    pub async fn start_configured(config: Config) -> Self {
        let clock = Clock::fixed(FIXTURE_TIME.parse().expect("time"));
        let store = porter::testing::app::store_for(
            &config,
            &porter::testing::delivery::Plan::default(),
            &clock,
        )
        .expect("store");
        Self::start_store(config, store, clock).await
    }

    pub async fn start_store(config: Config, store: Store, clock: Clock) -> Self {
        let admin = config.admin.clone();
        let privacy_key = config.privacy.as_ref().map(|p| p.key.clone());
        let destinations = porter::testing::admin::Admin::destinations_of(
            &config,
            &porter::testing::delivery::Plan::of(&config).expect("plan"),
        );
        let gateway = Arc::new(Gateway::with_store(config, store, clock));
        let mut server = Self::serve(Arc::clone(&gateway)).await;
        if let Some(settings) = admin {
            let admin = porter::testing::admin::Admin::new(gateway, &settings, destinations)
                .with_privacy_key(privacy_key.as_deref());
            server.serve_admin(Arc::new(admin)).await;
        }
        server
    }

    /// Serves the admin listener on a loopback port.
    pub async fn serve_admin(&mut self, admin: Arc<porter::testing::admin::Admin>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        self.admin_addr = Some(listener.local_addr().expect("addr"));
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(porter::testing::admin::serve(listener, admin, async {
            let _ = stopped.await;
        }));
        self.admin_stop = Some(stop);
    }

    /// Sends `request` to the admin listener with the test token.
    pub async fn admin(&self, request: &RawRequest) -> RawResponse {
        let request = request
            .clone()
            .header("Authorization", &format!("Bearer {ADMIN_TOKEN}"));
        self.admin_raw(&request).await
    }

    /// Sends `request` to the admin listener as it is.
    pub async fn admin_raw(&self, request: &RawRequest) -> RawResponse {
        request
            .send(self.admin_addr.expect("this server has an [admin] table"))
            .await
    }

    /// The Prometheus text, from the admin listener.
    pub async fn metrics(&self) -> String {
        let response = self.admin(&RawRequest::get("/metrics")).await;
        assert_eq!(response.status, 200, "{}", response.text());
        response.text()
    }

    /// Serves `gateway` on a loopback port.
    pub async fn serve(gateway: Arc<Gateway>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(listener, Arc::clone(&gateway), async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            gateway,
            admin_addr: None,
            deliveries: None,
            stop: Some(stop),
            task: Some(task),
            admin_stop: None,
        }
    }

    /// Starts a server with the store its configuration describes, delivering to its
    /// destinations, with the system clock (deliveries are timed for real).
    pub async fn start_delivering(config: Config) -> Self {
        let app = porter::testing::app::App::build(
            config,
            porter::testing::delivery::Plan::default(),
            Clock::system(),
        )
        .expect("app");
        let gateway = Arc::clone(app.gateway());
        let deliveries = app.start_deliveries().expect("deliveries");
        let mut server = Self::serve(gateway).await;
        server.deliveries = deliveries;
        if let Some(admin) = app.admin() {
            server.serve_admin(Arc::clone(admin)).await;
        }
        // As `porter serve` does: wait until the groups exist before sending events.
        let intake = Arc::clone(&server.gateway.intake);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !intake.load(std::sync::atomic::Ordering::Acquire) {
            assert!(
                std::time::Instant::now() < deadline,
                "delivery groups were never created"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        server
    }

    /// Waits until `destination` has nothing left to deliver: every event delivered or
    /// dead-lettered, none scheduled or in flight. After it, no attempt can follow.
    pub async fn settled(&self, destination: &str) {
        use porter::testing::store::Schedule;
        let schedules = self
            .gateway
            .store
            .schedules()
            .expect("a store with schedules");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let waiting = schedules.backlog(destination).await.expect("backlog");
            if waiting == 0 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{destination} still has {waiting} to deliver"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Delivery rounds `destination`'s worker has run (`porter_delivery_rounds_total`).
    pub async fn rounds(&self, destination: &str) -> u64 {
        let metrics = self.metrics().await;
        let prefix = format!("porter_delivery_rounds_total{{destination=\"{destination}\"}} ");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&prefix)?.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Waits until `destination`'s worker has run `more` rounds from now: each was a chance to
    /// deliver (a way to see that something did not happen, without sleeping).
    pub async fn after_rounds(&self, destination: &str, more: u64) {
        let from = self.rounds(destination).await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while self.rounds(destination).await < from + more {
            assert!(
                std::time::Instant::now() < deadline,
                "{destination}'s worker is stuck"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    pub fn memory(&self) -> &MemoryStore {
        match &self.gateway.store {
            Store::Memory(memory) => memory,
            Store::Local(local) => local.memory(),
            Store::Redis(_) => panic!("this test server uses Redis"),
        }
    }

    /// The events stored so far, as JSON.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.memory()
            .events()
            .iter()
            .map(|e| serde_json::to_value(e).expect("event serializes"))
            .collect()
    }

    pub async fn send(&self, request: &RawRequest) -> RawResponse {
        request.send(self.addr).await
    }

    /// Stops accepting, drains, and waits for the server to finish.
    pub async fn stop(mut self) {
        if let Some(deliveries) = self.deliveries.take() {
            deliveries.stop().await;
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(stop) = self.admin_stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server ran");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(stop) = self.admin_stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A request sent byte for byte.
#[derive(Debug, Clone)]
pub struct RawRequest {
    pub method: String,
    /// Path and query exactly as they go on the request line.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawRequest {
    pub fn post(target: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            method: "POST".into(),
            target: target.into(),
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn get(target: &str) -> Self {
        Self {
            method: "GET".into(),
            ..Self::post(target, Vec::new())
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The request as it goes on the wire (`Content-Length` and `Connection: close` added).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.target);
        if !self
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("host"))
        {
            head.push_str("Host: porter.test\r\n");
        }
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.body.len()
        ));
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }

    pub async fn send(&self, addr: SocketAddr) -> RawResponse {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(&self.to_bytes()).await.expect("write");
        read_response(&mut stream).await
    }
}

/// A response as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads one response from a `Connection: close` exchange.
pub async fn read_response(stream: &mut TcpStream) -> RawResponse {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    parse_response(&raw)
}

pub fn parse_response(raw: &[u8]) -> RawResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            Some((name.trim().to_owned(), value.trim().to_owned()))
        })
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    RawResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&raw[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[end + 2..end + 2 + size]);
        raw = &raw[end + 2 + size + 2..];
    }
}
