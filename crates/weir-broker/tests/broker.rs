//! `Broker`: binding from a config, advertising the bound port, serving, stopping.

mod common;

use common::{expect, send, Scripted, TEST_TIMEOUT};
use tokio::net::TcpStream;
use tokio::time::timeout;
use weir_broker::config::ListenerConfig;
use weir_broker::net::CancellationToken;
use weir_broker::{Broker, BrokerConfig, BrokerError, Endpoint};

fn config_on_port_0() -> BrokerConfig {
    BrokerConfig {
        listeners: ListenerConfig::parse_list("PLAINTEXT://127.0.0.1:0").expect("listeners"),
        ..BrokerConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binds_advertises_serves_and_stops() {
    timeout(TEST_TIMEOUT, async {
        let mut advertised = Vec::new();
        let broker = Broker::bind_with(config_on_port_0(), |_, endpoints| {
            advertised = endpoints;
            Scripted::default()
        })
        .await
        .expect("bind");
        let addrs = broker.local_addrs();
        assert_eq!(addrs.len(), 1);
        let (name, addr) = &addrs[0];
        assert_eq!(name, "PLAINTEXT");
        assert_ne!(addr.port(), 0);
        // Port 0 resolved: clients are told the real port.
        assert_eq!(
            advertised,
            vec![Endpoint {
                listener: "PLAINTEXT".into(),
                host: "127.0.0.1".into(),
                port: addr.port(),
            }]
        );

        let shutdown = CancellationToken::new();
        let running = tokio::spawn(broker.run(shutdown.clone()));
        let mut client = TcpStream::connect(addr).await.expect("connect");
        send(&mut client, b"hello").await;
        expect(&mut client, b"hello").await;
        shutdown.cancel();
        running.await.expect("join").expect("run");
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_config_is_refused_before_binding() {
    let mut config = config_on_port_0();
    config.num_partitions = 0;
    let error = Broker::bind_with(config, |_, _| Scripted::default())
        .await
        .unwrap_err();
    assert!(matches!(error, BrokerError::Config(_)), "{error}");
    assert!(error.to_string().contains("num.partitions"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_in_use_names_the_listener() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let config = BrokerConfig {
        listeners: ListenerConfig::parse_list(&format!("127.0.0.1:{port}")).expect("listeners"),
        ..BrokerConfig::default()
    };
    let error = Broker::bind_with(config, |_, _| Scripted::default())
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("cannot listen on PLAINTEXT://127.0.0.1:{port}")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_closes_connections_on_an_undecodable_header() {
    timeout(TEST_TIMEOUT, async {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = BrokerConfig {
            log_dirs: vec![dir.path().to_path_buf()],
            ..config_on_port_0()
        };
        let broker = Broker::bind(config).await.expect("bind");
        let addr = broker.local_addrs()[0].1;
        let shutdown = CancellationToken::new();
        let running = tokio::spawn(broker.run(shutdown.clone()));
        let mut client = TcpStream::connect(addr).await.expect("connect");
        // ApiVersions v3 whose flexible header ends before its tag buffer.
        send(&mut client, b"\x00\x12\x00\x03\x00\x00\x00\x01\xff\xff").await;
        common::expect_closed(&mut client).await;
        shutdown.cancel();
        running.await.expect("join").expect("run");
    })
    .await
    .expect("test timed out");
}
