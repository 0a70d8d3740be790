//! The real `porter` binary: `check-config`, `serve` with the embedded default and `send`
//! against it, graceful shutdown with a request in flight, and what the log lines leave out.

mod common;

use std::io::{BufRead, BufReader, Read};

use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::repo_path;
use common::served::{Served, signal};

/// Every `${NAME}` porter.example.toml references.
const EXAMPLE_ENV: &[(&str, &str)] = &[
    ("META_APP_SECRET", "x"),
    ("META_VERIFY_TOKEN", "y"),
    ("TWILIO_AUTH_TOKEN", "z"),
    ("ORACLE_WEBHOOK_SECRET", "whsec_o"),
    ("CHANNEL_MANAGER_WHSEC", "whsec_c2VjcmV0"),
    ("STRIPE_WEBHOOK_SECRET", "whsec_s"),
    ("HOUSEKEEPING_APP_SECRET", "h"),
    ("MEWS_URL_TOKEN", "mews-token-0123456789"),
    ("CLOUDBEDS_URL_TOKEN", "cloudbeds-token-0123456789"),
    ("PMS_WEBHOOK_SECRET", "p"),
    ("PMS_WEB_API_SECRET", "w"),
    ("ROOSTSYNC_SECRET", "r"),
    ("RESERVEKIT_URL_TOKEN", "reservekit-token-0123456789"),
    ("PORTER_ADMIN_TOKEN", "admin-token-0123456789abcdef"),
];

fn porter() -> Command {
    Command::new(env!("CARGO_BIN_EXE_porter"))
}

fn send(args: &[&str]) -> (bool, String) {
    let output = porter()
        .arg("send")
        .args(args)
        .current_dir(repo_path(""))
        .output()
        .expect("porter send runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
fn check_config_accepts_the_example_and_prints_the_routes() {
    let output = porter()
        .args(["check-config", "--config"])
        .arg(repo_path("porter.example.toml"))
        .envs(EXAMPLE_ENV.iter().copied())
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for route in [
        "/webhooks/whatsapp",
        "/webhooks/sms",
        "/webhooks/sms/status",
        "/healthz",
    ] {
        assert!(stdout.contains(route), "{route} missing from:\n{stdout}");
    }
}

#[test]
fn check_config_accepts_the_compose_configuration() {
    let output = porter()
        .args(["check-config", "--config"])
        .arg(repo_path("deploy/porter.compose.toml"))
        .env("PORTER_PUBLIC_URL", "https://hooks.example.com")
        .env("META_APP_SECRET", "x")
        .env("META_VERIFY_TOKEN", "y")
        .env("TWILIO_AUTH_TOKEN", "z")
        .env("PORTER_ADMIN_TOKEN", "admin-token-0123456789abcdef")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("redis store"), "{stdout}");
}

#[test]
fn check_config_lists_every_problem_and_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"
[server]
request_timeout = "forever"
[[sources]]
name = "sms"
provider = "twilio"
path = "/webhooks/sms"
secrets = ["${UNSET_TWILIO_TOKEN_FOR_TEST}"]
public_url = "https://x.example"
colour = "blue"
"#,
    )
    .expect("write");
    let output = porter()
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("3 problems"), "{stderr}");
    assert!(
        stderr.contains(
            "sources[0] (sms).secrets[0]: environment variable `UNSET_TWILIO_TOKEN_FOR_TEST` is not set"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("server.request_timeout"), "{stderr}");
    assert!(
        stderr.contains("sources[0] (sms).colour: not used by provider `twilio`"),
        "{stderr}"
    );
}

