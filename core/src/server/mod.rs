//! The Socket.IO v5 server: namespaces, sockets, rooms, acks, middleware, state recovery.
//!
//! ```no_run
//! use polysio::server::{Server, ServerConfig};
//! # async fn run() -> std::io::Result<()> {
//! let io = Server::new(ServerConfig::default());
//! io.of("/").on_connection(|socket| {
//!     socket.on("chat", |socket, args, _ack| {
//!         // broadcast to everyone else
//!         let _ = socket.broadcast().emit("chat", args);
//!     });
//! });
//! let addr = io.listen("127.0.0.1:3000").await?;
//! println!("listening on {addr}");
//! # io.close().await;
//! # Ok(()) }
//! ```
//!
//! Handlers are plain closures run inline on the task that read the packet; they must not
//! block. To do async work, spawn it on the runtime.

mod broadcast;
mod client;
mod namespace;
mod socket;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::watch;

pub use crate::engine::Cork;
#[cfg(feature = "redis")]
pub(crate) use broadcast::check_event;
pub use broadcast::BroadcastOperator;
pub use namespace::{ConnectError, Namespace, NamespaceRef, ServerSideAck};
pub use socket::{AckSender, DisconnectReason, Socket, SocketHandshake};

use crate::adapter::AdapterFactory;
use crate::engine::server::Fallback;
use crate::engine::{CloseReason, EngineConfig, EngineServer};
use crate::value::Value;

/// Connection state recovery options (the feature is off unless set).
#[derive(Clone, Debug, PartialEq)]
pub struct RecoveryConfig {
    /// How long a disconnected session may be restored (120000 ms).
    pub max_disconnection_duration: Duration,
    /// Skip middlewares when a session is restored (true).
    pub skip_middlewares: bool,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            max_disconnection_duration: Duration::from_millis(120_000),
            skip_middlewares: true,
        }
    }
}

/// Socket.IO server options; defaults are the reference server's.
#[derive(Clone)]
pub struct ServerConfig {
    /// Engine.IO options; the path defaults to `/socket.io/`.
    pub engine: EngineConfig,
    /// Time a client has to connect to a namespace after the handshake (45000 ms).
    pub connect_timeout: Duration,
    /// Connection state recovery (off).
    pub connection_state_recovery: Option<RecoveryConfig>,
    /// Attachments one packet may carry (10, as socket.io-parser 4.2.6+); together they may
    /// not exceed the engine's `max_http_buffer_size`.
    pub max_attachments: usize,
    /// Builds each namespace's adapter (the in-memory [`crate::adapter::LocalAdapter`] by default).
    pub adapter: Option<AdapterFactory>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            engine: EngineConfig {
                path: "/socket.io/".into(),
                ..EngineConfig::default()
            },
            connect_timeout: Duration::from_millis(45_000),
            connection_state_recovery: None,
            max_attachments: crate::parser::packet::DEFAULT_MAX_ATTACHMENTS,
            adapter: None,
        }
    }
}

type Matcher = Arc<dyn Fn(&str, &Value) -> bool + Send + Sync>;

pub(crate) struct ServerInner {
    pub(crate) config: ServerConfig,
    namespaces: RwLock<HashMap<String, Namespace>>,
    dynamic: RwLock<Vec<(Matcher, Namespace)>>,
    engine: std::sync::OnceLock<EngineServer>,
    shutdown: watch::Sender<bool>,
    fallback: Mutex<Option<Fallback>>,
}

/// A Socket.IO server. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Server {
    inner: Arc<ServerInner>,
}

impl Server {
    /// A server with `config`. Call it inside a tokio runtime (see [`Server::with_runtime`]).
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn new(config: ServerConfig) -> Server {
        Self::with_runtime(config, tokio::runtime::Handle::current())
    }

    /// A server whose tasks run on `runtime`.
    pub fn with_runtime(config: ServerConfig, runtime: tokio::runtime::Handle) -> Server {
        let engine_config = config.engine.clone();
        let inner = Arc::new(ServerInner {
            config,
            namespaces: RwLock::new(HashMap::new()),
            dynamic: RwLock::new(Vec::new()),
            engine: std::sync::OnceLock::new(),
            shutdown: watch::channel(false).0,
            fallback: Mutex::new(None),
        });
        let handler = Arc::new(client::Handler {
            server: Arc::downgrade(&inner),
        });
        let _ = inner
            .engine
            .set(EngineServer::with_runtime(engine_config, handler, runtime));
        let server = Server { inner };
        server.of("/");
        server
    }

    /// The options.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// The Engine.IO server underneath.
    pub fn engine(&self) -> &EngineServer {
        self.inner
            .engine
            .get()
            .expect("engine is set in Server::with_runtime")
    }

    /// The namespace `name`, created if needed.
    pub fn of(&self, name: &str) -> Namespace {
        let name = normalize(name);
        if let Some(n) = self
            .inner
            .namespaces
            .read()
            .ok()
            .and_then(|m| m.get(&name).cloned())
        {
            return n;
        }
        let Ok(mut m) = self.inner.namespaces.write() else {
            return Namespace::new(name, Arc::downgrade(&self.inner), None);
        };
        m.entry(name.clone())
            .or_insert_with(|| Namespace::new(name, Arc::downgrade(&self.inner), None))
            .clone()
    }

