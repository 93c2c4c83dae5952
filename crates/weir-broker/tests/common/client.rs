//! A raw Kafka client for the api tests: one connection, requests encoded and
//! responses decoded with `weir-protocol`, and a real broker to talk to.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use weir_broker::config::ListenerConfig;
use weir_broker::net::CancellationToken;
use weir_broker::{Broker, BrokerConfig, BrokerError};
use weir_protocol::messages::create_topics::{
    CreatableTopic, CreatableTopicConfig, CreatableTopicResult, CreateTopicsRequest,
};
use weir_protocol::messages::fetch::{FetchPartition, FetchRequest, FetchTopic, PartitionData};
use weir_protocol::messages::list_offsets::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use weir_protocol::messages::metadata::{MetadataRequest, MetadataRequestTopic, MetadataResponse};
use weir_protocol::messages::produce::{
    PartitionProduceData, PartitionProduceResponse, ProduceRequest, TopicProduceData,
};
use weir_protocol::records::{BatchBuilder, Batches, Compression};
use weir_protocol::{decode_response, encode_request, ApiKey, Request, RequestHeader, Response};

/// A broker on 127.0.0.1 port 0 with its data in a temp dir, stopped on drop.
pub struct TestBroker {
    /// The listener's address.
    pub addr: SocketAddr,
    /// Cancelling it shuts the broker down.
    pub shutdown: CancellationToken,
    /// The broker's `run`.
    pub task: Option<JoinHandle<Result<(), BrokerError>>>,
    /// The data directory (kept until drop).
    pub dir: TempDir,
}

impl TestBroker {
    /// Starts a broker with the default config, adjusted by `tweak`.
    pub async fn start(tweak: impl FnOnce(&mut BrokerConfig)) -> TestBroker {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, tweak).await
    }

    /// Starts a broker on an existing data directory (a restart).
    pub async fn start_in(dir: TempDir, tweak: impl FnOnce(&mut BrokerConfig)) -> TestBroker {
        let mut config = BrokerConfig {
            listeners: ListenerConfig::parse_list("PLAINTEXT://127.0.0.1:0").expect("listeners"),
            log_dirs: vec![dir.path().to_path_buf()],
            ..BrokerConfig::default()
        };
        tweak(&mut config);
        let broker = Broker::bind(config).await.expect("bind broker");
        let addr = broker.local_addrs()[0].1;
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(broker.run(shutdown.clone()));
        TestBroker {
            addr,
            shutdown,
            task: Some(task),
            dir,
        }
    }

    /// A new connection to the broker.
    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// Shuts down cleanly and hands back the data directory.
    pub async fn stop(mut self) -> TempDir {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("broker task").expect("broker run");
        }
        let dir = tempfile::tempdir().expect("temp dir");
        std::mem::replace(&mut self.dir, dir)
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// One connection speaking the Kafka protocol.
pub struct Client {
    stream: TcpStream,
    next_correlation_id: i32,
}

impl Client {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.expect("connect");
        Client {
            stream,
            next_correlation_id: 1,
        }
    }

    /// Sends `body` at `version` and returns the decoded response, checking the
    /// correlation id.
    pub async fn call(&mut self, version: i16, body: Request) -> Response {
        let api = body.api_key();
        let correlation_id = self.send(version, &body).await;
        let frame = self
            .recv()
            .await
            .expect("a response, not a closed connection");
        let (got, response) = decode_response(frame, api, version)
            .unwrap_or_else(|e| panic!("{api:?} v{version} response does not decode: {e}"));
        assert_eq!(got, correlation_id, "correlation id");
        response
    }

    /// Sends a request without waiting for its response; returns its correlation id.
    pub async fn send(&mut self, version: i16, body: &Request) -> i32 {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id += 1;
        let header = RequestHeader {
            api_key: body.api_key() as i16,
            api_version: version,
            correlation_id,
            client_id: Some("weir-api-test".into()),
        };
        let chunks = encode_request(&header, body).expect("encode request");
        self.send_raw(&chunks.concat()).await;
        correlation_id
    }

    /// Writes bytes as they are (a whole frame, size prefix included).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Reads one response frame (after its size prefix); `None` when the broker
    /// closed the connection.
    pub async fn recv(&mut self) -> Option<Bytes> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).await.ok()?;
        let len = usize::try_from(i32::from_be_bytes(size)).ok()?;
        let mut body = vec![0u8; len];
        self.stream.read_exact(&mut body).await.ok()?;
        Some(body.into())
    }

    /// Reads a response frame and decodes it as `api` at `version`.
    pub async fn recv_decoded(&mut self, api: ApiKey, version: i16) -> (i32, Response) {
        let frame = self.recv().await.expect("a response");
        decode_response(frame, api, version).expect("response decodes")
    }

    /// Asserts the broker closes the connection without answering (within 10 s).
    pub async fn expect_closed(&mut self) {
        let got = tokio::time::timeout(Duration::from_secs(10), self.recv())
            .await
            .expect("the broker should close the connection");
        assert!(
            got.is_none(),
            "expected a closed connection, got a response"
        );
    }
}