#[test]
fn the_embedded_default_serves_what_porter_send_signs() {
    let dir = tempfile::tempdir().expect("an empty working directory: no porter.toml");
    let server = Served::start(dir.path(), &[]);
    let url = server.url();

    let batch = repo_path("fixtures/meta/batch_ten_messages/body");
    let batch = batch.to_str().expect("utf-8 path");
    let (ok, answer) = send(&["whatsapp", batch, "--url", &url]);
    assert!(ok, "{answer}");
    assert!(answer.contains("HTTP 200 OK"), "{answer}");
    assert!(
        answer.contains(r#"{"status":"accepted","events":10}"#),
        "{answer}"
    );

    let sms = repo_path("fixtures/twilio/incoming_sms/body");
    let (ok, answer) = send(&["sms", sms.to_str().expect("utf-8"), "--url", &url]);
    assert!(ok, "{answer}");
    assert!(answer.contains("<Response></Response>"), "{answer}");

    let status = repo_path("fixtures/twilio/status_delivered/body");
    let (ok, answer) = send(&[
        "sms",
        status.to_str().expect("utf-8"),
        "--url",
        &url,
        "--path",
        "/webhooks/sms/status",
    ]);
    assert!(ok, "{answer}");

    let (ok, answer) = send(&["whatsapp", batch, "--url", &url]);
    assert!(ok, "{answer}");
    assert!(answer.contains("porter-duplicate: true"), "{answer}");

    let (stopped_cleanly, stdout, _) = server.terminate();
    assert!(stopped_cleanly);
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("every stdout line is an event"))
        .collect();
    assert_eq!(
        events.len(),
        12,
        "10 WhatsApp messages, 1 SMS, 1 status; the duplicate adds none"
    );
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(
        types.iter().filter(|t| **t == "message.received").count(),
        11
    );
    assert_eq!(
        types
            .iter()
            .filter(|t| **t == "message.status_changed")
            .count(),
        1
    );
}

#[test]
fn forged_and_tampered_requests_are_refused_by_the_running_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Served::start(dir.path(), &[]);
    let tampered = repo_path("fixtures/meta/flipped_byte");
    // Send the tampered body with the signature of the original: porter send signs what it
    // is given, so build the request by hand from the fixture.
    let request = std::fs::read_to_string(tampered.join("request")).expect("request");
    let signature = request
        .lines()
        .find_map(|l| l.strip_prefix("X-Hub-Signature-256: "))
        .expect("signature");
    let body = std::fs::read(tampered.join("body")).expect("body");
    let response = common::served::post(
        server.addr,
        "/webhooks/whatsapp",
        &[("X-Hub-Signature-256", signature)],
        &body,
    );
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
    assert!(
        response.ends_with(r#"{"error":"invalid_signature"}"#),
        "{response}"
    );

    // Signed with the fixtures' secret, not this server's.
    let text = repo_path("fixtures/meta/text_message");
    let (ok, answer) = send(&[
        "whatsapp",
        text.join("body").to_str().expect("utf-8"),
        "--url",
        &server.url(),
        "--config",
        repo_path("fixtures/porter.toml").to_str().expect("utf-8"),
    ]);
    assert!(!ok);
    assert!(answer.contains("401"), "{answer}");
    let (stopped, stdout, _) = server.terminate();
    assert!(stopped);
    assert!(
        stdout.is_empty(),
        "nothing forged reached the store: {stdout}"
    );
}

#[test]
fn sigterm_drains_a_request_in_flight() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Served::start(dir.path(), &[]);
    let body = std::fs::read(repo_path("fixtures/meta/text_message/body")).expect("body");
    let signature = porter_providers::meta::signature(
        &porter_providers::Secret::new("porter-dev-meta-app-secret"),
        &body,
    );
    let mut stream = std::net::TcpStream::connect(server.addr).expect("connect");
    let head = format!(
        "POST /webhooks/whatsapp HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\nX-Hub-Signature-256: {signature}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("write head");
    stream
        .write_all(&body[..10])
        .expect("write part of the body");
    // The request is in flight once porter has reserved its body's bytes.
    let admin = server
        .admin_addr
        .expect("the embedded default's admin listener");
    let token = server
        .login_url
        .as_deref()
        .and_then(|url| url.split("token=").nth(1))
        .expect("the printed login URL")
        .to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !common::served::metric(admin, &token, "porter_buffered_bytes")
        .is_some_and(|bytes| bytes > 0.0)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the request never began"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    signal(&server.child, "TERM");
    // Draining: the listener has stopped accepting, and the request is still in flight.
    server.wait_for_log("SIGTERM received", 1, Duration::from_secs(10));
    stream
        .write_all(&body[10..])
        .expect("the connection is still open after SIGTERM");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    let (stopped_cleanly, stdout, _) = server.terminate();
    assert!(stopped_cleanly);
    assert_eq!(
        stdout.lines().count(),
        1,
        "the drained request's event was stored"
    );
}

