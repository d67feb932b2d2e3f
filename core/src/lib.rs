//! # polysio
//!
//! A Socket.IO implementation (Engine.IO v4 + Socket.IO v5), server and client, on tokio.
//! The core never builds a runtime of its own: it runs on whichever tokio runtime it is
//! started from.

#![warn(missing_docs)]

pub mod adapter;
pub mod client;
pub mod engine;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "tower")]
pub mod layer;
pub mod parser;
pub mod server;
#[cfg(feature = "tls")]
pub mod tls;
pub mod value;

pub use error::{Error, Result};
pub use value::{Map, Value};
