//! The admin client: topics, partitions, configs, offsets, the cluster.
//!
//! Each call returns one result per item (topic, resource, partition) with the
//! broker's Kafka error mapped to [`Error::Kafka`] (code and message), and an outer
//! `Err` only when the call as a whole failed. Topic changes go to the controller
//! the metadata names (a KRaft broker forwards them); NOT_CONTROLLER and lost
//! connections refresh the metadata and retry the affected items until
//! `default.api.timeout.ms`.

mod describe;
mod partitions;
mod types;

use std::future::Future;
use std::time::Instant;

use weir_protocol::messages::create_partitions::{CreatePartitionsRequest, CreatePartitionsTopic};
use weir_protocol::messages::create_topics::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
};
use weir_protocol::messages::delete_topics::{DeleteTopicState, DeleteTopicsRequest};
use weir_protocol::messages::describe_cluster::DescribeClusterRequest;
use weir_protocol::messages::describe_configs::{DescribeConfigsRequest, DescribeConfigsResource};
use weir_protocol::messages::incremental_alter_configs::{
    AlterConfigsResource, AlterableConfig, IncrementalAlterConfigsRequest,
};
use weir_protocol::messages::metadata::{MetadataRequest, MetadataRequestTopic, MetadataResponse};

pub use describe::describe_metadata_topic;
use weir_protocol::Uuid;
use weir_types::{ErrorCode, NodeId};

pub use types::{
    AlterConfigOp, ClusterDescription, ConfigEntry, ConfigResource, ConfigResourceType,
    ConfigSource, CreatedTopic, ElectionType, NewTopic, PartitionDescription,
    PartitionReassignment, TopicDescription,
};

use crate::cluster::{BrokerInfo, Cluster, TopicPartition};
use crate::config::ClientConfig;
use crate::consumer::IsolationLevel;
use crate::error::{Error, Result};
use crate::offsets::{self, ListedOffset, OffsetSpec};
use crate::util::backoff;

/// Per-item results, in the order the items were given.
pub type ItemResults<K, T> = Vec<(K, Result<T>)>;

/// An admin client.
#[derive(Debug, Clone)]
pub struct Admin {
    cluster: Cluster,
}

impl Admin {
    /// Connects to the cluster. The admin client never auto-creates topics.
    pub async fn new(mut config: ClientConfig) -> Result<Admin> {
        config.allow_auto_create_topics = false;
        Ok(Admin {
            cluster: Cluster::connect(config).await?,
        })
    }

    /// An admin client over an existing cluster handle.
    pub fn with_cluster(cluster: Cluster) -> Admin {
        Admin { cluster }
    }

