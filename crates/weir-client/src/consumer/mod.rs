//! The consumer: assigned partitions in, records out.
//!
//! [`Consumer::assign`] sets the partitions to read; [`Consumer::seek`] and its
//! siblings set where; [`Consumer::poll`] returns the next records. Behind `poll`,
//! one fetch per broker runs in the background (`fetcher.rs`): as soon as a
//! partition's buffered records are handed out, its next fetch is already on the
//! way (prefetch). Each partition's data is turned into records lazily
//! (`records.rs`), which is where records before the position, control batches and
//! aborted transactions are dropped.
//!
//! A position that does not exist yet (a new assignment, a seek to the beginning,
//! end or a time) is resolved with ListOffsets before fetching; a position the
//! broker reports out of range is reset per `auto.offset.reset`. Leader moves
//! (NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH, ...) refresh the metadata and the
//! partition is fetched from the new leader after a backoff.
//!
//! # Groups
//!
//! Assignment changes go through [`Consumer::assign`] only, and positions through
//! [`Consumer::seek`]; a group membership layer (the group coordinator issue) will
//! drive exactly these two on every rebalance, with committed offsets as positions.

mod config;
mod fetcher;
mod records;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use weir_types::{ErrorCode, NodeId};

pub use config::{ConsumerConfig, IsolationLevel, OffsetReset};
pub use records::ConsumerRecord;

use crate::cluster::{Cluster, TopicPartition};
use crate::error::{code_needs_metadata_refresh, Error, Result};
use crate::offsets::{list_offsets, OffsetSpec};
use crate::util::backoff;
use fetcher::{FetchEvent, FetchParams, FetchTarget, PartitionOutcome};
use records::CompletedFetch;

/// Where a partition stands.
#[derive(Debug, Default)]
struct PartitionState {
    /// The next offset `poll` returns; `None` until resolved.
    position: Option<i64>,
    /// A pending seek to resolve with ListOffsets (else `auto.offset.reset` applies).
    reset: Option<OffsetSpec>,
    /// Bumped by every seek: fetched data of an older generation is dropped.
    generation: u64,
    paused: bool,
    /// In a fetch that has not come back.
    fetching: bool,
    /// Has records waiting in the buffer.
    buffered: bool,
    /// Errors in a row, for backoff.
    failures: u32,
    /// Not fetched before this (after an error).
    retry_at: Option<Instant>,
    high_watermark: Option<i64>,
    last_stable_offset: Option<i64>,
    log_start_offset: Option<i64>,
}

/// A consumer of explicitly assigned partitions.
#[derive(Debug)]
pub struct Consumer {
    cluster: Cluster,
    config: ConsumerConfig,
    params: FetchParams,
    partitions: BTreeMap<TopicPartition, PartitionState>,
    buffered: VecDeque<CompletedFetch>,
    /// Brokers with a fetch outstanding.
    in_flight: HashSet<NodeId>,
    node_backoff: HashMap<NodeId, (u32, Instant)>,
    tx: mpsc::UnboundedSender<FetchEvent>,
    rx: mpsc::UnboundedReceiver<FetchEvent>,
    /// An error to report from the next `poll`.
    pending_error: Option<Error>,
}

impl Consumer {
    /// Connects to the cluster.
    pub async fn new(config: ConsumerConfig) -> Result<Consumer> {
        config.validate()?;
        let cluster = Cluster::connect(config.client.clone()).await?;
        Consumer::with_cluster(cluster, config)
    }

    /// A consumer over an existing cluster handle (sharing its connections).
    pub fn with_cluster(cluster: Cluster, config: ConsumerConfig) -> Result<Consumer> {
        config.validate()?;
        let (tx, rx) = mpsc::unbounded_channel();
        Ok(Consumer {
            cluster,
            params: FetchParams::new(&config),
            config,
            partitions: BTreeMap::new(),
            buffered: VecDeque::new(),
            in_flight: HashSet::new(),
            node_backoff: HashMap::new(),
            tx,
            rx,
            pending_error: None,
        })
    }

    /// The cluster handle the consumer uses.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Replaces the assignment. Partitions that stay keep their position; new ones
    /// start per their seek, or `auto.offset.reset`.
    pub fn assign(&mut self, partitions: impl IntoIterator<Item = TopicPartition>) {
        let wanted: HashSet<TopicPartition> = partitions.into_iter().collect();
        self.partitions.retain(|tp, _| wanted.contains(tp));
        self.buffered.retain(|f| wanted.contains(&f.tp));
        self.cluster
            .add_topics(wanted.iter().map(|tp| tp.topic.as_str()));
        for tp in wanted {
            self.partitions.entry(tp).or_default();
        }
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.partitions.keys().cloned().collect()
    }

