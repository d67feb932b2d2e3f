//! # polysio-ffi
//!
//! The C ABI of polysio (`include/polysio.h`, generated from this crate by cbindgen): a
//! Socket.IO server and client for C and C++ programs. See `ffi-c/README.md` for building and
//! linking, and the header's introduction for the rules every function follows (handles,
//! errors, memory, threads).
//!
//! Every `extern "C"` function is an entry point behind [`error::ffi`], the panic boundary
//! that turns errors and panics into a `polysio_result` and a thread-local message. Pointers
//! that C passes in are checked (NULL, UTF-8, lengths); handles are ids into
//! [`handle`]'s registry, so stale or foreign handles are errors, not crashes.

// Every entry point takes raw pointers from C; their validity is the C caller's contract,
// documented per function in the header.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

mod ack;
mod client;
mod dispatch;
mod emitter;
mod error;
mod handle;
mod host;
mod payload;
mod runtime;
mod server;

use std::ffi::{c_char, CString};
use std::time::Duration;

pub use ack::*;
pub use client::*;
pub use dispatch::{POLYSIO_DISPATCH_POLL, POLYSIO_DISPATCH_THREADS};
pub use emitter::*;
pub use error::{polysio_last_error, polysio_result, polysio_result_name};
pub use handle::polysio_handle_count;
pub use host::*;
pub use payload::*;
pub use server::*;

use error::{Error, Result};

/// HTTP long-polling (a bit of a transport mask).
pub const POLYSIO_TRANSPORT_POLLING: u32 = 1;
/// WebSocket (a bit of a transport mask).
pub const POLYSIO_TRANSPORT_WEBSOCKET: u32 = 2;

/// The transports of a mask, polling first.
pub(crate) fn transports(mask: u32) -> Result<Vec<u32>> {
    let all = POLYSIO_TRANSPORT_POLLING | POLYSIO_TRANSPORT_WEBSOCKET;
    if mask == 0 || mask & !all != 0 {
        return Err(Error::invalid(format!(
            "transport mask {mask}: expected POLYSIO_TRANSPORT_POLLING and/or POLYSIO_TRANSPORT_WEBSOCKET"
        )));
    }
    Ok([POLYSIO_TRANSPORT_POLLING, POLYSIO_TRANSPORT_WEBSOCKET]
        .into_iter()
        .filter(|b| mask & b != 0)
        .collect())
}

/// A duration in milliseconds that must not be 0.
pub(crate) fn millis(ms: u32, what: &str) -> Result<Duration> {
    if ms == 0 {
        return Err(Error::invalid(format!("{what} must be > 0")));
    }
    Ok(Duration::from_millis(ms.into()))
}

/// `s` as a C string, cut at its first NUL (C could not see past it anyway).
pub(crate) fn cstring_lossy(s: &str) -> CString {
    let s = s.split('\0').next().unwrap_or_default();
    CString::new(s).unwrap_or_default()
}

/// The library version, e.g. `"0.1.0"` (a static string).
#[no_mangle]
pub extern "C" fn polysio_version() -> *const c_char {
    static VERSION: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
    ) {
        Ok(v) => v,
        Err(_) => c"unknown",
    };
    VERSION.as_ptr()
}
