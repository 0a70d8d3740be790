//! `rate`: a token bucket per destination, so that a fragile service is not flooded when a
//! backlog drains after an outage.
//!
//! The bucket refills at `rate` tokens per second and holds at most `max(rate, 1)`, so a
//! destination idle for a while gets at most one second's worth at once. A worker takes tokens
//! for the attempts it is about to start and gives back what it could not use.
//!
//! On Redis the bucket is one hash in Redis (`rate.lua`, timed by Redis's clock), shared by
//! every instance that delivers for the destination: the sharing is exact, at the cost of a
//! round trip per delivery round (not per event), plus one when unused tokens go back. While
//! Redis cannot be reached no tokens are granted, and nothing is delivered anyway. With the
//! memory and local stores, one instance delivers, and its bucket lives in memory.

use std::sync::{Arc, Mutex};
// tokio's clock, so that a test can move it (paused time) instead of sleeping.
use tokio::time::Instant;

use crate::store::RedisSchedule;

/// One destination's bucket.
#[derive(Debug)]
pub(crate) struct Limiter {
    rate: f64,
    burst: f64,
    bucket: Bucket,
}

#[derive(Debug)]
enum Bucket {
    Local(Mutex<Tokens>),
    Shared {
        schedule: Arc<RedisSchedule>,
        destination: String,
    },
}

#[derive(Debug)]
struct Tokens {
    held: f64,
    at: Instant,
}

impl Limiter {
    /// A bucket in this process, full at the start.
    pub(crate) fn local(rate: f64) -> Self {
        let burst = rate.max(1.0);
        Self {
            rate,
            burst,
            bucket: Bucket::Local(Mutex::new(Tokens {
                held: burst,
                at: Instant::now(),
            })),
        }
    }

    /// The destination's bucket in Redis, shared by every instance.
    pub(crate) fn shared(rate: f64, schedule: Arc<RedisSchedule>, destination: &str) -> Self {
        Self {
            rate,
            burst: rate.max(1.0),
            bucket: Bucket::Shared {
                schedule,
                destination: destination.to_owned(),
            },
        }
    }

    /// Takes up to `wanted` tokens; returns how many it got (possibly none).
    pub(crate) async fn take(&self, wanted: usize) -> usize {
        if wanted == 0 {
            return 0;
        }
        match &self.bucket {
            Bucket::Local(tokens) => {
                let mut tokens = tokens.lock().unwrap_or_else(|p| p.into_inner());
                self.refill(&mut tokens);
                let granted = (tokens.held.floor() as usize).min(wanted);
                tokens.held -= granted as f64;
                granted
            }
            Bucket::Shared {
                schedule,
                destination,
            } => {
                let wanted = i64::try_from(wanted).unwrap_or(i64::MAX);
                match schedule
                    .take_tokens(destination, self.rate, self.burst, wanted)
                    .await
                {
                    Ok(granted) => usize::try_from(granted).unwrap_or(0),
                    Err(error) => {
                        tracing::debug!(destination, %error, "cannot take rate tokens");
                        0
                    }
                }
            }
        }
    }

    /// Gives back tokens taken but not used.
    pub(crate) async fn give_back(&self, unused: usize) {
        if unused == 0 {
            return;
        }
        match &self.bucket {
            Bucket::Local(tokens) => {
                let mut tokens = tokens.lock().unwrap_or_else(|p| p.into_inner());
                self.refill(&mut tokens);
                tokens.held = (tokens.held + unused as f64).min(self.burst);
            }
            Bucket::Shared {
                schedule,
                destination,
            } => {
                let unused = i64::try_from(unused).unwrap_or(i64::MAX);
                if let Err(error) = schedule
                    .take_tokens(destination, self.rate, self.burst, -unused)
                    .await
                {
                    tracing::debug!(destination, %error, "cannot give rate tokens back");
                }
            }
        }
    }

    /// How long until the bucket holds another token (from empty).
    #[cfg(test)]
    pub(crate) fn refill_time(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(1.0 / self.rate)
    }

    fn refill(&self, tokens: &mut Tokens) {
        let now = Instant::now();
        let earned = now.duration_since(tokens.at).as_secs_f64() * self.rate;
        tokens.held = (tokens.held + earned).min(self.burst);
        tokens.at = now;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_full_bucket_gives_its_burst_then_refills_at_the_rate() {
        let limiter = Limiter::local(20.0);
        assert_eq!(limiter.take(100).await, 20, "the burst: one second's worth");
        assert_eq!(limiter.take(100).await, 0, "empty");
        tokio::time::advance(Duration::from_millis(260)).await;
        assert_eq!(limiter.take(100).await, 5, "after 260 ms at 20/s");
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(limiter.take(100).await, 20, "never more than the burst");
        limiter.give_back(3).await;
        assert_eq!(limiter.take(3).await, 3, "given back");
        assert_eq!(limiter.take(1).await, 0, "and no more");
    }

    #[tokio::test]
    async fn a_slow_rate_still_holds_one_token() {
        let limiter = Limiter::local(0.5);
        assert_eq!(limiter.take(5).await, 1);
        assert_eq!(limiter.take(5).await, 0);
        assert_eq!(limiter.refill_time(), Duration::from_secs(2));
        limiter.give_back(10).await;
        assert_eq!(limiter.take(5).await, 1, "never more than the burst");
    }
}
