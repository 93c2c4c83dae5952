//! The builder and the record walker: round trips, malformed records, timestamps.

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;

use crate::records::{
    BatchBuilder, BatchView, Batches, Compression, Record, RecordBase, Records, RecordsError,
};
use crate::wire::varint;

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// What a test appends: timestamp, key, value, headers.
type Input = (
    i64,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(String, Option<Vec<u8>>)>,
);

fn build(inputs: &[Input], codec: Compression) -> Bytes {
    let mut b = BatchBuilder::new().compression(codec);
    for (ts, k, v, h) in inputs {
        let h: Vec<(&str, Option<&[u8]>)> =
            h.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect();
        b.append(*ts, k.as_deref(), v.as_deref(), &h).unwrap();
    }
    b.build().unwrap()
}

fn check_same(inputs: &[Input], records: &[Record]) {
    assert_eq!(inputs.len(), records.len());
    for (i, ((ts, k, v, h), r)) in inputs.iter().zip(records).enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.offset_delta, i as i32);
        assert_eq!(r.timestamp, *ts);
        assert_eq!(r.key.as_deref(), k.as_deref());
        assert_eq!(r.value.as_deref(), v.as_deref());
        let got: Vec<(String, Option<Vec<u8>>)> = r
            .headers
            .iter()
            .map(|h| (h.key_str().unwrap().to_owned(), h.value.map(|v| v.to_vec())))
            .collect();
        assert_eq!(&got, h);
        assert_eq!(r.headers.len(), h.len());
    }
}

fn varied_inputs() -> Vec<Input> {
    vec![
        (1000, Some(b"k".to_vec()), Some(b"v".to_vec()), vec![]),
        (999, None, None, vec![]),
        (1005, Some(vec![]), Some(vec![]), vec![("a".into(), None)]),
        (
            -1,
            Some(vec![7; 300]),
            Some(vec![9; 70_000]),
            vec![("x".into(), Some(vec![1, 2])), ("".into(), Some(vec![]))],
        ),
        (
            i64::from(i32::MAX) * 4,
            Some(b"late".to_vec()),
            None,
            vec![],
        ),
    ]
}

#[test]
fn builder_round_trips_every_codec() {
    let inputs = varied_inputs();
    for codec in CODECS {
        let buf = build(&inputs, codec);
        let v = BatchView::parse(buf).unwrap();
        assert_eq!(v.compression(), codec);
        assert_eq!(v.record_count(), 5);
        assert_eq!(v.base_timestamp(), 1000);
        assert_eq!(v.max_timestamp(), i64::from(i32::MAX) * 4);
        v.validate_client_append().unwrap();
        v.validate_client_records(1 << 20).unwrap();
        let records: Vec<Record> = v.records(1 << 20).unwrap().map(Result::unwrap).collect();
        check_same(&inputs, &records);
        // the cap applies to compressed batches
        if codec != Compression::None {
            assert!(matches!(
                v.records(1000),
                Err(RecordsError::DecompressedTooLarge { .. })
            ));
        }
    }
}

#[test]
fn empty_builder_is_an_error() {
    assert!(matches!(
        BatchBuilder::new().build(),
        Err(RecordsError::Build(_))
    ));
}

#[test]
fn timestamp_search_is_record_precise() {
    let ts = [100, 50, 300, 200, 400];
    let inputs: Vec<Input> = ts
        .iter()
        .map(|&t| (t, None, Some(vec![1]), vec![]))
        .collect();
    for codec in CODECS {
        let mut v = BatchView::parse(build(&inputs, codec)).unwrap();
        v.set_base_offset(10);
        let find = |t| v.first_at_or_after(t, 1 << 20).unwrap();
        assert_eq!(find(0), Some((10, 100)));
        assert_eq!(find(100), Some((10, 100)));
        assert_eq!(find(101), Some((12, 300)));
        assert_eq!(find(250), Some((12, 300)));
        assert_eq!(find(301), Some((14, 400)));
        assert_eq!(find(401), None);
    }
}

/// An uncompressed records section with the given raw record bodies.
fn section(bodies: &[&[u8]]) -> Bytes {
    let mut out = BytesMut::new();
    for b in bodies {
        varint::put_varint(&mut out, b.len() as i32);
        out.put_slice(b);
    }
    out.freeze()
}

fn walk(section: Bytes, count: u32) -> Vec<Result<Record, RecordsError>> {
    let base = RecordBase {
        base_offset: 0,
        base_timestamp: 0,
        log_append_time: None,
    };
    Records::new(section, count, base).collect()
}

