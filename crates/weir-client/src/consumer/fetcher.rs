//! Fetch requests: one per broker at a time, sent in the background so the next
//! response is usually waiting by the time the application asks for more.
//!
//! Full (sessionless) fetches: session id 0 and epoch -1 (`FINAL_EPOCH`), which
//! every broker since Kafka 1.1 accepts; incremental sessions (KIP-227) can be added
//! here without touching the consumer. Topics are named by id from Fetch v13 when the
//! metadata has ids for all of them, and by name (v12 at most) otherwise.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use weir_protocol::messages::fetch::{
    AbortedTransaction, FetchPartition, FetchRequest, FetchResponse, FetchTopic, ReplicaState,
};
use weir_protocol::Uuid;
use weir_types::{ErrorCode, NodeId};

use super::config::ConsumerConfig;
use crate::cluster::{Cluster, TopicPartition};
use crate::error::{Error, Result};

/// The last Fetch version that names topics instead of ids.
const LAST_VERSION_WITH_NAMES: i16 = 12;

/// A partition in a fetch, with what is needed to recognise a stale answer.
#[derive(Debug, Clone)]
pub(crate) struct FetchTarget {
    pub(crate) tp: TopicPartition,
    pub(crate) topic_id: Uuid,
    pub(crate) offset: i64,
    pub(crate) leader_epoch: i32,
    /// The partition's seek generation when the fetch was built.
    pub(crate) generation: u64,
}

/// A fetch that finished.
#[derive(Debug)]
pub(crate) struct FetchEvent {
    pub(crate) node: NodeId,
    pub(crate) targets: Vec<FetchTarget>,
    pub(crate) result: Result<(FetchResponse, i16)>,
}

/// One partition's part of a fetch response.
#[derive(Debug)]
pub(crate) enum PartitionOutcome {
    /// Data (possibly none) and the partition's offsets.
    Data {
        records: Option<Bytes>,
        aborted: Option<Vec<AbortedTransaction>>,
        high_watermark: i64,
        last_stable_offset: i64,
        log_start_offset: i64,
    },
    /// The partition's error.
    Error(ErrorCode),
}

/// The request settings a fetch needs from the consumer's config.
#[derive(Debug, Clone)]
pub(crate) struct FetchParams {
    max_wait_ms: i32,
    min_bytes: i32,
    max_bytes: i32,
    partition_max_bytes: i32,
    isolation_level: i8,
    rack: String,
    max_wait: Duration,
}

impl FetchParams {
    pub(crate) fn new(c: &ConsumerConfig) -> Self {
        FetchParams {
            max_wait_ms: i32::try_from(c.fetch_max_wait.as_millis()).unwrap_or(i32::MAX),
            min_bytes: c.fetch_min_bytes,
            max_bytes: c.fetch_max_bytes,
            partition_max_bytes: c.max_partition_fetch_bytes,
            isolation_level: c.isolation_level.as_i8(),
            rack: c.client_rack.clone(),
            max_wait: c.fetch_max_wait,
        }
    }
}

/// Sends a fetch for `targets` to `node` in the background; the outcome arrives on
/// `tx`.
pub(crate) fn spawn_fetch(
    cluster: Cluster,
    node: NodeId,
    targets: Vec<FetchTarget>,
    params: FetchParams,
    tx: mpsc::UnboundedSender<FetchEvent>,
) {
    tokio::spawn(async move {
        let result = fetch(&cluster, node, &targets, &params).await;
        if let Err(e) = &result {
            if e.needs_metadata_refresh() {
                cluster.request_refresh();
            }
        }
        let _ = tx.send(FetchEvent {
            node,
            targets,
            result,
        });
    });
}

async fn fetch(
    cluster: &Cluster,
    node: NodeId,
    targets: &[FetchTarget],
    params: &FetchParams,
) -> Result<(FetchResponse, i16)> {
    let conn = cluster.connection(node).await?;
    let mut version = conn.version_of::<FetchRequest>()?;
    if targets.iter().any(|t| t.topic_id == Uuid::ZERO) {
        version = version.min(LAST_VERSION_WITH_NAMES);
    }
    let req = build_request(targets, params, version);
    let response = conn.enqueue(&req, version, Some(params.max_wait))?;
    Ok((response.await?, version))
}

fn build_request(targets: &[FetchTarget], p: &FetchParams, version: i16) -> FetchRequest {
    let by_id = version > LAST_VERSION_WITH_NAMES;
    let mut topics: Vec<FetchTopic> = Vec::new();
    for t in targets {
        let part = FetchPartition {
            partition: t.tp.partition,
            current_leader_epoch: t.leader_epoch,
            fetch_offset: t.offset,
            last_fetched_epoch: -1,
            log_start_offset: -1,
            partition_max_bytes: p.partition_max_bytes,
            replica_directory_id: Uuid::ZERO,
        };
        match topics.iter_mut().find(|f| f.topic == t.tp.topic) {
            Some(f) => f.partitions.push(part),
            None => topics.push(FetchTopic {
                topic: t.tp.topic.clone(),
                topic_id: if by_id { t.topic_id } else { Uuid::ZERO },
                partitions: vec![part],
            }),
        }
    }
    FetchRequest {
        cluster_id: None,
        replica_id: -1,
        replica_state: ReplicaState {
            replica_id: -1,
            replica_epoch: -1,
        },
        max_wait_ms: p.max_wait_ms,
        min_bytes: p.min_bytes,
        max_bytes: p.max_bytes,
        isolation_level: p.isolation_level,
        session_id: 0,
        session_epoch: -1,
        topics,
        forgotten_topics_data: Vec::new(),
        rack_id: p.rack.clone(),
    }
}

/// Matches the response's partitions to the targets (by topic id from v13, by name
/// before). A target the response does not mention has no outcome.
pub(crate) fn outcomes(
    resp: FetchResponse,
    version: i16,
    targets: &[FetchTarget],
) -> Result<Vec<(usize, PartitionOutcome)>> {
    let top = ErrorCode::from_code(resp.error_code);
    if !top.is_ok() {
        return Err(Error::kafka("Fetch", top, None));
    }
    let by_id = version > LAST_VERSION_WITH_NAMES;
    let mut index: HashMap<(&str, i32), usize> = HashMap::new();
    let mut id_index: HashMap<(Uuid, i32), usize> = HashMap::new();
    for (i, t) in targets.iter().enumerate() {
        index.insert((t.tp.topic.as_str(), t.tp.partition), i);
        id_index.insert((t.topic_id, t.tp.partition), i);
    }
    let mut out = Vec::new();
    for topic in resp.responses {
        for p in topic.partitions {
            let i = if by_id {
                id_index.get(&(topic.topic_id, p.partition_index))
            } else {
                index.get(&(topic.topic.as_str(), p.partition_index))
            };
            let Some(&i) = i else { continue };
            let code = ErrorCode::from_code(p.error_code);
            let outcome = if code.is_ok() {
                PartitionOutcome::Data {
                    records: p.records,
                    aborted: p.aborted_transactions,
                    high_watermark: p.high_watermark,
                    last_stable_offset: p.last_stable_offset,
                    log_start_offset: p.log_start_offset,
                }
            } else {
                PartitionOutcome::Error(code)
            };
            out.push((i, outcome));
        }
    }
    Ok(out)
}
