//! Replica fetchers: one task per leader broker, pulling every partition this
//! broker follows from it (Kafka's `ReplicaFetcherThread`, with
//! `num.replica.fetchers` = 1).
//!
//! Each round the fetcher looks at the hosted partitions (so role changes from the
//! metadata need no bookkeeping here): partitions still to truncate in their leader
//! epoch get an OffsetForLeaderEpoch (`follower.rs`), the others one Fetch at their
//! log end with their leader epoch (a stale leader answers FENCED_LEADER_EPOCH).
//! Partition errors set that partition aside for `replica.fetch.backoff.ms`, or
//! until a newer metadata image is applied (the answer to NOT_LEADER_OR_FOLLOWER
//! and the epoch errors); a transport error backs the whole fetcher off. A fetcher
//! whose leader leads nothing this broker follows ends; [`ReplicaManager::apply`]
//! starts fetchers for new leaders.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError};

use tokio::time::Instant;
use weir_types::{ErrorCode, NodeId};

use super::fetch::FetchPartition;
use super::follower::FollowerView;
use super::leader_client::{EpochQuery, LeaderClient, ReplicaFetch};
use super::manager::ReplicaManager;
use super::partition::Partition;

/// A followed partition in one round.
type Followed = (Arc<Partition>, FollowerView);

impl ReplicaManager {
    /// Starts a fetcher for every leader of a partition this broker follows that
    /// has none. Called after each [`ReplicaManager::apply`]; does nothing before
    /// [`ReplicaManager::start_replication`].
    pub(crate) fn reconcile_fetchers(&self) {
        if self.links().is_none() || self.is_shutting_down() {
            return;
        }
        let leaders: Vec<NodeId> = self
            .all_partitions()
            .iter()
            .filter_map(|p| p.follower_view().map(|v| v.leader))
            .collect();
        let mut running = self
            .shared
            .fetchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for leader in leaders {
            if running.insert(leader) {
                tracing::info!(leader = leader.get(), "starting replica fetcher");
                let m = self.clone();
                self.shared
                    .tasks
                    .spawn(async move { m.run_fetcher(leader).await });
            }
        }
    }

    fn followed_from(&self, leader: NodeId) -> Vec<Followed> {
        self.all_partitions()
            .into_iter()
            .filter_map(|p| {
                let v = p.follower_view()?;
                (v.leader == leader).then_some((p, v))
            })
            .collect()
    }

    /// The fetcher loop for `leader`; see the module docs.
    async fn run_fetcher(&self, leader: NodeId) {
        let Some(client) = self.links().map(|l| Arc::clone(&l.leaders)) else {
            return;
        };
        let config = &self.shared.config;
        let mut applied = self.shared.applied.subscribe();
        let mut set_aside: HashMap<(String, i32), Instant> = HashMap::new();
        loop {
            if self.is_shutting_down() {
                return;
            }
            let followed = self.followed_from(leader);
            if followed.is_empty() {
                let mut running = self
                    .shared
                    .fetchers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                // Checked again under the lock `reconcile_fetchers` takes, so a
                // partition moving to this leader meanwhile is not missed.
                if self.followed_from(leader).is_empty() {
                    running.remove(&leader);
                    tracing::info!(
                        leader = leader.get(),
                        "replica fetcher stopped: nothing to follow"
                    );
                    return;
                }
                continue;
            }
            let now = Instant::now();
            set_aside.retain(|_, until| *until > now);
            let ready: Vec<Followed> = followed
                .into_iter()
                .filter(|(p, _)| !set_aside.contains_key(&(p.topic.clone(), p.index)))
                .collect();
            if ready.is_empty() {
                let until = set_aside
                    .values()
                    .min()
                    .copied()
                    .unwrap_or(now + config.replica_fetch_backoff);
                tokio::select! {
                    _ = self.shutdown_token().cancelled() => return,
                    _ = tokio::time::sleep_until(until) => {}
                    _ = applied.changed() => set_aside.clear(),
                }
                continue;
            }
            let (truncate, fetch): (Vec<Followed>, Vec<Followed>) =
                ready.into_iter().partition(|(_, v)| v.needs_truncation);
            let round = if truncate.is_empty() {
                self.fetch_round(client.as_ref(), leader, fetch, &mut set_aside)
                    .await
            } else {
                self.truncate_round(client.as_ref(), leader, truncate, &mut set_aside)
                    .await
            };
            if let Err(e) = round {
                tracing::warn!(leader = leader.get(), error = %e, "replica fetch failed; backing off");
                tokio::select! {
                    _ = self.shutdown_token().cancelled() => return,
                    _ = tokio::time::sleep(config.replica_fetch_backoff) => {}
                }
            }
        }
    }

