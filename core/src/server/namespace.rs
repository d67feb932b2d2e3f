//! Namespaces: their sockets, connection handlers, middlewares and adapter.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use super::{BroadcastOperator, ServerInner, ServerWeak, Socket};
use crate::adapter::{Adapter, LocalAdapter, Room, SocketInfo};
use crate::error::Result;
use crate::value::Value;

/// A refusal from a middleware, sent to the client as CONNECT_ERROR.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectError {
    /// The `message` the client sees.
    pub message: String,
    /// Optional `data`.
    pub data: Option<Value>,
}

impl ConnectError {
    /// A refusal with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        ConnectError {
            message: message.into(),
            data: None,
        }
    }
    /// Adds `data`.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
    pub(crate) fn to_value(&self) -> Value {
        let mut m = crate::value::Map::new();
        m.insert("message".into(), Value::String(self.message.clone()));
        if let Some(d) = &self.data {
            m.insert("data".into(), d.clone());
        }
        Value::Map(m)
    }
}

type ConnectionHandler = Arc<dyn Fn(Arc<Socket>) + Send + Sync>;
type ServerSideHandler = Arc<dyn Fn(Vec<Value>, Option<ServerSideAck>) + Send + Sync>;

/// Answers a `serverSideEmit` that another node sent with an ack request. Only one value goes
/// back (socket.io forwards the first argument of the callback), at most once.
pub struct ServerSideAck(Box<dyn FnOnce(Value) + Send>);

impl ServerSideAck {
    /// An ack that calls `f` with the answer; adapters build it for each request.
    pub fn new(f: impl FnOnce(Value) + Send + 'static) -> Self {
        ServerSideAck(Box::new(f))
    }
    /// Sends the answer to the node that asked.
    pub fn send(self, value: Value) {
        (self.0)(value)
    }
}

impl std::fmt::Debug for ServerSideAck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerSideAck")
    }
}
/// An async connect middleware.
pub type Middleware =
    Arc<dyn Fn(Arc<Socket>) -> BoxFuture<'static, Result<(), ConnectError>> + Send + Sync>;

#[derive(Default)]
pub(crate) struct Handlers {
    pub(crate) connection: RwLock<Vec<ConnectionHandler>>,
    pub(crate) middlewares: RwLock<Vec<Middleware>>,
    server_side: RwLock<HashMap<String, ServerSideHandler>>,
}

pub(crate) struct NsInner {
    pub(crate) name: String,
    pub(crate) server: ServerWeak,
    pub(crate) handlers: Arc<Handlers>,
    sockets: RwLock<HashMap<Arc<str>, Arc<Socket>>>,
    adapter: OnceLock<Arc<dyn Adapter>>,
    ack_ids: AtomicU64,
    children: RwLock<Vec<Namespace>>,
    parent: Option<Namespace>,
}

/// A namespace. Cheap to clone.
#[derive(Clone)]
pub struct Namespace(pub(crate) Arc<NsInner>);

/// A weak reference to a namespace, handed to adapters.
#[derive(Clone)]
pub struct NamespaceRef(Weak<NsInner>);

impl NamespaceRef {
    /// The namespace, if it still exists.
    pub fn upgrade(&self) -> Option<Namespace> {
        self.0.upgrade().map(Namespace)
    }
    /// The recovery window when connection state recovery is on.
    pub fn recovery_window(&self) -> Option<Duration> {
        self.0
            .upgrade()
            .and_then(|n| n.server.upgrade())
            .and_then(|s| {
                s.config
                    .connection_state_recovery
                    .as_ref()
                    .map(|r| r.max_disconnection_duration)
            })
    }
}

impl Namespace {
    pub(crate) fn new(
        name: String,
        server: Weak<ServerInner>,
        parent: Option<Namespace>,
    ) -> Namespace {
        let handlers = parent
            .as_ref()
            .map(|p| p.0.handlers.clone())
            .unwrap_or_default();
        let nsp = Namespace(Arc::new(NsInner {
            name,
            server: server.clone(),
            handlers,
            sockets: RwLock::new(HashMap::new()),
            adapter: OnceLock::new(),
            ack_ids: AtomicU64::new(0),
            children: RwLock::new(Vec::new()),
            parent,
        }));
        let r = NamespaceRef(Arc::downgrade(&nsp.0));
        let adapter: Arc<dyn Adapter> =
            match server.upgrade().and_then(|s| s.config.adapter.clone()) {
                Some(f) => f(r),
                None => Arc::new(LocalAdapter::new(r)),
            };
        let _ = nsp.0.adapter.set(adapter);
        nsp
    }

