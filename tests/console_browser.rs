//! The console in a real browser (headless Chromium through ChromeDriver): what a newcomer
//! sees after `porter serve` and two `porter send`s, and what an operator does with dead
//! letters and destinations. A screenshot of each page is saved under
//! `target/console-screenshots/` for review.

mod common;

use std::time::Duration;

use common::browser::Browser;
use common::receiver::{Answer, Receiver};
use common::served::{Served, porter};
use common::{ADMIN_TABLE, RawRequest, TestServer, config_from, repo_path};
use fantoccini::Locator;
use porter_providers::Secret;

/// `porter send ARGS` against `served`; the status line it prints.
fn send(served: &Served, args: &[&str]) -> String {
    let output = porter()
        .arg("send")
        .args(args)
        .args(["--url", &served.url()])
        .current_dir(repo_path(""))
        .output()
        .expect("porter send runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_newcomer_sees_a_refused_request_with_its_diagnosis_and_guest_data_stays_text() {
    let dir = tempfile::tempdir().expect("dir");
    let served = Served::start(dir.path(), &[]);
    let login = served
        .login_url
        .clone()
        .expect("the embedded default prints a login URL");
    let good = send(&served, &["whatsapp", "fixtures/meta/text_message/body"]);
    assert!(good.contains("200"), "{good}");
    let wrong = send(
        &served,
        &[
            "whatsapp",
            "fixtures/meta/text_message/body",
            "--secret",
            "a-secret-from-another-app",
        ],
    );
    assert!(wrong.contains("401"), "{wrong}");
    let xss = dir.path().join("xss.json");
    std::fs::write(
        &xss,
        r#"{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"P"},"contacts":[{"profile":{"name":"<script>alert(1)</script>"},"wa_id":"1"}],"messages":[{"from":"1","id":"wamid.xss","timestamp":"1710511200","type":"text","text":{"body":"<img src=x onerror=alert(2)>"}}]}}]}]}"#,
    )
    .expect("write");
    let xss_sent = send(&served, &["whatsapp", xss.to_str().expect("path")]);
    assert!(xss_sent.contains("200"), "{xss_sent}");

    let browser = Browser::start().await;
    browser.goto(&login).await;
    let url = browser.client.current_url().await.expect("url");
    assert_eq!(url.path(), "/", "logged in and sent to the overview");
    assert!(
        url.query().is_none(),
        "the token is gone from the address bar"
    );
    assert_eq!(browser.text("h1").await, "Overview");
    browser.screenshot("overview").await;

    browser.click("a[href='/requests']").await;
    let table = browser.text("#requests").await;
    assert!(table.contains("signature_mismatch"), "{table}");
    assert!(table.contains("no_known_variant"), "{table}");
    assert!(table.contains("accepted"), "{table}");
    let diagnosis = browser.text(".diagnosis").await;
    assert!(
        diagnosis.contains("check that the secret is the one the provider signs with"),
        "{diagnosis}"
    );
    browser.screenshot("requests").await;

    browser.click("a[href='/events']").await;
    let list = browser.text("#events").await;
    assert!(!list.contains("alert"), "no guest data in the list: {list}");
    // The newest event is the one with the script in its profile name.
    browser.click("#events tbody tr:first-child a").await;
    let event = browser.text("#event").await;
    assert!(
        event.contains("<script>alert(1)</script>"),
        "shown as text: {event}"
    );
    assert!(event.contains("<img src=x onerror=alert(2)>"), "{event}");
    assert!(
        browser.client.get_alert_text().await.is_err(),
        "no script ran: no alert is open"
    );
    let scripts = browser
        .client
        .find_all(Locator::Css("script"))
        .await
        .expect("find");
    assert!(scripts.is_empty(), "the console has no script at all");
    browser.screenshot("event").await;
    browser.close().await;
    let (stopped, _, _) = served.terminate();
    assert!(stopped);
}

const SECRET: &str = "console-browser-meta-secret";

fn whatsapp(id: &str) -> RawRequest {
    let body = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"P"}},"messages":[{{"from":"1","id":"{id}","timestamp":"1710511200","type":"text","text":{{"body":"hi"}}}}]}}}}]}}]}}"#
    );
    let signature = porter_providers::meta::signature(&Secret::new(SECRET), body.as_bytes());
    RawRequest::post("/webhooks/whatsapp", body).header("X-Hub-Signature-256", &signature)
}

