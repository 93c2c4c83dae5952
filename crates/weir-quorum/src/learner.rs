//! Learners: nodes that follow the metadata log without voting.
//!
//! A broker-only node must apply every committed metadata change, as a voter does,
//! but must never count in an election or a commit. KRaft's brokers are observers
//! that fetch the log; openraft's leader instead pushes the log to the learners in
//! its membership. So a learner serves a controller listener of its own and has to
//! be in the membership, at its current address. Three pieces keep that true:
//!
//! - [`stay_joined`] (on the learner): while no leader has reached it for a while —
//!   at start, after the leader lost its address, after it was removed — it asks
//!   the voters, leader first, to admit it. A voter that does not lead answers with
//!   the leader it knows of; every failure is retried with a backoff, forever, so
//!   the node joins whenever a leader exists and survives any leader change.
//! - [`admit`] (on the leader): adds the learner (openraft's non-blocking
//!   `add_learner`), replaces the address of a learner that came back elsewhere
//!   (`SetNodes`, safe for a non-voter: its address is all that changes), and does
//!   nothing for a learner already known at that address. A voter's id is refused:
//!   demoting a voter is not a join.
//! - [`forget_unregistered`] (on the leader): a learner whose broker registration
//!   is removed (UnregisterBroker: the broker is gone for good) is removed from the
//!   membership, so the leader stops replicating to it.
//!
//! A learner that just stops (kill -9, or a clean stop) stays in the membership:
//! learners count in no quorum, so it blocks neither commits, elections nor
//! membership changes; the leader retries it every half second (openraft's default
//! backoff for an unreachable node) and it catches up when it comes back, as a
//! broker restarted under the same id normally does. Kafka keeps such observers
//! implicit; here only UnregisterBroker makes the removal explicit.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers, ServerState};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use weir_metadata::MetadataImage;

use crate::net::client::Peers;
use crate::net::frame::Kind;
use crate::net::wire::{self, JoinReply, JoinRequest};
use crate::types::{raft_id, Raft};

/// The pause between rounds of join attempts that all failed.
const JOIN_BACKOFF: Duration = Duration::from_millis(300);
/// How often a joined learner checks that a leader still reaches it.
const CONTACT_CHECK: Duration = Duration::from_millis(250);

/// When a leader last reached this node (AppendEntries or InstallSnapshot).
#[derive(Debug)]
pub(crate) struct Contact {
    start: Instant,
    /// Milliseconds from `start`; `u64::MAX` until the first contact.
    last_ms: AtomicU64,
}

impl Contact {
    pub(crate) fn new() -> Contact {
        Contact {
            start: Instant::now(),
            last_ms: AtomicU64::new(u64::MAX),
        }
    }

    /// Notes a contact now.
    pub(crate) fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// True if a leader reached this node within `window`.
    fn within(&self, window: Duration) -> bool {
        let last = self.last_ms.load(Ordering::Relaxed);
        if last == u64::MAX {
            return false;
        }
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        now.saturating_sub(last) <= u64::try_from(window.as_millis()).unwrap_or(u64::MAX)
    }
}

/// What a learner needs to ask for its place in the membership.
pub(crate) struct Joiner {
    pub(crate) raft: Raft,
    pub(crate) peers: Arc<Peers>,
    /// The configured voters, by raft id.
    pub(crate) voters: Vec<u64>,
    pub(crate) me: u64,
    /// Where the leader reaches this node.
    pub(crate) address: String,
    pub(crate) contact: Arc<Contact>,
    /// No contact for this long means the leader has lost this node: ask again.
    pub(crate) lost_after: Duration,
    /// The bound of one join call.
    pub(crate) call_timeout: Duration,
}

/// Keeps this learner in the membership; see the module docs.
pub(crate) async fn stay_joined(joiner: Joiner, shutdown: CancellationToken) {
    let mut failures = 0u32;
    loop {
        if joiner.contact.within(joiner.lost_after) {
            failures = 0;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(CONTACT_CHECK) => continue,
            }
        }
        let pause = match joiner.ask_once().await {
            Ok(voter) => {
                tracing::info!(node = joiner.me, via = voter, address = %joiner.address,
                    "joined the controller quorum as a learner");
                failures = 0;
                // Give the leader time to reach the address before asking again.
                joiner.lost_after
            }
            Err(reason) => {
                failures = failures.saturating_add(1);
                // The first failures are normal while the quorum elects a leader.
                if failures % 20 == 5 {
                    tracing::warn!(node = joiner.me, %reason, attempts = failures,
                        "cannot join the controller quorum as a learner yet; retrying");
                } else {
                    tracing::debug!(node = joiner.me, %reason, "learner join failed; retrying");
                }
                JOIN_BACKOFF
            }
        };
        // Woken early by a contact: the leader has this node (again).
        let deadline = tokio::time::Instant::now() + pause;
        while tokio::time::Instant::now() < deadline {
            if joiner.contact.within(CONTACT_CHECK) {
                break;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(CONTACT_CHECK.min(pause)) => {}
            }
        }
    }
}

