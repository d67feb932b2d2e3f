//! # polysio-node
//!
//! The native half of the `polysio` npm package: napi-rs classes over the polysio core
//! (server and client), used by the socket.io-shaped JavaScript layer in `lib/`. Users never
//! touch these classes directly; see `node/README.md` and `index.d.ts` for the public API.
//!
//! Threads: the core runs on one multi-threaded tokio runtime owned by the addon
//! ([`runtime`]). Everything it reports reaches JavaScript through one threadsafe function per
//! JavaScript realm, as batches of JSON text parsed by JavaScript (events' arguments spliced in
//! as received), events holding binary data or native objects built with Node-API
//! ([`dispatch`]); values from JavaScript are converted directly to [`polysio::Value`] on the
//! JavaScript thread ([`convert`]), or, for ack replies holding objects, sent as the JSON text
//! `JSON.stringify` made ([`ack`]). Errors carry a
//! stable `code` ([`error::Code`]).

#![deny(clippy::all)]
#![warn(missing_docs)]

pub mod ack;
pub mod client;
pub mod convert;
pub mod crossing;
pub mod dispatch;
pub mod error;
pub mod host;
pub mod redis;
pub mod runtime;
pub mod server;

use napi_derive::napi;

/// The addon's allocator. Memory allocated on a runtime thread is often freed on the JavaScript
/// thread (events, their strings and values); glibc's malloc serialises that on its arena locks
/// (a futex wait and wake per contended free), mimalloc frees across threads without a lock.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `arena_eager_commit` option (its place in `mi_option_t`, mimalloc v3).
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// Commits arena memory on demand (mimalloc commits whole arenas up front on Linux by default,
/// which made every idle connection cost about 4 KiB more resident memory and more page faults
/// than with glibc; `MIMALLOC_ARENA_EAGER_COMMIT` in the environment still overrides this).
#[napi_derive::module_init]
fn init() {
    if std::env::var_os("MIMALLOC_ARENA_EAGER_COMMIT").is_none() {
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0) };
    }
}

/// Sets the number of runtime worker threads (default: `POLYSIO_WORKER_THREADS`, else the
/// number of CPUs up to 4). Only before the first server or client is created.
#[napi]
pub fn set_worker_threads(n: u32) -> error::Result<()> {
    runtime::set_worker_threads(n as usize)
}

/// The version of the native addon.
#[napi]
pub fn native_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// Holds back the writes of the broadcasts JavaScript makes from now until [`uncork`]
/// (`polysio::server::Cork`): the dispatcher corks around each batch of events it delivers, so
/// the broadcasts of a batch's handlers reach each socket in one write. Nests.
#[napi]
pub fn cork() {
    polysio::server::Cork::begin();
}

/// Ends the last [`cork`]: the broadcasts it held back are written. Does nothing without one.
#[napi]
pub fn uncork() {
    polysio::server::Cork::end();
}
