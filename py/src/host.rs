//! The host boundary seen from Python: how the ASGI and aiohttp drivers of the package
//! (`polysio/asgi.py`, `polysio/aiohttp.py`) serve Engine.IO requests that their web server
//! received. `NativeServer.request` hands one request to the core ([`polysio::engine::host`])
//! and returns its answer: a response tuple now, or a ticket for what comes later:
//!
//! - [`BodyTicket`]: a POST; the driver waits until it is `ready()` (the session may take more
//!   messages: backpressure from slow handlers), reads the body within `timeout` seconds,
//!   `limit` bytes and `max_chunks` chunks, and `finish`es it for the response (or reports
//!   `timed_out()`: 408, `too_large()` / `too_many_chunks()`: 413);
//! - [`PollTicket`]: a long-polling GET; `start(callback)` has the response delivered through
//!   the server's event queue (one wake-up of the loop for everything due), `cancel()` (the
//!   client went away) ends the session as the reference ends one whose GET was aborted;
//! - [`WsTicket`]: a WebSocket; once the driver accepted it, `run(callback)` gives the
//!   [`WsConnection`] it passes every received message to (handled at once, the GIL released;
//!   it takes the next message from its server only once the connection is `ready()`, so a
//!   client whose messages the handlers have not caught up with meets TCP backpressure),
//!   while the batches of frames to send reach `callback` through the event queue, one at a
//!   time: the next batch comes after `sent()`, so a slow client holds back the core's writer
//!   rather than filling memory.
//!
//! A response is `(status, [(name, value), ...], body)`, all bytes but the status.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, Method};
use polysio::engine::host::{
    BodyError, HttpRequest, HttpResponse, Reply, WsInbound, WsInput, WsOutbound,
};
use polysio::engine::packet::Frame;
use polysio::engine::EngineServer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};
use tokio::runtime::Handle;
use tokio::sync::{oneshot, Notify};

use crate::hub::{Event, Hub};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The bytes of a header name or value given as bytes or str.
fn header_bytes<'a>(v: &'a Bound<'_, PyAny>) -> PyResult<std::borrow::Cow<'a, [u8]>> {
    if let Ok(b) = v.cast::<PyBytes>() {
        return Ok(std::borrow::Cow::Borrowed(b.as_bytes()));
    }
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(std::borrow::Cow::Owned(s.to_cow()?.as_bytes().to_vec()));
    }
    Err(PyValueError::new_err(
        "request headers must be (name, value) pairs of bytes or str",
    ))
}

/// The request's headers from `[(name, value), ...]` (ASGI's `scope["headers"]`, aiohttp's
/// `raw_headers`); pairs that are not valid HTTP are left out, as a server would refuse them.
fn headers_of(headers: &Bound<'_, PyAny>) -> PyResult<HeaderMap> {
    let mut out = HeaderMap::new();
    for pair in headers.try_iter()? {
        let pair = pair?;
        let (name, value) = (pair.get_item(0)?, pair.get_item(1)?);
        let (name, value) = (header_bytes(&name)?, header_bytes(&value)?);
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(&name),
            HeaderValue::from_bytes(&value),
        ) {
            out.append(n, v);
        }
    }
    Ok(out)
}

/// The client's address from `(host, port)` (ASGI's `scope["client"]`); None when it is no IP
/// address (a Unix socket) or absent.
fn remote_of(client: Option<&Bound<'_, PyAny>>) -> PyResult<Option<SocketAddr>> {
    let Some(c) = client.filter(|c| !c.is_none()) else {
        return Ok(None);
    };
    let host: String = c.get_item(0)?.extract()?;
    let port: u16 = c.get_item(1)?.extract().unwrap_or(0);
    Ok(host
        .parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, port)))
}

