//! `NativeServer`: the core [`Server`] seen from Python. The pure-Python `AsyncServer` wraps it;
//! everything here is synchronous and thread-safe, and releases the GIL while the core works.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Response};
use http_body_util::Full;
use polysio::adapter::redis::RedisAdapter;
use polysio::engine::{
    CookieConfig, CorsConfig, CorsOrigin, EngineConfig, Handshake, ListenerConfig, TransportType,
};
use polysio::server::{
    BroadcastOperator, ConnectError, Namespace, RecoveryConfig, Server, ServerConfig,
    ServerSideAck, Socket,
};
use polysio::Value;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList, PyString, PyTuple};

use crate::convert::{to_args, to_py};
use crate::errors::{BadNamespaceError, DisconnectedError, InvalidArgumentError, ResultExt};
use crate::hub::{environ, AckGuard, AckKind, Event, Hub};
use crate::redis::RedisOptions;
use crate::runtime;

/// A duration option given in seconds.
pub(crate) fn seconds(name: &str, s: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(s).map_err(|_| {
        PyValueError::new_err(format!(
            "{name} must be a non-negative number of seconds, got {s}"
        ))
    })
}

/// A timeout option given in seconds: a positive number.
pub(crate) fn timeout(name: &str, s: f64) -> PyResult<Duration> {
    if s.is_nan() || s <= 0.0 {
        return Err(PyValueError::new_err(format!(
            "{name} must be a positive number of seconds, got {s}"
        )));
    }
    seconds(name, s)
}

/// A count option: an integer of at least 1.
fn count(name: &str, n: i64) -> PyResult<usize> {
    usize::try_from(n)
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| PyValueError::new_err(format!("{name} must be an integer >= 1, got {n}")))
}

/// What to do to a socket whose connect handler is still running, once it is connected.
enum Op {
    Emit {
        event: String,
        args: Vec<Value>,
    },
    EmitAck {
        event: String,
        args: Vec<Value>,
        timeout: Option<Duration>,
        guard: AckGuard,
    },
    Join(String),
    Leave(String),
    Disconnect,
}

impl Op {
    fn run(self, socket: &Arc<Socket>) {
        let r = match self {
            Op::Emit { event, args } => socket.emit(&event, args),
            Op::EmitAck {
                event,
                args,
                timeout,
                guard,
            } => socket.emit_with_ack_cb(&event, args, timeout, move |r| guard.complete(r)),
            Op::Join(room) => {
                socket.join(&[&room]);
                Ok(())
            }
            Op::Leave(room) => {
                socket.leave(&room);
                Ok(())
            }
            Op::Disconnect => {
                socket.disconnect(false);
                Ok(())
            }
        };
        // The socket may already be gone again; an ack's guard reports that to its callback.
        let _ = r;
    }
}

/// A socket between CONNECT and the connect handler's answer.
struct Pending {
    socket: Arc<Socket>,
    ops: Vec<Op>,
}

type Key = (String, String);

struct State {
    hub: Arc<Hub>,
    /// Namespaces by name: the static ones, and dynamic children once a client reached them.
    namespaces: RwLock<HashMap<String, Namespace>>,
    pending: Mutex<HashMap<Key, Pending>>,
}

