//! The cluster as a client sees it: bootstrap, metadata, one connection per broker.
//!
//! A [`Cluster`] starts from a list of bootstrap servers, asks one of them for
//! Metadata, and from then on knows every broker by node id. It keeps at most one
//! [`Connection`] per broker address (the producer, the consumer and the admin
//! client of one `Cluster` share them), and a metadata cache ([`Metadata`]) of the
//! topics somebody asked about.
//!
//! # Refreshing
//!
//! Metadata goes stale when a leader moves. Users of the cluster report that with
//! [`Cluster::request_refresh`] when a broker answers NOT_LEADER_OR_FOLLOWER,
//! UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE (see
//! [`Error::needs_metadata_refresh`]) or a connection is lost; the next
//! [`Cluster::maybe_refresh`] then asks again, at most once per backoff interval
//! (`retry.backoff.ms` doubling to `retry.backoff.max.ms` while refreshes fail).
//! Concurrent refreshes collapse into one request. Metadata older than
//! `metadata.max.age.ms` is refreshed too.

pub mod metadata;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use weir_protocol::messages::metadata::{MetadataRequest, MetadataRequestTopic};
use weir_protocol::Uuid;
use weir_types::{ErrorCode, NodeId};

pub use metadata::{BrokerInfo, Metadata, PartitionInfo, TopicError, TopicInfo, TopicPartition};

use crate::api::ClientRequest;
use crate::config::ClientConfig;
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::util::{backoff, random_u32};

/// A handle to the cluster; clones share connections and metadata.
#[derive(Debug, Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ClientConfig,
    state: Mutex<State>,
    /// Held while a Metadata request is out, so concurrent refreshes become one.
    refreshing: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct State {
    metadata: Arc<Metadata>,
    /// Bumped by every successful refresh.
    generation: u64,
    refreshed_at: Option<Instant>,
    /// Someone saw an error that means the metadata is out of date.
    stale: bool,
    /// Refreshes that failed in a row (for backoff).
    failures: u32,
    last_attempt: Option<Instant>,
    /// Topics whose metadata is wanted on every refresh.
    topics: BTreeSet<String>,
    /// Open connections by `host:port`.
    connections: HashMap<String, Connection>,
}

