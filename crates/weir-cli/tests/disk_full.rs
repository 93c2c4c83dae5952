//! A real full disk under a real `weir server`: its data directory (partitions and
//! metadata log alike) is a small tmpfs. Producers with acks=all (rskafka) and
//! acks=1 (weir-client) write until the disk is full. Expected, step by step:
//!
//! 1. the produce that meets ENOSPC fails with KAFKA_STORAGE_ERROR (56), and so does
//!    every later produce to any partition of the directory (it went offline); no
//!    crash, no hang;
//! 2. the broker stays up: ApiVersions and Metadata answer, Metadata lists the
//!    partitions' replica as offline, Fetch answers KAFKA_STORAGE_ERROR, and
//!    CreateTopics answers an error or creates the topic offline — never a crash;
//! 3. after a stop, more space and a restart, recovery cuts nothing (no partial batch
//!    was left), every acknowledged record is at its offset, and produces succeed.
//!
//! Mounting needs root (CAP_SYS_ADMIN). Without it the test says so on stderr and
//! returns, except under `CI=true`, where it fails: CI runs as root and must run it.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rskafka::chrono::{TimeZone, Utc};
use rskafka::client::error::{Error as RsError, ProtocolError};
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::Record;
use rskafka::BackoffConfig;
use weir_client::admin::NewTopic;
use weir_client::producer::Acks;
use weir_client::{Admin, ClientConfig, ErrorCode, Producer, ProducerConfig, ProducerRecord};

use common::Server;

/// How long any one request gets to answer.
const TIMEOUT: Duration = Duration::from_secs(60);
const TOPIC: &str = "full";
/// Partition 0 takes acks=all produces, partition 1 acks=1.
const ACKS_ALL: i32 = 0;
const ACKS_ONE: i32 = 1;
/// Bytes per record value: a few hundred produces fill the tmpfs.
const VALUE_BYTES: usize = 2000;

/// A tmpfs mounted on a temp dir, unmounted on drop (even when the test panics).
struct Tmpfs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        let why = match out {
            Ok(o) if o.status.success() => {
                return Some(Tmpfs {
                    path: dir.path().to_path_buf(),
                    _dir: dir,
                })
            }
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_owned(),
            Err(e) => e.to_string(),
        };
        let msg = format!(
            "SKIPPING the full-disk test: cannot mount a tmpfs ({why}); it needs root (CAP_SYS_ADMIN)"
        );
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("{msg}");
        None
    }

    fn remount(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.path)
            .status()
            .expect("run mount");
        assert!(status.success(), "remount to {size} failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // A server still holding files (a failed test): detach it anyway.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(TIMEOUT, f)
        .await
        .unwrap_or_else(|_| panic!("{what} hung for {TIMEOUT:?}"))
}

async fn rskafka(addr: &str) -> Client {
    ClientBuilder::new(vec![addr.to_owned()])
        .backoff_config(BackoffConfig {
            deadline: Some(Duration::from_secs(5)),
            ..BackoffConfig::default()
        })
        .build()
        .await
        .expect("rskafka connects")
}

fn value(partition: i32, n: usize) -> Vec<u8> {
    let mut v = format!("p{partition} record {n} ").into_bytes();
    v.resize(VALUE_BYTES, b'x');
    v
}

fn record(partition: i32, n: usize) -> Record {
    Record {
        key: None,
        value: Some(value(partition, n)),
        headers: BTreeMap::new(),
        timestamp: Utc
            .timestamp_millis_opt(1_700_000_000_000)
            .single()
            .expect("timestamp"),
    }
}

fn is_storage_error(e: &RsError) -> bool {
    matches!(
        e,
        RsError::ServerError {
            protocol_error: ProtocolError::KafkaStorageError,
            ..
        }
    )
}

fn producer(addr: &str, acks: Acks) -> ProducerConfig {
    let mut config = ProducerConfig::new(addr);
    config.acks = acks;
    config.retries = 0;
    config.enable_idempotence = Some(false);
    config.linger = Duration::ZERO;
    config
}

type Acked = BTreeMap<(i32, i64), Vec<u8>>;

/// A file that takes every free block of its file system (not Weir's: the test
/// frees it to make room again).
fn fill(path: &Path) -> PathBuf {
    use std::io::Write;
    let mut f = std::fs::File::create(path).expect("create filler");
    let chunk = vec![0u8; 4096];
    while f.write_all(&chunk).is_ok() {}
    while f.write_all(&chunk[..512]).is_ok() {}
    path.to_path_buf()
}

