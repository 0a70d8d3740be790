//! The console in a real browser (headless Chromium through ChromeDriver): what a newcomer
//! sees after `porter serve` and two `porter send`s, and what an operator does with dead
//! letters and destinations, and every page read at 1 280 and 800 px wide. A screenshot of
//! each page is saved under `target/console-screenshots/` for review (`<page>-<width>.png`
//! holds the whole page).

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

/// A WhatsApp delivery of `count` messages, signed with [`SECRET`].
fn whatsapp_batch(prefix: &str, count: usize) -> RawRequest {
    let messages: Vec<String> = (0..count)
        .map(|i| {
            format!(
                r#"{{"from":"4915123456789","id":"{prefix}{i}","timestamp":"1710511200","type":"text","text":{{"body":"hi"}}}}"#
            )
        })
        .collect();
    let body = format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"P"}},"messages":[{}]}}}}]}}]}}"#,
        messages.join(",")
    );
    let signature = porter_providers::meta::signature(&Secret::new(SECRET), body.as_bytes());
    RawRequest::post("/webhooks/whatsapp", body).header("X-Hub-Signature-256", &signature)
}

/// The widths every page is read at: a laptop's and a narrow window's.
const WIDTHS: [u32; 2] = [1280, 800];

/// Visits `url` at each width: the page must not be wider than the window, and a screenshot
/// of the whole page is saved as `<name>-<width>.png`.
async fn read_at_every_width(browser: &Browser, url: &str, name: &str) {
    for width in WIDTHS {
        browser.viewport(width, 1000).await;
        browser.goto(url).await;
        browser
            .assert_no_horizontal_overflow(&format!("{name} at {width} px"))
            .await;
        browser
            .screenshot_page(&format!("{name}-{width}"), width)
            .await;
    }
    browser.viewport(1280, 1000).await;
}

