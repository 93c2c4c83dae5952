//! The calling side of the controller listener: a small pool of connections per
//! peer, openraft's `RaftNetwork` over it, and `ControllerTransport`.
//!
//! A call takes an idle pooled connection (or connects and says `Hello`), writes
//! one request frame, reads one reply, and gives the connection back; any failure
//! drops the connection, so a broken one is never reused. The whole call is bounded
//! by one deadline. Connections idle longer than [`POOL_IDLE_MAX`] are not reused
//! (the server closes idle ones after its own, longer timeout).
//!
//! Voters are dialled at the addresses of the local voter list, never at the ones
//! replicated in the Raft membership (a test proxy, or a voter that moved, may make
//! them differ per node). Learners are not in that list: the leader learns their
//! addresses from the membership (openraft hands the node to `new_client` whenever
//! it starts replicating to it), and a learner that came back elsewhere replaces
//! its old address and pool.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;
use tokio::time::Instant;
use weir_metadata::{BoxFuture, ControllerTransport, MetadataError};
use weir_types::NodeId;

use super::frame::{self, Kind};
use super::wire::{self, Hello};
use crate::types::{raft_id, TypeConfig};

/// Pooled connections idle longer than this are closed instead of reused.
const POOL_IDLE_MAX: Duration = Duration::from_secs(60);
/// The most idle connections kept per peer.
const POOL_MAX_IDLE: usize = 4;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    /// No connection could be made (or the peer refused the hello).
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The connection failed during the call.
    #[error("{0}")]
    Io(String),
    /// The deadline passed.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The peer answered with an error frame.
    #[error("the peer answered: {0}")]
    Remote(String),
    /// The request does not fit in a frame.
    #[error("a request of {0} bytes exceeds the frame cap")]
    TooLarge(usize),
    /// No address is known for the node (not a voter, and not a learner this node
    /// has replicated to).
    #[error("no address is known for node {0}")]
    UnknownNode(u64),
}

/// One peer and its idle connections.
struct Peer {
    addr: String,
    idle: Mutex<Vec<(TcpStream, Instant)>>,
}

impl Peer {
    fn new(addr: &str) -> Peer {
        Peer {
            addr: addr.to_owned(),
            idle: Mutex::new(Vec::new()),
        }
    }
}

/// Every peer this node calls; shared by the Raft network and the transport.
pub(crate) struct Peers {
    me: u64,
    cluster_id: String,
    max_frame_bytes: usize,
    /// The configured voters, whose addresses never change while running.
    voters: BTreeSet<u64>,
    /// Voters, plus the learners replicated to; see the module docs.
    peers: RwLock<BTreeMap<u64, Arc<Peer>>>,
}

impl Peers {
    /// The peers of `voters` (this node included: a controller may call itself).
    pub(crate) fn new(
        me: u64,
        cluster_id: String,
        max_frame_bytes: usize,
        voters: &BTreeMap<NodeId, String>,
    ) -> Peers {
        let peers = voters
            .iter()
            .map(|(id, addr)| (raft_id(*id), Arc::new(Peer::new(addr))))
            .collect();
        Peers {
            me,
            cluster_id,
            max_frame_bytes,
            voters: voters.keys().map(|id| raft_id(*id)).collect(),
            peers: RwLock::new(peers),
        }
    }

    /// Notes where learner `id` listens (from the membership). A voter's address
    /// stays the configured one; a learner's new address replaces the old one and
    /// its pooled connections.
    pub(crate) fn learn_address(&self, id: u64, addr: &str) {
        if self.voters.contains(&id) || id == self.me {
            return;
        }
        let mut peers = self.peers.write().unwrap_or_else(|p| p.into_inner());
        if peers.get(&id).is_none_or(|p| p.addr != addr) {
            tracing::info!(
                node = id,
                address = addr,
                "controller plane: learner address"
            );
            peers.insert(id, Arc::new(Peer::new(addr)));
        }
    }

    /// The peer `id`, if its address is known.
    fn peer(&self, id: u64) -> Option<Arc<Peer>> {
        let peers = self.peers.read().unwrap_or_else(|p| p.into_inner());
        peers.get(&id).cloned()
    }

    /// Drops every idle connection (at shutdown).
    pub(crate) fn close_idle(&self) {
        let peers = self.peers.read().unwrap_or_else(|p| p.into_inner());
        for p in peers.values() {
            if let Ok(mut idle) = p.idle.lock() {
                idle.clear();
            }
        }
    }

    /// Sends one request of `kind` to `to` and returns the reply payload.
    pub(crate) async fn call(
        &self,
        to: u64,
        kind: Kind,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        let peer = self.peer(to).ok_or(CallError::UnknownNode(to))?;
        let bytes = frame::encode(kind as u8, payload, self.max_frame_bytes)
            .ok_or(CallError::TooLarge(payload.len()))?;
        match tokio::time::timeout(timeout, self.exchange(to, &peer, kind, &bytes)).await {
            Ok(r) => r,
            Err(_) => Err(CallError::Timeout(timeout)),
        }
    }

    async fn exchange(
        &self,
        to: u64,
        peer: &Peer,
        kind: Kind,
        request: &[u8],
    ) -> Result<Vec<u8>, CallError> {
        let mut stream = match self.take_idle(peer) {
            Some(s) => s,
            None => self.connect(to, peer).await?,
        };
        let payload = round_trip(&mut stream, request, kind, self.max_frame_bytes).await?;
        if let Ok(mut idle) = peer.idle.lock() {
            if idle.len() < POOL_MAX_IDLE {
                idle.push((stream, Instant::now()));
            }
        }
        Ok(payload)
    }

