//! KIP-848's consumer protocol on the member's side (`group.protocol=consumer`).
//!
//! The broker assigns: a member sends ConsumerGroupHeartbeat with its subscription
//! (topic names, or a regular expression the broker resolves) and the partitions it
//! owns, and the answer carries its member epoch and, when it changed, the
//! partitions it should own now. Partitions another member still holds are left out
//! of that answer until released, so taking over the answer is always safe.
//!
//! Two halves share the membership [`State`]:
//! - the heartbeat task ([`heartbeat_loop`]) sends a heartbeat every interval the
//!   broker asks for (or at once when woken), and stores what it learns: the epoch,
//!   a new assignment to take over, a fence;
//! - `poll` ([`GroupConsumer::reconcile`]) takes a new assignment over the way
//!   Kafka's consumer does: revoke first (commit their positions with auto commit,
//!   `on_revoked`), then take the new partitions (from their committed offsets,
//!   `on_assigned`), then wake the heartbeat to report what it owns now, which is
//!   what lets the broker hand the released partitions to their new owners.
//!
//! A fenced member (FENCED_MEMBER_EPOCH, UNKNOWN_MEMBER_ID) loses its partitions
//! (`on_lost`, no commit) and joins again with epoch 0 once `poll` has dropped
//! them. `close` leaves with epoch -1 (a static member with -2: it may come back).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use weir_protocol::messages::consumer_group_heartbeat::{
    Assignment as WireAssignment, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse,
    TopicPartitions,
};
use weir_protocol::Uuid;
use weir_types::ErrorCode;

use super::config::{GroupConfig, Topics};
use super::membership::{lock, ms, Membership, State};
use super::offsets::find_coordinator;
use super::protocol::{send_at, version};
use super::GroupConsumer;
use crate::cluster::{Cluster, TopicPartition};
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::util::backoff;

/// The member epoch that leaves the group.
const LEAVE_EPOCH: i32 = -1;
/// The member epoch a static member leaves with (its place is kept for it).
const STATIC_LEAVE_EPOCH: i32 = -2;

/// Partitions by topic id, as the protocol carries them.
pub(crate) type IdAssignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// The consumer protocol's part of the membership state.
#[derive(Debug, Default)]
pub(crate) struct Kip848 {
    /// The subscription every heartbeat sends: topic names and an optional regex;
    /// `None` before `subscribe` (nothing is sent) and after `close`.
    pub(crate) subscription: Option<(Vec<String>, Option<String>)>,
    /// What the member owns, reported in every heartbeat.
    pub(crate) owned: IdAssignment,
    /// The assignment the broker sent last that `poll` has not taken over yet.
    pub(crate) target: Option<IdAssignment>,
    /// The heartbeat interval the broker asks for.
    pub(crate) interval: Option<Duration>,
}

/// Sends the heartbeats; see the module docs.
pub(crate) async fn heartbeat_loop(
    cluster: Cluster,
    config: Arc<GroupConfig>,
    state: Arc<Mutex<State>>,
    wake: Arc<Notify>,
) {
    let client = cluster.config().clone();
    let mut wait = config.heartbeat_interval;
    let mut attempt = 0;
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = wake.notified() => {}
        }
        wait = lock(&state)
            .kip848
            .interval
            .unwrap_or(config.heartbeat_interval);
        let Some(request) = next_request(&config, &lock(&state)) else {
            continue;
        };
        let conn = match coordinator(&cluster, &config, &state).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "heartbeat: no coordinator");
                wait = backoff(client.retry_backoff, client.retry_backoff_max, attempt);
                attempt += 1;
                continue;
            }
        };
        let result = send(&conn, request.clone()).await;
        let mut s = lock(&state);
        match result.and_then(|resp| handle(&config, &mut s, &request, resp)) {
            Ok(()) => attempt = 0,
            // UNRELEASED_INSTANCE_ID: a static member's previous incarnation has not
            // left yet; it will (leave or session timeout).
            Err(e)
                if e.is_retriable()
                    || e.is_connection_error()
                    || e.code() == Some(ErrorCode::UnreleasedInstanceId) =>
            {
                tracing::debug!(error = %e, "heartbeat failed; retrying");
                if e.is_connection_error()
                    || matches!(
                        e.code(),
                        Some(ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable)
                    )
                {
                    s.coordinator = None;
                }
                wait = wait.min(backoff(
                    client.retry_backoff,
                    client.retry_backoff_max,
                    attempt,
                ));
                attempt += 1;
            }
            Err(e) => {
                tracing::warn!(error = %e, "the group refused this member");
                s.fatal = Some(e);
            }
        }
    }
}

