//! The manager's task: owns the Engine.IO connection, the namespace sockets' state and their
//! handlers, and runs the heartbeat, upgrade and reconnection logic. Everything the handles do
//! arrives as a [`Cmd`]; everything the transports see arrives as a [`TransportEvent`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::backoff::Backoff;
use super::transport::{
    close_frame, open_polling, open_websocket, probe_websocket, start_websocket, Endpoint,
    Handshake, Incoming, Transport, TransportEvent, TransportKind, Ws,
};
use super::{
    read_listeners, AckResponder, AckSink, Auth, ClientOptions, Cmd, Handler, ManagerListeners,
    SocketShared,
};
use crate::engine::packet::{Frame, PacketType};
use crate::error::{Error, Result};
use crate::parser::packet::{Decoder, Packet, PacketData};
use crate::value::{Map, Value};

/// Events kept while a CONNECT reply is awaited, at most.
const MAX_RECEIVE_BUFFER: usize = 100_000;

type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Opened = (Handshake, Vec<Incoming>, Transport);

enum Engine {
    Closed,
    Opening(BoxFut<Result<Opened>>),
    Open(Box<OpenEngine>),
}

struct OpenEngine {
    hs: Handshake,
    transport: Transport,
    ping_deadline: Instant,
    upgrade: Upgrade,
    /// Frames written while the polling transport pauses for the upgrade.
    held: Vec<Frame>,
}

enum Upgrade {
    Idle,
    Probing(BoxFut<Result<Box<Ws>>>),
    Pausing(BoxFut<()>, Option<Box<Ws>>),
}

enum EngineEv {
    Opened(Result<Opened>),
    PingTimeout,
    Probed(Result<Box<Ws>>),
    Paused(Option<Box<Ws>>),
}

enum Ev {
    Cmd(Option<Box<Cmd>>),
    Transport(TransportEvent),
    Engine(EngineEv),
    ReconnectTimer,
    AckTimer,
}

struct PendingAck {
    sink: AckSink,
    timeout: Option<Duration>,
}

struct SockState {
    shared: Arc<SocketShared>,
    auth: Auth,
    active: bool,
    connecting: bool,
    connected: bool,
    pid: Option<String>,
    last_offset: Option<String>,
    send_buffer: VecDeque<Packet>,
    /// Events received before the CONNECT reply (a recovered session replays missed packets
    /// first); delivered when it arrives.
    receive_buffer: Vec<(String, Vec<Value>, Option<u64>)>,
    next_ack: u64,
    acks: HashMap<u64, PendingAck>,
}

impl SockState {
    fn sync_status(&self, id: Option<String>, recovered: bool) {
        let (connected, active) = (self.connected, self.active);
        self.shared.update(|s| {
            s.connected = connected;
            s.active = active;
            s.id = id;
            s.recovered = recovered;
        });
    }
    fn dequeued(&self, n: usize) {
        let _ = self
            .shared
            .queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |q| {
                Some(q.saturating_sub(n))
            });
    }
}

pub(crate) struct Task {
    opts: Arc<ClientOptions>,
    ep: Arc<Endpoint>,
    cmd_rx: mpsc::UnboundedReceiver<Cmd>,
    weak_cmd: mpsc::WeakUnboundedSender<Cmd>,
    ev_tx: mpsc::UnboundedSender<TransportEvent>,
    ev_rx: mpsc::UnboundedReceiver<TransportEvent>,
    engine: Engine,
    session: u64,
    gen: u64,
    decoder: Decoder,
    sockets: IndexMap<String, SockState>,
    manager_handlers: ManagerListeners,
    backoff: Backoff,
    reconnecting: bool,
    reconnect_at: Option<Instant>,
    skip_reconnect: bool,
    ack_deadlines: BinaryHeap<Reverse<(Instant, String, u64)>>,
    closing: Vec<JoinHandle<()>>,
    /// The transport in use, for [`Manager::transport`](super::Manager::transport): 0 none,
    /// 1 polling, 2 WebSocket.
    transport_now: Arc<std::sync::atomic::AtomicU8>,
}

/// Now + `d`, saturating far in the future (durations come from users and peers).
fn after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86400))
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

