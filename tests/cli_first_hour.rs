//! What a new user meets in the first hour, through the real binary: delivery failures in the
//! log, the start-up hint, `porter send`'s answers and its dry run, `check-config`'s output.

mod common;

use std::process::Command;

use common::repo_path;
use common::served::Served;

fn porter() -> Command {
    Command::new(env!("CARGO_BIN_EXE_porter"))
}

fn free_port() -> u16 {
    common::redis_server::free_port()
}

/// A configuration with one Meta source and an HTTP destination on a port nothing listens on.
fn config_with_dead_destination(dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    let path = dir.join("porter.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[store]
kind = "memory"
print_events = false

[[sources]]
name = "whatsapp"
provider = "meta"
path = "/webhooks/whatsapp"
secrets = ["first-hour-secret"]

[[destinations]]
name = "frontdesk"
kind = "http"
url = "http://user:pa55word@127.0.0.1:{port}/hook?token=s3cr3t"
secret = "whsec_Zmlyc3QtaG91ci1kZXN0aW5hdGlvbi1rZXk="
retry = ["100ms", "100ms"]
"#
        ),
    )
    .expect("write");
    path
}

#[test]
fn failed_deliveries_are_logged_with_their_cause_and_dead_letters_as_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let config = config_with_dead_destination(dir.path(), port);
    // The default log level: no RUST_LOG.
    let server = Served::start(dir.path(), &["--config", config.to_str().expect("utf-8")]);
    let body = std::fs::read(repo_path("fixtures/meta/text_message/body")).expect("body");
    let signature = porter_providers::meta::signature(
        &porter_providers::Secret::new("first-hour-secret"),
        &body,
    );
    let answer = common::served::post(
        server.addr,
        "/webhooks/whatsapp",
        &[("X-Hub-Signature-256", &signature)],
        &body,
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Two failed attempts, then the third dead-letters the event.
    server.wait_for_log("dead-lettered", 1, std::time::Duration::from_secs(20));
    let (_, _, stderr) = server.terminate();
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let failed: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["message"] == "delivery attempt failed; retrying")
        .collect();
    assert_eq!(failed.len(), 2, "{stderr}");
    let first = failed[0];
    assert_eq!(first["level"], "WARN");
    assert_eq!(first["destination"], "frontdesk");
    assert_eq!(first["attempt"], 1);
    assert!(
        first["event"]
            .as_str()
            .is_some_and(|e| e.starts_with("evt_"))
    );
    assert!(first["next_attempt"].as_str().is_some(), "{first}");
    let cause = first["cause"].as_str().unwrap_or_default();
    assert!(
        cause.starts_with(&format!("connection failed (127.0.0.1:{port}): ")),
        "{cause}"
    );
    assert!(cause.to_lowercase().contains("refused"), "{cause}");
    let dead: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("dead-lettered"))
        })
        .collect();
    assert_eq!(dead.len(), 1, "{stderr}");
    assert_eq!(dead[0]["level"], "ERROR");
    assert_eq!(dead[0]["attempts"], 3);
    assert!(
        !stderr.contains("pa55word") && !stderr.contains("s3cr3t"),
        "the destination's credentials stay out of the log: {stderr}"
    );
}

/// The rows of the README's table of test webhooks: (source, file, --path).
fn readme_send_table() -> Vec<(String, String, Option<String>)> {
    let readme = std::fs::read_to_string(repo_path("README.md")).expect("README");
    let table = readme
        .split("| source | a file that works | `--path` |")
        .nth(1)
        .expect("the README has the table of test webhooks");
    table
        .lines()
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let unquote = |cell: &str| cell.trim_matches('`').to_owned();
            let path = cells[3]
                .split_whitespace()
                .next()
                .map(|p| p.trim_matches('`').to_owned());
            (unquote(cells[1]), unquote(cells[2]), path)
        })
        .collect()
}

