//! Every codec on arbitrary bytes with a small cap: no panic, no output past the cap.
//! Then a round trip: the input compressed with the codec its first byte picks must
//! decompress to itself with the cap set to exactly its length.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_protocol::records::compression::{compress, decompress, Compression};

const CAP: usize = 64 * 1024;
const CODECS: [Compression; 4] = [
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

fuzz_target!(|data: &[u8]| {
    for codec in CODECS {
        if let Ok(out) = decompress(codec, data, CAP) {
            assert!(out.len() <= CAP);
        }
    }
    if let Some((&pick, rest)) = data.split_first() {
        let codec = CODECS[usize::from(pick) % CODECS.len()];
        let packed = compress(codec, rest, None).expect("compress");
        let back = decompress(codec, &packed, rest.len()).expect("round trip");
        assert_eq!(back, rest);
    }
});
