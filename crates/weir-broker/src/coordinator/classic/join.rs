//! JoinGroup: a member enters the group or rejoins for a rebalance.
//!
//! The answer usually waits: a member that (re)joins is parked until the join phase
//! completes, and then every member gets its answer at once (the leader with the
//! member list). So this returns a receiver, already answered for the immediate
//! cases (errors, MEMBER_ID_REQUIRED, a follower that rejoins a stable group).

use tokio::sync::oneshot;
use weir_protocol::messages::join_group::{JoinGroupRequest, JoinGroupResponse};
use weir_types::ErrorCode;

use super::error_join;
use crate::coordinator::consumer::ConsumerRecord;
use crate::coordinator::group::{ClassicGroup, GroupState, JoinSender, Member, Protocol};
use crate::coordinator::records::Record;
use crate::coordinator::shard::{random_uuid, Now, Outcome, Shard};

/// Where the JoinGroup answer arrives.
pub(crate) type JoinReply = oneshot::Receiver<JoinGroupResponse>;

/// What the coordinator needs to know about the request besides its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JoinContext {
    /// The request header's client id (the prefix of a dynamic member's id).
    pub(crate) client_id: String,
    /// The client's address as Kafka shows it (`/127.0.0.1`).
    pub(crate) client_host: String,
    /// The request version: v4+ requires the two-step join (KIP-394), v9+ lets a
    /// static leader skip the assignment.
    pub(crate) api_version: i16,
}

/// The request's protocols as the group keeps them.
fn protocols(request: &JoinGroupRequest) -> Vec<Protocol> {
    request
        .protocols
        .iter()
        .map(|p| Protocol {
            name: p.name.clone(),
            metadata: p.metadata.clone(),
        })
        .collect()
}

/// The request's rebalance timeout (v0 has none: the session timeout stands in).
fn rebalance_timeout(ctx: &JoinContext, request: &JoinGroupRequest) -> i32 {
    if ctx.api_version == 0 {
        request.session_timeout_ms
    } else {
        request.rebalance_timeout_ms
    }
}

/// The answer for the current generation, without a member list.
fn generation_answer(group: &ClassicGroup, member_id: &str) -> JoinGroupResponse {
    JoinGroupResponse {
        member_id: member_id.to_owned(),
        generation_id: group.generation,
        protocol_name: group.protocol_name.clone(),
        protocol_type: group.protocol_type.clone(),
        leader: group.leader.clone().unwrap_or_default(),
        ..JoinGroupResponse::default()
    }
}

impl Shard {
    /// Handles a JoinGroup (Kafka's `classicGroupJoinToClassicGroup`).
    pub(crate) fn join(
        &mut self,
        ctx: &JoinContext,
        request: &JoinGroupRequest,
        now: Now,
    ) -> Outcome<JoinReply> {
        let (tx, rx) = oneshot::channel();
        let group_id = request.group_id.as_str();
        let member_id = request.member_id.as_str();
        let unknown_member = member_id.is_empty();
        // A KIP-848 group of the same id: an empty one gives way (offsets kept, as
        // Kafka does); one with members does not take classic members.
        let mut replaced = Vec::new();
        if let Some(consumer) = self.consumer_groups.get(group_id) {
            if !consumer.members.is_empty() {
                tx.send(error_join(ErrorCode::InconsistentGroupProtocol, member_id))
                    .ok();
                return Outcome::just(rx);
            }
            let mut tombstones = Vec::new();
            ConsumerRecord::delete_group(consumer, &mut tombstones);
            replaced.extend(
                tombstones
                    .into_iter()
                    .map(|r| Record::Consumer(Box::new(r))),
            );
            self.consumer_groups.remove(group_id);
            self.timers.cancel_group(group_id);
        }
        let new_group = !self.groups.contains_key(group_id);
        if new_group && !unknown_member {
            // A member id for a group that does not exist: it was deleted or
            // expired; the client starts over.
            tx.send(error_join(ErrorCode::UnknownMemberId, member_id))
                .ok();
            return Outcome::just(rx);
        }
        let max_size = self.config.max_group_size;
        let group = self
            .groups
            .entry(group_id.to_owned())
            .or_insert_with(|| ClassicGroup::new(group_id, now.wall_ms));
        let outcome = if !accept_joining_member(group, member_id, max_size) {
            group.remove(member_id);
            tx.send(error_join(ErrorCode::GroupMaxSizeReached, "")).ok();
            Outcome::just(())
        } else if unknown_member {
            self.join_new_member(ctx, request, tx, now)
        } else {
            self.join_existing_member(ctx, request, tx, now)
        };
        let mut outcome = outcome;
        if !replaced.is_empty() {
            // Written before whatever the join writes; the state already dropped it.
            let had_records = !outcome.records.is_empty();
            replaced.append(&mut outcome.records);
            outcome.records = replaced;
            if !had_records && new_group {
                let value = self
                    .groups
                    .get(group_id)
                    .map(ClassicGroup::empty_record_value);
                outcome
                    .records
                    .push(Record::group_metadata(group_id, value));
            }
            return outcome.map(|()| rx);
        }
        if new_group && outcome.records.is_empty() {
            // As Kafka: a new group is written at once, as an empty group, so it
            // exists after a restart; if that write fails, the group is dropped again.
            let value = self
                .groups
                .get(group_id)
                .map(ClassicGroup::empty_record_value);
            let id = group_id.to_owned();
            let previous = outcome.then;
            return Outcome {
                records: vec![Record::group_metadata(group_id, value)],
                replay: false,
                response: rx,
                then: Some(Box::new(move |shard: &mut Shard, now, result| {
                    if let Some(previous) = previous {
                        previous(shard, now, result);
                    }
                    if let Err(code) = result {
                        tracing::warn!(group = %id, ?code, "could not write a new group; dropping it");
                        if let Some(mut group) = shard.groups.remove(&id) {
                            group.fail_all_parked(code);
                        }
                        shard.timers.cancel_group(&id);
                    }
                })),
            };
        }
        outcome.map(|()| rx)
    }

