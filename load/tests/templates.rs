//! Every template in `load/templates/` against a real porter on a loopback port, configured
//! with `fixtures/porter.toml`: two keys give two sets of new events, a byte-for-byte repeat is
//! a duplicate, and a forged request is refused. The requests are made and sent exactly as
//! `porter-load` makes and sends them (the library's signer and client), signed by porter's own
//! signing code at the system clock, which is also the server's.
//!
//! The source, route and content type of each template come from the table in
//! `load/templates/README.md`, so the table is checked as well.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use porter::testing::config::Config;
use porter::testing::server::{self, Clock, Gateway};
use porter::testing::store::{MemoryStore, Store};
use porter_load::{Outgoing, TemplateSigner};
use porter_providers::Provider;
use tokio::net::TcpListener;

fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// One row of the templates table.
#[derive(Debug)]
struct Row {
    provider: String,
    template: String,
    source: String,
    route: String,
    content_type: String,
    fixture: String,
    events: u64,
}

fn rows() -> Vec<Row> {
    let text = std::fs::read_to_string(repo("load/templates/README.md")).expect("README.md");
    let rows: Vec<Row> = text
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line
                .trim_matches('|')
                .split('|')
                .map(|cell| cell.trim())
                .collect();
            assert_eq!(cells.len(), 8, "a row has 8 cells: {line}");
            let code = |cell: &str| cell.trim_matches('`').to_owned();
            Row {
                provider: code(cells[0]),
                template: code(cells[1]),
                source: code(cells[2]),
                route: code(cells[3]),
                content_type: code(cells[4]),
                fixture: code(cells[5]),
                events: cells[7].parse().expect("events per request"),
            }
        })
        .collect();
    assert!(!rows.is_empty(), "the templates table went missing");
    rows
}

#[test]
fn the_table_covers_every_provider_and_every_template_file() {
    let rows = rows();
    let listed: Vec<&str> = rows.iter().map(|r| r.provider.as_str()).collect();
    let mut expected: Vec<&str> = Provider::ALL.iter().map(|p| p.id()).collect();
    let mut sorted = listed.clone();
    sorted.sort_unstable();
    expected.sort_unstable();
    assert_eq!(sorted, expected, "one row per provider");

    let mut files: Vec<String> = std::fs::read_dir(repo("load/templates"))
        .expect("load/templates")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name != "README.md")
        .collect();
    files.sort_unstable();
    let mut templates: Vec<String> = rows.iter().map(|r| r.template.clone()).collect();
    templates.sort_unstable();
    assert_eq!(
        files, templates,
        "every template file is in the table, and only those"
    );

    let config = Config::load(&repo("fixtures/porter.toml")).expect("fixtures/porter.toml");
    for row in &rows {
        assert!(
            row.template.starts_with(&format!("{}.", row.provider)),
            "{}: the template is named after its provider",
            row.provider
        );
        let source = config
            .source(&row.source)
            .unwrap_or_else(|| panic!("{}: no source `{}`", row.provider, row.source));
        assert_eq!(source.source.provider().id(), row.provider);
        // Derived from a real request: the fixture exists and was accepted.
        let fixture = repo("fixtures").join(&row.fixture);
        assert!(fixture.join("body").exists(), "{}: no fixture", row.fixture);
        let expected = std::fs::read_to_string(fixture.join("expected.json")).expect("expected");
        assert!(
            expected.contains("\"status\": 200"),
            "{}: accepted",
            row.fixture
        );
    }
}

/// A porter with the fixture configuration, on a loopback port: a memory store that keeps the
/// events for the test to read, and the system clock (the signer's).
async fn start_porter() -> (String, Arc<Gateway>) {
    let config = Config::load(&repo("fixtures/porter.toml")).expect("fixtures/porter.toml");
    let store = Store::Memory(std::sync::Arc::new(MemoryStore::new(
        false,
        10_000,
        porter::testing::clock::Clock::system(),
    )));
    let gateway = Arc::new(Gateway::with_store(config, store, Clock::system()));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let authority = listener.local_addr().expect("address").to_string();
    tokio::spawn(server::serve(listener, Arc::clone(&gateway), async {
        std::future::pending::<()>().await
    }));
    (authority, gateway)
}

