//! Consumer groups: members of a group share the partitions of the topics they
//! subscribe to, and the group's committed offsets say where each partition
//! resumes.
//!
//! [`GroupConsumer`] is a [`Consumer`] driven by group membership (the classic
//! protocol: JoinGroup, SyncGroup, Heartbeat, LeaveGroup). It changes the plain
//! consumer's assignment only through [`Consumer::assign`] and positions only
//! through [`Consumer::seek`]; the fetch loop is the plain consumer's.
//!
//! # How a member joins
//!
//! 1. FindCoordinator names the broker that runs the group; the member opens a
//!    dedicated connection to it (a JoinGroup may be held there for a whole
//!    rebalance, which must not delay fetches).
//! 2. JoinGroup with an empty member id gets MEMBER_ID_REQUIRED and the id to
//!    use (KIP-394); the member joins again with it. Every member sends its
//!    subscription ([`Subscription`], the consumer protocol's metadata) for each
//!    assignor it supports.
//! 3. The coordinator picks the first assignor every member supports and makes
//!    one member the leader; the leader runs it ([`Assignor`]) and sends every
//!    member's assignment in SyncGroup.
//! 4. Each member gets its assignment from SyncGroup, reads the committed offsets
//!    of partitions new to it (OffsetFetch) and starts from them, or per
//!    `auto.offset.reset` where the group has none.
//!
//! A background task heartbeats every `heartbeat.interval.ms`. When the
//! coordinator answers REBALANCE_IN_PROGRESS the next `poll` rejoins; on
//! UNKNOWN_MEMBER_ID or ILLEGAL_GENERATION the member's partitions are lost
//! ([`RebalanceListener::on_lost`]) and it joins afresh.
//!
//! # Eager and cooperative rebalancing
//!
//! With `range` (eager) a member commits and gives up all its partitions before
//! it rejoins. With `cooperative-sticky` (KIP-429) it keeps consuming what it owns
//! through the rebalance, reports what it owns in its subscription, and gives up
//! only what the new assignment moves away; having given something up it rejoins
//! at once so the partition can reach its new owner.
//!
//! # Commits
//!
//! With `enable.auto.commit` the positions are committed every
//! `auto.commit.interval.ms` from `poll`, before partitions are revoked, and on
//! [`GroupConsumer::close`]. [`GroupConsumer::commit`] commits the positions now;
//! [`GroupConsumer::commit_offsets`] commits chosen offsets with metadata. Commits
//! carry the generation and member id, so a fenced member cannot overwrite the
//! offsets of the partitions' new owner.
//!
//! # The consumer protocol (KIP-848)
//!
//! With [`GroupProtocol::Consumer`] the member heartbeats with
//! ConsumerGroupHeartbeat instead, the broker assigns (`group.remote.assignor`),
//! and `poll` reconciles toward what it is given; see `consumer_protocol.rs`.
//!
//! # Topic patterns
//!
//! [`GroupConsumer::subscribe_regex`] subscribes to every topic whose whole name
//! matches: the classic protocol matches it here against the cluster's topics on
//! every metadata refresh (as the Java client does), so a new matching topic joins
//! the subscription within `metadata.max.age.ms`; the consumer protocol sends it to
//! the broker, which resolves it.

mod assignor;
mod config;
mod consumer_protocol;
mod membership;
mod offsets;
mod protocol;
mod rebalance;

pub mod admin;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

pub use assignor::{Assignor, MemberSubscription};
pub use config::{GroupConfig, GroupProtocol, RebalanceListener, TopicRegex, Topics};
pub use offsets::CommittedOffset;
pub use protocol::{decode_assignment, decode_subscription, Subscription};

use crate::cluster::{Cluster, TopicPartition};
use crate::consumer::{Consumer, ConsumerRecord};
use crate::error::{Error, Result};
use membership::Membership;

/// How often `poll` looks at the group's state between fetches.
const POLL_SLICE: Duration = Duration::from_millis(200);

/// A consumer that is a member of a group.
pub struct GroupConsumer {
    consumer: Consumer,
    membership: Membership,
    config: Arc<GroupConfig>,
    /// What the member subscribed to; `None` until `subscribe`.
    topics: Option<Topics>,
    /// The topic names the subscription currently stands for.
    subscribed: BTreeSet<String>,
    /// The partitions this member owns (its assignment).
    owned: BTreeSet<TopicPartition>,
    listener: Option<Box<dyn RebalanceListener>>,
    /// The offsets last committed (or read as committed) per owned partition, so
    /// auto commit sends only what moved.
    committed: BTreeMap<TopicPartition, i64>,
    last_auto_commit: Instant,
    /// As leader: the partition counts the last assignment was made with; a change
    /// triggers a rebalance.
    assigned_counts: Option<BTreeMap<String, i32>>,
    /// When a pattern subscription was last matched against the cluster's topics.
    pattern_checked: Option<Instant>,
    closed: bool,
}

