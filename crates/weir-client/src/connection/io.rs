//! The two tasks behind a connection: a writer that puts request frames on the
//! socket in the order they were queued, and a reader that cuts the byte stream into
//! response frames and hands each to the request at the head of the pending queue.
//!
//! Kafka answers the requests of one connection in order, so a FIFO of pending
//! requests is the whole matching scheme; the correlation id is checked, not searched.
//! Reading and writing run separately so a large request being written never stops
//! responses from being read (both sides blocking on full socket buffers would
//! otherwise deadlock).
//!
//! The first failure (an I/O error, EOF, a bad frame, a timeout) is recorded once in
//! [`Shared`]; every request pending at that moment, and every request queued after
//! it, gets that error. Registration in the pending queue and failure take the same
//! lock, so no request can slip in after the queue was drained and wait forever.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit};
use weir_protocol::ApiKey;

use crate::error::{Error, Result};

/// Size of the read buffer's first allocation and of the write buffer.
const IO_BUFFER_BYTES: usize = 64 * 1024;

/// A request waiting for its response.
#[derive(Debug)]
pub(crate) struct Pending {
    /// The id the response must echo.
    pub(crate) correlation_id: i32,
    /// For error messages.
    pub(crate) api: ApiKey,
    /// Where the response frame (after the size prefix) goes.
    pub(crate) tx: oneshot::Sender<Result<Bytes>>,
    /// The connection's in-flight slot, released when the response arrives.
    pub(crate) _permit: Option<OwnedSemaphorePermit>,
}

/// A frame for the writer, and its pending entry unless no response is expected
/// (Produce with acks=0).
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) frame: Vec<Bytes>,
    pub(crate) pending: Option<Pending>,
    /// Told once the frame is flushed to the socket (requests without a response).
    pub(crate) written: Option<oneshot::Sender<()>>,
}

#[derive(Debug, Default)]
struct PendingQueue {
    /// Set once, by the first failure; the connection is dead from then on.
    failed: Option<Error>,
    queue: VecDeque<Pending>,
}

/// State the connection handle and its two tasks share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) addr: String,
    pending: Mutex<PendingQueue>,
    /// Flips to true on failure, waking the tasks so they stop.
    closed: watch::Sender<bool>,
}

impl Shared {
    pub(crate) fn new(addr: String) -> Arc<Shared> {
        Arc::new(Shared {
            addr,
            pending: Mutex::new(PendingQueue::default()),
            closed: watch::Sender::new(false),
        })
    }

    fn lock(&self) -> MutexGuard<'_, PendingQueue> {
        // A panic while holding this lock leaves the queue consistent (push/pop only).
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The error the connection failed with, if it did.
    pub(crate) fn failure(&self) -> Option<Error> {
        self.lock().failed.clone()
    }

    /// Marks the connection failed with `error` (the first failure wins) and fails
    /// every pending request with it.
    pub(crate) fn fail(&self, error: Error) {
        let drained = {
            let mut q = self.lock();
            if q.failed.is_some() {
                return;
            }
            tracing::debug!(addr = %self.addr, %error, "connection failed");
            q.failed = Some(error.clone());
            std::mem::take(&mut q.queue)
        };
        for p in drained {
            let _ = p.tx.send(Err(error.clone()));
        }
        self.closed.send_replace(true);
    }

    /// Adds a request to the pending queue, unless the connection already failed (then
    /// the request gets that error and `false` is returned).
    fn register(&self, pending: Pending) -> bool {
        let mut q = self.lock();
        if let Some(e) = &q.failed {
            let e = e.clone();
            drop(q);
            let _ = pending.tx.send(Err(e));
            return false;
        }
        q.queue.push_back(pending);
        true
    }

