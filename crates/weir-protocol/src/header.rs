//! Request and response headers, and the frame-level entry points the broker and the
//! client use.
//!
//! The header version is not on the wire: it follows from the API and its version.
//! Flexible versions use request header v2 and response header v1 (with tagged
//! fields); older versions use request header v1 and response header v0. ApiVersions
//! is the exception on the response side: its response header is always v0, so a
//! client that does not yet know which versions the broker speaks can still parse the
//! answer (KIP-511).

use bytes::Bytes;

use crate::messages::{ApiKey, Request, Response};
use crate::wire::{Decoder, Encoder};
use crate::{DecodeError, EncodeError};

/// The fields every request starts with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestHeader {
    /// The API key (kept raw: an unknown key still has a correlation id to answer).
    pub api_key: i16,
    /// The API version the client chose.
    pub api_version: i16,
    /// Echoed in the response so the client can match it.
    pub correlation_id: i32,
    /// The client's self-declared id (header v1+), for logs and quotas.
    pub client_id: Option<String>,
}

impl RequestHeader {
    /// The request header version for `api` at `version`.
    pub fn version_for(api: ApiKey, version: i16) -> i16 {
        if is_flexible(api, version) {
            2
        } else {
            1
        }
    }

    /// Reads the fixed start (key, version, correlation id) and, for a known API and
    /// version, the rest of the header.
    pub fn decode(d: &mut Decoder) -> Result<RequestHeader, DecodeError> {
        let mut h = RequestHeader {
            api_key: d.i16()?,
            api_version: d.i16()?,
            correlation_id: d.i32()?,
            client_id: None,
        };
        // Unknown APIs still carry a client id (header v1 at least); reading it keeps
        // the log line useful, and the body is never looked at.
        h.client_id = d.nullable_string(false)?;
        let flexible =
            ApiKey::from_i16(h.api_key).is_some_and(|api| is_flexible(api, h.api_version));
        if flexible {
            d.tagged_fields(|_, _| Ok(false))?;
        }
        Ok(h)
    }

    /// Writes the header for its API and version.
    pub fn encode(&self, e: &mut Encoder) -> Result<(), EncodeError> {
        e.i16(self.api_key);
        e.i16(self.api_version);
        e.i32(self.correlation_id);
        e.nullable_string(self.client_id.as_deref(), false)?;
        if ApiKey::from_i16(self.api_key).is_some_and(|api| is_flexible(api, self.api_version)) {
            e.uvarint(0);
        }
        Ok(())
    }
}

fn is_flexible(api: ApiKey, version: i16) -> bool {
    api.flexible_since().is_some_and(|f| version >= f)
}

/// The response header version for `api` at `version`.
pub fn response_header_version(api: ApiKey, version: i16) -> i16 {
    if api != ApiKey::ApiVersions && is_flexible(api, version) {
        1
    } else {
        0
    }
}

/// A request frame, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedRequest {
    /// The header.
    pub header: RequestHeader,
    /// The API (known, since the body decoded).
    pub api: ApiKey,
    /// The body.
    pub body: Request,
    /// Bytes after the body that no field of this version accounts for. Kafka's
    /// brokers ignore them, and librdkafka 2.x sends three such bytes after some
    /// Metadata v12 requests, so they are reported here instead of failing the frame.
    pub trailing_bytes: usize,
}

/// Why a request frame could not be decoded. The header is kept when it was read, so
/// the broker can still answer with the right correlation id (an UNSUPPORTED_VERSION
/// ApiVersions response, say) or name the client in its log line.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestError {
    /// The header, if it could be read.
    pub header: Option<RequestHeader>,
    /// What went wrong.
    pub error: DecodeError,
}

/// Decodes a whole request frame (the bytes after the size prefix). Bytes left after
/// the body are counted in [`DecodedRequest::trailing_bytes`], as Kafka tolerates them.
pub fn decode_request(frame: Bytes) -> Result<DecodedRequest, RequestError> {
    let mut d = Decoder::new(frame);
    let header = RequestHeader::decode(&mut d).map_err(|error| RequestError {
        header: None,
        error,
    })?;
    let fail = |error| RequestError {
        header: Some(header.clone()),
        error,
    };
    let api = ApiKey::from_i16(header.api_key)
        .ok_or_else(|| fail(DecodeError::UnknownApiKey(header.api_key)))?;
    let body = Request::decode(api, header.api_version, &mut d).map_err(fail)?;
    Ok(DecodedRequest {
        header,
        api,
        body,
        trailing_bytes: d.remaining(),
    })
}

