//! The Raft log on disk: openraft's `RaftLogStorage` over a weir-log partition log.
//!
//! `<data_dir>/__cluster_metadata-0/` holds the entries as Kafka segment files (one
//! RecordBatch per entry, see [`codec`](crate::codec)), so recovery after a crash is
//! weir-log's: the first torn or corrupt batch and everything after it is cut, which
//! loses only entries whose append was never reported (every append is fsynced
//! before openraft's callback hears of it). Beside the segments:
//!
//! - `quorum-state`: the vote, written atomically and fsynced before `save_vote`
//!   returns (a node must never vote twice in a term, even across a crash).
//! - `quorum-purged`: the last purged log id, fsynced before any segment is
//!   deleted, so the log never reports entries it no longer has.
//! - `quorum-committed`: the last committed log id, written atomically but not
//!   fsynced. It only lets a restarted node re-apply its committed entries before it
//!   hears from a leader; an older value (after a crash) just means it waits.
//!
//! Disk work runs on tokio's blocking pool, never on the runtime's workers; the log
//! is shared with the log readers openraft's replication tasks use. After any failed
//! write the store fails every later call: what reached the disk is unknown until
//! the node restarts and recovers.

use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, LogState, OptionalSend, RaftLogReader};
use serde::{Deserialize, Serialize};
use weir_log::{Log, LogConfig, OpenHints};
use weir_protocol::records::Batches;
use weir_types::{Clock, Offset, SystemClock};

use crate::codec::{decode_entry, encode_entry, StoredLogId};
use crate::error::QuorumError;
use crate::state_file;
use crate::types::{storage_error, Entry, LogId, StorageError, TypeConfig, Vote};

/// The vote file.
pub(crate) const VOTE_FILE: &str = "quorum-state";
/// The purge point file.
const PURGED_FILE: &str = "quorum-purged";
/// The commit point file.
const COMMITTED_FILE: &str = "quorum-committed";
/// Segment size of the Raft log: small enough that purging below a snapshot frees
/// disk soon, large enough for any entry a frame can carry.
const SEGMENT_BYTES: u64 = 64 << 20;
/// Bytes read per call while reading entries.
const READ_CHUNK_BYTES: usize = 4 << 20;

/// A vote as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct StoredVote {
    term: u64,
    node: u64,
    committed: bool,
}

/// The log and what is known about it; behind the store's lock.
struct Inner {
    /// The directory (for error messages and state files).
    dir: PathBuf,
    /// The entries.
    log: Log,
    /// The last purged entry, if any.
    last_purged: Option<LogId>,
    /// The last entry present, if the log holds any.
    last_log: Option<LogId>,
    /// Set by a failed write; every later call fails.
    failed: bool,
    /// Timestamps of blank and membership entries.
    clock: Arc<dyn Clock>,
}

/// The Raft log; see the module docs. Clones share the log (they are the readers).
#[derive(Clone)]
pub(crate) struct LogStore {
    inner: Arc<Mutex<Inner>>,
}

impl LogStore {
    /// Opens (or creates) the log in `dir`, recovering a torn tail.
    pub(crate) fn open(dir: &Path) -> Result<LogStore, QuorumError> {
        std::fs::create_dir_all(dir).map_err(|e| QuorumError::io("create", dir, e))?;
        let purged: Option<StoredLogId> = state_file::read(dir, PURGED_FILE)?;
        let start = purged.map(|p| Offset(p.index as i64 + 1));
        let config = LogConfig {
            segment_bytes: SEGMENT_BYTES,
            retention_ms: -1,
            retention_bytes: -1,
            ..LogConfig::default()
        };
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let hints = OpenHints {
            log_start_offset: start,
            ..OpenHints::default()
        };
        let (mut log, report) = Log::open_with_report(dir, config, Arc::clone(&clock), hints)?;
        if report.truncated {
            tracing::warn!(dir = %dir.display(), log_end_offset = log.log_end_offset().get(),
                "raft log: a torn or corrupt tail was truncated; it held no acknowledged entry");
        }
        // Purged past the local log (a snapshot installed over it): the log restarts
        // there, as `purge` does.
        if let Some(s) = start {
            if log.log_end_offset() < s {
                log.truncate_fully_and_start_at(s)?;
            }
        }
        let end = log.log_end_offset();
        log.set_high_watermark(end);
        let mut inner = Inner {
            dir: dir.to_path_buf(),
            log,
            last_purged: purged.map(LogId::from),
            last_log: None,
            failed: false,
            clock,
        };
        inner.last_log = inner
            .entry_before(end)
            .map_err(|r| QuorumError::corrupt(dir, r))?;
        tracing::info!(dir = %dir.display(), log_start_offset = inner.log.log_start_offset().get(),
            log_end_offset = end.get(), last_purged = ?inner.last_purged, "raft log opened");
        Ok(LogStore {
            inner: Arc::new(Mutex::new(inner)),
        })
    }