    pub(crate) fn new_parent(server: Weak<ServerInner>) -> Namespace {
        Namespace::new(String::new(), server, None)
    }

    pub(crate) fn add_child(&self, child: Namespace) {
        if let Ok(mut c) = self.0.children.write() {
            if !c.iter().any(|x| Arc::ptr_eq(&x.0, &child.0)) {
                c.push(child);
            }
        }
    }

    pub(crate) fn children(&self) -> Vec<Namespace> {
        self.0
            .children
            .read()
            .map(|c| c.clone())
            .unwrap_or_default()
    }

    /// The namespace name (empty for the parent of dynamic namespaces).
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The parent, for a namespace created by [`super::Server::of_dynamic`].
    pub fn parent(&self) -> Option<&Namespace> {
        self.0.parent.as_ref()
    }

    /// The adapter.
    pub fn adapter(&self) -> &Arc<dyn Adapter> {
        self.0
            .adapter
            .get()
            .expect("adapter is set in Namespace::new")
    }

    /// Calls `f` with every socket that connects.
    pub fn on_connection(&self, f: impl Fn(Arc<Socket>) + Send + Sync + 'static) {
        if let Ok(mut h) = self.0.handlers.connection.write() {
            h.push(Arc::new(f));
        }
    }

    /// Adds an async connect middleware; an `Err` refuses the connection with CONNECT_ERROR.
    /// The socket's handshake (auth included) is available; it is not connected yet.
    pub fn use_async<F>(&self, f: impl Fn(Arc<Socket>) -> F + Send + Sync + 'static)
    where
        F: std::future::Future<Output = Result<(), ConnectError>> + Send + 'static,
    {
        if let Ok(mut m) = self.0.handlers.middlewares.write() {
            m.push(Arc::new(move |s| f(s).boxed()));
        }
    }

    /// Adds a plain connect middleware.
    pub fn use_middleware(
        &self,
        f: impl Fn(&Arc<Socket>) -> Result<(), ConnectError> + Send + Sync + 'static,
    ) {
        self.use_async(move |s| {
            let r = f(&s);
            async move { r }
        })
    }

    /// Handles `event` sent by another node of the cluster with `serverSideEmit` (see
    /// [`Namespace::server_side_emit`]); the handler gets the arguments and, when the sender
    /// asked for one, a [`ServerSideAck`]. Runs on the adapter's task: it must not block. A later
    /// call for the same event replaces the handler.
    ///
    /// ```no_run
    /// # fn f(io: &polysio::server::Server) {
    /// io.of("/").on_server_side_emit("ping-node", |_args, ack| {
    ///     if let Some(ack) = ack {
    ///         ack.send("pong".into());
    ///     }
    /// });
    /// # }
    /// ```
    pub fn on_server_side_emit(
        &self,
        event: &str,
        f: impl Fn(Vec<Value>, Option<ServerSideAck>) + Send + Sync + 'static,
    ) {
        if let Ok(mut h) = self.0.handlers.server_side.write() {
            h.insert(event.to_owned(), Arc::new(f));
        }
    }

    /// Runs the [`Namespace::on_server_side_emit`] handler of `args[0]` with the other
    /// arguments; called by adapters for a `serverSideEmit` from another node. False (and the
    /// ack dropped unanswered, as socket.io does) when there is no such handler.
    pub fn dispatch_server_side_emit(
        &self,
        mut args: Vec<Value>,
        ack: Option<ServerSideAck>,
    ) -> bool {
        let Some(Value::String(event)) = (!args.is_empty()).then(|| args.remove(0)) else {
            return false;
        };
        let handler = self
            .0
            .handlers
            .server_side
            .read()
            .ok()
            .and_then(|h| h.get(&event).cloned());
        match handler {
            Some(h) => {
                super::socket::guard(&event, || h(args, ack));
                true
            }
            None => false,
        }
    }

    /// Sends `event` to the [`Namespace::on_server_side_emit`] handlers of the other nodes of
    /// the cluster (not this one). A no-op with the in-memory adapter.
    pub fn server_side_emit(&self, event: &str, args: Vec<Value>) -> Result<()> {
        super::broadcast::check_event(event)?;
        let mut all = Vec::with_capacity(args.len() + 1);
        all.push(Value::String(event.to_owned()));
        all.extend(args);
        self.adapter().server_side_emit(all)
    }

    /// Like [`Namespace::server_side_emit`], waiting for every other node's answer: one value per
    /// node, or [`crate::Error::Timeout`] when they have not all answered within `timeout`.
    pub async fn server_side_emit_with_ack(
        &self,
        event: &str,
        args: Vec<Value>,
        timeout: Duration,
    ) -> Result<Vec<Value>> {
        super::broadcast::check_event(event)?;
        let mut all = Vec::with_capacity(args.len() + 1);
        all.push(Value::String(event.to_owned()));
        all.extend(args);
        self.adapter().server_side_emit_with_ack(all, timeout).await
    }

    /// How many nodes the cluster has (1 with the in-memory adapter).
    pub async fn server_count(&self) -> Result<usize> {
        self.adapter().server_count().await
    }

    /// Every room of the namespace on every node, socket ids included.
    pub async fn all_rooms(&self) -> Result<Vec<Room>> {
        self.adapter().all_rooms().await
    }

    pub(crate) fn next_ack_id(&self) -> u64 {
        self.0.ack_ids.fetch_add(1, Ordering::Relaxed)
    }

    /// The connected socket with id `sid` on this node.
    pub fn socket(&self, sid: &str) -> Option<Arc<Socket>> {
        self.0.sockets.read().ok().and_then(|m| m.get(sid).cloned())
    }

    /// The connected sockets on this node (of every child, for a dynamic parent).
    pub fn sockets(&self) -> Vec<Arc<Socket>> {
        let mut v: Vec<Arc<Socket>> = self
            .0
            .sockets
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        for c in self.children() {
            v.extend(c.sockets());
        }
        v
    }

    /// Calls `f` with every connected socket on this node (of every child, for a dynamic
    /// parent), under the read lock: `f` must not run user code.
    pub(crate) fn each_socket(&self, f: &mut impl FnMut(&Arc<Socket>)) {
        if let Ok(m) = self.0.sockets.read() {
            m.values().for_each(&mut *f);
        }
        for c in self.children() {
            c.each_socket(f);
        }
    }

    pub(crate) fn insert(&self, s: Arc<Socket>) {
        if let Ok(mut m) = self.0.sockets.write() {
            m.insert(s.id_arc().clone(), s);
        }
    }

    pub(crate) fn remove(&self, sid: &str) {
        if let Ok(mut m) = self.0.sockets.write() {
            m.remove(sid);
        }
    }

    fn op(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.clone())
    }

