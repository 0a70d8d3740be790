use super::*;

fn sources() -> Vec<SourceInfo> {
    ["whatsapp", "sms"]
        .iter()
        .map(|name| SourceInfo {
            name: (*name).to_owned(),
            provider: "meta",
            path: format!("/webhooks/{name}"),
        })
        .collect()
}

fn entry(source: &str, outcome: &'static str, at: Timestamp) -> RequestEntry {
    RequestEntry {
        time: at,
        routed: Routed::Source {
            index: u32::from(source == "sms"),
            suffix: "",
        },
        method: http::Method::POST,
        status: 200,
        outcome,
        reason: (outcome == "rejected").then_some("signature_mismatch"),
        diagnosis: None,
        event_ids: vec![EventId(1)],
        latency: Duration::from_micros(800),
    }
}

fn start() -> Timestamp {
    "2026-01-01T12:00:00Z".parse().expect("time")
}

#[test]
fn the_ring_stays_bounded_under_a_hundred_thousand_requests() {
    let activity = Activity::new(sources(), 1_000, 0.1, Clock::fixed(start()));
    for i in 0..100_000 {
        activity.record(entry("whatsapp", "accepted", start()));
        // Fold as often as the folding thread would at a high rate, so nothing is dropped.
        if i % 10_000 == 9_999 {
            assert!(activity.ring_size().0 <= 1_000);
        }
    }
    assert_eq!(activity.ring_size(), (1_000, 1_000));
    assert_eq!(activity.dropped(), 0);
    let all = activity.with_series(|s| {
        let now = series::bucket_of(start().as_second());
        s.sources_sum(None, now, now).requests()
    });
    assert_eq!(
        all, 100_000,
        "the series counts every request, the ring keeps the newest"
    );
}

#[test]
fn a_full_channel_drops_and_counts_instead_of_waiting() {
    let activity = Activity::new(sources(), 10, 0.1, Clock::fixed(start()));
    // Hold the receiver so that the folding thread cannot empty the channel meanwhile.
    let held = lock(&activity.shared.receiver);
    for _ in 0..CHANNEL + 5 {
        activity.record(entry("whatsapp", "accepted", start()));
    }
    drop(held);
    assert_eq!(activity.dropped(), 5);
}

#[test]
fn queries_filter_by_source_and_outcome_newest_first() {
    let activity = Activity::new(sources(), 100, 0.1, Clock::fixed(start()));
    activity.record(entry("whatsapp", "accepted", start()));
    activity.record(entry("sms", "rejected", start()));
    let mut last = entry("whatsapp", "rejected", start());
    last.routed = Routed::Source {
        index: 0,
        suffix: "/newest",
    };
    activity.record(last);
    let rejected = activity.requests(&RequestQuery {
        outcome: Some("rejected".into()),
        limit: 10,
        ..RequestQuery::default()
    });
    assert_eq!(rejected.len(), 2);
    assert_eq!(
        rejected[0].path, "/webhooks/whatsapp/newest",
        "newest first"
    );
    assert_eq!(
        rejected[0].event_ids,
        vec!["evt_00000000000000000000000000000001"]
    );
    let whatsapp = activity.requests(&RequestQuery {
        source: Some("whatsapp".into()),
        limit: 1,
        ..RequestQuery::default()
    });
    assert_eq!(whatsapp.len(), 1);
    assert_eq!(whatsapp[0].path, "/webhooks/whatsapp/newest");
    assert!(
        activity
            .requests(&RequestQuery {
                source: Some("nobody".into()),
                limit: 10,
                ..RequestQuery::default()
            })
            .is_empty()
    );
}

#[test]
fn the_diagnosis_budget_is_a_share_of_the_traffic_with_a_floor() {
    let (clock, hand) = Clock::manual(start());
    let activity = Activity::new(sources(), 10, 0.1, clock);
    let taken = (0..100).filter(|_| activity.may_diagnose()).count();
    assert_eq!(
        taken, MIN_DIAGNOSES_PER_SECOND as usize,
        "the floor, with no traffic"
    );
    // 10 000 requests in one 10 s bucket: 1 000 a second, so 100 diagnoses a second.
    for _ in 0..10 {
        for _ in 0..1_000 {
            activity.record(entry("whatsapp", "accepted", activity.now()));
        }
        activity.ring_size();
    }
    hand.advance(Duration::from_secs(10));
    activity.ring_size();
    let taken = (0..1_000).filter(|_| activity.may_diagnose()).count();
    assert_eq!(taken, 100);
    hand.advance(Duration::from_secs(1));
    assert!(activity.may_diagnose(), "a new second, a new allowance");
}

#[test]
fn attempts_and_lag_land_in_the_destination_series() {
    let activity = Activity::new(sources(), 10, 0.1, Clock::fixed(start()));
    activity.attempt("housekeeping", AttemptResult::Delivered);
    activity.attempt("housekeeping", AttemptResult::Failed);
    activity.attempt("housekeeping", AttemptResult::DeadLettered);
    activity.lag("housekeeping", 7);
    let now = activity.current_bucket();
    let sum = activity.with_series(|s| s.destination_sum("housekeeping", now - 30, now));
    assert_eq!(
        (sum.delivered, sum.failed, sum.dead_lettered, sum.lag),
        (1, 1, 1, Some(7))
    );
}

#[test]
fn event_ids_round_trip_through_their_128_bits() {
    let id = "evt_8f14e45fceea167a5a36dedd4bea2543";
    assert_eq!(
        EventId::parse(id).map(|e| e.to_string()).as_deref(),
        Some(id)
    );
    for bad in [
        "evt_",
        "evt_xyz",
        "8f14e45fceea167a5a36dedd4bea2543",
        "evt_8f14e45fceea167a5a36dedd4bea25430",
    ] {
        assert_eq!(EventId::parse(bad), None, "{bad}");
    }
}

#[test]
fn an_unrouted_path_is_cut_on_a_character_boundary() {
    let long = "/é".repeat(200);
    let Routed::Unrouted(kept) = Routed::unrouted(&long) else {
        panic!("unrouted")
    };
    assert!(kept.len() <= MAX_RECORDED_PATH);
    assert!(long.starts_with(&*kept));
}

#[test]
fn a_request_two_hours_old_is_gone_from_the_hour_and_kept_for_the_day() {
    let (clock, hand) = Clock::manual(start());
    let activity = Activity::new(sources(), 10, 0.1, clock);
    activity.record(entry("sms", "rejected", start()));
    activity.lag("housekeeping", 97_773);
    hand.advance(Duration::from_secs(2 * 3600));
    let now = activity.now().as_second();
    let (hour, day, lag) = activity.with_series(|s| {
        let fine = Resolution::Fine.bucket_of(now);
        let coarse = Resolution::Coarse.bucket_of(now);
        (
            s.sources_sum(None, fine - BUCKETS as i64 + 1, fine)
                .requests(),
            s.sources_sum_at(Resolution::Coarse, Some(1), coarse - 287, coarse),
            s.destination_sum_at(Resolution::Coarse, "housekeeping", coarse - 287, coarse),
        )
    });
    assert_eq!(hour, 0, "the hour's series has forgotten it");
    assert_eq!(day.requests(), 1);
    assert_eq!(day.reasons.get("signature_mismatch"), Some(&1));
    assert_eq!((lag.lag, lag.lag_peak), (Some(97_773), Some(97_773)));
}