    /// Runs `f` on the log in the blocking pool.
    async fn blocking<T, F>(&self, f: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: FnOnce(&mut Inner) -> Result<T, String> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut guard = inner
                .lock()
                .map_err(|_| "the raft log lock is poisoned".to_string())?;
            f(&mut guard)
        })
        .await
        .map_err(|e| format!("raft log task: {e}"))?
    }

    /// Like [`blocking`](Self::blocking), for a mutation: fails once one has failed,
    /// and marks the store failed when this one does.
    async fn mutate<T, F>(&self, f: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: FnOnce(&mut Inner) -> Result<T, String> + Send + 'static,
    {
        self.blocking(move |inner| {
            if inner.failed {
                return Err("an earlier write to the raft log failed; restart the node".into());
            }
            let result = f(inner);
            if let Err(e) = &result {
                tracing::error!(dir = %inner.dir.display(), error = %e, "raft log write failed; the node stops writing");
                inner.failed = true;
            }
            result
        })
        .await
    }
}

impl Inner {
    /// Entries with index in `[start, end)` that the log holds.
    fn read(&self, start: u64, end: u64) -> Result<Vec<Entry>, String> {
        let log_start = self.log.log_start_offset().get() as u64;
        let log_end = self.log.log_end_offset().get() as u64;
        let (mut next, end) = (start.max(log_start), end.min(log_end));
        let mut out = Vec::new();
        while next < end {
            let read = self
                .log
                .read(
                    Offset(next as i64),
                    READ_CHUNK_BYTES,
                    Some(Offset(end as i64)),
                    true,
                )
                .map_err(|e| e.to_string())?;
            if read.records.is_empty() {
                return Err(format!("nothing readable at {next} below {end}"));
            }
            for batch in Batches::new(read.records) {
                let batch = batch.map_err(|e| e.to_string())?;
                if batch.base_offset() < next as i64 {
                    continue;
                }
                if batch.base_offset() != next as i64 {
                    return Err(format!(
                        "entry {next} is missing (found {})",
                        batch.base_offset()
                    ));
                }
                out.push(decode_entry(&batch)?);
                next += 1;
            }
        }
        Ok(out)
    }

    /// The id of the last entry below `end`, if the log holds one.
    fn entry_before(&self, end: Offset) -> Result<Option<LogId>, String> {
        if end <= self.log.log_start_offset() {
            return Ok(None);
        }
        let last = end.get() as u64 - 1;
        Ok(self.read(last, last + 1)?.pop().map(|e| e.log_id))
    }
}

/// The `[start, end)` of a range of indexes.
fn bounds(range: &impl RangeBounds<u64>) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.saturating_add(1),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

fn read_err(e: String) -> StorageError {
    storage_error(ErrorSubject::Logs, ErrorVerb::Read, e)
}