#[test]
fn every_test_webhook_of_the_readme_is_accepted_by_the_embedded_default() {
    let rows = readme_send_table();
    let embedded = porter::testing::config::Config::parse(
        porter::testing::config::EMBEDDED_DEFAULT,
        porter::testing::config::ConfigOrigin::EmbeddedDefault,
        &|_| None,
    )
    .expect("embedded default");
    for source in &embedded.sources {
        assert!(
            rows.iter().any(|(name, _, _)| name == source.source.name()),
            "the README's table has no row for `{}`",
            source.source.name()
        );
    }
    let dir = tempfile::tempdir().expect("no porter.toml here");
    let server = Served::start(dir.path(), &[]);
    // Without a scheme: `--url` takes the address as `serve` prints it.
    let address = server.addr.to_string();
    for (source, file, path) in &rows {
        let mut command = porter();
        command
            .args(["send", source, file, "--url", &address])
            .current_dir(repo_path(""));
        if let Some(path) = path {
            command.args(["--path", path]);
        }
        let output = command.output().expect("porter send runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.starts_with("HTTP 200"),
            "{source} {file}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        // Every header of the answer is shown.
        assert!(stdout.contains("content-length: "), "{stdout}");
    }
    let (stopped, printed, _) = server.terminate();
    assert!(stopped);
    // Each file lands typed. The only `unknown` events are those of vendor events porter's
    // providers do not model and no `event_types` entry can type: a Mews resource block, an
    // Adyen capture, a Slack direct message (its `event` is no canonical message: no message
    // id, no channel porter knows) and a Zoom meeting (no canonical type means one).
    let unmodelled = [("mews", 1), ("adyen", 1), ("slack", 1), ("zoom", 1)];
    let events: Vec<serde_json::Value> = printed
        .lines()
        .map(|line| serde_json::from_str(line).expect("every stdout line is an event"))
        .collect();
    let of = |source: &str| -> Vec<&str> {
        let source = format!("/sources/{source}");
        events
            .iter()
            .filter(|e| e["source"] == source.as_str())
            .filter_map(|e| e["type"].as_str())
            .collect()
    };
    for (source, _, _) in &rows {
        let types = of(source);
        assert!(!types.is_empty(), "{source}: no event printed");
        let unknown = types.iter().filter(|t| **t == "unknown").count();
        let expected = unmodelled
            .iter()
            .find(|(name, _)| name == source)
            .map_or(0, |(_, n)| *n);
        assert_eq!(
            unknown, expected,
            "{source}: {types:?} (an `unknown` the embedded default could map?)"
        );
    }
    // The generic schemes, through the embedded default's `event_types`.
    for (source, typed) in [
        ("standard", "reservation.created"),
        ("stripe", "payment.received"),
        ("hmac", "housekeeping.status_changed"),
    ] {
        assert_eq!(of(source), [typed], "{source}");
    }
}

#[test]
fn a_dry_run_prints_a_curl_command_that_sends_the_same_request() {
    let dir = tempfile::tempdir().expect("no porter.toml here");
    let server = Served::start(dir.path(), &[]);
    for (source, file) in [
        ("sms", "fixtures/twilio/incoming_sms/body"),
        ("stripe", "fixtures/stripe/payment_intent_succeeded/body"),
    ] {
        let output = porter()
            .args(["send", source, file, "--url", &server.url(), "--dry-run"])
            .current_dir(repo_path(""))
            .output()
            .expect("porter send runs");
        let command = String::from_utf8(output.stdout).expect("utf-8");
        assert!(command.starts_with("curl "), "{command}");
        let sent = Command::new("sh")
            .args(["-c", command.trim()])
            .current_dir(repo_path(""))
            .output()
            .expect("curl runs (scripts/test installs it)");
        let answer = String::from_utf8_lossy(&sent.stdout);
        assert!(answer.starts_with("HTTP/1.1 200"), "{source}: {answer}");
    }
    let (_, stdout, _) = server.terminate();
    assert_eq!(stdout.lines().count(), 2, "both were stored: {stdout}");
}

#[test]
fn send_says_where_it_tried_and_what_to_do_when_nothing_listens() {
    let port = free_port();
    let output = porter()
        .args([
            "send",
            "whatsapp",
            "fixtures/meta/text_message/body",
            "--url",
            &format!("127.0.0.1:{port}"),
        ])
        .current_dir(repo_path(""))
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&format!("cannot connect to http://127.0.0.1:{port}"))
            && stderr.contains("is `porter serve` running there?")
            && stderr.contains("--url"),
        "{stderr}"
    );
    let bad = porter()
        .args([
            "send",
            "whatsapp",
            "fixtures/meta/text_message/body",
            "--url",
            "ftp://x",
        ])
        .current_dir(repo_path(""))
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("is not where porter listens"), "{stderr}");
    assert!(!stderr.contains("builder error"), "{stderr}");
    let oracle = porter()
        .args([
            "send",
            "oracle",
            "fixtures/oracle_ohip/guest_checkout/body",
            "--dry-run",
        ])
        .current_dir(repo_path(""))
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&oracle.stderr);
    assert!(stderr.contains("choose one with --path"), "{stderr}");
}

