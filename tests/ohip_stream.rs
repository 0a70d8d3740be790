//! The OHIP Streaming connector against a mock of Oracle's server on loopback: events stored
//! exactly once with their offsets, resume after a dropped connection and after a killed
//! porter, token rotation (complete, the server's close, ≥ 5 s, resubscribe), and each close
//! code's reaction.

mod common;

use std::time::{Duration, Instant};

use common::config_from;
use common::ohip_mock::{Fault, OhipMock};
use common::redis_server::RedisServer;
use common::served::{Served, signal, wait};
use std::sync::Arc;

use porter::testing::ohip::{Connectors, State};
use porter::testing::server::{Clock, Gateway};
use porter::testing::store::{MemoryStore, Store};
use serde_json::Value;

const SERVER: &str = "[server]\nlisten = \"127.0.0.1:0\"\n[store]\nkind = \"memory\"\n";

/// A gateway on a memory store, and the connectors of `config`'s stream sources on it.
fn start(config: porter::testing::config::Config) -> (Arc<Gateway>, Connectors) {
    let streams = config.streams.clone();
    let store = Store::Memory(std::sync::Arc::new(MemoryStore::new(
        false,
        10_000,
        porter::testing::clock::Clock::system(),
    )));
    let gateway = Arc::new(Gateway::with_store(config, store, Clock::system()));
    let connectors = Connectors::start(&streams, &gateway.store, &gateway.clock);
    let _ = gateway.streams.set(connectors.shared());
    (gateway, connectors)
}

fn events(gateway: &Gateway) -> Vec<Value> {
    let Store::Memory(memory) = &gateway.store else {
        panic!("memory store")
    };
    memory
        .events()
        .iter()
        .map(|e| serde_json::to_value(e).expect("json"))
        .collect()
}

async fn until<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(started.elapsed() < limit, "not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn events_are_stored_once_with_their_offsets_and_the_streams_words() {
    let mock = OhipMock::start().await;
    mock.state.push("RESERVATION", "CHECK IN", "1001");
    mock.state.push("PROFILE", "UPDATE PROFILE", "2002");
    let last = mock.state.push("HOUSEKEEPING", "UPDATE ROOM STATUS", "303");
    let config = config_from(&format!("{SERVER}{}", mock.source_toml("opera", "")), &[]);
    let (store, connectors) = start(config);

    let stored = until(Duration::from_secs(10), || {
        let events = events(&store);
        (events.len() == 3).then_some(events)
    })
    .await;
    let types: Vec<&str> = stored.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "reservation.checked_in",
            "guest.updated",
            "housekeeping.status_changed"
        ]
    );
    assert_eq!(stored[0]["provider"], "oracle_ohip_stream");
    assert_eq!(stored[0]["source"], "/sources/opera");
    assert_eq!(stored[0]["providereventid"], "uid-100");
    assert_eq!(stored[0]["subject"], "1001");
    assert_eq!(stored[0]["propertyid"], "HOTEL1");
    assert_eq!(stored[0]["ohipoffset"], "100");
    assert_eq!(stored[0]["ohipmodule"], "RESERVATION");
    assert_eq!(stored[0]["ohipevent"], "CHECK IN");
    assert_eq!(stored[0]["time"], "2024-04-28T06:18:59.028027Z");
    assert_eq!(
        store
            .store
            .ohip_offset("opera")
            .await
            .expect("offset")
            .as_deref(),
        Some(last.as_str())
    );

    // What the server saw: the app key itself (not its hash) and a token it issued.
    let connections = mock.state.connections();
    let init = connections[0].init.clone().expect("connection_init");
    assert_eq!(init["payload"]["x-app-key"], common::ohip_mock::APP_KEY);
    assert_eq!(init["payload"]["Authorization"], "Bearer token-1");
    assert_eq!(connections[0].subscribed_from, [None]);
    let statuses = connectors.statuses();
    assert_eq!(statuses[0].state, State::Streaming);
    assert_eq!(statuses[0].offset.as_deref(), Some(last.as_str()));
    assert_eq!(statuses[0].events, 3);

    // Events that arrive later are stored as they come.
    mock.state.push("RESERVATION", "CHECK OUT", "1001");
    until(Duration::from_secs(10), || {
        (events(&store).len() == 4).then_some(())
    })
    .await;
    connectors.stop().await;
    // Stopping completes the stream; the server closes first.
    let connections = mock.state.connections();
    assert!(connections[0].completed_at.is_some(), "{connections:?}");
    assert_eq!(connections[0].closed_with, Some(1000));
}

