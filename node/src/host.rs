//! The host boundary seen from JavaScript: serving Engine.IO inside a Node `http.Server` /
//! `https.Server` (`new Server(httpServer)`, `io.attach`; lib/attach.js drives it).
//!
//! `NativeServer.handleRequest` hands one request to the core ([`polysio::engine::host`]) on a
//! runtime thread (so a synchronous `allowRequest` can ask JavaScript) and completes with either
//! a response `{ status, headers, body }` or a [`NativeExchange`] for what comes later:
//!
//! - a POST (`kind` 1): JavaScript awaits `bodyReady` (backpressure: the session's handlers have
//!   caught up), reads the body under `limit` bytes, `maxChunks` chunks and `timeout` ms, and
//!   `finish`es it for the response;
//! - a long-polling GET (`kind` 2): `wait` completes with the response; `cancel` (the client
//!   went away) drops the poll, which ends the session as the reference does;
//! - a WebSocket (`kind` 3): `takeover(fd, head)` runs it on the TCP socket itself (a `dup` of
//!   Node's descriptor; the core writes the `101`), or `stream(head)` returns a
//!   [`NativeWsStream`] (`crossing.rs`) through which the bytes cross (TLS sockets, `takeover: false`), after
//!   JavaScript wrote `response()` (the `101`).

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use napi::bindgen_prelude::{Buffer, ToNapiValue};
use napi_derive::napi;
use polysio::engine::host::WsTicket;
use polysio::engine::host::{BodyError, BodyTicket, HttpRequest, HttpResponse, PollTicket, Reply};
use polysio::engine::EngineServer;
use tokio::io::AsyncWriteExt;
use tokio::sync::oneshot;

use crate::crossing::NativeWsStream;

use crate::dispatch::{Completion, Dispatcher, Outcome};
use crate::error::{err, Code, Result};

/// Locks `m`, also after a panic of another holder (the state stays usable).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An HTTP response as JavaScript writes it.
#[napi(object)]
pub struct HostResponse {
    /// The status code.
    pub status: u32,
    /// Header names and values, alternating (as `res.writeHead` takes them).
    pub headers: Vec<String>,
    /// The body.
    pub body: Buffer,
}

fn host_response(r: HttpResponse) -> HostResponse {
    let mut headers = Vec::with_capacity(r.headers.len() * 2);
    for (name, value) in &r.headers {
        headers.push(name.as_str().to_owned());
        headers.push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    HostResponse {
        status: r.status.as_u16().into(),
        headers,
        body: r.body.to_vec().into(),
    }
}

/// A value JavaScript gets once, made on its thread.
pub(crate) fn native<T: ToNapiValue + Send + 'static>(v: T) -> Outcome {
    Outcome::Native(Box::new(move |env| {
        unsafe { T::to_napi_value(env, v) }.map_err(|e| err(Code::Napi, e.reason))
    }))
}

/// Appends headers given as names and values alternating; pairs that are not valid HTTP are
/// left out, as a server would refuse them.
fn append_pairs(headers: &mut HeaderMap, pairs: &[String]) {
    for pair in pairs.chunks_exact(2) {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(pair[0].as_bytes()),
            HeaderValue::from_str(&pair[1]),
        ) {
            headers.append(n, v);
        }
    }
}

/// The request JavaScript describes (`rawHeaders`: names and values alternating).
pub(crate) fn http_request(
    method: &str,
    url: &str,
    raw_headers: &[String],
    remote_address: Option<&str>,
    remote_port: u32,
    secure: bool,
) -> Result<HttpRequest> {
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| err(Code::InvalidArgValue, format!("bad HTTP method {method:?}")))?;
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let mut headers = HeaderMap::with_capacity(raw_headers.len() / 2);
    append_pairs(&mut headers, raw_headers);
    let remote = remote_address
        .and_then(|a| a.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, u16::try_from(remote_port).unwrap_or(0)));
    Ok(HttpRequest {
        method,
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        remote,
        secure,
    })
}

/// `allowRequest`'s answer for a handshake, when JavaScript gave it with the request.
type Decision = std::result::Result<(), String>;

tokio::task_local! {
    static DECIDED: Option<Decision>;
}

/// The decision JavaScript gave with the request being answered (see `handle`), if any.
pub(crate) fn decided() -> Option<Decision> {
    DECIDED.try_with(Clone::clone).ok().flatten()
}

