//! A server-side socket: one client connected to one namespace.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use super::broadcast::check_event;
use super::client::ClientShared;
use super::{BroadcastOperator, Namespace};
use crate::adapter::{BroadcastOptions, Room, SessionToPersist, Sid};
use crate::engine::packet::Frame;
use crate::engine::{EngineSocket, Handshake, Held};
use crate::error::{Error, Result};
use crate::parser::{Packet, PacketData};
use crate::value::Value;

/// Why a socket disconnected; [`DisconnectReason::as_str`] gives the reference's string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The server disconnected the socket (`socket.disconnect()`).
    ServerNamespaceDisconnect,
    /// The client disconnected the socket.
    ClientNamespaceDisconnect,
    /// The connection was closed by the client.
    TransportClose,
    /// The connection failed.
    TransportError,
    /// The client stopped answering pings.
    PingTimeout,
    /// The client sent something that could not be decoded.
    ParseError,
    /// The server is closing.
    ServerShuttingDown,
    /// The connection was closed by the server.
    ForcedClose,
}

impl DisconnectReason {
    /// The reference's reason string.
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::ServerNamespaceDisconnect => "server namespace disconnect",
            DisconnectReason::ClientNamespaceDisconnect => "client namespace disconnect",
            DisconnectReason::TransportClose => "transport close",
            DisconnectReason::TransportError => "transport error",
            DisconnectReason::PingTimeout => "ping timeout",
            DisconnectReason::ParseError => "parse error",
            DisconnectReason::ServerShuttingDown => "server shutting down",
            DisconnectReason::ForcedClose => "forced close",
        }
    }

    fn recoverable(self) -> bool {
        matches!(
            self,
            DisconnectReason::TransportClose
                | DisconnectReason::TransportError
                | DisconnectReason::PingTimeout
                | DisconnectReason::ForcedClose
                | DisconnectReason::ServerShuttingDown
        )
    }
}

impl From<crate::engine::CloseReason> for DisconnectReason {
    fn from(r: crate::engine::CloseReason) -> Self {
        use crate::engine::CloseReason as C;
        match r {
            C::TransportClose => DisconnectReason::TransportClose,
            C::TransportError => DisconnectReason::TransportError,
            C::PingTimeout => DisconnectReason::PingTimeout,
            C::ParseError => DisconnectReason::ParseError,
            C::ForcedClose => DisconnectReason::ForcedClose,
            C::ServerShuttingDown => DisconnectReason::ServerShuttingDown,
        }
    }
}

impl std::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What handlers see of the connection request.
#[derive(Clone, Debug)]
pub struct SocketHandshake {
    /// The HTTP request that opened the connection.
    pub request: Arc<Handshake>,
    /// The auth payload of the CONNECT packet (`{}` when none).
    pub auth: Value,
}

type EventHandler = Arc<dyn Fn(&Arc<Socket>, Vec<Value>, Option<AckSender>) + Send + Sync>;
type AnyHandler = Arc<dyn Fn(&Arc<Socket>, &str, &[Value]) + Send + Sync>;
type FallbackHandler =
    Arc<dyn Fn(&Arc<Socket>, &str, Vec<Value>, Option<&str>, Option<AckSender>) + Send + Sync>;
type DisconnectHandler = Arc<dyn Fn(&Arc<Socket>, DisconnectReason) + Send + Sync>;
/// Gets the ack's arguments, or [`Error::Closed`] when the socket disconnects first.
pub(crate) type AckCallback = Box<dyn FnOnce(Result<Vec<Value>>) + Send>;

#[derive(Default)]
struct Listeners {
    events: HashMap<String, EventHandler>,
    any_in: Vec<AnyHandler>,
    fallback: Option<FallbackHandler>,
    any_out: Vec<AnyHandler>,
    disconnecting: Vec<DisconnectHandler>,
    disconnect: Vec<DisconnectHandler>,
}

