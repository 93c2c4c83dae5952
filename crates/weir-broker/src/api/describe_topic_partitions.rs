//! DescribeTopicPartitions (KIP-966): partition metadata with the eligible leader
//! replicas, paged.
//!
//! Java admin clients from 3.7 describe topics with this API instead of Metadata
//! when the broker offers it, and it is the only one that shows the ELR and the
//! LastKnownElr. Kafka's rules:
//!
//! - An empty topic list means every topic; topics are answered in name order,
//!   starting at the cursor's topic (and, within it, the cursor's partition).
//! - At most `response_partition_limit` partitions (capped at 2000, Kafka's
//!   `max.request.partition.size.limit` default, and at least 1) per response.
//!   When a topic does not fit, `next_cursor` names the first partition left out.
//! - A named topic that does not exist is UNKNOWN_TOPIC_OR_PARTITION (or
//!   INVALID_TOPIC_EXCEPTION for an illegal name); asking for every topic lists
//!   only existing ones.
//! - A cursor whose topic is not in the list, or with a negative partition, is
//!   INVALID_REQUEST, answered on every requested topic (the response has no
//!   top-level error).
//!
//! Offline replicas are those on brokers that are not registered, fenced, or have
//! no endpoint on the request's listener, and this broker's own replica when its
//! log is offline (as in Metadata).

use std::collections::BTreeSet;

use weir_metadata::controller::{invalid_topic_name, is_internal};
use weir_metadata::{MetadataImage, PartitionImage, TopicImage, Uuid};
use weir_protocol::messages::describe_topic_partitions::{
    Cursor, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse,
    DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use weir_types::{ErrorCode, NodeId};

use super::metadata::TOPIC_AUTHORIZED_OPERATIONS;
use super::{ApiState, RequestContext};

/// The most partitions one response carries (Kafka's
/// `max.request.partition.size.limit` default).
const MAX_PARTITIONS_PER_RESPONSE: i32 = 2000;

/// Answers a DescribeTopicPartitions request from the image this broker serves.
pub(super) async fn handle(
    state: &ApiState,
    rc: RequestContext<'_>,
    request: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let image = state.served_image().await;
    let me = state.node_id();
    let view = View {
        image: &image,
        listener: &rc.connection.listener,
        own_offline: &|topic: &str, partition: i32| !state.replicas.is_online(topic, partition),
        me,
    };
    describe(&view, &request)
}

/// What the answer is computed from: the image, the request's listener, and this
/// broker's own view of its logs.
pub(super) struct View<'a> {
    pub(super) image: &'a MetadataImage,
    pub(super) listener: &'a str,
    /// Whether this broker's replica of (topic, partition) is offline.
    pub(super) own_offline: &'a dyn Fn(&str, i32) -> bool,
    pub(super) me: NodeId,
}

/// The response to `request`; see the module docs.
pub(super) fn describe(
    view: &View<'_>,
    request: &DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let all = request.topics.is_empty();
    let cursor = request.cursor.as_ref();
    let first_topic = cursor.map_or("", |c| c.topic_name.as_str());
    let names: BTreeSet<&str> = if all {
        view.image
            .topics_by_name()
            .map(|t| t.name.as_str())
            .filter(|n| *n >= first_topic)
            .collect()
    } else {
        request
            .topics
            .iter()
            .map(|t| t.name.as_str())
            .filter(|n| *n >= first_topic)
            .collect()
    };
    let bad_cursor = cursor
        .is_some_and(|c| c.partition_index < 0 || (!all && !names.contains(c.topic_name.as_str())));
    if bad_cursor {
        let topics = request
            .topics
            .iter()
            .map(|t| failed(view.image, &t.name, ErrorCode::InvalidRequest))
            .collect();
        return DescribeTopicPartitionsResponse {
            topics,
            ..DescribeTopicPartitionsResponse::default()
        };
    }
    let limit = request
        .response_partition_limit
        .clamp(1, MAX_PARTITIONS_PER_RESPONSE);
    let mut remaining = usize::try_from(limit).unwrap_or(1);
    let mut response = DescribeTopicPartitionsResponse::default();
    for name in names {
        if remaining == 0 {
            // Every earlier topic fitted whole: the next page starts here.
            response.next_cursor = Some(Cursor {
                topic_name: name.to_owned(),
                partition_index: 0,
            });
            break;
        }
        let Some(topic) = view.image.topic(name) else {
            if !all {
                let code = if invalid_topic_name(name).is_some() {
                    ErrorCode::InvalidTopicException
                } else {
                    ErrorCode::UnknownTopicOrPartition
                };
                response.topics.push(failed(view.image, name, code));
            }
            continue;
        };
        let start = match cursor {
            Some(c) if c.topic_name == name => usize::try_from(c.partition_index).unwrap_or(0),
            _ => 0,
        };
        let count = topic.partitions.len();
        let end = count.min(start.saturating_add(remaining));
        let partitions: Vec<_> = (start..end)
            .filter_map(|i| {
                let index = i32::try_from(i).ok()?;
                topic
                    .partitions
                    .get(i)
                    .map(|p| partition(view, topic, index, p))
            })
            .collect();
        remaining = remaining.saturating_sub(partitions.len());
        response.topics.push(DescribeTopicPartitionsResponseTopic {
            error_code: ErrorCode::None.code(),
            name: Some(topic.name.clone()),
            topic_id: topic.id,
            is_internal: is_internal(&topic.name),
            partitions,
            topic_authorized_operations: TOPIC_AUTHORIZED_OPERATIONS,
        });
        if end < count {
            response.next_cursor = Some(Cursor {
                topic_name: topic.name.clone(),
                partition_index: i32::try_from(end).unwrap_or(i32::MAX),
            });
            break;
        }
    }
    response
}

