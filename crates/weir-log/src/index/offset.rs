//! The `.index` file: sparse map from offset to the file position of a batch.
//!
//! An entry is `(relative offset: u32, position: u32)`, big-endian, where the offset
//! is the *last* offset of the indexed batch relative to the segment's base offset
//! and the position is where that batch starts (as Kafka writes it). One entry is
//! added every `index.interval.bytes` of batches.

use std::path::Path;

use weir_types::Offset;

use super::{Entry, IndexDamaged, IndexFile};
use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub(crate) relative_offset: u32,
    pub(crate) position: u32,
}

impl Entry for OffsetEntry {
    const SIZE: usize = 8;

    fn encode(&self, out: &mut [u8]) {
        out[..4].copy_from_slice(&self.relative_offset.to_be_bytes());
        out[4..8].copy_from_slice(&self.position.to_be_bytes());
    }

    fn decode(b: &[u8]) -> Self {
        OffsetEntry {
            relative_offset: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            position: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

/// A segment's offset index.
#[derive(Debug)]
pub(crate) struct OffsetIndex {
    base_offset: Offset,
    file: IndexFile<OffsetEntry>,
}

impl OffsetIndex {
    /// Loads `path`, checking entries against the segment's size in bytes and the
    /// offset its data must end before.
    pub(crate) fn load(
        path: &Path,
        base_offset: Offset,
        max_bytes: u64,
        log_size: u64,
    ) -> Result<(OffsetIndex, std::result::Result<(), IndexDamaged>)> {
        let (file, mut status) = IndexFile::load(path, max_bytes)?;
        if status.is_ok() {
            status = check(file.entries(), log_size);
        }
        Ok((OffsetIndex { base_offset, file }, status))
    }

    pub(crate) fn is_full(&self) -> bool {
        self.file.is_full()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.file.entries().len()
    }

    /// Indexes a batch whose last offset is `last_offset`, starting at `position`.
    pub(crate) fn append(&mut self, last_offset: Offset, position: u32) -> Result<()> {
        let relative = relative(self.base_offset, last_offset);
        if let Some(last) = self.file.last() {
            // Callers index batches in order; an out-of-order entry is a bug.
            assert!(
                relative > last.relative_offset && position > last.position,
                "offset index entries must increase: {last:?} then ({relative}, {position})"
            );
        }
        self.file.push(OffsetEntry {
            relative_offset: relative,
            position,
        })
    }

    /// The position of the last indexed batch whose last offset is `<= target`, or 0
    /// (the segment start) when there is none: scanning forward from there reaches
    /// the batch holding `target`.
    pub(crate) fn lookup(&self, target: Offset) -> u32 {
        let Some(rel) = target.get().checked_sub(self.base_offset.get()) else {
            return 0;
        };
        let entries = self.file.entries();
        let n = entries.partition_point(|e| i64::from(e.relative_offset) <= rel);
        match n {
            0 => 0,
            n => entries[n - 1].position,
        }
    }

    /// The last entry as `(last offset of the batch, position)`.
    pub(crate) fn last(&self) -> Option<(Offset, u32)> {
        self.file.last().map(|e| {
            (
                self.base_offset.plus(i64::from(e.relative_offset)),
                e.position,
            )
        })
    }

    /// Removes entries for batches at or after `position` (the log is being
    /// truncated there).
    pub(crate) fn truncate_to_position(&mut self, position: u32) -> Result<()> {
        let n = self
            .file
            .entries()
            .partition_point(|e| e.position < position);
        self.file.truncate_entries(n)
    }

    pub(crate) fn reset(&mut self) -> Result<()> {
        self.file.reset()
    }

    pub(crate) fn file(&self) -> &IndexFile<OffsetEntry> {
        &self.file
    }
}

pub(crate) fn relative(base: Offset, offset: Offset) -> u32 {
    let rel = offset.get() - base.get();
    assert!(
        (0..=i64::from(i32::MAX)).contains(&rel),
        "offset {offset} is not within a 32-bit range of base {base}"
    );
    rel as u32
}

fn check(entries: &[OffsetEntry], log_size: u64) -> std::result::Result<(), IndexDamaged> {
    let mut prev: Option<OffsetEntry> = None;
    for e in entries {
        if u64::from(e.position) >= log_size.max(1) {
            return Err(IndexDamaged(format!(
                "entry {e:?} points past the segment's {log_size} bytes"
            )));
        }
        if e.relative_offset > i32::MAX as u32 {
            return Err(IndexDamaged(format!("entry {e:?} has a negative offset")));
        }
        if let Some(p) = prev {
            if e.relative_offset <= p.relative_offset || e.position <= p.position {
                return Err(IndexDamaged(format!(
                    "entries out of order: {p:?} then {e:?}"
                )));
            }
        }
        prev = Some(*e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_the_floor_entry_and_survives_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000100.index");
        let base = Offset(100);
        let (mut idx, ok) = OffsetIndex::load(&path, base, 1024, 0).unwrap();
        ok.unwrap();
        assert_eq!(idx.lookup(Offset(150)), 0);
        idx.append(Offset(109), 0).unwrap();
        idx.append(Offset(119), 500).unwrap();
        idx.append(Offset(129), 1000).unwrap();
        assert_eq!(idx.lookup(Offset(99)), 0);
        assert_eq!(idx.lookup(Offset(108)), 0);
        assert_eq!(idx.lookup(Offset(119)), 500);
        assert_eq!(idx.lookup(Offset(125)), 500);
        assert_eq!(idx.lookup(Offset(1000)), 1000);
        assert_eq!(std::fs::read(&path).unwrap().len(), 24);

        let (idx2, ok) = OffsetIndex::load(&path, base, 1024, 2000).unwrap();
        ok.unwrap();
        assert_eq!(idx2.last(), Some((Offset(129), 1000)));

        let (mut idx3, ok) = OffsetIndex::load(&path, base, 1024, 800).unwrap();
        assert!(ok.is_err(), "entry past the log end must be rejected");
        idx3.truncate_to_position(500).unwrap();
        assert_eq!(idx3.len(), 1);
        assert_eq!(std::fs::read(&path).unwrap().len(), 8);
    }

    #[test]
    fn torn_or_disordered_files_are_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        std::fs::write(&path, [0u8; 9]).unwrap();
        assert!(OffsetIndex::load(&path, Offset(0), 1024, 100)
            .unwrap()
            .1
            .is_err());
        let mut bytes = Vec::new();
        for (o, p) in [(5u32, 10u32), (4, 20)] {
            bytes.extend_from_slice(&o.to_be_bytes());
            bytes.extend_from_slice(&p.to_be_bytes());
        }
        std::fs::write(&path, bytes).unwrap();
        assert!(OffsetIndex::load(&path, Offset(0), 1024, 100)
            .unwrap()
            .1
            .is_err());
    }

    #[test]
    fn full_after_max_bytes_over_entry_size() {
        let dir = tempfile::tempdir().unwrap();
        let (mut idx, _) =
            OffsetIndex::load(&dir.path().join("0.index"), Offset(0), 16, 0).unwrap();
        idx.append(Offset(0), 0).unwrap();
        assert!(!idx.is_full());
        idx.append(Offset(1), 10).unwrap();
        assert!(idx.is_full());
    }
}
