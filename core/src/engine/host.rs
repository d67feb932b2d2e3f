//! The host boundary: how any HTTP server serves Engine.IO. Every way of serving goes through it,
//! polysio's own hyper listener included, so the protocol rules exist once
//! ([`super::rules`]), and a host adapter only translates.
//!
//! A host turns each request to the Engine.IO path into an [`HttpRequest`] of plain values and
//! calls [`super::EngineServer::request`], which answers with a [`Reply`]:
//!
//! - [`Reply::Ready`]: send this response.
//! - [`Reply::ReadBody`]: a POST; read its body under [`BodyTicket::limit`] and give it to
//!   [`BodyTicket::finish`] for the response.
//! - [`Reply::Wait`]: a long-polling GET; await the [`PollTicket`] for the response. Dropping it
//!   cancels it (the client went away); the session then ends, as the reference ends a session
//!   whose pending GET was aborted.
//! - [`Reply::WebSocket`]: accept the WebSocket and hand it over with one of the `run_*` methods
//!   of [`WsTicket`], at the level the host has: the TCP socket itself, a byte stream (any
//!   `AsyncRead + AsyncWrite`: hyper's upgraded IO, a TLS stream), or messages, when the host
//!   does the WebSocket framing itself (ASGI servers, aiohttp).
//!
//! Heartbeats, the upgrade probe and its timers run inside the core on the server's runtime,
//! whatever the host: a host never drives a timer.
//!
//! ```no_run
//! use polysio::engine::host::{BodyError, HttpRequest, Reply};
//! # async fn serve_one(engine: polysio::engine::EngineServer, req: HttpRequest, body: Vec<u8>) {
//! let response = match engine.request(req) {
//!     Reply::Ready(r) => r,
//!     Reply::ReadBody(ticket) => {
//!         let body = if body.len() > ticket.limit() { Err(BodyError::TooLarge) } else { Ok(body.into()) };
//!         ticket.finish(body)
//!     }
//!     Reply::Wait(poll) => poll.await,
//!     Reply::WebSocket(ws) => {
//!         // Answer ws.response() (101), then e.g. ws.run_io(upgraded_stream, Vec::new()).
//!         ws.response()
//!     }
//! };
//! # let _ = response;
//! # }
//! ```

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use tokio::net::TcpStream;

use super::server::HandshakeError;
use super::socket::{CloseReason, EngineSocket};
use super::websocket::{self, Start};
use super::ws_io::WsIo;
use super::Handshake;

pub use super::websocket::{WsInbound, WsInput, WsOutbound};
pub use super::ws_io::HostIo;

/// An HTTP request to the Engine.IO path, as plain values.
#[derive(Clone, Debug)]
pub struct HttpRequest {
    /// The method.
    pub method: Method,
    /// The path, as the client sent it (before any prefix the host strips).
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    /// The request headers.
    pub headers: HeaderMap,
    /// The client's address.
    pub remote: Option<SocketAddr>,
    /// Whether the connection is secure (TLS).
    pub secure: bool,
}

impl HttpRequest {
    /// The request described by an `http` request head.
    pub fn from_parts(
        parts: &http::request::Parts,
        remote: Option<SocketAddr>,
        secure: bool,
    ) -> Self {
        HttpRequest {
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or("").to_owned(),
            headers: parts.headers.clone(),
            remote,
            secure,
        }
    }

    /// Whether it asks for a WebSocket (`Upgrade: websocket`).
    pub fn is_upgrade(&self) -> bool {
        self.headers
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
    }

    /// The request's URL: path and query.
    pub fn url(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }
}

/// An HTTP response, as plain values.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl HttpResponse {
    /// A response with no header.
    pub fn new(status: StatusCode, body: impl Into<Bytes>) -> Self {
        HttpResponse {
            status,
            headers: HeaderMap::new(),
            body: body.into(),
        }
    }

    pub(crate) fn with_type(mut self, content_type: &'static str) -> Self {
        self.headers
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        self
    }

    /// An `http` response with a full body.
    pub fn into_http(self) -> http::Response<http_body_util::Full<Bytes>> {
        let mut r = http::Response::new(http_body_util::Full::new(self.body));
        *r.status_mut() = self.status;
        *r.headers_mut() = self.headers;
        r
    }

    /// The handshake error answer: status 400 (403 for `Forbidden`) with the reference's JSON.
    pub fn handshake_error(code: HandshakeError, message: Option<&str>) -> Self {
        let status = if code == HandshakeError::Forbidden {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::BAD_REQUEST
        };
        let msg = message.filter(|m| !m.is_empty()).unwrap_or(code.message());
        let body = format!(
            "{{\"code\":{},\"message\":{}}}",
            code as u8,
            serde_json::Value::from(msg)
        );
        HttpResponse::new(status, body).with_type("application/json")
    }

    /// A refused WebSocket upgrade: a `400` with the message as text, as the reference answers
    /// (then it destroys the socket: `Connection: close`).
    pub fn upgrade_error(code: HandshakeError, message: Option<&str>) -> Self {
        let msg = message
            .filter(|m| !m.is_empty())
            .unwrap_or(code.message())
            .to_owned();
        let mut r = HttpResponse::new(StatusCode::BAD_REQUEST, msg).with_type("text/html");
        r.headers
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        r
    }
}

