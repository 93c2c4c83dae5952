//! The mini cluster's data and admin APIs: Produce (with idempotent deduplication),
//! Fetch, ListOffsets, CreateTopics, DeleteTopics, CreatePartitions,
//! DescribeConfigs, IncrementalAlterConfigs, DescribeCluster.

use std::time::Duration;

use bytes::Bytes;
use weir_protocol::messages::{
    create_partitions as cp, create_topics as ct, delete_topics as dt, describe_cluster as dc,
    describe_configs as dcf, fetch, incremental_alter_configs as iac, list_offsets as lo, produce,
};
use weir_protocol::records::{BatchView, Batches};
use weir_protocol::{Request, Response};

use super::mini::{append, PartitionLog, ProducerSeq, State};
use super::server::{Ctx, Reply};

pub fn handle(s: &mut State, ctx: &Ctx, req: Request) -> Reply {
    match req {
        Request::Produce(r) => produce(s, ctx, r),
        Request::Fetch(r) => fetch(s, ctx, r),
        Request::ListOffsets(r) => Reply::Respond(Response::ListOffsets(list_offsets(s, ctx, r))),
        Request::CreateTopics(r) => Reply::Respond(Response::CreateTopics(create_topics(s, r))),
        Request::DeleteTopics(r) => {
            Reply::Respond(Response::DeleteTopics(delete_topics(s, ctx, r)))
        }
        Request::CreatePartitions(r) => {
            Reply::Respond(Response::CreatePartitions(create_partitions(s, r)))
        }
        Request::DescribeConfigs(r) => {
            Reply::Respond(Response::DescribeConfigs(describe_configs(s, r)))
        }
        Request::IncrementalAlterConfigs(r) => {
            Reply::Respond(Response::IncrementalAlterConfigs(alter_configs(s, r)))
        }
        Request::DescribeCluster(_) => {
            Reply::Respond(Response::DescribeCluster(dc::DescribeClusterResponse {
                cluster_id: "mini".into(),
                controller_id: s.nodes[0].0,
                brokers: s
                    .nodes
                    .iter()
                    .map(|&(id, port)| dc::DescribeClusterBroker {
                        broker_id: id,
                        host: "127.0.0.1".into(),
                        port: port.into(),
                        rack: None,
                    })
                    .collect(),
                ..Default::default()
            }))
        }
        other => panic!("mini cluster does not serve {:?}", other.api_key()),
    }
}

fn partition<'a>(s: &'a mut State, topic: &str, index: i32) -> Option<&'a mut PartitionLog> {
    s.topics
        .get_mut(topic)?
        .partitions
        .get_mut(usize::try_from(index).ok()?)
}

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

/// The idempotence check of a real broker: Ok(Some(offset)) for a duplicate,
/// Ok(None) to append, Err(code) to refuse.
fn check_sequence(p: &PartitionLog, v: &BatchView) -> Result<Option<i64>, i16> {
    let (pid, epoch, seq) = (v.producer_id(), v.producer_epoch(), v.base_sequence());
    match p.producers.get(&pid) {
        Some(e) if epoch < e.epoch => Err(47),
        Some(e) if epoch == e.epoch => {
            if let Some(&(_, _, offset)) = e
                .recent
                .iter()
                .find(|(f, l, _)| *f == seq && *l == v.last_sequence())
            {
                return Ok(Some(offset));
            }
            let expected = e.recent.back().map_or(0, |r| next_seq(r.1));
            if seq == expected {
                Ok(None)
            } else {
                Err(45)
            }
        }
        _ if seq == 0 => Ok(None),
        Some(_) => Err(45),
        None => Err(59),
    }
}

fn produce(s: &mut State, ctx: &Ctx, r: produce::ProduceRequest) -> Reply {
    let mut responses = Vec::new();
    for t in r.topic_data {
        let mut parts = Vec::new();
        for pd in t.partition_data {
            let mut pr = produce::PartitionProduceResponse {
                index: pd.index,
                base_offset: -1,
                log_append_time_ms: -1,
                ..Default::default()
            };
            let Some(p) = partition(s, &t.name, pd.index) else {
                pr.error_code = 3;
                parts.push(pr);
                continue;
            };
            pr.log_start_offset = p.log_start;
            if p.leader != ctx.node {
                pr.error_code = 6;
                parts.push(pr);
                continue;
            }
            let records = pd.records.unwrap_or_default();
            for view in Batches::new(records) {
                let view = view.expect("the client sent a valid batch");
                view.validate_client_append().expect("client batch rules");
                view.validate_client_records(1 << 30)
                    .expect("records parse");
                if view.has_producer_id() {
                    match check_sequence(p, &view) {
                        Err(code) => {
                            pr.error_code = code;
                            break;
                        }
                        Ok(Some(offset)) => {
                            pr.base_offset = offset;
                            continue;
                        }
                        Ok(None) => {}
                    }
                }
                let (pid, epoch, first, last) = (
                    view.producer_id(),
                    view.producer_epoch(),
                    view.base_sequence(),
                    view.last_sequence(),
                );
                let base = append(p, view);
                if pr.base_offset < 0 {
                    pr.base_offset = base;
                }
                if pid >= 0 {
                    let e = p.producers.entry(pid).or_insert_with(ProducerSeq::default);
                    if e.epoch != epoch {
                        e.recent.clear();
                        e.epoch = epoch;
                    }
                    e.recent.push_back((first, last, base));
                    if e.recent.len() > 5 {
                        e.recent.pop_front();
                    }
                }
            }
            parts.push(pr);
        }
        responses.push(produce::TopicProduceResponse {
            name: t.name,
            partition_responses: parts,
        });
    }
    if r.acks == 0 {
        return Reply::Nothing;
    }
    Reply::Respond(Response::Produce(produce::ProduceResponse {
        responses,
        ..Default::default()
    }))
}

