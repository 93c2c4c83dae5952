//! The real [`LeaderClient`]: the Kafka protocol over TCP, encoded and decoded
//! with `weir-protocol`.
//!
//! The leader's address comes from the metadata image: the endpoint of the
//! broker's replication listener in the leader's registration (Kafka's
//! `inter.broker.listener.name`). One connection per leader, opened on first use
//! and dropped on any error (the fetcher backs off `replica.fetch.backoff.ms` and
//! the next call reconnects); calls to one leader take turns on it. Weir nodes
//! speak fixed versions to each other (Fetch v12 by topic name, OffsetForLeaderEpoch
//! v4, ListOffsets v7), so no ApiVersions round trip is made.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use weir_metadata::MetadataImage;
use weir_protocol::messages::fetch::{
    FetchPartition as WireFetchPartition, FetchRequest, FetchTopic,
};
use weir_protocol::messages::list_offsets::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use weir_protocol::messages::offset_for_leader_epoch::{
    OffsetForLeaderEpochRequest, OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use weir_protocol::{decode_response, encode_request, Request, RequestHeader, Response};
use weir_types::{ErrorCode, LeaderEpoch, NodeId, Offset};

use super::error::ReplicaError;
use super::fetch::FetchedPartition;
use super::isr::BoxFuture;
use super::leader_client::{EpochEnd, EpochQuery, LeaderClient, ReplicaFetch};

const FETCH_VERSION: i16 = 12;
const OFFSET_FOR_LEADER_EPOCH_VERSION: i16 = 4;
const LIST_OFFSETS_VERSION: i16 = 7;
/// Largest response frame accepted from a leader.
const MAX_RESPONSE_BYTES: usize = 256 << 20;

/// A [`LeaderClient`] over TCP; see the module docs.
#[derive(Debug, Clone)]
pub struct TcpLeaderClient {
    images: watch::Receiver<Arc<MetadataImage>>,
    listener: String,
    /// Time allowed to connect, and to answer beyond a fetch's own wait.
    request_timeout: Duration,
    connections: Arc<Mutex<HashMap<NodeId, ConnSlot>>>,
}

/// A leader's connection (none until first use, or after an error); calls to
/// one leader take turns on it.
type ConnSlot = Arc<tokio::sync::Mutex<Option<Conn>>>;

#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    next_correlation_id: i32,
}

impl TcpLeaderClient {
    /// A client finding leaders in the images of `images`, at their endpoint named
    /// `listener` (e.g. "PLAINTEXT"). `request_timeout` bounds connecting and each
    /// answer (beyond a fetch's `max_wait`).
    pub fn new(
        images: watch::Receiver<Arc<MetadataImage>>,
        listener: impl Into<String>,
        request_timeout: Duration,
    ) -> TcpLeaderClient {
        TcpLeaderClient {
            images,
            listener: listener.into(),
            request_timeout,
            connections: Arc::default(),
        }
    }

    fn unreachable(leader: NodeId, reason: impl Into<String>) -> ReplicaError {
        ReplicaError::LeaderUnreachable {
            leader,
            reason: reason.into(),
        }
    }

    fn address(&self, leader: NodeId) -> Result<(String, u16), ReplicaError> {
        let image = Arc::clone(&self.images.borrow());
        let broker = image
            .broker(leader)
            .ok_or_else(|| Self::unreachable(leader, "not registered in the metadata"))?;
        let endpoint = broker.endpoint(&self.listener).ok_or_else(|| {
            Self::unreachable(
                leader,
                format!("no endpoint for listener {}", self.listener),
            )
        })?;
        Ok((endpoint.host.clone(), endpoint.port))
    }

    fn slot(&self, leader: NodeId) -> ConnSlot {
        let mut map = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(map.entry(leader).or_default())
    }

    /// One request/response on the leader's connection; the connection is dropped
    /// on any failure.
    async fn call(
        &self,
        leader: NodeId,
        version: i16,
        body: Request,
        wait: Duration,
    ) -> Result<Response, ReplicaError> {
        let slot = self.slot(leader);
        let mut guard = slot.lock().await;
        let result = tokio::time::timeout(
            self.request_timeout + wait,
            self.exchange(leader, &mut guard, version, &body),
        )
        .await
        .unwrap_or_else(|_| Err(Self::unreachable(leader, "request timed out")));
        if result.is_err() {
            *guard = None;
        }
        result
    }

