//! Arbitrary bytes as a request frame (what the broker decodes from the network) and
//! as a response frame (what the client decodes). Decoding must return, never panic;
//! a request that decodes must re-encode and decode to the same value.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use weir_protocol::{decode_request, decode_response, encode_request, ApiKey};

fuzz_target!(|data: &[u8]| {
    let frame = Bytes::copy_from_slice(data);
    if let Ok(req) = decode_request(frame.clone()) {
        let chunks = encode_request(&req.header, &req.body).expect("a decoded request re-encodes");
        let again = decode_request(Bytes::from(chunks.concat()).slice(4..)).expect("a re-encoded request decodes");
        assert_eq!(again.body, req.body);
    }
    // The first three bytes choose which response the rest is read as.
    if let [key, version, rest @ ..] = data {
        if let Some(&api) = ApiKey::ALL.get(usize::from(*key) % ApiKey::ALL.len()) {
            let (min, max) = api.versions();
            let version = min + (i16::from(*version) % (max - min + 1));
            let _ = decode_response(Bytes::copy_from_slice(rest), api, version);
        }
    }
});
