//! The fixtures are the behavioural spec: every `fixtures/<provider>/<case>/` holds a request
//! (`request`: request line and headers), the raw body exactly as signed (`body`), and what
//! must come of it (`expected.json`: the answer and the canonical events, or the rejection).
//!
//! Each case is checked twice: through the providers crate directly (verify, normalize), and
//! replayed byte for byte through the real HTTP server on a loopback port, where every accepted
//! case is then sent again and must get the original answer marked as a duplicate.
//!
//! `UPDATE_EXPECT=1 cargo test --test fixtures` rewrites the `expected.json` files from what
//! porter does now; review the diff before committing it.

mod common;

use std::path::{Path, PathBuf};

use common::{FIXTURE_TIME, RawRequest, TestServer, config_from, repo_path};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use porter::testing::config::Config;
use porter::testing::routes::RouteTable;
use porter_providers::Request;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Expected {
    status: u16,
    content_type: String,
    body: String,
    /// The rejection reason, for refused requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rejection: Option<String>,
    #[serde(default)]
    events: Vec<Value>,
}

#[derive(Debug)]
struct Case {
    name: String,
    dir: PathBuf,
    request: RawRequest,
}

fn fixture_config() -> Config {
    let text =
        std::fs::read_to_string(repo_path("fixtures/porter.toml")).expect("fixtures/porter.toml");
    config_from(&text, &[])
}

fn cases() -> Vec<Case> {
    let root = repo_path("fixtures");
    let mut cases = Vec::new();
    for provider in sorted_dirs(&root) {
        for dir in sorted_dirs(&provider) {
            if dir.join("request").exists() {
                cases.push(load_case(&root, dir));
            }
        }
    }
    assert!(
        cases.len() >= 30,
        "fixtures went missing: found {}",
        cases.len()
    );
    cases
}

