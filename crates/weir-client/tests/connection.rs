//! Connection-level protocol tests against fake brokers: version negotiation,
//! pipelining, the in-flight window, timeouts and failures.

mod common;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use weir_client::cluster::Cluster;
use weir_client::config::ConnectionConfig;
use weir_client::{Connection, Error};
use weir_protocol::messages::api_versions::{ApiVersion, ApiVersionsResponse};
use weir_protocol::messages::metadata::{MetadataRequest, MetadataRequestTopic, MetadataResponse};
use weir_protocol::messages::produce::ProduceRequest;
use weir_protocol::{decode_request, encode_response, ApiKey, Request, Response, Uuid};

use common::mini::{HookAction, Mini};
use common::server::Reply;

fn metadata_for(topic: &str) -> MetadataRequest {
    MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            topic_id: Uuid::ZERO,
            name: Some(topic.into()),
        }]),
        allow_auto_topic_creation: false,
        ..Default::default()
    }
}

#[tokio::test]
async fn negotiates_the_highest_version_both_sides_speak() {
    let mini = Mini::start(1).await;
    mini.state().api_max.insert(ApiKey::Metadata as i16, 9);
    let conn = Connection::connect(&mini.bootstrap(), ConnectionConfig::default())
        .await
        .unwrap();
    assert_eq!(conn.version_of::<MetadataRequest>().unwrap(), 9);
    assert_eq!(conn.version_of::<ProduceRequest>().unwrap(), 11);
    // A request at the negotiated version round-trips.
    let resp = conn.send(metadata_for("t")).await.unwrap();
    assert_eq!(
        resp.topics[0].error_code, 3,
        "no such topic, and no auto-creation asked"
    );
    assert_eq!(resp.brokers.len(), 1);
}

#[tokio::test]
async fn api_versions_falls_back_to_what_an_older_broker_speaks() {
    for broker_max in [2i16, 0] {
        let mini = Mini::start(1).await;
        mini.state()
            .api_max
            .insert(ApiKey::ApiVersions as i16, broker_max);
        let conn = Connection::connect(&mini.bootstrap(), ConnectionConfig::default())
            .await
            .unwrap();
        assert!(conn.version_of::<MetadataRequest>().is_ok());
        let versions: Vec<i16> = mini
            .state()
            .requests
            .iter()
            .filter(|r| r.1 == ApiKey::ApiVersions as i16)
            .map(|r| r.2)
            .collect();
        assert_eq!(
            versions,
            vec![4, broker_max],
            "first the newest, then the broker's max"
        );
    }
}

#[tokio::test]
async fn an_api_the_broker_lacks_is_a_clear_error() {
    let mini = Mini::start(1).await;
    // A broker whose Produce range ends below the client's first version (3).
    mini.state().api_max.insert(ApiKey::Produce as i16, 2);
    let conn = Connection::connect(&mini.bootstrap(), ConnectionConfig::default())
        .await
        .unwrap();
    let e = conn.version_of::<ProduceRequest>().unwrap_err();
    assert!(matches!(e, Error::UnsupportedApi { .. }), "{e}");
    assert!(e.to_string().contains("does not support Produce"), "{e}");
}

async fn read_frame(s: &mut TcpStream) -> Option<Bytes> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.ok()?;
    let mut buf = BytesMut::zeroed(i32::from_be_bytes(len) as usize);
    s.read_exact(&mut buf).await.ok()?;
    Some(buf.freeze())
}

async fn write(s: &mut TcpStream, cid: i32, version: i16, r: Response) {
    for c in encode_response(cid, version, &r).unwrap() {
        s.write_all(&c).await.unwrap();
    }
}

/// Accepts one connection and answers its ApiVersions; returns the socket.
async fn accept_negotiated(l: &TcpListener) -> TcpStream {
    let (mut s, _) = l.accept().await.unwrap();
    let req = decode_request(read_frame(&mut s).await.unwrap()).unwrap();
    let keys = ApiKey::ALL
        .iter()
        .map(|&a| ApiVersion {
            api_key: a as i16,
            min_version: a.versions().0,
            max_version: a.versions().1,
        })
        .collect();
    let resp = Response::ApiVersions(ApiVersionsResponse {
        api_keys: keys,
        ..Default::default()
    });
    write(
        &mut s,
        req.header.correlation_id,
        req.header.api_version,
        resp,
    )
    .await;
    s
}

