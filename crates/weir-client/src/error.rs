//! The client's error type.
//!
//! One enum for the whole crate. A variant says what failed and where (the broker
//! address, the topic-partition), so the message printed by a tool is enough to act on:
//! "cannot reach 127.0.0.1:9092: connection refused — is `weir server` running?".
//! Errors a broker returns as a Kafka error code become [`Error::Kafka`], which keeps
//! the [`ErrorCode`] and the broker's message, so callers can match on the code.
//!
//! `Error` is `Clone` (I/O sources are shared behind an `Arc`) because one failure
//! often has many recipients: every record of a batch, every request pipelined on a
//! connection that broke.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use weir_protocol::records::RecordsError;
use weir_protocol::{DecodeError, EncodeError};
use weir_types::ErrorCode;

/// A `Result` with this crate's [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the client.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum Error {
    /// The TCP connection to a broker could not be opened.
    #[error("cannot reach {addr}: {reason} — is `weir server` running?")]
    Connect {
        /// The address that was dialled.
        addr: String,
        /// A short, human reason ("connection refused", "timed out after 10000 ms").
        reason: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<Arc<io::Error>>,
    },
    /// None of the bootstrap servers answered.
    #[error("cannot reach any bootstrap server ({servers}); last error: {last}")]
    Bootstrap {
        /// The servers that were tried, comma-separated.
        servers: String,
        /// The error of the last attempt.
        #[source]
        last: Box<Error>,
    },
    /// An established connection failed while requests were outstanding.
    #[error("connection to {addr} lost: {source}")]
    ConnectionLost {
        /// The broker address.
        addr: String,
        /// What the socket reported.
        #[source]
        source: Arc<io::Error>,
    },
    /// The broker closed the connection (EOF) while requests were outstanding.
    #[error("connection to {addr} was closed by the broker")]
    ConnectionClosed {
        /// The broker address.
        addr: String,
    },
    /// A request got no response in time; the connection is closed (Kafka answers in
    /// order, so nothing behind the late response could arrive either).
    #[error("{api} request to {addr} timed out after {} ms", .after.as_millis())]
    Timeout {
        /// The API of the request.
        api: &'static str,
        /// The broker address.
        addr: String,
        /// How long the client waited.
        after: Duration,
    },
    /// The broker does not speak any version of an API this client implements.
    #[error("the broker at {addr} does not support {api} in any version this client speaks ({min}-{max})")]
    UnsupportedApi {
        /// The API.
        api: &'static str,
        /// The broker address.
        addr: String,
        /// The lowest version the client implements.
        min: i16,
        /// The highest version the client implements.
        max: i16,
    },
    /// The broker sent something that breaks the protocol (a bad frame, a wrong
    /// correlation id). The connection is closed.
    #[error("protocol error from {addr}: {reason}")]
    Protocol {
        /// The broker address.
        addr: String,
        /// What was wrong.
        reason: String,
    },
    /// Every in-flight slot of the connection is taken; try again when a response
    /// has arrived.
    #[error("{limit} requests already in flight to {addr}")]
    InFlightLimit {
        /// The broker address.
        addr: String,
        /// The configured limit.
        limit: usize,
    },
    /// A response body could not be decoded.
    #[error("cannot decode a response: {0}")]
    Decode(#[from] DecodeError),
    /// A request could not be encoded (a string too long for the wire, say).
    #[error("cannot encode a request: {0}")]
    Encode(#[from] EncodeError),
    /// A record batch could not be built or read.
    #[error("record batch: {0}")]
    Records(#[from] RecordsError),
    /// The broker answered with a Kafka error code.
    #[error("{context}: {}", describe_code(*.code, .message.as_deref()))]
    Kafka {
        /// What the error is about (a topic, a topic-partition, a request).
        context: String,
        /// The Kafka error code.
        code: ErrorCode,
        /// The broker's error message, when it sent one.
        message: Option<String>,
    },
    /// A configuration value is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A record cannot be sent at all (too large for the configured limits).
    #[error("record of {size} bytes is larger than {limit_name} ({limit} bytes)")]
    RecordTooLarge {
        /// The estimated serialized size of the record.
        size: usize,
        /// The limit that was exceeded.
        limit: usize,
        /// The configuration name of that limit.
        limit_name: &'static str,
    },
    /// A record was not acknowledged within `delivery.timeout.ms`.
    #[error("record for {topic}-{partition} not delivered within delivery.timeout.ms ({} ms){}", .timeout.as_millis(), last_error_suffix(.last_error.as_deref()))]
    DeliveryTimeout {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The configured delivery timeout.
        timeout: Duration,
        /// The last error seen while retrying, if any.
        last_error: Option<Box<Error>>,
    },
    /// A topic is not (yet) in the cluster metadata.
    #[error("topic {topic} is not in the cluster metadata after {} ms", .waited.as_millis())]
    UnknownTopic {
        /// The topic.
        topic: String,
        /// How long the client waited for it to appear.
        waited: Duration,
    },
    /// A partition number outside the topic's partitions.
    #[error("topic {topic} has {partitions} partitions; partition {partition} does not exist")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The requested partition.
        partition: i32,
        /// How many partitions the topic has.
        partitions: usize,
    },
    /// A consumer position is out of range and `auto.offset.reset` is `none`.
    #[error(
        "offset {offset} is out of range for {topic}-{partition} and auto.offset.reset is none"
    )]
    OffsetOutOfRange {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The offset that was out of range.
        offset: i64,
    },
    /// A partition has no position and `auto.offset.reset` is `none`.
    #[error("{topic}-{partition} has no position and auto.offset.reset is none; seek first")]
    NoOffset {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// An operation on a partition the consumer is not assigned.
    #[error("{topic}-{partition} is not assigned to this consumer")]
    NotAssigned {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// The producer or client was closed before the operation completed.
    #[error("the {0} is closed")]
    Closed(&'static str),
    /// An operation gave up after its overall time budget (`default.api.timeout.ms`).
    #[error("{operation} did not complete within {} ms{}", .after.as_millis(), last_error_suffix(.last_error.as_deref()))]
    OperationTimeout {
        /// What was being attempted.
        operation: String,
        /// The budget.
        after: Duration,
        /// The last error seen while retrying, if any.
        last_error: Option<Box<Error>>,
    },
}

fn describe_code(code: ErrorCode, message: Option<&str>) -> String {
    match message {
        Some(m) if !m.is_empty() => format!("{} ({}): {m}", code_name(code), code.code()),
        _ => code.to_string(),
    }
}

fn code_name(code: ErrorCode) -> String {
    match code {
        ErrorCode::Other(c) => format!("error code {c}"),
        c => format!("{c:?}"),
    }
}

fn last_error_suffix(last: Option<&Error>) -> String {
    last.map(|e| format!("; last error: {e}"))
        .unwrap_or_default()
}

impl Error {
    /// A Kafka error from a response's error code and message.
    pub fn kafka(context: impl Into<String>, code: ErrorCode, message: Option<String>) -> Error {
        Error::Kafka {
            context: context.into(),
            code,
            message,
        }
    }

    /// `Ok(())` for error code 0, the Kafka error otherwise.
    pub fn check(context: impl FnOnce() -> String, code: i16, message: Option<&str>) -> Result<()> {
        match ErrorCode::from_code(code) {
            ErrorCode::None => Ok(()),
            code => Err(Error::kafka(context(), code, message.map(str::to_owned))),
        }
    }

    /// The Kafka error code, for errors a broker returned.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether retrying the same operation later may succeed: retriable Kafka codes,
    /// lost or refused connections and timeouts.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Kafka { code, .. } => code.is_retriable(),
            Error::Connect { .. }
            | Error::ConnectionLost { .. }
            | Error::ConnectionClosed { .. }
            | Error::Timeout { .. }
            | Error::InFlightLimit { .. } => true,
            Error::Bootstrap { last, .. } => last.is_retriable(),
            _ => false,
        }
    }

    /// Whether the error means the connection it came from is gone.
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. }
                | Error::ConnectionLost { .. }
                | Error::ConnectionClosed { .. }
                | Error::Timeout { .. }
                | Error::Protocol { .. }
        )
    }

    /// Whether the error means the client's metadata is stale (the leader moved, the
    /// topic is new or gone): refresh before retrying.
    pub fn needs_metadata_refresh(&self) -> bool {
        match self {
            Error::Kafka { code, .. } => code_needs_metadata_refresh(*code),
            other => other.is_connection_error(),
        }
    }

    /// The connect error for `addr`, with a human reason.
    pub(crate) fn connect(addr: &str, source: io::Error) -> Error {
        let reason = match source.kind() {
            io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
            io::ErrorKind::TimedOut => "connection timed out".to_owned(),
            io::ErrorKind::NotFound => "host not found".to_owned(),
            _ => source.to_string(),
        };
        Error::Connect {
            addr: addr.to_owned(),
            reason,
            source: Some(Arc::new(source)),
        }
    }
}