#[test]
fn log_lines_carry_outcomes_but_no_secrets_bodies_or_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("porter.toml");
    std::fs::write(
        &config,
        r#"
[server]
public_url = "https://hooks.example.com"
[[sources]]
name = "whatsapp"
provider = "meta"
path = "/webhooks/whatsapp"
secrets = ["log-test-app-secret-0123"]
verify_token = "log-test-verify-token-4567"
"#,
    )
    .expect("write");
    let server = Served::start(dir.path(), &["--config", config.to_str().expect("utf-8")]);
    let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"messages","value":{"messages":[{"from":"4915100000000","id":"wamid.LOG","type":"text","text":{"body":"my room code is 8842"}}]}}]}]}"#;
    let signature = porter_providers::meta::signature(
        &porter_providers::Secret::new("log-test-app-secret-0123"),
        body,
    );
    let accepted = common::served::post(
        server.addr,
        "/webhooks/whatsapp",
        &[("X-Hub-Signature-256", &signature)],
        body,
    );
    assert!(accepted.starts_with("HTTP/1.1 200"), "{accepted}");
    let forged = common::served::post(
        server.addr,
        "/webhooks/whatsapp",
        &[("X-Hub-Signature-256", "sha256=00")],
        body,
    );
    assert!(forged.starts_with("HTTP/1.1 401"), "{forged}");
    let handshake = common::served::post(
        server.addr,
        "/webhooks/whatsapp?hub.verify_token=log-test-verify-token-4567",
        &[],
        b"",
    );
    assert!(
        handshake.starts_with("HTTP/1.1 401"),
        "a POST is not a handshake: {handshake}"
    );

    let (_, _, stderr) = server.terminate();
    assert!(stderr.contains(r#""outcome":"accepted""#), "{stderr}");
    assert!(
        stderr.contains(r#""reason":"malformed_signature""#),
        "{stderr}"
    );
    for secret in [
        "log-test-app-secret-0123",
        "log-test-verify-token-4567",
        "my room code",
        "4915100000000",
        "wamid.LOG",
    ] {
        assert!(
            !stderr.contains(secret),
            "`{secret}` leaked into the log:\n{stderr}"
        );
    }
}

#[test]
fn events_tail_prints_what_the_redis_store_holds_and_follows_new_events() {
    let redis = common::redis_server::RedisServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("porter.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[server]
public_url = "http://127.0.0.1:8080"
[store]
kind = "redis"
url = "{}"
[[sources]]
name = "whatsapp"
provider = "meta"
path = "/webhooks/whatsapp"
secrets = ["tail-test-secret"]
"#,
            redis.url()
        ),
    )
    .expect("write");
    let config = config.to_str().expect("utf-8").to_owned();
    let server = Served::start(dir.path(), &["--config", &config]);
    let (ok, answer) = send(&[
        "whatsapp",
        repo_path("fixtures/meta/batch_ten_messages/body")
            .to_str()
            .expect("utf-8"),
        "--url",
        &server.url(),
        "--config",
        &config,
    ]);
    assert!(ok, "{answer}");

    let tail = porter()
        .args(["events", "tail", "--count", "3", "--config", &config])
        .output()
        .expect("tail runs");
    assert!(
        tail.status.success(),
        "{}",
        String::from_utf8_lossy(&tail.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&tail.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let texts: Vec<&str> = lines
        .iter()
        .filter_map(|e| e["data"]["text"].as_str())
        .collect();
    assert_eq!(
        texts,
        ["Message 8 of 10", "Message 9 of 10", "Message 10 of 10"]
    );

    let mut follower = porter()
        .args([
            "events", "tail", "--count", "0", "--follow", "--config", &config,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tail --follow runs");
    // Once it says it follows, it has its starting point: what is sent next is new.
    let stderr = follower.stderr.take().expect("stderr");
    let following = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains("following new events"));
    assert!(following, "tail --follow says when it follows");
    let (ok, answer) = send(&[
        "whatsapp",
        repo_path("fixtures/meta/text_message/body")
            .to_str()
            .expect("utf-8"),
        "--url",
        &server.url(),
        "--config",
        &config,
    ]);
    assert!(ok, "{answer}");
    let stdout = follower.stdout.take().expect("stdout");
    let (line_sender, line) = mpsc::channel();
    std::thread::spawn(move || {
        let mut first = String::new();
        let _ = BufReader::new(stdout).read_line(&mut first);
        let _ = line_sender.send(first);
    });
    let first = line
        .recv_timeout(Duration::from_secs(10))
        .expect("a followed event");
    let _ = follower.kill();
    let _ = follower.wait();
    let event: serde_json::Value = serde_json::from_str(&first).expect("JSON");
    assert_eq!(
        event["data"]["text"],
        "Hello, could I get extra towels in room 512?"
    );
    let (_, _, stderr) = server.terminate();
    assert!(
        stderr.contains("Redis persistence is OFF"),
        "porter warns that this Redis keeps nothing: {stderr}"
    );
}

#[test]
fn events_tail_reads_the_embedded_defaults_local_store_while_it_serves_and_after() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nothing = porter()
        .args(["events", "tail"])
        .current_dir(dir.path())
        .output()
        .expect("runs");
    assert_eq!(nothing.status.code(), Some(1), "no store here yet");
    assert!(
        String::from_utf8_lossy(&nothing.stderr).contains("porter-data does not exist"),
        "{}",
        String::from_utf8_lossy(&nothing.stderr)
    );
    assert!(
        !dir.path().join("porter-data").exists(),
        "reading creates nothing"
    );

    let server = Served::start(dir.path(), &[]);
    let sent = porter()
        .args([
            "send",
            "whatsapp",
            "fixtures/meta/text_message/body",
            "--url",
        ])
        .arg(server.url())
        .current_dir(repo_path(""))
        .output()
        .expect("porter send runs");
    assert!(String::from_utf8_lossy(&sent.stdout).starts_with("HTTP 200"));
    let tail = || {
        let output = porter()
            .args(["events", "tail", "--count", "5"])
            .current_dir(dir.path())
            .output()
            .expect("runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8")
    };
    let while_serving = tail();
    assert_eq!(while_serving.lines().count(), 1, "{while_serving}");
    assert!(
        while_serving.contains("\"type\":\"message.received\""),
        "{while_serving}"
    );
    let (stopped, _, _) = server.terminate();
    assert!(stopped);
    assert_eq!(tail(), while_serving, "the same event after porter stopped");
}

#[test]
fn an_insecure_pms_source_is_warned_about_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("porter.toml");
    std::fs::write(
        &config,
        r#"
[[sources]]
name = "legacy-pms"
provider = "pms"
path = "/webhooks/pms"
insecure_allow_unsigned = true
"#,
    )
    .expect("write");
    let server = Served::start(dir.path(), &["--config", config.to_str().expect("utf-8")]);
    let accepted = common::served::post(
        server.addr,
        "/webhooks/pms/guests",
        &[],
        br#"{"externalId":"g1"}"#,
    );
    assert!(accepted.starts_with("HTTP/1.1 200"), "{accepted}");
    let (_, _, stderr) = server.terminate();
    assert!(stderr.contains("INSECURE"), "{stderr}");
    assert!(stderr.contains("legacy-pms"), "{stderr}");
}

/// One HTTP/1.1 request on `stream` (kept alive unless porter says otherwise); the answer's
/// head, lowercased.
fn exchange(stream: &mut std::net::TcpStream, request: &[u8]) -> String {
    use std::io::Write;
    stream.write_all(request).expect("write");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut head = String::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("read");
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().expect("length");
        }
        if line == "\r\n" || line.is_empty() {
            break;
        }
        head.push_str(&line.to_ascii_lowercase());
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("body");
    head
}

#[test]
fn with_a_drain_delay_porter_serves_on_unready_and_closes_each_connection_after_its_answer() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("porter.toml");
    std::fs::write(
        &config,
        r#"
[server]
drain_delay = "3s"
[store]
kind = "memory"
[[sources]]
name = "whatsapp"
provider = "meta"
path = "/webhooks/whatsapp"
secrets = ["drain-test-app-secret"]
"#,
    )
    .expect("write");
    let server = Served::start(dir.path(), &["--config", config.to_str().expect("utf-8")]);
    let signed = |id: &str| {
        let body = format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W","changes":[{{"field":"messages","value":{{"messages":[{{"from":"1","id":"{id}","type":"text","text":{{"body":"hi"}}}}]}}}}]}}]}}"#
        );
        let signature = porter_providers::meta::signature(
            &porter_providers::Secret::new("drain-test-app-secret"),
            body.as_bytes(),
        );
        format!(
            "POST /webhooks/whatsapp HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nX-Hub-Signature-256: {signature}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    let readyz = b"GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n";
    let mut kept = std::net::TcpStream::connect(server.addr).expect("connect");
    let before = exchange(&mut kept, &signed("wamid.BEFORE"));
    assert!(before.starts_with("http/1.1 200"), "{before}");
    assert!(!before.contains("connection: close"), "{before}");

    signal(&server.child, "TERM");
    server.wait_for_log("draining: /readyz answers 503", 1, Duration::from_secs(10));
    // The kept-alive connection gets its answer, then is closed.
    let during = exchange(&mut kept, &signed("wamid.DURING"));
    assert!(during.starts_with("http/1.1 200"), "{during}");
    assert!(during.contains("connection: close"), "{during}");
    let mut rest = Vec::new();
    kept.read_to_end(&mut rest)
        .expect("porter closes the connection");
    assert!(rest.is_empty());
    // New connections are still served, and told porter is not ready.
    let mut fresh = std::net::TcpStream::connect(server.addr).expect("still accepting");
    let unready = exchange(&mut fresh, readyz);
    assert!(unready.starts_with("http/1.1 503"), "{unready}");
    let mut fresh = std::net::TcpStream::connect(server.addr).expect("still accepting");
    let late = exchange(&mut fresh, &signed("wamid.LATE"));
    assert!(late.starts_with("http/1.1 200"), "{late}");
    drop(fresh);
    let _ = kept.flush();

    let (stopped_cleanly, stdout, _) = server.terminate();
    assert!(stopped_cleanly);
    assert_eq!(stdout.lines().count(), 3, "every answered event was stored");
}

/// A command run beside `porter serve`, as a user would: in `dir`, with nothing of the admin
/// listener's in the environment. Returns (success, stdout, stderr).
fn beside(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let output = porter()
        .args(args)
        .current_dir(dir)
        .env_remove("PORTER_ADMIN_TOKEN")
        .output()
        .expect("porter runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The embedded default's admin token is random per start and its admin listener here is on
/// a random port: `porter erase` and `porter dlq replay` find both in the local store's
/// `admin.json` (0600, the running process's), and print neither.
#[test]
fn commands_that_change_state_find_the_embedded_defaults_admin_listener_on_their_own() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().expect("an empty working directory: no porter.toml");
    let server = Served::start(dir.path(), &[]);
    let token = server
        .login_url
        .as_deref()
        .and_then(|url| url.split_once("token="))
        .map(|(_, token)| token.to_owned())
        .expect("the embedded default prints its login URL");
    assert!(token.len() >= 24, "a real token");
    let file = dir.path().join("porter-data/admin.json");
    let mode = std::fs::metadata(&file)
        .expect("admin.json")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "the file holds the admin token");
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).expect("read")).expect("JSON");
    assert_eq!(written["pid"], server.child.id());
    assert_eq!(
        written["admin"],
        server.admin_addr.expect("admin").to_string(),
        "the bound address, not the configured one"
    );
    assert_eq!(written["token"], token.as_str());

    let text = repo_path("fixtures/meta/text_message/body");
    let (ok, answer) = send(&[
        "whatsapp",
        text.to_str().expect("utf-8"),
        "--url",
        &server.url(),
    ]);
    assert!(ok, "{answer}");

    let mut outputs = Vec::new();
    let (ok, out, err) = beside(
        dir.path(),
        &["erase", "--phone", "+49 151 12345678", "--dry-run"],
    );
    assert!(ok, "{out}{err}");
    assert!(out.starts_with("would erase phone pii_"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["events", "1"]),
        "the stored message holds the number: {out}"
    );
    outputs.push(out + &err);
    let (ok, out, err) = beside(dir.path(), &["dlq", "replay", "--all"]);
    assert!(ok, "{out}{err}");
    assert_eq!(out, "replayed 0 dead letters\n", "{err}");
    outputs.push(out + &err);
    let (ok, out, err) = beside(dir.path(), &["dlq", "replay", "no-such-letter"]);
    assert!(!ok);
    assert!(
        err.contains("no dead letter no-such-letter") && err.contains("porter dlq list"),
        "{err}"
    );
    outputs.push(out + &err);
    // An explicit token wins over the file's: a wrong one is refused, and the message says
    // what to set.
    let wrong = porter()
        .args(["dlq", "replay", "--all"])
        .current_dir(dir.path())
        .env("PORTER_ADMIN_TOKEN", "not-the-token-of-this-porter-0123")
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(!wrong.status.success());
    assert!(
        err.contains("refused the token") && err.contains("PORTER_ADMIN_TOKEN"),
        "{err}"
    );
    assert!(!err.contains("not-the-token-of-this-porter-0123"), "{err}");

    let (stopped, _, log) = server.terminate();
    assert!(stopped);
    assert!(!file.exists(), "a clean stop removes admin.json");
    for output in &outputs {
        assert!(!output.contains(&token), "the token was printed: {output}");
    }
    assert!(!log.contains(&token), "the token was logged: {log}");
}

