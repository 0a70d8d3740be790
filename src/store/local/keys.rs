//! The dedupe keys the local store's snapshots write, listed apart from the live map.
//!
//! **Why.** A snapshot must hold every live dedupe key (a restart must still know them, or a
//! provider's retry would be taken again). Copying them out of the live map happens at a
//! generation's switch, under the memory store's lock, while the journal and every request
//! wait: measured at 34 to 82 ms with 330 000 keys (a day's TTL keeps millions), the largest
//! stall porter had. The writer thread applies every record, so it sees every key as it is
//! remembered: it lists them as it goes (a pointer each, the key's text is shared with the
//! map), and at a switch it moves what one generation added into the list the snapshots
//! keep. The snapshot thread, off the request path, drops the expired keys and writes the
//! rest.
//!
//! Keys leave the live map only by expiring (an erasure keeps them; its tombstones are what
//! refuse the erased events again), so the list is the map's keys, expiry aside. A key
//! remembered again after it expired appears twice, once expired: the expired one is dropped.

use std::sync::{Arc, Mutex};

use super::record::Record;
use crate::store::memory::RememberedKey;

/// What the writer keeps: the keys remembered in this generation, and every earlier one.
#[derive(Debug)]
pub(super) struct KeyList {
    fresh: Vec<RememberedKey>,
    all: Arc<Mutex<Vec<RememberedKey>>>,
}

impl KeyList {
    /// The list of a store whose live keys (after start-up's replay) are `keys`.
    pub(super) fn new(keys: Vec<RememberedKey>) -> Self {
        Self {
            fresh: Vec::new(),
            all: Arc::new(Mutex::new(keys)),
        }
    }

    /// Notes the keys `record` remembers (called for each record the writer applies).
    pub(super) fn applied(&mut self, record: &Record) {
        if let Record::Enqueue {
            expires,
            reply,
            items,
            ..
        } = record
        {
            self.fresh.extend(items.iter().map(|item| RememberedKey {
                key: Arc::clone(&item.key),
                expires: *expires,
                reply: Arc::clone(reply),
            }));
        }
    }

    /// At a generation's switch (no snapshot being written): adds this generation's keys to
    /// the list and hands it to the snapshot.
    pub(super) fn switch(&mut self) -> Keys {
        let mut all = self.all.lock().unwrap_or_else(|p| p.into_inner());
        all.append(&mut self.fresh);
        drop(all);
        Keys(Arc::clone(&self.all))
    }
}

/// The snapshot's side of the list.
#[derive(Debug)]
pub(super) struct Keys(Arc<Mutex<Vec<RememberedKey>>>);

impl Keys {
    /// The keys live at `now`; the expired ones leave the list for good.
    pub(super) fn live(&self, now: i64) -> Vec<RememberedKey> {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|key| key.expires > now);
        all.clone()
    }
}
