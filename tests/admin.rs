//! The admin listener end to end: the token and the session cookie, every API endpoint, replay
//! and pause against a real receiver on both stores, the bounded ring, and the console's pages
//! (escaping included). The browser's view is in `tests/console_browser.rs`.

mod common;

use std::time::{Duration, Instant};

use common::receiver::{Answer, Receiver};
use common::redis_server::RedisServer;
use common::{ADMIN_TABLE, ADMIN_TOKEN, RawRequest, RawResponse, TestServer, config_from};
use porter_providers::Secret;
use serde_json::Value;

const SECRET: &str = "admin-test-meta-secret";
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn config(store: &str, destinations: &str, admin: &str) -> porter::testing::config::Config {
    config_from(
        &format!(
            r#"
[store]
{store}

[[sources]]
name = "whatsapp"
provider = "meta"
path = "/webhooks/whatsapp"
secrets = ["{SECRET}"]

{destinations}

{admin}
"#
        ),
        &[],
    )
}

const MEMORY: &str = "kind = \"memory\"\nprint_events = false";

fn hooks(url: &str) -> String {
    format!(
        "[[destinations]]\nname = \"hooks\"\nkind = \"http\"\nurl = \"{url}\"\nsecret = \"{WHSEC}\"\nretry = [\"50ms\"]\n"
    )
}

fn whatsapp_body(id: &str, profile: &str) -> String {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"P"}},"contacts":[{{"profile":{{"name":{profile}}},"wa_id":"1"}}],"messages":[{{"from":"1","id":"{id}","timestamp":"1710511200","type":"text","text":{{"body":"hi"}}}}]}}}}]}}]}}"#,
        profile = serde_json::to_string(profile).expect("json")
    )
}

fn whatsapp(id: &str) -> RawRequest {
    signed(whatsapp_body(id, "Guest"), SECRET)
}

fn signed(body: String, secret: &str) -> RawRequest {
    let signature = porter_providers::meta::signature(&Secret::new(secret), body.as_bytes());
    RawRequest::post("/webhooks/whatsapp", body).header("X-Hub-Signature-256", &signature)
}

fn json(response: &RawResponse) -> Value {
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|_| panic!("JSON expected: {} {}", response.status, response.text()))
}

/// Polls `check` until it holds or `limit` passes.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn every_admin_route_wants_the_token() {
    let server = TestServer::start(config(MEMORY, "", ADMIN_TABLE)).await;
    let routes = [
        ("GET", "/metrics"),
        ("GET", "/api/overview"),
        ("GET", "/api/requests"),
        ("GET", "/api/events"),
        ("GET", "/api/events/evt_00000000000000000000000000000000"),
        ("GET", "/api/dlq"),
        ("POST", "/api/dlq/replay"),
        ("POST", "/api/dlq/1-0/replay"),
        ("POST", "/api/destinations/hooks/pause"),
        ("POST", "/api/destinations/hooks/resume"),
        ("GET", "/api/stats?window=1h"),
        ("GET", "/"),
        ("GET", "/requests"),
        ("GET", "/events"),
        ("GET", "/dead-letters"),
        ("GET", "/destinations"),
    ];
    for (method, path) in routes {
        let request = RawRequest {
            method: method.into(),
            ..RawRequest::get(path)
        };
        let anonymous = server.admin_raw(&request).await;
        assert_eq!(anonymous.status, 401, "{method} {path} without a token");
        let wrong = server
            .admin_raw(&request.clone().header(
                "Authorization",
                "Bearer not-the-admin-token-but-long-enough",
            ))
            .await;
        assert_eq!(wrong.status, 401, "{method} {path} with a wrong token");
        assert!(
            !wrong.text().contains(ADMIN_TOKEN),
            "the token is never echoed"
        );
        let allowed = server.admin(&request).await;
        assert!(
            allowed.status != 401 && allowed.status != 403,
            "{method} {path} with the token: {} {}",
            allowed.status,
            allowed.text()
        );
    }
    // API refusals are JSON; the console's are the login page.
    let api = server.admin_raw(&RawRequest::get("/api/overview")).await;
    assert_eq!(json(&api)["error"], "unauthorized");
    let page = server.admin_raw(&RawRequest::get("/")).await;
    assert!(page.text().contains("action=\"/login\""), "{}", page.text());
    server.stop().await;
}

