//! The accept loop: one task per connection, bounded by `max.connections`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::{connection, ConnectionContext, ConnectionLimits, Service};

/// Ids for [`ConnectionContext::id`], process-wide so they stay unique across
/// listeners and across brokers embedded in one process (tests, dev clusters).
static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

/// First pause after a failed `accept`; doubles up to [`ACCEPT_BACKOFF_MAX`].
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
/// Longest pause after failed `accept`s. Failures are usually resource exhaustion
/// (EMFILE); retrying in a tight loop would only burn a core until it passes.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Accepts connections on `listener` and serves each with `service` until `shutdown`
/// is cancelled, then waits for every connection to drain and returns.
///
/// `name` is the listener's name from `listeners` (it reaches the service in
/// [`ConnectionContext::listener`]). A connection slot from `limits` is taken before
/// each `accept`, so at the limit new clients wait in the kernel's backlog (as
/// Kafka's acceptor does) rather than being accepted and dropped. The listener socket
/// is closed as soon as shutdown begins, so new clients are refused while the
/// existing connections finish the requests they already sent.
pub async fn serve<S: Service>(
    listener: TcpListener,
    name: &str,
    service: Arc<S>,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) {
    let name: Arc<str> = Arc::from(name);
    let local = listener
        .local_addr()
        .map(|addr| addr.to_string())
        .unwrap_or_default();
    let tracker = TaskTracker::new();
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        let permit = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            permit = limits.connection_slots.semaphore.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                // The semaphore is never closed; treat it as a shutdown if it ever is.
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                backoff = ACCEPT_BACKOFF_MIN;
                accepted
            }
            Err(error) => {
                warn!(listener = %name, %error, "accept failed; retrying in {backoff:?}");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        // Kafka sets TCP_NODELAY too: responses are written whole with one vectored
        // write, so Nagle's algorithm would only add latency.
        if let Err(error) = stream.set_nodelay(true) {
            debug!(%peer, %error, "could not set TCP_NODELAY");
        }
        let local_addr = match stream.local_addr() {
            Ok(addr) => addr,
            Err(error) => {
                debug!(%peer, %error, "connection gone before it started");
                continue;
            }
        };
        let id = NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed);
        let ctx = Arc::new(ConnectionContext::new(id, peer, local_addr, name.clone()));
        debug!(%peer, connection = id, listener = %name, "connection accepted");
        let service = service.clone();
        let limits = limits.clone();
        let shutdown = shutdown.clone();
        let requests = tracker.clone();
        tracker.spawn(async move {
            connection::run(stream, ctx, service, &limits, shutdown, requests).await;
            drop(permit);
        });
    }
    drop(listener);
    tracker.close();
    info!(
        listener = %name,
        addr = %local,
        tasks = tracker.len(),
        "listener closed; waiting for connections and requests to finish"
    );
    tracker.wait().await;
}
