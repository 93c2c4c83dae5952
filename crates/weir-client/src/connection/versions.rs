//! ApiVersions negotiation: what the broker speaks, and the version to use per API.
//!
//! The first request on every connection is ApiVersions at the newest version the
//! client knows. A broker that does not know that version answers with error
//! UNSUPPORTED_VERSION in a *version 0* body (whatever version was asked), listing
//! its ranges so the client can retry with a version it does speak (KIP-511). The
//! body is therefore decoded at the version sent first and, failing that, at v0, as
//! the Java client does.

use std::collections::HashMap;

use bytes::Bytes;
use weir_protocol::messages::api_versions::ApiVersionsResponse;
use weir_protocol::wire::Decoder;
use weir_protocol::{ApiKey, Message};

use crate::api::client_versions;
use crate::error::Result;

/// The broker's version range for each API it advertised.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionTable {
    /// api key -> (min, max) as the broker advertised them.
    broker: HashMap<i16, (i16, i16)>,
}

impl VersionTable {
    /// The table of an ApiVersions response.
    pub fn from_response(resp: &ApiVersionsResponse) -> Self {
        VersionTable {
            broker: resp
                .api_keys
                .iter()
                .map(|k| (k.api_key, (k.min_version, k.max_version)))
                .collect(),
        }
    }

    /// The broker's advertised range for `api`, if it advertised one.
    pub fn broker_range(&self, api: ApiKey) -> Option<(i16, i16)> {
        self.broker.get(&(api as i16)).copied()
    }

    /// The highest version of `api` inside both the client's and the broker's range.
    pub fn negotiate(&self, api: ApiKey) -> Option<i16> {
        let (cmin, cmax) = client_versions(api)?;
        pick(self.broker_range(api)?, (cmin, cmax))
    }
}

/// The highest version in both ranges, if they overlap.
pub(crate) fn pick(broker: (i16, i16), client: (i16, i16)) -> Option<i16> {
    let v = broker.1.min(client.1);
    (v >= broker.0.max(client.0)).then_some(v)
}

/// Decodes an ApiVersions response body (after the v0 response header) sent for a
/// request at `version`, falling back to v0 as the protocol prescribes.
pub(crate) fn decode_api_versions(body: Bytes, version: i16) -> Result<ApiVersionsResponse> {
    let attempt = |v: i16| -> Result<ApiVersionsResponse> {
        let mut d = Decoder::new(body.clone());
        let resp = ApiVersionsResponse::decode(&mut d, v)?;
        d.finish()?;
        Ok(resp)
    };
    match attempt(version) {
        Ok(resp) => Ok(resp),
        Err(_) if version != 0 => attempt(0),
        Err(e) => Err(e),
    }
}

/// The ApiVersions version to retry with after UNSUPPORTED_VERSION at `sent`: the
/// broker's highest ApiVersions version (0 if it listed none), if lower than `sent`.
pub(crate) fn fallback_version(resp: &ApiVersionsResponse, sent: i16) -> Option<i16> {
    let broker_max = resp
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::ApiVersions as i16)
        .map_or(0, |k| k.max_version);
    let next = broker_max.min(sent - 1);
    (next >= 0 && next < sent).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_protocol::messages::api_versions::ApiVersion;

    fn table(ranges: &[(ApiKey, i16, i16)]) -> VersionTable {
        VersionTable::from_response(&ApiVersionsResponse {
            api_keys: ranges
                .iter()
                .map(|&(api, min, max)| ApiVersion {
                    api_key: api as i16,
                    min_version: min,
                    max_version: max,
                })
                .collect(),
            ..Default::default()
        })
    }

    #[test]
    fn picks_the_highest_common_version() {
        let t = table(&[
            (ApiKey::Produce, 0, 9),
            (ApiKey::Fetch, 0, 99),
            (ApiKey::Metadata, 0, 0),
        ]);
        assert_eq!(t.negotiate(ApiKey::Produce), Some(9));
        // the broker knows more than the client: the client's max
        assert_eq!(
            t.negotiate(ApiKey::Fetch),
            client_versions(ApiKey::Fetch).map(|r| r.1)
        );
        // no overlap (client Metadata starts at v1)
        assert_eq!(t.negotiate(ApiKey::Metadata), None);
        // not advertised
        assert_eq!(t.negotiate(ApiKey::ListOffsets), None);
        assert_eq!(pick((3, 5), (0, 2)), None);
        assert_eq!(pick((0, 5), (3, 12)), Some(5));
    }

    #[test]
    fn unsupported_version_falls_back_to_the_brokers_max() {
        let resp = ApiVersionsResponse {
            error_code: 35,
            api_keys: vec![ApiVersion {
                api_key: 18,
                min_version: 0,
                max_version: 2,
            }],
            ..Default::default()
        };
        assert_eq!(fallback_version(&resp, 4), Some(2));
        assert_eq!(
            fallback_version(&ApiVersionsResponse::default(), 4),
            Some(0)
        );
        assert_eq!(fallback_version(&ApiVersionsResponse::default(), 0), None);
        // v0 body decodes even when v3 was asked for
        let v0 = resp.to_bytes(0).unwrap();
        assert_eq!(decode_api_versions(v0, 3).unwrap(), resp);
    }
}