    fn take_idle(&self, peer: &Peer) -> Option<TcpStream> {
        let mut idle = peer.idle.lock().ok()?;
        while let Some((s, since)) = idle.pop() {
            if since.elapsed() < POOL_IDLE_MAX && still_open(&s) {
                return Some(s);
            }
        }
        None
    }

    async fn connect(&self, to: u64, peer: &Peer) -> Result<TcpStream, CallError> {
        let mut stream = TcpStream::connect(&peer.addr)
            .await
            .map_err(|e| CallError::Unreachable(format!("connect {}: {e}", peer.addr)))?;
        let _ = stream.set_nodelay(true);
        let hello = wire::encode(&Hello {
            cluster_id: self.cluster_id.clone(),
            from: self.me,
            to,
        })
        .map_err(CallError::Io)?;
        let bytes = frame::encode(Kind::Hello as u8, &hello, self.max_frame_bytes)
            .ok_or(CallError::TooLarge(hello.len()))?;
        round_trip(&mut stream, &bytes, Kind::Hello, self.max_frame_bytes)
            .await
            .map_err(|e| CallError::Unreachable(format!("hello to {}: {e}", peer.addr)))?;
        Ok(stream)
    }
}

/// Whether an idle pooled connection is still usable: nothing to read (a closed
/// or restarted peer shows up as end-of-file or a reset). Checked before reuse, so a
/// request is never sent on a connection known to be dead — a controller call is not
/// retried, since it may not be idempotent.
fn still_open(stream: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// Writes one request frame and reads its reply.
async fn round_trip(
    stream: &mut TcpStream,
    request: &[u8],
    kind: Kind,
    max: usize,
) -> Result<Vec<u8>, CallError> {
    frame::write_bytes(stream, request)
        .await
        .map_err(|e| CallError::Io(format!("write: {e}")))?;
    let (reply, payload) = frame::read_frame(stream, max)
        .await
        .map_err(|e| CallError::Io(format!("read: {e}")))?;
    if reply == kind.reply() {
        Ok(payload)
    } else if reply == Kind::Error as u8 {
        Err(CallError::Remote(
            String::from_utf8_lossy(&payload).into_owned(),
        ))
    } else {
        Err(CallError::Io(format!(
            "unexpected reply kind {reply} to {kind:?}"
        )))
    }
}

/// openraft's network factory: one client per target, all over the shared pools.
pub(crate) struct NetworkFactory {
    pub(crate) peers: Arc<Peers>,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> PeerClient {
        self.peers.learn_address(target, &node.addr);
        PeerClient {
            peers: Arc::clone(&self.peers),
            target,
        }
    }
}

/// Raft RPCs to one target.
pub(crate) struct PeerClient {
    peers: Arc<Peers>,
    target: u64,
}

type RpcResult<T, E> = Result<T, RPCError<u64, BasicNode, E>>;

impl PeerClient {
    /// Encodes `req`, calls, decodes the remote `Result`.
    async fn rpc<Req, Resp, E>(
        &self,
        kind: Kind,
        req: &Req,
        option: &RPCOption,
    ) -> RpcResult<Resp, E>
    where
        Req: serde::Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let payload = wire::encode(req).map_err(|e| net_err(&e))?;
        self.rpc_encoded(kind, &payload, option).await
    }

    /// Calls with an encoded request, decodes the remote `Result`.
    async fn rpc_encoded<Resp, E>(
        &self,
        kind: Kind,
        payload: &[u8],
        option: &RPCOption,
    ) -> RpcResult<Resp, E>
    where
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let reply = self
            .peers
            .call(self.target, kind, payload, option.hard_ttl())
            .await
            .map_err(|e| match e {
                CallError::Unreachable(_) | CallError::UnknownNode(_) => {
                    RPCError::Unreachable(Unreachable::new(&std::io::Error::other(e.to_string())))
                }
                e => net_err(&e.to_string()),
            })?;
        let result: Result<Resp, E> = wire::decode(&reply).map_err(|e| net_err(&e))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

fn net_err<E: std::error::Error>(e: &str) -> RPCError<u64, BasicNode, E> {
    RPCError::Network(NetworkError::new(&std::io::Error::other(e.to_string())))
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<u64>, RaftError<u64>> {
        let n = rpc.entries.len() as u64;
        let payload = wire::encode(&rpc).map_err(|e| net_err(&e))?;
        // Too many entries for one frame: openraft retries with fewer.
        if payload.len() >= self.peers.max_frame_bytes && n > 1 {
            return Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint(n / 2),
            ));
        }
        self.rpc_encoded(Kind::AppendEntries, &payload, &option)
            .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>> {
        self.rpc(Kind::InstallSnapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<u64>, RaftError<u64>> {
        self.rpc(Kind::Vote, &rpc, &option).await
    }
}

/// `ControllerTransport` over the peers' pools.
pub(crate) struct Transport {
    pub(crate) peers: Arc<Peers>,
    pub(crate) timeout: Duration,
}

impl ControllerTransport for Transport {
    fn call(&self, node: NodeId, request: Vec<u8>) -> BoxFuture<weir_metadata::Result<Vec<u8>>> {
        let peers = Arc::clone(&self.peers);
        let timeout = self.timeout;
        Box::pin(async move {
            if node.get() < 0 {
                return Err(MetadataError::Transport {
                    node,
                    reason: "not a voter".into(),
                });
            }
            peers
                .call(raft_id(node), Kind::ControllerCall, &request, timeout)
                .await
                .map_err(|e| MetadataError::Transport {
                    node,
                    reason: e.to_string(),
                })
        })
    }
}