/// A response as `(status, headers, body)`.
pub(crate) fn response_tuple<'py>(
    py: Python<'py>,
    r: &HttpResponse,
) -> PyResult<Bound<'py, PyTuple>> {
    let headers = PyList::empty(py);
    for (name, value) in &r.headers {
        headers.append((
            PyBytes::new(py, name.as_str().as_bytes()),
            PyBytes::new(py, value.as_bytes()),
        ))?;
    }
    (r.status.as_u16(), headers, PyBytes::new(py, &r.body)).into_pyobject(py)
}

/// A batch of frames as a list of str (text) and bytes (binary); None: close the WebSocket.
pub(crate) fn frames_list<'py>(
    py: Python<'py>,
    frames: Option<&[Frame]>,
) -> PyResult<Bound<'py, PyAny>> {
    let Some(frames) = frames else {
        return Ok(py.None().into_bound(py));
    };
    let list = PyList::empty(py);
    for f in frames {
        match f {
            Frame::Text(t) => list.append(PyString::new(py, t.as_str()))?,
            Frame::Binary(b) => list.append(PyBytes::new(py, b))?,
        }
    }
    Ok(list.into_any())
}

/// A request as a driver gives it (see `NativeServer.request`).
pub(crate) struct RequestArgs<'a, 'py> {
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) query: &'a str,
    pub(crate) headers: &'a Bound<'py, PyAny>,
    pub(crate) client: Option<&'a Bound<'py, PyAny>>,
    pub(crate) secure: bool,
    pub(crate) websocket: bool,
}

/// Hands one request to the engine (see the module's documentation).
pub(crate) fn request<'py>(
    py: Python<'py>,
    engine: &EngineServer,
    hub: &Arc<Hub>,
    args: RequestArgs<'_, 'py>,
) -> PyResult<Bound<'py, PyAny>> {
    let method = args.method;
    let mut headers = headers_of(args.headers)?;
    if args.websocket && !headers.contains_key(header::UPGRADE) {
        // A WebSocket over HTTP/2 (extended CONNECT) has no Upgrade header; the host framed it.
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    }
    let req = HttpRequest {
        method: Method::from_bytes(method.as_bytes())
            .map_err(|_| PyValueError::new_err(format!("bad HTTP method {method:?}")))?,
        path: args.path.to_owned(),
        query: args.query.to_owned(),
        headers,
        remote: remote_of(args.client)?,
        secure: args.secure,
    };
    let runtime = engine.runtime().clone();
    let reply = py.detach(|| {
        let _guard = runtime.enter();
        engine.request(req)
    });
    Ok(match reply {
        Reply::Ready(r) => response_tuple(py, &r)?.into_any(),
        Reply::ReadBody(t) => Bound::new(
            py,
            BodyTicket {
                limit: t.limit(),
                max_chunks: t.max_chunks(),
                timeout: t.timeout().as_secs_f64(),
                ticket: Arc::new(Mutex::new(Some(t))),
                hub: hub.clone(),
                runtime,
            },
        )?
        .into_any(),
        Reply::Wait(t) => Bound::new(
            py,
            PollTicket {
                ticket: Mutex::new(Some(t)),
                cancel: Mutex::new(None),
                hub: hub.clone(),
                runtime,
            },
        )?
        .into_any(),
        Reply::WebSocket(t) => Bound::new(
            py,
            WsTicket {
                ticket: Mutex::new(Some(t)),
                max_message: engine.config().max_http_buffer_size,
                hub: hub.clone(),
                runtime,
            },
        )?
        .into_any(),
    })
}

/// A POST whose body the driver reads once `ready()`: at most `limit` bytes in at most
/// `max_chunks` chunks within `timeout` seconds, then `finish(body)`. Dropped unfinished, the
/// body counts as aborted (the session ends).
#[pyclass(frozen, module = "polysio._polysio")]
pub(crate) struct BodyTicket {
    /// Shared with a `wait_ready` task, which holds the ticket while it waits.
    ticket: Arc<Mutex<Option<polysio::engine::host::BodyTicket>>>,
    limit: usize,
    max_chunks: usize,
    timeout: f64,
    hub: Arc<Hub>,
    runtime: Handle,
}

