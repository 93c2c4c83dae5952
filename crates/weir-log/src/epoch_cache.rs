//! The leader epoch cache: for each leader epoch, the first offset written in it.
//!
//! This is what lets a follower find where its log diverges from a new leader's
//! (OffsetForLeaderEpoch): the end offset of epoch `e` is the start offset of the next
//! higher epoch. Entries are kept strictly increasing in both epoch and start offset;
//! an entry that would break that removes the entries it conflicts with, as Kafka's
//! `LeaderEpochFileCache` does. The cache is persisted in the partition directory as
//! `leader-epoch-checkpoint` (Kafka's text checkpoint with `epoch offset` lines) on
//! every change; changes are rare (a leader change, a truncation).

use std::path::{Path, PathBuf};

use weir_types::{LeaderEpoch, Offset};

use crate::checkpoint::{read_entries, write_entries};
use crate::error::{LogError, Result};

/// File name of a partition's leader epoch checkpoint.
pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";

/// One cache entry: `epoch` started at `start_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    /// The leader epoch.
    pub epoch: LeaderEpoch,
    /// The first offset written in that epoch.
    pub start_offset: Offset,
}

/// A partition's leader epoch cache and its checkpoint file.
#[derive(Debug)]
pub struct LeaderEpochCache {
    path: PathBuf,
    /// Strictly increasing in epoch and start offset.
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// Loads the checkpoint in `dir` (missing: empty). A malformed file is an error;
    /// the log reacts by rebuilding the cache from its batches.
    pub fn load(dir: &Path) -> Result<LeaderEpochCache> {
        let path = dir.join(LEADER_EPOCH_CHECKPOINT);
        let mut entries = Vec::new();
        for line in read_entries(&path)?.unwrap_or_default() {
            let mut parts = line.split_whitespace();
            let parsed = (|| {
                let epoch: i32 = parts.next()?.parse().ok()?;
                let offset: i64 = parts.next()?.parse().ok()?;
                parts.next().is_none().then_some((epoch, offset))
            })();
            let corrupt = |reason: String| LogError::CorruptCheckpoint {
                path: path.clone(),
                reason,
            };
            let (epoch, offset) =
                parsed.ok_or_else(|| corrupt(format!("malformed entry {line:?}")))?;
            let entry = EpochEntry {
                epoch: LeaderEpoch(epoch),
                start_offset: Offset(offset),
            };
            if epoch < 0 || offset < 0 {
                return Err(corrupt(format!("negative entry {line:?}")));
            }
            if let Some(last) = entries.last() {
                if !monotonic(last, &entry) {
                    return Err(corrupt(format!("entries not increasing at {line:?}")));
                }
            }
            entries.push(entry);
        }
        Ok(LeaderEpochCache { path, entries })
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    /// The newest epoch, if any.
    pub fn latest_epoch(&self) -> Option<LeaderEpoch> {
        self.entries.last().map(|e| e.epoch)
    }

    /// The epoch in which `offset` was written (the entry with the largest start
    /// offset `<= offset`).
    pub fn epoch_for_offset(&self, offset: Offset) -> Option<LeaderEpoch> {
        let n = self.entries.partition_point(|e| e.start_offset <= offset);
        (n > 0).then(|| self.entries[n - 1].epoch)
    }

    /// Records that `epoch` starts at `start_offset` (Kafka's `assign`): a no-op when
    /// it is the latest epoch already and starts no earlier; otherwise entries with an
    /// epoch `>= epoch` or a start `>= start_offset` are replaced. Negative epochs
    /// (batches written without one) are ignored. Returns whether the cache changed.
    pub fn assign(&mut self, epoch: LeaderEpoch, start_offset: Offset) -> Result<bool> {
        if epoch.get() < 0 || start_offset.get() < 0 {
            return Ok(false);
        }
        if let Some(last) = self.entries.last() {
            if last.epoch == epoch && last.start_offset <= start_offset {
                return Ok(false);
            }
        }
        let before = self.entries.len();
        self.entries
            .retain(|e| e.epoch < epoch && e.start_offset < start_offset);
        if self.entries.len() != before {
            tracing::warn!(
                path = %self.path.display(),
                epoch = epoch.get(),
                start_offset = start_offset.get(),
                removed = before - self.entries.len(),
                "leader epoch cache: new entry replaced non-monotonic entries"
            );
        }
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        self.assert_monotonic();
        self.persist()?;
        Ok(true)
    }

    /// Removes entries starting at or after `end_offset` (the log was truncated to it).
    pub fn truncate_from_end(&mut self, end_offset: Offset) -> Result<()> {
        let n = self
            .entries
            .partition_point(|e| e.start_offset < end_offset);
        if n != self.entries.len() {
            self.entries.truncate(n);
            self.persist()?;
        }
        Ok(())
    }

    /// Forgets epochs entirely below `start_offset` (the log start moved there); the
    /// epoch holding `start_offset` now starts at it.
    pub fn truncate_from_start(&mut self, start_offset: Offset) -> Result<()> {
        let n = self
            .entries
            .partition_point(|e| e.start_offset <= start_offset);
        if n == 0 {
            return Ok(());
        }
        let floor = n - 1;
        if floor == 0 && self.entries[0].start_offset == start_offset {
            return Ok(());
        }
        self.entries.drain(..floor);
        self.entries[0].start_offset = start_offset;
        self.assert_monotonic();
        self.persist()
    }

    /// Removes every entry.
    pub fn clear(&mut self) -> Result<()> {
        if !self.entries.is_empty() {
            self.entries.clear();
            self.persist()?;
        }
        Ok(())
    }

    /// Kafka's `endOffsetFor`: the largest epoch `<= requested` and the offset where
    /// it ended (the next epoch's start, or `log_end_offset` for the latest epoch).
    /// `(-1, -1)` when unknown: an undefined request, or a request above every epoch.
    pub fn end_offset_for(
        &self,
        requested: LeaderEpoch,
        log_end_offset: Offset,
    ) -> (LeaderEpoch, Offset) {
        const UNDEFINED: (LeaderEpoch, Offset) = (LeaderEpoch(-1), Offset(-1));
        if requested.get() < 0 {
            return UNDEFINED;
        }
        if self.latest_epoch() == Some(requested) {
            return (requested, log_end_offset);
        }
        let higher = self.entries.partition_point(|e| e.epoch <= requested);
        let Some(next) = self.entries.get(higher) else {
            return UNDEFINED;
        };
        match higher {
            // Older than anything we know: the data is gone; point at the first epoch
            // we have so the follower replicates from there.
            0 => (requested, next.start_offset),
            h => (self.entries[h - 1].epoch, next.start_offset),
        }
    }

    /// Rewrites the checkpoint file.
    pub fn persist(&self) -> Result<()> {
        let lines: Vec<String> = self
            .entries
            .iter()
            .map(|e| format!("{} {}", e.epoch.get(), e.start_offset.get()))
            .collect();
        write_entries(&self.path, &lines)
    }

    fn assert_monotonic(&self) {
        for w in self.entries.windows(2) {
            assert!(
                monotonic(&w[0], &w[1]),
                "leader epoch cache must increase: {:?} then {:?}",
                w[0],
                w[1]
            );
        }
    }
}

fn monotonic(a: &EpochEntry, b: &EpochEntry) -> bool {
    a.epoch < b.epoch && a.start_offset < b.start_offset
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(epoch: i32, offset: i64) -> EpochEntry {
        EpochEntry {
            epoch: LeaderEpoch(epoch),
            start_offset: Offset(offset),
        }
    }

    #[test]
    fn assign_persist_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = LeaderEpochCache::load(dir.path()).unwrap();
        assert!(cache.assign(LeaderEpoch(1), Offset(0)).unwrap());
        assert!(!cache.assign(LeaderEpoch(1), Offset(5)).unwrap());
        assert!(cache.assign(LeaderEpoch(3), Offset(10)).unwrap());
        assert!(!cache.assign(LeaderEpoch(-1), Offset(11)).unwrap());
        let text = std::fs::read_to_string(dir.path().join(LEADER_EPOCH_CHECKPOINT)).unwrap();
        assert_eq!(text, "0\n2\n1 0\n3 10\n");
        let again = LeaderEpochCache::load(dir.path()).unwrap();
        assert_eq!(again.entries(), &[e(1, 0), e(3, 10)]);
        assert_eq!(again.epoch_for_offset(Offset(9)), Some(LeaderEpoch(1)));
        assert_eq!(again.epoch_for_offset(Offset(10)), Some(LeaderEpoch(3)));
    }

