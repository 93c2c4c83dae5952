//! Reading: Fetch's byte ranges and ListOffsets' lookups.
//!
//! [`Log::read`] returns whole stored batches, as they are on disk, starting with the
//! batch that holds the requested offset (so the first batch may begin before it, as
//! in Kafka; consumers skip the records they did not ask for). It reads from one
//! segment per call with a single `pread` in the common case: the offset index gives a
//! position near the batch, a header walk finds it, and the window is cut at the last
//! whole batch that fits `max_bytes` and ends below `max_offset`.

use bytes::Bytes;
use weir_protocol::records::BatchHeader;
use weir_types::{LeaderEpoch, Offset};

use crate::error::{LogError, Result};
use crate::log::{Log, MAX_DECOMPRESSED_BYTES};
use crate::scan::ScanError;
use crate::segment::Segment;

/// The result of [`Log::read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadInfo {
    /// Whole batches, verbatim; empty when nothing is readable yet.
    pub records: Bytes,
    /// Base offset of the first batch in `records`.
    pub first_batch_offset: Option<Offset>,
    /// The log start offset at the time of the read.
    pub log_start_offset: Offset,
    /// The log end offset at the time of the read.
    pub log_end_offset: Offset,
    /// The high watermark at the time of the read.
    pub high_watermark: Offset,
}

/// A ListOffsets answer: an offset, the timestamp it was found by, and the leader
/// epoch of the batch holding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    /// The record's timestamp, or -1 for the earliest/latest specials.
    pub timestamp: i64,
    /// The offset.
    pub offset: Offset,
    /// The leader epoch that wrote it, when known.
    pub leader_epoch: Option<LeaderEpoch>,
}

/// ListOffsets' special timestamps (Kafka's `ListOffsetsRequest` constants).
pub mod special_timestamps {
    /// The log end offset.
    pub const LATEST: i64 = -1;
    /// The log start offset.
    pub const EARLIEST: i64 = -2;
    /// The record with the largest timestamp (KIP-734).
    pub const MAX_TIMESTAMP: i64 = -3;
    /// The first offset on local disk (KIP-405): the log start offset here.
    pub const EARLIEST_LOCAL: i64 = -4;
    /// The last offset in tiered storage (KIP-1005): none here.
    pub const LATEST_TIERED: i64 = -5;
}

impl Log {
    /// Reads whole batches from `start_offset`: at most `max_bytes`, except that with
    /// `min_one_batch` (KIP-74) the first batch is returned whole even if larger; only
    /// batches whose last offset is below `max_offset` (exclusive; e.g. the high
    /// watermark for consumers, `None` for the log end). `start_offset` outside
    /// `[log start, log end]` is [`LogError::OffsetOutOfRange`].
    pub fn read(
        &self,
        start_offset: Offset,
        max_bytes: usize,
        max_offset: Option<Offset>,
        min_one_batch: bool,
    ) -> Result<ReadInfo> {
        self.check_online()?;
        if start_offset < self.log_start_offset || start_offset > self.log_end_offset {
            return Err(LogError::OffsetOutOfRange {
                offset: start_offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.log_end_offset,
            });
        }
        let mut info = ReadInfo {
            records: Bytes::new(),
            first_batch_offset: None,
            log_start_offset: self.log_start_offset,
            log_end_offset: self.log_end_offset,
            high_watermark: self.high_watermark,
        };
        let limit = max_offset.map_or(self.log_end_offset, |m| m.min(self.log_end_offset));
        if start_offset >= limit {
            return Ok(info);
        }
        for segment in self.segments_from(start_offset) {
            let Some((position, first)) = segment.find_batch(start_offset)? else {
                continue;
            };
            if first.last_offset() >= limit.get() {
                return Ok(info);
            }
            let first_len = first.total_len();
            if first_len > max_bytes && !min_one_batch {
                return Ok(info);
            }
            let remaining = (segment.size() - position) as usize;
            let window = max_bytes.min(remaining).max(first_len);
            let buf = segment.read_at(position, window)?;
            let len = whole_batches(&buf, limit, max_bytes.max(first_len));
            info.records = buf.slice(..len);
            info.first_batch_offset = Some(Offset(first.base_offset()));
            return Ok(info);
        }
        Ok(info)
    }