/// Answers `req` on a runtime thread (`decided`: `allowRequest`'s answer, given already);
/// completes with a [`HostResponse`] or a [`NativeExchange`].
pub(crate) fn handle(
    engine: &EngineServer,
    dispatcher: &Arc<Dispatcher>,
    req: HttpRequest,
    decided: Option<Decision>,
    done: Completion,
) {
    let (engine, d) = (engine.clone(), dispatcher.clone());
    engine.runtime().clone().spawn(async move {
        let reply = DECIDED.sync_scope(decided, || engine.request(req));
        let max_message = engine.config().max_http_buffer_size;
        let outcome = match reply {
            Reply::Ready(r) => native(host_response(r)),
            Reply::ReadBody(t) => native(NativeExchange::new(1, Ticket::Body(t), d, max_message)),
            Reply::Wait(t) => native(NativeExchange::new(2, Ticket::Wait(t), d, max_message)),
            Reply::WebSocket(t) => native(NativeExchange::new(3, Ticket::Ws(t), d, max_message)),
        };
        done.finish(Ok(outcome));
    });
}

enum Ticket {
    Body(BodyTicket),
    Wait(PollTicket),
    Ws(WsTicket),
}

/// What comes after a request the core could not answer at once (see the module's doc).
#[napi]
pub struct NativeExchange {
    kind: u32,
    ticket: Arc<Mutex<Option<Ticket>>>,
    /// Dropping it cancels a started poll.
    cancel: Mutex<Option<oneshot::Sender<()>>>,
    limit: f64,
    max_chunks: f64,
    timeout: f64,
    dispatcher: Arc<Dispatcher>,
}

impl NativeExchange {
    fn new(kind: u32, t: Ticket, dispatcher: Arc<Dispatcher>, max_message: usize) -> Self {
        let (limit, max_chunks, timeout) = match &t {
            Ticket::Body(b) => (
                b.limit(),
                b.max_chunks(),
                b.timeout().as_secs_f64() * 1000.0,
            ),
            _ => (max_message, 0, 0.0),
        };
        NativeExchange {
            kind,
            ticket: Arc::new(Mutex::new(Some(t))),
            cancel: Mutex::new(None),
            limit: limit as f64,
            max_chunks: max_chunks as f64,
            timeout,
            dispatcher,
        }
    }

    fn take_ws(&self) -> Result<WsTicket> {
        match lock(&self.ticket).take() {
            Some(Ticket::Ws(t)) => Ok(t),
            _ => Err(err(
                Code::InvalidArgValue,
                "this is no WebSocket, or it already runs",
            )),
        }
    }
}

fn runtime() -> Result<tokio::runtime::Handle> {
    crate::runtime::handle()
}

#[napi]
impl NativeExchange {
    /// 1: a POST body to read; 2: a long-polling GET; 3: a WebSocket.
    #[napi(getter)]
    pub fn kind(&self) -> u32 {
        self.kind
    }

    /// The most bytes the body (or a WebSocket message) may have (`maxHttpBufferSize`).
    #[napi(getter)]
    pub fn limit(&self) -> f64 {
        self.limit
    }

    /// The most chunks the body may come in (`maxBufferedChunks`).
    #[napi(getter)]
    pub fn max_chunks(&self) -> f64 {
        self.max_chunks
    }

    /// How long the body may take once ready, in milliseconds (`httpRequestBodyTimeout`).
    #[napi(getter)]
    pub fn timeout(&self) -> f64 {
        self.timeout
    }

    /// Completes (request `req`) once the body may be read: the session may take more messages.
    #[napi]
    pub fn body_ready(&self, req: f64) -> Result<()> {
        let done = self.dispatcher.completion(req);
        let slot = self.ticket.clone();
        let t = lock(&slot).take();
        let Some(Ticket::Body(t)) = t else {
            *lock(&slot) = t;
            return Err(err(Code::InvalidArgValue, "this is no POST"));
        };
        runtime()?.spawn(async move {
            t.ready().await;
            *lock(&slot) = Some(Ticket::Body(t));
            done.finish(Ok(Outcome::Args(Vec::new())));
        });
        Ok(())
    }