    #[test]
    fn non_monotonic_assign_replaces_conflicting_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = LeaderEpochCache::load(dir.path()).unwrap();
        cache.assign(LeaderEpoch(1), Offset(0)).unwrap();
        cache.assign(LeaderEpoch(2), Offset(10)).unwrap();
        cache.assign(LeaderEpoch(3), Offset(20)).unwrap();
        // A lower epoch at a later offset (follower data): higher epochs go.
        cache.assign(LeaderEpoch(2), Offset(15)).unwrap();
        assert_eq!(cache.entries(), &[e(1, 0), e(2, 15)]);
    }

    #[test]
    fn end_offset_for_matches_kafka() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = LeaderEpochCache::load(dir.path()).unwrap();
        assert_eq!(
            cache.end_offset_for(LeaderEpoch(0), Offset(0)),
            (LeaderEpoch(-1), Offset(-1))
        );
        cache.assign(LeaderEpoch(2), Offset(5)).unwrap();
        cache.assign(LeaderEpoch(4), Offset(20)).unwrap();
        cache.assign(LeaderEpoch(7), Offset(30)).unwrap();
        let leo = Offset(42);
        assert_eq!(
            cache.end_offset_for(LeaderEpoch(7), leo),
            (LeaderEpoch(7), leo)
        );
        assert_eq!(
            cache.end_offset_for(LeaderEpoch(4), leo),
            (LeaderEpoch(4), Offset(30))
        );
        assert_eq!(
            cache.end_offset_for(LeaderEpoch(5), leo),
            (LeaderEpoch(4), Offset(30))
        );
        assert_eq!(
            cache.end_offset_for(LeaderEpoch(3), leo),
            (LeaderEpoch(2), Offset(20))
        );
        assert_eq!(
            cache.end_offset_for(LeaderEpoch(1), leo),
            (LeaderEpoch(1), Offset(5))
        );
        assert_eq!(
            cache.end_offset_for(LeaderEpoch(8), leo),
            (LeaderEpoch(-1), Offset(-1))
        );
        assert_eq!(
            cache.end_offset_for(LeaderEpoch(-1), leo),
            (LeaderEpoch(-1), Offset(-1))
        );
    }

    #[test]
    fn truncation_from_both_ends() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = LeaderEpochCache::load(dir.path()).unwrap();
        for (ep, off) in [(1, 0), (2, 10), (3, 20), (4, 30)] {
            cache.assign(LeaderEpoch(ep), Offset(off)).unwrap();
        }
        cache.truncate_from_end(Offset(20)).unwrap();
        assert_eq!(cache.entries(), &[e(1, 0), e(2, 10)]);
        cache.truncate_from_start(Offset(12)).unwrap();
        assert_eq!(cache.entries(), &[e(2, 12)]);
        cache.truncate_from_start(Offset(5)).unwrap();
        assert_eq!(cache.entries(), &[e(2, 12)]);
        assert_eq!(
            LeaderEpochCache::load(dir.path()).unwrap().entries(),
            &[e(2, 12)]
        );
    }

    #[test]
    fn malformed_checkpoint_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LEADER_EPOCH_CHECKPOINT);
        for bad in ["0\n1\nx 0\n", "0\n2\n3 10\n2 20\n", "0\n1\n-1 0\n"] {
            std::fs::write(&path, bad).unwrap();
            assert!(LeaderEpochCache::load(dir.path()).is_err(), "{bad:?}");
        }
    }
}
