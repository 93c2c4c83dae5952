//! A bounds-checked reader over a received frame.
//!
//! Every read checks the bytes that remain first; every length or element count is
//! compared with the remaining input *before* anything is allocated, so the memory a
//! decode can use is bounded by a small multiple of the frame size. Byte fields are
//! zero-copy slices of the frame (`Bytes`), which is what lets Produce hand a client's
//! RecordBatch to the log without copying it.

use bytes::{Buf, Bytes};

use super::varint;
use crate::error::DecodeError;
use crate::Uuid;

/// Cursor over an immutable frame.
#[derive(Debug, Clone)]
pub struct Decoder {
    buf: Bytes,
}

impl Decoder {
    /// A decoder over `buf`.
    pub fn new(buf: Bytes) -> Self {
        Decoder { buf }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Fails unless every byte was read: trailing garbage is an error, not ignored.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }

    /// The unread bytes, consuming the decoder.
    pub fn into_rest(self) -> Bytes {
        self.buf
    }

    fn need(&self, n: usize) -> Result<(), DecodeError> {
        if self.buf.len() < n {
            Err(DecodeError::Truncated {
                needed: n,
                remaining: self.buf.len(),
            })
        } else {
            Ok(())
        }
    }

    /// Takes the next `n` bytes as a zero-copy slice.
    pub fn take(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        self.need(n)?;
        Ok(self.buf.split_to(n))
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize) -> Result<(), DecodeError> {
        self.need(n)?;
        self.buf.advance(n);
        Ok(())
    }

