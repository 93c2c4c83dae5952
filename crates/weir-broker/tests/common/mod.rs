//! Shared pieces of the net tests: a scripted service and a framed test client.

#![allow(dead_code, unreachable_pub)]

pub mod client;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;
use weir_broker::net::{
    serve, CancellationToken, CloseConnection, ConnectionContext, ConnectionLimits,
    ConnectionSlots, Reply, Service,
};

/// Upper bound on any one test, so a hang fails instead of stalling the suite.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A service whose behaviour is chosen by the request text:
///
/// - `none`: no response;
/// - `close`: close the connection;
/// - `panic`: a deferred reply that panics;
/// - `ctx`: responds `"<id> <peer> <listener>"`;
/// - `later:<ms>:<tag>`: a deferred reply after `ms` milliseconds, echoing the frame;
/// - `gate:<tag>`: a deferred reply that waits for [`Scripted::open_gate`];
/// - `big:<n>`: `n` bytes (`i % 251`) in 1000-byte chunks;
/// - anything else: echoed back in three chunks.
#[derive(Debug)]
pub struct Scripted {
    /// Every frame in the order `call` saw it.
    pub calls: Mutex<Vec<Bytes>>,
    /// Permits for `gate:` replies.
    gate: Arc<Semaphore>,
    /// `gate:` replies waiting at the gate.
    pub gated: Arc<AtomicUsize>,
    /// Woken whenever a `gate:` reply arrives at the gate.
    pub gated_changed: Arc<Notify>,
}

impl Default for Scripted {
    fn default() -> Self {
        Self {
            calls: Mutex::default(),
            gate: Arc::new(Semaphore::new(0)),
            gated: Arc::default(),
            gated_changed: Arc::default(),
        }
    }
}

impl Scripted {
    /// Lets `n` gated replies through.
    pub fn open_gate(&self, n: usize) {
        self.gate.add_permits(n);
    }

    /// Waits until `n` gated replies are waiting.
    pub async fn wait_gated(&self, n: usize) {
        loop {
            let changed = self.gated_changed.notified();
            if self.gated.load(Ordering::SeqCst) >= n {
                return;
            }
            changed.await;
        }
    }
}

fn echo_in_three(frame: Bytes) -> Vec<Bytes> {
    let third = frame.len() / 3;
    vec![
        frame.slice(..third),
        frame.slice(third..2 * third),
        Bytes::new(),
        frame.slice(2 * third..),
    ]
}

impl Service for Scripted {
    async fn call(&self, ctx: &ConnectionContext, frame: Bytes) -> Result<Reply, CloseConnection> {
        self.calls.lock().map(|mut c| c.push(frame.clone())).ok();
        let text = String::from_utf8_lossy(&frame).into_owned();
        let mut parts = text.splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("none"), None, None) => Ok(Reply::NoResponse),
            (Some("close"), None, None) => Err(CloseConnection::new("test asked to close")),
            (Some("panic"), None, None) => Ok(Reply::deferred(async {
                panic!("test handler panics");
            })),
            (Some("ctx"), None, None) => Ok(Reply::Response(vec![Bytes::from(format!(
                "{} {} {}",
                ctx.id, ctx.peer, ctx.listener
            ))])),
            (Some("later"), Some(ms), Some(_)) => {
                let ms = ms.parse().unwrap_or(0);
                Ok(Reply::deferred(async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    Ok(Some(echo_in_three(frame)))
                }))
            }
            (Some("gate"), Some(_), None) => {
                let (gate, gated, changed) = (
                    self.gate.clone(),
                    self.gated.clone(),
                    self.gated_changed.clone(),
                );
                Ok(Reply::deferred(async move {
                    gated.fetch_add(1, Ordering::SeqCst);
                    changed.notify_waiters();
                    let permit = gate.acquire().await;
                    drop(permit);
                    Ok(Some(vec![frame]))
                }))
            }
            (Some("big"), Some(n), None) => {
                let n: usize = n.parse().unwrap_or(0);
                let body: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
                let body = Bytes::from(body);
                let chunks = (0..n)
                    .step_by(1000)
                    .map(|i| body.slice(i..(i + 1000).min(n)))
                    .collect();
                Ok(Reply::Response(chunks))
            }
            _ => Ok(Reply::Response(echo_in_three(frame))),
        }
    }
}

/// Small limits for tests; adjust fields as needed.
pub fn limits() -> ConnectionLimits {
    ConnectionLimits {
        max_frame_bytes: 8 * 1024 * 1024,
        max_in_flight_requests: 16,
        idle_timeout: Duration::from_secs(60),
        connection_slots: ConnectionSlots::new(64),
    }
}

/// A running `serve` on 127.0.0.1 port 0.
pub struct Server<S> {
    pub addr: SocketAddr,
    pub service: Arc<S>,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<()>,
}

pub async fn start<S: Service>(service: S, limits: ConnectionLimits) -> Server<S> {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let addr = listener.local_addr().expect("local addr");
    let service = Arc::new(service);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(serve(
        listener,
        "TEST",
        service.clone(),
        limits,
        shutdown.clone(),
    ));
    Server {
        addr,
        service,
        shutdown,
        task,
    }
}

/// Encodes one request frame.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

pub async fn send(stream: &mut TcpStream, payload: &[u8]) {
    stream.write_all(&frame(payload)).await.expect("send");
}

/// Reads one response; `None` when the server closed the connection (FIN or reset).
pub async fn recv(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).await.ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut body).await.ok()?;
    Some(body)
}

/// Reads one response that must be there.
pub async fn expect(stream: &mut TcpStream, payload: &[u8]) {
    let got = recv(stream).await;
    assert_eq!(
        got.as_deref().map(String::from_utf8_lossy),
        Some(String::from_utf8_lossy(payload)),
    );
}

/// Asserts the server closes the connection next.
pub async fn expect_closed(stream: &mut TcpStream) {
    assert_eq!(
        recv(stream).await,
        None,
        "expected the connection to be closed"
    );
}
