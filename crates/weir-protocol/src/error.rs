//! Codec errors. Every malformed input becomes one of these values; the decoder has
//! no panicking path, so a hostile frame can at worst cost its own connection.

use thiserror::Error;

/// Why a frame or a field could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The input ended before a field did.
    #[error("truncated input: needed {needed} bytes, {remaining} remain")]
    Truncated {
        /// Bytes the field needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A length or count that no input of this size could satisfy.
    #[error("invalid length {length} for {what} ({remaining} bytes remain)")]
    InvalidLength {
        /// What the length was for.
        what: &'static str,
        /// The claimed length (negative values included as read).
        length: i64,
        /// Bytes that were left.
        remaining: usize,
    },
    /// Null where the schema does not allow it at this version.
    #[error("null {what} where it is not nullable")]
    UnexpectedNull {
        /// What was null.
        what: &'static str,
    },
    /// A varint longer than its type allows.
    #[error("varint is too long or overflows its type")]
    VarintOverflow,
    /// A string that is not UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// A value outside what the field allows (a bool other than 0/1, a bad marker).
    #[error("invalid value {value} for {what}")]
    InvalidValue {
        /// What was invalid.
        what: &'static str,
        /// The value read.
        value: i64,
    },
    /// Bytes left over after the message was complete.
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    /// An API key this codec does not know.
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    /// A version outside the schema's range for this API.
    #[error("API key {api_key} has no version {version}")]
    UnsupportedVersion {
        /// The API key.
        api_key: i16,
        /// The requested version.
        version: i16,
    },
}

/// Why a message could not be encoded at the requested version.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// A value does not fit the wire type (a string over 32767 bytes, say).
    #[error("{what} is too long for the wire ({length} bytes/elements)")]
    TooLong {
        /// What was too long.
        what: &'static str,
        /// Its length.
        length: usize,
    },
    /// Null in a field that is not nullable at this version.
    #[error("{what} is null but not nullable at version {version}")]
    NotNullable {
        /// The field.
        what: &'static str,
        /// The version being encoded.
        version: i16,
    },
    /// A version outside the schema's range for this API.
    #[error("API key {api_key} has no version {version}")]
    UnsupportedVersion {
        /// The API key.
        api_key: i16,
        /// The requested version.
        version: i16,
    },
}
