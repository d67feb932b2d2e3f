//! The sharded `@socket.io/redis-adapter` 8.3 format (`createShardedAdapter`): one
//! [`ShardedNamespaceAdapter`] per namespace, speaking socket.io-adapter's `ClusterAdapter`
//! protocol over sharded pub/sub.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use super::requests::{ask_others, fetch_across, gather_acks, AckEvent, Collecting, Requests};
use super::{hex16, Kind, Route, Shared, SubscriptionMode};
use crate::adapter::classic_wire::{
    decode_message, encode_message, event_of, map_of, opts_value, parse_opts, rooms_of,
    rooms_value, socket_info_value,
};
use crate::adapter::{
    AckStream, Adapter, BroadcastOptions, LocalAdapter, RestoredSession, Room, SessionToPersist,
    Sid, SocketInfo,
};
use crate::error::Result;
use crate::parser::{Packet, PacketData};
use crate::server::{NamespaceRef, ServerSideAck};
use crate::value::{Map, Value};

// Message types of socket.io-adapter's ClusterAdapter (1, 2 and 13 are its heartbeat variant's,
// unused by this format).
const BROADCAST: i64 = 3;
const SOCKETS_JOIN: i64 = 4;
const SOCKETS_LEAVE: i64 = 5;
const DISCONNECT_SOCKETS: i64 = 6;
const FETCH_SOCKETS: i64 = 7;
const FETCH_SOCKETS_RESPONSE: i64 = 8;
const SERVER_SIDE_EMIT: i64 = 9;
const SERVER_SIDE_EMIT_RESPONSE: i64 = 10;
const BROADCAST_CLIENT_COUNT: i64 = 11;
const BROADCAST_ACK: i64 = 12;

/// What the adapter of one namespace shares with its futures.
struct Core {
    shared: Arc<Shared>,
    name: String,
    /// `P#N#`: every request, and the broadcasts not sent on a room's channel.
    channel: String,
    /// `P#N#<uid>#`: the answers to this node's requests.
    response_channel: String,
    mode: SubscriptionMode,
    requests: Requests,
}

/// The adapter of one namespace in a cluster using the sharded format: a [`LocalAdapter`] for
/// this node's sockets plus the Redis messages for the others (see the [module](super)). Built
/// by [`super::RedisAdapter::factory`] when [`super::RedisConfig::format`] is
/// [`super::RedisFormat::Sharded`].
pub struct ShardedNamespaceAdapter {
    local: LocalAdapter,
    nsp: NamespaceRef,
    core: Arc<Core>,
    /// The rooms whose channel `P#N#<room>#` this node is subscribed to (dynamic modes).
    room_channels: Mutex<HashSet<Room>>,
    /// Itself, for the routes of room channels (they hold it weakly).
    me: Weak<ShardedNamespaceAdapter>,
}

impl Core {
    /// The envelope `{uid, nsp, type, data}`: JSON, or msgpack when it carries binary.
    fn envelope(&self, ty: i64, data: Option<Value>) -> Vec<u8> {
        let mut m = Map::new();
        m.insert("uid".into(), Value::String(self.shared.uid.clone()));
        m.insert("nsp".into(), Value::String(self.name.clone()));
        m.insert("type".into(), Value::Int(ty));
        if let Some(data) = data {
            m.insert("data".into(), data);
        }
        encode_message(&Value::Map(m))
    }

    fn publish(&self, ty: i64, data: Value) {
        self.shared
            .publish(self.channel.clone(), self.envelope(ty, Some(data)));
    }

    /// An answer on the requester's own channel `P#N#<uid>#`.
    fn respond(&self, requester: &str, ty: i64, data: Value) {
        let channel = format!("{}{requester}#", self.channel);
        self.shared.publish(channel, self.envelope(ty, Some(data)));
    }

    /// The channel of a broadcast without ack, as Node's `computeChannel` (in "dynamic" mode a
    /// room of 20 UTF-16 units, as long as a socket id, goes on the main channel).
    fn broadcast_channel(&self, opts: &BroadcastOptions) -> String {
        match (self.mode, opts.rooms.as_slice()) {
            (SubscriptionMode::Dynamic, [room]) if room.encode_utf16().count() != 20 => {
                format!("{}{room}#", self.channel)
            }
            (SubscriptionMode::DynamicPrivate, [room]) => format!("{}{room}#", self.channel),
            _ => self.channel.clone(),
        }
    }

