//! The net layer over real sockets on 127.0.0.1: framing, ordering under
//! pipelining, limits, and shutdown.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{expect, expect_closed, frame, limits, recv, send, start, Scripted, TEST_TIMEOUT};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::timeout;
use weir_broker::net::ConnectionSlots;

async fn connect(addr: std::net::SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echoes_a_chunked_response() {
    timeout(TEST_TIMEOUT, async {
        let server = start(Scripted::default(), limits()).await;
        let mut client = connect(server.addr).await;
        send(&mut client, b"hello, weir").await;
        expect(&mut client, b"hello, weir").await;
        send(&mut client, b"").await;
        expect(&mut client, b"").await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_responses_keep_request_order() {
    timeout(TEST_TIMEOUT, async {
        let server = start(Scripted::default(), limits()).await;
        let mut client = connect(server.addr).await;
        // Deferred replies finish in a scrambled order; responses must not.
        let count = 300u64;
        let mut batch = Vec::new();
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for i in 0..count {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            batch.extend(frame(format!("later:{}:{i}", seed % 4).as_bytes()));
        }
        client.write_all(&batch).await.expect("send batch");
        for i in 0..count {
            let got = recv(&mut client).await.expect("response");
            let text = String::from_utf8_lossy(&got).into_owned();
            assert!(text.ends_with(&format!(":{i}")), "response {i} was {text}");
        }
        // And the service saw the requests in the order they were sent.
        let calls = server
            .service
            .calls
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default();
        assert_eq!(calls.len() as u64, count);
        for (i, call) in calls.iter().enumerate() {
            assert!(String::from_utf8_lossy(call).ends_with(&format!(":{i}")));
        }
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_response_keep_the_others_in_order() {
    timeout(TEST_TIMEOUT, async {
        let server = start(Scripted::default(), limits()).await;
        let mut client = connect(server.addr).await;
        let mut batch = Vec::new();
        for payload in ["one", "none", "later:5:two", "none", "none", "three"] {
            batch.extend(frame(payload.as_bytes()));
        }
        client.write_all(&batch).await.expect("send batch");
        expect(&mut client, b"one").await;
        expect(&mut client, b"later:5:two").await;
        expect(&mut client, b"three").await;
        // Nothing stray was written for the `none`s: the next response is the next echo.
        send(&mut client, b"four").await;
        expect(&mut client, b"four").await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_from_the_service_comes_after_earlier_responses() {
    timeout(TEST_TIMEOUT, async {
        let server = start(Scripted::default(), limits()).await;
        let mut client = connect(server.addr).await;
        let mut batch = Vec::new();
        for payload in ["one", "later:20:two", "close"] {
            batch.extend(frame(payload.as_bytes()));
        }
        client.write_all(&batch).await.expect("send batch");
        expect(&mut client, b"one").await;
        expect(&mut client, b"later:20:two").await;
        expect_closed(&mut client).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frame_sizes_close_only_that_connection() {
    timeout(TEST_TIMEOUT, async {
        let mut limits = limits();
        limits.max_frame_bytes = 1024;
        let server = start(Scripted::default(), limits).await;
        let mut bystander = connect(server.addr).await;
        send(&mut bystander, b"before").await;
        expect(&mut bystander, b"before").await;

        let mut oversized = connect(server.addr).await;
        oversized
            .write_all(&1025i32.to_be_bytes())
            .await
            .expect("send size");
        expect_closed(&mut oversized).await;

        let mut negative = connect(server.addr).await;
        negative
            .write_all(&(-5i32).to_be_bytes())
            .await
            .expect("send size");
        expect_closed(&mut negative).await;

        // Exactly the limit is fine, and the other connection never noticed.
        let mut exact = connect(server.addr).await;
        let payload = vec![b'x'; 1024];
        send(&mut exact, &payload).await;
        expect(&mut exact, &payload).await;
        send(&mut bystander, b"after").await;
        expect(&mut bystander, b"after").await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_is_enforced() {
    timeout(TEST_TIMEOUT, async {
        let mut limits = limits();
        limits.connection_slots = ConnectionSlots::new(1);
        let slots = limits.connection_slots.clone();
        let server = start(Scripted::default(), limits).await;

        let mut first = connect(server.addr).await;
        send(&mut first, b"first").await;
        expect(&mut first, b"first").await;
        assert_eq!(slots.in_use(), 1);

        // The second client waits in the backlog: connected by the kernel, unserved.
        let mut second = connect(server.addr).await;
        send(&mut second, b"second").await;
        let early = timeout(Duration::from_millis(300), recv(&mut second)).await;
        assert!(
            early.is_err(),
            "second connection was served past max.connections"
        );

        drop(first);
        expect(&mut second, b"second").await;
        assert_eq!(slots.in_use(), 1);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_limit_stops_reading() {
    timeout(TEST_TIMEOUT, async {
        let mut limits = limits();
        limits.max_in_flight_requests = 2;
        let server = start(Scripted::default(), limits).await;
        let mut client = connect(server.addr).await;
        let mut batch = Vec::new();
        for i in 0..5 {
            batch.extend(frame(format!("gate:{i}").as_bytes()));
        }
        client.write_all(&batch).await.expect("send batch");
        server.service.wait_gated(2).await;
        // At the limit the connection reads nothing more, however long we wait.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(server.service.gated.load(Ordering::SeqCst), 2);
        assert_eq!(server.service.calls.lock().map(|c| c.len()).unwrap_or(0), 2);

        server.service.open_gate(5);
        for i in 0..5 {
            expect(&mut client, format!("gate:{i}").as_bytes()).await;
        }
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_requests_already_read() {
    timeout(TEST_TIMEOUT, async {
        let server = start(Scripted::default(), limits()).await;
        let mut client = connect(server.addr).await;
        let mut batch = Vec::new();
        for i in 0..3 {
            batch.extend(frame(format!("gate:{i}").as_bytes()));
        }
        client.write_all(&batch).await.expect("send batch");
        server.service.wait_gated(3).await;

        server.shutdown.cancel();
        // New clients are refused once the listener closes...
        loop {
            if TcpStream::connect(server.addr).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // ...but serve waits for the requests it already read.
        assert!(!server.task.is_finished());
        server.service.open_gate(3);
        for i in 0..3 {
            expect(&mut client, format!("gate:{i}").as_bytes()).await;
        }
        expect_closed(&mut client).await;
        server.task.await.expect("serve returns");
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_panic_closes_only_that_connection() {
    timeout(TEST_TIMEOUT, async {
        let server = start(Scripted::default(), limits()).await;
        let mut victim = connect(server.addr).await;
        let mut batch = Vec::new();
        for payload in ["one", "panic", "two"] {
            batch.extend(frame(payload.as_bytes()));
        }
        victim.write_all(&batch).await.expect("send batch");
        expect(&mut victim, b"one").await;
        expect_closed(&mut victim).await;

        let mut other = connect(server.addr).await;
        send(&mut other, b"still here").await;
        expect(&mut other, b"still here").await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_closed_client_still_gets_its_responses() {
    timeout(TEST_TIMEOUT, async {
        let server = start(Scripted::default(), limits()).await;
        let mut client = connect(server.addr).await;
        let mut batch = Vec::new();
        for payload in ["one", "later:10:two", "three"] {
            batch.extend(frame(payload.as_bytes()));
        }
        client.write_all(&batch).await.expect("send batch");
        client.shutdown().await.expect("half close");
        expect(&mut client, b"one").await;
        expect(&mut client, b"later:10:two").await;
        expect(&mut client, b"three").await;
        expect_closed(&mut client).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed() {
    timeout(TEST_TIMEOUT, async {
        let mut limits = limits();
        limits.idle_timeout = Duration::from_millis(50);
        let server = start(Scripted::default(), limits).await;
        let mut client = connect(server.addr).await;
        send(&mut client, b"ping").await;
        expect(&mut client, b"ping").await;
        expect_closed(&mut client).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_frames_both_ways() {
    timeout(TEST_TIMEOUT, async {
        let server = start(Scripted::default(), limits()).await;
        let mut client = connect(server.addr).await;
        // 3 MB in 3000 chunks: more than one writev's worth of slices.
        send(&mut client, b"big:3000000").await;
        let body = recv(&mut client).await.expect("big response");
        assert_eq!(body.len(), 3_000_000);
        assert!(body.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
        // A 5 MB request, sent in one write, echoed back.
        let payload: Vec<u8> = (0..5_000_000u32).map(|i| (i % 13) as u8).collect();
        send(&mut client, &payload).await;
        let echoed = recv(&mut client).await.expect("echo");
        assert!(echoed == payload, "5 MB echo differs");
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_names_peer_and_listener() {
    timeout(TEST_TIMEOUT, async {
        let server = start(Scripted::default(), limits()).await;
        let mut ids = Vec::new();
        for _ in 0..2 {
            let mut client = connect(server.addr).await;
            let local = client.local_addr().expect("local addr");
            send(&mut client, b"ctx").await;
            let got = recv(&mut client).await.expect("ctx response");
            let text = String::from_utf8_lossy(&got).into_owned();
            let fields: Vec<&str> = text.split(' ').collect();
            assert_eq!(fields[1..], [local.to_string().as_str(), "TEST"]);
            ids.push(fields[0].to_owned());
        }
        assert_ne!(ids[0], ids[1]);
    })
    .await
    .expect("test timed out");
}