fn fetch(s: &mut State, ctx: &Ctx, r: fetch::FetchRequest) -> Reply {
    let by_id = ctx.header.api_version >= 13;
    let mut responses = Vec::new();
    let mut any_data = false;
    let mut budget = usize::try_from(r.max_bytes).unwrap_or(0);
    for t in r.topics {
        let name = if by_id {
            s.topics
                .iter()
                .find(|(_, ts)| ts.id == t.topic_id)
                .map(|(n, _)| n.clone())
                .unwrap_or_default()
        } else {
            t.topic.clone()
        };
        let mut parts = Vec::new();
        for fp in t.partitions {
            let mut pd = fetch::PartitionData {
                partition_index: fp.partition,
                ..Default::default()
            };
            let Some(p) = partition(s, &name, fp.partition) else {
                pd.error_code = if by_id { 100 } else { 3 };
                parts.push(pd);
                continue;
            };
            pd.high_watermark = p.next_offset;
            pd.last_stable_offset = p.next_offset;
            pd.log_start_offset = p.log_start;
            if p.leader != ctx.node {
                pd.error_code = 6;
                parts.push(pd);
                continue;
            }
            if fp.fetch_offset < p.log_start || fp.fetch_offset > p.next_offset {
                pd.error_code = 1;
                parts.push(pd);
                continue;
            }
            let limit = usize::try_from(fp.partition_max_bytes).unwrap_or(0);
            let mut out: Vec<u8> = Vec::new();
            let mut upper = -1;
            for b in &p.batches {
                let v = BatchView::parse(b.clone()).unwrap();
                if v.last_offset() < fp.fetch_offset {
                    continue;
                }
                if !out.is_empty() && (out.len() + b.len() > limit || out.len() + b.len() > budget)
                {
                    break;
                }
                out.extend_from_slice(b);
                upper = v.last_offset();
            }
            budget = budget.saturating_sub(out.len());
            if r.isolation_level == 1 {
                pd.aborted_transactions = Some(
                    p.aborted
                        .iter()
                        .filter(|(_, first, marker)| *marker >= fp.fetch_offset && *first <= upper)
                        .map(
                            |&(producer_id, first_offset, _)| fetch::AbortedTransaction {
                                producer_id,
                                first_offset,
                            },
                        )
                        .collect(),
                );
            }
            any_data |= !out.is_empty();
            pd.records = Some(Bytes::from(out));
            parts.push(pd);
        }
        responses.push(fetch::FetchableTopicResponse {
            topic: if by_id { String::new() } else { name },
            topic_id: t.topic_id,
            partitions: parts,
        });
    }
    let resp = Response::Fetch(fetch::FetchResponse {
        responses,
        ..Default::default()
    });
    if any_data || r.max_wait_ms <= 0 {
        Reply::Respond(resp)
    } else {
        Reply::Delay(
            Duration::from_millis(r.max_wait_ms as u64),
            Box::new(Reply::Respond(resp)),
        )
    }
}

fn list_offsets(s: &mut State, ctx: &Ctx, r: lo::ListOffsetsRequest) -> lo::ListOffsetsResponse {
    let mut topics = Vec::new();
    for t in r.topics {
        let mut parts = Vec::new();
        for lp in t.partitions {
            let mut out = lo::ListOffsetsPartitionResponse {
                partition_index: lp.partition_index,
                timestamp: -1,
                offset: -1,
                ..Default::default()
            };
            match partition(s, &t.name, lp.partition_index) {
                None => out.error_code = 3,
                Some(p) if p.leader != ctx.node => out.error_code = 6,
                Some(p) => match lp.timestamp {
                    -2 => out.offset = p.log_start,
                    -1 => out.offset = p.next_offset,
                    ts => {
                        for b in &p.batches {
                            let v = BatchView::parse(b.clone()).unwrap();
                            if let Some((offset, timestamp)) =
                                v.first_at_or_after(ts, 1 << 30).unwrap()
                            {
                                out.offset = offset;
                                out.timestamp = timestamp;
                                break;
                            }
                        }
                    }
                },
            }
            parts.push(out);
        }
        topics.push(lo::ListOffsetsTopicResponse {
            name: t.name,
            partitions: parts,
        });
    }
    lo::ListOffsetsResponse {
        topics,
        ..Default::default()
    }
}

