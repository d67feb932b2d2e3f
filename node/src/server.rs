//! The native side of `Server`, `Namespace` and `Socket` (lib/server.js builds the socket.io API
//! on top of these).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Response};
use napi::bindgen_prelude::{Buffer, Unknown};
use napi::Env;
use napi::JsValue;
use napi_derive::napi;
use polysio::adapter::Room;
use polysio::engine::{
    CookieConfig, CorsConfig, CorsOrigin, EngineConfig, Handshake, ListenerConfig, TransportType,
};
use polysio::server::{
    BroadcastOperator, ConnectError, Namespace, RecoveryConfig, Server, ServerConfig, Socket,
};
use polysio::tls::ServerTls;
use polysio::{Map, Value};

use crate::convert::{args_from_js, from_js};
use crate::dispatch::{args_tail, next_socket_key, Dispatcher, Event, NativeDispatcher, Outcome};
use crate::error::{err, Code, IntoJsError, Result};

/// The longest duration handed to the core (about a century): `Infinity` and longer ones
/// become it, so that no deadline computed from one (`now + duration`) can overflow.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// A duration given in milliseconds by JavaScript (at most [`FOREVER`]).
pub(crate) fn millis(ms: f64, what: &str) -> Result<Duration> {
    if !ms.is_finite() && ms != f64::INFINITY || ms < 0.0 {
        return Err(err(
            Code::InvalidArgValue,
            format!("{what} must be a non-negative number of milliseconds, got {ms}"),
        ));
    }
    Ok(Duration::try_from_secs_f64(ms / 1000.0)
        .unwrap_or(FOREVER)
        .min(FOREVER))
}

/// A duration in milliseconds where 0 means none, as Node's `http.Server` takes
/// `headersTimeout` and `keepAliveTimeout`: 0 becomes [`FOREVER`].
fn opt_ms_or_off(v: &Value, key: &str, default: Duration) -> Result<Duration> {
    let d = opt_ms(v, key, default)?;
    Ok(if d.is_zero() { FOREVER } else { d })
}

/// A count option: a non-negative integer of at least `min`, or `Infinity` (no bound:
/// `usize::MAX`).
fn opt_count(v: &Value, key: &str, default: usize, min: usize) -> Result<usize> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(x) => match x.as_f64() {
            Some(n) if n == f64::INFINITY => Ok(usize::MAX),
            Some(n) if n.is_finite() && n.fract() == 0.0 && n >= min as f64 => {
                // (A float cast saturates.)
                Ok(n as usize)
            }
            Some(n) => Err(err(
                Code::InvalidArgValue,
                format!("{key} must be an integer of at least {min} (or Infinity), got {n}"),
            )),
            None => Err(err(Code::InvalidArgType, format!("{key} must be a number"))),
        },
    }
}

/// An optional bound: `null`, `undefined` or `Infinity` (and 0 where `zero_is_none`, as Node's
/// `maxConnections`) mean none; else an integer of at least 1.
fn opt_limit(v: &Value, key: &str, zero_is_none: bool) -> Result<Option<usize>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => match x.as_f64() {
            Some(n) if n == f64::INFINITY => Ok(None),
            Some(n) if n == 0.0 && zero_is_none => Ok(None),
            Some(n) if n.is_finite() && n.fract() == 0.0 && n >= 1.0 => Ok(Some(n as usize)),
            Some(n) => Err(err(
                Code::InvalidArgValue,
                format!(
                    "{key} must be a positive integer, or null for no limit{}, got {n}",
                    if zero_is_none { " (or 0)" } else { "" }
                ),
            )),
            None => Err(err(
                Code::InvalidArgType,
                format!("{key} must be a number or null"),
            )),
        },
    }
}

/// An optional duration in milliseconds (`default` when absent or null).
pub(crate) fn opt_ms(v: &Value, key: &str, default: Duration) -> Result<Duration> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(x) => match x.as_f64() {
            Some(ms) => millis(ms, key),
            None => Err(err(Code::InvalidArgType, format!("{key} must be a number"))),
        },
    }
}

fn opt_bool(v: &Value, key: &str, default: bool) -> Result<bool> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(err(
            Code::InvalidArgType,
            format!("{key} must be a boolean"),
        )),
    }
}

fn opt_usize(v: &Value, key: &str, default: usize) -> Result<usize> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(x) => match x.as_f64() {
            Some(n) if n >= 0.0 && n.is_finite() => Ok(n as usize),
            Some(n) if n == f64::INFINITY => Ok(usize::MAX),
            _ => Err(err(
                Code::InvalidArgType,
                format!("{key} must be a non-negative number"),
            )),
        },
    }
}

fn strings(v: Option<&Value>, key: &str) -> Result<Vec<String>> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s.split(',').map(|x| x.trim().to_owned()).collect()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str().map(str::to_owned).ok_or_else(|| {
                    err(
                        Code::InvalidArgType,
                        format!("{key} must be a string or an array of strings"),
                    )
                })
            })
            .collect(),
        Some(_) => Err(err(
            Code::InvalidArgType,
            format!("{key} must be a string or an array of strings"),
        )),
    }
}

