//! (being written)
pub mod api;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod error;
pub mod producer;
mod util;

pub use error::{Error, Result};