/// acks=all on partition 0 until the first error, which is returned.
async fn fill_acks_all(client: &Client, acked: &Mutex<Acked>) -> RsError {
    let p = client
        .partition_client(TOPIC, ACKS_ALL, UnknownTopicHandling::Retry)
        .await
        .expect("partition client");
    for n in (0..).step_by(2) {
        let batch = vec![record(ACKS_ALL, n), record(ACKS_ALL, n + 1)];
        match within(
            "acks=all produce",
            p.produce(batch, Compression::NoCompression),
        )
        .await
        {
            Ok(offsets) => {
                let mut acked = acked.lock().expect("lock");
                for (i, offset) in offsets.into_iter().enumerate() {
                    acked.insert((ACKS_ALL, offset), value(ACKS_ALL, n + i));
                }
            }
            Err(e) => return e,
        }
    }
    unreachable!()
}

/// acks=1 on partition 1 until the first error, which is returned.
async fn fill_acks_one(addr: &str, acked: &Mutex<Acked>) -> weir_client::Error {
    let producer = Producer::new(producer(addr, Acks::Leader))
        .await
        .expect("producer");
    for n in 0.. {
        let r = ProducerRecord::new(TOPIC, value(ACKS_ONE, n)).partition(ACKS_ONE);
        match within("acks=1 produce", producer.send_and_wait(r)).await {
            Ok(meta) => {
                acked
                    .lock()
                    .expect("lock")
                    .insert((ACKS_ONE, meta.offset), value(ACKS_ONE, n));
            }
            Err(e) => return e,
        }
    }
    unreachable!()
}

