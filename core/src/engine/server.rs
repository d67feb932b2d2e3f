//! The Engine.IO server over hyper: handshake, long-polling, WebSocket and the upgrade.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use futures_util::{FutureExt, SinkExt, StreamExt};
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::WebSocketStream;

use super::config::{CorsConfig, CorsOrigin, EngineConfig, TransportType};
use super::packet::{self, encode_payload, Frame, PacketType};
use super::socket::{CloseReason, EngineHandler, EngineSocket, T_WEBSOCKET};
use super::ws_io::{is_noop, WsIo};
use super::Handshake;

/// Initial size of a WebSocket connection's read buffer (tungstenite's; it grows for larger
/// messages). Every connection holds one, idle or not, so it is small: tungstenite reads in steps
/// of this size, served from a per-thread read buffer (see `ws_io`), not one system call each.
const WS_READ_BUFFER: usize = 512;

/// The response body type of the server.
pub type Body = Full<Bytes>;

/// Handles requests outside the Engine.IO path (e.g. to serve a web page).
pub type Fallback = Arc<dyn Fn(&Request<Incoming>) -> Option<Response<Body>> + Send + Sync>;

/// The handshake error codes and messages of the reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeError {
    /// 0 Transport unknown.
    UnknownTransport = 0,
    /// 1 Session ID unknown.
    UnknownSid = 1,
    /// 2 Bad handshake method.
    BadHandshakeMethod = 2,
    /// 3 Bad request.
    BadRequest = 3,
    /// 4 Forbidden.
    Forbidden = 4,
    /// 5 Unsupported protocol version.
    UnsupportedProtocolVersion = 5,
}

impl HandshakeError {
    /// The reference's message.
    pub fn message(self) -> &'static str {
        match self {
            HandshakeError::UnknownTransport => "Transport unknown",
            HandshakeError::UnknownSid => "Session ID unknown",
            HandshakeError::BadHandshakeMethod => "Bad handshake method",
            HandshakeError::BadRequest => "Bad request",
            HandshakeError::Forbidden => "Forbidden",
            HandshakeError::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }
}

pub(crate) struct ServerInner {
    pub(crate) config: EngineConfig,
    handler: Arc<dyn EngineHandler>,
    sessions: Mutex<HashMap<Arc<str>, EngineSocket>>,
    pub(crate) runtime: tokio::runtime::Handle,
}

impl ServerInner {
    pub(crate) fn remove_session(&self, s: &EngineSocket) {
        if let Ok(mut m) = self.sessions.lock() {
            if m.get(s.sid()).is_some_and(|x| x.ptr_eq(s)) {
                m.remove(s.sid());
            }
        }
    }
}

/// An Engine.IO server. Clone it freely; all clones share the sessions.
///
/// Must be created inside a tokio runtime (it remembers the runtime's handle).
#[derive(Clone)]
pub struct EngineServer {
    inner: Arc<ServerInner>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn new_sid() -> Arc<str> {
    let bytes: [u8; 15] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(bytes)
        .into()
}

/// Decodes `a=b&c=d` (percent-decoding, `+` as space).
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    fn dec(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => {
                    match u8::from_str_radix(
                        std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"),
                        16,
                    ) {
                        Ok(v) => {
                            out.push(v);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    q.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (dec(k), dec(v)),
            None => (dec(kv), String::new()),
        })
        .collect()
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

fn json_error(code: HandshakeError, message: Option<&str>) -> Response<Body> {
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
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn status_only(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

/// A raw `400` for a refused WebSocket upgrade, as the reference answers (text body).
fn upgrade_error(code: HandshakeError, message: Option<&str>) -> Response<Body> {
    let msg = message
        .filter(|m| !m.is_empty())
        .unwrap_or(code.message())
        .to_owned();
    let mut r = Response::new(Full::new(Bytes::from(msg)));
    *r.status_mut() = StatusCode::BAD_REQUEST;
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    r
}

fn apply_cors(cors: &CorsConfig, req_headers: &HeaderMap, out: &mut HeaderMap, preflight: bool) {
    let origin = req_headers.get(header::ORIGIN);
    let allow = match &cors.origin {
        CorsOrigin::Any => Some(HeaderValue::from_static("*")),
        CorsOrigin::Mirror => origin.cloned(),
        CorsOrigin::List(list) => origin
            .filter(|o| o.to_str().is_ok_and(|o| list.iter().any(|x| x == o)))
            .cloned(),
    };
    if !matches!(cors.origin, CorsOrigin::Any) {
        out.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    if let Some(a) = allow {
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, a);
    }
    if cors.credentials {
        out.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    if !cors.exposed_headers.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&cors.exposed_headers.join(",")) {
            out.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, v);
        }
    }
    if preflight {
        if let Ok(v) = HeaderValue::from_str(&cors.methods.join(",")) {
            out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v);
        }
        if cors.allowed_headers.is_empty() {
            if let Some(h) = req_headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
                out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, h.clone());
                out.append(
                    header::VARY,
                    HeaderValue::from_static("Access-Control-Request-Headers"),
                );
            }
        } else if let Ok(v) = HeaderValue::from_str(&cors.allowed_headers.join(",")) {
            out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
        }
        if let Some(age) = cors.max_age {
            out.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age));
        }
    }
}

