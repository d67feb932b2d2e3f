//! Engine.IO server options, with the reference server's defaults.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::Handshake;

/// The two transports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransportType {
    /// HTTP long-polling.
    Polling,
    /// WebSocket.
    Websocket,
}

impl TransportType {
    /// The name used in the `transport` query parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportType::Polling => "polling",
            TransportType::Websocket => "websocket",
        }
    }
    /// Parses a `transport` query value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "polling" => Some(TransportType::Polling),
            "websocket" => Some(TransportType::Websocket),
            _ => None,
        }
    }
}

/// Which origins CORS allows.
#[derive(Clone, Debug, PartialEq)]
pub enum CorsOrigin {
    /// `*`.
    Any,
    /// Echo the request's `Origin` back (the `cors` package's `origin: true`).
    Mirror,
    /// Only these origins (echoed back when the request's origin is one of them).
    List(Vec<String>),
}

/// CORS settings, as the npm `cors` package used by engine.io.
#[derive(Clone, Debug, PartialEq)]
pub struct CorsConfig {
    /// Allowed origins.
    pub origin: CorsOrigin,
    /// Send `Access-Control-Allow-Credentials: true`.
    pub credentials: bool,
    /// Methods allowed in a preflight (default `GET,HEAD,PUT,PATCH,POST,DELETE`).
    pub methods: Vec<String>,
    /// Headers allowed in a preflight; empty means echo `Access-Control-Request-Headers`.
    pub allowed_headers: Vec<String>,
    /// `Access-Control-Expose-Headers`.
    pub exposed_headers: Vec<String>,
    /// `Access-Control-Max-Age` in seconds.
    pub max_age: Option<u64>,
}

impl Default for CorsConfig {
    fn default() -> Self {
        CorsConfig {
            origin: CorsOrigin::Any,
            credentials: false,
            methods: ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"]
                .map(String::from)
                .to_vec(),
            allowed_headers: Vec::new(),
            exposed_headers: Vec::new(),
            max_age: None,
        }
    }
}

/// The session cookie set on the handshake, for sticky load balancing (off by default).
#[derive(Clone, Debug, PartialEq)]
pub struct CookieConfig {
    /// Cookie name (default `io`).
    pub name: String,
    /// `Path` (default `/`).
    pub path: String,
    /// `HttpOnly` (default true).
    pub http_only: bool,
    /// `SameSite` (default `Lax`).
    pub same_site: Option<String>,
    /// `Secure`.
    pub secure: bool,
    /// `Max-Age` in seconds.
    pub max_age: Option<u64>,
}

impl Default for CookieConfig {
    fn default() -> Self {
        CookieConfig {
            name: "io".into(),
            path: "/".into(),
            http_only: true,
            same_site: Some("Lax".into()),
            secure: false,
            max_age: None,
        }
    }
}

impl CookieConfig {
    /// The `Set-Cookie` header value for a session id.
    pub fn header_value(&self, sid: &str) -> String {
        let mut s = format!("{}={}; Path={}", self.name, sid, self.path);
        if let Some(age) = self.max_age {
            s.push_str(&format!("; Max-Age={age}"));
        }
        if self.http_only {
            s.push_str("; HttpOnly");
        }
        if self.secure {
            s.push_str("; Secure");
        }
        if let Some(ss) = &self.same_site {
            s.push_str("; SameSite=");
            s.push_str(ss);
        }
        s
    }
}

/// Decides whether a handshake may go ahead: `Err(message)` refuses it with 403 and code 4
/// (`message` empty means "Forbidden").
pub type AllowRequest = Arc<dyn Fn(&Handshake) -> Result<(), String> + Send + Sync>;

