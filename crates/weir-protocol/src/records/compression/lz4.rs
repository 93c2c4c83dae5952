//! LZ4 frame format (not raw blocks), as Kafka's `Lz4BlockOutputStream` writes it:
//! 64 KiB blocks, compressed independently, no content checksum.
//!
//! Decompression goes through `lz4_flex`'s frame decoder, which holds at most one
//! block (up to the 4 MiB the frame descriptor may choose) besides our capped output.

use std::io::Write;

use lz4_flex::frame::{BlockMode, BlockSize, FrameDecoder, FrameEncoder, FrameInfo};

use super::{compress_failed, read_capped, Compression};
use crate::records::error::RecordsError;

pub(super) fn compress(input: &[u8]) -> Result<Vec<u8>, RecordsError> {
    let info = FrameInfo::new()
        .block_size(BlockSize::Max64KB)
        .block_mode(BlockMode::Independent);
    let mut enc = FrameEncoder::with_frame_info(info, Vec::with_capacity(input.len() / 2 + 64));
    enc.write_all(input)
        .map_err(|e| compress_failed(Compression::Lz4, e))?;
    enc.finish()
        .map_err(|e| compress_failed(Compression::Lz4, e))
}

pub(super) fn decompress(input: &[u8], cap: usize) -> Result<Vec<u8>, RecordsError> {
    read_capped(FrameDecoder::new(input), cap, Compression::Lz4)
}
