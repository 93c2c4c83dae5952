//! One rebalance as a member sees it: give up what must be given up, join, (as
//! leader) assign, sync, and take over the new assignment with its committed
//! offsets. Run from `poll` whenever the member must (re)join.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use weir_types::ErrorCode;

use super::assignor::{Assignor, MemberSubscription};
use super::config::Topics;
use super::membership::{Joined, Retry};
use super::offsets;
use super::protocol::{
    decode_assignment, decode_subscription, encode_assignment, encode_subscription, Subscription,
};
use super::GroupConsumer;
use crate::cluster::TopicPartition;
use crate::error::{Error, Result};
use crate::util::backoff;

impl GroupConsumer {
    /// Joins (or rejoins) and takes over the new assignment; retries until it
    /// succeeds, a non-retriable error comes, or `max.poll.interval.ms` passes.
    pub(super) async fn rebalance(&mut self) -> Result<()> {
        let start = Instant::now();
        let client = self.config.consumer.client.clone();
        let mut attempt = 0;
        loop {
            self.give_up_before_join().await;
            let result = async {
                self.resolve_topics().await?;
                let protocols = self.protocols()?;
                {
                    let mut s = self.membership.lock();
                    s.joining = true;
                    s.rejoin = None;
                }
                let joined = self.membership.join(protocols).await?;
                {
                    let mut s = self.membership.lock();
                    s.member_id = joined.member_id.clone();
                    s.generation = joined.generation;
                }
                let assignments = if joined.leader == joined.member_id && !joined.skip_assignment {
                    self.leader_assign(&joined).await?
                } else {
                    Vec::new()
                };
                let bytes = self.membership.sync(&joined, assignments).await?;
                Ok::<_, Retry>((joined, decode_assignment(&bytes)?))
            }
            .await;
            self.membership.lock().joining = false;
            let error = match result {
                Ok((joined, assignment)) => {
                    tracing::info!(group = %self.config.group_id, generation = joined.generation,
                        member = %joined.member_id, protocol = %joined.protocol,
                        partitions = assignment.len(), "joined the group");
                    self.take_over(assignment).await;
                    return Ok(());
                }
                Err(Retry::Rejoin(code)) => {
                    tracing::debug!(?code, "rejoining the group");
                    Error::kafka(
                        format!("joining group {}", self.config.group_id),
                        code,
                        None,
                    )
                }
                Err(Retry::Fail(e)) if e.is_retriable() || e.is_connection_error() => e,
                Err(Retry::Fail(e)) => {
                    self.membership.lock().rejoin = Some("the last join failed");
                    return Err(e);
                }
            };
            if start.elapsed() >= self.config.rebalance_timeout {
                self.membership.lock().rejoin = Some("the last join failed");
                return Err(Error::OperationTimeout {
                    operation: format!("joining group {}", self.config.group_id),
                    after: self.config.rebalance_timeout,
                    last_error: Some(Box::new(error)),
                });
            }
            // A rebalance that is simply under way is rejoined at once.
            if error.code() != Some(ErrorCode::RebalanceInProgress) {
                tokio::time::sleep(backoff(
                    client.retry_backoff,
                    client.retry_backoff_max,
                    attempt,
                ))
                .await;
                attempt += 1;
            }
        }
    }

    /// Before a join: lost partitions are dropped without a commit; under eager
    /// rebalancing everything owned is committed and revoked.
    async fn give_up_before_join(&mut self) {
        let lost = std::mem::take(&mut self.membership.lock().lost);
        if lost && !self.owned.is_empty() {
            let parts: Vec<TopicPartition> = std::mem::take(&mut self.owned).into_iter().collect();
            tracing::info!(
                partitions = parts.len(),
                "partitions lost (the member was fenced)"
            );
            self.consumer.assign([]);
            self.committed.clear();
            if let Some(l) = self.listener.as_mut() {
                l.on_lost(&parts);
            }
        }
        if !self.config.is_cooperative() && !self.owned.is_empty() {
            if self.config.enable_auto_commit {
                if let Err(e) = self.commit().await {
                    tracing::warn!(error = %e, "commit before rebalance failed");
                }
            }
            let parts: Vec<TopicPartition> = std::mem::take(&mut self.owned).into_iter().collect();
            self.consumer.assign([]);
            self.committed.clear();
            if let Some(l) = self.listener.as_mut() {
                l.on_revoked(&parts);
            }
        }
    }

