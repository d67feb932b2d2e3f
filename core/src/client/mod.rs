//! The Socket.IO client: one [`Manager`] per Engine.IO connection (HTTP long-polling, WebSocket,
//! and the upgrade between them), several namespace [`Socket`]s multiplexed over it.
//!
//! Behaviour follows the reference `socket.io-client` 4.8: reconnection with exponential backoff,
//! an offline send buffer, acknowledgements both ways, connection state recovery, and the same
//! event names and disconnect reasons.
//!
//! Everything runs on one task per manager, spawned on the tokio runtime the client is built
//! from (the core never creates a runtime). Handlers run inline on that task, so they should
//! return quickly; emit functions only queue into a channel and can be called from any thread.
//!
//! ```no_run
//! # async fn run() -> polysio::Result<()> {
//! use polysio::client::ClientBuilder;
//! use polysio::Value;
//!
//! let socket = ClientBuilder::new("http://127.0.0.1:3000")
//!     .on("connect", |_, _| println!("connected"))
//!     .on("ping", |args, ack| {
//!         if let Some(ack) = ack {
//!             let _ = ack.send(args);
//!         }
//!     })
//!     .connect()
//!     .await?;
//! let reply = socket.timeout(std::time::Duration::from_secs(5))
//!     .emit_with_ack("hello", vec![Value::from(1)])
//!     .await?;
//! println!("{reply:?}");
//! socket.disconnect();
//! # Ok(()) }
//! ```
//!
//! Handlers that capture a [`Socket`] keep its manager alive; call
//! [`Socket::disconnect`] or [`Manager::close`] to end the connection in that case.

mod backoff;
mod options;
mod task;
pub(crate) mod transport;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

pub use options::{Auth, ClientBuilder, ClientOptions, Proxy, TlsOptions};
pub use transport::TransportKind;

use crate::error::{Error, Result};
use crate::parser::packet::RESERVED_EVENTS;
use crate::value::Value;

/// An event handler: the event's arguments and, when the server asked for one, an
/// [`AckResponder`]. Runs on the connection's task.
pub type Handler = Arc<dyn Fn(Vec<Value>, Option<AckResponder>) + Send + Sync>;
/// A catch-all handler: the event name, its arguments and an optional [`AckResponder`].
pub type AnyHandler = Arc<dyn Fn(&str, Vec<Value>, Option<AckResponder>) + Send + Sync>;
pub(crate) type AckSink = Box<dyn FnOnce(Result<Vec<Value>>) + Send>;

pub(crate) enum Cmd {
    Register {
        shared: Arc<SocketShared>,
        auth: Auth,
    },
    SetAuth {
        nsp: String,
        auth: Auth,
    },
    Connect {
        nsp: String,
    },
    Disconnect {
        nsp: String,
    },
    Emit {
        nsp: String,
        event: String,
        args: Vec<Value>,
        volatile: bool,
        ack: Option<(AckSink, Option<Duration>)>,
    },
    Ack {
        nsp: String,
        id: u64,
        args: Vec<Value>,
    },
    Open,
    Close,
    Shutdown,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct SocketStatus {
    pub connected: bool,
    pub active: bool,
    pub id: Option<String>,
    pub recovered: bool,
}

/// Event listeners. The handles register them at once (not through the task's command queue),
/// so a listener added before an event arrives always sees it, however late the task runs.
#[derive(Default)]
pub(crate) struct Listeners {
    pub events: HashMap<String, Vec<Handler>>,
    pub any: Vec<AnyHandler>,
}

/// The manager's own event listeners, shared by its handles and its task.
pub(crate) type ManagerListeners = Arc<RwLock<HashMap<String, Vec<Handler>>>>;

/// Reads `l` even if a writer panicked (listeners stay usable).
pub(crate) fn read_listeners<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write_listeners<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

pub(crate) struct SocketShared {
    pub nsp: String,
    pub status: Mutex<SocketStatus>,
    pub listeners: RwLock<Listeners>,
    /// Packets emitted but not yet handed to a transport (the bounded send buffer).
    pub queued: AtomicUsize,
}

impl SocketShared {
    pub fn status(&self) -> SocketStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }
    pub fn update(&self, f: impl FnOnce(&mut SocketStatus)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s)
        }
    }
}

