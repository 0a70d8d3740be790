//! Erasure on request, end to end, on every store: three guests write on WhatsApp, one of
//! them also sends a body porter quarantines; destinations deliver (one delivered, one
//! dead-lettered, one paused); erasing the first guest by another spelling of her number
//! removes exactly her events, scheduled deliveries, dead letters, attempt records and
//! quarantined body, leaves the other two untouched, records the erasure without the value,
//! tells destinations with an `erasure.requested` event, and a second run finds nothing.

mod common;

use std::time::{Duration, Instant};

use common::receiver::{Answer, Receiver};
use common::redis_server::{RedisCluster, RedisServer};
use common::{ADMIN_TABLE, RawRequest, RawResponse, TestServer, config_from};
use porter_providers::Secret;
use serde_json::{Value, json};

const SECRET: &str = "erase-test-meta-secret";
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const KEY: &str = "an-erasure-test-privacy-key-32-bytes-long";

/// The guest to erase, as WhatsApp writes her number (digits only).
const ANNA: &str = "4915123456789";
const BEN: &str = "4915111111111";
const CARA: &str = "447700900123";

fn config(
    store: &str,
    crm: &str,
    billing: &str,
    warehouse: &str,
) -> porter::testing::config::Config {
    config_from(
        &format!(
            r#"
[store]
{store}

[privacy]
key = "{KEY}"

[archive]
retention = "1h"

[[sources]]
name = "whatsapp"
provider = "meta"
path = "/webhooks/whatsapp"
secrets = ["{SECRET}"]

[[destinations]]
name = "crm"
kind = "http"
url = "{crm}"
secret = "{WHSEC}"

[[destinations]]
name = "billing"
kind = "http"
url = "{billing}"
secret = "{WHSEC}"
retry = ["50ms"]

[[destinations]]
name = "warehouse"
kind = "http"
url = "{warehouse}"
secret = "{WHSEC}"

{ADMIN_TABLE}
"#
        ),
        &[],
    )
}

fn signed(body: String) -> RawRequest {
    let signature = porter_providers::meta::signature(&Secret::new(SECRET), body.as_bytes());
    RawRequest::post("/webhooks/whatsapp", body).header("X-Hub-Signature-256", &signature)
}

fn message_body(id: &str, from: &str, text: &str) -> String {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"P"}},"contacts":[{{"profile":{{"name":"Guest"}},"wa_id":"{from}"}}],"messages":[{{"from":"{from}","id":"{id}","timestamp":"1710511200","type":"text","text":{{"body":"{text}"}}}}]}}}}]}}]}}"#
    )
}

fn message(id: &str, from: &str, text: &str) -> RawRequest {
    signed(message_body(id, from, text))
}

fn json(response: &RawResponse) -> Value {
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|_| panic!("JSON expected: {} {}", response.status, response.text()))
}

async fn api(server: &TestServer, request: RawRequest) -> Value {
    let response = server.admin(&request).await;
    assert_eq!(response.status, 200, "{}", response.text());
    json(&response)
}

async fn erase(server: &TestServer, body: Value) -> Value {
    api(
        server,
        RawRequest::post("/api/erase", body.to_string()).header("Content-Type", "application/json"),
    )
    .await
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Which store the scenario runs on, and what its attempt records are.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// Memory and local: a dead letter carries its attempts with it; a delivered event's
    /// attempts are one record.
    InProcess,
    /// Redis: each destination's attempt log of an entry is a key, kept beside a dead letter.
    Redis,
}

