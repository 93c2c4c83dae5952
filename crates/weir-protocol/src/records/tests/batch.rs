//! Header parsing, CRC, truncation, patching and the batch iterator.

use bytes::{Bytes, BytesMut};

use super::sample_batch;
use crate::records::{
    field, patch_in_place, BatchHeader, BatchView, Batches, Compression, RecordsError,
    TimestampType, HEADER_LEN, PATCH_PREFIX_LEN,
};

#[test]
fn header_fields_round_trip() {
    let buf = sample_batch(3, Compression::None);
    let v = BatchView::parse(buf.clone()).unwrap();
    assert_eq!(v.base_offset(), 0);
    assert_eq!(v.total_len(), buf.len());
    assert_eq!(v.batch_length() as usize, buf.len() - 12);
    assert_eq!(v.partition_leader_epoch(), 5);
    assert_eq!(v.magic(), 2);
    assert_eq!(v.compression(), Compression::None);
    assert_eq!(v.timestamp_type(), TimestampType::CreateTime);
    assert!(!v.is_transactional() && !v.is_control() && !v.has_delete_horizon());
    assert_eq!(v.last_offset_delta(), 2);
    assert_eq!(v.base_timestamp(), 1_700_000_000_000);
    assert_eq!(v.max_timestamp(), 1_700_000_000_002);
    assert_eq!((v.producer_id(), v.producer_epoch()), (7, 3));
    assert_eq!((v.base_sequence(), v.last_sequence()), (100, 102));
    assert_eq!(v.record_count(), 3);
    assert_eq!((v.last_offset(), v.next_offset()), (2, 3));
    assert_eq!(BatchHeader::parse(&buf[..HEADER_LEN]).unwrap(), *v.header());
    v.validate_client_append().unwrap();
}

#[test]
fn flipping_any_byte_is_detected_or_expected() {
    for codec in [Compression::None, Compression::Zstd] {
        let buf = sample_batch(2, codec);
        let orig = BatchView::parse(buf.clone()).unwrap();
        for i in 0..buf.len() {
            let mut m = buf.to_vec();
            m[i] ^= 0xff;
            let r = BatchView::parse(Bytes::from(m));
            match i {
                // baseOffset and partitionLeaderEpoch are outside the CRC by design.
                0..8 => {
                    let v = r.unwrap();
                    assert_eq!(
                        v.base_offset(),
                        orig.base_offset() ^ (0xff << (8 * (7 - i)))
                    );
                }
                12..16 => {
                    let v = r.unwrap();
                    assert_ne!(v.partition_leader_epoch(), orig.partition_leader_epoch());
                }
                _ => assert!(r.is_err(), "flip at {i} went unnoticed"),
            }
        }
    }
}

#[test]
fn truncation_at_every_length_is_an_error() {
    let buf = sample_batch(4, Compression::None);
    for n in 0..buf.len() {
        let cut = buf.slice(..n);
        assert!(BatchView::parse(cut.clone()).is_err(), "len {n}");
        let mut it = Batches::new(cut.clone());
        if n == 0 {
            assert!(it.next().is_none());
        } else {
            assert!(
                matches!(it.next(), Some(Err(RecordsError::TruncatedBatch { .. }))),
                "len {n}"
            );
            assert_eq!(it.position(), 0);
        }
        assert!(it.next().is_none());
        let mut tolerant = Batches::allowing_partial_tail(cut);
        assert!(tolerant.next().is_none());
        assert_eq!(tolerant.partial_tail_len(), n);
    }
}

#[test]
fn specific_header_errors() {
    let buf = sample_batch(1, Compression::None);
    let with = |at: usize, bytes: &[u8]| {
        let mut m = buf.to_vec();
        m[at..at + bytes.len()].copy_from_slice(bytes);
        BatchView::parse(Bytes::from(m))
    };
    assert_eq!(
        with(field::MAGIC, &[1]),
        Err(RecordsError::UnsupportedMagic(1))
    );
    assert_eq!(
        with(field::BATCH_LENGTH, &48i32.to_be_bytes()),
        Err(RecordsError::InvalidBatchLength { length: 48 })
    );
    assert_eq!(
        with(field::ATTRIBUTES, &5i16.to_be_bytes()),
        Err(RecordsError::UnknownCompression(5))
    );
    assert!(matches!(
        with(field::RECORD_COUNT, &(-1i32).to_be_bytes()),
        Err(RecordsError::InvalidRecordCount { .. })
    ));
    assert!(matches!(
        with(field::RECORD_COUNT, &2i32.to_be_bytes()),
        Err(RecordsError::InvalidRecordCount { .. })
    ));
    assert!(matches!(
        with(field::LAST_OFFSET_DELTA, &(-1i32).to_be_bytes()),
        Err(RecordsError::InvalidRecordCount { .. })
    ));
    assert!(matches!(
        with(field::CRC, &[0, 0, 0, 0]),
        Err(RecordsError::CrcMismatch { stored: 0, .. })
    ));
    // more records than the uncompressed bytes can hold
    let mut m = buf.to_vec();
    m[field::LAST_OFFSET_DELTA..field::LAST_OFFSET_DELTA + 4]
        .copy_from_slice(&1000i32.to_be_bytes());
    m[field::RECORD_COUNT..field::RECORD_COUNT + 4].copy_from_slice(&1000i32.to_be_bytes());
    assert!(matches!(
        BatchHeader::parse(&m),
        Err(RecordsError::InvalidRecordCount { .. })
    ));
    // a longer buffer than the batch is an error for a lone batch
    let mut long = buf.to_vec();
    long.push(0);
    assert_eq!(
        BatchView::parse(Bytes::from(long)),
        Err(RecordsError::TrailingBytes(1))
    );
}

