//! Redaction by the schema's `x-pii` marks (see the module above).

use crate::vocab::Pii;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use hmac::Mac;
use serde_json::{Map, Value};
use sha2::Sha256;

/// What to do with one part of an event.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    /// A marked value.
    Personal,
    /// An object with members that hold marked values.
    Object(Vec<(String, Node)>),
    /// A list whose items hold marked values.
    Items(Box<Node>),
}

/// For each event type, where its `data` holds personal values; built once from the schema.
fn plans() -> &'static HashMap<String, Node> {
    static PLANS: OnceLock<HashMap<String, Node>> = OnceLock::new();
    PLANS.get_or_init(|| {
        let schema =
            serde_json::to_value(porter_providers::Event::json_schema()).unwrap_or_default();
        let defs = schema["$defs"].as_object().cloned().unwrap_or_default();
        let mut plans = HashMap::new();
        for branch in schema["oneOf"].as_array().into_iter().flatten() {
            let Some(event_type) = branch["properties"]["type"]["const"].as_str() else {
                continue;
            };
            if let Some(node) = compile(&branch["properties"]["data"], &defs, 0) {
                plans.insert(event_type.to_owned(), node);
            }
        }
        plans
    })
}

/// The plan of a (sub)schema, or `None` when nothing in it is marked.
fn compile(schema: &Value, defs: &Map<String, Value>, depth: usize) -> Option<Node> {
    if depth > 32 {
        return None;
    }
    if schema["x-pii"] == Value::Bool(true) {
        return Some(Node::Personal);
    }
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.strip_prefix("#/$defs/")?;
        return compile(defs.get(name)?, defs, depth + 1);
    }
    for union in ["anyOf", "oneOf"] {
        if let Some(branches) = schema[union].as_array() {
            return branches.iter().find_map(|b| compile(b, defs, depth + 1));
        }
    }
    if let Some(properties) = schema["properties"].as_object() {
        let members: Vec<(String, Node)> = properties
            .iter()
            .filter_map(|(name, s)| Some((name.clone(), compile(s, defs, depth + 1)?)))
            .collect();
        return (!members.is_empty()).then_some(Node::Object(members));
    }
    if schema["items"].is_object() {
        return Some(Node::Items(Box::new(compile(
            &schema["items"],
            defs,
            depth + 1,
        )?)));
    }
    None
}

/// A destination's redaction: its mode and, for `hash`, the key.
#[derive(Clone)]
pub struct Redaction {
    mode: Pii,
    key: Arc<[u8]>,
}

impl std::fmt::Debug for Redaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redaction")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Redaction {
    /// `None` for `keep` (the event goes as stored). `key` is `[privacy] key`, required for
    /// `hash` (checked when the configuration is loaded).
    pub fn new(mode: Pii, key: Option<&[u8]>) -> Option<Self> {
        (mode != Pii::Keep).then(|| Self {
            mode,
            key: Arc::from(key.unwrap_or_default()),
        })
    }

    /// The stored event `json` with its personal values hashed or removed; an error when
    /// it does not parse (a store tampered with: a failed attempt, never a panic).
    pub fn apply(&self, json: &str) -> Result<String, serde_json::Error> {
        let mut event: Value = serde_json::from_str(json)?;
        let event_type = event["type"].as_str().unwrap_or("unknown").to_owned();
        let remove = match (plans().get(&event_type), event.get_mut("data")) {
            (Some(plan), Some(data)) => self.redact(data, plan, ""),
            _ => false,
        };
        if remove && let Some(object) = event.as_object_mut() {
            object.remove("data");
        }
        serde_json::to_string(&event)
    }

    /// Applies `node` to `value` (named `name` in its parent); true when it must be removed.
    fn redact(&self, value: &mut Value, node: &Node, name: &str) -> bool {
        match node {
            Node::Personal => {
                if self.mode != Pii::Hash {
                    return self.mode == Pii::Drop;
                }
                let hashed = match value {
                    Value::Null => return false,
                    Value::String(text) => Value::String(token(&self.key, &canonical(name, text))),
                    Value::Number(number) => Value::String(token(&self.key, &number.to_string())),
                    Value::Array(items) if items.iter().all(Value::is_string) => Value::Array(
                        items
                            .iter()
                            .filter_map(Value::as_str)
                            .map(|text| Value::String(token(&self.key, &canonical(name, text))))
                            .collect(),
                    ),
                    // A raw payload or a contact card: what is in it cannot be known.
                    _ => return true,
                };
                *value = hashed;
                false
            }
            Node::Object(members) => {
                if let Value::Object(object) = value {
                    for (member, plan) in members {
                        let remove = object
                            .get_mut(member)
                            .is_some_and(|v| self.redact(v, plan, member));
                        if remove {
                            object.remove(member);
                        }
                    }
                }
                false
            }
            Node::Items(plan) => {
                if let Value::Array(items) = value {
                    items.retain_mut(|item| !self.redact(item, plan, name));
                }
                false
            }
        }
    }
}

/// The form a value is hashed in: phone numbers in E.164, emails lower-cased, text as is.
fn canonical(field: &str, text: &str) -> String {
    if matches!(field, "phone" | "from" | "recipient" | "wa_id" | "phones") {
        canonical_phone(text).unwrap_or_else(|| text.to_owned())
    } else if matches!(field, "email" | "emails") {
        text.trim().to_lowercase()
    } else {
        text.to_owned()
    }
}

/// A phone number in E.164 form (`+4915112345678`) from the ways people and providers write
/// it (`+49 151 1234 5678`, `004915112345678`, `4915112345678`, `(0049) 151-1234-5678`);
/// `None` when it is not a phone number (a WhatsApp username, a PMS id).
pub(super) fn canonical_phone(text: &str) -> Option<String> {
    let text = text.trim();
    let text = text.strip_prefix("whatsapp:").unwrap_or(text);
    if !text
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c))
    {
        return None;
    }
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let international = text.trim_start_matches('(').starts_with('+');
    let digits = match digits.strip_prefix("00") {
        Some(rest) if !international => rest.to_owned(),
        _ => digits,
    };
    (7..=15)
        .contains(&digits.len())
        .then(|| format!("+{digits}"))
}

/// `pii_` + the first 32 hex digits of HMAC-SHA256(key, value).
pub fn token(key: &[u8], value: &str) -> String {
    let mut mac =
        <hmac::Hmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(key).expect("any key length");
    mac.update(value.as_bytes());
    let digest = mac.finalize().into_bytes();
    format!("pii_{}", &hex::encode(digest)[..32])
}

#[cfg(test)]
mod tests;
