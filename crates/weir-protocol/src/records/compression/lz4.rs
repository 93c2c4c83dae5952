//! LZ4 frame format (not raw blocks), as Kafka's `Lz4BlockOutputStream` writes it:
//! 64 KiB blocks, compressed independently, no content checksum.
//!
//! `lz4_flex`'s frame decoder does the decompressing, holding at most one block (up
//! to the 4 MiB the frame descriptor may choose) besides our capped output. It treats
//! the end of input at a block boundary as the end of the frame, which would let a
//! truncated payload decode silently short, and it stops at the end of the first
//! frame. So each frame's extent is found first by walking its block headers (which
//! demands the end mark), and frames are decoded one after another.

use std::io::Write;

use lz4_flex::frame::{BlockMode, BlockSize, FrameDecoder, FrameEncoder, FrameInfo};

use super::{compress_failed, corrupt, read_capped_into, Compression};
use crate::records::error::RecordsError;

/// The LZ4 frame magic number (little-endian on the wire).
const MAGIC: u32 = 0x184D_2204;
/// FLG bits.
const FLG_BLOCK_CHECKSUM: u8 = 0x10;
const FLG_CONTENT_SIZE: u8 = 0x08;
const FLG_CONTENT_CHECKSUM: u8 = 0x04;
const FLG_DICT_ID: u8 = 0x01;
/// A block size word with this bit set holds an uncompressed block.
const BLOCK_UNCOMPRESSED: u32 = 0x8000_0000;

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
    if input.is_empty() {
        return Err(corrupt(Compression::Lz4, "empty payload"));
    }
    let mut out = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let len = frame_len(rest)?;
        let (frame, after) = rest
            .split_at_checked(len)
            .ok_or_else(|| corrupt(Compression::Lz4, "truncated frame"))?;
        read_capped_into(FrameDecoder::new(frame), &mut out, cap, Compression::Lz4)?;
        rest = after;
    }
    Ok(out)
}

/// The length of the complete frame at the start of `buf`, found from its header and
/// block size words alone; a frame without its end mark is an error.
fn frame_len(buf: &[u8]) -> Result<usize, RecordsError> {
    let truncated = || corrupt(Compression::Lz4, "truncated frame");
    let word = |at: usize| -> Result<u32, RecordsError> {
        buf.get(at..at + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_le_bytes)
            .ok_or_else(truncated)
    };
    if word(0)? != MAGIC {
        return Err(corrupt(Compression::Lz4, "bad frame magic"));
    }
    let flg = *buf.get(4).ok_or_else(truncated)?;
    // magic, FLG, BD, optional content size and dictionary id, header checksum
    let mut pos = 4 + 2;
    if flg & FLG_CONTENT_SIZE != 0 {
        pos += 8;
    }
    if flg & FLG_DICT_ID != 0 {
        pos += 4;
    }
    pos += 1;
    let block_checksum = if flg & FLG_BLOCK_CHECKSUM != 0 { 4 } else { 0 };
    loop {
        let size = word(pos)?;
        pos += 4;
        if size == 0 {
            break;
        }
        let data = (size & !BLOCK_UNCOMPRESSED) as usize;
        pos = pos
            .checked_add(data + block_checksum)
            .filter(|&p| p <= buf.len())
            .ok_or_else(truncated)?;
    }
    if flg & FLG_CONTENT_CHECKSUM != 0 {
        pos += 4;
    }
    if pos > buf.len() {
        return Err(truncated());
    }
    Ok(pos)
}
