//! InitProducerId: a producer id (and epoch) for an idempotent producer.
//!
//! Every version, v0 to v5: aiokafka and KafkaJS idempotent producers still send
//! v0-v2, and a broker that refuses them breaks those clients (DESIGN §7).
//!
//! - No transactional id: a fresh id from [`ProducerIds`](super::ProducerIds) with
//!   epoch 0.
//! - v3+ with the producer's current id and epoch (KIP-360, sent after an
//!   UNKNOWN_PRODUCER_ID or a timed-out batch): the same id with the epoch bumped,
//!   so the producer keeps its id and restarts its sequences at 0. Only for an id
//!   this broker handed out, and only while the epoch can still grow; otherwise a
//!   fresh id. (Kafka hands non-transactional producers a fresh id here; a bump is
//!   equally valid and keeps the producer state small.)
//! - A transactional id: transactions do not exist yet, and no error code says so
//!   exactly. UNSUPPORTED_VERSION is the honest one (the broker lacks the feature);
//!   it is fatal in clients, which is right: retrying cannot help. An empty
//!   transactional id is INVALID_REQUEST, as in Kafka.

use weir_protocol::messages::init_producer_id::{InitProducerIdRequest, InitProducerIdResponse};
use weir_types::ErrorCode;

use super::{errors, ApiState};

/// The largest epoch that can still be bumped: Kafka keeps `i16::MAX` unused so an
/// epoch never wraps around to look older.
const MAX_BUMPABLE_EPOCH: i16 = i16::MAX - 1;

/// Answers an InitProducerId request.
pub(super) async fn handle(
    state: &ApiState,
    request: &InitProducerIdRequest,
) -> InitProducerIdResponse {
    let failed = |code: ErrorCode| InitProducerIdResponse {
        error_code: code.code(),
        producer_id: -1,
        producer_epoch: -1,
        ..InitProducerIdResponse::default()
    };
    match request.transactional_id.as_deref() {
        None => {}
        Some("") => return failed(ErrorCode::InvalidRequest),
        Some(_) => return failed(ErrorCode::UnsupportedVersion),
    }
    let (id, epoch) = (request.producer_id, request.producer_epoch);
    if id >= 0
        && (0..MAX_BUMPABLE_EPOCH).contains(&epoch)
        && state.producer_ids.was_allocated(id).await
    {
        return granted(id, epoch + 1);
    }
    match state.producer_ids.allocate().await {
        Ok(id) => granted(id, 0),
        Err(e) => {
            tracing::error!(error = %e, "cannot reserve producer ids");
            failed(errors::producer_id_allocation(&e))
        }
    }
}

fn granted(producer_id: i64, producer_epoch: i16) -> InitProducerIdResponse {
    InitProducerIdResponse {
        error_code: ErrorCode::None.code(),
        producer_id,
        producer_epoch,
        ..InitProducerIdResponse::default()
    }
}