/// Encodes a request frame including its 4-byte size prefix (client side).
pub fn encode_request(header: &RequestHeader, body: &Request) -> Result<Vec<Bytes>, EncodeError> {
    let mut e = Encoder::new();
    header.encode(&mut e)?;
    body.encode(&mut e, header.api_version)?;
    Ok(with_size_prefix(e))
}

/// Encodes a response frame including its 4-byte size prefix (broker side), as
/// chunks for a vectored write.
pub fn encode_response(
    correlation_id: i32,
    version: i16,
    body: &Response,
) -> Result<Vec<Bytes>, EncodeError> {
    let api = body.api_key();
    let mut e = Encoder::new();
    e.i32(correlation_id);
    if response_header_version(api, version) >= 1 {
        e.uvarint(0);
    }
    body.encode(&mut e, version)?;
    Ok(with_size_prefix(e))
}

/// Decodes a response frame (after the size prefix) for a request the client sent
/// with `api` at `version`: (correlation id, body).
pub fn decode_response(
    frame: Bytes,
    api: ApiKey,
    version: i16,
) -> Result<(i32, Response), DecodeError> {
    let mut d = Decoder::new(frame);
    let correlation_id = d.i32()?;
    if response_header_version(api, version) >= 1 {
        d.tagged_fields(|_, _| Ok(false))?;
    }
    let body = Response::decode(api, version, &mut d)?;
    d.finish()?;
    Ok((correlation_id, body))
}

fn with_size_prefix(e: Encoder) -> Vec<Bytes> {
    let len = u32::try_from(e.len()).unwrap_or(u32::MAX);
    let mut chunks = Vec::with_capacity(4);
    chunks.push(Bytes::copy_from_slice(&len.to_be_bytes()));
    chunks.extend(e.into_chunks());
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::api_versions::ApiVersionsRequest;
    use crate::messages::metadata::MetadataResponse;

    fn concat(chunks: Vec<Bytes>) -> Bytes {
        chunks.concat().into()
    }

    #[test]
    fn flexible_request_round_trips_with_header_v2() {
        let header = RequestHeader {
            api_key: 18,
            api_version: 3,
            correlation_id: 7,
            client_id: Some("c".into()),
        };
        let body = Request::ApiVersions(ApiVersionsRequest {
            client_software_name: "weir".into(),
            client_software_version: "0.1".into(),
        });
        let frame = concat(encode_request(&header, &body).unwrap());
        // size prefix, then key 18, version 3, correlation 7, client id "c" (i16 len), no tags
        assert_eq!(
            &frame[..15],
            &[0, 0, 0, 22, 0, 18, 0, 3, 0, 0, 0, 7, 0, 1, b'c']
        );
        assert_eq!(frame[15], 0);
        let got = decode_request(frame.slice(4..)).unwrap();
        assert_eq!(got.header, header);
        assert_eq!(got.body, body);
    }

    #[test]
    fn api_versions_response_header_is_always_v0() {
        assert_eq!(response_header_version(ApiKey::ApiVersions, 3), 0);
        assert_eq!(response_header_version(ApiKey::Metadata, 9), 1);
        assert_eq!(response_header_version(ApiKey::Metadata, 8), 0);
        let body = Response::Metadata(MetadataResponse::default());
        let frame = concat(encode_response(9, 9, &body).unwrap());
        let (cid, back) = decode_response(frame.slice(4..), ApiKey::Metadata, 9).unwrap();
        assert_eq!((cid, back), (9, body));
    }

    #[test]
    fn unknown_api_key_keeps_the_header() {
        let mut e = Encoder::new();
        RequestHeader {
            api_key: 999,
            api_version: 0,
            correlation_id: 42,
            client_id: None,
        }
        .encode(&mut e)
        .unwrap();
        let err = decode_request(e.into_bytes()).unwrap_err();
        assert_eq!(err.error, DecodeError::UnknownApiKey(999));
        assert_eq!(err.header.map(|h| h.correlation_id), Some(42));
    }

    #[test]
    fn trailing_bytes_are_counted_not_fatal() {
        let header = RequestHeader {
            api_key: 18,
            api_version: 0,
            correlation_id: 1,
            client_id: None,
        };
        let mut frame = concat(
            encode_request(
                &header,
                &Request::ApiVersions(ApiVersionsRequest::default()),
            )
            .unwrap(),
        )
        .to_vec();
        frame.extend_from_slice(&[1, 0, 0]);
        let got = decode_request(Bytes::from(frame).slice(4..)).unwrap();
        assert_eq!(got.trailing_bytes, 3);
        assert_eq!(
            got.body,
            Request::ApiVersions(ApiVersionsRequest::default())
        );
    }
}
