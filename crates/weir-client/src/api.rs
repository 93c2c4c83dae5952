//! Which request goes with which response, and which versions this client implements.
//!
//! The codec in `weir-protocol` can encode every version in its schema; the client
//! only claims the versions whose semantics it handles (Produce from v3, the first
//! with RecordBatch v2; Metadata from v1, where an empty topic list stops meaning
//! "all"; ...). Negotiation picks, per API, the highest version inside both this range
//! and the broker's.

use weir_protocol::messages::{
    alter_partition_reassignments, api_versions, create_partitions, create_topics, delete_topics,
    describe_cluster, describe_configs, describe_topic_partitions, elect_leaders, fetch,
    incremental_alter_configs, init_producer_id, list_offsets, list_partition_reassignments,
    metadata, produce,
};
use weir_protocol::{ApiKey, Message};

/// A request body the client can send, tied to its response type.
pub trait ClientRequest: Message + Send + 'static {
    /// The response body.
    type Response: Message + Send + 'static;
    /// The API.
    const API: ApiKey;
    /// The inclusive range of versions the client implements.
    const CLIENT_VERSIONS: (i16, i16);
}

macro_rules! client_requests {
    ($($req:ty => $resp:ty, $api:ident, $min:literal..=$max:literal;)*) => {
        $(
            impl ClientRequest for $req {
                type Response = $resp;
                const API: ApiKey = ApiKey::$api;
                const CLIENT_VERSIONS: (i16, i16) = ($min, $max);
            }
        )*

        /// The versions the client implements for `api`, if it implements it at all.
        pub fn client_versions(api: ApiKey) -> Option<(i16, i16)> {
            match api {
                $(ApiKey::$api => Some(($min, $max)),)*
                _ => None,
            }
        }
    };
}

client_requests! {
    api_versions::ApiVersionsRequest => api_versions::ApiVersionsResponse, ApiVersions, 0..=4;
    metadata::MetadataRequest => metadata::MetadataResponse, Metadata, 1..=12;
    produce::ProduceRequest => produce::ProduceResponse, Produce, 3..=11;
    fetch::FetchRequest => fetch::FetchResponse, Fetch, 4..=17;
    list_offsets::ListOffsetsRequest => list_offsets::ListOffsetsResponse, ListOffsets, 1..=10;
    init_producer_id::InitProducerIdRequest => init_producer_id::InitProducerIdResponse, InitProducerId, 0..=5;
    create_topics::CreateTopicsRequest => create_topics::CreateTopicsResponse, CreateTopics, 0..=7;
    delete_topics::DeleteTopicsRequest => delete_topics::DeleteTopicsResponse, DeleteTopics, 0..=6;
    create_partitions::CreatePartitionsRequest => create_partitions::CreatePartitionsResponse, CreatePartitions, 0..=3;
    describe_configs::DescribeConfigsRequest => describe_configs::DescribeConfigsResponse, DescribeConfigs, 0..=4;
    incremental_alter_configs::IncrementalAlterConfigsRequest => incremental_alter_configs::IncrementalAlterConfigsResponse, IncrementalAlterConfigs, 0..=1;
    describe_cluster::DescribeClusterRequest => describe_cluster::DescribeClusterResponse, DescribeCluster, 0..=1;
    elect_leaders::ElectLeadersRequest => elect_leaders::ElectLeadersResponse, ElectLeaders, 0..=2;
    alter_partition_reassignments::AlterPartitionReassignmentsRequest => alter_partition_reassignments::AlterPartitionReassignmentsResponse, AlterPartitionReassignments, 0..=1;
    list_partition_reassignments::ListPartitionReassignmentsRequest => list_partition_reassignments::ListPartitionReassignmentsResponse, ListPartitionReassignments, 0..=0;
    describe_topic_partitions::DescribeTopicPartitionsRequest => describe_topic_partitions::DescribeTopicPartitionsResponse, DescribeTopicPartitions, 0..=0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ranges_lie_inside_the_codec_ranges() {
        for &api in ApiKey::ALL {
            if let Some((min, max)) = client_versions(api) {
                let (cmin, cmax) = api.versions();
                assert!(
                    cmin <= min && max <= cmax,
                    "{api:?}: {min}-{max} vs {cmin}-{cmax}"
                );
            }
        }
    }
}
