//! Snapshot files: the image as records, with the Raft position it stands at.
//!
//! A snapshot is `<dir>/<index, 20 digits>-<term, 10 digits>.checkpoint` (KRaft's
//! naming): `magic (8) | crc32c of the body (4) | body`, the body a postcard
//! [`SnapshotBody`] holding the last included log id, the membership as of it, the
//! image's provenance and cluster id, and every record of
//! `MetadataImage::to_records` encoded with `MetadataRecord::encode`. The same bytes
//! are what openraft streams to a lagging follower, so a follower checks exactly
//! what the leader wrote. Files are written to a `.tmp` name, fsynced and renamed;
//! the newest valid file is the node's snapshot, older ones are removed once a newer
//! one is durable.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use weir_metadata::{MetadataDelta, MetadataImage, MetadataProvenance, MetadataRecord};
use weir_types::Offset;

use crate::codec::{StoredLogId, StoredMembership};
use crate::error::QuorumError;
use crate::state_file::sync_dir;
use crate::types::{LogId, SnapshotMeta};

/// The first bytes of a snapshot file.
const MAGIC: [u8; 8] = *b"WEIRSNP1";
/// The file name suffix.
const SUFFIX: &str = ".checkpoint";
/// The largest snapshot read (the metadata image of a very large cluster is far
/// smaller).
pub(crate) const MAX_SNAPSHOT_BYTES: u64 = 1 << 30;

/// What a snapshot file holds; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SnapshotBody {
    /// The last entry the snapshot includes.
    pub(crate) last_log_id: Option<StoredLogId>,
    /// The entry of the membership in force at `last_log_id`.
    pub(crate) membership_log_id: Option<StoredLogId>,
    /// That membership.
    pub(crate) membership: StoredMembership,
    /// openraft's snapshot id (unique per build).
    pub(crate) snapshot_id: String,
    /// The cluster the image belongs to.
    pub(crate) cluster_id: String,
    /// The image's provenance: last offset, epoch, log time.
    pub(crate) provenance: (i64, i32, i64),
    /// The image's records, each encoded.
    pub(crate) records: Vec<Vec<u8>>,
}

impl SnapshotBody {
    /// The body of a snapshot of `image` at `last_log_id` under `membership`.
    pub(crate) fn of(
        image: &MetadataImage,
        meta: &SnapshotMeta,
    ) -> Result<SnapshotBody, QuorumError> {
        let records = image
            .to_records()
            .iter()
            .map(|r| r.encode().map(|b| b.to_vec()))
            .collect::<Result<Vec<_>, _>>()?;
        let p = image.provenance();
        Ok(SnapshotBody {
            last_log_id: meta.last_log_id.as_ref().map(StoredLogId::from),
            membership_log_id: meta
                .last_membership
                .log_id()
                .as_ref()
                .map(StoredLogId::from),
            membership: meta.last_membership.membership().into(),
            snapshot_id: meta.snapshot_id.clone(),
            cluster_id: image.cluster_id().to_string(),
            provenance: (p.last_offset.get(), p.last_epoch, p.last_log_time_ms),
            records,
        })
    }

    /// openraft's view of the snapshot.
    pub(crate) fn meta(&self) -> SnapshotMeta {
        SnapshotMeta {
            last_log_id: self.last_log_id.map(LogId::from),
            last_membership: openraft::StoredMembership::new(
                self.membership_log_id.map(LogId::from),
                self.membership.clone().into(),
            ),
            snapshot_id: self.snapshot_id.clone(),
        }
    }

    /// The image the records make, at the snapshot's provenance.
    pub(crate) fn image(&self) -> Result<MetadataImage, QuorumError> {
        let mut delta = MetadataDelta::new(Arc::new(MetadataImage::empty(self.cluster_id.clone())));
        let (last_offset, last_epoch, last_log_time_ms) = self.provenance;
        for (i, frame) in self.records.iter().enumerate() {
            let record = MetadataRecord::decode(Bytes::copy_from_slice(frame))?;
            // Offsets of their own: the provenance is restored below.
            delta.replay(Offset(i as i64), last_epoch, last_log_time_ms, &record)?;
        }
        let image = delta.apply().with_provenance(MetadataProvenance {
            last_offset: Offset(last_offset),
            last_epoch,
            last_log_time_ms,
        });
        image
            .check_invariants()
            .map_err(|e| QuorumError::corrupt("snapshot", format!("image invariant: {e}")))?;
        Ok(image)
    }

