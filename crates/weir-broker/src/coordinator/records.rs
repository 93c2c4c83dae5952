//! The records of `__consumer_offsets`, in Kafka's formats, so Kafka's own tools
//! (`kafka-console-consumer --formatter ...OffsetsMessageFormatter`, `kafka-dump-log
//! --offsets-decoder`) can read a Weir offsets topic and Weir can read Kafka's.
//!
//! Each record's key and value start with an i16 version. The key version names the
//! record type: 0 and 1 are a committed offset (`OffsetCommitKey`), 2 is a classic
//! group's metadata (`GroupMetadataKey`), 3 to 8 are KIP-848 consumer groups
//! (`consumer/records.rs`); Kafka uses 9 and up for share groups, which this
//! coordinator does not write and skips when loading. A null
//! value is a tombstone: the offset or the group is deleted, and compaction later
//! drops the key altogether.
//!
//! Versions written are Kafka's: key 1 and value 3 for offsets (value 1 when the
//! commit carried an explicit retention, the only version with an expire
//! timestamp), key 2 and value 3 for groups. Every version Kafka defines is read.

use bytes::{BufMut, Bytes, BytesMut};
use weir_protocol::messages::group_metadata_key::GroupMetadataKey;
use weir_protocol::messages::group_metadata_value::GroupMetadataValue;
use weir_protocol::messages::group_offset_commit_key::OffsetCommitKey;
use weir_protocol::messages::group_offset_commit_value::OffsetCommitValue;
use weir_protocol::records::{BatchBuilder, BatchView, RecordsError};
use weir_protocol::wire::Decoder;
use weir_protocol::{DecodeError, EncodeError, Message};

use super::consumer::ConsumerRecord;

/// Key version of an offset commit as Kafka writes it.
const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
/// Key version of a group metadata record (the only one).
const GROUP_METADATA_KEY_VERSION: i16 = 2;
/// Value version of an offset commit without an expire timestamp.
const OFFSET_COMMIT_VALUE_VERSION: i16 = 3;
/// Value version of an offset commit with an expire timestamp (retention v2-4).
const OFFSET_COMMIT_VALUE_EXPIRING_VERSION: i16 = 1;
/// Value version of group metadata as Kafka writes it.
const GROUP_METADATA_VALUE_VERSION: i16 = 3;

/// The most a coordinator batch may decompress to when loading (Kafka's coordinator
/// writes uncompressed batches; a compressed one from another writer is bounded).
pub(super) const MAX_DECOMPRESSED_BATCH: usize = 64 * 1024 * 1024;

/// One record of the offsets topic.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Record {
    /// A committed offset, or (value `None`) its deletion.
    OffsetCommit {
        /// Group, topic and partition.
        key: OffsetCommitKey,
        /// The commit; `None` deletes it.
        value: Option<OffsetCommitValue>,
    },
    /// A classic group's state after a rebalance, or (value `None`) its deletion.
    GroupMetadata {
        /// The group id.
        key: GroupMetadataKey,
        /// The group; `None` deletes it.
        value: Option<GroupMetadataValue>,
    },
    /// A KIP-848 consumer group record (key versions 3 to 8).
    Consumer(Box<ConsumerRecord>),
}

/// Why a stored record could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RecordError {
    /// The key is null: no coordinator writes that.
    #[error("a record without a key")]
    NoKey,
    /// The key or value does not decode at its version.
    #[error("a {what} does not decode: {source}")]
    Decode {
        /// Which part.
        what: &'static str,
        /// Why.
        #[source]
        source: DecodeError,
    },
    /// A value version this coordinator does not know.
    #[error("unknown {what} version {version}")]
    UnknownVersion {
        /// Which record.
        what: &'static str,
        /// The version read.
        version: i16,
    },
}

/// What a stored key names.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decoded {
    /// A record this coordinator applies.
    Known(Record),
    /// A record type of a coordinator feature Weir lacks (share groups, key
    /// versions 9+): skipped when loading.
    Other(i16),
}

impl Record {
    /// A committed offset.
    pub(crate) fn offset_commit(
        group: &str,
        topic: &str,
        partition: i32,
        value: Option<OffsetCommitValue>,
    ) -> Record {
        Record::OffsetCommit {
            key: OffsetCommitKey {
                group: group.to_owned(),
                topic: topic.to_owned(),
                partition,
            },
            value,
        }
    }

    /// A group's metadata (or its tombstone).
    pub(crate) fn group_metadata(group: &str, value: Option<GroupMetadataValue>) -> Record {
        Record::GroupMetadata {
            key: GroupMetadataKey {
                group: group.to_owned(),
            },
            value,
        }
    }