impl BodyTicket {
    fn give<'py>(
        &self,
        py: Python<'py>,
        body: Result<Bytes, BodyError>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let ticket = lock(&self.ticket)
            .take()
            .ok_or_else(|| PyValueError::new_err("this body was already given"))?;
        let r = py.detach(|| {
            let _guard = self.runtime.enter();
            ticket.finish(body)
        });
        response_tuple(py, &r)
    }
}

#[pymethods]
impl BodyTicket {
    /// The most bytes the body may have (`max_http_buffer_size`).
    #[getter]
    fn limit(&self) -> usize {
        self.limit
    }

    /// The most chunks the body may come in (`max_buffered_chunks`).
    #[getter]
    fn max_chunks(&self) -> usize {
        self.max_chunks
    }

    /// How long the body may take to arrive once `ready()`, in seconds
    /// (`http_request_body_timeout`).
    #[getter]
    fn timeout(&self) -> f64 {
        self.timeout
    }

    /// True when the body may be read now; else wait with `wait_ready`. (False while the
    /// session's handlers have `max_pending_messages` of its messages in hand.)
    fn ready(&self) -> bool {
        lock(&self.ticket)
            .as_ref()
            .is_none_or(|t| now_or_never(t.ready()))
    }

    /// Calls `callback(None, None)` on the event loop (through the server's event queue) once
    /// the body may be read.
    fn wait_ready(&self, callback: Py<PyAny>) -> PyResult<()> {
        let ticket = lock(&self.ticket)
            .take()
            .ok_or_else(|| PyValueError::new_err("this body was already given"))?;
        let slot = self.ticket.clone();
        let hub = self.hub.clone();
        self.runtime.spawn(async move {
            ticket.ready().await;
            *lock(&slot) = Some(ticket);
            hub.push(Event::Done {
                callback,
                result: Ok(Vec::new()),
            });
        });
        Ok(())
    }

    /// Gives the whole body; returns the response.
    fn finish<'py>(&self, py: Python<'py>, body: &[u8]) -> PyResult<Bound<'py, PyTuple>> {
        self.give(py, Ok(Bytes::copy_from_slice(body)))
    }

    /// The body went over `limit`: returns the response (413; the session ends).
    fn too_large<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        self.give(py, Err(BodyError::TooLarge))
    }

    /// The body came in more than `max_chunks` chunks: returns the response (413; the session
    /// ends).
    fn too_many_chunks<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        self.give(py, Err(BodyError::TooManyChunks))
    }

    /// The body did not arrive within `timeout`: returns the response (408; the session ends).
    fn timed_out<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        self.give(py, Err(BodyError::TimedOut))
    }

    /// The client went away before the whole body came (the session ends).
    fn abort(&self, py: Python<'_>) {
        let _ = self.give(py, Err(BodyError::Aborted));
    }
}

/// A long-polling GET waiting for packets (see the module's documentation). Dropped, it is
/// cancelled.
#[pyclass(frozen, module = "polysio._polysio")]
pub(crate) struct PollTicket {
    ticket: Mutex<Option<polysio::engine::host::PollTicket>>,
    /// Dropping it cancels the started poll.
    cancel: Mutex<Option<oneshot::Sender<()>>>,
    hub: Arc<Hub>,
    runtime: Handle,
}

#[pymethods]
impl PollTicket {
    /// Waits for the response on the core's threads; `callback(response, None)` gets it on the
    /// event loop (through the server's event queue). Not called if the poll is cancelled.
    fn start(&self, callback: Py<PyAny>) -> PyResult<()> {
        let ticket = lock(&self.ticket)
            .take()
            .ok_or_else(|| PyValueError::new_err("this poll was already started"))?;
        let (tx, rx) = oneshot::channel::<()>();
        *lock(&self.cancel) = Some(tx);
        let hub = self.hub.clone();
        self.runtime.spawn(async move {
            tokio::select! {
                response = ticket => hub.push(Event::Response { callback, response }),
                // Cancelled: the ticket is dropped here, which aborts the GET.
                _ = rx => {}
            }
        });
        Ok(())
    }