    /// Hands a response frame to the request at the head of the queue.
    fn dispatch(&self, frame: Bytes) -> Result<()> {
        let correlation_id = frame
            .get(..4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(i32::from_be_bytes)
            .ok_or_else(|| self.protocol("response shorter than its correlation id"))?;
        let head = self.lock().queue.pop_front();
        let Some(p) = head else {
            return Err(self.protocol(&format!(
                "response with correlation id {correlation_id} but no request outstanding"
            )));
        };
        if p.correlation_id != correlation_id {
            let e = self.protocol(&format!(
                "expected the response to {} (correlation id {}), got correlation id {correlation_id}",
                p.api.name(),
                p.correlation_id
            ));
            let _ = p.tx.send(Err(e.clone()));
            return Err(e);
        }
        let _ = p.tx.send(Ok(frame));
        Ok(())
    }

    fn protocol(&self, reason: &str) -> Error {
        Error::Protocol {
            addr: self.addr.clone(),
            reason: reason.to_owned(),
        }
    }

    fn lost(&self, e: io::Error) -> Error {
        Error::ConnectionLost {
            addr: self.addr.clone(),
            source: Arc::new(e),
        }
    }

    pub(crate) fn subscribe_closed(&self) -> watch::Receiver<bool> {
        self.closed.subscribe()
    }
}

/// Writes queued frames until the handle goes away or the connection fails.
pub(crate) async fn write_loop(
    half: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    shared: Arc<Shared>,
) {
    let mut closed = shared.subscribe_closed();
    let mut w = BufWriter::with_capacity(IO_BUFFER_BYTES, half);
    loop {
        let next = tokio::select! {
            m = rx.recv() => m,
            _ = closed.wait_for(|c| *c) => None,
        };
        let Some(first) = next else {
            let _ = w.shutdown().await;
            return;
        };
        let mut written = Vec::new();
        let mut result = write_one(&mut w, first, &shared, &mut written).await;
        // Coalesce whatever else is already queued into the same flush.
        while result.is_ok() {
            match rx.try_recv() {
                Ok(m) => result = write_one(&mut w, m, &shared, &mut written).await,
                Err(_) => break,
            }
        }
        if result.is_ok() {
            result = w.flush().await;
        }
        if let Err(e) = result {
            shared.fail(shared.lost(e));
            return;
        }
        for tx in written {
            let _ = tx.send(());
        }
    }
}

async fn write_one(
    w: &mut BufWriter<OwnedWriteHalf>,
    m: Outgoing,
    shared: &Shared,
    written: &mut Vec<oneshot::Sender<()>>,
) -> io::Result<()> {
    written.extend(m.written);
    if let Some(p) = m.pending {
        if !shared.register(p) {
            return Ok(());
        }
    } else if shared.failure().is_some() {
        return Ok(());
    }
    for chunk in &m.frame {
        w.write_all(chunk).await?;
    }
    Ok(())
}

/// Reads response frames until the connection fails or closes.
pub(crate) async fn read_loop(mut half: OwnedReadHalf, shared: Arc<Shared>, max_frame: usize) {
    let mut closed = shared.subscribe_closed();
    let mut buf = BytesMut::with_capacity(IO_BUFFER_BYTES);
    loop {
        loop {
            match take_frame(&mut buf, max_frame) {
                Ok(Some(frame)) => {
                    if let Err(e) = shared.dispatch(frame) {
                        shared.fail(e);
                        return;
                    }
                }
                Ok(None) => break,
                Err(reason) => {
                    let e = shared.protocol(&reason);
                    shared.fail(e);
                    return;
                }
            }
        }
        let read = tokio::select! {
            r = half.read_buf(&mut buf) => r,
            _ = closed.wait_for(|c| *c) => return,
        };
        match read {
            Ok(0) => {
                shared.fail(Error::ConnectionClosed {
                    addr: shared.addr.clone(),
                });
                return;
            }
            Ok(_) => {}
            Err(e) => {
                shared.fail(shared.lost(e));
                return;
            }
        }
    }
}

/// Cuts one frame (without its size prefix) off the front of `buf`, if a whole one is
/// there; otherwise reserves room for the rest of it.
pub(crate) fn take_frame(
    buf: &mut BytesMut,
    max_frame: usize,
) -> std::result::Result<Option<Bytes>, String> {
    let Some(prefix) = buf.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok()) else {
        buf.reserve(IO_BUFFER_BYTES);
        return Ok(None);
    };
    let size = i32::from_be_bytes(prefix);
    let size = usize::try_from(size)
        .ok()
        .filter(|&s| (4..=max_frame).contains(&s))
        .ok_or_else(|| format!("response frame size {size} outside 4..={max_frame}"))?;
    if buf.len() < 4 + size {
        buf.reserve(4 + size - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(size).freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_cut_at_their_size_prefix() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[0, 0, 0, 5, 0, 0, 0, 9, 42, 0, 0]);
        let f = take_frame(&mut buf, 100).unwrap().unwrap();
        assert_eq!(&f[..], &[0, 0, 0, 9, 42]);
        assert_eq!(&buf[..], &[0, 0]);
        assert_eq!(take_frame(&mut buf, 100).unwrap(), None);
        buf.extend_from_slice(&[0, 4, 1, 2, 3]);
        assert_eq!(take_frame(&mut buf, 100).unwrap(), None);
        buf.extend_from_slice(&[4]);
        assert_eq!(
            &take_frame(&mut buf, 100).unwrap().unwrap()[..],
            &[1, 2, 3, 4]
        );
    }

    #[test]
    fn hostile_sizes_are_errors() {
        for prefix in [[0xff, 0xff, 0xff, 0xff], [0, 0, 0, 3], [0x7f, 0, 0, 0]] {
            let mut buf = BytesMut::from(&prefix[..]);
            assert!(take_frame(&mut buf, 1 << 20).is_err(), "{prefix:?}");
        }
    }
}