    /// The key and value bytes, each with its version prefix.
    pub(crate) fn encode(&self) -> Result<(Bytes, Option<Bytes>), EncodeError> {
        match self {
            Record::OffsetCommit { key, value } => {
                let key = versioned(key, OFFSET_COMMIT_KEY_VERSION)?;
                let value = match value {
                    None => None,
                    Some(v) => {
                        let version = if v.expire_timestamp >= 0 {
                            OFFSET_COMMIT_VALUE_EXPIRING_VERSION
                        } else {
                            OFFSET_COMMIT_VALUE_VERSION
                        };
                        Some(versioned(v, version)?)
                    }
                };
                Ok((key, value))
            }
            Record::GroupMetadata { key, value } => {
                let key = versioned(key, GROUP_METADATA_KEY_VERSION)?;
                let value = match value {
                    None => None,
                    Some(v) => Some(versioned(v, GROUP_METADATA_VALUE_VERSION)?),
                };
                Ok((key, value))
            }
            Record::Consumer(record) => record.encode(),
        }
    }

    /// Reads a stored record.
    pub(crate) fn decode(key: Option<Bytes>, value: Option<Bytes>) -> Result<Decoded, RecordError> {
        let key = key.ok_or(RecordError::NoKey)?;
        let mut d = Decoder::new(key);
        let version = d.i16().map_err(|source| RecordError::Decode {
            what: "record key",
            source,
        })?;
        let key_body = d.into_rest();
        match version {
            0 | 1 => {
                let key = OffsetCommitKey::from_bytes(key_body, version).map_err(|source| {
                    RecordError::Decode {
                        what: "offset commit key",
                        source,
                    }
                })?;
                let value = value
                    .map(|v| read_value::<OffsetCommitValue>(v, "offset commit value"))
                    .transpose()?;
                Ok(Decoded::Known(Record::OffsetCommit { key, value }))
            }
            2 => {
                let key = GroupMetadataKey::from_bytes(key_body, version).map_err(|source| {
                    RecordError::Decode {
                        what: "group metadata key",
                        source,
                    }
                })?;
                let value = value
                    .map(|v| read_value::<GroupMetadataValue>(v, "group metadata value"))
                    .transpose()?;
                Ok(Decoded::Known(Record::GroupMetadata { key, value }))
            }
            3..=8 => match ConsumerRecord::decode(version, key_body, value)? {
                Some(record) => Ok(Decoded::Known(Record::Consumer(Box::new(record)))),
                None => Ok(Decoded::Other(version)),
            },
            other => Ok(Decoded::Other(other)),
        }
    }
}

/// `version` then the message at that version.
pub(crate) fn versioned<M: Message>(message: &M, version: i16) -> Result<Bytes, EncodeError> {
    let body = message.to_bytes(version)?;
    let mut out = BytesMut::with_capacity(2 + body.len());
    out.put_i16(version);
    out.put_slice(&body);
    Ok(out.freeze())
}

/// A value: its version, then the message at that version.
pub(crate) fn read_value<M: Message>(value: Bytes, what: &'static str) -> Result<M, RecordError> {
    let mut d = Decoder::new(value);
    let version = d
        .i16()
        .map_err(|source| RecordError::Decode { what, source })?;
    let (min, max) = M::VERSIONS;
    if !(min..=max).contains(&version) {
        return Err(RecordError::UnknownVersion { what, version });
    }
    M::from_bytes(d.into_rest(), version).map_err(|source| RecordError::Decode { what, source })
}

/// A stored record with its offset, or why it could not be read.
pub(crate) type StoredRecord = (i64, Result<Decoded, RecordError>);

/// One batch holding `records`, as the coordinator appends them (uncompressed, no
/// producer id: the writes are ordered by the shard lock, not by sequence numbers).
pub(crate) fn encode_batch(records: &[Record], now_ms: i64) -> Result<Bytes, RecordsError> {
    let mut builder = BatchBuilder::new();
    for record in records {
        let (key, value) = record
            .encode()
            .map_err(|_| RecordsError::Build("a coordinator record does not encode"))?;
        builder.append(now_ms, Some(&key), value.as_deref(), &[])?;
    }
    builder.build()
}