async fn engine_next(engine: &mut Engine) -> EngineEv {
    enum Up {
        Ping,
        Probed(Result<Box<Ws>>),
        Paused,
    }
    match engine {
        Engine::Closed => std::future::pending().await,
        Engine::Opening(f) => {
            let r = f.as_mut().await;
            *engine = Engine::Closed;
            EngineEv::Opened(r)
        }
        Engine::Open(o) => {
            let ping = tokio::time::sleep_until(o.ping_deadline);
            let up = match &mut o.upgrade {
                Upgrade::Idle => {
                    ping.await;
                    Up::Ping
                }
                Upgrade::Probing(f) => tokio::select! {
                    _ = ping => Up::Ping,
                    r = f.as_mut() => Up::Probed(r),
                },
                Upgrade::Pausing(f, _) => tokio::select! {
                    _ = ping => Up::Ping,
                    _ = f.as_mut() => Up::Paused,
                },
            };
            match up {
                Up::Ping => EngineEv::PingTimeout,
                Up::Probed(r) => {
                    o.upgrade = Upgrade::Idle;
                    EngineEv::Probed(r)
                }
                Up::Paused => match std::mem::replace(&mut o.upgrade, Upgrade::Idle) {
                    Upgrade::Pausing(_, ws) => EngineEv::Paused(ws),
                    _ => EngineEv::Paused(None),
                },
            }
        }
    }
}

fn error_value(e: &Error) -> Value {
    let mut m = Map::new();
    match e {
        Error::ConnectRefused { message, data } => {
            m.insert("message".into(), Value::from(message.as_str()));
            if let Some(d) = data {
                m.insert("data".into(), d.clone());
            }
        }
        Error::Timeout(_) => {
            m.insert("message".into(), Value::from("timeout"));
        }
        // As the reference's TransportError: a short message ("xhr poll error", "websocket
        // error") and the details as `description`.
        Error::Transport(t) => {
            let (message, description) = t.split_once(": ").unwrap_or((t.as_str(), ""));
            m.insert("message".into(), Value::from(message));
            if !description.is_empty() {
                m.insert("description".into(), Value::from(description));
            }
        }
        other => {
            m.insert("message".into(), Value::from(other.to_string()));
        }
    }
    Value::Map(m)
}

fn call(h: &Handler, args: Vec<Value>, ack: Option<AckResponder>) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h(args, ack))).is_err() {
        tracing::error!("a client event handler panicked");
    }
}

impl Task {
    pub(crate) fn new(
        opts: Arc<ClientOptions>,
        ep: Arc<Endpoint>,
        cmd_rx: mpsc::UnboundedReceiver<Cmd>,
        weak_cmd: mpsc::WeakUnboundedSender<Cmd>,
        transport_now: Arc<std::sync::atomic::AtomicU8>,
        manager_handlers: ManagerListeners,
    ) -> Task {
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let backoff = Backoff::new(
            opts.reconnection_delay,
            opts.reconnection_delay_max,
            opts.randomization_factor,
        );
        Task {
            opts,
            ep,
            cmd_rx,
            weak_cmd,
            ev_tx,
            ev_rx,
            engine: Engine::Closed,
            session: 0,
            gen: 0,
            decoder: Decoder::default(),
            sockets: IndexMap::new(),
            manager_handlers,
            transport_now,
            backoff,
            reconnecting: false,
            reconnect_at: None,
            skip_reconnect: false,
            ack_deadlines: BinaryHeap::new(),
            closing: Vec::new(),
        }
    }

    pub(crate) async fn run(mut self) {
        loop {
            let ack_deadline = self.ack_deadlines.peek().map(|Reverse((t, _, _))| *t);
            // Engine first: a finished handshake must be seen before its transport's packets.
            let ev = tokio::select! {
                biased;
                e = engine_next(&mut self.engine) => Ev::Engine(e),
                Some(e) = self.ev_rx.recv() => Ev::Transport(e),
                c = self.cmd_rx.recv() => Ev::Cmd(c.map(Box::new)),
                _ = sleep_until_opt(self.reconnect_at) => Ev::ReconnectTimer,
                _ = sleep_until_opt(ack_deadline) => Ev::AckTimer,
            };
            match ev {
                Ev::Cmd(None) => break,
                Ev::Cmd(Some(c)) if matches!(*c, Cmd::Shutdown) => break,
                Ev::Cmd(Some(c)) => self.on_cmd(*c),
                Ev::Transport(e) => self.on_transport(e),
                Ev::Engine(e) => self.on_engine(e),
                Ev::ReconnectTimer => self.on_reconnect_timer(),
                Ev::AckTimer => self.on_ack_timer(),
            }
            self.closing.retain(|h| !h.is_finished());
        }
        self.close_all();
        for (_, s) in self.sockets.iter_mut() {
            for (_, a) in s.acks.drain() {
                (a.sink)(Err(Error::Closed));
            }
            s.send_buffer.clear();
        }
        for h in self.closing.drain(..) {
            let _ = h.await;
        }
    }

