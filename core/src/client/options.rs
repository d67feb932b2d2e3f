//! Client options, named like socket.io-client's (in snake_case), and the builder.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use super::transport::{encode_component, Endpoint, TransportKind};
use super::{Manager, Socket};
use crate::engine::gate::Gate;
use crate::error::{Error, Result};
use crate::value::Value;

/// The `auth` payload sent with each namespace CONNECT.
///
/// ```
/// use polysio::client::Auth;
/// use polysio::Value;
/// let fixed = Auth::from(Value::from(serde_json::json!({"token": "abc"})));
/// let dynamic = Auth::callback(|| Value::from(serde_json::json!({"ts": 1})));
/// # let _ = (fixed, dynamic);
/// ```
#[derive(Clone, Default)]
pub enum Auth {
    /// No payload (the server sees `{}`).
    #[default]
    None,
    /// A fixed payload; must be a map to reach the server's `socket.handshake.auth`.
    Value(Value),
    /// Evaluated at each (re)connection of the namespace.
    Callback(Arc<dyn Fn() -> Value + Send + Sync>),
}

impl Auth {
    /// An auth payload computed at each (re)connection.
    pub fn callback(f: impl Fn() -> Value + Send + Sync + 'static) -> Auth {
        Auth::Callback(Arc::new(f))
    }

    pub(crate) fn evaluate(&self) -> Option<Value> {
        match self {
            Auth::None => None,
            Auth::Value(v) => Some(v.clone()),
            Auth::Callback(f) => {
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f())) {
                    Ok(v) => Some(v),
                    Err(_) => {
                        tracing::error!("auth callback panicked");
                        None
                    }
                }
            }
        }
    }
}

impl From<Value> for Auth {
    fn from(v: Value) -> Self {
        Auth::Value(v)
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Value(v) => f.debug_tuple("Value").field(v).finish(),
            Auth::Callback(_) => f.write_str("Callback(..)"),
        }
    }
}

/// TLS options of a client (for `https://` and `wss://` URLs; feature `tls`): the system's
/// trusted roots plus `ca_pem`, an optional client certificate (mutual TLS), and a switch that
/// turns verification off for development.
///
/// ```
/// use polysio::client::TlsOptions;
/// let dev = TlsOptions { danger_accept_invalid_certs: true, ..TlsOptions::default() };
/// # let _ = dev;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// CA certificates (PEM, one or more) trusted besides the system's roots: a private CA.
    pub ca_pem: Option<Vec<u8>>,
    /// The client's certificate chain (PEM), for servers that ask for one (mutual TLS); with
    /// `client_key_pem`.
    pub client_cert_pem: Option<Vec<u8>>,
    /// The client certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub client_key_pem: Option<Vec<u8>>,
    /// Accepts any server certificate (expired, self-signed, for another name): the traffic is
    /// encrypted, but to whoever answers. For development only (socket.io-client's
    /// `rejectUnauthorized: false`, python-socketio's `ssl_verify=False`). Default false.
    pub danger_accept_invalid_certs: bool,
}

/// How a client reaches its server: directly, or through an HTTP proxy that tunnels with
/// `CONNECT` (every transport: polling, WebSocket and the upgrade; TLS to the server runs
/// inside the tunnel).
///
/// ```
/// use polysio::client::Proxy;
/// let p = Proxy::Url("http://user:secret@proxy.internal:3128".into());
/// # let _ = p;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Proxy {
    /// The proxy the environment names, as curl reads it: `HTTPS_PROXY` for `https://` and
    /// `wss://` servers, `HTTP_PROXY` for `http://` and `ws://` ones, `ALL_PROXY` for both
    /// (lower-case names too), except for the hosts of `NO_PROXY`; never for a loopback
    /// address (`localhost`, `127.0.0.0/8`, `::1`). The default.
    #[default]
    Environment,
    /// No proxy, whatever the environment says.
    Direct,
    /// This proxy for every server: `http://[user:password@]host:port`.
    Url(String),
}

