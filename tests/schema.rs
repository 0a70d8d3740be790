//! The committed JSON Schema of the canonical event must be what the Rust types generate.
//! Consumers validate against `schema/event.schema.json`; if a type changes without the file,
//! this fails. `UPDATE_EXPECT=1 cargo test --test schema` regenerates it.

use porter_providers::Event;

#[test]
fn committed_schema_matches_the_types() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/event.schema.json");
    let generated = serde_json::to_string_pretty(&Event::json_schema()).expect("schema") + "\n";
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&path, &generated).expect("write schema");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "schema/event.schema.json is out of date: run `UPDATE_EXPECT=1 cargo test --test schema`"
    );
}

#[test]
fn schema_names_every_event_type() {
    let schema = serde_json::to_string(&Event::json_schema()).expect("schema");
    for event_type in porter_providers::EventType::ALL {
        assert!(
            schema.contains(&format!("\"{}\"", event_type.as_str())),
            "{event_type} missing from the schema"
        );
    }
}
