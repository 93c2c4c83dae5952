//! Making a [`Segment`]: creating an empty one, opening a trusted one (indexes
//! loaded and sanity-checked), or opening and recovering one batch by batch.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use weir_protocol::records::BatchHeader;
use weir_types::Offset;

use super::{
    remove_if_exists, segment_file, AppendedBatch, Segment, INDEX_SUFFIX, LOG_SUFFIX, NO_TIMESTAMP,
    TIME_INDEX_SUFFIX,
};
use crate::config::LogConfig;
use crate::error::{LogError, Result};
use crate::index::offset::OffsetIndex;
use crate::index::time::TimeIndex;
use crate::scan::{read_header_at, ScanError, Scanner};

impl Segment {
    /// Creates an empty segment at `base_offset`, replacing stale files of that name.
    pub(crate) fn create(
        dir: &Path,
        base_offset: Offset,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<Segment> {
        for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            remove_if_exists(&segment_file(dir, base_offset, suffix))?;
        }
        let log_path = segment_file(dir, base_offset, LOG_SUFFIX);
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)
            .map_err(|e| LogError::io("create", &log_path, e))?;
        Self::with_files(dir, base_offset, log_path, log, config, now_ms, true)
    }

    /// Opens an existing segment and validates every batch from the start, truncating
    /// the file at the first invalid one and rebuilding both indexes. `min_offset` is
    /// the smallest base offset the first batch may have (the previous segment's end).
    /// With `contiguous` (every topic but compacted ones, whose logs have gaps), the
    /// first batch must start at the segment's base offset and each batch right after
    /// the previous one: baseOffset is outside the CRC, so this is what catches a
    /// damaged one. `on_batch` sees each valid batch in order. Returns the segment and
    /// whether bytes were cut.
    pub(crate) fn open_and_recover(
        dir: &Path,
        base_offset: Offset,
        config: &LogConfig,
        now_ms: i64,
        min_offset: Offset,
        contiguous: bool,
        mut on_batch: impl FnMut(&BatchHeader),
    ) -> Result<(Segment, bool)> {
        let mut seg = Self::open_files(dir, base_offset, config, now_ms)?;
        let file_len = seg.file_len()?;
        seg.offset_index.reset()?;
        seg.time_index.reset()?;
        let log = Arc::clone(&seg.log);
        let path = seg.log_path.clone();
        let mut scanner = Scanner::new(&log, &path, 0, file_len);
        let mut expected = if contiguous {
            base_offset
        } else {
            min_offset.max(base_offset)
        };
        let mut cut_reason = None;
        loop {
            match scanner.next_batch() {
                Ok(None) => break,
                Ok(Some((pos, view))) => {
                    let h = *view.header();
                    let relative_end = h.last_offset() - base_offset.get();
                    let out_of_order = if contiguous {
                        h.base_offset() != expected.get()
                    } else {
                        h.base_offset() < expected.get()
                    };
                    if out_of_order || relative_end > i64::from(i32::MAX) {
                        cut_reason = Some(format!(
                            "batch at byte {pos} has offsets {}..={}, expected from {expected}",
                            h.base_offset(),
                            h.last_offset()
                        ));
                        break;
                    }
                    expected = Offset(h.next_offset());
                    on_batch(&h);
                    seg.track(pos, AppendedBatch::of(&h), config)?;
                }
                Err(ScanError::Io(e)) => return Err(e),
                Err(ScanError::Corrupt { position, error }) => {
                    cut_reason = Some(format!("batch at byte {position}: {error}"));
                    break;
                }
            }
        }
        let truncated = seg.size < file_len;
        if truncated {
            tracing::warn!(
                segment = %seg.log_path.display(),
                valid_bytes = seg.size,
                cut_bytes = file_len - seg.size,
                reason = cut_reason.as_deref().unwrap_or("trailing bytes"),
                "recovery truncates a torn or corrupt segment tail"
            );
            seg.truncate_bytes(seg.size)?;
        }
        Ok((seg, truncated))
    }

    /// Opens an existing segment that is trusted (below the recovery point, or after a
    /// clean shutdown): loads the indexes, and rebuilds them if they fail their checks.
    /// `end_hint` is the next segment's base offset, an upper bound for this one's data.
    /// `Ok(Err(reason))`: something does not add up and the segment needs recovery.
    pub(crate) fn open_trusted(
        dir: &Path,
        base_offset: Offset,
        config: &LogConfig,
        now_ms: i64,
        end_hint: Option<Offset>,
    ) -> Result<std::result::Result<Segment, String>> {
        let mut seg = Self::open_files(dir, base_offset, config, now_ms)?;
        seg.size = seg.file_len()?;
        let (offset_index, status) = OffsetIndex::load(
            &segment_file(dir, base_offset, INDEX_SUFFIX),
            base_offset,
            config.segment_index_bytes,
            seg.size,
        )?;
        seg.offset_index = offset_index;
        let mut damaged = status.err().map(|d| d.0);
        if let (None, Some((last, pos))) = (&damaged, seg.offset_index.last()) {
            // The last entry is the one a torn index write would break: check that it
            // points at the batch it names.
            match read_header_at(&seg.log, &seg.log_path, u64::from(pos), seg.size) {
                Ok(h) if h.last_offset() == last.get() => {}
                _ => {
                    damaged = Some(format!(
                        "last index entry ({last}, {pos}) does not match the data"
                    ))
                }
            }
        }
        // The next offset: walk headers from the last indexed batch to the end.
        let start = seg.offset_index.last().map_or(0, |(_, pos)| pos);
        match seg.scan_tail(u64::from(start)) {
            Ok((next, tail_max)) => {
                seg.next_offset = next;
                let (time_index, status) = TimeIndex::load(
                    &segment_file(dir, base_offset, TIME_INDEX_SUFFIX),
                    base_offset,
                    config.segment_index_bytes,
                    next,
                )?;
                seg.time_index = time_index;
                if let Err(d) = status {
                    damaged.get_or_insert(d.0);
                }
                if let Some((ts, off)) = seg.time_index.last() {
                    seg.max_timestamp = ts;
                    seg.offset_of_max_timestamp = off;
                }
                if let Some((ts, off)) = tail_max {
                    if ts > seg.max_timestamp {
                        seg.max_timestamp = ts;
                        seg.offset_of_max_timestamp = off;
                    }
                }
                if end_hint.is_some_and(|end| next > end) {
                    damaged.get_or_insert(format!("data runs past the next segment ({next})"));
                }
            }
            Err(reason) => {
                damaged.get_or_insert(reason);
            }
        }
        if let Some(reason) = damaged {
            return Ok(Err(reason));
        }
        seg.first_batch_timestamp = if seg.size > 0 {
            read_header_at(&seg.log, &seg.log_path, 0, seg.size)
                .ok()
                .map(|h| h.max_timestamp())
        } else {
            None
        };
        seg.bytes_since_last_index = seg.size - u64::from(start);
        Ok(Ok(seg))
    }

    fn open_files(
        dir: &Path,
        base_offset: Offset,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<Segment> {
        let log_path = segment_file(dir, base_offset, LOG_SUFFIX);
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log_path)
            .map_err(|e| LogError::io("open", &log_path, e))?;
        Self::with_files(dir, base_offset, log_path, log, config, now_ms, false)
    }

    /// Loads the indexes beside an opened `.log` file and returns the segment with no
    /// batches counted yet. A `fresh` segment has an empty log, so its index entries
    /// must point at position 0 and the base offset; an existing one is bounded later
    /// by validation against the data.
    fn with_files(
        dir: &Path,
        base_offset: Offset,
        log_path: PathBuf,
        log: File,
        config: &LogConfig,
        now_ms: i64,
        fresh: bool,
    ) -> Result<Segment> {
        let (max_position, max_offset) = if fresh {
            (0, base_offset)
        } else {
            (u64::MAX, Offset(i64::MAX))
        };
        let (offset_index, _) = OffsetIndex::load(
            &segment_file(dir, base_offset, INDEX_SUFFIX),
            base_offset,
            config.segment_index_bytes,
            max_position,
        )?;
        let (time_index, _) = TimeIndex::load(
            &segment_file(dir, base_offset, TIME_INDEX_SUFFIX),
            base_offset,
            config.segment_index_bytes,
            max_offset,
        )?;
        Ok(Segment {
            base_offset,
            log_path,
            log: Arc::new(log),
            size: 0,
            next_offset: base_offset,
            offset_index,
            time_index,
            bytes_since_last_index: 0,
            max_timestamp: NO_TIMESTAMP,
            offset_of_max_timestamp: base_offset,
            first_batch_timestamp: None,
            created_ms: now_ms,
        })
    }

    fn file_len(&self) -> Result<u64> {
        Ok(self
            .log
            .metadata()
            .map_err(|e| LogError::io("stat", &self.log_path, e))?
            .len())
    }
}