#[tokio::test]
async fn the_providers_listener_serves_nothing_of_the_admin() {
    let server = TestServer::start(config(MEMORY, "", ADMIN_TABLE)).await;
    for path in ["/metrics", "/api/overview", "/login", "/"] {
        let response = server
            .send(&RawRequest::get(path).header("Authorization", &format!("Bearer {ADMIN_TOKEN}")))
            .await;
        assert_eq!(response.status, 404, "{path} on the providers' listener");
    }
    server.stop().await;
}

/// The `Set-Cookie` of a login, as `name=value`.
fn session_cookie(response: &RawResponse) -> String {
    let set = response.header("set-cookie").expect("a session cookie");
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Strict"), "{set}");
    assert!(
        !set.contains(ADMIN_TOKEN),
        "the cookie never holds the token"
    );
    set.split(';').next().expect("pair").to_owned()
}

#[tokio::test]
async fn the_console_login_sets_a_session_and_state_changes_need_this_origin() {
    let server = TestServer::start(config(MEMORY, "", ADMIN_TABLE)).await;
    let wrong = server
        .admin_raw(&RawRequest::get(
            "/login?token=not-the-right-token-at-all-no",
        ))
        .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("set-cookie").is_none());

    let login = server
        .admin_raw(&RawRequest::get(&format!("/login?token={ADMIN_TOKEN}")))
        .await;
    assert_eq!(login.status, 303, "{}", login.text());
    assert_eq!(
        login.header("location"),
        Some("/"),
        "the token leaves the URL"
    );
    let cookie = session_cookie(&login);
    let page = server
        .admin_raw(&RawRequest::get("/").header("Cookie", &cookie))
        .await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("Overview"));

    // The form login works too.
    let form = server
        .admin_raw(
            &RawRequest::post("/login", format!("token={ADMIN_TOKEN}"))
                .header("Content-Type", "application/x-www-form-urlencoded"),
        )
        .await;
    assert_eq!(form.status, 303);
    session_cookie(&form);

    // A state change on the cookie: only from this listener's own origin.
    let replay = RawRequest::post("/api/dlq/replay", Vec::new()).header("Cookie", &cookie);
    let missing = server.admin_raw(&replay).await;
    assert_eq!(missing.status, 403, "no Origin");
    let foreign = server
        .admin_raw(&replay.clone().header("Origin", "http://evil.example"))
        .await;
    assert_eq!(foreign.status, 403, "a foreign Origin");
    let own = server
        .admin_raw(&replay.clone().header("Origin", "http://porter.test"))
        .await;
    assert_eq!(own.status, 200, "{}", own.text());
    // A bearer token needs no Origin: no other site can send it.
    assert_eq!(
        server
            .admin(&RawRequest::post("/api/dlq/replay", Vec::new()))
            .await
            .status,
        200
    );
    let security = page
        .header("content-security-policy")
        .expect("a content security policy");
    assert!(security.contains("default-src 'none'"), "{security}");
    server.stop().await;
}

async fn log_in(server: &TestServer) -> String {
    let login = server
        .admin_raw(&RawRequest::get(&format!("/login?token={ADMIN_TOKEN}")))
        .await;
    assert_eq!(login.status, 303, "{}", login.text());
    session_cookie(&login)
}

async fn with_cookie(server: &TestServer, cookie: &str) -> u16 {
    server
        .admin_raw(&RawRequest::get("/api/overview").header("Cookie", cookie))
        .await
        .status
}

/// Logging out ends that session (the same cookie is refused afterwards, where before it
/// worked for 12 hours), and `POST /api/sessions/revoke` ends every session without changing
/// the token.
#[tokio::test]
async fn sessions_end_at_logout_and_can_all_be_ended() {
    let server = TestServer::start(config(MEMORY, "", ADMIN_TABLE)).await;
    let cookie = log_in(&server).await;
    let other = log_in(&server).await;
    assert_ne!(cookie, other, "a session of its own per login");
    assert_eq!(with_cookie(&server, &cookie).await, 200);
    let logout = server
        .admin_raw(&RawRequest::post("/logout", Vec::new()).header("Cookie", &cookie))
        .await;
    assert_eq!(logout.status, 303);
    assert_eq!(with_cookie(&server, &cookie).await, 401, "ended at logout");
    let page = server
        .admin_raw(&RawRequest::get("/").header("Cookie", &cookie))
        .await;
    assert_eq!(page.status, 401);
    assert_eq!(
        with_cookie(&server, &other).await,
        200,
        "another session lives"
    );

    let third = log_in(&server).await;
    // Revoking needs the token (or a session, from this origin), like any state change.
    let anonymous = server
        .admin_raw(&RawRequest::post("/api/sessions/revoke", Vec::new()))
        .await;
    assert_eq!(anonymous.status, 401);
    let revoked = server
        .admin(&RawRequest::post("/api/sessions/revoke", Vec::new()))
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    assert_eq!(json(&revoked)["ended"], 2);
    for cookie in [&other, &third] {
        assert_eq!(with_cookie(&server, cookie).await, 401, "ended by revoke");
    }
    assert_eq!(
        server.admin(&RawRequest::get("/api/overview")).await.status,
        200,
        "the token is unchanged"
    );
    let again = log_in(&server).await;
    assert_eq!(with_cookie(&server, &again).await, 200);
    server.stop().await;
}

