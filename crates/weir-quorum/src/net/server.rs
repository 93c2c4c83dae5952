//! The controller listener: accepts connections from the other voters (and, on a
//! voter, from learners) and serves their Raft RPCs, controller calls and joins.
//!
//! Each connection serves one request at a time: read a frame, handle it, write the
//! reply. The first request must be a `Hello` naming this cluster and this node, so
//! a misconfigured peer (another cluster, a wrong address) is refused before it can
//! vote or append. Every read and write has a deadline; a connection idle longer
//! than [`IDLE_TIMEOUT`] is closed (clients reconnect). A frame that is too large,
//! of an unknown kind, or that does not decode closes its connection with one log
//! line — the node and its other connections carry on. The number of connections is
//! capped ([`MAX_CONNECTIONS`]).

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use weir_metadata::ForwardedRequestHandler;

use super::frame::{self, FrameError, Kind};
use super::wire::{self, Hello, JoinRequest};
use crate::learner::{self, Contact};
use crate::types::Raft;

/// Connections idle this long are closed.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Once a frame has started, the rest must arrive within this.
const FRAME_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A reply must be written within this.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The most connections served at once (a quorum has a handful of peers, each with
/// a small pool).
const MAX_CONNECTIONS: usize = 128;

/// The handler of controller calls, set once the controller exists.
pub(crate) type HandlerSlot = Arc<RwLock<Option<Arc<dyn ForwardedRequestHandler>>>>;

/// What every connection needs.
pub(crate) struct ServerContext {
    /// The local Raft node.
    pub(crate) raft: Raft,
    /// This cluster's id (checked in `Hello`).
    pub(crate) cluster_id: String,
    /// This node's id (checked in `Hello`).
    pub(crate) node_id: u64,
    /// The frame cap.
    pub(crate) max_frame_bytes: usize,
    /// The controller call handler, if set.
    pub(crate) handler: HandlerSlot,
    /// When a leader last sent this node entries or a snapshot (a learner uses it
    /// to notice that the leader has lost it).
    pub(crate) contact: Arc<Contact>,
}

/// Accepts connections on `listener` until `shutdown`; connection tasks go on
/// `tracker`.
pub(crate) async fn serve(
    listener: TcpListener,
    ctx: Arc<ServerContext>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "controller listener: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&limit).try_acquire_owned() else {
            tracing::warn!(%peer, "controller listener: too many connections; refusing one");
            continue;
        };
        let ctx = Arc::clone(&ctx);
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let _permit = permit;
            tokio::select! {
                _ = shutdown.cancelled() => {}
                () = connection(stream, peer, ctx) => {}
            }
        });
    }
}

/// What to do after a request.
enum Next {
    /// Send this reply and read the next request.
    Reply(u8, Vec<u8>),
    /// Send this reply (best effort), then close.
    Close(u8, Vec<u8>),
}

fn error(reason: impl Into<String>) -> (u8, Vec<u8>) {
    (Kind::Error as u8, reason.into().into_bytes())
}

/// Serves one connection until it closes, idles out or misbehaves.
async fn connection(mut stream: TcpStream, peer: SocketAddr, ctx: Arc<ServerContext>) {
    let _ = stream.set_nodelay(true);
    let mut greeted: Option<u64> = None;
    loop {
        let len = match tokio::time::timeout(
            IDLE_TIMEOUT,
            frame::read_len(&mut stream, ctx.max_frame_bytes),
        )
        .await
        {
            Err(_) => {
                tracing::debug!(%peer, "controller connection idle; closing");
                return;
            }
            Ok(Err(FrameError::Closed)) => return,
            Ok(Err(e)) => {
                tracing::warn!(%peer, error = %e, "controller connection: bad frame; closing it");
                return;
            }
            Ok(Ok(len)) => len,
        };
        let (kind, payload) = match tokio::time::timeout(
            FRAME_READ_TIMEOUT,
            frame::read_body(&mut stream, len),
        )
        .await
        {
            Err(_) => {
                tracing::warn!(%peer, len, "controller connection: frame not received in time; closing it");
                return;
            }
            Ok(Err(e)) => {
                tracing::warn!(%peer, error = %e, "controller connection: read failed; closing it");
                return;
            }
            Ok(Ok(f)) => f,
        };
        let next = handle(&ctx, &mut greeted, kind, payload).await;
        let (close, (kind, body)) = match next {
            Next::Reply(k, b) => (false, (k, b)),
            Next::Close(k, b) => (true, (k, b)),
        };
        let bytes = match frame::encode(kind, &body, ctx.max_frame_bytes) {
            Some(b) => b,
            None => {
                let (k, b) = error(format!(
                    "the reply of {} bytes exceeds the frame cap",
                    body.len()
                ));
                match frame::encode(k, &b, ctx.max_frame_bytes) {
                    Some(bytes) => bytes,
                    None => return,
                }
            }
        };
        match tokio::time::timeout(WRITE_TIMEOUT, frame::write_bytes(&mut stream, &bytes)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "controller connection: write failed; closing it");
                return;
            }
            Err(_) => {
                tracing::warn!(%peer, "controller connection: reply not taken in time; closing it");
                return;
            }
        }
        if close {
            return;
        }
    }
}

