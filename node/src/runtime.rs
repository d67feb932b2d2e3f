//! The one tokio runtime of the addon: multi-threaded, created on first use, sized by
//! `POLYSIO_WORKER_THREADS` or [`set_worker_threads`]. Its threads never keep Node's event loop
//! alive; only listening servers and active clients do (see `dispatch.rs`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use tokio::runtime::{Handle, Runtime};

use crate::error::{err, Code, Result};

static RUNTIME: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Chooses the number of worker threads; only before the runtime has started.
pub fn set_worker_threads(n: usize) -> Result<()> {
    if n == 0 {
        return Err(err(
            Code::InvalidArgValue,
            "workerThreads must be at least 1",
        ));
    }
    if RUNTIME.get().is_some() {
        return Err(err(
            Code::Runtime,
            "the runtime has already started; configure workerThreads before creating a server or client",
        ));
    }
    THREADS.store(n, Ordering::SeqCst);
    Ok(())
}

fn threads() -> usize {
    match THREADS.load(Ordering::SeqCst) {
        0 => std::env::var("POLYSIO_WORKER_THREADS")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get().min(4))
                    .unwrap_or(2)
            }),
        n => n,
    }
}

/// The runtime's handle, starting it if needed.
pub fn handle() -> Result<Handle> {
    let rt = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads())
            .thread_name("polysio-worker")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    });
    match rt {
        Ok(rt) => Ok(rt.handle().clone()),
        Err(e) => Err(err(Code::Runtime, format!("cannot start the runtime: {e}"))),
    }
}

/// Waits for `rx` from a runtime thread without stalling the runtime (the JavaScript thread
/// answers; it never waits for the runtime, so this cannot deadlock), at most `timeout`.
pub fn wait_for<T>(rx: std::sync::mpsc::Receiver<T>, timeout: std::time::Duration) -> Option<T> {
    let multi = Handle::try_current()
        .map(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
        .unwrap_or(false);
    if multi {
        tokio::task::block_in_place(|| rx.recv_timeout(timeout).ok())
    } else {
        rx.recv_timeout(timeout).ok()
    }
}
