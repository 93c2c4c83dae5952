//! The payloads of the controller listener's frames: postcard encodings of the Raft
//! messages and of the replies, with the same types on both sides.
//!
//! Raft replies carry the handler's whole `Result`, so an error the remote raised
//! (a stale term, a snapshot mismatch) reaches the local openraft as the remote
//! error it is; what the transport itself fails at is the client's to report.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The first request on every connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Hello {
    /// The caller's cluster id; a mismatch refuses the connection.
    pub(crate) cluster_id: String,
    /// The caller's node id.
    pub(crate) from: u64,
    /// The node the caller means to reach; a mismatch (a misconfigured address)
    /// refuses the connection.
    pub(crate) to: u64,
}

/// A learner's request to join (the payload of `Kind::Join`); the caller's hello
/// must name the same node, so a node can only add itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JoinRequest {
    /// The learner's node id.
    pub(crate) node: u64,
    /// Where the leader reaches it now.
    pub(crate) address: String,
}

/// The answer to a [`JoinRequest`]; a refusal that retrying cannot fix is an error
/// frame instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum JoinReply {
    /// The learner is in the membership at that address (added now, or already).
    Joined,
    /// This node does not lead; ask `leader` if it is known.
    NotLeader {
        /// The leader this node knows of.
        leader: Option<u64>,
    },
}

/// Encodes a message.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    postcard::to_allocvec(value).map_err(|e| format!("encode: {e}"))
}

/// Decodes a message; trailing bytes are an error.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    match postcard::take_from_bytes(bytes) {
        Ok((v, [])) => Ok(v),
        Ok((_, rest)) => Err(format!("{} trailing bytes", rest.len())),
        Err(e) => Err(format!("decode: {e}")),
    }
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
