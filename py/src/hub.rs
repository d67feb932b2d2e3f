//! The one road from the core's threads to Python: a queue of events and a waker.
//!
//! Core handlers run on tokio worker threads; they only push an [`Event`] here. When the queue
//! goes from empty to non-empty, the Python side is woken once; it then drains the whole batch
//! on its event loop and converts values there. Nothing in the core ever waits for Python.
//!
//! Every message from a peer carries a [`Held`] of its connection's backpressure gate (see
//! [`Hold`]) until Python has handled it: with `max_pending_messages` of one connection not yet
//! handled, the core reads nothing more from it, so a flooding peer meets TCP backpressure and
//! this queue stays bounded; nothing is dropped.
//!
//! Two ways to wake it:
//! - a wake descriptor ([`Hub::wake_fd`], Unix): the core writes a byte to a socket pair whose
//!   other end the event loop watches (`loop.add_reader(fd, drain)`). No GIL is taken on the
//!   core's threads, so they never wait for Python code to yield the interpreter;
//! - a waker callable (`loop.call_soon_threadsafe(drain)`, for loops without `add_reader`),
//!   called with the GIL: one GIL acquisition per batch.

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use polysio::client::AckResponder;
use polysio::engine::{Handshake, Held};
use polysio::server::{AckSender, ConnectError};
use polysio::Value;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::convert::{args_to_py, to_args, to_py, to_value};
use crate::errors::{IntoPyErr, InvalidArgumentError, ResultExt};

/// Something that happened in the core, for the Python side.
pub(crate) enum Event {
    /// Server: a client asks to join a namespace; answer with the [`ConnectReply`].
    Connect {
        nsp: String,
        sid: String,
        handshake: Arc<Handshake>,
        auth: Value,
        reply: oneshot::Sender<Result<(), ConnectError>>,
    },
    /// Server: a socket restored by connection state recovery (no connect handler runs).
    Recovered {
        nsp: String,
        sid: String,
        handshake: Arc<Handshake>,
    },
    /// Server: an event from a client. Client: an event from the server (`sid` None). For
    /// Python: `("event", nsp, event, handler_args, ack)`, `handler_args` a tuple, the `sid`
    /// first on a server.
    Message {
        nsp: String,
        sid: Option<String>,
        event: String,
        args: Vec<Value>,
        ack: Option<AckKind>,
        /// The message's place in its connection's backpressure gate, until handled.
        held: Option<Held>,
    },
    /// Server: a socket left. Client: a namespace disconnected.
    Disconnect {
        nsp: String,
        sid: Option<String>,
        reason: String,
    },
    /// Client: a namespace connected.
    ClientConnect { nsp: String },
    /// Client: a namespace failed to connect (`{message, data?}`).
    ClientConnectError { nsp: String, data: Value },
    /// Client: a connection-level event (`reconnect_failed`, `reconnect`, ...).
    Manager { event: String, args: Vec<Value> },
    /// Server: the response to a long-polling GET of a mounted host, for a Python callback
    /// `f(response, None)` (see [`crate::host`]).
    Response {
        callback: Py<PyAny>,
        response: polysio::engine::host::HttpResponse,
    },
    /// Server: a batch of frames for a WebSocket of a mounted host to send (None: close it),
    /// for a Python callback `f(frames, None)` (see [`crate::host`]).
    Frames {
        callback: Arc<Py<PyAny>>,
        frames: Option<Vec<polysio::engine::packet::Frame>>,
    },
    /// An acknowledgement (or another completion) for a Python callback `f(args, exc)`.
    Done {
        callback: Py<PyAny>,
        result: polysio::Result<Vec<Value>>,
    },
}

#[derive(Default)]
struct State {
    queue: std::collections::VecDeque<Event>,
    /// The Python side is due to drain (woken and not drained since).
    scheduled: bool,
    /// When `scheduled` was set, in wake-descriptor mode (see [`Hub::watch`]).
    scheduled_at: Option<Instant>,
    /// The waker callable; in wake-descriptor mode, only the [`Hub::watch`]dog calls it.
    waker: Option<Arc<Py<PyAny>>>,
    /// Wake by writing to the wake descriptor (see [`Hub::use_wake_fd`]); counts the switches
    /// to it, so that an old watchdog knows it is done.
    fd_mode: Option<u64>,
    fd_generation: u64,
    closed: bool,
}