/// After a SIGKILL, `admin.json` is left behind; no process holds the store's lock, so the
/// commands work on the store itself, and say what they found.
#[test]
fn a_stale_admin_file_after_sigkill_is_recognised_and_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Served::start(dir.path(), &[]);
    let pid = server.child.id();
    signal(&server.child, "KILL");
    common::served::wait(&mut server.child, Duration::from_secs(10)).expect("killed");
    let file = dir.path().join("porter-data/admin.json");
    assert!(file.exists(), "a killed porter cannot clean up");

    let (ok, out, err) = beside(dir.path(), &["dlq", "replay", "--all"]);
    assert!(ok, "{out}{err}");
    assert!(
        err.contains(&format!(
            "removed porter-data/admin.json, left by porter serve pid {pid}, which did not stop cleanly"
        )),
        "{err}"
    );
    assert_eq!(out, "replayed 0 dead letters\n");
    assert!(!file.exists());
    let (ok, out, err) = beside(
        dir.path(),
        &["erase", "--phone", "+49 151 12345678", "--dry-run"],
    );
    assert!(ok && out.starts_with("would erase"), "{out}{err}");
    assert!(!err.contains("removed"), "nothing stale any more: {err}");
}

/// A local store served with an admin listener elsewhere than `[admin] listen`, a destination
/// that never answers, and no `[privacy] key`: `porter dlq replay` goes through the admin API
/// to the address porter wrote, and `porter erase` says what to add.
#[test]
fn dlq_replay_goes_through_the_admin_api_and_erase_names_the_missing_privacy_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dead_port = common::redis_server::free_port();
    std::fs::write(
        dir.path().join("porter.toml"),
        format!(
            r#"
[store]
kind = "local"
path = "data"

[admin]
listen = "127.0.0.1:1"
token = "replay-test-admin-token-0123456789"

[[sources]]
name = "whatsapp"
provider = "meta"
path = "/webhooks/whatsapp"
secrets = ["replay-test-app-secret"]

[[destinations]]
name = "frontdesk"
kind = "http"
url = "http://127.0.0.1:{dead_port}/hook"
secret = "whsec_cmVwbGF5LXRlc3QtZGVzdGluYXRpb24ta2V5"
retry = ["50ms"]
"#
        ),
    )
    .expect("write");
    let server = Served::start(dir.path(), &[]);
    let body = std::fs::read(repo_path("fixtures/meta/text_message/body")).expect("body");
    let signature = porter_providers::meta::signature(
        &porter_providers::Secret::new("replay-test-app-secret"),
        &body,
    );
    let answer = common::served::post(
        server.addr,
        "/webhooks/whatsapp",
        &[("X-Hub-Signature-256", &signature)],
        &body,
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    server.wait_for_log("dead-lettered", 1, Duration::from_secs(20));

    let (ok, listed, err) = beside(dir.path(), &["dlq", "list"]);
    assert!(ok, "{err}");
    let id = listed
        .split_whitespace()
        .next()
        .expect("one dead letter")
        .to_owned();
    let (ok, out, err) = beside(dir.path(), &["dlq", "replay", &id]);
    assert!(ok, "{out}{err}");
    assert_eq!(out, format!("replayed {id} to frontdesk\n"));
    // Replayed, it fails again and is dead-lettered a second time.
    server.wait_for_log("dead-lettered", 2, Duration::from_secs(20));
    let (ok, out, err) = beside(dir.path(), &["dlq", "replay", "--all"]);
    assert!(ok, "{out}{err}");
    assert_eq!(out, "replayed 1 dead letters\n");

    let (ok, out, err) = beside(dir.path(), &["erase", "--phone", "+49 151 12345678"]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("erasure needs [privacy] key")
            && err.contains("[privacy]\n  key = \"${PORTER_PRIVACY_KEY}\"")
            && err.contains("restart `porter serve`"),
        "{err}"
    );
    assert!(!err.contains("409"), "the meaning, not the status: {err}");
    let (stopped, _, _) = server.terminate();
    assert!(stopped);
    assert!(!dir.path().join("data/admin.json").exists());

    // Nothing serves: `porter reprocess` (always a client of the admin API) says to start it.
    std::fs::write(
        dir.path().join("archive.toml"),
        std::fs::read_to_string(dir.path().join("porter.toml")).expect("read")
            + "\n[archive]\nretention = \"1h\"\n",
    )
    .expect("write");
    let (ok, _, err) = beside(
        dir.path(),
        &[
            "reprocess",
            "--source",
            "whatsapp",
            "--since",
            "1h",
            "--config",
            "archive.toml",
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("no `porter serve` holds data")
            && err.contains("porter serve --config archive.toml"),
        "{err}"
    );
}

/// A store with no directory to find porter in (memory, Redis) and a configuration without
/// `[admin]`: the message names the flags and the table.
#[test]
fn without_admin_or_a_directory_the_commands_say_what_to_pass() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("porter.toml"),
        r#"
[store]
kind = "memory"
[privacy]
key = "a-privacy-key-of-at-least-32-bytes-0123"
[[sources]]
name = "whatsapp"
provider = "meta"
path = "/webhooks/whatsapp"
secrets = ["s"]
"#,
    )
    .expect("write");
    for args in [
        &["erase", "--phone", "+49 151 12345678"][..],
        &["dlq", "replay", "--all"][..],
    ] {
        let (ok, _, err) = beside(dir.path(), args);
        assert!(!ok, "{args:?}");
        assert!(
            err.contains("has no [admin] table")
                && err.contains("--admin ADDR")
                && err.contains("PORTER_ADMIN_TOKEN")
                && err.contains("add [admin] (listen, token)"),
            "{args:?}: {err}"
        );
    }
}
