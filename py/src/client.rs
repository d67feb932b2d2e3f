//! `NativeClient`: one core client connection (a [`Manager`]) and its namespace sockets, seen
//! from Python. The pure-Python `AsyncClient` wraps it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use polysio::client::{Auth, ClientBuilder, ClientOptions, Manager, Socket, TransportKind};
use polysio::Value;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::convert::{to_args, to_value};
use crate::errors::{BadNamespaceError, ResultExt};
use crate::hub::{AckGuard, AckKind, Event, Hub};
use crate::runtime;
use crate::server::seconds;

const MANAGER_EVENTS: &[&str] = &[
    "open",
    "close",
    "error",
    "reconnect_attempt",
    "reconnect",
    "reconnect_error",
    "reconnect_failed",
];

/// The native half of `polysio.AsyncClient` (see there for the documentation).
#[pyclass(frozen, module = "polysio._polysio")]
pub(crate) struct NativeClient {
    pid: u32,
    runtime: tokio::runtime::Handle,
    hub: Arc<Hub>,
    /// Shared with the namespaces' event handlers as a `Weak` (for [`Manager::hold`]): they live
    /// in the manager, which must not keep itself alive.
    manager: Arc<Manager>,
    sockets: Mutex<HashMap<String, Socket>>,
    closed: AtomicBool,
}

impl NativeClient {
    fn check(&self) -> PyResult<()> {
        runtime::check_open(self.pid, &self.closed, "client")
    }

    fn socket(&self, nsp: &str) -> PyResult<Socket> {
        self.sockets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(nsp)
            .cloned()
            .ok_or_else(|| {
                BadNamespaceError::new_err(format!("{nsp} is not a connected namespace"))
            })
    }
}

fn auth(a: Option<&Bound<'_, PyAny>>) -> PyResult<Auth> {
    let Some(a) = a.filter(|a| !a.is_none()) else {
        return Ok(Auth::None);
    };
    if a.is_callable() {
        // Evaluated on the connection's task at each (re)connection.
        let f: Py<PyAny> = a.clone().unbind();
        return Ok(Auth::callback(move || {
            crate::runtime::with_python(|py| match f.call0(py).and_then(|v| to_value(v.bind(py))) {
                Ok(v) => v,
                Err(e) => {
                    e.write_unraisable(py, None);
                    Value::Null
                }
            })
            .unwrap_or(Value::Null)
        }));
    }
    Ok(Auth::Value(to_value(a)?))
}

