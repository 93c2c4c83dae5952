//! DeleteRecords: move partitions' log start offsets forward.
//!
//! The replica layer deletes everything below the requested offset (-1: below the
//! high watermark), refuses an offset past the high watermark with
//! OFFSET_OUT_OF_RANGE, and persists the new log start offset before answering, so a
//! crash cannot bring deleted records back. The answer is the new low watermark.

use weir_protocol::messages::delete_records::{
    DeleteRecordsPartitionResult, DeleteRecordsRequest, DeleteRecordsResponse,
    DeleteRecordsTopicResult,
};
use weir_types::ErrorCode;

use super::{errors, ApiState};

/// Answers a DeleteRecords request, one partition after the other.
pub(super) async fn handle(
    state: &ApiState,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for t in request.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let deleted = state
                .replicas
                .delete_records(&t.name, p.partition_index, p.offset)
                .await;
            partitions.push(match deleted {
                Ok(low_watermark) => DeleteRecordsPartitionResult {
                    partition_index: p.partition_index,
                    low_watermark: low_watermark.get(),
                    error_code: ErrorCode::None.code(),
                },
                Err(e) => DeleteRecordsPartitionResult {
                    partition_index: p.partition_index,
                    low_watermark: -1,
                    error_code: errors::replica_code(&e).code(),
                },
            });
        }
        topics.push(DeleteRecordsTopicResult {
            name: t.name,
            partitions,
        });
    }
    DeleteRecordsResponse {
        throttle_time_ms: 0,
        topics,
    }
}
