//! Frames crafted to make a naive decoder allocate without bound, loop, or panic.
//! Each must come back as an error value, at once.

use bytes::Bytes;
use weir_protocol::{decode_request, DecodeError, Message};

fn header(api_key: i16, version: i16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&api_key.to_be_bytes());
    f.extend_from_slice(&version.to_be_bytes());
    f.extend_from_slice(&7i32.to_be_bytes());
    f.extend_from_slice(&(-1i16).to_be_bytes()); // null client id
    f
}

fn decode(frame: Vec<u8>) -> DecodeError {
    match decode_request(Bytes::from(frame)) {
        Ok(r) => panic!("hostile frame decoded: {r:?}"),
        Err(e) => e.error,
    }
}

#[test]
fn produce_claiming_i32_max_topics_in_22_bytes() {
    // ProduceRequest v3: transactional id null, acks, timeout, then a topic count of
    // i32::MAX with no topics behind it. 22 bytes in all.
    let mut f = header(0, 3);
    f.extend_from_slice(&(-1i16).to_be_bytes());
    f.extend_from_slice(&1i16.to_be_bytes());
    f.extend_from_slice(&1000i32.to_be_bytes());
    f.extend_from_slice(&i32::MAX.to_be_bytes());
    assert_eq!(f.len(), 22);
    assert!(matches!(
        decode(f),
        DecodeError::InvalidLength { what: "array", .. }
    ));
}

#[test]
fn huge_string_length() {
    let mut f = header(3, 1); // Metadata v1: topics array, then each topic name
    f.extend_from_slice(&1i32.to_be_bytes());
    f.extend_from_slice(&i16::MAX.to_be_bytes());
    f.extend_from_slice(b"abc");
    assert!(matches!(
        decode(f),
        DecodeError::InvalidLength { what: "string", .. }
    ));
}

#[test]
fn huge_bytes_length() {
    // SaslAuthenticate v0: one bytes field.
    let mut f = header(36, 0);
    f.extend_from_slice(&i32::MAX.to_be_bytes());
    f.extend_from_slice(b"xy");
    assert!(matches!(
        decode(f),
        DecodeError::InvalidLength { what: "bytes", .. }
    ));
}

#[test]
fn negative_lengths_other_than_null() {
    let mut f = header(3, 1);
    f.extend_from_slice(&(-2i32).to_be_bytes());
    assert!(matches!(
        decode(f),
        DecodeError::InvalidLength { length: -2, .. }
    ));
    let mut f = header(36, 0);
    f.extend_from_slice(&(-5i32).to_be_bytes());
    assert!(matches!(
        decode(f),
        DecodeError::InvalidLength { length: -5, .. }
    ));
}

#[test]
fn null_where_not_nullable() {
    // SaslHandshake v1: mechanism is a non-nullable string.
    let mut f = header(17, 1);
    f.extend_from_slice(&(-1i16).to_be_bytes());
    assert!(matches!(decode(f), DecodeError::UnexpectedNull { .. }));
}

#[test]
fn deep_and_overlong_varints() {
    // Metadata v12 is flexible: a compact array length made of continuation bytes.
    let mut f = header(3, 12);
    f.push(0); // no header tags
    f.extend_from_slice(&[0xff; 64]);
    assert_eq!(decode(f), DecodeError::VarintOverflow);
    // A compact count of u32::MAX - 1 elements.
    let mut f = header(3, 12);
    f.push(0);
    f.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(matches!(decode(f), DecodeError::InvalidLength { .. }));
}

#[test]
fn tagged_field_claiming_more_than_remains() {
    let mut f = header(18, 3); // ApiVersions v3 (flexible request; header v2)
    f.push(1); // header: one tagged field
    f.push(0); // tag 0
    f.extend_from_slice(&[0xff, 0xff, 0xff, 0x7f]); // size ~268M
    assert!(matches!(decode(f), DecodeError::Truncated { .. }));
}

#[test]
fn every_truncation_and_bit_flip_of_real_requests_is_handled() {
    use weir_protocol::messages::metadata::{MetadataRequest, MetadataRequestTopic};
    let req = MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: Some("orders".into()),
            ..Default::default()
        }]),
        allow_auto_topic_creation: true,
        ..Default::default()
    };
    for version in [1, 4, 9, 12] {
        let mut frame = header(3, version);
        if version >= 9 {
            frame.push(0);
        }
        frame.extend_from_slice(&req.to_bytes(version).unwrap());
        assert!(decode_request(Bytes::from(frame.clone())).is_ok());
        for cut in 0..frame.len() {
            assert!(
                decode_request(Bytes::from(frame[..cut].to_vec())).is_err(),
                "v{version} cut {cut}"
            );
        }
        for i in 0..frame.len() {
            for bit in 0..8 {
                let mut g = frame.clone();
                g[i] ^= 1 << bit;
                let _ = decode_request(Bytes::from(g)); // must return, never panic
            }
        }
    }
}
