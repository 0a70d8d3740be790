//! Accepting connections and requests within bounds, before anything is authenticated.
//!
//! Every connection costs porter a task, buffers and a file descriptor, and every request body
//! costs its bytes, before any signature is checked. Anyone on the internet can open a
//! connection, so each of these has a bound in all and a share per [`Peer`] (an IPv4 address
//! or an IPv6 /64):
//!
//! - **connections**: at most `max_connections` open, at most `max_connections_per_peer` from
//!   one peer. A connection over the per-peer bound is closed as soon as it is accepted. When
//!   all `max_connections` are taken, the oldest connection that has no request in flight
//!   goes to make room (first those that never completed a request head, then idle
//!   keep-alive ones): a crowd of half-sent heads cannot keep a provider's request out, and a
//!   request being processed is never cut off for a newcomer.
//! - **request heads**: a connection must complete its first request head within
//!   `header_timeout` (seconds, not the idle timeout), and on HTTP/1 every later head too.
//! - **requests in flight** (HTTP/2 streams): at most `h2_max_streams` per connection
//!   (advertised to the client), and at most `max_connections_per_peer` in flight from one
//!   peer across its connections; a stream over the peer's bound is answered 503 with
//!   `Retry-After` and the connection lives.
//! - **body bytes**: see [`budget`].
//! - **idle connections**: a connection with no bytes in either direction for `idle_timeout`
//!   is closed ([`Bounded`]). `idle_timeout` is longer than `request_timeout`, so a request
//!   being processed (which reads nothing while it waits for the store) is never cut off by it.

mod bounded;
pub(crate) mod budget;
mod peer;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

pub(crate) use bounded::Bounded;
pub(crate) use budget::{BodyBudget, OverBudget, Reservation};
pub(crate) use peer::Peer;

/// The bounds on connections and requests in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    /// Connections from one peer, and requests in flight from one peer.
    pub max_connections_per_peer: usize,
    pub idle_timeout: Duration,
    /// How long a request head may take to arrive (the first one from the connection's start).
    pub header_timeout: Duration,
    /// Concurrent HTTP/2 streams per connection.
    pub h2_max_streams: u32,
}

/// Open connections of one listener, in all and per peer, and which of them may make room.
#[derive(Debug)]
pub(crate) struct Admissions {
    open: Mutex<Open>,
    /// The listener's name in metrics (`providers`, `admin`).
    listener: &'static str,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_peer: HashMap<Peer, PeerCount>,
    conns: HashMap<u64, Entry>,
    /// Connections with no request in flight, in the order they should make room.
    idle: BTreeMap<IdleKey, u64>,
    next_id: u64,
    next_seq: u64,
}

/// Connections and requests in flight of one peer.
#[derive(Debug, Default)]
struct PeerCount {
    connections: usize,
    requests: usize,
    /// Its connections with no request in flight, as in [`Open::idle`].
    idle: BTreeMap<IdleKey, u64>,
}

/// One open connection's bookkeeping.
#[derive(Debug)]
struct Entry {
    peer: Peer,
    in_flight: usize,
    served: bool,
    /// Its place in `idle`, while it has no request in flight.
    idle: Option<IdleKey>,
    evict: Arc<Notify>,
}

/// Never-served connections first (`tier` 0), then idle kept-alive ones; oldest first in each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct IdleKey {
    tier: u8,
    seq: u64,
}

/// Why a connection or a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// `max_connections` are open and every one has a request in flight.
    Full,
    /// `max_connections_per_peer` are open from this peer.
    PeerFull,
    /// `max_connections_per_peer` requests are in flight from this peer.
    PeerRequests,
}

impl Refused {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Refused::Full => "max_connections",
            Refused::PeerFull => "max_connections_per_peer",
            Refused::PeerRequests => "requests_per_peer",
        }
    }
}

