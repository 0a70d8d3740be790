//! The one-pass reading gives exactly the lenient reading's events, or none at all.

use super::super::normalize_leniently;
use crate::testing::origin;

/// Every Meta fixture's body, and bodies around the edges of the common shape.
fn bodies() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/meta");
    let mut bodies: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .expect("fixtures/meta")
        .filter_map(|case| std::fs::read(case.ok()?.path().join("body")).ok())
        .collect();
    assert!(bodies.len() >= 15, "found {} fixture bodies", bodies.len());
    bodies.extend(EDGES.iter().map(|body| body.as_bytes().to_vec()));
    bodies.push(b"{\"object\":\"x\",\"entry\":[],\"pad\":\"\xff\"}".to_vec());
    bodies
}

const TEXT: &str = r#"{"from":"15551234567","id":"wamid.A","timestamp":"1700000000","type":"text","text":{"body":"hi"}}"#;
const STATUS: &str =
    r#"{"id":"wamid.A","status":"read","timestamp":"1700000001","recipient_id":"15551234567"}"#;

const EDGES: &[&str] = &[
    // the common shape, then one thing off it at a time
    r#"{"object":"whatsapp_business_account","entry":[{"id":"W","time":1,"changes":[{"field":"messages","value":{"metadata":{"display_phone_number":"1555","phone_number_id":"P"},"contacts":[{"wa_id":"15551234567","profile":{"name":"Ana"}}],"messages":[TEXT],"statuses":[STATUS]}}]}]}"#,
    r#"{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"messag\u0065s","value":{"messages":[TEXT]}}]}]}"#,
    r#"{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"messages","value":{"messages":[TEXT],"errors":[{"code":1}]}}]}]}"#,
    r#"{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"messages","value":{"messages":[TEXT],"errors":null}}]}]}"#,
    r#"{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"messages","value":{"messages":[]}}]}]}"#,
    r#"{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"messages","value":null}]}]}"#,
    r#"{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"account_update","value":{"messages":[TEXT]}}]}]}"#,
    r#"{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"messages","value":{"messages":[{"from":"1","id":"wamid.B","type":"order","order":{}}]}}]}]}"#,
    r#"{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"messages","value":{"messages":[{"from":"1","type":"text"}]}}]}]}"#,
    r#"{"object":"whatsapp_business_account","entry":[{"id":"W","messaging":null,"changes":[{"field":"messages","value":{"messages":[TEXT]}}]}]}"#,
    r#"{"object":"whatsapp_business_account","entry":[{"id":"W","messaging":[],"changes":[{"field":"messages","value":{"messages":[TEXT]}}]}]}"#,
    r#"{"object":"page","entry":[{"id":"W","messaging":[{"sender":{"id":"1"}}],"changes":[{"field":"messages","value":{"messages":[TEXT]}}]}]}"#,
    r#"{"object":"whatsapp_business_account","entry":[{"id":1.5,"time":"t","changes":[{"field":"messages","value":{"statuses":[STATUS]}}]}]}"#,
    r#"{"object":7,"entry":[{"id":"W","changes":[{"field":"messages","value":{"messages":[TEXT]}}]}]}"#,
    r#"{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"messages","value":{"messages":[TEXT]}}]}]} x"#,
    r#"{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"messages","field":"messages","value":{"messages":[TEXT]}}]}]}"#,
    r#"{"object":"whatsapp_business_account","entry":[]}"#,
    r#"[]"#,
];

fn expand(body: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(body)
        .replace("TEXT", TEXT)
        .replace("STATUS", STATUS)
        .into_bytes()
}

/// The typed reading's events, when it gives any, are the lenient reading's; when the lenient
/// reading refuses a body, the typed one has nothing.
fn agree(body: &[u8]) -> bool {
    let origin = origin("whatsapp", "meta");
    let typed = super::normalize(body, &origin);
    match normalize_leniently(body, &origin) {
        Ok(lenient) => {
            if let Some(typed) = &typed {
                assert_eq!(typed, &lenient, "{}", String::from_utf8_lossy(body));
            }
        }
        Err(_) => assert!(typed.is_none(), "{}", String::from_utf8_lossy(body)),
    }
    typed.is_some()
}

#[test]
fn the_typed_reading_gives_the_lenient_readings_events() {
    let bodies: Vec<Vec<u8>> = bodies().iter().map(|b| expand(b)).collect();
    let typed = bodies.iter().filter(|body| agree(body)).count();
    // The fixtures of plain messages and statuses and the first edge take the one pass.
    assert!(typed >= 6, "only {typed} bodies took the typed reading");
}

#[test]
fn the_edges_take_the_reading_they_must() {
    let origin = origin("whatsapp", "meta");
    let takes = |i: usize| super::normalize(&expand(EDGES[i].as_bytes()), &origin).is_some();
    assert!(takes(0), "the common shape");
    assert!(takes(3), "errors: null is no errors, for both readings");
    assert!(takes(10) && takes(12), "empty messaging; ids as numbers");
    for off in [1, 2, 4, 5, 6, 7, 8, 9, 11, 13, 14, 15, 16, 17] {
        assert!(!takes(off), "edge {off} must go to the lenient reading");
    }
}

#[test]
fn one_byte_changed_anywhere_still_agrees() {
    // Every position of a few bodies, each byte replaced by characters that change JSON's
    // structure or a string's content.
    let mut bodies: Vec<Vec<u8>> = EDGES[..1].iter().map(|b| expand(b.as_bytes())).collect();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/meta");
    bodies.push(std::fs::read(dir.join("statuses/body")).expect("statuses fixture"));
    let mut typed = 0;
    for body in &bodies {
        for at in 0..body.len() {
            for replacement in [b'"', b'}', b'1', b'x', b'\\', 0xff] {
                let mut changed = body.clone();
                changed[at] = replacement;
                typed += usize::from(agree(&changed));
            }
        }
    }
    assert!(typed > 0);
}
