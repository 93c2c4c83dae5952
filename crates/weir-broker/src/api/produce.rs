//! Produce: append record batches, and answer as `acks` asks.
//!
//! The appends happen here, in `call`, so they take effect in request order on the
//! connection; what is left to wait for (acks=all: the group-commit fsync) runs as a
//! [`Handled::Later`], so a pipelining producer's next request is read meanwhile.
//! Every partition of the request is appended before any is waited for, so one
//! request costs one group-commit round.
//!
//! - `acks` 0: appended, no response at all (a failed partition closes the
//!   connection instead, as Kafka does). 1: answered once written. -1 (all):
//!   answered once durable, or REQUEST_TIMED_OUT after `timeout_ms`. Anything else:
//!   INVALID_REQUIRED_ACKS for every partition, nothing appended.
//! - Kafka's request rules (v3+): exactly one RecordBatch per partition, else
//!   INVALID_RECORD; zstd only from v7 (UNSUPPORTED_COMPRESSION_TYPE).
//! - Transactions do not exist yet: a request with a transactional id, or a
//!   transactional batch, fails with UNSUPPORTED_VERSION and a message saying so
//!   (v8+), which clients treat as fatal rather than retrying forever.
//! - Everything else (CRC, `max.message.bytes`, sequences, unknown partitions) is the
//!   replica layer's check, its error mapped by [`errors::replica`].

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use weir_protocol::messages::produce::{
    PartitionProduceResponse, ProduceRequest, ProduceResponse, TopicProduceResponse,
};
use weir_protocol::records::{BatchHeader, Compression};
use weir_protocol::Response;
use weir_types::ErrorCode;

use super::{errors, ApiState, Handled};
use crate::replica::{Acks, AppendResult, PendingAppend, ReplicaError};

/// Why transactional produce is refused, in the response's `error_message`.
const NO_TRANSACTIONS: &str = "transactions are not supported by this broker yet";

/// One partition's outcome so far.
enum Outcome {
    /// Appended; for acks=all still to be waited on.
    Appended(PendingAppend),
    /// Refused, with the code and message.
    Failed(ErrorCode, Option<String>),
}

/// Handles a Produce request; see the module docs.
pub(super) fn handle(state: &ApiState, request: ProduceRequest, version: i16) -> Handled {
    let acks = Acks::from_wire(request.acks);
    let refuse_all = match (acks, &request.transactional_id) {
        (None, _) => Some((ErrorCode::InvalidRequiredAcks, None)),
        (Some(_), Some(_)) => Some((ErrorCode::UnsupportedVersion, Some(NO_TRANSACTIONS))),
        (Some(_), None) => None,
    };
    let mut topics: Vec<(String, Vec<(i32, Outcome)>)> =
        Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for p in topic.partition_data {
            let outcome = match (refuse_all, acks) {
                (Some((code, message)), _) => Outcome::Failed(code, message.map(str::to_owned)),
                (None, Some(acks)) => append(state, &topic.name, p.index, p.records, acks, version),
                (None, None) => Outcome::Failed(ErrorCode::InvalidRequiredAcks, None),
            };
            partitions.push((p.index, outcome));
        }
        topics.push((topic.name, partitions));
    }
    if acks == Some(Acks::None) {
        // No response to carry an error: Kafka closes the connection instead, so
        // the producer notices, refreshes its metadata and reconnects.
        let failed = topics.iter().flat_map(|(name, ps)| {
            ps.iter().filter_map(move |(index, o)| match o {
                Outcome::Failed(code, _) => Some(format!("{name}-{index}: {code:?}")),
                Outcome::Appended(_) => None,
            })
        });
        let failed: Vec<String> = failed.collect();
        return if failed.is_empty() {
            Handled::NoResponse
        } else {
            Handled::Close(format!("acks=0 produce failed ({})", failed.join(", ")))
        };
    }
    // acks=all with something appended waits (an append that needs no fsync, on a
    // topic that opted out of fsync-before-ack, finishes at once in the task).
    let waits = acks == Some(Acks::All)
        && topics
            .iter()
            .flat_map(|(_, ps)| ps)
            .any(|(_, o)| matches!(o, Outcome::Appended(_)));
    if !waits {
        return Handled::Now(Response::Produce(respond(topics)));
    }
    let timeout = Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0));
    let deadline = Instant::now() + timeout;
    Handled::Later(Box::pin(async move {
        Response::Produce(respond_after(topics, deadline).await)
    }))
}

