//! The Weir broker: the network layer, the broker's configuration, and the point
//! where the api layer plugs in.
//!
//! On the request path this crate comes right after the socket and right before
//! the codec: [`net`] accepts connections, cuts the byte stream into Kafka frames
//! under per-connection limits, and passes each frame to a [`net::Service`], keeping
//! responses in request order however many requests a client pipelines. The
//! service is the api layer ([`api`]), which decodes the request with
//! `weir-protocol`, runs the handler for its API against the replica manager and
//! the log, and hands back encoded response chunks. [`config`] holds the broker
//! settings under Kafka's names, and [`Broker`] composes the three: it validates a
//! [`BrokerConfig`], binds the listeners, builds the api layer, and serves until
//! shut down. The `weir` binary (`weir-cli`) is the composition root above it:
//! configuration sources, signals, the data-directory lock.

pub mod api;
mod broker;
mod cluster;
pub mod config;
mod controller_node;
pub mod coordinator;
mod error;
pub mod net;
pub mod replica;

pub use broker::{Broker, Endpoint};
pub use config::BrokerConfig;
pub use controller_node::ControllerNode;
pub use error::BrokerError;
