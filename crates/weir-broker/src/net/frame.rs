//! Kafka framing: a big-endian `i32` size followed by that many bytes.
//!
//! Parsing is a pure function over the read buffer, so the connection's read loop
//! stays cancel-safe (all state lives in the buffer) and the size checks are unit
//! tested without sockets. The buffer-growth policy lives here too, because it is
//! what keeps a peer's *claimed* size from turning into our allocation.

use bytes::{Buf, Bytes, BytesMut};

/// Bytes of the size prefix.
pub(crate) const SIZE_PREFIX_BYTES: usize = 4;

/// Reads try to have at least this much spare room, so pipelined small requests
/// arrive in a few large reads rather than many tiny ones.
const READ_SIZE_MIN: usize = 8 * 1024;

/// Why a frame's size prefix was refused; the connection closes with this reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Kafka's `InvalidReceiveException` case: a size below zero is never valid.
    #[error("invalid frame size {size}: negative")]
    Negative {
        /// The size as sent.
        size: i32,
    },
    /// Larger than `socket.request.max.bytes`.
    #[error("frame size {size} exceeds socket.request.max.bytes ({max})")]
    TooLarge {
        /// The size as sent.
        size: usize,
        /// The configured limit.
        max: usize,
    },
}

/// The result of looking at the read buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A whole frame's payload (without the size prefix), split off the buffer.
    Frame(Bytes),
    /// More bytes are needed: `total` is the whole frame including its prefix when the
    /// prefix has arrived, or `None` before that.
    Incomplete { total: Option<usize> },
}

/// Splits one frame off the front of `buf` if it is complete.
///
/// The size is checked against `max_frame_bytes` as soon as the prefix is there, so a
/// bad frame is refused before any of its payload is buffered.
pub(crate) fn parse(buf: &mut BytesMut, max_frame_bytes: usize) -> Result<Parsed, FrameError> {
    let Some(prefix) = buf.get(..SIZE_PREFIX_BYTES) else {
        return Ok(Parsed::Incomplete { total: None });
    };
    let mut size_bytes = [0u8; SIZE_PREFIX_BYTES];
    size_bytes.copy_from_slice(prefix);
    let size = i32::from_be_bytes(size_bytes);
    let size = usize::try_from(size).map_err(|_| FrameError::Negative { size })?;
    if size > max_frame_bytes {
        return Err(FrameError::TooLarge {
            size,
            max: max_frame_bytes,
        });
    }
    let total = SIZE_PREFIX_BYTES + size;
    if buf.len() < total {
        return Ok(Parsed::Incomplete { total: Some(total) });
    }
    let mut frame = buf.split_to(total);
    frame.advance(SIZE_PREFIX_BYTES);
    Ok(Parsed::Frame(frame.freeze()))
}

/// Makes room in `buf` for the next read of an incomplete frame.
///
/// Growth is geometric (at least doubling) so a large frame costs amortised linear
/// copying, and it is capped at what the current frame still needs, so memory tracks
/// the bytes that actually arrived rather than the size the peer claimed: a peer that
/// announces 100 MB and sends nothing holds a few KiB, not 100 MB.
pub(crate) fn reserve_for_read(buf: &mut BytesMut, total: Option<usize>) {
    let len = buf.len();
    let spare = buf.capacity() - len;
    // Bytes we know are still to come in this frame (at least the rest of the prefix).
    let expected = match total {
        Some(total) => total.saturating_sub(len),
        None => SIZE_PREFIX_BYTES.saturating_sub(len),
    };
    if spare >= expected.clamp(1, READ_SIZE_MIN) {
        return;
    }
    let grow_to = (len * 2)
        .max(len + READ_SIZE_MIN)
        .min(len + expected.max(READ_SIZE_MIN));
    buf.reserve(grow_to - len);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(payload: &[u8]) -> BytesMut {
        let mut buf = BytesMut::new();
        let size = i32::try_from(payload.len()).unwrap_or(i32::MAX);
        buf.extend_from_slice(&size.to_be_bytes());
        buf.extend_from_slice(payload);
        buf
    }

    #[test]
    fn needs_the_prefix_first() {
        let mut buf = BytesMut::from(&[0u8, 0][..]);
        assert_eq!(parse(&mut buf, 100), Ok(Parsed::Incomplete { total: None }));
        assert_eq!(buf.len(), 2);
    }

    #[test]
    fn needs_the_whole_payload() {
        let mut buf = framed(b"hello");
        buf.truncate(6);
        assert_eq!(
            parse(&mut buf, 100),
            Ok(Parsed::Incomplete { total: Some(9) })
        );
    }

    #[test]
    fn splits_one_frame_and_keeps_the_rest() {
        let mut buf = framed(b"one");
        buf.extend_from_slice(&framed(b"two"));
        assert_eq!(
            parse(&mut buf, 100),
            Ok(Parsed::Frame(Bytes::from_static(b"one")))
        );
        assert_eq!(
            parse(&mut buf, 100),
            Ok(Parsed::Frame(Bytes::from_static(b"two")))
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn empty_frame_is_a_frame() {
        let mut buf = framed(b"");
        assert_eq!(parse(&mut buf, 100), Ok(Parsed::Frame(Bytes::new())));
    }

    #[test]
    fn negative_size_is_refused() {
        let mut buf = BytesMut::from(&(-1i32).to_be_bytes()[..]);
        assert_eq!(parse(&mut buf, 100), Err(FrameError::Negative { size: -1 }));
    }

    #[test]
    fn oversized_frame_is_refused_before_its_payload_arrives() {
        let mut buf = BytesMut::from(&101i32.to_be_bytes()[..]);
        assert_eq!(
            parse(&mut buf, 100),
            Err(FrameError::TooLarge {
                size: 101,
                max: 100
            })
        );
        let mut buf = framed(&[7; 100]);
        assert!(matches!(parse(&mut buf, 100), Ok(Parsed::Frame(f)) if f.len() == 100));
    }

    #[test]
    fn claimed_size_does_not_become_an_allocation() {
        let mut buf = BytesMut::from(&100_000_000i32.to_be_bytes()[..]);
        reserve_for_read(&mut buf, Some(100_000_004));
        assert!(buf.capacity() < 64 * 1024, "capacity {}", buf.capacity());
    }

    #[test]
    fn growth_is_geometric_and_capped_by_the_frame() {
        let total = 1_000_000;
        let mut buf = BytesMut::new();
        let mut reallocations = 0;
        while buf.len() < total {
            let before = buf.capacity();
            reserve_for_read(&mut buf, Some(total));
            if buf.capacity() != before {
                reallocations += 1;
            }
            let room = (buf.capacity() - buf.len()).min(total - buf.len());
            assert!(room > 0);
            buf.extend_from_slice(&vec![0; room]);
        }
        assert!(reallocations < 12, "{reallocations} reallocations");
        assert!(buf.capacity() < 2 * total + READ_SIZE_MIN);
    }
}
