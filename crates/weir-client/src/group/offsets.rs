//! Finding a group's coordinator, and committing and fetching its offsets: shared
//! by the group consumer and the group admin calls.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use weir_protocol::messages::find_coordinator::FindCoordinatorRequest;
use weir_protocol::messages::offset_commit::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use weir_protocol::messages::offset_fetch::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use weir_types::ErrorCode;

use crate::cluster::{Cluster, TopicPartition};
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::group::protocol::{group_by_topic, send_at, version};
use crate::util::backoff;

/// A committed offset and the metadata string committed with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The next offset the group will read.
    pub offset: i64,
    /// The metadata string, if one was committed.
    pub metadata: Option<String>,
}

/// Who is committing: a member of a generation, or nobody (a simple commit, which
/// the coordinator accepts only while the group has no members).
#[derive(Debug, Clone, Default)]
pub(crate) struct Committer {
    pub(crate) generation: i32,
    pub(crate) member_id: String,
    pub(crate) instance_id: Option<String>,
}

impl Committer {
    /// A commit from outside the group (admin tools).
    pub(crate) fn outsider() -> Self {
        Committer {
            generation: -1,
            ..Committer::default()
        }
    }
}

/// Asks any broker for the coordinator of `group` and opens a dedicated connection
/// to it (JoinGroup may be held there for a whole rebalance, which must not delay
/// fetches). Retries COORDINATOR_NOT_AVAILABLE and connection errors until
/// `default.api.timeout.ms`.
pub(crate) async fn find_coordinator(cluster: &Cluster, group: &str) -> Result<Connection> {
    let config = cluster.config().clone();
    let start = Instant::now();
    let mut attempt = 0;
    loop {
        let err = match try_find(cluster, group).await {
            Ok(addr) => match Connection::connect(&addr, config.connection.clone()).await {
                Ok(c) => return Ok(c),
                Err(e) => e,
            },
            Err(e) => e,
        };
        let retriable = err.is_retriable() || err.is_connection_error();
        if !retriable || start.elapsed() >= config.api_timeout {
            return Err(err);
        }
        tracing::debug!(%group, error = %err, "finding the coordinator; retrying");
        tokio::time::sleep(backoff(
            config.retry_backoff,
            config.retry_backoff_max,
            attempt,
        ))
        .await;
        attempt += 1;
    }
}

async fn try_find(cluster: &Cluster, group: &str) -> Result<String> {
    let conn = cluster.any_connection().await?;
    let v = version::<FindCoordinatorRequest>(&conn)?;
    let req = FindCoordinatorRequest {
        key: group.to_owned(),
        key_type: 0,
        coordinator_keys: vec![group.to_owned()],
    };
    let resp = send_at(&conn, req, v, Duration::ZERO).await;
    let resp = match resp {
        Ok(r) => r,
        Err(e) => {
            if e.is_connection_error() {
                cluster.request_refresh();
            }
            return Err(e);
        }
    };
    let (code, message, host, port) = if let Some(c) = resp.coordinators.first() {
        (
            c.error_code,
            c.error_message.clone(),
            c.host.clone(),
            c.port,
        )
    } else {
        (
            resp.error_code,
            resp.error_message.clone(),
            resp.host.clone(),
            resp.port,
        )
    };
    match ErrorCode::from_code(code) {
        ErrorCode::None => Ok(format!("{host}:{port}")),
        code => Err(Error::kafka(
            format!("coordinator of group {group}"),
            code,
            message,
        )),
    }
}