    /// Every socket of the namespace, as an operator to narrow down (chainable).
    pub fn broadcast(&self) -> BroadcastOperator {
        self.op()
    }
    /// Targets `room` (chainable).
    pub fn to(&self, room: impl Into<Room>) -> BroadcastOperator {
        self.op().to(room)
    }
    /// Same as [`Namespace::to`].
    pub fn in_(&self, room: impl Into<Room>) -> BroadcastOperator {
        self.op().to(room)
    }
    /// Excludes `room`.
    pub fn except(&self, room: impl Into<Room>) -> BroadcastOperator {
        self.op().except(room)
    }
    /// Only this node.
    pub fn local(&self) -> BroadcastOperator {
        self.op().local()
    }
    /// May be dropped.
    pub fn volatile(&self) -> BroadcastOperator {
        self.op().volatile()
    }
    /// Ack timeout for [`BroadcastOperator::emit_with_ack`].
    pub fn timeout(&self, t: Duration) -> BroadcastOperator {
        self.op().timeout(t)
    }
    /// Emits to every socket of the namespace.
    pub fn emit(&self, event: &str, args: Vec<Value>) -> Result<()> {
        self.op().emit(event, args)
    }
    /// The sockets of the namespace with their rooms and data.
    pub async fn fetch_sockets(&self) -> Result<Vec<SocketInfo>> {
        self.op().fetch_sockets().await
    }
    /// Makes every socket join `rooms`.
    pub fn sockets_join(&self, rooms: &[&str]) {
        self.op().sockets_join(rooms)
    }
    /// Makes every socket leave `rooms`.
    pub fn sockets_leave(&self, rooms: &[&str]) {
        self.op().sockets_leave(rooms)
    }
    /// Disconnects every socket.
    pub fn disconnect_sockets(&self, close: bool) {
        self.op().disconnect_sockets(close)
    }
}