fn cors(v: &Value) -> Result<Option<CorsConfig>> {
    let c = match v.get("cors") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => return Ok(None),
        Some(c @ Value::Map(_)) => c,
        Some(_) => return Err(err(Code::InvalidArgType, "cors must be an object")),
    };
    let origin = match c.get("origin") {
        None | Some(Value::Null) => CorsOrigin::Any,
        Some(Value::String(s)) if s == "*" => CorsOrigin::Any,
        Some(Value::Bool(true)) => CorsOrigin::Mirror,
        Some(Value::Bool(false)) => return Ok(None),
        Some(o @ (Value::String(_) | Value::Array(_))) => {
            CorsOrigin::List(strings(Some(o), "cors.origin")?)
        }
        Some(_) => {
            return Err(err(
                Code::InvalidArgType,
                "cors.origin must be \"*\", true, a string or an array of strings",
            ))
        }
    };
    let d = CorsConfig::default();
    let cfg = CorsConfig {
        origin,
        credentials: opt_bool(c, "credentials", false)?,
        methods: match c.get("methods") {
            None | Some(Value::Null) => d.methods,
            m => strings(m, "cors.methods")?,
        },
        allowed_headers: strings(c.get("allowedHeaders"), "cors.allowedHeaders")?,
        exposed_headers: strings(c.get("exposedHeaders"), "cors.exposedHeaders")?,
        max_age: match c.get("maxAge") {
            None | Some(Value::Null) => None,
            Some(x) => Some(x.as_f64().filter(|n| *n >= 0.0).ok_or_else(|| {
                err(
                    Code::InvalidArgType,
                    "cors.maxAge must be a number of seconds",
                )
            })? as u64),
        },
    };
    Ok(Some(cfg))
}

fn cookie(v: &Value) -> Result<Option<CookieConfig>> {
    let c = match v.get("cookie") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => return Ok(None),
        Some(Value::Bool(true)) => return Ok(Some(CookieConfig::default())),
        Some(c @ Value::Map(_)) => c,
        Some(_) => {
            return Err(err(
                Code::InvalidArgType,
                "cookie must be a boolean or an object",
            ))
        }
    };
    let d = CookieConfig::default();
    let s = |k: &str, d: String| -> Result<String> {
        match c.get(k) {
            None | Some(Value::Null) => Ok(d),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(err(
                Code::InvalidArgType,
                format!("cookie.{k} must be a string"),
            )),
        }
    };
    Ok(Some(CookieConfig {
        name: s("name", d.name)?,
        path: s("path", d.path)?,
        http_only: opt_bool(c, "httpOnly", d.http_only)?,
        same_site: match c.get("sameSite") {
            None | Some(Value::Null) => d.same_site,
            Some(Value::Bool(false)) => None,
            Some(Value::Bool(true)) => Some("Strict".into()),
            Some(Value::String(s)) => Some(capitalize(s)),
            Some(_) => {
                return Err(err(
                    Code::InvalidArgType,
                    "cookie.sameSite must be a string or a boolean",
                ))
            }
        },
        secure: opt_bool(c, "secure", d.secure)?,
        max_age: match c.get("maxAge") {
            None | Some(Value::Null) => None,
            Some(x) => Some(
                x.as_f64()
                    .filter(|n| *n >= 0.0)
                    .ok_or_else(|| err(Code::InvalidArgType, "cookie.maxAge must be a number"))?
                    as u64,
            ),
        },
    }))
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f
            .to_uppercase()
            .chain(c.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}