#[tokio::test]
async fn a_dropped_connection_resumes_from_the_stored_offset_after_at_least_4_s() {
    let mock = OhipMock::start().await;
    for key in ["1", "2", "3", "4"] {
        mock.state.push("RESERVATION", "UPDATE RESERVATION", key);
    }
    mock.state.knobs().faults = vec![(2, Fault::Drop)];
    let config = config_from(&format!("{SERVER}{}", mock.source_toml("opera", "")), &[]);
    let (store, connectors) = start(config);
    let stored = until(Duration::from_secs(30), || {
        let events = events(&store);
        (events.len() == 4).then_some(events)
    })
    .await;
    let keys: Vec<&str> = stored
        .iter()
        .map(|e| e["providereventid"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["uid-100", "uid-103", "uid-106", "uid-109"]);
    let connections = mock.state.connections();
    assert_eq!(connections.len(), 2, "{connections:?}");
    // Inclusive replay from the last stored offset: event 103 came twice, stored once.
    assert_eq!(connections[1].subscribed_from, [Some("103".to_owned())]);
    let gap = connections[1].opened.unwrap() - connections[0].opened.unwrap();
    assert!(gap >= Duration::from_secs(4), "{gap:?}");
    assert_eq!(connectors.statuses()[0].disconnects.get("1006"), Some(&1));
    // The stored offset came back first: no gap.
    assert_eq!(connectors.statuses()[0].gap, None);
    connectors.stop().await;
}

#[tokio::test]
async fn the_token_is_rotated_by_complete_then_a_new_connection_at_least_5_s_later() {
    let mock = OhipMock::start().await;
    mock.state.knobs().token_ttl = Duration::from_secs(4);
    mock.state.push("RESERVATION", "NEW RESERVATION", "1");
    let config = config_from(&format!("{SERVER}{}", mock.source_toml("opera", "")), &[]);
    let (store, connectors) = start(config);
    let connections = until(Duration::from_secs(20), || {
        let connections = mock.state.connections();
        (connections.len() >= 2 && !connections[1].subscribed_at.is_empty()).then_some(connections)
    })
    .await;
    mock.state.push("RESERVATION", "CANCEL", "1");
    until(Duration::from_secs(10), || {
        (events(&store).len() == 2).then_some(())
    })
    .await;
    let completed = connections[0]
        .completed_at
        .expect("complete sent before the close");
    assert_eq!(
        connections[0].closed_with,
        Some(1000),
        "the server closed first"
    );
    let resubscribed = connections[1].subscribed_at[0];
    assert!(
        resubscribed - completed >= Duration::from_secs(5),
        "{:?}",
        resubscribed - completed
    );
    assert!(mock.state.token_requests() >= 2);
    assert_eq!(
        connections[1].init.as_ref().unwrap()["payload"]["Authorization"],
        "Bearer token-2"
    );
    assert_eq!(
        connectors.statuses()[0].disconnects.get("rotated"),
        Some(&1)
    );
    connectors.stop().await;
}

async fn stopped_reason(mock: &OhipMock) -> String {
    let config = config_from(&format!("{SERVER}{}", mock.source_toml("opera", "")), &[]);
    let (_gateway, connectors) = start(config);
    let reason = until(Duration::from_secs(20), || {
        match &connectors.statuses()[0].state {
            State::Stopped { reason, .. } => Some(reason.clone()),
            _ => None,
        }
    })
    .await;
    connectors.stop().await;
    reason
}

#[tokio::test]
async fn an_invalid_subscription_or_a_forbidden_stream_stops_with_the_reason() {
    let mock = OhipMock::start().await;
    mock.state.knobs().refuse_subscription = Some(4400);
    let reason = stopped_reason(&mock).await;
    assert!(reason.contains("4400"), "{reason}");
    assert!(reason.contains("chain_code"), "{reason}");

    let mock = OhipMock::start().await;
    mock.state.knobs().refuse_subscription = Some(4403);
    let reason = stopped_reason(&mock).await;
    assert!(
        reason.contains("4403") && reason.contains("approved"),
        "{reason}"
    );

    let mock = OhipMock::start().await;
    mock.state.knobs().refuse_upgrade = Some(400);
    let reason = stopped_reason(&mock).await;
    assert!(reason.contains("HTTP 400"), "{reason}");

    // OHIP refusing the token at connection_init: one fresh token, then a stop.
    let mock = OhipMock::start().await;
    mock.state.knobs().refuse_init = true;
    let started = Instant::now();
    let reason = stopped_reason(&mock).await;
    assert!(
        reason.contains("4401") && reason.contains("app_key"),
        "{reason}"
    );
    assert_eq!(mock.state.token_requests(), 2);
    assert_eq!(mock.state.connections().len(), 2);
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "the retry kept its distance"
    );

    let mock = OhipMock::start().await;
    mock.state.knobs().refuse_credentials = true;
    let reason = stopped_reason(&mock).await;
    assert!(reason.contains("client_secret"), "{reason}");
    // One refused token request, not a loop of them (the connector has stopped for good, and
    // its task has ended: nothing more can be asked).
    assert_eq!(mock.state.token_requests(), 1);
}

