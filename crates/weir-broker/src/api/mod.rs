//! The api layer: turns a request frame into a response.
//!
//! This is where the request path goes after the net layer. [`Api`] is the
//! [`Service`] the broker plugs into its listeners: it decodes the request header and
//! body with `weir-protocol`, checks the version against what the handlers implement
//! ([`versions`]), runs the handler for the API (one file per Kafka API beside this
//! one), and encodes the response with the header version the API and version call
//! for. Internal errors become Kafka error codes in [`errors`] only.
//!
//! # What is answered and what is closed
//!
//! Kafka's rules, which clients are written against:
//!
//! - ApiVersions at a version we do not serve: answered at v0 with
//!   UNSUPPORTED_VERSION and our ranges (KIP-511), so the client can retry.
//! - Any other API at a version we do not serve, a body that does not decode, or an
//!   unknown API key: the connection is closed, with a log line naming the client.
//!   There is no response a client could match: the body's version is what tells it
//!   how to read the response.
//! - Nothing a peer sends panics the broker: every decode error is a value, and an
//!   encode failure (a bug: a value the wire cannot carry) closes that connection.
//!
//! # Waiting
//!
//! Produce with acks=all and Fetch long polls return [`Reply::Deferred`]: the part
//! that must happen in request order (appending) runs in `call`, the waiting part as
//! its own task, so the connection keeps reading pipelined requests meanwhile.

mod alter_configs;
mod alter_partition_reassignments;
mod api_versions;
mod configs;
mod consumer_group_describe;
mod consumer_group_heartbeat;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
mod describe_log_dirs;
mod describe_topic_partitions;
mod elect_leaders;
mod errors;
mod fetch;
mod find_coordinator;
mod heartbeat;
mod incremental_alter_configs;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod list_partition_reassignments;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod offset_for_leader_epoch;
mod produce;
mod producer_ids;
mod state;
mod sync_group;
mod topic_groups;
pub mod versions;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use tracing::{debug, error};
use weir_protocol::header::{response_header_version, RequestError};
use weir_protocol::wire::Encoder;
use weir_protocol::{decode_request, ApiKey, DecodeError, Request, RequestHeader, Response};

use crate::net::{CloseConnection, ConnectionContext, Reply, Service};

pub use configs::TopicConfigs;
pub use producer_ids::{ProducerIdBlock, ProducerIds, PRODUCER_ID_BLOCK_FILE};
pub use state::ApiState;

/// The broker's [`Service`]: every request of every connection comes through here.
#[derive(Debug, Clone)]
pub struct Api {
    /// Everything the handlers read and call, shared with deferred replies.
    state: Arc<ApiState>,
}

impl Api {
    /// The api layer over `state`.
    pub fn new(state: ApiState) -> Self {
        Self {
            state: Arc::new(state),
        }
    }

    /// What the handlers work with.
    pub fn state(&self) -> &Arc<ApiState> {
        &self.state
    }
}

/// What a handler produced for one request.
pub(crate) enum Handled {
    /// The response, ready now.
    Now(Response),
    /// No response at all (Produce with acks=0).
    NoResponse,
    /// The response once the future completes (acks=all, Fetch long polls).
    Later(Pin<Box<dyn Future<Output = Response> + Send + 'static>>),
    /// No response, and the connection is closed: how Kafka tells an acks=0
    /// producer that a partition failed (it then refreshes its metadata).
    Close(String),
}

impl Handled {
    /// A response that is ready now.
    fn now(response: impl Into<Response>) -> Self {
        Handled::Now(response.into())
    }
}

/// The request being handled, for handlers that need more than the body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestContext<'a> {
    /// The connection it came on (listener name, addresses).
    pub(crate) connection: &'a ConnectionContext,
    /// The request header (version, client id).
    pub(crate) header: &'a RequestHeader,
}

impl RequestContext<'_> {
    /// The request's API version.
    pub(crate) fn version(&self) -> i16 {
        self.header.api_version
    }
}

