//! `rate`: a backlog drains no faster than the destination's token bucket allows, with one
//! instance (its bucket in memory) and with two instances sharing a bucket in Redis.

mod common;

use std::time::{Duration, Instant};

use common::receiver::Receiver;
use common::redis_server::RedisServer;
use common::{RawRequest, TestServer, config_from};

const SECRET: &str = "rate-test-meta-secret";
const WHSEC: &str = "whsec_ZGVsaXZlcnktdGVzdC1zaWduaW5nLWtleQ==";
const RATE: f64 = 20.0;

fn config(store: &str, receiver: &Receiver) -> porter::testing::config::Config {
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

[[destinations]]
name = "fragile"
kind = "http"
url = "{}"
secret = "{WHSEC}"
rate = {RATE}
"#,
            receiver.url()
        ),
        &[],
    )
}

fn whatsapp(round: usize) -> RawRequest {
    let ids: Vec<String> = (0..20).map(|i| format!("wamid.rate{round}-{i}")).collect();
    common::whatsapp::messages(SECRET, &ids)
}

/// Sends 200 events, waits for all of them, and checks their arrival times against the bucket:
/// in every window from one arrival to a later one, at most `burst + rate × window` arrive.
async fn check_the_bucket(servers: &[&TestServer], receiver: &Receiver) {
    for round in 0..10 {
        let server = servers[round % servers.len()];
        assert_eq!(server.send(&whatsapp(round)).await.status, 200);
    }
    let received = receiver.wait_for(200, Duration::from_secs(30)).await;
    let times: Vec<Instant> = received.iter().map(|r| r.at).collect();
    let burst = RATE.max(1.0);
    let mut tightest = f64::MAX;
    for i in 0..times.len() {
        for j in i..times.len() {
            let window = times[j].duration_since(times[i]).as_secs_f64();
            let arrived = (j - i + 1) as f64;
            // Three tokens of slack for the instant an attempt starts versus when it arrives:
            // on a busy machine requests the bucket released apart can reach the receiver
            // together. A bucket that does not hold would deliver the 200 at once.
            let allowed = burst + RATE * window + 3.0;
            tightest = tightest.min(allowed - arrived);
            assert!(
                arrived <= allowed,
                "{arrived} events arrived within {window:.3} s; the bucket allows {allowed:.1}"
            );
        }
    }
    let span = times[times.len() - 1].duration_since(times[0]);
    eprintln!(
        "200 events over {span:?} (the tightest window: {tightest:.2} events under the limit)"
    );
    // 20 at once, then 180 at 20 per second: 9 s. The lower bound is the limit; the upper
    // one only catches a bucket that refills far too slowly (5/s would take 36 s), with room
    // for a machine busy with a parallel test run.
    assert!(
        span >= Duration::from_millis(8_500) && span <= Duration::from_secs(25),
        "200 events at 20/s took {span:?}"
    );
}

#[tokio::test]
async fn a_backlog_drains_at_the_rate_from_one_instance() {
    let receiver = Receiver::start(vec![]).await;
    let server =
        TestServer::start_delivering(config("kind = \"memory\"\nprint_events = false", &receiver))
            .await;
    check_the_bucket(&[&server], &receiver).await;
    server.stop().await;
}

#[tokio::test]
async fn two_instances_on_redis_share_one_bucket() {
    let redis = RedisServer::start();
    let receiver = Receiver::start(vec![]).await;
    let store = format!("kind = \"redis\"\nurl = \"{}\"", redis.url());
    let first = TestServer::start_delivering(config(&store, &receiver)).await;
    let second = TestServer::start_delivering(config(&store, &receiver)).await;
    check_the_bucket(&[&first, &second], &receiver).await;
    first.stop().await;
    second.stop().await;
}
