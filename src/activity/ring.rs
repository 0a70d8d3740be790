//! The recent-requests ring: the newest `capacity` requests of this instance, in memory.

use std::collections::VecDeque;

use super::{RequestEntry, Routed};

/// What `GET /api/requests` may filter on.
#[derive(Debug, Clone, Default)]
pub struct RequestQuery {
    pub source: Option<String>,
    pub outcome: Option<String>,
    pub limit: usize,
}

/// A bounded ring: pushing into a full ring drops the oldest entry.
#[derive(Debug)]
pub(crate) struct Ring {
    entries: VecDeque<RequestEntry>,
    capacity: usize,
}

impl Ring {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            // Grows as requests arrive: an idle instance does not hold the whole ring.
            entries: VecDeque::with_capacity(capacity.min(1024)),
            capacity: capacity.max(1),
        }
    }

    pub(crate) fn push(&mut self, entry: RequestEntry) {
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// The newest entries of source `source` (every one when `None`) with outcome `outcome`,
    /// newest first.
    pub(crate) fn query(
        &self,
        source: Option<u32>,
        outcome: Option<&str>,
        limit: usize,
    ) -> Vec<&RequestEntry> {
        self.entries
            .iter()
            .rev()
            .filter(|entry| {
                source.is_none_or(|wanted| {
                    matches!(entry.routed, Routed::Source { index, .. } if index == wanted)
                }) && outcome.is_none_or(|outcome| entry.outcome == outcome)
            })
            .take(limit)
            .collect()
    }
}
