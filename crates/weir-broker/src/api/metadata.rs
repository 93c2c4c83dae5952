//! Metadata: brokers, controller, topics and partition leaders.
//!
//! Answered from the image this broker has applied (see `ApiState::served_image`), so a
//! client is never sent to a partition this broker does not serve yet.
//!
//! - Brokers: each registered, unfenced broker's endpoint on the listener the
//!   request came through, so a client that reached us over `localhost`-as-`::1` is
//!   handed the address it can use. Before the registration reaches the image (the
//!   first moments after a start), this broker answers with its own endpoints.
//! - Topics: every topic when `topics` is null (v1+) or empty (v0); otherwise the
//!   named ones, by name or (v10+) by id. An unknown id is UNKNOWN_TOPIC_ID. An
//!   unknown name is auto-created when both `auto.create.topics.enable` and the
//!   request's `allow_auto_topic_creation` (v4+; always for older versions) say so,
//!   and answered as Kafka answers a topic it just asked the controller for:
//!   LEADER_NOT_AVAILABLE, no partitions, so the client asks again. Otherwise it is
//!   UNKNOWN_TOPIC_OR_PARTITION; an illegal name being auto-created is
//!   INVALID_TOPIC_EXCEPTION.

use std::collections::BTreeSet;

use weir_metadata::controller::is_internal;
use weir_metadata::{MetadataImage, TopicImage, Uuid};
use weir_protocol::messages::metadata::{
    MetadataRequest, MetadataResponse, MetadataResponseBroker, MetadataResponsePartition,
    MetadataResponseTopic,
};
use weir_types::{ErrorCode, NodeId};

use super::{errors, ApiState, RequestContext};

/// Topic operations a client may perform, as the bit field Metadata v8+ reports
/// when asked. Weir has no authorizer, so every operation Kafka defines for topics is
/// allowed, as Kafka reports without one: READ(3) WRITE(4) CREATE(5) DELETE(6)
/// ALTER(7) DESCRIBE(8) DESCRIBE_CONFIGS(10) ALTER_CONFIGS(11).
pub(super) const TOPIC_AUTHORIZED_OPERATIONS: i32 = 0b1101_1111_1000;
/// Cluster operations, likewise: CREATE(5) ALTER(7) DESCRIBE(8) CLUSTER_ACTION(9)
/// DESCRIBE_CONFIGS(10) ALTER_CONFIGS(11) IDEMPOTENT_WRITE(12).
pub(super) const CLUSTER_AUTHORIZED_OPERATIONS: i32 = 0b1_1111_1010_0000;
/// "Not requested" in the authorized-operations fields.
pub(super) const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

/// A registered broker's endpoint on one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BrokerEndpoint {
    pub(super) node_id: i32,
    pub(super) host: String,
    pub(super) port: i32,
    pub(super) rack: Option<String>,
}

/// Every unfenced broker's endpoint on `listener`; this broker's own endpoint if
/// the image does not have its registration yet.
pub(super) fn brokers(
    state: &ApiState,
    image: &MetadataImage,
    listener: &str,
) -> Vec<BrokerEndpoint> {
    let mut out: Vec<BrokerEndpoint> = image
        .brokers()
        .values()
        .filter(|b| !b.fenced)
        .filter_map(|b| {
            b.endpoint(listener).map(|e| BrokerEndpoint {
                node_id: b.id.get(),
                host: e.host.clone(),
                port: i32::from(e.port),
                rack: b.rack.clone(),
            })
        })
        .collect();
    let me = state.node_id();
    if image.broker(me).is_none() {
        if let Some(e) = state.endpoints.iter().find(|e| e.listener == listener) {
            out.push(BrokerEndpoint {
                node_id: me.get(),
                host: e.host.clone(),
                port: i32::from(e.port),
                rack: None,
            });
        }
    }
    out
}

/// One requested topic, resolved or still to be auto-created.
enum Slot {
    Done(MetadataResponseTopic),
    Create(String),
}

/// Answers a Metadata request.
pub(super) async fn handle(
    state: &ApiState,
    rc: RequestContext<'_>,
    request: MetadataRequest,
) -> MetadataResponse {
    let version = rc.version();
    let image = state.served_image().await;
    let ops = if version >= 8 && request.include_topic_authorized_operations {
        TOPIC_AUTHORIZED_OPERATIONS
    } else {
        OPERATIONS_NOT_REQUESTED
    };
    let requested = match request.topics {
        // v1+ null, or v0 empty: every topic.
        None => None,
        Some(list) if version == 0 && list.is_empty() => None,
        Some(list) => Some(list),
    };
    let topics = match requested {
        None => image
            .topics_by_name()
            .map(|t| topic(state, t, ops))
            .collect(),
        Some(list) => {
            let auto_create = state.config.auto_create_topics_enable
                && (version < 4 || request.allow_auto_topic_creation);
            let slots = resolve(state, &image, list, auto_create, ops);
            create_missing(state, slots, ops).await
        }
    };
    let brokers = brokers(state, &image, &rc.connection.listener)
        .into_iter()
        .map(|b| MetadataResponseBroker {
            node_id: b.node_id,
            host: b.host,
            port: b.port,
            rack: b.rack,
        })
        .collect();
    MetadataResponse {
        throttle_time_ms: 0,
        brokers,
        cluster_id: Some(image.cluster_id().to_owned()),
        controller_id: state.controller_id(),
        topics,
        cluster_authorized_operations: if (8..=10).contains(&version)
            && request.include_cluster_authorized_operations
        {
            CLUSTER_AUTHORIZED_OPERATIONS
        } else {
            OPERATIONS_NOT_REQUESTED
        },
    }
}