/// socket.io's options (names and defaults) as the core's configuration.
fn config(v: &Value) -> Result<ServerConfig> {
    let d = ServerConfig::default();
    let e = &d.engine;
    let mut path = match v.get("path") {
        None | Some(Value::Null) => "/socket.io".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(err(Code::InvalidArgType, "path must be a string")),
    };
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    if !path.ends_with('/') {
        path.push('/');
    }
    let transports = match v.get("transports") {
        None | Some(Value::Null) => e.transports.clone(),
        Some(t) => strings(Some(t), "transports")?
            .iter()
            .map(|t| {
                TransportType::parse(t).ok_or_else(|| {
                    err(
                        Code::InvalidArgValue,
                        format!("unknown transport {t:?} (polling, websocket)"),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?,
    };
    if transports.is_empty() {
        return Err(err(Code::InvalidArgValue, "transports must not be empty"));
    }
    let recovery = match v.get("connectionStateRecovery") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => None,
        Some(r @ (Value::Map(_) | Value::Bool(true))) => {
            let rd = RecoveryConfig::default();
            Some(RecoveryConfig {
                max_disconnection_duration: opt_ms(
                    r,
                    "maxDisconnectionDuration",
                    rd.max_disconnection_duration,
                )?,
                skip_middlewares: opt_bool(r, "skipMiddlewares", rd.skip_middlewares)?,
            })
        }
        Some(_) => {
            return Err(err(
                Code::InvalidArgType,
                "connectionStateRecovery must be an object",
            ))
        }
    };
    Ok(ServerConfig {
        engine: EngineConfig {
            path,
            ping_interval: opt_ms(v, "pingInterval", e.ping_interval)?,
            ping_timeout: opt_ms(v, "pingTimeout", e.ping_timeout)?,
            upgrade_timeout: opt_ms(v, "upgradeTimeout", e.upgrade_timeout)?,
            max_http_buffer_size: opt_usize(v, "maxHttpBufferSize", e.max_http_buffer_size)?,
            transports,
            allow_upgrades: opt_bool(v, "allowUpgrades", e.allow_upgrades)?,
            cors: cors(v)?,
            cookie: cookie(v)?,
            allow_request: None,
            http_request_body_timeout: opt_ms(
                v,
                "httpRequestBodyTimeout",
                e.http_request_body_timeout,
            )?,
            max_buffered_chunks: opt_count(v, "maxBufferedChunks", e.max_buffered_chunks, 0)?,
            max_buffered_bytes: opt_count(v, "maxBufferedBytes", e.max_buffered_bytes, 0)?,
            write_timeout: opt_ms(v, "writeTimeout", e.write_timeout)?,
            max_pending_messages: opt_count(v, "maxPendingMessages", e.max_pending_messages, 1)?,
            max_handshakes_per_second: opt_limit(v, "maxHandshakesPerSecond", false)?
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
            listener: ListenerConfig {
                headers_timeout: opt_ms_or_off(v, "headersTimeout", e.listener.headers_timeout)?,
                keep_alive_timeout: opt_ms_or_off(
                    v,
                    "keepAliveTimeout",
                    e.listener.keep_alive_timeout,
                )?,
                max_connections: opt_limit(v, "maxConnections", true)?,
            },
        },
        connect_timeout: opt_ms(v, "connectTimeout", d.connect_timeout)?,
        connection_state_recovery: recovery,
        max_attachments: opt_usize(v, "maxAttachments", d.max_attachments)?,
        adapter: None,
    })
}

/// The HTTP request of a handshake as socket.io shows it (`socket.handshake`, `allowRequest`).
pub(crate) fn request_value(h: &Handshake) -> Value {
    let mut headers = Map::new();
    for name in h.headers.keys() {
        let joined = h
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(", ");
        headers.insert(name.as_str().to_owned(), Value::from(joined));
    }
    let mut query = Map::new();
    for (k, v) in &h.query {
        match query.get_mut(k) {
            Some(Value::Array(a)) => a.push(Value::from(v.as_str())),
            Some(first) => {
                let prev = std::mem::take(first);
                *first = Value::Array(vec![prev, Value::from(v.as_str())]);
            }
            None => {
                query.insert(k.clone(), Value::from(v.as_str()));
            }
        }
    }
    let mut m = Map::new();
    m.insert("headers".into(), Value::Map(headers));
    m.insert("query".into(), Value::Map(query));
    m.insert("url".into(), Value::from(h.url.as_str()));
    m.insert(
        "address".into(),
        Value::from(h.address.map(|a| a.ip().to_string())),
    );
    m.insert("issued".into(), Value::Int(h.issued as i64));
    m.insert("secure".into(), Value::Bool(h.secure));
    m.insert(
        "xdomain".into(),
        Value::Bool(h.headers.contains_key(header::ORIGIN)),
    );
    Value::Map(m)
}

/// Files served outside the Socket.IO path (`io.serveStatic`), by URL path.
type Statics = Arc<RwLock<HashMap<String, (Bytes, HeaderValue)>>>;

/// A polysio server as JavaScript drives it.
#[napi]
pub struct NativeServer {
    server: Server,
    id: u32,
    dispatcher: Arc<Dispatcher>,
    statics: Statics,
    /// Namespaces whose connection handler is registered (by name; dynamic parents by id).
    registered: Mutex<HashSet<String>>,
    closed: AtomicBool,
    listening: AtomicBool,
    /// The certificate of the TLS listener, once `listen` was given one (`setSecureContext`
    /// replaces it).
    tls: Mutex<Option<ServerTls>>,
}

#[napi]
impl NativeServer {
    /// A server with socket.io-style `options` (see lib/server.js); events go to `dispatcher`
    /// tagged with `id`.
    #[napi(constructor)]
    pub fn new(
        env: Env,
        dispatcher: &NativeDispatcher,
        id: u32,
        options: Unknown<'_>,
        adapter: Option<&crate::redis::NativeRedisAdapter>,
    ) -> Result<Self> {
        let opts = unsafe { from_js(env.raw(), options.raw())? };
        let mut cfg = config(&opts)?;
        cfg.adapter = adapter.map(|a| a.factory());
        let d = dispatcher.inner.clone();
        if opts.get("allowRequest") == Some(&Value::Bool(true)) {
            let d = d.clone();
            let timeout = cfg.connect_timeout;
            cfg.engine.allow_request = Some(Arc::new(move |h: &Handshake| {
                // Attached to an http.Server, JavaScript decided before the request crossed.
                if let Some(decided) = crate::host::decided() {
                    return decided;
                }
                let answer = d.call_sync(
                    |reply| Event::AllowRequest {
                        server: id,
                        request: request_value(h),
                        reply,
                    },
                    timeout,
                );
                match answer {
                    Some(Value::Bool(true)) => Ok(()),
                    Some(Value::String(m)) => Err(m),
                    _ => Err(String::new()),
                }
            }));
        }
        let handle = crate::runtime::handle()?;
        let server = Server::with_runtime(cfg, handle);
        let statics: Statics = Arc::default();
        let st = statics.clone();
        server.set_fallback(Arc::new(move |req| {
            let (body, ctype) = st.read().ok()?.get(req.uri().path()).cloned()?;
            let mut r = Response::new(http_body_util::Full::new(body));
            r.headers_mut().insert(header::CONTENT_TYPE, ctype);
            Some(r)
        }));
        Ok(NativeServer {
            server,
            id,
            dispatcher: d,
            statics,
            registered: Mutex::new(HashSet::new()),
            closed: AtomicBool::new(false),
            listening: AtomicBool::new(false),
            tls: Mutex::new(None),
        })
    }

    /// Binds `host:port` (an empty host tries `::` then `0.0.0.0`) and serves in the
    /// background, over TLS (https/wss) when given the PEM certificate chain `cert` and its
    /// private key `key`; returns the bound port. A chain or key that does not load, or that
    /// do not match, is `ERR_TLS` (and nothing is bound).
    #[napi]
    pub fn listen(
        &self,
        host: String,
        port: u32,
        cert: Option<Buffer>,
        key: Option<Buffer>,
    ) -> Result<u32> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(err(Code::Closed, "the server is closed"));
        }
        let port = u16::try_from(port)
            .map_err(|_| err(Code::InvalidArgValue, format!("bad port {port}")))?;
        let tls = match (cert, key) {
            (Some(c), Some(k)) => Some(ServerTls::from_pem(&c, &k).js()?),
            (None, None) => None,
            _ => {
                return Err(err(
                    Code::InvalidArgValue,
                    "tls.cert and tls.key go together",
                ))
            }
        };
        if self.listening.swap(true, Ordering::SeqCst) {
            return Err(err(Code::Listen, "the server is already listening"));
        }
        let bound = if host.is_empty() {
            std::net::TcpListener::bind(("::", port))
                .or_else(|_| std::net::TcpListener::bind(("0.0.0.0", port)))
        } else {
            std::net::TcpListener::bind((host.as_str(), port))
        };
        let result = (|| {
            let l = bound?;
            l.set_nonblocking(true)?;
            let handle = crate::runtime::handle().map_err(std::io::Error::other)?;
            let _guard = handle.enter();
            let l = tokio::net::TcpListener::from_std(l)?;
            let port = l.local_addr()?.port();
            let server = self.server.clone();
            match tls.clone() {
                Some(t) => handle.spawn(async move { server.serve_tls(l, t).await }),
                None => handle.spawn(async move { server.serve(l).await }),
            };
            Ok::<u32, std::io::Error>(port.into())
        })();
        match result {
            Ok(port) => {
                *crate::host::lock(&self.tls) = tls;
                Ok(port)
            }
            Err(e) => {
                self.listening.store(false, Ordering::SeqCst);
                let shown = if host.is_empty() { "*" } else { &host };
                Err(err(
                    Code::Listen,
                    format!("cannot listen on {shown}:{port}: {e}"),
                ))
            }
        }
    }

    /// Replaces the TLS listener's certificate chain and key (PEM) for the connections
    /// accepted from now on (open ones keep theirs). `ERR_TLS` if they do not load or match
    /// (the current ones stay); `ERR_LISTEN` if the server does not listen over TLS.
    #[napi]
    pub fn set_secure_context(&self, cert: Buffer, key: Buffer) -> Result<()> {
        let tls = crate::host::lock(&self.tls);
        match tls.as_ref() {
            Some(t) => t.reload(&cert, &key).js(),
            None => Err(err(
                Code::Listen,
                "setSecureContext needs a server listening over TLS (the tls option)",
            )),
        }
    }

    /// Disconnects every socket, closes every connection, frees the port; a `Closed` event
    /// follows the sockets' disconnect events.
    #[napi]
    pub fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let (server, d, id) = (self.server.clone(), self.dispatcher.clone(), self.id);
        crate::runtime::handle()?.spawn(async move {
            server.close().await;
            d.push(Event::Closed { server: id });
        });
        Ok(())
    }

    /// The static namespace `name` (created if needed); its connections are reported as
    /// namespace `ns`.
    #[napi]
    pub fn of(&self, name: String, ns: u32) -> NativeNamespace {
        let nsp = self.server.of(&name);
        let first = self
            .registered
            .lock()
            .map(|mut r| r.insert(nsp.name().to_owned()))
            .unwrap_or(false);
        // A dynamic child shares its parent's handlers, already registered.
        if first && nsp.parent().is_none() {
            self.register(&nsp, ns);
        }
        self.namespace(nsp, ns)
    }

    /// A dynamic namespace: JavaScript's matcher decides (a `Match` event, answered
    /// synchronously) which names it takes; reported as namespace `ns`.
    #[napi]
    pub fn of_dynamic(&self, ns: u32) -> NativeNamespace {
        let (d, server) = (self.dispatcher.clone(), self.id);
        let timeout = self.server.config().connect_timeout;
        let nsp = self.server.of_dynamic(move |name, auth| {
            d.call_sync(
                |reply| Event::Match {
                    server,
                    ns,
                    name: name.to_owned(),
                    auth: auth.clone(),
                    reply,
                },
                timeout,
            )
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
        });
        self.register(&nsp, ns);
        self.namespace(nsp, ns)
    }

    fn namespace(&self, nsp: Namespace, ns: u32) -> NativeNamespace {
        NativeNamespace {
            nsp,
            server: self.id,
            ns,
            dispatcher: self.dispatcher.clone(),
            middleware: AtomicBool::new(false),
        }
    }

    fn register(&self, nsp: &Namespace, ns: u32) {
        let (d, server) = (self.dispatcher.clone(), self.id);
        nsp.on_connection(move |socket| {
            let key = next_socket_key();
            {
                let d = d.clone();
                // Events without binary data reach JavaScript as the JSON text they came in.
                // Each counts against its session's `maxPendingMessages` until JavaScript has
                // run its handlers (see dispatch.rs): a client that sends faster than they run
                // is not read meanwhile.
                socket.on_fallback_json(move |s, name, args, json, ack| {
                    let held = s.conn().hold();
                    match json.and_then(args_tail) {
                        Some(tail) => d.push_event_json(server, key, name, tail, ack, held),
                        None => d.push_held(
                            Event::Event {
                                server,
                                key,
                                name: name.to_owned(),
                                args,
                                ack,
                            },
                            Some(held),
                        ),
                    }
                });
            }
            {
                let d = d.clone();
                socket.on_disconnecting(move |s, reason| {
                    d.push(Event::Disconnecting {
                        server,
                        key,
                        reason: reason.as_str(),
                        rooms: s.rooms(),
                    })
                });
            }
            {
                let d = d.clone();
                socket.on_disconnect(move |_, reason| {
                    d.push(Event::Disconnect {
                        server,
                        key,
                        reason: reason.as_str(),
                    })
                });
            }
            d.push(Event::Connection {
                server,
                ns,
                key,
                socket,
            });
        });
    }

    /// Serves `body` at URL `path` (outside the Socket.IO path) with `contentType`.
    #[napi]
    pub fn serve_static(&self, path: String, body: Buffer, content_type: String) -> Result<()> {
        let ctype = HeaderValue::from_str(&content_type).map_err(|_| {
            err(
                Code::InvalidArgValue,
                format!("bad content type {content_type:?}"),
            )
        })?;
        if !path.starts_with('/') {
            return Err(err(
                Code::InvalidArgValue,
                format!("the URL path must start with '/', got {path:?}"),
            ));
        }
        let body = Bytes::copy_from_slice(&body);
        if let Ok(mut m) = self.statics.write() {
            m.insert(path, (body, ctype));
        }
        Ok(())
    }

    /// Serves one request that a Node `http.Server` received for the Socket.IO path (see
    /// host.rs): completes (request `req`) with a response `{ status, headers, body }` or a
    /// `NativeExchange`. `rawHeaders` alternate names and values. `allow` (with the message
    /// `refusal`) is `allowRequest`'s answer when JavaScript asked it already (a handshake).
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn handle_request(
        &self,
        method: String,
        url: String,
        raw_headers: Vec<String>,
        remote_address: Option<String>,
        remote_port: u32,
        secure: bool,
        allow: Option<bool>,
        refusal: Option<String>,
        req: f64,
    ) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(err(Code::Closed, "the server is closed"));
        }
        let request = crate::host::http_request(
            &method,
            &url,
            &raw_headers,
            remote_address.as_deref(),
            remote_port,
            secure,
        )?;
        let done = self.dispatcher.completion(req);
        let decided = allow.map(|ok| {
            if ok {
                Ok(())
            } else {
                Err(refusal.unwrap_or_default())
            }
        });
        crate::host::handle(
            self.server.engine(),
            &self.dispatcher,
            request,
            decided,
            done,
        );
        Ok(())
    }

    /// Closes every Engine.IO session (the attached `http.Server` closed), as engine.io does;
    /// the server stays usable.
    #[napi]
    pub fn close_sessions(&self) {
        self.server
            .engine()
            .close_all(polysio::engine::CloseReason::ForcedClose);
    }

    /// Open Engine.IO connections.
    #[napi]
    pub fn clients_count(&self) -> u32 {
        self.server.engine().clients_count() as u32
    }
}

