//! The in-memory adapter: rooms in hash maps, broadcasts encoded once and queued to each socket,
//! and the packet log of connection state recovery.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use super::{
    AckStream, Adapter, BroadcastOptions, RestoredSession, Room, SessionToPersist, Sid, SocketInfo,
};
use crate::engine::FlushBatch;
use crate::error::{Error, Result};
use crate::parser::{Packet, PacketData};
use crate::server::{NamespaceRef, Socket};
use crate::value::Value;

#[derive(Default)]
struct Rooms {
    rooms: HashMap<Room, HashSet<Sid>>,
    sids: HashMap<Sid, HashSet<Room>>,
}

struct StoredPacket {
    id: String,
    at: Instant,
    packet: Packet,
    opts: BroadcastOptions,
}

/// The default adapter: everything in this process.
pub struct LocalAdapter {
    nsp: NamespaceRef,
    state: RwLock<Rooms>,
    recovery: Option<Duration>,
    sessions: Mutex<HashMap<Sid, (SessionToPersist, Instant)>>,
    log: Mutex<VecDeque<StoredPacket>>,
}

impl LocalAdapter {
    /// An adapter for the namespace; keeps a recovery log when the server has connection state
    /// recovery on.
    pub fn new(nsp: NamespaceRef) -> Self {
        let recovery = nsp.recovery_window();
        LocalAdapter {
            nsp,
            state: RwLock::new(Rooms::default()),
            recovery,
            sessions: Mutex::new(HashMap::new()),
            log: Mutex::new(VecDeque::new()),
        }
    }

    /// The local sockets `opts` selects.
    fn targets(&self, opts: &BroadcastOptions) -> Vec<Arc<Socket>> {
        let mut out = Vec::new();
        self.for_each_target(opts, |s| out.push(s.clone()));
        out
    }

    /// Calls `f` with each local socket `opts` selects, under the adapter's and the namespace's
    /// read locks: `f` must not run user code.
    fn for_each_target(&self, opts: &BroadcastOptions, mut f: impl FnMut(&Arc<Socket>)) {
        let Some(nsp) = self.nsp.upgrade() else {
            return;
        };
        let Ok(st) = self.state.read() else {
            return;
        };
        let mut except: HashSet<&Sid> = HashSet::new();
        for r in &opts.except {
            if let Some(members) = st.rooms.get(r) {
                except.extend(members.iter());
            }
        }
        if opts.rooms.is_empty() {
            nsp.each_socket(&mut |s| {
                if !except.contains(&s.id_arc()) {
                    f(s)
                }
            });
            return;
        }
        let mut seen: HashSet<&Sid> = HashSet::new();
        for r in &opts.rooms {
            if let Some(members) = st.rooms.get(r) {
                for sid in members {
                    if !except.contains(sid) && seen.insert(sid) {
                        if let Some(s) = nsp.socket(sid) {
                            f(&s);
                        }
                    }
                }
            }
        }
    }

    /// Sends `packet` to every local socket `opts` selects, each with an ack request (one ack
    /// id for the namespace, as socket.io); `on_ack` gets the arguments of each ack as it
    /// arrives. Returns how many sockets were asked. With `expire`, the sockets forget the ack
    /// request after that long (a remote node's clients that never answer then hold nothing).
    /// Remote adapters use it to answer a broadcast with acks from another node.
    pub fn broadcast_with_ack_each(
        &self,
        mut packet: Packet,
        opts: &BroadcastOptions,
        expire: Option<Duration>,
        on_ack: impl Fn(Vec<Value>) + Send + Sync + 'static,
    ) -> usize {
        let Some(nsp) = self.nsp.upgrade() else {
            return 0;
        };
        let id = nsp.next_ack_id();
        packet.id = Some(id);
        let frames = packet.encode();
        let on_ack = Arc::new(on_ack);
        // The asked sockets are only remembered when their ack requests expire.
        let (mut count, mut asked) = (0, Vec::new());
        let mut runtime = None;
        for s in self.targets(opts) {
            let on_ack = on_ack.clone();
            s.register_ack(
                id,
                Box::new(move |r| {
                    // A socket that disconnects first is no longer waited for.
                    if let Ok(args) = r {
                        on_ack(args);
                    }
                }),
            );
            s.notify_outgoing(&packet);
            if s.send_frames(&frames).is_ok() {
                count += 1;
                if expire.is_some() {
                    runtime.get_or_insert_with(|| s.client.runtime().clone());
                    asked.push(Arc::downgrade(&s));
                }
            } else {
                s.unregister_ack(id);
            }
        }
        if let (Some(t), Some(rt)) = (expire, runtime) {
            rt.spawn(async move {
                tokio::time::sleep(t).await;
                for s in asked.iter().filter_map(|s| s.upgrade()) {
                    s.unregister_ack(id);
                }
            });
        }
        count
    }

