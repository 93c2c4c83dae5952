//! Zstandard, at Kafka's default level 3; several frames back to back are accepted.
//!
//! Besides the capped output, the zstd decoder holds its window. A frame may declare a
//! window of up to 2 GiB, so the decoder is told the largest window it may accept:
//! enough for the cap (rounded up to a power of two), but never below 2 MiB, the
//! window the Java client's streaming encoder declares at level 3 whatever the data
//! size, and never above 128 MiB, what Java consumers accept (zstd's default limit).

use super::{compress_failed, corrupt, read_capped, Compression};
use crate::records::error::RecordsError;

/// Kafka's default zstd level.
const DEFAULT_LEVEL: i32 = 3;
/// log2 of the smallest window limit (2 MiB).
const WINDOW_LOG_MIN: u32 = 21;
/// log2 of the largest window limit (128 MiB, zstd's default `windowLogMax`).
const WINDOW_LOG_MAX: u32 = 27;

pub(super) fn compress(input: &[u8], level: Option<i32>) -> Result<Vec<u8>, RecordsError> {
    ::zstd::bulk::compress(input, level.unwrap_or(DEFAULT_LEVEL))
        .map_err(|e| compress_failed(Compression::Zstd, e))
}

pub(super) fn decompress(input: &[u8], cap: usize) -> Result<Vec<u8>, RecordsError> {
    let mut decoder = ::zstd::stream::read::Decoder::with_buffer(input)
        .map_err(|e| corrupt(Compression::Zstd, e))?;
    decoder
        .window_log_max(window_log_for(cap))
        .map_err(|e| corrupt(Compression::Zstd, e))?;
    read_capped(decoder, cap, Compression::Zstd)
}

/// The window limit for a cap: ceil(log2(cap)) clamped to the bounds above.
pub(super) fn window_log_for(cap: usize) -> u32 {
    let log = usize::BITS - cap.saturating_sub(1).leading_zeros();
    log.clamp(WINDOW_LOG_MIN, WINDOW_LOG_MAX)
}
