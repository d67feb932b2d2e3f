//! One Engine.IO connection seen by Socket.IO: decodes packets and routes them to the sockets
//! of its namespaces; runs the CONNECT handshake (middlewares, state recovery).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::socket::guard;
use super::{Namespace, ServerWeak, Socket};
use crate::adapter::{RestoredSession, Room, Sid};
use crate::engine::{CloseReason, ConnHandler, EngineHandler, EngineSocket, Message};
use crate::parser::packet::DEFAULT_MAX_ATTACHMENTS;
use crate::parser::{Decoder, Packet, PacketData};
use crate::value::Value;

pub(crate) struct Handler {
    pub(crate) server: ServerWeak,
}

/// State shared between the connection task and its sockets.
pub(crate) struct ClientShared {
    pub(crate) engine: EngineSocket,
    sockets: Mutex<HashMap<String, Arc<Socket>>>,
    connected_once: AtomicBool,
    /// The task closing the connection if no namespace is joined in time; ended at the first
    /// join so an idle connection does not keep it.
    connect_timeout: Mutex<Option<tokio::task::AbortHandle>>,
    runtime: tokio::runtime::Handle,
}

impl ClientShared {
    pub(crate) fn sockets(&self) -> Vec<Arc<Socket>> {
        self.sockets
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }
    pub(crate) fn remove(&self, nsp: &str, s: &Socket) {
        if let Ok(mut m) = self.sockets.lock() {
            if m.get(nsp).is_some_and(|x| std::ptr::eq(&**x, s)) {
                m.remove(nsp);
            }
        }
    }
    pub(crate) fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }
}

struct Conn {
    client: Arc<ClientShared>,
    server: ServerWeak,
    decoder: Decoder,
}

impl EngineHandler for Handler {
    fn on_open(&self, socket: &EngineSocket) -> Box<dyn ConnHandler> {
        let server = self.server.upgrade();
        let runtime = tokio::runtime::Handle::try_current().ok();
        let (max_att, max_bytes) = server
            .as_ref()
            .map(|s| {
                (
                    s.config.max_attachments,
                    s.config.engine.max_http_buffer_size,
                )
            })
            .unwrap_or((DEFAULT_MAX_ATTACHMENTS, 1_000_000));
        let client = Arc::new(ClientShared {
            engine: socket.clone(),
            sockets: Mutex::new(HashMap::new()),
            connected_once: AtomicBool::new(false),
            connect_timeout: Mutex::new(None),
            runtime: runtime
                .clone()
                .unwrap_or_else(tokio::runtime::Handle::current),
        });
        if let Some(server) = &server {
            let timeout = server.config.connect_timeout;
            let c = Arc::downgrade(&client);
            let task = client.runtime.spawn(async move {
                tokio::time::sleep(timeout).await;
                if let Some(c) = c.upgrade() {
                    if !c.connected_once.load(Ordering::Acquire) {
                        c.engine.close();
                    }
                }
            });
            if let Ok(mut t) = client.connect_timeout.lock() {
                *t = Some(task.abort_handle());
            }
        }
        Box::new(Conn {
            client,
            server: self.server.clone(),
            decoder: Decoder::with_limits(max_att, max_bytes),
        })
    }
}

impl ConnHandler for Conn {
    fn on_message(&mut self, msg: Message<'_>) {
        let (r, text) = match msg {
            // A text message completing a packet is one without attachments.
            Message::Text(t) => (self.decoder.decode_text(t), Some(t)),
            Message::Binary(b) => (self.decoder.decode_binary(b), None),
        };
        match r {
            Ok(Some(p)) => self.on_packet(p, text),
            Ok(None) => {}
            Err(e) => {
                tracing::debug!("closing connection {}: {e}", self.client.engine.sid());
                self.client.engine.close_with(CloseReason::ParseError);
            }
        }
    }

    fn on_close(&mut self, reason: CloseReason) {
        for s in self.client.sockets() {
            s.on_close(reason.into());
        }
    }
}

impl Conn {
    fn on_packet(&mut self, p: Packet, text: Option<&str>) {
        let existing = self
            .client
            .sockets
            .lock()
            .ok()
            .and_then(|m| m.get(&p.nsp).cloned());
        match (existing, &p.data) {
            (None, PacketData::Connect(_)) => {
                let PacketData::Connect(auth) = p.data else {
                    return;
                };
                self.connect(
                    p.nsp,
                    auth.unwrap_or_else(|| Value::Map(Default::default())),
                );
            }
            (Some(s), PacketData::Event(..) | PacketData::Ack(_) | PacketData::Disconnect) => {
                deliver(&s, p, text);
            }
            _ => self.client.engine.close(),
        }
    }