/// One partition of the answer.
fn partition(
    view: &View<'_>,
    topic: &TopicImage,
    index: i32,
    p: &PartitionImage,
) -> DescribeTopicPartitionsResponsePartition {
    let ids = |nodes: &[NodeId]| nodes.iter().map(|n| n.get()).collect::<Vec<i32>>();
    let offline = p
        .replicas
        .iter()
        .copied()
        .filter(|r| {
            let reachable = view
                .image
                .broker(*r)
                .is_some_and(|b| !b.fenced && b.endpoint(view.listener).is_some());
            !reachable || (*r == view.me && (view.own_offline)(&topic.name, index))
        })
        .map(NodeId::get)
        .collect();
    DescribeTopicPartitionsResponsePartition {
        error_code: ErrorCode::None.code(),
        partition_index: index,
        leader_id: p.leader_id(),
        leader_epoch: p.leader_epoch.get(),
        replica_nodes: ids(&p.replicas),
        isr_nodes: ids(&p.isr),
        eligible_leader_replicas: Some(ids(&p.elr)),
        last_known_elr: Some(ids(&p.last_known_elr)),
        offline_replicas: offline,
    }
}

/// A topic answered with an error only.
fn failed(
    image: &MetadataImage,
    name: &str,
    code: ErrorCode,
) -> DescribeTopicPartitionsResponseTopic {
    DescribeTopicPartitionsResponseTopic {
        error_code: code.code(),
        name: Some(name.to_owned()),
        topic_id: image.topic(name).map_or(Uuid::ZERO, |t| t.id),
        is_internal: is_internal(name),
        partitions: Vec::new(),
        topic_authorized_operations: i32::MIN,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use weir_metadata::{MetadataDelta, MetadataRecord};
    use weir_protocol::messages::metadata_register_broker_record::BrokerEndpoint;
    use weir_protocol::messages::{PartitionRecord, RegisterBrokerRecord, TopicRecord};
    use weir_types::Offset;

    use super::*;

    fn broker(id: i32, fenced: bool) -> MetadataRecord {
        MetadataRecord::RegisterBroker(RegisterBrokerRecord {
            broker_id: id,
            broker_epoch: i64::from(id),
            end_points: vec![BrokerEndpoint {
                name: "PLAINTEXT".into(),
                host: "h".into(),
                port: 9092,
                security_protocol: 0,
            }],
            fenced,
            ..RegisterBrokerRecord::default()
        })
    }

    #[test]
    fn partitions_carry_the_elr_and_offline_replicas() {
        let id = Uuid([7; 16]);
        let records = [
            broker(1, false),
            broker(2, true),
            MetadataRecord::Topic(TopicRecord {
                name: "t".into(),
                topic_id: id,
            }),
            MetadataRecord::Partition(PartitionRecord {
                partition_id: 0,
                topic_id: id,
                replicas: vec![1, 2, 3],
                isr: vec![],
                leader: -1,
                leader_epoch: 4,
                eligible_leader_replicas: Some(vec![2, 1]),
                last_known_elr: Some(vec![1]),
                ..PartitionRecord::default()
            }),
        ];
        let mut delta = MetadataDelta::new(Arc::new(MetadataImage::empty("c")));
        for (i, r) in records.iter().enumerate() {
            delta.replay(Offset(i as i64), 1, 0, r).unwrap();
        }
        let image = delta.apply();
        let view = View {
            image: &image,
            listener: "PLAINTEXT",
            own_offline: &|_: &str, _: i32| true,
            me: NodeId(1),
        };
        let r = describe(&view, &DescribeTopicPartitionsRequest::default());
        let p = &r.topics[0].partitions[0];
        assert_eq!((p.leader_id, p.leader_epoch), (-1, 4));
        assert_eq!(p.eligible_leader_replicas.as_deref(), Some(&[2, 1][..]));
        assert_eq!(p.last_known_elr.as_deref(), Some(&[1][..]));
        // 1: its own log is offline; 2: fenced; 3: not registered.
        assert_eq!(p.offline_replicas, vec![1, 2, 3]);
        let view = View {
            listener: "OTHER",
            own_offline: &|_: &str, _: i32| false,
            ..view
        };
        let r = describe(&view, &DescribeTopicPartitionsRequest::default());
        assert_eq!(r.topics[0].partitions[0].offline_replicas, vec![1, 2, 3]);
    }
}
