//! A classic group: members, generation, protocol, and the states of Kafka's
//! rebalance protocol.
//!
//! ```text
//!   Empty --join--> PreparingRebalance --all joined / timeout--> CompletingRebalance
//!     ^                   ^       |                                   |      |
//!     |                   |       +--(nobody left)--> Empty     leader's SyncGroup
//!     |                   +----- join, leave, expiry -----------+      |
//!     |                   +----- join, leave, expiry ---- Stable <-----+
//! ```
//!
//! This module holds the group's bookkeeping (`member.rs`: one member; `persist.rs`:
//! the group as its metadata record), with the same operations and
//! invariants as Kafka's `ClassicGroup` (the protocol vote, the leader, static
//! members, members awaiting their JoinGroup or SyncGroup answer). What happens on a
//! request or a timer is in `classic/`; both work on the shard's groups under its
//! lock, so none of this is shared between threads.
//!
//! A member awaiting an answer holds a oneshot sender: completing the "future" is
//! sending the response. A client that went away leaves a sender whose receiver is
//! gone; that is harmless, exactly as a muted socket is in Kafka.

mod member;
mod persist;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use bytes::Bytes;
use tokio::sync::oneshot;
use weir_protocol::messages::join_group::{JoinGroupResponse, JoinGroupResponseMember};
use weir_protocol::messages::sync_group::SyncGroupResponse;
use weir_types::ErrorCode;

pub(crate) use member::{Member, Protocol};

/// The protocol type of Kafka's consumers: the only one whose member metadata the
/// coordinator reads (for the subscribed topics).
pub(crate) const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// Where a member's JoinGroup answer goes.
pub(crate) type JoinSender = oneshot::Sender<JoinGroupResponse>;
/// Where a member's SyncGroup answer goes.
pub(crate) type SyncSender = oneshot::Sender<SyncGroupResponse>;

/// The states of a classic group, named as Kafka names them on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// No members (a simple consumer's group, or everyone left).
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Assigned; members heartbeat.
    Stable,
    /// Removed (deleted or unloaded).
    Dead,
}

impl GroupState {
    /// The name Kafka reports (DescribeGroups, ListGroups).
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }

    /// The states a group may enter this one from.
    fn valid_previous(self) -> &'static [GroupState] {
        use GroupState::*;
        match self {
            Empty => &[PreparingRebalance],
            PreparingRebalance => &[Stable, CompletingRebalance, Empty],
            CompletingRebalance => &[PreparingRebalance],
            Stable => &[CompletingRebalance],
            Dead => &[Stable, PreparingRebalance, CompletingRebalance, Empty, Dead],
        }
    }
}

/// A classic group; see the module docs.
#[derive(Debug)]
pub(crate) struct ClassicGroup {
    /// The group id.
    pub(crate) id: String,
    /// The current state.
    state: GroupState,
    /// The state before it (the initial rebalance is the one entered from Empty).
    previous_state: GroupState,
    /// Wall-clock ms of the last state change; offsets of an empty group expire
    /// relative to it. `None` for groups loaded from records that lack it.
    state_timestamp_ms: Option<i64>,
    /// The protocol type of its members; `None` for a simple (offsets-only) group.
    pub(crate) protocol_type: Option<String>,
    /// The protocol chosen for the current generation.
    pub(crate) protocol_name: Option<String>,
    /// The generation, bumped by every completed join phase.
    pub(crate) generation: i32,
    /// The member that computes the assignment.
    pub(crate) leader: Option<String>,
    /// Members by id (ordered, so responses and leader succession are deterministic).
    pub(crate) members: BTreeMap<String, Member>,
    /// Static members: instance id to member id.
    static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED whose second JoinGroup has not
    /// come yet.
    pending_join: HashSet<String>,
    /// Members of the new generation that have not sent SyncGroup yet.
    pending_sync: HashSet<String>,
    /// Whether a member joined during the initial rebalance delay (which extends it).
    pub(crate) new_member_added: bool,
    /// The topics its consumers subscribe to, when known (for offset retention and
    /// OffsetDelete).
    subscribed_topics: Option<BTreeSet<String>>,
}

impl ClassicGroup {
    /// A new, empty group.
    pub(crate) fn new(id: &str, now_ms: i64) -> ClassicGroup {
        ClassicGroup {
            id: id.to_owned(),
            state: GroupState::Empty,
            previous_state: GroupState::Dead,
            state_timestamp_ms: Some(now_ms),
            protocol_type: None,
            protocol_name: None,
            generation: 0,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending_join: HashSet::new(),
            pending_sync: HashSet::new(),
            new_member_added: false,
            subscribed_topics: None,
        }
    }