impl State {
    fn namespace(&self, name: &str) -> Option<Namespace> {
        self.namespaces
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `op` on socket `sid` now, or queues it while its connect handler runs.
    fn with_socket(
        &self,
        nsp: &str,
        sid: &str,
        op: Op,
        now: impl FnOnce(&Arc<Socket>, Op) -> polysio::Result<()>,
    ) -> PyResult<()> {
        if let Some(p) = self.pending().get_mut(&(nsp.to_owned(), sid.to_owned())) {
            p.ops.push(op);
            return Ok(());
        }
        let socket = self.socket(nsp, sid)?;
        now(&socket, op).py_err()
    }

    fn socket(&self, nsp: &str, sid: &str) -> PyResult<Arc<Socket>> {
        self.namespace(nsp)
            .and_then(|n| n.socket(sid))
            .ok_or_else(|| {
                DisconnectedError::new_err(format!("{sid} is not connected to namespace {nsp}"))
            })
    }

    /// Wires a namespace (or the parent of dynamic ones) to the hub.
    fn wire(self: &Arc<Self>, nsp: &Namespace) {
        let st = self.clone();
        nsp.use_async(move |socket: Arc<Socket>| {
            let st = st.clone();
            async move { st.on_connect_request(socket).await }
        });
        let st = self.clone();
        nsp.on_connection(move |socket| st.on_connection(socket));
    }

    async fn on_connect_request(self: Arc<Self>, socket: Arc<Socket>) -> Result<(), ConnectError> {
        let nsp = socket.nsp().name().to_owned();
        let sid = socket.id().to_owned();
        let key = (nsp.clone(), sid.clone());
        self.pending().insert(
            key.clone(),
            Pending {
                socket: socket.clone(),
                ops: Vec::new(),
            },
        );
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.hub.push(Event::Connect {
            nsp: nsp.clone(),
            sid: sid.clone(),
            handshake: socket.handshake().request.clone(),
            auth: socket.handshake().auth.clone(),
            reply: tx,
        });
        let answer = rx
            .await
            .unwrap_or_else(|_| Err(ConnectError::new("Connection rejected by server")));
        if answer.is_err() {
            self.pending().remove(&key);
            return answer;
        }
        if socket.conn().is_closed() {
            // Gone while the handler ran: it will never connect, so say goodbye now.
            self.pending().remove(&key);
            self.hub.push(Event::Disconnect {
                nsp,
                sid: Some(sid),
                reason: "transport close".into(),
            });
            return Err(ConnectError::new("transport closed"));
        }
        Ok(())
    }

    fn on_connection(&self, socket: Arc<Socket>) {
        let nsp = socket.nsp().name().to_owned();
        let sid = socket.id().to_owned();
        self.namespaces
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(nsp.clone())
            .or_insert_with(|| socket.nsp().clone());
        if socket.recovered() {
            self.hub.push(Event::Recovered {
                nsp: nsp.clone(),
                sid: sid.clone(),
                handshake: socket.handshake().request.clone(),
            });
        }
        let hub = self.hub.clone();
        let (n, s) = (nsp.clone(), sid.clone());
        socket.on_fallback(move |socket, event, args, ack| {
            hub.push(Event::Message {
                nsp: n.clone(),
                sid: Some(s.clone()),
                event: event.to_owned(),
                args,
                ack: ack.map(AckKind::Server),
                // Counted until Python has handled it: the core stops reading from this client
                // while `max_pending_messages` of its messages are not handled yet.
                held: Some(socket.conn().hold()),
            })
        });
        let hub = self.hub.clone();
        let (n, s) = (nsp.clone(), sid.clone());
        socket.on_disconnect(move |_, reason| {
            hub.push(Event::Disconnect {
                nsp: n.clone(),
                sid: Some(s.clone()),
                reason: reason.as_str().to_owned(),
            })
        });
        let ops = self
            .pending()
            .remove(&(nsp, sid))
            .map(|p| p.ops)
            .unwrap_or_default();
        for op in ops {
            op.run(&socket);
        }
    }

    fn emit(
        &self,
        nsp: &str,
        event: &str,
        args: Vec<Value>,
        to: Vec<String>,
        skip: Vec<String>,
        local: bool,
    ) -> polysio::Result<()> {
        let mut rooms = to;
        if !rooms.is_empty() {
            // Sockets still in their connect handler get it once connected.
            let mut pending = self.pending();
            let before = rooms.len();
            rooms.retain(|r| {
                if skip.contains(r) {
                    return true;
                }
                match pending.get_mut(&(nsp.to_owned(), r.clone())) {
                    Some(p) => {
                        p.ops.push(Op::Emit {
                            event: event.to_owned(),
                            args: args.clone(),
                        });
                        false
                    }
                    None => true,
                }
            });
            if rooms.is_empty() && before > 0 {
                return Ok(());
            }
        }
        let Some(ns) = self.namespace(nsp) else {
            return Ok(());
        };
        let mut op: Option<BroadcastOperator> = None;
        for r in rooms {
            op = Some(match op {
                None => ns.to(r),
                Some(o) => o.to(r),
            });
        }
        for s in skip {
            op = Some(match op {
                None => ns.except(s),
                Some(o) => o.except(s),
            });
        }
        if local {
            op = Some(match op {
                None => ns.local(),
                Some(o) => o.local(),
            });
        }
        match op {
            Some(o) => o.emit(event, args),
            None => ns.emit(event, args),
        }
    }
}

/// Serves files outside the Socket.IO path, with python-engineio's `static_files` rules (the
/// server's own listener, and `polysio.ASGIApp`).
#[pyclass(frozen, module = "polysio._polysio")]
pub(crate) struct StaticFiles {
    map: HashMap<String, (String, Option<String>)>,
}

const CONTENT_TYPES: &[(&str, &str)] = &[
    ("css", "text/css"),
    ("gif", "image/gif"),
    ("html", "text/html"),
    ("ico", "image/x-icon"),
    ("jpg", "image/jpeg"),
    ("js", "application/javascript"),
    ("json", "application/json"),
    ("mjs", "application/javascript"),
    ("png", "image/png"),
    ("svg", "image/svg+xml"),
    ("txt", "text/plain"),
    ("wasm", "application/wasm"),
];

impl StaticFiles {
    fn from_py(d: &Bound<'_, PyDict>) -> PyResult<StaticFiles> {
        let mut map = HashMap::new();
        for (k, v) in d.iter() {
            let url: String = k.extract()?;
            let entry = if let Ok(s) = v.cast::<PyString>() {
                (s.to_cow()?.into_owned(), None)
            } else if let Ok(e) = v.cast::<PyDict>() {
                let filename = e
                    .get_item("filename")?
                    .ok_or_else(|| {
                        PyValueError::new_err(format!("static_files[{url:?}] has no 'filename'"))
                    })?
                    .extract::<String>()?;
                let ctype = e
                    .get_item("content_type")?
                    .map(|c| c.extract::<String>())
                    .transpose()?;
                (filename, ctype)
            } else {
                return Err(PyTypeError::new_err(format!(
                    "static_files[{url:?}] must be a str or a dict with 'filename'"
                )));
            };
            map.insert(url, entry);
        }
        Ok(StaticFiles { map })
    }

    /// The file and content type for a request path.
    fn resolve(&self, path: &str) -> Option<(String, String)> {
        let mut extra = String::new();
        let found = match self.map.get(path) {
            Some(f) => Some(f.clone()),
            None => {
                let mut p = path.to_owned();
                let mut f = None;
                while !p.is_empty() {
                    let (head, last) = match p.rsplit_once('/') {
                        Some((h, l)) => (h.to_owned(), l.to_owned()),
                        None => (String::new(), p.clone()),
                    };
                    extra = format!("/{last}{extra}");
                    p = head;
                    if let Some(x) = self.map.get(&p).or_else(|| self.map.get(&format!("{p}/"))) {
                        f = Some(x.clone());
                        break;
                    }
                }
                f
            }
        };
        if extra.contains("../") || extra.ends_with("/..") {
            return None;
        }
        let (mut filename, mut ctype) = found?;
        if filename.ends_with('/') && extra.starts_with('/') {
            extra.remove(0);
        }
        filename.push_str(&extra);
        if filename.ends_with('/') {
            match self.map.get("") {
                Some((f, c)) => {
                    filename.push_str(f);
                    if c.is_some() {
                        ctype = c.clone();
                    }
                }
                None => filename.push_str("index.html"),
            }
        }
        let ctype = ctype.unwrap_or_else(|| {
            let ext = Path::new(&filename)
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("");
            CONTENT_TYPES
                .iter()
                .find(|(e, _)| *e == ext)
                .map(|(_, c)| (*c).to_owned())
                .unwrap_or_else(|| "application/octet-stream".into())
        });
        Some((filename, ctype))
    }

