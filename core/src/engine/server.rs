//! The Engine.IO server: its sessions, and the answer to each request through the host
//! boundary ([`EngineServer::request`], see [`super::host`]), by the rules of [`super::rules`].

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};

use super::config::{CorsConfig, CorsOrigin, EngineConfig, TransportType};
use super::host::{
    handshake_of, BodyTicket, HttpRequest, HttpResponse, PollTicket, Reply, WsParams, WsTicket,
};
use super::packet::{encode_payload, Frame, PacketType};
use super::rules::{self, PostRefusal, Route, UpgradeCheck};
use super::socket::{CloseReason, EngineHandler, EngineSocket, SessionLimits, SessionOwner};
use super::websocket::Start;
use super::Handshake;

#[cfg(feature = "tls")]
pub use super::hyper_host::serve_tls_with;
pub use super::hyper_host::{serve_with, Body, Fallback};

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
    /// `max_handshakes_per_second`, when set.
    handshakes: Option<Mutex<rules::HandshakeRate>>,
    pub(crate) runtime: tokio::runtime::Handle,
    me: std::sync::Weak<ServerInner>,
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

impl SessionOwner for ServerInner {
    fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }

    fn session_closed(&self, session: &EngineSocket, linger: bool) {
        if !linger {
            self.remove_session(session);
            return;
        }
        // A client that does not come back for its close packet within pingTimeout is
        // forgotten.
        let (me, session) = (self.me.clone(), session.clone());
        let wait = self.config.ping_timeout;
        self.runtime.spawn(async move {
            tokio::time::sleep(wait).await;
            if let Some(server) = me.upgrade() {
                server.remove_session(&session);
            }
        });
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
            inner: Arc::new_cyclic(|me| ServerInner {
                handshakes: config
                    .max_handshakes_per_second
                    .map(|n| Mutex::new(rules::HandshakeRate::new(n))),
                config,
                handler,
                sessions: Mutex::new(HashMap::new()),
                runtime,
                me: me.clone(),
            }),
        }
    }

    /// The options.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The runtime the sessions' tasks run on.
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.inner.runtime
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

    /// The open session `sid`. One whose ping went unanswered past its deadline is closed now
    /// and is unknown, even if its heartbeat task has yet to notice.
    fn session(&self, sid: &str) -> Option<EngineSocket> {
        let s = self.inner.sessions.lock().ok()?.get(sid).cloned()?;
        if s.check_ping_timeout() && s.close_reason() == Some(CloseReason::PingTimeout) {
            return None;
        }
        Some(s)
    }

    /// Answers one request to the Engine.IO path: the host boundary every way of serving goes
    /// through (see [`super::host`]). The path is not checked here (see
    /// [`EngineServer::matches`]): hosts mounted under a prefix route by their own rules.
    pub fn request(&self, req: HttpRequest) -> Reply {
        let mut cors = HeaderMap::new();
        if let Some(c) = &self.inner.config.cors {
            apply_cors(c, &req.headers, &mut cors, req.method == Method::OPTIONS);
        }
        match self.route(req, &cors) {
            Reply::Ready(mut r) => {
                r.headers.extend(cors);
                Reply::Ready(r)
            }
            Reply::WebSocket(mut t) => {
                t.headers.extend(cors);
                Reply::WebSocket(t)
            }
            // Their CORS headers are on already.
            other => other,
        }
    }

    fn route(&self, req: HttpRequest, cors: &HeaderMap) -> Reply {
        let cfg = &self.inner.config;
        let query = parse_query(&req.query);
        let is_upgrade = req.is_upgrade();
        let err = |c: HandshakeError, m: Option<&str>| {
            Reply::Ready(if is_upgrade {
                HttpResponse::upgrade_error(c, m)
            } else {
                HttpResponse::handshake_error(c, m)
            })
        };
        let mut found = None;
        let route = rules::route(cfg, &req.method, &query, is_upgrade, |sid| {
            let s = self.session(sid)?;
            // A session its client closed lingers for its last GET only (see `close_with`).
            let polling_get = req.method == Method::GET && !is_upgrade;
            if !polling_get && s.close_reason() == Some(CloseReason::TransportClose) {
                return None;
            }
            let t = s.transport();
            found = Some(s);
            Some(t)
        });
        let session = found;
        match (route, session) {
            (Route::Refuse(code), _) => err(code, None),
            (Route::Preflight, _) => {
                let mut r = HttpResponse::new(StatusCode::NO_CONTENT, Bytes::new());
                if cfg.cors.is_none() {
                    r.headers.insert(
                        header::ACCESS_CONTROL_ALLOW_HEADERS,
                        HeaderValue::from_static("Content-Type"),
                    );
                    r.status = StatusCode::OK;
                }
                Reply::Ready(r)
            }
            (Route::OtherMethod, _) => Reply::Ready(HttpResponse::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                Bytes::new(),
            )),
            (Route::Poll(_), Some(s)) => self.poll(s, cors.clone()),
            (Route::Post(_), Some(s)) => self.post(&req, s, cors.clone()),
            (Route::Upgrade(_), Some(s)) => self.upgrade(&req, s),
            (Route::Poll(_) | Route::Post(_) | Route::Upgrade(_), None) => {
                err(HandshakeError::UnknownSid, None)
            }
            (Route::Open { transport, eio_ok }, _) => {
                if !self.handshake_allowed() {
                    let mut r = HttpResponse::new(StatusCode::SERVICE_UNAVAILABLE, Bytes::new());
                    r.headers
                        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                    return Reply::Ready(r);
                }
                let handshake = handshake_of(&req, query, now_ms());
                if let Some(allow) = &cfg.allow_request {
                    if let Err(m) = allow(&handshake) {
                        return err(HandshakeError::Forbidden, Some(&m));
                    }
                }
                if !eio_ok {
                    return err(HandshakeError::UnsupportedProtocolVersion, None);
                }
                if transport == TransportType::Websocket {
                    return self.websocket_handshake(&req, handshake);
                }
                let socket = self.open_session(new_sid(), handshake, TransportType::Polling);
                let open = self.open_packet(socket.sid(), TransportType::Polling);
                let mut r = HttpResponse::new(StatusCode::OK, encode_payload(&[open]))
                    .with_type("text/plain; charset=UTF-8");
                self.set_cookie(&mut r.headers, socket.sid());
                Reply::Ready(r)
            }
        }
    }

    /// Counts a handshake against `max_handshakes_per_second`.
    fn handshake_allowed(&self) -> bool {
        match &self.inner.handshakes {
            Some(rate) => rate
                .lock()
                .map(|mut r| r.allow(std::time::Instant::now()))
                .unwrap_or(true),
            None => true,
        }
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

    fn poll(&self, session: EngineSocket, cors: HeaderMap) -> Reply {
        let Ok(mut queued) = session.0.reader.clone().try_lock_owned() else {
            session.close_with(CloseReason::TransportError);
            return Reply::Ready(HttpResponse::new(StatusCode::BAD_REQUEST, Bytes::new()));
        };
        let inner = self.inner.clone();
        // Dropped with the ticket before it completes (the GET was aborted): the session ends.
        let mut guard = AbortGuard(Some(session.clone()));
        Reply::Wait(PollTicket(Box::pin(async move {
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
                let client_closed = session.close_reason() == Some(CloseReason::TransportClose);
                frames.push(Frame::text(rules::last_poll_packet(client_closed), ""));
                // A session closed while no GET was pending waited for this one.
                inner.remove_session(&session);
            }
            // Answered: not an aborted GET.
            guard.0.take();
            drop(queued);
            // Woken by the upgrade with nothing for it: the sid is the WebSocket's now, and this
            // GET is refused like one that arrives after the upgrade (`400`). Only a GET sent
            // after the probe waits here: the one pending at the probe was ended by a noop.
            // Without this, which of the client's `5` and its next GET the server read first
            // (two connections, two threads) would decide between 200 and 400.
            let moved = session.transport() == TransportType::Websocket && !session.is_closed();
            if moved && frames.iter().all(super::ws_io::is_noop) {
                let mut r = HttpResponse::handshake_error(HandshakeError::BadRequest, None);
                r.headers.extend(cors);
                return r;
            }
            let mut r = HttpResponse::new(StatusCode::OK, encode_payload(&frames))
                .with_type("text/plain; charset=UTF-8");
            r.headers.extend(cors);
            r
        })))
    }

    fn post(&self, req: &HttpRequest, session: EngineSocket, cors: HeaderMap) -> Reply {
        let max = self.inner.config.max_http_buffer_size;
        let declared = req
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let content_type = req.headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes());
        let busy = session.0.post_busy.swap(true, Ordering::AcqRel);
        let refusal = match rules::check_post(busy, content_type, declared, max) {
            Ok(()) => {
                return Reply::ReadBody(BodyTicket {
                    session: Some(session),
                    limit: max,
                    max_chunks: self.inner.config.max_buffered_chunks,
                    timeout: self.inner.config.http_request_body_timeout,
                    headers: cors,
                })
            }
            Err(r) => r,
        };
        if refusal != PostRefusal::Overlapping {
            session.0.post_busy.store(false, Ordering::Release);
        }
        // Each ends the session with `transport error`, as engine.io 6.6.13 (its transport's
        // "overlap from client", "invalid content" and "payload too large" errors).
        session.close_with(CloseReason::TransportError);
        let status = match refusal {
            PostRefusal::Overlapping | PostRefusal::Binary => StatusCode::BAD_REQUEST,
            PostRefusal::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        };
        let mut r = HttpResponse::new(status, Bytes::new());
        r.headers.extend(cors);
        Reply::Ready(r)
    }

    fn ws_ticket(&self, req: &HttpRequest, start: Start) -> Reply {
        let Some(key) = req.headers.get(header::SEC_WEBSOCKET_KEY) else {
            if let Start::Upgrade(s) = &start {
                s.0.upgrading.store(false, Ordering::Release);
            }
            return Reply::Ready(HttpResponse::upgrade_error(
                HandshakeError::BadRequest,
                None,
            ));
        };
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        let cfg = &self.inner.config;
        Reply::WebSocket(WsTicket {
            start: Some(start),
            accept: Some(accept),
            headers: HeaderMap::new(),
            params: WsParams {
                upgrade_timeout: cfg.upgrade_timeout,
                max_message: cfg.max_http_buffer_size,
                write_timeout: cfg.write_timeout,
            },
            runtime: self.inner.runtime.clone(),
        })
    }

    fn websocket_handshake(&self, req: &HttpRequest, handshake: Arc<Handshake>) -> Reply {
        let this = self.clone();
        let sid = new_sid();
        let sid2 = sid.clone();
        let open = Box::new(move || {
            let socket = this.open_session(sid2, handshake, TransportType::Websocket);
            let open = this.open_packet(socket.sid(), TransportType::Websocket);
            (socket, open)
        });
        let mut reply = self.ws_ticket(req, Start::Open(open));
        if let Reply::WebSocket(t) = &mut reply {
            self.set_cookie(&mut t.headers, &sid);
        }
        reply
    }

    fn set_cookie(&self, headers: &mut HeaderMap, sid: &str) {
        if let Some(c) = &self.inner.config.cookie {
            if let Ok(v) = HeaderValue::from_str(&c.header_value(sid)) {
                headers.insert(header::SET_COOKIE, v);
            }
        }
    }

    fn open_session(
        &self,
        sid: Arc<str>,
        handshake: Arc<Handshake>,
        t: TransportType,
    ) -> EngineSocket {
        let owner: Arc<dyn SessionOwner> = self.inner.clone();
        let cfg = &self.inner.config;
        let limits = SessionLimits {
            max_buffered_bytes: cfg.max_buffered_bytes,
            max_pending_messages: cfg.max_pending_messages,
        };
        let socket = EngineSocket::new(sid.clone(), handshake, t, Arc::downgrade(&owner), limits);
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

    fn upgrade(&self, req: &HttpRequest, session: EngineSocket) -> Reply {
        let upgrading = session.0.upgrading.load(Ordering::Acquire);
        let check = rules::check_upgrade(
            self.inner.config.allow_upgrades,
            session.transport(),
            upgrading,
        );
        let start = match check {
            UpgradeCheck::Refuse => {
                return Reply::Ready(HttpResponse::upgrade_error(
                    HandshakeError::BadRequest,
                    None,
                ))
            }
            UpgradeCheck::Ignore => Start::Ignore,
            // Another upgrade may have started since the check.
            UpgradeCheck::Probe if session.0.upgrading.swap(true, Ordering::AcqRel) => {
                Start::Ignore
            }
            UpgradeCheck::Probe => Start::Upgrade(session),
        };
        self.ws_ticket(req, start)
    }
}

/// Closes the session if a request is dropped before it completes (the client went away).
struct AbortGuard(Option<EngineSocket>);
impl Drop for AbortGuard {
    fn drop(&mut self) {
        if let Some(s) = self.0.take() {
            s.close_with(CloseReason::TransportError);
        }
    }
}
