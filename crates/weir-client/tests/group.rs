//! Consumer groups end to end: weir-client group consumers against the real
//! `weir server` binary (its default `group.min.session.timeout.ms` of 6 s and
//! `group.initial.rebalance.delay.ms` of 3 s).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use weir_client::admin::{Admin, NewTopic};
use weir_client::consumer::OffsetReset;
use weir_client::group::admin::GroupAdmin;
use weir_client::group::{Assignor, GroupConfig, GroupConsumer, RebalanceListener};
use weir_client::producer::{Producer, ProducerConfig, ProducerRecord};
use weir_client::{Cluster, TopicPartition};

use common::weir::WeirServer;

fn group_config(addr: &str, group: &str, assignor: Assignor) -> GroupConfig {
    let mut c = GroupConfig::new(addr, group);
    c.consumer.client = common::client_config(addr);
    c.consumer.auto_offset_reset = OffsetReset::Earliest;
    c.consumer.fetch_max_wait = Duration::from_millis(100);
    c.session_timeout = Duration::from_secs(6);
    c.heartbeat_interval = Duration::from_millis(500);
    c.rebalance_timeout = Duration::from_secs(15);
    c.assignors = vec![assignor];
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

/// What every member saw, shared with the test.
#[derive(Default)]
struct Seen {
    /// (partition, offset) -> how many times it was consumed.
    records: BTreeMap<(i32, i64), u32>,
    /// member -> (assigned, revoked, lost) events in order.
    events: BTreeMap<String, Vec<(&'static str, Vec<i32>)>>,
}

struct Listener {
    name: String,
    seen: Arc<Mutex<Seen>>,
}

impl Listener {
    fn push(&self, what: &'static str, parts: &[TopicPartition]) {
        let ps = parts.iter().map(|tp| tp.partition).collect();
        let mut s = self.seen.lock().unwrap();
        s.events
            .entry(self.name.clone())
            .or_default()
            .push((what, ps));
    }
}

impl RebalanceListener for Listener {
    fn on_assigned(&mut self, parts: &[TopicPartition]) {
        self.push("assigned", parts);
    }
    fn on_revoked(&mut self, parts: &[TopicPartition]) {
        self.push("revoked", parts);
    }
    fn on_lost(&mut self, parts: &[TopicPartition]) {
        self.push("lost", parts);
    }
}

enum Command {
    /// Close cleanly (commit, LeaveGroup).
    Leave,
    /// Drop without LeaveGroup, right after a successful commit.
    Crash,
}

struct Member {
    commands: mpsc::UnboundedSender<Command>,
    task: JoinHandle<()>,
    assignment: Arc<Mutex<Vec<i32>>>,
}

/// A member polling in its own task: records what it consumes and commits
/// after every batch.
async fn start_member(
    config: GroupConfig,
    topic: &str,
    name: &str,
    seen: Arc<Mutex<Seen>>,
) -> Member {
    let mut c = GroupConsumer::new(config).await.unwrap();
    c.set_rebalance_listener(Box::new(Listener {
        name: name.to_owned(),
        seen: seen.clone(),
    }));
    c.subscribe([topic]);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let assignment = Arc::new(Mutex::new(Vec::new()));
    let shared = assignment.clone();
    let task = tokio::spawn(async move {
        loop {
            match rx.try_recv() {
                Ok(Command::Leave) => {
                    c.close().await.unwrap();
                    return;
                }
                Ok(Command::Crash) => {
                    drop(c);
                    return;
                }
                Err(_) => {}
            }
            let records = c.poll(Duration::from_millis(200)).await.unwrap();
            {
                let mut s = seen.lock().unwrap();
                for r in &records {
                    *s.records.entry((r.partition, r.offset)).or_default() += 1;
                }
            }
            // Retry a commit the group fenced: the rebalance that follows in the
            // next poll commits again before anything is revoked.
            if let Err(e) = c.commit().await {
                eprintln!("commit failed (retried at the next poll): {e}");
            }
            *shared.lock().unwrap() = c.assignment().iter().map(|tp| tp.partition).collect();
        }
    });
    Member {
        commands: tx,
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

fn consumed(seen: &Mutex<Seen>) -> usize {
    seen.lock().unwrap().records.len()
}

fn assignments_cover(members: &[&Member], partitions: i32) -> bool {
    let mut all = Vec::new();
    for m in members {
        all.extend(m.assignment.lock().unwrap().iter().copied());
    }
    all.sort_unstable();
    all == (0..partitions).collect::<Vec<_>>()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_record_is_consumed_once_across_leave_join_and_crash() {
    let server = WeirServer::start();
    let addr = server.addr.clone();
    create_topic(&addr, "churn", 6).await;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let config = |name: &str| {
        let _ = name;
        group_config(&addr, "churners", Assignor::Range)
    };
    let m1 = start_member(config("m1"), "churn", "m1", seen.clone()).await;
    let m2 = start_member(config("m2"), "churn", "m2", seen.clone()).await;
    let m3 = start_member(config("m3"), "churn", "m3", seen.clone()).await;
    wait_for(
        "three members with two partitions each",
        Duration::from_secs(30),
        || {
            [&m1, &m2, &m3]
                .iter()
                .all(|m| m.assignment.lock().unwrap().len() == 2)
        },
    )
    .await;
    produce(&addr, "churn", 6, "a", 300).await;
    wait_for("phase 1", Duration::from_secs(30), || {
        consumed(&seen) == 300
    })
    .await;

    // A member leaves: the other two take its partitions at once.
    m1.commands.send(Command::Leave).unwrap();
    m1.task.await.unwrap();
    produce(&addr, "churn", 6, "b", 300).await;
    wait_for("phase 2", Duration::from_secs(30), || {
        consumed(&seen) == 600
    })
    .await;
    wait_for(
        "two members cover the topic",
        Duration::from_secs(30),
        || assignments_cover(&[&m2, &m3], 6),
    )
    .await;

    // A member joins.
    let m4 = start_member(config("m4"), "churn", "m4", seen.clone()).await;
    wait_for(
        "the new member gets partitions",
        Duration::from_secs(30),
        || m4.assignment.lock().unwrap().len() == 2,
    )
    .await;
    produce(&addr, "churn", 6, "c", 300).await;
    wait_for("phase 3", Duration::from_secs(30), || {
        consumed(&seen) == 900
    })
    .await;

    // A member crashes: its partitions move after the session timeout (6 s).
    m2.commands.send(Command::Crash).unwrap();
    m2.task.await.unwrap();
    produce(&addr, "churn", 6, "d", 300).await;
    wait_for("phase 4", Duration::from_secs(45), || {
        consumed(&seen) == 1200
    })
    .await;
    wait_for(
        "two members cover the topic",
        Duration::from_secs(30),
        || assignments_cover(&[&m3, &m4], 6),
    )
    .await;
    // Nothing more arrives, and nothing was consumed twice.
    tokio::time::sleep(Duration::from_secs(1)).await;
    {
        let s = seen.lock().unwrap();
        assert_eq!(s.records.len(), 1200);
        let twice: Vec<_> = s.records.iter().filter(|(_, &n)| n != 1).collect();
        assert!(twice.is_empty(), "consumed more than once: {twice:?}");
    }
    for m in [m3, m4] {
        m.commands.send(Command::Leave).unwrap();
        m.task.await.unwrap();
    }
    // Every committed offset is the end of its partition.
    let cluster = Cluster::connect(common::client_config(&addr))
        .await
        .unwrap();
    let offsets = GroupAdmin::new(cluster)
        .committed_offsets("churners", None)
        .await
        .unwrap();
    assert_eq!(offsets.len(), 6);
    assert!(offsets.values().all(|c| c.offset == 200), "{offsets:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_and_metadata_survive_a_broker_restart() {
    let mut server = WeirServer::start();
    let temp = server.take_temp();
    let addr = server.addr.clone();
    create_topic(&addr, "kept", 3).await;
    produce(&addr, "kept", 3, "a", 90).await;
    let config = group_config(&addr, "keepers", Assignor::Range);
    let mut c = GroupConsumer::new(config).await.unwrap();
    c.subscribe(["kept"]);
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while got < 90 && Instant::now() < deadline {
        got += c.poll(Duration::from_millis(500)).await.unwrap().len();
    }
    assert_eq!(got, 90);
    let offsets: Vec<_> = (0..3)
        .map(|p| {
            (
                TopicPartition::new("kept", p),
                30,
                Some(format!("meta-{p}")),
            )
        })
        .collect();
    c.commit_offsets(&offsets).await.unwrap();
    c.close().await.unwrap();
    produce(&addr, "kept", 3, "b", 30).await;

    // kill -9 and restart on the same data dir.
    server.kill();
    let data_dir = server.data_dir.clone();
    drop(server);
    let server = WeirServer::start_in(&data_dir, "127.0.0.1:0");
    let addr = server.addr.clone();
    let cluster = Cluster::connect(common::client_config(&addr))
        .await
        .unwrap();
    let committed = GroupAdmin::new(cluster)
        .committed_offsets("keepers", None)
        .await
        .unwrap();
    assert_eq!(committed.len(), 3);
    for (tp, c) in &committed {
        assert_eq!(c.offset, 30, "{tp}");
        assert_eq!(
            c.metadata.as_deref(),
            Some(format!("meta-{}", tp.partition).as_str())
        );
    }
    // A new member resumes there: only the 30 records produced after the commit.
    let mut c = GroupConsumer::new(group_config(&addr, "keepers", Assignor::Range))
        .await
        .unwrap();
    c.subscribe(["kept"]);
    let mut values = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while values.len() < 30 && Instant::now() < deadline {
        for r in c.poll(Duration::from_millis(500)).await.unwrap() {
            values.insert(
                String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned(),
            );
        }
    }
    for r in c.poll(Duration::from_millis(500)).await.unwrap() {
        values.insert(String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned());
    }
    assert_eq!(values.len(), 30);
    assert!(values.iter().all(|v| v.starts_with("b-")), "{values:?}");
    c.close().await.unwrap();
    drop(temp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cooperative_sticky_moves_only_what_it_must() {
    let server = WeirServer::start();
    let addr = server.addr.clone();
    create_topic(&addr, "sticky", 6).await;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let config = || group_config(&addr, "stickers", Assignor::CooperativeSticky);
    let m1 = start_member(config(), "sticky", "m1", seen.clone()).await;
    let m2 = start_member(config(), "sticky", "m2", seen.clone()).await;
    wait_for(
        "two members with three partitions each",
        Duration::from_secs(30),
        || {
            [&m1, &m2]
                .iter()
                .all(|m| m.assignment.lock().unwrap().len() == 3)
        },
    )
    .await;
    let before: Vec<BTreeSet<i32>> = [&m1, &m2]
        .iter()
        .map(|m| m.assignment.lock().unwrap().iter().copied().collect())
        .collect();
    let m3 = start_member(config(), "sticky", "m3", seen.clone()).await;
    wait_for(
        "three members with two partitions each",
        Duration::from_secs(30),
        || {
            [&m1, &m2, &m3]
                .iter()
                .all(|m| m.assignment.lock().unwrap().len() == 2)
        },
    )
    .await;
    {
        let s = seen.lock().unwrap();
        for (i, name) in ["m1", "m2"].iter().enumerate() {
            let now: BTreeSet<i32> = [&m1, &m2][i]
                .assignment
                .lock()
                .unwrap()
                .iter()
                .copied()
                .collect();
            assert!(
                now.is_subset(&before[i]),
                "{name} kept only its own partitions"
            );
            let events = &s.events[*name];
            let revoked: Vec<i32> = events
                .iter()
                .filter(|(what, _)| *what != "assigned")
                .flat_map(|(_, ps)| ps.iter().copied())
                .collect();
            // Only the one partition that moved was revoked: never everything.
            assert_eq!(revoked.len(), 1, "{name}: {events:?}");
            assert!(
                !events.iter().any(|(what, _)| *what == "lost"),
                "{name}: {events:?}"
            );
        }
        assert_eq!(
            s.events["m3"],
            vec![("assigned", {
                let mut v: Vec<i32> = m3.assignment.lock().unwrap().clone();
                v.sort_unstable();
                v
            })]
        );
    }
    for m in [m1, m2, m3] {
        m.commands.send(Command::Leave).unwrap();
        m.task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_static_member_restarts_without_a_rebalance() {
    let server = WeirServer::start();
    let addr = server.addr.clone();
    create_topic(&addr, "static", 4).await;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let config = |id: &str| {
        let mut c = group_config(&addr, "statics", Assignor::Range);
        c.group_instance_id = Some(id.to_owned());
        c
    };
    let m1 = start_member(config("one"), "static", "m1", seen.clone()).await;
    let m2 = start_member(config("two"), "static", "m2", seen.clone()).await;
    wait_for(
        "two members with two partitions each",
        Duration::from_secs(30),
        || {
            [&m1, &m2]
                .iter()
                .all(|m| m.assignment.lock().unwrap().len() == 2)
        },
    )
    .await;
    let m2_events = seen.lock().unwrap().events["m2"].len();
    let before: Vec<i32> = m1.assignment.lock().unwrap().clone();
    // close() of a static member does not leave; a new process with the same
    // group.instance.id takes its place within the session timeout.
    m1.commands.send(Command::Leave).unwrap();
    m1.task.await.unwrap();
    let m1 = start_member(config("one"), "static", "m1-again", seen.clone()).await;
    wait_for(
        "the restarted member has its partitions back",
        Duration::from_secs(30),
        || !m1.assignment.lock().unwrap().is_empty(),
    )
    .await;
    assert_eq!(*m1.assignment.lock().unwrap(), before);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The other member never rebalanced.
    assert_eq!(seen.lock().unwrap().events["m2"].len(), m2_events);
    for m in [m1, m2] {
        m.commands.send(Command::Crash).unwrap();
        m.task.await.unwrap();
    }
}