struct ManagerInner {
    cmd: mpsc::UnboundedSender<Cmd>,
    opts: Arc<ClientOptions>,
    sockets: Mutex<HashMap<String, Arc<SocketShared>>>,
    done: watch::Receiver<bool>,
    transport: Arc<std::sync::atomic::AtomicU8>,
    listeners: ManagerListeners,
    gate: Arc<crate::engine::gate::Gate>,
}

impl Drop for ManagerInner {
    fn drop(&mut self) {
        let _ = self.cmd.send(Cmd::Shutdown);
    }
}

/// One Engine.IO connection to a server, shared by the namespace sockets created from it.
///
/// Dropping the last handle (the manager and all its sockets) closes the connection and ends
/// its task.
///
/// ```no_run
/// # async fn run() -> polysio::Result<()> {
/// use polysio::client::ClientBuilder;
/// let manager = ClientBuilder::new("http://127.0.0.1:3000").manager()?;
/// manager.on("reconnect_attempt", |args, _| println!("attempt {:?}", args[0]));
/// let main = manager.socket("/");
/// let admin = manager.socket("/admin");
/// main.connect();
/// admin.connect();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Manager {
    inner: Arc<ManagerInner>,
}

impl Manager {
    pub(crate) fn start(
        handle: tokio::runtime::Handle,
        url: &options::ServerUrl,
        opts: ClientOptions,
    ) -> Result<Manager> {
        let ep = Arc::new(opts.endpoint(url)?);
        let gate = ep.gate.clone();
        let opts = Arc::new(opts);
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (done_tx, done_rx) = watch::channel(false);
        let transport = Arc::new(std::sync::atomic::AtomicU8::new(0));
        let listeners = Arc::new(RwLock::new(HashMap::new()));
        let task = task::Task::new(
            opts.clone(),
            ep,
            cmd_rx,
            cmd_tx.downgrade(),
            transport.clone(),
            listeners.clone(),
        );
        handle.spawn(async move {
            task.run().await;
            let _ = done_tx.send(true);
        });
        Ok(Manager {
            inner: Arc::new(ManagerInner {
                cmd: cmd_tx,
                opts,
                sockets: Mutex::new(HashMap::new()),
                done: done_rx,
                transport,
                listeners,
                gate,
            }),
        })
    }

    /// Counts one message handed to a slow consumer (a binding's event loop) until the guard is
    /// dropped, once it has been handled. While `max_pending_messages` are held, the client
    /// reads nothing more from the server, which meets TCP backpressure; nothing is dropped.
    pub fn hold(&self) -> crate::engine::Held {
        self.inner.gate.hold()
    }

    /// The socket of namespace `nsp` (created on first use, then the same one), with the
    /// manager's default auth. It is not connected until [`Socket::connect`].
    pub fn socket(&self, nsp: &str) -> Socket {
        self.socket_with_auth(nsp, None)
    }

    /// Like [`socket`](Self::socket), with an auth payload of its own (used when the socket is
    /// created by this call).
    pub fn socket_with_auth(&self, nsp: &str, auth: Option<Auth>) -> Socket {
        let nsp = if nsp.starts_with('/') {
            nsp.to_owned()
        } else {
            format!("/{nsp}")
        };
        let mut map = match self.inner.sockets.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let shared = map
            .entry(nsp.clone())
            .or_insert_with(|| {
                let shared = Arc::new(SocketShared {
                    nsp: nsp.clone(),
                    status: Mutex::new(SocketStatus::default()),
                    listeners: RwLock::new(Listeners::default()),
                    queued: AtomicUsize::new(0),
                });
                let auth = auth.unwrap_or_else(|| self.inner.opts.auth.clone());
                let _ = self.inner.cmd.send(Cmd::Register {
                    shared: shared.clone(),
                    auth,
                });
                shared
            })
            .clone();
        Socket {
            manager: self.inner.clone(),
            shared,
        }
    }

