//! Checkpoint files in Kafka's text format, written atomically.
//!
//! A data directory holds three per-broker checkpoints, one line per partition:
//!
//! - `recovery-point-offset-checkpoint`: offsets below which each log is fsynced;
//!   recovery after a crash starts there.
//! - `log-start-offset-checkpoint`: each log's start offset when it is inside the
//!   first segment (DeleteRecords, retention).
//! - `replication-offset-checkpoint`: each partition's high watermark.
//!
//! Each file is `version` (0), `count`, then `count` lines (`topic partition offset`).
//! The same framing with `epoch offset` lines is a partition's
//! `leader-epoch-checkpoint`. Writes go to a temporary file that is fsynced, renamed
//! over the old one, and the directory fsynced: a crash leaves the old or the new file,
//! never a mix. The broker owns the registry of logs and decides when to write these;
//! this module only reads and writes them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use weir_types::Offset;

use crate::error::{LogError, Result};

/// File name of the per-data-dir recovery points.
pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
/// File name of the per-data-dir log start offsets.
pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";
/// File name of the per-data-dir high watermarks.
pub const REPLICATION_OFFSET_CHECKPOINT: &str = "replication-offset-checkpoint";
/// Marker a cleanly stopped broker leaves in each data dir (Kafka's name).
pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";

const VERSION: i32 = 0;

/// A topic partition, as named in checkpoint files and partition directories.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    /// Topic name (Kafka names never contain whitespace).
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// A topic partition.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }

    /// The partition's directory name: `<topic>-<partition>`.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }

    /// Parses a partition directory name (the partition is after the last `-`).
    pub fn from_dir_name(name: &str) -> Option<TopicPartition> {
        let (topic, partition) = name.rsplit_once('-')?;
        let partition: i32 = partition.parse().ok()?;
        if topic.is_empty() || partition < 0 {
            return None;
        }
        Some(TopicPartition::new(topic, partition))
    }
}

/// Writes `contents` to `path` so that a crash leaves either the old or the new file:
/// write a temporary sibling, fsync it, rename it over `path`, fsync the directory.
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    write_replacing(path, contents, true)
}

/// Writes `contents` to a temporary sibling and renames it over `path`; with
/// `durable`, fsyncs the file before and the directory after the rename. Without,
/// a crash may leave an empty or partial file: only for files whose readers check
/// a checksum and can do without them (producer snapshots).
pub(crate) fn write_replacing(path: &Path, contents: &[u8], durable: bool) -> Result<()> {
    let tmp = tmp_path(path);
    let result = write_tmp_and_rename(&tmp, path, contents, durable);
    if result.is_err() {
        // Give the space back (a full disk) and leave no stray file; the old file,
        // if any, is untouched.
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_tmp_and_rename(tmp: &Path, path: &Path, contents: &[u8], durable: bool) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(tmp)
        .map_err(|e| LogError::io("create", tmp, e))?;
    file.write_all(contents)
        .map_err(|e| LogError::io("write", tmp, e))?;
    if durable {
        file.sync_all().map_err(|e| LogError::io("fsync", tmp, e))?;
    }
    drop(file);
    fs::rename(tmp, path).map_err(|e| LogError::io("rename", tmp, e))?;
    if durable {
        if let Some(dir) = path.parent() {
            sync_dir(dir)?;
        }
    }
    Ok(())
}

/// fsyncs a directory so that files created, renamed or removed in it persist.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let d = File::open(dir).map_err(|e| LogError::io("open directory", dir, e))?;
    d.sync_all()
        .map_err(|e| LogError::io("fsync directory", dir, e))
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Reads a checkpoint's entry lines, checking the version and count lines.
/// A missing file is an empty checkpoint.
pub(crate) fn read_entries(path: &Path) -> Result<Option<Vec<String>>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LogError::io("read", path, e)),
    };
    let corrupt = |reason: String| LogError::CorruptCheckpoint {
        path: path.to_path_buf(),
        reason,
    };
    let mut lines = text.lines();
    let version = lines.next().map(str::trim);
    if version != Some("0") {
        return Err(corrupt(format!(
            "expected version line 0, found {version:?}"
        )));
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| corrupt("missing or malformed count line".into()))?;
    let entries: Vec<String> = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .collect();
    if entries.len() != count {
        return Err(corrupt(format!(
            "count line says {count} entries, file has {}",
            entries.len()
        )));
    }
    Ok(Some(entries))
}

/// Writes a checkpoint from already formatted entry lines.
pub(crate) fn write_entries(path: &Path, entries: &[String]) -> Result<()> {
    let mut text = String::with_capacity(16 + entries.len() * 32);
    let _ = writeln!(text, "{VERSION}");
    let _ = writeln!(text, "{}", entries.len());
    for e in entries {
        let _ = writeln!(text, "{e}");
    }
    write_atomically(path, text.as_bytes())
}

/// Reads a per-data-dir offset checkpoint (`topic partition offset` lines).
/// A missing file gives an empty map.
pub fn read_offset_checkpoint(path: &Path) -> Result<BTreeMap<TopicPartition, Offset>> {
    let mut map = BTreeMap::new();
    for line in read_entries(path)?.unwrap_or_default() {
        let mut parts = line.split_whitespace();
        let parsed = (|| {
            let topic = parts.next()?;
            let partition: i32 = parts.next()?.parse().ok()?;
            let offset: i64 = parts.next()?.parse().ok()?;
            parts
                .next()
                .is_none()
                .then(|| (TopicPartition::new(topic, partition), Offset(offset)))
        })();
        let (tp, offset) = parsed.ok_or_else(|| LogError::CorruptCheckpoint {
            path: path.to_path_buf(),
            reason: format!("malformed entry {line:?} (want `topic partition offset`)"),
        })?;
        map.insert(tp, offset);
    }
    Ok(map)
}