impl Service for Api {
    async fn call(&self, ctx: &ConnectionContext, frame: Bytes) -> Result<Reply, CloseConnection> {
        let request = match decode_request(frame) {
            Ok(request) => request,
            Err(error) => return undecodable(error),
        };
        let header = &request.header;
        let (api, version) = (request.api, header.api_version);
        if request.trailing_bytes > 0 {
            // Kafka ignores them too; librdkafka 2.x sends some after Metadata v12.
            debug!(
                peer = %ctx.peer,
                client_id = header.client_id.as_deref().unwrap_or(""),
                "{} v{version} request has {} trailing bytes; ignored",
                api.name(),
                request.trailing_bytes
            );
        }
        if !versions::is_supported(api, version) {
            if api == ApiKey::ApiVersions {
                return api_versions_fallback(header.correlation_id);
            }
            return Err(close(header, "unsupported version"));
        }
        let rc = RequestContext {
            connection: ctx,
            header,
        };
        let handled = dispatch(&self.state, rc, request.body).await?;
        let correlation_id = header.correlation_id;
        match handled {
            Handled::Now(response) => {
                encode(correlation_id, version, &response).map(Reply::Response)
            }
            Handled::NoResponse => Ok(Reply::NoResponse),
            Handled::Close(reason) => Err(close(header, &reason)),
            Handled::Later(future) => Ok(Reply::deferred(async move {
                let response = future.await;
                encode(correlation_id, version, &response).map(Some)
            })),
        }
    }
}

/// Runs the handler for `body`. The version was checked against [`versions`].
async fn dispatch(
    state: &Arc<ApiState>,
    rc: RequestContext<'_>,
    body: Request,
) -> Result<Handled, CloseConnection> {
    let v = rc.version();
    Ok(match body {
        Request::ApiVersions(r) => Handled::now(api_versions::handle(&r, v)),
        Request::Metadata(r) => Handled::now(metadata::handle(state, rc, r).await),
        Request::CreateTopics(r) => Handled::now(create_topics::handle(state, r, v).await),
        Request::DeleteTopics(r) => Handled::now(delete_topics::handle(state, r, v).await),
        Request::CreatePartitions(r) => Handled::now(create_partitions::handle(state, r).await),
        Request::DescribeConfigs(r) => Handled::now(describe_configs::handle(state, r, v)),
        Request::AlterConfigs(r) => Handled::now(alter_configs::handle(state, r).await),
        Request::IncrementalAlterConfigs(r) => {
            Handled::now(incremental_alter_configs::handle(state, r).await)
        }
        Request::ElectLeaders(r) => Handled::now(elect_leaders::handle(state, r).await),
        Request::AlterPartitionReassignments(r) => {
            Handled::now(alter_partition_reassignments::handle(state, r).await)
        }
        Request::ListPartitionReassignments(r) => {
            Handled::now(list_partition_reassignments::handle(state, r).await)
        }
        Request::DescribeCluster(r) => Handled::now(describe_cluster::handle(state, rc, &r).await),
        Request::InitProducerId(r) => Handled::now(init_producer_id::handle(state, &r).await),
        Request::Produce(r) => produce::handle(state, r, v),
        Request::Fetch(r) => fetch::handle(state, r, v).await,
        Request::ListOffsets(r) => Handled::now(list_offsets::handle(state, r, v)),
        Request::DeleteRecords(r) => Handled::now(delete_records::handle(state, r).await),
        Request::OffsetForLeaderEpoch(r) => Handled::now(offset_for_leader_epoch::handle(state, r)),
        Request::DescribeLogDirs(r) => Handled::now(describe_log_dirs::handle(state, &r)),
        Request::FindCoordinator(r) => Handled::now(find_coordinator::handle(state, rc, r).await),
        Request::JoinGroup(r) => join_group::handle(state, rc, r).await,
        Request::SyncGroup(r) => sync_group::handle(state, r, v).await,
        Request::Heartbeat(r) => Handled::now(heartbeat::handle(state, r).await),
        Request::LeaveGroup(r) => leave_group::handle(state, r, v).await,
        Request::OffsetCommit(r) => offset_commit::handle(state, r, v).await,
        Request::OffsetFetch(r) => Handled::now(offset_fetch::handle(state, r, v).await),
        Request::OffsetDelete(r) => offset_delete::handle(state, r).await,
        Request::ListGroups(r) => Handled::now(list_groups::handle(state, &r)),
        Request::DescribeGroups(r) => Handled::now(describe_groups::handle(state, r, v).await),
        Request::DeleteGroups(r) => delete_groups::handle(state, r).await,
        Request::ConsumerGroupHeartbeat(r) => consumer_group_heartbeat::handle(state, rc, r).await,
        Request::ConsumerGroupDescribe(r) => {
            Handled::now(consumer_group_describe::handle(state, r).await)
        }
        Request::DescribeTopicPartitions(r) => {
            Handled::now(describe_topic_partitions::handle(state, rc, r).await)
        }
        // `versions` lists no other API, so the version check refused it already;
        // closing is the answer for an API we do not serve, as for an unknown key.
        _ => return Err(close(rc.header, "no handler")),
    })
}

