//! A TCP server that speaks the Kafka framing with a pluggable handler: enough of a
//! broker for protocol-level client tests. Requests on a connection are handled one
//! at a time, in order, as a Kafka broker does; a [`Reply::Later`] lets the next
//! ones be read before it is answered, as a broker's deferred produce does.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;
use weir_protocol::{decode_request, encode_response, Request, RequestHeader, Response};

/// What the server does with a request.
pub enum Reply {
    /// Answer at the request's version.
    Respond(Response),
    /// Answer at another version (ApiVersions answers UNSUPPORTED_VERSION at v0).
    RespondAt(Response, i16),
    /// No answer (Produce with acks=0).
    Nothing,
    /// Close the connection without answering.
    Close,
    /// Answer, then close the connection.
    RespondThenClose(Response),
    /// Wait, then do the inner thing.
    Delay(Duration, Box<Reply>),
    /// Do what the future says once it resolves; meanwhile the connection keeps
    /// reading and handling requests (their replies wait their turn), as a broker
    /// does while a produce waits for its fsync.
    Later(std::pin::Pin<Box<dyn std::future::Future<Output = Reply> + Send>>),
}

/// The request as the handler sees it.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub node: i32,
    pub header: RequestHeader,
}

pub type Handler = Arc<dyn Fn(&Ctx, Request) -> Reply + Send + Sync>;

/// A listening fake broker; dropping it (or `kill`) closes every connection.
pub struct Server {
    pub addr: SocketAddr,
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Server {
    pub async fn bind() -> TcpListener {
        TcpListener::bind("127.0.0.1:0").await.unwrap()
    }

    pub fn start(listener: TcpListener, node: i32, handler: Handler) -> Server {
        let addr = listener.local_addr().unwrap();
        let tasks: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let conn_tasks = tasks.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let _ = stream.set_nodelay(true);
                let t = tokio::spawn(serve(stream, node, handler.clone()));
                conn_tasks.lock().unwrap().push(t.abort_handle());
            }
        });
        tasks.lock().unwrap().push(accept.abort_handle());
        Server { addr, tasks }
    }

    pub fn addr_string(&self) -> String {
        self.addr.to_string()
    }

    /// Stops listening and drops every connection.
    pub fn kill(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn read_frame(stream: &mut OwnedReadHalf) -> Option<Bytes> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await.ok()?;
    let len = usize::try_from(i32::from_be_bytes(len)).ok()?;
    let mut buf = BytesMut::zeroed(len);
    stream.read_exact(&mut buf).await.ok()?;
    Some(buf.freeze())
}

async fn write_response(
    stream: &mut OwnedWriteHalf,
    cid: i32,
    version: i16,
    resp: &Response,
) -> bool {
    let chunks = encode_response(cid, version, resp).unwrap();
    for c in chunks {
        if stream.write_all(&c).await.is_err() {
            return false;
        }
    }
    true
}

/// A reply on its way to the writer, and how to tell the reader it is done.
type Queued = (Ctx, Reply, tokio::sync::oneshot::Sender<()>);

async fn serve(stream: TcpStream, node: i32, handler: Handler) {
    let (mut read_half, mut write_half) = stream.into_split();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Queued>();
    // The reader handles one request at a time, as a broker does, and reads the
    // next only once the reply is written, except after a `Later` reply: those
    // are pipelined, so requests keep arriving while their answers are pending.
    let reader = tokio::spawn(async move {
        while let Some(frame) = read_frame(&mut read_half).await {
            let Ok(req) = decode_request(frame) else {
                return;
            };
            let ctx = Ctx {
                node,
                header: req.header.clone(),
            };
            let reply = handler(&ctx, req.body);
            let pipelined = matches!(reply, Reply::Later(_));
            let (done_tx, done_rx) = tokio::sync::oneshot::channel();
            if tx.send((ctx, reply, done_tx)).is_err() {
                return;
            }
            if !pipelined && done_rx.await.is_err() {
                return;
            }
        }
    });
    while let Some((ctx, reply, done)) = rx.recv().await {
        if !write_reply(&mut write_half, &ctx, reply).await {
            break;
        }
        let _ = done.send(());
    }
    reader.abort();
}

/// Carries out one reply; false when the connection is to close.
async fn write_reply(stream: &mut OwnedWriteHalf, ctx: &Ctx, mut reply: Reply) -> bool {
    let cid = ctx.header.correlation_id;
    let v = ctx.header.api_version;
    loop {
        match reply {
            Reply::Respond(r) => return write_response(stream, cid, v, &r).await,
            Reply::RespondAt(r, at) => return write_response(stream, cid, at, &r).await,
            Reply::Nothing => return true,
            Reply::Close => return false,
            Reply::RespondThenClose(r) => {
                write_response(stream, cid, v, &r).await;
                return false;
            }
            Reply::Delay(d, inner) => {
                tokio::time::sleep(d).await;
                reply = *inner;
            }
            Reply::Later(future) => reply = future.await,
        }
    }
}
