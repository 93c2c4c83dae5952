//! The network layer: TCP listeners, connections, Kafka framing.
//!
//! This is the first stop of the request path. A client's bytes arrive on a socket
//! accepted by [`serve`]; the connection task cuts them into Kafka frames (a
//! big-endian `i32` size, then that many bytes), hands each frame's payload to a
//! [`Service`], and writes the service's responses back, each behind its own size
//! prefix, in the order the requests arrived. The net layer never looks inside a
//! frame: decoding the request header and body is the service's job (the api layer,
//! through `weir-protocol`).
//!
//! # Limits
//!
//! Every resource a peer can make us hold is bounded ([`ConnectionLimits`]):
//! connections per broker (`max.connections`, a semaphore acquired *before*
//! `accept`, so excess clients wait in the kernel backlog as in Kafka), bytes per
//! frame (`socket.request.max.bytes`; a bad size closes only that connection, with a
//! log line), requests in flight per connection, and time without progress
//! (`connections.max.idle.ms`). The read buffer grows with the bytes that actually
//! arrive, never with the size a peer merely claims.
//!
//! # Ordering and pipelining
//!
//! Clients may send many requests before reading a response. Weir keeps Kafka's
//! guarantee that requests on one connection take effect in the order they were
//! sent: [`Service::call`] runs for one request at a time per connection, in arrival
//! order. A call that has to *wait* (acks=all waiting for fsync or replicas, a Fetch
//! long poll) returns [`Reply::Deferred`]; the connection then moves on to the next
//! request while the deferred part runs as its own task, and the responses still go
//! out in request order. So the ordered part of a handler (appending to a log) stays
//! ordered, and the waiting part is pipelined.
//!
//! # Shutdown
//!
//! Cancelling the [`CancellationToken`] given to [`serve`] stops accepting, stops
//! reading new requests, lets every request already read finish and its response be
//! written, and only then does `serve` return: every connection and deferred task is
//! tracked by a `TaskTracker`.

mod connection;
mod frame;
mod listener;

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Semaphore;
pub use tokio_util::sync::CancellationToken;

pub use frame::FrameError;
pub use listener::serve;

use crate::config::BrokerConfig;

/// The api layer's side of the request path: turns one request frame into a reply.
///
/// Implemented by the api layer (`crate::api`); tests implement it with echo
/// services. `Send + Sync + 'static` because one instance is shared by every
/// connection task through an `Arc`.
pub trait Service: Send + Sync + 'static {
    /// Handles one request.
    ///
    /// `frame` is the request exactly as sent, without the 4-byte size prefix: the
    /// request header (api key, version, correlation id, client id) followed by the
    /// body. For a connection, calls happen one at a time and in arrival order;
    /// return [`Reply::Deferred`] for work that waits, so later requests are not held
    /// up behind it.
    ///
    /// `Err(CloseConnection)` closes the connection once the responses to earlier
    /// requests have been written; requests read after this one are dropped unanswered.
    ///
    /// The future must be `Send` because connections run on the multi-threaded
    /// runtime.
    fn call(
        &self,
        ctx: &ConnectionContext,
        frame: Bytes,
    ) -> impl Future<Output = Result<Reply, CloseConnection>> + Send;
}

/// What a [`Service`] returns for one request.
pub enum Reply {
    /// The response body as chunks, without the size prefix: the net layer adds the
    /// prefix and writes the chunks with vectored writes, so an encoder can hand over
    /// stored record batches without copying them into one buffer.
    Response(Vec<Bytes>),
    /// The request has no response (Produce with acks=0). Nothing is written, and the
    /// responses to the requests around it keep their order.
    NoResponse,
    /// The response will be ready later. The future runs as its own task; the
    /// connection goes on calling the service for later requests meanwhile, and
    /// writes this response when every earlier one has been written.
    Deferred(DeferredReply),
}

/// The waiting part of a request, see [`Reply::Deferred`]. `Ok(None)` means no
/// response, as [`Reply::NoResponse`].
pub type DeferredReply =
    Pin<Box<dyn Future<Output = Result<Option<Vec<Bytes>>, CloseConnection>> + Send + 'static>>;