    /// A JoinGroup without a member id.
    fn join_new_member(
        &mut self,
        ctx: &JoinContext,
        request: &JoinGroupRequest,
        tx: JoinSender,
        now: Now,
    ) -> Outcome<()> {
        let group_id = request.group_id.as_str();
        let Some(group) = self.groups.get_mut(group_id) else {
            return Outcome::just(());
        };
        let names: Vec<&str> = request.protocols.iter().map(|p| p.name.as_str()).collect();
        if group.is(GroupState::Dead) {
            tx.send(error_join(ErrorCode::CoordinatorNotAvailable, ""))
                .ok();
            return Outcome::just(());
        }
        if !group.supports_protocols(&request.protocol_type, &names) {
            tx.send(error_join(ErrorCode::InconsistentGroupProtocol, ""))
                .ok();
            return Outcome::just(());
        }
        let prefix = request
            .group_instance_id
            .as_deref()
            .unwrap_or(&ctx.client_id);
        let new_id = format!("{prefix}-{}", random_uuid());
        match request.group_instance_id.as_deref() {
            Some(instance) => match group.static_member_id(instance).map(str::to_owned) {
                Some(old_id) => {
                    tracing::info!(group = group_id, instance, old = %old_id, new = %new_id, "static member rejoins with a new member id");
                    self.update_static_member(ctx, request, &old_id, &new_id, tx, now)
                }
                None => {
                    self.add_member_then_rebalance_or_complete_join(ctx, request, &new_id, tx, now)
                }
            },
            None if ctx.api_version >= 4 => {
                // KIP-394: hand out the id and wait for the member to come back with
                // it, so a client that never does leaves no member behind.
                group.add_pending_member(&new_id);
                let session = request.session_timeout_ms;
                self.schedule_heartbeat(group_id, &new_id, session, now);
                tx.send(error_join(ErrorCode::MemberIdRequired, &new_id))
                    .ok();
                Outcome::just(())
            }
            None => self.add_member_then_rebalance_or_complete_join(ctx, request, &new_id, tx, now),
        }
    }

