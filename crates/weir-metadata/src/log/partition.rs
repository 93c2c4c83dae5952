//! The metadata log as a weir-log partition log.
//!
//! The store assigns offsets itself (the batch it builds starts at the log end), so
//! batches go in with [`Log::append_as_follower`], which keeps their offsets and
//! leader epochs, and every append is followed by a synchronous flush: the change is
//! acknowledged only once it is fsynced. Retention is off (the metadata log is
//! replayed whole until snapshots exist). Opening recovers every segment — the log
//! is small, and a torn tail must be cut before it is replayed.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use weir_log::{Log, LogConfig, OpenHints};
use weir_protocol::records::{BatchView, Batches};
use weir_types::{Clock, Offset};

use super::{MetadataLog, MAX_LOG_BYTES, METADATA_LOG_DIR};
use crate::error::{MetadataError, Result};

/// Bytes read per call while replaying (one segment window at a time).
const READ_CHUNK_BYTES: usize = 8 << 20;

/// A [`MetadataLog`] on weir-log; see the module docs.
pub struct PartitionMetadataLog {
    log: Log,
    /// Set when an append or flush failed: the log's tail is unknown until reopened.
    failed: bool,
}

impl std::fmt::Debug for PartitionMetadataLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionMetadataLog")
            .field("dir", &self.log.dir())
            .field("log_end_offset", &self.log.log_end_offset())
            .field("failed", &self.failed)
            .finish()
    }
}

impl PartitionMetadataLog {
    /// Opens (or creates) the log in `<data_dir>/__cluster_metadata-0`, recovering a
    /// torn or corrupt tail (weir-log truncates it with a warning).
    pub fn open(data_dir: &Path, clock: Arc<dyn Clock>) -> Result<Self> {
        let dir = data_dir.join(METADATA_LOG_DIR);
        let config = LogConfig {
            retention_ms: -1,
            retention_bytes: -1,
            ..LogConfig::default()
        };
        let (log, report) = Log::open_with_report(&dir, config, clock, OpenHints::default())?;
        if report.truncated {
            tracing::warn!(
                dir = %dir.display(),
                log_end_offset = log.log_end_offset().get(),
                "metadata log: a torn or corrupt tail was truncated; the valid prefix is kept"
            );
        }
        if log.size_bytes() > MAX_LOG_BYTES {
            return Err(MetadataError::Corrupt {
                path: dir,
                reason: format!(
                    "{} bytes is more than the {MAX_LOG_BYTES} this build replays",
                    log.size_bytes()
                ),
            });
        }
        Ok(PartitionMetadataLog { log, failed: false })
    }
}

impl MetadataLog for PartitionMetadataLog {
    fn next_offset(&self) -> Offset {
        self.log.log_end_offset()
    }

    fn append(&mut self, batch: Bytes) -> Result<()> {
        if self.failed {
            return Err(MetadataError::LogFailed);
        }
        let result = self
            .log
            .append_as_follower(batch)
            .and_then(|_| self.log.flush());
        if let Err(e) = result {
            self.failed = true;
            return Err(e.into());
        }
        let end = self.log.log_end_offset();
        self.log.set_high_watermark(end);
        Ok(())
    }

    fn read_all(&mut self) -> Result<Vec<BatchView>> {
        let end = self.log.log_end_offset();
        let mut offset = self.log.log_start_offset();
        let mut out = Vec::new();
        while offset < end {
            let read = self.log.read(offset, READ_CHUNK_BYTES, None, true)?;
            if read.records.is_empty() {
                return Err(MetadataError::Corrupt {
                    path: self.log.dir().to_path_buf(),
                    reason: format!("nothing readable at offset {offset} below the log end {end}"),
                });
            }
            for batch in Batches::new(read.records) {
                let batch = batch.map_err(|e| MetadataError::Corrupt {
                    path: self.log.dir().to_path_buf(),
                    reason: format!("after recovery: {e}"),
                })?;
                // A read starts at the batch holding `offset`; skip what was seen.
                if batch.last_offset() >= offset.get() {
                    offset = Offset(batch.next_offset());
                    out.push(batch);
                }
            }
        }
        Ok(out)
    }
}
