//! Unit tests of the records module, one file per concern.

mod batch;
mod control;
mod golden;
mod record;

use bytes::Bytes;

use super::{BatchBuilder, Compression};

/// A batch of `n` records with keys, values and a header, built by our builder.
pub(super) fn sample_batch(n: usize, codec: Compression) -> Bytes {
    let mut b = BatchBuilder::new()
        .compression(codec)
        .producer(7, 3, 100)
        .partition_leader_epoch(5);
    for i in 0..n {
        let key = format!("key-{i}");
        let value = format!("value-{i}").repeat(3);
        b.append(
            1_700_000_000_000 + i as i64,
            Some(key.as_bytes()),
            Some(value.as_bytes()),
            &[("h", Some(b"v".as_slice()))],
        )
        .unwrap();
    }
    b.build().unwrap()
}