fn sorted_dirs(path: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(path)
        .expect("readable dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn load_case(root: &Path, dir: PathBuf) -> Case {
    let name = dir
        .strip_prefix(root)
        .expect("under root")
        .display()
        .to_string();
    let text = std::fs::read_to_string(dir.join("request")).expect("request file");
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let request_line = lines
        .next()
        .unwrap_or_else(|| panic!("{name}: empty request"));
    let (method, target) = request_line
        .split_once(' ')
        .unwrap_or_else(|| panic!("{name}: request line is `METHOD TARGET`"));
    let headers = lines
        .map(|line| {
            let (n, v) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("{name}: header `{line}`"));
            (n.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let body = std::fs::read(dir.join("body")).unwrap_or_default();
    Case {
        name,
        dir,
        request: RawRequest {
            method: method.to_owned(),
            target: target.to_owned(),
            headers,
            body,
        },
    }
}

fn expected(case: &Case) -> Option<Expected> {
    let text = std::fs::read_to_string(case.dir.join("expected.json")).ok()?;
    Some(
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: expected.json: {e}", case.name)),
    )
}

fn updating() -> bool {
    std::env::var_os("UPDATE_EXPECT").is_some()
}

/// What the providers crate alone makes of a case: a rejection reason, or events.
fn direct(case: &Case, config: &Config, routes: &RouteTable) -> (Option<String>, Vec<Value>) {
    match normalized(&case.request, &case.name, config, routes) {
        Err(reason) => (Some(reason), Vec::new()),
        Ok(events) => (
            None,
            events
                .iter()
                .map(|e| serde_json::to_value(&e.event).expect("serializes"))
                .collect(),
        ),
    }
}

/// A request through the providers crate: the rejection reason, or the normalized events
/// (handshakes give no events).
fn normalized(
    raw: &RawRequest,
    name: &str,
    config: &Config,
    routes: &RouteTable,
) -> Result<Vec<porter_providers::Normalized>, String> {
    let (path, query) = match raw.target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (raw.target.as_str(), None),
    };
    let route = routes
        .get(path)
        .unwrap_or_else(|| panic!("{name}: no route {path}"));
    let mut headers = HeaderMap::new();
    for (name, value) in &raw.headers {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
    }
    let method = Method::from_bytes(raw.method.as_bytes()).expect("method");
    let request = Request {
        method: &method,
        endpoint: route.endpoint.suffix,
        path,
        query,
        headers: &headers,
        body: &raw.body,
    };
    let source = &config.sources[route.source].source;
    let now = FIXTURE_TIME.parse().expect("time");
    if let Some(handshake) = source.handshake(&request, now) {
        return handshake
            .map(|_| Vec::new())
            .map_err(|r| r.reason().to_owned());
    }
    source
        .verify(&request, now)
        .and_then(|verified| source.normalize(verified, now))
        .map(|normalization| normalization.events)
        .map_err(|r| r.reason().to_owned())
}

#[tokio::test]
async fn every_fixture_verifies_normalizes_and_replays_as_expected() {
    let routes = porter::testing::config::route_table(&fixture_config().sources);
    let direct_config = fixture_config();
    let mut failures = Vec::new();
    for case in cases() {
        let (rejection, direct_events) = direct(&case, &direct_config, &routes);
        let server = TestServer::start(fixture_config()).await;
        let response = server.send(&case.request).await;
        let actual = Expected {
            status: response.status,
            content_type: response.header("content-type").unwrap_or("").to_owned(),
            body: response.text(),
            rejection: rejection.clone(),
            events: server.events(),
        };
        if updating() {
            let text = serde_json::to_string_pretty(&actual).expect("json") + "\n";
            std::fs::write(case.dir.join("expected.json"), text).expect("write expected.json");
        }
        let Some(expected) = expected(&case) else {
            failures.push(format!(
                "{}: no expected.json (run with UPDATE_EXPECT=1)",
                case.name
            ));
            continue;
        };
        if actual != expected {
            failures.push(format!(
                "{}: server answered differently\n  expected: {}\n  actual:   {}",
                case.name,
                serde_json::to_string(&expected).unwrap_or_default(),
                serde_json::to_string(&actual).unwrap_or_default()
            ));
        }
        if direct_events != expected.events {
            failures.push(format!(
                "{}: the providers crate made other events than the server stored",
                case.name
            ));
        }
        if (expected.status == 200) != expected.rejection.is_none() {
            failures.push(format!(
                "{}: a 200 must have no rejection and a refusal one",
                case.name
            ));
        }
        // A redelivery of an accepted request gets the original answer, marked, and adds nothing.
        if expected.status == 200 && !expected.events.is_empty() {
            let again = server.send(&case.request).await;
            let duplicate_ok = again.status == 200
                && again.body == response.body
                && again.header("porter-duplicate") == Some("true")
                && server.events().len() == expected.events.len();
            if !duplicate_ok {
                failures.push(format!(
                    "{}: the replay was not answered as a duplicate: {again:?}",
                    case.name
                ));
            }
        }
        server.stop().await;
    }
    assert!(
        failures.is_empty(),
        "{} fixture failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The provider's name for a case's route.
fn provider_of(case: &Case, config: &Config, routes: &RouteTable) -> &'static str {
    let path = case.request.target.split('?').next().unwrap_or_default();
    let route = routes.get(path).expect("route");
    config.sources[route.source].source.provider().id()
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(256))]

    /// For every accepted fixture of every provider: bytes the provider does not sign (extra
    /// headers, an idempotency token or delivery id header, query parameters where the query
    /// is not signed) never change an event's dedupe key or its id. A replay that changes
    /// only unsigned bytes is therefore always recognised, and always carries the same id.
    #[test]
    fn unsigned_bytes_never_change_a_dedupe_key_or_an_event_id(
        pick in 0usize..1000,
        noise in "[A-Za-z0-9._-]{1,40}",
    ) {
        let config = fixture_config();
        let routes = porter::testing::config::route_table(&config.sources);
        let accepted: Vec<Case> = cases()
            .into_iter()
            .filter(|case| matches!(expected(case), Some(e) if e.status == 200 && !e.events.is_empty()))
            .collect();
        let case = &accepted[pick % accepted.len()];
        let original = normalized(&case.request, &case.name, &config, &routes)
            .unwrap_or_else(|reason| panic!("{}: {reason}", case.name));
        let mut mutated = case.request.clone();
        mutated.headers.retain(|(name, _)| {
            !name.eq_ignore_ascii_case("i-twilio-idempotency-token")
                && !name.eq_ignore_ascii_case("user-agent")
        });
        mutated.headers.push(("X-Porter-Noise".into(), noise.clone()));
        mutated.headers.push(("User-Agent".into(), noise.clone()));
        mutated.headers.push(("I-Twilio-Idempotency-Token".into(), noise.clone()));
        // Twilio and Bird sign the URL, query included; nobody else does.
        if !matches!(provider_of(case, &config, &routes), "twilio" | "bird") {
            let separator = if mutated.target.contains('?') { '&' } else { '?' };
            mutated.target = format!("{}{separator}noise={noise}", mutated.target);
        }
        let replayed = normalized(&mutated, &case.name, &config, &routes)
            .unwrap_or_else(|reason| panic!("{}: unsigned bytes broke verification: {reason}", case.name));
        let keys = |events: &[porter_providers::Normalized]| -> Vec<(String, String)> {
            events.iter().map(|e| (e.dedupe_key.clone(), e.event.id.clone())).collect()
        };
        proptest::prop_assert_eq!(keys(&original), keys(&replayed), "{}", case.name);
    }
}

#[test]
fn fixtures_cover_the_required_cases() {
    let names: Vec<String> = cases().into_iter().map(|c| c.name).collect();
    for required in [
        "meta/text_message",
        "meta/batch_ten_messages",
        "meta/multi_entry_batch",
        "meta/unicode_escaped",
        "meta/rotated_secret",
        "meta/flipped_byte",
        "meta/wrong_secret",
        "meta/missing_signature",
        "meta/malformed_signature",
        "meta/wrong_length_signature",
        "meta/handshake",
        "meta/handshake_wrong_token",
        "meta/unmodelled",
        "meta/malformed_body",
        "twilio/incoming_sms",
        "twilio/status_delivered",
        "twilio/default_port",
        "twilio/query_string",
        "twilio/repeated_params",
        "twilio/json_body",
        "twilio/rotated_token",
        "twilio/flipped_byte",
        "twilio/wrong_secret",
        "twilio/missing_signature",
        "twilio/malformed_signature",
        "twilio/wrong_length_signature",
    ] {
        let found = names.iter().any(|n| n.replace('\\', "/") == required);
        assert!(found, "missing fixture {required}");
    }
}
