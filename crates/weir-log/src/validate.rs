//! Leader-side checks of a producer's batches beyond their framing and CRC, and the
//! mapping of codec errors to log errors.

use weir_protocol::records::{
    BatchView, Compression, RecordsError, TimestampType as WireTimestampType,
};
use weir_types::{Offset, ProducerEpoch, ProducerId, Sequence};

use crate::config::TimestampType;
use crate::error::{LogError, Result};
use crate::log::{Log, MAX_DECOMPRESSED_BYTES};
use crate::producer_state::ProducerBatch;

impl Log {
    /// Kafka's record-level checks for a producer batch: offset deltas 0, 1, 2, ...
    /// and timestamps within `message.timestamp.{before,after}.max.ms` (CreateTime).
    /// Uncompressed batches are walked record by record (no allocation); compressed
    /// batches are not decompressed here: their header timestamps are checked.
    pub(crate) fn validate_records(&self, view: &BatchView, now_ms: i64) -> Result<()> {
        let create_time = self.config.message_timestamp_type == TimestampType::CreateTime;
        let check_ts = |ts: i64| -> Result<()> {
            if !create_time || ts == -1 {
                return Ok(());
            }
            if ts < now_ms.saturating_sub(self.config.message_timestamp_before_max_ms) {
                return Err(LogError::InvalidTimestamp {
                    timestamp: ts,
                    now_ms,
                    reason: "older than message.timestamp.before.max.ms",
                });
            }
            if ts > now_ms.saturating_add(self.config.message_timestamp_after_max_ms) {
                return Err(LogError::InvalidTimestamp {
                    timestamp: ts,
                    now_ms,
                    reason: "newer than message.timestamp.after.max.ms",
                });
            }
            Ok(())
        };
        if view.compression() != Compression::None {
            check_ts(view.base_timestamp())?;
            return check_ts(view.max_timestamp());
        }
        let records = view
            .records(MAX_DECOMPRESSED_BYTES)
            .map_err(records_error)?
            .stamps();
        for (i, record) in records.enumerate() {
            let record = record.map_err(records_error)?;
            if i64::from(record.offset_delta) != i as i64 {
                return Err(LogError::InvalidRecord(format!(
                    "record {i} has offset delta {}; producers write 0, 1, 2, ...",
                    record.offset_delta
                )));
            }
            if view.timestamp_type() == WireTimestampType::CreateTime {
                check_ts(record.timestamp)?;
            }
        }
        Ok(())
    }
}

/// The producer-state view of a batch, if an idempotent producer wrote it.
pub(crate) fn producer_batch(
    view: &BatchView,
    base_offset: Offset,
    last_offset: Offset,
    append_time: Option<i64>,
) -> Option<ProducerBatch> {
    view.has_producer_id().then(|| {
        ProducerBatch::new(
            ProducerId(view.producer_id()),
            ProducerEpoch(view.producer_epoch()),
            Sequence(view.base_sequence()),
            base_offset,
            last_offset,
            append_time.unwrap_or(view.max_timestamp()),
        )
    })
}

/// Maps a codec error on client input to the log's error.
pub(crate) fn records_error(e: RecordsError) -> LogError {
    match e {
        RecordsError::UnsupportedMagic(_)
        | RecordsError::InvalidClientBatch(_)
        | RecordsError::InvalidControlRecord(_) => LogError::InvalidRecord(e.to_string()),
        other => LogError::corrupt(other.to_string()),
    }
}
