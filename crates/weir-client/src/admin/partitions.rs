//! Partition-level admin calls: leader elections and replica moves, which the
//! controller runs (ElectLeaders, AlterPartitionReassignments,
//! ListPartitionReassignments). Any broker forwards them to the active controller.

use weir_protocol::messages::alter_partition_reassignments::{
    AlterPartitionReassignmentsRequest, ReassignablePartition, ReassignableTopic,
};
use weir_protocol::messages::elect_leaders::{ElectLeadersRequest, TopicPartitions};
use weir_protocol::messages::list_partition_reassignments::{
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsTopics,
};
use weir_types::{ErrorCode, NodeId};

use super::{group_partitions, Admin, ElectionType, ItemResults, PartitionReassignment};
use crate::cluster::TopicPartition;
use crate::error::{Error, Result};

impl Admin {
    /// Runs leader elections (ElectLeaders) for `partitions`, or for every
    /// partition with `None`; then only the partitions where an election was tried
    /// are listed. A partition whose preferred replica leads already fails with
    /// ELECTION_NOT_NEEDED; one whose preferred replica is out of the ISR with
    /// PREFERRED_LEADER_NOT_AVAILABLE.
    pub async fn elect_leaders(
        &self,
        election: ElectionType,
        partitions: Option<Vec<TopicPartition>>,
    ) -> Result<ItemResults<TopicPartition, ()>> {
        let send = |pending: Option<Vec<TopicPartition>>| async move {
            let conn = self.cluster.controller_connection().await?;
            let version = conn.version_of::<ElectLeadersRequest>()?;
            if version == 0 && election != ElectionType::Preferred {
                return Err(Error::kafka(
                    "ElectLeaders",
                    ErrorCode::UnsupportedVersion,
                    Some("the broker only runs preferred elections (ElectLeaders v0)".into()),
                ));
            }
            let req = ElectLeadersRequest {
                election_type: election.as_i8(),
                topic_partitions: pending.map(|ps| {
                    group_partitions(ps)
                        .into_iter()
                        .map(|(topic, partitions)| TopicPartitions { topic, partitions })
                        .collect()
                }),
                timeout_ms: self.timeout_ms(),
            };
            let resp = conn.send_versioned(req, version).await?;
            Error::check(|| "ElectLeaders".into(), resp.error_code, None)?;
            Ok(resp
                .replica_election_results
                .into_iter()
                .flat_map(|t| {
                    let topic = t.topic;
                    t.partition_result.into_iter().map(move |p| {
                        let tp = TopicPartition::new(topic.clone(), p.partition_id);
                        partition_result(tp, p.error_code, p.error_message.as_deref())
                    })
                })
                .collect())
        };
        match partitions {
            Some(ps) => self.retry_items(ps, |pending| send(Some(pending))).await,
            None => self.retry_call(|| send(None)).await,
        }
    }

    /// Starts, changes or cancels replica moves (AlterPartitionReassignments):
    /// each partition to its target replicas, or `None` to cancel its move. With
    /// `allow_replication_factor_change` false (KIP-860, v1+), a target that would
    /// change a partition's replication factor fails with INVALID_REPLICATION_FACTOR;
    /// a broker without v1 fails the call with UNSUPPORTED_VERSION then, as Kafka's
    /// client does.
    pub async fn alter_partition_reassignments(
        &self,
        reassignments: Vec<(TopicPartition, Option<Vec<i32>>)>,
        allow_replication_factor_change: bool,
    ) -> Result<ItemResults<TopicPartition, ()>> {
        let partitions: Vec<TopicPartition> =
            reassignments.iter().map(|(tp, _)| tp.clone()).collect();
        self.retry_items(partitions, |pending| {
            let mut topics: Vec<ReassignableTopic> = Vec::new();
            for (tp, replicas) in reassignments.iter().filter(|(tp, _)| pending.contains(tp)) {
                let partition = ReassignablePartition {
                    partition_index: tp.partition,
                    replicas: replicas.clone(),
                };
                match topics.iter_mut().find(|t| t.name == tp.topic) {
                    Some(t) => t.partitions.push(partition),
                    None => topics.push(ReassignableTopic {
                        name: tp.topic.clone(),
                        partitions: vec![partition],
                    }),
                }
            }
            let req = AlterPartitionReassignmentsRequest {
                timeout_ms: self.timeout_ms(),
                allow_replication_factor_change,
                topics,
            };
            async move {
                let conn = self.cluster.controller_connection().await?;
                let version = conn.version_of::<AlterPartitionReassignmentsRequest>()?;
                if version == 0 && !allow_replication_factor_change {
                    return Err(Error::kafka(
                        "AlterPartitionReassignments",
                        ErrorCode::UnsupportedVersion,
                        Some("the broker cannot refuse replication factor changes (v0)".into()),
                    ));
                }
                let resp = self.cluster.send_on(&conn, req).await?;
                Error::check(
                    || "AlterPartitionReassignments".into(),
                    resp.error_code,
                    resp.error_message.as_deref(),
                )?;
                Ok(resp
                    .responses
                    .into_iter()
                    .flat_map(|t| {
                        let topic = t.name;
                        t.partitions.into_iter().map(move |p| {
                            let tp = TopicPartition::new(topic.clone(), p.partition_index);
                            partition_result(tp, p.error_code, p.error_message.as_deref())
                        })
                    })
                    .collect())
            }
        })
        .await
    }

    /// The replica moves in progress (ListPartitionReassignments) among
    /// `partitions`, or all of them with `None`. Partitions without one are not
    /// listed.
    pub async fn list_partition_reassignments(
        &self,
        partitions: Option<Vec<TopicPartition>>,
    ) -> Result<Vec<(TopicPartition, PartitionReassignment)>> {
        let nodes = |ids: Vec<i32>| ids.into_iter().map(NodeId).collect();
        self.retry_call(|| {
            let req = ListPartitionReassignmentsRequest {
                timeout_ms: self.timeout_ms(),
                topics: partitions.clone().map(|ps| {
                    group_partitions(ps)
                        .into_iter()
                        .map(
                            |(name, partition_indexes)| ListPartitionReassignmentsTopics {
                                name,
                                partition_indexes,
                            },
                        )
                        .collect()
                }),
            };
            async move {
                let conn = self.cluster.controller_connection().await?;
                let resp = self.cluster.send_on(&conn, req).await?;
                Error::check(
                    || "ListPartitionReassignments".into(),
                    resp.error_code,
                    resp.error_message.as_deref(),
                )?;
                Ok(resp
                    .topics
                    .into_iter()
                    .flat_map(|t| {
                        let topic = t.name;
                        t.partitions.into_iter().map(move |p| {
                            let reassignment = PartitionReassignment {
                                replicas: nodes(p.replicas),
                                adding_replicas: nodes(p.adding_replicas),
                                removing_replicas: nodes(p.removing_replicas),
                            };
                            (
                                TopicPartition::new(topic.clone(), p.partition_index),
                                reassignment,
                            )
                        })
                    })
                    .collect())
            }
        })
        .await
    }
}

/// One partition's outcome in a per-partition response.
fn partition_result(
    tp: TopicPartition,
    code: i16,
    message: Option<&str>,
) -> (TopicPartition, Result<()>) {
    let r = Error::check(|| format!("partition {tp}"), code, message);
    (tp, r)
}