/// Handles one request.
async fn handle(
    ctx: &ServerContext,
    greeted: &mut Option<u64>,
    kind: u8,
    payload: Vec<u8>,
) -> Next {
    let Some(kind) = Kind::request(kind) else {
        tracing::warn!(
            kind,
            "controller connection: unknown frame kind; closing it"
        );
        let (k, b) = error(format!("unknown frame kind {kind}"));
        return Next::Close(k, b);
    };
    if kind == Kind::Hello {
        return hello(ctx, greeted, &payload);
    }
    let Some(from) = *greeted else {
        tracing::warn!(
            ?kind,
            "controller connection: request before hello; closing it"
        );
        let (k, b) = error("the first request must be a hello");
        return Next::Close(k, b);
    };
    let reply = match kind {
        Kind::AppendEntries => match wire::decode(&payload) {
            Ok(req) => {
                ctx.contact.touch();
                wire::encode(&ctx.raft.append_entries(req).await)
            }
            Err(e) => Err(e),
        },
        Kind::Vote => match wire::decode(&payload) {
            Ok(req) => wire::encode(&ctx.raft.vote(req).await),
            Err(e) => Err(e),
        },
        Kind::InstallSnapshot => match wire::decode(&payload) {
            Ok(req) => {
                ctx.contact.touch();
                wire::encode(&ctx.raft.install_snapshot(req).await)
            }
            Err(e) => Err(e),
        },
        Kind::Join => match wire::decode::<JoinRequest>(&payload) {
            // A node may only add itself: the hello said who is calling.
            Ok(req) if req.node != from => {
                let (k, b) = error(format!(
                    "node {from} asked to add node {} as a learner",
                    req.node
                ));
                return Next::Close(k, b);
            }
            Ok(req) => match learner::admit(&ctx.raft, ctx.node_id, req).await {
                Ok(reply) => wire::encode(&reply),
                Err(reason) => {
                    let (k, b) = error(reason);
                    return Next::Reply(k, b);
                }
            },
            Err(e) => Err(e),
        },
        Kind::ControllerCall => {
            let handler = ctx.handler.read().ok().and_then(|h| h.clone());
            return match handler {
                Some(h) => Next::Reply(kind.reply(), h.handle(payload).await),
                None => {
                    let (k, b) = error("this node's controller is not ready for calls yet");
                    Next::Reply(k, b)
                }
            };
        }
        Kind::Hello | Kind::Error => unreachable!("handled above / not a request"),
    };
    match reply {
        Ok(bytes) => Next::Reply(kind.reply(), bytes),
        Err(e) => {
            tracing::warn!(from, ?kind, error = %e, "controller connection: request does not decode; closing it");
            let (k, b) = error(e);
            Next::Close(k, b)
        }
    }
}

fn hello(ctx: &ServerContext, greeted: &mut Option<u64>, payload: &[u8]) -> Next {
    let refuse = |reason: String| {
        tracing::warn!(%reason, "controller connection refused");
        let (k, b) = error(reason);
        Next::Close(k, b)
    };
    let hello: Hello = match wire::decode(payload) {
        Ok(h) => h,
        Err(e) => return refuse(format!("bad hello: {e}")),
    };
    if hello.cluster_id != ctx.cluster_id {
        return refuse(format!(
            "node {} is in cluster {}, this is cluster {}",
            hello.from, hello.cluster_id, ctx.cluster_id
        ));
    }
    if hello.to != ctx.node_id {
        return refuse(format!(
            "node {} meant to reach node {}, this is node {}",
            hello.from, hello.to, ctx.node_id
        ));
    }
    *greeted = Some(hello.from);
    Next::Reply(Kind::Hello.reply(), Vec::new())
}
