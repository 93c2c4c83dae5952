//! Dispatcher tests that need no broker: framing of responses and the answers to
//! frames that do not decode.

use bytes::{Buf, Bytes};
use weir_protocol::messages::api_versions::ApiVersionsResponse;
use weir_protocol::messages::metadata::MetadataResponse;
use weir_protocol::{Message, RequestHeader};
use weir_types::ErrorCode;

use super::*;

fn concat(chunks: Vec<Bytes>) -> Bytes {
    chunks.concat().into()
}

fn header_bytes(api_key: i16, api_version: i16, correlation_id: i32) -> Bytes {
    let mut e = Encoder::new();
    RequestHeader {
        api_key,
        api_version,
        correlation_id,
        client_id: Some("t".into()),
    }
    .encode(&mut e)
    .expect("encode header");
    e.into_bytes()
}

#[test]
fn responses_carry_no_size_prefix_and_the_right_header() {
    // Flexible Metadata: correlation id, then an empty tag buffer, then the body.
    let body = Response::Metadata(MetadataResponse::default());
    let frame = concat(encode(7, 12, &body).expect("encode"));
    assert_eq!(&frame[..5], &[0, 0, 0, 7, 0]);
    let expected = MetadataResponse::default().to_bytes(12).expect("body");
    assert_eq!(&frame[5..], &expected[..]);
    // Non-flexible Metadata: no tag buffer.
    let frame = concat(encode(7, 8, &body).expect("encode"));
    let expected = MetadataResponse::default().to_bytes(8).expect("body");
    assert_eq!(&frame[4..], &expected[..]);
}

#[test]
fn api_versions_v3_response_has_no_tagged_fields_at_all() {
    let body = Response::ApiVersions(api_versions::handle(
        &weir_protocol::messages::api_versions::ApiVersionsRequest {
            client_software_name: "weir".into(),
            client_software_version: "1".into(),
        },
        3,
    ));
    let mut frame = concat(encode(1, 3, &body).expect("encode"));
    // Response header v0 even though v3 is flexible (KIP-511): no tag buffer.
    assert_eq!(frame.get_i32(), 1);
    assert_eq!(frame.get_i16(), 0, "error code");
    let count = usize::from(frame.get_u8()) - 1; // compact array, < 127 entries
    assert_eq!(count, versions::SUPPORTED.len());
    for _ in 0..count {
        frame.advance(6);
        assert_eq!(frame.get_u8(), 0, "an api entry carries tagged fields");
    }
    assert_eq!(frame.get_i32(), 0, "throttle time");
    assert_eq!(frame.get_u8(), 0, "the response carries tagged fields");
    assert!(frame.is_empty(), "{} bytes left", frame.len());
}

#[test]
fn unknown_api_versions_version_gets_the_v0_fallback() {
    let mut e = Encoder::new();
    e.raw(&header_bytes(18, 99, 5));
    e.raw(&[1, 2, 3]); // a body from the future
    let error = decode_request(e.into_bytes()).expect_err("v99 does not decode");
    let Ok(Reply::Response(chunks)) = undecodable(error) else {
        panic!("expected a response");
    };
    let mut frame = concat(chunks);
    assert_eq!(frame.get_i32(), 5);
    let body = ApiVersionsResponse::from_bytes(frame, 0).expect("a v0 body");
    assert_eq!(body.error_code, ErrorCode::UnsupportedVersion.code());
    assert_eq!(body.api_keys, versions::api_versions());
}

#[test]
fn unknown_api_keys_and_bad_bodies_close_the_connection() {
    let error = decode_request(header_bytes(999, 0, 1)).expect_err("unknown key");
    let close = undecodable(error).expect_err("closed");
    assert!(close.reason().starts_with("unknown API key"), "{close}");

    let mut e = Encoder::new();
    e.raw(&header_bytes(3, 1, 2));
    e.raw(&[0, 0, 0, 9]); // Metadata v1: nine topics, none there
    let error = decode_request(e.into_bytes()).expect_err("truncated body");
    let close = undecodable(error).expect_err("closed");
    assert!(close.reason().contains("does not decode"), "{close}");
    assert!(close.reason().contains("Metadata"), "{close}");

    let error = decode_request(Bytes::from_static(&[0, 3])).expect_err("short header");
    assert!(undecodable(error).is_err());
}
