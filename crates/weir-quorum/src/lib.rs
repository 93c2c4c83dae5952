//! The Raft controller quorum of a Weir cluster.
//!
//! In the control path (see `weir-metadata`), the controller turns admin requests
//! and broker heartbeats into metadata records and commits them through a
//! [`MetadataJournal`](weir_metadata::MetadataJournal). On a single node that is the
//! local `MetadataStore`; in a cluster it is this crate: a few controller voters
//! replicate the metadata log with Raft (openraft 0.9), the leader is the active
//! controller, and every voter applies each committed change to its own
//! [`MetadataImage`](weir_metadata::MetadataImage) and publishes it to its broker's
//! subscribers (replica manager, Metadata handler). Nodes outside the voters
//! (broker-only nodes) do the same as non-voting learners. Controller handles on other
//! nodes reach the active one through [`ControllerTransport`](weir_metadata::ControllerTransport),
//! carried over the same listener as Raft's RPCs. openraft stays behind those two
//! traits: nothing outside this crate names it, so an upgrade stays here.
//!
//! # Pieces
//!
//! - [`QuorumConfig`]: node id, voters, data directory, timing, snapshot threshold.
//! - [`Quorum`]: start a node on a bound listener, get its [`QuorumJournal`] and
//!   transport, set the forwarded-request handler, shut down.
//! - `log_store` / `codec`: the Raft log as Kafka RecordBatches in a weir-log
//!   partition log (`__cluster_metadata-0`), plus the vote and purge files.
//! - `state_machine` / `snapshot`: committed changes onto the image; the image as
//!   records in snapshot files.
//! - `net`: the controller listener's framing, server and pooled clients.
//! - `learner`: nodes outside the voters (broker-only nodes) follow the log as
//!   openraft learners: they ask the leader to add them and never vote.
//!
//! # Offsets
//!
//! Every record of one committed change gets that entry's Raft log index as its
//! offset; the image's offset is the last applied index; `next_offset()` on the
//! leader is its last log index + 1 (so a broker's epoch, the offset of the change
//! that registered it, is an index of the Raft log).

mod codec;
mod config;
mod error;
mod journal;
mod learner;
mod log_store;
mod net;
mod quorum;
mod snapshot;
mod state_file;
mod state_machine;
mod types;

pub use config::QuorumConfig;
pub use error::QuorumError;
pub use journal::QuorumJournal;
pub use quorum::{Quorum, METADATA_LOG_DIR};