/// The socket pair of the wake descriptor: the core writes to `tx`, the loop watches `rx`.
#[cfg(unix)]
struct WakeFd {
    tx: std::os::unix::net::UnixStream,
    rx: std::os::unix::net::UnixStream,
}

/// How long a wake through the descriptor may go unanswered before the watchdog calls the
/// waker callable instead (which reports a closed event loop).
const UNANSWERED: Duration = Duration::from_secs(1);

type AckBatch = Vec<(AckKind, Vec<Value>)>;

/// Acknowledgements answered on the event loop and not sent yet (see [`Hub::send_ack`]).
#[derive(Default)]
struct Outbox {
    /// Answered since the last hand-over.
    acks: AckBatch,
    /// Handed over to the runtime ([`Hub::hand_over_acks`]), oldest first, not sent yet.
    handed: std::collections::VecDeque<AckBatch>,
    /// Schedules the hand-over on the event loop (`loop.call_soon(native.flush_acks)`); None:
    /// acks go out at once.
    flusher: Option<Py<PyAny>>,
}

/// Python strings of the namespace and event names seen, made once rather than per event (their
/// hash, for the handler lookups, is computed once too). Bounded: the names come from peers.
#[derive(Default)]
struct Names(std::collections::HashMap<String, Py<PyString>>);

const MAX_NAMES: usize = 512;

impl Names {
    fn get<'py>(&mut self, py: Python<'py>, name: &str) -> Bound<'py, PyString> {
        if let Some(n) = self.0.get(name) {
            return n.bind(py).clone();
        }
        let n = PyString::new(py, name);
        if self.0.len() < MAX_NAMES {
            self.0.insert(name.to_owned(), n.clone().unbind());
        }
        n
    }
}

/// The event queue of one server or client.
#[derive(Default)]
pub(crate) struct Hub {
    state: Mutex<State>,
    outbox: Mutex<Outbox>,
    /// Held by whoever sends queued acks (see [`Hub::send_queued_acks`]).
    sending: Mutex<()>,
    names: Mutex<Names>,
    #[cfg(unix)]
    wake: std::sync::OnceLock<WakeFd>,
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `ev`, waking the Python side if it is not already due to drain.
    pub(crate) fn push(&self, ev: Event) {
        let mut st = self.lock();
        if st.closed {
            drop(st);
            drop(ev);
            return;
        }
        st.queue.push_back(ev);
        if st.scheduled {
            return;
        }
        if st.fd_mode.is_some() {
            st.scheduled = true;
            st.scheduled_at = Some(Instant::now());
            drop(st);
            self.write_wake_fd();
            return;
        }
        let Some(waker) = st.waker.clone() else {
            return;
        };
        st.scheduled = true;
        drop(st);
        self.wake(waker);
    }

