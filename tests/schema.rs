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

/// Property names that look like personal data: every property whose name contains one of
/// these must carry `"x-pii": true` in the schema (destinations redact by those marks), unless
/// it is listed in [`NOT_PERSONAL`] with the reason.
const LOOKS_PERSONAL: &[&str] = &[
    "name",
    "phone",
    "email",
    "address",
    "passport",
    "document",
    "text",
    "birth",
    "from",
    "recipient",
    "caption",
    "raw",
];

/// `(type, property)` pairs whose names look personal but are not.
const NOT_PERSONAL: &[(&str, &str, &str)] = &[
    ("OrderItem", "name", "a product's name"),
    ("InventoryData", "name", "a stock item's name"),
    (
        "IntegrationData",
        "integration_name",
        "a vendor integration's name",
    ),
];

#[test]
fn every_field_that_looks_personal_is_marked() {
    let schema = serde_json::to_value(Event::json_schema()).expect("schema");
    let defs = schema["$defs"].as_object().expect("$defs");
    let mut unmarked = Vec::new();
    let mut marked = 0;
    for (type_name, def) in defs {
        let Some(properties) = def["properties"].as_object() else {
            continue;
        };
        for (property, property_schema) in properties {
            let is_marked = property_schema["x-pii"] == serde_json::Value::Bool(true);
            marked += usize::from(is_marked);
            let looks_personal = LOOKS_PERSONAL.iter().any(|word| property.contains(word));
            let exempt = NOT_PERSONAL
                .iter()
                .any(|(t, p, _)| t == type_name && p == property);
            if looks_personal && !is_marked && !exempt {
                unmarked.push(format!("{type_name}.{property}"));
            }
            assert!(
                !(exempt && is_marked),
                "{type_name}.{property} is marked and listed as not personal"
            );
        }
    }
    assert!(
        unmarked.is_empty(),
        "fields that look personal carry no `x-pii` mark (add #[schemars(extend(\"x-pii\" = true))], or list them in NOT_PERSONAL with the reason): {unmarked:?}"
    );
    assert!(
        marked >= 30,
        "only {marked} marked fields: the marks did not reach the schema"
    );
}