/// Looks every requested topic up, once each, in request order.
fn resolve(
    state: &ApiState,
    image: &MetadataImage,
    requested: Vec<weir_protocol::messages::metadata::MetadataRequestTopic>,
    auto_create: bool,
    ops: i32,
) -> Vec<Slot> {
    let mut seen_names = BTreeSet::new();
    let mut seen_ids = BTreeSet::new();
    let mut slots = Vec::with_capacity(requested.len());
    for t in requested {
        if t.topic_id != Uuid::ZERO {
            if !seen_ids.insert(t.topic_id) {
                continue;
            }
            slots.push(Slot::Done(match image.topic_by_id(t.topic_id) {
                Some(found) => topic(state, found, ops),
                None => failed(None, t.topic_id, ErrorCode::UnknownTopicId),
            }));
            continue;
        }
        let Some(name) = t.name else {
            // Neither an id nor a name: nothing to look up.
            slots.push(Slot::Done(failed(
                None,
                Uuid::ZERO,
                ErrorCode::InvalidRequest,
            )));
            continue;
        };
        if !seen_names.insert(name.clone()) {
            continue;
        }
        slots.push(match image.topic(&name) {
            Some(found) => Slot::Done(topic(state, found, ops)),
            None if auto_create => Slot::Create(name),
            None => Slot::Done(failed(
                Some(name),
                Uuid::ZERO,
                ErrorCode::UnknownTopicOrPartition,
            )),
        });
    }
    slots
}

/// Asks the controller for the topics still missing and fills their slots.
async fn create_missing(
    state: &ApiState,
    slots: Vec<Slot>,
    ops: i32,
) -> Vec<MetadataResponseTopic> {
    let names: Vec<String> = slots
        .iter()
        .filter_map(|s| match s {
            Slot::Create(name) => Some(name.clone()),
            Slot::Done(_) => None,
        })
        .collect();
    let mut created = if names.is_empty() {
        Vec::new()
    } else {
        match state.controller.auto_create_topics(names.clone()).await {
            Ok(results) => results
                .into_iter()
                .map(|r| (r.name, r.topic_id, r.error.code))
                .collect(),
            Err(e) => {
                let code = errors::controller(&e).code;
                names.into_iter().map(|n| (n, Uuid::ZERO, code)).collect()
            }
        }
    };
    slots
        .into_iter()
        .map(|slot| match slot {
            Slot::Done(t) => t,
            Slot::Create(name) => {
                let found = created.iter().position(|(n, _, _)| *n == name);
                let (_, id, code) = match found {
                    Some(i) => created.swap_remove(i),
                    None => (name.clone(), Uuid::ZERO, ErrorCode::UnknownServerError),
                };
                // Created (or created concurrently): not served yet, ask again.
                let code = if code == ErrorCode::None {
                    ErrorCode::LeaderNotAvailable
                } else {
                    code
                };
                MetadataResponseTopic {
                    topic_authorized_operations: ops,
                    ..failed(Some(name), id, code)
                }
            }
        })
        .collect()
}

/// A topic's metadata. This broker's replica is listed offline when its log is
/// (a storage error, or a log that failed to open), as Kafka lists replicas on
/// offline log directories.
fn topic(state: &ApiState, t: &TopicImage, ops: i32) -> MetadataResponseTopic {
    let me = state.node_id();
    let partitions = t
        .partitions
        .iter()
        .zip(0..)
        .map(|(p, index)| {
            let ids = |nodes: &[NodeId]| nodes.iter().map(|n| n.get()).collect::<Vec<i32>>();
            MetadataResponsePartition {
                error_code: if p.leader.is_some() {
                    ErrorCode::None.code()
                } else {
                    ErrorCode::LeaderNotAvailable.code()
                },
                partition_index: index,
                leader_id: p.leader_id(),
                leader_epoch: p.leader_epoch.get(),
                replica_nodes: ids(&p.replicas),
                isr_nodes: ids(&p.isr),
                offline_replicas: if p.has_replica(me) && !state.replicas.is_online(&t.name, index)
                {
                    vec![me.get()]
                } else {
                    Vec::new()
                },
            }
        })
        .collect();
    MetadataResponseTopic {
        error_code: ErrorCode::None.code(),
        name: Some(t.name.clone()),
        topic_id: t.id,
        is_internal: is_internal(&t.name),
        partitions,
        topic_authorized_operations: ops,
    }
}

fn failed(name: Option<String>, topic_id: Uuid, code: ErrorCode) -> MetadataResponseTopic {
    MetadataResponseTopic {
        error_code: code.code(),
        is_internal: name.as_deref().is_some_and(is_internal),
        name,
        topic_id,
        partitions: Vec::new(),
        topic_authorized_operations: OPERATIONS_NOT_REQUESTED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_bit_fields_are_kafkas() {
        let bits = |ops: &[u32]| ops.iter().fold(0i32, |acc, op| acc | (1 << op));
        assert_eq!(
            TOPIC_AUTHORIZED_OPERATIONS,
            bits(&[3, 4, 5, 6, 7, 8, 10, 11])
        );
        assert_eq!(
            CLUSTER_AUTHORIZED_OPERATIONS,
            bits(&[5, 7, 8, 9, 10, 11, 12])
        );
    }
}