    /// The descriptor the event loop watches for events (created on first use): readable
    /// whenever events are due. `None` where there is none (not Unix, or the socket pair cannot
    /// be created); the owner then uses the waker callable alone.
    pub(crate) fn wake_fd(&self) -> Option<i64> {
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            if self.wake.get().is_none() {
                let (tx, rx) = std::os::unix::net::UnixStream::pair().ok()?;
                tx.set_nonblocking(true).ok()?;
                rx.set_nonblocking(true).ok()?;
                // Another thread may have won the race; its pair is as good as ours.
                let _ = self.wake.set(WakeFd { tx, rx });
            }
            self.wake.get().map(|w| i64::from(w.rx.as_raw_fd()))
        }
        #[cfg(not(unix))]
        {
            None
        }
    }

    /// Wakes through the descriptor of [`Hub::wake_fd`] from now on (the owner watches it),
    /// keeping the waker callable for the watchdog ([`Hub::watch`], on `rt`); wakes at once if
    /// events are waiting. `set_waker` ends it.
    pub(crate) fn use_wake_fd(self: &Arc<Self>, rt: &Handle) {
        let mut st = self.lock();
        if st.closed {
            return;
        }
        st.fd_generation += 1;
        let generation = st.fd_generation;
        st.fd_mode = Some(generation);
        let due = !st.queue.is_empty() && !st.scheduled;
        if due {
            st.scheduled = true;
            st.scheduled_at = Some(Instant::now());
        }
        drop(st);
        if due {
            self.write_wake_fd();
        }
        rt.spawn(Self::watch(Arc::downgrade(self), generation));
    }

    /// The watchdog of wake-descriptor mode: the core cannot see the event loop that watches
    /// the descriptor close (say, `asyncio.run` returned without a shutdown), so a wake left
    /// unanswered for [`UNANSWERED`] is repeated through the waker callable, which fails on a
    /// closed loop; the failure is reported and the hub closed, as in callable mode. A loop
    /// that is merely busy gets one more, harmless, drain.
    async fn watch(hub: Weak<Hub>, generation: u64) {
        let mut tick = tokio::time::interval(UNANSWERED);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(hub) = hub.upgrade() else { return };
            let waker = {
                let mut st = hub.lock();
                if st.closed || st.fd_mode != Some(generation) {
                    return;
                }
                let w = match (st.scheduled_at, &st.waker) {
                    (Some(at), Some(w)) if st.scheduled && at.elapsed() >= UNANSWERED => w.clone(),
                    _ => continue,
                };
                st.scheduled_at = Some(Instant::now());
                w
            };
            // Calling it takes the GIL, which a busy loop may hold for a while: not on a
            // worker thread.
            let _ = tokio::task::spawn_blocking(move || hub.wake(waker)).await;
        }
    }

    fn write_wake_fd(&self) {
        #[cfg(unix)]
        if let Some(w) = self.wake.get() {
            use std::io::Write;
            // A full socket buffer is readable already: nothing lost.
            let _ = (&w.tx).write(&[1]);
        }
    }

    /// Empties the wake descriptor, before taking the queue: a byte written after this
    /// belongs to events that the next drain takes.
    fn clear_wake_fd(&self) {
        #[cfg(unix)]
        if let Some(w) = self.wake.get() {
            use std::io::Read;
            let mut buf = [0u8; 64];
            while matches!((&w.rx).read(&mut buf), Ok(n) if n == buf.len()) {}
        }
    }

    fn wake(&self, waker: Arc<Py<PyAny>>) {
        let mut waker = waker;
        // `None` while the interpreter shuts down: nothing can run any more.
        let failed = crate::runtime::with_python(|py| {
            // The owner removes its waker (shutdown) while holding the GIL, as we do now: so
            // the waker is either still installed, or gone for good and must not be called
            // (its event loop may be closed by now).
            {
                let mut st = self.lock();
                match &st.waker {
                    Some(w) if !st.closed => {
                        if !Arc::ptr_eq(w, &waker) {
                            waker = w.clone();
                        }
                    }
                    _ => {
                        st.scheduled = false;
                        return false;
                    }
                }
            }
            match waker.call0(py) {
                Ok(_) => false,
                Err(e) => {
                    // Typically "Event loop is closed": the owner forgot shutdown(). The waker
                    // names the server or client in the report.
                    e.write_unraisable(py, Some(waker.bind(py)));
                    true
                }
            }
        })
        .unwrap_or(true);
        if failed {
            self.close();
        }
    }

    /// Installs (or removes) the waker callable, and leaves wake-descriptor mode; wakes at
    /// once if events are waiting.
    pub(crate) fn set_waker(&self, waker: Option<Py<PyAny>>) {
        let mut st = self.lock();
        st.fd_mode = None;
        st.waker = waker.map(Arc::new);
        let due = !st.queue.is_empty() && !st.scheduled && !st.closed;
        let wake = st.waker.clone().filter(|_| due);
        if wake.is_some() {
            st.scheduled = true;
        }
        drop(st);
        if let Some(w) = wake {
            self.wake(w);
        }
    }

    /// Takes the queued events, at most `max` of them (0: all). When some are left, the
    /// Python side stays due to drain (it comes back for them, `loop.call_soon`), so pushes do
    /// not wake it meanwhile; the watchdog of wake-descriptor mode still does if it does not.
    pub(crate) fn take(&self, max: usize) -> std::collections::VecDeque<Event> {
        self.clear_wake_fd();
        let mut st = self.lock();
        if max == 0 || st.queue.len() <= max {
            st.scheduled = false;
            return std::mem::take(&mut st.queue);
        }
        st.scheduled = true;
        if st.fd_mode.is_some() {
            st.scheduled_at = Some(Instant::now());
        }
        st.queue.drain(..max).collect()
    }

    /// Drops what is queued and refuses further events.
    pub(crate) fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        st.waker = None;
        st.fd_mode = None;
        let dropped = std::mem::take(&mut st.queue);
        drop(st);
        drop(dropped);
    }

    /// Converts the queued events, at most `max` (0: all), into tuples (see the Python layer's
    /// dispatch). Taking a bounded slice per turn of the event loop keeps the Python objects
    /// of a burst (a long-polling POST carries up to `max_http_buffer_size` of packets) few at
    /// a time, the rest waiting here in their compact form, and lets the loop serve its other
    /// work between slices.
    pub(crate) fn drain<'py>(
        self: &Arc<Self>,
        py: Python<'py>,
        max: usize,
    ) -> PyResult<Vec<Bound<'py, PyTuple>>> {
        let events = self.take(max);
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        events
            .into_iter()
            .map(|e| e.into_tuple(py, self, &mut names))
            .collect()
    }

    fn outbox(&self) -> MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Installs (or removes, sending what is queued) the callable that schedules
    /// [`Hub::hand_over_acks`] on the event loop. Only for owners whose acks are all answered on
    /// that loop's thread.
    pub(crate) fn set_ack_flusher(&self, py: Python<'_>, flusher: Option<Py<PyAny>>) {
        self.outbox().flusher = flusher;
        py.detach(|| self.send_acks_now());
    }

    /// Sends an acknowledgement. With a flusher installed, it is queued, and the acks answered
    /// in one turn of the event loop are handed to the core's threads together on the next
    /// ([`Hub::hand_over_acks`]): one wake-up of a worker thread, which sends them, rather than
    /// one per ack. Anything else the owner sends first sends what is queued
    /// ([`Hub::send_acks_now`]), so the peer sees packets in the order Python sent them.
    fn send_ack(&self, py: Python<'_>, ack: AckKind, args: Vec<Value>) -> PyResult<()> {
        let mut outbox = self.outbox();
        let Some(flusher) = &outbox.flusher else {
            drop(outbox);
            return py.detach(|| ack.send(args)).py_err();
        };
        let first = outbox.acks.is_empty();
        let flusher = first.then(|| flusher.clone_ref(py));
        outbox.acks.push((ack, args));
        drop(outbox);
        if let Some(f) = flusher {
            if let Err(e) = f.call0(py) {
                // The loop cannot run the hand-over (closed): send now.
                py.detach(|| self.send_acks_now());
                return Err(e);
            }
        }
        Ok(())
    }

    /// Hands the acks answered since the last hand-over to a task on `rt`, which sends them.
    pub(crate) fn hand_over_acks(self: &Arc<Self>, rt: &Handle) {
        let mut outbox = self.outbox();
        if outbox.acks.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut outbox.acks);
        outbox.handed.push_back(batch);
        drop(outbox);
        let hub = self.clone();
        rt.spawn(async move { hub.send_queued_acks(false) });
    }

    /// Sends every queued ack, in order, before the caller sends anything else (call without
    /// the GIL). Acks for peers that are gone meanwhile are dropped, as the core drops packets
    /// for them.
    pub(crate) fn send_acks_now(&self) {
        self.send_queued_acks(true)
    }

    /// Sends the handed-over batches, oldest first, then (with `all`) the acks not handed over
    /// yet. One sender at a time: a caller that finds a worker sending a batch waits for it, so
    /// what it sends next goes after every ack answered before.
    fn send_queued_acks(&self, all: bool) {
        let _sending = self.sending.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let (batch, last) = {
                let mut outbox = self.outbox();
                match outbox.handed.pop_front() {
                    Some(b) => (b, false),
                    None if all => (std::mem::take(&mut outbox.acks), true),
                    None => return,
                }
            };
            for (ack, args) in batch {
                let _ = ack.send(args);
            }
            if last {
                return;
            }
        }
    }
}

