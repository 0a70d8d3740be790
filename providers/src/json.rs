//! Reading vendor JSON leniently but exactly.
//!
//! PMS vendors send ids as strings or numbers, spell the same field `propertyID` and
//! `propertyId`, and write money as numbers. These helpers read such values without losing
//! information: ids become their exact text, money keeps its exact digits (read from the raw
//! JSON text, never through an `f64`), and timestamps accept RFC 3339 or Unix seconds.

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::event::Money;

/// A string or a number, kept as text: for ids that vendors send either way.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Text(String),
    Number(serde_json::Number),
    Bool(bool),
}

impl Scalar {
    pub fn text(&self) -> String {
        match self {
            Scalar::Text(text) => text.clone(),
            Scalar::Number(number) => number.to_string(),
            Scalar::Bool(flag) => flag.to_string(),
        }
    }
}

/// The text of a JSON string or number value (`None` for anything else or an empty string).
pub fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// The first of `names` present in `object` as a string or number, as text.
pub fn field(object: &Value, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|name| object.get(*name).and_then(text_of))
}

/// Like [`field`], with names compared without regard to ASCII case (`propertyID` matches
/// `propertyId`).
pub fn field_ci(object: &Value, name: &str) -> Option<String> {
    object
        .as_object()?
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .and_then(|(_, value)| text_of(value))
}

/// A whole number of `u32` from a JSON number or numeric string.
pub fn count(object: &Value, names: &[&str]) -> Option<u32> {
    field(object, names)?.parse().ok()
}

/// Money from a raw JSON number or string, digits kept exactly. Accepts `-?digits(.digits)?`
/// only: an exponent, or anything else, is not money porter can carry exactly.
pub fn money(raw: &RawValue, currency: Option<String>, minor_units: bool) -> Option<Money> {
    let text = raw.get().trim();
    let digits = match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) => inner,
        None => text,
    };
    is_decimal(digits).then(|| Money {
        amount: digits.to_owned(),
        minor_units,
        currency,
    })
}

fn is_decimal(text: &str) -> bool {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (unsigned, None),
    };
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

/// The raw JSON text of member `name` of a JSON object given as text, for exact money.
pub fn raw_member<'a>(object: &'a RawValue, name: &str) -> Option<&'a RawValue> {
    let members: std::collections::HashMap<&str, &RawValue> =
        serde_json::from_str(object.get()).ok()?;
    members.get(name).copied()
}

/// A time written as RFC 3339 text, or as Unix seconds (integer or fractional, as a number
/// or a numeric string).
pub fn time(value: &Value) -> Option<Timestamp> {
    match value {
        Value::String(text) => text
            .parse::<Timestamp>()
            .ok()
            .or_else(|| decimal_seconds(text))
            .or_else(|| unix_seconds(text.parse().ok()?)),
        // A number's text is the shortest that reads back as the same `f64`, so for the
        // microsecond timestamps vendors send it is the digits they wrote.
        Value::Number(number) => {
            decimal_seconds(&number.to_string()).or_else(|| unix_seconds(number.as_f64()?))
        }
        _ => None,
    }
}

/// A time written as Unix milliseconds (an integer, or its digits as a string), as Zoom and
/// Meta's Messenger write them.
pub fn time_ms(value: &Value) -> Option<Timestamp> {
    let millis = match value {
        Value::Number(number) => number.as_i64()?,
        Value::String(text) if text.bytes().all(|b| b.is_ascii_digit()) => text.parse().ok()?,
        _ => return None,
    };
    Timestamp::from_millisecond(millis).ok()
}

/// Unix seconds in plain decimal (`1710511200.431234`), read digit for digit: through an `f64`
/// the microseconds would come out as `.431233883`. Digits beyond nanoseconds are dropped.
fn decimal_seconds(text: &str) -> Option<Timestamp> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 11 || !digits(whole) || !digits(fraction) {
        return None;
    }
    let nanos: String = fraction
        .chars()
        .chain(std::iter::repeat('0'))
        .take(9)
        .collect();
    Timestamp::new(whole.parse().ok()?, nanos.parse().ok()?).ok()
}

fn unix_seconds(seconds: f64) -> Option<Timestamp> {
    if !seconds.is_finite() || !(0.0..1e11).contains(&seconds) {
        return None;
    }
    let whole = seconds.trunc() as i64;
    let nanos = ((seconds - seconds.trunc()) * 1e9).round() as i32;
    Timestamp::new(whole, nanos.clamp(0, 999_999_999)).ok()
}

