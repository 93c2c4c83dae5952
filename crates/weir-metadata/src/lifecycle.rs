//! A broker's side of the cluster lifecycle (Kafka's `BrokerLifecycleManager`):
//! register with the controller, heartbeat, and shut down in a controlled way.
//!
//! The task registers with a fresh incarnation id (retrying until a controller
//! answers), then heartbeats every `broker.heartbeat.interval.ms` with the offset of
//! the metadata the broker has applied. The controller unfences the broker once that
//! offset reaches its registration, and fences it when heartbeats stop for a
//! session timeout. A heartbeat answered STALE_BROKER_EPOCH or
//! BROKER_ID_NOT_REGISTERED means the registration is gone: the task registers
//! again. [`BrokerLifecycle::controlled_shutdown`] asks the controller to move the
//! broker's leadership away and waits until it says the broker may stop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};
use weir_types::{ErrorCode, NodeId};

use crate::controller::{ApiError, BrokerRegistration, Controller, Heartbeat};
use crate::image::{Endpoint, MetadataImage};
use crate::uuid::UuidGenerator;

/// How long to wait before retrying a failed registration.
const REGISTER_BACKOFF: Duration = Duration::from_millis(100);

/// The most time between heartbeats while a controlled shutdown is under way.
const SHUTDOWN_HEARTBEAT: Duration = Duration::from_millis(50);

/// What the broker registers with.
#[derive(Debug, Clone)]
pub struct LifecycleConfig {
    /// The broker's `node.id`.
    pub node: NodeId,
    /// Its advertised listeners.
    pub listeners: Vec<Endpoint>,
    /// `broker.rack`, if set.
    pub rack: Option<String>,
    /// `broker.heartbeat.interval.ms`. Default: 2 s.
    pub heartbeat_interval: Duration,
    /// `broker.session.timeout.ms`. Default: 9 s. Without an answered heartbeat for
    /// this long the controller has fenced the broker (or will), so the broker
    /// reports itself fenced too: a broker cut off from the controller must stop
    /// acting as a leader the cluster has already replaced.
    pub session_timeout: Duration,
    /// The broker epoch this broker's previous process shut down cleanly at (its
    /// clean-shutdown marker), or -1: without it the controller takes the broker
    /// out of every ELR, as its log may have lost records (KIP-966). Default: -1.
    pub previous_broker_epoch: i64,
}

impl LifecycleConfig {
    /// A config with Kafka's default heartbeat interval.
    pub fn new(node: NodeId, listeners: Vec<Endpoint>, rack: Option<String>) -> Self {
        LifecycleConfig {
            node,
            listeners,
            rack,
            heartbeat_interval: Duration::from_millis(2000),
            session_timeout: Duration::from_millis(9000),
            previous_broker_epoch: -1,
        }
    }
}

/// Where the broker stands, as of the last answer from the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BrokerStatus {
    /// The broker epoch of the current registration (-1 before one).
    pub broker_epoch: i64,
    /// Whether the broker is fenced (true until the controller unfences it).
    pub fenced: bool,
    /// Whether the controller has allowed the controlled shutdown to finish.
    pub shut_down: bool,
}

