//! Connections: how many the server holds, what each one is doing, and when an idle one is
//! closed.
//!
//! Every accepted TCP connection is wrapped in a [`TrackedStream`] that carries a
//! [`ConnInfo`] into each request's extensions (tonic's `Connected`), so the guard can count
//! a connection's calls and uploads and refuse one client's flood without touching anyone
//! else's share. The wrapper also holds the connection's slot of the server-wide cap: one
//! more connection than [`Limits::max_connections`](crate::server::Limits) is closed as soon
//! as it is accepted.
//!
//! Idle means *no call in flight* for the idle timeout (bytes such as HTTP/2 pings do not
//! count): the wrapper's read side then fails with `TimedOut` and hyper closes the
//! connection. A connection that never sends a call (nor finishes a TLS handshake) is idle
//! from the moment it was accepted.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use prometheus::IntCounterVec;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tonic::transport::server::Connected;

/// What one connection is doing.
#[derive(Debug)]
pub struct ConnState {
    in_flight: AtomicUsize,
    uploads: AtomicUsize,
    /// When the last call ended (or the connection was accepted). A `std` mutex: held for
    /// one read or write of an `Instant`, never across an await.
    last_active: Mutex<Instant>,
}

/// The connection a request came on, as tonic hands it to the guard.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    pub remote: Option<SocketAddr>,
    pub state: Arc<ConnState>,
}

/// A call counted against its connection until dropped (with the response body, so a
/// streaming answer counts until its last message).
#[derive(Debug)]
pub struct CallSlot {
    state: Arc<ConnState>,
    upload: bool,
}

impl ConnState {
    fn new() -> Self {
        ConnState {
            in_flight: AtomicUsize::new(0),
            uploads: AtomicUsize::new(0),
            last_active: Mutex::new(Instant::now()),
        }
    }

    /// Counts a call, or says which per-connection limit it would break.
    pub fn start_call(
        self: &Arc<Self>,
        upload: bool,
        max_calls: usize,
        max_uploads: usize,
    ) -> Result<CallSlot, &'static str> {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= max_calls {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err("calls");
        }
        if upload && self.uploads.fetch_add(1, Ordering::AcqRel) >= max_uploads {
            self.uploads.fetch_sub(1, Ordering::AcqRel);
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err("uploads");
        }
        Ok(CallSlot { state: self.clone(), upload })
    }

    fn touch(&self) {
        *self.last_active.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    fn idle_since(&self) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(*self.last_active.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Drop for CallSlot {
    fn drop(&mut self) {
        if self.upload {
            self.state.uploads.fetch_sub(1, Ordering::AcqRel);
        }
        self.state.touch();
        self.state.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An accepted connection: its slot of the server's connection cap, its state, its idle timer.
pub struct TrackedStream {
    io: TcpStream,
    info: ConnInfo,
    idle_timeout: Duration,
    timer: Pin<Box<Sleep>>,
    _slot: OwnedSemaphorePermit,
}

impl TrackedStream {
    /// Whether the connection has been idle past its timeout; registers a wake-up otherwise.
    fn idle_expired(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            let now = Instant::now();
            let next = match self.info.state.idle_since() {
                None => now + self.idle_timeout,
                Some(since) if since + self.idle_timeout <= now => return true,
                Some(since) => since + self.idle_timeout,
            };
            self.timer.as_mut().reset(next);
        }
    }
}

impl Connected for TrackedStream {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl AsyncRead for TrackedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.idle_expired(cx) {
            tracing::debug!(remote = ?self.info.remote, "closing an idle connection");
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the connection was idle too long",
            )));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for TrackedStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// The accepted connections of `listener`, at most `max_connections` open at once; one
/// more is closed at once and counted in `rejected{reason="connections"}`.
pub fn accept(
    listener: TcpListener,
    max_connections: usize,
    idle_timeout: Duration,
    rejected: IntCounterVec,
) -> impl Stream<Item = io::Result<TrackedStream>> {
    let slots = Arc::new(Semaphore::new(max_connections));
    futures::stream::unfold((listener, slots, rejected), move |(listener, slots, rejected)| async move {
        loop {
            let (io, remote) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin;
                    // the listener itself stays usable.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                rejected.with_label_values(&["connections"]).inc();
                tracing::debug!(%remote, "refusing a connection: the server holds its limit of connections");
                drop(io);
                continue;
            };
            let _ = io.set_nodelay(true);
            let stream = TrackedStream {
                io,
                info: ConnInfo { remote: Some(remote), state: Arc::new(ConnState::new()) },
                idle_timeout,
                timer: Box::pin(tokio::time::sleep(idle_timeout)),
                _slot: slot,
            };
            return Some((Ok(stream), (listener, slots, rejected)));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_counts_its_calls_and_uploads_until_they_are_dropped() {
        let state = Arc::new(ConnState::new());
        let a = state.start_call(true, 3, 1).unwrap();
        assert_eq!(state.start_call(true, 3, 1).unwrap_err(), "uploads");
        let b = state.start_call(false, 3, 1).unwrap();
        let c = state.start_call(false, 3, 1).unwrap();
        assert_eq!(state.start_call(false, 3, 1).unwrap_err(), "calls");
        assert!(state.idle_since().is_none(), "calls in flight: not idle");
        drop((a, b, c));
        assert!(state.idle_since().is_some());
        let again = state.start_call(true, 3, 1);
        assert!(again.is_ok(), "slots come back when calls end");
    }
}
