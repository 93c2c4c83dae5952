//! The KIP-848 consumer protocol (`GroupProtocol::Consumer`) and regex
//! subscriptions, end to end: weir-client group consumers against the real
//! `weir server` binary (its KIP-848 heartbeat interval is Kafka's 5 s, so a
//! reconciliation takes a few heartbeats).

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use weir_client::admin::{Admin, NewTopic};
use weir_client::consumer::OffsetReset;
use weir_client::group::admin::GroupAdmin;
use weir_client::group::{GroupConfig, GroupConsumer, GroupProtocol};
use weir_client::producer::{Producer, ProducerConfig, ProducerRecord};
use weir_client::Cluster;

use common::weir::WeirServer;

fn config(addr: &str, group: &str, protocol: GroupProtocol) -> GroupConfig {
    let mut c = GroupConfig::new(addr, group);
    c.consumer.client = common::client_config(addr);
    // A classic pattern subscription is matched again on every refresh.
    c.consumer.client.metadata_max_age = Duration::from_millis(500);
    c.consumer.auto_offset_reset = OffsetReset::Earliest;
    c.consumer.fetch_max_wait = Duration::from_millis(100);
    c.session_timeout = Duration::from_secs(6);
    c.heartbeat_interval = Duration::from_millis(500);
    c.rebalance_timeout = Duration::from_secs(15);
    c.group_protocol = protocol;
    c
}

async fn create_topic(addr: &str, topic: &str, partitions: i32) {
    let admin = Admin::new(common::client_config(addr)).await.unwrap();
    let r = admin
        .create_topics(vec![NewTopic::new(topic, partitions, 1)], false)
        .await
        .unwrap();
    r[0].1.as_ref().unwrap();
}

/// Produces `n` records round-robin over the partitions, values `"{tag}-{i}"`.
async fn produce(addr: &str, topic: &str, partitions: i32, tag: &str, n: usize) {
    let p = Producer::new(ProducerConfig {
        client: common::client_config(addr),
        ..ProducerConfig::default()
    })
    .await
    .unwrap();
    let mut futures = Vec::new();
    for i in 0..n {
        let rec = ProducerRecord::new(topic, format!("{tag}-{i}")).partition(i as i32 % partitions);
        futures.push(p.send(rec).await.unwrap());
    }
    for f in futures {
        f.await.unwrap();
    }
    p.close().await.unwrap();
}

/// (topic, partition, offset) -> how many times it was consumed, over all members.
type Seen = Arc<Mutex<BTreeMap<(String, i32, i64), u32>>>;

/// A member polling in its own task, committing after every batch, until told to
/// close (commit, leave).
struct Member {
    close: mpsc::UnboundedSender<()>,
    task: JoinHandle<()>,
    /// Its assignment after its last poll, as `topic-partition`.
    assignment: Arc<Mutex<Vec<String>>>,
}

fn start(mut c: GroupConsumer, seen: Seen) -> Member {
    let (close, mut closed) = mpsc::unbounded_channel();
    let assignment = Arc::new(Mutex::new(Vec::new()));
    let shared = assignment.clone();
    let task = tokio::spawn(async move {
        loop {
            if closed.try_recv().is_ok() {
                c.close().await.unwrap();
                return;
            }
            let records = c.poll(Duration::from_millis(200)).await.unwrap();
            {
                let mut s = seen.lock().unwrap();
                for r in &records {
                    *s.entry((r.topic.to_string(), r.partition, r.offset))
                        .or_default() += 1;
                }
            }
            if let Err(e) = c.commit().await {
                eprintln!("commit failed (retried after the next poll): {e}");
            }
            *shared.lock().unwrap() = c.assignment().iter().map(|tp| tp.to_string()).collect();
        }
    });
    Member {
        close,
        task,
        assignment,
    }
}

async fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn count(seen: &Seen, topic: &str) -> usize {
    seen.lock()
        .unwrap()
        .keys()
        .filter(|(t, _, _)| t == topic)
        .count()
}

