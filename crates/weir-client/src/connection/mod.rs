//! One TCP connection to one broker.
//!
//! A [`Connection`] is a cheap, cloneable handle. Requests are framed (an i32 size
//! prefix), given a correlation id and pipelined: many may be in flight at once, up
//! to [`ConnectionConfig::max_in_flight`], and responses are matched to them in order
//! (see `io.rs` for the reader and writer tasks). The first thing a connection does is
//! ApiVersions negotiation (`versions.rs`); from then on [`Connection::send`] uses, for
//! each API, the highest version both sides speak.
//!
//! # Failure
//!
//! A connection that fails (the socket breaks, the broker closes it, a response does
//! not come within `request.timeout.ms`, a frame breaks the protocol) is dead for
//! good: every outstanding request gets the error and [`Connection::is_alive`]
//! turns false. Whoever owns it ([`crate::Cluster`]) opens a new one. A timeout kills
//! the connection on purpose, as in the Java client: responses come in order, so
//! nothing queued behind a lost response could arrive either.
//!
//! # Ordering
//!
//! [`Connection::enqueue`] is synchronous: the request's place on the wire is fixed
//! when it returns, which is what lets the producer keep several Produce requests to
//! one broker in flight without reordering them.

mod io;
mod versions;

use std::future::Future;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::AbortHandle;
use weir_protocol::header::response_header_version;
use weir_protocol::messages::api_versions::ApiVersionsRequest;
use weir_protocol::wire::{Decoder, Encoder};
use weir_protocol::{ApiKey, Message, RequestHeader};
use weir_types::ErrorCode;

pub use versions::VersionTable;

use crate::api::ClientRequest;
use crate::config::ConnectionConfig;
use crate::error::{Error, Result};
use io::{Outgoing, Pending, Shared};

