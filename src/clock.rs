//! The one clock porter reads: for `receivedat`, timestamp windows, dedupe expiry in the memory
//! store, and delivery due times and leases.
//!
//! Reading time through one injectable clock keeps every time-dependent rule testable without
//! sleeping: a test sets the clock ([`Clock::fixed`]) or moves it ([`Clock::manual`]) and sees
//! the rule apply at once. Sleeps are left to what really waits (sockets, Redis's own TTLs).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use jiff::Timestamp;

/// A source of the current time.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> Timestamp + Send + Sync>);

impl Clock {
    /// The system clock, to the millisecond (the events' `receivedat`).
    pub fn system() -> Self {
        Self(Arc::new(|| {
            let now = Timestamp::now();
            now.round(jiff::Unit::Millisecond).unwrap_or(now)
        }))
    }

    /// A clock that always reads `at`.
    pub fn fixed(at: Timestamp) -> Self {
        Self(Arc::new(move || at))
    }

    /// A clock that reads `start` until its [`Hand`] moves it.
    pub fn manual(start: Timestamp) -> (Self, Hand) {
        let millis = Arc::new(AtomicI64::new(start.as_millisecond()));
        let reader = Arc::clone(&millis);
        let clock = Self(Arc::new(move || {
            Timestamp::from_millisecond(reader.load(Ordering::Acquire))
                .unwrap_or(Timestamp::UNIX_EPOCH)
        }));
        (clock, Hand(millis))
    }

    pub fn now(&self) -> Timestamp {
        (self.0)()
    }

    /// [`Clock::now`] in Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.now().as_millisecond()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

/// Moves a [`Clock::manual`].
#[derive(Debug, Clone)]
pub struct Hand(Arc<AtomicI64>);

impl Hand {
    pub fn advance(&self, by: std::time::Duration) {
        let millis = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.0.fetch_add(millis, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let start = Timestamp::from_second(1_700_000_000).expect("ts");
        let (clock, hand) = Clock::manual(start);
        assert_eq!(clock.now(), start);
        hand.advance(std::time::Duration::from_millis(1500));
        assert_eq!(clock.now_ms(), start.as_millisecond() + 1500);
    }
}
