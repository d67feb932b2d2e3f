//! How callbacks reach the C program: run on library threads as events happen
//! (`POLYSIO_DISPATCH_THREADS`), or queued and run by `polysio_..._poll()` on the caller's
//! thread, with a file descriptor that is readable while the queue is not empty
//! (`POLYSIO_DISPATCH_POLL`). Either way every callback passes a [`Gate`], so freeing an object
//! can wait until none of its callbacks is running and stop new ones.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ffi::c_int;
use std::sync::{Arc, Condvar, Mutex};

use tokio::runtime::Handle;

use crate::error::{Error, Result};
use crate::runtime::on_library_thread;

/// Callbacks run on library threads (the default).
pub const POLYSIO_DISPATCH_THREADS: u32 = 0;
/// Callbacks are queued and run by `polysio_server_poll()` / `polysio_client_poll()`.
pub const POLYSIO_DISPATCH_POLL: u32 = 1;

pub(crate) fn check_mode(mode: u32) -> Result<bool> {
    match mode {
        POLYSIO_DISPATCH_THREADS => Ok(false),
        POLYSIO_DISPATCH_POLL => Ok(true),
        m => Err(Error::invalid(format!(
            "dispatch mode {m}: expected POLYSIO_DISPATCH_THREADS or POLYSIO_DISPATCH_POLL"
        ))),
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// Counts the callbacks running for one object; closing it refuses new ones and waits for the
/// running ones (except those on the closing thread's own stack).
struct Gate {
    state: Mutex<GateState>,
    idle: Condvar,
}

struct GateState {
    closed: bool,
    active: usize,
}

thread_local! {
    static ENTERED: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

struct GateGuard<'a>(&'a Gate);

impl Gate {
    fn new() -> Gate {
        Gate {
            state: Mutex::new(GateState {
                closed: false,
                active: 0,
            }),
            idle: Condvar::new(),
        }
    }
    fn key(&self) -> usize {
        std::ptr::from_ref(self).addr()
    }
    fn enter(&self) -> Option<GateGuard<'_>> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.closed {
            return None;
        }
        s.active += 1;
        drop(s);
        let _ = ENTERED.try_with(|e| e.borrow_mut().push(self.key()));
        Some(GateGuard(self))
    }
    fn close_and_wait(&self) {
        let own = ENTERED
            .try_with(|e| e.borrow().iter().filter(|k| **k == self.key()).count())
            .unwrap_or(0);
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.closed = true;
        while s.active > own {
            s = self.idle.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }
    fn is_closed(&self) -> bool {
        self.state.lock().map(|s| s.closed).unwrap_or(true)
    }
}

impl Drop for GateGuard<'_> {
    fn drop(&mut self) {
        let key = self.0.key();
        let _ = ENTERED.try_with(|e| {
            let mut e = e.borrow_mut();
            if let Some(i) = e.iter().rposition(|k| *k == key) {
                e.remove(i);
            }
        });
        let mut s = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        s.active -= 1;
        drop(s);
        self.0.idle.notify_all();
    }
}

/// The callback dispatcher of one server or client.
pub(crate) struct Dispatch {
    gate: Gate,
    queue: Option<Queue>,
    runtime: Handle,
}

struct Queue {
    jobs: Mutex<VecDeque<Job>>,
    notifier: Notifier,
}

impl Dispatch {
    pub fn new(poll: bool, runtime: Handle) -> Result<Arc<Dispatch>> {
        let queue = if poll {
            Some(Queue {
                jobs: Mutex::new(VecDeque::new()),
                notifier: Notifier::new()?,
            })
        } else {
            None
        };
        Ok(Arc::new(Dispatch {
            gate: Gate::new(),
            queue,
            runtime,
        }))
    }

    fn run(&self, job: impl FnOnce()) {
        if let Some(_g) = self.gate.enter() {
            job();
        }
    }

    /// Runs `job` (a callback invocation) the way this object's mode says: now on this library
    /// thread, on a library thread when called from another thread, or queued for `poll`.
    pub fn deliver(self: &Arc<Self>, job: impl FnOnce() + Send + 'static) {
        self.dispatch_job(job, on_library_thread())
    }

    /// Like [`deliver`](Self::deliver), never running the job on the calling thread's stack
    /// (for completions found in destructors, where core locks may be held).
    pub fn deliver_later(self: &Arc<Self>, job: impl FnOnce() + Send + 'static) {
        self.dispatch_job(job, false)
    }

