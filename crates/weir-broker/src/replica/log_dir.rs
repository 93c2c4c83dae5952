//! Log directory failure: what "the log dir goes offline" means in Weir.
//!
//! A storage error (a full disk, EIO, a failed fsync; see
//! [`weir_log::LogError::is_storage_error`]) on any partition — while appending,
//! flushing, reading, deleting or creating a log — takes the whole `log.dirs` entry
//! holding it offline, as Kafka's `LogDirFailureChannel` does: the other partitions
//! there share the device, and writing on to a device that just failed would only
//! spread the damage. From then until the broker restarts:
//!
//! - every partition in the directory answers Produce, Fetch, ListOffsets,
//!   DeleteRecords and OffsetForLeaderEpoch with KAFKA_STORAGE_ERROR (retriable, so
//!   clients keep their data and retry), with a message naming the directory and
//!   the first error;
//! - Metadata lists this broker under the partitions' `offline_replicas`;
//! - acks=all produces waiting for an fsync there fail at once, not at their timeout;
//! - nothing more is written there: no flush, no retention, no checkpoint, no new
//!   partition log, and at shutdown no close and no clean-shutdown marker, so the
//!   next start recovers every log from its last checkpointed recovery point;
//! - the rest of the broker (other directories, Metadata, ApiVersions, the
//!   controller) keeps serving.
//!
//! Where Weir differs from Kafka: Kafka halts a broker whose every log directory is
//! offline. Weir stays up, so clients and operators get clear errors instead of a
//! dead port, and a restart after space is freed (or the disk replaced) brings the
//! directory back: recovery keeps exactly the valid prefix of every log, which
//! includes every acknowledged record.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use tokio::sync::watch;

/// The health of one `log.dirs` entry, shared by the manager and its partitions.
#[derive(Debug)]
pub(crate) struct LogDir {
    /// The directory.
    pub(crate) path: PathBuf,
    offline: AtomicBool,
    /// The first error, for messages.
    cause: Mutex<Option<String>>,
    /// Becomes true once, when the directory goes offline.
    failed: watch::Sender<bool>,
}

impl LogDir {
    pub(crate) fn new(path: PathBuf) -> LogDir {
        LogDir {
            path,
            offline: AtomicBool::new(false),
            cause: Mutex::new(None),
            failed: watch::Sender::new(false),
        }
    }

    /// Whether a storage error took the directory offline.
    pub(crate) fn is_offline(&self) -> bool {
        self.offline.load(Ordering::Acquire)
    }

    /// What took it offline ("" while online).
    pub(crate) fn cause(&self) -> String {
        self.cause
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_default()
    }

    /// Takes the directory offline after `cause` (later calls only log). Returns
    /// whether this call did it.
    pub(crate) fn fail(&self, cause: &str) -> bool {
        {
            let mut first = self.cause.lock().unwrap_or_else(PoisonError::into_inner);
            if first.is_none() {
                *first = Some(cause.to_owned());
            }
        }
        if self.offline.swap(true, Ordering::AcqRel) {
            return false;
        }
        tracing::error!(
            dir = %self.path.display(),
            cause,
            "log directory offline: its partitions answer KAFKA_STORAGE_ERROR until the broker restarts; free space or fix the disk, then restart"
        );
        self.failed.send_replace(true);
        true
    }

    /// Resolves once the directory is offline.
    pub(crate) async fn failed(&self) {
        let mut rx = self.failed.subscribe();
        // The sender lives in `self`, so the channel cannot close under us.
        let _ = rx.wait_for(|offline| *offline).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn goes_offline_once_and_keeps_the_first_cause() {
        let dir = LogDir::new("/data".into());
        assert!(!dir.is_offline());
        assert!(dir.fail("No space left on device"));
        assert!(!dir.fail("second"));
        assert!(dir.is_offline());
        assert_eq!(dir.cause(), "No space left on device");
        dir.failed().await;
    }
}
