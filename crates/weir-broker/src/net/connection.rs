//! One client connection: read frames, call the service in order, write the
//! responses in order.
//!
//! A connection is a single task running one `select!` loop over four events: a
//! response at the head of the queue is ready (write it), the current service call
//! finished (queue its reply), a frame arrived (start the next call), and the idle
//! timer. Only one call runs at a time, which keeps Kafka's per-connection ordering;
//! deferred replies run as their own tasks and wait in the queue, which gives
//! pipelining. Reading stops while the queue is full, so a client that sends faster
//! than we answer meets TCP backpressure instead of growing our memory.
//!
//! Every branch but the write is cancel-safe: the frame reader keeps its state in the
//! read buffer, and the call and the queue live outside the `select!`. The write runs
//! inside its branch's handler, so it is never cancelled halfway through a response.

use std::collections::VecDeque;
use std::fmt;
use std::future::{poll_fn, Future};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::{JoinError, JoinHandle};
use tokio::time::{sleep, sleep_until, timeout, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use super::frame::{self, FrameError, Parsed};
use super::{CloseConnection, ConnectionContext, ConnectionLimits, Reply, Service};

/// Most slices handed to one `writev`; Linux allows 1024, and a response with more
/// chunks simply takes several calls.
const MAX_IOVECS: usize = 64;

/// After shutdown begins, how long one write may wait for a peer that does not
/// read, so a stuck client cannot hold up the broker's exit for
/// `connections.max.idle.ms`.
const SHUTDOWN_WRITE_STALL: Duration = Duration::from_secs(5);

/// What a request ends up as: response chunks, no response, or a close.
type Outcome = Result<Option<Vec<Bytes>>, CloseConnection>;

/// A service call in progress. Boxed because the service's future type cannot be
/// named, and it must live outside the `select!` so other branches don't cancel it.
type Call<'a> = Pin<Box<dyn Future<Output = Result<Reply, CloseConnection>> + Send + 'a>>;

/// A request that has been read, waiting for its turn to be written.
enum InFlight {
    /// The outcome is known; `Option` so it can be taken out in place.
    Done(Option<Outcome>),
    /// A deferred reply running as its own task.
    Deferred(JoinHandle<Outcome>),
}

/// Why a connection ended; picks the log level and text.
#[derive(Debug)]
enum End {
    /// The peer closed its side between two frames, and everything was answered.
    PeerClosed,
    /// The broker is shutting down, and everything read was answered.
    Shutdown,
    /// Nothing in flight and no request for `connections.max.idle.ms`.
    Idle(Duration),
    /// The peer closed its side in the middle of a frame.
    PartialFrame { buffered: usize },
    /// A size prefix was refused.
    Frame(FrameError),
    /// The service asked to close.
    Service(CloseConnection),
    /// A deferred reply panicked or was cancelled: a bug, but only this connection's.
    HandlerFailed(JoinError),
    /// A response longer than a frame can describe: a bug in the service.
    ResponseTooLarge(usize),
    /// The peer stopped reading for this long while we had a response to write.
    WriteStalled(Duration),
    /// The socket failed (reset by peer, broken pipe, ...).
    Io(io::Error),
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::PeerClosed => f.write_str("peer closed the connection"),
            End::Shutdown => f.write_str("broker shutting down"),
            End::Idle(after) => write!(f, "idle for {after:?} (connections.max.idle.ms)"),
            End::PartialFrame { buffered } => {
                write!(
                    f,
                    "peer closed the connection inside a frame ({buffered} bytes buffered)"
                )
            }
            End::Frame(error) => error.fmt(f),
            End::Service(close) => close.fmt(f),
            End::HandlerFailed(error) => write!(f, "request handler failed: {error}"),
            End::ResponseTooLarge(len) => {
                write!(f, "response of {len} bytes does not fit a frame's i32 size")
            }
            End::WriteStalled(after) => write!(f, "peer stopped reading responses for {after:?}"),
            End::Io(error) => write!(f, "socket error: {error}"),
        }
    }
}