async fn scenario(store: &str, kind: Kind) -> TestServer {
    // Receivers live as long as the scenario; the server is handed back for store checks.
    let crm = Receiver::start(vec![]).await;
    let billing = Receiver::start(vec![]).await;
    billing.always(Answer::status(500));
    let warehouse = Receiver::start(vec![]).await;
    let server =
        TestServer::start_delivering(config(store, &crm.url(), &billing.url(), &warehouse.url()))
            .await;
    api(
        &server,
        RawRequest::post("/api/destinations/warehouse/pause", ""),
    )
    .await;

    for (id, from, text) in [
        ("wamid.anna1", ANNA, "hello"),
        ("wamid.anna2", ANNA, "call me on +49 (151) 2345-6789"),
        ("wamid.ben1", BEN, "towels please"),
        ("wamid.cara1", CARA, "late checkout?"),
    ] {
        let answer = server.send(&message(id, from, text)).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    // Authentic but not JSON: refused as malformed and quarantined, Anna's number inside.
    let torn = format!(r#"{{"object":"whatsapp_business_account","entry":[{{"from":"{ANNA}""#);
    let answer = server.send(&signed(torn)).await;
    assert_eq!(answer.status, 400, "{}", answer.text());

    crm.wait_for(4, Duration::from_secs(15)).await;
    eventually("four dead letters", || async {
        api(&server, RawRequest::get("/api/dlq")).await["dead_letters"]
            .as_array()
            .map(Vec::len)
            == Some(4)
    })
    .await;

    let expected = json!({
        "events": 2,
        "scheduled": 2,
        "dead_letters": 2,
        // crm's two delivered; on Redis also billing's two logs beside its dead letters.
        "attempt_records": if kind == Kind::Redis { 4 } else { 2 },
        "quarantined": 1,
        // Her two messages' requests and the quarantined one, kept by `[archive]`.
        "archived": 3,
    });
    // Another spelling of Anna's number than WhatsApp's.
    let dry = erase(
        &server,
        json!({ "phone": "0049 151 2345 6789", "dry_run": true }),
    )
    .await;
    assert_eq!(dry["erased"], expected, "dry run: {dry}");
    assert!(dry.get("record").is_none(), "a dry run records nothing");
    assert_eq!(
        api(&server, RawRequest::get("/api/dlq")).await["dead_letters"]
            .as_array()
            .map(Vec::len),
        Some(4),
        "a dry run removes nothing"
    );

    let archived_before = server
        .gateway
        .store
        .list_archived(Some("whatsapp"), None)
        .await
        .expect("archive");
    let report = erase(&server, json!({ "phone": "+49 151 2345 6789" })).await;
    assert_eq!(report["erased"], expected, "{report}");
    let token = porter::testing::privacy::token(KEY.as_bytes(), "+4915123456789");
    assert_eq!(report["token"], token);
    let record = &report["record"];
    assert!(record["id"].as_str().unwrap().starts_with("era_"));

    // Anna is gone from every view; Ben and Cara are untouched.
    let events = api(&server, RawRequest::get("/api/events?limit=100")).await;
    let events = events["events"].as_array().unwrap().clone();
    let text = serde_json::to_string(&events).unwrap();
    assert!(text.contains(BEN) && text.contains(CARA), "{text}");
    let from_whatsapp: Vec<&Value> = events
        .iter()
        .filter(|e| e["source"] == "/sources/whatsapp")
        .collect();
    assert_eq!(from_whatsapp.len(), 2, "{text}");
    let requested: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "erasure.requested")
        .collect();
    assert_eq!(requested.len(), 1, "{text}");
    assert_eq!(requested[0]["data"]["value"], "+4915123456789");
    assert_eq!(requested[0]["data"]["token"], token);
    assert_eq!(requested[0]["id"], record["event_id"]);
    let without_request: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] != "erasure.requested")
        .collect();
    assert!(
        !serde_json::to_string(&without_request)
            .unwrap()
            .contains("2345"),
        "no event holds Anna's number"
    );
    let dead = api(&server, RawRequest::get("/api/dlq")).await;
    let dead = dead["dead_letters"].as_array().unwrap();
    assert_eq!(dead.len(), 2);
    assert!(!serde_json::to_string(dead).unwrap().contains(ANNA));
    for id in ["wamid.anna1", "wamid.anna2"] {
        let event_id = porter_providers::event::event_id("/sources/whatsapp", id);
        let response = server
            .admin(&RawRequest::get(&format!("/api/events/{event_id}")))
            .await;
        assert_eq!(response.status, 404, "{id}: {}", response.text());
    }

    // The audit record holds the keyed hash and the counts, never the value.
    let audit = api(&server, RawRequest::get("/api/erasures")).await;
    let audit_text = audit.to_string();
    assert!(!audit_text.contains("2345") && !audit_text.contains("+49"));
    assert_eq!(audit["erasures"][0]["token"], token);
    assert_eq!(audit["erasures"][0]["erased"], expected);

    // Destinations hear of it (crm delivers everything), and the paused one, resumed, gets
    // Ben's, Cara's and the request, never Anna's.
    let received = crm.wait_for(5, Duration::from_secs(15)).await;
    assert_eq!(received[4].event()["type"], "erasure.requested");
    api(
        &server,
        RawRequest::post("/api/destinations/warehouse/resume", ""),
    )
    .await;
    let resumed = warehouse.wait_for(3, Duration::from_secs(15)).await;
    // In arrival order on one stream; a cluster's shards interleave.
    let mut types: Vec<String> = resumed
        .iter()
        .map(|r| r.event()["type"].as_str().unwrap_or_default().to_owned())
        .collect();
    types.sort();
    assert_eq!(
        types,
        ["erasure.requested", "message.received", "message.received"],
        "the paused destination never gets Anna's events"
    );
    assert!(resumed.iter().all(|r| {
        !r.event()["data"]["from"]
            .as_str()
            .unwrap_or_default()
            .contains(ANNA)
    }));

    stays_erased(&server, &archived_before).await;

    // A second run finds nothing and says so.
    let again = erase(&server, json!({ "phone": "4915123456789" })).await;
    assert_eq!(
        again["erased"],
        json!({"events": 0, "scheduled": 0, "dead_letters": 0, "attempt_records": 0, "quarantined": 0, "archived": 0})
    );
    server
}

