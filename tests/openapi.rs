//! The admin API's OpenAPI document (CONTRACT §13) against the admin listener that serves it:
//! the document is OpenAPI 3.1 and links the canonical event's schema; every operation it
//! documents is served, guarded by the token, and answers as documented; and no route of the
//! API is registered anywhere but through the documented registration (`src/admin/openapi.rs`).
//!
//! The validation is `scripts/validate-openapi`: openapi-spec-validator and jsonschema
//! (Python), which `scripts/test` installs.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::receiver::{Answer, Receiver};
use common::{ADMIN_TABLE, RawRequest, RawResponse, TestServer, config_from, repo_path};
use porter_providers::Secret;
use serde_json::{Value, json};

const SECRET: &str = "openapi-test-meta-secret";
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn config(destination_url: Option<&str>) -> porter::testing::config::Config {
    let destination = destination_url
        .map(|url| {
            format!(
                "[[destinations]]\nname = \"hooks\"\nkind = \"http\"\nurl = \"{url}\"\n\
                 secret = \"{WHSEC}\"\nretry = [\"50ms\"]\n"
            )
        })
        .unwrap_or_default();
    config_from(
        &format!(
            r#"
[store]
kind = "memory"
print_events = false

[[sources]]
name = "whatsapp"
provider = "meta"
path = "/webhooks/whatsapp"
secrets = ["{SECRET}"]

{destination}

{ADMIN_TABLE}
"#
        ),
        &[],
    )
}

/// A signed WhatsApp message with id `id`.
fn whatsapp(id: &str) -> RawRequest {
    let body = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"P"}},"contacts":[{{"profile":{{"name":"Guest"}},"wa_id":"1"}}],"messages":[{{"from":"1","id":"{id}","timestamp":"1710511200","type":"text","text":{{"body":"hi"}}}}]}}}}]}}]}}"#
    );
    let signature = porter_providers::meta::signature(&Secret::new(SECRET), body.as_bytes());
    RawRequest::post("/webhooks/whatsapp", body).header("X-Hub-Signature-256", &signature)
}

fn json(response: &RawResponse) -> Value {
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|_| panic!("JSON expected: {} {}", response.status, response.text()))
}

fn is_json(response: &RawResponse) -> bool {
    response
        .header("content-type")
        .is_some_and(|t| t.starts_with("application/json"))
}

/// The document, as the admin listener serves it.
async fn document(server: &TestServer) -> Value {
    let response = server.admin(&RawRequest::get("/api/openapi.json")).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(is_json(&response), "{:?}", response.header("content-type"));
    json(&response)
}

/// `text` as one JSON pointer token.
fn token(text: &str) -> String {
    text.replace('~', "~0").replace('/', "~1")
}

/// Every `$ref` in `value`.
fn references(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            for (key, inner) in object {
                match (key.as_str(), inner) {
                    ("$ref", Value::String(reference)) => found.push(reference.clone()),
                    _ => references(inner, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, found)),
        _ => {}
    }
}

/// A Python that has openapi-spec-validator and jsonschema: the one on `PATH`, or Debian's.
fn python() -> PathBuf {
    for candidate in ["python3", "/usr/bin/python3"] {
        let found = Command::new(candidate)
            .args(["-c", "import openapi_spec_validator, jsonschema"])
            .output()
            .is_ok_and(|output| output.status.success());
        if found {
            return PathBuf::from(candidate);
        }
    }
    panic!(
        "no python3 with openapi-spec-validator and jsonschema: `scripts/test` installs them \
         (python3 -m pip install openapi-spec-validator)"
    );
}

