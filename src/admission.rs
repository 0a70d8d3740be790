//! Admission per source: each source's share of the providers' listener, so that one vendor's
//! flood (a retry storm after its own outage) is turned away at its own door instead of
//! filling the store's queue and pushing every other vendor into 503.
//!
//! A source may set `max_in_flight` (its requests between admission and answer) and `rate`
//! (requests per second, a token bucket holding at most `max(rate, 1)`: one second's worth).
//! Admission comes after the cheap refusals (allow-list, method, header size) and before a byte
//! of the body is read, so a request turned away costs neither body memory nor a store call.
//! Over either bound the request gets its provider's [`Throttle`] status with `Retry-After`:
//! 1 second over `max_in_flight` (a slot frees as soon as a request is answered), the time
//! until the bucket holds a token over `rate`, rounded up to whole seconds.
//!
//! Shares are per instance: with three replicas behind a balancer, a source's total is three
//! times its `rate`. A source with neither key is admitted without any bookkeeping.
//!
//! [`Throttle`]: porter_providers::Throttle

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

// tokio's clock, so that a test can move it (paused time) instead of sleeping.
use tokio::time::Instant;

/// A source's configured share (`max_in_flight`, `rate`); the default is unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Share {
    pub max_in_flight: Option<u32>,
    /// Requests per second.
    pub rate: Option<f64>,
}

/// Why a request was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OverShare {
    /// The source already has `max_in_flight` requests being handled.
    InFlight,
    /// The source's `rate` bucket is empty.
    Rate,
}

impl OverShare {
    /// A stable label for logs and the request's reason.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            OverShare::InFlight => "over_max_in_flight",
            OverShare::Rate => "over_rate",
        }
    }
}

/// A refusal and how long the sender is asked to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub over: OverShare,
    /// Whole seconds, at least 1.
    pub retry_after: u64,
}

/// One source's admission state.
#[derive(Debug)]
pub struct Admission {
    max_in_flight: Option<u32>,
    in_flight: AtomicU32,
    bucket: Option<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: Mutex<Tokens>,
}

#[derive(Debug)]
struct Tokens {
    held: f64,
    at: Instant,
}

/// Holds one of the source's `max_in_flight` slots until dropped (when the request is
/// answered).
#[derive(Debug)]
pub(crate) struct Ticket<'a> {
    slot: Option<&'a AtomicU32>,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if let Some(in_flight) = self.slot {
            in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Admission {
    pub(crate) fn new(share: Share) -> Self {
        Self {
            max_in_flight: share.max_in_flight,
            in_flight: AtomicU32::new(0),
            bucket: share.rate.map(|rate| {
                let burst = rate.max(1.0);
                Bucket {
                    rate,
                    burst,
                    tokens: Mutex::new(Tokens {
                        held: burst,
                        at: Instant::now(),
                    }),
                }
            }),
        }
    }

    /// Admits one request, or says why not. A request over `max_in_flight` takes no token.
    pub(crate) fn admit(&self) -> Result<Ticket<'_>, Refusal> {
        let slot = match self.max_in_flight {
            None => None,
            Some(max) => {
                let taken = self
                    .in_flight
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                        (n < max).then_some(n + 1)
                    });
                if taken.is_err() {
                    return Err(Refusal {
                        over: OverShare::InFlight,
                        retry_after: 1,
                    });
                }
                Some(&self.in_flight)
            }
        };
        // From here the ticket gives the slot back if the bucket refuses.
        let ticket = Ticket { slot };
        if let Some(bucket) = &self.bucket {
            bucket.take()?;
        }
        Ok(ticket)
    }

    /// The source's requests being handled now (0 without `max_in_flight`).
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }
}

impl Bucket {
    fn take(&self) -> Result<(), Refusal> {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let earned = now.duration_since(tokens.at).as_secs_f64() * self.rate;
        tokens.held = (tokens.held + earned).min(self.burst);
        tokens.at = now;
        if tokens.held >= 1.0 {
            tokens.held -= 1.0;
            return Ok(());
        }
        let wait = Duration::from_secs_f64((1.0 - tokens.held) / self.rate);
        Err(Refusal {
            over: OverShare::Rate,
            retry_after: wait.as_secs_f64().ceil().max(1.0) as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_share_admits_everything_and_counts_nothing() {
        let admission = Admission::new(Share::default());
        let tickets: Vec<_> = (0..1000)
            .map(|_| admission.admit().expect("admitted"))
            .collect();
        assert_eq!(admission.in_flight(), 0);
        drop(tickets);
    }

    #[tokio::test]
    async fn max_in_flight_turns_away_the_next_one_until_a_ticket_is_dropped() {
        let admission = Admission::new(Share {
            max_in_flight: Some(2),
            rate: None,
        });
        let first = admission.admit().expect("first");
        let second = admission.admit().expect("second");
        assert_eq!(
            admission.admit().expect_err("third"),
            Refusal {
                over: OverShare::InFlight,
                retry_after: 1
            }
        );
        assert_eq!(admission.in_flight(), 2, "a refusal holds no slot");
        drop(first);
        let third = admission.admit().expect("a slot freed");
        drop((second, third));
        assert_eq!(admission.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn rate_gives_its_burst_then_refills_and_says_how_long_to_wait() {
        let admission = Admission::new(Share {
            max_in_flight: None,
            rate: Some(10.0),
        });
        for i in 0..10 {
            drop(admission.admit().unwrap_or_else(|_| panic!("burst {i}")));
        }
        let refusal = admission.admit().expect_err("bucket empty");
        assert_eq!(refusal.over, OverShare::Rate);
        assert_eq!(refusal.retry_after, 1, "0.1 s rounds up to a whole second");
        tokio::time::advance(Duration::from_millis(350)).await;
        for i in 0..3 {
            drop(admission.admit().unwrap_or_else(|_| panic!("refilled {i}")));
        }
        admission.admit().expect_err("3.5 tokens earned, 3 taken");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_rate_asks_for_the_whole_wait() {
        let admission = Admission::new(Share {
            max_in_flight: None,
            rate: Some(0.2),
        });
        drop(admission.admit().expect("one token"));
        assert_eq!(admission.admit().expect_err("empty").retry_after, 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_refusal_gives_its_in_flight_slot_back() {
        let admission = Admission::new(Share {
            max_in_flight: Some(5),
            rate: Some(1.0),
        });
        let held = admission.admit().expect("the one token");
        assert_eq!(
            admission.admit().expect_err("no token").over,
            OverShare::Rate
        );
        assert_eq!(
            admission.in_flight(),
            1,
            "only the admitted request holds a slot"
        );
        drop(held);
        assert_eq!(admission.in_flight(), 0);
    }
}
