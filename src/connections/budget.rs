//! The budget for request bodies being read, in all and per peer.
//!
//! A request's body arrives before anything about it is authenticated, and porter must hold
//! all of it to verify a signature over it. Without a bound across requests, one sender can
//! open many HTTP/2 streams (or many connections), send all but the last byte of a large body
//! on each and wait: every stream holds its bytes until the request timeout. So every body
//! being read holds a [`Reservation`] of its bytes against [`BodyBudget`]:
//!
//! - `max_buffered_bytes` for all requests together, and
//! - `max_buffered_bytes_per_peer` for the requests of one [`Peer`], a share of the total, so
//!   that one sender cannot take the whole budget while another's request is still served.
//!
//! A body that declares its length (`Content-Length`) reserves it whole before a byte is read;
//! one that does not reserves as its bytes arrive. A request that does not fit is answered 503
//! with `Retry-After` at once (on HTTP/2 only that stream ends; the connection lives), and its
//! bytes are never buffered. A reservation lasts as long as the request is handled (the body is
//! held until then) and is released when dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::Peer;

/// Which bound a reservation did not fit in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverBudget {
    /// `max_buffered_bytes`: all requests together.
    Total,
    /// `max_buffered_bytes_per_peer`: this peer's requests.
    Peer,
}

impl OverBudget {
    /// The label in metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            OverBudget::Total => "max_buffered_bytes",
            OverBudget::Peer => "max_buffered_bytes_per_peer",
        }
    }
}

/// Bytes of request bodies being read, against their bounds.
#[derive(Debug)]
pub struct BodyBudget {
    total: usize,
    per_peer: usize,
    used: Mutex<Used>,
}

#[derive(Debug, Default)]
struct Used {
    total: usize,
    per_peer: HashMap<Peer, usize>,
}

impl BodyBudget {
    /// A budget of `total` bytes, at most `per_peer` of them for one peer.
    pub fn new(total: usize, per_peer: usize) -> Arc<Self> {
        Arc::new(Self {
            total,
            per_peer: per_peer.min(total),
            used: Mutex::default(),
        })
    }

    /// Reserves `bytes` for a body from `peer` (`None`: no address known, counted in the total
    /// only).
    pub fn reserve(
        self: &Arc<Self>,
        peer: Option<Peer>,
        bytes: usize,
    ) -> Result<Reservation, OverBudget> {
        let mut reservation = Reservation {
            budget: Arc::clone(self),
            peer,
            bytes: 0,
        };
        reservation.grow(bytes)?;
        Ok(reservation)
    }

    /// Bytes reserved now, in all.
    pub fn used(&self) -> usize {
        self.lock().total
    }

    fn lock(&self) -> MutexGuard<'_, Used> {
        self.used.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take(&self, peer: Option<Peer>, bytes: usize) -> Result<(), OverBudget> {
        if bytes == 0 {
            return Ok(());
        }
        let mut used = self.lock();
        if used.total.saturating_add(bytes) > self.total {
            return Err(OverBudget::Total);
        }
        if let Some(peer) = peer {
            let of_peer = used.per_peer.entry(peer).or_insert(0);
            if of_peer.saturating_add(bytes) > self.per_peer {
                if *of_peer == 0 {
                    used.per_peer.remove(&peer);
                }
                return Err(OverBudget::Peer);
            }
            *of_peer += bytes;
        }
        used.total += bytes;
        metrics::gauge!("porter_buffered_bytes").set(used.total as f64);
        Ok(())
    }

    fn give_back(&self, peer: Option<Peer>, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let mut used = self.lock();
        used.total = used.total.saturating_sub(bytes);
        if let Some(peer) = peer
            && let Some(of_peer) = used.per_peer.get_mut(&peer)
        {
            *of_peer = of_peer.saturating_sub(bytes);
            if *of_peer == 0 {
                used.per_peer.remove(&peer);
            }
        }
        metrics::gauge!("porter_buffered_bytes").set(used.total as f64);
    }
}

/// Bytes held for one body; released when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<BodyBudget>,
    peer: Option<Peer>,
    bytes: usize,
}

impl Reservation {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Holds `more` bytes besides, or fails leaving the reservation as it was.
    pub fn grow(&mut self, more: usize) -> Result<(), OverBudget> {
        self.budget.take(self.peer, more)?;
        self.bytes += more;
        Ok(())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.give_back(self.peer, self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(text: &str) -> Option<Peer> {
        Some(Peer::of(text.parse().expect("an address")))
    }

    #[test]
    fn one_peer_cannot_take_more_than_its_share() {
        let budget = BodyBudget::new(100, 40);
        let a = budget
            .reserve(peer("10.0.0.1"), 30)
            .expect("within the share");
        assert_eq!(
            budget.reserve(peer("10.0.0.1"), 11).err(),
            Some(OverBudget::Peer)
        );
        let b = budget.reserve(peer("10.0.0.2"), 40).expect("another peer");
        let c = budget.reserve(peer("10.0.0.3"), 30).expect("a third");
        assert_eq!(
            budget.reserve(peer("10.0.0.4"), 1).err(),
            Some(OverBudget::Total),
            "100 of 100 are held"
        );
        drop((a, b, c));
        assert_eq!(budget.used(), 0);
        assert!(budget.lock().per_peer.is_empty(), "no leftovers");
    }

    #[test]
    fn a_reservation_grows_within_the_bounds_and_is_unchanged_when_it_cannot() {
        let budget = BodyBudget::new(100, 50);
        let mut reservation = budget.reserve(peer("10.0.0.1"), 0).expect("empty");
        reservation.grow(20).expect("room");
        reservation.grow(30).expect("room");
        assert_eq!(reservation.grow(1), Err(OverBudget::Peer));
        assert_eq!(reservation.bytes(), 50);
        assert_eq!(budget.used(), 50);
        drop(reservation);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_request_without_an_address_counts_in_the_total() {
        let budget = BodyBudget::new(10, 5);
        let held = budget.reserve(None, 10).expect("the total only");
        assert_eq!(budget.reserve(None, 1).err(), Some(OverBudget::Total));
        drop(held);
    }
}
