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
