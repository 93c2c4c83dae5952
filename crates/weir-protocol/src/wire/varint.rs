//! Variable-length integers: the unsigned varints of compact lengths and tag headers
//! (KIP-482) and the zigzag varints/varlongs of records inside a RecordBatch.
//!
//! They work on plain slices and return how many bytes they used, so the record
//! walker can use them without a decoder object. A varint longer than its type
//! allows is an error, never a silent wrap: a hostile peer must not be able to make
//! us loop over a long run of continuation bytes.

use crate::error::DecodeError;

/// Longest encoding of a 32-bit varint.
pub const MAX_VARINT_LEN: usize = 5;
/// Longest encoding of a 64-bit varint.
pub const MAX_VARLONG_LEN: usize = 10;

/// Reads an unsigned 32-bit varint from the start of `buf`: (value, bytes used).
#[inline]
pub fn read_uvarint(buf: &[u8]) -> Result<(u32, usize), DecodeError> {
    let (v, n) = read_raw(buf, MAX_VARINT_LEN)?;
    let v = u32::try_from(v).map_err(|_| DecodeError::VarintOverflow)?;
    Ok((v, n))
}

/// Reads an unsigned 64-bit varint from the start of `buf`: (value, bytes used).
#[inline]
pub fn read_uvarlong(buf: &[u8]) -> Result<(u64, usize), DecodeError> {
    read_raw(buf, MAX_VARLONG_LEN)
}

/// Reads a zigzag-encoded signed 32-bit varint.
#[inline]
pub fn read_varint(buf: &[u8]) -> Result<(i32, usize), DecodeError> {
    let (v, n) = read_uvarint(buf)?;
    Ok((((v >> 1) as i32) ^ -((v & 1) as i32), n))
}

/// Reads a zigzag-encoded signed 64-bit varlong.
#[inline]
pub fn read_varlong(buf: &[u8]) -> Result<(i64, usize), DecodeError> {
    let (v, n) = read_uvarlong(buf)?;
    Ok((((v >> 1) as i64) ^ -((v & 1) as i64), n))
}

/// Most varints in a record (attributes-sized deltas, short lengths, header
/// counts) fit one byte: that case is inlined into the record walker, the loop
/// below handles the rest.
#[inline]
fn read_raw(buf: &[u8], max_len: usize) -> Result<(u64, usize), DecodeError> {
    match buf.first() {
        Some(&b) if b < 0x80 && max_len > 0 => Ok((u64::from(b), 1)),
        _ => read_raw_multi(buf, max_len),
    }
}

fn read_raw_multi(buf: &[u8], max_len: usize) -> Result<(u64, usize), DecodeError> {
    let mut value: u64 = 0;
    for (i, &b) in buf.iter().take(max_len).enumerate() {
        let shift = 7 * i as u32;
        let bits = u64::from(b & 0x7f);
        // The last permitted byte may only carry the bits that fit in 64 bits.
        if shift == 63 && bits > 1 {
            return Err(DecodeError::VarintOverflow);
        }
        value |= bits << shift;
        if b & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    if buf.len() >= max_len {
        Err(DecodeError::VarintOverflow)
    } else {
        Err(DecodeError::Truncated {
            needed: buf.len() + 1,
            remaining: buf.len(),
        })
    }
}

/// Appends an unsigned varint.
pub fn put_uvarint(out: &mut impl bytes::BufMut, v: u32) {
    put_uvarlong(out, u64::from(v));
}

/// Appends an unsigned varlong.
pub fn put_uvarlong(out: &mut impl bytes::BufMut, mut v: u64) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

/// Appends a zigzag varint.
pub fn put_varint(out: &mut impl bytes::BufMut, v: i32) {
    put_uvarint(out, ((v << 1) ^ (v >> 31)) as u32);
}

/// Appends a zigzag varlong.
pub fn put_varlong(out: &mut impl bytes::BufMut, v: i64) {
    put_uvarlong(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Bytes `put_uvarint(v)` writes.
pub const fn uvarint_len(v: u32) -> usize {
    uvarlong_len(v as u64)
}

/// Bytes `put_uvarlong(v)` writes.
pub const fn uvarlong_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Bytes `put_varint(v)` writes.
pub const fn varint_len(v: i32) -> usize {
    uvarint_len(((v << 1) ^ (v >> 31)) as u32)
}

/// Bytes `put_varlong(v)` writes.
pub const fn varlong_len(v: i64) -> usize {
    uvarlong_len(((v << 1) ^ (v >> 63)) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_encodings() {
        let mut b = Vec::new();
        put_varint(&mut b, -1);
        put_varint(&mut b, 1);
        put_uvarint(&mut b, 300);
        assert_eq!(b, [0x01, 0x02, 0xac, 0x02]);
        assert_eq!(read_varint(&[0x01]).unwrap(), (-1, 1));
        assert_eq!(read_uvarint(&[0xac, 0x02]).unwrap(), (300, 2));
    }

    #[test]
    fn extremes_round_trip() {
        for v in [0, 1, -1, i32::MIN, i32::MAX, 63, -64, 64] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(b.len(), varint_len(v));
            assert_eq!(read_varint(&b).unwrap(), (v, b.len()));
        }
        for v in [0, i64::MIN, i64::MAX, -1, 1 << 40] {
            let mut b = Vec::new();
            put_varlong(&mut b, v);
            assert_eq!(b.len(), varlong_len(v));
            assert_eq!(read_varlong(&b).unwrap(), (v, b.len()));
        }
    }

    #[test]
    fn overlong_and_truncated_are_errors() {
        assert_eq!(read_uvarint(&[0xff; 5]), Err(DecodeError::VarintOverflow));
        assert_eq!(
            read_uvarint(&[0xff, 0xff, 0xff, 0xff, 0x7f]),
            Err(DecodeError::VarintOverflow)
        );
        assert_eq!(read_uvarlong(&[0xff; 20]), Err(DecodeError::VarintOverflow));
        assert_eq!(
            read_uvarlong(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
            Err(DecodeError::VarintOverflow)
        );
        assert!(matches!(
            read_uvarint(&[0x80, 0x80]),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            read_uvarint(&[]),
            Err(DecodeError::Truncated { .. })
        ));
    }
}
