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
/// An async connect middleware.
pub type Middleware =
    Arc<dyn Fn(Arc<Socket>) -> BoxFuture<'static, Result<(), ConnectError>> + Send + Sync>;

#[derive(Default)]
pub(crate) struct Handlers {
    pub(crate) connection: RwLock<Vec<ConnectionHandler>>,
    pub(crate) middlewares: RwLock<Vec<Middleware>>,
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