#[pymethods]
impl NativeClient {
    #[new]
    #[pyo3(signature = (
        url,
        *,
        transports = None,
        path = "/socket.io/",
        headers = None,
        reconnection = true,
        reconnection_attempts = None,
        reconnection_delay = 1.0,
        reconnection_delay_max = 5.0,
        randomization_factor = 0.5,
        timeout = 20.0,
        ack_timeout = None,
        send_buffer_max = 10_000,
        upgrade = true,
        max_pending_messages = 1024,
        ssl_verify = true,
        ssl_ca = None,
        ssl_cert = None,
        ssl_key = None,
        proxy = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        url: &str,
        transports: Option<Vec<String>>,
        path: &str,
        headers: Option<HashMap<String, String>>,
        reconnection: bool,
        reconnection_attempts: Option<u32>,
        reconnection_delay: f64,
        reconnection_delay_max: f64,
        randomization_factor: f64,
        timeout: f64,
        ack_timeout: Option<f64>,
        send_buffer_max: usize,
        upgrade: bool,
        max_pending_messages: i64,
        ssl_verify: bool,
        ssl_ca: Option<Vec<u8>>,
        ssl_cert: Option<Vec<u8>>,
        ssl_key: Option<Vec<u8>>,
        proxy: Option<String>,
    ) -> PyResult<Self> {
        let max_pending_messages = usize::try_from(max_pending_messages)
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                PyValueError::new_err(format!(
                    "max_pending_messages must be an integer >= 1, got {max_pending_messages}"
                ))
            })?;
        let transports = match transports {
            None => vec![TransportKind::Polling, TransportKind::Websocket],
            Some(list) => list
                .iter()
                .map(|t| match t.as_str() {
                    "polling" => Ok(TransportKind::Polling),
                    "websocket" => Ok(TransportKind::Websocket),
                    other => Err(PyValueError::new_err(format!(
                        "unknown transport {other:?} (expected 'polling' or 'websocket')"
                    ))),
                })
                .collect::<PyResult<Vec<_>>>()?,
        };
        if !(0.0..=1.0).contains(&randomization_factor) {
            return Err(PyValueError::new_err(
                "randomization_factor must be between 0 and 1",
            ));
        }
        let opts = ClientOptions {
            transports,
            upgrade,
            path: path.to_owned(),
            query: Vec::new(),
            extra_headers: headers.unwrap_or_default().into_iter().collect(),
            auth: Auth::None,
            reconnection,
            reconnection_attempts: reconnection_attempts.unwrap_or(u32::MAX),
            reconnection_delay: seconds("reconnection_delay", reconnection_delay)?,
            reconnection_delay_max: seconds("reconnection_delay_max", reconnection_delay_max)?,
            randomization_factor,
            timeout: seconds("timeout", timeout)?,
            ack_timeout: ack_timeout.map(|t| seconds("ack_timeout", t)).transpose()?,
            send_buffer_max,
            max_pending_messages,
            tls: polysio::client::TlsOptions {
                ca_pem: ssl_ca,
                client_cert_pem: ssl_cert,
                client_key_pem: ssl_key,
                danger_accept_invalid_certs: !ssl_verify,
            },
            proxy: match proxy {
                None => polysio::client::Proxy::Environment,
                Some(p) if p.is_empty() => polysio::client::Proxy::Direct,
                Some(p) => polysio::client::Proxy::Url(p),
            },
        };
        let handle = runtime::handle()?;
        let manager = ClientBuilder::new(url)
            .options(opts)
            .manager_on(handle.clone())
            .py_err()?;
        let hub = Arc::new(Hub::default());
        for event in MANAGER_EVENTS {
            let hub = hub.clone();
            manager.on(event, move |args, _| {
                hub.push(Event::Manager {
                    event: (*event).to_owned(),
                    args,
                })
            });
        }
        Ok(NativeClient {
            pid: std::process::id(),
            runtime: handle,
            hub,
            manager: Arc::new(manager),
            sockets: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
        })
    }

    /// Sets the callable that schedules `drain()` on the owner's event loop (None: detach).
    fn set_waker(&self, waker: Option<Py<PyAny>>) -> PyResult<()> {
        runtime::check_pid(self.pid, "client")?;
        self.hub.set_waker(waker);
        Ok(())
    }

    /// The descriptor the event loop watches for events (`loop.add_reader`): None where there
    /// is none (then use a waker callable).
    fn wake_fd(&self) -> PyResult<Option<i64>> {
        runtime::check_pid(self.pid, "client")?;
        Ok(self.hub.wake_fd())
    }

    /// Wakes through `wake_fd()` from now on (call `set_waker` first: a watchdog calls the waker
    /// if a wake goes unanswered for a second, to report a closed loop; `set_waker` detaches).
    fn use_wake_fd(&self) -> PyResult<()> {
        runtime::check_pid(self.pid, "client")?;
        self.hub.use_wake_fd(&self.runtime);
        Ok(())
    }

    /// Installs (None: removes, sending what is queued) the callable that schedules
    /// `flush_acks()` on the event loop; acks are then handed to the core in batches. Only
    /// when every ack is answered on that loop's thread.
    fn set_ack_flusher(&self, py: Python<'_>, flusher: Option<Py<PyAny>>) -> PyResult<()> {
        runtime::check_pid(self.pid, "client")?;
        self.hub.set_ack_flusher(py, flusher);
        Ok(())
    }

    /// Hands the acks queued since the last flush to the core's threads, which send them.
    fn flush_acks(&self) -> PyResult<()> {
        runtime::check_pid(self.pid, "client")?;
        self.hub.hand_over_acks(&self.runtime);
        Ok(())
    }

    /// Takes the queued events as tuples, at most `max` (0: all; when it returns `max`, more
    /// may be waiting: drain again, soon).
    #[pyo3(signature = (max=0))]
    fn drain<'py>(&self, py: Python<'py>, max: usize) -> PyResult<Vec<Bound<'py, PyTuple>>> {
        runtime::check_pid(self.pid, "client")?;
        self.hub.drain(py, max)
    }

    /// Connects namespace `nsp` with `auth` (a dict, a callable returning one, or None).
    #[pyo3(signature = (nsp, auth=None))]
    fn connect_namespace(
        &self,
        py: Python<'_>,
        nsp: &str,
        auth: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.check()?;
        let auth = self::auth(auth)?;
        py.detach(|| {
            let socket = self.manager.socket_with_auth(nsp, Some(auth));
            let name = socket.nsp().to_owned();
            let hub = self.hub.clone();
            let n = name.clone();
            socket.on("connect", move |_, _| {
                hub.push(Event::ClientConnect { nsp: n.clone() })
            });
            let hub = self.hub.clone();
            let n = name.clone();
            socket.on("connect_error", move |mut args, _| {
                hub.push(Event::ClientConnectError {
                    nsp: n.clone(),
                    data: if args.is_empty() {
                        Value::Null
                    } else {
                        args.swap_remove(0)
                    },
                })
            });
            let hub = self.hub.clone();
            let n = name.clone();
            socket.on("disconnect", move |args, _| {
                hub.push(Event::Disconnect {
                    nsp: n.clone(),
                    sid: None,
                    reason: args
                        .first()
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                })
            });
            let hub = self.hub.clone();
            let n = name.clone();
            let manager = Arc::downgrade(&self.manager);
            socket.on_any(move |event, args, ack| {
                hub.push(Event::Message {
                    nsp: n.clone(),
                    sid: None,
                    event: event.to_owned(),
                    args,
                    ack: ack.map(AckKind::Client),
                    // Counted until Python has handled it: the client stops reading from the
                    // server while `max_pending_messages` are not handled yet.
                    held: manager.upgrade().map(|m| m.hold()),
                })
            });
            socket.connect();
            self.sockets
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(name, socket);
        });
        Ok(())
    }

    /// Emits `event` on namespace `nsp` (buffered while reconnecting).
    fn emit(
        &self,
        py: Python<'_>,
        nsp: &str,
        event: &str,
        args: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        self.check()?;
        let args = to_args(args)?;
        let socket = self.socket(nsp)?;
        py.detach(|| {
            self.hub.send_acks_now();
            socket.emit(event, args)
        })
        .py_err()
    }

    /// Emits asking for an ack; `callback(args, exc)` gets the outcome once.
    #[pyo3(signature = (nsp, event, args, callback, timeout=None))]
    fn emit_with_ack(
        &self,
        py: Python<'_>,
        nsp: &str,
        event: &str,
        args: &Bound<'_, PyAny>,
        callback: Py<PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        self.check()?;
        let args = to_args(args)?;
        let socket = self.socket(nsp)?;
        let timeout = timeout.map(|t| seconds("timeout", t)).transpose()?;
        let guard = AckGuard::new(self.hub.clone(), callback);
        py.detach(|| {
            self.hub.send_acks_now();
            let cb = move |r| guard.complete(r);
            match timeout {
                Some(t) => socket.timeout(t).emit_with_ack_cb(event, args, cb),
                None => socket.emit_with_ack_cb(event, args, cb),
            }
        })
        .py_err()
    }

    /// The session id of namespace `nsp`, while connected.
    fn sid(&self, nsp: &str) -> Option<String> {
        self.socket(nsp).ok().and_then(|s| s.id())
    }

    /// The transport the connection uses now (`"polling"` or `"websocket"`), `None` while it
    /// is not open.
    fn transport(&self) -> Option<&'static str> {
        self.manager.transport().map(|t| t.as_str())
    }

    /// True while namespace `nsp` is connected.
    fn connected(&self, nsp: &str) -> bool {
        self.socket(nsp).is_ok_and(|s| s.connected())
    }

    /// True while namespace `nsp` should be connected (false once refused, disconnected by
    /// the server or by `disconnect()`).
    fn active(&self, nsp: &str) -> bool {
        self.socket(nsp).is_ok_and(|s| s.active())
    }

    /// Disconnects every namespace (`io client disconnect`); no reconnection follows.
    fn disconnect(&self, py: Python<'_>) -> PyResult<()> {
        runtime::check_pid(self.pid, "client")?;
        let sockets: Vec<Socket> = self
            .sockets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        py.detach(|| {
            self.hub.send_acks_now();
            for s in sockets {
                s.disconnect();
            }
            self.manager.close();
        });
        Ok(())
    }

    /// Closes the connection for good; `callback(args, exc)` runs once its task has ended.
    fn shutdown(&self, py: Python<'_>, callback: Py<PyAny>) -> PyResult<()> {
        runtime::check_pid(self.pid, "client")?;
        self.closed.store(true, Ordering::Release);
        py.detach(|| self.hub.send_acks_now());
        let guard = AckGuard::new(self.hub.clone(), callback);
        let manager = Manager::clone(&self.manager);
        self.runtime.spawn(async move {
            manager.shutdown().await;
            guard.complete(Ok(Vec::new()));
        });
        Ok(())
    }

    /// Stops delivering events (after `shutdown()` completed).
    fn release(&self) {
        self.hub.close();
    }
}