impl Event {
    fn into_tuple<'py>(
        self,
        py: Python<'py>,
        hub: &Arc<Hub>,
        names: &mut Names,
    ) -> PyResult<Bound<'py, PyTuple>> {
        match self {
            Event::Connect {
                nsp,
                sid,
                handshake,
                auth,
                reply,
            } => {
                let environ = environ(py, &handshake)?;
                let reply = ConnectReply {
                    tx: Mutex::new(Some(reply)),
                };
                let auth = match auth {
                    Value::Map(m) if m.is_empty() => py.None().into_bound(py),
                    a => to_py(py, &a)?,
                };
                ("connect", nsp, sid, environ, auth, Bound::new(py, reply)?).into_pyobject(py)
            }
            Event::Recovered {
                nsp,
                sid,
                handshake,
            } => ("recovered", nsp, sid, environ(py, &handshake)?).into_pyobject(py),
            Event::Message {
                nsp,
                sid,
                event,
                args,
                ack,
                held,
            } => {
                let ack = ack
                    .map(|a| {
                        Bound::new(
                            py,
                            Ack {
                                inner: Mutex::new(Some(a)),
                                hub: hub.clone(),
                            },
                        )
                    })
                    .transpose()?;
                // The handler's arguments, ready to call it with: (sid, *args) on a server.
                let mut items = Vec::with_capacity(args.len() + 1);
                if let Some(sid) = sid {
                    items.push(PyString::new(py, &sid).into_any());
                }
                for a in &args {
                    items.push(to_py(py, a)?);
                }
                let hargs = PyTuple::new(py, items)?;
                let hold = held
                    .map(|h| {
                        Bound::new(
                            py,
                            Hold {
                                held: Mutex::new(Some(h)),
                            },
                        )
                    })
                    .transpose()?;
                (
                    intern!(py, "event"),
                    names.get(py, &nsp),
                    names.get(py, &event),
                    hargs,
                    ack,
                    hold,
                )
                    .into_pyobject(py)
            }
            Event::Disconnect { nsp, sid, reason } => {
                ("disconnect", nsp, sid, reason).into_pyobject(py)
            }
            Event::ClientConnect { nsp } => ("connect", nsp).into_pyobject(py),
            Event::ClientConnectError { nsp, data } => {
                ("connect_error", nsp, to_py(py, &data)?).into_pyobject(py)
            }
            Event::Manager { event, args } => {
                ("manager", event, args_to_py(py, &args)?).into_pyobject(py)
            }
            Event::Response { callback, response } => (
                intern!(py, "done"),
                callback,
                crate::host::response_tuple(py, &response)?,
                py.None(),
            )
                .into_pyobject(py),
            Event::Frames { callback, frames } => (
                intern!(py, "done"),
                callback.clone_ref(py),
                crate::host::frames_list(py, frames.as_deref())?,
                py.None(),
            )
                .into_pyobject(py),
            Event::Done { callback, result } => match result {
                Ok(args) => (
                    "done",
                    callback,
                    args_to_py(py, &args)?.into_any(),
                    py.None(),
                )
                    .into_pyobject(py),
                Err(e) => {
                    ("done", callback, py.None(), e.into_py_err().into_value(py)).into_pyobject(py)
                }
            },
        }
    }
}