    /// The topic names the subscription stands for now.
    async fn resolve_topics(&mut self) -> Result<()> {
        let names: BTreeSet<String> = match &self.topics {
            None => BTreeSet::new(),
            Some(Topics::Names(n)) => n.iter().cloned().collect(),
            Some(topics) => {
                let Some(f) = topics.matcher() else {
                    return Ok(());
                };
                let md = self.consumer.cluster().refresh_all_topics().await?;
                self.pattern_checked = Some(Instant::now());
                md.topics
                    .values()
                    .filter(|t| !t.is_internal && !t.name.starts_with("__") && f(&t.name))
                    .map(|t| t.name.clone())
                    .collect()
            }
        };
        self.consumer
            .cluster()
            .add_topics(names.iter().map(String::as_str));
        self.subscribed = names;
        Ok(())
    }

    /// Between polls: a pattern that matches a different set of topics, or (as
    /// leader) a topic whose partition count changed, needs a rebalance.
    pub(super) async fn check_subscription(&mut self) {
        let max_age = self.config.consumer.client.metadata_max_age;
        if let Some(f) = self.topics.as_ref().and_then(Topics::matcher) {
            let due = self.pattern_checked.is_none_or(|t| t.elapsed() >= max_age);
            if due && self.membership.lock().rejoin.is_none() {
                self.pattern_checked = Some(Instant::now());
                if let Ok(md) = self.consumer.cluster().refresh_all_topics().await {
                    let now: BTreeSet<String> = md
                        .topics
                        .values()
                        .filter(|t| !t.is_internal && !t.name.starts_with("__") && f(&t.name))
                        .map(|t| t.name.clone())
                        .collect();
                    if now != self.subscribed {
                        self.membership.lock().rejoin = Some("the pattern matches other topics");
                    }
                }
            }
        }
        if let Some(counts) = &self.assigned_counts {
            let md = self.consumer.cluster().metadata();
            let changed = self.subscribed.iter().any(|t| {
                let now = md.topic(t).map(|i| i.partitions.len() as i32);
                now.is_some_and(|n| counts.get(t) != Some(&n))
            });
            if changed {
                self.assigned_counts = None;
                self.membership.lock().rejoin = Some("partitions of a subscribed topic changed");
            }
        }
    }

    /// The JoinGroup protocols: one subscription per assignor, in preference order.
    fn protocols(&self) -> Result<Vec<(String, Bytes)>> {
        let cooperative = self.config.is_cooperative();
        let subscription = Subscription {
            topics: self.subscribed.iter().cloned().collect(),
            owned: if cooperative {
                self.owned.iter().cloned().collect()
            } else {
                Vec::new()
            },
            generation: if cooperative { self.generation() } else { -1 },
            user_data: None,
        };
        let bytes = encode_subscription(&subscription)?;
        Ok(self
            .config
            .assignors
            .iter()
            .map(|a| (a.name().to_owned(), bytes.clone()))
            .collect())
    }

    /// As leader: runs the chosen assignor over every member's subscription.
    async fn leader_assign(&mut self, joined: &Joined) -> Result<Vec<(String, Bytes)>> {
        let assignor = Assignor::from_name(&joined.protocol).ok_or_else(|| {
            Error::Config(format!(
                "the group chose assignor {:?}, which this client does not have",
                joined.protocol
            ))
        })?;
        let members: Vec<MemberSubscription> = joined
            .members
            .iter()
            .map(|m| MemberSubscription {
                member_id: m.member_id.clone(),
                instance_id: m.group_instance_id.clone(),
                subscription: decode_subscription(&m.metadata).unwrap_or_else(|e| {
                    tracing::warn!(member = %m.member_id, error = %e,
                        "unreadable subscription; assigning nothing to it");
                    Subscription::default()
                }),
            })
            .collect();
        let topics: BTreeSet<String> = members
            .iter()
            .flat_map(|m| m.subscription.topics.iter().cloned())
            .collect();
        let cluster = self.consumer.cluster().clone();
        cluster.add_topics(topics.iter().map(String::as_str));
        if let Err(e) = cluster.refresh().await {
            tracing::debug!(error = %e, "metadata refresh before assigning failed");
        }
        let md = cluster.metadata();
        let counts: BTreeMap<String, i32> = topics
            .iter()
            .filter_map(|t| {
                let n = md.topic(t)?.partitions.len();
                (n > 0).then(|| (t.clone(), i32::try_from(n).unwrap_or(i32::MAX)))
            })
            .collect();
        let assignment = assignor.assign(&members, &counts);
        self.assigned_counts = Some(counts);
        assignment
            .into_iter()
            .map(|(m, parts)| Ok((m, encode_assignment(&parts)?)))
            .collect()
    }

