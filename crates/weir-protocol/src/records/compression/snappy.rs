//! Snappy, in the framing of xerial's snappy-java, which is what the Java client
//! writes:
//!
//! ```text
//! 0x82 'S' 'N' 'A' 'P' 'P' 'Y' 0x00   magic
//! i32 version (1), i32 compatible version (1)
//! ( i32 compressed length, raw snappy block )*
//! ```
//!
//! A payload without the magic is read as one raw snappy block, which is what some
//! non-Java clients (librdkafka builds among them) send and what snappy-java accepts
//! too. A magic header where a block length is expected starts a concatenated stream
//! and is skipped, as snappy-java does. Each block states its decompressed length up
//! front, so the cap is checked before a block is decompressed.

use snap::raw::{decompress_len, max_compress_len, Decoder, Encoder};

use super::{compress_failed, corrupt, reserve_capped, Compression};
use crate::records::error::RecordsError;

/// The xerial magic.
const MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// Magic plus version and compatible version.
const HEADER_LEN: usize = 16;
/// Version and compatible version the Java client writes.
const VERSION: i32 = 1;
/// Uncompressed bytes per block, as snappy-java's default.
const BLOCK_LEN: usize = 32 * 1024;

pub(super) fn compress(input: &[u8]) -> Result<Vec<u8>, RecordsError> {
    let mut out = Vec::with_capacity(HEADER_LEN + input.len() / 2 + 64);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&VERSION.to_be_bytes());
    let mut encoder = Encoder::new();
    let mut block = vec![0u8; max_compress_len(BLOCK_LEN)];
    for chunk in input.chunks(BLOCK_LEN) {
        let n = encoder
            .compress(chunk, &mut block)
            .map_err(|e| compress_failed(Compression::Snappy, e))?;
        let len = i32::try_from(n).map_err(|e| compress_failed(Compression::Snappy, e))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(block.get(..n).unwrap_or_default());
    }
    Ok(out)
}

pub(super) fn decompress(input: &[u8], cap: usize) -> Result<Vec<u8>, RecordsError> {
    let mut out = Vec::new();
    let mut decoder = Decoder::new();
    if !input.starts_with(&MAGIC) {
        append_block(&mut decoder, input, &mut out, cap)?;
        return Ok(out);
    }
    let mut rest = input;
    loop {
        if rest.starts_with(&MAGIC) {
            rest = rest
                .get(HEADER_LEN..)
                .ok_or_else(|| corrupt(Compression::Snappy, "truncated xerial header"))?;
            continue;
        }
        if rest.is_empty() {
            return Ok(out);
        }
        let (len, after) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt(Compression::Snappy, "truncated block length"))?;
        let len = usize::try_from(i32::from_be_bytes(*len))
            .map_err(|_| corrupt(Compression::Snappy, "negative block length"))?;
        let block = after
            .get(..len)
            .ok_or_else(|| corrupt(Compression::Snappy, "block longer than the payload"))?;
        append_block(&mut decoder, block, &mut out, cap)?;
        rest = after.get(len..).unwrap_or_default();
    }
}

/// Decompresses one raw snappy block onto the end of `out`, checking its declared
/// length against the cap before allocating for it.
fn append_block(
    decoder: &mut Decoder,
    block: &[u8],
    out: &mut Vec<u8>,
    cap: usize,
) -> Result<(), RecordsError> {
    let n = decompress_len(block).map_err(|e| corrupt(Compression::Snappy, e))?;
    let start = out.len();
    let end = start.checked_add(n).filter(|&end| end <= cap).ok_or(
        RecordsError::DecompressedTooLarge {
            codec: Compression::Snappy,
            cap,
        },
    )?;
    reserve_capped(out, end, cap);
    out.resize(end, 0);
    let dst = out.get_mut(start..).unwrap_or_default();
    let written = decoder
        .decompress(block, dst)
        .map_err(|e| corrupt(Compression::Snappy, e))?;
    if written != n {
        return Err(corrupt(
            Compression::Snappy,
            "block shorter than it declares",
        ));
    }
    Ok(())
}