/// A WSGI-style environ for the connect handler (what python-socketio passes).
pub(crate) fn environ<'py>(py: Python<'py>, h: &Handshake) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let (path, query) = h.url.split_once('?').unwrap_or((h.url.as_str(), ""));
    d.set_item("REQUEST_METHOD", "GET")?;
    d.set_item("PATH_INFO", path)?;
    d.set_item("QUERY_STRING", query)?;
    d.set_item("RAW_URI", &h.url)?;
    d.set_item("SERVER_PROTOCOL", "HTTP/1.1")?;
    d.set_item("wsgi.url_scheme", if h.secure { "https" } else { "http" })?;
    if let Some(a) = h.address {
        d.set_item("REMOTE_ADDR", a.ip().to_string())?;
        d.set_item("REMOTE_PORT", a.port().to_string())?;
    }
    for (name, value) in &h.headers {
        let key = match name.as_str() {
            "content-type" => "CONTENT_TYPE".to_owned(),
            "content-length" => "CONTENT_LENGTH".to_owned(),
            n => format!("HTTP_{}", n.to_ascii_uppercase().replace('-', "_")),
        };
        let value = String::from_utf8_lossy(value.as_bytes());
        // Repeated headers are joined, as WSGI servers do.
        let joined = match d.get_item(&key)? {
            Some(prev) => format!("{},{value}", prev.extract::<String>()?),
            None => value.into_owned(),
        };
        d.set_item(key, joined)?;
    }
    Ok(d)
}

/// Who answers an acknowledgement: a server socket or a client socket.
pub(crate) enum AckKind {
    Server(AckSender),
    Client(AckResponder),
}

