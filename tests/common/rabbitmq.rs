//! RabbitMQ for tests: the broker this machine runs on 127.0.0.1:5672 (guest/guest), used with
//! exchange and queue names of each test's own; and, for restarts, a broker node of the test's
//! own (`/usr/lib/rabbitmq/bin/rabbitmq-server` on free ports with its own data directory, in
//! its own process group, killed by that group's id only).

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lapin::options::{
    BasicAckOptions, BasicGetOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
    QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};

use super::redis_server::free_port;

/// The machine's broker.
pub const SHARED: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// A name no other test (or run) uses.
pub fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("porter-test-{what}-{}-{nanos}", std::process::id())
}

pub async fn channel(url: &str) -> (Connection, Channel) {
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("RabbitMQ answers (scripts/test starts rabbitmq-server)");
    let channel = connection.create_channel().await.expect("channel");
    (connection, channel)
}

/// Declares a durable topic exchange and a durable queue bound to it for every key.
pub async fn exchange_and_queue(channel: &Channel, exchange: &str, queue: &str, args: FieldTable) {
    channel
        .exchange_declare(
            exchange.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("exchange");
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            args,
        )
        .await
        .expect("queue");
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");
}

/// Removes what a test declared.
pub async fn clean_up(channel: &Channel, exchange: &str, queue: Option<&str>) {
    if let Some(queue) = queue {
        let _ = channel
            .queue_delete(queue.into(), QueueDeleteOptions::default())
            .await;
    }
    let _ = channel
        .exchange_delete(exchange.into(), ExchangeDeleteOptions::default())
        .await;
}

/// Takes (and acks) every message waiting in `queue`.
pub async fn drain(channel: &Channel, queue: &str) -> Vec<lapin::message::BasicGetMessage> {
    let mut taken = Vec::new();
    while let Some(message) = channel
        .basic_get(queue.into(), BasicGetOptions::default())
        .await
        .expect("basic.get")
    {
        message
            .delivery
            .acker
            .ack(BasicAckOptions::default())
            .await
            .expect("ack");
        taken.push(message);
    }
    taken
}

/// Drains `queue` until `count` messages came, or panics after `limit`.
pub async fn wait_for(
    channel: &Channel,
    queue: &str,
    count: usize,
    limit: Duration,
) -> Vec<lapin::message::BasicGetMessage> {
    let deadline = Instant::now() + limit;
    let mut taken = Vec::new();
    while taken.len() < count {
        taken.extend(drain(channel, queue).await);
        assert!(
            Instant::now() < deadline,
            "{} of {count} messages in {queue}",
            taken.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    taken
}

/// A RabbitMQ node of this test's own.
pub struct OwnBroker {
    child: Option<Child>,
    pub port: u16,
    dist_port: u16,
    name: String,
    dir: tempfile::TempDir,
}

impl OwnBroker {
    pub fn start() -> Self {
        let mut broker = Self {
            child: None,
            port: free_port(),
            dist_port: free_port(),
            name: unique("node"),
            dir: tempfile::tempdir().expect("tempdir"),
        };
        std::fs::write(broker.dir.path().join("plugins"), "[].").expect("plugins file");
        broker.spawn();
        broker
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    fn spawn(&mut self) {
        let dir = self.dir.path();
        let child = Command::new("/usr/lib/rabbitmq/bin/rabbitmq-server")
            .env("RABBITMQ_NODENAME", format!("{}@localhost", self.name))
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("plugins"))
            .env("RABBITMQ_FEATURE_FLAGS_FILE", dir.join("feature_flags"))
            .env("RABBITMQ_CONFIG_FILE", dir.join("none"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rabbitmq-server runs (install it with `apt-get install rabbitmq-server`)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "rabbitmq-server on port {} did not come up",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the node's whole process group with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // `kill -9 -PGID` would be read by procps as `kill -9 -1` (every process): the
            // group goes after `--`.
            let group = format!("-{}", child.id());
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &group])
                .status();
            let _ = child.wait();
            let deadline = Instant::now() + Duration::from_secs(10);
            while TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Starts it again on the same ports and data (durable queues and persistent messages
    /// survive).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.kill();
    }
}