/// Runs `scripts/validate-openapi` on `document` (and `answers`); its report, or a failure.
fn validate(document: &Value, answers: Option<&Value>) -> String {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let write = |name: &str, value: &Value| -> PathBuf {
        let path = directory.path().join(name);
        std::fs::write(&path, serde_json::to_vec(value).expect("JSON")).expect("write");
        path
    };
    let mut command = Command::new(python());
    command
        .arg(repo_path("scripts/validate-openapi"))
        .arg(write("openapi.json", document));
    if let Some(answers) = answers {
        command.arg(write("answers.json", answers));
    }
    let output = command.output().expect("run scripts/validate-openapi");
    let report = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the validator refused:\n{report}");
    report
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_links_the_event_schema() {
    let server = TestServer::start(config(None)).await;
    let anonymous = server
        .admin_raw(&RawRequest::get("/api/openapi.json"))
        .await;
    assert_eq!(anonymous.status, 401, "the document needs the token");
    let document = document(&server).await;
    let version = document["openapi"].as_str().expect("an `openapi` field");
    assert!(version.starts_with("3.1"), "OpenAPI {version}");
    assert!(
        document["paths"].as_object().is_some_and(|p| !p.is_empty()),
        "no paths"
    );

    // Every reference resolves within the document.
    let mut found = Vec::new();
    references(&document, &mut found);
    assert!(!found.is_empty());
    for reference in &found {
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("`{reference}` leaves the document"));
        assert!(
            document.pointer(pointer).is_some(),
            "`{reference}` names nothing"
        );
    }

    // The events are the canonical event, whose schema is linked and served as committed.
    let events = "/paths/~1api~1events/get/responses/200/content/application~1json/schema";
    let list = document
        .pointer(events)
        .expect("GET /api/events answers JSON");
    assert_eq!(list["$ref"], "#/components/schemas/EventList");
    assert_eq!(
        document["components"]["schemas"]["EventList"]["properties"]["events"]["items"]["$ref"],
        "#/components/schemas/Event"
    );
    let event = &document["components"]["schemas"]["Event"];
    assert!(
        event["properties"]["specversion"].is_object(),
        "the Event component is the event's schema: {event}"
    );
    let link = event["externalDocs"]["url"]
        .as_str()
        .expect("the Event component links its schema");
    let tag = document["tags"]
        .as_array()
        .and_then(|tags| tags.iter().find(|t| t["name"] == "events"))
        .expect("an `events` tag");
    assert_eq!(tag["externalDocs"]["url"], link);
    let schema = server.admin(&RawRequest::get(link)).await;
    assert_eq!(schema.status, 200, "{link}: {}", schema.text());
    let committed = std::fs::read_to_string(repo_path("schema/event.schema.json"))
        .expect("schema/event.schema.json");
    assert!(
        schema.text() == committed,
        "{link} serves schema/event.schema.json as it is"
    );

    let report = validate(&document, None);
    assert!(report.starts_with("valid OpenAPI 3.1"), "{report}");
    server.stop().await;
}

/// A value for each path parameter: the stored event's id for `{id}` (so that its operation
/// answers 200), and a name that matches nothing for the others.
fn fill(path: &str, event_id: &str) -> String {
    let mut filled = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').expect("a closed parameter") + start;
        filled.push_str(&rest[..start]);
        filled.push_str(match &rest[start + 1..end] {
            "id" => event_id,
            _ => "openapi-probe",
        });
        rest = &rest[end + 1..];
    }
    filled + rest
}