    /// The client went away: the GET is aborted and its session ends.
    fn cancel(&self) {
        drop_in(&self.runtime, &self.ticket);
        drop_in(&self.runtime, &self.cancel);
    }
}

/// A WebSocket the core accepted: the driver answers the client (its accept, with `headers`),
/// then `run`s it.
#[pyclass(frozen, module = "polysio._polysio")]
pub(crate) struct WsTicket {
    ticket: Mutex<Option<polysio::engine::host::WsTicket>>,
    /// `max_http_buffer_size`: the host's own WebSocket limit may be larger (uvicorn: 16 MiB).
    max_message: usize,
    hub: Arc<Hub>,
    runtime: Handle,
}

#[pymethods]
impl WsTicket {
    /// Headers for the accept (the session cookie, CORS), as `[(name, value), ...]` bytes.
    #[getter]
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        if let Some(t) = lock(&self.ticket).as_ref() {
            for (name, value) in t.headers() {
                list.append((
                    PyBytes::new(py, name.as_str().as_bytes()),
                    PyBytes::new(py, value.as_bytes()),
                ))?;
            }
        }
        Ok(list)
    }

    /// Runs the accepted WebSocket: `callback(frames, None)` gets each batch to send (a list
    /// of str and bytes; call `sent()` once it is sent) and finally `None` (close the
    /// WebSocket).
    fn run(&self, py: Python<'_>, callback: Py<PyAny>) -> PyResult<WsConnection> {
        let ticket = lock(&self.ticket)
            .take()
            .ok_or_else(|| PyValueError::new_err("this WebSocket already runs"))?;
        let (inbound, outbound) = py.detach(|| {
            let _guard = self.runtime.enter();
            ticket.run_messages()
        });
        let shared = Arc::new(Credit {
            notify: Notify::new(),
            closed: AtomicBool::new(false),
        });
        self.runtime.spawn(pump(
            outbound,
            Arc::new(callback),
            self.hub.clone(),
            shared.clone(),
        ));
        Ok(WsConnection {
            inbound: Mutex::new(Some(inbound)),
            max_message: self.max_message,
            credit: shared,
            hub: self.hub.clone(),
            runtime: self.runtime.clone(),
        })
    }
}

/// What the pump of a WebSocket waits on between batches.
struct Credit {
    /// `sent()`: the last batch went out.
    notify: Notify,
    /// The driver is done with the WebSocket.
    closed: AtomicBool,
}

/// Hands the batches of a WebSocket to Python, one at a time.
async fn pump(
    mut outbound: WsOutbound,
    callback: Arc<Py<PyAny>>,
    hub: Arc<Hub>,
    credit: Arc<Credit>,
) {
    loop {
        let batch = outbound.next().await;
        let last = batch.is_none();
        if credit.closed.load(Ordering::Acquire) {
            return;
        }
        hub.push(Event::Frames {
            callback: callback.clone(),
            frames: batch,
        });
        if last {
            return;
        }
        credit.notify.notified().await;
        if credit.closed.load(Ordering::Acquire) {
            // Dropping `outbound` tells the core nobody sends for this WebSocket any more.
            return;
        }
    }
}

/// A running WebSocket: give it every message received, in order, and `close()` it when the
/// WebSocket ends. Dropped, it is closed.
#[pyclass(frozen, module = "polysio._polysio")]
pub(crate) struct WsConnection {
    inbound: Mutex<Option<WsInbound>>,
    max_message: usize,
    credit: Arc<Credit>,
    hub: Arc<Hub>,
    runtime: Handle,
}

impl WsConnection {
    /// Ends the session on a message over the limit (`transport error`), as the core's own
    /// WebSockets do; the driver then gets `None` and closes the WebSocket.
    fn over_limit(&self, py: Python<'_>, len: usize) -> bool {
        let over = len > self.max_message;
        if over {
            self.end_session(py, WsInput::Error);
        }
        over
    }