/// Options of a client [`Manager`] (one Engine.IO connection), with socket.io-client's defaults.
///
/// ```
/// use polysio::client::{ClientOptions, TransportKind};
/// let opts = ClientOptions { transports: vec![TransportKind::Websocket], ..Default::default() };
/// assert_eq!(opts.path, "/socket.io/");
/// ```
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Transports in the order tried: the first opens the session; with polling first and
    /// WebSocket allowed, the client upgrades to WebSocket. Default `[Polling, Websocket]`.
    pub transports: Vec<TransportKind>,
    /// Whether to try the polling → WebSocket upgrade. Default true.
    pub upgrade: bool,
    /// The Engine.IO path. Default `/socket.io/`.
    pub path: String,
    /// Extra query parameters added to every request.
    pub query: Vec<(String, String)>,
    /// Extra HTTP headers sent with every request (and the WebSocket handshake).
    pub extra_headers: Vec<(String, String)>,
    /// The default auth payload of the manager's sockets.
    pub auth: Auth,
    /// Whether to reconnect automatically. Default true.
    pub reconnection: bool,
    /// Attempts before giving up; `u32::MAX` (the default) is unlimited.
    pub reconnection_attempts: u32,
    /// The first reconnection delay. Default 1000 ms.
    pub reconnection_delay: Duration,
    /// The largest reconnection delay. Default 5000 ms.
    pub reconnection_delay_max: Duration,
    /// Jitter applied to each delay, 0 to 1. Default 0.5.
    pub randomization_factor: f64,
    /// Handshake timeout (Engine.IO open). Default 20000 ms.
    pub timeout: Duration,
    /// Default timeout of acknowledgements; `None` (the default) waits until disconnection.
    pub ack_timeout: Option<Duration>,
    /// Largest number of packets a socket keeps queued (while offline or not yet written);
    /// beyond that, emits fail with [`Error::BufferFull`]. Default 10000.
    pub send_buffer_max: usize,
    /// Most messages handed to a slow consumer (a Python, Node or C event loop) and not yet
    /// handled (see [`Manager::hold`]): past it the client reads nothing more from the server
    /// until the consumer catches up. Default 1024.
    pub max_pending_messages: usize,
    /// How `https://` and `wss://` servers are trusted (and the client's own certificate).
    /// Default: the system's roots.
    pub tls: TlsOptions,
    /// Whether to go through an HTTP CONNECT proxy. Default [`Proxy::Environment`].
    pub proxy: Proxy,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            transports: vec![TransportKind::Polling, TransportKind::Websocket],
            upgrade: true,
            path: "/socket.io/".into(),
            query: Vec::new(),
            extra_headers: Vec::new(),
            auth: Auth::None,
            reconnection: true,
            reconnection_attempts: u32::MAX,
            reconnection_delay: Duration::from_millis(1000),
            reconnection_delay_max: Duration::from_millis(5000),
            randomization_factor: 0.5,
            timeout: Duration::from_millis(20000),
            ack_timeout: None,
            send_buffer_max: 10_000,
            max_pending_messages: 1024,
            tls: TlsOptions::default(),
            proxy: Proxy::Environment,
        }
    }
}

impl ClientOptions {
    pub(crate) fn endpoint(&self, url: &ServerUrl) -> Result<Endpoint> {
        let url_query = url.query.as_str();
        if self.transports.is_empty() {
            return Err(Error::InvalidArgument("no transport allowed".into()));
        }
        let mut path = self.path.clone();
        if !path.starts_with('/') {
            path.insert(0, '/');
        }
        if !path.ends_with('/') {
            path.push('/');
        }
        if path
            .bytes()
            .any(|b| b <= b' ' || b == b'?' || b == b'#' || b >= 0x7f)
        {
            return Err(Error::InvalidArgument(format!("bad path {:?}", self.path)));
        }
        let mut query: Vec<String> = Vec::new();
        if !url_query.is_empty() {
            query.push(url_query.to_owned());
        }
        for (k, v) in &self.query {
            query.push(format!("{}={}", encode_component(k), encode_component(v)));
        }
        let mut headers = Vec::new();
        for (k, v) in &self.extra_headers {
            let name = http::HeaderName::from_str(k)
                .map_err(|e| Error::InvalidArgument(format!("bad header name {k:?}: {e}")))?;
            let value = http::HeaderValue::from_str(v)
                .map_err(|e| Error::InvalidArgument(format!("bad header value for {k:?}: {e}")))?;
            headers.push((name, value));
        }
        let proxy = super::transport::proxy_for(&self.proxy, url)?;
        #[cfg(feature = "tls")]
        let tls = if url.secure {
            Some(self.tls.client_config()?)
        } else {
            None
        };
        #[cfg(not(feature = "tls"))]
        if url.secure {
            return Err(Error::InvalidArgument(
                "https/wss: this build of polysio has no TLS (cargo feature `tls`)".into(),
            ));
        }
        Ok(Endpoint {
            authority: url.authority.clone(),
            host: url.host.clone(),
            secure: url.secure,
            proxy,
            #[cfg(feature = "tls")]
            tls,
            path,
            query: query.join("&"),
            headers,
            gate: Gate::new(self.max_pending_messages),
        })
    }
}