/// The heartbeat to send now, if one is due: not before `subscribe`, not while a
/// fence is being handled by `poll`, never after a fatal error.
fn next_request(config: &GroupConfig, s: &State) -> Option<ConsumerGroupHeartbeatRequest> {
    if s.fatal.is_some() || s.lost {
        return None;
    }
    let (names, regex) = s.kip848.subscription.clone()?;
    let joining = s.generation <= 0;
    Some(ConsumerGroupHeartbeatRequest {
        group_id: config.group_id.clone(),
        member_id: s.member_id.clone(),
        member_epoch: if joining { 0 } else { s.generation },
        instance_id: config.group_instance_id.clone(),
        rack_id: None,
        rebalance_timeout_ms: ms(config.rebalance_timeout),
        subscribed_topic_names: Some(names),
        subscribed_topic_regex: regex,
        server_assignor: config.remote_assignor.clone(),
        // A (re)joining member owns nothing, whatever `poll` has not dropped yet.
        topic_partitions: Some(if joining {
            Vec::new()
        } else {
            wire(&s.kip848.owned)
        }),
    })
}

/// The coordinator connection, finding it if needed.
async fn coordinator(
    cluster: &Cluster,
    config: &GroupConfig,
    state: &Mutex<State>,
) -> Result<Connection> {
    if let Some(c) = lock(state).coordinator.clone().filter(Connection::is_alive) {
        return Ok(c);
    }
    let c = find_coordinator(cluster, &config.group_id).await?;
    lock(state).coordinator = Some(c.clone());
    Ok(c)
}

/// Sends a heartbeat at the highest version both sides speak (v1 for a regex).
async fn send(
    conn: &Connection,
    request: ConsumerGroupHeartbeatRequest,
) -> Result<ConsumerGroupHeartbeatResponse> {
    let v = version::<ConsumerGroupHeartbeatRequest>(conn)?;
    if v == 0 && request.subscribed_topic_regex.is_some() {
        return Err(Error::Config(format!(
            "the broker at {} does not take regex subscriptions (ConsumerGroupHeartbeat v1)",
            conn.addr()
        )));
    }
    send_at(conn, request, v, Duration::ZERO).await
}

/// Applies an answer to the state; an error code comes back as an error (retriable
/// ones are retried by the loop, others end the membership).
fn handle(
    config: &GroupConfig,
    s: &mut State,
    request: &ConsumerGroupHeartbeatRequest,
    resp: ConsumerGroupHeartbeatResponse,
) -> Result<()> {
    let code = ErrorCode::from_code(resp.error_code);
    let error = || {
        Error::kafka(
            format!("heartbeat of group {}", config.group_id),
            code,
            resp.error_message.clone(),
        )
    };
    if s.kip848.subscription.is_none() {
        return Ok(()); // closed meanwhile
    }
    match code {
        ErrorCode::None => {
            if let Some(id) = &resp.member_id {
                s.member_id.clone_from(id);
            }
            if request.member_epoch == 0 {
                tracing::info!(group = %config.group_id, member = %s.member_id,
                    epoch = resp.member_epoch, "joined the group (consumer protocol)");
            }
            s.generation = resp.member_epoch;
            if resp.heartbeat_interval_ms > 0 {
                s.kip848.interval = Some(Duration::from_millis(
                    u64::try_from(resp.heartbeat_interval_ms).unwrap_or(0),
                ));
            }
            // Every heartbeat sends the full subscription, so every answer carries
            // the assignment; only a different one is news for `poll`.
            if let Some(a) = resp.assignment.map(from_wire) {
                s.kip848.target = (a != s.kip848.owned).then_some(a);
            }
            Ok(())
        }
        ErrorCode::FencedMemberEpoch | ErrorCode::UnknownMemberId => {
            tracing::info!(group = %config.group_id, ?code, "fenced; rejoining");
            s.generation = -1;
            s.lost = true;
            s.kip848.target = None;
            if code == ErrorCode::UnknownMemberId && request.member_epoch == 0 {
                s.member_id.clear();
            }
            Ok(())
        }
        _ => Err(error()),
    }
}

fn wire(a: &IdAssignment) -> Vec<TopicPartitions> {
    a.iter()
        .map(|(id, ps)| TopicPartitions {
            topic_id: *id,
            partitions: ps.iter().copied().collect(),
        })
        .collect()
}