/// What was erased stays erased: the vendor's retry of each of her requests (identical bytes,
/// signed as before) is answered as a duplicate and archived nowhere; her quarantined body sent
/// again is refused as before and not kept; an archive write of one of her requests landing
/// after the erasure (it runs after the answer) is dropped; and a reprocess afterwards stores
/// nothing.
async fn stays_erased(server: &TestServer, archived_before: &[porter::testing::store::Archived]) {
    for (id, text) in [
        ("wamid.anna1", "hello"),
        ("wamid.anna2", "call me on +49 (151) 2345-6789"),
    ] {
        let again = server.send(&message(id, ANNA, text)).await;
        assert_eq!(again.status, 200, "{}", again.text());
        assert_eq!(again.header("porter-duplicate"), Some("true"), "{id}");
    }
    let torn = format!(r#"{{"object":"whatsapp_business_account","entry":[{{"from":"{ANNA}""#);
    assert_eq!(server.send(&signed(torn)).await.status, 400);
    // A new request after those: once it is archived, theirs would have been too.
    let later = server.send(&message("wamid.ben2", BEN, "thanks")).await;
    assert_eq!(later.status, 200);
    eventually("the later request archived", || async {
        server
            .gateway
            .store
            .list_archived(Some("whatsapp"), None)
            .await
            .expect("archive")
            .iter()
            .any(|item| String::from_utf8_lossy(&item.body).contains("wamid.ben2"))
    })
    .await;
    let store = &server.gateway.store;
    for item in archived_before
        .iter()
        .filter(|item| String::from_utf8_lossy(&item.body).contains(ANNA))
    {
        let late = store
            .archive(item.clone(), Duration::from_secs(3600))
            .await
            .expect("the store answers");
        assert_eq!(late, None, "a late archive write of her request is dropped");
    }
    let reprocessed = api(
        server,
        RawRequest::post(
            "/api/reprocess",
            json!({ "source": "whatsapp", "since": "1h" }).to_string(),
        )
        .header("Content-Type", "application/json"),
    )
    .await;
    assert_eq!(reprocessed["stored"], 0, "{reprocessed}");
    let archived = store.list_archived(None, None).await.expect("archive");
    for item in &archived {
        let body = String::from_utf8_lossy(&item.body);
        assert!(!body.contains(ANNA), "archived again: {body}");
    }
    let events = api(server, RawRequest::get("/api/events?limit=100")).await;
    let from_her: Vec<&Value> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] != "erasure.requested")
        .filter(|e| e.to_string().contains(ANNA))
        .collect();
    assert!(from_her.is_empty(), "stored again: {from_her:?}");
}