    /// Takes over `assignment` (see [`GroupConsumer::move_to`]), and under
    /// cooperative rebalancing rejoins at once if something was given up.
    async fn take_over(&mut self, assignment: Vec<TopicPartition>) {
        let moved = self.move_to(assignment.into_iter().collect()).await;
        if self.config.is_cooperative() && moved.revoked {
            self.membership.lock().rejoin = Some("partitions were revoked");
        }
    }

    /// Moves to owning `new`, for either group protocol: revokes what left
    /// (committing it first with auto commit), then starts what is new from its
    /// committed offset, telling the listener of each step.
    pub(super) async fn move_to(&mut self, new: BTreeSet<TopicPartition>) -> Moved {
        let revoked: BTreeSet<TopicPartition> = self.owned.difference(&new).cloned().collect();
        let added: Vec<TopicPartition> = new.difference(&self.owned).cloned().collect();
        if !revoked.is_empty() {
            if self.config.enable_auto_commit {
                if let Err(e) = self.commit_positions(&revoked).await {
                    tracing::warn!(error = %e, "commit of revoked partitions failed");
                }
            }
            for tp in &revoked {
                self.committed.remove(tp);
            }
            let parts: Vec<TopicPartition> = revoked.iter().cloned().collect();
            if let Some(l) = self.listener.as_mut() {
                l.on_revoked(&parts);
            }
        }
        self.consumer
            .cluster()
            .add_topics(new.iter().map(|tp| tp.topic.as_str()));
        self.consumer.assign(new.iter().cloned());
        self.owned = new;
        if !added.is_empty() {
            let committed = self.fetch_committed(&added).await;
            for tp in &added {
                if let Some(c) = committed.get(tp) {
                    if self.consumer.seek(tp, c.offset).is_ok() {
                        self.committed.insert(tp.clone(), c.offset);
                    }
                }
            }
            if let Some(l) = self.listener.as_mut() {
                l.on_assigned(&added);
            }
        }
        Moved {
            revoked: !revoked.is_empty(),
            added: !added.is_empty(),
        }
    }

    /// The committed offsets of `partitions`, retrying while offsets are unstable
    /// or the coordinator loads; on failure the partitions start per
    /// `auto.offset.reset`... which could re-read or skip records, so this tries
    /// hard (until `default.api.timeout.ms`).
    pub(super) async fn fetch_committed(
        &mut self,
        partitions: &[TopicPartition],
    ) -> BTreeMap<TopicPartition, offsets::CommittedOffset> {
        let client = self.config.consumer.client.clone();
        let start = Instant::now();
        let mut attempt = 0;
        loop {
            let result = async {
                let conn = self.membership.coordinator().await?;
                offsets::fetch(&conn, &self.config.group_id, Some(partitions)).await
            }
            .await;
            match result {
                Ok(m) => return m,
                Err(e) => {
                    self.membership
                        .coordinator_error(e.code(), e.is_connection_error());
                    if start.elapsed() >= client.api_timeout {
                        tracing::warn!(error = %e, "cannot read committed offsets; using auto.offset.reset");
                        return BTreeMap::new();
                    }
                    tracing::debug!(error = %e, "reading committed offsets; retrying");
                }
            }
            let wait = backoff(client.retry_backoff, client.retry_backoff_max, attempt)
                .max(Duration::from_millis(10));
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

/// What [`GroupConsumer::move_to`] changed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Moved {
    /// Some partitions were given up.
    pub(super) revoked: bool,
    /// Some partitions were taken.
    pub(super) added: bool,
}