/// The running lifecycle task; see the module docs. Dropping it stops the task.
#[derive(Debug)]
pub struct BrokerLifecycle {
    status: watch::Receiver<BrokerStatus>,
    want_shut_down: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl BrokerLifecycle {
    /// Starts registering and heartbeating on the current tokio runtime. `applied`
    /// is the image the broker has applied (its offset goes into every heartbeat).
    pub fn start(
        controller: Controller,
        config: LifecycleConfig,
        applied: watch::Receiver<Arc<MetadataImage>>,
    ) -> BrokerLifecycle {
        let (status_tx, status) = watch::channel(BrokerStatus {
            broker_epoch: -1,
            fenced: true,
            shut_down: false,
        });
        let (want_shut_down, shut_rx) = watch::channel(false);
        let task = tokio::spawn(run(controller, config, applied, status_tx, shut_rx));
        BrokerLifecycle {
            status,
            want_shut_down,
            task,
        }
    }

    /// The broker's status, updated after every answer from the controller.
    pub fn status(&self) -> watch::Receiver<BrokerStatus> {
        self.status.clone()
    }

    /// Asks for a controlled shutdown and waits until the controller allows it or
    /// `timeout` passes; returns whether it was allowed. Heartbeats go on either
    /// way until [`stop`](Self::stop).
    pub async fn controlled_shutdown(&self, timeout: Duration) -> bool {
        self.want_shut_down.send_replace(true);
        let mut status = self.status.clone();
        tokio::time::timeout(timeout, status.wait_for(|s| s.shut_down))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Stops heartbeating (the controller fences the broker after its session
    /// timeout unless it shut down in a controlled way first).
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for BrokerLifecycle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Registers with a fresh incarnation id; `previous_broker_epoch` as in
/// [`LifecycleConfig`].
async fn register(
    controller: &Controller,
    config: &LifecycleConfig,
    previous_broker_epoch: i64,
) -> i64 {
    let registration = BrokerRegistration {
        node: config.node,
        incarnation_id: UuidGenerator::from_entropy().next_uuid(),
        listeners: config.listeners.clone(),
        rack: config.rack.clone(),
        previous_broker_epoch,
    };
    loop {
        match controller.register_broker(registration.clone()).await {
            Ok(epoch) => {
                info!(node_id = %config.node, broker_epoch = epoch, "broker registered with the controller");
                return epoch;
            }
            Err(e) => {
                warn!(node_id = %config.node, code = %e.code, message = ?e.message, "broker registration failed; retrying");
                tokio::time::sleep(REGISTER_BACKOFF).await;
            }
        }
    }
}

async fn run(
    controller: Controller,
    config: LifecycleConfig,
    applied: watch::Receiver<Arc<MetadataImage>>,
    status: watch::Sender<BrokerStatus>,
    mut want_shut_down: watch::Receiver<bool>,
) {
    let mut epoch = register(&controller, &config, config.previous_broker_epoch).await;
    status.send_modify(|s| s.broker_epoch = epoch);
    let mut last_answer = Instant::now();
    // A heartbeat is given up on well within the session, so a controller that
    // stopped answering is noticed in time.
    let patience = (config.session_timeout / 3).max(Duration::from_millis(100));
    loop {
        let shutting_down = *want_shut_down.borrow_and_update();
        let heartbeat = Heartbeat {
            node: config.node,
            broker_epoch: epoch,
            current_metadata_offset: applied.borrow().offset().get(),
            want_fence: false,
            want_shut_down: shutting_down,
        };
        let answer = tokio::time::timeout(patience, controller.broker_heartbeat(heartbeat))
            .await
            .unwrap_or_else(|_| {
                Err(ApiError::new(
                    ErrorCode::RequestTimedOut,
                    "no answer from the controller",
                ))
            });
        match answer {
            Ok(reply) => {
                last_answer = Instant::now();
                status.send_modify(|s| {
                    s.fenced = reply.is_fenced;
                    s.shut_down = s.shut_down || reply.should_shut_down;
                });
            }
            Err(e)
                if matches!(
                    e.code,
                    ErrorCode::StaleBrokerEpoch | ErrorCode::BrokerIdNotRegistered
                ) =>
            {
                warn!(node_id = %config.node, code = %e.code, "registration lost; registering again");
                // The same process: its log lost nothing, so it vouches with the
                // epoch it ran at.
                epoch = register(&controller, &config, epoch).await;
                status.send_modify(|s| {
                    s.broker_epoch = epoch;
                    s.fenced = true;
                });
                continue;
            }
            Err(e) => {
                warn!(node_id = %config.node, code = %e.code, message = ?e.message, "heartbeat failed");
                if last_answer.elapsed() >= config.session_timeout && !status.borrow().fenced {
                    warn!(
                        node_id = %config.node,
                        "no heartbeat answered within the session timeout: acting as fenced"
                    );
                    status.send_modify(|s| s.fenced = true);
                }
            }
        }
        let wait = if shutting_down {
            config.heartbeat_interval.min(SHUTDOWN_HEARTBEAT)
        } else {
            config.heartbeat_interval
        };
        // A shutdown request heartbeats at once instead of at the next interval.
        let _ = tokio::time::timeout(wait, want_shut_down.changed()).await;
    }
}
