//! A lazy walker over the records of a batch.
//!
//! Each record is:
//!
//! ```text
//! length          varint   bytes of the record after this field
//! attributes      int8     unused by Kafka
//! timestampDelta  varlong  from the batch's baseTimestamp
//! offsetDelta     varint   from the batch's baseOffset
//! keyLength       varint   -1 = null key
//! key             bytes
//! valueLength     varint   -1 = null value
//! value           bytes
//! headerCount     varint
//! headers         (keyLength varint, key, valueLength varint (-1 = null), value)*
//! ```
//!
//! Records are parsed one at a time as the iterator advances; keys, values and header
//! sections are `Bytes` slices of the batch (or of its decompressed records), so
//! walking a batch allocates nothing per record. Every length is checked against the
//! bytes that remain, and a record must consume exactly its declared length.

use std::ops::Range;

use bytes::Bytes;

use super::attributes::TimestampType;
use super::batch::{BatchHeader, BatchView};
use super::compression::{self, Compression};
use super::error::RecordsError;
use crate::wire::varint;

/// The smallest encoding of a record: a length varint and six one-byte fields
/// (attributes, timestampDelta, offsetDelta, key length, value length, header count).
pub const MIN_RECORD_LEN: usize = 7;

/// One record of a batch, with offsets and timestamps already made absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The record's attributes byte (Kafka defines no bits; kept for fidelity).
    pub attributes: i8,
    /// Offset from the batch's baseOffset.
    pub offset_delta: i32,
    /// Timestamp from the batch's baseTimestamp, as stored.
    pub timestamp_delta: i64,
    /// baseOffset + offsetDelta.
    pub offset: i64,
    /// The record's timestamp: baseTimestamp + timestampDelta, or the batch's
    /// maxTimestamp when the batch is LogAppendTime (as Kafka reports it).
    pub timestamp: i64,
    /// The key; `None` is a null key (length -1), distinct from an empty one.
    pub key: Option<Bytes>,
    /// The value; `None` is a tombstone.
    pub value: Option<Bytes>,
    /// The headers, parsed lazily from their section.
    pub headers: Headers,
}

/// One record header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The key, a UTF-8 string on the wire (not checked here; see [`Header::key_str`]).
    pub key: Bytes,
    /// The value; `None` is null (length -1).
    pub value: Option<Bytes>,
}

impl Header {
    /// The key as a string, if it is UTF-8.
    pub fn key_str(&self) -> Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(&self.key)
    }
}

/// The headers of one record: a validated section, parsed again as it is iterated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Headers {
    /// The header section, already checked to hold exactly `count` headers.
    buf: Bytes,
    count: u32,
}

impl Headers {
    /// How many headers the record has.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether the record has no headers.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Iterates the headers. The section was validated when the record was parsed,
    /// so this cannot fail; it would stop early rather than panic if it could.
    pub fn iter(&self) -> HeadersIter {
        HeadersIter {
            buf: self.buf.clone(),
            pos: 0,
            left: self.count,
        }
    }
}

/// Iterator over a record's headers.
#[derive(Debug, Clone)]
pub struct HeadersIter {
    buf: Bytes,
    pos: usize,
    left: u32,
}

impl Iterator for HeadersIter {
    type Item = Header;

    fn next(&mut self) -> Option<Header> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let mut c = Cursor {
            buf: &self.buf,
            pos: self.pos,
            end: self.buf.len(),
            index: 0,
        };
        let (key, value) = c.header().ok()?;
        self.pos = c.pos;
        Some(Header {
            key: self.buf.slice(key),
            value: value.map(|v| self.buf.slice(v)),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left as usize))
    }
}

impl IntoIterator for &Headers {
    type Item = Header;
    type IntoIter = HeadersIter;

    fn into_iter(self) -> HeadersIter {
        self.iter()
    }
}

/// Bounds-checked reads inside one record (`pos..end` of `buf`).
struct Cursor<'a> {
    buf: &'a Bytes,
    pos: usize,
    end: usize,
    /// The record's index, for error messages.
    index: u32,
}

