//! The controller listener and its clients: how voters reach each other.
//!
//! One TCP listener per node carries both Raft's RPCs and forwarded controller
//! calls, in a private framing ([`frame`]) with postcard payloads ([`wire`]). The
//! [`server`] side serves a connection one request at a time; the [`client`] side
//! keeps a small pool of connections per peer.

pub(crate) mod client;
pub(crate) mod frame;
pub(crate) mod server;
pub(crate) mod wire;