fn text_response(body: Bytes) -> Response<Body> {
    let mut r = Response::new(Full::new(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    r
}

/// Closes the session if a request is dropped before it completes (the client went away).
struct AbortGuard<'a>(Option<&'a EngineSocket>);
impl Drop for AbortGuard<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.0 {
            s.close_with(CloseReason::TransportError);
        }
    }
}

impl EngineServer {
    /// A server with `config` whose sessions are handled by `handler`.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn new(config: EngineConfig, handler: Arc<dyn EngineHandler>) -> Self {
        Self::with_runtime(config, handler, tokio::runtime::Handle::current())
    }

    /// Like [`EngineServer::new`], on the given runtime.
    pub fn with_runtime(
        config: EngineConfig,
        handler: Arc<dyn EngineHandler>,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        EngineServer {
            inner: Arc::new(ServerInner {
                config,
                handler,
                sessions: Mutex::new(HashMap::new()),
                runtime,
            }),
        }
    }

    /// The options.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The open sessions.
    pub fn sessions(&self) -> Vec<EngineSocket> {
        self.inner
            .sessions
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Number of open sessions.
    pub fn clients_count(&self) -> usize {
        self.inner.sessions.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Closes every session with `reason`.
    pub fn close_all(&self, reason: CloseReason) {
        for s in self.sessions() {
            s.close_with(reason);
            self.inner.remove_session(&s);
        }
    }

    /// True if `path` is served by this server.
    pub fn matches(&self, path: &str) -> bool {
        let p = self.inner.config.path.trim_end_matches('/');
        path == p
            || path
                .strip_prefix(p)
                .is_some_and(|rest| rest.starts_with('/'))
    }

    /// Serves one HTTP request addressed to the Engine.IO path.
    pub async fn handle(
        &self,
        req: Request<Incoming>,
        remote: Option<SocketAddr>,
    ) -> Response<Body> {
        let cfg = &self.inner.config;
        let query = parse_query(req.uri().query().unwrap_or(""));
        let is_upgrade = req
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        let mut cors_headers = HeaderMap::new();
        if let Some(cors) = &cfg.cors {
            let preflight = req.method() == Method::OPTIONS;
            apply_cors(cors, req.headers(), &mut cors_headers, preflight);
        }
        let mut resp = self.route(req, &query, is_upgrade, remote).await;
        resp.headers_mut().extend(cors_headers);
        resp
    }

    async fn route(
        &self,
        mut req: Request<Incoming>,
        query: &[(String, String)],
        is_upgrade: bool,
        remote: Option<SocketAddr>,
    ) -> Response<Body> {
        let cfg = &self.inner.config;
        let q = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let err = |c: HandshakeError, m: Option<&str>| {
            if is_upgrade {
                upgrade_error(c, m)
            } else {
                json_error(c, m)
            }
        };
        // Checks in the reference's order: transport, session, method, then protocol version.
        let transport = match q("transport").and_then(TransportType::parse) {
            Some(t) if cfg.transports.contains(&t) => t,
            _ => return err(HandshakeError::UnknownTransport, None),
        };
        if req.method() == Method::OPTIONS {
            let mut r = status_only(StatusCode::NO_CONTENT);
            if cfg.cors.is_none() {
                r.headers_mut().insert(
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    HeaderValue::from_static("Content-Type"),
                );
                *r.status_mut() = StatusCode::OK;
            }
            return r;
        }
        if let Some(sid) = q("sid").filter(|s| !s.is_empty()) {
            let session = self
                .inner
                .sessions
                .lock()
                .ok()
                .and_then(|m| m.get(sid).cloned());
            let Some(session) = session else {
                return err(HandshakeError::UnknownSid, None);
            };
            if q("EIO") != Some("4") {
                return err(HandshakeError::BadRequest, None);
            }
            if is_upgrade && transport == TransportType::Websocket {
                return self.upgrade(&mut req, session);
            }
            if session.transport() != transport {
                return err(HandshakeError::BadRequest, None);
            }
            return match *req.method() {
                Method::GET => self.poll(session).await,
                Method::POST => self.post(req, session).await,
                _ => status_only(StatusCode::INTERNAL_SERVER_ERROR),
            };
        }
        if req.method() != Method::GET {
            return err(HandshakeError::BadHandshakeMethod, None);
        }
        if transport == TransportType::Websocket && !is_upgrade {
            return err(HandshakeError::BadRequest, None);
        }
        let handshake = Arc::new(Handshake {
            headers: own_headers(req.headers()),
            query: query.to_vec(),
            url: req.uri().to_string(),
            address: remote,
            issued: now_ms(),
            secure: false,
        });
        if let Some(allow) = &cfg.allow_request {
            if let Err(m) = allow(&handshake) {
                return if is_upgrade {
                    upgrade_error(HandshakeError::Forbidden, Some(&m))
                } else {
                    json_error(HandshakeError::Forbidden, Some(&m))
                };
            }
        }
        if q("EIO") != Some("4") {
            return err(HandshakeError::UnsupportedProtocolVersion, None);
        }
        if transport == TransportType::Websocket {
            return self.websocket_handshake(&mut req, handshake);
        }
        let socket = self.open_session(new_sid(), handshake, TransportType::Polling);
        let open = self.open_packet(socket.sid(), TransportType::Polling);
        let mut r = text_response(encode_payload(&[open]));
        self.set_cookie(&mut r, socket.sid());
        r
    }

    fn open_packet(&self, sid: &str, transport: TransportType) -> Frame {
        let cfg = &self.inner.config;
        let upgrades = if transport == TransportType::Polling
            && cfg.allow_upgrades
            && cfg.transports.contains(&TransportType::Websocket)
        {
            "[\"websocket\"]"
        } else {
            "[]"
        };
        Frame::text(
            PacketType::Open,
            &format!(
                "{{\"sid\":\"{sid}\",\"upgrades\":{upgrades},\"pingInterval\":{},\"pingTimeout\":{},\"maxPayload\":{}}}",
                cfg.ping_interval.as_millis(),
                cfg.ping_timeout.as_millis(),
                cfg.max_http_buffer_size
            ),
        )
    }

    async fn poll(&self, session: EngineSocket) -> Response<Body> {
        let Ok(mut queued) = session.0.reader.try_lock() else {
            session.close_with(CloseReason::TransportError);
            return status_only(StatusCode::BAD_REQUEST);
        };
        let guard = AbortGuard(Some(&session));
        let closed = session.0.close_notify.notified();
        if !session.is_closed() && !session.0.outbox.take(&mut queued) {
            tokio::select! {
                _ = session.0.outbox.take_wait(&mut queued) => {}
                _ = closed => {}
            }
        }
        session.0.outbox.take(&mut queued);
        let mut frames: Vec<Frame> = queued.drain(..).collect();
        if session.is_closed() {
            let kind = if session.close_reason() == Some(CloseReason::TransportClose) {
                PacketType::Noop
            } else {
                PacketType::Close
            };
            frames.push(Frame::text(kind, ""));
            // A session closed while no GET was pending waited for this one.
            self.inner.remove_session(&session);
        }
        std::mem::forget(guard);
        drop(queued);
        text_response(encode_payload(&frames))
    }

    async fn post(&self, req: Request<Incoming>, session: EngineSocket) -> Response<Body> {
        if session.0.post_busy.swap(true, Ordering::AcqRel) {
            session.close_with(CloseReason::TransportError);
            return status_only(StatusCode::BAD_REQUEST);
        }
        struct Busy<'a>(&'a EngineSocket);
        impl Drop for Busy<'_> {
            fn drop(&mut self) {
                self.0 .0.post_busy.store(false, Ordering::Release);
            }
        }
        let _busy = Busy(&session);
        if req
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v == "application/octet-stream")
        {
            session.close_with(CloseReason::ParseError);
            return status_only(StatusCode::BAD_REQUEST);
        }
        let max = self.inner.config.max_http_buffer_size;
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            return status_only(StatusCode::PAYLOAD_TOO_LARGE);
        }
        let guard = AbortGuard(Some(&session));
        let collected = Limited::new(req.into_body(), max).collect().await;
        std::mem::forget(guard);
        let bytes = match collected {
            Ok(c) => c.to_bytes(),
            Err(e)
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                return status_only(StatusCode::PAYLOAD_TOO_LARGE)
            }
            Err(_) => {
                session.close_with(CloseReason::TransportError);
                return status_only(StatusCode::BAD_REQUEST);
            }
        };
        let decoded = std::str::from_utf8(&bytes)
            .map_err(|_| ())
            .and_then(|s| packet::decode_payload(s).map_err(|_| ()));
        match decoded {
            Ok(packets) => {
                for p in packets {
                    session.on_packet(p);
                }
            }
            Err(()) => session.close_with(CloseReason::ParseError),
        }
        let mut r = Response::new(Full::new(Bytes::from_static(b"ok")));
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
        r
    }

    fn ws_config(&self) -> WebSocketConfig {
        let max = self.inner.config.max_http_buffer_size;
        // tungstenite zero-fills the free part of its read buffer each time the stream is polled
        // for reading, which every wake-up of the connection task does: its 128 KiB default made
        // each broadcast delivery write 128 KiB of zeros and every connection keep them resident.
        WebSocketConfig::default()
            .read_buffer_size(WS_READ_BUFFER)
            .max_message_size(Some(max))
            .max_frame_size(Some(max))
    }

    /// Answers a WebSocket upgrade request with 101 and runs `f` on the WebSocket once upgraded.
    fn accept_ws<F, Fut>(&self, req: &mut Request<Incoming>, f: F) -> Response<Body>
    where
        F: FnOnce(WebSocketStream<WsIo>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY) else {
            return upgrade_error(HandshakeError::BadRequest, None);
        };
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
        let on_upgrade = hyper::upgrade::on(req);
        let config = self.ws_config();
        self.inner.runtime.spawn(async move {
            if let Ok(upgraded) = on_upgrade.await {
                let (io, read) = WsIo::new(upgraded);
                let ws = if read.is_empty() {
                    WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await
                } else {
                    WebSocketStream::from_partially_read(io, read, Role::Server, Some(config)).await
                };
                f(ws).await;
            }
        });
        let mut r = status_only(StatusCode::SWITCHING_PROTOCOLS);
        let h = r.headers_mut();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(v) = HeaderValue::from_str(&accept) {
            h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
        }
        r
    }

    fn websocket_handshake(
        &self,
        req: &mut Request<Incoming>,
        handshake: Arc<Handshake>,
    ) -> Response<Body> {
        let this = self.clone();
        let sid = new_sid();
        let sid2 = sid.clone();
        let mut r = self.accept_ws(req, move |ws| async move {
            let socket = this.open_session(sid2, handshake, TransportType::Websocket);
            let open = this.open_packet(socket.sid(), TransportType::Websocket);
            run_websocket(socket, ws, Some(open)).await;
        });
        self.set_cookie(&mut r, &sid);
        r
    }

    fn set_cookie(&self, r: &mut Response<Body>, sid: &str) {
        if let Some(c) = &self.inner.config.cookie {
            if let Ok(v) = HeaderValue::from_str(&c.header_value(sid)) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
        }
    }

    fn open_session(
        &self,
        sid: Arc<str>,
        handshake: Arc<Handshake>,
        t: TransportType,
    ) -> EngineSocket {
        let socket = EngineSocket::new(sid.clone(), handshake, t, Arc::downgrade(&self.inner));
        if let Ok(mut m) = self.inner.sessions.lock() {
            m.insert(sid, socket.clone());
        }
        let conn = self.inner.handler.on_open(&socket);
        if let Ok(mut c) = socket.0.conn.lock() {
            *c = Some(conn);
        }
        let cfg = &self.inner.config;
        self.inner.runtime.spawn(
            socket
                .clone()
                .heartbeat(cfg.ping_interval, cfg.ping_timeout),
        );
        socket
    }

    fn upgrade(&self, req: &mut Request<Incoming>, session: EngineSocket) -> Response<Body> {
        let cfg = &self.inner.config;
        if !cfg.allow_upgrades
            || session.transport() != TransportType::Polling
            || session.0.upgrading.swap(true, Ordering::AcqRel)
        {
            return upgrade_error(HandshakeError::BadRequest, None);
        }
        let timeout = cfg.upgrade_timeout;
        self.accept_ws(req, move |mut ws| async move {
            let probed = tokio::time::timeout(timeout, async {
                // Once probed, a noop every 100 ms ends whichever poll the client has pending,
                // so it can pause polling and send the upgrade packet (as the reference does:
                // a single noop may meet a poll the client issued just before it paused).
                let mut flush: Option<tokio::time::Interval> = None;
                loop {
                    let tick = async {
                        match flush.as_mut() {
                            Some(i) => i.tick().await,
                            None => std::future::pending().await,
                        }
                    };
                    let msg = tokio::select! {
                        m = ws.next() => m,
                        _ = tick => {
                            if session.poll_pending() {
                                let _ = session.send(Frame::text(PacketType::Noop, ""));
                            }
                            continue;
                        }
                    };
                    match msg {
                        Some(Ok(WsMessage::Text(t))) if t.as_str() == "2probe" => {
                            if ws.send(WsMessage::text("3probe")).await.is_err() {
                                return false;
                            }
                            flush = Some(tokio::time::interval(Duration::from_millis(100)));
                        }
                        Some(Ok(WsMessage::Text(t))) if t.as_str() == "5" => return true,
                        Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
                        _ => return false,
                    }
                }
            })
            .await;
            if probed != Ok(true) || session.is_closed() {
                session.0.upgrading.store(false, Ordering::Release);
                let _ = ws.close(None).await;
                return;
            }
            session.0.transport.store(T_WEBSOCKET, Ordering::Release);
            // A poll still pending holds the queue: wake it (the WebSocket writer skips noops).
            let _ = session.send(Frame::text(PacketType::Noop, ""));
            run_websocket(session, ws, None).await;
        })
    }

    /// Accepts connections on `listener` until `shutdown` resolves; requests outside the path go
    /// to `fallback` (404 without one).
    pub async fn serve(
        &self,
        listener: TcpListener,
        fallback: Option<Fallback>,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) {
        let me = self.clone();
        serve_with(listener, shutdown, move |req, remote| {
            let this = me.clone();
            let fallback = fallback.clone();
            async move {
                if this.matches(req.uri().path()) {
                    this.handle(req, Some(remote)).await
                } else {
                    fallback
                        .and_then(|f| f(&req))
                        .unwrap_or_else(|| status_only(StatusCode::NOT_FOUND))
                }
            }
        })
        .await
    }
}

