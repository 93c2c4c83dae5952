//! The log's errors, and the one place they become Kafka error codes.
//!
//! Two kinds of failure live here and must not be confused:
//!
//! - bad input (a client's batch with a wrong CRC, a too-large batch, an out-of-order
//!   sequence) is rejected before anything is written and leaves the log untouched;
//! - a disk failure (an I/O error, bytes on disk that do not parse) is reported with
//!   the path it concerns. Appends undo their partial write; when even that fails the
//!   log goes offline and every later call returns [`LogError::Offline`].
//!
//! Nothing read from disk is trusted enough to panic on: corrupt files are errors.

use std::io;
use std::path::PathBuf;

use thiserror::Error;
use weir_types::{ErrorCode, Offset, ProducerEpoch, ProducerId, Sequence};

/// Why a log operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LogError {
    /// The operating system refused an I/O call on `path`.
    #[error("I/O error while trying to {op} {}: {source}", path.display())]
    Io {
        /// What was being done ("write", "fsync", "open", ...).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A batch failed validation of its framing or checksum: a client sent bad bytes,
    /// or (when `path` is set) a file on disk is damaged.
    #[error("corrupt record batch{}: {reason}", at_path(path))]
    CorruptRecord {
        /// What was wrong.
        reason: String,
        /// The segment file, when the bytes came from disk.
        path: Option<PathBuf>,
    },
    /// A batch is larger than `max.message.bytes`.
    #[error("record batch of {size} bytes exceeds max.message.bytes ({max})")]
    MessageTooLarge {
        /// The batch's size in bytes.
        size: usize,
        /// The topic's `max.message.bytes`.
        max: usize,
    },
    /// One append is larger than a whole segment (`segment.bytes`).
    #[error("append of {size} bytes is larger than segment.bytes ({max})")]
    RecordListTooLarge {
        /// Bytes in the append.
        size: usize,
        /// The topic's `segment.bytes`.
        max: usize,
    },
    /// The requested offset is outside `[log start offset, log end offset]`.
    #[error("offset {offset} is out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        /// The requested offset.
        offset: Offset,
        /// The first offset still in the log.
        log_start_offset: Offset,
        /// The offset the next record will get.
        log_end_offset: Offset,
    },
    /// A well-formed batch that breaks a rule of the log (a control batch from a
    /// client, an inconsistent record count, a non-v2 magic byte, ...).
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// A record timestamp outside the window `message.timestamp.{before,after}.max.ms`.
    #[error("timestamp {timestamp} is out of the accepted range around {now_ms} ({reason})")]
    InvalidTimestamp {
        /// The offending timestamp.
        timestamp: i64,
        /// The broker's time when validating.
        now_ms: i64,
        /// Which limit was crossed.
        reason: &'static str,
    },
    /// An idempotent producer's sequence does not follow the last one we stored.
    #[error("out of order sequence for producer {producer_id}: got {got}, last stored {last}")]
    OutOfOrderSequence {
        /// The producer.
        producer_id: ProducerId,
        /// The batch's first sequence.
        got: Sequence,
        /// The last sequence the log holds for this producer and epoch (-1 if none).
        last: Sequence,
    },
    /// A producer writes with an epoch older than one the log already holds.
    #[error("producer {producer_id} used epoch {got}, older than the current {current}")]
    InvalidProducerEpoch {
        /// The producer.
        producer_id: ProducerId,
        /// The epoch in the batch.
        got: ProducerEpoch,
        /// The newest epoch stored for the producer.
        current: ProducerEpoch,
    },
    /// A follower append that does not start at the log end offset, or whose
    /// batches are not in offset order.
    #[error("unexpected append offset {first_offset}: log end offset is {log_end_offset}")]
    UnexpectedAppendOffset {
        /// The first offset of the appended data.
        first_offset: Offset,
        /// The log end offset when appending.
        log_end_offset: Offset,
    },
    /// A topic configuration value that cannot be used.
    #[error("invalid value for {name}: {reason}")]
    InvalidConfig {
        /// The Kafka config name (`segment.bytes`, ...).
        name: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A checkpoint or snapshot file that cannot be parsed.
    #[error("corrupt checkpoint {}: {reason}", path.display())]
    CorruptCheckpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An earlier I/O failure left the log in a state it could not undo; it refuses
    /// all further work until it is reopened (which runs recovery).
    #[error("log {} is offline after an unrecoverable I/O error", dir.display())]
    Offline {
        /// The partition directory.
        dir: PathBuf,
    },
}

fn at_path(path: &Option<PathBuf>) -> String {
    match path {
        Some(p) => format!(" in {}", p.display()),
        None => String::new(),
    }
}