    fn state_mut(&mut self, tp: &TopicPartition) -> Result<&mut PartitionState> {
        self.partitions
            .get_mut(tp)
            .ok_or_else(|| Error::NotAssigned {
                topic: tp.topic.clone(),
                partition: tp.partition,
            })
    }

    /// Drops buffered data of `tp` and starts a new generation.
    fn reposition(
        &mut self,
        tp: &TopicPartition,
        position: Option<i64>,
        reset: Option<OffsetSpec>,
    ) -> Result<()> {
        let s = self.state_mut(tp)?;
        s.position = position;
        s.reset = reset;
        s.generation += 1;
        s.buffered = false;
        s.retry_at = None;
        self.buffered.retain(|f| &f.tp != tp);
        Ok(())
    }

    /// The next `poll` returns `tp` from `offset`.
    pub fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<()> {
        self.reposition(tp, Some(offset), None)
    }

    /// The next `poll` returns these partitions from their log start.
    pub fn seek_to_beginning(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        for tp in partitions {
            self.reposition(tp, None, Some(OffsetSpec::Earliest))?;
        }
        Ok(())
    }

    /// The next `poll` returns these partitions from their log end (new records only).
    pub fn seek_to_end(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        for tp in partitions {
            self.reposition(tp, None, Some(OffsetSpec::Latest))?;
        }
        Ok(())
    }

    /// The next `poll` returns these partitions from the first record with a
    /// timestamp at or after `timestamp_ms` (or from the end if there is none).
    pub fn seek_to_timestamp(
        &mut self,
        partitions: &[TopicPartition],
        timestamp_ms: i64,
    ) -> Result<()> {
        for tp in partitions {
            self.reposition(tp, None, Some(OffsetSpec::Timestamp(timestamp_ms)))?;
        }
        Ok(())
    }