/// A parsed server URL: where the server is and which namespace the URL names.
#[derive(Clone, Debug)]
pub(crate) struct ServerUrl {
    /// `host:port`.
    pub authority: String,
    /// The host alone (the TLS server name).
    pub host: String,
    /// `https://` or `wss://`.
    pub secure: bool,
    pub namespace: String,
    pub query: String,
}

pub(crate) fn parse_url(url: &str) -> Result<ServerUrl> {
    let uri = http::Uri::from_str(url)
        .map_err(|e| Error::InvalidArgument(format!("bad url {url:?}: {e}")))?;
    let secure = match uri.scheme_str() {
        Some("http" | "ws") => false,
        Some("https" | "wss") => true,
        _ => {
            return Err(Error::InvalidArgument(format!(
                "bad url {url:?}: expected http://, https://, ws:// or wss://"
            )))
        }
    };
    let host = uri
        .host()
        .ok_or_else(|| Error::InvalidArgument(format!("bad url {url:?}: no host")))?;
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    let authority = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let namespace = match uri.path() {
        "" | "/" => "/".to_owned(),
        p => p.trim_end_matches('/').to_owned(),
    };
    // The TLS server name: an IPv6 literal without its brackets.
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    Ok(ServerUrl {
        authority,
        host,
        secure,
        namespace,
        query: uri.query().unwrap_or("").to_owned(),
    })
}

/// Builds a client: options named like socket.io-client's, then [`connect`](Self::connect)
/// for a socket on the URL's namespace, or [`manager`](Self::manager) for the connection alone.
///
/// ```no_run
/// # async fn run() -> polysio::Result<()> {
/// use polysio::client::ClientBuilder;
/// use polysio::Value;
/// let socket = ClientBuilder::new("http://127.0.0.1:3000/chat")
///     .auth(Value::from(serde_json::json!({"token": "abc"})))
///     .on("message", |args, _ack| println!("got {args:?}"))
///     .connect()
///     .await?;
/// socket.emit("hello", vec![Value::from("world")])?;
/// # Ok(()) }
/// ```
pub struct ClientBuilder {
    url: String,
    opts: ClientOptions,
    handlers: Vec<(String, super::Handler)>,
}