/// Serves one connection until it ends, then logs why.
pub(super) async fn run<S: Service>(
    mut stream: TcpStream,
    ctx: Arc<ConnectionContext>,
    service: Arc<S>,
    limits: &ConnectionLimits,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    let end = drive(&mut stream, &ctx, &*service, limits, &shutdown, &tasks).await;
    let (peer, id, listener) = (ctx.peer, ctx.id, &ctx.listener);
    match &end {
        End::Frame(_) | End::Service(_) | End::PartialFrame { .. } => {
            warn!(%peer, connection = id, %listener, "closing connection: {end}");
        }
        End::HandlerFailed(_) | End::ResponseTooLarge(_) => {
            error!(%peer, connection = id, %listener, "closing connection: {end}");
        }
        End::WriteStalled(_) => {
            info!(%peer, connection = id, %listener, "closing connection: {end}");
        }
        End::PeerClosed | End::Shutdown | End::Idle(_) | End::Io(_) => {
            debug!(%peer, connection = id, %listener, "connection closed: {end}");
        }
    }
}

/// The connection's event loop; returns why it ended.
async fn drive<'a, S: Service>(
    stream: &mut TcpStream,
    ctx: &'a ConnectionContext,
    service: &'a S,
    limits: &ConnectionLimits,
    shutdown: &CancellationToken,
    tasks: &TaskTracker,
) -> End {
    let mut buf = BytesMut::new();
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    let mut calling: Option<Call<'a>> = None;
    // Set once reading has stopped, with the reason to report once every request
    // already read has been answered.
    let mut stopping: Option<End> = None;
    let mut last_activity = Instant::now();
    let max_in_flight = limits.max_in_flight_requests.max(1);
    loop {
        let quiet = calling.is_none() && in_flight.is_empty();
        if quiet {
            if let Some(end) = stopping.take() {
                return end;
            }
        }
        let busy = in_flight.len() + usize::from(calling.is_some());
        let can_read = stopping.is_none() && calling.is_none() && busy < max_in_flight;
        let idle_deadline = last_activity + limits.idle_timeout;
        tokio::select! {
            biased;
            () = shutdown.cancelled(), if stopping.is_none() => {
                stopping = Some(End::Shutdown);
            }
            next = poll_fn(|cx| poll_front(&mut in_flight, cx)), if !in_flight.is_empty() => {
                match next {
                    Ok(Some(chunks)) => {
                        if let Err(end) =
                            write_response(stream, chunks, limits.idle_timeout, shutdown).await
                        {
                            return end;
                        }
                        last_activity = Instant::now();
                    }
                    Ok(None) => {}
                    Err(end) => return end,
                }
            }
            reply = poll_fn(|cx| poll_call(&mut calling, cx)), if calling.is_some() => {
                calling = None;
                let entry = match reply {
                    Ok(Reply::Response(chunks)) => InFlight::Done(Some(Ok(Some(chunks)))),
                    Ok(Reply::NoResponse) => InFlight::Done(Some(Ok(None))),
                    Ok(Reply::Deferred(future)) => InFlight::Deferred(tasks.spawn(future)),
                    Err(close) => {
                        // Earlier responses still go out; nothing after this is read.
                        stopping = Some(End::Service(close.clone()));
                        InFlight::Done(Some(Err(close)))
                    }
                };
                in_flight.push_back(entry);
            }
            read = read_frame(stream, &mut buf, limits.max_frame_bytes), if can_read => {
                match read {
                    Ok(Some(frame)) => {
                        last_activity = Instant::now();
                        calling = Some(Box::pin(service.call(ctx, frame)));
                    }
                    Ok(None) => stopping = Some(End::PeerClosed),
                    // A broken socket cannot take the remaining responses either.
                    Err(end @ End::Io(_)) => return end,
                    // Bad input: answer what was read before it, then close.
                    Err(end) => stopping = Some(end),
                }
            }
            () = sleep_until(idle_deadline), if quiet && stopping.is_none() => {
                return End::Idle(limits.idle_timeout);
            }
        }
    }
}

/// Resolves when the oldest request's outcome is known, removing it from the queue.
fn poll_front(
    in_flight: &mut VecDeque<InFlight>,
    cx: &mut Context<'_>,
) -> Poll<Result<Option<Vec<Bytes>>, End>> {
    let outcome = match in_flight.front_mut() {
        None => return Poll::Pending,
        // Always `Some`: an entry is popped right after its outcome is taken.
        Some(InFlight::Done(outcome)) => outcome.take().unwrap_or(Ok(None)),
        Some(InFlight::Deferred(handle)) => match ready!(Pin::new(handle).poll(cx)) {
            Ok(outcome) => outcome,
            Err(error) => {
                in_flight.pop_front();
                return Poll::Ready(Err(End::HandlerFailed(error)));
            }
        },
    };
    in_flight.pop_front();
    Poll::Ready(outcome.map_err(End::Service))
}

