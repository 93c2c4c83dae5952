//! The controller listener's framing: a pure codec plus the async read and write of
//! one frame.
//!
//! ```text
//! length  u32 big-endian   bytes that follow (kind + payload), 1..=max
//! kind    u8               what the payload is (see `Kind`)
//! payload                  postcard for Raft messages; opaque bytes for
//!                          controller calls; UTF-8 text for errors
//! ```
//!
//! The length is checked against the cap before anything is allocated, so a peer
//! cannot make the node allocate more than one frame's worth per connection. Every
//! request gets exactly one reply frame: the request's kind with the high bit set,
//! or [`Kind::Error`].

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    /// The first request on a connection: who is calling whom, in which cluster.
    Hello = 1,
    /// Raft AppendEntries (and heartbeats).
    AppendEntries = 2,
    /// Raft RequestVote.
    Vote = 3,
    /// One chunk of a Raft InstallSnapshot.
    InstallSnapshot = 4,
    /// An encoded controller request for the `ForwardedRequestHandler`.
    ControllerCall = 5,
    /// A learner asks the leader to add it (or update its address).
    Join = 6,
    /// The request could not be served; the payload says why.
    Error = 0x7f,
}

/// The bit set on a reply's kind.
pub(crate) const REPLY: u8 = 0x80;

impl Kind {
    /// The kind of a request byte, if known.
    pub(crate) fn request(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Hello,
            2 => Kind::AppendEntries,
            3 => Kind::Vote,
            4 => Kind::InstallSnapshot,
            5 => Kind::ControllerCall,
            6 => Kind::Join,
            _ => return None,
        })
    }

    /// The byte of a successful reply to this request kind.
    pub(crate) fn reply(self) -> u8 {
        self as u8 | REPLY
    }
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    /// The peer closed the connection between frames.
    #[error("connection closed")]
    Closed,
    /// The length is 0 or above the cap.
    #[error("frame length {len} is outside 1..={max}")]
    BadLength {
        /// The claimed length.
        len: u32,
        /// The cap.
        max: usize,
    },
    /// The socket failed (or closed inside a frame).
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Reads the length of the next frame: waits for the start of a frame (the caller
/// bounds the wait), checks the cap.
pub(crate) async fn read_len<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<usize, FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len);
    if len == 0 || len as usize > max {
        return Err(FrameError::BadLength { len, max });
    }
    Ok(len as usize)
}

/// Reads the `len` bytes of a frame whose length was read: returns kind and payload.
pub(crate) async fn read_body<R: AsyncRead + Unpin>(
    r: &mut R,
    len: usize,
) -> Result<(u8, Vec<u8>), FrameError> {
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).await?;
    let kind = buf[0];
    buf.remove(0);
    Ok((kind, buf))
}

/// Reads one whole frame.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<(u8, Vec<u8>), FrameError> {
    let len = read_len(r, max).await?;
    read_body(r, len).await
}

/// The bytes of a frame of `kind` with `payload`, or `None` if it would exceed
/// `max`.
pub(crate) fn encode(kind: u8, payload: &[u8], max: usize) -> Option<Vec<u8>> {
    let len = payload.len().checked_add(1)?;
    if len > max {
        return None;
    }
    let len32 = u32::try_from(len).ok()?;
    let mut out = Vec::with_capacity(4 + len);
    out.extend_from_slice(&len32.to_be_bytes());
    out.push(kind);
    out.extend_from_slice(payload);
    Some(out)
}

/// Writes and flushes encoded frame bytes.
pub(crate) async fn write_bytes<W: AsyncWrite + Unpin>(
    w: &mut W,
    bytes: &[u8],
) -> std::io::Result<()> {
    w.write_all(bytes).await?;
    w.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_bad_lengths_are_errors() {
        let bytes = encode(Kind::Vote as u8, b"abc", 100).unwrap();
        let (kind, payload) = read_frame(&mut &bytes[..], 100).await.unwrap();
        assert_eq!((kind, payload.as_slice()), (3, &b"abc"[..]));
        assert!(encode(1, &[0; 100], 100).is_none());
        let big = (101u32).to_be_bytes();
        assert!(matches!(
            read_frame(&mut &big[..], 100).await,
            Err(FrameError::BadLength { len: 101, .. })
        ));
        let zero = 0u32.to_be_bytes();
        assert!(matches!(
            read_frame(&mut &zero[..], 100).await,
            Err(FrameError::BadLength { len: 0, .. })
        ));
        assert!(matches!(
            read_frame(&mut &[][..], 100).await,
            Err(FrameError::Closed)
        ));
        // A frame cut short is an I/O error, not a panic.
        assert!(matches!(
            read_frame(&mut &bytes[..5], 100).await,
            Err(FrameError::Io(_))
        ));
    }
}