impl Drop for NativeServer {
    /// A server whose JavaScript object goes away (its worker thread ends, or it was collected
    /// without `close()`) stops serving and frees its port.
    fn drop(&mut self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Ok(h) = crate::runtime::handle() {
            let server = self.server.clone();
            h.spawn(async move { server.close().await });
        }
    }
}

/// Whom a broadcast reaches (built by lib/server.js's BroadcastOperator).
#[napi(object)]
pub struct Target {
    /// Rooms to reach (all sockets when empty).
    pub rooms: Vec<String>,
    /// Rooms (or socket ids) to skip.
    pub except: Vec<String>,
    /// The packet may be dropped.
    pub volatile: bool,
    /// Only this node.
    pub local: bool,
}

/// A namespace as JavaScript drives it.
#[napi]
pub struct NativeNamespace {
    nsp: Namespace,
    server: u32,
    ns: u32,
    dispatcher: Arc<Dispatcher>,
    middleware: AtomicBool,
}

enum Op {
    All(Namespace),
    Some(BroadcastOperator),
}

enum Step {
    To(Room),
    Except(Room),
    Volatile,
    Local,
    Timeout(Duration),
}

impl Step {
    fn start(self, n: &Namespace) -> BroadcastOperator {
        match self {
            Step::To(r) => n.to(r),
            Step::Except(r) => n.except(r),
            Step::Volatile => n.volatile(),
            Step::Local => n.local(),
            Step::Timeout(d) => n.timeout(d),
        }
    }
    fn then(self, o: BroadcastOperator) -> BroadcastOperator {
        match self {
            Step::To(r) => o.to(r),
            Step::Except(r) => o.except(r),
            Step::Volatile => o.volatile(),
            Step::Local => o.local(),
            Step::Timeout(d) => o.timeout(d),
        }
    }
}