    fn dispatch_job(self: &Arc<Self>, job: impl FnOnce() + Send + 'static, now: bool) {
        match &self.queue {
            Some(q) => {
                if self.gate.is_closed() {
                    return;
                }
                q.jobs
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push_back(Box::new(job));
                q.notifier.notify();
            }
            None if now => self.run(job),
            None => {
                let me = self.clone();
                drop(self.runtime.spawn(async move { me.run(job) }));
            }
        }
    }

    /// Runs the callbacks queued so far on the calling thread; returns how many ran.
    pub fn poll(&self) -> Result<usize> {
        let q = self.queue.as_ref().ok_or_else(|| {
            Error::invalid("not in poll mode (set POLYSIO_DISPATCH_POLL in the options)")
        })?;
        q.notifier.drain();
        let pending = q.jobs.lock().map(|j| j.len()).unwrap_or(0);
        let mut ran = 0;
        for _ in 0..pending {
            let Some(job) = q.jobs.lock().ok().and_then(|mut j| j.pop_front()) else {
                break;
            };
            let Some(_g) = self.gate.enter() else {
                break;
            };
            job();
            ran += 1;
        }
        // Jobs queued meanwhile have notified again; the fd stays readable for them.
        Ok(ran)
    }

    /// The descriptor that is readable while callbacks are queued.
    pub fn fd(&self) -> Result<c_int> {
        self.queue
            .as_ref()
            .and_then(|q| q.notifier.fd())
            .ok_or_else(|| {
                Error::invalid("not in poll mode (set POLYSIO_DISPATCH_POLL in the options)")
            })
    }

    /// Stops callbacks: waits for running ones, drops queued ones, closes the descriptor.
    pub fn shutdown(&self) {
        self.gate.close_and_wait();
        if let Some(q) = &self.queue {
            let jobs = std::mem::take(&mut *q.jobs.lock().unwrap_or_else(|p| p.into_inner()));
            drop(jobs);
            q.notifier.close();
        }
    }
}

/// An eventfd (Linux) or a pipe (elsewhere) that is readable after `notify` until `drain`.
struct Notifier {
    fds: Mutex<Option<(c_int, c_int)>>,
}

impl Notifier {
    #[cfg(target_os = "linux")]
    fn new() -> Result<Notifier> {
        // SAFETY: plain syscall.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        Ok(Notifier {
            fds: Mutex::new(Some((fd, fd))),
        })
    }

    #[cfg(not(target_os = "linux"))]
    fn new() -> Result<Notifier> {
        let mut p = [0 as c_int; 2];
        // SAFETY: plain syscalls on the two descriptors just created.
        unsafe {
            if libc::pipe(p.as_mut_ptr()) != 0 {
                return Err(std::io::Error::last_os_error().into());
            }
            for fd in p {
                libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK);
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
        Ok(Notifier {
            fds: Mutex::new(Some((p[0], p[1]))),
        })
    }

    fn fd(&self) -> Option<c_int> {
        self.fds.lock().ok().and_then(|f| f.map(|(r, _)| r))
    }

    fn notify(&self) {
        // The lock keeps the descriptor open while writing (it may be closed concurrently).
        if let Ok(f) = self.fds.lock() {
            if let Some((_, w)) = *f {
                let one: u64 = 1;
                // SAFETY: writes 8 bytes from a local; EAGAIN (counter full) is fine.
                unsafe { libc::write(w, std::ptr::from_ref(&one).cast(), 8) };
            }
        }
    }

    fn drain(&self) {
        if let Ok(f) = self.fds.lock() {
            if let Some((r, _)) = *f {
                let mut buf = [0u8; 64];
                // SAFETY: reads into a local buffer; non-blocking, stops at EAGAIN.
                while unsafe { libc::read(r, buf.as_mut_ptr().cast(), buf.len()) } > 0 {
                    if cfg!(target_os = "linux") {
                        break;
                    }
                }
            }
        }
    }

    fn close(&self) {
        if let Some((r, w)) = self.fds.lock().ok().and_then(|mut f| f.take()) {
            // SAFETY: the descriptors are ours and closed once (taken out of the Option).
            unsafe {
                libc::close(r);
                if w != r {
                    libc::close(w);
                }
            }
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.close();
    }
}
