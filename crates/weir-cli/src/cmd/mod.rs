//! One module per subcommand; add `topic.rs`, `produce.rs`, ... beside `server.rs`.

pub(crate) mod cluster;
pub(crate) mod common;
pub(crate) mod consume;
pub(crate) mod dev_cluster;
pub(crate) mod group;
pub(crate) mod perf;
pub(crate) mod produce;
pub(crate) mod server;
pub(crate) mod topic;