    fn connect(&mut self, name: String, auth: Value) {
        let Some(server) = self.server.upgrade() else {
            return;
        };
        let Some(nsp) = server.lookup(&name, &auth) else {
            let p = Packet {
                nsp: name,
                id: None,
                data: PacketData::ConnectError(Value::Map(
                    [("message".to_string(), Value::from("Invalid namespace"))]
                        .into_iter()
                        .collect(),
                )),
            };
            let _ = self.client.engine.send_all(&p.encode());
            return;
        };
        let recovery = server.config.connection_state_recovery.clone();
        let restored: Option<RestoredSession> = recovery.as_ref().and_then(|_| {
            let pid = auth.get("pid")?.as_str()?;
            let offset = auth.get("offset")?.as_str()?;
            nsp.adapter().restore_session(pid, offset)
        });
        let new_id = || -> Sid { random_sid().into() };
        let (id, pid, data, recovered) = match &restored {
            Some(r) => (
                r.session.sid.clone(),
                Some(r.session.pid.clone()),
                r.session.data.clone(),
                true,
            ),
            None => (
                new_id(),
                recovery.as_ref().map(|_| new_id()),
                Value::Null,
                false,
            ),
        };
        let socket = Socket::new(
            id,
            pid,
            nsp.clone(),
            self.client.clone(),
            auth,
            data,
            recovered,
        );
        if let Ok(mut m) = self.client.sockets.lock() {
            m.insert(name, socket.clone());
        }
        let middlewares = nsp
            .0
            .handlers
            .middlewares
            .read()
            .map(|m| m.clone())
            .unwrap_or_default();
        let skip = recovered && recovery.as_ref().is_some_and(|r| r.skip_middlewares);
        if middlewares.is_empty() || skip {
            finish_connect(&nsp, socket, restored);
            return;
        }
        let server = Arc::downgrade(&server);
        self.client.runtime.spawn(async move {
            for m in middlewares {
                if let Err(e) = m(socket.clone()).await {
                    socket.client.remove(nsp.name(), &socket);
                    let p = Packet {
                        nsp: nsp.name().to_owned(),
                        id: None,
                        data: PacketData::ConnectError(e.to_value()),
                    };
                    let _ = socket.client.engine.send_all(&p.encode());
                    return;
                }
            }
            if server.upgrade().is_some() {
                finish_connect(&nsp, socket, restored);
            }
        });
    }
}

/// Routes a packet to a socket, or holds it while the socket's connection handlers run.
///
/// Before the CONNECT reply (while the namespace's middlewares run) the client may not send to
/// the namespace: socket.io's client buffers until it is connected. A peer that does is closed
/// as socket.io closes it ("invalid state"), rather than its packets piling up unread.
fn deliver(s: &Arc<Socket>, p: Packet, text: Option<&str>) {
    if let Ok(mut early) = s.early.lock() {
        if let Some(buf) = early.as_mut() {
            if !s.connected() {
                tracing::debug!(
                    "closing connection {}: a packet for {} before its CONNECT reply",
                    s.client.engine.sid(),
                    s.nsp().name()
                );
                drop(early);
                s.client.engine.close();
                return;
            }
            buf.push((p, s.client.engine.hold()));
            return;
        }
    }
    s.on_packet(p, text);
}

fn finish_connect(nsp: &Namespace, socket: Arc<Socket>, restored: Option<RestoredSession>) {
    let client = socket.client.clone();
    if client.engine.is_closed() {
        client.remove(nsp.name(), &socket);
        return;
    }
    let mut rooms: Vec<Room> = vec![socket.id_arc().clone()];
    if let Some(r) = &restored {
        rooms.extend(
            r.session
                .rooms
                .iter()
                .filter(|x| x.as_ref() != socket.id())
                .cloned(),
        );
    }
    nsp.adapter().add_all(socket.id_arc(), &rooms);
    nsp.insert(socket.clone());
    socket.mark_connected();
    if !client.connected_once.swap(true, Ordering::AcqRel) {
        if let Some(t) = client
            .connect_timeout
            .lock()
            .ok()
            .and_then(|mut t| t.take())
        {
            t.abort();
        }
    }
    let mut reply = crate::value::Map::new();
    reply.insert("sid".into(), Value::from(socket.id()));
    if let Some(pid) = socket.pid() {
        reply.insert("pid".into(), Value::from(pid));
    }
    let p = Packet {
        nsp: nsp.name().to_owned(),
        id: None,
        data: PacketData::Connect(Some(Value::Map(reply))),
    };
    let _ = socket.send_packet(&p);
    if let Some(r) = restored {
        for mut missed in r.missed {
            missed.nsp = nsp.name().to_owned();
            let _ = socket.send_packet(&missed);
        }
    }
    let handlers = nsp
        .0
        .handlers
        .connection
        .read()
        .map(|h| h.clone())
        .unwrap_or_default();
    for h in handlers {
        guard("connection", || h(socket.clone()));
    }
    // Deliver what arrived while the handlers ran, in order, then go direct.
    loop {
        let batch = match socket.early.lock() {
            Ok(mut early) => match early.as_mut() {
                Some(buf) if !buf.is_empty() => std::mem::take(buf),
                _ => {
                    *early = None;
                    break;
                }
            },
            Err(_) => break,
        };
        for (p, held) in batch {
            socket.on_packet(p, None);
            drop(held);
        }
    }
}

fn random_sid() -> String {
    use base64::Engine as _;
    let b: [u8; 15] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}
