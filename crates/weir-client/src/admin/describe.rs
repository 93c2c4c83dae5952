//! Describing topics: DescribeTopicPartitions (KIP-966) where the broker serves
//! it, Metadata otherwise.
//!
//! DescribeTopicPartitions is what Kafka's own admin client uses from 3.7: it is
//! the only API that reports the eligible leader replicas, and it pages, so a topic
//! with many partitions may come over several responses, which are merged here.

use std::collections::BTreeMap;

use weir_protocol::messages::describe_topic_partitions::{
    DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponseTopic, TopicRequest,
};
use weir_protocol::messages::metadata::MetadataResponseTopic;
use weir_protocol::Uuid;
use weir_types::{ErrorCode, NodeId};

use super::{Admin, ItemResults, PartitionDescription, TopicDescription};
use crate::connection::Connection;
use crate::error::{Error, Result};

/// Partitions asked for per DescribeTopicPartitions response (Kafka's default).
const PARTITIONS_PER_PAGE: i32 = 2000;

/// The most pages one describe follows: each page brings at least one partition,
/// so this bounds a misbehaving broker's cursor loop, not a real cluster.
const MAX_PAGES: usize = 10_000;

impl Admin {
    /// Partitions, leaders, replicas, ISR and (from brokers that serve
    /// DescribeTopicPartitions) eligible leader replicas of the named topics.
    pub async fn describe_topics(
        &self,
        names: &[String],
    ) -> Result<ItemResults<String, TopicDescription>> {
        self.retry_items(names.to_vec(), |pending| async move {
            let conn = self.cluster.any_connection().await?;
            if conn.version_of::<DescribeTopicPartitionsRequest>().is_ok() {
                return self.describe_paged(&conn, pending).await;
            }
            let resp = self.metadata(Some(pending)).await?;
            Ok(resp
                .topics
                .into_iter()
                .map(describe_metadata_topic)
                .collect())
        })
        .await
    }

    /// DescribeTopicPartitions for `names`, following the cursor to the end.
    async fn describe_paged(
        &self,
        conn: &Connection,
        names: Vec<String>,
    ) -> Result<ItemResults<String, TopicDescription>> {
        let mut topics: BTreeMap<String, DescribeTopicPartitionsResponseTopic> = BTreeMap::new();
        let mut cursor = None;
        for _ in 0..MAX_PAGES {
            let req = DescribeTopicPartitionsRequest {
                topics: names
                    .iter()
                    .map(|n| TopicRequest { name: n.clone() })
                    .collect(),
                response_partition_limit: PARTITIONS_PER_PAGE,
                cursor: cursor.take(),
            };
            let resp = self.cluster.send_on(conn, req).await?;
            for t in resp.topics {
                let name = t.name.clone().unwrap_or_default();
                match topics.get_mut(&name) {
                    Some(seen) => seen.partitions.extend(t.partitions),
                    None => {
                        topics.insert(name, t);
                    }
                }
            }
            cursor = resp.next_cursor;
            if cursor.is_none() {
                return Ok(names
                    .into_iter()
                    .map(|n| match topics.remove(&n) {
                        Some(t) => (n, describe_partitions(t)),
                        None => {
                            let e = Error::kafka(
                                format!("topic {n}"),
                                ErrorCode::UnknownTopicOrPartition,
                                None,
                            );
                            (n, Err(e))
                        }
                    })
                    .collect());
            }
        }
        Err(Error::kafka(
            "DescribeTopicPartitions",
            ErrorCode::UnknownServerError,
            Some(format!(
                "the broker's cursor did not end after {MAX_PAGES} pages"
            )),
        ))
    }
}

fn nodes(ids: Vec<i32>) -> Vec<NodeId> {
    ids.into_iter().map(NodeId).collect()
}

/// A DescribeTopicPartitions topic as a description, or its error.
fn describe_partitions(t: DescribeTopicPartitionsResponseTopic) -> Result<TopicDescription> {
    let partitions = t
        .partitions
        .into_iter()
        .map(|p| PartitionDescription {
            eligible_leader_replicas: nodes(p.eligible_leader_replicas.unwrap_or_default()),
            last_known_elr: nodes(p.last_known_elr.unwrap_or_default()),
            ..partition_description(
                p.partition_index,
                p.leader_id,
                p.leader_epoch,
                [p.replica_nodes, p.isr_nodes, p.offline_replicas],
            )
        })
        .collect();
    let name = t.name.unwrap_or_default();
    description(name, t.error_code, t.topic_id, t.is_internal, partitions)
}

/// A topic of a Metadata response as a description, or its error: for callers
/// that send Metadata themselves (to one chosen broker, say) and want what
/// [`Admin::describe_topics`](super::Admin::describe_topics) returns, less the
/// eligible leader replicas (Metadata does not carry them).
pub fn describe_metadata_topic(t: MetadataResponseTopic) -> (String, Result<TopicDescription>) {
    let partitions = t
        .partitions
        .into_iter()
        .map(|p| {
            partition_description(
                p.partition_index,
                p.leader_id,
                p.leader_epoch,
                [p.replica_nodes, p.isr_nodes, p.offline_replicas],
            )
        })
        .collect();
    let name = t.name.unwrap_or_default();
    let d = description(
        name.clone(),
        t.error_code,
        t.topic_id,
        t.is_internal,
        partitions,
    );
    (name, d)
}

/// What both responses carry per partition; no eligible leader replicas (only
/// DescribeTopicPartitions has them).
fn partition_description(
    partition: i32,
    leader_id: i32,
    leader_epoch: i32,
    [replicas, isr, offline]: [Vec<i32>; 3],
) -> PartitionDescription {
    PartitionDescription {
        partition,
        leader: (leader_id >= 0).then_some(NodeId(leader_id)),
        leader_epoch,
        replicas: nodes(replicas),
        isr: nodes(isr),
        offline_replicas: nodes(offline),
        eligible_leader_replicas: Vec::new(),
        last_known_elr: Vec::new(),
    }
}

/// What both responses carry per topic, checked: the topic's error, or its
/// partitions in order, each once (a broker listing one twice is not believed twice).
fn description(
    name: String,
    error_code: i16,
    topic_id: Uuid,
    is_internal: bool,
    mut partitions: Vec<PartitionDescription>,
) -> Result<TopicDescription> {
    let code = ErrorCode::from_code(error_code);
    if !code.is_ok() {
        return Err(Error::kafka(format!("topic {name}"), code, None));
    }
    partitions.sort_by_key(|p| p.partition);
    partitions.dedup_by_key(|p| p.partition);
    Ok(TopicDescription {
        name,
        topic_id,
        is_internal,
        partitions,
    })
}