impl Cursor<'_> {
    fn rest(&self) -> &[u8] {
        self.buf.get(self.pos..self.end).unwrap_or_default()
    }

    fn malformed(&self, what: &'static str) -> RecordsError {
        RecordsError::MalformedRecord {
            index: self.index,
            what,
        }
    }

    fn varint(&mut self) -> Result<i32, RecordsError> {
        let (v, n) =
            varint::read_varint(self.rest()).map_err(|source| RecordsError::RecordVarint {
                index: self.index,
                source,
            })?;
        self.pos += n;
        Ok(v)
    }

    fn varlong(&mut self) -> Result<i64, RecordsError> {
        let (v, n) =
            varint::read_varlong(self.rest()).map_err(|source| RecordsError::RecordVarint {
                index: self.index,
                source,
            })?;
        self.pos += n;
        Ok(v)
    }

    fn i8(&mut self) -> Result<i8, RecordsError> {
        let b = *self
            .rest()
            .first()
            .ok_or_else(|| self.malformed("attributes missing"))?;
        self.pos += 1;
        Ok(b as i8)
    }

    /// The position range of the next `n` bytes, skipped. Ranges rather than
    /// `Bytes` slices: a slice bumps the buffer's shared reference count, and a
    /// validating walk that only needs offsets and timestamps should not pay that
    /// per field (it was a tenth of the broker's produce CPU).
    fn take(&mut self, n: usize, what: &'static str) -> Result<Range<usize>, RecordsError> {
        if n > self.rest().len() {
            return Err(self.malformed(what));
        }
        let out = self.pos..self.pos + n;
        self.pos += n;
        Ok(out)
    }

    /// A varint length then that many bytes; -1 is null, other negatives are errors
    /// (Kafka reads any negative as null, but no client writes them: they are garbage).
    fn nullable_bytes(&mut self, what: &'static str) -> Result<Option<Range<usize>>, RecordsError> {
        match self.varint()? {
            -1 => Ok(None),
            n if n < 0 => Err(self.malformed(what)),
            n => self.take(n as usize, what).map(Some),
        }
    }

    /// One header's key and value ranges.
    #[allow(clippy::type_complexity)]
    fn header(&mut self) -> Result<(Range<usize>, Option<Range<usize>>), RecordsError> {
        let key = match self.varint()? {
            n if n < 0 => return Err(self.malformed("negative header key length")),
            n => self.take(n as usize, "header key longer than the record")?,
        };
        let value = self.nullable_bytes("bad header value length")?;
        Ok((key, value))
    }
}

/// Where the records start counting from, taken from the batch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordBase {
    /// The batch's baseOffset.
    pub base_offset: i64,
    /// The batch's baseTimestamp.
    pub base_timestamp: i64,
    /// `Some(maxTimestamp)` for a LogAppendTime batch: every record reads as that.
    pub log_append_time: Option<i64>,
}

impl RecordBase {
    /// The base of the batch with this header.
    pub fn of(header: &BatchHeader) -> Self {
        RecordBase {
            base_offset: header.base_offset(),
            base_timestamp: header.base_timestamp(),
            log_append_time: (header.timestamp_type() == TimestampType::LogAppendTime)
                .then_some(header.max_timestamp()),
        }
    }
}

/// Iterator over the records of one batch; see the module docs. Fused after the
/// first error.
#[derive(Debug, Clone)]
pub struct Records {
    /// The uncompressed records section.
    buf: Bytes,
    pos: usize,
    /// recordCount from the header.
    declared: u32,
    /// Records returned so far.
    index: u32,
    base: RecordBase,
    done: bool,
}

impl Records {
    /// Walks `records` (an uncompressed records section) that should hold exactly
    /// `record_count` records.
    pub fn new(records: Bytes, record_count: u32, base: RecordBase) -> Self {
        Records {
            buf: records,
            pos: 0,
            declared: record_count,
            index: 0,
            base,
            done: false,
        }
    }