    // ---- events -------------------------------------------------------------------------

    fn emit_manager(&self, event: &str, args: Vec<Value>) {
        // Cloned out of the lock: a handler may register more listeners.
        let hs = read_listeners(&self.manager_handlers).get(event).cloned();
        for h in hs.into_iter().flatten() {
            call(&h, args.clone(), None);
        }
    }

    fn emit_socket(
        &self,
        nsp: &str,
        event: &str,
        args: Vec<Value>,
        ack: Option<AckResponder>,
        any: bool,
    ) {
        let Some(s) = self.sockets.get(nsp) else {
            return;
        };
        let (any_hs, hs) = {
            let l = read_listeners(&s.shared.listeners);
            let any_hs = if any { l.any.clone() } else { Vec::new() };
            (any_hs, l.events.get(event).cloned())
        };
        for h in any_hs {
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                h(event, args.clone(), ack.clone())
            }))
            .is_err()
            {
                tracing::error!("a client catch-all handler panicked");
            }
        }
        for h in hs.into_iter().flatten() {
            call(&h, args.clone(), ack.clone());
        }
    }

    // ---- commands -----------------------------------------------------------------------

    fn on_cmd(&mut self, c: Cmd) {
        match c {
            Cmd::Register { shared, auth } => {
                let nsp = shared.nsp.clone();
                self.sockets.entry(nsp).or_insert_with(|| SockState {
                    shared,
                    auth,
                    active: false,
                    connecting: false,
                    connected: false,
                    pid: None,
                    last_offset: None,
                    send_buffer: VecDeque::new(),
                    receive_buffer: Vec::new(),
                    next_ack: 0,
                    acks: HashMap::new(),
                });
            }
            Cmd::SetAuth { nsp, auth } => {
                if let Some(s) = self.sockets.get_mut(&nsp) {
                    s.auth = auth;
                }
            }
            Cmd::Connect { nsp } => self.socket_connect(&nsp),
            Cmd::Disconnect { nsp } => self.socket_disconnect(&nsp),
            Cmd::Emit {
                nsp,
                event,
                args,
                volatile,
                ack,
            } => self.socket_emit(nsp, event, args, volatile, ack),
            Cmd::Ack { nsp, id, args } => {
                if self.sockets.get(&nsp).is_some_and(|s| s.connected) {
                    let p = Packet {
                        nsp,
                        id: Some(id),
                        data: PacketData::Ack(args),
                    };
                    self.write(p.encode());
                }
            }
            Cmd::Open => {
                if matches!(self.engine, Engine::Closed) && !self.reconnecting {
                    self.open_engine();
                }
            }
            Cmd::Close => self.close_all(),
            Cmd::Shutdown => {}
        }
    }

    fn close_all(&mut self) {
        let nsps: Vec<String> = self.sockets.keys().cloned().collect();
        for nsp in nsps {
            self.socket_disconnect_inner(&nsp);
        }
        self.manager_close();
    }

    fn socket_connect(&mut self, nsp: &str) {
        let Some(s) = self.sockets.get_mut(nsp) else {
            return;
        };
        s.active = true;
        if s.connected || s.connecting {
            return;
        }
        match self.engine {
            Engine::Open(_) => self.send_connect(nsp),
            Engine::Closed if !self.reconnecting => self.open_engine(),
            _ => {}
        }
    }

    fn socket_disconnect(&mut self, nsp: &str) {
        self.socket_disconnect_inner(nsp);
        if !self.sockets.values().any(|s| s.active) {
            self.manager_close();
        }
    }

    fn socket_disconnect_inner(&mut self, nsp: &str) {
        let Some(s) = self.sockets.get_mut(nsp) else {
            return;
        };
        let was_connected = s.connected;
        s.active = false;
        s.connecting = false;
        if was_connected {
            let p = Packet {
                nsp: nsp.to_owned(),
                id: None,
                data: PacketData::Disconnect,
            };
            self.write(p.encode());
            self.socket_onclose(nsp, "io client disconnect");
        } else if let Some(s) = self.sockets.get(nsp) {
            s.sync_status(None, false);
        }
    }

    fn socket_emit(
        &mut self,
        nsp: String,
        event: String,
        args: Vec<Value>,
        volatile: bool,
        ack: Option<(AckSink, Option<Duration>)>,
    ) {
        let writable = match &self.engine {
            Engine::Open(o) => !matches!(o.upgrade, Upgrade::Pausing(..)),
            _ => false,
        };
        let Some(s) = self.sockets.get_mut(&nsp) else {
            return;
        };
        let id = ack.map(|(sink, timeout)| {
            let id = s.next_ack;
            s.next_ack += 1;
            s.acks.insert(id, PendingAck { sink, timeout });
            if let Some(t) = timeout {
                self.ack_deadlines
                    .push(Reverse((after(t), nsp.clone(), id)));
            }
            id
        });
        let connected = s.connected;
        let p = Packet {
            nsp,
            id,
            data: PacketData::Event(event, args),
        };
        // Volatile emits are never buffered, so they are not counted in the bound.
        if connected && (writable || !volatile) {
            if !volatile {
                s.dequeued(1);
            }
            let frames = p.encode();
            self.write(frames);
        } else if volatile {
            tracing::trace!("volatile packet dropped");
        } else {
            s.send_buffer.push_back(p);
        }
    }

    fn send_connect(&mut self, nsp: &str) {
        let Some(s) = self.sockets.get_mut(nsp) else {
            return;
        };
        let auth = s.auth.evaluate();
        let data = match (&s.pid, auth) {
            (Some(pid), auth) => {
                let mut m = Map::new();
                m.insert("pid".into(), Value::from(pid.as_str()));
                if let Some(o) = &s.last_offset {
                    m.insert("offset".into(), Value::from(o.as_str()));
                }
                if let Some(Value::Map(a)) = auth {
                    m.extend(a);
                }
                Some(Value::Map(m))
            }
            (None, Some(v @ Value::Map(_))) => Some(v),
            (None, Some(Value::Null) | None) => None,
            (None, Some(_)) => {
                tracing::warn!("auth payload of {nsp} is not a map; sent without it");
                None
            }
        };
        s.connecting = true;
        let p = Packet {
            nsp: nsp.to_owned(),
            id: None,
            data: PacketData::Connect(data),
        };
        self.write(p.encode());
    }

    fn write(&mut self, frames: Vec<Frame>) {
        if let Engine::Open(o) = &mut self.engine {
            if matches!(o.upgrade, Upgrade::Pausing(..)) {
                o.held.extend(frames);
            } else {
                o.transport.send(frames);
            }
        }
    }

    // ---- engine ------------------------------------------------------------------------

    fn open_engine(&mut self) {
        if !matches!(self.engine, Engine::Closed) {
            return;
        }
        self.skip_reconnect = false;
        self.session += 1;
        self.gen += 1;
        let (ep, session, gen, tx) = (self.ep.clone(), self.session, self.gen, self.ev_tx.clone());
        let first = self
            .opts
            .transports
            .first()
            .copied()
            .unwrap_or(TransportKind::Polling);
        let timeout = self.opts.timeout;
        let fut = async move {
            let open = async move {
                match first {
                    TransportKind::Polling => open_polling(ep, session, gen, tx).await,
                    TransportKind::Websocket => open_websocket(ep, session, gen, tx).await,
                }
            };
            match tokio::time::timeout(timeout, open).await {
                Ok(r) => r,
                Err(_) => Err(Error::Timeout(timeout)),
            }
        };
        self.engine = Engine::Opening(Box::pin(fut));
    }

    fn on_engine(&mut self, e: EngineEv) {
        match e {
            EngineEv::Opened(Ok((hs, rest, transport))) => self.on_open(hs, rest, transport),
            EngineEv::Opened(Err(e)) => self.on_open_error(e),
            EngineEv::PingTimeout => self.on_close("ping timeout"),
            EngineEv::Probed(Ok(ws)) => {
                if let Engine::Open(o) = &mut self.engine {
                    let pause = o.transport.pause();
                    o.upgrade = Upgrade::Pausing(Box::pin(pause), Some(ws));
                }
            }
            EngineEv::Probed(Err(e)) => tracing::debug!("upgrade probe failed: {e}"),
            EngineEv::Paused(ws) => {
                let Some(ws) = ws else { return };
                self.gen += 1;
                let (session, gen, tx) = (self.session, self.gen, self.ev_tx.clone());
                if let Engine::Open(o) = &mut self.engine {
                    let mut first = vec![Frame::text(PacketType::Upgrade, "")];
                    first.append(&mut o.held);
                    o.transport = start_websocket(ws, first, &self.ep, session, gen, tx);
                    tracing::debug!("upgraded to websocket");
                }
                if matches!(self.engine, Engine::Open(_)) {
                    self.set_transport(Some(TransportKind::Websocket));
                }
            }
        }
    }

    fn on_open(&mut self, hs: Handshake, rest: Vec<Incoming>, transport: Transport) {
        let probe = transport.kind == TransportKind::Polling
            && self.opts.upgrade
            && self.opts.transports.contains(&TransportKind::Websocket)
            && hs.upgrades.iter().any(|u| u == "websocket");
        let upgrade = if probe {
            let (ep, sid, timeout) = (self.ep.clone(), hs.sid.clone(), self.opts.timeout);
            Upgrade::Probing(Box::pin(async move {
                tokio::time::timeout(timeout, probe_websocket(ep, sid))
                    .await
                    .unwrap_or(Err(Error::Transport("probe error: timeout".into())))
            }))
        } else {
            Upgrade::Idle
        };
        let ping_deadline = after(hs.ping_interval.saturating_add(hs.ping_timeout));
        self.set_transport(Some(transport.kind));
        self.decoder = Decoder::default();
        self.engine = Engine::Open(Box::new(OpenEngine {
            hs,
            transport,
            ping_deadline,
            upgrade,
            held: Vec::new(),
        }));
        self.emit_manager("open", vec![]);
        let nsps: Vec<String> = self
            .sockets
            .iter()
            .filter(|(_, s)| s.active && !s.connected)
            .map(|(n, _)| n.clone())
            .collect();
        for nsp in nsps {
            self.send_connect(&nsp);
        }
        if self.reconnecting {
            let attempt = self.backoff.attempts;
            self.reconnecting = false;
            self.backoff.reset();
            self.emit_manager("reconnect", vec![Value::from(attempt)]);
        }
        self.on_incoming(self.session, rest);
    }

    fn on_open_error(&mut self, err: Error) {
        tracing::debug!("connection failed: {err}");
        let ev = error_value(&err);
        self.emit_manager("error", vec![ev.clone()]);
        let nsps: Vec<String> = self
            .sockets
            .iter()
            .filter(|(_, s)| s.active && !s.connected)
            .map(|(n, _)| n.clone())
            .collect();
        for nsp in nsps {
            self.emit_socket(&nsp, "connect_error", vec![ev.clone()], None, false);
        }
        if self.reconnecting {
            self.reconnecting = false;
            self.reconnect();
            self.emit_manager("reconnect_error", vec![ev]);
        } else if self.opts.reconnection && self.backoff.attempts == 0 {
            self.reconnect();
        }
    }

    /// The connection is gone (or being closed on purpose, reason "forced close").
    fn set_transport(&self, t: Option<TransportKind>) {
        let v = match t {
            None => 0,
            Some(TransportKind::Polling) => 1,
            Some(TransportKind::Websocket) => 2,
        };
        self.transport_now
            .store(v, std::sync::atomic::Ordering::Release);
    }

    fn on_close(&mut self, reason: &str) {
        self.set_transport(None);
        let engine = std::mem::replace(&mut self.engine, Engine::Closed);
        let was = match engine {
            Engine::Closed => false,
            Engine::Opening(_) => true,
            Engine::Open(o) => {
                let o = *o;
                if reason == "forced close" {
                    match o.upgrade {
                        // As the reference: a transport pausing for the upgrade cannot send, so
                        // finish the upgrade and close on the WebSocket, with what was held for
                        // it (a DISCONNECT, typically); else the server keeps the session until
                        // its ping times out.
                        Upgrade::Pausing(pause, Some(ws)) => {
                            self.gen += 1;
                            let (session, gen, tx) = (self.session, self.gen, self.ev_tx.clone());
                            let mut first = vec![Frame::text(PacketType::Upgrade, "")];
                            first.extend(o.held);
                            let polling = o.transport;
                            let ep = self.ep.clone();
                            self.closing.push(tokio::spawn(async move {
                                pause.await;
                                drop(polling);
                                start_websocket(ws, first, &ep, session, gen, tx)
                                    .close(None)
                                    .await;
                            }));
                        }
                        _ => {
                            let last = close_frame(o.transport.kind);
                            self.closing.push(tokio::spawn(o.transport.close(last)));
                        }
                    }
                }
                true
            }
        };
        self.decoder = Decoder::default();
        for s in self.sockets.values_mut() {
            s.connecting = false;
            s.receive_buffer.clear();
        }
        if !was {
            return;
        }
        tracing::debug!("connection closed: {reason}");
        self.backoff.reset();
        self.emit_manager("close", vec![Value::from(reason)]);
        let nsps: Vec<String> = self
            .sockets
            .iter()
            .filter(|(_, s)| s.connected)
            .map(|(n, _)| n.clone())
            .collect();
        for nsp in nsps {
            self.socket_onclose(&nsp, reason);
        }
        if self.opts.reconnection && !self.skip_reconnect {
            self.reconnect();
        }
    }

    /// Deliberate close of the connection: no reconnection.
    fn manager_close(&mut self) {
        self.skip_reconnect = true;
        self.reconnecting = false;
        self.reconnect_at = None;
        self.on_close("forced close");
    }

    fn socket_onclose(&mut self, nsp: &str, reason: &str) {
        let Some(s) = self.sockets.get_mut(nsp) else {
            return;
        };
        s.connected = false;
        s.connecting = false;
        s.sync_status(None, false);
        // Acks of packets already sent will never come; those still buffered may.
        let buffered: Vec<u64> = s.send_buffer.iter().filter_map(|p| p.id).collect();
        let lost: Vec<u64> = s
            .acks
            .keys()
            .copied()
            .filter(|id| !buffered.contains(id))
            .collect();
        let sinks: Vec<AckSink> = lost
            .into_iter()
            .filter_map(|id| s.acks.remove(&id))
            .map(|a| a.sink)
            .collect();
        self.emit_socket(nsp, "disconnect", vec![Value::from(reason)], None, false);
        for sink in sinks {
            sink(Err(Error::Closed));
        }
    }

    fn reconnect(&mut self) {
        if self.reconnecting || self.skip_reconnect {
            return;
        }
        if self.backoff.attempts >= self.opts.reconnection_attempts {
            self.backoff.reset();
            self.reconnecting = false;
            self.emit_manager("reconnect_failed", vec![]);
            return;
        }
        let delay = self.backoff.duration();
        tracing::debug!("reconnecting in {delay:?}");
        self.reconnecting = true;
        self.reconnect_at = Some(after(delay));
    }

    fn on_reconnect_timer(&mut self) {
        self.reconnect_at = None;
        if self.skip_reconnect {
            return;
        }
        self.emit_manager(
            "reconnect_attempt",
            vec![Value::from(self.backoff.attempts)],
        );
        if self.skip_reconnect {
            return;
        }
        self.open_engine();
    }

    fn on_ack_timer(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((t, _, _))) = self.ack_deadlines.peek() {
            if *t > now {
                break;
            }
            let Some(Reverse((_, nsp, id))) = self.ack_deadlines.pop() else {
                break;
            };
            let Some(s) = self.sockets.get_mut(&nsp) else {
                continue;
            };
            let Some(a) = s.acks.remove(&id) else {
                continue;
            };
            let before = s.send_buffer.len();
            s.send_buffer.retain(|p| p.id != Some(id));
            s.dequeued(before - s.send_buffer.len());
            (a.sink)(Err(Error::Timeout(a.timeout.unwrap_or_default())));
        }
    }

    // ---- incoming --------------------------------------------------------------------------

    fn on_transport(&mut self, e: TransportEvent) {
        let current_gen = match &self.engine {
            Engine::Open(o) => o.transport.gen,
            _ => return,
        };
        match e {
            TransportEvent::Packets(s, p, held) if s == self.session => {
                self.on_incoming(s, p);
                drop(held);
            }
            TransportEvent::Error(s, g, msg) if s == self.session && g == current_gen => {
                tracing::debug!("transport error: {msg}");
                self.on_close("transport error");
            }
            TransportEvent::Closed(s, g) if s == self.session && g == current_gen => {
                self.on_close("transport close")
            }
            _ => {}
        }
    }

    fn on_incoming(&mut self, session: u64, packets: Vec<Incoming>) {
        for p in packets {
            if session != self.session || !matches!(self.engine, Engine::Open(_)) {
                return;
            }
            match p {
                Incoming::Ping(data) => {
                    if let Engine::Open(o) = &mut self.engine {
                        o.ping_deadline =
                            after(o.hs.ping_interval.saturating_add(o.hs.ping_timeout));
                    }
                    self.write(vec![Frame::text(PacketType::Pong, &data)]);
                }
                Incoming::Close => self.on_close("transport close"),
                Incoming::Message(text) => match self.decoder.decode_text(&text) {
                    Ok(Some(p)) => self.on_packet(p),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::debug!("parse error: {e}");
                        self.on_close("parse error");
                    }
                },
                Incoming::Binary(b) => match self.decoder.decode_binary(b) {
                    Ok(Some(p)) => self.on_packet(p),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::debug!("parse error: {e}");
                        self.on_close("parse error");
                    }
                },
                Incoming::Open | Incoming::Pong | Incoming::Other => {}
            }
        }
    }

    fn on_event(&mut self, nsp: &str, name: String, args: Vec<Value>, id: Option<u64>) {
        let Some(s) = self.sockets.get_mut(nsp) else {
            return;
        };
        // With connection state recovery on, the server appends the offset as the last argument.
        if s.pid.is_some() {
            if let Some(Value::String(o)) = args.last() {
                s.last_offset = Some(o.clone());
            }
        }
        let ack = match (id, self.weak_cmd.upgrade()) {
            (Some(id), Some(cmd)) => Some(AckResponder {
                cmd,
                nsp: nsp.to_owned(),
                id,
                sent: Arc::new(AtomicBool::new(false)),
            }),
            _ => None,
        };
        self.emit_socket(nsp, &name, args, ack, true);
    }

    fn on_packet(&mut self, p: Packet) {
        let nsp = p.nsp;
        let Some(s) = self.sockets.get_mut(&nsp) else {
            return;
        };
        match p.data {
            PacketData::Connect(data) => {
                let sid = data
                    .as_ref()
                    .and_then(|d| d.get("sid"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let Some(sid) = sid else {
                    let err = Error::Parse(
                        "It seems you are trying to reach a Socket.IO server in v2.x with a v3.x client, but they are not compatible".into(),
                    );
                    self.emit_socket(&nsp, "connect_error", vec![error_value(&err)], None, false);
                    return;
                };
                let pid = data
                    .as_ref()
                    .and_then(|d| d.get("pid"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let recovered = pid.is_some() && s.pid == pid;
                s.pid = pid;
                s.connected = true;
                s.connecting = false;
                s.sync_status(Some(sid), recovered);
                let received = std::mem::take(&mut s.receive_buffer);
                let buffered: Vec<Packet> = s.send_buffer.drain(..).collect();
                s.dequeued(buffered.len());
                for (name, args, id) in received {
                    self.on_event(&nsp, name, args, id);
                }
                for b in buffered {
                    self.write(b.encode());
                }
                self.emit_socket(&nsp, "connect", vec![], None, false);
            }
            PacketData::ConnectError(v) => {
                let (message, data) = match &v {
                    Value::String(m) => (m.clone(), None),
                    v => (
                        v.get("message")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned(),
                        v.get("data").cloned(),
                    ),
                };
                s.active = false;
                s.connecting = false;
                s.sync_status(None, false);
                let err = Error::ConnectRefused { message, data };
                self.emit_socket(&nsp, "connect_error", vec![error_value(&err)], None, false);
                if !self.sockets.values().any(|s| s.active) {
                    self.manager_close();
                }
            }
            PacketData::Disconnect => {
                s.active = false;
                if s.connected {
                    self.socket_onclose(&nsp, "io server disconnect");
                }
                if !self.sockets.values().any(|s| s.active) {
                    self.manager_close();
                }
            }
            PacketData::Event(name, args) => {
                if s.connected {
                    self.on_event(&nsp, name, args, p.id);
                } else if s.connecting && s.receive_buffer.len() < MAX_RECEIVE_BUFFER {
                    s.receive_buffer.push((name, args, p.id));
                }
            }
            PacketData::Ack(args) => {
                let Some(id) = p.id else { return };
                if let Some(a) = s.acks.remove(&id) {
                    (a.sink)(Ok(args));
                }
            }
        }
    }
}