#[test]
fn batches_split_and_report_position() {
    let a = sample_batch(1, Compression::None);
    let b = sample_batch(3, Compression::Gzip);
    let c = sample_batch(2, Compression::Lz4);
    let mut all = BytesMut::new();
    for x in [&a, &b, &c] {
        all.extend_from_slice(x);
    }
    let all = all.freeze();
    let views: Vec<_> = Batches::new(all.clone()).map(Result::unwrap).collect();
    assert_eq!(views.len(), 3);
    assert_eq!(views[1].as_bytes(), &b);
    assert_eq!(views[2].compression(), Compression::Lz4);

    // a torn tail: strict reports where the valid prefix ends
    let torn = all.slice(..all.len() - 5);
    let mut it = Batches::new(torn.clone());
    assert!(it.next().unwrap().is_ok());
    assert!(it.next().unwrap().is_ok());
    assert_eq!(
        it.next(),
        Some(Err(RecordsError::TruncatedBatch {
            position: a.len() + b.len(),
            needed: c.len(),
            available: c.len() - 5
        }))
    );
    assert_eq!(it.position(), a.len() + b.len());
    assert_eq!(it.next(), None);

    // the fetch form stops quietly at the same place
    let mut it = Batches::allowing_partial_tail(torn);
    assert_eq!(it.by_ref().filter(Result::is_ok).count(), 2);
    assert_eq!(it.partial_tail_len(), c.len() - 5);

    // garbage after a good batch is an error in both forms
    let mut junk = a.to_vec();
    junk.extend_from_slice(&[0u8; 20]);
    let junk = Bytes::from(junk);
    for mut it in [
        Batches::new(junk.clone()),
        Batches::allowing_partial_tail(junk.clone()),
    ] {
        assert!(it.next().unwrap().is_ok());
        assert_eq!(
            it.next(),
            Some(Err(RecordsError::InvalidBatchLength { length: 0 }))
        );
        assert_eq!(it.position(), a.len());
    }
}

#[test]
fn assign_patches_outside_the_crc() {
    let buf = sample_batch(2, Compression::None);
    // shared: the original must not change
    let mut v = BatchView::parse(buf.clone()).unwrap();
    v.assign(1234, 9);
    assert_eq!((v.base_offset(), v.partition_leader_epoch()), (1234, 9));
    assert_eq!(v.last_offset(), 1235);
    assert_eq!(BatchView::parse(buf.clone()).unwrap().base_offset(), 0);
    let reparsed = BatchView::parse(v.as_bytes().clone()).unwrap();
    assert_eq!(reparsed, v);

    // unique: patched in place, same allocation
    let mut v = BatchView::parse(Bytes::from(buf.to_vec())).unwrap();
    let ptr = v.as_bytes().as_ptr();
    v.set_base_offset(77);
    v.set_partition_leader_epoch(3);
    assert_eq!(v.as_bytes().as_ptr(), ptr);
    assert_eq!(BatchView::parse(v.as_bytes().clone()).unwrap(), v);

    // prefix + rest, for vectored writes, equals the assigned bytes
    let view = BatchView::parse(buf.clone()).unwrap();
    let mut joined = view.patched_prefix(77, 3).to_vec();
    joined.extend_from_slice(&view.after_prefix());
    assert_eq!(&joined[..], &v.as_bytes()[..]);
    let mut raw = buf.to_vec();
    assert!(patch_in_place(&mut raw, 77, 3));
    assert_eq!(&raw[..], &joined[..]);
    assert!(!patch_in_place(&mut raw[..PATCH_PREFIX_LEN - 1], 1, 1));
}

#[test]
fn log_append_time_rewrites_crc_and_timestamps() {
    let buf = sample_batch(3, Compression::Snappy);
    let mut v = BatchView::parse(buf).unwrap();
    v.set_log_append_time(42);
    let v2 = BatchView::parse(v.as_bytes().clone()).unwrap();
    assert_eq!(v2.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(v2.max_timestamp(), 42);
    for r in v2.records(1 << 20).unwrap() {
        assert_eq!(r.unwrap().timestamp, 42);
    }
}

#[test]
fn client_append_rules() {
    let buf = sample_batch(2, Compression::None);
    let set = |at: usize, bytes: &[u8]| {
        let mut m = buf.to_vec();
        m[at..at + bytes.len()].copy_from_slice(bytes);
        let crc = crc32c::crc32c(&m[field::ATTRIBUTES..]);
        m[field::CRC..field::CRC + 4].copy_from_slice(&crc.to_be_bytes());
        BatchView::parse(Bytes::from(m)).unwrap()
    };
    assert!(set(field::LAST_OFFSET_DELTA, &5i32.to_be_bytes())
        .validate_client_append()
        .is_err());
    assert!(set(field::ATTRIBUTES, &0x20i16.to_be_bytes())
        .validate_client_append()
        .is_err());
    assert!(set(field::BASE_SEQUENCE, &(-1i32).to_be_bytes())
        .validate_client_append()
        .is_err());
    // a compacted batch (fewer records than its range) parses, but no producer sends one
    let gap = set(field::LAST_OFFSET_DELTA, &5i32.to_be_bytes());
    assert_eq!((gap.record_count(), gap.last_offset()), (2, 5));
}

#[test]
fn sequence_wraps_like_kafka() {
    let mut b = crate::records::BatchBuilder::new().producer(1, 0, i32::MAX - 1);
    for _ in 0..3 {
        b.append(0, None, Some(b"x"), &[]).unwrap();
    }
    let v = BatchView::parse(b.build().unwrap()).unwrap();
    assert_eq!(v.last_sequence(), 0);
}
