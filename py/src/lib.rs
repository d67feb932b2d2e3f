//! `polysio._polysio`, the native half of the `polysio` Python package (PyO3).
//!
//! The pure-Python package (`py/python/polysio/`) gives the python-socketio-shaped API; this
//! module holds the core server and client, converts values directly between Python objects and
//! [`polysio::Value`], and hands core events to Python through one queue per object
//! ([`hub`]). Every call releases the GIL while the core works.

mod client;
mod convert;
mod errors;
mod host;
mod hub;
mod redis;
mod runtime;
mod server;

use pyo3::prelude::*;

/// The extension's Rust allocations go through jemalloc: values are allocated on the core's
/// threads and freed on the event loop's, and back, which glibc's malloc pays for with arena
/// locks and chunk consolidation on every hop (measured with `perf` under bench/run's echo).
/// jemalloc (unlike mimalloc, tried first) also survives `fork()` with threads running.
#[cfg(all(unix, not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Native core of the polysio package (use the `polysio` package, not this module).
#[pymodule(name = "_polysio")]
mod polysio_native {
    #[pymodule_export]
    use super::client::NativeClient;
    #[pymodule_export]
    use super::host::{BodyTicket, PollTicket, WsConnection, WsTicket};
    #[pymodule_export]
    use super::hub::{Ack, ConnectReply, Hold};
    #[pymodule_export]
    use super::redis::{RedisEmitter, RedisOptions};
    #[pymodule_export]
    use super::runtime::{before_exit, set_worker_threads};
    #[pymodule_export]
    use super::server::{NativeServer, StaticFiles};

    use pyo3::prelude::*;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))
    }

    /// Round-trips a value through the core's data model (for tests of the conversion).
    #[pyfunction]
    fn roundtrip<'py>(py: Python<'py>, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let v = super::convert::to_value(obj)?;
        super::convert::to_py(py, &v)
    }
}