    /// A dynamic namespace: any namespace whose name (and the client's auth) `matcher` accepts is
    /// created on first connection, with the handlers and middlewares set on the returned parent.
    pub fn of_dynamic(
        &self,
        matcher: impl Fn(&str, &Value) -> bool + Send + Sync + 'static,
    ) -> Namespace {
        let parent = Namespace::new_parent(Arc::downgrade(&self.inner));
        if let Ok(mut d) = self.inner.dynamic.write() {
            d.push((Arc::new(matcher), parent.clone()));
        }
        parent
    }

    /// Shorthand for the `/` namespace's `on_connection`.
    pub fn on_connection(&self, f: impl Fn(Arc<Socket>) + Send + Sync + 'static) {
        self.of("/").on_connection(f)
    }

    /// Broadcast to `room` on `/`.
    pub fn to(&self, room: impl Into<crate::adapter::Room>) -> BroadcastOperator {
        self.of("/").to(room)
    }

    /// Emits to every socket of `/`.
    pub fn emit(&self, event: &str, args: Vec<Value>) -> crate::Result<()> {
        self.of("/").emit(event, args)
    }

    /// Serves requests outside the Socket.IO path with `f` (e.g. a web page).
    pub fn set_fallback(&self, f: Fallback) {
        if let Ok(mut g) = self.inner.fallback.lock() {
            *g = Some(f);
        }
    }

    /// Binds `addr` and serves in the background; returns the bound address.
    pub async fn listen(&self, addr: impl ToSocketAddrs) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let me = self.clone();
        tokio::spawn(async move { me.serve(listener).await });
        Ok(local)
    }

    /// Serves `listener` until [`Server::close`].
    pub async fn serve(&self, listener: TcpListener) {
        let Some((fallback, shutdown)) = self.serving() else {
            return;
        };
        self.engine().serve(listener, fallback, shutdown).await
    }

    /// Like [`Server::listen`], over TLS (https and wss) with `tls`'s certificate (feature
    /// `tls`); [`crate::tls::ServerTls::reload`] replaces it while serving.
    #[cfg(feature = "tls")]
    pub async fn listen_tls(
        &self,
        addr: impl ToSocketAddrs,
        tls: crate::tls::ServerTls,
    ) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let me = self.clone();
        tokio::spawn(async move { me.serve_tls(listener, tls).await });
        Ok(local)
    }

    /// Serves `listener` over TLS until [`Server::close`] (feature `tls`).
    #[cfg(feature = "tls")]
    pub async fn serve_tls(&self, listener: TcpListener, tls: crate::tls::ServerTls) {
        let Some((fallback, shutdown)) = self.serving() else {
            return;
        };
        self.engine()
            .serve_tls(listener, tls, fallback, shutdown)
            .await
    }

    /// The fallback and the shutdown signal of a listener; `None` once closed.
    fn serving(
        &self,
    ) -> Option<(
        Option<crate::engine::server::Fallback>,
        impl std::future::Future<Output = ()> + Send + 'static,
    )> {
        let mut rx = self.inner.shutdown.subscribe();
        if *rx.borrow() {
            return None;
        }
        let fallback = self.inner.fallback.lock().ok().and_then(|f| f.clone());
        let shutdown = async move {
            let _ = rx.wait_for(|v| *v).await;
        };
        Some((fallback, shutdown))
    }

    /// Disconnects every socket with `server shutting down`, closes every connection and stops
    /// accepting (the port is freed).
    pub async fn close(&self) {
        self.inner.shutdown.send_replace(true);
        let namespaces: Vec<Namespace> = self
            .inner
            .namespaces
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        let children: Vec<Namespace> = self
            .inner
            .dynamic
            .read()
            .map(|d| d.iter().flat_map(|(_, p)| p.children()).collect())
            .unwrap_or_default();
        for nsp in namespaces.iter().chain(children.iter()) {
            for s in nsp.sockets() {
                s.on_close(DisconnectReason::ServerShuttingDown);
            }
        }
        self.engine().close_all(CloseReason::ServerShuttingDown);
        for nsp in namespaces.iter().chain(children.iter()) {
            nsp.adapter().close();
        }
        // Let the connection tasks flush their close frames.
        tokio::task::yield_now().await;
    }
}

impl ServerInner {
    /// Finds (or creates, for a dynamic match) the namespace a client asks for.
    pub(crate) fn lookup(self: &Arc<Self>, name: &str, auth: &Value) -> Option<Namespace> {
        if let Some(n) = self
            .namespaces
            .read()
            .ok()
            .and_then(|m| m.get(name).cloned())
        {
            return Some(n);
        }
        let parent = self
            .dynamic
            .read()
            .ok()?
            .iter()
            .find(|(m, _)| m(name, auth))
            .map(|(_, p)| p.clone())?;
        let mut m = self.namespaces.write().ok()?;
        let child = m
            .entry(name.to_owned())
            .or_insert_with(|| {
                Namespace::new(name.to_owned(), Arc::downgrade(self), Some(parent.clone()))
            })
            .clone();
        parent.add_child(child.clone());
        Some(child)
    }
}

fn normalize(name: &str) -> String {
    if name.starts_with('/') {
        name.to_owned()
    } else {
        format!("/{name}")
    }
}

pub(crate) type ServerWeak = Weak<ServerInner>;