/// The accept loop shared by the Engine.IO and Socket.IO servers.
pub async fn serve_with<F, Fut>(
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
    f: F,
) where
    F: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            _ = &mut shutdown => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let f = f.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let f = f.clone();
                async move { Ok::<_, Infallible>(f(req, remote).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades()
                .await;
        });
    }
}

/// Runs a WebSocket session: reads packets inline, writes queued frames, closes on errors.
///
/// On a TCP stream, flushes on other tasks may write queued frames too (see `outbox`): the task
/// writes only while it holds the outbox's writing token, and so does tungstenite (a pong or the
/// close frame it queued goes out with the task's next write).
async fn run_websocket(session: EngineSocket, mut ws: WebSocketStream<WsIo>, first: Option<Frame>) {
    if let Some(f) = first {
        if ws.send(to_ws(f)).await.is_err() {
            session.close_with(CloseReason::TransportError);
            return;
        }
    }
    let mut queued = session.0.reader.lock().await;
    let outbox = &session.0.outbox;
    if let Some(tcp) = ws.get_ref().tcp() {
        ws.get_mut().tungstenite_writes = false;
        outbox.set_direct(Some(&tcp));
    }
    // Bytes of the first frame of `queued` already written (by a flush that stopped in it).
    let mut offset = 0;
    // Whether the WebSocket reader may hold messages already: at first (the upgrade probe or
    // hyper may have read past what they handled), and when the last batch was cut short.
    let mut more = true;
    // tungstenite has a reply of its own to send (a pong).
    let mut pong = false;
    // `close_with` wakes this loop through the outbox.
    while !session.is_closed() {
        tokio::select! {
            biased;
            m = async {
                if !more {
                    ws.get_ref().read_ready().await;
                }
                ws.next().await
            } => {
                // Held while the messages are handled, so the replies they queue do not wake
                // this task again: they are written after the batch. While a flush writes, it
                // leaves what it did not write (and the wake-up) to us.
                let held = outbox.try_acquire(&mut queued, &mut offset);
                pong |= on_ws_message(&session, m);
                // Handle what has already arrived, then send every reply in one write.
                more = false;
                for i in 1.. {
                    if session.is_closed() {
                        break;
                    }
                    if i == READ_BATCH {
                        more = true;
                        break;
                    }
                    match ws.next().now_or_never() {
                        Some(m) => pong |= on_ws_message(&session, m),
                        None => break,
                    }
                }
                if held
                    && write_held(&mut ws, &session, &mut queued, &mut offset, &mut pong)
                        .await
                        .is_err()
                {
                    session.close_with(CloseReason::TransportError);
                }
            }
            got = std::future::poll_fn(|cx| outbox.poll_acquire(cx, &mut queued, &mut offset, pong)) => {
                if got
                    && write_held(&mut ws, &session, &mut queued, &mut offset, &mut pong)
                        .await
                        .is_err()
                {
                    session.close_with(CloseReason::TransportError);
                }
            }
        }
    }
    // Flush what was queued before the close, then close the WebSocket. Once the task holds
    // the token and the stream is withdrawn, no flush writes to it any more.
    while !std::future::poll_fn(|cx| outbox.poll_acquire(cx, &mut queued, &mut offset, true)).await
    {
    }
    outbox.set_direct(None);
    ws.get_mut().tungstenite_writes = true;
    if write_frames_ws(&mut ws, &mut queued, &mut offset)
        .await
        .is_ok()
    {
        let _ = ws.close(None).await;
    }
}