impl Admissions {
    /// The admissions of the listener named `listener` in metrics.
    pub(crate) fn new(listener: &'static str) -> Arc<Self> {
        Arc::new(Self {
            open: Mutex::default(),
            listener,
        })
    }

    /// Counts a new connection from `ip` in (making room if all are taken), or refuses it.
    pub(crate) fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        limits: &ConnectionLimits,
    ) -> Result<Arc<Conn>, Refused> {
        let peer = Peer::of(ip);
        let mut open = self.lock();
        let of_peer = open.per_peer.get(&peer);
        if of_peer.is_some_and(|count| count.connections >= limits.max_connections_per_peer) {
            // The peer's own oldest connection without a request makes room, or none does.
            let oldest = of_peer.and_then(|count| count.idle.first_key_value());
            let Some((_, &id)) = oldest else {
                return Err(Refused::PeerFull);
            };
            self.evict(&mut open, id);
        } else if open.total >= limits.max_connections {
            let Some((_, &id)) = open.idle.first_key_value() else {
                return Err(Refused::Full);
            };
            self.evict(&mut open, id);
        }
        let id = open.next_id;
        open.next_id += 1;
        let key = open.idle_key(0);
        let evict = Arc::new(Notify::new());
        open.conns.insert(
            id,
            Entry {
                peer,
                in_flight: 0,
                served: false,
                idle: Some(key),
                evict: Arc::clone(&evict),
            },
        );
        open.idle.insert(key, id);
        let count = open.per_peer.entry(peer).or_default();
        count.idle.insert(key, id);
        count.connections += 1;
        open.total += 1;
        metrics::gauge!("porter_connections_open", "listener" => self.listener)
            .set(open.total as f64);
        Ok(Arc::new(Conn {
            admissions: Arc::clone(self),
            id,
            peer,
            evict,
            served: AtomicBool::new(false),
        }))
    }

    /// Closes connection `id` to make room: counted out now, told to close.
    fn evict(&self, open: &mut Open, id: u64) {
        let Some(entry) = open.remove(id) else {
            return;
        };
        entry.evict.notify_one();
        let state = if entry.served {
            "idle"
        } else {
            "no_request_yet"
        };
        metrics::counter!(
            "porter_connections_evicted_total",
            "listener" => self.listener,
            "state" => state
        )
        .increment(1);
    }

    /// How many connections are open.
    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        self.lock().total
    }

    fn lock(&self) -> MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Open {
    fn idle_key(&mut self, tier: u8) -> IdleKey {
        self.next_seq += 1;
        IdleKey {
            tier,
            seq: self.next_seq,
        }
    }

    /// Counts connection `id` out; `None` when it already was (made room, then closed).
    fn remove(&mut self, id: u64) -> Option<Entry> {
        let entry = self.conns.remove(&id)?;
        self.total -= 1;
        let idle = entry.idle;
        if let Some(key) = idle {
            self.idle.remove(&key);
        }
        if let Some(count) = self.per_peer.get_mut(&entry.peer) {
            if let Some(key) = idle {
                count.idle.remove(&key);
            }
            count.connections = count.connections.saturating_sub(1);
            count.requests = count.requests.saturating_sub(entry.in_flight);
            if count.connections == 0 && count.requests == 0 {
                self.per_peer.remove(&entry.peer);
            }
        }
        Some(entry)
    }
}

/// One admitted connection. The last holder to drop it counts it out of the admissions.
#[derive(Debug)]
pub(crate) struct Conn {
    admissions: Arc<Admissions>,
    id: u64,
    peer: Peer,
    evict: Arc<Notify>,
    served: AtomicBool,
}

impl Conn {
    /// The peer this connection counts against.
    pub(crate) fn peer(&self) -> Peer {
        self.peer
    }

    /// Resolves when the connection must go to make room for another.
    pub(crate) async fn evicted(&self) {
        self.evict.notified().await;
    }

    /// Whether a request head has been completed on this connection.
    pub(crate) fn served(&self) -> bool {
        self.served.load(Ordering::Acquire)
    }