#[tokio::test]
async fn erasure_on_the_memory_store() {
    let server = scenario("kind = \"memory\"\nprint_events = false", Kind::InProcess).await;
    assert!(server.memory().quarantined().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn erasure_on_the_local_store_leaves_nothing_in_its_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("kind = \"local\"\npath = \"{}\"", dir.path().display());
    let server = scenario(&store, Kind::InProcess).await;
    server.stop().await;
    // The files hold the number only in the erasure request itself; Anna's events and her
    // quarantined body, in every encoding the journal and the snapshot use, are gone.
    use base64::Engine as _;
    let torn = format!(r#"{{"object":"whatsapp_business_account","entry":[{{"from":"{ANNA}""#);
    let as_base64 = base64::engine::general_purpose::STANDARD.encode(&torn);
    let as_numbers = serde_json::to_string(torn.as_bytes()).unwrap();
    let from = format!(r#""from":"{ANNA}""#);
    let archived_message = base64::engine::general_purpose::STANDARD.encode(message_body(
        "wamid.anna2",
        ANNA,
        "call me on +49 (151) 2345-6789",
    ));
    let gone: [&[u8]; 6] = [
        b"call me on",
        b"2345-6789",
        from.as_bytes(),
        as_base64.as_bytes(),
        as_numbers.trim_end_matches(']').as_bytes(),
        archived_message.as_bytes(),
    ];
    let mut files = 0;
    for entry in std::fs::read_dir(dir.path()).expect("dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read");
        files += 1;
        for needle in gone {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} still holds {}",
                path.display(),
                String::from_utf8_lossy(needle)
            );
        }
    }
    assert!(files >= 2, "a journal and a snapshot at least");
    // What was erased stays erased across a restart (the journal says so).
    let crm = Receiver::start(vec![]).await;
    let server =
        TestServer::start_delivering(config(&store, &crm.url(), &crm.url(), &crm.url())).await;
    let events = api(&server, RawRequest::get("/api/events?limit=100")).await;
    let received: Vec<&Value> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["source"] == "/sources/whatsapp")
        .collect();
    let text = serde_json::to_string(&received).unwrap();
    assert!(text.contains(BEN) && !text.contains(ANNA), "{text}");
    let audit = api(&server, RawRequest::get("/api/erasures")).await;
    assert_eq!(
        audit["erasures"].as_array().map(Vec::len),
        Some(2),
        "{audit}"
    );
    server.stop().await;
}

#[tokio::test]
async fn erasure_on_redis() {
    let redis = tokio::task::spawn_blocking(RedisServer::start)
        .await
        .expect("redis");
    let store = format!("kind = \"redis\"\nurl = \"{}\"", redis.url());
    let server = scenario(&store, Kind::Redis).await;
    server.stop().await;
    // Nothing in Redis holds the number but the erasure request itself.
    let keys = redis.cli(&["--scan"]).unwrap_or_default();
    for key in keys.lines().filter(|k| !k.is_empty()) {
        let kind = redis.cli(&["TYPE", key]).unwrap_or_default();
        let dump = match kind.trim() {
            "stream" => redis.cli(&["XRANGE", key, "-", "+"]),
            "list" => redis.cli(&["LRANGE", key, "0", "-1"]),
            "zset" => redis.cli(&["ZRANGE", key, "0", "-1"]),
            "string" => redis.cli(&["GET", key]),
            "hash" => redis.cli(&["HGETALL", key]),
            _ => None,
        }
        .unwrap_or_default();
        let holding: Vec<&str> = dump
            .lines()
            .filter(|line| line.contains(ANNA) && !line.contains("erasure.requested"))
            .collect();
        assert!(
            holding.is_empty(),
            "{key} still holds the number: {holding:?}"
        );
    }
}