impl Op {
    /// The operator selecting `t` (the namespace itself when nothing narrows it).
    fn new(nsp: &Namespace, t: &Target, timeout: Option<Duration>) -> Op {
        let steps = t
            .rooms
            .iter()
            .map(|r| Step::To(r.as_str().into()))
            .chain(t.except.iter().map(|r| Step::Except(r.as_str().into())))
            .chain(t.volatile.then_some(Step::Volatile))
            .chain(t.local.then_some(Step::Local))
            .chain(timeout.map(Step::Timeout));
        let mut op: Option<BroadcastOperator> = None;
        for s in steps {
            op = Some(match op {
                None => s.start(nsp),
                Some(o) => s.then(o),
            });
        }
        match op {
            Some(o) => Op::Some(o),
            None => Op::All(nsp.clone()),
        }
    }

    fn operator(self) -> BroadcastOperator {
        match self {
            Op::Some(o) => o,
            // No selection: every socket; no timeout means waiting for every ack.
            Op::All(n) => n.timeout(Duration::from_millis(u64::MAX)),
        }
    }
}

fn room_list(rooms: &[String]) -> Vec<&str> {
    rooms.iter().map(String::as_str).collect()
}

#[napi]
impl NativeNamespace {
    /// The namespace name (empty for a dynamic parent).
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.nsp.name().to_owned()
    }

    /// Routes connections through JavaScript's middlewares (a `Middleware` event each, answered
    /// with `NativeMiddlewareReply.resolve`). Idempotent.
    #[napi]
    pub fn enable_middleware(&self) {
        if self.middleware.swap(true, Ordering::SeqCst) {
            return;
        }
        let (d, server, ns) = (self.dispatcher.clone(), self.server, self.ns);
        self.nsp.use_async(move |socket| {
            let (tx, rx) = tokio::sync::oneshot::channel();
            d.push(Event::Middleware {
                server,
                ns,
                socket,
                reply: tx,
            });
            async move {
                rx.await
                    .unwrap_or_else(|_| Err(ConnectError::new("middleware did not answer")))
            }
        });
    }

    /// Emits to the sockets `target` selects (encoded once, fanned out in Rust).
    #[napi]
    pub fn emit(&self, env: Env, target: Target, event: String, args: Unknown<'_>) -> Result<()> {
        let args = unsafe { args_from_js(env.raw(), args.raw())? };
        match Op::new(&self.nsp, &target, None) {
            Op::All(n) => n.emit(&event, args),
            Op::Some(o) => o.emit(&event, args),
        }
        .js()
    }

    /// Emits asking every selected socket for an ack; the acks (or a timeout error) come back as
    /// a `Done` event for request `req`.
    #[napi]
    pub fn emit_with_ack(
        &self,
        env: Env,
        target: Target,
        timeout: Option<f64>,
        event: String,
        args: Unknown<'_>,
        req: f64,
    ) -> Result<()> {
        let args = unsafe { args_from_js(env.raw(), args.raw())? };
        let timeout = timeout.map(|t| millis(t, "timeout")).transpose()?;
        let op = Op::new(&self.nsp, &target, timeout).operator();
        let done = self.dispatcher.completion(req);
        crate::runtime::handle()?.spawn(async move {
            let r = op.emit_with_ack(&event, args).await;
            done.finish(r.map(Outcome::Acks));
        });
        Ok(())
    }

    /// The selected sockets' ids, rooms and data, as a `Done` event for request `req`.
    #[napi]
    pub fn fetch_sockets(&self, target: Target, req: f64) -> Result<()> {
        let op = Op::new(&self.nsp, &target, None);
        let done = self.dispatcher.completion(req);
        crate::runtime::handle()?.spawn(async move {
            let r = match op {
                Op::All(n) => n.fetch_sockets().await,
                Op::Some(o) => o.fetch_sockets().await,
            };
            done.finish(r.map(Outcome::Sockets));
        });
        Ok(())
    }

    /// Makes the selected sockets join `rooms`.
    #[napi]
    pub fn sockets_join(&self, target: Target, rooms: Vec<String>) {
        match Op::new(&self.nsp, &target, None) {
            Op::All(n) => n.sockets_join(&room_list(&rooms)),
            Op::Some(o) => o.sockets_join(&room_list(&rooms)),
        }
    }

    /// Makes the selected sockets leave `rooms`.
    #[napi]
    pub fn sockets_leave(&self, target: Target, rooms: Vec<String>) {
        match Op::new(&self.nsp, &target, None) {
            Op::All(n) => n.sockets_leave(&room_list(&rooms)),
            Op::Some(o) => o.sockets_leave(&room_list(&rooms)),
        }
    }

    /// Disconnects the selected sockets (their whole connection with `close`).
    #[napi]
    pub fn disconnect_sockets(&self, target: Target, close: bool) {
        match Op::new(&self.nsp, &target, None) {
            Op::All(n) => n.disconnect_sockets(close),
            Op::Some(o) => o.disconnect_sockets(close),
        }
    }

    /// `serverSideEmit(event, ...args)` to the other nodes of the cluster (a no-op with the
    /// in-memory adapter).
    #[napi]
    pub fn server_side_emit(&self, env: Env, event: String, args: Unknown<'_>) -> Result<()> {
        let args = unsafe { args_from_js(env.raw(), args.raw())? };
        self.nsp.server_side_emit(&event, args).js()
    }

    /// `serverSideEmitWithAck`: one answer per other node (a `Done` event for `req` whose
    /// arguments are the answers), or a timeout error after `timeout` ms.
    #[napi]
    pub fn server_side_emit_with_ack(
        &self,
        env: Env,
        timeout: f64,
        event: String,
        args: Unknown<'_>,
        req: f64,
    ) -> Result<()> {
        let args = unsafe { args_from_js(env.raw(), args.raw())? };
        let timeout = millis(timeout, "timeout")?;
        let nsp = self.nsp.clone();
        let done = self.dispatcher.completion(req);
        crate::runtime::handle()?.spawn(async move {
            let r = nsp.server_side_emit_with_ack(&event, args, timeout).await;
            done.finish(r.map(Outcome::Args));
        });
        Ok(())
    }

    /// The number of nodes of the cluster (a `Done` event for `req` with one argument).
    #[napi]
    pub fn server_count(&self, req: f64) -> Result<()> {
        let nsp = self.nsp.clone();
        let done = self.dispatcher.completion(req);
        crate::runtime::handle()?.spawn(async move {
            let r = nsp.server_count().await;
            done.finish(r.map(|n| Outcome::Args(vec![Value::Int(n as i64)])));
        });
        Ok(())
    }

    /// Every room of the namespace on every node (a `Done` event for `req`, one argument per
    /// room name).
    #[napi]
    pub fn all_rooms(&self, req: f64) -> Result<()> {
        let nsp = self.nsp.clone();
        let done = self.dispatcher.completion(req);
        crate::runtime::handle()?.spawn(async move {
            let r = nsp.all_rooms().await;
            done.finish(
                r.map(|rooms| Outcome::Args(rooms.iter().map(|r| Value::from(&**r)).collect())),
            );
        });
        Ok(())
    }

    /// Reports `event` sent by other nodes with `serverSideEmit` as `ServerSide` events
    /// (with an ack id when the sender waits for answers). Idempotent per event.
    #[napi]
    pub fn on_server_side_emit(&self, event: String) {
        let (d, server, ns) = (self.dispatcher.clone(), self.server, self.ns);
        let name = event.clone();
        self.nsp.on_server_side_emit(&event, move |args, ack| {
            d.push(Event::ServerSide {
                server,
                ns,
                name: name.clone(),
                args,
                ack,
            });
        });
    }

    /// The ids of the connected sockets on this node.
    #[napi]
    pub fn socket_ids(&self) -> Vec<String> {
        self.nsp
            .sockets()
            .iter()
            .map(|s| s.id().to_owned())
            .collect()
    }
}