fn to_ws(f: Frame) -> WsMessage {
    match f {
        Frame::Text(t) => WsMessage::Text(t),
        Frame::Binary(b) => WsMessage::Binary(b),
    }
}

/// Messages read from a WebSocket before the replies they caused are written.
const READ_BATCH: usize = 64;

/// Handles one WebSocket read; true for a ping (tungstenite queued the pong).
fn on_ws_message(session: &EngineSocket, m: Option<Result<WsMessage, tungstenite::Error>>) -> bool {
    match m {
        Some(Ok(WsMessage::Text(t))) => match packet::decode_text(&t) {
            Ok(p) => session.on_packet(p),
            Err(_) => session.close_with(CloseReason::ParseError),
        },
        Some(Ok(WsMessage::Binary(b))) => session.on_packet(packet::Packet::Binary(b)),
        Some(Ok(WsMessage::Ping(_))) => return true,
        Some(Ok(WsMessage::Pong(_) | WsMessage::Frame(_))) => {}
        Some(Ok(WsMessage::Close(_))) | None => session.close_with(CloseReason::TransportClose),
        Some(Err(_)) => session.close_with(CloseReason::TransportError),
    }
    false
}

/// Writes every queued frame while the task holds the writing token, then gives it back:
/// tungstenite's own output first (a pong), then the frames in vectored writes straight from
/// their buffers. On an error the task keeps the token (the session closes).
async fn write_held(
    ws: &mut WebSocketStream<WsIo>,
    session: &EngineSocket,
    queued: &mut VecDeque<Frame>,
    offset: &mut usize,
    pong: &mut bool,
) -> Result<(), tungstenite::Error> {
    loop {
        if std::mem::take(pong) {
            let before = ws.get_ref().tungstenite_writes;
            ws.get_mut().tungstenite_writes = true;
            let r = ws.flush().await;
            ws.get_mut().tungstenite_writes = before;
            r?;
        }
        write_frames_ws(ws, queued, offset).await?;
        if !session.0.outbox.release(queued) {
            return Ok(());
        }
    }
}

/// Writes `queued` (its first frame from `offset`).
async fn write_frames_ws(
    ws: &mut WebSocketStream<WsIo>,
    queued: &mut VecDeque<Frame>,
    offset: &mut usize,
) -> Result<(), tungstenite::Error> {
    if !tokio::io::AsyncWrite::is_write_vectored(ws.get_ref()) {
        // Not a TCP stream, so no flush ever stopped in a frame: `offset` is 0.
        while let Some(f) = queued.pop_front() {
            if !is_noop(&f) {
                ws.feed(to_ws(f)).await?;
            }
        }
        return ws.flush().await;
    }
    let io = ws.get_mut();
    std::future::poll_fn(|cx| io.poll_write_frames(cx, queued, offset)).await?;
    Ok(())
}