#[tokio::test]
async fn every_page_reads_at_1280_and_800_pixels() {
    // Every attempt fails: each event is dead-lettered after its two attempts.
    let receiver = Receiver::start(Vec::new()).await;
    receiver.always(Answer::status(500));
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("porter.toml");
    std::fs::write(
        &config,
        format!(
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

[[alerts]]
name = "whatsapp-refusals"
when = "refusal_share"
source = "whatsapp"
above = 0.5

{ADMIN_TABLE}
"#,
            receiver.url()
        ),
    )
    .expect("write the configuration");
    let served = Served::start(dir.path(), &["--config", config.to_str().expect("utf-8")]);
    let admin = format!("http://{}", served.admin_addr.expect("admin"));
    // One request of four events, two of one, one forged.
    let mut sent = 0;
    for request in [
        whatsapp_batch("wamid.batch", 4),
        whatsapp("wamid.one"),
        whatsapp("wamid.two"),
    ] {
        assert_eq!(request.send(served.addr).await.status, 200);
        sent += 1;
    }
    let body = r#"{"object":"whatsapp_business_account","entry":[]}"#;
    let signature =
        porter_providers::meta::signature(&Secret::new("another-app-secret"), body.as_bytes());
    let forged =
        RawRequest::post("/webhooks/whatsapp", body).header("X-Hub-Signature-256", &signature);
    assert_eq!(forged.send(served.addr).await.status, 401);
    sent += 1;
    receiver.wait_for(12, Duration::from_secs(10)).await;

    let browser = Browser::start().await;
    read_at_every_width(&browser, &format!("{admin}/login"), "login").await;
    browser.log_in(&admin, common::ADMIN_TOKEN).await;

    // The overview: charts over a window chosen on the page, with their figures beside them.
    read_at_every_width(&browser, &format!("{admin}/"), "overview").await;
    browser.goto(&format!("{admin}/")).await;
    assert_eq!(
        browser.text("svg text.window").await,
        "last 5 min · 10 s points",
        "a fresh instance shows the last five minutes"
    );
    let figures = browser.text("figure.chart dl.figures").await;
    assert!(
        figures.contains(&format!("requests\n{sent}")),
        "the requests beside the chart: {figures}"
    );
    assert!(figures.contains("refused\n1"), "{figures}");
    let charts = browser
        .script("return document.querySelectorAll('figure.chart dl.figures').length;")
        .await;
    assert_eq!(charts.as_u64(), Some(4), "every chart has its figures");
    browser.click("nav.windows a[href='/?window=24h']").await;
    assert_eq!(
        browser.text("svg text.window").await,
        "last 24 h · 5 min points"
    );
    let figures = browser.text("figure.chart dl.figures").await;
    assert!(
        figures.contains(&format!("requests\n{sent}")),
        "the day's series holds the same requests: {figures}"
    );
    browser.screenshot_page("overview-24h-1280", 1280).await;
    browser.click("nav.windows a[href='/?window=1h']").await;
    assert_eq!(
        browser.text("svg text.window").await,
        "last hour · 10 s points"
    );

    // The requests: the whole table fits at 1280 px, a diagnosis keeps its row short, a
    // latency never wraps, ids are shortened with the whole id in their title.
    read_at_every_width(&browser, &format!("{admin}/requests"), "requests").await;
    browser.goto(&format!("{admin}/requests")).await;
    let latency = browser
        .script(
            "const cells = [...document.querySelectorAll('#requests tbody td:last-child')]; \
             const box = document.querySelector('#requests').closest('div.scroll').getBoundingClientRect(); \
             return cells.map(c => { const r = c.getBoundingClientRect(); \
                 const range = document.createRange(); range.selectNodeContents(c); \
                 return [r.left, r.right, range.getClientRects().length, c.textContent]; }) \
                 .concat([[Math.min(window.innerWidth, box.right)]]);",
        )
        .await;
    let rows = latency.as_array().expect("cells");
    let viewport = rows.last().expect("width")[0].as_f64().expect("width");
    assert_eq!(rows.len() - 1, sent, "{latency}");
    for cell in &rows[..rows.len() - 1] {
        let (left, right) = (
            cell[0].as_f64().unwrap_or(0.0),
            cell[1].as_f64().unwrap_or(0.0),
        );
        assert!(
            left >= 0.0 && right <= viewport,
            "the latency column is on screen at 1280 px, unscrolled: {cell} in {viewport}"
        );
        assert_eq!(cell[2], 1, "a latency is one line: {cell}");
        assert!(
            cell[3].as_str().is_some_and(|t| t.ends_with("\u{a0}ms")),
            "{cell}"
        );
    }
    let diagnosed = browser
        .script(
            "const d = document.querySelector('#requests details.diagnosis'); \
             const s = d.querySelector('summary'); \
             const line = parseFloat(getComputedStyle(d).lineHeight); \
             return [s.getBoundingClientRect().height, d.closest('tr').getBoundingClientRect().height, line];",
        )
        .await;
    let (summary, row, line) = (
        diagnosed[0].as_f64().unwrap_or(f64::MAX),
        diagnosed[1].as_f64().unwrap_or(f64::MAX),
        diagnosed[2].as_f64().unwrap_or(0.0),
    );
    assert!(
        summary <= line * 2.0 + 1.0 && row <= line * 5.0,
        "a diagnosis shows two lines and keeps its row short: {diagnosed}"
    );
    let diagnosis = browser.text(".diagnosis").await;
    assert!(diagnosis.contains("no_known_variant"), "{diagnosis}");
    let links = browser
        .script(
            "return [...document.querySelectorAll('#requests a.id')] \
                 .map(a => [a.textContent, a.title, a.getAttribute('href'), !a.closest('details.more')]);",
        )
        .await;
    let links = links.as_array().expect("links");
    assert_eq!(links.len(), 4 + 1 + 1, "one link per event: {links:?}");
    assert_eq!(
        links.iter().filter(|l| l[3] == true).count(),
        4,
        "two links per row at most, the rest folded: {links:?}"
    );
    for link in links {
        let (shown, title, href) = (
            link[0].as_str().unwrap_or(""),
            link[1].as_str().unwrap_or(""),
            link[2].as_str().unwrap_or(""),
        );
        assert!(shown.contains('…') && shown.len() < title.len(), "{link}");
        assert_eq!(href, format!("/events/{title}"), "{link}");
    }
    assert!(
        browser
            .text("#requests details.more summary")
            .await
            .contains("+2 more")
    );
    assert_dates(&browser, "requests").await;

    // The events, then the dead-lettered event with its attempts beside their row.
    read_at_every_width(&browser, &format!("{admin}/events"), "events").await;
    browser.goto(&format!("{admin}/events")).await;
    assert_dates(&browser, "events").await;
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
    read_at_every_width(&browser, &format!("{admin}/dead-letters"), "dead-letters").await;
    browser.goto(&format!("{admin}/dead-letters")).await;
    let event = browser
        .script("return document.querySelector('#dead-letters a.id').title;")
        .await;
    let event = event.as_str().expect("an event id").to_owned();
    read_at_every_width(&browser, &format!("{admin}/events/{event}"), "event").await;
    browser.goto(&format!("{admin}/events/{event}")).await;
    let offset = browser
        .script(
            "const row = document.querySelector('#deliveries tbody tr'); \
             const li = row.querySelector('ol.attempts li'); \
             const first = row.cells[0]; \
             const top = first.getBoundingClientRect().top + parseFloat(getComputedStyle(first).paddingTop); \
             return li.getBoundingClientRect().top - top;",
        )
        .await;
    assert!(
        offset.as_f64().is_some_and(|d| d.abs() <= 3.0),
        "the first attempt is on its row's first line: {offset} px off"
    );
    assert_dates(&browser, "event").await;

    // Guest data, with no [privacy] key: said on arrival, and the form cannot be sent.
    read_at_every_width(&browser, &format!("{admin}/guest-data"), "guest-data").await;
    browser.goto(&format!("{admin}/guest-data")).await;
    let notice = browser
        .client
        .find(Locator::Css("#no-privacy-key"))
        .await
        .expect("the notice is on the page before any click");
    assert!(notice.is_displayed().await.expect("displayed"));
    assert!(notice.text().await.expect("text").contains("[privacy] key"));
    let find = browser
        .client
        .find(Locator::Css("#erase button[value=find]"))
        .await
        .expect("find");
    assert!(
        !find.is_enabled().await.expect("enabled"),
        "Find is disabled"
    );
    let gaps = browser
        .script(
            "const r = [...document.querySelectorAll('#erase > *')].map(e => e.getBoundingClientRect()); \
             return r.slice(1).map((b, i) => b.top >= r[i].bottom ? 99 : b.left - r[i].right);",
        )
        .await;
    for gap in gaps.as_array().expect("gaps") {
        assert!(
            gap.as_f64().is_some_and(|g| g >= 6.0),
            "controls apart: {gaps}"
        );
    }

    read_at_every_width(&browser, &format!("{admin}/alerts"), "alerts").await;
    read_at_every_width(&browser, &format!("{admin}/destinations"), "destinations").await;
    browser.goto(&format!("{admin}/alerts")).await;
    assert!(
        browser
            .text("#alert-rules")
            .await
            .contains("whatsapp-refusals")
    );
    browser.close().await;
    let (stopped, _, _) = served.terminate();
    assert!(stopped);
}

/// Every time the page shows is in the console's one format, its milliseconds whole (the
/// event's own JSON, in `pre`, is the event's data and stays as stored).
async fn assert_dates(browser: &Browser, page: &str) {
    let times = browser
        .script(
            "const main = document.querySelector('main').cloneNode(true); \
             main.querySelectorAll('pre').forEach(p => p.remove()); \
             return [...main.textContent.matchAll(/\\d{4}-\\d\\d-\\d\\d[ T][0-9:.]+Z?/g)].map(m => m[0]);",
        )
        .await;
    let times = times.as_array().expect("times");
    assert!(!times.is_empty(), "{page} shows times");
    for time in times {
        let time = time.as_str().unwrap_or_default();
        assert!(
            is_console_time(time),
            "{page}: `{time}` is not in the console's format"
        );
    }
}

/// `2026-12-06 09:13:35.450Z`: digits where digits go, three after the point.
fn is_console_time(text: &str) -> bool {
    const SHAPE: &[u8] = b"dddd-dd-dd dd:dd:dd.dddZ";
    text.len() == SHAPE.len()
        && text.bytes().zip(SHAPE).all(|(byte, shape)| match shape {
            b'd' => byte.is_ascii_digit(),
            other => byte == *other,
        })
}
