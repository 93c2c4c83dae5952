//! ApiVersions: which APIs and versions this broker serves.
//!
//! The first request of every client, so it must be answerable by every client:
//!
//! - A version newer than ours is answered at v0 with UNSUPPORTED_VERSION and our
//!   ranges (KIP-511), so the client can retry with a version we know. The
//!   dispatcher builds that answer with [`fallback`] before the body is decoded.
//! - The response carries no tagged fields at all: librdkafka before 2.2.0 (Debian's
//!   2.0.2, under Debian's kcat) misparses the feature tags Kafka sends in v3+ and
//!   cannot connect. Weir has no features to finalize, so leaving them out costs
//!   nothing; `finalized_features_epoch` stays at its default and is not written.

use weir_protocol::messages::api_versions::{ApiVersionsRequest, ApiVersionsResponse};
use weir_types::ErrorCode;

use super::versions;

/// Answers a decoded ApiVersions request.
///
/// v3+ requests name the client software; Kafka rejects names and versions outside
/// `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?` with INVALID_REQUEST and an empty
/// list, and so do we: a client that sends garbage there is broken in other ways.
pub(super) fn handle(request: &ApiVersionsRequest, version: i16) -> ApiVersionsResponse {
    if version >= 3
        && !(valid_software_field(&request.client_software_name)
            && valid_software_field(&request.client_software_version))
    {
        return ApiVersionsResponse {
            error_code: ErrorCode::InvalidRequest.code(),
            ..ApiVersionsResponse::default()
        };
    }
    ApiVersionsResponse {
        error_code: ErrorCode::None.code(),
        api_keys: versions::api_versions(),
        ..ApiVersionsResponse::default()
    }
}

/// The v0 answer to an ApiVersions request whose version we do not serve: the error
/// and our ranges, so the client can pick a version and ask again.
pub(super) fn fallback() -> ApiVersionsResponse {
    ApiVersionsResponse {
        error_code: ErrorCode::UnsupportedVersion.code(),
        api_keys: versions::api_versions(),
        ..ApiVersionsResponse::default()
    }
}

/// Kafka's rule for `client_software_name` and `client_software_version`.
fn valid_software_field(text: &str) -> bool {
    let bytes = text.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(name: &str, version: &str) -> ApiVersionsRequest {
        ApiVersionsRequest {
            client_software_name: name.into(),
            client_software_version: version.into(),
        }
    }

    #[test]
    fn software_names_follow_kafkas_pattern() {
        for ok in [
            "librdkafka",
            "2.0.2",
            "a",
            "apache-kafka-java",
            "1.0-SNAPSHOT",
        ] {
            assert!(valid_software_field(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a b", "a_b", ".1"] {
            assert!(!valid_software_field(bad), "{bad}");
        }
    }

    #[test]
    fn v3_with_a_bad_name_is_invalid_request_without_ranges() {
        let r = handle(&request("bad name", "1.0"), 3);
        assert_eq!(r.error_code, ErrorCode::InvalidRequest.code());
        assert!(r.api_keys.is_empty());
        // v0-2 carry no names, so empty ones are fine there.
        let r = handle(&request("", ""), 2);
        assert_eq!(r.error_code, 0);
        assert!(!r.api_keys.is_empty());
    }

    #[test]
    fn answers_leave_every_tagged_field_at_its_default() {
        for r in [handle(&request("weir", "0.1"), 3), fallback()] {
            assert!(r.supported_features.is_empty());
            assert!(r.finalized_features.is_empty());
            assert_eq!(r.finalized_features_epoch, -1);
            assert!(!r.zk_migration_ready);
        }
    }
}
