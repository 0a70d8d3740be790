//! The connection as hyper sees it: a TCP stream closed once it has been idle too long.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::Conn;

/// A TCP connection that fails with `TimedOut` once no byte has moved either way for
/// `timeout`, and holds its [`Conn`] (counted out of the admissions when the last holder
/// drops it).
#[derive(Debug)]
pub(crate) struct Bounded {
    stream: TcpStream,
    timeout: Duration,
    /// When a byte last moved.
    active: Instant,
    /// Fires at `active + timeout` or earlier; moved on (not reset per byte) when it fires
    /// early, so that busy connections do not touch the timer on every read.
    idle: Pin<Box<Sleep>>,
    _conn: Arc<Conn>,
}

impl Bounded {
    pub(crate) fn new(stream: TcpStream, timeout: Duration, conn: Arc<Conn>) -> Self {
        let now = Instant::now();
        Self {
            stream,
            timeout,
            active: now,
            idle: Box::pin(tokio::time::sleep_until(now + timeout)),
            _conn: conn,
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
