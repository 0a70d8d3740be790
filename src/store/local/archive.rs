//! An archived request as the local store writes it: a journal record and a snapshot frame
//! (base64 for the bytes, the expiry beside it).

use bytes::Bytes;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::store::archive::{Archived, ArchivedOutcome};
use crate::store::local::record::Unreadable;

/// An archived request as the local store writes it: a journal record and a snapshot frame.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ArchivedWire {
    id: String,
    source: String,
    /// Unix milliseconds.
    received_at: i64,
    method: String,
    endpoint: String,
    path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    query: Option<String>,
    /// Names and base64 values.
    headers: Vec<(String, String)>,
    /// Base64.
    body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    events: Option<Vec<(String, String)>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    quarantined: Option<String>,
    /// When it leaves the archive, Unix milliseconds.
    expires: i64,
}

impl ArchivedWire {
    pub(crate) fn new(item: &Archived, expires: i64) -> Self {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let (events, quarantined) = match &item.outcome {
            ArchivedOutcome::Events(events) => (Some(events.clone()), None),
            ArchivedOutcome::Quarantined(reason) => (None, Some(reason.clone())),
        };
        Self {
            id: item.id.clone(),
            source: item.source.clone(),
            received_at: item.received_at.as_millisecond(),
            method: item.method.clone(),
            endpoint: item.endpoint.clone(),
            path: item.path.clone(),
            query: item.query.clone(),
            headers: item
                .headers
                .iter()
                .map(|(name, value)| (name.clone(), b64.encode(value)))
                .collect(),
            body: b64.encode(&item.body),
            events,
            quarantined,
            expires,
        }
    }

    /// The entry and its expiry.
    pub(crate) fn into_parts(self) -> Result<(Archived, i64), Unreadable> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let decode = |text: &str| b64.decode(text).map(Bytes::from);
        let headers = self
            .headers
            .iter()
            .map(|(name, value)| Ok((name.clone(), decode(value)?)))
            .collect::<Result<Vec<_>, Unreadable>>()?;
        let outcome = match (self.events, self.quarantined) {
            (_, Some(reason)) => ArchivedOutcome::Quarantined(reason),
            (events, None) => ArchivedOutcome::Events(events.unwrap_or_default()),
        };
        let item = Archived {
            received_at: Timestamp::from_millisecond(self.received_at)?,
            body: decode(&self.body)?,
            id: self.id,
            source: self.source,
            method: self.method,
            endpoint: self.endpoint,
            path: self.path,
            query: self.query,
            headers,
            outcome,
        };
        Ok((item, self.expires))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(source: &str, at_ms: i64, body: &[u8]) -> Archived {
        Archived {
            id: String::new(),
            source: source.to_owned(),
            received_at: Timestamp::from_millisecond(at_ms).expect("time"),
            method: "POST".to_owned(),
            endpoint: String::new(),
            path: "/p".to_owned(),
            query: None,
            headers: vec![("x-signature".to_owned(), Bytes::from_static(b"sig"))],
            body: Bytes::copy_from_slice(body),
            outcome: ArchivedOutcome::Events(vec![("evt_1".to_owned(), "unknown".to_owned())]),
        }
    }

    #[test]
    fn the_local_stores_wire_form_round_trips() {
        let mut original = item("s", 1_234, b"\x00\xffbody");
        original.id = "1234-7".to_owned();
        original.query = Some("token=t".to_owned());
        let (back, expires) = ArchivedWire::new(&original, 99)
            .into_parts()
            .expect("decodes");
        assert_eq!((back, expires), (original.clone(), 99));
        original.outcome = ArchivedOutcome::Quarantined("not JSON".to_owned());
        let json = serde_json::to_string(&ArchivedWire::new(&original, 5)).expect("json");
        let wire: ArchivedWire = serde_json::from_str(&json).expect("parses");
        assert_eq!(wire.into_parts().expect("decodes").0, original);
    }
}
