//! The stored CloudEvent as brokers need it: its source name and type for the subject or
//! routing key, its `traceparent`, and for CloudEvents binary mode its attributes as `ce-`
//! headers with `data` alone as the body.
//!
//! Stored events are porter's own structured JSON, so reading them fails only if the store
//! was tampered with; that is a failed attempt (and, in time, a dead letter), never a panic.

use serde_json::value::RawValue;

/// A stored event's top-level attributes, borrowed from its JSON.
#[derive(Debug)]
pub(super) struct StoredEvent<'a> {
    attributes: Vec<(String, &'a RawValue)>,
}

impl<'a> StoredEvent<'a> {
    pub(super) fn parse(json: &'a str) -> Result<Self, serde_json::Error> {
        let map: std::collections::BTreeMap<String, &'a RawValue> = serde_json::from_str(json)?;
        Ok(Self {
            attributes: map.into_iter().collect(),
        })
    }

    fn raw(&self, name: &str) -> Option<&'a RawValue> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| *value)
    }

    /// A string attribute (`None` when absent or not a string).
    pub(super) fn text(&self, name: &str) -> Option<String> {
        serde_json::from_str(self.raw(name)?.get()).ok()
    }

    /// The configured source's name (`whatsapp` of `/sources/whatsapp`).
    pub(super) fn source_name(&self) -> String {
        let source = self.text("source").unwrap_or_default();
        source
            .strip_prefix("/sources/")
            .unwrap_or(&source)
            .to_owned()
    }

    pub(super) fn event_type(&self) -> String {
        self.text("type").unwrap_or_else(|| "unknown".to_owned())
    }

    /// The CloudEvents distributed-tracing extension, when the event was stored under a trace
    /// and it is a valid W3C `traceparent` (anything else is left out, as over HTTP).
    pub(super) fn traceparent(&self) -> Option<String> {
        crate::trace::Traceparent::parse(&self.text("traceparent")?).map(|t| t.to_string())
    }

    /// Binary mode: every attribute but `data` and `datacontenttype` as a `ce-` header
    /// (strings as they are, anything else as its JSON), control characters replaced so that
    /// no value can break a header line.
    pub(super) fn binary_headers(&self) -> Vec<(String, String)> {
        self.attributes
            .iter()
            .filter(|(name, _)| {
                !matches!(name.as_str(), "data" | "data_base64" | "datacontenttype")
            })
            .map(|(name, raw)| {
                let value = serde_json::from_str::<String>(raw.get())
                    .unwrap_or_else(|_| raw.get().to_owned());
                (format!("ce-{name}"), header_safe(&value))
            })
            .collect()
    }

    /// Binary mode's body and its content type: `data` as JSON (empty when there is none).
    pub(super) fn data(&self) -> (&'a str, String) {
        let body = self.raw("data").map_or("", RawValue::get);
        let content_type = self
            .text("datacontenttype")
            .unwrap_or_else(|| "application/json".to_owned());
        (body, header_safe(&content_type))
    }
}

fn header_safe(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"specversion":"1.0","id":"evt_1","source":"/sources/whatsapp","type":"message.received","subject":"a\r\nb","datacontenttype":"application/json","traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","data":{"text":"hi"}}"#;

    #[test]
    fn reads_what_brokers_need() {
        let event = StoredEvent::parse(EVENT).expect("parses");
        assert_eq!(event.source_name(), "whatsapp");
        assert_eq!(event.event_type(), "message.received");
        assert_eq!(
            event.traceparent().as_deref(),
            Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        );
        let headers = event.binary_headers();
        assert!(headers.contains(&("ce-id".into(), "evt_1".into())));
        assert!(headers.contains(&("ce-specversion".into(), "1.0".into())));
        assert!(
            headers.contains(&("ce-subject".into(), "a  b".into())),
            "{headers:?}"
        );
        assert!(
            !headers
                .iter()
                .any(|(name, _)| name == "ce-data" || name == "ce-datacontenttype")
        );
        assert_eq!(
            event.data(),
            (r#"{"text":"hi"}"#, "application/json".to_owned())
        );
        let forged = EVENT.replace("00-0af7", "zz-0af7");
        let forged = StoredEvent::parse(&forged).expect("parses");
        assert_eq!(
            forged.traceparent(),
            None,
            "a malformed traceparent is left out"
        );
    }

    proptest::proptest! {
        /// Whatever a stored event holds, reading it never panics and no header value can
        /// break a header line.
        #[test]
        fn any_object_reads_without_panics(
            attributes in proptest::collection::btree_map("[a-z]{1,8}", proptest::prelude::any::<String>(), 0..8),
            data in proptest::prelude::any::<Option<String>>(),
        ) {
            let mut event: serde_json::Map<String, serde_json::Value> = attributes
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect();
            if let Some(data) = data {
                event.insert("data".into(), serde_json::json!({ "text": data }));
            }
            let json = serde_json::Value::Object(event).to_string();
            let event = StoredEvent::parse(&json).expect("an object parses");
            let _ = (event.source_name(), event.event_type(), event.traceparent(), event.data());
            for (_, value) in event.binary_headers() {
                proptest::prop_assert!(!value.chars().any(char::is_control));
            }
        }

        #[test]
        fn any_text_is_read_or_refused(text in proptest::prelude::any::<String>()) {
            let _ = StoredEvent::parse(&text).map(|e| e.binary_headers());
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for text in ["", "[]", "{", "{\"data\":", "null", "\u{0}"] {
            assert!(StoredEvent::parse(text).is_err(), "{text:?}");
        }
    }
}
