//! The dispatcher over a real socket: ApiVersions at every version and its KIP-511
//! fallback, the exact v3 bytes old librdkafka needs, and what happens to requests
//! the broker does not serve (closed connection, broker unharmed).

mod common;

use bytes::Buf;
use common::client::TestBroker;
use common::TEST_TIMEOUT;
use tokio::time::timeout;
use weir_broker::api::versions;
use weir_protocol::messages::api_versions::{ApiVersionsRequest, ApiVersionsResponse};
use weir_protocol::messages::metadata::MetadataRequest;
use weir_protocol::messages::produce::ProduceRequest;
use weir_protocol::{ApiKey, Message, Request, RequestHeader, Response};
use weir_types::ErrorCode;

fn api_versions_request() -> Request {
    Request::ApiVersions(ApiVersionsRequest {
        client_software_name: "weir-api-test".into(),
        client_software_version: "0.1.0".into(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_versions_answers_every_version_with_the_table() {
    timeout(TEST_TIMEOUT, async {
        let broker = TestBroker::start(|_| {}).await;
        let mut client = broker.client().await;
        for version in 0..=4 {
            let Response::ApiVersions(r) = client.call(version, api_versions_request()).await
            else {
                panic!("not an ApiVersions response");
            };
            assert_eq!(r.error_code, 0, "v{version}");
            assert_eq!(r.api_keys, versions::api_versions(), "v{version}");
            assert!(r.supported_features.is_empty() && r.finalized_features.is_empty());
        }
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_versions_v3_response_bytes_carry_zero_tagged_fields() {
    timeout(TEST_TIMEOUT, async {
        let broker = TestBroker::start(|_| {}).await;
        let mut client = broker.client().await;
        let correlation_id = client.send(3, &api_versions_request()).await;
        let mut frame = client.recv().await.expect("response");
        // Response header v0: the correlation id and no tag buffer (KIP-511).
        assert_eq!(frame.get_i32(), correlation_id);
        assert_eq!(frame.get_i16(), 0, "error code");
        let entries = usize::from(frame.get_u8()) - 1;
        assert_eq!(entries, versions::SUPPORTED.len());
        for _ in 0..entries {
            frame.advance(6); // key, min, max
            assert_eq!(frame.get_u8(), 0, "an ApiVersion entry has tagged fields");
        }
        assert_eq!(frame.get_i32(), 0, "throttle_time_ms");
        assert_eq!(frame.get_u8(), 0, "the response has tagged fields");
        assert_eq!(frame.remaining(), 0, "bytes after the tag buffer");
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_versions_from_the_future_gets_the_v0_fallback() {
    timeout(TEST_TIMEOUT, async {
        let broker = TestBroker::start(|_| {}).await;
        let mut client = broker.client().await;
        // A v7 request: flexible header, a body we cannot know.
        let mut e = weir_protocol::wire::Encoder::new();
        RequestHeader {
            api_key: 18,
            api_version: 7,
            correlation_id: 42,
            client_id: Some("future".into()),
        }
        .encode(&mut e)
        .expect("header");
        e.raw(&[3, b'n', b'e', 3, b'1', b'0', 0, 9, 9]);
        let payload = e.into_bytes();
        let mut frame = (payload.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&payload);
        client.send_raw(&frame).await;
        let mut response = client.recv().await.expect("a response, not a close");
        assert_eq!(response.get_i32(), 42);
        let body = ApiVersionsResponse::from_bytes(response, 0).expect("a v0 body");
        assert_eq!(body.error_code, ErrorCode::UnsupportedVersion.code());
        assert_eq!(body.api_keys, versions::api_versions());
        // The connection stays usable: the client retries at a version we know.
        let r = client.call(3, api_versions_request()).await;
        assert!(matches!(r, Response::ApiVersions(r) if r.error_code == 0));
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unserved_versions_and_unknown_keys_close_only_that_connection() {
    timeout(TEST_TIMEOUT, async {
        let broker = TestBroker::start(|_| {}).await;
        // Produce v2 decodes (the codec knows it) but is not served (Kafka 4: v3+).
        let mut client = broker.client().await;
        client
            .send(2, &Request::Produce(ProduceRequest::default()))
            .await;
        client.expect_closed().await;
        // An API key nobody knows.
        let mut client = broker.client().await;
        let mut e = weir_protocol::wire::Encoder::new();
        e.i16(999);
        e.i16(0);
        e.i32(1);
        e.nullable_string(Some("x"), false).expect("client id");
        let payload = e.into_bytes();
        let mut frame = (payload.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&payload);
        client.send_raw(&frame).await;
        client.expect_closed().await;
        // A body that does not decode at a served version.
        let mut client = broker.client().await;
        let mut e = weir_protocol::wire::Encoder::new();
        RequestHeader {
            api_key: ApiKey::Metadata as i16,
            api_version: 1,
            correlation_id: 3,
            client_id: None,
        }
        .encode(&mut e)
        .expect("header");
        e.i32(i32::MAX); // "two billion topics follow"
        let payload = e.into_bytes();
        let mut frame = (payload.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&payload);
        client.send_raw(&frame).await;
        client.expect_closed().await;
        // Everyone else is unharmed.
        let mut client = broker.client().await;
        let r = client
            .call(
                1,
                Request::Metadata(MetadataRequest {
                    topics: Some(Vec::new()),
                    ..MetadataRequest::default()
                }),
            )
            .await;
        assert!(matches!(r, Response::Metadata(_)));
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order() {
    timeout(TEST_TIMEOUT, async {
        let broker = TestBroker::start(|_| {}).await;
        let mut client = broker.client().await;
        let mut ids = Vec::new();
        for i in 0..20 {
            let request = if i % 2 == 0 {
                api_versions_request()
            } else {
                Request::Metadata(MetadataRequest {
                    topics: None,
                    ..MetadataRequest::default()
                })
            };
            ids.push((
                client.send(if i % 2 == 0 { 3 } else { 12 }, &request).await,
                i,
            ));
        }
        for (id, i) in ids {
            let (api, version) = if i % 2 == 0 {
                (ApiKey::ApiVersions, 3)
            } else {
                (ApiKey::Metadata, 12)
            };
            let (got, _) = client.recv_decoded(api, version).await;
            assert_eq!(got, id);
        }
    })
    .await
    .expect("test timed out");
}

/// librdkafka 2.x sends three bytes after some Metadata v12 bodies (this frame is
/// one it sent); Kafka ignores them, so must we, or `list_topics` fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trailing_bytes_after_a_request_body_are_ignored() {
    timeout(TEST_TIMEOUT, async {
        let broker = TestBroker::start(|_| {}).await;
        let mut client = broker.client().await;
        let payload: &[u8] = &[
            0, 3, 0, 12, 0, 0, 0, 3, 0, 7, b'r', b'd', b'k', b'a', b'f', b'k', b'a',
            0, // header v2
            0, 0, 0, 0, // all topics, no auto-create, no authorized operations, no tags
            1, 0, 0, // the trailing bytes
        ];
        let mut frame = (payload.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(payload);
        client.send_raw(&frame).await;
        let (correlation_id, response) = client.recv_decoded(ApiKey::Metadata, 12).await;
        assert_eq!(correlation_id, 3);
        let Response::Metadata(m) = response else {
            panic!("not a Metadata response: {response:?}");
        };
        assert_eq!(m.brokers.len(), 1);
    })
    .await
    .expect("test timed out");
}