impl ClientBuilder {
    /// A builder for the server at `url` (`http://host:port/namespace`).
    pub fn new(url: impl Into<String>) -> Self {
        ClientBuilder {
            url: url.into(),
            opts: ClientOptions::default(),
            handlers: Vec::new(),
        }
    }
    /// Replaces all options at once.
    pub fn options(mut self, opts: ClientOptions) -> Self {
        self.opts = opts;
        self
    }
    /// Transports in the order tried (see [`ClientOptions::transports`]).
    pub fn transports(mut self, t: impl IntoIterator<Item = TransportKind>) -> Self {
        self.opts.transports = t.into_iter().collect();
        self
    }
    /// Whether to upgrade from polling to WebSocket.
    pub fn upgrade(mut self, on: bool) -> Self {
        self.opts.upgrade = on;
        self
    }
    /// The Engine.IO path (default `/socket.io/`).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.opts.path = path.into();
        self
    }
    /// Adds a query parameter.
    pub fn query(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.opts.query.push((key.into(), value.into()));
        self
    }
    /// Adds an HTTP header sent with every request.
    pub fn extra_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.opts.extra_headers.push((name.into(), value.into()));
        self
    }
    /// The auth payload: a [`Value`] or an [`Auth::callback`].
    pub fn auth(mut self, auth: impl Into<Auth>) -> Self {
        self.opts.auth = auth.into();
        self
    }
    /// Whether to reconnect automatically.
    pub fn reconnection(mut self, on: bool) -> Self {
        self.opts.reconnection = on;
        self
    }
    /// Reconnection attempts before `reconnect_failed`.
    pub fn reconnection_attempts(mut self, n: u32) -> Self {
        self.opts.reconnection_attempts = n;
        self
    }
    /// The first reconnection delay.
    pub fn reconnection_delay(mut self, d: Duration) -> Self {
        self.opts.reconnection_delay = d;
        self
    }
    /// The largest reconnection delay.
    pub fn reconnection_delay_max(mut self, d: Duration) -> Self {
        self.opts.reconnection_delay_max = d;
        self
    }
    /// Jitter of reconnection delays (0 to 1).
    pub fn randomization_factor(mut self, f: f64) -> Self {
        self.opts.randomization_factor = f;
        self
    }
    /// Handshake timeout.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.opts.timeout = d;
        self
    }
    /// Default acknowledgement timeout.
    pub fn ack_timeout(mut self, d: Duration) -> Self {
        self.opts.ack_timeout = Some(d);
        self
    }
    /// Bound of each socket's send buffer, in packets.
    pub fn send_buffer_max(mut self, n: usize) -> Self {
        self.opts.send_buffer_max = n;
        self
    }
    /// How `https://` / `wss://` servers are trusted (see [`TlsOptions`]).
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.opts.tls = tls;
        self
    }
    /// Whether to go through an HTTP CONNECT proxy (see [`Proxy`]).
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.opts.proxy = proxy;
        self
    }
    /// Registers an event handler on the URL's namespace socket before it connects.
    pub fn on(
        mut self,
        event: impl Into<String>,
        handler: impl Fn(Vec<Value>, Option<super::AckResponder>) + Send + Sync + 'static,
    ) -> Self {
        self.handlers.push((event.into(), Arc::new(handler)));
        self
    }

    /// Builds the manager on the given runtime, without connecting.
    pub fn manager_on(&self, handle: tokio::runtime::Handle) -> Result<Manager> {
        let u = parse_url(&self.url)?;
        Manager::start(handle, &u, self.opts.clone())
    }

    /// Builds the manager on the current tokio runtime, without connecting.
    pub fn manager(&self) -> Result<Manager> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::InvalidArgument("not inside a tokio runtime; use manager_on(handle)".into())
        })?;
        self.manager_on(handle)
    }

    /// Starts connecting the URL's namespace on the given runtime and returns its socket at once;
    /// watch `connect` / `connect_error` for the outcome.
    pub fn connect_on(self, handle: tokio::runtime::Handle) -> Result<Socket> {
        let u = parse_url(&self.url)?;
        let manager = Manager::start(handle, &u, self.opts)?;
        let socket = manager.socket(&u.namespace);
        for (event, h) in self.handlers {
            socket.on_handler(event, h);
        }
        socket.connect();
        Ok(socket)
    }

    /// Starts connecting on the current tokio runtime (see [`connect_on`](Self::connect_on)).
    pub async fn connect(self) -> Result<Socket> {
        self.connect_on(tokio::runtime::Handle::current())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("http://127.0.0.1:3000/custom?x=1").unwrap();
        assert_eq!(u.authority, "127.0.0.1:3000");
        assert_eq!(u.namespace, "/custom");
        assert_eq!(u.query, "x=1");
        assert_eq!(parse_url("ws://localhost").unwrap().namespace, "/");
        let s = parse_url("https://x/a").unwrap();
        assert!(s.secure);
        assert_eq!((s.authority.as_str(), s.host.as_str()), ("x:443", "x"));
        let v6 = parse_url("wss://[::1]:8443").unwrap();
        assert_eq!(
            (v6.authority.as_str(), v6.host.as_str()),
            ("[::1]:8443", "::1")
        );
        assert!(parse_url("ftp://x").is_err());
        assert!(parse_url("nonsense").is_err());
    }
}