/// Engine.IO server options. Defaults are the reference server's.
#[derive(Clone)]
pub struct EngineConfig {
    /// URL path the server answers on (`/engine.io/`; Socket.IO uses `/socket.io/`).
    pub path: String,
    /// Interval between server pings (25000 ms).
    pub ping_interval: Duration,
    /// How long to wait for a pong (20000 ms).
    pub ping_timeout: Duration,
    /// How long an upgrade may take (10000 ms).
    pub upgrade_timeout: Duration,
    /// Largest message / POST body in bytes (1e6).
    pub max_http_buffer_size: usize,
    /// Allowed transports (both).
    pub transports: Vec<TransportType>,
    /// Whether polling sessions may upgrade to WebSocket (true).
    pub allow_upgrades: bool,
    /// CORS (off).
    pub cors: Option<CorsConfig>,
    /// Session cookie (off).
    pub cookie: Option<CookieConfig>,
    /// Handshake filter (none).
    pub allow_request: Option<AllowRequest>,
    /// How long a long-polling POST may take to send its body (30000 ms, engine.io's
    /// `httpRequestBodyTimeout`): a slower one is answered 408 and its session closed with
    /// `transport error`.
    pub http_request_body_timeout: Duration,
    /// Most chunks a long-polling POST body may arrive in (10000, engine.io's
    /// `maxBufferedChunks`): a body in more is answered 413 and its session closed with
    /// `transport error`.
    pub max_buffered_chunks: usize,
    /// Most bytes of packets queued for one session and not yet taken by its transport (a
    /// polling client that does not GET, a WebSocket whose peer does not read), each packet
    /// counted as its length plus 64 (16 MiB). Past it the session closes with
    /// `transport error`, rather than buffering without bound. The reference has no such bound.
    pub max_buffered_bytes: usize,
    /// How long a write to a WebSocket may make no progress (30000 ms): a client that stops
    /// reading is disconnected with `transport error` (the reference's socket timeout).
    pub write_timeout: Duration,
    /// Most messages of one session handed to a slow consumer (a Python, Node or C event loop)
    /// and not yet handled (1024). Past it, polysio stops reading from that client until the
    /// consumer catches up, so the client feels TCP backpressure; nothing is dropped. Rust
    /// handlers run inline and never count.
    pub max_pending_messages: usize,
    /// Most new sessions per second (none): a handshake over the rate is answered 503.
    pub max_handshakes_per_second: Option<u32>,
    /// polysio's own listener's timeouts and connection cap (unused when mounted in a host).
    pub listener: ListenerConfig,
}

/// Options of polysio's own HTTP listener ([`super::EngineServer::serve`]); a host that mounts
/// polysio in its own server (axum, uvicorn, aiohttp) applies its own.
#[derive(Clone, Debug, PartialEq)]
pub struct ListenerConfig {
    /// How long a client has to send a complete request head, counted from when the server
    /// starts waiting for one, on a new connection as between requests (60000 ms, Node's
    /// `server.headersTimeout`). A connection that never sends a request is closed after it.
    pub headers_timeout: Duration,
    /// How long an idle connection is kept open after a response, waiting for another request
    /// (5000 ms, Node's `server.keepAliveTimeout`).
    pub keep_alive_timeout: Duration,
    /// Most concurrent TCP connections (none). Past it, a new connection is answered 503 and
    /// closed at once, before it can hold a descriptor for long.
    pub max_connections: Option<usize>,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            headers_timeout: Duration::from_millis(60_000),
            keep_alive_timeout: Duration::from_millis(5_000),
            max_connections: None,
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            path: "/engine.io/".into(),
            ping_interval: Duration::from_millis(25000),
            ping_timeout: Duration::from_millis(20000),
            upgrade_timeout: Duration::from_millis(10000),
            max_http_buffer_size: 1_000_000,
            transports: vec![TransportType::Polling, TransportType::Websocket],
            allow_upgrades: true,
            cors: None,
            cookie: None,
            allow_request: None,
            http_request_body_timeout: Duration::from_millis(30_000),
            max_buffered_chunks: 10_000,
            max_buffered_bytes: 16 * 1024 * 1024,
            write_timeout: Duration::from_millis(30_000),
            max_pending_messages: 1024,
            max_handshakes_per_second: None,
            listener: ListenerConfig::default(),
        }
    }
}

impl fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineConfig")
            .field("path", &self.path)
            .field("ping_interval", &self.ping_interval)
            .field("ping_timeout", &self.ping_timeout)
            .field("upgrade_timeout", &self.upgrade_timeout)
            .field("max_http_buffer_size", &self.max_http_buffer_size)
            .field("transports", &self.transports)
            .field("allow_upgrades", &self.allow_upgrades)
            .field("cors", &self.cors)
            .field("cookie", &self.cookie)
            .field("allow_request", &self.allow_request.is_some())
            .field("http_request_body_timeout", &self.http_request_body_timeout)
            .field("max_buffered_chunks", &self.max_buffered_chunks)
            .field("max_buffered_bytes", &self.max_buffered_bytes)
            .field("write_timeout", &self.write_timeout)
            .field("max_pending_messages", &self.max_pending_messages)
            .field("max_handshakes_per_second", &self.max_handshakes_per_second)
            .field("listener", &self.listener)
            .finish()
    }
}