    async fn exchange(
        &self,
        leader: NodeId,
        conn: &mut Option<Conn>,
        version: i16,
        body: &Request,
    ) -> Result<Response, ReplicaError> {
        let io = |e: std::io::Error| Self::unreachable(leader, e.to_string());
        if conn.is_none() {
            let (host, port) = self.address(leader)?;
            let stream = TcpStream::connect((host.as_str(), port))
                .await
                .map_err(io)?;
            stream.set_nodelay(true).map_err(io)?;
            *conn = Some(Conn {
                stream,
                next_correlation_id: 0,
            });
        }
        let Some(c) = conn.as_mut() else {
            return Err(Self::unreachable(leader, "no connection"));
        };
        let correlation_id = c.next_correlation_id;
        c.next_correlation_id = c.next_correlation_id.wrapping_add(1);
        let api = body.api_key();
        let header = RequestHeader {
            api_key: api as i16,
            api_version: version,
            correlation_id,
            client_id: Some("weir-replica-fetcher".into()),
        };
        let frame = encode_request(&header, body)
            .map_err(|e| Self::unreachable(leader, format!("encoding {api:?}: {e}")))?;
        for chunk in frame {
            c.stream.write_all(&chunk).await.map_err(io)?;
        }
        let mut size = [0u8; 4];
        c.stream.read_exact(&mut size).await.map_err(io)?;
        let len = usize::try_from(i32::from_be_bytes(size))
            .ok()
            .filter(|n| *n <= MAX_RESPONSE_BYTES)
            .ok_or_else(|| Self::unreachable(leader, "bad response size"))?;
        let mut buf = vec![0u8; len];
        c.stream.read_exact(&mut buf).await.map_err(io)?;
        let (got, response) = decode_response(Bytes::from(buf), api, version)
            .map_err(|e| Self::unreachable(leader, format!("decoding {api:?}: {e}")))?;
        if got != correlation_id {
            return Err(Self::unreachable(leader, "correlation id mismatch"));
        }
        Ok(response)
    }
}

fn wire_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn unexpected(leader: NodeId) -> ReplicaError {
    TcpLeaderClient::unreachable(leader, "unexpected response type")
}