#[test]
fn malformed_records_are_errors() {
    // attributes, tsDelta 0, offsetDelta 0, key -1, value -1, headers 0
    let ok: &[u8] = &[0, 0, 0, 1, 1, 0];
    assert!(walk(section(&[ok]), 1)[0].is_ok());
    let bad: [(&[u8], &str); 7] = [
        (&[0, 0, 0, 3, 1, 0], "key -2"),
        (&[0, 0, 0, 0x7e, 1, 0], "key 63 > rest"),
        (&[0, 0, 0, 1, 3, 0], "value -2"),
        (&[0, 0, 0, 1, 1, 1], "header count 1 with no bytes"),
        (&[0, 0, 0, 1, 1, 2, 1, 1], "header key -1"),
        (&[0, 0, 0, 1, 1, 0, 9], "extra byte in record"),
        (&[0, 0, 0, 1, 1], "header count missing"),
    ];
    for (body, what) in bad {
        let r = walk(section(&[body]), 1);
        assert_eq!(r.len(), 1, "{what}");
        assert!(r[0].is_err(), "{what}");
    }
    // overlong varint in the length
    let r = walk(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), 1);
    assert!(matches!(
        r[0],
        Err(RecordsError::RecordVarint { index: 0, .. })
    ));
    // negative record length
    assert!(walk(Bytes::from_static(&[0x01]), 1)[0].is_err());
    // trailing bytes after the declared records
    let r = walk(section(&[ok, ok]), 1);
    assert_eq!(r.len(), 2);
    assert!(matches!(r[1], Err(RecordsError::TrailingRecordBytes(7))));
    // fewer records than declared
    let r = walk(section(&[ok]), 2);
    assert!(matches!(
        r[1],
        Err(RecordsError::MissingRecords {
            declared: 2,
            found: 1
        })
    ));
    // zero declared, zero present
    assert!(walk(Bytes::new(), 0).is_empty());
}

#[test]
fn truncated_records_at_every_length_are_errors() {
    let inputs = varied_inputs();
    let v = BatchView::parse(build(&inputs[..3], Compression::None)).unwrap();
    let full = v.records_bytes();
    for n in 0..full.len() {
        let r = walk(full.slice(..n), 3);
        assert!(r.last().unwrap().is_err(), "len {n}");
    }
}

#[test]
fn log_append_time_applies_to_every_record() {
    let base = RecordBase {
        base_offset: 5,
        base_timestamp: 1,
        log_append_time: Some(77),
    };
    let s = section(&[&[0, 2, 2, 1, 1, 0], &[0, 4, 4, 1, 1, 0]]);
    let r: Vec<_> = Records::new(s, 2, base).map(Result::unwrap).collect();
    assert_eq!(
        (r[1].offset, r[1].timestamp, r[1].timestamp_delta),
        (7, 77, 2)
    );
}

#[test]
fn record_offset_gaps_fail_client_validation() {
    // two records with offset deltas 0 and 2, recordCount 2, lastOffsetDelta 1
    let s = section(&[&[0, 0, 0, 1, 1, 0], &[0, 0, 4, 1, 1, 0]]);
    let mut b = BatchBuilder::new();
    b.append(0, None, None, &[]).unwrap();
    b.append(0, None, None, &[]).unwrap();
    let built = b.build().unwrap();
    let mut m = built[..61].to_vec();
    m.extend_from_slice(&s);
    let len = (m.len() - 12) as i32;
    m[8..12].copy_from_slice(&len.to_be_bytes());
    let crc = crc32c::crc32c(&m[21..]);
    m[17..21].copy_from_slice(&crc.to_be_bytes());
    let v = BatchView::parse(Bytes::from(m)).unwrap();
    v.validate_client_append().unwrap();
    assert!(matches!(
        v.validate_client_records(1024),
        Err(RecordsError::InvalidClientBatch(_))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300), count in 0u32..20) {
        let _ = walk(Bytes::from(data.clone()), count);
        for b in Batches::allowing_partial_tail(Bytes::from(data)).flatten() {
            if let Ok(records) = b.records(4096) {
                records.for_each(drop);
            }
        }
    }

    #[test]
    fn builder_round_trips(
        recs in proptest::collection::vec(
            (any::<i64>().prop_map(|t| t >> 2),
             proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
             proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
             proptest::collection::vec(("[a-z]{0,5}", proptest::option::of(proptest::collection::vec(any::<u8>(), 0..10))), 0..3)),
            1..20),
        codec in proptest::sample::select(CODECS.to_vec()),
    ) {
        let buf = build(&recs, codec);
        let v = BatchView::parse(buf).unwrap();
        let records: Vec<Record> = v.records(1 << 20).unwrap().map(Result::unwrap).collect();
        check_same(&recs, &records);
    }
}