#[test]
fn the_start_up_hint_sends_to_where_porter_listens() {
    let dir = tempfile::tempdir().expect("no porter.toml here");
    let port = free_port();
    let mut child = porter()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    let stderr = child.stderr.take().expect("stderr");
    let hint = std::io::BufRead::lines(std::io::BufReader::new(stderr))
        .map_while(Result::ok)
        .find(|line| line.contains("try: porter send"))
        .expect("the banner has a hint");
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        hint.ends_with(&format!("--url http://127.0.0.1:{port}")),
        "{hint}"
    );
}

#[test]
fn a_busy_port_is_reported_before_any_banner() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("addr").to_string();
    let dir = tempfile::tempdir().expect("no porter.toml here");
    let output = porter()
        .args(["serve", "--listen", &address])
        .current_dir(dir.path())
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {address}")),
        "{stderr}"
    );
    assert!(
        stderr.contains("another program, or another porter, listens there")
            && stderr.contains("--listen ADDR"),
        "the busy port comes with what to do: {stderr}"
    );
    assert!(!stderr.contains("secrets ="), "no banner first: {stderr}");
}

#[test]
fn the_readmes_check_config_example_is_what_porter_prints() {
    let readme = std::fs::read_to_string(repo_path("README.md")).expect("README");
    let command = "$ porter check-config --config porter.example.toml\n";
    let start = readme.find(command).expect("the README shows check-config") + command.len();
    let shown = &readme[start..start + readme[start..].find("```").expect("block end")];
    let output = porter()
        .args(["check-config", "--config", "porter.example.toml"])
        .env_clear()
        .current_dir(repo_path(""))
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&output.stderr), shown);
}

#[test]
fn check_config_stops_quietly_when_its_reader_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_with_dead_destination(dir.path(), 9);
    // `check-config | head`, once head has exited: the pipe's reading end is closed.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let output = porter()
        .args(["check-config", "--config", config.to_str().expect("utf-8")])
        .stdout(writer)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn check_config_summarises_destinations_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_with_dead_destination(dir.path(), 9);
    let output = porter()
        .args(["check-config", "--config", config.to_str().expect("utf-8")])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("OK (1 source, 1 destination, memory store"),
        "{stdout}"
    );
    assert!(stdout.contains("frontdesk"), "{stdout}");
}

/// Every command that prints stops quietly when its reader has gone (`porter send … | head
/// -1`): before, `porter send` panicked with a backtrace. A real send to a live server, and the
/// commands that print from the store.
#[test]
fn commands_stop_quietly_when_their_reader_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let served = common::served::Served::start(dir.path(), &[]);
    let url = served.url();
    let fixture = common::repo_path("fixtures/meta/text_message/body");
    let fixture = fixture.to_str().expect("utf-8");
    let commands: Vec<Vec<&str>> = vec![
        vec!["send", "whatsapp", fixture, "--url", &url],
        vec!["send", "whatsapp", fixture, "--dry-run"],
        vec!["send", "whatsapp", fixture, "--dry-run=request"],
        vec!["events", "tail"],
        vec!["dlq", "list"],
    ];
    for args in commands {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let output = porter()
            .args(&args)
            .current_dir(dir.path())
            .stdout(writer)
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("Broken pipe"), "{args:?}: {stderr}");
    }
    drop(served);
}