impl AckKind {
    fn send(self, args: Vec<Value>) -> polysio::Result<()> {
        match self {
            AckKind::Server(a) => a.send(args),
            AckKind::Client(a) => a.send(args),
        }
    }
}

/// The acknowledgement a peer asked for with an event. `send` at most once; dropping it unsent
/// sends nothing.
#[pyclass(frozen, module = "polysio._polysio")]
pub(crate) struct Ack {
    inner: Mutex<Option<AckKind>>,
    hub: Arc<Hub>,
}

#[pymethods]
impl Ack {
    /// Sends the acknowledgement with `args` (a list or tuple).
    fn send(&self, py: Python<'_>, args: &Bound<'_, PyAny>) -> PyResult<()> {
        self.send_values(py, to_args(args)?)
    }

    /// Sends the acknowledgement for a handler's return value, python-socketio's way: None
    /// sends no arguments, a tuple one per item, anything else one.
    fn reply(&self, py: Python<'_>, result: &Bound<'_, PyAny>) -> PyResult<()> {
        let args = if result.is_none() {
            Vec::new()
        } else if result.is_instance_of::<PyTuple>() {
            to_args(result)?
        } else {
            vec![to_value(result)?]
        };
        self.send_values(py, args)
    }

    /// True until `send` is called.
    #[getter]
    fn pending(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }
}

impl Ack {
    fn send_values(&self, py: Python<'_>, args: Vec<Value>) -> PyResult<()> {
        let ack = self
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| InvalidArgumentError::new_err("this ack was already sent"))?;
        self.hub.send_ack(py, ack, args)
    }
}

/// A message's place in its connection's backpressure gate (`max_pending_messages`), given to
/// Python with the message (`("event", ..., hold)`): `release()` once the message is handled
/// (its handler returned; for a coroutine, once it finished). Freed unreleased, it is released
/// then. While a connection has `max_pending_messages` unreleased, the core reads nothing more
/// from it.
#[pyclass(frozen, module = "polysio._polysio")]
pub(crate) struct Hold {
    held: Mutex<Option<Held>>,
}

#[pymethods]
impl Hold {
    /// Lets the message go (later calls do nothing).
    fn release(&self) {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(held);
    }
}

/// The answer to a server-side connection request. Dropping it unanswered refuses the
/// connection.
#[pyclass(frozen, module = "polysio._polysio")]
pub(crate) struct ConnectReply {
    tx: Mutex<Option<oneshot::Sender<Result<(), ConnectError>>>>,
}

impl ConnectReply {
    fn answer(&self, r: Result<(), ConnectError>) -> PyResult<()> {
        let tx = self
            .tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| InvalidArgumentError::new_err("this connection was already answered"))?;
        // The client may be gone already; nothing to report then.
        let _ = tx.send(r);
        Ok(())
    }
}

#[pymethods]
impl ConnectReply {
    /// Accepts the connection.
    fn accept(&self) -> PyResult<()> {
        self.answer(Ok(()))
    }

    /// Refuses it with CONNECT_ERROR `{message, data?}`.
    #[pyo3(signature = (message, data=None))]
    fn refuse(&self, message: String, data: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let mut e = ConnectError::new(message);
        if let Some(d) = data.filter(|d| !d.is_none()) {
            e = e.with_data(to_value(d)?);
        }
        self.answer(Err(e))
    }
}

/// Delivers the outcome of an emit-with-ack to a Python callback `f(args, exc)` through the
/// hub, exactly once: if the core drops the ack unanswered (the socket went away), the
/// callback gets `DisconnectedError`.
pub(crate) struct AckGuard {
    hub: Arc<Hub>,
    callback: Option<Py<PyAny>>,
}

impl AckGuard {
    pub(crate) fn new(hub: Arc<Hub>, callback: Py<PyAny>) -> Self {
        AckGuard {
            hub,
            callback: Some(callback),
        }
    }

    pub(crate) fn complete(mut self, result: polysio::Result<Vec<Value>>) {
        if let Some(callback) = self.callback.take() {
            self.hub.push(Event::Done { callback, result });
        }
    }
}

impl Drop for AckGuard {
    fn drop(&mut self) {
        if let Some(callback) = self.callback.take() {
            self.hub.push(Event::Done {
                callback,
                result: Err(polysio::Error::Closed),
            });
        }
    }
}
