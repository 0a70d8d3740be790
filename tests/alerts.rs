//! Alerts end to end: porter served through its composition root (`App::serve`, which starts
//! the evaluation), a wall of forged requests, and real receivers: an HTTP listener verifying
//! the Standard Webhooks signature, a Slack-shaped one, and an SMTP server (`aiosmtpd`).
//! Time moves on a manual clock; the tests wait for what arrives, with deadlines.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::receiver::{Answer, Receiver, verify_standard_webhooks};
use common::smtp::SmtpServer;
use common::{ADMIN_TOKEN, RawRequest, config_from, whatsapp};
use porter::testing::app::App;
use porter::testing::clock::{Clock, Hand};
use porter::testing::delivery::Plan;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const SECRET: &str = "meta-app-secret";
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WAIT: Duration = Duration::from_secs(20);

struct Running {
    addr: SocketAddr,
    admin: SocketAddr,
    hand: Hand,
    /// Where the manual clock started, and how far [`Running::advance`] moved it.
    start: jiff::Timestamp,
    moved: std::sync::Mutex<Duration>,
    stop: Option<oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Serves `tables` (notify targets and alert rules) beside a WhatsApp source, on a manual
    /// clock that starts at the real time (receivers check signature timestamps against it).
    async fn start(tables: &str) -> Self {
        // The memory store unless the test names one.
        let store = if tables.contains("[store]") {
            ""
        } else {
            "[store]\nkind = \"memory\"\nprint_events = false\n"
        };
        let text = format!(
            "{store}\n[[sources]]\nname = \"whatsapp\"\nprovider = \"meta\"\npath = \"/webhooks/whatsapp\"\nsecrets = [\"{SECRET}\"]\n{}\n{tables}",
            common::ADMIN_TABLE
        );
        let config = config_from(&text, &[]);
        let now = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).expect("now");
        let (clock, hand) = Clock::manual(now);
        let app = App::build(config, Plan::default(), clock)
            .expect("app")
            .with_alert_timing(
                Duration::from_millis(50),
                vec![Duration::from_millis(50), Duration::from_millis(50)],
            );
        let admin_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let admin = admin_listener.local_addr().expect("addr");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(
            app.with_admin_listener(admin_listener)
                .serve(listener, async {
                    let _ = stopped.await;
                }),
        );
        Self {
            addr,
            admin,
            hand,
            start: now,
            moved: std::sync::Mutex::new(Duration::ZERO),
            stop: Some(stop),
            served,
        }
    }

    async fn send(&self, request: &RawRequest) -> u16 {
        request.send(self.addr).await.status
    }

    /// `count` WhatsApp deliveries signed with the wrong secret: a rotated secret's wall of 401s.
    async fn forged(&self, count: usize) {
        for i in 0..count {
            let status = self
                .send(&whatsapp::messages(
                    "the-old-secret",
                    &[format!("wamid.forged{i}")],
                ))
                .await;
            assert_eq!(status, 401, "a forged request is refused");
        }
    }

    async fn genuine(&self, count: usize) {
        for i in 0..count {
            let status = self
                .send(&whatsapp::messages(SECRET, &[format!("wamid.ok{i}")]))
                .await;
            assert_eq!(status, 200);
        }
    }

    async fn admin_get(&self, path: &str) -> common::RawResponse {
        RawRequest::get(path)
            .header("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
            .send(self.admin)
            .await
    }

    async fn alerts(&self) -> serde_json::Value {
        let response = self.admin_get("/api/alerts").await;
        assert_eq!(response.status, 200, "{}", response.text());
        serde_json::from_slice(&response.body).expect("JSON")
    }

    /// Waits until the API shows rule `name` in `state`.
    async fn wait_state(&self, name: &str, state: &str) -> serde_json::Value {
        self.wait_rule(name, |rule| rule["state"] == state).await
    }

    /// Waits until rule `name`, as the API shows it, satisfies `done`; the whole answer.
    async fn wait_rule(
        &self,
        name: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let alerts = self.alerts().await;
            let rule = alerts["rules"]
                .as_array()
                .and_then(|rules| rules.iter().find(|r| r["name"] == name))
                .cloned()
                .expect("the rule is listed");
            if done(&rule) {
                return alerts;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{name} never got there: {alerts:#}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Moves the clock by `by` and waits for an evaluation at the new time.
    async fn advance(&self, name: &str, by: Duration) -> serde_json::Value {
        self.hand.advance(by);
        let now = self.start + jiff::SignedDuration::try_from(self.moved(by)).expect("duration");
        self.wait_rule(name, |rule| {
            rule["evaluated_at"]
                .as_str()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .is_some_and(|at| at >= now)
        })
        .await
    }

    /// How far the clock has moved in all, after moving it by `by` now.
    fn moved(&self, by: Duration) -> Duration {
        let mut moved = self.moved.lock().expect("lock");
        *moved += by;
        *moved
    }

    async fn stop(mut self) {
        let _ = self.stop.take().expect("running").send(());
        self.served.await.expect("task").expect("served");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wall_of_401s_fires_to_every_target_and_resolves() {
    let webhook = Receiver::start(Vec::new()).await;
    let slack = Receiver::start(Vec::new()).await;
    let smtp = SmtpServer::start();
    let running = Running::start(&format!(
        r#"
[[notify]]
name = "ops"
kind = "webhook"
url = "{}"
secret = "{WHSEC}"

[[notify]]
name = "chat"
kind = "slack"
url = "{}"

[[notify]]
name = "mail"
kind = "email"
smtp = "127.0.0.1:{}"
from = "porter <porter@example.com>"
to = ["ops@example.com", "oncall@example.com"]

[[alerts]]
name = "whatsapp-refusals"
when = "refusal_share"
source = "whatsapp"
above = 0.5
window = "1m"
for = "0s"
repeat = "1h"
notify = ["ops", "chat", "mail"]
"#,
        webhook.url(),
        slack.url(),
        smtp.port
    ))
    .await;

    // Fewer than the minimum (10) never page, whatever their share.
    running.forged(9).await;
    running.wait_state("whatsapp-refusals", "ok").await;
    running.forged(1).await;
    let alerts = running.wait_state("whatsapp-refusals", "firing").await;
    assert_eq!(alerts["history"][0]["state"], "firing", "{alerts:#}");

    let received = webhook.wait_for(1, WAIT).await;
    let firing = &received[0];
    assert!(
        verify_standard_webhooks(WHSEC, firing),
        "the notification verifies as a Standard Webhooks message: {:?}",
        firing.headers
    );
    assert_eq!(firing.header("content-type"), "application/json");
    let body = firing.event();
    assert_eq!(body["alert"], "whatsapp-refusals");
    assert_eq!(body["state"], "firing");
    assert_eq!(body["details"]["refused"], 10);
    assert_eq!(body["details"]["requests"], 10);
    assert_eq!(
        body["details"]["rejections"]["signature_mismatch"], 10,
        "{body:#}"
    );
    assert!(
        body["summary"]
            .as_str()
            .is_some_and(|s| s.contains("10 of 10 requests refused")),
        "{body:#}"
    );
    let since: jiff::Timestamp = body["since"]
        .as_str()
        .expect("since")
        .parse()
        .expect("RFC 3339");
    assert_eq!(
        since, running.start,
        "it holds since the evaluation that saw it, on porter's clock"
    );

    let chat = slack.wait_for(1, WAIT).await;
    let text = chat[0].event()["text"].as_str().expect("text").to_owned();
    assert!(
        text.contains("FIRING whatsapp-refusals") && text.contains("10 of 10"),
        "{text}"
    );

    let mails = smtp.wait_for(1, WAIT).await;
    assert_eq!(mails[0].from, "porter@example.com");
    assert_eq!(mails[0].to, ["ops@example.com", "oncall@example.com"]);
    assert!(
        mails[0]
            .data
            .contains("Subject: [porter] FIRING whatsapp-refusals"),
        "{}",
        mails[0].data
    );
    assert!(mails[0].data.contains("10 of 10 requests refused"));

    // The window moves past the forged requests; genuine ones follow: resolved.
    running.hand.advance(Duration::from_secs(70));
    running.genuine(10).await;
    let alerts = running.wait_state("whatsapp-refusals", "ok").await;
    assert_eq!(alerts["history"][0]["state"], "resolved", "{alerts:#}");
    assert_eq!(alerts["history"][1]["state"], "firing");
    let received = webhook.wait_for(2, WAIT).await;
    let resolved = &received[1];
    assert!(verify_standard_webhooks(WHSEC, resolved));
    assert_ne!(
        resolved.header("webhook-id"),
        firing.header("webhook-id"),
        "each notification is a message of its own"
    );
    let body = resolved.event();
    assert_eq!(body["state"], "resolved");
    assert_eq!(body["details"]["fired_since"], since.to_string());
    assert!(
        slack.wait_for(2, WAIT).await[1].event()["text"]
            .as_str()
            .is_some_and(|t| t.contains("RESOLVED whatsapp-refusals"))
    );
    assert!(
        smtp.wait_for(2, WAIT).await[1]
            .data
            .contains("Subject: [porter] RESOLVED whatsapp-refusals")
    );
    let targets = &alerts["targets"];
    assert_eq!(targets.as_array().map(Vec::len), Some(3), "{alerts:#}");

    // The console lists the rule and its history, without script.
    let page = running.admin_get("/alerts").await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("href=\"/alerts\""), "the nav links the page");
    assert!(html.contains("whatsapp-refusals") && html.contains("resolved"));
    assert!(!html.contains("<script"));

    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_target_is_retried_a_bounded_number_of_times_and_others_still_get_theirs() {
    // Answers 500 twice, then 200: the third attempt goes through.
    let flaky = Receiver::start(vec![Answer::status(500), Answer::status(500)]).await;
    let steady = Receiver::start(Vec::new()).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let running = Running::start(&format!(
        r#"
[[notify]]
name = "flaky"
kind = "webhook"
url = "{}"
secret = "{WHSEC}"

[[notify]]
name = "dead"
kind = "slack"
url = "http://{closed}/services/T0/B0/sekr1tpath"

[[notify]]
name = "steady"
kind = "slack"
url = "{}"

[[alerts]]
name = "any-refusal"
when = "refusal_share"
source = "whatsapp"
above = 0.0
min_requests = 1
repeat = "0s"
notify = ["flaky", "dead", "steady"]
"#,
        flaky.url(),
        steady.url()
    ))
    .await;
    running.forged(1).await;
    running.wait_state("any-refusal", "firing").await;
    steady.wait_for(1, WAIT).await;
    let attempts = flaky.wait_for(3, WAIT).await;
    assert_eq!(
        attempts[0].header("webhook-id"),
        attempts[2].header("webhook-id"),
        "a retry is the same message"
    );
    assert!(attempts.iter().all(|a| verify_standard_webhooks(WHSEC, a)));
    let deadline = std::time::Instant::now() + WAIT;
    let dead = loop {
        let alerts = running.alerts().await;
        let targets = alerts["targets"].as_array().cloned().unwrap_or_default();
        let dead = targets.iter().find(|t| t["name"] == "dead").cloned();
        let flaky = targets.iter().find(|t| t["name"] == "flaky").cloned();
        if let (Some(dead), Some(flaky)) = (dead, flaky)
            && dead["failed"] == 1
            && flaky["sent"] == 1
        {
            break dead;
        }
        assert!(std::time::Instant::now() < deadline, "{alerts:#}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let error = dead["last_error"].as_str().expect("a reason");
    assert!(
        error.starts_with(&format!("connection failed ({closed})")),
        "{error}"
    );
    assert!(
        !error.contains("sekr1tpath"),
        "the URL is never shown: {error}"
    );
    // Three attempts and no more: nothing further arrives at the flaky target.
    assert_eq!(flaky.received().len(), 3);
    running.stop().await;
}

fn rule<'a>(alerts: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    alerts["rules"]
        .as_array()
        .and_then(|rules| rules.iter().find(|r| r["name"] == name))
        .expect("the rule is listed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_gone_quiet_fires_after_its_window_and_resolves_on_its_next_request() {
    let webhook = Receiver::start(Vec::new()).await;
    let running = Running::start(&format!(
        r#"
[[notify]]
name = "ops"
kind = "webhook"
url = "{}"
secret = "{WHSEC}"

[[alerts]]
name = "whatsapp-quiet"
when = "quiet"
source = "whatsapp"
window = "10m"
min_requests = 3
notify = ["ops"]
"#,
        webhook.url()
    ))
    .await;
    running.genuine(3).await;
    running
        .wait_rule("whatsapp-quiet", |rule| {
            rule["details"]["requests_in_the_hour_before"] == 3
        })
        .await;
    let alerts = running
        .advance("whatsapp-quiet", Duration::from_secs(9 * 60))
        .await;
    assert_eq!(
        rule(&alerts, "whatsapp-quiet")["state"],
        "ok",
        "nine minutes of silence: {alerts:#}"
    );
    // Silence is measured from the end of the last request's 10-second bucket: at most 10 s
    // after ten minutes, it has lasted the window.
    running
        .advance("whatsapp-quiet", Duration::from_secs(70))
        .await;
    running.wait_state("whatsapp-quiet", "firing").await;
    let received = webhook.wait_for(1, WAIT).await;
    assert_eq!(
        received[0].header("webhook-timestamp"),
        (running.start.as_second() + 10 * 60 + 10).to_string(),
        "signed at porter's time (ten minutes ahead of the real one here)"
    );
    let body = received[0].event();
    assert_eq!(body["state"], "firing");
    assert!(
        body["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with("whatsapp: no request for 10m")),
        "{body:#}"
    );
    // Two hours later it is still quiet (the last request is remembered past the activity's
    // hour), and the hourly reminder went out.
    let alerts = running
        .advance("whatsapp-quiet", Duration::from_secs(2 * 3600))
        .await;
    assert_eq!(rule(&alerts, "whatsapp-quiet")["state"], "firing");
    assert_eq!(alerts["history"][0]["repeat"], true, "{alerts:#}");
    let received = webhook.wait_for(2, WAIT).await;
    let reminder = received[1].event();
    assert_eq!(reminder["state"], "firing");
    assert_eq!(reminder["since"], body["since"], "the same alert, still");
    running.genuine(1).await;
    running.wait_state("whatsapp-quiet", "ok").await;
    let received = webhook.wait_for(3, WAIT).await;
    assert_eq!(received[2].event()["state"], "resolved");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_store_fires_store_unready() {
    let slack = Receiver::start(Vec::new()).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let running = Running::start(&format!(
        r#"
[store]
kind = "redis"
url = "redis://{closed}"

[[notify]]
name = "chat"
kind = "slack"
url = "{}"

[[alerts]]
name = "store"
when = "store_unready"
notify = ["chat"]
"#,
        slack.url()
    ))
    .await;
    let alerts = running.wait_state("store", "firing").await;
    let text = slack.wait_for(1, WAIT).await[0].event()["text"]
        .as_str()
        .expect("text")
        .to_owned();
    assert!(text.contains("FIRING store"), "{text}");
    assert!(
        text.contains("not taking events: store unavailable"),
        "{text}"
    );
    assert_eq!(rule(&alerts, "store")["details"]["ready"], false);
    running.stop().await;
}