    /// The current state.
    pub(crate) fn state(&self) -> GroupState {
        self.state
    }

    /// Whether the group is in `state`.
    pub(crate) fn is(&self, state: GroupState) -> bool {
        self.state == state
    }

    /// The state before the current one.
    pub(crate) fn previous_state(&self) -> GroupState {
        self.previous_state
    }

    /// Wall-clock ms of the last state change, or -1.
    pub(crate) fn state_timestamp_or_default(&self) -> i64 {
        self.state_timestamp_ms.unwrap_or(-1)
    }

    /// Whether the group has no members (state Empty).
    pub(crate) fn is_empty(&self) -> bool {
        self.is(GroupState::Empty)
    }

    /// Whether a rebalance may start from the current state.
    pub(crate) fn can_rebalance(&self) -> bool {
        GroupState::PreparingRebalance
            .valid_previous()
            .contains(&self.state)
    }

    /// Moves to `state`. A transition Kafka does not allow is a bug; it is logged
    /// (and fails debug builds) rather than taking the broker down.
    pub(crate) fn transition_to(&mut self, state: GroupState, now_ms: i64) {
        if !state.valid_previous().contains(&self.state) {
            tracing::error!(group = %self.id, from = self.state.name(), to = state.name(), "invalid group state transition");
            debug_assert!(false, "invalid transition {:?} -> {:?}", self.state, state);
        }
        self.previous_state = self.state;
        self.state = state;
        self.state_timestamp_ms = Some(now_ms);
    }

    /// Whether `member_id` leads the group.
    pub(crate) fn is_leader(&self, member_id: &str) -> bool {
        self.leader.as_deref() == Some(member_id)
    }

