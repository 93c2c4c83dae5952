//! The versions Weir advertises in ApiVersions: exactly what the handlers implement.
//!
//! The codec (`weir-protocol`) can decode more versions than the broker serves: it
//! knows Produce v0-2 and Fetch v0-3, for example, which carry the old message
//! formats Kafka 4 dropped. What a client may *use* is decided here, per handler, and
//! the dispatcher refuses anything outside this table (KIP-896 removed the same old
//! versions from Kafka 4.0, so clients already cope with these minimums).
//!
//! Each row says why its range stops where it does. A maximum below the codec's
//! would mean a newer version needs behaviour the handler lacks; today every row
//! reaches the codec's maximum, which the unit test below keeps honest.

use weir_protocol::messages::api_versions::ApiVersion;
use weir_protocol::ApiKey;

/// One row of the table: an API and the inclusive range of versions its handler
/// implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Supported {
    /// The API.
    pub api: ApiKey,
    /// The oldest version served.
    pub min: i16,
    /// The newest version served.
    pub max: i16,
}

const fn row(api: ApiKey, min: i16, max: i16) -> Supported {
    Supported { api, min, max }
}

/// Every API the broker serves, in api-key order (the order ApiVersions lists them).
pub const SUPPORTED: &[Supported] = &[
    // v3+: RecordBatch v2 only (Kafka 4 minimum). v10+ adds the KIP-951 leader hint
    // as an optional tagged field; a single node never answers NOT_LEADER, so there
    // is nothing to put in it. v11: transactional produce is refused anyway.
    row(ApiKey::Produce, 3, 11),
    // v4+: Kafka 4 minimum (isolation level, LSO). v13+ names topics by id; v15+
    // carries the replica state; v16/v17 add only optional tagged fields.
    row(ApiKey::Fetch, 4, 17),
    // v1+: Kafka 4 minimum (v0 returned offset lists). v7 max timestamp (-3), v8
    // earliest local (-4), v9 latest tiered (-5), v10 a timeout.
    row(ApiKey::ListOffsets, 1, 10),
    // Every version: v10+ topics by id, v12 null names for id lookups.
    row(ApiKey::Metadata, 0, 12),
    // Groups (coordinator/): every version; v0 commits and fetches go to the
    // coordinator too (Kafka kept v0 offsets in ZooKeeper). OffsetCommit v9+ is
    // KIP-848's GROUP_ID_NOT_FOUND rule; OffsetFetch v8+ batches groups.
    row(ApiKey::OffsetCommit, 0, 9),
    row(ApiKey::OffsetFetch, 0, 9),
    // v4+ batches keys; transaction coordinators are refused per key.
    row(ApiKey::FindCoordinator, 0, 6),
    // v4+ requires the member id round (KIP-394), v5+ static members, v9 lets a
    // static leader skip the assignment.
    row(ApiKey::JoinGroup, 0, 9),
    row(ApiKey::Heartbeat, 0, 4),
    row(ApiKey::LeaveGroup, 0, 5),
    row(ApiKey::SyncGroup, 0, 5),
    row(ApiKey::DescribeGroups, 0, 5),
    row(ApiKey::ListGroups, 0, 5),
    // v0-4: v0 is the fallback every client can parse (KIP-511).
    row(ApiKey::ApiVersions, 0, 4),
    // v2+: Kafka 4 minimum. v5+ returns configs, v7 topic ids.
    row(ApiKey::CreateTopics, 2, 7),
    // v1+: Kafka 4 minimum. v6 deletes by id.
    row(ApiKey::DeleteTopics, 1, 6),
    row(ApiKey::DeleteRecords, 0, 2),
    // Every version: aiokafka and KafkaJS idempotent producers use v0-2 (DESIGN §7).
    row(ApiKey::InitProducerId, 0, 5),
    // v2+: Kafka 4 minimum (current leader epoch fencing).
    row(ApiKey::OffsetForLeaderEpoch, 2, 4),
    // v1+: Kafka 4 minimum (sources and synonyms; v0 had only is_default).
    row(ApiKey::DescribeConfigs, 1, 4),
    row(ApiKey::AlterConfigs, 0, 2),
    // v1+: Kafka 4 minimum.
    row(ApiKey::DescribeLogDirs, 1, 4),
    row(ApiKey::CreatePartitions, 0, 3),
    row(ApiKey::DeleteGroups, 0, 2),
    // Every version: v1 adds the election type (v0 is PREFERRED), v2 is flexible.
    row(ApiKey::ElectLeaders, 0, 2),
    row(ApiKey::IncrementalAlterConfigs, 0, 1),
    // v1: KIP-860's allow_replication_factor_change.
    row(ApiKey::AlterPartitionReassignments, 0, 1),
    row(ApiKey::ListPartitionReassignments, 0, 0),
    row(ApiKey::OffsetDelete, 0, 0),
    row(ApiKey::DescribeCluster, 0, 1),
    // KIP-848 (coordinator/consumer/): v0; v1 adds regex subscriptions.
    row(ApiKey::ConsumerGroupHeartbeat, 0, 1),
    row(ApiKey::ConsumerGroupDescribe, 0, 0),
    // KIP-966: partitions with their eligible leader replicas, paged.
    row(ApiKey::DescribeTopicPartitions, 0, 0),
];

/// The served range of `api`, or `None` if no handler serves it.
pub fn supported(api: ApiKey) -> Option<Supported> {
    SUPPORTED.iter().copied().find(|s| s.api == api)
}

/// Whether `api` at `version` is served.
pub fn is_supported(api: ApiKey, version: i16) -> bool {
    supported(api).is_some_and(|s| (s.min..=s.max).contains(&version))
}

/// The table as ApiVersions' `api_keys`.
pub fn api_versions() -> Vec<ApiVersion> {
    SUPPORTED
        .iter()
        .map(|s| ApiVersion {
            api_key: s.api as i16,
            min_version: s.min,
            max_version: s.max,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_within_the_codec_and_sorted() {
        let mut last = -1;
        for s in SUPPORTED {
            let (codec_min, codec_max) = s.api.versions();
            assert!(s.min <= s.max, "{:?}", s.api);
            assert!(s.min >= codec_min && s.max <= codec_max, "{:?}", s.api);
            assert!(s.api as i16 > last, "{:?} out of order", s.api);
            last = s.api as i16;
        }
    }

    #[test]
    fn kafka_4_minimums() {
        assert_eq!(supported(ApiKey::Produce).map(|s| s.min), Some(3));
        assert_eq!(supported(ApiKey::Fetch).map(|s| s.min), Some(4));
        assert_eq!(supported(ApiKey::ListOffsets).map(|s| s.min), Some(1));
        assert_eq!(supported(ApiKey::InitProducerId).map(|s| s.min), Some(0));
        assert!(!is_supported(ApiKey::Produce, 2));
        assert!(is_supported(ApiKey::Fetch, 17));
        assert!(supported(ApiKey::AddPartitionsToTxn).is_none());
    }
}
