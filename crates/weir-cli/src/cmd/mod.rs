//! One module per subcommand; add `topic.rs`, `produce.rs`, ... beside `server.rs`.

pub(crate) mod server;
