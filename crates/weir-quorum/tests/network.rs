//! The controller listener: forwarded controller calls, and hostile input.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Cluster;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weir_metadata::{BoxFuture, ForwardedRequestHandler, MetadataError};
use weir_types::NodeId;

/// Answers with its node id and the request reversed.
struct Echo(i32);

impl ForwardedRequestHandler for Echo {
    fn handle(&self, request: Vec<u8>) -> BoxFuture<Vec<u8>> {
        let me = self.0;
        Box::pin(async move {
            let mut out = format!("node {me}: ").into_bytes();
            out.extend(request.into_iter().rev());
            out
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_controller_call_reaches_the_handler_of_another_node() {
    let mut c = Cluster::start(3, 1000).await;
    let (a, b, third) = (NodeId(1), NodeId(2), NodeId(3));
    c.nodes[&b].set_forwarded_handler(Arc::new(Echo(2)));
    let transport = c.nodes[&a].transport();
    let reply = transport.call(b, b"abc".to_vec()).await.unwrap();
    assert_eq!(reply, b"node 2: cba");
    // Big requests pass too (well under the frame cap).
    let big = vec![7u8; 1 << 20];
    let reply = transport.call(b, big).await.unwrap();
    assert_eq!(reply.len(), "node 2: ".len() + (1 << 20));

    // Without a handler: an error, and the connection stays usable.
    let err = transport.call(third, b"x".to_vec()).await.unwrap_err();
    assert!(
        matches!(&err, MetadataError::Transport { node, reason } if *node == third && reason.contains("not ready")),
        "{err}"
    );
    c.nodes[&third].set_forwarded_handler(Arc::new(Echo(3)));
    assert_eq!(
        transport.call(third, b"yz".to_vec()).await.unwrap(),
        b"node 3: zy"
    );
    // A node that is not a voter is an error, not a hang.
    assert!(transport.call(NodeId(9), vec![]).await.is_err());

    // The callee restarts: the pooled connection to its old process is not reused,
    // so the first call after the restart succeeds.
    c.stop(b).await;
    c.restart(b).await;
    c.nodes[&b].set_forwarded_handler(Arc::new(Echo(2)));
    assert_eq!(
        transport.call(b, b"up".to_vec()).await.unwrap(),
        b"node 2: pu"
    );
    c.shutdown().await;
}

/// A frame: length, kind, payload.
fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = ((payload.len() + 1) as u32).to_be_bytes().to_vec();
    out.push(kind);
    out.extend_from_slice(payload);
    out
}

/// A postcard Hello (cluster id, from, to) for small ids.
fn hello(cluster_id: &str, from: u8, to: u8) -> Vec<u8> {
    let mut p = vec![cluster_id.len() as u8];
    p.extend_from_slice(cluster_id.as_bytes());
    p.push(from);
    p.push(to);
    frame(1, &p)
}

/// Reads until the peer closes; returns what came (bounded wait).
async fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("the server did not close the connection")
        .ok();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn garbage_and_oversized_frames_close_only_their_connection() {
    let c = Cluster::start(3, 1000).await;
    c.create_topic("first", 1).await;
    let target = NodeId(2);
    let addr = c.addrs[&target];
    c.nodes[&target].set_forwarded_handler(Arc::new(Echo(2)));
    let cluster_id = c.config(target).cluster_id();

    // A healthy connection opened before the garbage, kept across it.
    let mut good = TcpStream::connect(addr).await.unwrap();
    good.write_all(&hello(&cluster_id, 1, 2)).await.unwrap();
    let mut reply = [0u8; 5];
    good.read_exact(&mut reply).await.unwrap();
    assert_eq!(reply, [0, 0, 0, 1, 0x81]);

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("length over the cap", u32::MAX.to_be_bytes().to_vec()),
        ("zero length", 0u32.to_be_bytes().to_vec()),
        ("unknown kind", frame(0x42, b"junk")),
        ("request before hello", frame(2, b"\x01\x02")),
        ("hello of another cluster", hello("someone-else", 1, 2)),
        ("hello to the wrong node", hello(&cluster_id, 1, 3)),
        ("garbage hello", frame(1, &[0xff; 40])),
        // Claims ~9 MB, then the sender stops: a frame cut short.
        (
            "random bytes",
            (0..300u32).map(|i| (i * 7919 % 251) as u8).collect(),
        ),
    ];
    for (what, bytes) in &cases {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(bytes).await.unwrap();
        if *what == "random bytes" {
            s.shutdown().await.unwrap();
        }
        let got = read_to_close(&mut s).await;
        assert!(got.is_empty() || got[4] == 0x7f, "{what}: {got:?}");
    }
    // A greeted connection that then sends an undecodable Raft request.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&hello(&cluster_id, 1, 2)).await.unwrap();
    s.write_all(&frame(2, &[0xff; 64])).await.unwrap();
    let got = read_to_close(&mut s).await;
    assert_eq!(&got[..5], &[0, 0, 0, 1, 0x81], "hello accepted first");
    assert_eq!(got[9], 0x7f, "then an error frame before the close");

    // The healthy connection still works, and so does the quorum.
    good.write_all(&frame(5, b"ping")).await.unwrap();
    let mut len = [0u8; 4];
    good.read_exact(&mut len).await.unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    good.read_exact(&mut body).await.unwrap();
    assert_eq!(body[0], 0x85);
    assert_eq!(&body[1..], b"node 2: gnip");
    let image = c.create_topic("second", 2).await;
    c.converged(image.offset().get()).await;
    assert!(c.nodes[&target].image().topic("second").is_some());
    c.shutdown().await;
}