/// Kafka error codes that mean "your metadata is stale".
pub(crate) fn code_needs_metadata_refresh(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NotLeaderOrFollower
            | ErrorCode::LeaderNotAvailable
            | ErrorCode::UnknownTopicOrPartition
            | ErrorCode::FencedLeaderEpoch
            | ErrorCode::UnknownLeaderEpoch
            | ErrorCode::UnknownTopicId
            | ErrorCode::InconsistentTopicId
            | ErrorCode::NotController
            | ErrorCode::KafkaStorageError
            | ErrorCode::ReplicaNotAvailable
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_error_says_what_to_fix() {
        let e = Error::connect(
            "127.0.0.1:9092",
            io::Error::from(io::ErrorKind::ConnectionRefused),
        );
        assert_eq!(
            e.to_string(),
            "cannot reach 127.0.0.1:9092: connection refused — is `weir server` running?"
        );
        assert!(e.is_retriable());
    }

    #[test]
    fn kafka_error_carries_code_and_message() {
        let e = Error::kafka(
            "topic t",
            ErrorCode::TopicAlreadyExists,
            Some("Topic 't' already exists.".into()),
        );
        assert_eq!(e.code(), Some(ErrorCode::TopicAlreadyExists));
        assert_eq!(
            e.to_string(),
            "topic t: TopicAlreadyExists (36): Topic 't' already exists."
        );
        let bare = Error::kafka("t-0", ErrorCode::NotLeaderOrFollower, None);
        assert!(bare
            .to_string()
            .starts_with("t-0: NotLeaderOrFollower (6): "));
        assert!(bare.needs_metadata_refresh() && bare.is_retriable());
    }
}
