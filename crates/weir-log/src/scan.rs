//! Sequential reading of a segment file: batch headers only (offset lookups), or
//! whole CRC-checked batches (recovery, timestamp search), a chunk of the file at a
//! time so a walk costs a few `pread`s rather than one per batch.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use bytes::{Bytes, BytesMut};
use weir_protocol::records::{BatchHeader, BatchView, RecordsError, HEADER_LEN, LOG_OVERHEAD};

use crate::error::{LogError, Result};

/// Reads the header of the batch at `position`, checking it fits before `end`.
pub(crate) fn read_header_at(
    file: &File,
    path: &Path,
    position: u64,
    end: u64,
) -> Result<BatchHeader> {
    let mut buf = [0u8; HEADER_LEN];
    if end.saturating_sub(position) < HEADER_LEN as u64 {
        return Err(LogError::CorruptRecord {
            reason: format!("batch header at byte {position} runs past the end"),
            path: Some(path.to_path_buf()),
        });
    }
    file.read_exact_at(&mut buf, position)
        .map_err(|e| LogError::io("read", path, e))?;
    BatchHeader::parse(&buf).map_err(|e| LogError::CorruptRecord {
        reason: format!("batch at byte {position}: {e}"),
        path: Some(path.to_path_buf()),
    })
}

/// Why a scan stopped early.
#[derive(Debug)]
pub(crate) enum ScanError {
    /// The disk failed.
    Io(LogError),
    /// The bytes at `position` are not a valid batch.
    Corrupt { position: u64, error: RecordsError },
}

impl ScanError {
    pub(crate) fn into_log_error(self, path: &Path) -> LogError {
        match self {
            ScanError::Io(e) => e,
            ScanError::Corrupt { position, error } => LogError::CorruptRecord {
                reason: format!("batch at byte {position}: {error}"),
                path: Some(path.to_path_buf()),
            },
        }
    }
}

/// Reads batches sequentially from a segment file, a chunk at a time.
#[derive(Debug)]
pub(crate) struct Scanner<'a> {
    file: &'a File,
    path: &'a Path,
    /// Position of the next batch.
    pos: u64,
    /// End of the valid data.
    end: u64,
    /// A window of the file starting at `buf_start`.
    buf: Bytes,
    buf_start: u64,
}

/// Bytes read per chunk while walking whole batches (recovery, timestamp search).
const BATCH_CHUNK: usize = 64 * 1024;
/// Bytes read per chunk while walking headers only (offset lookups): an index entry
/// is at most `index.interval.bytes` (4 KiB by default) before the batch sought.
const HEADER_CHUNK: usize = 4 * 1024;

impl<'a> Scanner<'a> {
    pub(crate) fn new(file: &'a File, path: &'a Path, pos: u64, end: u64) -> Scanner<'a> {
        Scanner {
            file,
            path,
            pos,
            end,
            buf: Bytes::new(),
            buf_start: pos,
        }
    }

    /// Makes `[pos, pos + need)` available in the buffer, reading at least `chunk`
    /// bytes when it must read; `need` fits before `end`.
    fn fill(&mut self, need: usize, chunk: usize) -> std::result::Result<(), ScanError> {
        let have_from = self.pos.checked_sub(self.buf_start);
        if let Some(rel) = have_from {
            if rel as usize + need <= self.buf.len() {
                return Ok(());
            }
        }
        let len = (need.max(chunk) as u64).min(self.end - self.pos) as usize;
        let mut buf = BytesMut::zeroed(len);
        self.file
            .read_exact_at(&mut buf, self.pos)
            .map_err(|e| ScanError::Io(LogError::io("read", self.path, e)))?;
        self.buf = buf.freeze();
        self.buf_start = self.pos;
        Ok(())
    }

    fn header(
        &mut self,
        chunk: usize,
    ) -> std::result::Result<Option<(u64, BatchHeader)>, ScanError> {
        if self.pos >= self.end {
            return Ok(None);
        }
        let position = self.pos;
        let corrupt = |error| ScanError::Corrupt { position, error };
        let left = self.end - self.pos;
        if left < HEADER_LEN as u64 {
            return Err(corrupt(RecordsError::TruncatedBatch {
                position: 0,
                needed: HEADER_LEN,
                available: left as usize,
            }));
        }
        self.fill(HEADER_LEN, chunk)?;
        let rel = (self.pos - self.buf_start) as usize;
        let h = BatchHeader::parse(&self.buf[rel..]).map_err(corrupt)?;
        if (h.total_len() as u64) > left {
            return Err(corrupt(RecordsError::TruncatedBatch {
                position: 0,
                needed: h.total_len(),
                available: left as usize,
            }));
        }
        debug_assert!(h.total_len() >= LOG_OVERHEAD);
        Ok(Some((position, h)))
    }

    /// The next batch's position and header, without reading or checking its body.
    pub(crate) fn next_header(
        &mut self,
    ) -> std::result::Result<Option<(u64, BatchHeader)>, ScanError> {
        let next = self.header(HEADER_CHUNK)?;
        if let Some((_, h)) = &next {
            self.pos += h.total_len() as u64;
        }
        Ok(next)
    }

    /// The next whole batch, CRC-checked.
    pub(crate) fn next_batch(
        &mut self,
    ) -> std::result::Result<Option<(u64, BatchView)>, ScanError> {
        let Some((position, h)) = self.header(BATCH_CHUNK)? else {
            return Ok(None);
        };
        self.fill(h.total_len(), BATCH_CHUNK)?;
        let rel = (self.pos - self.buf_start) as usize;
        let view = BatchView::parse(self.buf.slice(rel..rel + h.total_len()))
            .map_err(|error| ScanError::Corrupt { position, error })?;
        self.pos += h.total_len() as u64;
        Ok(Some((position, view)))
    }
}