/// One client connected to one namespace. Handlers receive it as `&Arc<Socket>`.
pub struct Socket {
    id: Sid,
    pid: Option<Sid>,
    nsp: Namespace,
    pub(crate) client: Arc<ClientShared>,
    handshake: SocketHandshake,
    listeners: RwLock<Listeners>,
    /// Whether `listeners.any_out` is non-empty (read on every broadcast).
    any_out: AtomicBool,
    acks: Mutex<HashMap<u64, AckCallback>>,
    connected: AtomicBool,
    data: Mutex<Value>,
    recovered: bool,
    /// Packets received after the CONNECT reply went out but before the connection handlers
    /// ran, each counted against the connection's backpressure gate; `None` once they have.
    pub(crate) early: Mutex<Option<Vec<(Packet, Held)>>>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.id)
            .field("nsp", &self.nsp.name())
            .finish()
    }
}

/// Answers an event the client sent with an ack request. Sends at most once.
pub struct AckSender {
    socket: Arc<Socket>,
    id: u64,
}

impl AckSender {
    /// Sends the ack with `args`.
    pub fn send(self, args: Vec<Value>) -> Result<()> {
        let p = Packet {
            nsp: self.socket.nsp.name().to_owned(),
            id: Some(self.id),
            data: PacketData::Ack(args),
        };
        self.socket.send_packet(&p)
    }

    /// Sends the ack with arguments that are JSON text already: `args_json` must be a JSON
    /// array (no binary data); it is sent as is, unchecked. Bindings use it to pass on what
    /// their language serialised without converting it to [`Value`]s first.
    pub fn send_json(self, args_json: &str) -> Result<()> {
        let frame = crate::parser::packet::ack_frame(self.socket.nsp.name(), self.id, args_json);
        self.socket.send_frames(std::slice::from_ref(&frame))
    }
}

impl std::fmt::Debug for AckSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckSender").field("id", &self.id).finish()
    }
}