/// Checks Kafka's per-partition request rules, then appends.
fn append(
    state: &ApiState,
    topic: &str,
    partition: i32,
    records: Option<Bytes>,
    acks: Acks,
    version: i16,
) -> Outcome {
    let Some(records) = records else {
        return Outcome::Failed(
            ErrorCode::InvalidRecord,
            Some("the partition's records are null".to_owned()),
        );
    };
    // A header that does not parse is left to the log, which names the problem
    // (CORRUPT_MESSAGE, INVALID_RECORD) exactly as for any other bad batch.
    if let Ok(header) = BatchHeader::parse(&records) {
        if header.total_len() != records.len() {
            return Outcome::Failed(
                ErrorCode::InvalidRecord,
                Some("Produce requests with version >= 3 must have exactly one record batch per partition".to_owned()),
            );
        }
        if header.is_transactional() {
            return Outcome::Failed(
                ErrorCode::UnsupportedVersion,
                Some(NO_TRANSACTIONS.to_owned()),
            );
        }
        if version < 7 && header.compression() == Compression::Zstd {
            return Outcome::Failed(
                ErrorCode::UnsupportedCompressionType,
                Some("zstd needs Produce v7 or later".to_owned()),
            );
        }
    }
    match state.replicas.start_append(topic, partition, records, acks) {
        Ok(pending) => Outcome::Appended(pending),
        Err(e) => failed(&e),
    }
}

fn failed(e: &ReplicaError) -> Outcome {
    let (code, message) = errors::replica(e);
    Outcome::Failed(code, Some(message))
}

/// Waits for every acks=all append (all against the same deadline), then answers.
async fn respond_after(
    topics: Vec<(String, Vec<(i32, Outcome)>)>,
    deadline: Instant,
) -> ProduceResponse {
    let mut done = Vec::with_capacity(topics.len());
    for (name, partitions) in topics {
        let mut out = Vec::with_capacity(partitions.len());
        for (index, outcome) in partitions {
            let outcome = match outcome {
                Outcome::Appended(pending) => match pending.wait_until(deadline).await {
                    Ok(result) => Finished::Ok(result),
                    Err(e) => {
                        let (code, message) = errors::replica(&e);
                        Finished::Failed(code, Some(message))
                    }
                },
                Outcome::Failed(code, message) => Finished::Failed(code, message),
            };
            out.push((index, outcome));
        }
        done.push((name, out));
    }
    build(done)
}

/// A partition's final outcome.
enum Finished {
    Ok(AppendResult),
    Failed(ErrorCode, Option<String>),
}

/// Answers without waiting (acks=1, or acks=all with nothing left to wait for).
fn respond(topics: Vec<(String, Vec<(i32, Outcome)>)>) -> ProduceResponse {
    build(
        topics
            .into_iter()
            .map(|(name, ps)| {
                let ps = ps
                    .into_iter()
                    .map(|(index, o)| {
                        let f = match o {
                            Outcome::Appended(p) => Finished::Ok(*p.result()),
                            Outcome::Failed(code, message) => Finished::Failed(code, message),
                        };
                        (index, f)
                    })
                    .collect();
                (name, ps)
            })
            .collect(),
    )
}

fn build(topics: Vec<(String, Vec<(i32, Finished)>)>) -> ProduceResponse {
    ProduceResponse {
        responses: topics
            .into_iter()
            .map(|(name, partitions)| TopicProduceResponse {
                name,
                partition_responses: partitions
                    .into_iter()
                    .map(|(index, f)| partition_response(index, f))
                    .collect(),
            })
            .collect(),
        ..ProduceResponse::default()
    }
}

fn partition_response(index: i32, f: Finished) -> PartitionProduceResponse {
    match f {
        Finished::Ok(r) => PartitionProduceResponse {
            index,
            error_code: ErrorCode::None.code(),
            base_offset: r.base_offset.get(),
            log_append_time_ms: r.log_append_time_ms,
            log_start_offset: r.log_start_offset.get(),
            ..PartitionProduceResponse::default()
        },
        Finished::Failed(code, message) => PartitionProduceResponse {
            index,
            error_code: code.code(),
            base_offset: -1,
            log_append_time_ms: -1,
            log_start_offset: -1,
            error_message: message,
            ..PartitionProduceResponse::default()
        },
    }
}
