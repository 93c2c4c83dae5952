//! Round trips, foreign framings and decompression bombs for every codec.

use super::*;

const CODECS: [Compression; 4] = [
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// Deterministic bytes that compress somewhat but not absurdly.
fn text(n: usize) -> Vec<u8> {
    let mut x: u32 = 12345;
    (0..n)
        .map(|i| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            if i % 3 == 0 {
                (x >> 24) as u8
            } else {
                b"abcdefgh"[(x >> 29) as usize]
            }
        })
        .collect()
}

#[test]
fn ids_round_trip() {
    for id in 0..5 {
        assert_eq!(Compression::from_id(id).unwrap().id(), id);
    }
    for id in 5..8 {
        assert_eq!(
            Compression::from_id(id),
            Err(RecordsError::UnknownCompression(id))
        );
    }
}

#[test]
fn every_codec_round_trips() {
    for codec in CODECS {
        for n in [0, 1, 100, 32 * 1024, 32 * 1024 + 1, 200_000] {
            let data = text(n);
            let packed = compress(codec, &data, None).unwrap();
            let back = decompress(codec, &packed, n).unwrap();
            assert_eq!(back, data, "{codec:?} n={n}");
            if n > 0 {
                assert_eq!(
                    decompress(codec, &packed, n - 1),
                    Err(RecordsError::DecompressedTooLarge { codec, cap: n - 1 }),
                    "{codec:?} n={n}"
                );
            }
        }
    }
    assert_eq!(decompress(Compression::None, b"abc", 3).unwrap(), b"abc");
    assert!(decompress(Compression::None, b"abc", 2).is_err());
}

#[test]
fn levels_are_honoured_and_clamped() {
    let data = text(50_000);
    for level in [-5, 1, 9, 30] {
        let packed = compress(Compression::Gzip, &data, Some(level)).unwrap();
        assert_eq!(
            decompress(Compression::Gzip, &packed, 50_000).unwrap(),
            data
        );
    }
    for level in [-3, 1, 19] {
        let packed = compress(Compression::Zstd, &data, Some(level)).unwrap();
        assert_eq!(
            decompress(Compression::Zstd, &packed, 50_000).unwrap(),
            data
        );
    }
}

#[test]
fn bombs_stop_at_the_cap() {
    // 64 MiB of zeros compresses to a few KiB (snappy: ~3 MiB) in every codec.
    let zeros = vec![0u8; 64 << 20];
    let cap = 1 << 20;
    for codec in CODECS {
        let bomb = compress(codec, &zeros, None).unwrap();
        assert!(bomb.len() < zeros.len() / 20, "{codec:?}");
        assert_eq!(
            decompress(codec, &bomb, cap),
            Err(RecordsError::DecompressedTooLarge { codec, cap }),
            "{codec:?}"
        );
    }
}

#[test]
fn snappy_block_claiming_4_gib_fails_before_allocating() {
    // A raw block whose length preamble says 2^32 - 1 bytes, and nothing else.
    let claim = [0xff, 0xff, 0xff, 0xff, 0x0f];
    assert_eq!(
        decompress(Compression::Snappy, &claim, 1 << 20),
        Err(RecordsError::DecompressedTooLarge {
            codec: Compression::Snappy,
            cap: 1 << 20
        })
    );
    // The same inside xerial framing.
    let mut framed = compress(Compression::Snappy, b"", None).unwrap();
    framed.extend_from_slice(&5i32.to_be_bytes());
    framed.extend_from_slice(&claim);
    assert!(matches!(
        decompress(Compression::Snappy, &framed, 1 << 20),
        Err(RecordsError::DecompressedTooLarge { .. })
    ));
}

#[test]
fn zstd_frame_demanding_a_huge_window_is_refused() {
    // Magic, frame header descriptor 0 (window descriptor present, no content size),
    // window descriptor exponent 21 -> windowLog 31 (2 GiB), then a raw last block
    // of 1 byte.
    let frame = [
        0x28,
        0xb5,
        0x2f,
        0xfd,
        0x00,
        21 << 3,
        0x09,
        0x00,
        0x00,
        b'x',
    ];
    assert!(matches!(
        decompress(Compression::Zstd, &frame, 1 << 20),
        Err(RecordsError::Decompress { .. })
    ));
    // With a sane window the same block decodes.
    let frame = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x00, 0x09, 0x00, 0x00, b'x'];
    assert_eq!(decompress(Compression::Zstd, &frame, 10).unwrap(), b"x");
}

#[test]
fn window_limits() {
    assert_eq!(zstd_window_log(0), 21);
    assert_eq!(zstd_window_log(1 << 20), 21);
    assert_eq!(zstd_window_log((4 << 20) + 1), 23);
    assert_eq!(zstd_window_log(usize::MAX), 27);
}

fn zstd_window_log(cap: usize) -> u32 {
    super::zstd::window_log_for(cap)
}

#[test]
fn raw_snappy_without_framing_is_accepted() {
    let data = text(10_000);
    let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
    assert_eq!(decompress(Compression::Snappy, &raw, 10_000).unwrap(), data);
}

#[test]
fn concatenated_streams_are_accepted() {
    let (a, b) = (text(5000), text(7000));
    let mut both = a.clone();
    both.extend_from_slice(&b);
    for codec in CODECS {
        let mut packed = compress(codec, &a, None).unwrap();
        packed.extend_from_slice(&compress(codec, &b, None).unwrap());
        let back = decompress(codec, &packed, 12_000).unwrap();
        assert!(back == both, "{codec:?}: {} bytes", back.len());
    }
}

#[test]
fn garbage_and_truncation_are_errors_not_panics() {
    let data = text(100_000);
    for codec in CODECS {
        let packed = compress(codec, &data, None).unwrap();
        for n in (0..packed.len()).step_by(97).chain([packed.len() - 1]) {
            // Truncated streams must fail (or, for snappy's raw fallback on a cut
            // magic, decode garbage into an error); none may panic.
            let r = decompress(codec, &packed[..n], 100_000);
            if codec != Compression::Gzip || n > 10 {
                assert!(r.as_deref() != Ok(&data[..]), "{codec:?} n={n}");
            }
        }
        let mut flipped = packed.clone();
        for i in (0..flipped.len()).step_by(13) {
            flipped[i] ^= 0x55;
        }
        let _ = decompress(codec, &flipped, 100_000);
    }
}
