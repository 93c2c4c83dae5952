//! Sparse segment indexes: `.index` (offset -> file position) and `.timeindex`
//! (timestamp -> offset), in Kafka's big-endian entry layouts.
//!
//! Both are append-only files whose entries are also kept in memory (a `Vec`), so a
//! lookup is a binary search with no I/O. Files are never preallocated: their size is
//! a whole number of entries, and a file that is not, or whose entries are not in
//! order, or point past the data, fails [`IndexFile::load`]'s checks and is rebuilt
//! from the segment by the caller. Indexes are derived data: the `.log` file is the
//! truth, so index writes are not fsynced on the append path.

pub(crate) mod offset;
pub(crate) mod time;

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{LogError, Result};

/// A fixed-size index entry.
pub(crate) trait Entry: Copy + std::fmt::Debug {
    /// Encoded size in bytes.
    const SIZE: usize;
    /// Big-endian encoding.
    fn encode(&self, out: &mut [u8]);
    /// Decoding of exactly `SIZE` bytes.
    fn decode(bytes: &[u8]) -> Self;
}

/// Entries of one index, in memory and in their file.
#[derive(Debug)]
pub(crate) struct IndexFile<E: Entry> {
    path: PathBuf,
    file: Arc<File>,
    entries: Vec<E>,
    max_entries: usize,
}

/// Why a loaded index cannot be trusted (the caller rebuilds it).
#[derive(Debug)]
pub(crate) struct IndexDamaged(pub(crate) String);

impl<E: Entry> IndexFile<E> {
    /// Opens (creating if missing) and reads the index, returning its entries for the
    /// caller to check. An I/O error is an error; bad content is `Ok(Err(_))`.
    pub(crate) fn load(
        path: &Path,
        max_bytes: u64,
    ) -> Result<(IndexFile<E>, std::result::Result<(), IndexDamaged>)> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| LogError::io("open", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| LogError::io("stat", path, e))?
            .len();
        let mut index = IndexFile {
            path: path.to_path_buf(),
            file: Arc::new(file),
            entries: Vec::new(),
            max_entries: (max_bytes / E::SIZE as u64).max(1) as usize,
        };
        if len % E::SIZE as u64 != 0 {
            return Ok((
                index,
                Err(IndexDamaged(format!(
                    "size {len} is not a multiple of {}",
                    E::SIZE
                ))),
            ));
        }
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len / E::SIZE > index.max_entries.max(1 << 26) {
            return Ok((index, Err(IndexDamaged(format!("size {len} is too large")))));
        }
        let mut buf = vec![0u8; len];
        index
            .file
            .read_exact_at(&mut buf, 0)
            .map_err(|e| LogError::io("read", path, e))?;
        index.entries = buf.chunks_exact(E::SIZE).map(E::decode).collect();
        Ok((index, Ok(())))
    }

    /// Drops all entries, in memory and on disk (before a rebuild).
    pub(crate) fn reset(&mut self) -> Result<()> {
        self.truncate_entries(0)
    }

    pub(crate) fn entries(&self) -> &[E] {
        &self.entries
    }

    pub(crate) fn last(&self) -> Option<E> {
        self.entries.last().copied()
    }

    pub(crate) fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    /// Appends one entry (the caller checked ordering).
    pub(crate) fn push(&mut self, entry: E) -> Result<()> {
        let mut buf = [0u8; 16];
        let bytes = &mut buf[..E::SIZE];
        entry.encode(bytes);
        let pos = (self.entries.len() * E::SIZE) as u64;
        self.file
            .write_all_at(bytes, pos)
            .map_err(|e| LogError::io("write", &self.path, e))?;
        self.entries.push(entry);
        Ok(())
    }

    /// Keeps the first `n` entries.
    pub(crate) fn truncate_entries(&mut self, n: usize) -> Result<()> {
        self.entries.truncate(n);
        self.file
            .set_len((n * E::SIZE) as u64)
            .map_err(|e| LogError::io("truncate", &self.path, e))
    }

    /// The shared file handle, for a flush outside the log's lock.
    pub(crate) fn file(&self) -> &Arc<File> {
        &self.file
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn sync(&self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| LogError::io("fsync", &self.path, e))
    }

    /// Removes the file (a missing file is fine).
    pub(crate) fn remove_file(&self) -> Result<()> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(LogError::io("remove", &self.path, e)),
        }
    }
}