    /// The local sockets `opts` selects, with their handshake, rooms and data.
    pub fn socket_infos(&self, opts: &BroadcastOptions) -> Vec<SocketInfo> {
        self.targets(opts)
            .iter()
            .map(|s| SocketInfo {
                id: s.id_arc().clone(),
                handshake: s.handshake_value(),
                rooms: self.socket_rooms(s.id()),
                data: s.data(),
            })
            .collect()
    }

    /// Whether some local socket is in `room`.
    pub fn has_room(&self, room: &str) -> bool {
        self.state
            .read()
            .is_ok_and(|st| st.rooms.contains_key(room))
    }

    fn prune(&self, log: &mut VecDeque<StoredPacket>) {
        if let Some(window) = self.recovery {
            while log.front().is_some_and(|p| p.at.elapsed() > window) {
                log.pop_front();
            }
        }
    }
}

fn random_id() -> String {
    use base64::Engine as _;
    let b: [u8; 12] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

impl Adapter for LocalAdapter {
    fn add_all(&self, id: &Sid, rooms: &[Room]) {
        if let Ok(mut st) = self.state.write() {
            for r in rooms {
                st.rooms.entry(r.clone()).or_default().insert(id.clone());
                st.sids.entry(id.clone()).or_default().insert(r.clone());
            }
        }
    }

    fn del(&self, id: &Sid, room: &str) {
        if let Ok(mut st) = self.state.write() {
            if let Some(rs) = st.sids.get_mut(id) {
                rs.remove(room);
            }
            if let Some(members) = st.rooms.get_mut(room) {
                members.remove(id);
                if members.is_empty() {
                    st.rooms.remove(room);
                }
            }
        }
    }

    fn del_all(&self, id: &Sid) {
        if let Ok(mut st) = self.state.write() {
            if let Some(rs) = st.sids.remove(id) {
                for r in rs {
                    if let Some(members) = st.rooms.get_mut(&r) {
                        members.remove(id);
                        if members.is_empty() {
                            st.rooms.remove(&r);
                        }
                    }
                }
            }
        }
    }

    fn socket_rooms(&self, id: &str) -> Vec<Room> {
        self.state
            .read()
            .ok()
            .and_then(|st| st.sids.get(id).map(|r| r.iter().cloned().collect()))
            .unwrap_or_default()
    }

    fn sockets(&self, opts: &BroadcastOptions) -> Vec<Sid> {
        self.targets(opts)
            .iter()
            .map(|s| s.id_arc().clone())
            .collect()
    }

    fn rooms(&self) -> Vec<Room> {
        self.state
            .read()
            .map(|st| st.rooms.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn broadcast(&self, mut packet: Packet, opts: &BroadcastOptions) -> Result<()> {
        if self.recovery.is_some() && packet.id.is_none() && !opts.flags.volatile {
            if let PacketData::Event(_, args) = &mut packet.data {
                let id = random_id();
                args.push(Value::String(id.clone()));
                if let Ok(mut log) = self.log.lock() {
                    self.prune(&mut log);
                    log.push_back(StoredPacket {
                        id,
                        at: Instant::now(),
                        packet: packet.clone(),
                        opts: opts.clone(),
                    });
                }
            }
        }
        let frames = packet.encode();
        // Queued under the locks, without a list of the targets, and written by a few flush
        // tasks rather than by a wake-up of each target's task (when `batch` is dropped); the
        // sockets with outgoing listeners are served after, as those run user code.
        let mut batch = FlushBatch::default();
        let mut listened = Vec::new();
        self.for_each_target(opts, |s| {
            if s.has_outgoing_listeners() {
                listened.push(s.clone());
            } else {
                let _ = s.send_frames_batched(&frames, &mut batch);
            }
        });
        for s in listened {
            s.notify_outgoing(&packet);
            let _ = s.send_frames_batched(&frames, &mut batch);
        }
        Ok(())
    }

    fn broadcast_with_ack(&self, packet: Packet, opts: &BroadcastOptions) -> AckStream {
        if self.nsp.upgrade().is_none() {
            return async { Err(Error::Closed) }.boxed();
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let expected = self.broadcast_with_ack_each(packet, opts, None, move |args| {
            let _ = tx.send(args);
        });
        let timeout = opts.timeout();
        async move {
            let mut acks = Vec::with_capacity(expected);
            let collect = async {
                while acks.len() < expected {
                    match rx.recv().await {
                        Some(a) => acks.push(a),
                        None => break,
                    }
                }
            };
            match timeout {
                Some(t) => tokio::time::timeout(t, collect)
                    .await
                    .map_err(|_| Error::Timeout(t))?,
                None => collect.await,
            }
            Ok(acks)
        }
        .boxed()
    }

    fn fetch_sockets(
        &self,
        opts: &BroadcastOptions,
    ) -> BoxFuture<'static, Result<Vec<SocketInfo>>> {
        let infos = self.socket_infos(opts);
        async move { Ok(infos) }.boxed()
    }

    fn add_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        for s in self.targets(opts) {
            self.add_all(s.id_arc(), rooms);
        }
    }

    fn del_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        for s in self.targets(opts) {
            for r in rooms {
                self.del(s.id_arc(), r);
            }
        }
    }

    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        for s in self.targets(opts) {
            s.disconnect(close);
        }
    }

    fn server_side_emit(&self, _args: Vec<Value>) -> Result<()> {
        Ok(())
    }

    fn server_count(&self) -> BoxFuture<'static, Result<usize>> {
        async { Ok(1) }.boxed()
    }

    fn persist_session(&self, session: SessionToPersist) {
        if self.recovery.is_none() {
            return;
        }
        if let Ok(mut m) = self.sessions.lock() {
            let window = self.recovery.unwrap_or_default();
            m.retain(|_, (_, at)| at.elapsed() <= window);
            m.insert(session.pid.clone(), (session, Instant::now()));
        }
    }

    fn restore_session(&self, pid: &str, offset: &str) -> Option<RestoredSession> {
        let window = self.recovery?;
        let (session, at) = self.sessions.lock().ok()?.remove(pid)?;
        if at.elapsed() > window {
            return None;
        }
        let mut log = self.log.lock().ok()?;
        self.prune(&mut log);
        let start = log.iter().position(|p| p.id == offset)? + 1;
        let rooms: HashSet<&str> = session.rooms.iter().map(|r| &**r).collect();
        let missed = log
            .iter()
            .skip(start)
            .filter(|p| {
                let included =
                    p.opts.rooms.is_empty() || p.opts.rooms.iter().any(|r| rooms.contains(&**r));
                let excluded = p.opts.except.iter().any(|r| rooms.contains(&**r));
                included && !excluded
            })
            .map(|p| p.packet.clone())
            .collect();
        Some(RestoredSession { session, missed })
    }
}