/// The canonical text of a JSON value (object keys sorted): equal for equal content however
/// the vendor ordered or spaced it, for keys derived from a payload's identifying fields.
pub fn canonical(value: &Value) -> String {
    // serde_json's map is ordered by key (no `preserve_order`), so this is canonical.
    value.to_string()
}

/// Removes every member named like a credential, at any depth: `AccessToken`, `ApiKey`,
/// `token`, `secret`, `password` (any case).
pub fn strip_credentials(value: &mut Value) {
    const NAMES: &[&str] = &[
        "accesstoken",
        "access_token",
        "apikey",
        "api_key",
        "token",
        "secret",
        "password",
        "clientsecret",
        "client_secret",
    ];
    match value {
        Value::Object(members) => {
            members.retain(|key, _| !NAMES.contains(&key.to_ascii_lowercase().as_str()));
            members.values_mut().for_each(strip_credentials);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_credentials),
        _ => {}
    }
}

/// How deep arrays and objects may nest: serde_json's own limit for `Value`, which `RawValue`
/// does not apply. One rule for every provider: deeper is malformed.
pub const MAX_DEPTH: usize = 128;

/// A JSON body as `T`; a body that does not parse is `malformed_body` (serde_json refuses
/// nesting deeper than [`MAX_DEPTH`] itself).
pub fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, crate::Rejection> {
    serde_json::from_slice(body).map_err(|e| crate::Rejection::malformed("JSON", e))
}

/// The body as raw JSON, refusing nesting deeper than [`MAX_DEPTH`] (which a `RawValue` does
/// not check).
pub fn parse_raw(body: &[u8]) -> Result<&RawValue, crate::Rejection> {
    check_depth(body)?;
    serde_json::from_slice(body).map_err(|e| crate::Rejection::malformed("JSON", e))
}

/// Refuses a body whose brackets nest deeper than [`MAX_DEPTH`], as [`parse_raw`] does, for
/// a reader that goes on to parse it some other way.
pub fn check_depth(body: &[u8]) -> Result<(), crate::Rejection> {
    if depth_within(body, MAX_DEPTH) {
        Ok(())
    } else {
        Err(crate::Rejection::malformed(
            "JSON",
            format!("nested deeper than {MAX_DEPTH}"),
        ))
    }
}

