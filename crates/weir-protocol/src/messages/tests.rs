//! Round trips of every message at every version, from seeded random values.

use super::*;
use crate::testing::Rng;

const CASES_PER_VERSION: u64 = 40;

#[test]
fn every_request_and_response_round_trips_at_every_version() {
    let mut checked = 0;
    for &api in ApiKey::ALL {
        let (min, max) = api.versions();
        for version in min..=max {
            for seed in 0..CASES_PER_VERSION {
                let mut r = Rng::new(seed * 1000 + api as u64 * 31 + version as u64);
                let req = Request::random(api, &mut r, version);
                round_trip_request(api, version, &req);
                let resp = Response::random(api, &mut r, version);
                round_trip_response(api, version, &resp);
                checked += 2;
            }
        }
    }
    assert!(checked > 0);
}

fn round_trip_request(api: ApiKey, version: i16, m: &Request) {
    let mut e = Encoder::new();
    m.encode(&mut e, version)
        .unwrap_or_else(|err| panic!("{api:?} v{version} request encode: {err}"));
    let bytes = e.into_bytes();
    let mut d = Decoder::new(bytes.clone());
    let back = Request::decode(api, version, &mut d)
        .unwrap_or_else(|err| panic!("{api:?} v{version} request decode: {err}\n{m:?}"));
    d.finish()
        .unwrap_or_else(|err| panic!("{api:?} v{version}: {err}"));
    assert_eq!(&back, m, "{api:?} v{version} request");
    truncations_fail(&bytes, |d| Request::decode(api, version, d).map(|_| ()));
}

fn round_trip_response(api: ApiKey, version: i16, m: &Response) {
    let mut e = Encoder::new();
    m.encode(&mut e, version)
        .unwrap_or_else(|err| panic!("{api:?} v{version} response encode: {err}"));
    let bytes = e.into_bytes();
    let mut d = Decoder::new(bytes.clone());
    let back = Response::decode(api, version, &mut d)
        .unwrap_or_else(|err| panic!("{api:?} v{version} response decode: {err}\n{m:?}"));
    d.finish()
        .unwrap_or_else(|err| panic!("{api:?} v{version}: {err}"));
    assert_eq!(&back, m, "{api:?} v{version} response");
    truncations_fail(&bytes, |d| Response::decode(api, version, d).map(|_| ()));
}

/// Every strict prefix of a valid encoding must fail to decode as a whole message
/// (an error value, never a panic).
fn truncations_fail(
    bytes: &bytes::Bytes,
    decode: impl Fn(&mut Decoder) -> Result<(), DecodeError>,
) {
    for cut in [
        0,
        bytes.len() / 3,
        bytes.len() / 2,
        bytes.len().saturating_sub(1),
    ] {
        if cut >= bytes.len() {
            continue;
        }
        let mut d = Decoder::new(bytes.slice(..cut));
        let ok = decode(&mut d).and_then(|()| d.finish());
        assert!(
            ok.is_err(),
            "a {cut}-byte prefix of a {}-byte message decoded",
            bytes.len()
        );
    }
}

#[test]
fn unsupported_versions_are_errors() {
    let mut d = Decoder::new(bytes::Bytes::new());
    let err = Request::decode(ApiKey::ApiVersions, 99, &mut d).unwrap_err();
    assert_eq!(
        err,
        DecodeError::UnsupportedVersion {
            api_key: 18,
            version: 99
        }
    );
}

pub(super) fn round_trip_data<M: Message + PartialEq + std::fmt::Debug>(
    random: impl Fn(&mut Rng, i16) -> M,
) {
    let (min, max) = M::VERSIONS;
    for version in min..=max {
        for seed in 0..CASES_PER_VERSION {
            let m = random(&mut Rng::new(seed), version);
            let bytes = m.to_bytes(version).unwrap();
            assert_eq!(M::from_bytes(bytes, version).unwrap(), m, "v{version}");
        }
    }
}

#[test]
fn every_data_type_round_trips_at_every_version() {
    // consumer protocol, KRaft metadata records, __consumer_offsets records
    assert!(round_trip_every_data_type() >= 20);
}