    /// SHARDNUMSUB of the main channel: the number of nodes, this one included.
    fn server_count(&self) -> impl std::future::Future<Output = Result<usize>> {
        self.shared.numsub(self.channel.clone())
    }

    /// Publishes a request of type `ty` (its `data` gets a new requestId) and waits for
    /// `expected` answers.
    async fn collect(
        self: Arc<Self>,
        ty: i64,
        what: Collecting,
        mut data: Map,
        expected: usize,
        timeout: Duration,
    ) -> Result<Vec<Value>> {
        let id = hex16();
        data.insert("requestId".into(), Value::String(id.clone()));
        let publish = || self.publish(ty, Value::Map(data));
        self.requests
            .collect(id, what, expected, timeout, &self.name, publish)
            .await
    }
}

/// `{opts, ...}` of a request.
fn with_opts(opts: &BroadcastOptions, rest: Vec<(&str, Value)>) -> Map {
    let mut m = Map::new();
    let mut o = match opts_value(opts) {
        Value::Map(o) => o,
        _ => Map::new(),
    };
    o.insert("flags".into(), Value::Map(Map::new()));
    m.insert("opts".into(), Value::Map(o));
    for (k, v) in rest {
        m.insert(k.into(), v);
    }
    m
}

/// A packet `{type: 2, data: [event, ...args], nsp}`.
fn packet_value(nsp: &str, event: &str, args: &[Value]) -> Value {
    let mut data = Vec::with_capacity(args.len() + 1);
    data.push(Value::String(event.to_owned()));
    data.extend(args.iter().cloned());
    map_of(vec![
        ("type", Value::Int(2)),
        ("data", Value::Array(data)),
        ("nsp", Value::String(nsp.to_owned())),
    ])
}

/// A broadcast's `opts` with its flags (`volatile`, `timeout`).
fn broadcast_opts_value(opts: &BroadcastOptions) -> Value {
    let mut flags = Map::new();
    if opts.flags.volatile {
        flags.insert("volatile".into(), Value::Bool(true));
    }
    if let Some(t) = opts.flags.timeout {
        flags.insert("timeout".into(), Value::Int(t.min(i64::MAX as u64) as i64));
    }
    let mut o = match opts_value(opts) {
        Value::Map(o) => o,
        _ => Map::new(),
    };
    o.insert("flags".into(), Value::Map(flags));
    Value::Map(o)
}

impl ShardedNamespaceAdapter {
    /// Makes the adapter of namespace `name` and subscribes to its channels.
    pub(super) fn start(
        shared: &Arc<Shared>,
        nsp: NamespaceRef,
        name: String,
        local: LocalAdapter,
    ) -> Arc<ShardedNamespaceAdapter> {
        let channel = format!("{}#{name}#", shared.config.key);
        let response_channel = format!("{channel}{}#", shared.uid);
        let adapter = Arc::new_cyclic(|me| ShardedNamespaceAdapter {
            local,
            nsp,
            core: Arc::new(Core {
                shared: shared.clone(),
                name,
                channel: channel.clone(),
                response_channel: response_channel.clone(),
                mode: shared.config.subscription_mode,
                requests: Requests::default(),
            }),
            room_channels: Mutex::new(HashSet::new()),
            me: me.clone(),
        });
        shared.add_routes(
            vec![(channel, Kind::Shard), (response_channel, Kind::Shard)],
            &adapter,
        );
        adapter
    }

    /// The namespace's in-memory part (this node's sockets and rooms).
    pub fn local(&self) -> &LocalAdapter {
        &self.local
    }

