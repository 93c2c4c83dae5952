//! One partition's next registration: Kafka's `PartitionChangeBuilder`, with
//! KIP-966's eligible leader replicas (ELR) always on.
//!
//! Every change to a partition (an ISR shrink or expansion, a fenced or shutting
//! down broker, a preferred or unclean election, a reassignment step) goes through
//! [`PartitionChange`], so the election rules live in one place:
//!
//! - a clean election picks the first replica, in assignment order, that is in the
//!   (target) ISR and may lead (registered, unfenced, not shutting down) — never a
//!   replica that may miss committed records;
//! - with an empty ISR, an ELR member that may lead is as good: it becomes the
//!   whole ISR;
//! - with the ISR and the ELR both empty, the last known leader (the last ISR
//!   member, kept in LastKnownElr when the ISR emptied) may lead again, alone;
//! - with none of those the partition has no leader (-1), unless the topic allows
//!   unclean elections, which then pick the first live replica and make it the
//!   whole ISR (leader recovery state RECOVERING, as in Kafka);
//! - a current leader that may still lead keeps leading, except in a preferred
//!   election, which moves leadership to the first replica when that one may lead.
//!
//! # Eligible leader replicas
//!
//! A leader advances the high watermark only while the ISR has at least the
//! topic's effective `min.insync.replicas` (the config capped by the replica
//! count). So when the ISR drops below it, every replica that was in the ISR holds
//! every committed record: those leaving it join the ELR instead of being
//! forgotten, and one of them may lead when no ISR member can, where Kafka before
//! KIP-966 would keep the partition offline. Hence, with the ISR below the minimum:
//! ELR = (ELR ∪ old ISR) − new ISR − excluded replicas; at or above the minimum the
//! ELR is empty. ISR members are never in the ELR; a replica leaving the replica
//! set leaves the ELR; a broker that restarted after an unclean shutdown (its log
//! may have lost a suffix) or unregistered is excluded. With ELR on, the ISR may
//! become empty (Kafka keeps the last member in it otherwise).
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

/// The topic config the ELR follows.
pub(crate) const MIN_INSYNC_REPLICAS: &str = "min.insync.replicas";

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

/// The topic's effective `min.insync.replicas`, as Kafka's controller computes it:
/// the topic override, else `default` (the broker's), capped by the replication
/// factor, so the ELR matches the high-watermark rule of the data plane.
pub(crate) fn effective_min_isr(topic: &TopicImage, default: i32) -> usize {
    let configured = topic
        .configs
        .get(MIN_INSYNC_REPLICAS)
        .and_then(|v| v.trim().parse::<i32>().ok())
        .unwrap_or(default);
    let configured = usize::try_from(configured.max(1)).unwrap_or(1);
    configured.min(topic.replication_factor().max(1))
}

/// The outcome of an election.
struct Elected {
    /// The leader (`None` for none).
    leader: Option<NodeId>,
    /// The ISR after the election.
    isr: Vec<NodeId>,
    /// The ELR after the election.
    elr: Vec<NodeId>,
    /// Whether the leader came from outside the ISR and the ELR without consent
    /// being implied (RECOVERING; the ELR is forgotten, as in Kafka).
    unclean: bool,
}

/// A proposed change to one partition; see the module docs.
pub(crate) struct PartitionChange<'a> {
    topic_id: Uuid,
    partition: i32,
    current: &'a PartitionImage,
    /// Whether a broker may lead or join an ISR.
    eligible: &'a dyn Fn(NodeId) -> bool,
    /// The topic's effective `min.insync.replicas` ([`effective_min_isr`]).
    min_isr: usize,
    isr: Vec<NodeId>,
    replicas: Vec<NodeId>,
    adding: Vec<NodeId>,
    removing: Vec<NodeId>,
    /// Replicas that may not stay in or join the ELR.
    excluded: Vec<NodeId>,
    election: Election,
}

