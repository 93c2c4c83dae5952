//! The metadata log as one local segment file.
//!
//! `<data-dir>/__cluster_metadata-0/00000000000000000000.log`, with the batches back
//! to back exactly as in a Kafka log segment, and nothing else (no indexes: the log
//! is only ever read whole, at startup). It was the first implementation, written
//! before weir-log was usable; it stays as the dependency-free reference for the
//! [`MetadataLog`] contract and runs the same recovery tests as
//! [`PartitionMetadataLog`](super::PartitionMetadataLog). A directory written by
//! one can be opened by the other.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tracing::{info, warn};
use weir_protocol::records::{BatchView, Batches};
use weir_types::Offset;

use super::{MetadataLog, MAX_LOG_BYTES, METADATA_LOG_DIR, SEGMENT_FILE};
use crate::error::{MetadataError, Result};

/// The metadata log as one local segment file; see the module docs.
#[derive(Debug)]
pub struct FileMetadataLog {
    /// The segment file's path, for errors and log lines.
    path: PathBuf,
    /// The segment, opened for appending.
    file: File,
    /// The log end offset.
    next_offset: Offset,
    /// Set by a failed write: the file's tail is unknown until recovery.
    failed: bool,
}

impl FileMetadataLog {
    /// Opens (or creates) the log in `<data_dir>/__cluster_metadata-0`, recovering it:
    /// a torn or corrupt tail is truncated (with a warning) and the valid prefix kept.
    pub fn open(data_dir: &Path) -> Result<Self> {
        let dir = data_dir.join(METADATA_LOG_DIR);
        if !dir.is_dir() {
            fs::create_dir_all(&dir).map_err(|e| MetadataError::io("create", &dir, e))?;
            sync_dir(data_dir)?;
        }
        let path = dir.join(SEGMENT_FILE);
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| MetadataError::io("open", &path, e))?;
        if !existed {
            sync_dir(&dir)?;
        }
        let buf = Bytes::from(read_whole(&mut file, &path)?);
        let (valid_len, next_offset, batches) = scan(buf.clone(), &path)?;
        if valid_len < buf.len() {
            warn!(
                path = %path.display(),
                valid_bytes = valid_len,
                dropped_bytes = buf.len() - valid_len,
                "metadata log: truncating a torn or corrupt tail"
            );
            file.set_len(valid_len as u64)
                .map_err(|e| MetadataError::io("truncate", &path, e))?;
            file.sync_all()
                .map_err(|e| MetadataError::io("fsync", &path, e))?;
        }
        info!(
            path = %path.display(),
            batches,
            next_offset = next_offset.get(),
            "metadata log opened"
        );
        Ok(FileMetadataLog {
            path,
            file,
            next_offset,
            failed: false,
        })
    }

    /// The segment file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl MetadataLog for FileMetadataLog {
    fn next_offset(&self) -> Offset {
        self.next_offset
    }

    fn append(&mut self, batch: Bytes) -> Result<()> {
        if self.failed {
            return Err(MetadataError::LogFailed);
        }
        let view = BatchView::parse(batch)?;
        // The store builds every batch at the log end; anything else is a bug.
        assert_eq!(
            view.base_offset(),
            self.next_offset.get(),
            "metadata batch appended away from the log end"
        );
        let next = Offset(view.next_offset());
        let result = self
            .file
            .write_all(view.as_bytes())
            .map_err(|e| MetadataError::io("write", &self.path, e))
            .and_then(|()| {
                self.file
                    .sync_data()
                    .map_err(|e| MetadataError::io("fsync", &self.path, e))
            });
        match result {
            Ok(()) => {
                self.next_offset = next;
                Ok(())
            }
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    fn read_all(&mut self) -> Result<Vec<BatchView>> {
        let mut file =
            File::open(&self.path).map_err(|e| MetadataError::io("open", &self.path, e))?;
        let buf = Bytes::from(read_whole(&mut file, &self.path)?);
        let mut out = Vec::new();
        for batch in Batches::new(buf) {
            // `open` truncated any bad tail, and appends write whole batches.
            out.push(batch.map_err(|e| MetadataError::Corrupt {
                path: self.path.clone(),
                reason: format!("after recovery: {e}"),
            })?);
        }
        Ok(out)
    }
}

fn read_whole(file: &mut File, path: &Path) -> Result<Vec<u8>> {
    let len = file
        .metadata()
        .map_err(|e| MetadataError::io("stat", path, e))?
        .len();
    if len > MAX_LOG_BYTES {
        return Err(MetadataError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("{len} bytes is more than the {MAX_LOG_BYTES} this build loads"),
        });
    }
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    // `take` bounds the read even if the file grows underneath.
    file.take(MAX_LOG_BYTES)
        .read_to_end(&mut buf)
        .map_err(|e| MetadataError::io("read", path, e))?;
    Ok(buf)
}

/// Walks the batches of `buf`: the length of the valid prefix, the next offset after
/// it, and the number of batches in it. Offsets that do not continue where the
/// previous batch ended are not a torn write but a log that cannot be trusted.
fn scan(buf: Bytes, path: &Path) -> Result<(usize, Offset, usize)> {
    let mut batches = Batches::new(buf);
    let mut next = Offset(0);
    let mut count = 0;
    loop {
        match batches.next() {
            None => break,
            Some(Ok(view)) => {
                if view.base_offset() != next.get() {
                    return Err(MetadataError::Corrupt {
                        path: path.to_path_buf(),
                        reason: format!(
                            "batch at offset {} where offset {next} was expected",
                            view.base_offset()
                        ),
                    });
                }
                next = Offset(view.next_offset());
                count += 1;
            }
            Some(Err(e)) => {
                warn!(path = %path.display(), position = batches.position(), error = %e,
                    "metadata log: invalid batch");
                break;
            }
        }
    }
    Ok((batches.position(), next, count))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| MetadataError::io("fsync", dir, e))
}
