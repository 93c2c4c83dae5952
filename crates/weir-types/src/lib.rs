//! The vocabulary every Weir crate shares, below the request and control paths.
//!
//! Offsets, epochs and ids are plain integers on the wire, but mixing them up is a
//! classic source of replication bugs (an epoch compared with an offset, a leader
//! epoch with a producer epoch). Each kind gets its own newtype here so the compiler
//! keeps them apart. Kafka error codes live here too because the log, the replica
//! manager and the coordinators all need to *name* an outcome, while only the api
//! layer turns it into a response. The [`Clock`] trait is the seam that lets a
//! deterministic simulation drive time later.

mod clock;
mod error_code;
mod ids;

pub use clock::{Clock, SystemClock};
pub use error_code::ErrorCode;
pub use ids::{LeaderEpoch, NodeId, Offset, ProducerEpoch, ProducerId, Sequence};
