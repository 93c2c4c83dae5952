//! Metadata records and their frame inside a log record's value.
//!
//! KRaft stores each metadata record as the value of one record in a RecordBatch of
//! the `__cluster_metadata` log (the key is null). The value is a small frame:
//!
//! ```text
//! frame version   uvarint   always 1 (0 was the 2.8 preview; readers reject it)
//! record type     uvarint   the record's api key (TopicRecord = 2, ...)
//! record version  uvarint   the version the record body is encoded at
//! record body               the record, a flexible-version data structure
//! ```
//!
//! The bodies are generated from `weir-protocol/schema/metadata_*.wire`. A reader
//! decodes every version in the schema's range; a writer uses [`write_version`], the
//! versions Kafka's metadata.version 3.3-IV3 writes (see [`METADATA_VERSION_LEVEL`]),
//! which every record type we write supports and every KRaft reader understands.
//! The exception: a partition record that sets the eligible leader replicas
//! (KIP-966, which Weir always enables) is written at v2, the first version with
//! those fields; every other one stays at v0.
//!
//! [`write_version`]: MetadataRecord::write_version

use bytes::Bytes;
use weir_protocol::messages::{
    BrokerRegistrationChangeRecord, ConfigRecord, FeatureLevelRecord, FenceBrokerRecord,
    PartitionChangeRecord, PartitionRecord, ProducerIdsRecord, RegisterBrokerRecord,
    RemoveTopicRecord, TopicRecord, UnfenceBrokerRecord, UnregisterBrokerRecord,
};
use weir_protocol::wire::{Decoder, Encoder};
use weir_protocol::Message;

use crate::error::{MetadataError, Result};

/// The frame version written and accepted.
pub const FRAME_VERSION: u32 = 1;

/// The `metadata.version` feature level the records are written for: 7 is Kafka's
/// 3.3-IV3, the first level at which RegisterBrokerRecord v1 is written; the other
/// record types are at version 0 there.
pub const METADATA_VERSION_LEVEL: i16 = 7;

/// The feature name of the metadata version.
pub const METADATA_VERSION_FEATURE: &str = "metadata.version";

/// The resource type of a topic in ConfigRecord (DescribeConfigs' numbering).
pub const RESOURCE_TYPE_TOPIC: i8 = 2;
/// The resource type of a broker in ConfigRecord; the name "" is the cluster default.
pub const RESOURCE_TYPE_BROKER: i8 = 4;

/// One metadata record, of any type this build reads.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataRecord {
    /// A broker registered (type 0).
    RegisterBroker(RegisterBrokerRecord),
    /// A broker's registration was removed (type 1).
    UnregisterBroker(UnregisterBrokerRecord),
    /// A topic was created (type 2).
    Topic(TopicRecord),
    /// A partition was created (type 3).
    Partition(PartitionRecord),
    /// A dynamic config was set or removed (type 4).
    Config(ConfigRecord),
    /// A partition changed (type 5).
    PartitionChange(PartitionChangeRecord),
    /// A broker was fenced (type 7).
    FenceBroker(FenceBrokerRecord),
    /// A broker was unfenced (type 8).
    UnfenceBroker(UnfenceBrokerRecord),
    /// A topic was deleted (type 9).
    RemoveTopic(RemoveTopicRecord),
    /// A feature level was finalized (type 12).
    FeatureLevel(FeatureLevelRecord),
    /// A block of producer ids was allocated (type 15).
    ProducerIds(ProducerIdsRecord),
    /// A broker was fenced, unfenced, or began a controlled shutdown (type 17).
    BrokerRegistrationChange(BrokerRegistrationChangeRecord),
}

/// Calls `$f` on the record inside any variant.
macro_rules! each {
    ($self:expr, $r:ident => $e:expr) => {
        match $self {
            MetadataRecord::RegisterBroker($r) => $e,
            MetadataRecord::UnregisterBroker($r) => $e,
            MetadataRecord::Topic($r) => $e,
            MetadataRecord::Partition($r) => $e,
            MetadataRecord::Config($r) => $e,
            MetadataRecord::PartitionChange($r) => $e,
            MetadataRecord::FenceBroker($r) => $e,
            MetadataRecord::UnfenceBroker($r) => $e,
            MetadataRecord::RemoveTopic($r) => $e,
            MetadataRecord::FeatureLevel($r) => $e,
            MetadataRecord::ProducerIds($r) => $e,
            MetadataRecord::BrokerRegistrationChange($r) => $e,
        }
    };
}

impl MetadataRecord {
    /// The record type: Kafka's api key of the metadata record.
    pub fn api_key(&self) -> i16 {
        match self {
            MetadataRecord::RegisterBroker(_) => 0,
            MetadataRecord::UnregisterBroker(_) => 1,
            MetadataRecord::Topic(_) => 2,
            MetadataRecord::Partition(_) => 3,
            MetadataRecord::Config(_) => 4,
            MetadataRecord::PartitionChange(_) => 5,
            MetadataRecord::FenceBroker(_) => 7,
            MetadataRecord::UnfenceBroker(_) => 8,
            MetadataRecord::RemoveTopic(_) => 9,
            MetadataRecord::FeatureLevel(_) => 12,
            MetadataRecord::ProducerIds(_) => 15,
            MetadataRecord::BrokerRegistrationChange(_) => 17,
        }
    }