impl Joiner {
    /// One round: the leader this node knows of first, then every voter, following
    /// the leader a voter names. Returns the voter that admitted this node.
    async fn ask_once(&self) -> Result<u64, String> {
        let mut order: Vec<u64> = Vec::with_capacity(self.voters.len() + 1);
        if let Some(leader) = self.raft.metrics().borrow().current_leader {
            order.push(leader);
        }
        order.extend(self.voters.iter().copied());
        let request = wire::encode(&JoinRequest {
            node: self.me,
            address: self.address.clone(),
        })?;
        let mut asked = BTreeSet::new();
        let mut reasons = Vec::new();
        let mut i = 0;
        while let Some(&voter) = order.get(i) {
            i += 1;
            if !self.voters.contains(&voter) || !asked.insert(voter) {
                continue;
            }
            let reply = self
                .peers
                .call(voter, Kind::Join, &request, self.call_timeout)
                .await
                .map_err(|e| e.to_string())
                .and_then(|bytes| wire::decode::<JoinReply>(&bytes));
            match reply {
                Ok(JoinReply::Joined) => return Ok(voter),
                Ok(JoinReply::NotLeader { leader }) => {
                    if let Some(leader) = leader.filter(|l| !asked.contains(l)) {
                        // Ask the named leader next.
                        order.insert(i, leader);
                    }
                    reasons.push(format!("{voter}: not the leader"));
                }
                Err(e) => reasons.push(format!("{voter}: {e}")),
            }
        }
        Err(reasons.join("; "))
    }
}

/// The leader's side of a join; see the module docs. `Err` is a refusal retrying
/// will not fix (a voter's id) or a failure to report (retried by the learner).
pub(crate) async fn admit(raft: &Raft, me: u64, request: JoinRequest) -> Result<JoinReply, String> {
    let metrics = raft.metrics().borrow().clone();
    if metrics.state != ServerState::Leader || metrics.current_leader != Some(me) {
        return Ok(JoinReply::NotLeader {
            leader: metrics.current_leader.filter(|l| *l != me),
        });
    }
    let membership = metrics.membership_config.membership();
    if membership.voter_ids().any(|v| v == request.node) {
        return Err(format!(
            "node {} is a voter of the controller quorum, not a learner",
            request.node
        ));
    }
    let node = BasicNode::new(&request.address);
    let written = match membership.get_node(&request.node) {
        Some(known) if known.addr == request.address => return Ok(JoinReply::Joined),
        Some(known) => {
            tracing::info!(node = request.node, from = %known.addr, to = %request.address,
                "controller quorum: a learner moved");
            let nodes = BTreeMap::from([(request.node, node)]);
            raft.change_membership(ChangeMembers::SetNodes(nodes), true)
                .await
        }
        None => {
            tracing::info!(node = request.node, address = %request.address,
                "controller quorum: adding a learner");
            raft.add_learner(request.node, node, false).await
        }
    };
    match written {
        Ok(_) => Ok(JoinReply::Joined),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            Ok(JoinReply::NotLeader {
                leader: f.leader_id,
            })
        }
        Err(e) => Err(format!("cannot add learner {}: {e}", request.node)),
    }
}

/// Removes from the membership every learner whose broker registration goes away
/// while this node leads; see the module docs. Runs on every voter until
/// `shutdown`.
pub(crate) async fn forget_unregistered(
    raft: Raft,
    me: u64,
    mut images: watch::Receiver<Arc<MetadataImage>>,
    shutdown: CancellationToken,
) {
    let registered = |image: &MetadataImage| -> BTreeSet<u64> {
        image.brokers().keys().map(|id| raft_id(*id)).collect()
    };
    let mut before = registered(&images.borrow_and_update());
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = images.changed() => if changed.is_err() { return },
        }
        let now = registered(&images.borrow_and_update());
        let gone: BTreeSet<u64> = before.difference(&now).copied().collect();
        before = now;
        if gone.is_empty() {
            continue;
        }
        let metrics = raft.metrics().borrow().clone();
        if metrics.state != ServerState::Leader || metrics.current_leader != Some(me) {
            continue;
        }
        let membership = metrics.membership_config.membership();
        let learners: BTreeSet<u64> = membership
            .learner_ids()
            .filter(|l| gone.contains(l))
            .collect();
        if learners.is_empty() {
            continue;
        }
        tracing::info!(learners = ?learners, "controller quorum: removing unregistered learners");
        match raft
            .change_membership(ChangeMembers::RemoveNodes(learners.clone()), true)
            .await
        {
            Ok(_) => {}
            // Another change in flight, or leadership lost: the learner stays, which
            // blocks nothing (see the module docs).
            Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(
                ChangeMembershipError::InProgress(_),
            ))) => {
                tracing::info!(learners = ?learners, "membership change in progress; unregistered learners stay");
            }
            Err(e) => {
                tracing::warn!(learners = ?learners, error = %e, "cannot remove unregistered learners");
            }
        }
    }
}