    /// Subscribes to or unsubscribes from the channel of `room`, as the mode wants for a room
    /// that has (or no longer has) sockets here.
    fn sync_room(&self, me: &Arc<Self>, room: &Room) {
        let wanted = match self.core.mode {
            SubscriptionMode::Static => false,
            SubscriptionMode::DynamicPrivate => self.local.has_room(room),
            // Public rooms only: a room that is a socket's id is private.
            SubscriptionMode::Dynamic => {
                self.local.has_room(room) && self.local.socket_rooms(room).is_empty()
            }
        };
        let Ok(mut subscribed) = self.room_channels.lock() else {
            return;
        };
        let channel = format!("{}{room}#", self.core.channel);
        if wanted && subscribed.insert(room.clone()) {
            self.core
                .shared
                .add_routes(vec![(channel, Kind::Shard)], me);
        } else if !wanted && subscribed.remove(room) {
            self.core.shared.remove_route(&channel);
        }
    }

    fn sync_rooms(&self, rooms: &[Room]) {
        if self.core.mode == SubscriptionMode::Static {
            return;
        }
        if let Some(me) = self.me.upgrade() {
            for r in rooms {
                self.sync_room(&me, r);
            }
        }
    }

    /// A message on one of this namespace's channels.
    fn on_message(&self, channel: &str, payload: &[u8]) {
        let core = &self.core;
        let msg = match decode_message(payload) {
            Ok(v) => v,
            Err(e) => return core.shared.malformed("message", e),
        };
        if msg["uid"].as_str() == Some(core.shared.uid.as_str())
            || msg["nsp"].as_str() != Some(core.name.as_str())
        {
            return;
        }
        let ty = msg["type"].as_i64();
        if channel == core.response_channel
            || matches!(
                ty,
                Some(
                    FETCH_SOCKETS_RESPONSE
                        | SERVER_SIDE_EMIT_RESPONSE
                        | BROADCAST_CLIENT_COUNT
                        | BROADCAST_ACK
                )
            )
        {
            return self.on_response(&msg);
        }
        let requester = msg["uid"].as_str().unwrap_or_default().to_owned();
        let data = &msg["data"];
        let request_id = data["requestId"].as_str().map(str::to_owned);
        let opts = || {
            parse_opts(&data["opts"]).map(|o| BroadcastOptions {
                flags: Default::default(),
                ..o
            })
        };
        match ty {
            Some(BROADCAST) => {
                let (Some((event, args)), Some(opts)) =
                    (event_of(&data["packet"]["data"]), parse_opts(&data["opts"]))
                else {
                    return core.shared.malformed("message", "bad broadcast");
                };
                let packet = Packet::event(&core.name, &event, args);
                let Some(id) = request_id else {
                    let _ = self.local.broadcast(packet, &opts);
                    return;
                };
                let expire = opts
                    .timeout()
                    .unwrap_or(core.shared.config.requests_timeout);
                let weak: Weak<Core> = Arc::downgrade(core);
                let (ack_id, ack_to) = (id.clone(), requester.clone());
                let count = self.local.broadcast_with_ack_each(
                    packet,
                    &BroadcastOptions {
                        flags: Default::default(),
                        ..opts
                    },
                    Some(expire),
                    move |args| {
                        if let Some(core) = weak.upgrade() {
                            let data = map_of(vec![
                                ("requestId", Value::String(ack_id.clone())),
                                ("packet", args.into_iter().next().unwrap_or_default()),
                            ]);
                            core.respond(&ack_to, BROADCAST_ACK, data);
                        }
                    },
                );
                let data = map_of(vec![
                    ("requestId", Value::String(id)),
                    ("clientCount", Value::Int(count as i64)),
                ]);
                core.respond(&requester, BROADCAST_CLIENT_COUNT, data);
            }
            Some(t @ (SOCKETS_JOIN | SOCKETS_LEAVE)) => {
                let (Some(opts), Some(rooms)) = (opts(), rooms_of(&data["rooms"])) else {
                    return core.shared.malformed("message", "bad join/leave");
                };
                if t == SOCKETS_JOIN {
                    self.local.add_sockets(&opts, &rooms);
                } else {
                    self.local.del_sockets(&opts, &rooms);
                }
                self.sync_rooms(&rooms);
            }
            Some(DISCONNECT_SOCKETS) => {
                let Some(opts) = opts() else {
                    return core.shared.malformed("message", "bad disconnect");
                };
                let close = data["close"].as_bool().unwrap_or(false);
                self.local.disconnect_sockets(&opts, close);
            }
            Some(FETCH_SOCKETS) => {
                let (Some(opts), Some(id)) = (opts(), request_id) else {
                    return core.shared.malformed("message", "bad fetchSockets");
                };
                let sockets = self
                    .local
                    .socket_infos(&opts)
                    .iter()
                    .map(socket_info_value)
                    .collect();
                let data = map_of(vec![
                    ("requestId", Value::String(id)),
                    ("sockets", Value::Array(sockets)),
                ]);
                core.respond(&requester, FETCH_SOCKETS_RESPONSE, data);
            }
            Some(SERVER_SIDE_EMIT) => {
                let Some(packet) = data["packet"].as_array().filter(|d| !d.is_empty()) else {
                    return core
                        .shared
                        .malformed("message", "serverSideEmit without packet");
                };
                let ack = request_id.map(|id| {
                    let core = Arc::downgrade(core);
                    ServerSideAck::new(move |v| {
                        if let Some(core) = core.upgrade() {
                            let data =
                                map_of(vec![("requestId", Value::String(id)), ("packet", v)]);
                            core.respond(&requester, SERVER_SIDE_EMIT_RESPONSE, data);
                        }
                    })
                });
                if let Some(nsp) = self.nsp.upgrade() {
                    nsp.dispatch_server_side_emit(packet.clone(), ack);
                }
            }
            _ => tracing::debug!(
                "redis adapter: ignoring a message of type {:?}",
                msg["type"]
            ),
        }
    }