impl<'a> PartitionChange<'a> {
    /// A change of partition `partition` of `topic_id`, currently `current`, that
    /// changes nothing yet. `eligible` says which brokers may lead; `min_isr` is the
    /// topic's [`effective_min_isr`].
    pub(crate) fn new(
        topic_id: Uuid,
        partition: i32,
        current: &'a PartitionImage,
        eligible: &'a dyn Fn(NodeId) -> bool,
        min_isr: usize,
    ) -> Self {
        PartitionChange {
            topic_id,
            partition,
            current,
            eligible,
            min_isr,
            isr: current.isr.clone(),
            replicas: current.replicas.clone(),
            adding: current.adding_replicas.clone(),
            removing: current.removing_replicas.clone(),
            excluded: Vec::new(),
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

    /// Takes `node` out of the ELR (and keeps it out): its log may lack committed
    /// records (an unclean shutdown), or it is gone (unregistered).
    pub(crate) fn exclude_from_elr(mut self, node: NodeId) -> Self {
        self.excluded.push(node);
        self
    }

    /// Sets how the leader is chosen.
    pub(crate) fn election(mut self, election: Election) -> Self {
        self.election = election;
        self
    }

    /// The ELR before the election: see "Eligible leader replicas" in the module
    /// docs. Members keep their order, newcomers follow in ISR order, so a change
    /// that only reorders replicas writes no ELR.
    fn target_elr(&self) -> Vec<NodeId> {
        if self.isr.len() >= self.min_isr {
            return Vec::new();
        }
        let mut elr: Vec<NodeId> = Vec::new();
        for r in self.current.elr.iter().chain(&self.current.isr) {
            let keep = self.replicas.contains(r)
                && !self.isr.contains(r)
                && !self.excluded.contains(r)
                && !elr.contains(r);
            if keep {
                elr.push(*r);
            }
        }
        elr
    }

    /// Whether `n` may become (or stay) the leader: eligible, and in the ISR, or in
    /// the ELR when the ISR is empty.
    fn may_lead(&self, n: NodeId, elr: &[NodeId]) -> bool {
        (self.eligible)(n) && (self.isr.contains(&n) || (self.isr.is_empty() && elr.contains(&n)))
    }

    /// The last known leader, when it may lead again: the ISR and ELR are empty
    /// and LastKnownElr names one eligible replica. An unclean shutdown does not
    /// disqualify it: it was the last replica to hold every committed record, and
    /// without it the partition could only stay offline or elect a worse replica
    /// (Kafka's "balanced recovery" with the last known leader).
    fn last_known_leader(&self, elr: &[NodeId]) -> Option<NodeId> {
        match self.current.last_known_elr.as_slice() {
            [l] if self.isr.is_empty()
                && elr.is_empty()
                && self.replicas.contains(l)
                && (self.eligible)(*l) =>
            {
                Some(*l)
            }
            _ => None,
        }
    }

    /// The election; see the module docs.
    fn elect(&self) -> Elected {
        let elr = self.target_elr();
        let keep = |leader: Option<NodeId>, isr: Vec<NodeId>, elr: Vec<NodeId>| Elected {
            leader,
            isr,
            elr,
            unclean: false,
        };
        let chosen = |l: NodeId| {
            if self.isr.contains(&l) {
                keep(Some(l), self.isr.clone(), elr.clone())
            } else {
                // From the ELR: it becomes the ISR and leaves the ELR.
                let rest = elr.iter().copied().filter(|r| *r != l).collect();
                keep(Some(l), vec![l], rest)
            }
        };
        if self.election == Election::Preferred {
            if let Some(p) = self.replicas.first().copied() {
                if self.may_lead(p, &elr) {
                    return chosen(p);
                }
            }
        }
        if let Some(l) = self.current.leader {
            if self.replicas.contains(&l) && self.may_lead(l, &elr) {
                return chosen(l);
            }
        }
        if let Some(l) = self
            .replicas
            .iter()
            .copied()
            .find(|n| self.may_lead(*n, &elr))
        {
            return chosen(l);
        }
        if let Some(l) = self.last_known_leader(&elr) {
            return keep(Some(l), vec![l], Vec::new());
        }
        if self.election == Election::Unclean {
            if let Some(l) = self.replicas.iter().copied().find(|n| (self.eligible)(*n)) {
                return Elected {
                    leader: Some(l),
                    isr: vec![l],
                    elr: Vec::new(),
                    unclean: true,
                };
            }
        }
        keep(None, self.isr.clone(), elr)
    }

    /// The LastKnownElr after the change: the last leader (or, without one, the
    /// last ISR member) when the ISR becomes empty, cleared once the partition has
    /// a leader again, else unchanged (Kafka's rules).
    fn last_known_elr(&self, e: &Elected) -> Vec<NodeId> {
        let c = self.current;
        if e.isr.is_empty() && !c.isr.is_empty() {
            let last = c.leader.or_else(|| (c.isr.len() == 1).then(|| c.isr[0]));
            return last.map_or_else(|| c.last_known_elr.clone(), |l| vec![l]);
        }
        if e.leader.is_some() || e.unclean {
            return Vec::new();
        }
        c.last_known_elr
            .iter()
            .copied()
            .filter(|r| self.replicas.contains(r))
            .collect()
    }

    /// The record that makes the change, or `None` when nothing would change.
    pub(crate) fn build(self) -> Option<PartitionChangeRecord> {
        let elected = self.elect();
        let last_known_elr = self.last_known_elr(&elected);
        let c = self.current;
        let ids = |v: &[NodeId]| v.iter().map(|n| n.get()).collect::<Vec<i32>>();
        let changed = |new: &[NodeId], old: &[NodeId]| (new != old).then(|| ids(new));
        let mut record = PartitionChangeRecord {
            partition_id: self.partition,
            topic_id: self.topic_id,
            isr: changed(&elected.isr, &c.isr),
            leader: -2,
            replicas: changed(&self.replicas, &c.replicas),
            removing_replicas: changed(&self.removing, &c.removing_replicas),
            adding_replicas: changed(&self.adding, &c.adding_replicas),
            leader_recovery_state: -1,
            eligible_leader_replicas: changed(&elected.elr, &c.elr),
            last_known_elr: changed(&last_known_elr, &c.last_known_elr),
            ..PartitionChangeRecord::default()
        };
        if elected.leader != c.leader {
            record.leader = elected.leader.map_or(-1, NodeId::get);
        }
        if elected.unclean && c.leader_recovery_state != RECOVERING {
            record.leader_recovery_state = RECOVERING;
        }
        let unchanged = record.isr.is_none()
            && record.leader == -2
            && record.replicas.is_none()
            && record.removing_replicas.is_none()
            && record.adding_replicas.is_none()
            && record.eligible_leader_replicas.is_none()
            && record.last_known_elr.is_none()
            && record.leader_recovery_state == -1;
        (!unchanged).then_some(record)
    }
}

/// How far a broker leaves its partitions in [`move_away_from`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leaving {
    /// Fenced or shutting down: out of leadership and ISRs; its log is intact,
    /// so it may join (and stays in) ELRs.
    Isr,
    /// Restarted after an unclean shutdown, or unregistered: out of ELRs too.
    IsrAndElr,
}

/// The partition changes that take `broker` out of leadership and ISRs (and, with
/// [`Leaving::IsrAndElr`], ELRs). `eligible` already excludes it;
/// `min_isr_default` is the broker default of `min.insync.replicas`.
pub(crate) fn move_away_from(
    image: &MetadataImage,
    broker: NodeId,
    eligible: &dyn Fn(NodeId) -> bool,
    min_isr_default: i32,
    leaving: Leaving,
) -> Vec<PartitionChangeRecord> {
    let mut out = Vec::new();
    for topic in image.topics() {
        let min_isr = effective_min_isr(topic, min_isr_default);
        for (i, p) in topic.partitions.iter().enumerate() {
            let in_elr = leaving == Leaving::IsrAndElr && p.elr.contains(&broker);
            if !p.isr.contains(&broker) && p.leader != Some(broker) && !in_elr {
                continue;
            }
            // With ELR on, the last ISR member leaves too (it joins the ELR).
            let isr = p.isr.iter().copied().filter(|r| *r != broker).collect();
            let mut change = PartitionChange::new(topic.id, index(i), p, eligible, min_isr)
                .isr(isr)
                .election(default_election(topic));
            if leaving == Leaving::IsrAndElr {
                change = change.exclude_from_elr(broker);
            }
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
    min_isr_default: i32,
) -> Vec<PartitionChangeRecord> {
    let mut out = Vec::new();
    for topic in image.topics() {
        let min_isr = effective_min_isr(topic, min_isr_default);
        for (i, p) in topic.partitions.iter().enumerate() {
            if p.leader.is_some() || !p.has_replica(broker) {
                continue;
            }
            let change = PartitionChange::new(topic.id, index(i), p, eligible, min_isr)
                .election(default_election(topic));
            out.extend(change.build());
        }
    }
    out
}

pub(crate) fn index(i: usize) -> i32 {
    i32::try_from(i).unwrap_or(i32::MAX)
}
