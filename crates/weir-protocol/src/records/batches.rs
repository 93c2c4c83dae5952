//! Splitting a concatenation of batches into validated [`BatchView`]s.
//!
//! A Produce request's `records` field, a region of a log segment and a fetch
//! response's `records` are all batches back to back. Each is checked as it is
//! reached (structure and CRC); the first bad one ends the iteration with its error,
//! and [`Batches::position`] then says where the valid prefix ends, which is where log
//! recovery truncates.
//!
//! The strict form treats an incomplete final batch as an error (a produce request or
//! a log region must hold whole batches). [`Batches::allowing_partial_tail`] ends
//! quietly at one instead, because a fetch response may be cut at its byte limit in
//! the middle of a batch (Kafka's consumer skips such a tail the same way).

use bytes::Bytes;

use super::batch::{BatchView, LOG_OVERHEAD, MIN_BATCH_LENGTH};
use super::error::RecordsError;

/// Iterator over the batches of a buffer; see the module docs.
#[derive(Debug, Clone)]
pub struct Batches {
    buf: Bytes,
    /// Start of the next batch to read; always <= buf.len().
    pos: usize,
    /// Whether an incomplete final batch ends iteration without an error.
    allow_partial_tail: bool,
    /// Set after the end, an error, or a partial tail: the iterator is fused.
    done: bool,
    /// Length of the incomplete final batch that was skipped, if any.
    partial_tail_len: usize,
}

impl Batches {
    /// Batches of `buf`; an incomplete final batch is an error.
    pub fn new(buf: Bytes) -> Self {
        Batches {
            buf,
            pos: 0,
            allow_partial_tail: false,
            done: false,
            partial_tail_len: 0,
        }
    }

    /// Batches of `buf`; an incomplete final batch ends the iteration quietly (see
    /// [`Batches::partial_tail_len`]). A garbage length is still an error.
    pub fn allowing_partial_tail(buf: Bytes) -> Self {
        Batches {
            allow_partial_tail: true,
            ..Batches::new(buf)
        }
    }

    /// Byte position of the next batch: after the last batch returned, or at the
    /// batch that failed. Everything before it was valid.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes of the incomplete final batch that was skipped (0 if none, or not yet
    /// reached).
    pub fn partial_tail_len(&self) -> usize {
        self.partial_tail_len
    }

    fn end_partial(&mut self, rest_len: usize) -> Option<Result<BatchView, RecordsError>> {
        self.done = true;
        self.partial_tail_len = rest_len;
        None
    }

    fn fail(&mut self, e: RecordsError) -> Option<Result<BatchView, RecordsError>> {
        self.done = true;
        Some(Err(e))
    }
}

impl Iterator for Batches {
    type Item = Result<BatchView, RecordsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        if rest.is_empty() {
            self.done = true;
            return None;
        }
        // Look at batchLength first: it decides whether the rest is a partial batch
        // (tolerable at the end of a fetch) or garbage (never tolerable).
        let length = rest
            .get(8..LOG_OVERHEAD)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(i32::from_be_bytes);
        let needed = match length {
            None => LOG_OVERHEAD,
            Some(length) if length < MIN_BATCH_LENGTH => {
                return self.fail(RecordsError::InvalidBatchLength { length });
            }
            // length >= 49 > 0, so the cast is lossless.
            Some(length) => LOG_OVERHEAD + length as usize,
        };
        if rest.len() < needed {
            if self.allow_partial_tail {
                return self.end_partial(rest.len());
            }
            return self.fail(RecordsError::TruncatedBatch {
                position: self.pos,
                needed,
                available: rest.len(),
            });
        }
        match BatchView::parse_prefix(&self.buf, self.pos) {
            Ok(view) => {
                self.pos += view.total_len();
                Some(Ok(view))
            }
            Err(e) => self.fail(e),
        }
    }
}

impl std::iter::FusedIterator for Batches {}
