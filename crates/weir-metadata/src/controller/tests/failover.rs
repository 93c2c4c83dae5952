//! Two controllers over one journal, of which one node at a time is active (a
//! stand-in for a Raft quorum): forwarding through an in-memory transport, waiting
//! for an active controller, fresh sessions after a failover, and the broker
//! lifecycle task.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use weir_types::Offset;

use super::cluster::{cluster_config, hb, join, part, reg, FakeClock};
use super::*;
use crate::journal::{BoxFuture, ControllerTransport, ForwardedRequestHandler, MetadataJournal};
use crate::lifecycle::{BrokerLifecycle, LifecycleConfig};
use crate::record::MetadataRecord;
use crate::store::MetadataStore;

/// One node's view of a journal shared by every node: appends succeed only on the
/// node the shared `active` watch names.
struct SharedJournal {
    node: NodeId,
    store: Arc<Mutex<MetadataStore>>,
    images: watch::Receiver<Arc<MetadataImage>>,
    active: watch::Receiver<Option<NodeId>>,
}

impl MetadataJournal for SharedJournal {
    fn image(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.images.borrow())
    }
    fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.images.clone()
    }
    fn next_offset(&self) -> Offset {
        self.store.lock().unwrap().next_offset()
    }
    fn active_controller(&self) -> watch::Receiver<Option<NodeId>> {
        self.active.clone()
    }
    fn append(&mut self, records: &[MetadataRecord]) -> crate::Result<Arc<MetadataImage>> {
        let leader = *self.active.borrow();
        if leader != Some(self.node) {
            return Err(MetadataError::NotController { leader });
        }
        self.store.lock().unwrap().append(records)
    }
}

/// Calls the forwarded-request handler of the named node directly.
#[derive(Default)]
struct MemTransport {
    handlers: Mutex<BTreeMap<NodeId, Arc<dyn ForwardedRequestHandler>>>,
    calls: std::sync::atomic::AtomicUsize,
}

impl ControllerTransport for MemTransport {
    fn call(&self, node: NodeId, request: Vec<u8>) -> BoxFuture<crate::Result<Vec<u8>>> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let handler = self.handlers.lock().unwrap().get(&node).cloned();
        Box::pin(async move {
            match handler {
                Some(h) => Ok(h.handle(request).await),
                None => Err(MetadataError::Transport {
                    node,
                    reason: "unreachable".into(),
                }),
            }
        })
    }
}

struct Pair {
    c1: Controller,
    c2: Controller,
    active: watch::Sender<Option<NodeId>>,
    transport: Arc<MemTransport>,
    clock: Arc<FakeClock>,
    _dir: tempfile::TempDir,
}

fn pair(timeout: Duration) -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let store = MetadataStore::open(dir.path(), NodeId(1)).unwrap();
    let images = MetadataJournal::subscribe(&store);
    let store = Arc::new(Mutex::new(store));
    let (active, rx) = watch::channel(Some(NodeId(1)));
    let transport = Arc::new(MemTransport::default());
    let clock = FakeClock::new();
    let mut controllers = Vec::new();
    for node in [1, 2] {
        let journal = SharedJournal {
            node: NodeId(node),
            store: Arc::clone(&store),
            images: images.clone(),
            active: rx.clone(),
        };
        let config = ControllerConfig {
            node_id: NodeId(node),
            request_timeout: timeout,
            ..cluster_config(Arc::clone(&clock))
        };
        let t: Arc<dyn ControllerTransport> = transport.clone();
        let c = Controller::start(Box::new(journal), Some(t), config).unwrap();
        transport
            .handlers
            .lock()
            .unwrap()
            .insert(NodeId(node), c.forwarded_handler());
        controllers.push(c);
    }
    let c2 = controllers.pop().unwrap();
    let c1 = controllers.pop().unwrap();
    Pair {
        c1,
        c2,
        active,
        transport,
        clock,
        _dir: dir,
    }
}