    /// A request (an HTTP/1 request or an HTTP/2 stream) has arrived: counts it in flight, or
    /// refuses it when its peer has `max_connections_per_peer` in flight already.
    pub(crate) fn begin_request(
        self: &Arc<Self>,
        limits: &ConnectionLimits,
    ) -> Result<InFlight, Refused> {
        self.served.store(true, Ordering::Release);
        let mut open = self.admissions.lock();
        let open = &mut *open;
        let Some(entry) = open.conns.get_mut(&self.id) else {
            // Made room for another connection as this request arrived: it is closing.
            return Err(Refused::Full);
        };
        let count = open.per_peer.entry(self.peer).or_default();
        if count.requests >= limits.max_connections_per_peer {
            return Err(Refused::PeerRequests);
        }
        count.requests += 1;
        entry.in_flight += 1;
        entry.served = true;
        if let Some(key) = entry.idle.take() {
            open.idle.remove(&key);
            count.idle.remove(&key);
        }
        Ok(InFlight {
            conn: Arc::clone(self),
        })
    }

    fn end_request(&self) {
        let mut open = self.admissions.lock();
        let open = &mut *open;
        let Some(entry) = open.conns.get_mut(&self.id) else {
            return;
        };
        entry.in_flight = entry.in_flight.saturating_sub(1);
        let count = open.per_peer.get_mut(&self.peer);
        let becomes_idle = entry.in_flight == 0 && entry.idle.is_none();
        let key = IdleKey {
            tier: if entry.served { 1 } else { 0 },
            seq: open.next_seq + 1,
        };
        if let Some(count) = count {
            count.requests = count.requests.saturating_sub(1);
            if becomes_idle {
                count.idle.insert(key, self.id);
            }
        }
        if becomes_idle {
            open.next_seq += 1;
            entry.idle = Some(key);
            open.idle.insert(key, self.id);
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let mut open = self.admissions.lock();
        if open.remove(self.id).is_some() {
            metrics::gauge!("porter_connections_open", "listener" => self.admissions.listener)
                .set(open.total as f64);
        }
    }
}

/// A request in flight on a connection; dropping it (when its answer is ready) counts it out.
#[derive(Debug)]
pub(crate) struct InFlight {
    conn: Arc<Conn>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.conn.end_request();
    }
}

