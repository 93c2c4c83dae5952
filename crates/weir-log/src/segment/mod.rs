//! One segment: a `.log` file of batches stored verbatim, its `.index` and
//! `.timeindex`, named by the segment's base offset (20 digits).
//!
//! The `.log` file is read and written with positioned I/O (`pread`/`pwrite`), never
//! mmapped: a truncated mmapped file turns reads into SIGBUS. `size` is the number of
//! bytes of whole, valid batches; an append writes at `size` and, if the write fails,
//! cuts the file back to `size` so no partial batch stays behind. The file handle is
//! an `Arc<File>` so a flusher can fsync it without the log's lock.

use std::fs::{self, File};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use weir_protocol::records::BatchHeader;
use weir_types::Offset;

use crate::config::LogConfig;
use crate::error::{LogError, Result};
use crate::index::offset::OffsetIndex;
use crate::index::time::TimeIndex;
use crate::scan::{ScanError, Scanner};

mod open;

/// Suffix of segment data files.
pub const LOG_SUFFIX: &str = ".log";
/// Suffix of offset index files.
pub const INDEX_SUFFIX: &str = ".index";
/// Suffix of time index files.
pub const TIME_INDEX_SUFFIX: &str = ".timeindex";

/// Kafka's "no timestamp".
pub(crate) const NO_TIMESTAMP: i64 = -1;

/// `<dir>/<20-digit base offset><suffix>`.
pub fn segment_file(dir: &Path, base_offset: Offset, suffix: &str) -> PathBuf {
    dir.join(format!("{:020}{suffix}", base_offset.get()))
}

/// What the segment needs to know of each batch it appends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AppendedBatch {
    /// Byte length of the batch.
    pub(crate) len: u32,
    /// The batch's last offset.
    pub(crate) last_offset: Offset,
    /// The batch's max timestamp.
    pub(crate) max_timestamp: i64,
}

impl AppendedBatch {
    pub(crate) fn of(h: &BatchHeader) -> AppendedBatch {
        AppendedBatch {
            len: h.total_len() as u32,
            last_offset: Offset(h.last_offset()),
            max_timestamp: h.max_timestamp(),
        }
    }
}

/// A segment of a partition's log.
#[derive(Debug)]
pub(crate) struct Segment {
    base_offset: Offset,
    log_path: PathBuf,
    log: Arc<File>,
    /// Bytes of whole batches in the file.
    size: u64,
    /// The offset after the last batch (`base_offset` when empty).
    next_offset: Offset,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    /// Batch bytes appended since the last index entry.
    bytes_since_last_index: u64,
    /// Largest batch max timestamp so far, or [`NO_TIMESTAMP`].
    max_timestamp: i64,
    /// Last offset of the first batch that reached `max_timestamp`.
    offset_of_max_timestamp: Offset,
    /// Max timestamp of the first batch: what `segment.ms` counts from (Kafka's
    /// `rollingBasedTimestamp`); `None` while empty.
    first_batch_timestamp: Option<i64>,
    /// Clock time the segment was created or opened, for `segment.ms` without
    /// timestamps.
    created_ms: i64,
}

impl Segment {
    /// Walks headers from `start` to the end of the file; returns the next offset and
    /// the largest (timestamp, last offset) seen. Errors describe what is wrong.
    fn scan_tail(
        &self,
        start: u64,
    ) -> std::result::Result<(Offset, Option<(i64, Offset)>), String> {
        let mut scanner = Scanner::new(&self.log, &self.log_path, start, self.size);
        let mut next = self.base_offset;
        let mut max: Option<(i64, Offset)> = None;
        loop {
            match scanner.next_header() {
                Ok(None) => return Ok((next, max)),
                Ok(Some((_, h))) => {
                    if h.base_offset() < next.get() {
                        return Err(format!("offsets go backwards at {}", h.base_offset()));
                    }
                    next = Offset(h.next_offset());
                    if max.is_none_or(|(ts, _)| h.max_timestamp() > ts) {
                        max = Some((h.max_timestamp(), Offset(h.last_offset())));
                    }
                }
                Err(ScanError::Io(e)) => return Err(e.to_string()),
                Err(ScanError::Corrupt { position, error }) => {
                    return Err(format!("batch at byte {position}: {error}"))
                }
            }
        }
    }

    pub(crate) fn base_offset(&self) -> Offset {
        self.base_offset
    }

    pub(crate) fn next_offset(&self) -> Offset {
        self.next_offset
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.size == 0
    }

