//! porter embedded as a library, delivering to an in-process handler.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{RawRequest, config_from};
use porter::embed::{Embedded, Filter, Handler, HandlerError};
use porter_providers::Event;

/// Fails the first `failures` calls, then records every event it is given.
struct Recorder {
    failures: Mutex<usize>,
    seen: Mutex<Vec<(Instant, Event)>>,
}

impl Handler for Recorder {
    fn handle<'a>(
        &'a self,
        event: &'a Event,
    ) -> Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send + 'a>> {
        Box::pin(async move {
            self.seen
                .lock()
                .expect("lock")
                .push((Instant::now(), event.clone()));
            let mut failures = self.failures.lock().expect("lock");
            if *failures > 0 {
                *failures -= 1;
                return Err(HandlerError("not yet".to_owned()));
            }
            Ok(())
        })
    }
}

#[tokio::test]
async fn a_handler_gets_the_events_its_filter_matches_and_errors_are_retried() {
    let config = config_from(
        r#"
[store]
kind = "memory"
print_events = false
[[sources]]
name = "oracle"
provider = "oracle_ohip"
path = "/api/v1/webhooks/oracle"
secrets = ["embed-test-secret"]
"#,
        &[],
    );
    let recorder = Arc::new(Recorder {
        failures: Mutex::new(1),
        seen: Mutex::new(Vec::new()),
    });
    let filter = Filter {
        events: vec!["reservation.checked_out".into()],
        sources: vec![],
        forward_only: false,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let embedded = Embedded::new(config).handler_with(
        "housekeeping",
        filter,
        Arc::clone(&recorder) as Arc<dyn Handler>,
        vec![Duration::from_millis(100)],
        1,
    );
    let serving = tokio::spawn(embedded.serve(listener, async {
        let _ = stopped.await;
    }));

    let sign = |body: &str| {
        let now = jiff::Timestamp::now().as_second().to_string();
        let mac = porter_providers::signing::hmac(
            porter_providers::signing::Algorithm::Sha256,
            b"embed-test-secret",
            &[now.as_bytes(), b".", body.as_bytes()],
        );
        RawRequest::post("/api/v1/webhooks/oracle/reservations", body)
            .header("x-oracle-timestamp", &now)
            .header(
                "x-oracle-signature",
                &format!("sha256={}", hex::encode(mac)),
            )
    };
    let checkout = r#"{"eventType":"GUEST_CHECKOUT","eventId":"evt_embed_1","hotelId":"h1","reservationId":"r1","roomNumber":"305"}"#;
    let created = r#"{"eventType":"RESERVATION_CREATED","eventId":"evt_embed_2","hotelId":"h1","reservationId":"r2"}"#;
    assert_eq!(sign(checkout).send(addr).await.status, 200);
    assert_eq!(sign(created).send(addr).await.status, 200);

    let deadline = Instant::now() + Duration::from_secs(5);
    while recorder.seen.lock().expect("lock").len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Stopped, delivery has drained: no call can follow the ones counted.
    let _ = stop.send(());
    serving.await.expect("task").expect("served");
    let seen = recorder.seen.lock().expect("lock").clone();
    assert_eq!(
        seen.len(),
        2,
        "the failed call and its retry; the creation is filtered out"
    );
    assert!(seen.iter().all(|(_, e)| e.providereventid == "evt_embed_1"));
    assert!(
        seen[1].0 - seen[0].0 >= Duration::from_millis(80),
        "retried after the schedule's delay"
    );
}
