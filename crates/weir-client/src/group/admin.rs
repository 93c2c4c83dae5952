//! Group administration: list, describe and delete groups, read and set their
//! committed offsets (what `weir group` is built on).
//!
//! Every broker coordinates its own share of the groups, so ListGroups asks each
//! broker; the other calls go to the group's coordinator. A KIP-848 consumer group
//! is not seen by DescribeGroups (it answers `Dead`), so `describe_group` asks
//! ConsumerGroupDescribe then.

use std::collections::BTreeMap;
use std::time::Duration;

use weir_protocol::messages::consumer_group_describe::ConsumerGroupDescribeRequest;
use weir_protocol::messages::delete_groups::DeleteGroupsRequest;
use weir_protocol::messages::describe_groups::DescribeGroupsRequest;
use weir_protocol::messages::list_groups::ListGroupsRequest;
use weir_types::ErrorCode;

use crate::cluster::{Cluster, TopicPartition};
use crate::error::{Error, Result};
use crate::group::offsets::{self, find_coordinator, CommittedOffset, Committer};
use crate::group::protocol::{decode_assignment, send_at, version, PROTOCOL_TYPE};

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// The group id.
    pub group_id: String,
    /// `consumer` for consumer groups; empty for groups that only commit offsets.
    pub protocol_type: String,
    /// The state (`Stable`, `Empty`, ...), if the broker reports it (v4+).
    pub state: Option<String>,
}

/// One member of a described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// The member id.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    /// The member's `client.id`.
    pub client_id: String,
    /// The member's address as the coordinator saw it.
    pub client_host: String,
    /// Its partitions (decoded for consumer groups; empty otherwise).
    pub assignment: Vec<TopicPartition>,
}

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// The group id.
    pub group_id: String,
    /// `Empty`, `PreparingRebalance`, `CompletingRebalance`, `Stable` or `Dead`.
    pub state: String,
    /// The protocol type (`consumer`).
    pub protocol_type: String,
    /// The chosen assignor, in a stable group.
    pub protocol: String,
    /// The members.
    pub members: Vec<MemberDescription>,
}

/// Admin calls on groups.
#[derive(Debug, Clone)]
pub struct GroupAdmin {
    cluster: Cluster,
}

impl GroupAdmin {
    /// Group admin over a cluster handle.
    pub fn new(cluster: Cluster) -> GroupAdmin {
        GroupAdmin { cluster }
    }