/// Whether brackets outside strings nest at most `limit` deep (a single pass, no allocation;
/// the insides of strings, most of a webhook's bytes, are skipped with `memchr`).
fn depth_within(body: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut at = 0;
    while at < body.len() {
        match body[at] {
            b'"' => {
                // Skip to the closing quote, stepping over escapes.
                at += 1;
                loop {
                    match memchr::memchr2(b'"', b'\\', &body[at..]) {
                        None => return true,
                        Some(found) if body[at + found] == b'\\' => at += found + 2,
                        Some(found) => {
                            at += found;
                            break;
                        }
                    }
                    if at >= body.len() {
                        return true;
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        at += 1;
    }
    true
}

/// The value parsed from raw JSON text, or the text itself when it holds numbers beyond
/// `f64` (which `RawValue` accepts and `Value` refuses): never lost.
pub fn value_of(raw: &RawValue) -> Value {
    serde_json::from_str(raw.get()).unwrap_or_else(|_| Value::String(raw.get().to_owned()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).expect("raw json")
    }

    #[test]
    fn money_keeps_the_digits_of_numbers_and_strings() {
        assert_eq!(
            money(&raw("599.00"), None, false).map(|m| m.amount),
            Some("599.00".into())
        );
        assert_eq!(
            money(&raw("\"12.50\""), None, false).map(|m| m.amount),
            Some("12.50".into())
        );
        assert_eq!(
            money(&raw("6000"), None, true).map(|m| (m.amount, m.minor_units)),
            Some(("6000".into(), true))
        );
        assert_eq!(
            money(&raw("0.1"), Some("EUR".into()), false).map(|m| m.amount),
            Some("0.1".into())
        );
        assert_eq!(
            money(&raw("19.999999999999999999"), None, false).map(|m| m.amount),
            Some("19.999999999999999999".into())
        );
        for bad in ["1e3", "\"abc\"", "null", "\"\"", "\"1.\"", "\".5\"", "true"] {
            assert_eq!(money(&raw(bad), None, false), None, "{bad}");
        }
    }

    #[test]
    fn fields_read_strings_numbers_and_any_case() {
        let object = json!({"propertyID": 123, "reservationId": "R1", "empty": "", "flag": true});
        assert_eq!(
            field(&object, &["propertyId", "propertyID"]),
            Some("123".into())
        );
        assert_eq!(field_ci(&object, "propertyid"), Some("123".into()));
        assert_eq!(field_ci(&object, "RESERVATIONID"), Some("R1".into()));
        assert_eq!(field(&object, &["empty"]), None);
        assert_eq!(field(&object, &["flag"]), None);
    }

    #[test]
    fn times_in_every_vendor_format() {
        let at = |v: Value| time(&v).map(|t| t.to_string());
        assert_eq!(
            at(json!("2024-03-15T14:00:00Z")),
            Some("2024-03-15T14:00:00Z".into())
        );
        assert_eq!(
            at(json!(1_710_511_200)),
            Some("2024-03-15T14:00:00Z".into())
        );
        assert_eq!(at(json!("1710511200")), Some("2024-03-15T14:00:00Z".into()));
        assert_eq!(
            at(json!(1_710_511_200.25)),
            Some("2024-03-15T14:00:00.25Z".into())
        );
        assert_eq!(
            at(json!(1_789_459_200.431_234)),
            Some("2026-09-15T08:00:00.431234Z".into())
        );
        assert_eq!(
            at(json!("1710511198.123456")),
            Some("2024-03-15T13:59:58.123456Z".into())
        );
        assert_eq!(at(json!("yesterday")), None);
        assert_eq!(at(json!(-5)), None);
    }

    #[test]
    fn credentials_are_removed_at_any_depth() {
        let mut value = json!({"Action": "IntegrationCreated", "Data": {"AccessToken": "T", "Integration": {"Id": "I", "ApiKey": "K"}, "list": [{"token": "x", "ok": 1}]}});
        strip_credentials(&mut value);
        assert_eq!(
            value,
            json!({"Action": "IntegrationCreated", "Data": {"Integration": {"Id": "I"}, "list": [{"ok": 1}]}})
        );
    }

    #[test]
    fn nesting_is_limited_outside_strings_only() {
        let deep = format!("{}1{}", "[".repeat(129), "]".repeat(129));
        assert!(parse_raw(deep.as_bytes()).is_err());
        let fine = format!("{}1{}", "[".repeat(128), "]".repeat(128));
        assert!(parse_raw(fine.as_bytes()).is_ok());
        let quoted = format!("{{\"a\":\"{}\\\"{}\"}}", "[".repeat(500), "{".repeat(500));
        assert!(parse_raw(quoted.as_bytes()).is_ok(), "{quoted}");
    }

    #[test]
    fn canonical_text_ignores_member_order() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":[1,2]}"#).expect("json");
        let b: Value = serde_json::from_str(r#"{ "a" : [1,2], "b" : 1 }"#).expect("json");
        assert_eq!(canonical(&a), canonical(&b));
    }

    /// The obvious byte-by-byte scan, to check the fast one against.
    fn depth_within_slowly(body: &[u8], limit: usize) -> bool {
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        for &byte in body {
            if in_string {
                match (escaped, byte) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_string = false,
                    _ => {}
                }
                continue;
            }
            match byte {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    if depth > limit {
                        return false;
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        true
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        assert!(depth_within(br#"{"a":"[[[[[[","b":"\\\"{{{{"}"#, 2));
        assert!(!depth_within(br#"{"a":[[{"b":"]]]"}]]}"#, 3));
        assert!(depth_within(br#"{"a":[[{"b":"]]]"}]]}"#, 4));
        assert!(depth_within(b"\"unterminated \\", 0));
        assert!(depth_within(b"\"", 0));
        assert!(!depth_within(&[b'['; 129], MAX_DEPTH));
        assert!(depth_within(&[b'['; 128], MAX_DEPTH));
    }

    proptest::proptest! {
        #[test]
        fn the_fast_depth_scan_agrees_with_the_obvious_one(
            body in proptest::collection::vec(proptest::sample::select(
                vec![b'[', b']', b'{', b'}', b'"', b'\\', b'a', b':']), 0..64),
            limit in 0usize..6,
        ) {
            proptest::prop_assert_eq!(depth_within(&body, limit), depth_within_slowly(&body, limit));
        }
    }
}
