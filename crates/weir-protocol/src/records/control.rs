//! Control records: the transaction markers a coordinator writes (KIP-98).
//!
//! A control batch has the control and transactional attribute bits set and holds one
//! record. Its key is `version: i16, type: i16` (0 abort, 1 commit; KRaft uses
//! 2 and up for its own control records); an end-transaction marker's value is
//! `version: i16, coordinatorEpoch: i32`. Versions above 0 may append fields, so
//! longer keys and values are accepted from them, as Kafka does.

use bytes::Bytes;

use super::batch::NO_PARTITION_LEADER_EPOCH;
use super::builder::BatchBuilder;
use super::error::RecordsError;
use super::record::Record;

/// Key and value version this codec writes.
const CURRENT_VERSION: i16 = 0;
/// Bytes of a version 0 key.
const KEY_LEN: usize = 4;
/// Bytes of a version 0 end-transaction marker value.
const MARKER_VALUE_LEN: usize = 6;

/// What a control record is, from its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlRecordType {
    /// End of an aborted transaction.
    Abort,
    /// End of a committed transaction.
    Commit,
    /// Any other type id (KRaft's leader-change, snapshot and voter records, or
    /// something newer); consumers skip them.
    Other(i16),
}

impl ControlRecordType {
    /// The type id on the wire.
    pub fn id(self) -> i16 {
        match self {
            ControlRecordType::Abort => 0,
            ControlRecordType::Commit => 1,
            ControlRecordType::Other(id) => id,
        }
    }

    /// The type for a wire id.
    pub fn from_id(id: i16) -> Self {
        match id {
            0 => ControlRecordType::Abort,
            1 => ControlRecordType::Commit,
            other => ControlRecordType::Other(other),
        }
    }
}

/// A parsed control record key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlKey {
    /// Key version (0 today).
    pub version: i16,
    /// The record type.
    pub record_type: ControlRecordType,
}

impl ControlKey {
    /// Parses a control record key.
    pub fn parse(key: &[u8]) -> Result<Self, RecordsError> {
        let (version, rest) = read_i16(key).ok_or(RecordsError::InvalidControlRecord(
            "key shorter than 4 bytes",
        ))?;
        let (type_id, rest) = read_i16(rest).ok_or(RecordsError::InvalidControlRecord(
            "key shorter than 4 bytes",
        ))?;
        if version < 0 {
            return Err(RecordsError::InvalidControlRecord("negative key version"));
        }
        if version == 0 && !rest.is_empty() {
            return Err(RecordsError::InvalidControlRecord(
                "version 0 key longer than 4 bytes",
            ));
        }
        Ok(ControlKey {
            version,
            record_type: ControlRecordType::from_id(type_id),
        })
    }

    /// The version 0 encoding of a key of this type.
    pub fn encode(record_type: ControlRecordType) -> [u8; KEY_LEN] {
        let mut out = [0u8; KEY_LEN];
        let (v, t) = out.split_at_mut(2);
        v.copy_from_slice(&CURRENT_VERSION.to_be_bytes());
        t.copy_from_slice(&record_type.id().to_be_bytes());
        out
    }
}

/// An end-transaction marker: the outcome and the coordinator epoch that wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndTxnMarker {
    /// Commit (true) or abort (false).
    pub commit: bool,
    /// The transaction coordinator's epoch, which fences zombie coordinators.
    pub coordinator_epoch: i32,
}

impl EndTxnMarker {
    /// Parses a marker from a control record's key and value; `Ok(None)` if the key
    /// is some other control type.
    pub fn parse(key: &[u8], value: &[u8]) -> Result<Option<Self>, RecordsError> {
        let commit = match ControlKey::parse(key)?.record_type {
            ControlRecordType::Commit => true,
            ControlRecordType::Abort => false,
            ControlRecordType::Other(_) => return Ok(None),
        };
        let short = RecordsError::InvalidControlRecord("marker value shorter than 6 bytes");
        let (version, rest) = read_i16(value).ok_or(short.clone())?;
        let (epoch, rest) = rest
            .split_first_chunk::<4>()
            .map(|(e, rest)| (i32::from_be_bytes(*e), rest))
            .ok_or(short)?;
        if version < 0 {
            return Err(RecordsError::InvalidControlRecord(
                "negative marker value version",
            ));
        }
        if version == 0 && !rest.is_empty() {
            return Err(RecordsError::InvalidControlRecord(
                "version 0 marker value longer than 6 bytes",
            ));
        }
        Ok(Some(EndTxnMarker {
            commit,
            coordinator_epoch: epoch,
        }))
    }

    /// Parses the marker in a record of a control batch; `Ok(None)` for other
    /// control types. A null key or value is an error.
    pub fn from_record(record: &Record) -> Result<Option<Self>, RecordsError> {
        let key = record
            .key
            .as_ref()
            .ok_or(RecordsError::InvalidControlRecord("null key"))?;
        let value = record
            .value
            .as_ref()
            .ok_or(RecordsError::InvalidControlRecord("null value"))?;
        Self::parse(key, value)
    }

    /// The record type of this marker.
    pub fn record_type(&self) -> ControlRecordType {
        if self.commit {
            ControlRecordType::Commit
        } else {
            ControlRecordType::Abort
        }
    }

    /// The version 0 encoding of the value.
    pub fn encode_value(&self) -> [u8; MARKER_VALUE_LEN] {
        let mut out = [0u8; MARKER_VALUE_LEN];
        let (v, e) = out.split_at_mut(2);
        v.copy_from_slice(&CURRENT_VERSION.to_be_bytes());
        e.copy_from_slice(&self.coordinator_epoch.to_be_bytes());
        out
    }

    /// A whole control batch holding this marker, as the leader appends on
    /// WriteTxnMarkers: transactional + control, the producer's id and epoch, no
    /// sequence, one record at offset delta 0. The caller assigns the offset.
    pub fn build_batch(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        timestamp_ms: i64,
    ) -> Result<Bytes, RecordsError> {
        let mut b = BatchBuilder::new()
            .producer(producer_id, producer_epoch, super::batch::NO_SEQUENCE)
            .transactional(true)
            .control(true)
            .partition_leader_epoch(NO_PARTITION_LEADER_EPOCH);
        b.append(
            timestamp_ms,
            Some(&ControlKey::encode(self.record_type())),
            Some(&self.encode_value()),
            &[],
        )?;
        b.build()
    }
}

/// A big-endian i16 from the front of `b`, and the rest.
fn read_i16(b: &[u8]) -> Option<(i16, &[u8])> {
    b.split_first_chunk::<2>()
        .map(|(v, rest)| (i16::from_be_bytes(*v), rest))
}
