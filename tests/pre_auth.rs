//! What a hostile sender can make porter hold before anything is authenticated, at the bounds:
//! half-sent HTTP/2 bodies on many streams (memory, measured on the real binary), crowds of
//! half-sent heads from many addresses, heads that never complete, and streams per peer.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::served::Served;
use common::{ADMIN_TABLE, RawRequest, RawResponse, TestServer, config_from, read_response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const SECRET: &str = "pre-auth-test-secret";

fn config(server: &str) -> porter::testing::config::Config {
    config_from(&config_text(server), &[])
}

fn config_text(server: &str) -> String {
    format!(
        r#"
[server]
{server}

[store]
kind = "memory"

[[sources]]
name = "whatsapp"
provider = "meta"
path = "/webhooks/whatsapp"
secrets = ["{SECRET}"]
verify_token = "pre-auth-verify-token"

{ADMIN_TABLE}
"#
    )
}

/// A TCP connection to `addr` from the loopback address `from`.
async fn connect_from(from: IpAddr, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::new(from, 0)).expect("bind");
    socket.connect(addr).await.expect("connect")
}

fn loopback(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// `request` sent from `from` on a connection of its own.
async fn send_from(from: IpAddr, addr: SocketAddr, request: &RawRequest) -> RawResponse {
    let mut stream = connect_from(from, addr).await;
    stream.write_all(&request.to_bytes()).await.expect("write");
    read_response(&mut stream).await
}

/// Resident memory of process `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS");
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("a number");
    kb * 1024
}

static ZEROS: [u8; 16 * 1024] = [0; 16 * 1024];

/// What became of one half-sent HTTP/2 body.
enum Stream {
    /// porter answered before the body was complete (the budget refused it).
    Answered(http::Response<h2::RecvStream>),
    /// All but the last byte went out and porter is waiting for it; kept open.
    Held(h2::client::ResponseFuture, h2::SendStream<Bytes>),
    /// The server reset the stream with REFUSED_STREAM: HTTP/2's "not processed, retry" (a
    /// client that opens streams before the server's SETTINGS reach it may exceed the
    /// advertised bound).
    ResetRefused,
    /// The stream or the connection failed.
    Failed(String),
}

impl Stream {
    fn failed(error: h2::Error) -> Self {
        if error.reason() == Some(h2::Reason::REFUSED_STREAM) {
            Stream::ResetRefused
        } else {
            Stream::Failed(error.to_string())
        }
    }
}

/// Opens a stream with `Content-Length: length`, sends all but its last byte, and waits.
async fn half_send(client: h2::client::SendRequest<Bytes>, path: &str, length: usize) -> Stream {
    let mut client = match client.ready().await {
        Ok(client) => client,
        Err(error) => return Stream::failed(error),
    };
    let request = http::Request::post(path)
        .header("content-type", "application/json")
        .header("content-length", length)
        .body(())
        .expect("request");
    let (mut response, mut body) = match client.send_request(request, false) {
        Ok(sent) => sent,
        Err(error) => return Stream::failed(error),
    };
    let mut sent = 0;
    while sent < length - 1 {
        let want = ZEROS.len().min(length - 1 - sent);
        body.reserve_capacity(want);
        let capacity = tokio::select! {
            answered = &mut response => {
                return match answered {
                    Ok(answer) => Stream::Answered(answer),
                    Err(error) => Stream::failed(error),
                };
            }
            capacity = std::future::poll_fn(|cx| body.poll_capacity(cx)) => capacity,
        };
        let Some(Ok(capacity)) = capacity else {
            return match response.await {
                Ok(answer) => Stream::Answered(answer),
                Err(error) => Stream::failed(error),
            };
        };
        let n = capacity.min(want);
        if n == 0 {
            continue;
        }
        if body
            .send_data(Bytes::from_static(&ZEROS[..n]), false)
            .is_err()
        {
            return match response.await {
                Ok(answer) => Stream::Answered(answer),
                Err(error) => Stream::failed(error),
            };
        }
        sent += n;
    }
    // Everything but the last byte is out: porter holds it (or answers soon after).
    tokio::select! {
        answered = &mut response => match answered {
            Ok(answer) => Stream::Answered(answer),
            Err(error) => Stream::failed(error),
        },
        () = tokio::time::sleep(Duration::from_millis(500)) => Stream::Held(response, body),
    }
}