#[tokio::test]
async fn erasure_on_a_redis_cluster() {
    let cluster = tokio::task::spawn_blocking(|| RedisCluster::start(3))
        .await
        .expect("cluster");
    let urls: Vec<String> = cluster.urls().iter().map(|u| format!("\"{u}\"")).collect();
    let store = format!("kind = \"redis\"\nurls = [{}]\nshards = 4", urls.join(", "));
    let server = scenario(&store, Kind::Redis).await;
    server.stop().await;
}

#[tokio::test]
async fn erasure_is_refused_without_a_privacy_key_and_for_a_value_that_names_no_one() {
    let text = format!(
        "[store]\nkind = \"memory\"\nprint_events = false\n[[sources]]\nname = \"whatsapp\"\nprovider = \"meta\"\npath = \"/w\"\nsecrets = [\"{SECRET}\"]\n{ADMIN_TABLE}"
    );
    let server = TestServer::start_delivering(config_from(&text, &[])).await;
    let post = |body: Value| {
        RawRequest::post("/api/erase", body.to_string()).header("Content-Type", "application/json")
    };
    let refused = server
        .admin(&post(json!({ "phone": "+4915123456789" })))
        .await;
    assert_eq!(refused.status, 409, "{}", refused.text());
    assert_eq!(json(&refused)["error"], "no_privacy_key");
    for (body, code) in [
        (json!({ "phone": "0151 2345 6789" }), "bad_person"),
        (json!({ "email": "not-an-address" }), "bad_person"),
        (json!({}), "bad_person"),
        (
            json!({ "phone": "+4915123456789", "email": "a@b.de" }),
            "bad_person",
        ),
    ] {
        let response = server.admin(&post(body.clone())).await;
        assert_eq!(response.status, 400, "{body}: {}", response.text());
        assert_eq!(json(&response)["error"], code, "{body}");
        assert!(
            !response.text().contains("0151 2345") && !response.text().contains("a@b.de"),
            "the value is not echoed: {}",
            response.text()
        );
    }
    let unknown_source = server
        .admin(&post(json!({ "email": "a@b.de", "source": "nope" })))
        .await;
    assert_eq!(unknown_source.status, 404);
    server.stop().await;
}

