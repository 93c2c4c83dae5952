//! The `.timeindex` file: sparse map from timestamp to offset.
//!
//! An entry is `(timestamp: i64, relative offset: u32)`, big-endian: "the largest
//! timestamp in the segment up to here is `timestamp`, first reached by the batch
//! whose last offset is `offset`". Timestamps strictly increase along the file; every
//! batch before that batch has a smaller maximum timestamp, which is what makes a
//! lookup correct (see [`TimeIndex::lookup`]).

use std::path::Path;

use weir_types::Offset;

use super::offset::relative;
use super::{Entry, IndexDamaged, IndexFile};
use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub(crate) timestamp: i64,
    pub(crate) relative_offset: u32,
}

impl Entry for TimeEntry {
    const SIZE: usize = 12;

    fn encode(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.relative_offset.to_be_bytes());
    }

    fn decode(b: &[u8]) -> Self {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[..8]);
        TimeEntry {
            timestamp: i64::from_be_bytes(ts),
            relative_offset: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        }
    }
}

/// A segment's time index.
#[derive(Debug)]
pub(crate) struct TimeIndex {
    base_offset: Offset,
    file: IndexFile<TimeEntry>,
}

impl TimeIndex {
    /// Loads `path`; entries must be ordered and end before `end_offset` (the
    /// segment's next offset).
    pub(crate) fn load(
        path: &Path,
        base_offset: Offset,
        max_bytes: u64,
        end_offset: Offset,
    ) -> Result<(TimeIndex, std::result::Result<(), IndexDamaged>)> {
        let (file, mut status) = IndexFile::load(path, max_bytes)?;
        if status.is_ok() {
            status = check(file.entries(), base_offset, end_offset);
        }
        Ok((TimeIndex { base_offset, file }, status))
    }

    pub(crate) fn is_full(&self) -> bool {
        self.file.is_full()
    }

    /// Records that `timestamp` is the new maximum, reached by the batch ending at
    /// `last_offset`; does nothing unless `timestamp` beats the last entry.
    pub(crate) fn maybe_append(&mut self, timestamp: i64, last_offset: Offset) -> Result<()> {
        let relative_offset = relative(self.base_offset, last_offset);
        if let Some(last) = self.file.last() {
            if timestamp <= last.timestamp {
                return Ok(());
            }
            assert!(
                relative_offset >= last.relative_offset,
                "time index offsets must not decrease: {last:?} then {last_offset}"
            );
        }
        self.file.push(TimeEntry {
            timestamp,
            relative_offset,
        })
    }

    /// The last entry as `(timestamp, offset)`: the segment's largest timestamp as far
    /// as the index knows.
    pub(crate) fn last(&self) -> Option<(i64, Offset)> {
        self.file.last().map(|e| {
            (
                e.timestamp,
                self.base_offset.plus(i64::from(e.relative_offset)),
            )
        })
    }

    /// The offset to start searching for the first record with timestamp `>= target`:
    /// the batch of the last entry whose timestamp is `<= target`, since every
    /// earlier batch has only smaller timestamps. `None`: start at the segment start.
    pub(crate) fn lookup(&self, target: i64) -> Option<Offset> {
        let entries = self.file.entries();
        let n = entries.partition_point(|e| e.timestamp <= target);
        (n > 0).then(|| {
            self.base_offset
                .plus(i64::from(entries[n - 1].relative_offset))
        })
    }

    /// Removes entries for offsets at or after `offset`.
    pub(crate) fn truncate_to(&mut self, offset: Offset) -> Result<()> {
        let limit = offset.get() - self.base_offset.get();
        let n = self
            .file
            .entries()
            .partition_point(|e| i64::from(e.relative_offset) < limit);
        self.file.truncate_entries(n)
    }

    pub(crate) fn reset(&mut self) -> Result<()> {
        self.file.reset()
    }

    pub(crate) fn file(&self) -> &IndexFile<TimeEntry> {
        &self.file
    }
}

fn check(
    entries: &[TimeEntry],
    base: Offset,
    end: Offset,
) -> std::result::Result<(), IndexDamaged> {
    let mut prev: Option<TimeEntry> = None;
    for e in entries {
        if base.get() + i64::from(e.relative_offset) >= end.get() {
            return Err(IndexDamaged(format!(
                "entry {e:?} is past the segment end {end}"
            )));
        }
        if let Some(p) = prev {
            if e.timestamp <= p.timestamp || e.relative_offset < p.relative_offset {
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
    fn keeps_only_increasing_maxima_and_looks_up_the_floor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000010.timeindex");
        let (mut idx, ok) = TimeIndex::load(&path, Offset(10), 1200, Offset(10)).unwrap();
        ok.unwrap();
        idx.maybe_append(1000, Offset(14)).unwrap();
        idx.maybe_append(900, Offset(19)).unwrap(); // not a new maximum
        idx.maybe_append(2000, Offset(24)).unwrap();
        assert_eq!(std::fs::read(&path).unwrap().len(), 24);
        assert_eq!(idx.lookup(999), None);
        assert_eq!(idx.lookup(1000), Some(Offset(14)));
        assert_eq!(idx.lookup(1999), Some(Offset(14)));
        assert_eq!(idx.lookup(5000), Some(Offset(24)));
        assert_eq!(idx.last(), Some((2000, Offset(24))));

        let (mut again, ok) = TimeIndex::load(&path, Offset(10), 1200, Offset(25)).unwrap();
        ok.unwrap();
        again.truncate_to(Offset(20)).unwrap();
        assert_eq!(again.last(), Some((1000, Offset(14))));
        let (_, bad) = TimeIndex::load(&path, Offset(10), 1200, Offset(12)).unwrap();
        assert!(bad.is_err(), "entry past the segment end must be rejected");
    }
}
