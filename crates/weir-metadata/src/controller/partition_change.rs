//! One partition's next registration: Kafka's `PartitionChangeBuilder`.
//!
//! Every change to a partition (an ISR shrink or expansion, a fenced or shutting
//! down broker, a preferred or unclean election, a reassignment step) goes through
//! [`PartitionChange`], so the election rules live in one place:
//!
//! - a clean election picks the first replica, in assignment order, that is in the
//!   (target) ISR and may lead (registered, unfenced, not shutting down) — never a
//!   replica outside the ISR, because it may miss committed records;
//! - with no such replica the partition has no leader (-1), unless the topic allows
//!   unclean elections, which then pick the first live replica and make it the
//!   whole ISR (leader recovery state RECOVERING, as in Kafka);
//! - a current leader that may still lead keeps leading, except in a preferred
//!   election, which moves leadership to the first replica when that one may lead.
//!
//! The result is a PartitionChangeRecord with only the fields that change (replay
//! bumps the leader epoch when the leader field is set, and the partition epoch on
//! every record), or nothing when nothing would change.

use weir_protocol::messages::PartitionChangeRecord;
use weir_protocol::Uuid;
use weir_types::NodeId;

use crate::image::{MetadataImage, PartitionImage, TopicImage};

/// The topic config that allows electing a leader from outside the ISR.
pub(crate) const UNCLEAN_ELECTION: &str = "unclean.leader.election.enable";

/// Leader recovery state after an unclean election (Kafka's RECOVERING).
const RECOVERING: i8 = 1;

/// How the leader is chosen; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Election {
    /// Keep a leader that may still lead, else elect cleanly from the ISR.
    Clean,
    /// Move leadership to the first replica when it may lead, else as `Clean`.
    Preferred,
    /// As `Clean`, then from outside the ISR when no ISR member may lead.
    Unclean,
}

/// Whether `topic` allows unclean elections (`unclean.leader.election.enable`).
pub(crate) fn unclean_allowed(topic: &TopicImage) -> bool {
    topic
        .configs
        .get(UNCLEAN_ELECTION)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The clean election of `topic`, or unclean when the topic allows it.
pub(crate) fn default_election(topic: &TopicImage) -> Election {
    if unclean_allowed(topic) {
        Election::Unclean
    } else {
        Election::Clean
    }
}

/// A proposed change to one partition; see the module docs.
pub(crate) struct PartitionChange<'a> {
    topic_id: Uuid,
    partition: i32,
    current: &'a PartitionImage,
    /// Whether a broker may lead or join an ISR.
    eligible: &'a dyn Fn(NodeId) -> bool,
    isr: Vec<NodeId>,
    replicas: Vec<NodeId>,
    adding: Vec<NodeId>,
    removing: Vec<NodeId>,
    election: Election,
}

impl<'a> PartitionChange<'a> {
    /// A change of partition `partition` of `topic_id`, currently `current`, that
    /// changes nothing yet. `eligible` says which brokers may lead.
    pub(crate) fn new(
        topic_id: Uuid,
        partition: i32,
        current: &'a PartitionImage,
        eligible: &'a dyn Fn(NodeId) -> bool,
    ) -> Self {
        PartitionChange {
            topic_id,
            partition,
            current,
            eligible,
            isr: current.isr.clone(),
            replicas: current.replicas.clone(),
            adding: current.adding_replicas.clone(),
            removing: current.removing_replicas.clone(),
            election: Election::Clean,
        }
    }

    /// Proposes a new ISR.
    pub(crate) fn isr(mut self, isr: Vec<NodeId>) -> Self {
        self.isr = isr;
        self
    }

    /// Proposes a new replica set and reassignment state.
    pub(crate) fn replicas(
        mut self,
        replicas: Vec<NodeId>,
        adding: Vec<NodeId>,
        removing: Vec<NodeId>,
    ) -> Self {
        self.isr.retain(|r| replicas.contains(r));
        self.replicas = replicas;
        self.adding = adding;
        self.removing = removing;
        self
    }

    /// Sets how the leader is chosen.
    pub(crate) fn election(mut self, election: Election) -> Self {
        self.election = election;
        self
    }

