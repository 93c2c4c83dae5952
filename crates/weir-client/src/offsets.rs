//! ListOffsets: the offset for a time (or the log start or end) of many partitions,
//! asked of each partition's leader. Used by the consumer to resolve seeks and
//! `auto.offset.reset`, and by the admin client.

use std::collections::BTreeMap;
use std::time::Instant;

use weir_protocol::messages::list_offsets::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use weir_types::{ErrorCode, NodeId};

use crate::cluster::{Cluster, TopicPartition};
use crate::consumer::IsolationLevel;
use crate::error::{code_needs_metadata_refresh, Error, Result};
use crate::util::backoff;

/// Which offset to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The log end offset (the high watermark; the last stable offset with
    /// read_committed).
    Latest,
    /// The first offset whose record timestamp is at or after this time (ms).
    Timestamp(i64),
}

impl OffsetSpec {
    /// The ListOffsets timestamp that asks for this (-2 earliest, -1 latest).
    pub fn wire_timestamp(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(t) => t,
        }
    }
}

/// A ListOffsets answer for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// The offset; -1 when no record has a timestamp at or after the one asked for.
    pub offset: i64,
    /// The timestamp of that record (-1 for earliest/latest).
    pub timestamp: i64,
    /// The leader epoch of the record, if the broker said.
    pub leader_epoch: Option<i32>,
}

/// Looks up offsets for `query`, retrying partitions whose leader moved until the
/// client's `default.api.timeout.ms` passes. The outer error is for a failure of
/// the whole call; each partition has its own result.
pub(crate) async fn list_offsets(
    cluster: &Cluster,
    query: &[(TopicPartition, OffsetSpec)],
    isolation: IsolationLevel,
) -> Result<Vec<(TopicPartition, Result<ListedOffset>)>> {
    let config = cluster.config().clone();
    let start = Instant::now();
    if cluster.add_topics(query.iter().map(|(tp, _)| tp.topic.as_str())) {
        let _ = cluster.refresh().await;
    }
    // One slot per query item: a partition may be asked about more than once.
    let mut done: Vec<Option<Result<ListedOffset>>> = query.iter().map(|_| None).collect();
    let mut pending: Vec<usize> = (0..query.len()).collect();
    let mut attempt = 0;
    while !pending.is_empty() {
        let mut retry: Vec<(usize, Error)> = Vec::new();
        // A request names each partition once; repeats wait for the next round.
        let mut later = Vec::new();
        let metadata = cluster.metadata();
        let mut by_node: BTreeMap<NodeId, Vec<usize>> = BTreeMap::new();
        for i in pending {
            let Some((tp, _)) = query.get(i) else {
                continue;
            };
            let unknown = metadata
                .topic(&tp.topic)
                .is_some_and(|t| t.partition(tp.partition).is_none());
            if unknown {
                let e = Error::kafka(tp.to_string(), ErrorCode::UnknownTopicOrPartition, None);
                done[i] = Some(Err(e));
                continue;
            }
            match metadata.leader(tp) {
                Some(node) => {
                    let batch = by_node.entry(node).or_default();
                    if batch.iter().any(|&j| query[j].0 == *tp) {
                        later.push(i);
                    } else {
                        batch.push(i);
                    }
                }
                None => {
                    let e = Error::kafka(tp.to_string(), ErrorCode::LeaderNotAvailable, None);
                    retry.push((i, e));
                }
            }
        }
        for (node, items) in by_node {
            let parts: Vec<(TopicPartition, OffsetSpec)> =
                items.iter().map(|&i| query[i].clone()).collect();
            match ask(cluster, node, &parts, isolation).await {
                Ok(results) => {
                    for (i, r) in items.into_iter().zip(results) {
                        match r {
                            Err(e) if e.is_retriable() => retry.push((i, e)),
                            r => done[i] = Some(r),
                        }
                    }
                }
                Err(e) if e.is_retriable() => {
                    retry.extend(items.into_iter().map(|i| (i, e.clone())));
                }
                Err(e) => return Err(e),
            }
        }
        if !retry.is_empty() && start.elapsed() >= config.api_timeout {
            for (i, e) in retry.drain(..) {
                done[i] = Some(Err(e));
            }
        }
        if !retry.is_empty() {
            cluster.request_refresh();
            tokio::time::sleep(backoff(
                config.retry_backoff,
                config.retry_backoff_max,
                attempt,
            ))
            .await;
            attempt += 1;
            let _ = cluster.maybe_refresh().await;
        }
        pending = retry.into_iter().map(|(i, _)| i).chain(later).collect();
    }
    Ok(query
        .iter()
        .zip(done)
        .map(|((tp, _), r)| {
            let r = r.unwrap_or_else(|| {
                Err(Error::kafka(
                    tp.to_string(),
                    ErrorCode::UnknownServerError,
                    None,
                ))
            });
            (tp.clone(), r)
        })
        .collect())
}

/// One ListOffsets request to `node`; results in the order of `parts`.
async fn ask(
    cluster: &Cluster,
    node: NodeId,
    parts: &[(TopicPartition, OffsetSpec)],
    isolation: IsolationLevel,
) -> Result<Vec<Result<ListedOffset>>> {
    let mut topics: Vec<ListOffsetsTopic> = Vec::new();
    for (tp, spec) in parts {
        let p = ListOffsetsPartition {
            partition_index: tp.partition,
            current_leader_epoch: -1,
            timestamp: spec.wire_timestamp(),
            max_num_offsets: 1,
        };
        match topics.iter_mut().find(|t| t.name == tp.topic) {
            Some(t) => t.partitions.push(p),
            None => topics.push(ListOffsetsTopic {
                name: tp.topic.clone(),
                partitions: vec![p],
            }),
        }
    }
    let req = ListOffsetsRequest {
        replica_id: -1,
        isolation_level: isolation.as_i8(),
        topics,
        timeout_ms: i32::try_from(cluster.config().connection.request_timeout.as_millis())
            .unwrap_or(i32::MAX),
    };
    let resp = cluster.send_to(node, req).await?;
    Ok(parts
        .iter()
        .map(|(tp, _)| {
            let p = resp
                .topics
                .iter()
                .filter(|t| t.name == tp.topic)
                .flat_map(|t| t.partitions.iter())
                .find(|p| p.partition_index == tp.partition);
            let Some(p) = p else {
                return Err(Error::Protocol {
                    addr: format!("broker {node}"),
                    reason: format!("the ListOffsets response has no result for {tp}"),
                });
            };
            let code = ErrorCode::from_code(p.error_code);
            if !code.is_ok() {
                if code_needs_metadata_refresh(code) {
                    cluster.request_refresh();
                }
                return Err(Error::kafka(tp.to_string(), code, None));
            }
            Ok(ListedOffset {
                offset: p.offset,
                timestamp: p.timestamp,
                leader_epoch: (p.leader_epoch >= 0).then_some(p.leader_epoch),
            })
        })
        .collect())
}
