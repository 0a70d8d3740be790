use std::time::Duration;

use jiff::Timestamp;

use super::*;
use crate::activity::OUTCOMES;
use crate::clock::Clock;

fn start() -> Timestamp {
    "2026-03-01T12:00:00Z".parse().expect("time")
}

fn source(outcomes: &[(&str, u64)]) -> SourceBucket {
    let mut bucket = SourceBucket::default();
    for (label, n) in outcomes {
        let i = OUTCOMES.iter().position(|o| o == label).expect("outcome");
        bucket.outcomes[i] = *n;
    }
    bucket
}

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn an_alert_without_for_fires_at_once_repeats_and_resolves() {
    let (clock, hand) = Clock::manual(start());
    let mut phase = Phase::Ok;
    let repeat = Some(Duration::from_secs(3600));
    let fired = phase.step(true, clock.now(), Duration::ZERO, repeat);
    assert_eq!(
        fired,
        Some(Transition::Firing {
            since: start(),
            repeat: false
        })
    );
    hand.advance(Duration::from_secs(3599));
    assert_eq!(
        phase.step(true, clock.now(), Duration::ZERO, repeat),
        None,
        "no reminder before the hour"
    );
    hand.advance(Duration::from_secs(1));
    assert_eq!(
        phase.step(true, clock.now(), Duration::ZERO, repeat),
        Some(Transition::Firing {
            since: start(),
            repeat: true
        }),
        "a reminder after an hour, still since the start"
    );
    hand.advance(MINUTE);
    let resolved_at = clock.now();
    assert_eq!(
        phase.step(false, clock.now(), Duration::ZERO, repeat),
        Some(Transition::Resolved {
            since: start(),
            at: resolved_at
        })
    );
    assert_eq!(phase, Phase::Ok);
    assert_eq!(phase.step(false, clock.now(), Duration::ZERO, repeat), None);
}

#[test]
fn for_holds_an_alert_pending_and_a_blip_never_fires() {
    let (clock, hand) = Clock::manual(start());
    let hold = 2 * MINUTE;
    let mut phase = Phase::Ok;
    assert_eq!(phase.step(true, clock.now(), hold, None), None);
    assert_eq!(phase, Phase::Pending { since: start() });
    hand.advance(MINUTE);
    assert_eq!(phase.step(false, clock.now(), hold, None), None, "a blip");
    assert_eq!(phase, Phase::Ok, "and forgotten");
    let began = clock.now();
    assert_eq!(phase.step(true, clock.now(), hold, None), None);
    hand.advance(hold - Duration::from_secs(1));
    assert_eq!(phase.step(true, clock.now(), hold, None), None);
    hand.advance(Duration::from_secs(1));
    assert_eq!(
        phase.step(true, clock.now(), hold, None),
        Some(Transition::Firing {
            since: began,
            repeat: false
        }),
        "fires once it held for `for`, since it began"
    );
    hand.advance(10 * 3600 * Duration::from_secs(1));
    assert_eq!(
        phase.step(true, clock.now(), hold, None),
        None,
        "no repeat: notified once"
    );
}

#[test]
fn refusal_share_needs_the_minimum_and_a_share_above() {
    let window = MINUTE;
    let check = |figures: &SourceBucket| refusal_share("wa", Some(0.5), None, 10, window, figures);
    assert!(
        !check(&source(&[("rejected", 1)])).holds,
        "1 of 1 does not page"
    );
    assert!(!check(&source(&[("rejected", 9)])).holds, "9 is below 10");
    let wall = check(&source(&[("rejected", 10)]));
    assert!(wall.holds, "{}", wall.summary);
    assert_eq!(wall.details["refused"], 10);
    assert!(
        wall.summary.contains("10 of 10 requests refused"),
        "{}",
        wall.summary
    );
    assert!(
        !check(&source(&[("rejected", 5), ("accepted", 5)])).holds,
        "half is not above half"
    );
    assert!(
        check(&source(&[
            ("rejected", 5),
            ("unavailable", 1),
            ("accepted", 5)
        ]))
        .holds
    );
    assert!(
        !check(&source(&[
            ("duplicate", 30),
            ("handshake", 1),
            ("rejected", 10)
        ]))
        .holds,
        "duplicates and handshakes are answered, not refused"
    );
    let rate = refusal_share(
        "wa",
        None,
        Some(1.0),
        10,
        window,
        &source(&[("rejected", 61)]),
    );
    assert!(rate.holds, "61 in a minute is above 1/s");
    let rate = refusal_share(
        "wa",
        None,
        Some(1.0),
        10,
        window,
        &source(&[("rejected", 60), ("accepted", 1000)]),
    );
    assert!(!rate.holds, "60 in a minute is not above 1/s");
}