    fn respond_py(&self, path: &str) -> Option<Response<Full<Bytes>>> {
        let (filename, ctype) = self.resolve(path)?;
        let body = std::fs::read(&filename).ok()?;
        let mut r = Response::new(Full::new(Bytes::from(body)));
        if let Ok(v) = HeaderValue::from_str(&ctype) {
            r.headers_mut().insert(header::CONTENT_TYPE, v);
        }
        Some(r)
    }
}

#[pymethods]
impl StaticFiles {
    /// The rules of a `static_files` mapping.
    #[new]
    fn py_new(mapping: &Bound<'_, PyDict>) -> PyResult<StaticFiles> {
        StaticFiles::from_py(mapping)
    }

    /// `(filename, content_type)` for a request path, if a rule matches.
    fn lookup(&self, path: &str) -> Option<(String, String)> {
        self.resolve(path)
    }
}

fn transports(list: Option<Vec<String>>) -> PyResult<Vec<TransportType>> {
    match list {
        None => Ok(vec![TransportType::Polling, TransportType::Websocket]),
        Some(l) => l
            .iter()
            .map(|t| {
                TransportType::parse(t).ok_or_else(|| {
                    PyValueError::new_err(format!(
                        "unknown transport {t:?} (expected 'polling' or 'websocket')"
                    ))
                })
            })
            .collect(),
    }
}

fn cors(
    origins: Option<&Bound<'_, PyAny>>,
    credentials: bool,
    methods: Option<Vec<String>>,
    allowed_headers: Option<Vec<String>>,
    exposed_headers: Option<Vec<String>>,
    max_age: Option<u64>,
) -> PyResult<Option<CorsConfig>> {
    let Some(o) = origins.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    let origin = if let Ok(b) = o.cast::<PyBool>() {
        if !b.is_true() {
            return Ok(None);
        }
        CorsOrigin::Mirror
    } else if let Ok(s) = o.cast::<PyString>() {
        match &*s.to_cow()? {
            "*" => CorsOrigin::Any,
            one => CorsOrigin::List(vec![one.to_owned()]),
        }
    } else {
        CorsOrigin::List(o.extract::<Vec<String>>().map_err(|_| {
            PyTypeError::new_err(
                "cors_allowed_origins must be None, True, '*', a str or a list of str",
            )
        })?)
    };
    let mut c = CorsConfig {
        origin,
        credentials,
        ..CorsConfig::default()
    };
    if let Some(m) = methods {
        c.methods = m;
    }
    c.allowed_headers = allowed_headers.unwrap_or_default();
    c.exposed_headers = exposed_headers.unwrap_or_default();
    c.max_age = max_age;
    Ok(Some(c))
}

fn cookie(c: Option<&Bound<'_, PyAny>>) -> PyResult<Option<CookieConfig>> {
    let Some(c) = c.filter(|c| !c.is_none()) else {
        return Ok(None);
    };
    let mut out = CookieConfig::default();
    if let Ok(s) = c.cast::<PyString>() {
        out.name = s.to_cow()?.into_owned();
        return Ok(Some(out));
    }
    let d = c
        .cast::<PyDict>()
        .map_err(|_| PyTypeError::new_err("cookie must be None, a str or a dict"))?;
    for (k, v) in d.iter() {
        let k: String = k.extract()?;
        match k.as_str() {
            "name" => out.name = v.extract()?,
            "path" => out.path = v.extract()?,
            "http_only" => out.http_only = v.extract()?,
            "same_site" => out.same_site = v.extract()?,
            "secure" => out.secure = v.extract()?,
            "max_age" => out.max_age = v.extract()?,
            other => {
                return Err(PyValueError::new_err(format!(
                    "unknown cookie option {other:?} (name, path, http_only, same_site, secure, max_age)"
                )))
            }
        }
    }
    Ok(Some(out))
}

fn recovery(r: Option<&Bound<'_, PyAny>>) -> PyResult<Option<RecoveryConfig>> {
    let Some(r) = r.filter(|r| !r.is_none()) else {
        return Ok(None);
    };
    if let Ok(b) = r.cast::<PyBool>() {
        return Ok(b.is_true().then(RecoveryConfig::default));
    }
    let d = r.cast::<PyDict>().map_err(|_| {
        PyTypeError::new_err("connection_state_recovery must be None, a bool or a dict")
    })?;
    let mut out = RecoveryConfig::default();
    for (k, v) in d.iter() {
        let k: String = k.extract()?;
        match k.as_str() {
            "max_disconnection_duration" => {
                out.max_disconnection_duration = seconds(&k, v.extract()?)?
            }
            "skip_middlewares" => out.skip_middlewares = v.extract()?,
            other => {
                return Err(PyValueError::new_err(format!(
                    "unknown connection_state_recovery option {other:?} \
                     (max_disconnection_duration, skip_middlewares)"
                )))
            }
        }
    }
    Ok(Some(out))
}

/// Calls the Python `allow_request(environ)` on the connection's worker thread.
fn allow_request(f: Py<PyAny>) -> polysio::engine::config::AllowRequest {
    Arc::new(move |h: &Handshake| {
        crate::runtime::with_python(|py| {
            let r = environ(py, h).and_then(|env| f.call1(py, (env,)));
            match r {
                Ok(v) if v.is_none(py) => Ok(()),
                Ok(v) => {
                    let v = v.bind(py);
                    if let Ok(s) = v.cast::<PyString>() {
                        Err(s.to_string_lossy().into_owned())
                    } else if v.is_truthy().unwrap_or(false) {
                        Ok(())
                    } else {
                        Err(String::new())
                    }
                }
                Err(e) => {
                    e.write_unraisable(py, None);
                    Err(String::new())
                }
            }
        })
        .unwrap_or_else(|| Err(String::new()))
    })
}

/// `values` as a Python list.
fn py_list<'py>(py: Python<'py>, values: &[Value]) -> PyResult<Bound<'py, PyList>> {
    let items = values
        .iter()
        .map(|v| to_py(py, v))
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, items)
}

