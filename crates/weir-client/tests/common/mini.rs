//! A miniature in-memory Kafka cluster on top of [`super::server`]: a few brokers
//! (one listener each) sharing one state, with logs that store the producer's
//! batches verbatim (offsets assigned), idempotent-producer deduplication as the
//! real broker does it, fetch, list offsets and the admin APIs. Tests inject faults
//! with a hook that sees every request first.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use weir_protocol::messages::api_versions::{ApiVersion, ApiVersionsResponse};
use weir_protocol::messages::metadata::{
    MetadataRequest, MetadataResponse, MetadataResponseBroker, MetadataResponsePartition,
    MetadataResponseTopic,
};
use weir_protocol::messages::{init_producer_id, ApiKey};
use weir_protocol::records::BatchView;
use weir_protocol::{Request, Response, Uuid};

use super::server::{Ctx, Handler, Reply, Server};

/// What a hook wants done with a request.
pub enum HookAction {
    /// Handle it normally.
    Continue,
    /// Reply with this instead.
    Reply(Reply),
    /// Handle it normally (state changes happen), then close without answering:
    /// a response lost in flight.
    HandleThenClose,
    /// Handle it normally, but answer only when the future resolves; the
    /// connection meanwhile reads and handles the requests that follow.
    AnswerAfter(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>),
}

pub type Hook = Box<dyn FnMut(i32, &Request) -> HookAction + Send>;

/// One idempotent producer's recent batches on a partition.
#[derive(Debug, Default, Clone)]
pub struct ProducerSeq {
    pub epoch: i16,
    /// (first seq, last seq, base offset) of the last five batches.
    pub recent: VecDeque<(i32, i32, i64)>,
}

#[derive(Debug, Default)]
pub struct PartitionLog {
    pub leader: i32,
    pub leader_epoch: i32,
    /// Batches as stored (base offset assigned).
    pub batches: Vec<Bytes>,
    pub next_offset: i64,
    pub log_start: i64,
    pub producers: HashMap<i64, ProducerSeq>,
    /// (producer id, first offset, abort marker offset) of aborted transactions.
    pub aborted: Vec<(i64, i64, i64)>,
}

#[derive(Debug)]
pub struct TopicState {
    pub id: Uuid,
    pub partitions: Vec<PartitionLog>,
    pub configs: BTreeMap<String, String>,
}

pub struct State {
    pub nodes: Vec<(i32, u16)>,
    pub topics: BTreeMap<String, TopicState>,
    pub auto_create: bool,
    pub next_producer_id: i64,
    pub producer_epochs: HashMap<i64, i16>,
    /// Highest version advertised per API key (defaults to the codec's).
    pub api_max: HashMap<i16, i16>,
    pub hook: Option<Hook>,
    /// (node, api key, version) of every request.
    pub requests: Vec<(i32, i16, i16)>,
}

#[derive(Clone)]
pub struct Mini {
    state: Arc<Mutex<State>>,
    pub servers: Arc<Vec<Server>>,
}

impl Mini {
    /// Starts `nodes` brokers (ids 1..=nodes).
    pub async fn start(nodes: i32) -> Mini {
        let mut listeners = Vec::new();
        for id in 1..=nodes {
            let l = Server::bind().await;
            let port = l.local_addr().unwrap().port();
            listeners.push((id, l, port));
        }
        let state = Arc::new(Mutex::new(State {
            nodes: listeners.iter().map(|(id, _, port)| (*id, *port)).collect(),
            topics: BTreeMap::new(),
            auto_create: true,
            next_producer_id: 1000,
            producer_epochs: HashMap::new(),
            api_max: HashMap::new(),
            hook: None,
            requests: Vec::new(),
        }));
        let mut servers = Vec::new();
        for (id, l, _) in listeners {
            let st = state.clone();
            let handler: Handler = Arc::new(move |ctx: &Ctx, req: Request| handle(&st, ctx, req));
            servers.push(Server::start(l, id, handler));
        }
        Mini {
            state,
            servers: Arc::new(servers),
        }
    }