    /// The file bytes.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, QuorumError> {
        let body = postcard::to_allocvec(self)
            .map_err(|e| QuorumError::corrupt("snapshot", format!("encode: {e}")))?;
        let mut out = Vec::with_capacity(12 + body.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Parses and checks file bytes.
    pub(crate) fn decode(bytes: &[u8]) -> Result<SnapshotBody, String> {
        if bytes.len() < 12 || bytes[..8] != MAGIC {
            return Err("not a weir snapshot".into());
        }
        let crc = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        let body = &bytes[12..];
        if crc32c::crc32c(body) != crc {
            return Err("snapshot checksum mismatch".into());
        }
        postcard::from_bytes(body).map_err(|e| format!("snapshot: {e}"))
    }

    /// The file name of this snapshot.
    fn file_name(&self) -> String {
        let (index, term) = self.last_log_id.map_or((0, 0), |l| (l.index, l.term));
        format!("{index:020}-{term:010}{SUFFIX}")
    }
}

/// A snapshot file: (index, term) parsed from its name, and its path.
type SnapshotFile = ((u64, u64), PathBuf);

/// Snapshot files of `dir`, oldest first.
fn list(dir: &Path) -> Result<Vec<SnapshotFile>, QuorumError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| QuorumError::io("list", dir, e))? {
        let path = entry.map_err(|e| QuorumError::io("list", dir, e))?.path();
        let Some(stem) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(SUFFIX))
        else {
            continue;
        };
        let Some((i, t)) = stem.split_once('-') else {
            continue;
        };
        if let (Ok(i), Ok(t)) = (i.parse::<u64>(), t.parse::<u64>()) {
            out.push(((i, t), path));
        }
    }
    out.sort();
    Ok(out)
}

/// Writes `bytes` (an encoded `body`) as a snapshot of `dir`, durably, and removes
/// the older ones (a newer one, installed while this was built, stays).
pub(crate) fn write(dir: &Path, body: &SnapshotBody, bytes: &[u8]) -> Result<(), QuorumError> {
    let key = body.last_log_id.map_or((0, 0), |l| (l.index, l.term));
    let name = body.file_name();
    let path = dir.join(&name);
    let tmp = dir.join(format!("{name}.tmp"));
    fs::write(&tmp, bytes)
        .and_then(|()| fs::File::open(&tmp)?.sync_all())
        .map_err(|e| QuorumError::io("write", &tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| QuorumError::io("rename", &path, e))?;
    sync_dir(dir)?;
    for (k, old) in list(dir)? {
        if k < key {
            fs::remove_file(&old).map_err(|e| QuorumError::io("remove", &old, e))?;
        }
    }
    Ok(())
}

/// The newest snapshot of `dir` and its bytes, if any. A newest file that fails its
/// checks is an error: it was written atomically, so it is damage, and an older one
/// may predate the purged log.
pub(crate) fn read_latest(dir: &Path) -> Result<Option<(SnapshotBody, Vec<u8>)>, QuorumError> {
    let Some((_, path)) = list(dir)?.pop() else {
        return Ok(None);
    };
    let len = fs::metadata(&path)
        .map_err(|e| QuorumError::io("stat", &path, e))?
        .len();
    if len > MAX_SNAPSHOT_BYTES {
        return Err(QuorumError::corrupt(
            &path,
            format!("{len} bytes is too large"),
        ));
    }
    let bytes = fs::read(&path).map_err(|e| QuorumError::io("read", &path, e))?;
    let body = SnapshotBody::decode(&bytes).map_err(|r| QuorumError::corrupt(&path, r))?;
    Ok(Some((body, bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(index: u64, term: u64) -> SnapshotBody {
        SnapshotBody {
            last_log_id: Some(StoredLogId {
                term,
                node: 1,
                index,
            }),
            membership_log_id: None,
            membership: StoredMembership {
                configs: vec![],
                nodes: Default::default(),
            },
            snapshot_id: format!("{term}-{index}"),
            cluster_id: "c".into(),
            provenance: (index as i64, term as i32, 0),
            records: vec![],
        }
    }

    #[test]
    fn the_newest_snapshot_wins_and_older_ones_go() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_latest(dir.path()).unwrap().is_none());
        for (i, t) in [(10, 1), (20, 2)] {
            let b = body(i, t);
            write(dir.path(), &b, &b.encode().unwrap()).unwrap();
        }
        // A slow build of an older state lands after a newer install: kept aside.
        let old = body(15, 2);
        write(dir.path(), &old, &old.encode().unwrap()).unwrap();
        let (latest, bytes) = read_latest(dir.path()).unwrap().unwrap();
        assert_eq!(latest, body(20, 2));
        assert_eq!(SnapshotBody::decode(&bytes).unwrap(), latest);
        assert_eq!(
            list(dir.path()).unwrap().len(),
            2,
            "only 10 was older than both"
        );
        // Damage to the newest is an error, not a silent fall back.
        let path = dir.path().join(body(20, 2).file_name());
        let mut b = fs::read(&path).unwrap();
        b[20] ^= 1;
        fs::write(&path, b).unwrap();
        assert!(matches!(
            read_latest(dir.path()),
            Err(QuorumError::Corrupt { .. })
        ));
    }
}
