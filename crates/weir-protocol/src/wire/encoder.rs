//! The writer that builds frames for the socket.
//!
//! Small fields go into a growing buffer; large shared payloads (a Fetch response's
//! stored RecordBatches) are appended as separate `Bytes` chunks without copying, so a
//! response is a list of chunks ready for a vectored write.

use bytes::{BufMut, Bytes, BytesMut};

use super::varint;
use crate::error::EncodeError;
use crate::Uuid;

/// Payloads at least this long are kept as their own chunk instead of being copied.
const SHARED_CHUNK_MIN: usize = 4096;

/// Accumulates an encoded message as a list of chunks.
#[derive(Debug, Default)]
pub struct Encoder {
    cur: BytesMut,
    chunks: Vec<Bytes>,
    chunked_len: usize,
}

impl Encoder {
    /// An empty encoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Total bytes written so far.
    pub fn len(&self) -> usize {
        self.chunked_len + self.cur.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The chunks, in order; their concatenation is the encoding.
    pub fn into_chunks(mut self) -> Vec<Bytes> {
        if !self.cur.is_empty() {
            self.chunks.push(self.cur.split().freeze());
        }
        self.chunks
    }

    /// The encoding as one contiguous buffer (copies if there are several chunks).
    pub fn into_bytes(self) -> Bytes {
        let mut chunks = self.into_chunks();
        if chunks.len() == 1 {
            return chunks.pop().unwrap_or_default();
        }
        let mut out = BytesMut::with_capacity(chunks.iter().map(Bytes::len).sum());
        for c in chunks {
            out.extend_from_slice(&c);
        }
        out.freeze()
    }

    /// Appends everything another encoder wrote.
    pub fn append(&mut self, other: Encoder) {
        for c in other.into_chunks() {
            self.put_shared(c);
        }
    }

    /// Appends a payload, sharing it instead of copying when it is large.
    pub fn put_shared(&mut self, b: Bytes) {
        if b.len() >= SHARED_CHUNK_MIN {
            if !self.cur.is_empty() {
                let done = self.cur.split().freeze();
                self.chunked_len += done.len();
                self.chunks.push(done);
            }
            self.chunked_len += b.len();
            self.chunks.push(b);
        } else {
            self.cur.extend_from_slice(&b);
        }
    }

    /// Writes a boolean.
    pub fn bool(&mut self, v: bool) {
        self.cur.put_u8(u8::from(v));
    }
    /// Writes an int8.
    pub fn i8(&mut self, v: i8) {
        self.cur.put_i8(v);
    }
    /// Writes an int16.
    pub fn i16(&mut self, v: i16) {
        self.cur.put_i16(v);
    }
    /// Writes an int32.
    pub fn i32(&mut self, v: i32) {
        self.cur.put_i32(v);
    }
    /// Writes an int64.
    pub fn i64(&mut self, v: i64) {
        self.cur.put_i64(v);
    }
    /// Writes a uint16.
    pub fn u16(&mut self, v: u16) {
        self.cur.put_u16(v);
    }
    /// Writes a uint32.
    pub fn u32(&mut self, v: u32) {
        self.cur.put_u32(v);
    }
    /// Writes a float64.
    pub fn f64(&mut self, v: f64) {
        self.cur.put_f64(v);
    }
    /// Writes a UUID.
    pub fn uuid(&mut self, v: &Uuid) {
        self.cur.put_slice(&v.0);
    }
    /// Writes an unsigned varint.
    pub fn uvarint(&mut self, v: u32) {
        varint::put_uvarint(&mut self.cur, v);
    }
    /// Writes raw bytes.
    pub fn raw(&mut self, b: &[u8]) {
        self.cur.put_slice(b);
    }

    /// Writes a length prefix: compact (len+1, 0 = null), i32, or i16.
    fn length(
        &mut self,
        what: &'static str,
        len: Option<usize>,
        compact: bool,
        wide: bool,
    ) -> Result<(), EncodeError> {
        let too_long = |length| EncodeError::TooLong { what, length };
        match (len, compact) {
            (None, true) => self.uvarint(0),
            (None, false) if wide => self.i32(-1),
            (None, false) => self.i16(-1),
            (Some(n), true) => {
                let v = u32::try_from(n)
                    .ok()
                    .and_then(|v| v.checked_add(1))
                    .ok_or(too_long(n))?;
                self.uvarint(v)
            }
            (Some(n), false) if wide => self.i32(i32::try_from(n).map_err(|_| too_long(n))?),
            (Some(n), false) => self.i16(i16::try_from(n).map_err(|_| too_long(n))?),
        }
        Ok(())
    }

    /// Writes a nullable string.
    pub fn nullable_string(&mut self, v: Option<&str>, compact: bool) -> Result<(), EncodeError> {
        self.length("string", v.map(str::len), compact, false)?;
        if let Some(s) = v {
            self.cur.put_slice(s.as_bytes());
        }
        Ok(())
    }

    /// Writes a string.
    pub fn string(&mut self, v: &str, compact: bool) -> Result<(), EncodeError> {
        self.nullable_string(Some(v), compact)
    }

    /// Writes nullable bytes, sharing large payloads.
    pub fn nullable_bytes(&mut self, v: Option<&Bytes>, compact: bool) -> Result<(), EncodeError> {
        self.length("bytes", v.map(Bytes::len), compact, true)?;
        if let Some(b) = v {
            self.put_shared(b.clone());
        }
        Ok(())
    }

    /// Writes bytes.
    pub fn bytes(&mut self, v: &Bytes, compact: bool) -> Result<(), EncodeError> {
        self.nullable_bytes(Some(v), compact)
    }

    /// Writes an array's element count (`None` for a null array).
    pub fn array_len(&mut self, len: Option<usize>, compact: bool) -> Result<(), EncodeError> {
        self.length("array", len, compact, true)
    }

    /// Writes one tagged field: its tag, its size, and the encoding `field` produced.
    pub fn tagged_field(&mut self, tag: u32, field: Encoder) {
        self.uvarint(tag);
        let size = u32::try_from(field.len()).unwrap_or(u32::MAX);
        self.uvarint(size);
        self.append(field);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_payloads_are_shared_not_copied() {
        let big = Bytes::from(vec![7u8; SHARED_CHUNK_MIN]);
        let mut e = Encoder::new();
        e.i32(1);
        e.bytes(&big, false).unwrap();
        e.i8(2);
        assert_eq!(e.len(), 4 + 4 + big.len() + 1);
        let chunks = e.into_chunks();
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[1].as_ptr(), big.as_ptr());
    }

    #[test]
    fn lengths_and_nulls() {
        let mut e = Encoder::new();
        e.nullable_string(None, false).unwrap();
        e.nullable_string(None, true).unwrap();
        e.string("ab", true).unwrap();
        e.array_len(None, false).unwrap();
        assert_eq!(
            &e.into_bytes()[..],
            &[0xff, 0xff, 0, 3, b'a', b'b', 0xff, 0xff, 0xff, 0xff]
        );
        let long = "x".repeat(40_000);
        assert!(Encoder::new().string(&long, false).is_err());
        assert!(Encoder::new().string(&long, true).is_ok());
    }
}
