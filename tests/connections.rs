//! Bounds on what a client can hold before it authenticates anything: connections in all and
//! per peer address, idle connections, and headers sent a byte at a time.

mod common;

use std::time::{Duration, Instant};

use common::{ADMIN_TABLE, RawRequest, TestServer, config_from};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn config(server: &str) -> porter::testing::config::Config {
    config_from(
        &format!(
            r#"
[server]
{server}

[[sources]]
name = "whatsapp"
provider = "meta"
path = "/webhooks/whatsapp"
secrets = ["connections-test-secret"]

{ADMIN_TABLE}
"#
        ),
        &[],
    )
}

/// Whether the server closes `stream` within `limit` (EOF or reset on read).
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buffer = [0u8; 1024];
    match tokio::time::timeout(limit, stream.read(&mut buffer)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => panic!("the server sent something on a connection it should close"),
        Err(_elapsed) => false,
    }
}

/// Whether the server closes `stream` within `limit` without answering (false: it answered,
/// or kept it open).
async fn refused_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buffer = [0u8; 1024];
    matches!(
        tokio::time::timeout(limit, stream.read(&mut buffer)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

/// A kept-alive connection that has completed one request, so it is surely admitted.
async fn served_connection(server: &TestServer) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    // `/healthz` answers `ok\n`: read the head and those three bytes, and keep the connection.
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\nok\n") {
        stream.read_exact(&mut byte).await.expect("an answer");
        raw.push(byte[0]);
    }
    assert!(
        raw.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    stream
}

#[tokio::test]
async fn a_peer_holds_at_most_its_share_of_connections() {
    let server = TestServer::start(config(
        "max_connections = 10\nmax_connections_per_peer = 2\nrequest_timeout = \"20s\"",
    ))
    .await;
    let first = busy_connection(&server).await;
    let second = busy_connection(&server).await;
    // Both have a request in flight: the third from the same address is closed at once,
    // before anything is read.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut third = TcpStream::connect(server.addr).await.expect("connect");
        third
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .ok();
        if refused_within(&mut third, Duration::from_secs(2)).await {
            break;
        }
        // Answered: the two requests had not both begun yet.
        assert!(Instant::now() < deadline, "a third connection was let in");
    }
    // When one closes, there is room again.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let mut stream = TcpStream::connect(server.addr).await.expect("connect");
        let sent = stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await;
        let mut head = [0u8; 12];
        if sent.is_ok() && stream.read_exact(&mut head).await.is_ok() {
            assert_eq!(&head, b"HTTP/1.1 200");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no room after a connection closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // That request needed a free slot too: it proves the count came down.
    assert_eq!(server.send(&RawRequest::get("/healthz")).await.status, 200);
    let metrics = server.metrics().await;
    assert!(
        metrics.contains(
            r#"porter_connections_refused_total{listener="providers",reason="max_connections_per_peer"}"#
        ),
        "{metrics}"
    );
    drop(second);
    server.stop().await;
}

/// A connection with a request in flight: a POST whose body is still coming.
async fn busy_connection(server: &TestServer) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    stream
        .write_all(
            b"POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabcde",
        )
        .await
        .expect("write");
    stream
}

#[tokio::test]
async fn connections_in_all_are_bounded() {
    let server = TestServer::start(config(
        "max_connections = 2\nmax_connections_per_peer = 2\nrequest_timeout = \"20s\"",
    ))
    .await;
    let held: Vec<TcpStream> = vec![
        busy_connection(&server).await,
        busy_connection(&server).await,
    ];
    // Both connections have a request in flight: neither makes room, the newcomer is closed.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut over = TcpStream::connect(server.addr).await.expect("connect");
        if refused_within(&mut over, Duration::from_secs(2)).await {
            break;
        }
        // Not refused: the two requests had not both begun yet.
        assert!(Instant::now() < deadline, "a third connection was let in");
    }
    drop(held);
    server.stop().await;
}

#[tokio::test]
async fn an_idle_kept_alive_connection_makes_room_when_all_are_taken() {
    let server =
        TestServer::start(config("max_connections = 2\nmax_connections_per_peer = 2")).await;
    let mut oldest = served_connection(&server).await;
    let _newer = served_connection(&server).await;
    assert_eq!(server.send(&RawRequest::get("/healthz")).await.status, 200);
    assert!(
        closed_within(&mut oldest, Duration::from_secs(2)).await,
        "the oldest idle connection made room"
    );
    server.stop().await;
}

#[tokio::test]
async fn idle_and_trickling_connections_are_closed() {
    let server =
        TestServer::start(config("request_timeout = \"500ms\"\nidle_timeout = \"1s\"")).await;
    // A connection that never sends a byte.
    let mut idle = TcpStream::connect(server.addr).await.expect("connect");
    let started = Instant::now();
    assert!(closed_within(&mut idle, Duration::from_secs(5)).await);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "not before the timeout"
    );
    // A kept-alive connection after its request.
    let mut kept = served_connection(&server).await;
    assert!(closed_within(&mut kept, Duration::from_secs(5)).await);
    // Headers sent a byte every 300 ms: never idle, but the head must be complete in time.
    let mut trickle = TcpStream::connect(server.addr).await.expect("connect");
    let started = Instant::now();
    let head = b"POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let mut cut_off = false;
    for byte in head {
        if trickle.write_all(&[*byte]).await.is_err() {
            cut_off = true;
            break;
        }
        let mut buffer = [0u8; 256];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(300), trickle.read(&mut buffer)).await
        {
            cut_off = true;
            break;
        }
    }
    assert!(cut_off, "a head trickled in for {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(5));
    server.stop().await;
}