fn from_wire(a: WireAssignment) -> IdAssignment {
    let mut out = IdAssignment::new();
    for tp in a.topic_partitions {
        out.entry(tp.topic_id).or_default().extend(tp.partitions);
    }
    out
}

/// Leaves the group: epoch -1, or -2 for a static member. A member that never
/// joined has nothing to leave.
pub(crate) async fn leave(m: &Membership) -> Result<()> {
    let (member_id, epoch) = {
        let mut s = m.lock();
        s.kip848.subscription = None;
        s.kip848.owned.clear();
        let epoch = std::mem::replace(&mut s.generation, -1);
        (s.member_id.clone(), epoch)
    };
    if member_id.is_empty() || epoch <= 0 {
        return Ok(());
    }
    let conn = m.coordinator().await?;
    let request = ConsumerGroupHeartbeatRequest {
        group_id: m.config.group_id.clone(),
        member_id,
        member_epoch: if m.config.group_instance_id.is_some() {
            STATIC_LEAVE_EPOCH
        } else {
            LEAVE_EPOCH
        },
        instance_id: m.config.group_instance_id.clone(),
        ..ConsumerGroupHeartbeatRequest::default()
    };
    let resp = send(&conn, request).await?;
    match ErrorCode::from_code(resp.error_code) {
        ErrorCode::None | ErrorCode::UnknownMemberId | ErrorCode::GroupIdNotFound => Ok(()),
        code => Err(Error::kafka(
            format!("leaving group {}", m.config.group_id),
            code,
            resp.error_message,
        )),
    }
}

impl GroupConsumer {
    /// Sets the subscription the heartbeats send, and sends one now.
    pub(super) fn subscribe_consumer_protocol(&mut self, topics: &Topics) -> Result<()> {
        let subscription = match topics {
            Topics::Names(names) => {
                self.consumer
                    .cluster()
                    .add_topics(names.iter().map(String::as_str));
                (names.clone(), None)
            }
            Topics::Regex(re) => (Vec::new(), Some(re.as_str().to_owned())),
            Topics::Pattern(_) => {
                return Err(Error::Config(
                    "group.protocol=consumer subscribes by names or a regular expression, \
                     not a predicate"
                        .into(),
                ))
            }
        };
        self.membership.lock().kip848.subscription = Some(subscription);
        self.membership.wake.notify_one();
        Ok(())
    }

    /// Between polls: drops lost partitions, and takes over a new assignment
    /// (revoke, commit, then take the new partitions); see the module docs.
    pub(super) async fn reconcile(&mut self) -> Result<()> {
        let lost = std::mem::take(&mut self.membership.lock().lost);
        if lost {
            let parts: Vec<TopicPartition> = std::mem::take(&mut self.owned).into_iter().collect();
            self.consumer.assign([]);
            self.committed.clear();
            self.membership.lock().kip848.owned.clear();
            if !parts.is_empty() {
                tracing::info!(partitions = parts.len(), "partitions lost (fenced)");
                if let Some(l) = self.listener.as_mut() {
                    l.on_lost(&parts);
                }
            }
            self.membership.wake.notify_one();
        }
        let Some(target) = self.membership.lock().kip848.target.clone() else {
            return Ok(());
        };
        let cluster = self.consumer.cluster().clone();
        let Some(new) = names_of(&cluster, &target).await else {
            return Ok(()); // a topic the metadata does not show yet; next poll
        };
        let moved = self.move_to(new).await;
        let changed = moved.revoked || moved.added;
        {
            let mut s = self.membership.lock();
            if s.kip848.target.as_ref() == Some(&target) {
                s.kip848.target = None;
            }
            s.kip848.owned = target;
        }
        // Report at once: the broker hands what was released to its new owner.
        if changed {
            self.membership.wake.notify_one();
        }
        Ok(())
    }
}

/// The partitions of an assignment by name; `None` while a topic id is unknown to
/// the metadata even after a refresh.
async fn names_of(cluster: &Cluster, target: &IdAssignment) -> Option<BTreeSet<TopicPartition>> {
    let mut md = cluster.metadata();
    if target.keys().any(|id| md.topic_name(id).is_none()) {
        md = match cluster.refresh_all_topics().await {
            Ok(md) => md,
            Err(e) => {
                tracing::debug!(error = %e, "metadata refresh for an assignment failed");
                return None;
            }
        };
    }
    let mut out = BTreeSet::new();
    for (id, partitions) in target {
        let name = md.topic_name(id)?;
        out.extend(partitions.iter().map(|p| TopicPartition::new(name, *p)));
    }
    Some(out)
}