    /// Registers a manager event handler. Events (arguments): `open` (), `close` (reason),
    /// `error` ({message}), `reconnect_attempt` (attempt), `reconnect` (attempt),
    /// `reconnect_error` ({message}), `reconnect_failed` ().
    pub fn on(
        &self,
        event: &str,
        handler: impl Fn(Vec<Value>, Option<AckResponder>) + Send + Sync + 'static,
    ) {
        write_listeners(&self.inner.listeners)
            .entry(event.to_owned())
            .or_default()
            .push(Arc::new(handler));
    }

    /// Opens the connection without connecting a namespace (sockets connect it as needed).
    pub fn open(&self) {
        let _ = self.inner.cmd.send(Cmd::Open);
    }

    /// Disconnects every socket ("io client disconnect") and closes the connection; no
    /// reconnection follows. Sockets can be connected again later.
    pub fn close(&self) {
        let _ = self.inner.cmd.send(Cmd::Close);
    }

    /// Closes everything and waits until the manager's task and transports are gone. Handles
    /// left afterwards fail with [`Error::Closed`].
    pub async fn shutdown(&self) {
        let _ = self.inner.cmd.send(Cmd::Shutdown);
        let mut done = self.inner.done.clone();
        let _ = done.wait_for(|d| *d).await;
    }

    /// The transport the connection uses now (`None` while it is not open); it changes from
    /// polling to WebSocket when the upgrade completes.
    pub fn transport(&self) -> Option<TransportKind> {
        match self
            .inner
            .transport
            .load(std::sync::atomic::Ordering::Acquire)
        {
            1 => Some(TransportKind::Polling),
            2 => Some(TransportKind::Websocket),
            _ => None,
        }
    }

    /// The options this manager was built with.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.opts
    }
}

/// A namespace socket. Cheap to clone; all clones are the same socket.
///
/// ```no_run
/// # fn run(socket: polysio::client::Socket) -> polysio::Result<()> {
/// use polysio::Value;
/// socket.on("news", |args, _ack| println!("{args:?}"));
/// socket.on_any(|event, args, _ack| println!("{event}: {args:?}"));
/// socket.emit("chat", vec![Value::from("hi"), Value::from(vec![1u8, 2, 3])])?;
/// socket.emit_with_ack_cb("question", vec![], |reply| println!("{reply:?}"))?;
/// socket.volatile().emit("position", vec![Value::from(1.5)])?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Socket {
    manager: Arc<ManagerInner>,
    shared: Arc<SocketShared>,
}

impl Socket {
    /// The namespace, e.g. `/` or `/admin`.
    pub fn nsp(&self) -> &str {
        &self.shared.nsp
    }
    /// The session id given by the server, while connected.
    pub fn id(&self) -> Option<String> {
        self.shared.status().id
    }
    /// True while the namespace is connected.
    pub fn connected(&self) -> bool {
        self.shared.status().connected
    }
    /// True when the socket should be connected (after `connect()`, until `disconnect()` or a
    /// server-side disconnect or refusal).
    pub fn active(&self) -> bool {
        self.shared.status().active
    }
    /// True when the last connection restored the previous session (connection state recovery).
    pub fn recovered(&self) -> bool {
        self.shared.status().recovered
    }
    /// The manager this socket belongs to.
    pub fn manager(&self) -> Manager {
        Manager {
            inner: self.manager.clone(),
        }
    }

    fn send(&self, cmd: Cmd) -> Result<()> {
        self.manager.cmd.send(cmd).map_err(|_| Error::Closed)
    }

    pub(crate) fn on_handler(&self, event: String, handler: Handler) {
        write_listeners(&self.shared.listeners)
            .events
            .entry(event)
            .or_default()
            .push(handler);
    }

    /// Registers a handler for `event`. Reserved events: `connect` (no arguments),
    /// `connect_error` (one map `{message, data?}`), `disconnect` (the reason string).
    pub fn on(
        &self,
        event: &str,
        handler: impl Fn(Vec<Value>, Option<AckResponder>) + Send + Sync + 'static,
    ) {
        self.on_handler(event.to_owned(), Arc::new(handler));
    }

    /// Registers a catch-all handler, called for every incoming event before its own handlers.
    pub fn on_any(
        &self,
        handler: impl Fn(&str, Vec<Value>, Option<AckResponder>) + Send + Sync + 'static,
    ) {
        write_listeners(&self.shared.listeners)
            .any
            .push(Arc::new(handler));
    }