/// The answer to a request (see the module's documentation).
pub enum Reply {
    /// Send this response now.
    Ready(HttpResponse),
    /// Read the request body, then [`BodyTicket::finish`].
    ReadBody(BodyTicket),
    /// A long-polling GET: await the ticket (drop it when the client goes away).
    Wait(PollTicket),
    /// Accept the WebSocket and hand it over.
    WebSocket(WsTicket),
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Ready(r) => f.debug_tuple("Ready").field(r).finish(),
            Reply::ReadBody(_) => f.write_str("ReadBody"),
            Reply::Wait(_) => f.write_str("Wait"),
            Reply::WebSocket(_) => f.write_str("WebSocket"),
        }
    }
}

/// Why the host could not give a POST's whole body. Each ends the session with
/// `transport error`, as the reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyError {
    /// The body went over [`BodyTicket::limit`] (answered `413`).
    TooLarge,
    /// The body came in more than [`BodyTicket::max_chunks`] chunks (answered `413`).
    TooManyChunks,
    /// The body did not arrive within [`BodyTicket::timeout`] (answered `408`).
    TimedOut,
    /// The client went away or the body could not be read (answered `400`).
    Aborted,
}

/// A POST to a session whose body the host reads: await [`BodyTicket::ready`], read the body
/// within [`BodyTicket::timeout`] and [`BodyTicket::limit`], then [`BodyTicket::finish`].
/// Dropping it unfinished counts as [`BodyError::Aborted`].
pub struct BodyTicket {
    pub(crate) session: Option<EngineSocket>,
    pub(crate) limit: usize,
    pub(crate) max_chunks: usize,
    pub(crate) timeout: std::time::Duration,
    pub(crate) headers: HeaderMap,
}

impl BodyTicket {
    /// The most bytes the body may have (`maxHttpBufferSize`).
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The most chunks the body may come in (`maxBufferedChunks`).
    pub fn max_chunks(&self) -> usize {
        self.max_chunks
    }

    /// How long the body may take to arrive (`httpRequestBodyTimeout`), counted once
    /// [`BodyTicket::ready`] resolved.
    pub fn timeout(&self) -> std::time::Duration {
        self.timeout
    }

    /// Waits until the session may take more messages: the host reads the body only then, so
    /// a client whose messages a slow consumer still holds meets TCP backpressure.
    pub async fn ready(&self) {
        if let Some(s) = &self.session {
            s.ready().await
        }
    }

    /// Hands the body over; returns the response.
    pub fn finish(mut self, body: Result<Bytes, BodyError>) -> HttpResponse {
        let Some(session) = self.session.take() else {
            return HttpResponse::new(StatusCode::BAD_REQUEST, "");
        };
        session.0.post_busy.store(false, Ordering::Release);
        let body = match body {
            Ok(b) if b.len() > self.limit => Err(BodyError::TooLarge),
            b => b,
        };
        let mut r = match body {
            Ok(b) => {
                session.on_post(&b);
                HttpResponse::new(StatusCode::OK, "ok").with_type("text/html")
            }
            Err(e) => {
                session.close_with(CloseReason::TransportError);
                let status = match e {
                    BodyError::TooLarge | BodyError::TooManyChunks => StatusCode::PAYLOAD_TOO_LARGE,
                    BodyError::TimedOut => StatusCode::REQUEST_TIMEOUT,
                    BodyError::Aborted => StatusCode::BAD_REQUEST,
                };
                HttpResponse::new(status, "")
            }
        };
        r.headers.extend(std::mem::take(&mut self.headers));
        r
    }
}

impl Drop for BodyTicket {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            s.0.post_busy.store(false, Ordering::Release);
            s.close_with(CloseReason::TransportError);
        }
    }
}