impl Cluster {
    /// Connects to one of the bootstrap servers and learns the brokers.
    pub async fn connect(config: ClientConfig) -> Result<Cluster> {
        config.validate()?;
        let cluster = Cluster {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(State::default()),
                refreshing: tokio::sync::Mutex::new(()),
            }),
        };
        let mut last = None;
        for addr in &cluster.inner.config.bootstrap_servers {
            match cluster.connect_addr(addr).await {
                Ok(conn) => match cluster.fetch_metadata(&conn, Some(Vec::new())).await {
                    Ok(()) => return Ok(cluster),
                    Err(e) => last = Some(e),
                },
                Err(e) => last = Some(e),
            }
        }
        let last = last.unwrap_or_else(|| Error::Config("bootstrap.servers is empty".into()));
        if cluster.inner.config.bootstrap_servers.len() == 1 {
            return Err(last);
        }
        Err(Error::Bootstrap {
            servers: cluster.inner.config.bootstrap_servers.join(", "),
            last: Box::new(last),
        })
    }

    /// The configuration this cluster handle was made with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current metadata snapshot.
    pub fn metadata(&self) -> Arc<Metadata> {
        self.state().metadata.clone()
    }

    /// Adds topics to those fetched on every refresh; returns whether any was new
    /// (then their metadata is not known yet and a refresh is due).
    pub fn add_topics<'a>(&self, topics: impl IntoIterator<Item = &'a str>) -> bool {
        let mut s = self.state();
        let mut added = false;
        for t in topics {
            if !s.topics.contains(t) {
                s.topics.insert(t.to_owned());
                added = true;
            }
        }
        if added {
            s.stale = true;
        }
        added
    }

    /// Marks the metadata stale; the next [`Cluster::maybe_refresh`] fetches it.
    pub fn request_refresh(&self) {
        self.state().stale = true;
    }

    /// Refreshes if the metadata is stale or older than `metadata.max.age.ms`, and
    /// the backoff after failed refreshes has passed. Returns whether it refreshed.
    pub async fn maybe_refresh(&self) -> Result<bool> {
        let due = self.refresh_wait() == Some(Duration::ZERO);
        if due {
            self.refresh().await?;
        }
        Ok(due)
    }

    /// `None` if the metadata is fresh; otherwise how long until a refresh may be
    /// attempted (zero: now).
    pub fn refresh_wait(&self) -> Option<Duration> {
        let s = self.state();
        let old = s
            .refreshed_at
            .is_none_or(|t| t.elapsed() >= self.inner.config.metadata_max_age);
        if !(s.stale || old) {
            return None;
        }
        Some(match s.last_attempt {
            None => Duration::ZERO,
            Some(t) => self.refresh_backoff(&s).saturating_sub(t.elapsed()),
        })
    }

    /// How long to wait before the next refresh attempt.
    fn refresh_backoff(&self, s: &State) -> Duration {
        let c = &self.inner.config;
        if s.failures == 0 {
            c.retry_backoff
        } else {
            backoff(c.retry_backoff, c.retry_backoff_max, s.failures)
        }
    }

    /// Fetches metadata for every topic of interest now (or joins a refresh that is
    /// already running).
    pub async fn refresh(&self) -> Result<Arc<Metadata>> {
        let generation = self.state().generation;
        let _guard = self.inner.refreshing.lock().await;
        if self.state().generation != generation {
            return Ok(self.metadata());
        }
        let topics: Vec<String> = self.state().topics.iter().cloned().collect();
        let result = self.refresh_with(Some(topics)).await;
        let mut s = self.state();
        s.last_attempt = Some(Instant::now());
        match result {
            Ok(()) => {
                s.failures = 0;
                Ok(s.metadata.clone())
            }
            Err(e) => {
                s.failures = s.failures.saturating_add(1);
                tracing::debug!(error = %e, "metadata refresh failed");
                Err(e)
            }
        }
    }

    /// Fetches metadata for every topic in the cluster (`weir topic list`).
    pub async fn refresh_all_topics(&self) -> Result<Arc<Metadata>> {
        let _guard = self.inner.refreshing.lock().await;
        self.refresh_with(None).await?;
        Ok(self.metadata())
    }

    /// Tries the known brokers (live connections first) until one answers.
    async fn refresh_with(&self, topics: Option<Vec<String>>) -> Result<()> {
        let mut last = None;
        for addr in self.candidate_addrs() {
            let conn = match self.connection_to(&addr).await {
                Ok(c) => c,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            match self.fetch_metadata(&conn, topics.clone()).await {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(Error::Closed("cluster")))
    }

    /// Addresses to ask for metadata: every broker the client knows (connected or
    /// not) in a random order, then the bootstrap servers. Not "live connections
    /// first": a broker cut off from its cluster keeps answering with stale
    /// metadata, and a client whose only connection is to it would otherwise never
    /// hear of the leader elected in its place.
    fn candidate_addrs(&self) -> Vec<String> {
        let s = self.state();
        let mut out: Vec<String> = s
            .connections
            .iter()
            .filter(|(_, c)| c.is_alive())
            .map(|(a, _)| a.clone())
            .collect();
        for a in s.metadata.brokers.values().map(BrokerInfo::addr) {
            if !out.contains(&a) {
                out.push(a);
            }
        }
        if !out.is_empty() {
            let start = random_u32() as usize % out.len();
            out.rotate_left(start);
        }
        for a in &self.inner.config.bootstrap_servers {
            if !out.contains(a) {
                out.push(a.clone());
            }
        }
        out
    }

    /// Sends one Metadata request on `conn` and merges the answer. `None` asks for
    /// every topic.
    async fn fetch_metadata(&self, conn: &Connection, topics: Option<Vec<String>>) -> Result<()> {
        let all = topics.is_none();
        let req = MetadataRequest {
            topics: topics.map(|ts| {
                ts.into_iter()
                    .map(|name| MetadataRequestTopic {
                        topic_id: Uuid::ZERO,
                        name: Some(name),
                    })
                    .collect()
            }),
            allow_auto_topic_creation: self.inner.config.allow_auto_create_topics,
            include_cluster_authorized_operations: false,
            include_topic_authorized_operations: false,
        };
        let resp = self.send_on(conn, req).await?;
        let mut s = self.state();
        let (next, errors) = s.metadata.merged(&resp, all);
        for e in &errors {
            tracing::debug!(topic = %e.topic, error = ?e.error, "metadata: topic error");
        }
        s.metadata = Arc::new(next);
        s.generation += 1;
        s.refreshed_at = Some(Instant::now());
        // A topic being created (LEADER_NOT_AVAILABLE) is worth asking about again
        // soon; one that does not exist is not (whoever waits for it polls).
        s.stale = errors
            .iter()
            .any(|e| e.error.is_retriable() && e.error != ErrorCode::UnknownTopicOrPartition);
        Ok(())
    }

    /// Waits until `topic` is in the metadata with at least one partition,
    /// refreshing with backoff, for at most `timeout`.
    pub async fn wait_for_topic(&self, topic: &str, timeout: Duration) -> Result<TopicInfo> {
        let start = Instant::now();
        self.add_topics([topic]);
        let mut attempt = 0;
        loop {
            if let Some(t) = self
                .metadata()
                .topic(topic)
                .filter(|t| !t.partitions.is_empty())
            {
                return Ok(t.clone());
            }
            if let Err(e) = self.refresh().await {
                if !e.is_retriable() {
                    return Err(e);
                }
            }
            if let Some(t) = self
                .metadata()
                .topic(topic)
                .filter(|t| !t.partitions.is_empty())
            {
                return Ok(t.clone());
            }
            if start.elapsed() >= timeout {
                return Err(Error::UnknownTopic {
                    topic: topic.to_owned(),
                    waited: start.elapsed(),
                });
            }
            let c = &self.inner.config;
            let wait = backoff(c.retry_backoff, c.retry_backoff_max, attempt)
                .min(timeout.saturating_sub(start.elapsed()));
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// An open connection to `node`, if there is one (does not connect).
    pub fn try_connection(&self, node: NodeId) -> Option<Connection> {
        let addr = self.metadata().broker_addr(node)?;
        self.state()
            .connections
            .get(&addr)
            .filter(|c| c.is_alive())
            .cloned()
    }

    /// A connection to `node`, opening one if needed.
    pub async fn connection(&self, node: NodeId) -> Result<Connection> {
        let Some(addr) = self.metadata().broker_addr(node) else {
            self.request_refresh();
            return Err(Error::kafka(
                format!("broker {node}"),
                ErrorCode::BrokerNotAvailable,
                Some(format!("broker {node} is not in the cluster metadata")),
            ));
        };
        self.connection_to(&addr).await
    }

    /// A connection to any broker: an open one if possible.
    pub async fn any_connection(&self) -> Result<Connection> {
        let mut last = None;
        for addr in self.candidate_addrs() {
            match self.connection_to(&addr).await {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(Error::Closed("cluster")))
    }

    /// A connection to the controller the metadata names (KRaft brokers forward
    /// admin requests to the real controller), or to any broker.
    pub async fn controller_connection(&self) -> Result<Connection> {
        match self.metadata().controller_id {
            Some(id) => match self.connection(id).await {
                Ok(c) => Ok(c),
                Err(_) => self.any_connection().await,
            },
            None => self.any_connection().await,
        }
    }

    async fn connection_to(&self, addr: &str) -> Result<Connection> {
        if let Some(c) = self.state().connections.get(addr).filter(|c| c.is_alive()) {
            return Ok(c.clone());
        }
        self.connect_addr(addr).await
    }

    async fn connect_addr(&self, addr: &str) -> Result<Connection> {
        match Connection::connect(addr, self.inner.config.connection.clone()).await {
            Ok(c) => {
                self.state().connections.insert(addr.to_owned(), c.clone());
                Ok(c)
            }
            Err(e) => {
                self.state().stale = true;
                Err(e)
            }
        }
    }

    /// Sends `req` on `conn`; a connection error marks the metadata stale.
    pub async fn send_on<R: ClientRequest>(
        &self,
        conn: &Connection,
        req: R,
    ) -> Result<R::Response> {
        let r = conn.send(req).await;
        if let Err(e) = &r {
            if e.is_connection_error() {
                self.request_refresh();
            }
        }
        r
    }

    /// Sends `req` to `node`.
    pub async fn send_to<R: ClientRequest>(&self, node: NodeId, req: R) -> Result<R::Response> {
        let conn = self.connection(node).await?;
        self.send_on(&conn, req).await
    }

    /// Sends `req` to any broker.
    pub async fn send_any<R: ClientRequest>(&self, req: R) -> Result<R::Response> {
        let conn = self.any_connection().await?;
        self.send_on(&conn, req).await
    }
}