/// Every record of `partition` from offset 0 to the high watermark.
async fn read_partition(client: &Client, partition: i32) -> BTreeMap<i64, Vec<u8>> {
    let reader = client
        .partition_client(TOPIC, partition, UnknownTopicHandling::Retry)
        .await
        .expect("partition client");
    let mut stored = BTreeMap::new();
    let mut offset = 0;
    loop {
        let (records, high_watermark) =
            within("fetch", reader.fetch_records(offset, 1..1_000_000, 100))
                .await
                .expect("fetch after restart");
        for r in records {
            offset = r.offset + 1;
            stored.insert(r.offset, r.record.value.unwrap_or_default());
        }
        if offset >= high_watermark {
            return stored;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_produces_with_storage_error_and_loses_nothing() {
    let Some(fs) = Tmpfs::mount("4m") else {
        return;
    };
    let mut server = Server::start_in(&fs.path);
    let admin = within("admin", Admin::new(ClientConfig::new(&server.addr)))
        .await
        .expect("admin connects");
    let created = within(
        "create",
        admin.create_topics(vec![NewTopic::new(TOPIC, 2, 1)], false),
    )
    .await
    .expect("create topics");
    assert!(created.iter().all(|(_, r)| r.is_ok()), "{created:?}");
    let client = rskafka(&server.addr).await;

    // 1. Fill the disk from both producers at once.
    let acked: Arc<Mutex<Acked>> = Arc::default();
    let (all_err, one_err) = tokio::join!(
        fill_acks_all(&client, &acked),
        fill_acks_one(&server.addr, &acked)
    );
    let acked = std::mem::take(&mut *acked.lock().expect("lock"));
    assert!(
        is_storage_error(&all_err),
        "acks=all failed with {all_err:?}\n{}",
        server.log_text()
    );
    assert_eq!(
        one_err.code(),
        Some(ErrorCode::KafkaStorageError),
        "acks=1 failed with {one_err}"
    );
    let per_partition = |p: i32| acked.keys().filter(|(q, _)| *q == p).count();
    assert!(
        per_partition(ACKS_ALL) > 10 && per_partition(ACKS_ONE) > 10,
        "too few records before the disk filled: {} acks=all, {} acks=1",
        per_partition(ACKS_ALL),
        per_partition(ACKS_ONE)
    );
    // The server logs the failure as it answers it: the lines may reach us a
    // moment after the answers did.
    let deadline = std::time::Instant::now() + TIMEOUT;
    let mut text = server.log_text();
    while !(text.contains("No space left on device") && text.contains("log directory offline"))
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
        text = server.log_text();
    }
    assert!(
        text.contains("No space left on device"),
        "no ENOSPC in the log:\n{text}"
    );
    assert!(text.contains("log directory offline"), "{text}");

    // 2. Still up: more produces fail fast, Metadata and ApiVersions answer.
    let again = within(
        "produce to an offline dir",
        fill_acks_one(&server.addr, &Mutex::default()),
    )
    .await;
    assert_eq!(again.code(), Some(ErrorCode::KafkaStorageError), "{again}");
    let fresh = within(
        "admin after the failure",
        Admin::new(ClientConfig::new(&server.addr)),
    )
    .await
    .expect("a new connection (ApiVersions) after the disk filled");
    let described = within("metadata", fresh.describe_topics(&[TOPIC.to_owned()]))
        .await
        .expect("metadata");
    let topic = described[0].1.as_ref().expect("topic described");
    for p in &topic.partitions {
        assert_eq!(
            p.offline_replicas, p.replicas,
            "partition {} not offline",
            p.partition
        );
    }
    let reader = client
        .partition_client(TOPIC, ACKS_ALL, UnknownTopicHandling::Retry)
        .await
        .expect("partition client");
    let fetched = within("fetch offline", reader.fetch_records(0, 1..1_000_000, 100)).await;
    assert!(
        matches!(&fetched, Err(e) if is_storage_error(e)),
        "{:?}",
        fetched.map(|r| r.1)
    );
    // CreateTopics until the metadata log (same disk) has no room left either:
    // first take every free block, then the slack in its last page runs out.
    let filler = fill(&fs.path.join("filler"));
    let mut refused = None;
    for i in 0..500 {
        let topic = NewTopic::new(format!("later-{i}"), 1, 1);
        let mut answer = within(
            "CreateTopics on a full disk",
            fresh.create_topics(vec![topic], false),
        )
        .await
        .and_then(|mut v| v.remove(0).1);
        match answer.as_mut() {
            Ok(_) => {
                // The change fit: the topic exists, offline like its directory.
                let name = format!("later-{i}");
                let d = within("metadata", fresh.describe_topics(&[name]))
                    .await
                    .expect("metadata");
                let t = d[0].1.as_ref().expect("described");
                assert!(
                    t.partitions.iter().all(|p| !p.offline_replicas.is_empty()),
                    "{t:?}"
                );
            }
            Err(_) => {
                refused = answer.err();
                break;
            }
        }
    }
    let refused = refused.expect("CreateTopics never failed on a full disk");
    assert!(
        matches!(
            refused.code(),
            Some(ErrorCode::KafkaStorageError | ErrorCode::UnknownServerError)
        ),
        "CreateTopics on a full disk: {refused}"
    );
    assert!(
        refused.to_string().contains("No space left"),
        "no cause in {refused}"
    );
    within(
        "ApiVersions after the metadata log failed",
        Admin::new(ClientConfig::new(&server.addr)),
    )
    .await
    .expect("a new connection after the metadata log failed");
    server.assert_running();
    drop((fresh, admin, reader, client));

    // 3. Stop, free space, restart: everything acknowledged is there, nothing cut.
    // SIGTERM, and the process must exit in time (an offline directory may make
    // the shutdown report errors; it must not hang).
    server.signal("TERM");
    server.wait_exit();
    let before = server.stderr();
    assert!(!before.contains("panicked"), "{before}");
    std::fs::remove_file(&filler).expect("remove the filler");
    fs.remount("64m");
    let mut server = Server::start_in(&fs.path);
    let client = rskafka(&server.addr).await;
    let mut lost = Vec::new();
    let mut ends = BTreeMap::new();
    for partition in [ACKS_ALL, ACKS_ONE] {
        let stored = read_partition(&client, partition).await;
        for ((_, offset), v) in acked.range((partition, 0)..(partition + 1, 0)) {
            if stored.get(offset) != Some(v) {
                lost.push((partition, *offset));
            }
        }
        ends.insert(partition, stored.keys().next_back().map_or(0, |o| o + 1));
    }
    let restart = server.log_text();
    assert!(
        lost.is_empty(),
        "lost {} of {} acknowledged records, e.g. {:?}\n{restart}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
    assert!(
        !restart.contains("truncates a torn or corrupt"),
        "a partial batch was left:\n{restart}"
    );

    // New produces succeed, right after what is stored.
    let p0 = client
        .partition_client(TOPIC, ACKS_ALL, UnknownTopicHandling::Retry)
        .await
        .expect("partition client");
    let offsets = within(
        "produce after restart",
        p0.produce(vec![record(ACKS_ALL, 0)], Compression::NoCompression),
    )
    .await
    .expect("acks=all produce after the restart");
    assert_eq!(offsets, vec![ends[&ACKS_ALL]]);
    let producer = Producer::new(producer(&server.addr, Acks::Leader))
        .await
        .expect("producer");
    let meta = within(
        "acks=1 after restart",
        producer.send_and_wait(ProducerRecord::new(TOPIC, "again").partition(ACKS_ONE)),
    )
    .await
    .expect("acks=1 produce after the restart");
    assert_eq!(meta.offset, ends[&ACKS_ONE]);
    server.assert_running();
}