#[tokio::test]
async fn another_consumer_4409_waits_the_lockout_then_streams() {
    let mock = OhipMock::start().await;
    mock.state.knobs().busy = 1;
    mock.state.push("RESERVATION", "CHECK IN", "7");
    let config = config_from(
        &format!("{SERVER}{}", mock.source_toml("opera", "lockout = \"6s\"")),
        &[],
    );
    let (store, connectors) = start(config);
    until(Duration::from_secs(20), || {
        (events(&store).len() == 1).then_some(())
    })
    .await;
    let connections = mock.state.connections();
    assert_eq!(connections[0].closed_with, Some(4409));
    let gap = connections[1].opened.unwrap() - connections[0].opened.unwrap();
    assert!(gap >= Duration::from_secs(6), "{gap:?}");
    assert_eq!(connectors.statuses()[0].disconnects.get("4409"), Some(&1));
    connectors.stop().await;
}

/// A configuration for the `porter` binary: the Redis store, an admin listener and the stream
/// source `opera` on `mock` with a 3 s lease.
fn redis_config(dir: &std::path::Path, redis: &RedisServer, mock: &OhipMock) -> std::path::PathBuf {
    let config = dir.join("porter.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[store]\nkind = \"redis\"\nurl = \"{}\"\n\
             [admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{}\"\n{}",
            redis.url(),
            common::ADMIN_TOKEN,
            mock.source_toml("opera", "lease = \"3s\"")
        ),
    )
    .expect("config");
    config
}

/// The offset the connector saved in Redis for `opera`.
fn saved_offset(redis: &RedisServer) -> Option<String> {
    redis
        .cli(&["GET", "porter:ohip:opera:offset"])
        .map(|o| o.trim().to_owned())
        .filter(|o| !o.is_empty())
}