/// A pending long-polling GET: resolves to its response when the session has packets for it
/// (or closes). Dropped before that, the GET is aborted and the session ends.
pub struct PollTicket(pub(crate) Pin<Box<dyn Future<Output = HttpResponse> + Send>>);

impl Future for PollTicket {
    type Output = HttpResponse;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<HttpResponse> {
        self.0.as_mut().poll(cx)
    }
}

/// A WebSocket the core accepted: answer the client (101: [`WsTicket::response`], or the host's
/// own accept with [`WsTicket::headers`]), then hand the connection over with one `run_*`
/// method. Dropped without that, nothing happens to any session.
pub struct WsTicket {
    pub(crate) start: Option<Start>,
    pub(crate) accept: Option<String>,
    pub(crate) headers: HeaderMap,
    pub(crate) params: WsParams,
    pub(crate) runtime: tokio::runtime::Handle,
}

/// What a WebSocket of the server needs to know.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WsParams {
    pub(crate) upgrade_timeout: Duration,
    pub(crate) max_message: usize,
    pub(crate) write_timeout: Duration,
}

impl WsTicket {
    /// Headers to add to the host's `101` (the session cookie, CORS).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The whole `101 Switching Protocols` answer, for hosts that write it themselves.
    pub fn response(&self) -> HttpResponse {
        let mut r = HttpResponse::new(StatusCode::SWITCHING_PROTOCOLS, Bytes::new());
        let h = &mut r.headers;
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Some(v) = self
            .accept
            .as_deref()
            .and_then(|a| HeaderValue::from_str(a).ok())
        {
            h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
        }
        h.extend(self.headers.clone());
        r
    }

    fn take(mut self) -> (Start, WsParams, tokio::runtime::Handle) {
        let start = self.start.take().unwrap_or(Start::Ignore);
        (start, self.params, self.runtime.clone())
    }

    /// Runs the WebSocket on a TCP stream the host gives up (after its `101`), with the bytes
    /// it read past the request. The fastest way: broadcasts write to the socket directly.
    pub fn run_tcp(self, stream: TcpStream, read_ahead: Vec<u8>) {
        self.run_ws_io(WsIo::from_tcp(stream), read_ahead)
    }

    /// Runs the WebSocket on any byte stream (a TLS stream, a host's upgraded connection),
    /// after the host's `101`, with the bytes it read past the request.
    pub fn run_io(self, io: impl HostIo, read_ahead: Vec<u8>) {
        self.run_ws_io(WsIo::from_io(io), read_ahead)
    }

    /// Runs the WebSocket on hyper's upgraded connection: on the TCP stream itself when hyper
    /// served a plain TCP connection (through hyper-util's `TokioIo`), else on its IO.
    pub fn run_upgraded(self, upgraded: hyper::upgrade::Upgraded) {
        let (io, read) = WsIo::from_upgraded(upgraded);
        self.run_ws_io(io, read)
    }

    fn run_ws_io(self, io: WsIo, read: Vec<u8>) {
        let (start, params, rt) = self.take();
        rt.spawn(websocket::run_stream(start, params, io, read));
    }

    /// For hosts that frame the WebSocket themselves (ASGI, aiohttp): after accepting it, give
    /// every message received to the [`WsInbound`] and send every batch the [`WsOutbound`]
    /// yields, until it yields `None` (then close the WebSocket).
    pub fn run_messages(self) -> (WsInbound, WsOutbound) {
        let (start, params, rt) = self.take();
        websocket::run_messages(start, params, &rt)
    }
}

impl Drop for WsTicket {
    fn drop(&mut self) {
        // An upgrade the host never ran lets the next one try.
        if let Some(Start::Upgrade(s)) = &self.start {
            s.0.upgrading.store(false, Ordering::Release);
        }
    }
}

/// The handshake of a new session from a request.
pub(crate) fn handshake_of(
    req: &HttpRequest,
    query: Vec<(String, String)>,
    issued: u64,
) -> Arc<Handshake> {
    Arc::new(Handshake {
        headers: own_headers(&req.headers),
        query,
        url: req.url(),
        address: req.remote,
        issued,
        secure: req.secure,
    })
}

/// A copy of `headers` owning its bytes: hyper's header values are slices of its 8 KiB read
/// buffer, which a plain clone would keep alive for the whole session.
fn own_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_bytes(value.as_bytes()) {
            out.append(name.clone(), v);
        }
    }
    out
}