    pub(crate) fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }

    pub(crate) fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The newest timestamp for `retention.ms`: the max record timestamp, or the
    /// file's modification time when the batches carry none (as Kafka does).
    pub(crate) fn largest_timestamp(&self) -> i64 {
        if self.max_timestamp >= 0 {
            return self.max_timestamp;
        }
        self.log
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(NO_TIMESTAMP, |d| {
                i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
            })
    }

    /// Kafka's `shouldRoll`: whether an append of `append_bytes` bytes, whose first
    /// batch has `first_max_timestamp` and whose last offset is `last_offset`, must
    /// go to a new segment.
    pub(crate) fn should_roll(
        &self,
        config: &LogConfig,
        append_bytes: u64,
        first_max_timestamp: i64,
        last_offset: Offset,
        now_ms: i64,
    ) -> bool {
        if self.offset_index.is_full() || self.time_index.is_full() {
            return true;
        }
        if last_offset.get() - self.base_offset.get() > i64::from(i32::MAX) {
            return true;
        }
        if self.is_empty() {
            return false;
        }
        if self.size + append_bytes > config.segment_bytes {
            return true;
        }
        let waited = match self.first_batch_timestamp {
            Some(first) if first >= 0 && first_max_timestamp >= 0 => {
                first_max_timestamp.saturating_sub(first)
            }
            _ => now_ms.saturating_sub(self.created_ms),
        };
        waited > config.segment_ms.saturating_sub(config.segment_jitter_ms)
    }

    /// Appends `bytes` (whole batches described by `batches`) at the end. On a write
    /// error the file is cut back to its previous size; if even that fails the error
    /// is returned as `Err(Err(_))` so the log can go offline.
    pub(crate) fn append(
        &mut self,
        bytes: &[u8],
        batches: &[AppendedBatch],
        config: &LogConfig,
    ) -> std::result::Result<(), std::result::Result<LogError, LogError>> {
        let start = self.size;
        if let Err(e) = self.log.write_all_at(bytes, start) {
            let err = LogError::io("write", &self.log_path, e);
            return Err(match self.log.set_len(start) {
                Ok(()) => Ok(err),
                Err(undo) => {
                    tracing::error!(segment = %self.log_path.display(), %err, %undo, "cannot undo a failed append");
                    Err(err)
                }
            });
        }
        let mut pos = start;
        for b in batches {
            // An index write failed after the data was written: the in-memory state is
            // half updated, so the log must go offline (reopening recovers).
            self.track(pos, *b, config).map_err(Err)?;
            pos += u64::from(b.len);
        }
        debug_assert_eq!(pos - start, bytes.len() as u64);
        self.size = pos;
        Ok(())
    }

    /// Updates offsets, timestamps and indexes for a batch written at `pos`.
    fn track(&mut self, pos: u64, b: AppendedBatch, config: &LogConfig) -> Result<()> {
        assert!(
            b.last_offset >= self.next_offset,
            "segment {} offsets must increase: next {} then last {}",
            self.base_offset,
            self.next_offset,
            b.last_offset
        );
        if self.first_batch_timestamp.is_none() {
            self.first_batch_timestamp = Some(b.max_timestamp);
        }
        if b.max_timestamp > self.max_timestamp {
            self.max_timestamp = b.max_timestamp;
            self.offset_of_max_timestamp = b.last_offset;
        }
        if self.bytes_since_last_index > u64::from(config.index_interval_bytes) {
            let position = u32::try_from(pos).map_err(|_| LogError::InvalidConfig {
                name: "segment.bytes".into(),
                reason: "segment position exceeds 32 bits".into(),
            })?;
            self.offset_index.append(b.last_offset, position)?;
            if self.max_timestamp >= 0 {
                self.time_index
                    .maybe_append(self.max_timestamp, self.offset_of_max_timestamp)?;
            }
            self.bytes_since_last_index = 0;
        }
        self.bytes_since_last_index += u64::from(b.len);
        self.next_offset = Offset(b.last_offset.get() + 1);
        self.size = self.size.max(pos + u64::from(b.len));
        Ok(())
    }

    /// Cuts the segment at byte `position` (a batch boundary).
    fn truncate_bytes(&mut self, position: u64) -> Result<()> {
        self.log
            .set_len(position)
            .map_err(|e| LogError::io("truncate", &self.log_path, e))?;
        self.size = position;
        Ok(())
    }

    /// Removes every batch whose last offset is `>= offset` (the batch holding
    /// `offset` goes too). Returns the bytes removed.
    pub(crate) fn truncate_to(&mut self, offset: Offset) -> Result<u64> {
        let Some((position, _)) = self.find_batch(offset)? else {
            return Ok(0);
        };
        let removed = self.size - position;
        let pos32 = position as u32;
        self.offset_index.truncate_to_position(pos32)?;
        self.time_index.truncate_to(offset)?;
        self.truncate_bytes(position)?;
        // Recompute the tail state from the last index entry still standing.
        let from = self.offset_index.last().map_or(0, |(_, pos)| pos);
        let (next, tail_max) =
            self.scan_tail(u64::from(from))
                .map_err(|reason| LogError::CorruptRecord {
                    reason,
                    path: Some(self.log_path.clone()),
                })?;
        self.next_offset = if self.size == 0 {
            self.base_offset
        } else {
            next
        };
        self.max_timestamp = NO_TIMESTAMP;
        self.offset_of_max_timestamp = self.base_offset;
        if let Some((ts, off)) = self.time_index.last() {
            self.max_timestamp = ts;
            self.offset_of_max_timestamp = off;
        }
        if let Some((ts, off)) = tail_max {
            if ts > self.max_timestamp {
                self.max_timestamp = ts;
                self.offset_of_max_timestamp = off;
            }
        }
        self.bytes_since_last_index = self.size - u64::from(from);
        if self.size == 0 {
            self.first_batch_timestamp = None;
        }
        Ok(removed)
    }

    /// The position and header of the first batch whose last offset is `>= target`.
    pub(crate) fn find_batch(&self, target: Offset) -> Result<Option<(u64, BatchHeader)>> {
        let start = self.offset_index.lookup(target);
        let mut scanner = Scanner::new(&self.log, &self.log_path, u64::from(start), self.size);
        loop {
            match scanner.next_header() {
                Ok(None) => return Ok(None),
                Ok(Some((pos, h))) if h.last_offset() >= target.get() => return Ok(Some((pos, h))),
                Ok(Some(_)) => {}
                Err(e) => return Err(e.into_log_error(&self.log_path)),
            }
        }
    }

    /// A scanner over this segment's batches from byte `position`.
    pub(crate) fn scanner(&self, position: u64) -> Scanner<'_> {
        Scanner::new(&self.log, &self.log_path, position, self.size)
    }

    /// The offset to start a timestamp search at (see [`TimeIndex::lookup`]) and the
    /// byte position to scan from.
    pub(crate) fn timestamp_search_start(&self, target_ms: i64, min_offset: Offset) -> u64 {
        // Batches before `from`'s have only smaller timestamps, batches ending before
        // `min_offset` do not count: start at the index floor of the later of the two.
        let from = self
            .time_index
            .lookup(target_ms)
            .unwrap_or(self.base_offset);
        u64::from(self.offset_index.lookup(from.max(min_offset)))
    }

    /// Reads `len` bytes at `position`.
    pub(crate) fn read_at(&self, position: u64, len: usize) -> Result<Bytes> {
        let mut buf = BytesMut::zeroed(len);
        self.log
            .read_exact_at(&mut buf, position)
            .map_err(|e| LogError::io("read", &self.log_path, e))?;
        Ok(buf.freeze())
    }

    /// Adds the final time index entry (the segment's max timestamp) when the segment
    /// stops being active or the log closes, so the next open knows the max exactly.
    pub(crate) fn finalize_time_index(&mut self) -> Result<()> {
        if self.max_timestamp >= 0 {
            self.time_index
                .maybe_append(self.max_timestamp, self.offset_of_max_timestamp)?;
        }
        Ok(())
    }

    /// Handles to fsync: the `.log` file, plus the index files when `with_indexes`.
    pub(crate) fn sync_targets(&self, with_indexes: bool, out: &mut Vec<(Arc<File>, PathBuf)>) {
        out.push((Arc::clone(&self.log), self.log_path.clone()));
        if with_indexes {
            let oi = self.offset_index.file();
            out.push((Arc::clone(oi.file()), oi.path().to_path_buf()));
            let ti = self.time_index.file();
            out.push((Arc::clone(ti.file()), ti.path().to_path_buf()));
        }
    }

    /// fsyncs the data and the indexes.
    pub(crate) fn sync_all(&self) -> Result<()> {
        self.log
            .sync_data()
            .map_err(|e| LogError::io("fsync", &self.log_path, e))?;
        self.offset_index.file().sync()?;
        self.time_index.file().sync()
    }

    /// Deletes the segment's files.
    pub(crate) fn delete(self) -> Result<()> {
        remove_if_exists(&self.log_path)?;
        self.offset_index.file().remove_file()?;
        self.time_index.file().remove_file()
    }
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LogError::io("remove", path, e)),
    }
}