#[tokio::test]
async fn an_inactive_controller_forwards_to_the_active_one() {
    let p = pair(Duration::from_secs(5));
    // Broker-facing and admin requests made on node 2 run on node 1.
    let e3 = join(&p.c2, 3, None).await;
    assert!(p.transport.calls.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    create_ok(&p.c2, vec![topic("t", 2, 1)]).await;
    assert_eq!(p.c1.image().topic("t").unwrap().partitions.len(), 2);
    assert_eq!(p.c2.image().offset(), p.c1.image().offset());
    let r =
        p.c2.create_topics(vec![topic("t", 1, 1)], false)
            .await
            .unwrap();
    assert_eq!(r[0].error.code, ErrorCode::TopicAlreadyExists);
    let err = p.c2.broker_heartbeat(hb(3, e3 + 1, 0)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::StaleBrokerEpoch);
    let block = p.c2.allocate_producer_ids(NodeId(3), e3).await.unwrap();
    assert_eq!(block.first_id, 0);
    assert_eq!(part(&p.c2, "t", 0).leader, Some(NodeId(3)));
}

#[tokio::test]
async fn without_an_active_controller_requests_wait_then_fail() {
    let p = pair(Duration::from_millis(300));
    p.active.send_replace(None);
    let err =
        p.c2.create_topics(vec![topic("t", 1, 1)], false)
            .await
            .unwrap_err();
    assert!(
        matches!(err, MetadataError::NotController { leader: None }),
        "{err}"
    );
    let err = p.c2.register_broker(reg(3, None)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::NotController);

    // A controller that appears while the request waits serves it.
    let p = pair(Duration::from_secs(10));
    p.active.send_replace(None);
    let c2 = p.c2.clone();
    let waiting = tokio::spawn(async move { c2.register_broker(reg(3, None)).await });
    tokio::time::sleep(Duration::from_millis(120)).await;
    p.active.send_replace(Some(NodeId(2)));
    assert!(waiting.await.unwrap().is_ok());
    assert!(p.c1.image().broker(NodeId(3)).is_some());
}

#[tokio::test]
async fn a_new_active_controller_gives_every_broker_a_fresh_session() {
    let p = pair(Duration::from_secs(5));
    join(&p.c1, 3, None).await;
    join(&p.c1, 4, None).await;
    create_ok(&p.c1, vec![topic("t", 2, 2)]).await;
    // No heartbeats for 8 s, then node 2 takes over.
    p.clock.advance(8_000);
    p.active.send_replace(Some(NodeId(2)));
    p.c2.tick().await.unwrap();
    p.c1.tick().await.unwrap();
    p.clock.advance(8_000);
    p.c2.tick().await.unwrap();
    let image = p.c2.image();
    assert!(
        !image.broker(NodeId(3)).unwrap().fenced,
        "8 s since node 2 became active"
    );
    p.clock.advance(1_500);
    p.c2.tick().await.unwrap();
    let image = p.c2.image();
    assert!(image.broker(NodeId(3)).unwrap().fenced);
    assert!(image.broker(NodeId(4)).unwrap().fenced);
    // Node 1 is inactive now: its requests are answered by node 2, which has no
    // live broker to place on.
    let r =
        p.c1.create_topics(vec![topic("u", 1, 1)], false)
            .await
            .unwrap();
    assert_eq!(r[0].error.code, ErrorCode::InvalidReplicationFactor);
}

#[tokio::test]
async fn broker_lifecycle_registers_unfences_and_shuts_down() {
    let dir = tempfile::tempdir().unwrap();
    let config = ControllerConfig {
        listeners: vec![],
        ..config()
    };
    let c = Controller::open(dir.path(), config).unwrap();
    let lifecycle = BrokerLifecycle::start(
        c.clone(),
        LifecycleConfig {
            heartbeat_interval: Duration::from_millis(20),
            ..LifecycleConfig::new(NodeId(5), listener(9095), None)
        },
        c.subscribe(),
    );
    let mut status = lifecycle.status();
    tokio::time::timeout(
        Duration::from_secs(10),
        status.wait_for(|s| s.broker_epoch >= 0 && !s.fenced),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!c.image().broker(NodeId(5)).unwrap().fenced);
    create_ok(&c, vec![topic("t", 1, 1)]).await;
    assert_eq!(part(&c, "t", 0).leader, Some(NodeId(5)));

    assert!(lifecycle.controlled_shutdown(Duration::from_secs(10)).await);
    assert_eq!(part(&c, "t", 0).leader, None);
    assert!(c.image().broker(NodeId(5)).unwrap().in_controlled_shutdown);
    lifecycle.stop();
}

#[tokio::test]
async fn the_controller_ticks_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let config = ControllerConfig {
        listeners: vec![],
        session_timeout: Duration::from_millis(200),
        tick_interval: Duration::from_millis(20),
        ..config()
    };
    let c = Controller::open(dir.path(), config).unwrap();
    let epoch = c.register_broker(reg(3, None)).await.unwrap();
    let reply = c
        .broker_heartbeat(hb(3, epoch, c.image().offset().get()))
        .await
        .unwrap();
    assert!(!reply.is_fenced);
    // No more heartbeats: the periodic tick fences the broker.
    let mut images = c.subscribe();
    tokio::time::timeout(
        Duration::from_secs(10),
        images.wait_for(|i| i.broker(NodeId(3)).is_some_and(|b| b.fenced)),
    )
    .await
    .unwrap()
    .unwrap();
}
