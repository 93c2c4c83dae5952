//! Primitive wire types: the bounds-checked decoder, the chunked encoder, varints.

pub mod decoder;
pub mod encoder;
pub mod varint;

pub use decoder::Decoder;
pub use encoder::Encoder;
