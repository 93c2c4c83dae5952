//! Sending ISR changes to the controller, and the periodic lag check.
//!
//! A leader never changes the ISR on its own authority: it proposes the new set
//! with the leader and partition epochs it knows (Kafka's AlterPartition), and the
//! controller accepts it (a new partition epoch) or refuses it (a stale epoch, a
//! replica that may not join). [`IsrChannel`] is that call; the composition root
//! wires it to the controller (`weir_metadata::Controller::alter_partition`), tests
//! to a fake. At most one proposal per partition is in flight (`leader.rs`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use weir_protocol::Uuid;
use weir_types::{ErrorCode, LeaderEpoch, NodeId};

use super::manager::ReplicaManager;
use super::partition::Partition;

/// A boxed future, for the object-safe seams of the replica layer.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A proposed ISR change (Kafka's AlterPartition for one partition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterIsr {
    /// The topic id.
    pub topic_id: Uuid,
    /// The topic name (for logs; the controller keys by id).
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The leader epoch the leader is in (a stale leader is refused).
    pub leader_epoch: LeaderEpoch,
    /// The partition epoch the proposal is based on (a stale proposal is refused
    /// with INVALID_UPDATE_VERSION).
    pub partition_epoch: i32,
    /// The proposed ISR, leader included.
    pub new_isr: Vec<NodeId>,
}

/// The controller's acceptance of an [`AlterIsr`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrUpdate {
    /// The ISR now in force.
    pub isr: Vec<NodeId>,
    /// The leader epoch (unchanged by an ISR change).
    pub leader_epoch: LeaderEpoch,
    /// The new partition epoch.
    pub partition_epoch: i32,
}

/// The way to the controller for ISR changes; see the module docs.
pub trait IsrChannel: Send + Sync + 'static {
    /// Proposes `request`; the accepted registration, or the Kafka error the
    /// controller answered (FENCED_LEADER_EPOCH, INVALID_UPDATE_VERSION,
    /// NOT_CONTROLLER, INELIGIBLE_REPLICA, ...).
    fn alter_partition(
        &self,
        request: AlterIsr,
    ) -> BoxFuture<'static, Result<IsrUpdate, ErrorCode>>;
}

impl ReplicaManager {
    /// Sends `request` for `p` and applies the answer, in the background. Without
    /// a channel (single node) the proposal is dropped with a warning.
    pub(crate) fn send_isr_change(&self, p: Arc<Partition>, request: AlterIsr) {
        let Some(channel) = self.links().map(|l| Arc::clone(&l.isr)) else {
            tracing::warn!(partition = %p.name(), "no controller channel for ISR changes");
            p.apply_isr_update(&request, Err(ErrorCode::NotController));
            return;
        };
        let cancel = self.shared.cancel.clone();
        self.shared.tasks.spawn(async move {
            let reply = tokio::select! {
                _ = cancel.cancelled() => return,
                reply = channel.alter_partition(request.clone()) => reply,
            };
            p.apply_isr_update(&request, reply);
        });
    }

    /// Every `replica.lag.time.max.ms / 2`, proposes removing lagging members from
    /// the ISR of every partition led here (Kafka's `isr-expiration` task).
    pub(crate) fn spawn_isr_shrinker(&self) {
        let m = self.clone();
        let lag = self.shared.config.replica_lag_time_max;
        let period = (lag / 2).max(std::time::Duration::from_millis(1));
        self.shared.tasks.spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = m.shared.cancel.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let node = m.shared.config.node_id;
                for p in m.all_partitions() {
                    if let Some(request) = p.isr_to_shrink(lag, node) {
                        m.send_isr_change(p, request);
                    }
                }
            }
        });
    }
}