fn write_err(e: String) -> StorageError {
    storage_error(ErrorSubject::Logs, ErrorVerb::Write, e)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + std::fmt::Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let (start, end) = bounds(&range);
        self.blocking(move |inner| inner.read(start, end))
            .await
            .map_err(read_err)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let (last_purged_log_id, last_log) = self
            .blocking(|inner| Ok((inner.last_purged, inner.last_log)))
            .await
            .map_err(read_err)?;
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last_log.or(last_purged_log_id),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let stored = StoredVote {
            term: vote.leader_id.term,
            node: vote.leader_id.node_id,
            committed: vote.committed,
        };
        self.mutate(move |inner| {
            state_file::write(&inner.dir, VOTE_FILE, &stored, true).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| storage_error(ErrorSubject::Vote, ErrorVerb::Write, e))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        let stored: Option<StoredVote> = self
            .blocking(|inner| state_file::read(&inner.dir, VOTE_FILE).map_err(|e| e.to_string()))
            .await
            .map_err(|e| storage_error(ErrorSubject::Vote, ErrorVerb::Read, e))?;
        Ok(stored.map(|v| {
            let mut vote = Vote::new(v.term, v.node);
            vote.committed = v.committed;
            vote
        }))
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let stored = committed.as_ref().map(StoredLogId::from);
        self.blocking(move |inner| {
            state_file::write(&inner.dir, COMMITTED_FILE, &stored, false).map_err(|e| e.to_string())
        })
        .await
        .map_err(write_err)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        let stored = self
            .blocking(|inner| {
                match state_file::read::<Option<StoredLogId>>(&inner.dir, COMMITTED_FILE) {
                    Ok(v) => Ok(v.flatten()),
                    // Only a hint (see the module docs): without it, the node waits
                    // for its leader to say what is committed.
                    Err(e) => {
                        tracing::warn!(error = %e, "ignoring an unreadable commit point");
                        Ok(None)
                    }
                }
            })
            .await
            .map_err(read_err)?;
        Ok(stored.map(LogId::from))
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut entries: Vec<Entry> = entries.into_iter().collect();
        if entries.is_empty() {
            callback.log_io_completed(Ok(()));
            return Ok(());
        }
        let result = self
            .mutate(move |inner| {
                let now_ms = inner.clock.now_ms();
                // An empty log may be handed entries that start later (a node that
                // joins a log whose start is gone): it starts there.
                let first = Offset(entries[0].log_id.index as i64);
                if inner.last_log.is_none() && first > inner.log.log_end_offset() {
                    inner
                        .log
                        .truncate_fully_and_start_at(first)
                        .map_err(|e| e.to_string())?;
                }
                // openraft appends only past the entries the log holds, and truncates
                // a conflicting tail first. Should it not, follow Raft's own rule
                // rather than fail: an entry the log already holds (same index and
                // term) is kept, never cut and written again (its fsynced copy may
                // have been acknowledged); the log is cut only at the first entry
                // that conflicts.
                let end = inner.log.log_end_offset();
                if first < end {
                    let from = entries[0].log_id.index;
                    let overlap_end = (end.get() as u64).min(from + entries.len() as u64);
                    let held = inner.read(from, overlap_end)?;
                    let same = held
                        .iter()
                        .zip(&entries)
                        .take_while(|(h, e)| h.log_id == e.log_id)
                        .count();
                    entries.drain(..same);
                    let Some(next) = entries.first() else {
                        return Ok(());
                    };
                    let first = Offset(next.log_id.index as i64);
                    if first < end {
                        tracing::warn!(
                            dir = %inner.dir.display(),
                            first = first.get(),
                            log_end_offset = end.get(),
                            "raft log: an append conflicts with the log; cutting the tail it replaces"
                        );
                        inner.log.truncate_to(first).map_err(|e| e.to_string())?;
                    }
                }
                let mut last: Option<LogId> = None;
                for e in &entries {
                    // Raft's log invariants (a violation is a bug in openraft's use of
                    // the store; checked in release builds too).
                    if let Some(prev) = last {
                        assert!(
                            e.log_id.index == prev.index + 1
                                && e.log_id.leader_id.term >= prev.leader_id.term,
                            "raft log append out of order: {prev} then {}",
                            e.log_id
                        );
                    }
                    let batch: Bytes = encode_entry(e, now_ms)?;
                    inner
                        .log
                        .append_as_follower(batch)
                        .map_err(|err| format!("append entry {}: {err}", e.log_id))?;
                    last = Some(e.log_id);
                }
                inner.log.flush().map_err(|e| format!("fsync: {e}"))?;
                let end = inner.log.log_end_offset();
                inner.log.set_high_watermark(end);
                inner.last_log = last;
                Ok(())
            })
            .await;
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.clone())));
                Err(write_err(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.mutate(move |inner| {
            let target = Offset(log_id.index as i64);
            inner.log.truncate_to(target).map_err(|e| e.to_string())?;
            let end = inner.log.log_end_offset();
            inner.log.set_high_watermark(end);
            inner.last_log = inner.entry_before(end)?;
            tracing::info!(from = %log_id, "raft log truncated");
            Ok(())
        })
        .await
        .map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.mutate(move |inner| {
            // The purge point is durable before any entry goes (see the module docs).
            let stored = StoredLogId::from(&log_id);
            state_file::write(&inner.dir, PURGED_FILE, &stored, true).map_err(|e| e.to_string())?;
            let start = Offset(log_id.index as i64 + 1);
            if start > inner.log.log_end_offset() {
                inner.log.truncate_fully_and_start_at(start)
            } else {
                inner.log.delete_records_before(start).map(|_| ())
            }
            .map_err(|e| e.to_string())?;
            let end = inner.log.log_end_offset();
            inner.log.set_high_watermark(end);
            inner.last_purged = Some(log_id);
            if inner.last_log.is_none_or(|l| l.index <= log_id.index) {
                inner.last_log = None;
            }
            tracing::debug!(upto = %log_id, "raft log purged");
            Ok(())
        })
        .await
        .map_err(write_err)
    }
}

#[cfg(test)]
#[path = "log_store_tests.rs"]
mod tests;