/// Waits until the connector has saved `offset`: every event up to it is stored, and with
/// no later event at the mock, nothing more can be.
fn wait_for_offset(redis: &RedisServer, offset: &str) {
    let started = Instant::now();
    while saved_offset(redis).as_deref() != Some(offset) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "offset {offset} never saved: {:?}",
            saved_offset(redis)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Events in the Redis store's stream.
fn stored(redis: &RedisServer) -> usize {
    redis
        .cli(&["XLEN", "porter:events"])
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn porter_killed_mid_stream_resumes_from_the_stored_offset_and_stores_nothing_twice() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mock = runtime.block_on(OhipMock::start());
    for i in 0..5 {
        mock.state
            .push("RESERVATION", "UPDATE RESERVATION", &i.to_string());
    }
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = redis_config(dir.path(), &redis, &mock);
    let config_arg = config.to_str().expect("utf-8");
    let stream_len = || stored(&redis);
    let mut served = Served::start(dir.path(), &["--config", config_arg]);
    let started = Instant::now();
    while stream_len() < 5 {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "events not stored"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Killed without a chance to complete or save anything more.
    signal(&served.child, "KILL");
    wait(&mut served.child, Duration::from_secs(5)).expect("killed");
    drop(served);
    let mut last_offset = String::new();
    for i in 5..8 {
        last_offset = mock
            .state
            .push("RESERVATION", "UPDATE RESERVATION", &i.to_string());
    }
    let restarted = Served::start(dir.path(), &["--config", config_arg]);
    wait_for_offset(&redis, &last_offset);
    assert_eq!(stream_len(), 8, "an event was stored twice");
    let connections = mock.state.connections();
    let last = connections.last().expect("a connection");
    // The offset of the fifth event (112), saved before the kill, replayed inclusively.
    assert_eq!(last.subscribed_from, [Some("112".to_owned())]);
    let _ = restarted.terminate();
}

#[test]
fn two_instances_on_one_redis_one_streams_and_the_other_takes_over_when_it_dies() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mock = runtime.block_on(OhipMock::start());
    mock.state.push("RESERVATION", "NEW RESERVATION", "1");
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = redis_config(dir.path(), &redis, &mock);
    let config_arg = config.to_str().expect("utf-8");
    let stream_len = || stored(&redis);
    let mut first = Served::start(dir.path(), &["--config", config_arg]);
    let started = Instant::now();
    while stream_len() < 1 {
        assert!(started.elapsed() < Duration::from_secs(15), "not streaming");
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = Served::start(dir.path(), &["--config", config_arg]);
    second.wait_for_log("standing by", 1, Duration::from_secs(10));
    // Two renewals of the first one's lease (every second) while the second stands by.
    let lease_ttl = || -> i64 {
        let key = redis
            .cli(&["--scan", "--pattern", "porter:ohip:lease:*"])
            .and_then(|keys| keys.lines().next().map(str::to_owned))
            .expect("the lease key");
        redis
            .cli(&["PTTL", &key])
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(-2)
    };
    let mut renewals = 0;
    let mut last = lease_ttl();
    let deadline = Instant::now() + Duration::from_secs(15);
    while renewals < 2 {
        assert!(Instant::now() < deadline, "the lease was not renewed");
        let now = lease_ttl();
        if now > last {
            renewals += 1;
        }
        last = now;
        std::thread::sleep(Duration::from_millis(20));
    }
    // The second instance stands by: OHIP saw one consumer only.
    assert_eq!(mock.state.connections().len(), 1);
    assert_eq!(mock.state.upgrades(), 1);

    signal(&first.child, "KILL");
    wait(&mut first.child, Duration::from_secs(5)).expect("killed");
    let killed = Instant::now();
    drop(first);
    let second_offset = mock.state.push("RESERVATION", "CHECK IN", "1");
    while stream_len() < 2 {
        assert!(killed.elapsed() < Duration::from_secs(15), "no takeover");
        std::thread::sleep(Duration::from_millis(50));
    }
    let connections = mock.state.connections();
    assert_eq!(connections.len(), 2, "{connections:?}");
    // Within the lease (3 s) and a standby poll, from the offset the first one saved.
    let takeover =
        connections[1].opened.expect("opened") - killed.min(connections[1].opened.expect("opened"));
    assert!(takeover <= Duration::from_secs(6), "{takeover:?}");
    assert_eq!(connections[1].subscribed_from, [Some("100".to_owned())]);
    wait_for_offset(&redis, &second_offset);
    assert_eq!(
        stream_len(),
        2,
        "the replayed first event was not stored again"
    );

    // /readyz says how the stream is doing; the admin API and the console's overview too.
    let get = |addr: std::net::SocketAddr, path: &str, token: bool| {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        let auth = if token {
            format!("Authorization: Bearer {}\r\n", common::ADMIN_TOKEN)
        } else {
            String::new()
        };
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
        )
        .expect("write");
        let mut text = String::new();
        stream.read_to_string(&mut text).expect("read");
        text
    };
    let ready = get(second.addr, "/readyz", false);
    assert!(ready.contains("ready\nohip opera: streaming\n"), "{ready}");
    let admin = second.admin_addr.expect("admin listener");
    let overview = get(admin, "/api/overview", true);
    assert!(
        overview.contains(r#""source":"opera","state":"streaming""#),
        "{overview}"
    );
    let page = get(admin, "/", true);
    assert!(
        page.contains("OHIP streams") && page.contains("streaming"),
        "{page}"
    );
    let page = get(admin, "/events?source=opera", true);
    assert!(
        page.contains(r#"<option value="opera" selected>"#),
        "{page}"
    );
    assert!(page.contains("reservation.created"), "{page}");

    // `porter ohip status` reads what the instances share.
    let ohip = |args: &[&str]| {
        let output = common::served::porter()
            .arg("ohip")
            .args(args)
            .args(["--config", config_arg])
            .output()
            .expect("porter ohip runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let (ok, status) = ohip(&["status"]);
    assert!(ok, "{status}");
    assert!(status.contains("opera  chain=CHAIN1"), "{status}");
    assert!(status.contains("offset: 103"), "{status}");
    assert!(
        status.contains("state: streaming (connected: true)"),
        "{status}"
    );
    assert!(!status.contains("holder: (nobody"), "{status}");
    assert!(
        !status.contains(common::ohip_mock::APP_KEY),
        "the app key is never printed"
    );
    let _ = second.terminate();
    // Shut down cleanly, the holder gave its lease up.
    let (_, status) = ohip(&["status", "--source", "opera"]);
    assert!(status.contains("holder: (nobody"), "{status}");
    let (ok, seek) = ohip(&["seek", "--source", "opera", "--offset", "100"]);
    assert!(ok, "{seek}");
    let (_, status) = ohip(&["status"]);
    assert!(status.contains("offset: 100"), "{status}");
    let (ok, refused) = ohip(&["seek", "--source", "opera", "--offset", "12a"]);
    assert!(!ok && refused.contains("decimal digits"), "{refused}");
    let (ok, refused) = ohip(&["status", "--source", "nope"]);
    assert!(
        !ok && refused.contains("no oracle_ohip_stream source named `nope`"),
        "{refused}"
    );
}

#[test]
fn check_config_lists_stream_sources_and_names_their_mistakes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[server]\nlisten = \"127.0.0.1:8080\"\n[[sources]]\nname = \"opera\"\n\
         provider = \"oracle_ohip_stream\"\ngateway_url = \"https://ohip.example.com\"\n\
         app_key = \"${OHIP_APP_KEY}\"\nclient_id = \"client\"\n\
         client_secret = \"${OHIP_CLIENT_SECRET}\"\nchain_code = \"CHAIN1\"\n",
    )
    .expect("write");
    let output = common::served::porter()
        .args(["check-config", "--config"])
        .arg(&good)
        .env("OHIP_APP_KEY", "41ecd082-8997-4c69-af34-2f72b83645ff")
        .env("OHIP_CLIENT_SECRET", "s3cret-value")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("opera            wss://ohip.example.com/subscriptions          CHAIN1"),
        "{stdout}"
    );
    assert!(!stdout.contains("s3cret-value") && !stdout.contains("41ecd082"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\nlisten = \"127.0.0.1:8080\"\n[[sources]]\nname = \"opera\"\n\
         provider = \"oracle_ohip_stream\"\npath = \"/ohip\"\ngateway_url = \"ftp://x\"\n\
         app_key = \"k\"\nclient_id = \"c\"\nclient_secret = \"s3cret-value\"\n\
         chain_code = \"CHAIN\\\"1\"\nping_every = \"30s\"\n",
    )
    .expect("write");
    let output = common::served::porter()
        .args(["check-config", "--config"])
        .arg(&bad)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    for problem in [
        "sources[0] (opera).path: an oracle_ohip_stream source has no path",
        "sources[0] (opera).gateway_url: must be the environment's gateway URL",
        "sources[0] (opera).chain_code: must be 1 to 20 letters",
        "sources[0] (opera).ping_every: must be a duration from 1 s to 15 s",
    ] {
        assert!(
            stderr.contains(problem),
            "{problem} missing from:\n{stderr}"
        );
    }
    assert!(!stderr.contains("s3cret-value"), "{stderr}");
}

#[tokio::test]
async fn a_resume_past_the_stored_offset_is_reported_as_a_gap() {
    let mock = OhipMock::start().await;
    mock.state.push("RESERVATION", "CHECK IN", "1");
    mock.state.push("RESERVATION", "CHECK IN", "2");
    mock.state.knobs().faults = vec![(2, Fault::Drop)];
    let config = config_from(&format!("{SERVER}{}", mock.source_toml("opera", "")), &[]);
    let (store, connectors) = start(config);
    until(Duration::from_secs(10), || {
        (events(&store).len() == 2).then_some(())
    })
    .await;
    // While porter is away, its stored offset (103) and the next event leave the retention.
    mock.state.push("RESERVATION", "CHECK OUT", "1");
    mock.state.push("RESERVATION", "CHECK OUT", "2");
    mock.state.expire_before(109);
    until(Duration::from_secs(20), || {
        (events(&store).len() == 3).then_some(())
    })
    .await;
    let status = connectors.statuses().remove(0);
    assert_eq!(status.gap.as_deref(), Some("103..109"));
    connectors.stop().await;
}

#[tokio::test]
async fn porter_pings_answers_pings_and_a_stream_without_pongs_stays_up_while_frames_flow() {
    let mock = OhipMock::start().await;
    {
        let mut knobs = mock.state.knobs();
        knobs.server_ping = true;
        knobs.withhold_pongs = true;
    }
    mock.state.push("RESERVATION", "CHECK IN", "1");
    let config = config_from(
        &format!(
            "{SERVER}{}",
            mock.source_toml("opera", "ping_every = \"1s\"\nliveness = \"5s\"")
        ),
        &[],
    );
    let (store, connectors) = start(config);
    until(Duration::from_secs(10), || {
        (events(&store).len() == 1).then_some(())
    })
    .await;
    // Events keep coming while OHIP answers no ping (one after each of porter's pings, a
    // second apart: six seconds in all, past the five of `liveness`): any frame is proof of life.
    for key in 2..=7 {
        let pings = mock.state.connections()[0].pings;
        until(Duration::from_secs(10), || {
            (mock.state.connections()[0].pings > pings).then_some(())
        })
        .await;
        mock.state.push("RESERVATION", "CHECK IN", &key.to_string());
    }
    until(Duration::from_secs(10), || {
        (events(&store).len() == 7).then_some(())
    })
    .await;
    let connections = mock.state.connections();
    assert_eq!(connections.len(), 1, "{connections:?}");
    assert!(connections[0].pings >= 3, "{connections:?}");
    assert_eq!(connections[0].pongs, 1, "the server's ping was answered");
    // Silence beyond `liveness` (no events, no pongs) ends the connection as broken.
    until(Duration::from_secs(20), || {
        connectors.statuses()[0].disconnects.get("1006").copied()
    })
    .await;
    connectors.stop().await;
}

#[tokio::test]
async fn a_wss_gateway_is_reached_over_rustls_and_an_untrusted_certificate_is_refused() {
    // The connector's WebSocket client speaks TLS with the process's one rustls provider: a
    // server whose certificate no root vouches for is refused (an error, not a panic).
    let mock = OhipMock::start().await;
    let proxy =
        common::tls_proxy::TlsProxy::start("localhost", mock.addr, Default::default()).await;
    let url = format!("wss://localhost:{}/subscriptions", proxy.addr.port());
    let error = tokio_tungstenite::connect_async(url)
        .await
        .expect_err("an untrusted certificate");
    assert!(
        error.to_string().to_lowercase().contains("certificate"),
        "{error}"
    );
}

#[tokio::test]
async fn a_frame_that_is_not_an_event_is_quarantined_and_passed_over() {
    let mock = OhipMock::start().await;
    mock.state.push("RESERVATION", "CHECK IN", "1");
    // An event without its name: nothing porter can store, and a resume would replay it.
    mock.state.push_raw(serde_json::json!({
        "metadata": {"offset": "103", "uniqueEventId": "uid-103"},
        "moduleName": "RESERVATION"
    }));
    mock.state.push_raw(serde_json::json!({
        "metadata": {"offset": "106", "uniqueEventId": "uid-106"},
        "moduleName": "RESERVATION", "eventName": "CHECK OUT", "primaryKey": "1"
    }));
    let config = config_from(&format!("{SERVER}{}", mock.source_toml("opera", "")), &[]);
    let (gateway, connectors) = start(config);
    until(Duration::from_secs(10), || {
        (events(&gateway).len() == 2).then_some(())
    })
    .await;
    let Store::Memory(memory) = &gateway.store else {
        panic!("memory store")
    };
    let quarantined = memory.quarantined();
    assert_eq!(quarantined.len(), 1);
    assert_eq!(quarantined[0].source, "opera");
    assert!(String::from_utf8_lossy(&quarantined[0].body).contains("uid-103"));
    assert_eq!(
        gateway
            .store
            .ohip_offset("opera")
            .await
            .expect("offset")
            .as_deref(),
        Some("106")
    );
    assert_eq!(mock.state.connections().len(), 1, "no reconnect over it");
    connectors.stop().await;
}

/// The status of the connector of `mock` once `check` holds.
async fn status_when(
    mock: &OhipMock,
    check: impl Fn(&porter::testing::ohip::Status) -> bool,
) -> porter::testing::ohip::Status {
    let config = config_from(&format!("{SERVER}{}", mock.source_toml("opera", "")), &[]);
    let (_gateway, connectors) = start(config);
    let status = until(Duration::from_secs(20), || {
        let status = connectors.statuses().remove(0);
        check(&status).then_some(status)
    })
    .await;
    connectors.stop().await;
    status
}

/// A broken or hostile gateway's token answer is not read past 64 KiB, with or without a
/// declared length (before, a 400 MB answer took porter to 918 MB on every reconnect).
#[tokio::test]
async fn a_huge_token_answer_is_not_read() {
    for chunked in [false, true] {
        let mock = OhipMock::start().await;
        mock.state.knobs().token_padding = Some((64 * 1024 * 1024, chunked));
        let status = status_when(&mock, |s| s.last_error.is_some()).await;
        let error = status.last_error.expect("an error");
        assert!(
            error.contains("larger than 64 KiB"),
            "chunked {chunked}: {error}"
        );
        // What the client took before it hung up, socket buffers included.
        assert!(
            mock.state.padding_written() < 16 * 1024 * 1024,
            "chunked {chunked}: {} bytes read",
            mock.state.padding_written()
        );
    }
}

/// What the gateway writes reaches the status, the console and the logs bounded and with its
/// control characters escaped: an `error` frame of 8 MiB, a close reason with a newline and an
/// ANSI escape that would forge a log line.
#[tokio::test]
async fn a_gateways_words_are_bounded_and_escaped() {
    let mock = OhipMock::start().await;
    mock.state.knobs().error_payload = Some(8 * 1024 * 1024);
    let status = status_when(&mock, |s| matches!(s.state, State::Stopped { .. })).await;
    let State::Stopped { reason, code } = &status.state else {
        unreachable!()
    };
    assert_eq!(code, "4400");
    assert!(reason.len() < 1024, "{} bytes", reason.len());
    assert!(reason.contains("bytes in all"), "{reason}");

    let mock = OhipMock::start().await;
    {
        let mut knobs = mock.state.knobs();
        knobs.refuse_subscription = Some(4403);
        knobs.refusal_reason = "bye\n2026-12-06T00:00:00Z ERROR forged line\u{1b}[31m".to_owned();
    }
    let status = status_when(&mock, |s| matches!(s.state, State::Stopped { .. })).await;
    let State::Stopped { reason, .. } = &status.state else {
        unreachable!()
    };
    assert!(!reason.chars().any(char::is_control), "{reason:?}");
    assert!(reason.contains("bye\\n2026"), "{reason}");
    let last = status.last_error.expect("the last disconnect");
    assert!(!last.chars().any(char::is_control), "{last:?}");
}

/// A plain-HTTP gateway would carry the client secret and the tokens in clear: refused unless
/// explicitly allowed for a local test gateway.
#[test]
fn a_plain_http_gateway_needs_an_explicit_allowance() {
    let source = |extra: &str| {
        format!(
            "{SERVER}[[sources]]\nname = \"opera\"\nprovider = \"oracle_ohip_stream\"\n\
             gateway_url = \"http://ohip.example.com\"\napp_key = \"k\"\nclient_id = \"c\"\n\
             client_secret = \"s\"\nchain_code = \"CHAIN1\"\n{extra}"
        )
    };
    let errors = porter::testing::config::Config::parse(
        &source(""),
        porter::testing::config::ConfigOrigin::File("t.toml".into()),
        &|_| None,
    )
    .expect_err("refused");
    let text = errors.to_string();
    assert!(
        text.contains("gateway_url: must be https://") && text.contains("insecure_allow_http"),
        "{text}"
    );
    let config = config_from(&source("insecure_allow_http = true"), &[]);
    assert!(config.streams[0].insecure_http);
}

/// After OHIP closed with 4403, `porter ohip status` says the stream stopped for good, with the
/// code and the reason, and exits 1 (before: "state: connecting (connected: false)", exit 0).
#[test]
fn ohip_status_says_stopped_and_fails_after_a_4403() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mock = runtime.block_on(OhipMock::start());
    mock.state.knobs().refuse_subscription = Some(4403);
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = redis_config(dir.path(), &redis, &mock);
    let config_arg = config.to_str().expect("utf-8");
    let _served = Served::start(dir.path(), &["--config", config_arg]);
    let started = Instant::now();
    let (ok, status) = loop {
        let output = common::served::porter()
            .args(["ohip", "status", "--config", config_arg])
            .output()
            .expect("porter ohip runs");
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        if text.contains("state: stopped") || started.elapsed() > Duration::from_secs(20) {
            break (output.status.success(), text);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.contains("state: stopped (code 4403)"), "{status}");
    assert!(status.contains("approved"), "{status}");
    assert!(!ok, "exits non-zero: {status}");
}
