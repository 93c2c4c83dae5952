//! Read-only views for the Metadata, DescribeLogDirs and DescribeTopicPartitions
//! handlers, metrics and tests.

use std::path::PathBuf;

use weir_protocol::Uuid;
use weir_types::{LeaderEpoch, NodeId, Offset};

use super::manager::ReplicaManager;
use super::partition::Role;

/// A hosted partition as this broker sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionStatus {
    /// The topic id.
    pub topic_id: Uuid,
    /// This broker's role.
    pub role: Role,
    /// The leader epoch in force.
    pub leader_epoch: LeaderEpoch,
    /// The in-sync replicas, from the metadata.
    pub isr: Vec<NodeId>,
    /// Whether the log is open and serving (false after a storage error, or if it
    /// failed to open).
    pub online: bool,
    /// The first readable offset (-1 when offline).
    pub log_start_offset: Offset,
    /// The high watermark (-1 when offline).
    pub high_watermark: Offset,
    /// The log end offset (-1 when offline).
    pub log_end_offset: Offset,
    /// Offsets below this are fsynced (-1 when offline).
    pub flushed_offset: Offset,
    /// Bytes in the log's segments (0 when offline).
    pub size_bytes: u64,
    /// fsyncs the partition's flusher has done: with group commit, far fewer than
    /// acks=all appends under load.
    pub fsyncs: u64,
}

/// One data directory, for DescribeLogDirs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDirInfo {
    /// The `log.dirs` entry.
    pub path: PathBuf,
    /// Whether a storage error took it offline (DescribeLogDirs then answers
    /// KAFKA_STORAGE_ERROR for it, as Kafka does).
    pub offline: bool,
    /// The partitions it holds, by topic name then partition.
    pub partitions: Vec<LogDirPartition>,
    /// The size of the file system holding it, in bytes; -1 if unknown (KIP-827).
    pub total_bytes: i64,
    /// The bytes of that file system an unprivileged writer may still use (what
    /// `df` shows as available); -1 if unknown.
    pub usable_bytes: i64,
}

/// A partition in a [`LogDirInfo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDirPartition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Bytes on disk (0 when offline).
    pub size_bytes: u64,
    /// Whether the log is online.
    pub online: bool,
}

impl ReplicaManager {
    /// The partition's status, or `None` if this broker does not host it.
    pub fn partition_status(&self, topic: &str, partition: i32) -> Option<PartitionStatus> {
        let p = self.hosted(topic, partition)?;
        let mut status = PartitionStatus {
            topic_id: p.topic_id,
            role: Role::NoLeader,
            leader_epoch: LeaderEpoch(-1),
            isr: Vec::new(),
            online: false,
            log_start_offset: Offset(-1),
            high_watermark: Offset(-1),
            log_end_offset: Offset(-1),
            flushed_offset: Offset(-1),
            size_bytes: 0,
            fsyncs: p.fsync_count(),
        };
        let Ok(state) = p.read() else {
            return Some(status);
        };
        status.role = state.role;
        status.leader_epoch = state.leader_epoch;
        status.isr.clone_from(&state.isr);
        if let Ok(log) = p.log(&state) {
            status.online = true;
            status.log_start_offset = log.log_start_offset();
            status.high_watermark = log.high_watermark();
            status.log_end_offset = log.log_end_offset();
            status.flushed_offset = log.recovery_point();
            status.size_bytes = log.size_bytes();
        }
        Some(status)
    }

    /// Whether the partition is hosted here with its log online (Metadata lists
    /// other partitions under `offline_replicas`).
    pub fn is_online(&self, topic: &str, partition: i32) -> bool {
        let Some(p) = self.hosted(topic, partition) else {
            return false;
        };
        p.read().is_ok_and(|state| p.log(&state).is_ok())
    }

    /// Hosted partitions as `(topic, partition)`, sorted.
    pub fn hosted_partitions(&self) -> Vec<(String, i32)> {
        let mut out: Vec<(String, i32)> = self
            .all_partitions()
            .iter()
            .map(|p| (p.topic.clone(), p.index))
            .collect();
        out.sort();
        out
    }

    /// The name of the hosted topic with id `topic_id` (Fetch v13+ and other
    /// requests that name topics by id).
    pub fn topic_name(&self, topic_id: Uuid) -> Option<String> {
        self.topics().names_by_id.get(&topic_id).cloned()
    }

    /// The id of hosted topic `topic`.
    pub fn topic_id(&self, topic: &str) -> Option<Uuid> {
        self.topics().by_name.get(topic).map(|t| t.id)
    }

    /// Every data directory and the partitions in it (DescribeLogDirs).
    pub fn log_dirs(&self) -> Vec<LogDirInfo> {
        let mut dirs: Vec<LogDirInfo> = self
            .config()
            .log_dirs
            .iter()
            .map(|path| {
                let (total_bytes, usable_bytes) = disk_space(path);
                LogDirInfo {
                    path: path.clone(),
                    offline: self.is_log_dir_offline(path),
                    partitions: Vec::new(),
                    total_bytes,
                    usable_bytes,
                }
            })
            .collect();
        for p in self.all_partitions() {
            let (size_bytes, online) = match p.read() {
                Ok(state) => match p.log(&state) {
                    Ok(log) => (log.size_bytes(), true),
                    Err(_) => (0, false),
                },
                Err(_) => (0, false),
            };
            if let Some(dir) = dirs.iter_mut().find(|d| d.path == p.data_dir) {
                dir.partitions.push(LogDirPartition {
                    topic: p.topic.clone(),
                    partition: p.index,
                    size_bytes,
                    online,
                });
            }
        }
        for d in &mut dirs {
            d.partitions
                .sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        }
        dirs
    }
}

/// The total and available bytes of the file system holding `path` (statvfs),
/// or -1 each when it cannot be read (a missing or failed directory).
fn disk_space(path: &std::path::Path) -> (i64, i64) {
    match rustix::fs::statvfs(path) {
        Ok(st) => {
            let bytes =
                |blocks: u64| i64::try_from(blocks.saturating_mul(st.f_frsize)).unwrap_or(i64::MAX);
            (bytes(st.f_blocks), bytes(st.f_bavail))
        }
        Err(_) => (-1, -1),
    }
}
