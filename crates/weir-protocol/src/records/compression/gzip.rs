//! gzip, as the Java client writes it (`GZIPOutputStream`, default level 6).
//!
//! Decompression accepts several gzip members back to back, as Java's
//! `GZIPInputStream` does.

use std::io::Write;

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use super::{compress_failed, read_capped, Compression};
use crate::records::error::RecordsError;

/// Kafka's default gzip level (`Deflater.DEFAULT_COMPRESSION`, which is 6).
const DEFAULT_LEVEL: u32 = 6;

pub(super) fn compress(input: &[u8], level: Option<i32>) -> Result<Vec<u8>, RecordsError> {
    let level = level
        .and_then(|l| u32::try_from(l).ok())
        .map_or(DEFAULT_LEVEL, |l| l.min(9));
    let mut enc = GzEncoder::new(
        Vec::with_capacity(input.len() / 2 + 64),
        flate2::Compression::new(level),
    );
    enc.write_all(input)
        .map_err(|e| compress_failed(Compression::Gzip, e))?;
    enc.finish()
        .map_err(|e| compress_failed(Compression::Gzip, e))
}

pub(super) fn decompress(input: &[u8], cap: usize) -> Result<Vec<u8>, RecordsError> {
    read_capped(MultiGzDecoder::new(input), cap, Compression::Gzip)
}
