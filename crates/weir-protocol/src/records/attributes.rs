//! The attributes bit field of a batch header and what its timestamp bit means.

use super::compression::Compression;
use super::error::RecordsError;

/// What a batch's timestamps mean (attributes bit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// Set by the producer (the record timestamps are meaningful).
    #[default]
    CreateTime,
    /// Set by the broker on append: every record's timestamp is the batch maxTimestamp.
    LogAppendTime,
}

/// The attributes bit field of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Attributes(pub i16);

impl Attributes {
    const COMPRESSION_MASK: i16 = 0x07;
    const TIMESTAMP_TYPE: i16 = 0x08;
    const TRANSACTIONAL: i16 = 0x10;
    const CONTROL: i16 = 0x20;
    const DELETE_HORIZON: i16 = 0x40;

    /// Attributes with the given flags set.
    pub fn new(
        compression: Compression,
        timestamp_type: TimestampType,
        transactional: bool,
        control: bool,
    ) -> Self {
        let mut v = i16::from(compression.id());
        if timestamp_type == TimestampType::LogAppendTime {
            v |= Self::TIMESTAMP_TYPE;
        }
        if transactional {
            v |= Self::TRANSACTIONAL;
        }
        if control {
            v |= Self::CONTROL;
        }
        Attributes(v)
    }

    /// The codec of the records section; ids 5-7 are an error.
    pub fn compression(self) -> Result<Compression, RecordsError> {
        Compression::from_id((self.0 & Self::COMPRESSION_MASK) as u8)
    }

    /// What the timestamps mean.
    pub fn timestamp_type(self) -> TimestampType {
        if self.0 & Self::TIMESTAMP_TYPE != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Part of a transaction (consumers with read_committed filter by the markers).
    pub fn is_transactional(self) -> bool {
        self.0 & Self::TRANSACTIONAL != 0
    }

    /// Holds control records (transaction markers), never shown to applications.
    pub fn is_control(self) -> bool {
        self.0 & Self::CONTROL != 0
    }

    /// The cleaner set baseTimestamp to the delete horizon of tombstones (KIP-534).
    pub fn has_delete_horizon(self) -> bool {
        self.0 & Self::DELETE_HORIZON != 0
    }

    /// These attributes with the timestamp type replaced.
    pub fn with_timestamp_type(self, t: TimestampType) -> Self {
        match t {
            TimestampType::CreateTime => Attributes(self.0 & !Self::TIMESTAMP_TYPE),
            TimestampType::LogAppendTime => Attributes(self.0 | Self::TIMESTAMP_TYPE),
        }
    }
}