    /// A JoinGroup with a member id.
    fn join_existing_member(
        &mut self,
        ctx: &JoinContext,
        request: &JoinGroupRequest,
        tx: JoinSender,
        now: Now,
    ) -> Outcome<()> {
        let group_id = request.group_id.as_str();
        let member_id = request.member_id.as_str();
        let Some(group) = self.groups.get_mut(group_id) else {
            return Outcome::just(());
        };
        let names: Vec<&str> = request.protocols.iter().map(|p| p.name.as_str()).collect();
        if group.is(GroupState::Dead) {
            tx.send(error_join(ErrorCode::CoordinatorNotAvailable, member_id))
                .ok();
            return Outcome::just(());
        }
        if !group.supports_protocols(&request.protocol_type, &names) {
            tx.send(error_join(ErrorCode::InconsistentGroupProtocol, member_id))
                .ok();
            return Outcome::just(());
        }
        if group.is_pending_member(member_id) {
            return self
                .add_member_then_rebalance_or_complete_join(ctx, request, member_id, tx, now);
        }
        if let Err(code) = group.validate_member(member_id, request.group_instance_id.as_deref()) {
            tx.send(error_join(code, member_id)).ok();
            return Outcome::just(());
        }
        let new_protocols = protocols(request);
        let matches = group
            .members
            .get(member_id)
            .is_some_and(|m| m.matches(&new_protocols));
        match group.state() {
            GroupState::PreparingRebalance => {
                self.update_member_then_rebalance_or_complete_join(ctx, request, now, tx)
            }
            GroupState::CompletingRebalance if matches => {
                // The same member again (its first answer was lost): the current
                // generation once more, with the member list for the leader.
                let mut answer = generation_answer(group, member_id);
                if group.is_leader(member_id) {
                    answer.members = group.leader_member_list();
                }
                tx.send(answer).ok();
                Outcome::just(())
            }
            GroupState::Stable if !group.is_leader(member_id) && matches => {
                // A follower with unchanged metadata: no rebalance, just the
                // generation so it can SyncGroup.
                tx.send(generation_answer(group, member_id)).ok();
                Outcome::just(())
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                // Changed metadata, or the leader asking for a rebalance (it sees
                // topic changes the member metadata does not show).
                self.update_member_then_rebalance_or_complete_join(ctx, request, now, tx)
            }
            GroupState::Empty | GroupState::Dead => {
                tx.send(error_join(ErrorCode::UnknownMemberId, member_id))
                    .ok();
                Outcome::just(())
            }
        }
    }

    /// Takes the member's new protocols and timeouts, parks its JoinGroup, and
    /// rebalances.
    fn update_member_then_rebalance_or_complete_join(
        &mut self,
        ctx: &JoinContext,
        request: &JoinGroupRequest,
        now: Now,
        tx: JoinSender,
    ) -> Outcome<()> {
        let group_id = request.group_id.as_str();
        if let Some(group) = self.groups.get_mut(group_id) {
            group.update_member(
                &request.member_id,
                protocols(request),
                rebalance_timeout(ctx, request),
                request.session_timeout_ms,
                Some(tx),
            );
        }
        self.maybe_prepare_rebalance_or_complete_join(group_id, now)
    }

    /// Adds a member with its JoinGroup parked, and rebalances.
    fn add_member_then_rebalance_or_complete_join(
        &mut self,
        ctx: &JoinContext,
        request: &JoinGroupRequest,
        member_id: &str,
        tx: JoinSender,
        now: Now,
    ) -> Outcome<()> {
        let group_id = request.group_id.as_str();
        let join_timeout = self.config.new_member_join_timeout_ms;
        let Some(group) = self.groups.get_mut(group_id) else {
            return Outcome::just(());
        };
        let mut member = Member::new(
            member_id.to_owned(),
            request.group_instance_id.clone(),
            ctx.client_id.clone(),
            ctx.client_host.clone(),
            rebalance_timeout(ctx, request),
            request.session_timeout_ms,
            request.protocol_type.clone(),
            protocols(request),
        );
        member.is_new = true;
        if group.is(GroupState::PreparingRebalance) && group.previous_state() == GroupState::Empty {
            group.new_member_added = true;
        }
        group.add(member, Some(tx));
        // A parked new member cannot heartbeat and a muted socket shows no
        // disconnect: bound its wait so a vanished client does not hold the group.
        self.schedule_heartbeat(group_id, member_id, join_timeout, now);
        self.maybe_prepare_rebalance_or_complete_join(group_id, now)
    }

