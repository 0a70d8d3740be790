//! Message statuses in order: per message, the highest status porter has stored, so that a
//! status arriving after a later one (Meta and Twilio both say callbacks may come out of
//! order: `delivered` after `read`) is marked `statusregression = true` on its event. It is
//! stored and delivered all the same (never lost); a destination with `statuses =
//! "forward_only"` skips it.
//!
//! Before a request's events are enqueued, each `message.status_changed` with a message id and
//! a ranked status ([`DeliveryStatus::rank`]) raises its message's mark to that rank in one
//! atomic step per message, which answers the rank held before: higher means a regression. So
//! of two statuses of one message arriving at once on two connections (or two instances on
//! one Redis), exactly the lower one is marked, whichever is handled first. A raise whose
//! event then fails to be stored stays: the provider's retry of it then compares equal (not a
//! regression), and a lower status meanwhile is marked against a status that is on its way.
//!
//! Marks live as long as the source's `dedupe_ttl`. In Redis each is one key (`<prefix>:status:
//! <source>:<hash of the message id>`), shared by every instance. The memory and local stores
//! hold them in memory, at most [`MAX_MARKS`] (the oldest forgotten first); the local store
//! does not journal them, so after a restart a status older than one stored before the
//! restart is not marked.
//!
//! [`DeliveryStatus::rank`]: porter_providers::event::DeliveryStatus::rank

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use porter_providers::event::EventBody;
use porter_providers::{Event, Normalized};
use sha2::{Digest, Sha256};

/// The most message marks the memory and local stores hold.
pub(crate) const MAX_MARKS: usize = 500_000;

/// One status event's message and rank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mark {
    /// `<source>:<32 hex digits of SHA-256 of the message id>`: bounded, whatever the id.
    pub key: String,
    pub rank: u8,
}

/// The mark of `event`, when it is a ranked status of a named message.
pub(crate) fn mark_of(event: &Event) -> Option<Mark> {
    let EventBody::MessageStatusChanged(data) = &event.body else {
        return None;
    };
    let rank = data.status.rank()?;
    if data.message_id.is_empty() {
        return None;
    }
    let digest = Sha256::digest(data.message_id.as_bytes());
    let source = super::schedule::source_name(&event.source);
    Some(Mark {
        key: format!("{source}:{}", &hex::encode(digest)[..32]),
        rank,
    })
}

/// The marks of the memory and local stores.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    inner: Mutex<Marks>,
}

#[derive(Debug, Default)]
struct Marks {
    /// Key → (rank, expiry in Unix ms).
    ranks: HashMap<String, (u8, i64)>,
    /// Keys by when they were last raised; an entry whose expiry no longer matches the map's
    /// is stale and skipped.
    order: VecDeque<(String, i64)>,
}

impl Ledger {
    /// Raises each mark to its rank until `expires` (Unix ms); answers the rank each held
    /// before (`None`: none held, or expired at `now`).
    pub(crate) fn raise(&self, marks: &[Mark], now: i64, expires: i64) -> Vec<Option<u8>> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.forget(now);
        marks
            .iter()
            .map(|mark| {
                let before = inner
                    .ranks
                    .get(&mark.key)
                    .filter(|(_, until)| *until > now)
                    .map(|(rank, _)| *rank);
                let rank = before.map_or(mark.rank, |b| b.max(mark.rank));
                inner.ranks.insert(mark.key.clone(), (rank, expires));
                inner.order.push_back((mark.key.clone(), expires));
                before
            })
            .collect()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().expect("lock").ranks.len()
    }
}

impl Marks {
    /// Drops expired marks, and the oldest while more than [`MAX_MARKS`] are held.
    fn forget(&mut self, now: i64) {
        while let Some((key, expires)) = self.order.front() {
            let current = self.ranks.get(key).map(|(_, until)| *until);
            let stale = current != Some(*expires);
            if !(stale || *expires <= now || self.ranks.len() >= MAX_MARKS) {
                break;
            }
            if !stale {
                self.ranks.remove(key);
            }
            self.order.pop_front();
        }
    }
}

/// Marks the regressions among `events` given the ranks their messages held before
/// (`before[i]` for the `i`-th marked event, in order); answers how many it marked.
pub(crate) fn apply(events: &mut [Normalized], marked: &[usize], before: &[Option<u8>]) -> usize {
    let mut regressions = 0;
    for (&index, held) in marked.iter().zip(before) {
        let event = &mut events[index].event;
        if let (Some(held), Some(mark)) = (held, mark_of(event))
            && *held > mark.rank
        {
            event.statusregression = Some(true);
            regressions += 1;
        }
    }
    regressions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(key: &str, rank: u8) -> Mark {
        Mark {
            key: key.to_owned(),
            rank,
        }
    }

    #[test]
    fn a_raise_answers_what_was_held_and_keeps_the_highest() {
        let ledger = Ledger::default();
        assert_eq!(ledger.raise(&[mark("a", 5)], 0, 1000), [None]);
        assert_eq!(ledger.raise(&[mark("a", 4)], 1, 1000), [Some(5)], "behind");
        assert_eq!(ledger.raise(&[mark("a", 6)], 2, 1000), [Some(5)], "still 5");
        assert_eq!(ledger.raise(&[mark("a", 3)], 3, 1000), [Some(6)]);
        assert_eq!(
            ledger.raise(&[mark("b", 3), mark("b", 1)], 4, 1000),
            [None, Some(3)],
            "two statuses of one message in one request compare in order"
        );
    }

    #[test]
    fn marks_expire_and_are_bounded() {
        let ledger = Ledger::default();
        ledger.raise(&[mark("a", 5)], 0, 100);
        assert_eq!(ledger.raise(&[mark("a", 4)], 100, 200), [None], "expired");
        for i in 0..MAX_MARKS + 10 {
            ledger.raise(&[mark(&format!("k{i}"), 1)], 150, 10_000);
        }
        assert!(ledger.len() <= MAX_MARKS, "{}", ledger.len());
        assert_eq!(
            ledger.raise(&[mark(&format!("k{}", MAX_MARKS + 9), 0)], 150, 10_000),
            [Some(1)],
            "the newest are kept"
        );
    }
}
