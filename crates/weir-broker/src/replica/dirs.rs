//! The data-directory layout around the logs: which directories are partitions,
//! their `partition.metadata` files, and deleting or setting aside a partition.
//!
//! - `<dir>/<topic>-<n>/`: a partition log (weir-log's layout inside).
//! - `<dir>/<topic>-<n>/partition.metadata`: Kafka's text file `version: 0` /
//!   `topic_id: <base64>`, written when the partition is created, so a restart can
//!   tell a topic's logs from those of an older topic of the same name.
//! - `<dir>/<topic>-<n>.<32 hex>-delete/`: a deleted partition. The rename is atomic
//!   and fsynced, so a crash in the middle of removing the files never resurrects the
//!   partition; leftovers are removed at the next start.
//! - `<dir>/<topic>-<n>.<32 hex>-stray/`: a log the metadata does not know (or knows
//!   under another topic id), set aside rather than deleted, as Kafka 3.7+ does: data
//!   is never destroyed on the strength of a metadata mismatch.
//! - `<dir>/__cluster_metadata-0/`: the metadata log, not ours to touch.

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use weir_log::checkpoint::{sync_dir, write_atomically};
use weir_log::TopicPartition;
use weir_metadata::uuid::{from_base64, to_base64};
use weir_protocol::Uuid;

use super::error::{ReplicaError, Result};

/// Kafka's name for the topic-id file in a partition directory.
pub const PARTITION_METADATA_FILE: &str = "partition.metadata";
/// Suffix of a partition directory being deleted.
pub const DELETE_SUFFIX: &str = "-delete";
/// Suffix of a partition directory set aside as stray.
pub const STRAY_SUFFIX: &str = "-stray";
/// Directory names starting with this belong to the metadata log.
const METADATA_LOG_PREFIX: &str = "__cluster_metadata";

/// What a data directory holds, as found at startup.
#[derive(Debug, Default)]
pub(crate) struct DirScan {
    /// Partition directories.
    pub(crate) partitions: Vec<(TopicPartition, PathBuf)>,
    /// Directories left by an interrupted deletion.
    pub(crate) deleting: Vec<PathBuf>,
}

/// Lists `data_dir`'s partition directories and unfinished deletions.
pub(crate) fn scan(data_dir: &Path) -> Result<DirScan> {
    let mut out = DirScan::default();
    let entries = fs::read_dir(data_dir).map_err(|e| ReplicaError::io("list", data_dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| ReplicaError::io("list", data_dir, e))?;
        let path = entry.path();
        let is_dir = entry
            .file_type()
            .map_err(|e| ReplicaError::io("stat", &path, e))?
            .is_dir();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !is_dir || name.starts_with(METADATA_LOG_PREFIX) || name.starts_with('.') {
            continue;
        }
        if name.ends_with(DELETE_SUFFIX) {
            out.deleting.push(path);
        } else if let Some(tp) = TopicPartition::from_dir_name(&name) {
            out.partitions.push((tp, path));
        }
    }
    out.partitions.sort();
    Ok(out)
}

/// Writes `partition.metadata` durably (temporary file, fsync, rename, dir fsync).
pub(crate) fn write_partition_metadata(partition_dir: &Path, topic_id: Uuid) -> Result<()> {
    let text = format!("version: 0\ntopic_id: {}\n", to_base64(topic_id));
    write_atomically(
        &partition_dir.join(PARTITION_METADATA_FILE),
        text.as_bytes(),
    )?;
    Ok(())
}

/// Reads `partition.metadata`: `Ok(None)` when absent or unreadable as Kafka's
/// format (the caller then trusts the directory name and rewrites the file).
pub(crate) fn read_partition_metadata(partition_dir: &Path) -> Result<Option<Uuid>> {
    let path = partition_dir.join(PARTITION_METADATA_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ReplicaError::io("read", &path, e)),
    };
    let mut version = None;
    let mut topic_id = None;
    for line in text.lines() {
        if let Some((key, value)) = line.split_once(':') {
            match key.trim() {
                "version" => version = Some(value.trim().to_owned()),
                "topic_id" => topic_id = from_base64(value.trim()),
                _ => {}
            }
        }
    }
    if version.as_deref() != Some("0") || topic_id.is_none() {
        tracing::warn!(path = %path.display(), "unreadable partition.metadata; it will be rewritten");
        return Ok(None);
    }
    Ok(topic_id)
}

/// Renames `partition_dir` to `<name>.<unique>-<suffix>` and fsyncs the parent, so
/// the partition is gone (for a restart too) before its files are removed.
pub(crate) fn rename_aside(partition_dir: &Path, suffix: &str) -> Result<PathBuf> {
    let name = partition_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let target = partition_dir.with_file_name(format!("{name}.{}{suffix}", unique_hex()));
    fs::rename(partition_dir, &target).map_err(|e| ReplicaError::io("rename", partition_dir, e))?;
    if let Some(parent) = target.parent() {
        sync_dir(parent)?;
    }
    Ok(target)
}

/// Deletes a partition directory: rename aside with `-delete`, then remove.
pub(crate) fn delete_partition_dir(partition_dir: &Path) -> Result<()> {
    let doomed = rename_aside(partition_dir, DELETE_SUFFIX)?;
    remove_dir(&doomed)
}

/// Removes a directory tree (already renamed aside).
pub(crate) fn remove_dir(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ReplicaError::io("remove", dir, e)),
    }
}

/// 32 hex digits, unique per process and call (Kafka uses a random UUID here).
fn unique_hex() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hi = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hi.write_u128(nanos);
    hi.write_u32(std::process::id());
    let lo = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:016x}{:016x}", hi.finish(), lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_metadata_round_trips_and_tolerates_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let id = Uuid([7; 16]);
        assert_eq!(read_partition_metadata(dir.path()).unwrap(), None);
        write_partition_metadata(dir.path(), id).unwrap();
        let text = fs::read_to_string(dir.path().join(PARTITION_METADATA_FILE)).unwrap();
        assert!(text.starts_with("version: 0\ntopic_id: "), "{text}");
        assert_eq!(read_partition_metadata(dir.path()).unwrap(), Some(id));
        fs::write(dir.path().join(PARTITION_METADATA_FILE), "version: 9\n").unwrap();
        assert_eq!(read_partition_metadata(dir.path()).unwrap(), None);
    }

    #[test]
    fn scan_finds_partitions_and_skips_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        for d in [
            "orders-0",
            "a-b-3",
            "__cluster_metadata-0",
            "x-1.abc-delete",
            "y-0.abc-stray",
        ] {
            fs::create_dir(dir.path().join(d)).unwrap();
        }
        fs::write(
            dir.path().join("recovery-point-offset-checkpoint"),
            "0\n0\n",
        )
        .unwrap();
        let scan = scan(dir.path()).unwrap();
        let names: Vec<String> = scan
            .partitions
            .iter()
            .map(|(tp, _)| tp.dir_name())
            .collect();
        assert_eq!(names, vec!["a-b-3", "orders-0"]);
        assert_eq!(scan.deleting.len(), 1);
    }

    #[test]
    fn deleting_renames_then_removes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t-0");
        fs::create_dir(&p).unwrap();
        fs::write(p.join("00000000000000000000.log"), b"x").unwrap();
        delete_partition_dir(&p).unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