/// `[admin] metrics_token` opens `GET /metrics` and nothing else.
#[tokio::test]
async fn the_metrics_token_opens_metrics_only() {
    const METRICS_TOKEN: &str = "a-scraper-token-of-24-chars-or-more";
    let admin = format!("{ADMIN_TABLE}metrics_token = \"{METRICS_TOKEN}\"\n");
    let server = TestServer::start(config(MEMORY, "", &admin)).await;
    let bearer = format!("Bearer {METRICS_TOKEN}");
    let metrics = server
        .admin_raw(&RawRequest::get("/metrics").header("Authorization", &bearer))
        .await;
    assert_eq!(metrics.status, 200, "{}", metrics.text());
    for request in [
        RawRequest::get("/api/overview"),
        RawRequest::get("/api/events"),
        RawRequest::get("/"),
        RawRequest::post("/api/dlq/replay", Vec::new()),
        RawRequest::post("/api/erase", r#"{"phone":"+4915123456789"}"#),
        RawRequest::post("/api/destinations/x/pause", Vec::new()),
        RawRequest::post("/api/sessions/revoke", Vec::new()),
        RawRequest::post("/metrics", Vec::new()),
    ] {
        let refused = server
            .admin_raw(&request.clone().header("Authorization", &bearer))
            .await;
        assert_eq!(
            refused.status, 401,
            "{} {} with the metrics token",
            request.method, request.target
        );
    }
    assert!(
        !server.metrics().await.is_empty(),
        "the admin token still reads them"
    );
    server.stop().await;
}

#[tokio::test]
async fn requests_are_listed_with_their_outcome_reason_and_diagnosis() {
    let server = TestServer::start(config(MEMORY, "", ADMIN_TABLE)).await;
    assert_eq!(server.send(&whatsapp("wamid.good")).await.status, 200);
    let refused = server
        .send(&signed(
            whatsapp_body("wamid.bad", "Guest"),
            "another-secret",
        ))
        .await;
    assert_eq!(refused.status, 401);
    assert_eq!(
        refused.text(),
        r#"{"error":"invalid_signature"}"#,
        "the caller learns nothing of the diagnosis"
    );
    let listed = json(&server.admin(&RawRequest::get("/api/requests")).await);
    let requests = listed["requests"].as_array().expect("requests");
    assert_eq!(requests.len(), 2);
    let newest = &requests[0];
    assert_eq!(newest["outcome"], "rejected");
    assert_eq!(newest["status"], 401);
    assert_eq!(newest["reason"], "signature_mismatch");
    assert_eq!(newest["diagnosis"]["code"], "no_known_variant");
    assert_eq!(newest["source"], "whatsapp");
    let accepted = &requests[1];
    assert_eq!(accepted["outcome"], "accepted");
    let event_id = accepted["event_ids"][0].as_str().expect("an event id");
    assert!(event_id.starts_with("evt_"));
    for field in ["time", "provider", "method", "path", "latency_ms"] {
        assert!(!accepted[field].is_null(), "{field}");
    }
    // Filters.
    let only_refused = json(
        &server
            .admin(&RawRequest::get("/api/requests?outcome=rejected"))
            .await,
    );
    assert_eq!(only_refused["requests"].as_array().map(Vec::len), Some(1));
    let other_source = json(
        &server
            .admin(&RawRequest::get("/api/requests?source=sms"))
            .await,
    );
    assert_eq!(other_source["requests"].as_array().map(Vec::len), Some(0));
    // Never a body or a secret.
    let text = server.admin(&RawRequest::get("/api/requests")).await.text();
    assert!(
        !text.contains("wamid.good") && !text.contains(SECRET),
        "{text}"
    );

    let overview = json(&server.admin(&RawRequest::get("/api/overview")).await);
    let source = &overview["sources"][0];
    assert_eq!(source["name"], "whatsapp");
    assert_eq!(source["last_5m"]["requests"], 2);
    assert_eq!(source["last_5m"]["accepted"], 1);
    assert_eq!(source["last_5m"]["rejections"]["signature_mismatch"], 1);
    assert!(source["last_1h"]["p99_ms"].as_f64().is_some());

    let stats = json(&server.admin(&RawRequest::get("/api/stats?window=5m")).await);
    assert_eq!(stats["bucket_seconds"], 10);
    let points = stats["points"].as_array().expect("points");
    assert_eq!(points.len(), 30);
    let last = points.last().expect("a point");
    assert_eq!(last["requests_per_second"]["accepted"], 0.1);
    assert_eq!(last["rejections"]["signature_mismatch"], 1);
    assert_eq!(stats["totals"]["requests"], 2);
    assert_eq!(stats["totals"]["refused"], 1);
    // A day: five-minute points, from the day's own series, with the same totals.
    let day = json(
        &server
            .admin(&RawRequest::get("/api/stats?window=24h"))
            .await,
    );
    assert_eq!(day["bucket_seconds"], 300);
    assert_eq!(day["window_seconds"], 86_400);
    assert_eq!(day["points"].as_array().map(Vec::len), Some(288));
    assert_eq!(day["totals"]["requests"], 2);
    assert_eq!(day["totals"]["outcomes"]["accepted"], 1);
    assert_eq!(
        day["points"][287]["rejections"]["signature_mismatch"], 1,
        "{day:#}"
    );
    assert_eq!(
        server
            .admin(&RawRequest::get("/api/stats?window=2d"))
            .await
            .status,
        400
    );
    server.stop().await;
}

#[tokio::test]
async fn the_ring_of_recent_requests_stays_bounded() {
    let admin = ADMIN_TABLE.replace("[admin]\n", "[admin]\nrecent_requests = 50\n");
    let server = TestServer::start(config(MEMORY, "", &admin)).await;
    for i in 0..120 {
        server.send(&whatsapp(&format!("wamid.ring{i}"))).await;
    }
    let listed = json(
        &server
            .admin(&RawRequest::get("/api/requests?limit=1000"))
            .await,
    );
    assert_eq!(listed["requests"].as_array().map(Vec::len), Some(50));
    let overview = json(&server.admin(&RawRequest::get("/api/overview")).await);
    assert_eq!(
        overview["sources"][0]["last_5m"]["requests"], 120,
        "the series count every request"
    );
    server.stop().await;
}

/// Waits for one dead letter and returns it.
async fn one_dead_letter(server: &TestServer) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed = json(&server.admin(&RawRequest::get("/api/dlq")).await);
        if let Some(first) = listed["dead_letters"].as_array().and_then(|d| d.first()) {
            return first.clone();
        }
        assert!(Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An event's delivery to `hooks`, from the API.
async fn hooks_delivery(server: &TestServer, event_id: &str) -> Value {
    let answer = server
        .admin(&RawRequest::get(&format!("/api/events/{event_id}")))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let event = json(&answer);
    assert_eq!(event["event"]["id"], event_id);
    event["deliveries"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["destination"] == "hooks"))
        .cloned()
        .expect("a delivery to hooks")
}

async fn a_dead_letter_replayed_from_the_api_is_delivered(store: &str) {
    // Two failures spend the schedule (one retry); the replay's attempt gets 200.
    let receiver = Receiver::start(vec![Answer::status(500), Answer::status(500)]).await;
    let server =
        TestServer::start_delivering(config(store, &hooks(&receiver.url()), ADMIN_TABLE)).await;
    assert_eq!(server.send(&whatsapp("wamid.dead")).await.status, 200);
    let dead = one_dead_letter(&server).await;
    assert_eq!(dead["destination"], "hooks");
    assert_eq!(dead["last_error"], "status 500");
    assert_eq!(dead["attempts"].as_array().map(Vec::len), Some(2));
    assert_eq!(dead["event"]["providereventid"], "wamid.dead");
    let event_id = dead["event_id"].as_str().expect("event id").to_owned();
    let delivery = hooks_delivery(&server, &event_id).await;
    assert_eq!(delivery["state"], "dead_lettered");

    let id = dead["id"].as_str().expect("id");
    let replayed = server
        .admin(&RawRequest::post(
            &format!("/api/dlq/{id}/replay"),
            Vec::new(),
        ))
        .await;
    assert_eq!(replayed.status, 200, "{}", replayed.text());
    assert_eq!(json(&replayed)["destination"], "hooks");
    let received = receiver.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(received[2].event()["id"], event_id.as_str());
    eventually(Duration::from_secs(5), "the delivered state", || async {
        hooks_delivery(&server, &event_id).await["state"] == "delivered"
    })
    .await;
    let delivery = hooks_delivery(&server, &event_id).await;
    assert_eq!(delivery["attempts"].as_array().map(Vec::len), Some(3));
    let listed = json(&server.admin(&RawRequest::get("/api/dlq")).await);
    assert_eq!(listed["dead_letters"].as_array().map(Vec::len), Some(0));
    let again = server
        .admin(&RawRequest::post(
            &format!("/api/dlq/{id}/replay"),
            Vec::new(),
        ))
        .await;
    assert_eq!(again.status, 404, "a dead letter is replayed once");
    server.stop().await;
}

#[tokio::test]
async fn a_dead_letter_replayed_from_the_api_is_delivered_from_memory() {
    a_dead_letter_replayed_from_the_api_is_delivered(MEMORY).await;
}

#[tokio::test]
async fn a_dead_letter_replayed_from_the_api_is_delivered_from_redis() {
    let redis = RedisServer::start();
    a_dead_letter_replayed_from_the_api_is_delivered(&format!(
        "kind = \"redis\"\nurl = \"{}\"",
        redis.url()
    ))
    .await;
}

async fn pause_holds_deliveries_and_resume_releases_them(store: &str, redis: Option<&RedisServer>) {
    let receiver = Receiver::start(vec![]).await;
    let server =
        TestServer::start_delivering(config(store, &hooks(&receiver.url()), ADMIN_TABLE)).await;
    let paused = server
        .admin(&RawRequest::post(
            "/api/destinations/hooks/pause",
            Vec::new(),
        ))
        .await;
    assert_eq!(paused.status, 200, "{}", paused.text());
    assert_eq!(json(&paused)["paused"], true);
    if let Some(redis) = redis {
        // The hold is in Redis: every instance sees it, and it survives a restart.
        assert_eq!(
            redis
                .cli(&["EXISTS", "porter:paused:hooks"])
                .map(|s| s.trim().to_owned()),
            Some("1".to_owned())
        );
    }
    for id in ["wamid.p1", "wamid.p2", "wamid.p3"] {
        assert_eq!(server.send(&whatsapp(id)).await.status, 200);
    }
    let overview = json(&server.admin(&RawRequest::get("/api/overview")).await);
    assert_eq!(overview["destinations"][0]["paused"], true);
    // Held: three rounds of the worker were three chances to deliver.
    server.after_rounds("hooks", 3).await;
    assert_eq!(
        receiver.received().len(),
        0,
        "nothing delivered while paused"
    );
    let listed = json(&server.admin(&RawRequest::get("/api/events")).await);
    let event_id = listed["events"][0]["id"].as_str().expect("id").to_owned();
    assert_eq!(
        hooks_delivery(&server, &event_id).await["state"],
        "scheduled",
        "events keep accumulating"
    );
    let resumed = server
        .admin(&RawRequest::post(
            "/api/destinations/hooks/resume",
            Vec::new(),
        ))
        .await;
    assert_eq!(json(&resumed)["paused"], false);
    receiver.wait_for(3, Duration::from_secs(10)).await;
    server.stop().await;
}

#[tokio::test]
async fn pause_holds_deliveries_and_resume_releases_them_in_memory() {
    pause_holds_deliveries_and_resume_releases_them(MEMORY, None).await;
}

#[tokio::test]
async fn pause_holds_deliveries_and_resume_releases_them_on_redis() {
    let redis = RedisServer::start();
    let store = format!("kind = \"redis\"\nurl = \"{}\"", redis.url());
    pause_holds_deliveries_and_resume_releases_them(&store, Some(&redis)).await;
    assert_eq!(
        redis
            .cli(&["EXISTS", "porter:paused:hooks"])
            .map(|s| s.trim().to_owned()),
        Some("0".to_owned()),
        "resumed: the hold is gone"
    );
}

#[tokio::test]
async fn only_destinations_porter_delivers_to_can_be_held() {
    let redis = RedisServer::start();
    let server = TestServer::start_delivering(config(
        &format!("kind = \"redis\"\nurl = \"{}\"", redis.url()),
        "[[destinations]]\nname = \"crm\"\nkind = \"redis_stream\"\n",
        ADMIN_TABLE,
    ))
    .await;
    let stream = server
        .admin(&RawRequest::post("/api/destinations/crm/pause", Vec::new()))
        .await;
    assert_eq!(stream.status, 409, "{}", stream.text());
    let unknown = server
        .admin(&RawRequest::post(
            "/api/destinations/nobody/pause",
            Vec::new(),
        ))
        .await;
    assert_eq!(unknown.status, 404);
    server.stop().await;
}

#[tokio::test]
async fn events_are_listed_filtered_and_shown_with_guest_data_only_on_their_page() {
    let server = TestServer::start(config(MEMORY, "", ADMIN_TABLE)).await;
    let xss = "<script>alert(1)</script>";
    assert_eq!(
        server
            .send(&signed(whatsapp_body("wamid.xss", xss), SECRET))
            .await
            .status,
        200
    );
    let listed = json(&server.admin(&RawRequest::get("/api/events")).await);
    let event = &listed["events"][0];
    assert_eq!(event["type"], "message.received");
    let id = event["id"].as_str().expect("id").to_owned();
    let none = json(
        &server
            .admin(&RawRequest::get("/api/events?type=reservation.created"))
            .await,
    );
    assert_eq!(none["events"].as_array().map(Vec::len), Some(0));

    // The console's list shows no guest data; the event's page shows it, as text.
    let list = server.admin(&RawRequest::get("/events")).await.text();
    assert!(list.contains(&id), "{list}");
    assert!(!list.contains("alert(1)"), "no guest data in the list");
    let page = server
        .admin(&RawRequest::get(&format!("/events/{id}")))
        .await
        .text();
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    assert!(!page.contains(xss), "a profile name is never markup");
    let missing = server
        .admin(&RawRequest::get(
            "/events/evt_00000000000000000000000000000000",
        ))
        .await;
    assert_eq!(missing.status, 404);
    server.stop().await;
}

#[tokio::test]
async fn a_configuration_without_admin_runs_no_admin_listener_and_check_config_says_where_it_is() {
    let server = TestServer::start(config(MEMORY, "", "")).await;
    assert!(server.admin_addr.is_none());
    server.stop().await;
    let problems = porter::testing::config::Config::parse(
        &format!(
            "[[sources]]\nname = \"whatsapp\"\nprovider = \"meta\"\npath = \"/w\"\nsecrets = [\"{SECRET}\"]\n[admin]\ntoken = \"short\"\n"
        ),
        porter::testing::config::ConfigOrigin::File("porter.toml".into()),
        &|_| None,
    )
    .expect_err("a short token is refused");
    let text = problems.to_string();
    assert!(
        text.contains("admin.token: must be at least 24 characters"),
        "{text}"
    );
    assert!(!text.contains("short\""), "the token is not quoted: {text}");
    let missing = porter::testing::config::Config::parse(
        &format!(
            "[[sources]]\nname = \"whatsapp\"\nprovider = \"meta\"\npath = \"/w\"\nsecrets = [\"{SECRET}\"]\n[admin]\n"
        ),
        porter::testing::config::ConfigOrigin::File("porter.toml".into()),
        &|_| None,
    )
    .expect_err("a file must set a token");
    assert!(
        missing.to_string().contains("admin.token: required"),
        "{missing}"
    );
}

#[tokio::test]
async fn broker_destinations_are_listed_without_credentials_and_can_be_held() {
    let brokers = "[[destinations]]\nname = \"pms-sync\"\nkind = \"nats\"\nurl = \"nats://porter:n4ts-pw@127.0.0.1:1\"\n\n[[destinations]]\nname = \"crm\"\nkind = \"amqp\"\nurl = \"amqp://guest:4mqp-pw@127.0.0.1:1/%2f\"\n";
    let server = TestServer::start_delivering(config(MEMORY, brokers, ADMIN_TABLE)).await;
    let overview = server.admin(&RawRequest::get("/api/overview")).await;
    let text = overview.text();
    assert!(
        !text.contains("n4ts-pw") && !text.contains("4mqp-pw"),
        "{text}"
    );
    let overview = json(&overview);
    let destinations = overview["destinations"].as_array().expect("destinations");
    let kinds: Vec<(&str, &str)> = destinations
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap_or(""),
                d["kind"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(kinds, [("pms-sync", "nats"), ("crm", "amqp")], "{overview}");
    let held = server
        .admin(&RawRequest::post("/api/destinations/crm/pause", Vec::new()))
        .await;
    assert_eq!(held.status, 200, "{}", held.text());
    server.stop().await;
}