/// Atomically writes a per-data-dir offset checkpoint.
pub fn write_offset_checkpoint(
    path: &Path,
    offsets: &BTreeMap<TopicPartition, Offset>,
) -> Result<()> {
    let entries: Vec<String> = offsets
        .iter()
        .map(|(tp, o)| format!("{} {} {}", tp.topic, tp.partition, o.get()))
        .collect();
    write_entries(path, &entries)
}

/// What a clean-shutdown marker says about the shutdown that left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanShutdown {
    /// The broker epoch the broker ran at, or -1 if unknown (a single node, or a
    /// marker written before the epoch was recorded). A cluster broker presents it
    /// when it registers again, to prove its logs lost nothing (KIP-966).
    pub broker_epoch: i64,
}

/// Leaves the clean-shutdown marker in `data_dir`, with the broker epoch (-1 if
/// none) in Kafka's format (`{"version":0,"broker_epoch":N}`): write it after every
/// log in the directory is closed and the checkpoints are written.
pub fn write_clean_shutdown_marker(data_dir: &Path, broker_epoch: i64) -> Result<()> {
    let body = format!("{{\"version\":0,\"broker_epoch\":{broker_epoch}}}");
    write_atomically(&data_dir.join(CLEAN_SHUTDOWN_FILE), body.as_bytes())
}

/// The marker of the last shutdown if it was clean (`None` otherwise); removes it
/// (durably) so that a crash from now on is seen as unclean. Call once at startup,
/// before opening logs. An unreadable epoch is -1: the shutdown was still clean.
pub fn take_clean_shutdown_marker(data_dir: &Path) -> Result<Option<CleanShutdown>> {
    let path = data_dir.join(CLEAN_SHUTDOWN_FILE);
    let text = match fs::read(&path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LogError::io("read", &path, e)),
    };
    fs::remove_file(&path).map_err(|e| LogError::io("remove", &path, e))?;
    sync_dir(data_dir)?;
    Ok(Some(CleanShutdown {
        broker_epoch: marker_epoch(&text),
    }))
}

/// The `broker_epoch` of a marker's JSON, or -1.
fn marker_epoch(text: &str) -> i64 {
    const KEY: &str = "\"broker_epoch\"";
    let Some(at) = text.find(KEY) else {
        return -1;
    };
    let rest = text[at + KEY.len()..].trim_start();
    let Some(rest) = rest.strip_prefix(':') else {
        return -1;
    };
    let rest = rest.trim_start();
    let end = rest
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || (*i == 0 && *c == '-')))
        .map_or(rest.len(), |(i, _)| i);
    rest[..end].parse().unwrap_or(-1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_checkpoint_round_trips_in_kafkas_text_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RECOVERY_POINT_CHECKPOINT);
        assert!(read_offset_checkpoint(&path).unwrap().is_empty());
        let mut map = BTreeMap::new();
        map.insert(TopicPartition::new("orders", 0), Offset(42));
        map.insert(TopicPartition::new("my-topic", 3), Offset(7));
        write_offset_checkpoint(&path, &map).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text, "0\n2\nmy-topic 3 7\norders 0 42\n");
        assert_eq!(read_offset_checkpoint(&path).unwrap(), map);
        assert!(!tmp_path(&path).exists());
    }

    #[test]
    fn malformed_checkpoints_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp");
        for bad in [
            "",
            "1\n0\n",
            "0\n2\nt 0 1\n",
            "0\nx\n",
            "0\n1\nt zero 1\n",
            "0\n1\nt 0 1 9\n",
        ] {
            fs::write(&path, bad).unwrap();
            let err = read_offset_checkpoint(&path).unwrap_err();
            assert!(
                matches!(err, LogError::CorruptCheckpoint { .. }),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn clean_shutdown_marker_is_taken_once() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(take_clean_shutdown_marker(dir.path()).unwrap(), None);
        write_clean_shutdown_marker(dir.path(), 42).unwrap();
        let marker = take_clean_shutdown_marker(dir.path()).unwrap();
        assert_eq!(marker, Some(CleanShutdown { broker_epoch: 42 }));
        assert_eq!(take_clean_shutdown_marker(dir.path()).unwrap(), None);
    }

    #[test]
    fn clean_shutdown_marker_epochs_in_kafkas_format_and_older_ones() {
        assert_eq!(marker_epoch(r#"{"version":0,"broker_epoch":7}"#), 7);
        assert_eq!(
            marker_epoch(r#"{ "broker_epoch" : -1 , "version": 0 }"#),
            -1
        );
        assert_eq!(marker_epoch(""), -1, "an empty marker of an older build");
        assert_eq!(marker_epoch(r#"{"broker_epoch":"x"}"#), -1);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CLEAN_SHUTDOWN_FILE), b"").unwrap();
        let marker = take_clean_shutdown_marker(dir.path()).unwrap();
        assert_eq!(marker, Some(CleanShutdown { broker_epoch: -1 }));
    }

    #[test]
    fn partition_dir_names() {
        let tp = TopicPartition::new("a-b", 12);
        assert_eq!(tp.dir_name(), "a-b-12");
        assert_eq!(TopicPartition::from_dir_name("a-b-12"), Some(tp));
        assert_eq!(TopicPartition::from_dir_name("nopartition"), None);
        assert_eq!(TopicPartition::from_dir_name("-1"), None);
    }
}