    /// Records not yet returned, as the header declares them.
    pub fn remaining(&self) -> u32 {
        self.declared - self.index
    }

    /// The first record whose timestamp is >= `target_ms`, if any: what ListOffsets
    /// by timestamp needs at record precision inside a batch.
    pub fn first_at_or_after(mut self, target_ms: i64) -> Result<Option<Record>, RecordsError> {
        for record in &mut self {
            let record = record?;
            if record.timestamp >= target_ms {
                return Ok(Some(record));
            }
        }
        Ok(None)
    }

    /// Parses and checks the next record's framing, without slicing anything.
    fn parse_frame(&mut self) -> Result<Frame, RecordsError> {
        let index = self.index;
        let mut c = Cursor {
            buf: &self.buf,
            pos: self.pos,
            end: self.buf.len(),
            index,
        };
        let length = c.varint()?;
        let length = usize::try_from(length).map_err(|_| c.malformed("negative record length"))?;
        let end = c
            .pos
            .checked_add(length)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| c.malformed("record length exceeds the batch"))?;
        c.end = end;
        let attributes = c.i8()?;
        let timestamp_delta = c.varlong()?;
        let offset_delta = c.varint()?;
        let key = c.nullable_bytes("bad key length")?;
        let value = c.nullable_bytes("bad value length")?;
        let header_count = c.varint()?;
        let header_count =
            u32::try_from(header_count).map_err(|_| c.malformed("negative header count"))?;
        // Each header takes at least two bytes (two one-byte lengths).
        if (header_count as usize).saturating_mul(2) > c.rest().len() {
            return Err(c.malformed("more headers than the record has bytes for"));
        }
        let headers_start = c.pos;
        for _ in 0..header_count {
            c.header()?;
        }
        if c.pos != end {
            return Err(c.malformed("record length disagrees with its fields"));
        }
        self.pos = end;
        Ok(Frame {
            attributes,
            timestamp_delta,
            offset_delta,
            key,
            value,
            headers: headers_start..end,
            header_count,
        })
    }

    /// The absolute offset and timestamp of a record.
    fn stamp_of(&self, frame: &Frame) -> RecordStamp {
        // Kafka adds with wrapping long arithmetic; do the same rather than reject.
        RecordStamp {
            offset_delta: frame.offset_delta,
            offset: self
                .base
                .base_offset
                .wrapping_add(i64::from(frame.offset_delta)),
            timestamp: self
                .base
                .log_append_time
                .unwrap_or(self.base.base_timestamp.wrapping_add(frame.timestamp_delta)),
        }
    }

    fn record_of(&self, frame: Frame) -> Record {
        let stamp = self.stamp_of(&frame);
        // Most records have no headers; skip the reference-count bump for them.
        let headers = if frame.header_count == 0 {
            Headers::default()
        } else {
            Headers {
                buf: self.buf.slice(frame.headers),
                count: frame.header_count,
            }
        };
        Record {
            attributes: frame.attributes,
            offset_delta: frame.offset_delta,
            timestamp_delta: frame.timestamp_delta,
            offset: stamp.offset,
            timestamp: stamp.timestamp,
            key: frame.key.map(|r| self.buf.slice(r)),
            value: frame.value.map(|r| self.buf.slice(r)),
            headers,
        }
    }

    /// The next record's frame, or the walk's end or error (then fused).
    fn next_frame(&mut self) -> Option<Result<Frame, RecordsError>> {
        if self.done {
            return None;
        }
        let left = self.buf.len() - self.pos;
        if self.index == self.declared {
            self.done = true;
            return (left > 0).then_some(Err(RecordsError::TrailingRecordBytes(left)));
        }
        if left == 0 {
            self.done = true;
            return Some(Err(RecordsError::MissingRecords {
                declared: self.declared,
                found: self.index,
            }));
        }
        match self.parse_frame() {
            Ok(f) => {
                self.index += 1;
                Some(Ok(f))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }

    /// The same walk, with the same checks and errors, yielding only each record's
    /// offset and timestamp: what a leader validating a produce needs, without a
    /// reference-count bump per key and value.
    pub fn stamps(self) -> RecordStamps {
        RecordStamps { records: self }
    }
}

/// A record's fields as positions in the records section.
struct Frame {
    attributes: i8,
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<Range<usize>>,
    value: Option<Range<usize>>,
    headers: Range<usize>,
    header_count: u32,
}

/// A record's offset delta, offset and timestamp (see [`Records::stamps`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordStamp {
    /// Offset from the batch's baseOffset.
    pub offset_delta: i32,
    /// baseOffset + offsetDelta.
    pub offset: i64,
    /// As [`Record::timestamp`].
    pub timestamp: i64,
}