impl LeaderClient for TcpLeaderClient {
    fn fetch(
        &self,
        leader: NodeId,
        request: ReplicaFetch,
    ) -> BoxFuture<'_, Result<Vec<FetchedPartition>, ReplicaError>> {
        Box::pin(async move {
            // Topics grouped in request order; answers are matched back by name and
            // partition.
            let mut topics: Vec<FetchTopic> = Vec::new();
            for p in &request.partitions {
                let wire = WireFetchPartition {
                    partition: p.partition,
                    current_leader_epoch: p.current_leader_epoch.get(),
                    fetch_offset: p.fetch_offset.get(),
                    partition_max_bytes: wire_i32(p.partition_max_bytes),
                    ..WireFetchPartition::default()
                };
                match topics.iter_mut().find(|t| t.topic == p.topic) {
                    Some(t) => t.partitions.push(wire),
                    None => topics.push(FetchTopic {
                        topic: p.topic.clone(),
                        partitions: vec![wire],
                        ..FetchTopic::default()
                    }),
                }
            }
            let body = Request::Fetch(FetchRequest {
                replica_id: request.replica_id.get(),
                max_wait_ms: wire_i32(
                    usize::try_from(request.max_wait.as_millis()).unwrap_or(usize::MAX),
                ),
                min_bytes: wire_i32(request.min_bytes),
                max_bytes: wire_i32(request.max_bytes),
                session_epoch: -1,
                topics,
                ..FetchRequest::default()
            });
            let Response::Fetch(response) = self
                .call(leader, FETCH_VERSION, body, request.max_wait)
                .await?
            else {
                return Err(unexpected(leader));
            };
            let top = ErrorCode::from_code(response.error_code);
            Ok(request
                .partitions
                .iter()
                .map(|p| {
                    let found = response
                        .responses
                        .iter()
                        .filter(|t| t.topic == p.topic)
                        .flat_map(|t| &t.partitions)
                        .find(|d| d.partition_index == p.partition);
                    match found {
                        Some(d) if top == ErrorCode::None => FetchedPartition {
                            error: ErrorCode::from_code(d.error_code),
                            high_watermark: Offset(d.high_watermark),
                            last_stable_offset: Offset(d.last_stable_offset),
                            log_start_offset: Offset(d.log_start_offset),
                            records: d.records.clone().unwrap_or_default(),
                            preferred_read_replica: None,
                        },
                        _ => FetchedPartition {
                            error: if top == ErrorCode::None {
                                ErrorCode::UnknownServerError
                            } else {
                                top
                            },
                            high_watermark: Offset(-1),
                            last_stable_offset: Offset(-1),
                            log_start_offset: Offset(-1),
                            records: Bytes::new(),
                            preferred_read_replica: None,
                        },
                    }
                })
                .collect())
        })
    }

    fn offset_for_leader_epoch(
        &self,
        leader: NodeId,
        replica_id: NodeId,
        queries: Vec<EpochQuery>,
    ) -> BoxFuture<'_, Result<Vec<EpochEnd>, ReplicaError>> {
        Box::pin(async move {
            let mut topics: Vec<OffsetForLeaderTopic> = Vec::new();
            for q in &queries {
                let wire = OffsetForLeaderPartition {
                    partition: q.partition,
                    current_leader_epoch: q.current_leader_epoch.get(),
                    leader_epoch: q.leader_epoch.get(),
                };
                match topics.iter_mut().find(|t| t.topic == q.topic) {
                    Some(t) => t.partitions.push(wire),
                    None => topics.push(OffsetForLeaderTopic {
                        topic: q.topic.clone(),
                        partitions: vec![wire],
                    }),
                }
            }
            let body = Request::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest {
                replica_id: replica_id.get(),
                topics,
            });
            let Response::OffsetForLeaderEpoch(response) = self
                .call(
                    leader,
                    OFFSET_FOR_LEADER_EPOCH_VERSION,
                    body,
                    Duration::ZERO,
                )
                .await?
            else {
                return Err(unexpected(leader));
            };
            Ok(queries
                .iter()
                .map(|q| {
                    let found = response
                        .topics
                        .iter()
                        .filter(|t| t.topic == q.topic)
                        .flat_map(|t| &t.partitions)
                        .find(|e| e.partition == q.partition);
                    match found {
                        Some(e) => EpochEnd {
                            error: ErrorCode::from_code(e.error_code),
                            leader_epoch: LeaderEpoch(e.leader_epoch),
                            end_offset: Offset(e.end_offset),
                        },
                        None => EpochEnd::failed(ErrorCode::UnknownServerError),
                    }
                })
                .collect())
        })
    }

    fn log_start_offset(
        &self,
        leader: NodeId,
        replica_id: NodeId,
        query: EpochQuery,
    ) -> BoxFuture<'_, Result<Offset, ReplicaError>> {
        Box::pin(async move {
            let body = Request::ListOffsets(ListOffsetsRequest {
                replica_id: replica_id.get(),
                topics: vec![ListOffsetsTopic {
                    name: query.topic.clone(),
                    partitions: vec![ListOffsetsPartition {
                        partition_index: query.partition,
                        current_leader_epoch: query.current_leader_epoch.get(),
                        timestamp: weir_log::special_timestamps::EARLIEST,
                        ..ListOffsetsPartition::default()
                    }],
                }],
                ..ListOffsetsRequest::default()
            });
            let Response::ListOffsets(response) = self
                .call(leader, LIST_OFFSETS_VERSION, body, Duration::ZERO)
                .await?
            else {
                return Err(unexpected(leader));
            };
            let p = response
                .topics
                .iter()
                .filter(|t| t.name == query.topic)
                .flat_map(|t| &t.partitions)
                .find(|p| p.partition_index == query.partition)
                .ok_or_else(|| {
                    TcpLeaderClient::unreachable(leader, "partition missing from ListOffsets")
                })?;
            match ErrorCode::from_code(p.error_code) {
                ErrorCode::None => Ok(Offset(p.offset)),
                code => Err(ReplicaError::LeaderUnreachable {
                    leader,
                    reason: format!("ListOffsets answered {code:?}"),
                }),
            }
        })
    }
}