/// `ms` since the epoch as JavaScript's `Date.prototype.toString()` in UTC, e.g.
/// `Thu Jan 01 1970 00:00:00 GMT+0000 (Coordinated Universal Time)`.
fn js_date_string(ms: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = crate::value::civil_from_days(days as i64);
    format!(
        "{} {} {:02} {} {:02}:{:02}:{:02} GMT+0000 (Coordinated Universal Time)",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        day,
        year,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Runs user code; a panic is logged and contained so the connection goes on.
pub(crate) fn guard(what: &str, f: impl FnOnce()) {
    if std::panic::catch_unwind(AssertUnwindSafe(f)).is_err() {
        tracing::error!("a {what} handler panicked; the connection goes on");
    }
}

impl Socket {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: Sid,
        pid: Option<Sid>,
        nsp: Namespace,
        client: Arc<ClientShared>,
        auth: Value,
        data: Value,
        recovered: bool,
    ) -> Arc<Socket> {
        let request = client.engine.handshake().clone();
        Arc::new(Socket {
            id,
            pid,
            nsp,
            client,
            handshake: SocketHandshake { request, auth },
            listeners: RwLock::new(Listeners::default()),
            any_out: AtomicBool::new(false),
            acks: Mutex::new(HashMap::new()),
            connected: AtomicBool::new(false),
            data: Mutex::new(data),
            recovered,
            early: Mutex::new(Some(Vec::new())),
        })
    }

    /// The socket id (also the name of its own room).
    pub fn id(&self) -> &str {
        &self.id
    }
    pub(crate) fn id_arc(&self) -> &Sid {
        &self.id
    }
    /// The private session id used by connection state recovery.
    pub fn pid(&self) -> Option<&str> {
        self.pid.as_deref()
    }
    /// The namespace.
    pub fn nsp(&self) -> &Namespace {
        &self.nsp
    }
    /// The connection request and auth payload.
    pub fn handshake(&self) -> &SocketHandshake {
        &self.handshake
    }
    /// The handshake in socket.io's shape, as another node's `fetchSockets` sees it: a map of
    /// `headers` (names in lower case; repeated headers joined with `, `), `time` (JavaScript's
    /// `Date.toString()` in UTC), `address`, `xdomain` (an `origin` header is present),
    /// `secure`, `issued` (ms since the epoch), `url`, `query` and `auth`.
    ///
    /// ```no_run
    /// # fn f(socket: &polysio::server::Socket) {
    /// let h = socket.handshake_value();
    /// println!("{:?} from {:?}", h["url"], h["address"]);
    /// # }
    /// ```
    pub fn handshake_value(&self) -> Value {
        use crate::value::Map;
        let req = &self.handshake.request;
        let mut headers = Map::new();
        for name in req.headers.keys() {
            let joined: Vec<String> = req
                .headers
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            headers.insert(name.as_str().to_owned(), Value::String(joined.join(", ")));
        }
        let mut query = Map::new();
        for (k, v) in &req.query {
            query.insert(k.clone(), Value::String(v.clone()));
        }
        let mut m = Map::new();
        m.insert("headers".into(), Value::Map(headers));
        m.insert("time".into(), Value::String(js_date_string(req.issued)));
        let address = req.address.map(|a| a.ip().to_string()).unwrap_or_default();
        m.insert("address".into(), Value::String(address));
        m.insert(
            "xdomain".into(),
            Value::Bool(req.headers.contains_key(http::header::ORIGIN)),
        );
        m.insert("secure".into(), Value::Bool(req.secure));
        m.insert("issued".into(), Value::Int(req.issued as i64));
        m.insert("url".into(), Value::String(req.url.clone()));
        m.insert("query".into(), Value::Map(query));
        m.insert("auth".into(), self.handshake.auth.clone());
        Value::Map(m)
    }

    /// The Engine.IO connection underneath (shared by the client's namespaces).
    pub fn conn(&self) -> &EngineSocket {
        &self.client.engine
    }
    /// True while connected.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }
    /// True when this socket was restored by connection state recovery.
    pub fn recovered(&self) -> bool {
        self.recovered
    }
    /// A copy of the socket's `data`.
    pub fn data(&self) -> Value {
        self.data.lock().map(|d| d.clone()).unwrap_or_default()
    }
    /// Replaces the socket's `data`.
    pub fn set_data(&self, v: Value) {
        if let Ok(mut d) = self.data.lock() {
            *d = v;
        }
    }

    /// Handles `event`; the handler gets the arguments and, if the client asked for one, an
    /// [`AckSender`]. A later call for the same event replaces the handler.
    pub fn on(
        &self,
        event: &str,
        f: impl Fn(&Arc<Socket>, Vec<Value>, Option<AckSender>) + Send + Sync + 'static,
    ) {
        if let Ok(mut l) = self.listeners.write() {
            l.events.insert(event.to_owned(), Arc::new(f));
        }
    }
    /// Removes the handler of `event`.
    pub fn off(&self, event: &str) {
        if let Ok(mut l) = self.listeners.write() {
            l.events.remove(event);
        }
    }
    /// Called with every incoming event (before its handler).
    pub fn on_any(&self, f: impl Fn(&Arc<Socket>, &str, &[Value]) + Send + Sync + 'static) {
        if let Ok(mut l) = self.listeners.write() {
            l.any_in.push(Arc::new(f));
        }
    }
    /// Called for each incoming event that has no handler of its own (see [`Socket::on`]), with
    /// the event name and, when the client asked for one, the [`AckSender`]. Replaces the
    /// previous fallback. Bindings use it to route every event through one table of their own.
    pub fn on_fallback(
        &self,
        f: impl Fn(&Arc<Socket>, &str, Vec<Value>, Option<AckSender>) + Send + Sync + 'static,
    ) {
        self.on_fallback_json(move |s, event, args, _, ack| f(s, event, args, ack));
    }
    /// Like [`Socket::on_fallback`], and the handler also gets the JSON text the event arrived
    /// in: the packet's payload, `[name, ...args]` as the client wrote it (`None` for events
    /// with binary attachments and for events received before the connection handlers ran).
    /// Bindings splice it into what they hand their language instead of writing the arguments
    /// as JSON again. Replaces the previous fallback.
    pub fn on_fallback_json(
        &self,
        f: impl Fn(&Arc<Socket>, &str, Vec<Value>, Option<&str>, Option<AckSender>)
            + Send
            + Sync
            + 'static,
    ) {
        if let Ok(mut l) = self.listeners.write() {
            l.fallback = Some(Arc::new(f));
        }
    }
    /// Called with every outgoing event.
    pub fn on_any_outgoing(
        &self,
        f: impl Fn(&Arc<Socket>, &str, &[Value]) + Send + Sync + 'static,
    ) {
        if let Ok(mut l) = self.listeners.write() {
            l.any_out.push(Arc::new(f));
            self.any_out.store(true, Ordering::Release);
        }
    }
    /// Called when the socket is about to disconnect (still in its rooms).
    pub fn on_disconnecting(
        &self,
        f: impl Fn(&Arc<Socket>, DisconnectReason) + Send + Sync + 'static,
    ) {
        if let Ok(mut l) = self.listeners.write() {
            l.disconnecting.push(Arc::new(f));
        }
    }
    /// Called once the socket has disconnected.
    pub fn on_disconnect(
        &self,
        f: impl Fn(&Arc<Socket>, DisconnectReason) + Send + Sync + 'static,
    ) {
        if let Ok(mut l) = self.listeners.write() {
            l.disconnect.push(Arc::new(f));
        }
    }

    pub(crate) fn send_frames(&self, frames: &[Frame]) -> Result<()> {
        self.client.engine.send_all(frames)
    }

    /// Queues frames of a broadcast, flushed by `batch`.
    pub(crate) fn send_frames_batched(
        &self,
        frames: &[Frame],
        batch: &mut crate::engine::FlushBatch,
    ) -> Result<()> {
        self.client.engine.send_all_batched(frames, batch)
    }

    pub(crate) fn send_packet(&self, p: &Packet) -> Result<()> {
        self.send_frames(&p.encode())
    }

    pub(crate) fn has_outgoing_listeners(&self) -> bool {
        self.any_out.load(Ordering::Acquire)
    }

    pub(crate) fn notify_outgoing(self: &Arc<Self>, p: &Packet) {
        if !self.has_outgoing_listeners() {
            return;
        }
        let any = match self.listeners.read() {
            Ok(l) if !l.any_out.is_empty() => l.any_out.clone(),
            _ => return,
        };
        if let PacketData::Event(name, args) = &p.data {
            for h in any {
                guard("onAnyOutgoing", || h(self, name, args));
            }
        }
    }

    pub(crate) fn register_ack(&self, id: u64, cb: AckCallback) {
        if let Ok(mut a) = self.acks.lock() {
            a.insert(id, cb);
        }
    }

    /// Forgets the ack request `id` (its callback is dropped, not called).
    pub(crate) fn unregister_ack(&self, id: u64) {
        if let Ok(mut a) = self.acks.lock() {
            a.remove(&id);
        }
    }

    /// Emits `event` to this socket. Once the socket has left, a no-op (as socket.io, which
    /// drops the packet): [`Socket::connected`] tells a caller who needs to know.
    pub fn emit(self: &Arc<Self>, event: &str, args: Vec<Value>) -> Result<()> {
        check_event(event)?;
        if !self.connected() {
            tracing::debug!(sid = %self.id, event, "emit to a socket that has left: dropped");
            return Ok(());
        }
        let packet = Packet::event(self.nsp.name(), event, args);
        if self.server_recovery() {
            // Through the adapter so the packet gets an offset and is kept for recovery.
            let opts = BroadcastOptions {
                rooms: vec![self.id.clone()],
                ..Default::default()
            };
            return self.nsp.adapter().broadcast(packet, &opts);
        }
        self.notify_outgoing(&packet);
        self.send_packet(&packet)
    }

    fn server_recovery(&self) -> bool {
        self.nsp
            .0
            .server
            .upgrade()
            .is_some_and(|s| s.config.connection_state_recovery.is_some())
    }

    /// Emits `event` asking for an ack; `cb` gets the ack's arguments, or [`Error::Timeout`]
    /// after `timeout`, or [`Error::Closed`] if the socket disconnects first.
    pub fn emit_with_ack_cb(
        self: &Arc<Self>,
        event: &str,
        args: Vec<Value>,
        timeout: Option<Duration>,
        cb: impl FnOnce(Result<Vec<Value>>) + Send + 'static,
    ) -> Result<()> {
        check_event(event)?;
        if !self.connected() {
            return Err(Error::Closed);
        }
        let id = self.nsp.next_ack_id();
        let cb = Arc::new(Mutex::new(Some(cb)));
        let cb2 = cb.clone();
        self.register_ack(
            id,
            Box::new(move |r| {
                if let Some(f) = cb2.lock().ok().and_then(|mut c| c.take()) {
                    f(r);
                }
            }),
        );
        let mut packet = Packet::event(self.nsp.name(), event, args);
        packet.id = Some(id);
        self.notify_outgoing(&packet);
        if let Err(e) = self.send_packet(&packet) {
            self.acks.lock().ok().and_then(|mut a| a.remove(&id));
            return Err(e);
        }
        if let Some(t) = timeout {
            let me = Arc::downgrade(self);
            self.client.runtime().spawn(async move {
                tokio::time::sleep(t).await;
                if let Some(s) = me.upgrade() {
                    s.acks.lock().ok().and_then(|mut a| a.remove(&id));
                }
                if let Some(f) = cb.lock().ok().and_then(|mut c| c.take()) {
                    f(Err(Error::Timeout(t)));
                }
            });
        }
        Ok(())
    }

    /// Emits `event` and waits for the ack (with an optional timeout).
    pub async fn emit_with_ack(
        self: &Arc<Self>,
        event: &str,
        args: Vec<Value>,
        timeout: Option<Duration>,
    ) -> Result<Vec<Value>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.emit_with_ack_cb(event, args, timeout, move |r| {
            let _ = tx.send(r);
        })?;
        rx.await.unwrap_or(Err(Error::Closed))
    }

    /// Joins rooms.
    pub fn join(&self, rooms: &[&str]) {
        let rooms: Vec<Room> = rooms.iter().map(|r| Room::from(*r)).collect();
        self.nsp.adapter().add_all(&self.id, &rooms);
    }
    /// Leaves a room.
    pub fn leave(&self, room: &str) {
        self.nsp.adapter().del(&self.id, room);
    }
    /// The rooms the socket is in (its own id included).
    pub fn rooms(&self) -> Vec<Room> {
        self.nsp.adapter().socket_rooms(&self.id)
    }

    /// Broadcast to `room`, this socket excluded.
    pub fn to(&self, room: impl Into<Room>) -> BroadcastOperator {
        BroadcastOperator::new(self.nsp.clone())
            .with_except(self.id.clone())
            .to(room)
    }
    /// Same as [`Socket::to`].
    pub fn in_(&self, room: impl Into<Room>) -> BroadcastOperator {
        self.to(room)
    }
    /// Broadcast to every socket of the namespace but this one.
    pub fn broadcast(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.nsp.clone()).with_except(self.id.clone())
    }
    /// Broadcast excluding `room` (and this socket).
    pub fn except(&self, room: impl Into<Room>) -> BroadcastOperator {
        self.broadcast().except(room)
    }

    /// Disconnects the socket (`server namespace disconnect`); with `close`, closes the whole
    /// connection (every namespace of this client).
    pub fn disconnect(&self, close: bool) {
        if close {
            for s in self.client.sockets() {
                s.server_disconnect();
            }
            self.client.engine.close();
        } else {
            self.server_disconnect();
        }
    }

    fn server_disconnect(&self) {
        // Claim the close before the client hears of it: its answer (closing the transport)
        // may be handled on another thread before this one goes on.
        if !self.connected.swap(false, Ordering::AcqRel) {
            return;
        }
        let _ = self.send_packet(&Packet {
            nsp: self.nsp.name().to_owned(),
            id: None,
            data: PacketData::Disconnect,
        });
        self.closed(DisconnectReason::ServerNamespaceDisconnect);
    }

    pub(crate) fn mark_connected(&self) {
        self.connected.store(true, Ordering::Release);
    }

    /// Ends the socket: disconnecting handlers, leave rooms, disconnect handlers.
    pub(crate) fn on_close(&self, reason: DisconnectReason) {
        if self.connected.swap(false, Ordering::AcqRel) {
            self.closed(reason);
        }
    }

    /// The rest of [`Socket::on_close`], once the caller has marked the socket closed.
    fn closed(&self, reason: DisconnectReason) {
        let Some(me) = self
            .nsp
            .socket(&self.id)
            .filter(|s| std::ptr::eq(&**s, self))
        else {
            return;
        };
        let (disconnecting, disconnect) = match self.listeners.read() {
            Ok(l) => (l.disconnecting.clone(), l.disconnect.clone()),
            Err(_) => (Vec::new(), Vec::new()),
        };
        for h in disconnecting {
            guard("disconnecting", || h(&me, reason));
        }
        if reason.recoverable() && self.server_recovery() {
            if let Some(pid) = &self.pid {
                self.nsp.adapter().persist_session(SessionToPersist {
                    sid: self.id.clone(),
                    pid: pid.clone(),
                    rooms: self.rooms(),
                    data: self.data(),
                });
            }
        }
        self.nsp.adapter().del_all(&self.id);
        self.nsp.remove(&self.id);
        self.client.remove(self.nsp.name(), self);
        let pending: Vec<AckCallback> = match self.acks.lock() {
            Ok(mut a) => a.drain().map(|(_, cb)| cb).collect(),
            Err(_) => Vec::new(),
        };
        for cb in pending {
            guard("ack", || cb(Err(Error::Closed)));
        }
        for h in disconnect {
            guard("disconnect", || h(&me, reason));
        }
        if let Ok(mut l) = self.listeners.write() {
            *l = Listeners::default();
            self.any_out.store(false, Ordering::Release);
        }
    }

    /// Handles a packet for this namespace (after the connection handlers ran); `text` is the
    /// packet's text as received, when it has no binary attachments (its JSON payload is cut
    /// out only for a fallback handler, which is the one to get it).
    pub(crate) fn on_packet(self: &Arc<Self>, p: Packet, text: Option<&str>) {
        match p.data {
            PacketData::Event(name, args) => {
                let (handler, any, fallback) = match self.listeners.read() {
                    Ok(l) => (
                        l.events.get(&name).cloned(),
                        l.any_in.clone(),
                        l.fallback.clone(),
                    ),
                    Err(_) => return,
                };
                for h in any {
                    guard("onAny", || h(self, &name, &args));
                }
                let ack = p.id.map(|id| AckSender {
                    socket: self.clone(),
                    id,
                });
                if let Some(h) = handler {
                    guard(&name, || h(self, args, ack));
                } else if let Some(h) = fallback {
                    let json = text.map(crate::parser::packet::payload_text);
                    guard(&name, || h(self, &name, args, json, ack));
                }
            }
            PacketData::Ack(args) => {
                let cb =
                    p.id.and_then(|id| self.acks.lock().ok().and_then(|mut a| a.remove(&id)));
                if let Some(cb) = cb {
                    guard("ack", || cb(Ok(args)));
                }
            }
            PacketData::Disconnect => self.on_close(DisconnectReason::ClientNamespaceDisconnect),
            PacketData::Connect(_) | PacketData::ConnectError(_) => {
                self.client.engine.close();
            }
        }
    }
}