    /// The cluster handle.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    fn timeout_ms(&self) -> i32 {
        i32::try_from(self.cluster.config().connection.request_timeout.as_millis())
            .unwrap_or(i32::MAX)
    }

    /// Runs `send` for the pending items until none is left with a retriable
    /// failure or the api timeout passes.
    async fn retry_items<K, T, F, Fut>(
        &self,
        items: Vec<K>,
        mut send: F,
    ) -> Result<ItemResults<K, T>>
    where
        K: Clone + PartialEq,
        F: FnMut(Vec<K>) -> Fut,
        Fut: Future<Output = Result<ItemResults<K, T>>>,
    {
        let config = self.cluster.config().clone();
        let start = Instant::now();
        let mut done: ItemResults<K, T> = Vec::new();
        let mut pending = items.clone();
        let mut attempt = 0;
        while !pending.is_empty() {
            let out_of_time = start.elapsed() >= config.api_timeout;
            let mut retry = Vec::new();
            match send(pending.clone()).await {
                Ok(results) => {
                    for (k, r) in results {
                        match r {
                            Err(e) if should_retry(&e) && !out_of_time => retry.push(k),
                            r => done.push((k, r)),
                        }
                    }
                }
                Err(e) if e.is_retriable() && !out_of_time => retry = pending.clone(),
                Err(e) => return Err(e),
            }
            pending = retry;
            if !pending.is_empty() {
                self.before_retry(attempt).await;
                attempt += 1;
            }
        }
        let mut ordered = Vec::with_capacity(items.len());
        for k in items {
            if let Some(i) = done.iter().position(|(d, _)| *d == k) {
                ordered.push(done.swap_remove(i));
            }
        }
        Ok(ordered)
    }

    /// Creates topics (or, with `validate_only`, checks that they could be created).
    pub async fn create_topics(
        &self,
        topics: Vec<NewTopic>,
        validate_only: bool,
    ) -> Result<ItemResults<String, CreatedTopic>> {
        let names: Vec<String> = topics.iter().map(|t| t.name.clone()).collect();
        self.retry_items(names, |pending| {
            let req = CreateTopicsRequest {
                topics: topics
                    .iter()
                    .filter(|t| pending.contains(&t.name))
                    .map(|t| CreatableTopic {
                        name: t.name.clone(),
                        num_partitions: t.num_partitions,
                        replication_factor: t.replication_factor,
                        assignments: t
                            .assignments
                            .iter()
                            .map(|(p, b)| CreatableReplicaAssignment {
                                partition_index: *p,
                                broker_ids: b.clone(),
                            })
                            .collect(),
                        configs: t
                            .configs
                            .iter()
                            .map(|(k, v)| CreatableTopicConfig {
                                name: k.clone(),
                                value: Some(v.clone()),
                            })
                            .collect(),
                    })
                    .collect(),
                timeout_ms: self.timeout_ms(),
                validate_only,
            };
            async move {
                let conn = self.cluster.controller_connection().await?;
                let resp = self.cluster.send_on(&conn, req).await?;
                Ok(resp
                    .topics
                    .into_iter()
                    .map(|t| {
                        let r = Error::check(
                            || format!("topic {}", t.name),
                            t.error_code,
                            t.error_message.as_deref(),
                        )
                        .map(|()| CreatedTopic {
                            topic_id: t.topic_id,
                            num_partitions: t.num_partitions,
                            replication_factor: t.replication_factor,
                            configs: t
                                .configs
                                .unwrap_or_default()
                                .into_iter()
                                .map(|c| ConfigEntry {
                                    name: c.name,
                                    value: c.value,
                                    read_only: c.read_only,
                                    is_default: c.config_source == 5,
                                    is_sensitive: c.is_sensitive,
                                    source: ConfigSource::from_i8(c.config_source),
                                    documentation: None,
                                })
                                .collect(),
                        });
                        (t.name, r)
                    })
                    .collect())
            }
        })
        .await
    }

    /// Deletes topics by name.
    pub async fn delete_topics(&self, names: &[String]) -> Result<ItemResults<String, ()>> {
        self.retry_items(names.to_vec(), |pending| async move {
            let conn = self.cluster.controller_connection().await?;
            let version = conn.version_of::<DeleteTopicsRequest>()?;
            let req = DeleteTopicsRequest {
                topics: pending
                    .iter()
                    .map(|n| DeleteTopicState {
                        name: Some(n.clone()),
                        topic_id: Uuid::ZERO,
                    })
                    .collect(),
                topic_names: if version < 6 {
                    pending.clone()
                } else {
                    Vec::new()
                },
                timeout_ms: self.timeout_ms(),
            };
            let resp = conn.send_versioned(req, version).await?;
            Ok(resp
                .responses
                .into_iter()
                .filter_map(|t| {
                    let name = t.name?;
                    let r = Error::check(
                        || format!("topic {name}"),
                        t.error_code,
                        t.error_message.as_deref(),
                    );
                    Some((name, r))
                })
                .collect())
        })
        .await
    }

    /// Every topic in the cluster (internal ones only when asked).
    pub async fn list_topics(&self, include_internal: bool) -> Result<Vec<TopicDescription>> {
        let resp = self.metadata(None).await?;
        let mut out: Vec<TopicDescription> = resp
            .topics
            .into_iter()
            .filter(|t| include_internal || !t.is_internal)
            .filter_map(|t| describe_metadata_topic(t).1.ok())
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn metadata(&self, topics: Option<Vec<String>>) -> Result<MetadataResponse> {
        let req = MetadataRequest {
            topics: topics.map(|ts| {
                ts.into_iter()
                    .map(|name| MetadataRequestTopic {
                        topic_id: Uuid::ZERO,
                        name: Some(name),
                    })
                    .collect()
            }),
            allow_auto_topic_creation: false,
            include_cluster_authorized_operations: false,
            include_topic_authorized_operations: false,
        };
        self.cluster.send_any(req).await
    }

    /// Raises topics' partition counts to the given totals.
    pub async fn create_partitions(
        &self,
        increases: Vec<(String, i32)>,
        validate_only: bool,
    ) -> Result<ItemResults<String, ()>> {
        let names: Vec<String> = increases.iter().map(|(n, _)| n.clone()).collect();
        self.retry_items(names, |pending| {
            let req = CreatePartitionsRequest {
                topics: increases
                    .iter()
                    .filter(|(n, _)| pending.contains(n))
                    .map(|(name, count)| CreatePartitionsTopic {
                        name: name.clone(),
                        count: *count,
                        assignments: None,
                    })
                    .collect(),
                timeout_ms: self.timeout_ms(),
                validate_only,
            };
            async move {
                let conn = self.cluster.controller_connection().await?;
                let resp = self.cluster.send_on(&conn, req).await?;
                Ok(resp
                    .results
                    .into_iter()
                    .map(|t| {
                        let r = Error::check(
                            || format!("topic {}", t.name),
                            t.error_code,
                            t.error_message.as_deref(),
                        );
                        (t.name, r)
                    })
                    .collect())
            }
        })
        .await
    }

    /// Between attempts: asks for fresh metadata (a leader or the controller may
    /// have moved), backs off for the `attempt`th retry, then refreshes.
    async fn before_retry(&self, attempt: u32) {
        let config = self.cluster.config();
        self.cluster.request_refresh();
        tokio::time::sleep(backoff(
            config.retry_backoff,
            config.retry_backoff_max,
            attempt,
        ))
        .await;
        let _ = self.cluster.maybe_refresh().await;
    }

    /// Runs `send` until it succeeds, fails for good, or the api timeout passes,
    /// refreshing the metadata between attempts (for calls without per-item keys).
    async fn retry_call<T, F, Fut>(&self, mut send: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let config = self.cluster.config().clone();
        let start = Instant::now();
        let mut attempt = 0;
        loop {
            match send().await {
                Err(e) if should_retry_call(&e) && start.elapsed() < config.api_timeout => {
                    self.before_retry(attempt).await;
                    attempt += 1;
                }
                r => return r,
            }
        }
    }

    /// The configs of topics and brokers (all keys). Broker resources are asked of
    /// that broker.
    pub async fn describe_configs(
        &self,
        resources: Vec<ConfigResource>,
    ) -> Result<ItemResults<ConfigResource, Vec<ConfigEntry>>> {
        self.retry_items(resources, |pending| async move {
            let mut out = Vec::new();
            for group in group_by_target(&pending) {
                let req = DescribeConfigsRequest {
                    resources: group
                        .1
                        .iter()
                        .map(|r| DescribeConfigsResource {
                            resource_type: r.resource_type.as_i8(),
                            resource_name: r.name.clone(),
                            configuration_keys: None,
                        })
                        .collect(),
                    include_synonyms: false,
                    include_documentation: true,
                };
                let resp = match group.0 {
                    Some(node) => self.cluster.send_to(node, req).await?,
                    None => self.cluster.send_any(req).await?,
                };
                for r in resp.results {
                    let res = ConfigResource {
                        resource_type: ConfigResourceType::from_i8(r.resource_type),
                        name: r.resource_name,
                    };
                    let result = Error::check(
                        || format!("configs of {}", res.name),
                        r.error_code,
                        r.error_message.as_deref(),
                    )
                    .map(|()| {
                        r.configs
                            .into_iter()
                            .map(|c| {
                                let source = ConfigSource::from_i8(c.config_source);
                                ConfigEntry {
                                    is_default: c.is_default || source == ConfigSource::Default,
                                    name: c.name,
                                    value: c.value,
                                    read_only: c.read_only,
                                    is_sensitive: c.is_sensitive,
                                    source,
                                    documentation: c.documentation,
                                }
                            })
                            .collect()
                    });
                    out.push((res, result));
                }
            }
            Ok(out)
        })
        .await
    }

    /// Changes configs entry by entry (IncrementalAlterConfigs, KIP-339).
    pub async fn incremental_alter_configs(
        &self,
        changes: Vec<(ConfigResource, Vec<AlterConfigOp>)>,
        validate_only: bool,
    ) -> Result<ItemResults<ConfigResource, ()>> {
        let resources: Vec<ConfigResource> = changes.iter().map(|(r, _)| r.clone()).collect();
        self.retry_items(resources, |pending| {
            let changes = &changes;
            async move {
                let mut out = Vec::new();
                for (target, group) in group_by_target(&pending) {
                    let req = IncrementalAlterConfigsRequest {
                        resources: group
                            .iter()
                            .map(|r| AlterConfigsResource {
                                resource_type: r.resource_type.as_i8(),
                                resource_name: r.name.clone(),
                                configs: changes
                                    .iter()
                                    .filter(|(c, _)| c == r)
                                    .flat_map(|(_, ops)| ops.iter())
                                    .map(|op| {
                                        let (name, config_operation, value) = op.wire();
                                        AlterableConfig {
                                            name,
                                            config_operation,
                                            value,
                                        }
                                    })
                                    .collect(),
                            })
                            .collect(),
                        validate_only,
                    };
                    let resp = match target {
                        Some(node) => self.cluster.send_to(node, req).await?,
                        None => {
                            let conn = self.cluster.controller_connection().await?;
                            self.cluster.send_on(&conn, req).await?
                        }
                    };
                    for r in resp.responses {
                        let res = ConfigResource {
                            resource_type: ConfigResourceType::from_i8(r.resource_type),
                            name: r.resource_name,
                        };
                        let result = Error::check(
                            || format!("configs of {}", res.name),
                            r.error_code,
                            r.error_message.as_deref(),
                        );
                        out.push((res, result));
                    }
                }
                Ok(out)
            }
        })
        .await
    }

    /// Offsets by time, or the earliest/latest, of each partition.
    pub async fn list_offsets(
        &self,
        query: &[(TopicPartition, OffsetSpec)],
        isolation: IsolationLevel,
    ) -> Result<ItemResults<TopicPartition, ListedOffset>> {
        offsets::list_offsets(&self.cluster, query, isolation).await
    }

    /// The cluster id, controller and brokers (DescribeCluster; Metadata on brokers
    /// that predate it).
    pub async fn describe_cluster(&self) -> Result<ClusterDescription> {
        let conn = self.cluster.any_connection().await?;
        if conn.version_of::<DescribeClusterRequest>().is_ok() {
            let resp = self
                .cluster
                .send_on(
                    &conn,
                    DescribeClusterRequest {
                        include_cluster_authorized_operations: false,
                        endpoint_type: 1,
                    },
                )
                .await?;
            Error::check(
                || "DescribeCluster".into(),
                resp.error_code,
                resp.error_message.as_deref(),
            )?;
            return Ok(ClusterDescription {
                cluster_id: Some(resp.cluster_id),
                controller_id: (resp.controller_id >= 0).then_some(NodeId(resp.controller_id)),
                brokers: resp
                    .brokers
                    .into_iter()
                    .map(|b| BrokerInfo {
                        node_id: NodeId(b.broker_id),
                        host: b.host,
                        port: b.port,
                        rack: b.rack,
                    })
                    .collect(),
            });
        }
        let resp = self.metadata(Some(Vec::new())).await?;
        Ok(ClusterDescription {
            cluster_id: resp.cluster_id,
            controller_id: (resp.controller_id >= 0).then_some(NodeId(resp.controller_id)),
            brokers: resp
                .brokers
                .into_iter()
                .map(|b| BrokerInfo {
                    node_id: NodeId(b.node_id),
                    host: b.host,
                    port: b.port,
                    rack: b.rack,
                })
                .collect(),
        })
    }
}