    /// Gives the body (`error`: 0 none, 1 too large, 2 too many chunks, 3 timed out, 4
    /// aborted); returns the response.
    #[napi]
    pub fn finish(&self, body: Option<Buffer>, error: u32) -> Result<HostResponse> {
        let Some(Ticket::Body(t)) = lock(&self.ticket).take() else {
            return Err(err(Code::InvalidArgValue, "this body was already given"));
        };
        let body = match error {
            0 => Ok(body.map(|b| Bytes::copy_from_slice(&b)).unwrap_or_default()),
            1 => Err(BodyError::TooLarge),
            2 => Err(BodyError::TooManyChunks),
            3 => Err(BodyError::TimedOut),
            _ => Err(BodyError::Aborted),
        };
        let rt = runtime()?;
        let _guard = rt.enter();
        Ok(host_response(t.finish(body)))
    }

    /// Completes (request `req`) with the long poll's response.
    #[napi]
    pub fn wait(&self, req: f64) -> Result<()> {
        let done = self.dispatcher.completion(req);
        let Some(Ticket::Wait(t)) = lock(&self.ticket).take() else {
            return Err(err(
                Code::InvalidArgValue,
                "this is no poll, or it already waits",
            ));
        };
        let (tx, rx) = oneshot::channel::<()>();
        *lock(&self.cancel) = Some(tx);
        runtime()?.spawn(async move {
            tokio::select! {
                r = t => done.finish(Ok(native(host_response(r)))),
                // Cancelled: the ticket is dropped here, which aborts the GET.
                _ = rx => drop(done),
            }
        });
        Ok(())
    }

    /// The client went away: a poll is aborted (its session ends), a body counts as aborted, a
    /// WebSocket is left alone.
    #[napi]
    pub fn cancel(&self) -> Result<()> {
        let rt = runtime()?;
        let _guard = rt.enter();
        drop(lock(&self.cancel).take());
        drop(lock(&self.ticket).take());
        Ok(())
    }

    /// The WebSocket's `101 Switching Protocols` answer (for `stream`).
    #[napi]
    pub fn response(&self) -> Result<HostResponse> {
        match lock(&self.ticket).as_ref() {
            Some(Ticket::Ws(t)) => Ok(host_response(t.response())),
            _ => Err(err(Code::InvalidArgValue, "this is no WebSocket")),
        }
    }

    /// Runs the WebSocket on a duplicate of the TCP socket `fd` (Node's), with the bytes `head`
    /// read past the request; the core writes the `101` (with `extraHeaders`, names and values
    /// alternating: what `io.engine.use` middlewares set). JavaScript then destroys its socket
    /// (closing its descriptor only). False when `fd` cannot be used (then `stream`).
    #[napi]
    pub fn takeover(&self, fd: i32, head: Buffer, extra_headers: Vec<String>) -> Result<bool> {
        use std::os::fd::FromRawFd;
        if fd < 0 {
            return Ok(false);
        }
        // SAFETY: `fd` is Node's open socket, only duplicated here; the duplicate is owned below.
        let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            return Ok(false);
        }
        // SAFETY: `dup` is a fresh descriptor nobody else owns.
        let std_stream = unsafe { std::net::TcpStream::from_raw_fd(dup) };
        if std_stream.set_nonblocking(true).is_err() || std_stream.peer_addr().is_err() {
            return Ok(false);
        }
        let t = self.take_ws()?;
        let rt = runtime()?;
        let stream = {
            let _guard = rt.enter();
            tokio::net::TcpStream::from_std(std_stream)
                .map_err(|e| err(Code::Runtime, format!("cannot take the socket over: {e}")))?
        };
        let head = head.to_vec();
        let mut response = t.response();
        append_pairs(&mut response.headers, &extra_headers);
        let answer = response_head(&response);
        rt.spawn(async move {
            let mut stream = stream;
            if stream.write_all(&answer).await.is_ok() {
                t.run_tcp(stream, head);
            }
        });
        Ok(true)
    }

    /// Runs the WebSocket over bytes crossing from JavaScript (after it wrote `response()`),
    /// with the bytes `head` read past the request.
    #[napi]
    pub fn stream(&self, head: Buffer) -> Result<NativeWsStream> {
        let t = self.take_ws()?;
        let rt = runtime()?;
        let _guard = rt.enter();
        let (core_end, host_end) = crate::crossing::pair(self.dispatcher.clone());
        t.run_io(core_end, head.to_vec());
        Ok(host_end)
    }
}

/// A response's status line and headers, as written on the wire.
fn response_head(r: &HttpResponse) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        r.status.as_u16(),
        r.status.canonical_reason().unwrap_or("")
    )
    .into_bytes();
    for (name, value) in &r.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}