    /// Removes the handlers of `event`, or all handlers (catch-all ones included) with `None`.
    pub fn off(&self, event: Option<&str>) {
        let mut l = write_listeners(&self.shared.listeners);
        match event {
            Some(e) => {
                l.events.remove(e);
            }
            None => {
                l.events.clear();
                l.any.clear();
            }
        }
    }

    /// Replaces the auth payload used from the next (re)connection on.
    pub fn set_auth(&self, auth: impl Into<Auth>) {
        let _ = self.send(Cmd::SetAuth {
            nsp: self.shared.nsp.clone(),
            auth: auth.into(),
        });
    }

    /// Connects the namespace (opening the connection if needed).
    pub fn connect(&self) {
        self.shared.update(|s| s.active = true);
        let _ = self.send(Cmd::Connect {
            nsp: self.shared.nsp.clone(),
        });
    }

    /// Disconnects the namespace ("io client disconnect"); the connection closes when no other
    /// socket uses it. No reconnection follows.
    pub fn disconnect(&self) {
        self.shared.update(|s| s.active = false);
        let _ = self.send(Cmd::Disconnect {
            nsp: self.shared.nsp.clone(),
        });
    }

    /// Options for the next emit: dropped instead of buffered when not connected.
    pub fn volatile(&self) -> Emitter<'_> {
        Emitter {
            socket: self,
            volatile: true,
            timeout: None,
        }
    }

    /// Options for the next emit: acknowledgement timeout.
    pub fn timeout(&self, d: Duration) -> Emitter<'_> {
        Emitter {
            socket: self,
            volatile: false,
            timeout: Some(d),
        }
    }

    /// Emits an event. Buffered while disconnected (see [`ClientOptions::send_buffer_max`]).
    pub fn emit(&self, event: &str, args: Vec<Value>) -> Result<()> {
        Emitter {
            socket: self,
            volatile: false,
            timeout: None,
        }
        .emit(event, args)
    }

    /// Emits an event asking for an acknowledgement; `callback` gets the server's ack
    /// arguments, or an error on timeout ([`ClientOptions::ack_timeout`]) or disconnection.
    /// It runs on the connection's task.
    pub fn emit_with_ack_cb(
        &self,
        event: &str,
        args: Vec<Value>,
        callback: impl FnOnce(Result<Vec<Value>>) + Send + 'static,
    ) -> Result<()> {
        Emitter {
            socket: self,
            volatile: false,
            timeout: None,
        }
        .emit_with_ack_cb(event, args, callback)
    }

    /// Emits an event and waits for its acknowledgement (see [`emit_with_ack_cb`](Self::emit_with_ack_cb)).
    /// The event is queued when this is called, not when the future is first polled.
    pub fn emit_with_ack(&self, event: &str, args: Vec<Value>) -> AckFuture {
        Emitter {
            socket: self,
            volatile: false,
            timeout: None,
        }
        .emit_with_ack(event, args)
    }
}

/// Emit options chosen with [`Socket::volatile`] and [`Socket::timeout`].
///
/// ```no_run
/// # async fn run(socket: polysio::client::Socket) -> polysio::Result<()> {
/// use std::time::Duration;
/// let answer = socket.timeout(Duration::from_secs(2)).emit_with_ack("question", vec![]).await?;
/// # Ok(()) }
/// ```
pub struct Emitter<'a> {
    socket: &'a Socket,
    volatile: bool,
    timeout: Option<Duration>,
}