/// Item errors worth another attempt after a metadata refresh.
fn should_retry(e: &Error) -> bool {
    matches!(
        e.code(),
        Some(
            ErrorCode::NotController
                | ErrorCode::LeaderNotAvailable
                | ErrorCode::CoordinatorLoadInProgress
        )
    ) || e.is_connection_error()
}

/// Whole-call errors worth another attempt: those of [`should_retry`] and any
/// other retriable failure of the call itself.
fn should_retry_call(e: &Error) -> bool {
    should_retry(e) || e.is_retriable()
}

/// Partitions grouped by topic, topics in the order first named.
fn group_partitions(partitions: Vec<TopicPartition>) -> Vec<(String, Vec<i32>)> {
    let mut groups: Vec<(String, Vec<i32>)> = Vec::new();
    for tp in partitions {
        match groups.iter_mut().find(|(t, _)| *t == tp.topic) {
            Some((_, ps)) => ps.push(tp.partition),
            None => groups.push((tp.topic, vec![tp.partition])),
        }
    }
    groups
}

/// Splits resources into those for a specific broker and the rest.
fn group_by_target(resources: &[ConfigResource]) -> Vec<(Option<NodeId>, Vec<ConfigResource>)> {
    let mut groups: Vec<(Option<NodeId>, Vec<ConfigResource>)> = Vec::new();
    for r in resources {
        let target = match r.resource_type {
            ConfigResourceType::Broker | ConfigResourceType::BrokerLogger => {
                r.name.parse::<i32>().ok().map(NodeId)
            }
            _ => None,
        };
        match groups.iter_mut().find(|(t, _)| *t == target) {
            Some((_, g)) => g.push(r.clone()),
            None => groups.push((target, vec![r.clone()])),
        }
    }
    groups
}