/// Iterator over the stamps of a batch's records; see [`Records::stamps`].
#[derive(Debug, Clone)]
pub struct RecordStamps {
    records: Records,
}

impl Iterator for RecordStamps {
    type Item = Result<RecordStamp, RecordsError>;

    fn next(&mut self) -> Option<Self::Item> {
        let frame = self.records.next_frame()?;
        Some(frame.map(|f| self.records.stamp_of(&f)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.records.size_hint()
    }
}

impl std::iter::FusedIterator for RecordStamps {}

impl Iterator for Records {
    type Item = Result<Record, RecordsError>;

    fn next(&mut self) -> Option<Self::Item> {
        let frame = self.next_frame()?;
        Some(frame.map(|f| self.record_of(f)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // One more item is possible: a trailing-bytes or missing-records error.
        (0, Some(self.remaining() as usize + 1))
    }
}

impl std::iter::FusedIterator for Records {}

impl BatchView {
    /// The batch's uncompressed records section: a slice of the batch, or the
    /// decompressed payload (at most `max_decompressed` bytes; more is an error).
    pub fn uncompressed_records(&self, max_decompressed: usize) -> Result<Bytes, RecordsError> {
        match self.compression() {
            Compression::None => Ok(self.records_bytes()),
            codec => compression::decompress(codec, &self.records_bytes(), max_decompressed)
                .map(Bytes::from),
        }
    }

    /// Walks the records, decompressing first if needed (one allocation of at most
    /// `max_decompressed` bytes for the whole batch; none when uncompressed).
    pub fn records(&self, max_decompressed: usize) -> Result<Records, RecordsError> {
        let records = self.uncompressed_records(max_decompressed)?;
        // record_count >= 0 was checked when the header was parsed.
        let count = u32::try_from(self.record_count()).unwrap_or(0);
        Ok(Records::new(records, count, RecordBase::of(self.header())))
    }

    /// The offset and timestamp of the first record with timestamp >= `target_ms`, or
    /// `None` if the batch has none. Skips the walk when maxTimestamp is below the
    /// target.
    pub fn first_at_or_after(
        &self,
        target_ms: i64,
        max_decompressed: usize,
    ) -> Result<Option<(i64, i64)>, RecordsError> {
        if self.max_timestamp() < target_ms {
            return Ok(None);
        }
        Ok(self
            .records(max_decompressed)?
            .first_at_or_after(target_ms)?
            .map(|r| (r.offset, r.timestamp)))
    }

    /// Walks every record and checks what Kafka checks for a producer's records
    /// beyond the header: they parse, there are exactly recordCount of them, and their
    /// offset deltas run 0, 1, 2, ... without gaps.
    pub fn validate_client_records(&self, max_decompressed: usize) -> Result<(), RecordsError> {
        for (i, record) in self.records(max_decompressed)?.stamps().enumerate() {
            let record = record?;
            if i64::from(record.offset_delta) != i as i64 {
                return Err(RecordsError::InvalidClientBatch(
                    "record offset deltas are not 0, 1, 2, ...",
                ));
            }
        }
        Ok(())
    }
}