impl Emitter<'_> {
    /// Makes the emit volatile.
    pub fn volatile(mut self) -> Self {
        self.volatile = true;
        self
    }
    /// Sets the acknowledgement timeout.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    fn reserve(&self, event: &str) -> Result<()> {
        if RESERVED_EVENTS.contains(&event) {
            return Err(Error::InvalidArgument(format!(
                "\"{event}\" is a reserved event name"
            )));
        }
        let max = self.socket.manager.opts.send_buffer_max;
        self.socket
            .shared
            .queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .map(|_| ())
            .map_err(|n| {
                Error::BufferFull(format!("{n} packets queued on {}", self.socket.shared.nsp))
            })
    }

    fn push(&self, event: &str, args: Vec<Value>, ack: Option<AckSink>) -> Result<()> {
        if self.volatile {
            if RESERVED_EVENTS.contains(&event) {
                return Err(Error::InvalidArgument(format!(
                    "\"{event}\" is a reserved event name"
                )));
            }
        } else {
            self.reserve(event)?;
        }
        let timeout = self.timeout.or(self.socket.manager.opts.ack_timeout);
        let cmd = Cmd::Emit {
            nsp: self.socket.shared.nsp.clone(),
            event: event.to_owned(),
            args,
            volatile: self.volatile,
            ack: ack.map(|a| (a, timeout)),
        };
        let volatile = self.volatile;
        self.socket.send(cmd).inspect_err(|_| {
            if !volatile {
                self.socket.shared.queued.fetch_sub(1, Ordering::SeqCst);
            }
        })
    }

    /// Emits an event.
    pub fn emit(self, event: &str, args: Vec<Value>) -> Result<()> {
        self.push(event, args, None)
    }

    /// Emits an event with an acknowledgement callback.
    pub fn emit_with_ack_cb(
        self,
        event: &str,
        args: Vec<Value>,
        callback: impl FnOnce(Result<Vec<Value>>) + Send + 'static,
    ) -> Result<()> {
        self.push(event, args, Some(Box::new(callback)))
    }

    /// Emits an event and waits for its acknowledgement.
    pub fn emit_with_ack(self, event: &str, args: Vec<Value>) -> AckFuture {
        let (tx, rx) = oneshot::channel();
        let sink: AckSink = Box::new(move |r| {
            let _ = tx.send(r);
        });
        match self.push(event, args, Some(sink)) {
            Ok(()) => AckFuture {
                state: AckState::Wait(rx),
            },
            Err(e) => AckFuture {
                state: AckState::Failed(Some(e)),
            },
        }
    }
}

/// The acknowledgement of [`Socket::emit_with_ack`]: the server's ack arguments, or
/// [`Error::Timeout`], [`Error::Closed`] (disconnected), [`Error::BufferFull`].
pub struct AckFuture {
    state: AckState,
}

enum AckState {
    Failed(Option<Error>),
    Wait(oneshot::Receiver<Result<Vec<Value>>>),
}

impl Future for AckFuture {
    type Output = Result<Vec<Value>>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            AckState::Failed(e) => Poll::Ready(Err(e.take().unwrap_or(Error::Closed))),
            AckState::Wait(rx) => Pin::new(rx)
                .poll(cx)
                .map(|r| r.unwrap_or(Err(Error::Closed))),
        }
    }
}

/// Answers an event the server sent with an ack id. Only the first answer (from any clone) is
/// sent; it can be sent from any thread, at any later time.
///
/// ```no_run
/// # fn run(socket: polysio::client::Socket) {
/// socket.on("sum", |args, ack| {
///     let total: i64 = args.iter().filter_map(|v| v.as_i64()).sum();
///     if let Some(ack) = ack {
///         let _ = ack.send(vec![polysio::Value::from(total)]);
///     }
/// });
/// # }
/// ```
#[derive(Clone)]
pub struct AckResponder {
    cmd: mpsc::UnboundedSender<Cmd>,
    nsp: String,
    id: u64,
    sent: Arc<AtomicBool>,
}

impl AckResponder {
    /// The ack id the server chose.
    pub fn id(&self) -> u64 {
        self.id
    }
    /// Sends the acknowledgement with `args`. A second call does nothing and returns
    /// [`Error::InvalidArgument`].
    pub fn send(&self, args: Vec<Value>) -> Result<()> {
        if self.sent.swap(true, Ordering::SeqCst) {
            return Err(Error::InvalidArgument(format!(
                "ack {} already sent",
                self.id
            )));
        }
        self.cmd
            .send(Cmd::Ack {
                nsp: self.nsp.clone(),
                id: self.id,
                args,
            })
            .map_err(|_| Error::Closed)
    }
}

impl std::fmt::Debug for AckResponder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckResponder")
            .field("nsp", &self.nsp)
            .field("id", &self.id)
            .finish()
    }
}