/// A batch of `values` (no keys), timestamps `ts0, ts0+1, ...`, in `codec`.
pub fn batch(values: &[&str], ts0: i64, codec: Compression) -> Bytes {
    let mut b = BatchBuilder::new().compression(codec);
    for (i, v) in values.iter().enumerate() {
        b.append(ts0 + i as i64, None, Some(v.as_bytes()), &[])
            .expect("append");
    }
    b.build().expect("build batch")
}

/// The values of every record in `records` (batches back to back, a partial batch
/// at the end allowed), with their offsets.
pub fn values(records: &Bytes) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for view in Batches::allowing_partial_tail(records.clone()) {
        let view = view.expect("batch parses");
        for record in view.records(64 << 20).expect("records") {
            let record = record.expect("record");
            let value = record
                .value
                .map(|v| String::from_utf8_lossy(&v).into_owned());
            out.push((record.offset, value.unwrap_or_default()));
        }
    }
    out
}

/// Shorthands for the requests most tests need, at recent versions.
impl Client {
    /// CreateTopics v7 for one topic with the broker's replication factor and
    /// `configs`; the topic's result.
    pub async fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> CreatableTopicResult {
        let request = CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: name.into(),
                num_partitions: partitions,
                replication_factor: -1,
                configs: configs
                    .iter()
                    .map(|(k, v)| CreatableTopicConfig {
                        name: (*k).into(),
                        value: Some((*v).into()),
                    })
                    .collect(),
                ..CreatableTopic::default()
            }],
            timeout_ms: 30_000,
            validate_only: false,
        };
        let Response::CreateTopics(mut r) = self.call(7, Request::CreateTopics(request)).await
        else {
            panic!("not a CreateTopics response");
        };
        r.topics.pop().expect("one result")
    }

    /// Metadata v12 for `topics` (None: all), no auto-creation.
    pub async fn metadata(&mut self, topics: Option<&[&str]>) -> MetadataResponse {
        let request = MetadataRequest {
            topics: topics.map(|ts| {
                ts.iter()
                    .map(|t| MetadataRequestTopic {
                        topic_id: weir_protocol::Uuid::ZERO,
                        name: Some((*t).into()),
                    })
                    .collect()
            }),
            allow_auto_topic_creation: false,
            ..MetadataRequest::default()
        };
        let Response::Metadata(r) = self.call(12, Request::Metadata(request)).await else {
            panic!("not a Metadata response");
        };
        r
    }

    /// Produce v9 of one batch to one partition; the partition's response (`None`
    /// for acks=0, which gets no response).
    pub async fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        records: Bytes,
        acks: i16,
    ) -> Option<PartitionProduceResponse> {
        let request = Request::Produce(ProduceRequest {
            transactional_id: None,
            acks,
            timeout_ms: 30_000,
            topic_data: vec![TopicProduceData {
                name: topic.into(),
                partition_data: vec![PartitionProduceData {
                    index: partition,
                    records: Some(records),
                }],
            }],
        });
        if acks == 0 {
            self.send(9, &request).await;
            return None;
        }
        let Response::Produce(mut r) = self.call(9, request).await else {
            panic!("not a Produce response");
        };
        let mut topic = r.responses.pop().expect("one topic");
        Some(topic.partition_responses.pop().expect("one partition"))
    }

    /// Fetch v12 of one partition from `offset`, waiting up to `max_wait_ms` for a
    /// byte; the partition's data.
    pub async fn fetch(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_wait_ms: i32,
    ) -> PartitionData {
        let request = Request::Fetch(FetchRequest {
            replica_id: -1,
            max_wait_ms,
            min_bytes: 1,
            max_bytes: 50 << 20,
            session_epoch: -1,
            topics: vec![FetchTopic {
                topic: topic.into(),
                partitions: vec![FetchPartition {
                    partition,
                    fetch_offset: offset,
                    partition_max_bytes: 10 << 20,
                    ..FetchPartition::default()
                }],
                ..FetchTopic::default()
            }],
            ..FetchRequest::default()
        });
        let Response::Fetch(mut r) = self.call(12, request).await else {
            panic!("not a Fetch response");
        };
        assert_eq!(r.error_code, 0, "fetch error");
        let mut topic = r.responses.pop().expect("one topic");
        topic.partitions.pop().expect("one partition")
    }

    /// ListOffsets v9 for one partition at `timestamp`: (error, offset, timestamp,
    /// leader epoch).
    pub async fn list_offset(
        &mut self,
        topic: &str,
        partition: i32,
        timestamp: i64,
    ) -> (i16, i64, i64, i32) {
        let request = Request::ListOffsets(ListOffsetsRequest {
            replica_id: -1,
            isolation_level: 0,
            topics: vec![ListOffsetsTopic {
                name: topic.into(),
                partitions: vec![ListOffsetsPartition {
                    partition_index: partition,
                    current_leader_epoch: -1,
                    timestamp,
                    max_num_offsets: 1,
                }],
            }],
            timeout_ms: 0,
        });
        let Response::ListOffsets(mut r) = self.call(9, request).await else {
            panic!("not a ListOffsets response");
        };
        let p = r
            .topics
            .pop()
            .expect("topic")
            .partitions
            .pop()
            .expect("partition");
        (p.error_code, p.offset, p.timestamp, p.leader_epoch)
    }
}