    /// The record type's name, for log lines.
    pub fn type_name(&self) -> &'static str {
        match self {
            MetadataRecord::RegisterBroker(_) => "RegisterBrokerRecord",
            MetadataRecord::UnregisterBroker(_) => "UnregisterBrokerRecord",
            MetadataRecord::Topic(_) => "TopicRecord",
            MetadataRecord::Partition(_) => "PartitionRecord",
            MetadataRecord::Config(_) => "ConfigRecord",
            MetadataRecord::PartitionChange(_) => "PartitionChangeRecord",
            MetadataRecord::FenceBroker(_) => "FenceBrokerRecord",
            MetadataRecord::UnfenceBroker(_) => "UnfenceBrokerRecord",
            MetadataRecord::RemoveTopic(_) => "RemoveTopicRecord",
            MetadataRecord::FeatureLevel(_) => "FeatureLevelRecord",
            MetadataRecord::ProducerIds(_) => "ProducerIdsRecord",
            MetadataRecord::BrokerRegistrationChange(_) => "BrokerRegistrationChangeRecord",
        }
    }

    /// The version this build writes the record at (see the module docs).
    pub fn write_version(&self) -> i16 {
        match self {
            // v1 carries in_controlled_shutdown (metadata.version 3.3-IV3).
            MetadataRecord::RegisterBroker(_) | MetadataRecord::BrokerRegistrationChange(_) => 1,
            // v2 carries the eligible leader replicas (KIP-966); only records that
            // set them need it, so every other partition record stays at v0.
            MetadataRecord::Partition(r)
                if r.eligible_leader_replicas.is_some() || r.last_known_elr.is_some() =>
            {
                2
            }
            MetadataRecord::PartitionChange(r)
                if r.eligible_leader_replicas.is_some() || r.last_known_elr.is_some() =>
            {
                2
            }
            _ => 0,
        }
    }

    /// The frame at [`write_version`](Self::write_version).
    pub fn encode(&self) -> Result<Bytes> {
        self.encode_at(self.write_version())
    }

    /// The frame with the body at `version`.
    pub fn encode_at(&self, version: i16) -> Result<Bytes> {
        let mut e = Encoder::new();
        e.uvarint(FRAME_VERSION);
        e.uvarint(u32::from(self.api_key().unsigned_abs()));
        e.uvarint(u32::from(version.unsigned_abs()));
        each!(self, r => r.encode(&mut e, version)?);
        Ok(e.into_bytes())
    }

    /// Decodes one frame (the whole value of a log record); trailing bytes are an
    /// error, as in Kafka.
    pub fn decode(frame: Bytes) -> Result<MetadataRecord> {
        Self::decode_with_version(frame).map(|(r, _)| r)
    }

    /// Decodes one frame, returning the record and the version it was encoded at.
    pub fn decode_with_version(frame: Bytes) -> Result<(MetadataRecord, i16)> {
        let mut d = Decoder::new(frame);
        let decode_err = |source| MetadataError::Decode { offset: -1, source };
        let frame_error = |reason: String| MetadataError::Frame { offset: -1, reason };
        let frame_version = d.uvarint().map_err(decode_err)?;
        if frame_version != FRAME_VERSION {
            return Err(frame_error(format!(
                "frame version {frame_version} (only {FRAME_VERSION} is supported)"
            )));
        }
        let api_key = small(d.uvarint().map_err(decode_err)?, "record type")?;
        let version = small(d.uvarint().map_err(decode_err)?, "record version")?;
        let record = match api_key {
            0 => MetadataRecord::RegisterBroker(body(&mut d, version)?),
            1 => MetadataRecord::UnregisterBroker(body(&mut d, version)?),
            2 => MetadataRecord::Topic(body(&mut d, version)?),
            3 => MetadataRecord::Partition(body(&mut d, version)?),
            4 => MetadataRecord::Config(body(&mut d, version)?),
            5 => MetadataRecord::PartitionChange(body(&mut d, version)?),
            7 => MetadataRecord::FenceBroker(body(&mut d, version)?),
            8 => MetadataRecord::UnfenceBroker(body(&mut d, version)?),
            9 => MetadataRecord::RemoveTopic(body(&mut d, version)?),
            12 => MetadataRecord::FeatureLevel(body(&mut d, version)?),
            15 => MetadataRecord::ProducerIds(body(&mut d, version)?),
            17 => MetadataRecord::BrokerRegistrationChange(body(&mut d, version)?),
            other => return Err(frame_error(format!("unknown record type {other}"))),
        };
        d.finish().map_err(decode_err)?;
        Ok((record, version))
    }
}

/// A frame field that Kafka reads as an unsigned varint and keeps in a short.
fn small(v: u32, what: &str) -> Result<i16> {
    i16::try_from(v).map_err(|_| MetadataError::Frame {
        offset: -1,
        reason: format!("{what} {v} is too large"),
    })
}

fn body<M: Message>(d: &mut Decoder, version: i16) -> Result<M> {
    let (min, max) = M::VERSIONS;
    if !(min..=max).contains(&version) {
        return Err(MetadataError::Frame {
            offset: -1,
            reason: format!(
                "record type {} has no version {version}",
                std::any::type_name::<M>()
            ),
        });
    }
    M::decode(d, version).map_err(|source| MetadataError::Decode { offset: -1, source })
}

impl MetadataError {
    /// The same error, located at `offset` in the metadata log.
    pub(crate) fn at_offset(self, at: i64) -> Self {
        match self {
            MetadataError::Decode { source, .. } => MetadataError::Decode { offset: at, source },
            MetadataError::Frame { reason, .. } => MetadataError::Frame { offset: at, reason },
            MetadataError::Replay { reason, .. } => MetadataError::Replay { offset: at, reason },
            other => other,
        }
    }
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