    /// The leader the change would have (`None` for none).
    fn elect(&self) -> (Option<NodeId>, Vec<NodeId>, bool) {
        let may_lead = |n: &NodeId| (self.eligible)(*n) && self.isr.contains(n);
        let preferred = self.replicas.first().copied();
        if self.election == Election::Preferred {
            if let Some(p) = preferred.filter(|p| may_lead(p)) {
                return (Some(p), self.isr.clone(), false);
            }
        }
        if let Some(l) = self.current.leader.filter(|l| may_lead(l)) {
            if self.replicas.contains(&l) {
                return (Some(l), self.isr.clone(), false);
            }
        }
        if let Some(l) = self.replicas.iter().copied().find(|n| may_lead(n)) {
            return (Some(l), self.isr.clone(), false);
        }
        if self.election == Election::Unclean {
            if let Some(l) = self.replicas.iter().copied().find(|n| (self.eligible)(*n)) {
                return (Some(l), vec![l], true);
            }
        }
        (None, self.isr.clone(), false)
    }

    /// The record that makes the change, or `None` when nothing would change.
    pub(crate) fn build(self) -> Option<PartitionChangeRecord> {
        let (leader, isr, unclean) = self.elect();
        let c = self.current;
        let ids = |v: &[NodeId]| v.iter().map(|n| n.get()).collect::<Vec<i32>>();
        let changed = |new: &[NodeId], old: &[NodeId]| (new != old).then(|| ids(new));
        let mut record = PartitionChangeRecord {
            partition_id: self.partition,
            topic_id: self.topic_id,
            isr: changed(&isr, &c.isr),
            leader: -2,
            replicas: changed(&self.replicas, &c.replicas),
            removing_replicas: changed(&self.removing, &c.removing_replicas),
            adding_replicas: changed(&self.adding, &c.adding_replicas),
            leader_recovery_state: -1,
            ..PartitionChangeRecord::default()
        };
        if leader != c.leader {
            record.leader = leader.map_or(-1, NodeId::get);
        }
        if unclean && c.leader_recovery_state != RECOVERING {
            record.leader_recovery_state = RECOVERING;
        }
        let unchanged = record.isr.is_none()
            && record.leader == -2
            && record.replicas.is_none()
            && record.removing_replicas.is_none()
            && record.adding_replicas.is_none()
            && record.leader_recovery_state == -1;
        (!unchanged).then_some(record)
    }
}

/// The partition changes that take `broker` out of leadership and, where others
/// remain, out of ISRs: for a broker being fenced or shutting down. `eligible`
/// already excludes it.
pub(crate) fn move_away_from(
    image: &MetadataImage,
    broker: NodeId,
    eligible: &dyn Fn(NodeId) -> bool,
) -> Vec<PartitionChangeRecord> {
    let mut out = Vec::new();
    for topic in image.topics() {
        for (i, p) in topic.partitions.iter().enumerate() {
            if !p.isr.contains(&broker) && p.leader != Some(broker) {
                continue;
            }
            let mut isr = p.isr.clone();
            if isr.len() > 1 {
                isr.retain(|r| *r != broker);
            }
            let change = PartitionChange::new(topic.id, index(i), p, eligible)
                .isr(isr)
                .election(default_election(topic));
            out.extend(change.build());
        }
    }
    out
}

/// The elections for leaderless partitions that `broker` (now eligible) could lead.
pub(crate) fn elect_leaderless(
    image: &MetadataImage,
    broker: NodeId,
    eligible: &dyn Fn(NodeId) -> bool,
) -> Vec<PartitionChangeRecord> {
    let mut out = Vec::new();
    for topic in image.topics() {
        for (i, p) in topic.partitions.iter().enumerate() {
            if p.leader.is_some() || !p.has_replica(broker) {
                continue;
            }
            let change = PartitionChange::new(topic.id, index(i), p, eligible)
                .election(default_election(topic));
            out.extend(change.build());
        }
    }
    out
}

pub(crate) fn index(i: usize) -> i32 {
    i32::try_from(i).unwrap_or(i32::MAX)
}