/// Whether an accept error concerns only the one connection (the listener is fine).
pub(crate) fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            max_connections: 3,
            max_connections_per_peer: 2,
            idle_timeout: Duration::from_secs(1),
            header_timeout: Duration::from_secs(1),
            h2_max_streams: 8,
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn admissions_are_bounded_per_peer_and_released_on_drop() {
        let admissions = Admissions::new("test");
        let first = admissions.admit(ip("10.0.0.1"), &limits()).expect("first");
        let second = admissions.admit(ip("10.0.0.1"), &limits()).expect("second");
        let _a = first.begin_request(&limits()).expect("busy");
        let _b = second.begin_request(&limits()).expect("busy");
        assert_eq!(
            admissions.admit(ip("10.0.0.1"), &limits()).err(),
            Some(Refused::PeerFull),
            "both have a request in flight"
        );
        drop((_a, _b));
        drop(first);
        assert_eq!(admissions.open(), 1);
        let again = admissions
            .admit(ip("10.0.0.1"), &limits())
            .expect("room again");
        drop((second, again));
        assert_eq!(admissions.open(), 0);
        let open = admissions.lock();
        assert!(open.per_peer.is_empty() && open.idle.is_empty() && open.conns.is_empty());
    }

    #[test]
    fn when_full_the_oldest_connection_without_a_request_makes_room() {
        let admissions = Admissions::new("test");
        let busy = admissions.admit(ip("10.0.0.1"), &limits()).expect("busy");
        let _request = busy.begin_request(&limits()).expect("a request");
        let waiting_old = admissions.admit(ip("10.0.0.2"), &limits()).expect("old");
        let waiting_new = admissions.admit(ip("10.0.0.3"), &limits()).expect("new");
        // Full: the newcomer takes the place of the oldest that never sent a head.
        let newcomer = admissions
            .admit(ip("10.0.0.4"), &limits())
            .expect("room is made");
        assert_eq!(admissions.open(), 3);
        let evicted = waiting_old.evicted();
        tokio_test_block_on(evicted);
        // The one with a request in flight is never chosen: only waiting_new and the newcomer
        // can make room, oldest first.
        let _fifth = admissions
            .admit(ip("10.0.0.5"), &limits())
            .expect("room again");
        tokio_test_block_on(waiting_new.evicted());
        let _sixth = admissions
            .admit(ip("10.0.0.6"), &limits())
            .expect("room again");
        tokio_test_block_on(newcomer.evicted());
        drop(waiting_old);
        assert_eq!(
            admissions.open(),
            3,
            "an evicted connection was counted out once"
        );
    }

    #[test]
    fn a_served_idle_connection_goes_after_those_that_never_sent_a_head() {
        let admissions = Admissions::new("test");
        let kept_alive = admissions.admit(ip("10.0.0.1"), &limits()).expect("a");
        drop(
            kept_alive
                .begin_request(&limits())
                .expect("one request, answered"),
        );
        let waiting = admissions.admit(ip("10.0.0.2"), &limits()).expect("b");
        let _other = admissions.admit(ip("10.0.0.3"), &limits()).expect("c");
        let _newcomer = admissions.admit(ip("10.0.0.4"), &limits()).expect("room");
        tokio_test_block_on(waiting.evicted());
        assert!(admissions.lock().conns.contains_key(&kept_alive.id));
    }

    #[test]
    fn a_full_peer_makes_room_with_its_own_oldest_idle_connection() {
        let admissions = Admissions::new("test");
        let other = admissions
            .admit(ip("10.0.0.9"), &limits())
            .expect("another peer");
        let old = admissions.admit(ip("10.0.0.1"), &limits()).expect("old");
        let _new = admissions.admit(ip("10.0.0.1"), &limits()).expect("new");
        let _third = admissions
            .admit(ip("10.0.0.1"), &limits())
            .expect("room is made");
        tokio_test_block_on(old.evicted());
        assert!(
            admissions.lock().conns.contains_key(&other.id),
            "not another peer's"
        );
    }

    #[test]
    fn requests_in_flight_are_bounded_per_peer_across_connections() {
        let admissions = Admissions::new("test");
        let limits = ConnectionLimits {
            max_connections: 10,
            ..limits()
        };
        let a = admissions.admit(ip("10.0.0.1"), &limits).expect("a");
        let b = admissions.admit(ip("10.0.0.1"), &limits).expect("b");
        let one = a.begin_request(&limits).expect("1");
        let _two = b.begin_request(&limits).expect("2");
        assert_eq!(a.begin_request(&limits).err(), Some(Refused::PeerRequests));
        let other = admissions.admit(ip("10.0.0.2"), &limits).expect("other");
        other
            .begin_request(&limits)
            .expect("another peer is not affected");
        drop(one);
        a.begin_request(&limits).expect("room again");
    }

    #[test]
    fn ipv6_peers_are_counted_per_64() {
        let admissions = Admissions::new("test");
        let a = admissions.admit(ip("2001:db8::1"), &limits()).expect("a");
        let b = admissions.admit(ip("2001:db8::2"), &limits()).expect("b");
        let _busy = (a.begin_request(&limits()), b.begin_request(&limits()));
        assert_eq!(
            admissions.admit(ip("2001:db8::3"), &limits()).err(),
            Some(Refused::PeerFull)
        );
    }

    /// Runs a future to completion on a fresh current-thread runtime.
    fn tokio_test_block_on(future: impl std::future::Future<Output = ()>) {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime")
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(1), future)
                    .await
                    .expect("evicted");
            });
    }
}