/// Commits `offsets` for `group` on the coordinator connection. Per-partition
/// errors fail the call with the first of them.
pub(crate) async fn commit(
    conn: &Connection,
    group: &str,
    who: &Committer,
    offsets: &[(TopicPartition, i64, Option<String>)],
) -> Result<()> {
    if offsets.is_empty() {
        return Ok(());
    }
    let v = version::<OffsetCommitRequest>(conn)?;
    let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for (tp, offset, metadata) in offsets {
        topics
            .entry(tp.topic.as_str())
            .or_default()
            .push(OffsetCommitRequestPartition {
                partition_index: tp.partition,
                committed_offset: *offset,
                committed_leader_epoch: -1,
                commit_timestamp: -1,
                committed_metadata: Some(metadata.clone().unwrap_or_default()),
            });
    }
    let req = OffsetCommitRequest {
        group_id: group.to_owned(),
        generation_id_or_member_epoch: who.generation,
        member_id: who.member_id.clone(),
        group_instance_id: who.instance_id.clone(),
        retention_time_ms: -1,
        topics: topics
            .into_iter()
            .map(|(name, partitions)| OffsetCommitRequestTopic {
                name: name.to_owned(),
                partitions,
            })
            .collect(),
    };
    let resp = send_at(conn, req, v, Duration::ZERO).await?;
    for t in resp.topics {
        for p in t.partitions {
            let code = ErrorCode::from_code(p.error_code);
            if code != ErrorCode::None {
                return Err(Error::kafka(
                    format!(
                        "commit of {}-{} for group {group}",
                        t.name, p.partition_index
                    ),
                    code,
                    None,
                ));
            }
        }
    }
    Ok(())
}

/// The committed offsets of `group`: of `partitions`, or of every partition it has
/// offsets for if `None`. Partitions without a committed offset are left out.
pub(crate) async fn fetch(
    conn: &Connection,
    group: &str,
    partitions: Option<&[TopicPartition]>,
) -> Result<BTreeMap<TopicPartition, CommittedOffset>> {
    let v = version::<OffsetFetchRequest>(conn)?;
    let grouped = partitions.map(group_by_topic);
    let req = if v >= 8 {
        OffsetFetchRequest {
            groups: vec![OffsetFetchRequestGroup {
                group_id: group.to_owned(),
                member_id: None,
                member_epoch: -1,
                topics: grouped.map(|g| {
                    g.into_iter()
                        .map(|(name, partition_indexes)| OffsetFetchRequestTopics {
                            name,
                            partition_indexes,
                        })
                        .collect()
                }),
            }],
            require_stable: true,
            ..OffsetFetchRequest::default()
        }
    } else {
        OffsetFetchRequest {
            group_id: group.to_owned(),
            topics: grouped.map(|g| {
                g.into_iter()
                    .map(|(name, partition_indexes)| OffsetFetchRequestTopic {
                        name,
                        partition_indexes,
                    })
                    .collect()
            }),
            require_stable: true,
            ..OffsetFetchRequest::default()
        }
    };
    let resp = send_at(conn, req, v, Duration::ZERO).await?;
    let mut out = BTreeMap::new();
    let context = || format!("committed offsets of group {group}");
    let mut add =
        |topic: &str, partition: i32, offset: i64, metadata: Option<String>, code: i16| {
            match ErrorCode::from_code(code) {
                ErrorCode::None => {
                    if offset >= 0 {
                        out.insert(
                            TopicPartition::new(topic, partition),
                            CommittedOffset {
                                offset,
                                metadata: metadata.filter(|m| !m.is_empty()),
                            },
                        );
                    }
                    Ok(())
                }
                ErrorCode::UnknownTopicOrPartition => Ok(()),
                code => Err(Error::kafka(context(), code, None)),
            }
        };
    if v >= 8 {
        for g in resp.groups {
            let code = ErrorCode::from_code(g.error_code);
            if code != ErrorCode::None {
                return Err(Error::kafka(context(), code, None));
            }
            for t in g.topics {
                for p in t.partitions {
                    add(
                        &t.name,
                        p.partition_index,
                        p.committed_offset,
                        p.metadata,
                        p.error_code,
                    )?;
                }
            }
        }
    } else {
        let code = ErrorCode::from_code(resp.error_code);
        if code != ErrorCode::None {
            return Err(Error::kafka(context(), code, None));
        }
        for t in resp.topics {
            for p in t.partitions {
                add(
                    &t.name,
                    p.partition_index,
                    p.committed_offset,
                    p.metadata,
                    p.error_code,
                )?;
            }
        }
    }
    Ok(out)
}