    /// Every group on every broker, sorted by id.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>> {
        let md = self.cluster.refresh().await?;
        let mut out = Vec::new();
        for &node in md.brokers.keys() {
            let conn = self.cluster.connection(node).await?;
            let v = version::<ListGroupsRequest>(&conn)?;
            let resp = send_at(&conn, ListGroupsRequest::default(), v, Duration::ZERO).await?;
            let code = ErrorCode::from_code(resp.error_code);
            if code != ErrorCode::None {
                return Err(Error::kafka(
                    format!("ListGroups on broker {node}"),
                    code,
                    None,
                ));
            }
            out.extend(resp.groups.into_iter().map(|g| GroupListing {
                group_id: g.group_id,
                protocol_type: g.protocol_type,
                state: (v >= 4).then_some(g.group_state),
            }));
        }
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out.dedup_by(|a, b| a.group_id == b.group_id);
        Ok(out)
    }

    /// Describes `group` (a group that does not exist is `Dead` with no members).
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        let conn = find_coordinator(&self.cluster, group).await?;
        let v = version::<DescribeGroupsRequest>(&conn)?;
        let req = DescribeGroupsRequest {
            groups: vec![group.to_owned()],
            include_authorized_operations: false,
        };
        let resp = send_at(&conn, req, v, Duration::ZERO).await?;
        let Some(g) = resp.groups.into_iter().next() else {
            return Err(Error::Protocol {
                addr: conn.addr().to_owned(),
                reason: "DescribeGroups answered without the group".into(),
            });
        };
        let code = ErrorCode::from_code(g.error_code);
        let classic_unknown = (code == ErrorCode::None && g.group_state == "Dead")
            || code == ErrorCode::GroupIdNotFound;
        if classic_unknown && version::<ConsumerGroupDescribeRequest>(&conn).is_ok() {
            if let Some(d) = describe_consumer_group(&conn, group).await? {
                return Ok(d);
            }
        }
        if code != ErrorCode::None {
            return Err(Error::kafka(format!("group {group}"), code, None));
        }
        let consumer = g.protocol_type == PROTOCOL_TYPE;
        Ok(GroupDescription {
            group_id: g.group_id,
            state: g.group_state,
            protocol: g.protocol_data,
            members: g
                .members
                .into_iter()
                .map(|m| MemberDescription {
                    assignment: if consumer {
                        decode_assignment(&m.member_assignment).unwrap_or_default()
                    } else {
                        Vec::new()
                    },
                    member_id: m.member_id,
                    instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                })
                .collect(),
            protocol_type: g.protocol_type,
        })
    }

    /// Deletes empty groups and their offsets; each group has its own result
    /// (NON_EMPTY_GROUP while it has members, GROUP_ID_NOT_FOUND if unknown).
    pub async fn delete_groups(&self, groups: &[String]) -> Result<Vec<(String, Result<()>)>> {
        let mut out = Vec::new();
        for group in groups {
            let conn = find_coordinator(&self.cluster, group).await?;
            let v = version::<DeleteGroupsRequest>(&conn)?;
            let req = DeleteGroupsRequest {
                groups_names: vec![group.clone()],
            };
            let resp = send_at(&conn, req, v, Duration::ZERO).await?;
            let code = resp
                .results
                .iter()
                .find(|r| r.group_id == *group)
                .map_or(ErrorCode::None, |r| ErrorCode::from_code(r.error_code));
            let result = match code {
                ErrorCode::None => Ok(()),
                code => Err(Error::kafka(format!("group {group}"), code, None)),
            };
            out.push((group.clone(), result));
        }
        Ok(out)
    }

    /// The committed offsets of `group` (all of them if `partitions` is `None`).
    pub async fn committed_offsets(
        &self,
        group: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<BTreeMap<TopicPartition, CommittedOffset>> {
        let conn = find_coordinator(&self.cluster, group).await?;
        offsets::fetch(&conn, group, partitions).await
    }

    /// Commits `offsets` for `group` from outside it; the coordinator refuses
    /// (UNKNOWN_MEMBER_ID) while the group has members.
    pub async fn commit_offsets(
        &self,
        group: &str,
        offsets: &[(TopicPartition, i64, Option<String>)],
    ) -> Result<()> {
        let conn = find_coordinator(&self.cluster, group).await?;
        offsets::commit(&conn, group, &Committer::outsider(), offsets).await
    }
}

/// A KIP-848 consumer group as ConsumerGroupDescribe reports it; `None` if there is
/// no such consumer group.
async fn describe_consumer_group(
    conn: &crate::connection::Connection,
    group: &str,
) -> Result<Option<GroupDescription>> {
    let v = version::<ConsumerGroupDescribeRequest>(conn)?;
    let req = ConsumerGroupDescribeRequest {
        group_ids: vec![group.to_owned()],
        include_authorized_operations: false,
    };
    let resp = send_at(conn, req, v, Duration::ZERO).await?;
    let Some(g) = resp.groups.into_iter().next() else {
        return Ok(None);
    };
    match ErrorCode::from_code(g.error_code) {
        ErrorCode::None => {}
        ErrorCode::GroupIdNotFound => return Ok(None),
        code => {
            return Err(Error::kafka(
                format!("group {group}"),
                code,
                g.error_message,
            ))
        }
    }
    Ok(Some(GroupDescription {
        group_id: g.group_id,
        state: g.group_state,
        protocol_type: PROTOCOL_TYPE.to_owned(),
        protocol: g.assignor_name,
        members: g
            .members
            .into_iter()
            .map(|m| MemberDescription {
                assignment: m
                    .assignment
                    .topic_partitions
                    .iter()
                    .flat_map(|t| {
                        t.partitions
                            .iter()
                            .map(|p| TopicPartition::new(t.topic_name.as_str(), *p))
                    })
                    .collect(),
                member_id: m.member_id,
                instance_id: m.instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
            })
            .collect(),
    }))
}
