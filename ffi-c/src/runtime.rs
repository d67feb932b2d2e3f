//! The one multi-threaded tokio runtime of the process: created when the first server or client
//! is made, shut down (threads joined) when the last one is freed, so a program that frees
//! everything leaves no thread behind. Sized by `POLYSIO_WORKER_THREADS` (default: the number
//! of CPUs).

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::runtime::{Builder, Handle, Runtime};

use crate::error::{Error, Result};

struct Shared {
    runtime: Option<Runtime>,
    refs: usize,
}

static SHARED: Mutex<Shared> = Mutex::new(Shared {
    runtime: None,
    refs: 0,
});

thread_local! {
    static LIBRARY_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// True on a thread of the runtime (where C callbacks run in the default dispatch mode).
pub(crate) fn on_library_thread() -> bool {
    LIBRARY_THREAD.try_with(Cell::get).unwrap_or(false)
}

fn worker_threads() -> Result<usize> {
    match std::env::var("POLYSIO_WORKER_THREADS") {
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=1024).contains(&n) => Ok(n),
            _ => Err(Error::invalid(format!(
                "POLYSIO_WORKER_THREADS={v:?}: expected a number from 1 to 1024"
            ))),
        },
        Err(_) => Ok(std::thread::available_parallelism().map_or(2, |n| n.get())),
    }
}

/// Blocks `SIGPIPE` on the calling thread (a library thread): a write to a connection the peer
/// reset then fails with `EPIPE`, which the library handles, instead of raising a signal whose
/// default action kills the host process (C programs seldom ignore it; Rust, Node and Python
/// do). The signal stays pending on that thread, never delivered; the host's own threads keep
/// their signal mask.
fn block_sigpipe() {
    // SAFETY: the set is initialised by sigemptyset before use; pthread_sigmask only changes
    // this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// A counted reference to the runtime, held by each server and client until it is freed.
pub(crate) struct RuntimeRef {
    handle: Handle,
    released: AtomicBool,
}

impl RuntimeRef {
    /// Takes a reference, creating the runtime if there is none.
    pub fn acquire() -> Result<RuntimeRef> {
        let mut s = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        if s.runtime.is_none() {
            let rt = Builder::new_multi_thread()
                .worker_threads(worker_threads()?)
                .thread_name("polysio")
                .on_thread_start(|| {
                    let _ = LIBRARY_THREAD.try_with(|t| t.set(true));
                    block_sigpipe();
                })
                .enable_all()
                .build()?;
            s.runtime = Some(rt);
        }
        s.refs += 1;
        let handle = s
            .runtime
            .as_ref()
            .map(|r| r.handle().clone())
            .ok_or_else(|| Error::invalid("no runtime"))?;
        Ok(RuntimeRef {
            handle,
            released: AtomicBool::new(false),
        })
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Gives the reference back; the last one shuts the runtime down. From a library thread
    /// (a callback) the runtime cannot wait for its own threads, so it is shut down in the
    /// background there.
    pub fn release(&self) {
        if self.released.swap(true, Ordering::AcqRel) {
            return;
        }
        let last = {
            let mut s = SHARED.lock().unwrap_or_else(|p| p.into_inner());
            s.refs = s.refs.saturating_sub(1);
            if s.refs == 0 {
                s.runtime.take()
            } else {
                None
            }
        };
        if let Some(rt) = last {
            if on_library_thread() || Handle::try_current().is_ok() {
                rt.shutdown_background();
            } else {
                rt.shutdown_timeout(Duration::from_secs(10));
            }
        }
    }

    /// Runs `f` to completion from any thread: a plain thread blocks on it; a library thread
    /// (inside a callback) lets the runtime move its other work elsewhere while it waits.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        if on_library_thread() {
            tokio::task::block_in_place(|| self.handle.block_on(f))
        } else {
            self.handle.block_on(f)
        }
    }
}

impl Drop for RuntimeRef {
    fn drop(&mut self) {
        self.release();
    }
}