/// A handle to one broker connection; clones share it.
#[derive(Debug, Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    addr: String,
    config: ConnectionConfig,
    shared: Arc<Shared>,
    /// Frames for the writer task.
    tx: mpsc::UnboundedSender<Outgoing>,
    next_correlation_id: AtomicI32,
    /// One permit per request that may await a response.
    in_flight: Arc<Semaphore>,
    /// The broker's API versions, known once negotiation finished.
    versions: OnceLock<VersionTable>,
    /// The reader and writer tasks, stopped when the last handle goes.
    tasks: [AbortHandle; 2],
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.fail(Error::Closed("connection"));
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Connection {
    /// Connects to `addr` (`host:port`) and negotiates API versions.
    pub async fn connect(addr: &str, config: ConnectionConfig) -> Result<Connection> {
        config.validate()?;
        let stream = match tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr))
            .await
        {
            Err(_) => {
                return Err(Error::Connect {
                    addr: addr.to_owned(),
                    reason: format!("timed out after {} ms", config.connect_timeout.as_millis()),
                    source: None,
                })
            }
            Ok(Err(e)) => return Err(Error::connect(addr, e)),
            Ok(Ok(s)) => s,
        };
        // Small requests (metadata, acks) must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let conn = Connection::start(stream, addr, config);
        conn.negotiate().await?;
        tracing::debug!(%addr, "connected");
        Ok(conn)
    }

    fn start(stream: TcpStream, addr: &str, config: ConnectionConfig) -> Connection {
        let (rd, wr) = stream.into_split();
        let shared = Shared::new(addr.to_owned());
        let (tx, rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(io::read_loop(rd, shared.clone(), config.max_response_bytes));
        let writer = tokio::spawn(io::write_loop(wr, rx, shared.clone()));
        Connection {
            inner: Arc::new(Inner {
                addr: addr.to_owned(),
                in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
                config,
                shared,
                tx,
                next_correlation_id: AtomicI32::new(0),
                versions: OnceLock::new(),
                tasks: [reader.abort_handle(), writer.abort_handle()],
            }),
        }
    }

    /// The `host:port` this connection was opened to.
    pub fn addr(&self) -> &str {
        &self.inner.addr
    }

    /// Whether the connection can still carry requests.
    pub fn is_alive(&self) -> bool {
        self.inner.shared.failure().is_none()
    }

    /// The broker's advertised API versions.
    pub fn versions(&self) -> Option<&VersionTable> {
        self.inner.versions.get()
    }

    /// The negotiated version of `R`'s API, or why there is none.
    pub fn version_of<R: ClientRequest>(&self) -> Result<i16> {
        self.versions()
            .and_then(|t| t.negotiate(R::API))
            .ok_or_else(|| Error::UnsupportedApi {
                api: R::API.name(),
                addr: self.inner.addr.clone(),
                min: R::CLIENT_VERSIONS.0,
                max: R::CLIENT_VERSIONS.1,
            })
    }

    /// Sends `req` at the negotiated version and waits for the response.
    pub async fn send<R: ClientRequest>(&self, req: R) -> Result<R::Response> {
        let version = self.version_of::<R>()?;
        self.send_versioned(req, version).await
    }

    /// Sends `req` at `version` (which must be inside what the broker advertised) and
    /// waits for the response, waiting first for an in-flight slot if all are taken.
    pub async fn send_versioned<R: ClientRequest>(
        &self,
        req: R,
        version: i16,
    ) -> Result<R::Response> {
        let permit = self
            .inner
            .in_flight
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Closed("connection"))?;
        self.enqueue_with_permit(&req, version, Some(permit), None)?
            .await
    }

    /// Queues `req` at `version` now and returns the future of its response. Its
    /// place on the wire is fixed when this returns. Fails at once if every in-flight
    /// slot is taken. `extra_timeout` is added to `request.timeout.ms` (Fetch adds its
    /// `max_wait_ms`, which the broker may legitimately spend).
    pub fn enqueue<R: ClientRequest>(
        &self,
        req: &R,
        version: i16,
        extra_timeout: Option<Duration>,
    ) -> Result<impl Future<Output = Result<R::Response>> + Send + 'static> {
        let permit = self
            .inner
            .in_flight
            .clone()
            .try_acquire_owned()
            .map_err(|_| Error::InFlightLimit {
                addr: self.inner.addr.clone(),
                limit: self.inner.config.max_in_flight,
            })?;
        self.enqueue_with_permit(req, version, Some(permit), extra_timeout)
    }

    /// Queues a request the broker will not answer (Produce with acks=0); the
    /// future resolves once the frame is written to the socket.
    pub fn enqueue_no_response<R: ClientRequest>(
        &self,
        req: &R,
        version: i16,
    ) -> Result<impl Future<Output = Result<()>> + Send + 'static> {
        let (frame, _) = self.encode(req, version)?;
        let (tx, rx) = oneshot::channel();
        self.push(Outgoing {
            frame,
            pending: None,
            written: Some(tx),
        })?;
        let shared = self.inner.shared.clone();
        Ok(async move {
            rx.await
                .map_err(|_| shared.failure().unwrap_or(Error::Closed("connection")))
        })
    }

    fn enqueue_with_permit<R: ClientRequest>(
        &self,
        req: &R,
        version: i16,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
        extra_timeout: Option<Duration>,
    ) -> Result<impl Future<Output = Result<R::Response>> + Send + 'static> {
        let (frame, correlation_id) = self.encode(req, version)?;
        let (tx, rx) = oneshot::channel();
        self.push(Outgoing {
            frame,
            pending: Some(Pending {
                correlation_id,
                api: R::API,
                tx,
                _permit: permit,
            }),
            written: None,
        })?;
        let conn = self.clone();
        let timeout = self.inner.config.request_timeout + extra_timeout.unwrap_or_default();
        Ok(async move {
            let body = conn.wait(rx, R::API, timeout).await?;
            decode_body::<R::Response>(body, R::API, version)
        })
    }

    fn push(&self, out: Outgoing) -> Result<()> {
        if let Some(e) = self.inner.shared.failure() {
            return Err(e);
        }
        self.inner
            .tx
            .send(out)
            .map_err(|_| Error::Closed("connection"))
    }

    fn encode<R: ClientRequest>(&self, req: &R, version: i16) -> Result<(Vec<Bytes>, i32)> {
        let correlation_id = self
            .inner
            .next_correlation_id
            .fetch_add(1, Ordering::Relaxed)
            & i32::MAX;
        let header = RequestHeader {
            api_key: R::API as i16,
            api_version: version,
            correlation_id,
            client_id: Some(self.inner.config.client_id.clone()),
        };
        let mut e = Encoder::new();
        header.encode(&mut e)?;
        req.encode(&mut e, version)?;
        let len = u32::try_from(e.len()).map_err(|_| {
            Error::Encode(weir_protocol::EncodeError::TooLong {
                what: "request frame",
                length: e.len(),
            })
        })?;
        let mut frame = Vec::with_capacity(4);
        frame.push(Bytes::copy_from_slice(&len.to_be_bytes()));
        frame.extend(e.into_chunks());
        Ok((frame, correlation_id))
    }

    async fn wait(
        &self,
        rx: oneshot::Receiver<Result<Bytes>>,
        api: ApiKey,
        timeout: Duration,
    ) -> Result<Bytes> {
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(self
                .inner
                .shared
                .failure()
                .unwrap_or(Error::Closed("connection"))),
            Err(_) => {
                let e = Error::Timeout {
                    api: api.name(),
                    addr: self.inner.addr.clone(),
                    after: timeout,
                };
                self.inner.shared.fail(e.clone());
                Err(e)
            }
        }
    }

    /// ApiVersions at the newest version, falling back once per UNSUPPORTED_VERSION.
    async fn negotiate(&self) -> Result<()> {
        let mut version = <ApiVersionsRequest as ClientRequest>::CLIENT_VERSIONS.1;
        loop {
            let req = ApiVersionsRequest {
                client_software_name: self.inner.config.software_name.clone(),
                client_software_version: self.inner.config.software_version.clone(),
            };
            let (frame, correlation_id) = self.encode(&req, version)?;
            let (tx, rx) = oneshot::channel();
            self.push(Outgoing {
                frame,
                pending: Some(Pending {
                    correlation_id,
                    api: ApiKey::ApiVersions,
                    tx,
                    _permit: None,
                }),
                written: None,
            })?;
            let frame = self
                .wait(rx, ApiKey::ApiVersions, self.inner.config.request_timeout)
                .await?;
            // The ApiVersions response header is always v0: just the correlation id.
            let resp = versions::decode_api_versions(frame.slice(4..), version)?;
            match ErrorCode::from_code(resp.error_code) {
                ErrorCode::None => {
                    let _ = self.inner.versions.set(VersionTable::from_response(&resp));
                    return Ok(());
                }
                ErrorCode::UnsupportedVersion => {
                    let Some(next) = versions::fallback_version(&resp, version) else {
                        return Err(Error::UnsupportedApi {
                            api: ApiKey::ApiVersions.name(),
                            addr: self.inner.addr.clone(),
                            min: 0,
                            max: version,
                        });
                    };
                    tracing::debug!(addr = %self.inner.addr, from = version, to = next,
                        "ApiVersions version not supported by the broker; retrying");
                    version = next;
                }
                code => {
                    return Err(Error::kafka(
                        format!("ApiVersions from {}", self.inner.addr),
                        code,
                        None,
                    ))
                }
            }
        }
    }
}

/// Decodes a response frame (after the size prefix) into `M` at `version`.
fn decode_body<M: Message>(frame: Bytes, api: ApiKey, version: i16) -> Result<M> {
    let mut d = Decoder::new(frame);
    d.i32()?; // correlation id, checked by the reader
    if response_header_version(api, version) >= 1 {
        d.tagged_fields(|_, _| Ok(false))?;
    }
    let body = M::decode(&mut d, version)?;
    d.finish()?;
    Ok(body)
}