/// One server-side socket as JavaScript drives it.
#[napi]
pub struct NativeSocket {
    socket: Arc<Socket>,
    outgoing: AtomicBool,
}

impl NativeSocket {
    pub(crate) fn new(socket: Arc<Socket>) -> Self {
        NativeSocket {
            socket,
            outgoing: AtomicBool::new(false),
        }
    }
}

#[napi]
impl NativeSocket {
    /// The socket id.
    #[napi(getter)]
    pub fn id(&self) -> String {
        self.socket.id().to_owned()
    }
    /// The namespace name.
    #[napi(getter)]
    pub fn nsp(&self) -> String {
        self.socket.nsp().name().to_owned()
    }
    /// True while connected.
    #[napi(getter)]
    pub fn connected(&self) -> bool {
        self.socket.connected()
    }
    /// True when restored by connection state recovery.
    #[napi(getter)]
    pub fn recovered(&self) -> bool {
        self.socket.recovered()
    }
    /// The Engine.IO session id.
    #[napi(getter)]
    pub fn conn_id(&self) -> String {
        self.socket.conn().sid().to_owned()
    }
    /// The current transport (`polling` or `websocket`).
    #[napi(getter)]
    pub fn transport(&self) -> String {
        self.socket.conn().transport().as_str().to_owned()
    }
    /// Closes the underlying connection (every namespace of this client).
    #[napi]
    pub fn close_conn(&self) {
        self.socket.conn().close();
    }
    /// The handshake: headers, query, url, address, issued, secure, xdomain and auth.
    #[napi]
    pub fn handshake(&self, env: Env) -> Result<Unknown<'_>> {
        let hs = self.socket.handshake();
        let mut v = request_value(&hs.request);
        if let Value::Map(m) = &mut v {
            m.insert("auth".into(), hs.auth.clone());
        }
        let raw = unsafe { crate::convert::to_js(env.raw(), &v)? };
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), raw) })
    }
    /// The `data` kept in Rust (restored by connection state recovery).
    #[napi]
    pub fn data(&self, env: Env) -> Result<Unknown<'_>> {
        let raw = unsafe { crate::convert::to_js(env.raw(), &self.socket.data())? };
        Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), raw) })
    }
    /// Replaces the `data` kept in Rust.
    #[napi]
    pub fn set_data(&self, env: Env, value: Unknown<'_>) -> Result<()> {
        self.socket
            .set_data(unsafe { from_js(env.raw(), value.raw())? });
        Ok(())
    }
    /// Emits to this socket; once it has left, a no-op (as socket.io). Invalid arguments throw.
    #[napi]
    pub fn emit(&self, env: Env, event: String, args: Unknown<'_>) -> Result<()> {
        let args = unsafe { args_from_js(env.raw(), args.raw())? };
        match self.socket.emit(&event, args) {
            // The session ended and the socket's disconnection is under way (the core drops
            // emits once it is done): the same no-op.
            Err(polysio::Error::Closed) => Ok(()),
            r => r.js(),
        }
    }
    /// Emits asking for an ack; the answer (or an error) comes back as a `Done` event for `req`.
    #[napi]
    pub fn emit_with_ack(
        &self,
        env: Env,
        event: String,
        args: Unknown<'_>,
        timeout: Option<f64>,
        req: f64,
        dispatcher: &NativeDispatcher,
    ) -> Result<()> {
        let args = unsafe { args_from_js(env.raw(), args.raw())? };
        let timeout = timeout.map(|t| millis(t, "timeout")).transpose()?;
        let done = dispatcher.inner.completion(req);
        self.socket
            .emit_with_ack_cb(&event, args, timeout, move |r| {
                done.finish(r.map(Outcome::Args))
            })
            .js()
    }
    /// Joins rooms.
    #[napi]
    pub fn join(&self, rooms: Vec<String>) {
        self.socket.join(&room_list(&rooms));
    }
    /// Leaves a room.
    #[napi]
    pub fn leave(&self, room: String) {
        self.socket.leave(&room);
    }
    /// The rooms the socket is in (its own id first when present).
    #[napi]
    pub fn rooms(&self) -> Vec<String> {
        let mut rooms: Vec<String> = self.socket.rooms().iter().map(|r| r.to_string()).collect();
        if let Some(i) = rooms.iter().position(|r| r == self.socket.id()) {
            let own = rooms.remove(i);
            rooms.insert(0, own);
        }
        rooms
    }
    /// Disconnects (the whole connection with `close`).
    #[napi]
    pub fn disconnect(&self, close: bool) {
        self.socket.disconnect(close);
    }
    /// Reports every outgoing event as an `Outgoing` event (for `onAnyOutgoing`), for the
    /// socket `key` (from its `Connection` event) of `server`. Idempotent.
    #[napi]
    pub fn watch_outgoing(&self, server: u32, key: u32, dispatcher: &NativeDispatcher) {
        if self.outgoing.swap(true, Ordering::SeqCst) {
            return;
        }
        let d = dispatcher.inner.clone();
        self.socket.on_any_outgoing(move |_, name, args| {
            d.push(Event::Outgoing {
                server,
                key,
                name: name.to_owned(),
                args: args.to_vec(),
            })
        });
    }
}

