//! Differential tests against an independent implementation of the Kafka protocol
//! (the `kafka-protocol` crate, generated from Apache Kafka's own message files).
//!
//! For every API and every version both implementations know, random messages are
//! encoded by Weir, decoded by `kafka-protocol`, re-encoded by it, and the bytes must
//! be identical. A wrong field type, version range, tag or nullability in one of our
//! schema files shows up here as a byte mismatch or a decode failure.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey as KpApiKey, RequestKind, ResponseKind};

use super::*;
use crate::testing::Rng;

const CASES: u64 = 25;

fn their_versions(api: ApiKey) -> Option<(i16, i16)> {
    let kp = KpApiKey::try_from(api as i16).ok()?;
    let r = kp.valid_versions();
    Some((r.min, r.max))
}

fn ours(encode: impl FnOnce(&mut Encoder) -> Result<(), EncodeError>) -> Bytes {
    let mut e = Encoder::new();
    encode(&mut e).unwrap_or_else(|err| panic!("our encode failed: {err}"));
    e.into_bytes()
}

#[test]
fn our_encodings_are_byte_identical_after_an_independent_round_trip() {
    let mut compared = 0;
    let mut skipped = vec![];
    for &api in ApiKey::ALL {
        let Some((tmin, tmax)) = their_versions(api) else {
            skipped.push(api.name());
            continue;
        };
        let (omin, omax) = api.versions();
        let kp = KpApiKey::try_from(api as i16).unwrap_or_else(|_| unreachable!());
        for version in omin.max(tmin)..=omax.min(tmax) {
            for seed in 0..CASES {
                let mut r = Rng::new(seed + 7919 * api as u64 + version as u64);
                let req = Request::random(api, &mut r, version);
                let mine = ours(|e| req.encode(e, version));
                let theirs =
                    RequestKind::decode(kp, &mut mine.clone(), version).unwrap_or_else(|err| {
                        panic!(
                            "{api:?} v{version} request: theirs cannot decode ours: {err}\n{req:?}"
                        )
                    });
                let mut back = BytesMut::new();
                theirs
                    .encode(&mut back, version)
                    .unwrap_or_else(|err| panic!("{api:?} v{version}: {err}"));
                assert_eq!(
                    &back[..],
                    &mine[..],
                    "{api:?} v{version} request bytes differ\n{req:?}"
                );

                let resp = Response::random(api, &mut r, version);
                let mine = ours(|e| resp.encode(e, version));
                let theirs = ResponseKind::decode(kp, &mut mine.clone(), version)
                    .unwrap_or_else(|err| panic!("{api:?} v{version} response: theirs cannot decode ours: {err}\n{resp:?}"));
                let mut back = BytesMut::new();
                theirs
                    .encode(&mut back, version)
                    .unwrap_or_else(|err| panic!("{api:?} v{version}: {err}"));
                assert_eq!(
                    &back[..],
                    &mine[..],
                    "{api:?} v{version} response bytes differ\n{resp:?}"
                );
                compared += 2;
            }
        }
    }
    eprintln!("{compared} comparisons; not in kafka-protocol: {skipped:?}");
    assert!(
        compared > 1000,
        "only {compared} comparisons; skipped {skipped:?}"
    );
}
