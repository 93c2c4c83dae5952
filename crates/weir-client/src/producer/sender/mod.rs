//! The sender task: drains ready batches into Produce requests and settles their
//! outcomes.
//!
//! One task per producer runs [`Sender::run`]: a loop that (1) handles finished
//! work (responses, connections, metadata refreshes, InitProducerId), (2) expires
//! batches past `delivery.timeout.ms`, (3) obtains a producer id or an epoch bump
//! when idempotence needs one, and (4) groups ready partitions by leader and queues
//! one Produce request per broker with room in its in-flight window. Requests are
//! queued on the connection synchronously, so their order on the wire is the order
//! here; their responses are awaited in small spawned tasks that report back
//! through a channel, which keeps every piece of state in this one task.
//!
//! Ordering rules (idempotent producer): a batch that already has a sequence (a
//! retry) is sent only when nothing else of its partition is in flight, and nothing
//! is sent while an epoch bump is pending; the bump itself waits until no request
//! is in flight.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use weir_protocol::messages::init_producer_id::InitProducerIdRequest;
use weir_protocol::messages::produce::{
    PartitionProduceData, ProduceRequest, ProduceResponse, TopicProduceData,
};
use weir_types::NodeId;

use super::batch::ProducerBatch;
use super::config::Acks;
use super::idempotence::{Idempotence, ProducerIdentity};
use super::Shared;
use crate::cluster::{Cluster, TopicPartition};
use crate::error::{Error, Result};
use crate::util::backoff;

mod settle;

/// Work that finished outside the sender loop.
enum Event {
    Produced {
        node: NodeId,
        batches: Vec<ProducerBatch>,
        /// `None`: an acks=0 request was written.
        result: Result<Option<ProduceResponse>>,
    },
    Connected {
        node: NodeId,
        result: Result<()>,
    },
    Refreshed,
    ProducerId(Result<ProducerIdentity>),
}

/// A queued Produce request: its response, or `None` once written (acks=0).
type InFlight =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Option<ProduceResponse>>> + Send>>;

/// The longest the loop sleeps while batches are waiting (a safety net for
/// conditions no event announces, such as a delivery timeout passing).
const MAX_IDLE_WITH_WORK: Duration = Duration::from_millis(100);

pub(crate) struct Sender {
    shared: Arc<Shared>,
    cluster: Cluster,
    /// `None` when the producer is not idempotent.
    idem: Option<Idempotence>,
    in_flight_nodes: HashMap<NodeId, usize>,
    in_flight_partitions: HashMap<TopicPartition, usize>,
    in_flight_total: usize,
    connecting: HashSet<NodeId>,
    /// Brokers not to dial again before the instant (failed connects).
    node_backoff: HashMap<NodeId, (u32, Instant)>,
    refreshing: bool,
    pid_running: bool,
    pid_attempts: u32,
    pid_retry_at: Option<Instant>,
    tx: mpsc::UnboundedSender<Event>,
    rx: mpsc::UnboundedReceiver<Event>,
}

impl Sender {
    pub(crate) fn new(shared: Arc<Shared>) -> Sender {
        let (tx, rx) = mpsc::unbounded_channel();
        Sender {
            cluster: shared.cluster.clone(),
            idem: shared.config.idempotent().then(Idempotence::default),
            shared,
            in_flight_nodes: HashMap::new(),
            in_flight_partitions: HashMap::new(),
            in_flight_total: 0,
            connecting: HashSet::new(),
            node_backoff: HashMap::new(),
            refreshing: false,
            pid_running: false,
            pid_attempts: 0,
            pid_retry_at: None,
            tx,
            rx,
        }
    }

