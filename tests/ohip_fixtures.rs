//! `fixtures/oracle_ohip_stream/<case>/frame.json`: a `next` frame as OHIP sends it, and
//! `expected.json`: the event porter stores for it (source `opera`, received at the fixture
//! clock, timestamps read as UTC). `UPDATE_EXPECT=1` rewrites the expectations.

mod common;

use common::{FIXTURE_TIME, repo_path};
use jiff::tz::TimeZone;
use porter_providers::event::Origin;
use porter_providers::oracle_ohip_stream::{self as ohip};
use serde_json::Value;

#[test]
fn every_ohip_stream_fixture_normalizes_as_expected() {
    let root = repo_path("fixtures/oracle_ohip_stream");
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .expect("fixtures/oracle_ohip_stream")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("frame.json").exists())
        .collect();
    cases.sort();
    assert!(cases.len() >= 9, "fixtures went missing: {}", cases.len());
    let origin = Origin {
        source_name: "opera",
        provider: ohip::PROVIDER,
        received_at: FIXTURE_TIME.parse().expect("time"),
    };
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let frame: Value = serde_json::from_str(
            &std::fs::read_to_string(case.join("frame.json")).expect("frame.json"),
        )
        .unwrap_or_else(|e| panic!("{name}: frame.json: {e}"));
        assert_eq!(frame["type"], "next", "{name}");
        let event = &frame["payload"]["data"]["newEvent"];
        let stream = ohip::normalize(&origin, event, "CHAIN1", &TimeZone::UTC)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            Some(stream.offset.as_str()),
            event["metadata"]["offset"].as_str(),
            "{name}"
        );
        let actual = serde_json::to_value(&stream.normalized.event).expect("json");
        let path = case.join("expected.json");
        if std::env::var_os("UPDATE_EXPECT").is_some() {
            let text = serde_json::to_string_pretty(&actual).expect("json") + "\n";
            std::fs::write(&path, text).expect("write expected.json");
            continue;
        }
        let expected: Value = serde_json::from_str(
            &std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{name}: expected.json")),
        )
        .expect("expected.json");
        assert_eq!(actual, expected, "{name}");
        // The stored event reads back as the same event.
        let back: porter_providers::event::Event =
            serde_json::from_value(actual.clone()).expect("reads back");
        assert_eq!(back, stream.normalized.event, "{name}");
    }
}