/// Waits for a dead letter to be listed.
async fn a_dead_letter(server: &TestServer) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed = json(&server.admin(&RawRequest::get("/api/dlq")).await);
        if listed["dead_letters"]
            .as_array()
            .is_some_and(|d| !d.is_empty())
        {
            return;
        }
        assert!(Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn every_documented_operation_is_served_guarded_and_answers_as_documented() {
    // A dead letter and an event with an attempt log, so that those answers are not empty.
    let receiver = Receiver::start(vec![Answer::status(500), Answer::status(500)]).await;
    let server = TestServer::start_delivering(config(Some(&receiver.url()))).await;
    assert_eq!(server.send(&whatsapp("wamid.openapi")).await.status, 200);
    a_dead_letter(&server).await;
    let events = json(&server.admin(&RawRequest::get("/api/events")).await);
    let event_id = events["events"][0]["id"]
        .as_str()
        .expect("a stored event")
        .to_owned();

    let document = document(&server).await;
    let mut answers = Vec::new();
    let mut operations = 0;
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            operations += 1;
            let request = RawRequest {
                method: method.to_uppercase(),
                ..RawRequest::get(&fill(path, &event_id))
            };
            let what = format!("{} {}", request.method, request.target);
            let responses = &operation["responses"];

            let answer = server.admin(&request).await;
            let status = answer.status.to_string();
            assert!(
                answer.status != 404 || (is_json(&answer) && json(&answer)["error"].is_string()),
                "{what} is documented but not served: the router's 404"
            );
            assert_ne!(answer.status, 405, "{what} is served for another method");

            let anonymous = server.admin_raw(&request).await;
            assert_eq!(anonymous.status, 401, "{what} without the token");
            assert!(
                responses.get("401").is_some(),
                "{what}: 401 is not documented"
            );
            let Some(documented) = responses.get(&status) else {
                panic!(
                    "{what} answered {status}, which is not documented: {}",
                    answer.text()
                );
            };
            for (response, got) in [(documented, &answer), (&responses["401"], &anonymous)] {
                if !is_json(got) {
                    continue;
                }
                // A shared response (`$ref` to `#/components/responses/…`) or the operation's.
                let base = match response["$ref"].as_str() {
                    Some(reference) => reference.trim_start_matches('#').to_owned(),
                    None => format!("/paths/{}/{method}/responses/{}", token(path), got.status),
                };
                answers.push(json!({
                    "what": format!("{what} -> {}", got.status),
                    "pointer": format!("{base}/content/application~1json/schema"),
                    "body": json(got),
                }));
            }
        }
    }
    assert!(operations >= 17, "{operations} operations documented");
    let count = answers.len();
    let report = validate(&document, Some(&Value::Array(answers)));
    println!("{report}");
    assert!(
        report.contains(&format!("{count} answers valid")),
        "{report}"
    );
    server.stop().await;
}

/// The `.route("…")`-like registrations in `text`: each call's line and the path it names, or
/// `None` where the path is not a string literal (and so cannot be checked). Comment lines are
/// left out (blanked, so that line numbers hold).
fn registrations(text: &str) -> Vec<(usize, Option<String>)> {
    let text: String = text
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("//") {
                ""
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = Vec::new();
    for method in [".route(", ".route_service(", ".nest(", ".nest_service("] {
        for (at, _) in text.match_indices(method) {
            let line = text[..at].matches('\n').count() + 1;
            let argument = text[at + method.len()..].trim_start();
            let path = argument
                .strip_prefix('"')
                .and_then(|rest| rest.split_once('"'))
                .map(|(path, _)| path.to_owned());
            found.push((line, path));
        }
    }
    found
}

fn rust_files(directory: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(directory).expect("read the source directory") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// Every route of the admin API comes from `openapi::routes`, whose `routes!` registers a
/// handler with its documentation. A `.route("/api/…")` (or `/metrics`) anywhere in `src/`
/// would be served without being documented, and so is refused here, as is a registration
/// whose path is not a literal this check can read.
#[test]
fn no_route_of_the_api_is_registered_outside_the_documented_registration() {
    let mut files = Vec::new();
    rust_files(&repo_path("src"), &mut files);
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read a source file");
        for (line, path) in registrations(&text) {
            checked += 1;
            let at = format!("{}:{line}", file.display());
            match path {
                None => problems.push(format!("{at}: a route whose path is not a literal")),
                Some(path) if path == "/api" || path.starts_with("/api/") || path == "/metrics" => {
                    problems.push(format!(
                        "{at}: `{path}` is registered outside `openapi::routes`, undocumented"
                    ))
                }
                Some(_) => {}
            }
        }
    }
    assert!(
        checked > 0,
        "no registration found: is the scan still reading `src/`?"
    );
    assert!(
        problems.is_empty(),
        "register API routes with `routes!` in src/admin/openapi.rs:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_scan_sees_a_route_registered_around_the_document() {
    let undocumented = "Router::new()\n    .route(\"/api/secret\", get(secret))\n    .nest(\n        \"/api/more\", more)\n    .route(PATH, get(x))\n    // .route(\"/api/commented\", get(x))";
    assert_eq!(
        registrations(undocumented),
        vec![
            (2, Some("/api/secret".to_owned())),
            (5, None),
            (3, Some("/api/more".to_owned())),
        ]
    );
}
