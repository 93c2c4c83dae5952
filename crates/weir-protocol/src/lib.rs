//! The Kafka wire codec: the first thing a request meets after the socket and the
//! last thing a response passes before it.
//!
//! `net` hands this crate a frame; it decodes the request header and body into typed
//! messages for the api handlers, and encodes their responses. `weir-client` uses the
//! same types in the other direction. The crate does no I/O and spawns nothing. Every
//! decode is bounds-checked: lengths and counts are compared with the bytes that remain
//! before anything is allocated, and every malformed input is a [`DecodeError`] value.

// Decoding handles bytes from the network: no path may panic on them.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::unreachable,
        clippy::todo
    )
)]

pub mod error;
pub mod header;
mod message;
pub mod messages;
pub mod records;
#[cfg(test)]
mod testing;
pub mod wire;

pub use error::{DecodeError, EncodeError};
pub use header::{decode_request, decode_response, encode_request, encode_response, RequestHeader};
pub use message::Message;
pub use messages::{ApiKey, Request, Response};

/// A 128-bit UUID as Kafka sends it (topic ids); all zeros is Kafka's "no id".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// The all-zero UUID Kafka uses for "unset".
    pub const ZERO: Uuid = Uuid([0; 16]);
}