    /// An answer to one of this node's requests (unknown request ids are ignored).
    fn on_response(&self, msg: &Value) {
        let requests = &self.core.requests;
        let data = &msg["data"];
        let Some(id) = data["requestId"].as_str() else {
            return;
        };
        match msg["type"].as_i64() {
            Some(BROADCAST_CLIENT_COUNT) => {
                let n = data["clientCount"].as_i64().unwrap_or(0).max(0) as usize;
                requests.ack_event(id, AckEvent::Count(n));
            }
            Some(BROADCAST_ACK) => {
                requests.ack_event(id, AckEvent::Ack(vec![data["packet"].clone()]));
            }
            Some(FETCH_SOCKETS_RESPONSE) => requests.answer(id, |_| {
                data["sockets"].as_array().cloned().unwrap_or_default()
            }),
            Some(SERVER_SIDE_EMIT_RESPONSE) => {
                requests.answer(id, |_| vec![data["packet"].clone()])
            }
            _ => {}
        }
    }
}

impl Route for ShardedNamespaceAdapter {
    fn deliver(&self, _: Kind, channel: &str, payload: &[u8]) {
        self.on_message(channel, payload)
    }
}

impl Adapter for ShardedNamespaceAdapter {
    fn add_all(&self, id: &Sid, rooms: &[Room]) {
        self.local.add_all(id, rooms);
        self.sync_rooms(rooms);
    }

    fn del(&self, id: &Sid, room: &str) {
        self.local.del(id, room);
        self.sync_rooms(&[Room::from(room)]);
    }

    fn del_all(&self, id: &Sid) {
        let rooms = self.local.socket_rooms(id);
        self.local.del_all(id);
        self.sync_rooms(&rooms);
    }

    fn socket_rooms(&self, id: &str) -> Vec<Room> {
        self.local.socket_rooms(id)
    }

    fn sockets(&self, opts: &BroadcastOptions) -> Vec<Sid> {
        self.local.sockets(opts)
    }

    fn rooms(&self) -> Vec<Room> {
        self.local.rooms()
    }

    fn broadcast(&self, packet: Packet, opts: &BroadcastOptions) -> Result<()> {
        if !opts.flags.local {
            if let PacketData::Event(event, args) = &packet.data {
                let core = &self.core;
                let data = map_of(vec![
                    ("packet", packet_value(&core.name, event, args)),
                    ("opts", broadcast_opts_value(opts)),
                ]);
                let msg = core.envelope(BROADCAST, Some(data));
                core.shared.publish(core.broadcast_channel(opts), msg);
            }
        }
        self.local.broadcast(packet, opts)
    }