async fn h2_client(from: IpAddr, addr: SocketAddr) -> h2::client::SendRequest<Bytes> {
    let tcp = connect_from(from, addr).await;
    let (client, connection) = h2::client::handshake(tcp)
        .await
        .expect("an HTTP/2 handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// The issue's attack on the real binary: three HTTP/2 connections from one address, 200
/// streams each, every one a 3 MiB body sent but for its last byte. porter holds the bodies
/// its per-peer share of `max_buffered_bytes` allows (64 MiB of the default 256 MiB), refuses
/// the others with 503 and `Retry-After` on their stream, keeps the connections, and another
/// address is served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn half_sent_http2_bodies_hold_no_more_than_the_budget() {
    const BODY: usize = 3 * 1024 * 1024;
    const PER_PEER_SHARE: u64 = 64 * 1024 * 1024;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("porter.toml");
    // Defaults for every bound; a request timeout long enough for the whole attack.
    std::fs::write(
        &config,
        config_text("request_timeout = \"60s\"\nidle_timeout = \"120s\""),
    )
    .expect("config");
    let served = Served::start(dir.path(), &["--config", config.to_str().expect("utf-8")]);
    let pid = served.child.id();
    // Warm up: one request of each kind, so that what grows after is what the attack holds.
    let warm = common::whatsapp::messages(SECRET, &["wamid.warm"]);
    assert_eq!(send_from(loopback(2), served.addr, &warm).await.status, 200);
    let before = rss(pid);

    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(h2_client(loopback(1), served.addr).await);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in &clients {
        for _ in 0..200 {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                half_send(client, "/webhooks/whatsapp", BODY).await
            }));
        }
    }
    let mut held = Vec::new();
    let (mut refused, mut failed) = (0, 0);
    for task in tasks {
        match tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("every stream is held or answered within a minute")
            .expect("task")
        {
            Stream::Held(response, body) => held.push((response, body)),
            Stream::Answered(answer) => {
                assert_eq!(answer.status(), 503, "an over-budget stream is refused");
                assert!(answer.headers().contains_key("retry-after"));
                refused += 1;
            }
            Stream::ResetRefused => refused += 1,
            Stream::Failed(error) => {
                eprintln!("a stream failed: {error}");
                failed += 1;
            }
        }
    }
    let attack = started.elapsed();
    // Another address is served while the attack holds its share.
    let other = common::whatsapp::messages(SECRET, &["wamid.other"]);
    let answer = send_from(loopback(2), served.addr, &other).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let after = rss(pid);
    let grown = after.saturating_sub(before);
    eprintln!(
        "held {} bodies, refused {refused}, failed {failed} in {attack:?}; rss {} MiB -> {} MiB (+{} MiB)",
        held.len(),
        before >> 20,
        after >> 20,
        grown >> 20
    );
    assert_eq!(
        failed, 0,
        "no stream or connection failed: refusals are answers"
    );
    assert!(
        held.len() as u64 * BODY as u64 <= PER_PEER_SHARE,
        "{} bodies of 3 MiB held: more than the peer's share",
        held.len()
    );
    // The share, plus a constant for 600 streams' state, the connections' flow-control
    // windows and the allocator's slack.
    assert!(
        grown < PER_PEER_SHARE + 48 * 1024 * 1024,
        "porter grew by {} MiB",
        grown >> 20
    );
    // The connections live: a new stream on the first is answered.
    let mut client = clients[0]
        .clone()
        .ready()
        .await
        .expect("the connection lives");
    let (response, _) = client
        .send_request(
            http::Request::get("/healthz").body(()).expect("request"),
            true,
        )
        .expect("a new stream");
    assert_eq!(response.await.expect("an answer").status(), 200);
    drop(held);
}

/// The issue's second attack, scaled down: 11 addresses each hold as many half-sent heads as
/// their share allows, more than `max_connections` in all. A provider's request still gets in:
/// connections that never completed a head make room for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_of_half_sent_heads_does_not_keep_a_request_out() {
    let server = TestServer::start(config(
        "max_connections = 100\nmax_connections_per_peer = 20",
    ))
    .await;
    let mut crowd = Vec::new();
    for address in 10..21 {
        for _ in 0..20 {
            let mut stream = connect_from(loopback(address), server.addr).await;
            stream
                .write_all(b"POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\nContent-")
                .await
                .expect("write");
            crowd.push(stream);
        }
    }
    let started = Instant::now();
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        send_from(loopback(1), server.addr, &RawRequest::get("/healthz")),
    )
    .await
    .expect("an answer within 5 s");
    assert_eq!(answer.status, 200, "answered in {:?}", started.elapsed());
    let signed = common::whatsapp::messages(SECRET, &["wamid.crowd"]);
    assert_eq!(
        send_from(loopback(1), server.addr, &signed).await.status,
        200
    );
    let metrics = server.metrics().await;
    assert!(
        metrics.contains(
            r#"porter_connections_evicted_total{listener="providers",state="no_request_yet"}"#
        ),
        "{metrics}"
    );
    drop(crowd);
    server.stop().await;
}

/// Whether the server closes `stream` within `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buffer = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // An answer (408) before the close is fine.
            Ok(Ok(_)) => continue,
            Err(_elapsed) => return false,
        }
    }
}