    /// Sets `p` aside after a partition error; see the module docs.
    fn set_aside(
        &self,
        set_aside: &mut HashMap<(String, i32), Instant>,
        p: &Partition,
        code: ErrorCode,
    ) {
        tracing::debug!(partition = %p.name(), error = ?code, "replica fetch: partition error");
        set_aside.insert(
            (p.topic.clone(), p.index),
            Instant::now() + self.shared.config.replica_fetch_backoff,
        );
    }

    async fn truncate_round(
        &self,
        client: &dyn LeaderClient,
        leader: NodeId,
        partitions: Vec<Followed>,
        set_aside: &mut HashMap<(String, i32), Instant>,
    ) -> Result<(), super::ReplicaError> {
        let node = self.shared.config.node_id;
        let (empty, asking): (Vec<Followed>, Vec<Followed>) = partitions
            .into_iter()
            .partition(|(_, v)| v.latest_epoch.is_none());
        for (p, v) in empty {
            if let Err(code) = p.truncation_step(v.leader_epoch, None) {
                self.set_aside(set_aside, &p, code);
            }
        }
        if asking.is_empty() {
            return Ok(());
        }
        let queries = asking
            .iter()
            .map(|(p, v)| EpochQuery {
                topic: p.topic.clone(),
                partition: p.index,
                current_leader_epoch: v.leader_epoch,
                leader_epoch: v.latest_epoch.unwrap_or_default(),
            })
            .collect();
        let answers = tokio::select! {
            _ = self.shutdown_token().cancelled() => return Ok(()),
            a = client.offset_for_leader_epoch(leader, node, queries) => a?,
        };
        for ((p, v), answer) in asking.iter().zip(answers) {
            if let Err(code) = p.truncation_step(v.leader_epoch, Some(answer)) {
                self.set_aside(set_aside, p, code);
            }
        }
        Ok(())
    }

    async fn fetch_round(
        &self,
        client: &dyn LeaderClient,
        leader: NodeId,
        partitions: Vec<Followed>,
        set_aside: &mut HashMap<(String, i32), Instant>,
    ) -> Result<(), super::ReplicaError> {
        let config = &self.shared.config;
        let request = ReplicaFetch {
            replica_id: config.node_id,
            max_wait: config.replica_fetch_wait_max,
            min_bytes: config.replica_fetch_min_bytes,
            max_bytes: config.replica_fetch_response_max_bytes,
            partitions: partitions
                .iter()
                .map(|(p, v)| FetchPartition {
                    topic: p.topic.clone(),
                    partition: p.index,
                    fetch_offset: v.log_end_offset,
                    partition_max_bytes: config.replica_fetch_max_bytes,
                    current_leader_epoch: v.leader_epoch,
                    same_rack_replicas: Vec::new(),
                })
                .collect(),
        };
        let fetched = tokio::select! {
            _ = self.shutdown_token().cancelled() => return Ok(()),
            f = client.fetch(leader, request) => f?,
        };
        for ((p, v), got) in partitions.iter().zip(fetched) {
            match p.apply_fetched(v.leader_epoch, got) {
                Ok(()) => {}
                Err(ErrorCode::OffsetOutOfRange) => {
                    let query = EpochQuery {
                        topic: p.topic.clone(),
                        partition: p.index,
                        current_leader_epoch: v.leader_epoch,
                        leader_epoch: v.leader_epoch,
                    };
                    match client.log_start_offset(leader, config.node_id, query).await {
                        Ok(start) => p.reset_out_of_range(v.leader_epoch, start),
                        Err(e) => {
                            tracing::warn!(partition = %p.name(), error = %e, "cannot read the leader's log start");
                            self.set_aside(set_aside, p, ErrorCode::OffsetOutOfRange);
                        }
                    }
                }
                Err(code) => self.set_aside(set_aside, p, code),
            }
        }
        Ok(())
    }
}