fn assert_each_once(seen: &Seen) {
    let s = seen.lock().unwrap();
    let twice: Vec<_> = s.iter().filter(|(_, &n)| n != 1).collect();
    assert!(twice.is_empty(), "consumed more than once: {twice:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_consumer_protocol_members_share_a_topic_each_record_once() {
    let server = WeirServer::start();
    let addr = server.addr.clone();
    create_topic(&addr, "shared", 4).await;
    let seen = Seen::default();
    let member = |remote: Option<&str>| {
        let mut c = config(&addr, "kip848", GroupProtocol::Consumer);
        c.remote_assignor = remote.map(str::to_owned);
        c
    };
    let mut a = GroupConsumer::new(member(Some("range"))).await.unwrap();
    a.subscribe(["shared"]);
    let a = start(a, seen.clone());
    let mut b = GroupConsumer::new(member(Some("range"))).await.unwrap();
    b.subscribe(["shared"]);
    let b = start(b, seen.clone());
    // Range over 4 partitions and 2 members: 2 each, once a has released 2.
    wait_for("two partitions each", Duration::from_secs(60), || {
        a.assignment.lock().unwrap().len() == 2 && b.assignment.lock().unwrap().len() == 2
    })
    .await;
    // The broker ran the assignor the members asked for (group.remote.assignor).
    let cluster = Cluster::connect(common::client_config(&addr))
        .await
        .unwrap();
    let d = GroupAdmin::new(cluster)
        .describe_group("kip848")
        .await
        .unwrap();
    assert_eq!((d.protocol.as_str(), d.members.len()), ("range", 2));
    produce(&addr, "shared", 4, "x", 200).await;
    wait_for("every record", Duration::from_secs(30), || {
        count(&seen, "shared") == 200
    })
    .await;

    // a leaves (epoch -1): b takes everything over from a's committed offsets.
    a.close.send(()).unwrap();
    a.task.await.unwrap();
    wait_for("b owns all four", Duration::from_secs(60), || {
        b.assignment.lock().unwrap().len() == 4
    })
    .await;
    produce(&addr, "shared", 4, "y", 200).await;
    wait_for("every record", Duration::from_secs(30), || {
        count(&seen, "shared") == 400
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count(&seen, "shared"), 400);
    assert_each_once(&seen);
    b.close.send(()).unwrap();
    b.task.await.unwrap();
    let cluster = Cluster::connect(common::client_config(&addr))
        .await
        .unwrap();
    let offsets = GroupAdmin::new(cluster)
        .committed_offsets("kip848", None)
        .await
        .unwrap();
    assert_eq!(offsets.len(), 4);
    assert!(offsets.values().all(|c| c.offset == 100), "{offsets:?}");
}

/// Subscribes `protocol`'s member to `^pat-.*` before `pat-b` exists; a record of
/// `pat-b` produced after it is created reaches the member, `other` never does.
async fn regex_picks_up_a_later_topic(protocol: GroupProtocol, group: &str) {
    let server = WeirServer::start();
    let addr = server.addr.clone();
    create_topic(&addr, "pat-a", 2).await;
    create_topic(&addr, "other", 1).await;
    produce(&addr, "pat-a", 2, "a", 10).await;
    produce(&addr, "other", 1, "o", 5).await;
    let seen = Seen::default();
    let mut c = GroupConsumer::new(config(&addr, group, protocol))
        .await
        .unwrap();
    c.subscribe_regex("^pat-.*").unwrap();
    let m = start(c, seen.clone());
    wait_for("pat-a's records", Duration::from_secs(60), || {
        count(&seen, "pat-a") == 10
    })
    .await;
    create_topic(&addr, "pat-b", 3).await;
    produce(&addr, "pat-b", 3, "b", 9).await;
    wait_for("pat-b's records", Duration::from_secs(60), || {
        count(&seen, "pat-b") == 9
    })
    .await;
    assert_eq!(count(&seen, "other"), 0);
    assert_each_once(&seen);
    m.close.send(()).unwrap();
    m.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_protocol_regex_picks_up_a_topic_created_later() {
    regex_picks_up_a_later_topic(GroupProtocol::Consumer, "regex-848").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_classic_regex_picks_up_a_topic_created_later() {
    regex_picks_up_a_later_topic(GroupProtocol::Classic, "regex-classic").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_regex_is_refused() {
    let server = WeirServer::start();
    let mut c = GroupConsumer::new(config(&server.addr, "g", GroupProtocol::Consumer))
        .await
        .unwrap();
    let e = c.subscribe_regex("pat-(").unwrap_err();
    assert!(e.to_string().contains("pat-("), "{e}");
}