/// A head must be complete within `header_timeout` (seconds), not the idle timeout, and so must
/// HTTP/2's preface.
#[tokio::test]
async fn a_head_that_never_completes_is_closed_after_the_header_timeout() {
    let server = TestServer::start(config(
        "header_timeout = \"1s\"\nrequest_timeout = \"10s\"\nidle_timeout = \"60s\"",
    ))
    .await;
    let mut http1 = TcpStream::connect(server.addr).await.expect("connect");
    http1
        .write_all(b"POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let mut http2 = TcpStream::connect(server.addr).await.expect("connect");
    http2.write_all(b"PRI * HTTP/2.0\r\n").await.expect("write");
    let mut silent = TcpStream::connect(server.addr).await.expect("connect");
    let started = Instant::now();
    assert!(
        closed_within(&mut http1, Duration::from_secs(5)).await,
        "HTTP/1 head"
    );
    assert!(
        closed_within(&mut http2, Duration::from_secs(5)).await,
        "HTTP/2 preface"
    );
    assert!(
        closed_within(&mut silent, Duration::from_secs(5)).await,
        "no byte at all"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "closed after {:?}",
        started.elapsed()
    );
    server.stop().await;
}

/// HTTP/2: the stream bound is advertised, and requests in flight from one peer are bounded
/// across its connections like its connections are; over it a stream gets 503 and the
/// connection lives, and another peer is not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_in_flight_are_bounded_per_peer() {
    let server = TestServer::start(config(
        "max_connections_per_peer = 4\nh2_max_streams = 3\nrequest_timeout = \"30s\"\nidle_timeout = \"60s\"",
    ))
    .await;
    let first = h2_client(loopback(1), server.addr).await;
    let second = h2_client(loopback(1), server.addr).await;
    // Once a stream has been answered, the server's SETTINGS have arrived.
    let mut ready = first.clone().ready().await.expect("ready");
    let (response, _) = ready
        .send_request(
            http::Request::get("/healthz").body(()).expect("request"),
            true,
        )
        .expect("a stream");
    assert_eq!(response.await.expect("an answer").status(), 200);
    assert_eq!(
        ready.current_max_send_streams(),
        3,
        "the advertised stream bound"
    );
    let mut held = Vec::new();
    let mut refused = 0;
    for client in [&first, &first, &first, &second, &second, &second] {
        match half_send(client.clone(), "/webhooks/whatsapp", 1000).await {
            Stream::Held(response, body) => held.push((response, body)),
            Stream::Answered(answer) => {
                assert_eq!(answer.status(), 503);
                assert!(answer.headers().contains_key("retry-after"));
                refused += 1;
            }
            Stream::ResetRefused | Stream::Failed(_) => panic!("a stream failed"),
        }
    }
    assert_eq!((held.len(), refused), (4, 2), "4 in flight from one peer");
    let other = h2_client(loopback(2), server.addr).await;
    let mut other = other.ready().await.expect("ready");
    let (response, _) = other
        .send_request(
            http::Request::get("/healthz").body(()).expect("request"),
            true,
        )
        .expect("a stream");
    assert_eq!(response.await.expect("an answer").status(), 200);
    drop(held);
    server.stop().await;
}

/// HTTP/1 bodies without a declared length reserve their bytes as they arrive: one that grows
/// past its peer's share is answered 503 with `Retry-After`, and another peer is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_over_the_peer_share_is_refused() {
    let server = TestServer::start(config(
        "max_body_bytes = 1048576\nmax_buffered_bytes = 4194304\nmax_buffered_bytes_per_peer = 2097152\nrequest_timeout = \"30s\"\nidle_timeout = \"60s\"",
    ))
    .await;
    let chunk = |size: usize| {
        let mut bytes = format!("{size:x}\r\n").into_bytes();
        bytes.extend(std::iter::repeat_n(b'a', size));
        bytes.extend_from_slice(b"\r\n");
        bytes
    };
    let head = b"POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = connect_from(loopback(1), server.addr).await;
        stream.write_all(head).await.expect("write");
        stream.write_all(&chunk(900 * 1024)).await.expect("write");
        held.push(stream);
    }
    // Wait until porter holds both (1.8 MiB of its 2 MiB share).
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.gateway.limits.body_budget.used() < 1800 * 1024 {
        assert!(Instant::now() < deadline, "the two bodies were never read");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut over = connect_from(loopback(1), server.addr).await;
    over.write_all(head).await.expect("write");
    over.write_all(&chunk(300 * 1024)).await.expect("write");
    let answer = read_response(&mut over).await;
    assert_eq!(answer.status, 503, "{}", answer.text());
    assert_eq!(answer.header("retry-after"), Some("5"));
    let signed = common::whatsapp::messages(SECRET, &["wamid.other-peer"]);
    assert_eq!(
        send_from(loopback(2), server.addr, &signed).await.status,
        200
    );
    drop(held);
    server.stop().await;
}
