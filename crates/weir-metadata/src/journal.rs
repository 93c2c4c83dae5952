//! The seam between the controller and where its changes are made durable.
//!
//! The controller's logic (validate a request against the current image, make
//! records) is the same on one node and in a Raft quorum; what differs is how a
//! change becomes committed and how every node learns of it. [`MetadataJournal`] is
//! that difference: the single-node [`MetadataStore`](crate::MetadataStore) commits
//! with an fsync, the Raft quorum (crate `weir-quorum`) commits once a majority of
//! voters has the entry. Either way every committed change is applied to the local
//! image and published to subscribers (replica manager, Metadata handler).
//!
//! [`ControllerTransport`] is how a controller handle on a node that is not the
//! active controller reaches the one that is (Kafka's forwarding of admin requests
//! and broker-to-controller RPCs): opaque request bytes in, reply bytes out. The
//! controller owns the encoding; the transport only carries frames between nodes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::watch;
use weir_types::{NodeId, Offset};

use crate::error::Result;
use crate::image::MetadataImage;
use crate::record::MetadataRecord;

/// Where controller changes are committed and images come from; see the module docs.
pub trait MetadataJournal: Send + 'static {
    /// The image of every committed change applied on this node.
    fn image(&self) -> Arc<MetadataImage>;

    /// Every image this node applies from now on (a slow receiver sees only the
    /// latest).
    fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>>;

    /// The offset the first record of the next [`append`](Self::append) will get
    /// (Kafka's broker epoch is the offset of the registration record). Only
    /// meaningful on the active controller, which is the only writer.
    fn next_offset(&self) -> Offset;

    /// The active controller as this node knows it, if any: the single-node store
    /// is always active; a Raft node reports the current leader.
    fn active_controller(&self) -> watch::Receiver<Option<NodeId>>;

    /// Commits `records` as one atomic change and returns the image that includes
    /// them. Blocking (it waits for an fsync or a quorum): call it from the
    /// controller thread. On a node that is not the active controller it fails with
    /// [`MetadataError::NotController`](crate::MetadataError::NotController) and
    /// nothing is written.
    fn append(&mut self, records: &[MetadataRecord]) -> Result<Arc<MetadataImage>>;
}

/// A boxed future, so the trait stays object safe.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Carries encoded controller requests to another node's controller; see the module
/// docs.
pub trait ControllerTransport: Send + Sync + 'static {
    /// Sends `request` to the controller of `node` and returns its reply bytes.
    fn call(&self, node: NodeId, request: Vec<u8>) -> BoxFuture<Result<Vec<u8>>>;
}

/// Answers controller requests that arrive from other nodes (the receiving side of
/// [`ControllerTransport`]); the transport's listener hands every incoming request
/// to it.
pub trait ForwardedRequestHandler: Send + Sync + 'static {
    /// Handles one encoded request and returns the encoded reply.
    fn handle(&self, request: Vec<u8>) -> BoxFuture<Vec<u8>>;
}