    pub(crate) async fn run(mut self) {
        loop {
            while let Ok(ev) = self.rx.try_recv() {
                self.handle(ev);
            }
            let now = Instant::now();
            self.expire(now);
            let mut next = self.maybe_refresh(now);
            next = earliest(next, self.maybe_init_producer_id(now));
            // One request per broker per round; more rounds while requests go out,
            // so that a burst of responses (one fsync acknowledging many requests)
            // refills the in-flight window at once instead of one request per
            // wake-up, which let the window drain to one batch per fsync.
            // Bounded by the window: a round that queues nothing ends it anyway.
            for _ in 0..self.shared.config.max_in_flight {
                let (check, sent) = self.send_ready(now);
                next = earliest(next, check);
                if !sent {
                    break;
                }
            }
            let (closing, idle) = {
                let s = self.shared.state();
                (s.closing, s.acc.is_idle())
            };
            if closing && idle && self.in_flight_total == 0 {
                break;
            }
            if !idle {
                next = earliest(next, Some(now + MAX_IDLE_WITH_WORK));
            }
            let sleep = tokio::time::sleep_until(next.unwrap_or(now + Duration::from_secs(3600)));
            tokio::select! {
                ev = self.rx.recv() => {
                    if let Some(ev) = ev {
                        self.handle(ev);
                    }
                }
                _ = self.shared.wake.notified() => {}
                _ = sleep => {}
            }
        }
        self.shared.stopped.send_replace(true);
        self.shared.progress.notify_waiters();
    }

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::Produced {
                node,
                batches,
                result,
            } => self.on_produced(node, batches, result),
            Event::Connected { node, result } => {
                self.connecting.remove(&node);
                match result {
                    Ok(()) => {
                        self.node_backoff.remove(&node);
                    }
                    Err(e) => {
                        tracing::debug!(%node, error = %e, "producer: cannot connect");
                        let c = self.cluster.config();
                        let attempts = self.node_backoff.get(&node).map_or(0, |b| b.0);
                        let wait = backoff(c.retry_backoff, c.retry_backoff_max, attempts);
                        self.node_backoff
                            .insert(node, (attempts + 1, Instant::now() + wait));
                        self.cluster.request_refresh();
                    }
                }
            }
            Event::Refreshed => self.refreshing = false,
            Event::ProducerId(result) => self.on_producer_id(result),
        }
    }

    /// Starts a metadata refresh when one is due; returns when to look again.
    fn maybe_refresh(&mut self, now: Instant) -> Option<Instant> {
        if self.refreshing {
            return None;
        }
        let wait = self.cluster.refresh_wait()?;
        if !wait.is_zero() {
            return Some(now + wait);
        }
        self.refreshing = true;
        let (cluster, tx) = (self.cluster.clone(), self.tx.clone());
        tokio::spawn(async move {
            let _ = cluster.maybe_refresh().await;
            let _ = tx.send(Event::Refreshed);
        });
        None
    }

    /// Starts InitProducerId when idempotence needs an id or a bump and nothing is in
    /// flight; returns when to look again.
    fn maybe_init_producer_id(&mut self, now: Instant) -> Option<Instant> {
        let idem = self.idem.as_ref()?;
        if !idem.needs_producer_id() || self.pid_running || self.in_flight_total > 0 {
            return None;
        }
        if let Some(at) = self.pid_retry_at.filter(|&at| at > now) {
            return Some(at);
        }
        self.pid_running = true;
        let current = idem.current();
        let (cluster, tx) = (self.cluster.clone(), self.tx.clone());
        tokio::spawn(async move {
            let result = init_producer_id(&cluster, current).await;
            let _ = tx.send(Event::ProducerId(result));
        });
        None
    }

    fn on_producer_id(&mut self, result: Result<ProducerIdentity>) {
        self.pid_running = false;
        let Some(idem) = self.idem.as_mut() else {
            return;
        };
        match result {
            Ok(identity) => {
                tracing::debug!(?identity, "idempotent producer: producer id");
                idem.reset(identity);
                self.pid_attempts = 0;
                self.pid_retry_at = None;
                self.shared.state().acc.clear_sequences();
                self.shared.wake.notify_one();
            }
            Err(e) if e.is_retriable() || self.pid_attempts < 3 => {
                tracing::debug!(error = %e, "InitProducerId failed; retrying");
                let c = self.cluster.config();
                self.pid_retry_at = Some(
                    Instant::now()
                        + backoff(c.retry_backoff, c.retry_backoff_max, self.pid_attempts),
                );
                self.pid_attempts += 1;
                if e.code().is_some() && idem.current().is_some() {
                    // A refused bump: ask for a fresh id next time.
                    *idem = Idempotence::default();
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "idempotent producer cannot get a producer id");
                let batches = {
                    let mut s = self.shared.state();
                    s.fatal = Some(e.clone());
                    s.acc.drain_all()
                };
                for b in batches {
                    self.finish(b, Err(e.clone()));
                }
            }
        }
    }

    /// Queues at most one Produce request per broker for ready partitions; returns
    /// when to look again and whether any request was queued.
    fn send_ready(&mut self, now: Instant) -> (Option<Instant>, bool) {
        if self
            .idem
            .as_ref()
            .is_some_and(Idempotence::needs_producer_id)
        {
            return (None, false);
        }
        let ready = {
            let s = self.shared.state();
            s.acc.ready(now, s.flush_below, s.closing)
        };
        let mut next = ready.next_check;
        let mut sent = false;
        if ready.partitions.is_empty() {
            return (next, sent);
        }
        let metadata = self.cluster.metadata();
        let mut by_node: BTreeMap<NodeId, Vec<TopicPartition>> = BTreeMap::new();
        for tp in ready.partitions {
            match metadata.leader(&tp) {
                Some(node) => by_node.entry(node).or_default().push(tp),
                None => self.cluster.request_refresh(),
            }
        }
        for (node, partitions) in by_node {
            if let Some(&(_, until)) = self.node_backoff.get(&node) {
                if until > now {
                    next = earliest(next, Some(until));
                    continue;
                }
            }
            let in_flight = self.in_flight_nodes.get(&node).copied().unwrap_or(0);
            if in_flight >= self.shared.config.max_in_flight {
                continue;
            }
            let Some(conn) = self.cluster.try_connection(node) else {
                self.connect(node);
                continue;
            };
            let version = match conn.version_of::<ProduceRequest>() {
                Ok(v) => v,
                Err(e) => {
                    self.fail_partitions(&partitions, &e);
                    continue;
                }
            };
            let batches = self.drain_for(&partitions);
            if batches.is_empty() {
                continue;
            }
            sent |= self.dispatch(node, &conn, version, batches);
        }
        (next, sent)
    }

    /// Pops the batches of one request for `partitions`, stamping new ones.
    fn drain_for(&mut self, partitions: &[TopicPartition]) -> Vec<(ProducerBatch, bytes::Bytes)> {
        let max_request = self.shared.config.max_request_size;
        let mut out = Vec::new();
        let mut failed = Vec::new();
        let mut size = 0;
        {
            let mut s = self.shared.state();
            for tp in partitions {
                let Some(head) = s.acc.head(tp) else { continue };
                let busy = self.in_flight_partitions.get(tp).copied().unwrap_or(0) > 0;
                if self.idem.is_some() && head.stamp.is_some() && busy {
                    continue;
                }
                if size > 0 && size + head.size > max_request {
                    break;
                }
                let Some(mut b) = s.acc.pop(tp) else { continue };
                if let Some(idem) = self.idem.as_mut() {
                    if b.stamp.is_none() {
                        b.stamp = idem.assign(tp, b.record_count);
                    }
                }
                let stamp = b.stamp;
                match b.wire_bytes(stamp) {
                    Ok(bytes) => {
                        size += bytes.len();
                        out.push((b, bytes));
                    }
                    Err(e) => failed.push((b, e)),
                }
            }
        }
        for (b, e) in failed {
            self.finish(b, Err(e));
        }
        out
    }

    fn dispatch(
        &mut self,
        node: NodeId,
        conn: &crate::connection::Connection,
        version: i16,
        batches: Vec<(ProducerBatch, bytes::Bytes)>,
    ) -> bool {
        let config = &self.shared.config;
        let mut topics: Vec<TopicProduceData> = Vec::new();
        for (b, bytes) in &batches {
            let data = PartitionProduceData {
                index: b.tp.partition,
                records: Some(bytes.clone()),
            };
            match topics.iter_mut().find(|t| t.name == b.tp.topic) {
                Some(t) => t.partition_data.push(data),
                None => topics.push(TopicProduceData {
                    name: b.tp.topic.clone(),
                    partition_data: vec![data],
                }),
            }
        }
        let req = ProduceRequest {
            transactional_id: None,
            acks: config.acks.as_i16(),
            timeout_ms: i32::try_from(config.client.connection.request_timeout.as_millis())
                .unwrap_or(i32::MAX),
            topic_data: topics,
        };
        let batches: Vec<ProducerBatch> = batches
            .into_iter()
            .map(|(mut b, _)| {
                b.attempts += 1;
                b
            })
            .collect();
        // acks=0 requests count as in flight until written, which bounds the
        // bytes queued on the socket by max.in.flight.
        let queued = if config.acks == Acks::None {
            conn.enqueue_no_response(&req, version)
                .map(|written| Box::pin(async move { written.await.map(|()| None) }) as InFlight)
        } else {
            conn.enqueue(&req, version, None)
                .map(|response| Box::pin(async move { response.await.map(Some) }) as InFlight)
        };
        match queued {
            Ok(response) => {
                *self.in_flight_nodes.entry(node).or_default() += 1;
                for b in &batches {
                    *self.in_flight_partitions.entry(b.tp.clone()).or_default() += 1;
                }
                self.in_flight_total += 1;
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let result = response.await;
                    let _ = tx.send(Event::Produced {
                        node,
                        batches,
                        result,
                    });
                });
                true
            }
            // Not counted as in flight: settle at once.
            Err(e) => {
                self.settle(batches, Err(e));
                false
            }
        }
    }

    fn connect(&mut self, node: NodeId) {
        if !self.connecting.insert(node) {
            return;
        }
        let (cluster, tx) = (self.cluster.clone(), self.tx.clone());
        tokio::spawn(async move {
            let result = cluster.connection(node).await.map(|_| ());
            let _ = tx.send(Event::Connected { node, result });
        });
    }

    fn fail_partitions(&mut self, partitions: &[TopicPartition], e: &Error) {
        let mut batches = Vec::new();
        {
            let mut s = self.shared.state();
            for tp in partitions {
                while let Some(b) = s.acc.pop(tp) {
                    batches.push(b);
                }
            }
        }
        for b in batches {
            self.finish(b, Err(e.clone()));
        }
    }
}

/// InitProducerId on any broker: a bump of `current` when the broker supports v3+,
/// a fresh id otherwise.
async fn init_producer_id(
    cluster: &Cluster,
    current: Option<ProducerIdentity>,
) -> Result<ProducerIdentity> {
    let conn = cluster.any_connection().await?;
    let version = conn.version_of::<InitProducerIdRequest>()?;
    let (producer_id, producer_epoch) = match current {
        Some(c) if version >= 3 => (c.id, c.epoch),
        _ => (-1, -1),
    };
    let resp = cluster
        .send_on(
            &conn,
            InitProducerIdRequest {
                transactional_id: None,
                // What the Java client sends when it is not transactional.
                transaction_timeout_ms: i32::MAX,
                producer_id,
                producer_epoch,
            },
        )
        .await?;
    Error::check(|| "InitProducerId".to_owned(), resp.error_code, None)?;
    Ok(ProducerIdentity {
        id: resp.producer_id,
        epoch: resp.producer_epoch,
    })
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