#[test]
fn quiet_needs_usual_traffic_and_the_whole_silence() {
    let (clock, hand) = Clock::manual(start());
    let window = 15 * MINUTE;
    let never = LastRequest::default();
    hand.advance(Duration::from_secs(24 * 3600));
    assert!(
        !quiet("wa", window, 1, never, clock.now()).holds,
        "never heard of since start: nothing usual"
    );
    let last = LastRequest {
        at: Some(clock.now()),
        before: 40,
    };
    hand.advance(window - Duration::from_secs(1));
    assert!(!quiet("wa", window, 1, last, clock.now()).holds);
    hand.advance(Duration::from_secs(1));
    let check = quiet("wa", window, 1, last, clock.now());
    assert!(check.holds, "{}", check.summary);
    assert_eq!(check.details["silent_seconds"], 900);
    assert!(
        !quiet("wa", window, 41, last, clock.now()).holds,
        "fewer than usual before it"
    );
    hand.advance(Duration::from_secs(5 * 3600));
    assert!(
        quiet("wa", window, 1, last, clock.now()).holds,
        "still quiet hours later: the last request is remembered beyond the activity's hour"
    );
}

#[test]
fn destination_failing_counts_dead_letters_as_failures() {
    let figures = DestinationBucket {
        delivered: 2,
        failed: 2,
        dead_lettered: 1,
        lag: None,
        lag_peak: None,
    };
    let share = destination_failing("crm", Some(0.5), None, 5, MINUTE, &figures);
    assert!(share.holds, "3 of 5 failed: {}", share.summary);
    assert!(!destination_failing("crm", Some(0.5), None, 6, MINUTE, &figures).holds);
    assert!(destination_failing("crm", None, Some(0), 5, MINUTE, &figures).holds);
    assert!(!destination_failing("crm", None, Some(1), 5, MINUTE, &figures).holds);
}

#[test]
fn backlog_above_or_growing() {
    assert!(backlog("crm", Some(100), false, MINUTE, &[50, 101]).holds);
    assert!(!backlog("crm", Some(100), false, MINUTE, &[500, 100]).holds);
    assert!(!backlog("crm", Some(100), false, MINUTE, &[]).holds);
    assert!(backlog("crm", None, true, MINUTE, &[1, 1, 2, 5]).holds);
    assert!(
        !backlog("crm", None, true, MINUTE, &[1, 3, 2, 5]).holds,
        "it drained once"
    );
    assert!(
        !backlog("crm", None, true, MINUTE, &[4, 4, 4]).holds,
        "flat"
    );
    assert!(
        !backlog("crm", None, true, MINUTE, &[4]).holds,
        "one sample"
    );
}

#[test]
fn store_unready_says_why() {
    assert!(!store_unready(None).holds);
    let check = store_unready(Some("store unavailable: connection refused".into()));
    assert!(check.holds);
    assert!(check.summary.contains("connection refused"));
}

#[test]
fn ohip_stopped_holds_when_not_connected_or_quiet_for_its_lag_but_not_on_standby() {
    use crate::ohip::{State, Status};
    let now = start();
    let watching = now - jiff::SignedDuration::from_mins(30);
    let check = |status: Option<&Status>, lag| ohip_stopped("opera", lag, status, watching, now);
    assert!(check(None, None).holds, "no connector running");
    assert!(check(None, None).summary.contains("not running"));

    let streaming = Status::in_state("opera", State::Streaming);
    assert!(
        !check(Some(&streaming), None).holds,
        "streaming, no lag rule"
    );
    assert!(
        check(Some(&streaming), Some(20 * MINUTE)).holds,
        "nothing stored in the 30 minutes watched"
    );
    let mut recent = streaming.clone();
    recent.last_event_at = Some(now - jiff::SignedDuration::from_mins(5));
    assert!(
        !check(Some(&recent), Some(20 * MINUTE)).holds,
        "an event 5 min ago"
    );

    let stopped = Status::in_state(
        "opera",
        State::Stopped {
            code: "4403".into(),
            reason: "forbidden".into(),
        },
    );
    let held = check(Some(&stopped), None);
    assert!(held.holds);
    assert!(held.summary.contains("stopped (4403)"), "{}", held.summary);

    let retrying = Status::in_state(
        "opera",
        State::Waiting {
            until: now,
            after: "1006".into(),
        },
    );
    assert!(check(Some(&retrying), None).holds, "waiting to reconnect");
    let standby = Status::in_state(
        "opera",
        State::Waiting {
            until: now,
            after: "standby".into(),
        },
    );
    assert!(
        !check(Some(&standby), None).holds,
        "another instance holds the stream"
    );
}