#[tokio::test]
async fn pipelined_requests_are_all_in_flight_and_matched_in_order() {
    const N: usize = 20;
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move {
        let mut s = accept_negotiated(&l).await;
        // Read all N requests before answering any: only a pipelining client gets here.
        let mut reqs = Vec::new();
        for _ in 0..N {
            reqs.push(decode_request(read_frame(&mut s).await.unwrap()).unwrap());
        }
        for r in reqs {
            let Request::Metadata(m) = r.body else {
                panic!("not metadata")
            };
            let name = m.topics.unwrap()[0].name.clone().unwrap();
            let marker: i32 = name.trim_start_matches('t').parse().unwrap();
            let resp = Response::Metadata(MetadataResponse {
                controller_id: marker,
                ..Default::default()
            });
            write(&mut s, r.header.correlation_id, r.header.api_version, resp).await;
        }
        s
    });
    let conn = Connection::connect(&addr, ConnectionConfig::default())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..N {
        let c = conn.clone();
        tasks.push(tokio::spawn(async move {
            c.send(metadata_for(&format!("t{i}"))).await
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let resp = tokio::time::timeout(Duration::from_secs(10), t)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(
            resp.controller_id, i as i32,
            "response {i} went to its own request"
        );
    }
    drop(server);
}

#[tokio::test]
async fn the_in_flight_window_is_bounded() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut s = accept_negotiated(&l).await;
        let mut pending = Vec::new();
        for _ in 0..3 {
            pending.push(decode_request(read_frame(&mut s).await.unwrap()).unwrap());
            seen_tx.send(()).unwrap();
        }
        // A fourth request must not arrive while three are unanswered.
        let early = tokio::time::timeout(Duration::from_millis(300), read_frame(&mut s)).await;
        assert!(early.is_err(), "a fourth request was sent past the window");
        go_rx.await.unwrap();
        let first = pending.remove(0);
        write(
            &mut s,
            first.header.correlation_id,
            first.header.api_version,
            Response::Metadata(MetadataResponse::default()),
        )
        .await;
        // Now the fourth one comes.
        let fourth = decode_request(read_frame(&mut s).await.unwrap()).unwrap();
        seen_tx.send(()).unwrap();
        pending.push(fourth);
        for r in pending {
            write(
                &mut s,
                r.header.correlation_id,
                r.header.api_version,
                Response::Metadata(MetadataResponse::default()),
            )
            .await;
        }
        std::future::pending::<()>().await;
    });
    let config = ConnectionConfig {
        max_in_flight: 3,
        ..ConnectionConfig::default()
    };
    let conn = Connection::connect(&addr, config).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let c = conn.clone();
        tasks.push(tokio::spawn(async move { c.send(metadata_for("x")).await }));
    }
    for _ in 0..3 {
        seen_rx.recv().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    go_tx.send(()).unwrap();
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(5), t)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

#[tokio::test]
async fn a_refused_connection_says_what_to_do() {
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let e = Connection::connect(&addr, ConnectionConfig::default())
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("cannot reach {addr}: connection refused — is `weir server` running?")
    );
    // Through the cluster too (single bootstrap server: the same error).
    let e = Cluster::connect(common::client_config(&addr))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Connect { .. }), "{e}");
}

#[tokio::test]
async fn a_late_response_times_out_and_kills_the_connection() {
    let mini = Mini::start(1).await;
    mini.set_hook(|_, req| match req {
        Request::Metadata(_) => HookAction::Reply(Reply::Delay(
            Duration::from_secs(30),
            Box::new(Reply::Nothing),
        )),
        _ => HookAction::Continue,
    });
    let config = ConnectionConfig {
        request_timeout: Duration::from_millis(300),
        ..ConnectionConfig::default()
    };
    let conn = Connection::connect(&mini.bootstrap(), config)
        .await
        .unwrap();
    let e = conn.send(metadata_for("t")).await.unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert!(e.to_string().contains("Metadata request to"), "{e}");
    assert!(!conn.is_alive());
    let again = conn.send(metadata_for("t")).await.unwrap_err();
    assert!(
        matches!(again, Error::Timeout { .. }),
        "the first failure sticks: {again}"
    );
}

#[tokio::test]
async fn a_broker_that_closes_fails_the_outstanding_requests() {
    let mini = Mini::start(1).await;
    mini.set_hook(|_, req| match req {
        Request::Metadata(_) => HookAction::Reply(Reply::Close),
        _ => HookAction::Continue,
    });
    let conn = Connection::connect(&mini.bootstrap(), ConnectionConfig::default())
        .await
        .unwrap();
    let e = conn.send(metadata_for("t")).await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::ConnectionClosed { .. } | Error::ConnectionLost { .. }
        ),
        "{e}"
    );
    assert!(e.is_retriable() && !conn.is_alive());
}

#[tokio::test]
async fn bootstrap_skips_dead_servers() {
    let mini = Mini::start(2).await;
    let dead = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let cluster = Cluster::connect(common::client_config(&format!(
        "{dead},{}",
        mini.bootstrap()
    )))
    .await
    .unwrap();
    let md = cluster.metadata();
    assert_eq!(md.brokers.len(), 2);
    assert_eq!(md.cluster_id.as_deref(), Some("mini"));
}