    /// The session's WebSocket ended (`WsInput::Close` or `WsInput::Error`); later messages go
    /// nowhere.
    fn end_session(&self, py: Python<'_>, how: WsInput<'static>) {
        if let Some(i) = lock(&self.inbound).take() {
            py.detach(|| {
                let _guard = self.runtime.enter();
                i.receive(how)
            });
        }
    }

    fn receive(&self, py: Python<'_>, input: WsInput<'_>) {
        let Some(inbound) = lock(&self.inbound).clone() else {
            return;
        };
        py.detach(|| {
            let _guard = self.runtime.enter();
            inbound.receive(input)
        });
    }
}

#[pymethods]
impl WsConnection {
    /// A text message (over `max_http_buffer_size`, it ends the session).
    fn text(&self, py: Python<'_>, message: &str) {
        if !self.over_limit(py, message.len()) {
            self.receive(py, WsInput::Text(message))
        }
    }

    /// A binary message (over `max_http_buffer_size`, it ends the session).
    fn binary(&self, py: Python<'_>, message: &[u8]) {
        if !self.over_limit(py, message.len()) {
            let message = Bytes::copy_from_slice(message);
            self.receive(py, WsInput::Binary(message))
        }
    }

    /// True when the next message may be taken from the WebSocket now; else wait with
    /// `wait_ready` before receiving it. (False while the session's handlers have
    /// `max_pending_messages` of its messages in hand: not reading makes the client feel TCP
    /// backpressure.) True once the session ended.
    fn ready(&self) -> bool {
        lock(&self.inbound)
            .as_ref()
            .is_none_or(|i| now_or_never(i.ready()))
    }

    /// Calls `callback(None, None)` on the event loop (through the server's event queue) once
    /// the next message may be taken.
    fn wait_ready(&self, callback: Py<PyAny>) {
        let inbound = lock(&self.inbound).clone();
        let hub = self.hub.clone();
        self.runtime.spawn(async move {
            if let Some(i) = inbound {
                i.ready().await;
            }
            hub.push(Event::Done {
                callback,
                result: Ok(Vec::new()),
            });
        });
    }

    /// The last batch was sent: the next may come.
    fn sent(&self) {
        self.credit.notify.notify_one();
    }

    /// The WebSocket ended: closed by either side or gone (`transport close`), or, with
    /// `failed`, broken by a protocol error (`transport error`). Later calls do nothing.
    #[pyo3(signature = (failed = false))]
    fn close(&self, py: Python<'_>, failed: bool) {
        self.credit.closed.store(true, Ordering::Release);
        self.credit.notify.notify_one();
        self.end_session(
            py,
            if failed {
                WsInput::Error
            } else {
                WsInput::Close
            },
        );
    }
}

impl Drop for WsConnection {
    fn drop(&mut self) {
        self.credit.closed.store(true, Ordering::Release);
        self.credit.notify.notify_one();
        // Dropping the inbound half closes the session.
        drop_in(&self.runtime, &self.inbound);
    }
}

/// Polls `fut` once: true if it is already complete (a readiness check that does not wait).
fn now_or_never<F: std::future::Future>(fut: F) -> bool {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    std::pin::pin!(fut).poll(&mut cx).is_ready()
}

/// Drops what `slot` holds inside the runtime: tickets dropped unused end their sessions (an
/// aborted body or GET), which may start tasks.
fn drop_in<T>(runtime: &Handle, slot: &Mutex<Option<T>>) {
    let _guard = runtime.enter();
    drop(lock(slot).take());
}

impl Drop for BodyTicket {
    fn drop(&mut self) {
        drop_in(&self.runtime, &self.ticket)
    }
}

impl Drop for PollTicket {
    fn drop(&mut self) {
        drop_in(&self.runtime, &self.ticket)
    }
}

impl Drop for WsTicket {
    fn drop(&mut self) {
        drop_in(&self.runtime, &self.ticket)
    }
}