fn create_topics(s: &mut State, r: ct::CreateTopicsRequest) -> ct::CreateTopicsResponse {
    let leader = s.nodes[0].0;
    let mut topics = Vec::new();
    for t in r.topics {
        let mut res = ct::CreatableTopicResult {
            name: t.name.clone(),
            num_partitions: -1,
            replication_factor: -1,
            ..Default::default()
        };
        let partitions = if t.num_partitions == -1 {
            1
        } else {
            t.num_partitions
        };
        if s.topics.contains_key(&t.name) {
            res.error_code = 36;
            res.error_message = Some(format!("Topic '{}' already exists.", t.name));
        } else if partitions <= 0 {
            res.error_code = 37;
            res.error_message = Some("Number of partitions must be larger than 0.".into());
        } else {
            res.num_partitions = partitions;
            res.replication_factor = 1;
            if !r.validate_only {
                s.create_topic(&t.name, partitions, leader);
                let ts = s.topics.get_mut(&t.name).unwrap();
                for c in t.configs {
                    ts.configs.insert(c.name, c.value.unwrap_or_default());
                }
                res.topic_id = ts.id;
            }
        }
        topics.push(res);
    }
    ct::CreateTopicsResponse {
        topics,
        ..Default::default()
    }
}

fn delete_topics(s: &mut State, ctx: &Ctx, r: dt::DeleteTopicsRequest) -> dt::DeleteTopicsResponse {
    let names: Vec<String> = if ctx.header.api_version >= 6 {
        r.topics.into_iter().filter_map(|t| t.name).collect()
    } else {
        r.topic_names
    };
    let responses = names
        .into_iter()
        .map(|n| dt::DeletableTopicResult {
            error_code: if s.topics.remove(&n).is_some() { 0 } else { 3 },
            name: Some(n),
            ..Default::default()
        })
        .collect();
    dt::DeleteTopicsResponse {
        responses,
        ..Default::default()
    }
}

fn create_partitions(
    s: &mut State,
    r: cp::CreatePartitionsRequest,
) -> cp::CreatePartitionsResponse {
    let leader = s.nodes[0].0;
    let mut results = Vec::new();
    for t in r.topics {
        let mut res = cp::CreatePartitionsTopicResult {
            name: t.name.clone(),
            ..Default::default()
        };
        match s.topics.get_mut(&t.name) {
            None => res.error_code = 3,
            Some(ts) if t.count as usize <= ts.partitions.len() => {
                res.error_code = 37;
                res.error_message = Some(format!(
                    "Topic currently has {} partitions, which is higher than the requested {}.",
                    ts.partitions.len(),
                    t.count
                ));
            }
            Some(ts) if !r.validate_only => {
                while ts.partitions.len() < t.count as usize {
                    ts.partitions.push(PartitionLog {
                        leader,
                        ..Default::default()
                    });
                }
            }
            Some(_) => {}
        }
        results.push(res);
    }
    cp::CreatePartitionsResponse {
        results,
        ..Default::default()
    }
}

fn describe_configs(s: &mut State, r: dcf::DescribeConfigsRequest) -> dcf::DescribeConfigsResponse {
    let mut results = Vec::new();
    for res in r.resources {
        let mut out = dcf::DescribeConfigsResult {
            resource_type: res.resource_type,
            resource_name: res.resource_name.clone(),
            ..Default::default()
        };
        let entries: Option<Vec<(String, String, i8)>> = match res.resource_type {
            2 => s.topics.get(&res.resource_name).map(|t| {
                t.configs
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone(), 1))
                    .collect()
            }),
            4 => Some(vec![("log.retention.ms".into(), "604800000".into(), 4)]),
            _ => None,
        };
        match entries {
            None => {
                out.error_code = 3;
                out.error_message = Some(format!("Topic {} does not exist.", res.resource_name));
            }
            Some(es) => {
                out.configs = es
                    .into_iter()
                    .map(|(name, value, source)| dcf::DescribeConfigsResourceResult {
                        name,
                        value: Some(value),
                        config_source: source,
                        ..Default::default()
                    })
                    .collect();
            }
        }
        results.push(out);
    }
    dcf::DescribeConfigsResponse {
        results,
        ..Default::default()
    }
}

fn alter_configs(
    s: &mut State,
    r: iac::IncrementalAlterConfigsRequest,
) -> iac::IncrementalAlterConfigsResponse {
    let mut responses = Vec::new();
    for res in r.resources {
        let mut out = iac::AlterConfigsResourceResponse {
            resource_type: res.resource_type,
            resource_name: res.resource_name.clone(),
            ..Default::default()
        };
        match s.topics.get_mut(&res.resource_name) {
            Some(t) if res.resource_type == 2 => {
                if !r.validate_only {
                    for c in res.configs {
                        match c.config_operation {
                            0 => {
                                t.configs.insert(c.name, c.value.unwrap_or_default());
                            }
                            1 => {
                                t.configs.remove(&c.name);
                            }
                            _ => out.error_code = 42,
                        }
                    }
                }
            }
            _ => {
                out.error_code = 3;
                out.error_message = Some("no such topic".into());
            }
        }
        responses.push(out);
    }
    iac::IncrementalAlterConfigsResponse {
        responses,
        ..Default::default()
    }
}
