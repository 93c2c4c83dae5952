//! Arbitrary bytes as batches: split, parse, walk every record, decompress with a
//! small cap, patch. Nothing may panic, and a batch we patched must still parse.
//!
//! Random bytes almost never carry a valid CRC, so each input is also tried with its
//! batch framing repaired (batchLength, magic and CRC made consistent), which lets the
//! fuzzer reach the record walker and the codecs; and once more as a bare records
//! section.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use weir_protocol::records::control::EndTxnMarker;
use weir_protocol::records::{
    field, BatchHeader, BatchView, Batches, RecordBase, Records, HEADER_LEN,
};

/// Decompression cap: small, so bombs are cheap to find and cheap to refuse.
const CAP: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let _ = BatchHeader::parse(data);
    exercise(Bytes::copy_from_slice(data));
    if data.len() >= HEADER_LEN {
        exercise(repaired(data));
    }
    if let Some((&count, rest)) = data.split_first() {
        let base = RecordBase {
            base_offset: 0,
            base_timestamp: 0,
            log_append_time: None,
        };
        let records = Records::new(Bytes::copy_from_slice(rest), u32::from(count), base);
        for record in records.flatten() {
            for header in record.headers.iter() {
                let _ = header.key_str();
            }
        }
    }
});

/// `data` as one batch with a consistent length, magic and CRC.
fn repaired(data: &[u8]) -> Bytes {
    let mut m = data.to_vec();
    let len = i32::try_from(m.len() - 12).unwrap_or(i32::MAX);
    m[field::BATCH_LENGTH..field::BATCH_LENGTH + 4].copy_from_slice(&len.to_be_bytes());
    m[field::MAGIC] = 2;
    let crc = crc32c::crc32c(&m[field::ATTRIBUTES..]);
    m[field::CRC..field::CRC + 4].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(m)
}

fn exercise(buf: Bytes) {
    let mut tolerant = Batches::allowing_partial_tail(buf.clone());
    for batch in tolerant.by_ref() {
        if batch.is_err() {
            break;
        }
    }
    assert!(tolerant.position() + tolerant.partial_tail_len() <= buf.len());

    let mut strict = Batches::new(buf.clone());
    for batch in strict.by_ref() {
        let Ok(batch) = batch else { break };
        walk(&batch);
        let mut patched = batch.clone();
        patched.assign(1, 2);
        patched.set_log_append_time(3);
        let again = BatchView::parse(patched.into_bytes()).expect("a patched valid batch parses");
        assert_eq!(again.base_offset(), 1);
        assert_eq!(again.max_timestamp(), 3);
    }
    assert!(strict.position() <= buf.len());
}

fn walk(batch: &BatchView) {
    let _ = batch.validate_client_append();
    let _ = batch.validate_client_records(CAP);
    let _ = batch.first_at_or_after(0, CAP);
    let Ok(records) = batch.records(CAP) else {
        return;
    };
    let declared = batch.record_count();
    let mut seen = 0i64;
    for record in records {
        let Ok(record) = record else { break };
        seen += 1;
        for header in record.headers.iter() {
            let _ = header.key_str();
        }
        if batch.is_control() {
            let _ = EndTxnMarker::from_record(&record);
        }
    }
    assert!(seen <= i64::from(declared));
}