    /// The offset of the next record `poll` will return for `tp`, once known.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.partitions.get(tp)?.position
    }

    /// The high watermark the last fetch of `tp` reported (for lag).
    pub fn high_watermark(&self, tp: &TopicPartition) -> Option<i64> {
        self.partitions.get(tp)?.high_watermark
    }

    /// The last stable offset the last fetch of `tp` reported (the end of what
    /// read_committed can see).
    pub fn last_stable_offset(&self, tp: &TopicPartition) -> Option<i64> {
        self.partitions.get(tp)?.last_stable_offset
    }

    /// The log start offset the last fetch of `tp` reported.
    pub fn log_start_offset(&self, tp: &TopicPartition) -> Option<i64> {
        self.partitions.get(tp)?.log_start_offset
    }

    /// Stops fetching these partitions (their position is kept).
    pub fn pause(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            if let Some(s) = self.partitions.get_mut(tp) {
                s.paused = true;
            }
        }
    }

    /// Resumes fetching paused partitions.
    pub fn resume(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            if let Some(s) = self.partitions.get_mut(tp) {
                s.paused = false;
            }
        }
    }

    /// Waits up to `timeout` for records and returns at most `max.poll.records` of
    /// them (none if the time passes first).
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        let deadline = Instant::now() + timeout;
        loop {
            while let Ok(ev) = self.rx.try_recv() {
                self.on_fetch(ev);
            }
            if let Some(e) = self.pending_error.take() {
                return Err(e);
            }
            let records = self.drain()?;
            if !records.is_empty() {
                self.send_fetches();
                return Ok(records);
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if self.cluster.refresh_wait() == Some(Duration::ZERO) {
                let _ = tokio::time::timeout(remaining, self.cluster.maybe_refresh()).await;
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if let Ok(r) = tokio::time::timeout(remaining, self.resolve_positions()).await {
                r?;
            }
            let next = self.send_fetches();
            let now = Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let mut wake = next.map_or(deadline, |n| n.min(deadline));
            if let Some(wait) = self.cluster.refresh_wait() {
                wake = wake.min(now + wait.max(Duration::from_millis(1)));
            }
            tokio::select! {
                ev = self.rx.recv() => {
                    if let Some(ev) = ev {
                        self.on_fetch(ev);
                    }
                }
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    /// Hands out buffered records, up to `max.poll.records`.
    fn drain(&mut self) -> Result<Vec<ConsumerRecord>> {
        let max = self.config.max_poll_records;
        let mut out = Vec::new();
        while out.len() < max {
            let Some(fetch) = self.buffered.front_mut() else {
                break;
            };
            let Some(state) = self.partitions.get_mut(&fetch.tp) else {
                self.buffered.pop_front();
                continue;
            };
            if state.generation != fetch.generation || state.position != Some(fetch.next_offset) {
                state.buffered = false;
                self.buffered.pop_front();
                continue;
            }
            let result = fetch.take(max - out.len(), &mut out);
            state.position = Some(fetch.next_offset);
            if let Err(e) = result {
                state.buffered = false;
                self.buffered.pop_front();
                if out.is_empty() {
                    return Err(e);
                }
                self.pending_error = Some(e);
                break;
            }
            if fetch.is_done() {
                state.buffered = false;
                self.buffered.pop_front();
            }
        }
        Ok(out)
    }

    /// Resolves partitions without a position (seeks, new assignments) with
    /// ListOffsets.
    async fn resolve_positions(&mut self) -> Result<()> {
        let now = Instant::now();
        let mut query = Vec::new();
        for (tp, s) in &self.partitions {
            if s.position.is_some() || s.retry_at.is_some_and(|t| t > now) {
                continue;
            }
            let spec = match (s.reset, self.config.auto_offset_reset) {
                (Some(spec), _) => spec,
                (None, OffsetReset::Earliest) => OffsetSpec::Earliest,
                (None, OffsetReset::Latest) => OffsetSpec::Latest,
                (None, OffsetReset::None) => {
                    return Err(Error::NoOffset {
                        topic: tp.topic.clone(),
                        partition: tp.partition,
                    })
                }
            };
            query.push((tp.clone(), spec, s.generation));
        }
        if query.is_empty() {
            return Ok(());
        }
        let asked: Vec<(TopicPartition, OffsetSpec)> = query
            .iter()
            .map(|(tp, spec, _)| (tp.clone(), *spec))
            .collect();
        let mut results = list_offsets(&self.cluster, &asked, self.config.isolation_level).await?;
        // A time after the last record has no offset: start from the end instead.
        let past_end: Vec<(TopicPartition, OffsetSpec)> = results
            .iter()
            .filter(|(_, r)| matches!(r, Ok(l) if l.offset < 0))
            .map(|(tp, _)| (tp.clone(), OffsetSpec::Latest))
            .collect();
        if !past_end.is_empty() {
            let ends = list_offsets(&self.cluster, &past_end, self.config.isolation_level).await?;
            for (tp, r) in ends {
                if let Some(slot) = results.iter_mut().find(|(t, _)| *t == tp) {
                    slot.1 = r;
                }
            }
        }
        for ((tp, result), (_, _, generation)) in results.into_iter().zip(query) {
            let config = self.cluster.config().clone();
            let Some(s) = self.partitions.get_mut(&tp) else {
                continue;
            };
            if s.generation != generation || s.position.is_some() {
                continue;
            }
            match result {
                Ok(l) => {
                    s.position = Some(l.offset);
                    s.reset = None;
                    s.failures = 0;
                }
                Err(e) if e.is_retriable() => {
                    s.retry_at = Some(
                        Instant::now()
                            + backoff(config.retry_backoff, config.retry_backoff_max, s.failures),
                    );
                    s.failures += 1;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Starts a fetch on every broker that leads a fetchable partition and has none
    /// outstanding. Returns when a backoff ends, if one holds a partition back.
    fn send_fetches(&mut self) -> Option<Instant> {
        let now = Instant::now();
        let metadata = self.cluster.metadata();
        let mut next: Option<Instant> = None;
        let mut by_node: BTreeMap<NodeId, Vec<FetchTarget>> = BTreeMap::new();
        for (tp, s) in &self.partitions {
            let Some(position) = s.position else { continue };
            if s.paused || s.fetching || s.buffered {
                continue;
            }
            if let Some(t) = s.retry_at.filter(|&t| t > now) {
                next = Some(next.map_or(t, |n| n.min(t)));
                continue;
            }
            let Some(part) = metadata.partition(tp) else {
                self.cluster.request_refresh();
                continue;
            };
            let Some(leader) = part.leader else {
                self.cluster.request_refresh();
                continue;
            };
            if self.in_flight.contains(&leader) {
                continue;
            }
            if let Some(&(_, until)) = self.node_backoff.get(&leader).filter(|b| b.1 > now) {
                next = Some(next.map_or(until, |n| n.min(until)));
                continue;
            }
            let topic_id = metadata
                .topic(&tp.topic)
                .map(|t| t.topic_id)
                .unwrap_or_default();
            by_node.entry(leader).or_default().push(FetchTarget {
                tp: tp.clone(),
                topic_id,
                offset: position,
                leader_epoch: part.leader_epoch,
                generation: s.generation,
            });
        }
        for (node, targets) in by_node {
            for t in &targets {
                if let Some(s) = self.partitions.get_mut(&t.tp) {
                    s.fetching = true;
                }
            }
            self.in_flight.insert(node);
            fetcher::spawn_fetch(
                self.cluster.clone(),
                node,
                targets,
                self.params.clone(),
                self.tx.clone(),
            );
        }
        next
    }

    fn on_fetch(&mut self, ev: FetchEvent) {
        self.in_flight.remove(&ev.node);
        for t in &ev.targets {
            if let Some(s) = self.partitions.get_mut(&t.tp) {
                s.fetching = false;
            }
        }
        let config = self.cluster.config().clone();
        let outcomes = match ev
            .result
            .and_then(|(resp, version)| fetcher::outcomes(resp, version, &ev.targets))
        {
            Ok(o) => o,
            Err(e) => {
                tracing::debug!(node = %ev.node, error = %e, "fetch failed");
                let attempts = self.node_backoff.get(&ev.node).map_or(0, |b| b.0);
                let until = Instant::now()
                    + backoff(config.retry_backoff, config.retry_backoff_max, attempts);
                self.node_backoff.insert(ev.node, (attempts + 1, until));
                if !e.is_retriable() && !e.is_connection_error() {
                    self.pending_error = Some(e);
                }
                return;
            }
        };
        self.node_backoff.remove(&ev.node);
        for (i, outcome) in outcomes {
            let Some(target) = ev.targets.get(i) else {
                continue;
            };
            let Some(s) = self.partitions.get_mut(&target.tp) else {
                continue;
            };
            if s.generation != target.generation || s.position != Some(target.offset) {
                continue;
            }
            match outcome {
                PartitionOutcome::Data {
                    records,
                    aborted,
                    high_watermark,
                    last_stable_offset,
                    log_start_offset,
                } => {
                    s.failures = 0;
                    s.high_watermark = Some(high_watermark);
                    s.last_stable_offset = (last_stable_offset >= 0).then_some(last_stable_offset);
                    if log_start_offset >= 0 {
                        s.log_start_offset = Some(log_start_offset);
                    }
                    if let Some(records) = records.filter(|r| !r.is_empty()) {
                        s.buffered = true;
                        self.buffered.push_back(CompletedFetch::new(
                            target.tp.clone(),
                            target.generation,
                            records,
                            aborted,
                            self.config.isolation_level,
                            target.offset,
                            self.config.max_decompressed_batch_bytes,
                        ));
                    }
                }
                PartitionOutcome::Error(ErrorCode::OffsetOutOfRange) => {
                    match self.config.auto_offset_reset {
                        OffsetReset::None => {
                            self.pending_error = Some(Error::OffsetOutOfRange {
                                topic: target.tp.topic.clone(),
                                partition: target.tp.partition,
                                offset: target.offset,
                            });
                        }
                        policy => {
                            tracing::info!(tp = %target.tp, offset = target.offset, ?policy,
                                "fetch offset out of range; resetting");
                            s.position = None;
                            s.reset = None;
                            s.generation += 1;
                        }
                    }
                }
                PartitionOutcome::Error(code) => {
                    if code_needs_metadata_refresh(code) || code == ErrorCode::OffsetNotAvailable {
                        self.cluster.request_refresh();
                    } else if !code.is_retriable() {
                        self.pending_error = Some(Error::kafka(target.tp.to_string(), code, None));
                    }
                    tracing::debug!(tp = %target.tp, ?code, "fetch partition error");
                    s.retry_at = Some(
                        Instant::now()
                            + backoff(config.retry_backoff, config.retry_backoff_max, s.failures),
                    );
                    s.failures += 1;
                }
            }
        }
    }
}
