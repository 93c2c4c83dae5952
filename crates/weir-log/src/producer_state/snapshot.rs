//! Producer state snapshots: `<20-digit offset>.snapshot` files holding the state
//! after every batch below that offset, so opening a log replays only the batches
//! after the newest snapshot.
//!
//! Format (Weir's own, version 1; all integers big-endian): `version: i16`,
//! `crc32c: u32` of the rest, `count: u32`, then per producer `id: i64`,
//! `epoch: i16`, `last_timestamp: i64`, `batches: u8`, and per batch `first_seq: i32`,
//! `last_seq: i32`, `first_offset: i64`, `last_offset: i64`, `max_timestamp: i64`.
//! Unlike Kafka's snapshots, all retained batches are kept, so duplicate detection
//! covers the last five batches across a restart.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use weir_types::{Offset, ProducerEpoch, ProducerId, Sequence};

use super::{BatchMetadata, ProducerEntry, ProducerStateManager, BATCHES_TO_RETAIN};
use crate::checkpoint::write_replacing;
use crate::error::{LogError, Result};

/// File name suffix of producer state snapshots.
pub const SNAPSHOT_SUFFIX: &str = ".snapshot";

impl ProducerStateManager {
    /// Encodes the state as a snapshot (version 1, CRC32C-protected).
    fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(8 + self.producers.len() * 64);
        body.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        let mut ids: Vec<_> = self.producers.keys().copied().collect();
        ids.sort();
        for id in ids {
            let e = &self.producers[&id];
            body.extend_from_slice(&id.get().to_be_bytes());
            body.extend_from_slice(&e.epoch.get().to_be_bytes());
            body.extend_from_slice(&e.last_timestamp.to_be_bytes());
            body.push(e.batches.len() as u8);
            for b in &e.batches {
                body.extend_from_slice(&b.first_seq.get().to_be_bytes());
                body.extend_from_slice(&b.last_seq.get().to_be_bytes());
                body.extend_from_slice(&b.first_offset.get().to_be_bytes());
                body.extend_from_slice(&b.last_offset.get().to_be_bytes());
                body.extend_from_slice(&b.max_timestamp.to_be_bytes());
            }
        }
        let mut out = Vec::with_capacity(body.len() + 6);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    fn decode(bytes: &[u8]) -> std::result::Result<ProducerStateManager, String> {
        let mut r = Reader { b: bytes };
        let version = i16::from_be_bytes(r.take()?);
        if version != SNAPSHOT_VERSION {
            return Err(format!("unknown snapshot version {version}"));
        }
        let crc = u32::from_be_bytes(r.take()?);
        if crc32c::crc32c(r.b) != crc {
            return Err("checksum mismatch".into());
        }
        let count = u32::from_be_bytes(r.take()?);
        let mut producers = HashMap::new();
        for _ in 0..count {
            let id = ProducerId(i64::from_be_bytes(r.take()?));
            let epoch = ProducerEpoch(i16::from_be_bytes(r.take()?));
            let last_timestamp = i64::from_be_bytes(r.take()?);
            let [n] = r.take::<1>()?;
            if usize::from(n) > BATCHES_TO_RETAIN {
                return Err(format!("{n} batches for producer {id}"));
            }
            let mut batches = VecDeque::with_capacity(usize::from(n));
            for _ in 0..n {
                batches.push_back(BatchMetadata {
                    first_seq: Sequence(i32::from_be_bytes(r.take()?)),
                    last_seq: Sequence(i32::from_be_bytes(r.take()?)),
                    first_offset: Offset(i64::from_be_bytes(r.take()?)),
                    last_offset: Offset(i64::from_be_bytes(r.take()?)),
                    max_timestamp: i64::from_be_bytes(r.take()?),
                });
            }
            producers.insert(
                id,
                ProducerEntry {
                    epoch,
                    batches,
                    last_timestamp,
                },
            );
        }
        if !r.b.is_empty() {
            return Err(format!("{} trailing bytes", r.b.len()));
        }
        Ok(ProducerStateManager { producers })
    }
}

const SNAPSHOT_VERSION: i16 = 1;

struct Reader<'a> {
    b: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> std::result::Result<[u8; N], String> {
        if self.b.len() < N {
            return Err("truncated".into());
        }
        let mut out = [0u8; N];
        out.copy_from_slice(&self.b[..N]);
        self.b = &self.b[N..];
        Ok(out)
    }
}

/// The snapshot file for the state after every batch below `offset`.
pub fn snapshot_path(dir: &Path, offset: Offset) -> PathBuf {
    dir.join(format!("{:020}{SNAPSHOT_SUFFIX}", offset.get()))
}

/// Offsets of the snapshot files in `dir`, ascending.
pub fn list_snapshots(dir: &Path) -> Result<Vec<Offset>> {
    let mut out = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| LogError::io("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| LogError::io("list", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(SNAPSHOT_SUFFIX) {
            if stem.len() == 20 {
                if let Ok(o) = stem.parse::<i64>() {
                    out.push(Offset(o));
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Writes a snapshot of `state` at `offset`, replacing the file by rename but
/// without fsync: a snapshot is an optimisation, checksummed, and a lost or torn one
/// only means replaying more of the log on open.
pub fn write_snapshot(dir: &Path, offset: Offset, state: &ProducerStateManager) -> Result<()> {
    write_replacing(&snapshot_path(dir, offset), &state.encode(), false)
}

/// Loads the newest readable snapshot at or below `max_offset`; unreadable ones are
/// deleted with a warning (the state is rebuilt from the log instead).
pub fn load_latest_snapshot(
    dir: &Path,
    max_offset: Offset,
) -> Result<Option<(Offset, ProducerStateManager)>> {
    for offset in list_snapshots(dir)?.into_iter().rev() {
        if offset > max_offset {
            continue;
        }
        let path = snapshot_path(dir, offset);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(LogError::io("read", &path, e)),
        };
        match ProducerStateManager::decode(&bytes) {
            Ok(state) => return Ok(Some((offset, state))),
            Err(reason) => {
                tracing::warn!(path = %path.display(), reason, "deleting unreadable producer snapshot");
                remove_if_exists(&path)?;
            }
        }
    }
    Ok(None)
}

/// Deletes snapshots for which `drop(offset)` holds.
pub fn delete_snapshots(dir: &Path, drop: impl Fn(Offset) -> bool) -> Result<()> {
    for offset in list_snapshots(dir)? {
        if drop(offset) {
            remove_if_exists(&snapshot_path(dir, offset))?;
        }
    }
    Ok(())
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LogError::io("remove", path, e)),
    }
}
