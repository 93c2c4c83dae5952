//! The trait every generated top-level message implements.

use bytes::Bytes;

use crate::wire::{Decoder, Encoder};
use crate::{DecodeError, EncodeError};

/// A versioned Kafka message body (a request, a response, or a data structure).
pub trait Message: Sized + Default {
    /// The API key (-1 for data structures that are not an API).
    const API_KEY: i16;
    /// Inclusive range of versions this codec handles.
    const VERSIONS: (i16, i16);
    /// The first flexible version (KIP-482), if any.
    const FLEXIBLE_SINCE: Option<i16>;

    /// Appends the encoding at `version`.
    fn encode(&self, e: &mut Encoder, version: i16) -> Result<(), EncodeError>;

    /// Reads the message at `version` from `d`, leaving any following bytes unread.
    fn decode(d: &mut Decoder, version: i16) -> Result<Self, DecodeError>;

    /// The encoding at `version` as one buffer.
    fn to_bytes(&self, version: i16) -> Result<Bytes, EncodeError> {
        let mut e = Encoder::new();
        self.encode(&mut e, version)?;
        Ok(e.into_bytes())
    }

    /// Decodes a buffer that holds exactly one message; trailing bytes are an error.
    fn from_bytes(buf: Bytes, version: i16) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(buf);
        let m = Self::decode(&mut d, version)?;
        d.finish()?;
        Ok(m)
    }
}