/// The native half of `polysio.AsyncServer` (see there for the documentation).
#[pyclass(frozen, module = "polysio._polysio")]
pub(crate) struct NativeServer {
    pid: u32,
    runtime: tokio::runtime::Handle,
    io: Server,
    state: Arc<State>,
    closed: AtomicBool,
    /// The Redis adapter, when the server was given `redis` options.
    redis: Option<RedisAdapter>,
    /// serverSideEmit acks the other nodes wait for, by the id handed to Python.
    server_side_acks: Arc<Mutex<ServerSideAcks>>,
}

/// See [`NativeServer::server_side_acks`].
#[derive(Default)]
struct ServerSideAcks {
    next: i64,
    waiting: HashMap<i64, ServerSideAck>,
}

impl NativeServer {
    fn check(&self) -> PyResult<()> {
        runtime::check_open(self.pid, &self.closed, "server")
    }

    /// Namespace `nsp`, if this server serves it.
    fn served(&self, nsp: &str) -> PyResult<Namespace> {
        self.state.namespace(nsp).ok_or_else(|| {
            BadNamespaceError::new_err(format!("namespace {nsp:?} is not served (yet)"))
        })
    }

    /// The sockets of `nsp` in any of the rooms `to` (all when empty), except those in any of
    /// `skip`, on every node.
    fn operator(
        &self,
        nsp: &str,
        to: Option<Vec<String>>,
        skip: Option<Vec<String>>,
    ) -> PyResult<BroadcastOperator> {
        let ns = self.served(nsp)?;
        let mut op = ns.broadcast();
        for r in to.unwrap_or_default() {
            op = op.to(r);
        }
        for r in skip.unwrap_or_default() {
            op = op.except(r);
        }
        Ok(op)
    }

    fn redis(&self) -> PyResult<&RedisAdapter> {
        self.redis
            .as_ref()
            .ok_or_else(|| InvalidArgumentError::new_err("this server has no Redis manager"))
    }
}