#[tokio::test]
async fn an_operator_replays_a_dead_letter_and_pauses_a_destination() {
    let receiver = Receiver::start(vec![Answer::status(500), Answer::status(500)]).await;
    let config = config_from(
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

[[destinations]]
name = "housekeeping"
kind = "http"
url = "{}"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
retry = ["50ms"]

{ADMIN_TABLE}
"#,
            receiver.url()
        ),
        &[],
    );
    let server = TestServer::start_delivering(config).await;
    let admin = format!("http://{}", server.admin_addr.expect("admin"));
    assert_eq!(server.send(&whatsapp("wamid.dead")).await.status, 200);
    receiver.wait_for(2, Duration::from_secs(10)).await;

    let browser = Browser::start().await;
    browser.log_in(&admin, common::ADMIN_TOKEN).await;
    assert_eq!(browser.text("h1").await, "Overview");

    // The dead letter shows up (the worker may still be moving it) and is replayed.
    let mut listed = String::new();
    for _ in 0..50 {
        browser.goto(&format!("{admin}/dead-letters")).await;
        listed = browser.text("main").await;
        if listed.contains("status 500") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(listed.contains("housekeeping"), "{listed}");
    browser.screenshot("dead-letters").await;
    browser.click("#dead-letters button").await;
    assert!(browser.text(".notice").await.contains("replayed"));
    let received = receiver.wait_for(3, Duration::from_secs(10)).await;
    let event_id = received[2].event()["id"].as_str().expect("id").to_owned();
    let mut deliveries = String::new();
    for _ in 0..50 {
        browser.goto(&format!("{admin}/events/{event_id}")).await;
        deliveries = browser.text("#deliveries").await;
        if deliveries.contains("delivered") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(deliveries.contains("delivered"), "{deliveries}");
    assert!(deliveries.contains("status 500"), "every attempt is listed");

    // Pause holds deliveries; resume releases them.
    browser.goto(&format!("{admin}/destinations")).await;
    browser
        .click("form[action='/destinations/housekeeping/pause'] button")
        .await;
    assert!(browser.text(".notice").await.contains("paused"));
    assert!(browser.text("main table").await.contains("paused"));
    browser.screenshot("destinations").await;
    assert_eq!(server.send(&whatsapp("wamid.held")).await.status, 200);
    // Three rounds of the worker were three chances to deliver.
    server.after_rounds("housekeeping", 3).await;
    assert_eq!(receiver.received().len(), 3, "held while paused");
    browser
        .click("form[action='/destinations/housekeeping/resume'] button")
        .await;
    assert!(browser.text(".notice").await.contains("resumed"));
    receiver.wait_for(4, Duration::from_secs(10)).await;
    browser.close().await;
    server.stop().await;
}

fn whatsapp_from(id: &str, from: &str) -> RawRequest {
    let body = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"P"}},"messages":[{{"from":"{from}","id":"{id}","timestamp":"1710511200","type":"text","text":{{"body":"hi"}}}}]}}}}]}}]}}"#
    );
    let signature = porter_providers::meta::signature(&Secret::new(SECRET), body.as_bytes());
    RawRequest::post("/webhooks/whatsapp", body).header("X-Hub-Signature-256", &signature)
}

#[tokio::test]
async fn an_operator_finds_a_guest_then_erases_her() {
    let config = config_from(
        &format!(
            r#"
[store]
kind = "memory"
print_events = false

[privacy]
key = "a-console-test-privacy-key-of-32-bytes"

[[sources]]
name = "whatsapp"
provider = "meta"
path = "/webhooks/whatsapp"
secrets = ["{SECRET}"]

{ADMIN_TABLE}
"#
        ),
        &[],
    );
    let server = TestServer::start_delivering(config).await;
    let admin = format!("http://{}", server.admin_addr.expect("admin"));
    for (id, from) in [
        ("wamid.g1", "4915123456789"),
        ("wamid.g2", "4915123456789"),
        ("wamid.other", "4915100000000"),
    ] {
        assert_eq!(server.send(&whatsapp_from(id, from)).await.status, 200);
    }

    let browser = Browser::start().await;
    browser.log_in(&admin, common::ADMIN_TOKEN).await;
    browser.goto(&format!("{admin}/guest-data")).await;
    assert_eq!(browser.text("h1").await, "Guest data");
    assert!(browser.text("main").await.contains("No erasures yet"));
    browser
        .client
        .find(Locator::Css("#value"))
        .await
        .expect("value field")
        .send_keys("+49 151 2345 6789")
        .await
        .expect("type");
    browser.click("#erase button[value=find]").await;
    // A dry run: counted, nothing changed yet.
    let found = browser.text("#findings").await;
    assert!(found.contains("events 2"), "{found}");
    assert_eq!(server.memory().events().len(), 3, "finding changes nothing");
    browser.screenshot("guest-data-found").await;
    browser.click("#findings button.danger").await;
    assert!(browser.text(".notice").await.contains("Erased"));
    let records = browser.text("#erasures").await;
    assert!(
        records.contains("phone") && records.contains("pii_"),
        "{records}"
    );
    assert!(
        !records.contains("2345"),
        "the value is not shown: {records}"
    );
    browser.screenshot("guest-data-erased").await;
    let left: Vec<String> = server
        .memory()
        .events()
        .iter()
        .map(|e| e.event_type().as_str().to_owned())
        .collect();
    assert_eq!(left, ["message.received", "erasure.requested"], "{left:?}");
    browser.close().await;
    server.stop().await;
}