/// The records of a stored batch with their offsets. A record that does not decode
/// is returned as an error in place, so the loader can skip it and go on.
pub(crate) fn decode_batch(batch: &BatchView) -> Result<Vec<StoredRecord>, RecordsError> {
    let mut out = Vec::new();
    for record in batch.records(MAX_DECOMPRESSED_BATCH)? {
        let record = record?;
        out.push((record.offset, Record::decode(record.key, record.value)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use weir_protocol::messages::group_metadata_value::MemberMetadata;
    use weir_protocol::records::Batches;

    use super::*;

    fn commit(expire: i64) -> OffsetCommitValue {
        OffsetCommitValue {
            offset: 42,
            leader_epoch: 7,
            metadata: "meta".into(),
            commit_timestamp: 1_700_000_000_000,
            expire_timestamp: expire,
        }
    }

    #[test]
    fn offset_commit_bytes_are_kafkas() {
        let record = Record::offset_commit("g", "t", 3, Some(commit(-1)));
        let (key, value) = record.encode().expect("encode");
        // Key v1: version, group, topic, partition (classic i16 strings).
        assert_eq!(&key[..], &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 3]);
        let value = value.expect("value");
        let mut expected = vec![0, 3];
        expected.extend_from_slice(&42i64.to_be_bytes());
        expected.extend_from_slice(&7i32.to_be_bytes());
        expected.extend_from_slice(&[0, 4, b'm', b'e', b't', b'a']);
        expected.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
        assert_eq!(&value[..], &expected[..]);
        let back = Record::decode(Some(key), Some(value)).expect("decode");
        assert_eq!(back, Decoded::Known(record));
    }

    #[test]
    fn an_expiring_commit_is_written_at_v1() {
        let record = Record::offset_commit("g", "t", 0, Some(commit(5)));
        let (_, value) = record.encode().expect("encode");
        let value = value.expect("value");
        assert_eq!(&value[..2], &[0, 1]);
        // v1 has no leader epoch: it reads back as -1.
        let Decoded::Known(Record::OffsetCommit { value: Some(v), .. }) =
            Record::decode(record.encode().expect("encode").0.into(), Some(value)).expect("decode")
        else {
            panic!("not an offset commit");
        };
        assert_eq!((v.offset, v.leader_epoch, v.expire_timestamp), (42, -1, 5));
    }

    #[test]
    fn group_metadata_round_trips_and_tombstones_have_no_value() {
        let value = GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 4,
            protocol: Some("range".into()),
            leader: Some("m-1".into()),
            current_state_timestamp: 99,
            members: vec![MemberMetadata {
                member_id: "m-1".into(),
                group_instance_id: Some("i-1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout: 30_000,
                session_timeout: 10_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        let record = Record::group_metadata("g", Some(value));
        let (key, bytes) = record.encode().expect("encode");
        assert_eq!(&key[..], &[0, 2, 0, 1, b'g']);
        assert_eq!(&bytes.as_ref().expect("value")[..2], &[0, 3]);
        assert_eq!(
            Record::decode(Some(key), bytes).expect("decode"),
            Decoded::Known(record)
        );
        let tombstone = Record::group_metadata("g", None);
        let (key, value) = tombstone.encode().expect("encode");
        assert!(value.is_none());
        assert_eq!(
            Record::decode(Some(key), None).expect("decode"),
            Decoded::Known(tombstone)
        );
    }

    #[test]
    fn unknown_record_types_are_skipped_and_garbage_is_an_error() {
        let key = Bytes::from_static(&[0, 9, 0, 1, b'g']);
        assert_eq!(
            Record::decode(Some(key), None).expect("decode"),
            Decoded::Other(9)
        );
        assert!(Record::decode(None, None).is_err());
        assert!(Record::decode(Some(Bytes::from_static(&[0])), None).is_err());
        let key = Record::offset_commit("g", "t", 0, None)
            .encode()
            .expect("key")
            .0;
        assert!(Record::decode(Some(key.clone()), Some(Bytes::from_static(&[0, 9, 1]))).is_err());
        assert!(Record::decode(Some(key), Some(Bytes::from_static(&[0, 3, 1]))).is_err());
    }

    #[test]
    fn batches_round_trip() {
        let records = vec![
            Record::offset_commit("g", "t", 0, Some(commit(-1))),
            Record::group_metadata("g", None),
        ];
        let batch = encode_batch(&records, 1_000).expect("batch");
        let views: Vec<_> = Batches::new(batch)
            .collect::<Result<_, _>>()
            .expect("views");
        assert_eq!(views.len(), 1);
        let decoded = decode_batch(&views[0]).expect("records");
        let got: Vec<_> = decoded
            .into_iter()
            .map(|(offset, r)| (offset, r.expect("record")))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, Decoded::Known(records[0].clone())),
                (1, Decoded::Known(records[1].clone()))
            ]
        );
    }
}