    fn broadcast_with_ack(&self, packet: Packet, opts: &BroadcastOptions) -> AckStream {
        let PacketData::Event(event, args) = &packet.data else {
            return self.local.broadcast_with_ack(packet, opts);
        };
        if opts.flags.local {
            return self.local.broadcast_with_ack(packet, opts);
        }
        let core = self.core.clone();
        let timeout = opts
            .timeout()
            .unwrap_or(core.shared.config.requests_timeout);
        let request_id = hex16();
        let (tx, rx) = core.requests.start_acks(&request_id);
        let mut opts_with_timeout = opts.clone();
        opts_with_timeout.flags.timeout = Some(timeout.as_millis() as u64);
        core.publish(
            BROADCAST,
            map_of(vec![
                ("packet", packet_value(&core.name, event, args)),
                ("requestId", Value::String(request_id.clone())),
                ("opts", broadcast_opts_value(&opts_with_timeout)),
            ]),
        );
        let local_count =
            self.local
                .broadcast_with_ack_each(packet, opts, Some(timeout), move |args| {
                    let _ = tx.send(AckEvent::Ack(args));
                });
        let servers = core.server_count();
        async move {
            let r = gather_acks(servers, rx, local_count, timeout).await;
            core.requests.forget(&request_id);
            r
        }
        .boxed()
    }

    fn fetch_sockets(
        &self,
        opts: &BroadcastOptions,
    ) -> BoxFuture<'static, Result<Vec<SocketInfo>>> {
        let local = self.local.socket_infos(opts);
        if opts.flags.local {
            return async move { Ok(local) }.boxed();
        }
        let core = self.core.clone();
        let servers = core.server_count();
        let timeout = opts
            .timeout()
            .unwrap_or(core.shared.config.requests_timeout);
        let data = with_opts(opts, Vec::new());
        let shared = core.shared.clone();
        fetch_across(shared, local, servers, move |others| {
            core.collect(FETCH_SOCKETS, Collecting::Sockets, data, others, timeout)
        })
        .boxed()
    }

    fn add_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        self.local.add_sockets(opts, rooms);
        self.sync_rooms(rooms);
        if !opts.flags.local {
            let data = with_opts(opts, vec![("rooms", rooms_value(rooms))]);
            self.core.publish(SOCKETS_JOIN, Value::Map(data));
        }
    }

    fn del_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        self.local.del_sockets(opts, rooms);
        self.sync_rooms(rooms);
        if !opts.flags.local {
            let data = with_opts(opts, vec![("rooms", rooms_value(rooms))]);
            self.core.publish(SOCKETS_LEAVE, Value::Map(data));
        }
    }

    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        if !opts.flags.local {
            let data = with_opts(opts, vec![("close", Value::Bool(close))]);
            self.core.publish(DISCONNECT_SOCKETS, Value::Map(data));
        }
        self.local.disconnect_sockets(opts, close);
    }

    fn server_side_emit(&self, args: Vec<Value>) -> Result<()> {
        let data = map_of(vec![("packet", Value::Array(args))]);
        self.core.publish(SERVER_SIDE_EMIT, data);
        Ok(())
    }

    fn server_side_emit_with_ack(
        &self,
        args: Vec<Value>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<Value>>> {
        let core = self.core.clone();
        let servers = core.server_count();
        let mut data = Map::new();
        data.insert("packet".into(), Value::Array(args));
        ask_others(servers, move |others| {
            core.collect(
                SERVER_SIDE_EMIT,
                Collecting::ServerSide,
                data,
                others,
                timeout,
            )
        })
        .boxed()
    }

    fn server_count(&self) -> BoxFuture<'static, Result<usize>> {
        let servers = self.core.server_count();
        async move { Ok(servers.await?.max(1)) }.boxed()
    }

    // No `all_rooms` across nodes: the format has no request for it (as Node's sharded
    // adapter); the default gives this node's rooms.

    fn close(&self) {
        self.core.shared.remove_routes(self);
    }

    fn persist_session(&self, session: SessionToPersist) {
        self.local.persist_session(session)
    }

    fn restore_session(&self, pid: &str, offset: &str) -> Option<RestoredSession> {
        self.local.restore_session(pid, offset)
    }
}