    /// A static member rejoined without its member id (a restart): it takes over its
    /// old membership under a new id. In a stable group whose protocol would not
    /// change this needs no rebalance (KIP-345): the group is rewritten with the new
    /// id and the member gets the current generation.
    fn update_static_member(
        &mut self,
        ctx: &JoinContext,
        request: &JoinGroupRequest,
        old_id: &str,
        new_id: &str,
        tx: JoinSender,
        now: Now,
    ) -> Outcome<()> {
        let group_id = request.group_id.as_str();
        let Some(instance) = request.group_instance_id.clone() else {
            return Outcome::just(());
        };
        let Some(group) = self.groups.get_mut(group_id) else {
            return Outcome::just(());
        };
        let current_leader = group.leader.clone();
        if !group.replace_static_member(&instance, old_id, new_id) {
            tx.send(error_join(ErrorCode::UnknownMemberId, "")).ok();
            return Outcome::just(());
        }
        let Some(member) = group.members.get(new_id) else {
            return Outcome::just(());
        };
        let (old_protocols, old_rebalance, old_session) = (
            member.protocols.clone(),
            member.rebalance_timeout_ms,
            member.session_timeout_ms,
        );
        group.update_member(
            new_id,
            protocols(request),
            rebalance_timeout(ctx, request),
            request.session_timeout_ms,
            Some(tx),
        );
        let state = group.state();
        let same_protocol = group.select_protocol() == group.protocol_name;
        let record_value = group.to_record_value(&group.assignments());
        let session = request.session_timeout_ms;
        self.cancel_heartbeat(group_id, old_id);
        self.schedule_heartbeat(group_id, new_id, session, now);
        match state {
            GroupState::Stable if same_protocol => {
                let (group_key, old_id, new_id) =
                    (group_id.to_owned(), old_id.to_owned(), new_id.to_owned());
                let skip_assignment = ctx.api_version >= 9;
                Outcome {
                    records: vec![Record::group_metadata(group_id, Some(record_value))],
                    replay: false,
                    response: (),
                    then: Some(Box::new(move |shard: &mut Shard, now, result| {
                        let Some(group) = shard.groups.get_mut(&group_key) else {
                            return;
                        };
                        match result {
                            Err(code) => {
                                // Not persisted: the old member id stands.
                                let parked = group
                                    .members
                                    .get(&new_id)
                                    .is_some_and(Member::is_awaiting_join);
                                let answer = JoinGroupResponse {
                                    error_code: code.code(),
                                    generation_id: group.generation,
                                    protocol_name: group.protocol_name.clone(),
                                    protocol_type: group.protocol_type.clone(),
                                    leader: current_leader.clone().unwrap_or_default(),
                                    ..JoinGroupResponse::default()
                                };
                                if parked {
                                    group.complete_join(&new_id, answer);
                                }
                                group.update_member(
                                    &new_id,
                                    old_protocols,
                                    old_rebalance,
                                    old_session,
                                    None,
                                );
                                group.replace_static_member(&instance, &new_id, &old_id);
                                shard.cancel_heartbeat(&group_key, &new_id);
                                shard.schedule_heartbeat(&group_key, &old_id, old_session, now);
                            }
                            Ok(()) => {
                                let mut answer = generation_answer(group, &new_id);
                                if skip_assignment {
                                    // v9+: the static leader learns it leads but must
                                    // not reassign a stable group.
                                    if group.is_leader(&new_id) {
                                        answer.members = group.leader_member_list();
                                        answer.skip_assignment = true;
                                    }
                                } else {
                                    // Older clients: name the previous leader id, so
                                    // a restarted leader does not think it leads and
                                    // reassign.
                                    answer.leader = current_leader.clone().unwrap_or_default();
                                }
                                group.complete_join(&new_id, answer);
                            }
                        }
                    })),
                }
            }
            GroupState::Stable => self.maybe_prepare_rebalance_or_complete_join(group_id, now),
            // The leader may already hold the old id in its assignment: rebalance so
            // the new id gets one.
            GroupState::CompletingRebalance => self.prepare_rebalance(group_id, now),
            _ => self.maybe_complete_join_phase(group_id, now),
        }
    }
}

/// Whether the group takes one more (or this returning) member under
/// `group.max.size`.
fn accept_joining_member(group: &ClassicGroup, member_id: &str, max_size: usize) -> bool {
    match group.state() {
        GroupState::Empty | GroupState::Dead => true,
        GroupState::PreparingRebalance => {
            group
                .members
                .get(member_id)
                .is_some_and(Member::is_awaiting_join)
                || group.num_awaiting_join() < max_size
        }
        GroupState::CompletingRebalance | GroupState::Stable => {
            group.members.contains_key(member_id) || group.members.len() < max_size
        }
    }
}