/// The ids of the events stored for `source`.
fn stored(gateway: &Gateway, source: &str) -> Vec<String> {
    let Store::Memory(memory) = &gateway.store else {
        panic!("the fixture configuration uses the memory store");
    };
    memory
        .events()
        .into_iter()
        .filter(|event| event.source == format!("/sources/{source}"))
        .map(|event| event.id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_template_is_accepted_as_new_events_and_refused_when_forged() {
    let (authority, gateway) = start_porter().await;
    let mut sender = porter_load::connect(&authority)
        .await
        .expect("connect to porter");
    let run = 0x5eed;
    for row in rows() {
        let name = &row.provider;
        let signer = TemplateSigner::new(
            &repo("fixtures/porter.toml"),
            &row.source,
            &repo("load/templates").join(&row.template),
            Some(&row.route),
            None,
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(signer.provider().id(), row.provider.as_str());
        assert_eq!(signer.content_type(), row.content_type, "{name}");
        assert!(signer.can_forge(), "{name}");

        let mut send = async |request: &Outgoing| {
            porter_load::send(&mut sender, &authority, request)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"))
        };
        let now = jiff::Timestamp::now;
        let first = signer
            .request(&porter_load::request_key(run, 0, 1), now(), false)
            .expect("signed");
        let second = signer
            .request(&porter_load::request_key(run, 0, 2), now(), false)
            .expect("signed");
        assert_ne!(first.body, second.body, "{name}");

        let mut seen = Vec::new();
        for request in [&first, &second] {
            let answer = send(request).await;
            assert_eq!(answer.status, 200, "{name}: {answer:?}");
            assert!(!answer.duplicate, "{name}: a new key is a new event");
            assert_eq!(
                request.acknowledged(&answer),
                row.events,
                "{name}: {answer:?}"
            );
            seen.push(stored(&gateway, &row.source).len() as u64);
        }
        assert_eq!(seen, [row.events, 2 * row.events], "{name}: events stored");
        let ids = stored(&gateway, &row.source);
        let distinct: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len(), "{name}: distinct events");

        // The same request again, byte for byte: a duplicate, nothing new stored.
        let again = send(&first).await;
        assert_eq!(again.status, 200, "{name}: {again:?}");
        assert!(again.duplicate, "{name}: a repeat is a duplicate");
        assert_eq!(first.acknowledged(&again), 0);
        assert_eq!(stored(&gateway, &row.source), ids, "{name}");

        // Forged: a new key, signed with wrong secrets or token. Refused, nothing stored.
        for key in [
            porter_load::request_key(run, 0, 3),
            porter_load::request_key(run, 0, 1),
        ] {
            let forged = signer.request(&key, now(), true).expect("signed");
            assert!(forged.forged);
            let answer = send(&forged).await;
            assert!(
                matches!(answer.status, 401 | 403),
                "{name}: a forged request is refused: {answer:?}"
            );
            assert_eq!(forged.acknowledged(&answer), 0);
            assert_eq!(stored(&gateway, &row.source), ids, "{name}");
        }
    }
}

#[test]
fn a_template_without_its_key_or_for_an_unknown_route_is_refused() {
    let dir = std::env::temp_dir().join(format!("porter-load-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let keyless = dir.join("keyless.json");
    std::fs::write(&keyless, br#"{"id":"evt_1"}"#).expect("write");
    let config = repo("fixtures/porter.toml");
    let error = TemplateSigner::new(&config, "stripe", &keyless, None, None).unwrap_err();
    assert!(error.contains("{{key}}"), "{error}");
    let stripe = repo("load/templates/stripe.json");
    let error =
        TemplateSigner::new(&config, "stripe", &stripe, Some("/webhooks/other"), None).unwrap_err();
    assert!(error.contains("is not a route"), "{error}");
    let error = TemplateSigner::new(&config, "nope", &stripe, None, None).unwrap_err();
    assert!(error.contains("no source named `nope`"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}
