//! Internal errors to Kafka error codes: the one place the api layer does it.
//!
//! Handlers never pick a code for an internal failure themselves; they call one of
//! these functions, so the same failure reads the same in every response. Client
//! mistakes that a handler detects itself (a bad `acks`, a duplicate topic) are
//! named at the check, with the code Kafka uses there.
//!
//! The replica layer and the log already know which code each of their failures is
//! ([`ReplicaError::error_code`], which defers to `LogError::error_code`); this module
//! adds the controller's failures and the wording of error messages.

use weir_metadata::controller::ApiError;
use weir_metadata::MetadataError;
use weir_types::ErrorCode;

use crate::replica::ReplicaError;

/// The code and message for a replica-layer failure.
pub(super) fn replica(error: &ReplicaError) -> (ErrorCode, String) {
    (error.error_code(), error.to_string())
}

/// The code for a replica-layer failure, when the response has no message field.
pub(super) fn replica_code(error: &ReplicaError) -> ErrorCode {
    error.error_code()
}

/// The outcome of a controller call that failed as a whole (the controller stopped,
/// or could not write its log), for every resource of the request.
///
/// A stopped controller is NOT_CONTROLLER: retriable, so a client refreshes its
/// metadata and tries again, which is right while the broker shuts down or restarts.
/// A failed write is UNKNOWN_SERVER_ERROR with the cause, as Kafka reports an
/// unexpected controller exception; the change was not made.
pub(super) fn controller(error: &MetadataError) -> ApiError {
    match error {
        MetadataError::ControllerStopped => {
            ApiError::new(ErrorCode::NotController, "the controller is not running")
        }
        // Retriable codes (NOT_CONTROLLER while an election is under way,
        // REQUEST_TIMED_OUT for a forward that got no answer) so clients retry.
        other => ApiError::new(
            other.error_code(),
            format!("the metadata change failed: {other}"),
        ),
    }
}

/// The code for a producer id block that could not be reserved (the block file
/// could not be written). Not retriable: a disk that refuses a small fsync'd write
/// needs an operator, and KAFKA_STORAGE_ERROR is not a code InitProducerId clients
/// know.
pub(super) fn producer_id_allocation(_error: &std::io::Error) -> ErrorCode {
    ErrorCode::UnknownServerError
}

/// The message a response carries for `error`: its own, or none for success.
///
/// Kafka leaves `error_message` null on success and fills it for failures; a failure
/// without a specific message gets the code's standard description, so a client's
/// log line is never just a number.
pub(super) fn message(error: &ApiError) -> Option<String> {
    if error.code == ErrorCode::None {
        return None;
    }
    Some(
        error
            .message
            .clone()
            .unwrap_or_else(|| error.code.description().to_owned()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_failures_are_retriable_only_when_stopped() {
        let stopped = controller(&MetadataError::ControllerStopped);
        assert_eq!(stopped.code, ErrorCode::NotController);
        assert!(stopped.code.is_retriable());
        let failed = controller(&MetadataError::LogFailed);
        assert_eq!(failed.code, ErrorCode::UnknownServerError);
        assert!(failed
            .message
            .is_some_and(|m| m.contains("accepts no more writes")));
        let electing = controller(&MetadataError::NotController { leader: None });
        assert_eq!(electing.code, ErrorCode::NotController);
        assert!(electing.code.is_retriable());
    }

    #[test]
    fn messages_only_for_failures() {
        assert_eq!(message(&ApiError::NONE), None);
        assert_eq!(
            message(&ApiError::from_code(ErrorCode::TopicAlreadyExists)).as_deref(),
            Some(ErrorCode::TopicAlreadyExists.description())
        );
        assert_eq!(
            message(&ApiError::new(ErrorCode::InvalidConfig, "bad")).as_deref(),
            Some("bad")
        );
    }
}