    /// Segments that may hold `offset` or later data, in order.
    pub(crate) fn segments_from(&self, offset: Offset) -> impl Iterator<Item = &Segment> {
        let floor = self
            .segments
            .range(..=offset)
            .next_back()
            .map_or(Offset(i64::MIN), |(base, _)| *base);
        self.segments.range(floor..).map(|(_, s)| s)
    }

    /// The first record (at or after the log start) whose timestamp is `>= target_ms`,
    /// at record precision: the time index narrows the search to a segment position,
    /// then batches and their records are walked. `None` if every record is older.
    pub fn offset_for_timestamp(&self, target_ms: i64) -> Result<Option<TimestampOffset>> {
        self.check_online()?;
        let min_offset = self.log_start_offset;
        for segment in self.segments_from(min_offset) {
            if segment.is_empty() || segment.max_timestamp() < target_ms {
                continue;
            }
            let position = segment.timestamp_search_start(target_ms, min_offset);
            let mut scanner = segment.scanner(position);
            loop {
                let view = match scanner.next_batch() {
                    Ok(Some((_, view))) => view,
                    Ok(None) => break,
                    Err(e) => return Err(e.into_log_error(segment.log_path())),
                };
                if view.last_offset() < min_offset.get() || view.max_timestamp() < target_ms {
                    continue;
                }
                let corrupt = |e: weir_protocol::records::RecordsError| {
                    ScanError::Corrupt {
                        position: 0,
                        error: e,
                    }
                    .into_log_error(segment.log_path())
                };
                for record in view.records(MAX_DECOMPRESSED_BYTES).map_err(corrupt)? {
                    let record = record.map_err(corrupt)?;
                    if record.offset >= min_offset.get() && record.timestamp >= target_ms {
                        let epoch = view.partition_leader_epoch();
                        return Ok(Some(TimestampOffset {
                            timestamp: record.timestamp,
                            offset: Offset(record.offset),
                            leader_epoch: (epoch >= 0).then_some(LeaderEpoch(epoch)),
                        }));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Kafka's `fetchOffsetByTimestamp`: a timestamp `>= 0` searches by time; the
    /// [`special_timestamps`] give the earliest offset, the log end offset (the
    /// replica layer substitutes the high watermark for consumers), or the record with
    /// the largest timestamp. `None` when nothing matches.
    pub fn fetch_offset_by_timestamp(&self, timestamp: i64) -> Result<Option<TimestampOffset>> {
        use special_timestamps::*;
        self.check_online()?;
        match timestamp {
            EARLIEST | EARLIEST_LOCAL => Ok(Some(TimestampOffset {
                timestamp: -1,
                offset: self.log_start_offset,
                leader_epoch: self.epoch_cache.epoch_for_offset(self.log_start_offset),
            })),
            LATEST => Ok(Some(TimestampOffset {
                timestamp: -1,
                offset: self.log_end_offset,
                leader_epoch: self.epoch_cache.latest_epoch(),
            })),
            MAX_TIMESTAMP => {
                let max = self
                    .segments
                    .values()
                    .filter(|s| !s.is_empty() && s.next_offset() > self.log_start_offset)
                    .map(Segment::max_timestamp)
                    .max();
                match max {
                    Some(ts) if ts >= 0 => self.offset_for_timestamp(ts),
                    _ => Ok(None),
                }
            }
            t if t >= 0 => self.offset_for_timestamp(t),
            _ => Ok(None),
        }
    }
}

/// Length of the prefix of `buf` made of whole batches that end below `limit` and fit
/// `max_bytes`; the first batch always counts (the caller checked it).
fn whole_batches(buf: &[u8], limit: Offset, max_bytes: usize) -> usize {
    let mut len = 0usize;
    while len < buf.len() {
        let Ok(h) = BatchHeader::parse(&buf[len..]) else {
            break;
        };
        let end = len + h.total_len();
        if len > 0 && (end > max_bytes || h.last_offset() >= limit.get()) || end > buf.len() {
            break;
        }
        len = end;
    }
    len
}