/// A request whose frame did not decode: the KIP-511 fallback for ApiVersions at a
/// version we do not know, a closed connection for everything else.
fn undecodable(error: RequestError) -> Result<Reply, CloseConnection> {
    let Some(header) = error.header else {
        return Err(CloseConnection::new(format!(
            "request header does not decode: {}",
            error.error
        )));
    };
    let unsupported = matches!(error.error, DecodeError::UnsupportedVersion { .. });
    if header.api_key == ApiKey::ApiVersions as i16 && unsupported {
        return api_versions_fallback(header.correlation_id);
    }
    let reason = match error.error {
        DecodeError::UnknownApiKey(_) => "unknown API key".to_owned(),
        DecodeError::UnsupportedVersion { .. } => "unsupported version".to_owned(),
        other => format!("request does not decode: {other}"),
    };
    Err(close(&header, &reason))
}

/// The v0 ApiVersions answer to a version we do not serve (KIP-511).
fn api_versions_fallback(correlation_id: i32) -> Result<Reply, CloseConnection> {
    let response = Response::ApiVersions(api_versions::fallback());
    encode(correlation_id, 0, &response).map(Reply::Response)
}

/// A close request whose reason names the request and the client (the net layer
/// adds the peer address to the log line).
fn close(header: &RequestHeader, what: &str) -> CloseConnection {
    let api = ApiKey::from_i16(header.api_key).map_or("unknown API", ApiKey::name);
    CloseConnection::new(format!(
        "{what}: api key {} ({api}) version {}, correlation id {}, client id {:?}",
        header.api_key, header.api_version, header.correlation_id, header.client_id
    ))
}

/// Encodes a response frame without its size prefix (the net layer writes that):
/// the response header (v1 with empty tagged fields for flexible versions, v0
/// otherwise and always for ApiVersions), then the body. Stored record batches stay
/// their own chunks, so Fetch writes them without copying.
fn encode(
    correlation_id: i32,
    version: i16,
    body: &Response,
) -> Result<Vec<Bytes>, CloseConnection> {
    let api = body.api_key();
    let mut e = Encoder::new();
    e.i32(correlation_id);
    if response_header_version(api, version) >= 1 {
        e.uvarint(0);
    }
    match body.encode(&mut e, version) {
        Ok(()) => Ok(e.into_chunks()),
        Err(err) => {
            // A handler built a response the wire cannot carry at this version: a
            // bug, but one that costs only this connection.
            error!(api = api.name(), version, error = %err, "cannot encode a response");
            Err(CloseConnection::new(format!(
                "{} v{version} response does not encode: {err}",
                api.name()
            )))
        }
    }
}

#[cfg(test)]
mod tests;
