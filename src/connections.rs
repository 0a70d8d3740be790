//! Accepting connections within bounds: how many a client may hold, and for how long idle.
//!
//! Every connection costs porter a task, buffers and a file descriptor, before any request on
//! it is authenticated. Without bounds, one client could hold them all (thousands of idle
//! keep-alive connections, or headers sent a byte a minute) and the providers' own requests
//! would find no room. So:
//!
//! - at most `max_connections` are open at once, and at most `max_connections_per_peer` from
//!   one IP address; a connection over either limit is closed as soon as it is accepted,
//!   before anything is read from it;
//! - a connection with no bytes in either direction for `idle_timeout` is closed (an idle
//!   keep-alive connection, a peer that stopped reading its answer), and on HTTP/1 a request's
//!   head must arrive within `idle_timeout` of the connection becoming ready for it however
//!   slowly the bytes trickle in.
//!
//! `idle_timeout` is longer than `request_timeout`, so a request being processed (which reads
//! nothing while it waits for the store) is never cut off by it.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// The bounds on connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub max_connections_per_peer: usize,
    pub idle_timeout: Duration,
}

/// Open connections of one listener, in all and per peer address.
#[derive(Debug, Default)]
pub struct Admissions {
    open: Mutex<Open>,
    /// The listener's name in the `porter_connections_open` gauge (`providers`, `admin`).
    listener: &'static str,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_peer: HashMap<IpAddr, usize>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `max_connections` are open.
    Full,
    /// `max_connections_per_peer` are open from this address.
    PeerFull,
}

impl Refused {
    pub fn label(self) -> &'static str {
        match self {
            Refused::Full => "max_connections",
            Refused::PeerFull => "max_connections_per_peer",
        }
    }
}

impl Admissions {
    /// The admissions of the listener named `listener` in metrics.
    pub fn new(listener: &'static str) -> Self {
        Self {
            open: Mutex::default(),
            listener,
        }
    }

    /// Counts a new connection from `peer` in, or refuses it.
    pub fn admit(
        self: &Arc<Self>,
        peer: IpAddr,
        limits: &ConnectionLimits,
    ) -> Result<Admission, Refused> {
        let mut open = self.lock();
        if open.total >= limits.max_connections {
            return Err(Refused::Full);
        }
        let from_peer = open.per_peer.entry(peer).or_insert(0);
        if *from_peer >= limits.max_connections_per_peer {
            return Err(Refused::PeerFull);
        }
        *from_peer += 1;
        open.total += 1;
        metrics::gauge!("porter_connections_open", "listener" => self.listener)
            .set(open.total as f64);
        Ok(Admission {
            admissions: Arc::clone(self),
            peer,
        })
    }

    /// How many connections are open.
    pub fn open(&self) -> usize {
        self.lock().total
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One admitted connection; dropping it (when the connection closes) counts it out.
#[derive(Debug)]
pub struct Admission {
    admissions: Arc<Admissions>,
    peer: IpAddr,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut open = self.admissions.lock();
        open.total -= 1;
        if let Some(count) = open.per_peer.get_mut(&self.peer) {
            *count -= 1;
            if *count == 0 {
                open.per_peer.remove(&self.peer);
            }
        }
        metrics::gauge!("porter_connections_open", "listener" => self.admissions.listener)
            .set(open.total as f64);
    }
}

/// A TCP connection that fails with `TimedOut` once no byte has moved either way for
/// `timeout`, and counts itself out of the admissions when dropped.
#[derive(Debug)]
pub struct Bounded {
    stream: TcpStream,
    timeout: Duration,
    /// When a byte last moved.
    active: Instant,
    /// Fires at `active + timeout` or earlier; moved on (not reset per byte) when it fires
    /// early, so that busy connections do not touch the timer on every read.
    idle: Pin<Box<Sleep>>,
    _admission: Admission,
}

impl Bounded {
    pub fn new(stream: TcpStream, timeout: Duration, admission: Admission) -> Self {
        let now = Instant::now();
        Self {
            stream,
            timeout,
            active: now,
            idle: Box::pin(tokio::time::sleep_until(now + timeout)),
            _admission: admission,
        }
    }

    /// On a pending read or write: whether the connection has been idle too long.
    fn idle_expired(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.idle.as_mut().poll(cx).is_pending() {
                return false;
            }
            let deadline = self.active + self.timeout;
            if Instant::now() >= deadline {
                return true;
            }
            self.idle.as_mut().reset(deadline);
        }
    }

    fn timed_out() -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, "connection idle for too long")
    }
}

impl AsyncRead for Bounded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    this.active = Instant::now();
                }
                Poll::Ready(result)
            }
            Poll::Pending if this.idle_expired(cx) => Poll::Ready(Err(Self::timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Bounded {
    /// What a write came to: bytes moved (the connection is active), or, while it waits, idle
    /// for too long.
    fn written(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match result {
            Poll::Ready(result) => {
                if matches!(result, Ok(written) if written > 0) {
                    self.active = Instant::now();
                }
                Poll::Ready(result)
            }
            Poll::Pending if self.idle_expired(cx) => Poll::Ready(Err(Self::timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for Bounded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write(cx, data);
        this.written(cx, result)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.written(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// Whether an accept error concerns only the one connection (the listener is fine).
pub fn is_connection_error(error: &io::Error) -> bool {
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
        }
    }

    #[test]
    fn admissions_are_bounded_in_all_and_per_peer_and_released_on_drop() {
        let admissions = Arc::new(Admissions::default());
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let first = admissions.admit(a, &limits()).expect("first");
        let second = admissions.admit(a, &limits()).expect("second");
        assert_eq!(
            admissions.admit(a, &limits()).err(),
            Some(Refused::PeerFull)
        );
        let third = admissions.admit(b, &limits()).expect("another peer");
        assert_eq!(admissions.admit(b, &limits()).err(), Some(Refused::Full));
        drop(first);
        assert_eq!(admissions.open(), 2);
        let again = admissions.admit(a, &limits()).expect("room again");
        drop((second, third, again));
        assert_eq!(admissions.open(), 0);
        assert!(admissions.lock().per_peer.is_empty(), "no leftovers");
    }
}