    pub fn bootstrap(&self) -> String {
        self.servers[0].addr_string()
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    pub fn set_hook(&self, hook: impl FnMut(i32, &Request) -> HookAction + Send + 'static) {
        self.state().hook = Some(Box::new(hook));
    }

    pub fn create_topic(&self, name: &str, partitions: i32, leader: i32) {
        self.state().create_topic(name, partitions, leader);
    }

    /// Moves a partition's leadership (bumping its epoch).
    pub fn move_leader(&self, topic: &str, partition: usize, leader: i32) {
        let mut s = self.state();
        let p = &mut s.topics.get_mut(topic).unwrap().partitions[partition];
        p.leader = leader;
        p.leader_epoch += 1;
    }

    /// Every record value of a partition, in offset order, with its offset.
    pub fn values(&self, topic: &str, partition: usize) -> Vec<(i64, Bytes)> {
        let s = self.state();
        let mut out = Vec::new();
        for b in &s.topics[topic].partitions[partition].batches {
            let v = BatchView::parse(b.clone()).unwrap();
            if v.is_control() {
                continue;
            }
            for r in v.records(1 << 30).unwrap() {
                let r = r.unwrap();
                out.push((r.offset, r.value.unwrap_or_default()));
            }
        }
        out
    }

    /// Appends a prepared batch verbatim (offset assigned), e.g. a control batch.
    pub fn append_raw(&self, topic: &str, partition: usize, batch: Bytes) -> i64 {
        let mut s = self.state();
        let p = &mut s.topics.get_mut(topic).unwrap().partitions[partition];
        append(p, BatchView::parse(batch).unwrap())
    }

    pub fn count(&self, api: ApiKey) -> usize {
        self.state()
            .requests
            .iter()
            .filter(|r| r.1 == api as i16)
            .count()
    }
}

impl State {
    pub fn create_topic(&mut self, name: &str, partitions: i32, leader: i32) {
        let mut id = [0u8; 16];
        for (i, b) in name.bytes().enumerate() {
            id[i % 16] ^= b;
        }
        id[15] |= 1;
        self.topics.insert(
            name.to_owned(),
            TopicState {
                id: Uuid(id),
                partitions: (0..partitions)
                    .map(|_| PartitionLog {
                        leader,
                        ..Default::default()
                    })
                    .collect(),
                configs: BTreeMap::new(),
            },
        );
    }
}

/// Appends a batch at the log end; returns its base offset.
pub fn append(p: &mut PartitionLog, mut view: BatchView) -> i64 {
    let base = p.next_offset;
    view.assign(base, p.leader_epoch);
    p.next_offset = view.next_offset();
    p.batches.push(view.into_bytes());
    base
}

fn handle(st: &Arc<Mutex<State>>, ctx: &Ctx, req: Request) -> Reply {
    let mut s = st.lock().unwrap();
    s.requests
        .push((ctx.node, ctx.header.api_key, ctx.header.api_version));
    let mut close_after = false;
    let mut answer_after = None;
    if let Some(hook) = s.hook.as_mut() {
        match hook(ctx.node, &req) {
            HookAction::Continue => {}
            HookAction::Reply(r) => return r,
            HookAction::HandleThenClose => close_after = true,
            HookAction::AnswerAfter(wait) => answer_after = Some(wait),
        }
    }
    let reply = match req {
        Request::ApiVersions(_) => api_versions(&s, ctx),
        Request::Metadata(r) => Reply::Respond(Response::Metadata(metadata(&mut s, r))),
        Request::InitProducerId(r) => Reply::Respond(Response::InitProducerId(init_pid(&mut s, r))),
        other => super::mini_data::handle(&mut s, ctx, other),
    };
    if close_after {
        return Reply::Close;
    }
    if let Some(wait) = answer_after {
        return Reply::Later(Box::pin(async move {
            wait.await;
            reply
        }));
    }
    match reply {
        // Fetch with nothing to return waits a little, as max_wait_ms allows.
        Reply::Delay(d, inner) => Reply::Delay(d.min(Duration::from_millis(200)), inner),
        r => r,
    }
}

fn api_versions(s: &State, ctx: &Ctx) -> Reply {
    // Everything the codec knows but DescribeTopicPartitions, which the mini
    // cluster does not serve: the admin client then describes with Metadata.
    let keys: Vec<ApiVersion> = ApiKey::ALL
        .iter()
        .filter(|&&api| api != ApiKey::DescribeTopicPartitions)
        .map(|&api| {
            let (min, max) = api.versions();
            let cap = s.api_max.get(&(api as i16)).copied().unwrap_or(max);
            ApiVersion {
                api_key: api as i16,
                min_version: min,
                max_version: max.min(cap),
            }
        })
        .collect();
    let own_max = s
        .api_max
        .get(&(ApiKey::ApiVersions as i16))
        .copied()
        .unwrap_or(4);
    if ctx.header.api_version > own_max {
        let resp = ApiVersionsResponse {
            error_code: 35,
            api_keys: keys,
            ..Default::default()
        };
        return Reply::RespondAt(Response::ApiVersions(resp), 0);
    }
    Reply::Respond(Response::ApiVersions(ApiVersionsResponse {
        api_keys: keys,
        ..Default::default()
    }))
}

fn metadata(s: &mut State, r: MetadataRequest) -> MetadataResponse {
    let names: Vec<String> = match r.topics {
        None => s.topics.keys().cloned().collect(),
        Some(ts) => ts.into_iter().filter_map(|t| t.name).collect(),
    };
    let first = s.nodes[0].0;
    let mut topics = Vec::new();
    for name in names {
        if !s.topics.contains_key(&name) && r.allow_auto_topic_creation && s.auto_create {
            s.create_topic(&name, 1, first);
        }
        let Some(t) = s.topics.get(&name) else {
            topics.push(MetadataResponseTopic {
                error_code: 3,
                name: Some(name),
                ..Default::default()
            });
            continue;
        };
        topics.push(MetadataResponseTopic {
            error_code: 0,
            name: Some(name),
            topic_id: t.id,
            partitions: t
                .partitions
                .iter()
                .enumerate()
                .map(|(i, p)| MetadataResponsePartition {
                    partition_index: i as i32,
                    leader_id: p.leader,
                    leader_epoch: p.leader_epoch,
                    replica_nodes: vec![p.leader],
                    isr_nodes: vec![p.leader],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        });
    }
    MetadataResponse {
        brokers: s
            .nodes
            .iter()
            .map(|&(id, port)| MetadataResponseBroker {
                node_id: id,
                host: "127.0.0.1".into(),
                port: port.into(),
                rack: None,
            })
            .collect(),
        cluster_id: Some("mini".into()),
        controller_id: first,
        topics,
        ..Default::default()
    }
}

fn init_pid(
    s: &mut State,
    r: init_producer_id::InitProducerIdRequest,
) -> init_producer_id::InitProducerIdResponse {
    let mut resp = init_producer_id::InitProducerIdResponse::default();
    if r.producer_id < 0 {
        let id = s.next_producer_id;
        s.next_producer_id += 1;
        s.producer_epochs.insert(id, 0);
        resp.producer_id = id;
        resp.producer_epoch = 0;
    } else if s.producer_epochs.get(&r.producer_id) == Some(&r.producer_epoch) {
        let epoch = r.producer_epoch + 1;
        s.producer_epochs.insert(r.producer_id, epoch);
        resp.producer_id = r.producer_id;
        resp.producer_epoch = epoch;
    } else {
        resp.error_code = 47; // INVALID_PRODUCER_EPOCH
    }
    resp
}
