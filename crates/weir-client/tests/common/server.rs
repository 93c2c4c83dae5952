//! A TCP server that speaks the Kafka framing with a pluggable handler: enough of a
//! broker for protocol-level client tests. Requests on a connection are handled one
//! at a time, in order, as a Kafka broker does.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;
use weir_protocol::{decode_request, encode_response, Request, RequestHeader, Response};

/// What the server does with a request.
#[derive(Debug)]
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

async fn read_frame(stream: &mut TcpStream) -> Option<Bytes> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await.ok()?;
    let len = usize::try_from(i32::from_be_bytes(len)).ok()?;
    let mut buf = BytesMut::zeroed(len);
    stream.read_exact(&mut buf).await.ok()?;
    Some(buf.freeze())
}

async fn write_response(stream: &mut TcpStream, cid: i32, version: i16, resp: &Response) -> bool {
    let chunks = encode_response(cid, version, resp).unwrap();
    for c in chunks {
        if stream.write_all(&c).await.is_err() {
            return false;
        }
    }
    true
}

async fn serve(mut stream: TcpStream, node: i32, handler: Handler) {
    while let Some(frame) = read_frame(&mut stream).await {
        let Ok(req) = decode_request(frame) else {
            return;
        };
        let ctx = Ctx {
            node,
            header: req.header.clone(),
        };
        let mut reply = handler(&ctx, req.body);
        loop {
            let cid = ctx.header.correlation_id;
            let v = ctx.header.api_version;
            match reply {
                Reply::Respond(r) => {
                    if !write_response(&mut stream, cid, v, &r).await {
                        return;
                    }
                }
                Reply::RespondAt(r, at) => {
                    if !write_response(&mut stream, cid, at, &r).await {
                        return;
                    }
                }
                Reply::Nothing => {}
                Reply::Close => return,
                Reply::RespondThenClose(r) => {
                    write_response(&mut stream, cid, v, &r).await;
                    return;
                }
                Reply::Delay(d, inner) => {
                    tokio::time::sleep(d).await;
                    reply = *inner;
                    continue;
                }
            }
            break;
        }
    }
}