impl LogError {
    /// The Kafka error code a client should see for this error.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            LogError::Io { .. } | LogError::Offline { .. } | LogError::CorruptCheckpoint { .. } => {
                ErrorCode::KafkaStorageError
            }
            // Corruption found on disk is a storage problem, not the client's.
            LogError::CorruptRecord { path: Some(_), .. } => ErrorCode::KafkaStorageError,
            LogError::CorruptRecord { path: None, .. } => ErrorCode::CorruptMessage,
            LogError::MessageTooLarge { .. } => ErrorCode::MessageTooLarge,
            LogError::RecordListTooLarge { .. } => ErrorCode::RecordListTooLarge,
            LogError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
            LogError::InvalidRecord(_) => ErrorCode::InvalidRecord,
            LogError::InvalidTimestamp { .. } => ErrorCode::InvalidTimestamp,
            LogError::OutOfOrderSequence { .. } => ErrorCode::OutOfOrderSequenceNumber,
            LogError::InvalidProducerEpoch { .. } => ErrorCode::InvalidProducerEpoch,
            LogError::UnexpectedAppendOffset { .. } => ErrorCode::UnknownServerError,
            LogError::InvalidConfig { .. } => ErrorCode::InvalidConfig,
        }
    }

    /// Whether this is a failure of the storage rather than of the caller's input:
    /// an I/O error (a full disk, a failing device), damage found in files on disk,
    /// or a log already offline. A mutation that fails this way takes the log
    /// offline (see `failure.rs`), and the broker takes the whole log directory
    /// offline; the client sees KAFKA_STORAGE_ERROR.
    pub fn is_storage_error(&self) -> bool {
        matches!(
            self,
            LogError::Io { .. }
                | LogError::Offline { .. }
                | LogError::CorruptCheckpoint { .. }
                | LogError::CorruptRecord { path: Some(_), .. }
        )
    }

    /// Whether the OS said the device has no space left (ENOSPC) or the quota is
    /// exhausted (EDQUOT), for log lines that tell the operator what to do.
    pub fn is_disk_full(&self) -> bool {
        match self {
            LogError::Io { source, .. } => {
                source.kind() == io::ErrorKind::StorageFull
                    || source.kind() == io::ErrorKind::QuotaExceeded
            }
            _ => false,
        }
    }

    /// An I/O error with the operation and path it concerns.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> LogError {
        LogError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// A client batch that does not parse.
    pub(crate) fn corrupt(reason: impl Into<String>) -> LogError {
        LogError::CorruptRecord {
            reason: reason.into(),
            path: None,
        }
    }
}

/// `Result` with [`LogError`].
pub type Result<T, E = LogError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_as_kafka_does() {
        let io = LogError::io("write", "/x/0.log", io::Error::other("disk full"));
        assert_eq!(io.error_code(), ErrorCode::KafkaStorageError);
        assert!(io.to_string().contains("/x/0.log"), "{io}");
        assert_eq!(
            LogError::corrupt("crc").error_code(),
            ErrorCode::CorruptMessage
        );
        let on_disk = LogError::CorruptRecord {
            reason: "crc".into(),
            path: Some("/x/0.log".into()),
        };
        assert_eq!(on_disk.error_code(), ErrorCode::KafkaStorageError);
        let big = LogError::MessageTooLarge { size: 2, max: 1 };
        assert_eq!(big.error_code(), ErrorCode::MessageTooLarge);
        let oor = LogError::OffsetOutOfRange {
            offset: Offset(9),
            log_start_offset: Offset(0),
            log_end_offset: Offset(3),
        };
        assert_eq!(oor.error_code(), ErrorCode::OffsetOutOfRange);
        assert_eq!(
            LogError::InvalidRecord("x".into()).error_code(),
            ErrorCode::InvalidRecord
        );
    }

    #[test]
    fn storage_errors_are_told_from_bad_input() {
        let full = LogError::io("write", "/x/0.log", io::Error::from_raw_os_error(28));
        assert!(full.is_storage_error() && full.is_disk_full(), "{full}");
        assert_eq!(full.error_code(), ErrorCode::KafkaStorageError);
        let eio = LogError::io("fsync", "/x/0.log", io::Error::from_raw_os_error(5));
        assert!(eio.is_storage_error() && !eio.is_disk_full());
        let offline = LogError::Offline { dir: "/x".into() };
        assert!(offline.is_storage_error());
        assert!(!LogError::corrupt("crc").is_storage_error());
        assert!(!LogError::MessageTooLarge { size: 2, max: 1 }.is_storage_error());
    }
}
