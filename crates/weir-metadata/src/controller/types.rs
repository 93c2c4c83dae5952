//! Requests to the controller and its per-resource results.
//!
//! These mirror the fields of the Kafka admin requests (CreateTopics, DeleteTopics,
//! CreatePartitions, AlterConfigs, IncrementalAlterConfigs) without their wire
//! versions: an api handler copies the fields across and copies results back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use weir_protocol::Uuid;
use weir_types::ErrorCode;

use super::codec::{error_code, uuid};

/// The outcome for one resource: a Kafka error code and an optional message (Kafka's
/// `ApiError`). `ErrorCode::None` is success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// The code the response carries.
    #[serde(with = "error_code")]
    pub code: ErrorCode,
    /// The human-readable message (`error_message` in responses that have one).
    pub message: Option<String>,
}

impl ApiError {
    /// Success.
    pub const NONE: ApiError = ApiError {
        code: ErrorCode::None,
        message: None,
    };

    /// A failure with a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: Some(message.into()),
        }
    }

    /// A failure with the code's default description only.
    pub fn from_code(code: ErrorCode) -> ApiError {
        ApiError {
            code,
            message: None,
        }
    }

    /// Whether this is success.
    pub fn is_success(&self) -> bool {
        self.code == ErrorCode::None
    }
}

/// A manual replica assignment for one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaAssignment {
    /// The partition id (0-based; together the assignments must cover 0..n).
    pub partition_index: i32,
    /// Broker ids, in preferred order.
    pub broker_ids: Vec<i32>,
}

/// One topic of a CreateTopics request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTopic {
    /// The topic name.
    pub name: String,
    /// The partition count; -1 takes `num.partitions`. Must be -1 with assignments.
    pub num_partitions: i32,
    /// The replication factor; -1 takes `default.replication.factor`. Must be -1
    /// with assignments.
    pub replication_factor: i16,
    /// Manual replica assignments (empty: the controller places replicas).
    pub assignments: Vec<ReplicaAssignment>,
    /// Topic config overrides; a null value is INVALID_CONFIG, as in Kafka.
    pub configs: Vec<(String, Option<String>)>,
}

impl CreateTopic {
    /// A topic with the broker defaults for partitions and replication.
    pub fn with_defaults(name: impl Into<String>) -> CreateTopic {
        CreateTopic {
            name: name.into(),
            num_partitions: -1,
            replication_factor: -1,
            assignments: Vec::new(),
            configs: Vec::new(),
        }
    }
}

/// The result for one topic of a CreateTopics request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTopicResult {
    /// The topic name, as requested.
    pub name: String,
    /// Success or why not.
    pub error: ApiError,
    /// The new topic's id (zero on failure).
    #[serde(with = "uuid")]
    pub topic_id: Uuid,
    /// The partition count (-1 on failure).
    pub num_partitions: i32,
    /// The replication factor (-1 on failure).
    pub replication_factor: i16,
    /// The topic's config overrides as stored. The api layer adds the broker
    /// defaults for the full list CreateTopics v5+ returns.
    pub configs: BTreeMap<String, String>,
}

impl CreateTopicResult {
    pub(crate) fn failed(name: &str, error: ApiError) -> CreateTopicResult {
        CreateTopicResult {
            name: name.to_string(),
            error,
            topic_id: Uuid::ZERO,
            num_partitions: -1,
            replication_factor: -1,
            configs: BTreeMap::new(),
        }
    }
}

/// A topic named in a DeleteTopics request: by name (v0-5) or by id (v6+).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TopicRef {
    /// By name.
    Name(String),
    /// By topic id.
    Id(#[serde(with = "uuid")] Uuid),
}

/// The result for one topic of a DeleteTopics request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteTopicResult {
    /// The topic's name, if known (`None` for an unknown id).
    pub name: Option<String>,
    /// The topic's id (zero for an unknown name).
    #[serde(with = "uuid")]
    pub topic_id: Uuid,
    /// Success or why not.
    pub error: ApiError,
}

/// One topic of a CreatePartitions request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatePartitions {
    /// The topic name.
    pub name: String,
    /// The new total partition count; must be larger than the current one.
    pub count: i32,
    /// Broker ids for each new partition (one list per added partition), or `None`
    /// to let the controller place them.
    pub assignments: Option<Vec<Vec<i32>>>,
}

/// The result for one topic of a CreatePartitions request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatePartitionsResult {
    /// The topic name.
    pub name: String,
    /// Success or why not.
    pub error: ApiError,
}

/// One topic of an AlterConfigs request: the complete new set of overrides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterTopicConfigs {
    /// The topic name.
    pub topic: String,
    /// The overrides; names left out are removed. A null value is INVALID_REQUEST.
    pub configs: Vec<(String, Option<String>)>,
}

/// IncrementalAlterConfigs' operation on one config (`config_operation` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlterConfigOp {
    /// Set the value (0).
    Set,
    /// Remove the override (1).
    Delete,
    /// Add items to a list config, skipping those already there (2).
    Append,
    /// Remove items from a list config (3).
    Subtract,
}

impl AlterConfigOp {
    /// The operation for a wire value, if it is one.
    pub fn from_i8(op: i8) -> Option<AlterConfigOp> {
        Some(match op {
            0 => AlterConfigOp::Set,
            1 => AlterConfigOp::Delete,
            2 => AlterConfigOp::Append,
            3 => AlterConfigOp::Subtract,
            _ => return None,
        })
    }
}

/// One config change of an IncrementalAlterConfigs request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigOp {
    /// The config name.
    pub name: String,
    /// The operation.
    pub op: AlterConfigOp,
    /// The value (ignored by `Delete`; required by the others).
    pub value: Option<String>,
}

/// One topic of an IncrementalAlterConfigs request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncrementalAlterTopicConfigs {
    /// The topic name.
    pub topic: String,
    /// The changes, applied together or not at all.
    pub ops: Vec<ConfigOp>,
}

/// The result for one topic of an (Incremental)AlterConfigs request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterConfigsResult {
    /// The topic name.
    pub topic: String,
    /// Success or why not.
    pub error: ApiError,
}

/// A per-resource result that a whole-request failure can override (a request whose
/// records would not fit one batch fails as a whole, as in Kafka).
pub(crate) trait Outcome {
    fn succeeded(&self) -> bool;
    fn fail(&mut self, error: ApiError);
}

impl Outcome for CreateTopicResult {
    fn succeeded(&self) -> bool {
        self.error.is_success()
    }
    fn fail(&mut self, error: ApiError) {
        *self = CreateTopicResult::failed(&self.name, error);
    }
}

macro_rules! outcome {
    ($($t:ty),*) => {$(
        impl Outcome for $t {
            fn succeeded(&self) -> bool {
                self.error.is_success()
            }
            fn fail(&mut self, error: ApiError) {
                self.error = error;
            }
        }
    )*};
}

outcome!(
    DeleteTopicResult,
    CreatePartitionsResult,
    AlterConfigsResult
);