/// Polls the service call in progress, if any.
fn poll_call(
    calling: &mut Option<Call<'_>>,
    cx: &mut Context<'_>,
) -> Poll<Result<Reply, CloseConnection>> {
    match calling {
        Some(call) => call.as_mut().poll(cx),
        None => Poll::Pending,
    }
}

/// Reads until one whole frame is buffered and returns its payload; `Ok(None)` at a
/// clean end of stream. Cancel-safe: partial frames stay in `buf`.
async fn read_frame(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    max_frame_bytes: usize,
) -> Result<Option<Bytes>, End> {
    loop {
        let total = match frame::parse(buf, max_frame_bytes) {
            Ok(Parsed::Frame(frame)) => return Ok(Some(frame)),
            Ok(Parsed::Incomplete { total }) => total,
            Err(error) => return Err(End::Frame(error)),
        };
        frame::reserve_for_read(buf, total);
        match stream.read_buf(buf).await {
            Ok(0) if buf.is_empty() => return Ok(None),
            Ok(0) => {
                return Err(End::PartialFrame {
                    buffered: buf.len(),
                })
            }
            Ok(_) => {}
            Err(error) => return Err(End::Io(error)),
        }
    }
}

/// Writes one response: the size prefix, then the chunks, with vectored writes.
///
/// A write that makes no progress for `stall` (or for [`SHUTDOWN_WRITE_STALL`] once
/// shutdown has begun) ends the connection.
async fn write_response(
    stream: &mut TcpStream,
    chunks: Vec<Bytes>,
    stall: Duration,
    shutdown: &CancellationToken,
) -> Result<(), End> {
    let len = chunks
        .iter()
        .try_fold(0usize, |sum, chunk| sum.checked_add(chunk.len()))
        .unwrap_or(usize::MAX);
    let size = i32::try_from(len).map_err(|_| End::ResponseTooLarge(len))?;
    let prefix = size.to_be_bytes();
    let mut parts: Vec<&[u8]> = Vec::with_capacity(chunks.len() + 1);
    parts.push(&prefix);
    parts.extend(
        chunks
            .iter()
            .map(|chunk| &chunk[..])
            .filter(|c| !c.is_empty()),
    );

    // parts[index][offset..] is the first byte not yet written.
    let (mut index, mut offset) = (0, 0);
    while index < parts.len() {
        let mut iov = [IoSlice::new(&[]); MAX_IOVECS];
        let mut count = 0;
        for (slot, part) in iov.iter_mut().zip(&parts[index..]) {
            let skip = if count == 0 { offset } else { 0 };
            *slot = IoSlice::new(&part[skip..]);
            count += 1;
        }
        let mut written = write_some(stream, &iov[..count], stall, shutdown).await?;
        if written == 0 {
            return Err(End::Io(io::ErrorKind::WriteZero.into()));
        }
        while written > 0 && index < parts.len() {
            let remaining = parts[index].len() - offset;
            if written >= remaining {
                written -= remaining;
                index += 1;
                offset = 0;
            } else {
                offset += written;
                written = 0;
            }
        }
    }
    Ok(())
}

/// One `writev`, bounded in time as [`write_response`] describes.
async fn write_some(
    stream: &mut TcpStream,
    iov: &[IoSlice<'_>],
    stall: Duration,
    shutdown: &CancellationToken,
) -> Result<usize, End> {
    let shutdown_stall = async {
        shutdown.cancelled().await;
        sleep(SHUTDOWN_WRITE_STALL).await;
    };
    tokio::select! {
        written = timeout(stall, stream.write_vectored(iov)) => match written {
            Ok(Ok(written)) => Ok(written),
            Ok(Err(error)) => Err(End::Io(error)),
            Err(_) => Err(End::WriteStalled(stall)),
        },
        () = shutdown_stall => Err(End::WriteStalled(SHUTDOWN_WRITE_STALL)),
    }
}
