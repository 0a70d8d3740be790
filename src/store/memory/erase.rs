//! Erasure on the memory store (and so on the local store, whose state this is): the events
//! kept, the newest events, the quarantine; the schedules do their own part.

use std::collections::VecDeque;

use super::super::erase::{ERASURE_RECORDS, Erase, Erased, ErasureRecord, Found, quarantine_ref};
use super::super::schedule::source_name;
use super::MemoryStore;

impl MemoryStore {
    /// The events and quarantined bodies that hold the person.
    pub fn find_erasable(&self, erase: &Erase) -> Found {
        let mut found = Found::default();
        {
            let inner = self.lock();
            for event in &inner.log {
                if let Ok(json) = serde_json::to_string(event)
                    && erase.wants(
                        source_name(&event.source),
                        event.event_type().as_str(),
                        &json,
                    )
                {
                    found.events.insert(event.id.clone());
                }
            }
            for recent in &inner.recent {
                if erase.wants(&recent.source, &recent.event_type, &recent.json) {
                    found.events.insert(recent.id.clone());
                }
            }
            for item in &inner.quarantine {
                if erase.wants_body(&item.source, &item.body) {
                    found.quarantined.insert(quarantine_ref(item));
                }
            }
        }
        if let Some(schedule) = &self.deliveries {
            schedule.find_erasable(erase, &mut found.events);
        }
        found
    }

    /// Removes what `found` names (with `dry_run`, only counts it).
    pub fn remove(&self, found: &Found, dry_run: bool) -> Erased {
        let mut erased = Erased {
            events: found.events.len() as u64,
            ..Erased::default()
        };
        {
            let mut inner = self.lock();
            let quarantined = inner
                .quarantine
                .iter()
                .filter(|item| found.quarantined.contains(&quarantine_ref(item)))
                .count();
            erased.quarantined = quarantined as u64;
            if !dry_run {
                inner.log.retain(|event| !found.events.contains(&event.id));
                inner
                    .recent
                    .retain(|event| !found.events.contains(&event.id));
                let kept: VecDeque<_> = std::mem::take(&mut inner.quarantine)
                    .into_iter()
                    .filter(|item| !found.quarantined.contains(&quarantine_ref(item)))
                    .collect();
                inner.quarantine_bytes = kept.iter().map(|item| item.body.len()).sum();
                inner.quarantine = kept;
            }
        }
        if let Some(schedule) = &self.deliveries {
            schedule.remove_events(&found.events, dry_run, &mut erased);
        }
        erased
    }

    /// Keeps an erasure's audit record (the newest [`ERASURE_RECORDS`]).
    pub fn record_erasure(&self, record: ErasureRecord) {
        let mut records = self.erasures.lock().unwrap_or_else(|p| p.into_inner());
        if records.len() >= ERASURE_RECORDS {
            records.pop_front();
        }
        records.push_back(record);
    }

    /// The audit records of erasures, oldest first.
    pub fn erasures(&self) -> Vec<ErasureRecord> {
        self.erasures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use porter_providers::event::{Attributes, Origin};
    use porter_providers::{EventBody, Normalized, Reply};
    use serde_json::json;

    use super::*;
    use crate::privacy::Person;

    fn guest(source: &str, key: &str, id: &str, email: &str) -> Normalized {
        let origin = Origin {
            source_name: source,
            provider: "pms_web_api",
            received_at: jiff::Timestamp::UNIX_EPOCH,
        };
        let body: EventBody = serde_json::from_value(
            json!({ "type": "guest.created", "data": { "guest_id": id, "email": email } }),
        )
        .expect("guest data");
        let attributes = Attributes {
            key: key.to_owned(),
            ..Attributes::default()
        };
        origin.event(attributes, body).into()
    }

    #[test]
    fn by_guest_id_or_email_and_within_one_source() {
        let store = MemoryStore::new(false, 100, crate::clock::Clock::system());
        let events = [
            guest("pms", "k1", "G-1", "anna@example.com"),
            guest("pms", "k2", "G-2", "ben@example.com"),
            guest("crm", "k3", "G-1", "ANNA@example.COM"),
        ];
        store
            .enqueue(&events, &Reply::json(&json!({})), Duration::from_secs(60))
            .expect("stored");
        let by_id = Erase {
            person: std::sync::Arc::new(Person::guest_id("G-1").expect("id")),
            source: Some("pms".to_owned()),
            remember_for: std::time::Duration::from_secs(86_400),
        };
        let found = store.find_erasable(&by_id);
        assert_eq!(found.events.len(), 1, "only the pms source's");
        assert_eq!(store.remove(&found, true).events, 1);
        assert_eq!(store.events().len(), 3, "a dry run removes nothing");
        assert_eq!(store.remove(&found, false).events, 1);
        let by_email = Erase {
            person: std::sync::Arc::new(Person::email("Anna@Example.com").expect("email")),
            source: None,
            remember_for: std::time::Duration::from_secs(86_400),
        };
        assert_eq!(
            store.remove(&store.find_erasable(&by_email), false).events,
            1
        );
        let left: Vec<String> = store
            .events()
            .iter()
            .map(|e| e.providereventid.clone())
            .collect();
        assert_eq!(left, ["k2"]);
        assert!(store.find_erasable(&by_email).events.is_empty());
    }
}
