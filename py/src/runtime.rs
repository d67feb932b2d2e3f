//! The process's one tokio runtime: created on first use, sized by `POLYSIO_WORKER_THREADS` or
//! [`set_worker_threads`], and created afresh in a child process after `fork()`.
//!
//! A forked child has none of the parent's threads, so the parent's runtime cannot run anything
//! there. It is leaked rather than dropped (dropping would wait for threads that do not exist),
//! and objects built before the fork refuse to work in the child ([`check_pid`]).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use tokio::runtime::{Builder, Handle, Runtime};

use crate::errors::{InvalidArgumentError, ShutdownError, SocketIOError};

struct Current {
    pid: u32,
    runtime: &'static Runtime,
}

static CURRENT: Mutex<Option<Current>> = Mutex::new(None);
/// Set by [`before_exit`]: the interpreter is about to finalize.
static EXITING: AtomicBool = AtomicBool::new(false);
/// Core threads currently inside [`with_python`].
static ATTACHED: AtomicUsize = AtomicUsize::new(0);
static WORKER_THREADS: Mutex<Option<usize>> = Mutex::new(None);

fn worker_threads() -> PyResult<Option<usize>> {
    if let Some(n) = *WORKER_THREADS.lock().unwrap_or_else(|p| p.into_inner()) {
        return Ok(Some(n));
    }
    match std::env::var("POLYSIO_WORKER_THREADS") {
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(InvalidArgumentError::new_err(format!(
                "POLYSIO_WORKER_THREADS must be a positive integer, got {v:?}"
            ))),
        },
        Err(_) => Ok(None),
    }
}

/// The runtime of this process, created if needed.
pub(crate) fn handle() -> PyResult<Handle> {
    let mut current = CURRENT.lock().unwrap_or_else(|p| p.into_inner());
    let pid = std::process::id();
    if let Some(c) = current.as_ref().filter(|c| c.pid == pid) {
        return Ok(c.runtime.handle().clone());
    }
    let mut builder = Builder::new_multi_thread();
    builder.enable_all().thread_name("polysio-worker");
    if let Some(n) = worker_threads()? {
        builder.worker_threads(n);
    }
    let runtime = builder
        .build()
        .map_err(|e| SocketIOError::new_err(format!("cannot start the tokio runtime: {e}")))?;
    let runtime: &'static Runtime = Box::leak(Box::new(runtime));
    *current = Some(Current { pid, runtime });
    Ok(runtime.handle().clone())
}

/// Fails in a forked child for objects created in the parent (`pid` is the creator's).
pub(crate) fn check_pid(pid: u32, what: &str) -> PyResult<()> {
    if pid == std::process::id() {
        Ok(())
    } else {
        Err(SocketIOError::new_err(format!(
            "this {what} was created in process {pid} before fork(); it cannot be used in the \
             child process {}: create a new one there",
            std::process::id()
        )))
    }
}

/// Fails for an object created before `fork()` (see [`check_pid`]) or already shut down.
pub(crate) fn check_open(pid: u32, closed: &AtomicBool, what: &str) -> PyResult<()> {
    check_pid(pid, what)?;
    if closed.load(Ordering::Acquire) {
        return Err(ShutdownError::new_err(format!("the {what} is shut down")));
    }
    Ok(())
}

/// Sets how many worker threads the runtime gets (default: one per CPU, or
/// `POLYSIO_WORKER_THREADS`). Only before the first server or client of the process is created.
#[pyfunction]
pub(crate) fn set_worker_threads(n: usize) -> PyResult<()> {
    if n == 0 {
        return Err(InvalidArgumentError::new_err(
            "worker_threads must be at least 1",
        ));
    }
    let current = CURRENT.lock().unwrap_or_else(|p| p.into_inner());
    if current
        .as_ref()
        .is_some_and(|c| c.pid == std::process::id())
    {
        return Err(InvalidArgumentError::new_err(
            "the runtime is already running: call set_worker_threads() before creating any \
             server or client",
        ));
    }
    *WORKER_THREADS.lock().unwrap_or_else(|p| p.into_inner()) = Some(n);
    Ok(())
}

/// Runs `f` attached to the interpreter from a core thread; `None` once Python is exiting.
///
/// A thread that waits for the GIL while the interpreter finalizes is killed by CPython in the
/// middle of our frames (and aborts the process), so [`before_exit`], run by `atexit`, stops new
/// attachments and waits for those under way.
pub(crate) fn with_python<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> Option<R> {
    ATTACHED.fetch_add(1, Ordering::SeqCst);
    let r = if EXITING.load(Ordering::SeqCst) {
        None
    } else {
        Python::try_attach(f)
    };
    ATTACHED.fetch_sub(1, Ordering::SeqCst);
    r
}

/// Called by `atexit`: core threads stop calling into Python (see [`with_python`]).
#[pyfunction]
pub(crate) fn before_exit(py: Python<'_>) {
    EXITING.store(true, Ordering::SeqCst);
    py.detach(|| {
        let deadline = Instant::now() + Duration::from_secs(2);
        while ATTACHED.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}