    /// Whether the group uses Kafka's consumer protocol.
    pub(crate) fn uses_consumer_protocol(&self) -> bool {
        self.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE)
    }

    /// Adds a member (a new join, or a loaded one) with its parked JoinGroup.
    pub(crate) fn add(&mut self, member: Member, join: Option<JoinSender>) {
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        self.insert(member, join);
    }

    /// `add` without taking the member's protocol type (loading keeps the record's).
    fn insert(&mut self, mut member: Member, join: Option<JoinSender>) {
        if let Some(instance) = &member.instance_id {
            self.static_members
                .insert(instance.clone(), member.id.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(member.id.clone());
        }
        member.awaiting_join = join;
        self.pending_join.remove(&member.id);
        self.members.insert(member.id.clone(), member);
    }

    /// Removes a member (or a pending member id); a leaving leader is succeeded by
    /// the first remaining member.
    pub(crate) fn remove(&mut self, member_id: &str) -> Option<Member> {
        let removed = self.members.remove(member_id);
        if let Some(m) = &removed {
            if let Some(instance) = &m.instance_id {
                self.static_members.remove(instance);
            }
        }
        if self.is_leader(member_id) {
            self.leader = self.members.keys().next().cloned();
        }
        self.pending_join.remove(member_id);
        self.pending_sync.remove(member_id);
        removed
    }

    /// If the leader did not rejoin, makes the first member that did the leader.
    /// False when nobody rejoined (or there is no leader at all).
    pub(crate) fn maybe_elect_new_joined_leader(&mut self) -> bool {
        let Some(leader) = &self.leader else {
            return false;
        };
        if self
            .members
            .get(leader)
            .is_some_and(Member::is_awaiting_join)
        {
            return true;
        }
        match self.members.values().find(|m| m.is_awaiting_join()) {
            Some(m) => {
                self.leader = Some(m.id.clone());
                true
            }
            None => false,
        }
    }

    /// Gives a static member a new member id (its restart), fencing whatever the old
    /// id had parked with FENCED_INSTANCE_ID. Returns false if `old_id` is unknown.
    pub(crate) fn replace_static_member(
        &mut self,
        instance: &str,
        old_id: &str,
        new_id: &str,
    ) -> bool {
        let Some(mut member) = self.members.remove(old_id) else {
            return false;
        };
        if let Some(join) = member.awaiting_join.take() {
            join.send(JoinGroupResponse {
                error_code: ErrorCode::FencedInstanceId.code(),
                member_id: old_id.to_owned(),
                generation_id: -1,
                ..JoinGroupResponse::default()
            })
            .ok();
        }
        if let Some(sync) = member.awaiting_sync.take() {
            sync.send(SyncGroupResponse {
                error_code: ErrorCode::FencedInstanceId.code(),
                ..SyncGroupResponse::default()
            })
            .ok();
        }
        member.id = new_id.to_owned();
        if self.is_leader(old_id) {
            self.leader = Some(new_id.to_owned());
        }
        if self.pending_sync.remove(old_id) {
            self.pending_sync.insert(new_id.to_owned());
        }
        self.static_members
            .insert(instance.to_owned(), new_id.to_owned());
        self.members.insert(new_id.to_owned(), member);
        true
    }

    /// Whether `member_id` was handed out and not yet used.
    pub(crate) fn is_pending_member(&self, member_id: &str) -> bool {
        self.pending_join.contains(member_id)
    }

    /// Records a member id handed out with MEMBER_ID_REQUIRED.
    pub(crate) fn add_pending_member(&mut self, member_id: &str) {
        self.pending_join.insert(member_id.to_owned());
    }

    /// Expects SyncGroup from `member_id`.
    pub(crate) fn add_pending_sync(&mut self, member_id: &str) {
        self.pending_sync.insert(member_id.to_owned());
    }

    /// `member_id` sent its SyncGroup.
    pub(crate) fn remove_pending_sync(&mut self, member_id: &str) {
        self.pending_sync.remove(member_id);
    }

    /// Whether every member of the generation sent SyncGroup.
    pub(crate) fn has_received_sync_from_all(&self) -> bool {
        self.pending_sync.is_empty()
    }

    /// The members that have not sent SyncGroup.
    pub(crate) fn pending_sync_members(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.pending_sync.iter().cloned().collect();
        ids.sort();
        ids
    }

    /// Stops expecting SyncGroups (a new rebalance started).
    pub(crate) fn clear_pending_sync(&mut self) {
        self.pending_sync.clear();
    }

    /// The member id of static member `instance`.
    pub(crate) fn static_member_id(&self, instance: &str) -> Option<&str> {
        self.static_members.get(instance).map(String::as_str)
    }

    /// Members whose JoinGroup is parked.
    pub(crate) fn num_awaiting_join(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.is_awaiting_join())
            .count()
    }

    /// Whether everyone (and no pending member id) has rejoined.
    pub(crate) fn has_all_members_joined(&self) -> bool {
        self.members.len() == self.num_awaiting_join() && self.pending_join.is_empty()
    }

    /// Members that have not rejoined in this join phase.
    pub(crate) fn not_yet_rejoined(&self) -> Vec<String> {
        self.members
            .values()
            .filter(|m| !m.is_awaiting_join())
            .map(|m| m.id.clone())
            .collect()
    }

    /// The longest rebalance timeout of any member: how long a join phase waits.
    pub(crate) fn rebalance_timeout_ms(&self) -> i32 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0)
    }

    /// Checks that `member_id` (and, for a static member, its instance id) is a
    /// current member: UNKNOWN_MEMBER_ID, or FENCED_INSTANCE_ID when the instance id
    /// now belongs to another member id.
    pub(crate) fn validate_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), ErrorCode> {
        if let Some(instance) = instance_id {
            match self.static_member_id(instance) {
                None => return Err(ErrorCode::UnknownMemberId),
                Some(existing) if existing != member_id => return Err(ErrorCode::FencedInstanceId),
                Some(_) => {}
            }
        }
        if self.members.contains_key(member_id) {
            Ok(())
        } else {
            Err(ErrorCode::UnknownMemberId)
        }
    }

    /// Kafka's checks for an OffsetCommit to this group: a commit without a
    /// generation is only for an empty group; one with a member must come from a
    /// current member of the current generation, outside a pending assignment.
    pub(crate) fn validate_offset_commit(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), ErrorCode> {
        if self.is(GroupState::Dead) {
            return Err(ErrorCode::CoordinatorNotAvailable);
        }
        if generation < 0 && self.is_empty() {
            return Ok(());
        }
        if generation >= 0 || !member_id.is_empty() || instance_id.is_some() {
            self.validate_member(member_id, instance_id)?;
            if generation != self.generation {
                return Err(ErrorCode::IllegalGeneration);
            }
        } else if !self.is_empty() {
            return Err(ErrorCode::UnknownMemberId);
        }
        if self.is(GroupState::CompletingRebalance) {
            return Err(ErrorCode::RebalanceInProgress);
        }
        Ok(())
    }

    /// Whether members of type `protocol_type` supporting `names` may join: any
    /// non-empty type and protocol list for an empty group, otherwise the group's
    /// type and at least one protocol every member supports.
    pub(crate) fn supports_protocols(&self, protocol_type: &str, names: &[&str]) -> bool {
        if self.is_empty() {
            return !protocol_type.is_empty() && !names.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && names
                .iter()
                .any(|n| self.support_count(n) == self.members.len())
    }

    /// How many members support protocol `name`.
    fn support_count(&self, name: &str) -> usize {
        self.members
            .values()
            .filter(|m| m.protocols.iter().any(|p| p.name == name))
            .count()
    }

    /// The protocol for the next generation: among those every member supports,
    /// the one most members prefer (Kafka's vote). Ties go to the name first in
    /// order, so the choice is deterministic.
    pub(crate) fn select_protocol(&self) -> Option<String> {
        let all = self.members.len();
        let candidates: HashSet<&str> = self
            .members
            .values()
            .flat_map(|m| m.protocols.iter().map(|p| p.name.as_str()))
            .filter(|n| self.support_count(n) == all)
            .collect();
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(choice) = m.vote(&candidates) {
                *votes.entry(choice).or_default() += 1;
            }
        }
        let best = votes.values().copied().max()?;
        votes
            .into_iter()
            .find(|(_, n)| *n == best)
            .map(|(name, _)| name.to_owned())
    }

    /// Replaces a member's protocols and timeouts, and parks (or clears) its
    /// JoinGroup.
    pub(crate) fn update_member(
        &mut self,
        member_id: &str,
        protocols: Vec<Protocol>,
        rebalance_timeout_ms: i32,
        session_timeout_ms: i32,
        join: Option<JoinSender>,
    ) {
        if let Some(m) = self.members.get_mut(member_id) {
            m.protocols = protocols;
            m.rebalance_timeout_ms = rebalance_timeout_ms;
            m.session_timeout_ms = session_timeout_ms;
            m.awaiting_join = join;
        }
    }

    /// Answers a member's parked JoinGroup; false if none was parked.
    pub(crate) fn complete_join(&mut self, member_id: &str, response: JoinGroupResponse) -> bool {
        match self
            .members
            .get_mut(member_id)
            .and_then(|m| m.awaiting_join.take())
        {
            Some(sender) => {
                sender.send(response).ok();
                true
            }
            None => false,
        }
    }

    /// Answers a member's parked SyncGroup; false if none was parked.
    pub(crate) fn complete_sync(&mut self, member_id: &str, response: SyncGroupResponse) -> bool {
        match self
            .members
            .get_mut(member_id)
            .and_then(|m| m.awaiting_sync.take())
        {
            Some(sender) => {
                sender.send(response).ok();
                true
            }
            None => false,
        }
    }

    /// Answers every parked JoinGroup and SyncGroup with `error` (the group is
    /// unloaded or deleted).
    pub(crate) fn fail_all_parked(&mut self, error: ErrorCode) {
        for m in self.members.values_mut() {
            if let Some(join) = m.awaiting_join.take() {
                join.send(JoinGroupResponse {
                    error_code: error.code(),
                    member_id: m.id.clone(),
                    generation_id: -1,
                    ..JoinGroupResponse::default()
                })
                .ok();
            }
            if let Some(sync) = m.awaiting_sync.take() {
                sync.send(SyncGroupResponse {
                    error_code: error.code(),
                    ..SyncGroupResponse::default()
                })
                .ok();
            }
        }
    }

    /// Starts the next generation: picks the protocol and moves to
    /// CompletingRebalance, or to Empty when nobody is left.
    pub(crate) fn init_next_generation(&mut self, now_ms: i64) {
        self.generation = self.generation.wrapping_add(1);
        if self.members.is_empty() {
            self.protocol_name = None;
            self.subscribed_topics = self.compute_subscribed_topics();
            self.transition_to(GroupState::Empty, now_ms);
        } else {
            self.protocol_name = self.select_protocol();
            self.subscribed_topics = self.compute_subscribed_topics();
            self.transition_to(GroupState::CompletingRebalance, now_ms);
        }
        self.clear_pending_sync();
    }

    /// The member list the leader gets: each member with its metadata for the
    /// chosen protocol.
    pub(crate) fn leader_member_list(&self) -> Vec<JoinGroupResponseMember> {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        self.members
            .values()
            .map(|m| JoinGroupResponseMember {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                metadata: m.metadata(protocol).cloned().unwrap_or_default(),
            })
            .collect()
    }

    /// Every member's current assignment.
    pub(crate) fn assignments(&self) -> BTreeMap<String, Bytes> {
        self.members
            .iter()
            .map(|(id, m)| (id.clone(), m.assignment.clone()))
            .collect()
    }
}