impl std::fmt::Debug for GroupConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupConsumer")
            .field("group_id", &self.config.group_id)
            .field("topics", &self.topics)
            .field("owned", &self.owned)
            .finish_non_exhaustive()
    }
}

impl GroupConsumer {
    /// Connects to the cluster. Nothing is joined before the first `poll` after
    /// [`GroupConsumer::subscribe`].
    pub async fn new(config: GroupConfig) -> Result<GroupConsumer> {
        config.validate()?;
        let cluster = Cluster::connect(config.consumer.client.clone()).await?;
        GroupConsumer::with_cluster(cluster, config)
    }

    /// A group consumer over an existing cluster handle. Must be called inside a
    /// tokio runtime (it starts the heartbeat task).
    pub fn with_cluster(cluster: Cluster, config: GroupConfig) -> Result<GroupConsumer> {
        config.validate()?;
        let consumer = Consumer::with_cluster(cluster.clone(), config.consumer.clone())?;
        let config = Arc::new(config);
        Ok(GroupConsumer {
            consumer,
            membership: Membership::new(cluster, config.clone()),
            config,
            topics: None,
            subscribed: BTreeSet::new(),
            owned: BTreeSet::new(),
            listener: None,
            committed: BTreeMap::new(),
            last_auto_commit: Instant::now(),
            assigned_counts: None,
            pattern_checked: None,
            closed: false,
        })
    }

    /// Sets the callbacks run on assignment changes.
    pub fn set_rebalance_listener(&mut self, listener: Box<dyn RebalanceListener>) {
        self.listener = Some(listener);
    }

    /// Subscribes to these topics (replacing any earlier subscription); the next
    /// `poll` joins or rejoins the group.
    pub fn subscribe<I, S>(&mut self, topics: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.subscribe_to(Topics::Names(topics.into_iter().map(Into::into).collect()));
    }

    /// Subscribes to every existing topic whose name `matches` accepts (with the
    /// `regex` crate: `move |t| re.is_match(t)`). New matching topics are picked up
    /// within `metadata.max.age.ms`.
    pub fn subscribe_pattern(&mut self, matches: impl Fn(&str) -> bool + Send + Sync + 'static) {
        self.subscribe_to(Topics::Pattern(Arc::new(matches)));
    }

    /// Subscribes to every existing topic, internal ones excepted, whose whole
    /// name matches the regular expression `regex` (Java's `subscribe(Pattern)`);
    /// see the module docs.
    pub fn subscribe_regex(&mut self, regex: &str) -> Result<()> {
        self.subscribe_to(Topics::Regex(TopicRegex::new(regex)?));
        Ok(())
    }

    /// Subscribes to `topics`.
    pub fn subscribe_to(&mut self, topics: Topics) {
        if self.config.group_protocol == GroupProtocol::Consumer {
            if let Err(e) = self.subscribe_consumer_protocol(&topics) {
                self.membership.lock().fatal = Some(e);
            }
        }
        self.topics = Some(topics);
        self.pattern_checked = None;
        self.membership.lock().rejoin = Some("the subscription changed");
    }

