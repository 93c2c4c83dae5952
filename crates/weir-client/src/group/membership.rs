//! Membership in a classic group: JoinGroup, SyncGroup, LeaveGroup on the
//! coordinator connection, and the heartbeat task. (A consumer-protocol member
//! shares the [`State`] and the coordinator connection, and runs the heartbeat of
//! `consumer_protocol.rs` instead.)
//!
//! The heartbeat runs in its own task, as the Java client's heartbeat thread does,
//! so a slow application between polls does not lose its session. It never
//! rebalances by itself: what it learns (REBALANCE_IN_PROGRESS, a fenced member,
//! a lost coordinator) goes into the shared [`State`], and the next `poll` acts on
//! it. It pauses while a join is in flight: JoinGroup holds the coordinator
//! connection, and responses come in order.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use weir_protocol::messages::heartbeat::HeartbeatRequest;
use weir_protocol::messages::join_group::{
    JoinGroupRequest, JoinGroupRequestProtocol, JoinGroupResponseMember,
};
use weir_protocol::messages::leave_group::{LeaveGroupRequest, MemberIdentity};
use weir_protocol::messages::sync_group::{SyncGroupRequest, SyncGroupRequestAssignment};
use weir_types::ErrorCode;

use crate::cluster::Cluster;
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::group::config::{GroupConfig, GroupProtocol};
use crate::group::consumer_protocol::{self, Kip848};
use crate::group::offsets::{find_coordinator, Committer};
use crate::group::protocol::{send_at, version, PROTOCOL_TYPE};

/// What the consumer and the heartbeat task share.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Empty until the coordinator hands one out (KIP-394).
    pub(crate) member_id: String,
    /// -1 outside a generation.
    pub(crate) generation: i32,
    /// The dedicated coordinator connection, once found.
    pub(crate) coordinator: Option<Connection>,
    /// A JoinGroup or SyncGroup is in flight: heartbeats pause (the coordinator
    /// answers in order, and a pending join keeps the member alive anyway).
    pub(crate) joining: bool,
    /// Why the member must (re)join, if it must.
    pub(crate) rejoin: Option<&'static str>,
    /// The member was fenced (its session or generation is gone): its partitions
    /// are lost, not revoked (no commit is possible).
    pub(crate) lost: bool,
    /// An error the member cannot recover from (FENCED_INSTANCE_ID).
    pub(crate) fatal: Option<Error>,
    /// The consumer protocol's side (unused by the classic protocol).
    pub(crate) kip848: Kip848,
}

/// The outcome of a join.
#[derive(Debug)]
pub(crate) struct Joined {
    pub(crate) generation: i32,
    pub(crate) member_id: String,
    pub(crate) leader: String,
    pub(crate) protocol: String,
    /// A static leader that rejoined without a rebalance must not reassign (v9).
    pub(crate) skip_assignment: bool,
    pub(crate) members: Vec<JoinGroupResponseMember>,
}

/// Why a join or sync round must be tried again.
#[derive(Debug)]
pub(crate) enum Retry {
    /// Join again (at once).
    Rejoin(ErrorCode),
    /// A real failure.
    Fail(Error),
}

impl From<Error> for Retry {
    fn from(e: Error) -> Self {
        Retry::Fail(e)
    }
}