    /// Reads a boolean (0 or 1; anything else is an error, as in Kafka).
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.i8()? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(DecodeError::InvalidValue {
                what: "boolean",
                value: i64::from(v),
            }),
        }
    }

    /// Reads an int8.
    pub fn i8(&mut self) -> Result<i8, DecodeError> {
        self.need(1)?;
        Ok(self.buf.get_i8())
    }

    /// Reads an int16.
    pub fn i16(&mut self) -> Result<i16, DecodeError> {
        self.need(2)?;
        Ok(self.buf.get_i16())
    }

    /// Reads an int32.
    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        self.need(4)?;
        Ok(self.buf.get_i32())
    }

    /// Reads an int64.
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        self.need(8)?;
        Ok(self.buf.get_i64())
    }

    /// Reads a uint16.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        self.need(2)?;
        Ok(self.buf.get_u16())
    }

    /// Reads a uint32.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        self.need(4)?;
        Ok(self.buf.get_u32())
    }

    /// Reads a float64.
    pub fn f64(&mut self) -> Result<f64, DecodeError> {
        self.need(8)?;
        Ok(self.buf.get_f64())
    }

    /// Reads a UUID.
    pub fn uuid(&mut self) -> Result<Uuid, DecodeError> {
        self.need(16)?;
        let mut b = [0u8; 16];
        self.buf.copy_to_slice(&mut b);
        Ok(Uuid(b))
    }

    /// Reads an unsigned varint.
    pub fn uvarint(&mut self) -> Result<u32, DecodeError> {
        let (v, n) = varint::read_uvarint(&self.buf)?;
        self.buf.advance(n);
        Ok(v)
    }

    /// Reads a length prefix (i16, i32 or compact) and checks it against the input.
    /// `None` is null (-1, or compact 0). `min_elem` is the smallest wire size of one
    /// element, so counts of multi-byte elements are bounded tighter.
    fn length(
        &mut self,
        what: &'static str,
        compact: bool,
        wide: bool,
        min_elem: usize,
    ) -> Result<Option<usize>, DecodeError> {
        let raw: i64 = if compact {
            i64::from(self.uvarint()?) - 1
        } else if wide {
            i64::from(self.i32()?)
        } else {
            i64::from(self.i16()?)
        };
        if raw == -1 {
            return Ok(None);
        }
        let remaining = self.buf.len();
        let bad = DecodeError::InvalidLength {
            what,
            length: raw,
            remaining,
        };
        let n = usize::try_from(raw).map_err(|_| bad.clone())?;
        if n.saturating_mul(min_elem.max(1)) > remaining {
            return Err(bad);
        }
        Ok(Some(n))
    }

    /// Reads a nullable string (`compact` in flexible versions).
    pub fn nullable_string(&mut self, compact: bool) -> Result<Option<String>, DecodeError> {
        match self.length("string", compact, false, 1)? {
            None => Ok(None),
            Some(n) => {
                let raw = self.take(n)?;
                String::from_utf8(raw.to_vec())
                    .map(Some)
                    .map_err(|_| DecodeError::InvalidUtf8)
            }
        }
    }

    /// Reads a non-nullable string.
    pub fn string(&mut self, compact: bool) -> Result<String, DecodeError> {
        self.nullable_string(compact)?
            .ok_or(DecodeError::UnexpectedNull { what: "string" })
    }

    /// Reads nullable bytes (i32 length, or compact).
    pub fn nullable_bytes(&mut self, compact: bool) -> Result<Option<Bytes>, DecodeError> {
        match self.length("bytes", compact, true, 1)? {
            None => Ok(None),
            Some(n) => self.take(n).map(Some),
        }
    }

    /// Reads non-nullable bytes.
    pub fn bytes(&mut self, compact: bool) -> Result<Bytes, DecodeError> {
        self.nullable_bytes(compact)?
            .ok_or(DecodeError::UnexpectedNull { what: "bytes" })
    }

    /// Reads an array's element count; `None` is a null array. Each element takes at
    /// least one byte on the wire, so a count larger than the remaining input is
    /// rejected before the caller allocates.
    pub fn array_len(&mut self, compact: bool) -> Result<Option<usize>, DecodeError> {
        self.length("array", compact, true, 1)
    }

    /// Like [`Decoder::array_len`] for elements of at least `min_elem` bytes each,
    /// which bounds the count (and so the allocation) tighter.
    pub fn array_len_min(
        &mut self,
        compact: bool,
        min_elem: usize,
    ) -> Result<Option<usize>, DecodeError> {
        self.length("array", compact, true, min_elem)
    }

    /// Reads the tagged-field section of a flexible struct: for each tag, calls
    /// `known(tag, decoder_over_its_bytes)`, which returns `Ok(false)` for a tag it does
    /// not know; unknown tags are skipped. A known field must consume exactly its bytes.
    pub fn tagged_fields(
        &mut self,
        mut known: impl FnMut(u32, &mut Decoder) -> Result<bool, DecodeError>,
    ) -> Result<(), DecodeError> {
        let count = self.uvarint()?;
        if count as usize > self.buf.len() {
            return Err(DecodeError::InvalidLength {
                what: "tagged fields",
                length: i64::from(count),
                remaining: self.buf.len(),
            });
        }
        let mut last: Option<u32> = None;
        for _ in 0..count {
            let tag = self.uvarint()?;
            if last.is_some_and(|l| tag <= l) {
                return Err(DecodeError::InvalidValue {
                    what: "tag order",
                    value: i64::from(tag),
                });
            }
            last = Some(tag);
            let size = self.uvarint()? as usize;
            let mut field = Decoder::new(self.take(size)?);
            if known(tag, &mut field)? {
                field.finish()?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(b: &[u8]) -> Decoder {
        Decoder::new(Bytes::copy_from_slice(b))
    }

    #[test]
    fn huge_counts_and_lengths_fail_before_allocation() {
        assert!(matches!(
            dec(&[0x7f, 0xff, 0xff, 0xff]).array_len(false),
            Err(DecodeError::InvalidLength { .. })
        ));
        assert!(matches!(
            dec(&[0x7f, 0xff, b'a']).string(false),
            Err(DecodeError::InvalidLength { .. })
        ));
        assert!(matches!(
            dec(&[0x7f, 0xff, 0xff, 0xff, 1]).bytes(false),
            Err(DecodeError::InvalidLength { .. })
        ));
        assert!(matches!(
            dec(&[0xff, 0xff, 0xff, 0xf0]).bytes(false),
            Err(DecodeError::InvalidLength { .. })
        ));
        assert!(matches!(
            dec(&[0xff, 0xff, 0xff, 0xff, 0x0f]).array_len(true),
            Err(DecodeError::InvalidLength { .. })
        ));
    }

    #[test]
    fn null_and_empty_are_distinct() {
        assert_eq!(dec(&[0xff, 0xff]).nullable_string(false).unwrap(), None);
        assert_eq!(
            dec(&[0, 0]).nullable_string(false).unwrap(),
            Some(String::new())
        );
        assert_eq!(dec(&[0]).nullable_string(true).unwrap(), None);
        assert_eq!(
            dec(&[1]).nullable_string(true).unwrap(),
            Some(String::new())
        );
        assert_eq!(
            dec(&[0]).string(true),
            Err(DecodeError::UnexpectedNull { what: "string" })
        );
        assert_eq!(
            dec(&[0xff, 0xff, 0xff, 0xff]).array_len(false).unwrap(),
            None
        );
    }

    #[test]
    fn bad_utf8_and_bool_are_errors() {
        assert_eq!(
            dec(&[0, 1, 0xff]).string(false),
            Err(DecodeError::InvalidUtf8)
        );
        assert!(matches!(
            dec(&[2]).bool(),
            Err(DecodeError::InvalidValue { .. })
        ));
    }

    #[test]
    fn tagged_fields_skip_unknown_and_check_order() {
        // two tags: 1 (2 bytes), 5 (0 bytes)
        let mut d = dec(&[2, 1, 2, 0xaa, 0xbb, 5, 0]);
        let mut seen = vec![];
        d.tagged_fields(|t, _| {
            seen.push(t);
            Ok(false)
        })
        .unwrap();
        assert_eq!(seen, [1, 5]);
        d.finish().unwrap();
        let mut d = dec(&[2, 5, 0, 1, 0]);
        assert!(d.tagged_fields(|_, _| Ok(false)).is_err());
        // a known field that leaves bytes unread is an error
        let mut d = dec(&[1, 0, 2, 1, 2]);
        assert!(d.tagged_fields(|_, f| f.i8().map(|_| true)).is_err());
    }
}
