//! Every Kafka message this codec speaks, generated at build time from
//! `schema/*.wire` by `build/main.rs`.
//!
//! Each schema file becomes a module (`messages::fetch`, `messages::produce`, ...)
//! holding the request, the response and their nested structs; the top-level request
//! and response types are re-exported here. [`ApiKey`] is the table of APIs and the
//! version ranges the codec handles; [`Request`] and [`Response`] are the enums the
//! broker dispatches on.
//!
//! # Adding an API or a version
//!
//! Write or extend the schema file (see `schema/README.md`), rebuild, and the
//! round-trip tests in this module cover it at every version automatically. What the
//! broker *advertises* in ApiVersions is decided by the broker, per handler.

#![allow(clippy::all, clippy::pedantic)]

use crate::wire::{Decoder, Encoder};
use crate::{DecodeError, EncodeError, Message};

include!(concat!(env!("OUT_DIR"), "/messages.rs"));

#[cfg(test)]
mod differential;
#[cfg(test)]
mod tests;