impl Reply {
    /// Wraps a future as [`Reply::Deferred`], boxing it.
    pub fn deferred<F>(future: F) -> Self
    where
        F: Future<Output = Result<Option<Vec<Bytes>>, CloseConnection>> + Send + 'static,
    {
        Reply::Deferred(Box::pin(future))
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Response(chunks) => f.debug_tuple("Response").field(&chunks.len()).finish(),
            Reply::NoResponse => f.write_str("NoResponse"),
            Reply::Deferred(_) => f.write_str("Deferred(..)"),
        }
    }
}

/// A service's request to close the connection, with the reason for the log line.
///
/// Kafka closes a connection rather than answer a request it cannot parse far
/// enough to find the correlation id; the reason is logged by the net layer with
/// the peer's address, so handlers need not repeat it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseConnection {
    reason: Cow<'static, str>,
}

impl CloseConnection {
    /// A close request; `reason` ends up in a `warn` log line with the peer address.
    pub fn new(reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            reason: reason.into(),
        }
    }

    /// Why the connection is being closed.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for CloseConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// What a [`Service`] knows about the connection a request came on.
///
/// Per-connection state that the api layer needs later (a SASL principal, the
/// client's software name from ApiVersions) can be keyed on `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionContext {
    /// Unique in this process for its lifetime; distinguishes connections from the
    /// same peer address after a reconnect.
    pub id: u64,
    /// The client's address, for log lines and quotas.
    pub peer: SocketAddr,
    /// Our end of the socket, so a handler can tell which interface was used.
    pub local: SocketAddr,
    /// The listener's name from `listeners` (`PLAINTEXT`, ...): Metadata answers with
    /// the advertised addresses of the listener the client connected through.
    pub listener: Arc<str>,
}

impl ConnectionContext {
    /// A context; the listener builds these, tests of a service build their own.
    pub fn new(
        id: u64,
        peer: SocketAddr,
        local: SocketAddr,
        listener: impl Into<Arc<str>>,
    ) -> Self {
        Self {
            id,
            peer,
            local,
            listener: listener.into(),
        }
    }
}

/// Limits that keep one peer from holding more than its share of the broker.
///
/// Clones share [`ConnectionLimits::connection_slots`], so giving clones of one value
/// to several listeners makes `max.connections` broker-wide, as in Kafka.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Largest frame accepted (`socket.request.max.bytes`); a larger or negative
    /// size closes the connection.
    pub max_frame_bytes: usize,
    /// Requests read from one connection whose responses are not yet written; at the
    /// limit the connection stops reading, so a pipelining client gets TCP
    /// backpressure instead of growing our queues. At least 1.
    pub max_in_flight_requests: usize,
    /// Close a connection with nothing in flight and no request for this long, and a
    /// connection whose peer stops reading for this long
    /// (`connections.max.idle.ms`).
    pub idle_timeout: Duration,
    /// The open-connection budget (`max.connections`).
    pub connection_slots: ConnectionSlots,
}

impl ConnectionLimits {
    /// The limits a broker with `config` applies.
    pub fn from_config(config: &BrokerConfig) -> Self {
        Self {
            max_frame_bytes: config.socket_request_max_bytes,
            max_in_flight_requests: config.queued_max_requests_per_connection,
            idle_timeout: Duration::from_millis(config.connections_max_idle_ms),
            connection_slots: ConnectionSlots::new(config.max_connections),
        }
    }
}

impl Default for ConnectionLimits {
    /// The limits of a default [`BrokerConfig`].
    fn default() -> Self {
        Self::from_config(&BrokerConfig::default())
    }
}

/// A budget of open connections shared by listeners (a counting semaphore).
///
/// The listener takes a slot before `accept`, and the connection gives it back when
/// it closes.
#[derive(Debug, Clone)]
pub struct ConnectionSlots {
    semaphore: Arc<Semaphore>,
    max: usize,
}

impl ConnectionSlots {
    /// A budget of `max` connections, clamped to `1..=Semaphore::MAX_PERMITS`.
    pub fn new(max: usize) -> Self {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            semaphore: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// The budget.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Connections open now (for metrics and tests).
    pub fn in_use(&self) -> usize {
        self.max - self.semaphore.available_permits()
    }
}