/// Answers a middleware request: `resolve(null)` lets the socket connect,
/// `resolve(message, data)` refuses it with CONNECT_ERROR.
#[napi]
pub struct NativeMiddlewareReply {
    tx: Mutex<Option<tokio::sync::oneshot::Sender<std::result::Result<(), ConnectError>>>>,
}

impl NativeMiddlewareReply {
    pub(crate) fn new(
        tx: tokio::sync::oneshot::Sender<std::result::Result<(), ConnectError>>,
    ) -> Self {
        NativeMiddlewareReply {
            tx: Mutex::new(Some(tx)),
        }
    }
}

#[napi]
impl NativeMiddlewareReply {
    /// Lets the socket in (`message` null) or refuses it with `message` and optional `data`.
    #[napi]
    pub fn resolve(&self, env: Env, message: Option<String>, data: Unknown<'_>) -> Result<()> {
        let data = unsafe { from_js(env.raw(), data.raw())? };
        let answer = match message {
            None => Ok(()),
            Some(m) => {
                let e = ConnectError::new(m);
                Err(if data.is_null() { e } else { e.with_data(data) })
            }
        };
        if let Some(tx) = self.tx.lock().ok().and_then(|mut t| t.take()) {
            let _ = tx.send(answer);
        }
        Ok(())
    }
}