#[test]
fn a_copy_of_the_embedded_default_signs_for_porter_send_without_an_admin_token() {
    let dir = tempfile::tempdir().expect("dir");
    let copy = dir.path().join("porter.toml");
    std::fs::write(&copy, porter::testing::config::EMBEDDED_DEFAULT).expect("copy");
    let output = porter()
        .args(["send", "whatsapp", "fixtures/meta/text_message/body"])
        .arg("--config")
        .arg(&copy)
        .arg("--dry-run=request")
        .current_dir(repo_path(""))
        .env_remove("PORTER_ADMIN_TOKEN")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("x-hub-signature-256: sha256="), "{stdout}");
    // Serving from the copy still needs a token of its own: it is the console's password.
    let check = porter()
        .arg("check-config")
        .arg("--config")
        .arg(&copy)
        .output()
        .expect("runs");
    assert!(!check.status.success());
    assert!(
        String::from_utf8_lossy(&check.stderr).contains("admin.token: required"),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

/// A file with one source and no `[store]`, its local store at `path` when given.
fn minimal_config(dir: &std::path::Path, store_path: Option<&str>) -> std::path::PathBuf {
    let store = store_path.map_or(String::new(), |path| {
        format!("[store]\nkind = \"local\"\npath = \"{path}\"\n")
    });
    let file = dir.join("porter.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n{store}\n[[sources]]\nname = \"whatsapp\"\nprovider = \"meta\"\npath = \"/webhooks/whatsapp\"\nsecrets = [\"minimal-secret\"]\n"
        ),
    )
    .expect("write");
    file
}

#[test]
fn a_file_without_a_store_table_gets_the_durable_local_store() {
    let dir = tempfile::tempdir().expect("dir");
    let file = minimal_config(dir.path(), None);
    let output = porter()
        .arg("check-config")
        .arg("--config")
        .arg(&file)
        .current_dir(dir.path())
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("local store"), "{stdout}");
}

#[test]
fn a_store_directory_porter_cannot_write_fails_check_config_and_serve_before_listening() {
    let dir = tempfile::tempdir().expect("dir");
    // /proc takes no new directory, even from root: what a read-only data directory does.
    let file = minimal_config(dir.path(), Some("/proc/porter-data"));
    let check = porter()
        .arg("check-config")
        .arg("--config")
        .arg(&file)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(!check.status.success(), "{stderr}");
    assert!(
        stderr.contains("store.path: cannot write in /proc"),
        "{stderr}"
    );
    let serve = porter()
        .args(["serve", "--config"])
        .arg(&file)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&serve.stderr);
    let stdout = String::from_utf8_lossy(&serve.stdout);
    assert!(!serve.status.success());
    assert!(stderr.contains("cannot set up the store"), "{stderr}");
    assert!(
        !stderr.contains("listening") && !stdout.contains("listening"),
        "nothing is announced before the store opens: {stdout}{stderr}"
    );
}

#[test]
fn the_readmes_quick_start_configuration_checks_out() {
    let readme = std::fs::read_to_string(repo_path("README.md")).expect("README");
    let section = &readme[readme.find("## Quick start").expect("a quick start")..];
    let start = section.find("```toml\n").expect("its configuration") + "```toml\n".len();
    let toml = &section[start..start + section[start..].find("```").expect("block end")];
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("porter.toml");
    let data = dir.path().join("data");
    std::fs::write(
        &file,
        toml.replace("/var/lib/porter", &data.display().to_string()),
    )
    .expect("write");
    let output = porter()
        .arg("check-config")
        .arg("--config")
        .arg(&file)
        .env("META_APP_SECRET", "quick-start-meta-secret")
        .env("META_VERIFY_TOKEN", "quick-start-verify")
        .env("TWILIO_AUTH_TOKEN", "quick-start-twilio-token")
        .env("PORTER_ADMIN_TOKEN", "quick-start-admin-token-0123456789")
        .env(
            "GUEST_MESSAGING_WHSEC",
            "whsec_cXVpY2stc3RhcnQtZGVzdGluYXRpb24ta2V5",
        )
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    for shown in [
        "/webhooks/whatsapp",
        "/webhooks/sms/status",
        "guest-messaging",
        "local store",
    ] {
        assert!(stdout.contains(shown), "{shown}: {stdout}");
    }
}
