//! The data-directory lock: one broker per directory.
//!
//! Two brokers appending to the same segment files would corrupt them, so a broker
//! holds an exclusive lock on `<dir>/.lock` for as long as it runs (as Kafka does).
//! The lock is the OS's advisory file lock (`File::try_lock`), which the kernel
//! releases when the process ends, however it ends: no stale lock after a crash.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// The lock file's name inside a data directory.
const LOCK_FILE: &str = ".lock";

/// An exclusive lock on a data directory, held until dropped.
#[derive(Debug)]
pub(crate) struct DataDirLock {
    /// Holding the open file holds the lock.
    _file: File,
    /// The lock file, for log lines.
    path: PathBuf,
}

impl DataDirLock {
    /// Creates `dir` if needed and locks it, or explains who holds it.
    pub(crate) fn acquire(dir: &Path) -> anyhow::Result<Self> {
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create data directory {}", dir.display()))?;
        let path = dir.join(LOCK_FILE);
        // No truncation on open: the file holds the owner's pid until we own it.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let owner = fs::read_to_string(&path)
                    .ok()
                    .and_then(|text| text.trim().parse::<u32>().ok())
                    .map(|pid| format!(" (pid {pid})"))
                    .unwrap_or_default();
                bail!(
                    "data directory {} is locked by another weir process{owner}: stop that \
                     broker or choose another --data-dir",
                    dir.display()
                );
            }
            Err(TryLockError::Error(error)) => {
                return Err(error).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
        // The pid is only for the message above; failing to write it is harmless.
        let _ = file
            .set_len(0)
            .and_then(|()| writeln!(file, "{}", std::process::id()));
        Ok(Self { _file: file, path })
    }

    /// The lock file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_the_same_dir_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let first = DataDirLock::acquire(&data).expect("first lock");
        assert_eq!(first.path(), data.join(".lock"));
        let error = DataDirLock::acquire(&data).expect_err("second lock must fail");
        let message = error.to_string();
        assert!(
            message.contains("is locked by another weir process"),
            "{message}"
        );
        assert!(message.contains(&data.display().to_string()), "{message}");
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        drop(first);
        assert!(DataDirLock::acquire(&data).is_ok());
    }
}