#[pymethods]
impl NativeServer {
    #[new]
    #[pyo3(signature = (
        *,
        path = "/socket.io/",
        ping_interval = 25.0,
        ping_timeout = 20.0,
        upgrade_timeout = 10.0,
        max_http_buffer_size = 1_000_000,
        transports = None,
        allow_upgrades = true,
        cors_allowed_origins = None,
        cors_credentials = false,
        cors_methods = None,
        cors_allowed_headers = None,
        cors_exposed_headers = None,
        cors_max_age = None,
        cookie = None,
        allow_request = None,
        connect_timeout = 45.0,
        connection_state_recovery = None,
        max_attachments = None,
        static_files = None,
        http_request_body_timeout = 30.0,
        max_buffered_chunks = 10_000,
        max_buffered_bytes = 16_777_216,
        write_timeout = 30.0,
        max_pending_messages = 1024,
        max_handshakes_per_second = None,
        headers_timeout = 60.0,
        keep_alive_timeout = 5.0,
        max_connections = None,
        redis = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        path: &str,
        ping_interval: f64,
        ping_timeout: f64,
        upgrade_timeout: f64,
        max_http_buffer_size: usize,
        transports: Option<Vec<String>>,
        allow_upgrades: bool,
        cors_allowed_origins: Option<&Bound<'_, PyAny>>,
        cors_credentials: bool,
        cors_methods: Option<Vec<String>>,
        cors_allowed_headers: Option<Vec<String>>,
        cors_exposed_headers: Option<Vec<String>>,
        cors_max_age: Option<u64>,
        cookie: Option<&Bound<'_, PyAny>>,
        allow_request: Option<Py<PyAny>>,
        connect_timeout: f64,
        connection_state_recovery: Option<&Bound<'_, PyAny>>,
        max_attachments: Option<usize>,
        static_files: Option<&Bound<'_, PyDict>>,
        http_request_body_timeout: f64,
        max_buffered_chunks: i64,
        max_buffered_bytes: i64,
        write_timeout: f64,
        max_pending_messages: i64,
        max_handshakes_per_second: Option<i64>,
        headers_timeout: f64,
        keep_alive_timeout: f64,
        max_connections: Option<i64>,
        redis: Option<PyRef<'_, RedisOptions>>,
    ) -> PyResult<Self> {
        let mut path = path.to_owned();
        if !path.starts_with('/') {
            path.insert(0, '/');
        }
        if !path.ends_with('/') {
            path.push('/');
        }
        let config = ServerConfig {
            engine: EngineConfig {
                path,
                ping_interval: seconds("ping_interval", ping_interval)?,
                ping_timeout: seconds("ping_timeout", ping_timeout)?,
                upgrade_timeout: seconds("upgrade_timeout", upgrade_timeout)?,
                max_http_buffer_size,
                transports: self::transports(transports)?,
                allow_upgrades,
                cors: cors(
                    cors_allowed_origins,
                    cors_credentials,
                    cors_methods,
                    cors_allowed_headers,
                    cors_exposed_headers,
                    cors_max_age,
                )?,
                cookie: self::cookie(cookie)?,
                allow_request: allow_request.map(self::allow_request),
                http_request_body_timeout: timeout(
                    "http_request_body_timeout",
                    http_request_body_timeout,
                )?,
                max_buffered_chunks: count("max_buffered_chunks", max_buffered_chunks)?,
                max_buffered_bytes: count("max_buffered_bytes", max_buffered_bytes)?,
                write_timeout: timeout("write_timeout", write_timeout)?,
                max_pending_messages: count("max_pending_messages", max_pending_messages)?,
                max_handshakes_per_second: max_handshakes_per_second
                    .map(|n| {
                        u32::try_from(count("max_handshakes_per_second", n)?).map_err(|_| {
                            PyValueError::new_err(format!(
                                "max_handshakes_per_second must be at most {}, got {n}",
                                u32::MAX
                            ))
                        })
                    })
                    .transpose()?,
                listener: ListenerConfig {
                    headers_timeout: timeout("headers_timeout", headers_timeout)?,
                    keep_alive_timeout: timeout("keep_alive_timeout", keep_alive_timeout)?,
                    max_connections: max_connections
                        .map(|n| count("max_connections", n))
                        .transpose()?,
                },
            },
            connect_timeout: seconds("connect_timeout", connect_timeout)?,
            connection_state_recovery: recovery(connection_state_recovery)?,
            max_attachments: max_attachments
                .unwrap_or(polysio::parser::packet::DEFAULT_MAX_ATTACHMENTS),
            adapter: None,
        };
        let statics = static_files.map(StaticFiles::from_py).transpose()?;
        let handle = runtime::handle()?;
        let mut config = config;
        let (io, redis) = {
            let _guard = handle.enter();
            let redis = redis
                .map(|r| RedisAdapter::new(r.config.clone()))
                .transpose()
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
            config.adapter = redis.as_ref().map(RedisAdapter::factory);
            (Server::with_runtime(config, handle.clone()), redis)
        };
        if let Some(s) = statics {
            io.set_fallback(Arc::new(move |req| s.respond_py(req.uri().path())));
        }
        Ok(NativeServer {
            pid: std::process::id(),
            runtime: handle,
            io,
            state: Arc::new(State {
                hub: Arc::new(Hub::default()),
                namespaces: RwLock::new(HashMap::new()),
                pending: Mutex::new(HashMap::new()),
            }),
            closed: AtomicBool::new(false),
            redis,
            server_side_acks: Arc::default(),
        })
    }

    /// Accepts connections to namespace `name` (`"*"`: any namespace) and routes its events.
    fn add_namespace(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        self.check()?;
        py.detach(|| {
            let _guard = self.runtime.enter();
            if name == "*" {
                let parent = self.io.of_dynamic(|_, _| true);
                self.state.wire(&parent);
                return;
            }
            let nsp = self.io.of(name);
            let mut map = self
                .state
                .namespaces
                .write()
                .unwrap_or_else(|p| p.into_inner());
            if !map.contains_key(nsp.name()) {
                map.insert(nsp.name().to_owned(), nsp.clone());
                drop(map);
                self.state.wire(&nsp);
            }
        });
        Ok(())
    }

    /// Sets the callable that schedules `drain()` on the owner's event loop (None: detach).
    fn set_waker(&self, waker: Option<Py<PyAny>>) -> PyResult<()> {
        runtime::check_pid(self.pid, "server")?;
        self.state.hub.set_waker(waker);
        Ok(())
    }

    /// The descriptor the event loop watches for events (`loop.add_reader`): None where there
    /// is none (then use a waker callable).
    fn wake_fd(&self) -> PyResult<Option<i64>> {
        runtime::check_pid(self.pid, "server")?;
        Ok(self.state.hub.wake_fd())
    }

    /// Wakes through `wake_fd()` from now on (call `set_waker` first: a watchdog calls the waker
    /// if a wake goes unanswered for a second, to report a closed loop; `set_waker` detaches).
    fn use_wake_fd(&self) -> PyResult<()> {
        runtime::check_pid(self.pid, "server")?;
        self.state.hub.use_wake_fd(&self.runtime);
        Ok(())
    }

    /// Installs (None: removes, sending what is queued) the callable that schedules
    /// `flush_acks()` on the event loop; acks are then handed to the core in batches. Only
    /// when every ack is answered on that loop's thread.
    fn set_ack_flusher(&self, py: Python<'_>, flusher: Option<Py<PyAny>>) -> PyResult<()> {
        runtime::check_pid(self.pid, "server")?;
        self.state.hub.set_ack_flusher(py, flusher);
        Ok(())
    }

    /// Hands the acks queued since the last flush to the core's threads, which send them.
    fn flush_acks(&self) -> PyResult<()> {
        runtime::check_pid(self.pid, "server")?;
        self.state.hub.hand_over_acks(&self.runtime);
        Ok(())
    }

    /// Takes the queued events as tuples, at most `max` (0: all; when it returns `max`, more
    /// may be waiting: drain again, soon).
    #[pyo3(signature = (max=0))]
    fn drain<'py>(&self, py: Python<'py>, max: usize) -> PyResult<Vec<Bound<'py, PyTuple>>> {
        runtime::check_pid(self.pid, "server")?;
        self.state.hub.drain(py, max)
    }

    /// Holds back the writes of the broadcasts made on this thread until `uncork()`
    /// (`polysio::server::Cork`): the asyncio server corks from a drain until the handlers it
    /// started have run their first step, so their broadcasts reach each socket in one write.
    /// Nests.
    fn cork(&self) {
        polysio::server::Cork::begin();
    }

    /// Ends the last `cork()`: the broadcasts it held back are written. Does nothing without one.
    fn uncork(&self) {
        polysio::server::Cork::end();
    }

    /// Binds `host:port` (0: any free port) and serves in the background.
    /// Binds `host:port` and serves there; over TLS (https, wss) with `ssl_cert` (a PEM
    /// chain) and `ssl_key` (its PEM key) when both are given.
    #[pyo3(signature = (host, port, ssl_cert=None, ssl_key=None))]
    fn listen(
        &self,
        py: Python<'_>,
        host: String,
        port: u16,
        ssl_cert: Option<Vec<u8>>,
        ssl_key: Option<Vec<u8>>,
    ) -> PyResult<(String, u16)> {
        self.check()?;
        let tls = match (ssl_cert, ssl_key) {
            (Some(c), Some(k)) => Some(polysio::tls::ServerTls::from_pem(&c, &k).py_err()?),
            (None, None) => None,
            _ => {
                return Err(PyValueError::new_err(
                    "ssl_certfile and ssl_keyfile go together",
                ))
            }
        };
        let addr = py
            .detach(|| {
                self.runtime.block_on(async {
                    match tls {
                        Some(tls) => self.io.listen_tls((host.as_str(), port), tls).await,
                        None => self.io.listen((host.as_str(), port)).await,
                    }
                })
            })
            .map_err(PyErr::from)?;
        Ok((addr.ip().to_string(), addr.port()))
    }

    /// Answers one request a host received for the Socket.IO path (see `host.rs`): a response
    /// `(status, headers, body)`, or a `BodyTicket`, `PollTicket` or `WsTicket`.
    #[pyo3(signature = (method, path, query, headers, client=None, secure=false, websocket=false))]
    #[allow(clippy::too_many_arguments)]
    fn request<'py>(
        &self,
        py: Python<'py>,
        method: &str,
        path: &str,
        query: &str,
        headers: &Bound<'py, PyAny>,
        client: Option<&Bound<'py, PyAny>>,
        secure: bool,
        websocket: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.check()?;
        let args = crate::host::RequestArgs {
            method,
            path,
            query,
            headers,
            client,
            secure,
            websocket,
        };
        crate::host::request(py, self.io.engine(), &self.state.hub, args)
    }

    /// Disconnects everyone (`server shutting down`), closes every connection and the listeners.
    /// The disconnect events stay queued for a last `drain()`.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        runtime::check_pid(self.pid, "server")?;
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        py.detach(|| {
            self.state.hub.send_acks_now();
            self.runtime.block_on(self.io.close())
        });
        Ok(())
    }

    /// Stops delivering events (after `close()` and a last `drain()`).
    fn release(&self) {
        self.state.hub.close();
    }

    /// True once `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Emits to the sockets of `nsp` in any of `to` (all when empty), except those in `skip`;
    /// with `local`, to this node's sockets only (with a Redis manager).
    #[pyo3(signature = (nsp, event, args, to=None, skip=None, local=false))]
    #[allow(clippy::too_many_arguments)]
    fn emit(
        &self,
        py: Python<'_>,
        nsp: &str,
        event: &str,
        args: &Bound<'_, PyAny>,
        to: Option<Vec<String>>,
        skip: Option<Vec<String>>,
        local: bool,
    ) -> PyResult<()> {
        self.check()?;
        let args = to_args(args)?;
        py.detach(|| {
            self.state.hub.send_acks_now();
            self.state.emit(
                nsp,
                event,
                args,
                to.unwrap_or_default(),
                skip.unwrap_or_default(),
                local,
            )
        })
        .py_err()
    }

    /// Emits to socket `sid` asking for an ack; `callback(args, exc)` gets the outcome once.
    #[pyo3(signature = (nsp, sid, event, args, callback, timeout=None))]
    #[allow(clippy::too_many_arguments)]
    fn emit_with_ack(
        &self,
        py: Python<'_>,
        nsp: &str,
        sid: &str,
        event: &str,
        args: &Bound<'_, PyAny>,
        callback: Py<PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        self.check()?;
        // Checked before the socket is looked up: an invalid emit raises even to a socket that
        // has left (for which the caller may treat `DisconnectedError` as a no-op).
        if polysio::parser::packet::RESERVED_EVENTS.contains(&event) {
            return Err(InvalidArgumentError::new_err(format!(
                "\"{event}\" is a reserved event name"
            )));
        }
        let args = to_args(args)?;
        let timeout = timeout.map(|t| seconds("timeout", t)).transpose()?;
        let op = Op::EmitAck {
            event: event.to_owned(),
            args,
            timeout,
            guard: AckGuard::new(self.state.hub.clone(), callback),
        };
        py.detach(|| {
            self.state.hub.send_acks_now();
            self.state.with_socket(nsp, sid, op, |s, op| match op {
                Op::EmitAck {
                    event,
                    args,
                    timeout,
                    guard,
                } => s.emit_with_ack_cb(&event, args, timeout, move |r| guard.complete(r)),
                _ => Ok(()),
            })
        })
    }

    /// Puts socket `sid` in `room`.
    fn enter_room(&self, py: Python<'_>, nsp: &str, sid: &str, room: String) -> PyResult<()> {
        self.check()?;
        py.detach(|| {
            self.state
                .with_socket(nsp, sid, Op::Join(room.clone()), |s, _| {
                    s.join(&[&room]);
                    Ok(())
                })
        })
    }

    /// Takes socket `sid` out of `room`.
    fn leave_room(&self, py: Python<'_>, nsp: &str, sid: &str, room: String) -> PyResult<()> {
        self.check()?;
        py.detach(|| {
            self.state
                .with_socket(nsp, sid, Op::Leave(room.clone()), |s, _| {
                    s.leave(&room);
                    Ok(())
                })
        })
    }

    /// The rooms socket `sid` is in (its own id included).
    fn rooms(&self, py: Python<'_>, nsp: &str, sid: &str) -> PyResult<Vec<String>> {
        self.check()?;
        py.detach(|| {
            let key = (nsp.to_owned(), sid.to_owned());
            if let Some(p) = self.state.pending().get(&key) {
                let mut rooms = vec![p.socket.id().to_owned()];
                for op in &p.ops {
                    match op {
                        Op::Join(r) if !rooms.contains(r) => rooms.push(r.clone()),
                        Op::Leave(r) => rooms.retain(|x| x != r),
                        _ => {}
                    }
                }
                return Ok(rooms);
            }
            let s = self.state.socket(nsp, sid)?;
            Ok(s.rooms().iter().map(|r| r.to_string()).collect())
        })
    }

    /// Makes every socket of `nsp` leave `room`.
    fn close_room(&self, py: Python<'_>, nsp: &str, room: &str) -> PyResult<()> {
        self.check()?;
        py.detach(|| {
            if let Some(ns) = self.state.namespace(nsp) {
                ns.in_(room).sockets_leave(&[room]);
            }
        });
        Ok(())
    }

    /// Disconnects socket `sid` (`server namespace disconnect`); false if it is not connected.
    fn disconnect(&self, py: Python<'_>, nsp: &str, sid: &str) -> PyResult<bool> {
        self.check()?;
        Ok(py.detach(|| {
            self.state.hub.send_acks_now();
            self.state
                .with_socket(nsp, sid, Op::Disconnect, |s, _| {
                    s.disconnect(false);
                    Ok(())
                })
                .is_ok()
        }))
    }

    /// `"polling"` or `"websocket"`.
    fn transport(&self, py: Python<'_>, nsp: &str, sid: &str) -> PyResult<&'static str> {
        self.check()?;
        py.detach(|| {
            if let Some(p) = self.state.pending().get(&(nsp.to_owned(), sid.to_owned())) {
                return Ok(p.socket.conn().transport().as_str());
            }
            Ok(self.state.socket(nsp, sid)?.conn().transport().as_str())
        })
    }

    /// The ids of the sockets connected to `nsp`.
    fn sockets(&self, py: Python<'_>, nsp: &str) -> PyResult<Vec<String>> {
        self.check()?;
        Ok(py.detach(|| {
            self.state
                .namespace(nsp)
                .map(|n| n.sockets().iter().map(|s| s.id().to_owned()).collect())
                .unwrap_or_default()
        }))
    }

    /// The number of servers of the cluster serving `nsp` (this one included): 1 without a
    /// Redis manager. Blocks until the answer (call it off the event loop).
    fn server_count(&self, py: Python<'_>, nsp: &str) -> PyResult<usize> {
        self.check()?;
        let ns = self.served(nsp)?;
        py.detach(|| self.runtime.block_on(ns.server_count()))
            .py_err()
    }

    /// Waits (blocking) until the Redis subscriber is connected and subscribed to every
    /// namespace, at most `timeout` seconds (`TimeoutError` then).
    fn redis_ready(&self, py: Python<'_>, timeout: f64) -> PyResult<()> {
        self.check()?;
        let timeout = seconds("timeout", timeout)?;
        let redis = self.redis()?;
        py.detach(|| self.runtime.block_on(redis.ready(timeout)))
            .py_err()
    }

    /// The Redis adapter's counters and id: a dict with `uid`, `published`, `received`,
    /// `malformed`, `dropped`, `connections`.
    fn redis_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let redis = self.redis()?;
        let s = redis.stats();
        let d = PyDict::new(py);
        d.set_item("uid", redis.uid())?;
        d.set_item("published", s.published)?;
        d.set_item("received", s.received)?;
        d.set_item("malformed", s.malformed)?;
        d.set_item("dropped", s.dropped)?;
        d.set_item("connections", s.connections)?;
        Ok(d)
    }

    /// The sockets selected as [`NativeServer::operator`] does, on every node (blocking): a
    /// list of dicts `{"sid", "rooms", "data", "handshake"}`.
    #[pyo3(signature = (nsp, to=None, skip=None))]
    fn fetch_sockets<'py>(
        &self,
        py: Python<'py>,
        nsp: &str,
        to: Option<Vec<String>>,
        skip: Option<Vec<String>>,
    ) -> PyResult<Bound<'py, PyList>> {
        self.check()?;
        let op = self.operator(nsp, to, skip)?;
        let sockets = py
            .detach(|| self.runtime.block_on(op.fetch_sockets()))
            .py_err()?;
        let out = PyList::empty(py);
        for s in sockets {
            let d = PyDict::new(py);
            d.set_item("sid", &*s.id)?;
            let rooms: Vec<&str> = s.rooms.iter().map(|r| &**r).collect();
            d.set_item("rooms", rooms)?;
            d.set_item("data", to_py(py, &s.data)?)?;
            d.set_item("handshake", to_py(py, &s.handshake)?)?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// Makes the selected sockets of every node join `rooms` (`join`), or leave them.
    #[pyo3(signature = (nsp, join, rooms, to=None, skip=None))]
    fn sockets_rooms(
        &self,
        py: Python<'_>,
        nsp: &str,
        join: bool,
        rooms: Vec<String>,
        to: Option<Vec<String>>,
        skip: Option<Vec<String>>,
    ) -> PyResult<()> {
        self.check()?;
        let op = self.operator(nsp, to, skip)?;
        py.detach(|| {
            let rooms: Vec<&str> = rooms.iter().map(String::as_str).collect();
            if join {
                op.sockets_join(&rooms)
            } else {
                op.sockets_leave(&rooms)
            }
        });
        Ok(())
    }

    /// Disconnects the selected sockets of every node (`server namespace disconnect`; with
    /// `close`, their whole connection).
    #[pyo3(signature = (nsp, close=false, to=None, skip=None))]
    fn disconnect_sockets(
        &self,
        py: Python<'_>,
        nsp: &str,
        close: bool,
        to: Option<Vec<String>>,
        skip: Option<Vec<String>>,
    ) -> PyResult<()> {
        self.check()?;
        let op = self.operator(nsp, to, skip)?;
        py.detach(|| {
            self.state.hub.send_acks_now();
            op.disconnect_sockets(close)
        });
        Ok(())
    }

    /// Every room of `nsp` on every node, socket ids included (blocking).
    fn all_rooms(&self, py: Python<'_>, nsp: &str) -> PyResult<Vec<String>> {
        self.check()?;
        let ns = self.served(nsp)?;
        let rooms = py
            .detach(|| self.runtime.block_on(ns.all_rooms()))
            .py_err()?;
        Ok(rooms.iter().map(|r| r.to_string()).collect())
    }

    /// Emits `event` to the selected sockets of every node, asking each for an ack within
    /// `timeout` seconds (blocking): the list of their acks' arguments, or `TimeoutError`.
    #[pyo3(signature = (nsp, event, args, timeout, to=None, skip=None))]
    #[allow(clippy::too_many_arguments)]
    fn broadcast_with_ack<'py>(
        &self,
        py: Python<'py>,
        nsp: &str,
        event: &str,
        args: &Bound<'py, PyAny>,
        timeout: f64,
        to: Option<Vec<String>>,
        skip: Option<Vec<String>>,
    ) -> PyResult<Bound<'py, PyList>> {
        self.check()?;
        let args = to_args(args)?;
        let t = self::timeout("timeout", timeout)?;
        let op = self.operator(nsp, to, skip)?.timeout(t);
        let replies = py
            .detach(|| {
                self.state.hub.send_acks_now();
                self.runtime.block_on(op.emit_with_ack(event, args))
            })
            .py_err()?;
        let out = PyList::empty(py);
        for r in replies {
            out.append(py_list(py, &r)?)?;
        }
        Ok(out)
    }

    /// Calls `callback([ack_id, *args], None)` on the event loop for each `event` another node
    /// of the cluster sends with serverSideEmit to `nsp`; `ack_id` is None, or the id to answer
    /// with [`NativeServer::server_side_reply`] when the sender waits for an answer.
    fn on_server_side(&self, nsp: &str, event: &str, callback: Py<PyAny>) -> PyResult<()> {
        self.check()?;
        let ns = self.served(nsp)?;
        let hub = self.state.hub.clone();
        let acks = self.server_side_acks.clone();
        ns.on_server_side_emit(event, move |args, ack| {
            let id = match ack {
                Some(ack) => {
                    let mut a = acks.lock().unwrap_or_else(|p| p.into_inner());
                    a.next += 1;
                    let id = a.next;
                    a.waiting.insert(id, ack);
                    Value::Int(id)
                }
                None => Value::Null,
            };
            let Some(callback) = runtime::with_python(|py| callback.clone_ref(py)) else {
                return;
            };
            let mut all = Vec::with_capacity(args.len() + 1);
            all.push(id);
            all.extend(args);
            hub.push(Event::Done {
                callback,
                result: Ok(all),
            });
        });
        Ok(())
    }

    /// Answers the serverSideEmit that `on_server_side` gave `ack_id` (once; later calls do
    /// nothing).
    fn server_side_reply(&self, ack_id: i64, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let value = crate::convert::to_value(value)?;
        let ack = self
            .server_side_acks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .waiting
            .remove(&ack_id);
        if let Some(ack) = ack {
            ack.send(value);
        }
        Ok(())
    }

    /// serverSideEmit: sends `event` with `args` to the other nodes of the cluster serving
    /// `nsp` (not to this one).
    fn server_side_emit(
        &self,
        py: Python<'_>,
        nsp: &str,
        event: &str,
        args: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        self.check()?;
        let ns = self.served(nsp)?;
        let args = to_args(args)?;
        py.detach(|| ns.server_side_emit(event, args)).py_err()
    }

    /// serverSideEmitWithAck (blocking): the answer of every other node, or `TimeoutError`
    /// when they have not all answered within `timeout` seconds.
    fn server_side_emit_with_ack<'py>(
        &self,
        py: Python<'py>,
        nsp: &str,
        event: &str,
        args: &Bound<'py, PyAny>,
        timeout: f64,
    ) -> PyResult<Bound<'py, PyList>> {
        self.check()?;
        let ns = self.served(nsp)?;
        let args = to_args(args)?;
        let t = self::timeout("timeout", timeout)?;
        let replies = py
            .detach(|| {
                self.runtime
                    .block_on(ns.server_side_emit_with_ack(event, args, t))
            })
            .py_err()?;
        py_list(py, &replies)
    }
}
