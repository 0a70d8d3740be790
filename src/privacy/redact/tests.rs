use super::*;

const KEY: &[u8] = b"a privacy key of at least 32 bytes!";

fn schema() -> (Value, Map<String, Value>) {
    let schema = serde_json::to_value(porter_providers::Event::json_schema()).expect("schema");
    let defs = schema["$defs"].as_object().cloned().expect("defs");
    (schema, defs)
}

fn resolve<'a>(schema: &'a Value, defs: &'a Map<String, Value>) -> &'a Value {
    match schema["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/$defs/"))
    {
        Some(name) => resolve(&defs[name], defs),
        None => match schema["anyOf"].as_array().or(schema["oneOf"].as_array()) {
            Some(branches) => branches
                .iter()
                .find(|b| b["type"] != "null")
                .map_or(schema, |b| resolve(b, defs)),
            None => schema,
        },
    }
}

/// A value for every member the schema names, so that every mark is exercised.
fn sample(schema: &Value, defs: &Map<String, Value>, name: &str) -> Value {
    let marked = schema["x-pii"] == Value::Bool(true);
    let schema = resolve(schema, defs);
    if let Some(constant) = schema.get("const") {
        return constant.clone();
    }
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    if let Some(properties) = schema["properties"].as_object() {
        return Value::Object(
            properties
                .iter()
                .map(|(member, s)| (member.clone(), sample(s, defs, member)))
                .collect(),
        );
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    match types.iter().find(|t| **t != "null") {
        Some(&"string") if name.contains("phone") || name == "from" => "+49 151 2345 6789".into(),
        Some(&"string") if name.contains("email") => "Ann@Example.com".into(),
        Some(&"string") => format!("{name} value").into(),
        Some(&"number") => 52.52.into(),
        Some(&"integer") => 2.into(),
        Some(&"boolean") => true.into(),
        Some(&"array") => Value::Array(vec![sample(&schema["items"], defs, name)]),
        _ if marked => {
            serde_json::json!({ "anything": "the vendor sent", "phone": "+491512345678" })
        }
        _ => Value::Null,
    }
}

/// Every leaf of `value` as (pointer, value, under a mark).
fn leaves(
    schema: &Value,
    defs: &Map<String, Value>,
    value: &Value,
    at: &str,
    marked: Option<&str>,
    out: &mut Vec<(String, Value, Option<String>)>,
) {
    let marked = marked.or((schema["x-pii"] == Value::Bool(true)).then_some(at));
    let schema = resolve(schema, defs);
    match value {
        Value::Object(object) if !object.is_empty() => {
            for (member, v) in object {
                let sub = &schema["properties"][member];
                leaves(sub, defs, v, &format!("{at}/{member}"), marked, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, v) in items.iter().enumerate() {
                leaves(&schema["items"], defs, v, &format!("{at}/{i}"), marked, out);
            }
        }
        _ => out.push((at.to_owned(), value.clone(), marked.map(str::to_owned))),
    }
}

#[test]
fn every_type_in_every_mode_follows_the_schemas_marks_field_by_field() {
    let (schema, defs) = schema();
    let mut checked_marked = 0;
    for branch in schema["oneOf"].as_array().expect("oneOf") {
        let event_type = branch["properties"]["type"]["const"]
            .as_str()
            .expect("type");
        let data_schema = &branch["properties"]["data"];
        let data = sample(data_schema, &defs, "data");
        let event = serde_json::json!({ "specversion": "1.0", "id": "evt_1", "type": event_type, "data": data });
        let mut before = Vec::new();
        leaves(
            data_schema,
            &defs,
            &event["data"],
            "/data",
            None,
            &mut before,
        );
        for mode in [Pii::Keep, Pii::Hash, Pii::Drop] {
            let redacted: Value = match Redaction::new(mode, Some(KEY)) {
                None => event.clone(),
                Some(redaction) => {
                    serde_json::from_str(&redaction.apply(&event.to_string()).expect("redacts"))
                        .expect("JSON")
                }
            };
            for (pointer, original, marked) in &before {
                let now = redacted.pointer(pointer);
                let field = format!("{event_type} {pointer} ({mode:?})");
                match (mode, marked) {
                    (Pii::Keep, _) | (_, None) => {
                        assert_eq!(now, Some(original), "{field}: unmarked or kept, unchanged");
                    }
                    (Pii::Drop, Some(_)) => assert_eq!(now, None, "{field}: dropped"),
                    (Pii::Hash, Some(root)) => {
                        checked_marked += 1;
                        match now {
                            // Only a marked member that is neither text, a number nor a list
                            // of text is removed whole (a raw payload, a contact card).
                            None => {
                                let member = event.pointer(root).expect("sampled");
                                let hashable = member.is_string()
                                    || member.is_number()
                                    || member
                                        .as_array()
                                        .is_some_and(|items| items.iter().all(Value::is_string));
                                assert!(!hashable, "{field}: hashable, but removed");
                                assert_eq!(redacted.pointer(root), None, "{field}: removed whole");
                            }
                            Some(Value::String(token)) => {
                                assert!(
                                    token.starts_with("pii_") && token.len() == 36,
                                    "{field}: {token}"
                                );
                                assert_ne!(Some(token.as_str()), original.as_str());
                            }
                            Some(other) => panic!("{field}: left as {other}"),
                        }
                    }
                }
            }
        }
    }
    assert!(
        checked_marked > 40,
        "only {checked_marked} marked values were checked"
    );
}

#[test]
fn raw_payloads_are_removed_whole_under_hash_and_drop() {
    let event = r#"{"type":"unknown","id":"evt_1","data":{"reason":"not modelled","raw":{"name":"Ann","phone":"+491512345678"}}}"#;
    for mode in [Pii::Hash, Pii::Drop] {
        let redacted = Redaction::new(mode, Some(KEY))
            .expect("redacts")
            .apply(event)
            .expect("ok");
        let value: Value = serde_json::from_str(&redacted).expect("json");
        assert_eq!(
            value["data"],
            serde_json::json!({ "reason": "not modelled" }),
            "{mode:?}"
        );
    }
}

#[test]
fn one_phone_number_is_one_token_however_it_is_written() {
    let spellings = [
        "+49 151 2345 6789",
        "004915123456789",
        "4915123456789",
        "(+49) 151-2345-6789",
        "whatsapp:+4915123456789",
    ];
    let tokens: std::collections::HashSet<String> = spellings
        .iter()
        .map(|s| token(KEY, &canonical("phone", s)))
        .collect();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert_eq!(
        canonical_phone("+49 151 2345 6789").as_deref(),
        Some("+4915123456789")
    );
    assert_eq!(canonical_phone("guest-42"), None);
    assert_eq!(canonical_phone("12"), None, "too short for a phone number");
    assert_eq!(canonical("email", " Ann@Example.COM "), "ann@example.com");
    assert_ne!(
        token(KEY, "+4915123456789"),
        token(b"another key of at least 32 bytes!!", "+4915123456789")
    );
}

proptest::proptest! {
    #[test]
    fn any_json_is_redacted_or_refused_without_panics(text in proptest::prelude::any::<String>()) {
        let redaction = Redaction::new(Pii::Hash, Some(KEY)).expect("hash");
        let _ = redaction.apply(&text);
        let _ = canonical_phone(&text);
    }
}
