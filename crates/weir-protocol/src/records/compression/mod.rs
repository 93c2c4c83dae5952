//! Compression codecs of a RecordBatch's records section.
//!
//! Kafka compresses the whole records section of a batch (everything after the 61-byte
//! header) with the codec named in attributes bits 0-2. Every decompressor here takes a
//! hard cap on the decompressed size: a small compressed payload that claims gigabytes
//! (a "bomb") fails with [`RecordsError::DecompressedTooLarge`] once the output would
//! pass the cap, having allocated at most the cap plus one codec block.

use super::error::RecordsError;

/// The codec of a batch's records section (attributes bits 0-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// Records are stored as they are.
    #[default]
    None,
    /// gzip (RFC 1952), possibly several members back to back.
    Gzip,
    /// Snappy, in the xerial framing the Java client writes, or raw.
    Snappy,
    /// LZ4 frame format with independent blocks.
    Lz4,
    /// Zstandard frames.
    Zstd,
}

impl Compression {
    /// The codec for the id in attributes bits 0-2; 5-7 are undefined.
    pub fn from_id(id: u8) -> Result<Self, RecordsError> {
        match id {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            other => Err(RecordsError::UnknownCompression(other)),
        }
    }

    /// The id this codec has in attributes bits 0-2.
    pub const fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }
}

mod gzip;
mod lz4;
mod snappy;
mod zstd;

use std::io::Read;

/// Compresses a records section with `codec` at its Kafka default level, or at
/// `level` when given (Kafka's `compression.<codec>.level`, KIP-390; lz4 and snappy
/// have no levels here and ignore it). `Compression::None` returns a copy.
pub fn compress(
    codec: Compression,
    input: &[u8],
    level: Option<i32>,
) -> Result<Vec<u8>, RecordsError> {
    match codec {
        Compression::None => Ok(input.to_vec()),
        Compression::Gzip => gzip::compress(input, level),
        Compression::Snappy => snappy::compress(input),
        Compression::Lz4 => lz4::compress(input),
        Compression::Zstd => zstd::compress(input, level),
    }
}

/// Decompresses a records section, failing once the output would pass `cap` bytes.
/// `Compression::None` returns a copy (subject to the cap too).
pub fn decompress(codec: Compression, input: &[u8], cap: usize) -> Result<Vec<u8>, RecordsError> {
    match codec {
        Compression::None if input.len() > cap => {
            Err(RecordsError::DecompressedTooLarge { codec, cap })
        }
        Compression::None => Ok(input.to_vec()),
        Compression::Gzip => gzip::decompress(input, cap),
        Compression::Snappy => snappy::decompress(input, cap),
        Compression::Lz4 => lz4::decompress(input, cap),
        Compression::Zstd => zstd::decompress(input, cap),
    }
}

/// Bytes pulled from a streaming decoder per read: the "one block" a capped
/// decompression may hold beyond its output.
const READ_CHUNK: usize = 16 * 1024;

/// Drains `reader` into a vector that never grows past `cap`: capacity is managed by
/// hand (doubling, clamped to the cap) because `read_to_end`'s growth could reserve
/// up to twice the cap before the limit is noticed.
fn read_capped(reader: impl Read, cap: usize, codec: Compression) -> Result<Vec<u8>, RecordsError> {
    let mut out = Vec::new();
    read_capped_into(reader, &mut out, cap, codec)?;
    Ok(out)
}

/// [`read_capped`], appending to `out` (whose length counts against the cap).
fn read_capped_into(
    mut reader: impl Read,
    out: &mut Vec<u8>,
    cap: usize,
    codec: Compression,
) -> Result<(), RecordsError> {
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(corrupt(codec, e)),
        };
        let new_len = out.len().saturating_add(n);
        if new_len > cap {
            return Err(RecordsError::DecompressedTooLarge { codec, cap });
        }
        reserve_capped(out, new_len, cap);
        out.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

/// Makes room for `needed` bytes in `out`, growing geometrically but never past `cap`.
fn reserve_capped(out: &mut Vec<u8>, needed: usize, cap: usize) {
    if needed > out.capacity() {
        let target = out
            .capacity()
            .saturating_mul(2)
            .max(needed)
            .max(READ_CHUNK)
            .min(cap);
        out.reserve_exact(target.saturating_sub(out.len()));
    }
}

/// A decoder failure as a value.
fn corrupt(codec: Compression, e: impl std::fmt::Display) -> RecordsError {
    RecordsError::Decompress {
        codec,
        reason: e.to_string(),
    }
}

/// An encoder failure as a value.
fn compress_failed(codec: Compression, e: impl std::fmt::Display) -> RecordsError {
    RecordsError::Compress {
        codec,
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests;