/// `porter erase` as an operator runs it: through the admin API of the `porter serve` that
/// holds a memory store, and on a local store directly once porter has stopped.
#[test]
fn the_command_erases_through_porter_serve_or_on_the_store_itself() {
    use common::served::{Served, porter};

    let dir = tempfile::tempdir().expect("dir");
    let config = |store: &str| {
        format!(
            "[store]\n{store}\n[privacy]\nkey = \"{KEY}\"\n[[sources]]\nname = \"whatsapp\"\nprovider = \"meta\"\npath = \"/webhooks/whatsapp\"\nsecrets = [\"{SECRET}\"]\n{ADMIN_TABLE}"
        )
    };
    std::fs::write(
        dir.path().join("memory.toml"),
        config("kind = \"memory\"\nprint_events = false"),
    )
    .expect("write");
    std::fs::write(
        dir.path().join("local.toml"),
        config("kind = \"local\"\npath = \"data\""),
    )
    .expect("write");
    let send = |served: &Served, id: &str, from: &str| {
        let request = message(id, from, "hi");
        let headers: Vec<(&str, &str)> = request
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let answer = common::served::post(served.addr, &request.target, &headers, &request.body);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    };
    let erase = |args: &[&str]| {
        let output = porter()
            .arg("erase")
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("porter erase runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let count = |report: &str, label: &str| -> u64 {
        report
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no `{label}` in {report}"))
    };

    // A memory store lives in `porter serve`: the command goes through its admin API.
    let served = Served::start(dir.path(), &["--config", "memory.toml"]);
    send(&served, "wamid.cli1", ANNA);
    send(&served, "wamid.cli2", BEN);
    let admin = served.admin_addr.expect("admin").to_string();
    let (ok, out, err) = erase(&[
        "--config",
        "memory.toml",
        "--admin",
        &admin,
        "--phone",
        "+49 151 2345 6789",
    ]);
    assert!(ok, "{out}{err}");
    assert!(out.starts_with("erased phone pii_"), "{out}");
    assert_eq!(count(&out, "events"), 1, "{out}");
    assert!(out.contains("audit record era_"), "{out}");
    let (ok, _, err) = erase(&[
        "--config",
        "memory.toml",
        "--admin",
        &admin,
        "--phone",
        "0151 2345",
    ]);
    assert!(!ok && err.contains("international form"), "{err}");
    served.terminate();

    // A local store no porter holds: the command opens it itself.
    let served = Served::start(dir.path(), &["--config", "local.toml"]);
    send(&served, "wamid.cli3", ANNA);
    send(&served, "wamid.cli4", CARA);
    served.terminate();
    let (ok, out, err) = erase(&[
        "--config",
        "local.toml",
        "--phone",
        "004915123456789",
        "--dry-run",
    ]);
    assert!(ok, "{out}{err}");
    assert!(out.starts_with("would erase"), "{out}");
    assert_eq!(count(&out, "events"), 1, "{out}");
    let (ok, out, err) = erase(&[
        "--config",
        "local.toml",
        "--phone",
        "004915123456789",
        "--json",
    ]);
    assert!(ok, "{out}{err}");
    let report: Value = serde_json::from_str(&out).expect("JSON report");
    assert_eq!(report["erased"]["events"], 1, "{report}");
    let (ok, out, _) = erase(&["--config", "local.toml", "--phone", "004915123456789"]);
    assert!(ok);
    assert_eq!(
        count(&out, "events"),
        0,
        "a second run finds nothing: {out}"
    );
}

/// An attempt in flight while its event is erased, and the last one: the worker's dead letter
/// would bring the event back. The erasure marks the entry first; the dead letter is not
/// written. Another entry's last attempt, in the same moment, is dead-lettered as ever.
#[tokio::test]
async fn an_attempt_in_flight_during_an_erasure_does_not_dead_letter_the_event() {
    use porter::testing::store::erase::Erase;
    use porter::testing::store::{Attempt, Next, RedisSchedule, Schedule, Store};

    let redis = tokio::task::spawn_blocking(RedisServer::start)
        .await
        .expect("redis");
    let store = std::sync::Arc::new(common::redis_server::store_on(&redis));
    let queue = RedisSchedule::new(std::sync::Arc::clone(&store), "test".to_owned());
    let schedule = store.layout().schedule("frontdesk", 0);
    let cli = |args: &[&str]| redis.cli(args).expect("redis-cli").trim().to_owned();
    let event = |id: &str, from: &str| {
        json!({"specversion": "1.0", "id": id, "source": "/sources/whatsapp",
               "type": "message.received", "data": {"from": from}})
        .to_string()
    };
    for (id, from) in [("evt_anna", ANNA), ("evt_ben", BEN)] {
        let entry = cli(&[
            "XADD",
            "porter:events",
            "*",
            "event",
            &event(id, from),
            "type",
            "message.received",
            "source",
            "whatsapp",
            "id",
            id,
        ]);
        cli(&["ZADD", &schedule, "0", &entry]);
    }
    let now = jiff::Timestamp::now().as_millisecond();
    let jobs = queue
        .lease("frontdesk", 0, common::lease(10, false, now, now + 60_000))
        .await
        .expect("lease");
    assert_eq!(jobs.len(), 2);

    let erase = Erase {
        person: std::sync::Arc::new(
            porter::testing::privacy::Person::phone("+4915123456789").expect("phone"),
        ),
        source: None,
        remember_for: std::time::Duration::from_secs(86_400),
    };
    let erased = Store::Redis(std::sync::Arc::clone(&store))
        .erase(&erase, &["frontdesk".to_owned()], false)
        .await
        .expect("erase");
    assert_eq!((erased.events, erased.scheduled), (1, 1));

    for job in &jobs {
        let attempt = Attempt {
            at: jiff::Timestamp::now(),
            status: Some(500),
            outcome: "status 500".to_owned().into(),
            duration_ms: 3,
        };
        queue
            .finish("frontdesk", job, attempt, Next::DeadLettered)
            .await
            .expect("finish");
    }
    let dead = cli(&["XRANGE", "porter:dlq", "-", "+"]);
    assert!(
        dead.contains("evt_ben"),
        "Ben's job is dead-lettered: {dead}"
    );
    assert!(
        !dead.contains("evt_anna") && !dead.contains(ANNA),
        "the erased event is not: {dead}"
    );
}

/// Erasure while porter serves: ingest goes on (every request answered 200, nothing waits on
/// the erasure), delivery goes on (every other guest's event arrives), and two runs (one in
/// the middle of the traffic, one after it) erase each of her events exactly once.
async fn erase_during_traffic(store: &str) {
    let crm = Receiver::start(vec![]).await;
    let unused = Receiver::start(vec![]).await;
    let server = std::sync::Arc::new(
        TestServer::start_delivering(config(store, &crm.url(), &unused.url(), &unused.url())).await,
    );
    for name in ["billing", "warehouse"] {
        api(
            &server,
            RawRequest::post(&format!("/api/destinations/{name}/pause"), ""),
        )
        .await;
    }
    const SENT: usize = 300;
    let traffic = {
        let server = std::sync::Arc::clone(&server);
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for i in 0..SENT {
                let from = if i % 10 == 0 {
                    ANNA.to_owned()
                } else {
                    (4_470_000_000_000u64 + i as u64).to_string()
                };
                let answer = server
                    .send(&message(&format!("wamid.t{i}"), &from, "hi"))
                    .await;
                statuses.push(answer.status);
            }
            statuses
        })
    };
    while crm.received().len() < 50 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let first = erase(&server, json!({ "phone": ANNA })).await;
    let statuses = traffic.await.expect("traffic");
    assert!(
        statuses.iter().all(|s| *s == 200),
        "every request answered 200 during the erasure"
    );
    let second = erase(&server, json!({ "phone": ANNA })).await;
    let erased =
        first["erased"]["events"].as_u64().unwrap() + second["erased"]["events"].as_u64().unwrap();
    assert_eq!(
        erased,
        (SENT / 10) as u64,
        "each of her events erased once: {first} {second}"
    );
    assert!(first["erased"]["events"].as_u64().unwrap() > 0, "{first}");

    let others = SENT - SENT / 10;
    // crm also gets her events delivered before the erasure, and the two requests.
    let from_others = || {
        crm.received()
            .iter()
            .filter(|r| r.event()["type"] == "message.received")
            .filter(|r| r.event()["data"]["from"] != ANNA)
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while from_others() < others && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(from_others(), others, "every other guest's event delivered");
    let events = api(&server, RawRequest::get("/api/events?limit=1000")).await;
    let stored: Vec<&Value> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["source"] == "/sources/whatsapp")
        .collect();
    assert_eq!(stored.len(), others);
    assert!(stored.iter().all(|e| e["data"]["from"] != ANNA));
}

#[tokio::test]
async fn erasure_while_porter_serves_on_the_local_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    erase_during_traffic(&format!(
        "kind = \"local\"\npath = \"{}\"",
        dir.path().display()
    ))
    .await;
}

#[tokio::test]
async fn erasure_while_porter_serves_on_redis() {
    let redis = tokio::task::spawn_blocking(RedisServer::start)
        .await
        .expect("redis");
    erase_during_traffic(&format!("kind = \"redis\"\nurl = \"{}\"", redis.url())).await;
}