/// The member's side of the group protocol.
#[derive(Debug)]
pub(crate) struct Membership {
    pub(crate) cluster: Cluster,
    pub(crate) config: Arc<GroupConfig>,
    pub(crate) state: Arc<Mutex<State>>,
    /// Wakes the consumer protocol's heartbeat before its interval is up (a new
    /// subscription, a finished reconciliation to acknowledge).
    pub(crate) wake: Arc<Notify>,
    heartbeat: AbortHandle,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

pub(crate) fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn ms(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

impl Membership {
    pub(crate) fn new(cluster: Cluster, config: Arc<GroupConfig>) -> Membership {
        let state = Arc::new(Mutex::new(State {
            generation: -1,
            rejoin: Some("subscribed"),
            ..State::default()
        }));
        let wake = Arc::new(Notify::new());
        let task = match config.group_protocol {
            GroupProtocol::Classic => tokio::spawn(heartbeat_loop(
                cluster.clone(),
                config.clone(),
                state.clone(),
            )),
            GroupProtocol::Consumer => tokio::spawn(consumer_protocol::heartbeat_loop(
                cluster.clone(),
                config.clone(),
                state.clone(),
                wake.clone(),
            )),
        };
        Membership {
            cluster,
            config,
            state,
            wake,
            heartbeat: task.abort_handle(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The generation and member id to commit with.
    pub(crate) fn committer(&self) -> Committer {
        let s = self.lock();
        Committer {
            generation: s.generation,
            member_id: s.member_id.clone(),
            instance_id: self.config.group_instance_id.clone(),
        }
    }

    /// The coordinator connection, finding the coordinator if needed.
    pub(crate) async fn coordinator(&self) -> Result<Connection> {
        if let Some(c) = self.lock().coordinator.clone().filter(Connection::is_alive) {
            return Ok(c);
        }
        let c = find_coordinator(&self.cluster, &self.config.group_id).await?;
        self.lock().coordinator = Some(c.clone());
        Ok(c)
    }

    /// Forgets the coordinator after an error that says it moved or is gone.
    pub(crate) fn coordinator_error(&self, code: Option<ErrorCode>, conn_error: bool) {
        if conn_error
            || matches!(
                code,
                Some(ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable)
            )
        {
            self.lock().coordinator = None;
        }
    }

    /// JoinGroup until the coordinator answers with a generation: a first join
    /// gets MEMBER_ID_REQUIRED and joins again with the id it was given (KIP-394).
    pub(crate) async fn join(&self, protocols: Vec<(String, Bytes)>) -> Result<Joined, Retry> {
        let conn = self.coordinator().await?;
        let v = version::<JoinGroupRequest>(&conn)?;
        for _ in 0..3 {
            let (member_id, reason) = {
                let s = self.lock();
                (s.member_id.clone(), s.rejoin.unwrap_or("rejoin"))
            };
            let req = JoinGroupRequest {
                group_id: self.config.group_id.clone(),
                session_timeout_ms: ms(self.config.session_timeout),
                rebalance_timeout_ms: ms(self.config.rebalance_timeout),
                member_id,
                group_instance_id: self.config.group_instance_id.clone(),
                protocol_type: PROTOCOL_TYPE.to_owned(),
                protocols: protocols
                    .iter()
                    .map(|(name, metadata)| JoinGroupRequestProtocol {
                        name: name.clone(),
                        metadata: metadata.clone(),
                    })
                    .collect(),
                reason: Some(reason.to_owned()),
            };
            // The coordinator may hold a join for the whole rebalance timeout.
            let extra = self.config.rebalance_timeout + Duration::from_secs(5);
            let resp = match send_at(&conn, req, v, extra).await {
                Ok(r) => r,
                Err(e) => {
                    self.coordinator_error(None, e.is_connection_error());
                    return Err(Retry::Fail(e));
                }
            };
            let code = ErrorCode::from_code(resp.error_code);
            match code {
                ErrorCode::None => {
                    return Ok(Joined {
                        generation: resp.generation_id,
                        member_id: resp.member_id,
                        leader: resp.leader,
                        protocol: resp.protocol_name.unwrap_or_default(),
                        skip_assignment: resp.skip_assignment,
                        members: resp.members,
                    })
                }
                ErrorCode::MemberIdRequired => {
                    self.lock().member_id = resp.member_id;
                }
                ErrorCode::UnknownMemberId => {
                    let mut s = self.lock();
                    s.member_id.clear();
                    s.generation = -1;
                    return Err(Retry::Rejoin(code));
                }
                ErrorCode::NotCoordinator
                | ErrorCode::CoordinatorNotAvailable
                | ErrorCode::CoordinatorLoadInProgress
                | ErrorCode::RebalanceInProgress => {
                    self.coordinator_error(Some(code), false);
                    return Err(Retry::Rejoin(code));
                }
                code => {
                    return Err(Retry::Fail(Error::kafka(
                        format!("joining group {}", self.config.group_id),
                        code,
                        None,
                    )))
                }
            }
        }
        Err(Retry::Rejoin(ErrorCode::MemberIdRequired))
    }

    /// SyncGroup: the leader sends every member's assignment, followers none;
    /// everyone gets their own back.
    pub(crate) async fn sync(
        &self,
        joined: &Joined,
        assignments: Vec<(String, Bytes)>,
    ) -> Result<Bytes, Retry> {
        let conn = self.coordinator().await?;
        let v = version::<SyncGroupRequest>(&conn)?;
        let req = SyncGroupRequest {
            group_id: self.config.group_id.clone(),
            generation_id: joined.generation,
            member_id: joined.member_id.clone(),
            group_instance_id: self.config.group_instance_id.clone(),
            protocol_type: Some(PROTOCOL_TYPE.to_owned()),
            protocol_name: Some(joined.protocol.clone()),
            assignments: assignments
                .into_iter()
                .map(|(member_id, assignment)| SyncGroupRequestAssignment {
                    member_id,
                    assignment,
                })
                .collect(),
        };
        let extra = self.config.rebalance_timeout + Duration::from_secs(5);
        let resp = match send_at(&conn, req, v, extra).await {
            Ok(r) => r,
            Err(e) => {
                self.coordinator_error(None, e.is_connection_error());
                return Err(Retry::Fail(e));
            }
        };
        let code = ErrorCode::from_code(resp.error_code);
        match code {
            ErrorCode::None => Ok(resp.assignment),
            ErrorCode::RebalanceInProgress => Err(Retry::Rejoin(code)),
            ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration => {
                let mut s = self.lock();
                s.generation = -1;
                if code == ErrorCode::UnknownMemberId {
                    s.member_id.clear();
                }
                Err(Retry::Rejoin(code))
            }
            ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => {
                self.coordinator_error(Some(code), false);
                Err(Retry::Rejoin(code))
            }
            code => Err(Retry::Fail(Error::kafka(
                format!("syncing group {}", self.config.group_id),
                code,
                None,
            ))),
        }
    }

    /// LeaveGroup (dynamic members only; a static member keeps its place until its
    /// session times out, so a restart does not rebalance).
    pub(crate) async fn leave(&self) -> Result<()> {
        if self.config.group_protocol == GroupProtocol::Consumer {
            // No heartbeat may follow the leave (a join after it would rejoin).
            self.heartbeat.abort();
            return consumer_protocol::leave(self).await;
        }
        let member_id = {
            let mut s = self.lock();
            s.generation = -1;
            std::mem::take(&mut s.member_id)
        };
        if member_id.is_empty() || self.config.group_instance_id.is_some() {
            return Ok(());
        }
        let conn = self.coordinator().await?;
        let v = version::<LeaveGroupRequest>(&conn)?;
        let req = LeaveGroupRequest {
            group_id: self.config.group_id.clone(),
            member_id: member_id.clone(),
            members: vec![MemberIdentity {
                member_id,
                group_instance_id: None,
                reason: Some("the consumer is closing".to_owned()),
            }],
        };
        let resp = send_at(&conn, req, v, Duration::ZERO).await?;
        let code = match resp.members.first() {
            Some(m) if resp.error_code == 0 => m.error_code,
            _ => resp.error_code,
        };
        match ErrorCode::from_code(code) {
            ErrorCode::None | ErrorCode::UnknownMemberId => Ok(()),
            code => Err(Error::kafka(
                format!("leaving group {}", self.config.group_id),
                code,
                None,
            )),
        }
    }
}

/// Sends a Heartbeat every `heartbeat.interval.ms` while the member is stable.
async fn heartbeat_loop(cluster: Cluster, config: Arc<GroupConfig>, state: Arc<Mutex<State>>) {
    loop {
        tokio::time::sleep(config.heartbeat_interval).await;
        let (conn, generation, member_id) = {
            let s = lock(&state);
            if s.joining || s.generation < 0 || s.member_id.is_empty() || s.fatal.is_some() {
                continue;
            }
            (
                s.coordinator.clone().filter(Connection::is_alive),
                s.generation,
                s.member_id.clone(),
            )
        };
        let conn = match conn {
            Some(c) => c,
            None => match find_coordinator(&cluster, &config.group_id).await {
                Ok(c) => {
                    lock(&state).coordinator = Some(c.clone());
                    c
                }
                Err(e) => {
                    tracing::debug!(error = %e, "heartbeat: no coordinator");
                    continue;
                }
            },
        };
        let result = async {
            let v = version::<HeartbeatRequest>(&conn)?;
            let req = HeartbeatRequest {
                group_id: config.group_id.clone(),
                generation_id: generation,
                member_id: member_id.clone(),
                group_instance_id: config.group_instance_id.clone(),
            };
            send_at(&conn, req, v, Duration::ZERO).await
        }
        .await;
        let mut s = lock(&state);
        if s.generation != generation || s.member_id != member_id {
            continue; // a rejoin happened meanwhile; this answer is about the past
        }
        let code = match result {
            Ok(r) => ErrorCode::from_code(r.error_code),
            Err(e) => {
                tracing::debug!(error = %e, "heartbeat failed");
                if e.is_connection_error() {
                    s.coordinator = None;
                }
                continue;
            }
        };
        match code {
            ErrorCode::None => {}
            ErrorCode::RebalanceInProgress => s.rejoin = Some("the group is rebalancing"),
            ErrorCode::IllegalGeneration => {
                s.generation = -1;
                s.lost = true;
                s.rejoin = Some("the generation is stale");
            }
            ErrorCode::UnknownMemberId => {
                s.generation = -1;
                s.member_id.clear();
                s.lost = true;
                s.rejoin = Some("the coordinator dropped this member");
            }
            ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => {
                s.coordinator = None;
            }
            ErrorCode::FencedInstanceId => {
                s.fatal = Some(Error::kafka(
                    format!("group {}", config.group_id),
                    code,
                    Some("another consumer took over this group.instance.id".into()),
                ));
            }
            code => tracing::debug!(?code, "heartbeat error"),
        }
    }
}