    /// The partitions assigned to this member.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.owned.iter().cloned().collect()
    }

    /// The member id the coordinator gave this member (empty before the first join).
    pub fn member_id(&self) -> String {
        self.membership.lock().member_id.clone()
    }

    /// The generation this member is in (-1 outside one).
    pub fn generation(&self) -> i32 {
        self.membership.lock().generation
    }

    /// The underlying consumer (positions, high watermarks).
    pub fn consumer(&self) -> &Consumer {
        &self.consumer
    }

    /// The next `poll` returns `tp` from `offset`.
    pub fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<()> {
        self.consumer.seek(tp, offset)
    }

    /// The offset of the next record `poll` returns for `tp`, once known.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.consumer.position(tp)
    }

    /// Waits up to `timeout` for records of the member's partitions. Joins the
    /// group first if needed (a rebalance is completed even if it takes longer
    /// than `timeout`), and auto-commits when due.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        if self.closed {
            return Err(Error::Closed("group consumer"));
        }
        if self.topics.is_none() {
            return Err(Error::Config(
                "subscribe to topics before polling a group consumer".into(),
            ));
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.membership.lock().fatal.clone() {
                return Err(e);
            }
            if self.config.group_protocol == GroupProtocol::Consumer {
                self.reconcile().await?;
            } else {
                self.check_subscription().await;
                if self.membership.lock().rejoin.is_some() {
                    self.rebalance().await?;
                }
            }
            self.maybe_auto_commit().await;
            let slice = deadline
                .saturating_duration_since(Instant::now())
                .min(POLL_SLICE);
            let records = self.consumer.poll(slice).await?;
            if !records.is_empty() {
                return Ok(records);
            }
            if Instant::now() >= deadline {
                return Ok(Vec::new());
            }
        }
    }

    /// Commits the positions of every owned partition now.
    pub async fn commit(&mut self) -> Result<()> {
        let owned = self.owned.clone();
        self.commit_positions(&owned).await
    }

    /// Commits these offsets (the next offset to read, and optional metadata),
    /// with the member's generation.
    pub async fn commit_offsets(
        &mut self,
        offsets: &[(TopicPartition, i64, Option<String>)],
    ) -> Result<()> {
        let conn = self.membership.coordinator().await?;
        let who = self.membership.committer();
        match offsets::commit(&conn, &self.config.group_id, &who, offsets).await {
            Ok(()) => {
                for (tp, offset, _) in offsets {
                    self.committed.insert(tp.clone(), *offset);
                }
                Ok(())
            }
            Err(e) => {
                self.on_commit_error(&e);
                Err(e)
            }
        }
    }

    /// The group's committed offsets for `partitions` (those without one are left
    /// out).
    pub async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, CommittedOffset>> {
        let conn = self.membership.coordinator().await?;
        offsets::fetch(&conn, &self.config.group_id, Some(partitions)).await
    }

    /// Commits (with auto commit), gives up the partitions and leaves the group
    /// (a static member stays until its session times out). Dropping the consumer
    /// without `close` is a crash: the group notices after `session.timeout.ms`.
    pub async fn close(mut self) -> Result<()> {
        self.closed = true;
        let mut first_error = None;
        if self.config.enable_auto_commit && self.generation() >= 0 {
            if let Err(e) = self.commit().await {
                tracing::warn!(error = %e, "commit on close failed");
                first_error = Some(e);
            }
        }
        let owned: Vec<TopicPartition> = std::mem::take(&mut self.owned).into_iter().collect();
        self.consumer.assign([]);
        if !owned.is_empty() {
            if let Some(l) = self.listener.as_mut() {
                l.on_revoked(&owned);
            }
        }
        if let Err(e) = self.membership.leave().await {
            first_error.get_or_insert(e);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Commits the positions of `partitions` that moved since the last commit.
    async fn commit_positions(&mut self, partitions: &BTreeSet<TopicPartition>) -> Result<()> {
        let offsets: Vec<(TopicPartition, i64, Option<String>)> = partitions
            .iter()
            .filter_map(|tp| Some((tp.clone(), self.consumer.position(tp)?, None)))
            .filter(|(tp, p, _)| self.committed.get(tp) != Some(p))
            .collect();
        if offsets.is_empty() {
            return Ok(());
        }
        self.commit_offsets(&offsets).await
    }

    /// Rejoins after a commit the coordinator fenced, and forgets a coordinator
    /// that moved.
    fn on_commit_error(&self, e: &Error) {
        use weir_types::ErrorCode as C;
        if self.config.group_protocol == GroupProtocol::Consumer {
            // The heartbeat learns the member's fate (STALE_MEMBER_EPOCH, fenced).
            self.membership
                .coordinator_error(e.code(), e.is_connection_error());
            self.membership.wake.notify_one();
            return;
        }
        match e.code() {
            Some(C::RebalanceInProgress) => {
                self.membership.lock().rejoin = Some("the group is rebalancing");
            }
            Some(C::IllegalGeneration | C::UnknownMemberId) => {
                let mut s = self.membership.lock();
                s.lost = true;
                s.rejoin = Some("a commit was fenced");
            }
            code => self
                .membership
                .coordinator_error(code, e.is_connection_error()),
        }
    }

    async fn maybe_auto_commit(&mut self) {
        if !self.config.enable_auto_commit
            || self.last_auto_commit.elapsed() < self.config.auto_commit_interval
        {
            return;
        }
        self.last_auto_commit = Instant::now();
        if let Err(e) = self.commit().await {
            tracing::debug!(error = %e, "auto commit failed");
        }
    }
}
