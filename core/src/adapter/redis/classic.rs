//! The classic `@socket.io/redis-adapter` 8.3 format: one [`NamespaceAdapter`] per namespace.

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use super::requests::{ask_others, fetch_across, gather_acks, AckEvent, Collecting, Requests};
use super::{uid6, Kind, Route, Shared};
use crate::adapter::classic_wire::*;
use crate::adapter::msgpack as mp;
use crate::adapter::{
    AckStream, Adapter, BroadcastOptions, LocalAdapter, RestoredSession, Room, SessionToPersist,
    Sid, SocketInfo,
};
use crate::error::Result;
use crate::parser::{Packet, PacketData};
use crate::server::{NamespaceRef, ServerSideAck};
use crate::value::{Map, Value};

/// What the adapter of one namespace shares with its futures.
struct Core {
    shared: Arc<Shared>,
    name: String,
    /// `P#N#`.
    channel: String,
    /// `P-request#N#`.
    request_channel: String,
    /// `P-response#N#`.
    response_channel: String,
    requests: Requests,
}

/// The adapter of one namespace in a cluster using the classic format: a [`LocalAdapter`] for
/// this node's sockets plus the Redis messages for the others (see the [module](super)). Built
/// by [`super::RedisAdapter::factory`].
pub struct NamespaceAdapter {
    local: LocalAdapter,
    nsp: NamespaceRef,
    core: Arc<Core>,
}

impl Core {
    fn uid(&self) -> &str {
        &self.shared.uid
    }

    fn publish_request(&self, body: &Value) {
        self.shared
            .publish(self.request_channel.clone(), encode_message(body));
    }

    /// Where to answer `req`: the requester's own response channel when it gave its uid.
    fn response_channel_for(&self, req: &Value) -> String {
        match req["uid"].as_str() {
            Some(uid) if !uid.is_empty() && uid != "emitter" => {
                format!("{}{uid}#", self.response_channel)
            }
            _ => self.response_channel.clone(),
        }
    }

    fn respond(&self, req: &Value, payload: Vec<u8>) {
        self.shared.publish(self.response_channel_for(req), payload);
    }

    /// Publishes `body` (with a new requestId) and waits for `expected` answers, for at most
    /// `timeout`.
    async fn collect(
        self: Arc<Self>,
        what: Collecting,
        mut body: Map,
        expected: usize,
        timeout: Duration,
    ) -> Result<Vec<Value>> {
        let id = uid6();
        body.insert("requestId".into(), Value::String(id.clone()));
        let publish = || self.publish_request(&Value::Map(body));
        self.requests
            .collect(id, what, expected, timeout, &self.name, publish)
            .await
    }

    /// A request body starting with `uid` and `type`.
    fn body(&self, ty: i64) -> Map {
        let mut m = Map::new();
        m.insert("uid".into(), Value::String(self.uid().to_owned()));
        m.insert("type".into(), Value::Int(ty));
        m
    }

    /// NUMSUB of the request channel: the number of nodes, this one included.
    fn server_count(&self) -> impl std::future::Future<Output = Result<usize>> {
        self.shared.numsub(self.request_channel.clone())
    }
}

impl NamespaceAdapter {
    /// Makes the adapter of namespace `name` and subscribes to its channels.
    pub(super) fn start(
        shared: &Arc<Shared>,
        nsp: NamespaceRef,
        name: String,
        local: LocalAdapter,
    ) -> Arc<NamespaceAdapter> {
        let key = &shared.config.key;
        let channel = format!("{key}#{name}#");
        let request_channel = format!("{key}-request#{name}#");
        let response_channel = format!("{key}-response#{name}#");
        let specific = format!("{response_channel}{}#", shared.uid);
        let pattern = format!("{}*", glob_escape(&channel));
        let adapter = Arc::new(NamespaceAdapter {
            local,
            nsp,
            core: Arc::new(Core {
                shared: shared.clone(),
                name,
                channel,
                request_channel: request_channel.clone(),
                response_channel: response_channel.clone(),
                requests: Requests::default(),
            }),
        });
        shared.add_routes(
            vec![
                (pattern, Kind::Broadcast),
                (request_channel, Kind::Request),
                (response_channel, Kind::Response),
                (specific, Kind::Response),
            ],
            &adapter,
        );
        adapter
    }

    /// The namespace's in-memory part (this node's sockets and rooms).
    pub fn local(&self) -> &LocalAdapter {
        &self.local
    }

    /// A broadcast from another node (`channel` is `P#N#` or `P#N#<room>#`).
    pub(super) fn on_broadcast(&self, channel: &str, payload: &[u8]) {
        let core = &self.core;
        let Some(rest) = channel.strip_prefix(core.channel.as_str()) else {
            return;
        };
        let room = rest.strip_suffix('#').unwrap_or(rest);
        if !room.is_empty() && !self.local.has_room(room) {
            // Aimed at one room that has no socket here: not even decoded (as Node).
            return;
        }
        let b = match parse_broadcast(payload) {
            Ok(b) => b,
            Err(e) => return core.shared.malformed("broadcast", e),
        };
        if b.uid.as_deref() == Some(core.uid()) || b.nsp != core.name {
            return;
        }
        let (event, args, opts) = (b.event, b.args, b.opts);
        let _ = self
            .local
            .broadcast(Packet::event(&core.name, &event, args), &opts);
    }

    /// A request from another node (or from the emitter, or our own echo).
    pub(super) fn on_request(&self, payload: &[u8]) {
        let core = &self.core;
        let req = match decode_message(payload) {
            Ok(v) => v,
            Err(e) => return core.shared.malformed("request", e),
        };
        let own = req["uid"].as_str() == Some(core.uid());
        let request_id = req["requestId"].as_str().map(str::to_owned);
        let ty = req["type"].as_i64();
        let answer = |fields: Vec<(&str, Value)>| {
            let mut all = vec![(
                "requestId",
                Value::String(request_id.clone().unwrap_or_default()),
            )];
            all.extend(fields);
            core.respond(&req, encode_message(&map_of(all)));
        };
        let skip_own = own
            || request_id
                .as_deref()
                .is_some_and(|id| core.requests.is_pending(id));
        match ty {
            Some(SOCKETS) => {
                if skip_own || request_id.is_none() {
                    return;
                }
                let Some(rooms) = rooms_of(&req["rooms"]) else {
                    return core.shared.malformed("request", "bad rooms");
                };
                let opts = BroadcastOptions {
                    rooms,
                    ..Default::default()
                };
                let ids = self.local.sockets(&opts);
                let ids = ids.iter().map(|s| Value::String(s.to_string())).collect();
                answer(vec![("sockets", Value::Array(ids))]);
            }
            Some(ALL_ROOMS) => {
                if skip_own || request_id.is_none() {
                    return;
                }
                answer(vec![("rooms", rooms_value(&self.local.rooms()))]);
            }
            Some(t @ (REMOTE_JOIN | REMOTE_LEAVE | REMOTE_DISCONNECT)) => {
                if own {
                    // Applied locally when it was sent.
                    return;
                }
                if let Value::Map(_) = &req["opts"] {
                    let Some(opts) = parse_opts(&req["opts"]) else {
                        return core.shared.malformed("request", "bad opts");
                    };
                    let opts = BroadcastOptions {
                        flags: Default::default(),
                        ..opts
                    };
                    match t {
                        REMOTE_DISCONNECT => {
                            let close = req["close"].as_bool().unwrap_or(false);
                            self.local.disconnect_sockets(&opts, close);
                        }
                        _ => {
                            let Some(rooms) = rooms_of(&req["rooms"]) else {
                                return core.shared.malformed("request", "bad rooms");
                            };
                            if t == REMOTE_JOIN {
                                self.local.add_sockets(&opts, &rooms);
                            } else {
                                self.local.del_sockets(&opts, &rooms);
                            }
                        }
                    }
                    return;
                }
                // The legacy form, for one socket: answered by the node that has it.
                let Some(sid) = req["sid"].as_str() else {
                    return core.shared.malformed("request", "neither opts nor sid");
                };
                let Some(socket) = self.nsp.upgrade().and_then(|n| n.socket(sid)) else {
                    return;
                };
                match t {
                    REMOTE_DISCONNECT => socket.disconnect(req["close"].as_bool().unwrap_or(false)),
                    _ => {
                        let Some(room) = room_of(&req["room"]) else {
                            return core.shared.malformed("request", "bad room");
                        };
                        if t == REMOTE_JOIN {
                            self.local.add_all(socket.id_arc(), &[room]);
                        } else {
                            self.local.del(socket.id_arc(), &room);
                        }
                    }
                }
                if request_id.is_some() {
                    answer(Vec::new());
                }
            }
            Some(REMOTE_FETCH) => {
                if skip_own || request_id.is_none() {
                    return;
                }
                let Some(opts) = parse_opts(&req["opts"]) else {
                    return core.shared.malformed("request", "bad opts");
                };
                let sockets = self
                    .local
                    .socket_infos(&opts)
                    .iter()
                    .map(socket_info_value)
                    .collect();
                answer(vec![("sockets", Value::Array(sockets))]);
            }
            Some(SERVER_SIDE_EMIT) => {
                if own {
                    return;
                }
                let Some(data) = req["data"].as_array().filter(|d| !d.is_empty()) else {
                    return core
                        .shared
                        .malformed("request", "serverSideEmit without data");
                };
                let ack = request_id.map(|id| {
                    let core = Arc::downgrade(core);
                    ServerSideAck::new(move |v| {
                        if let Some(core) = core.upgrade() {
                            let body = map_of(vec![
                                ("type", Value::Int(SERVER_SIDE_EMIT)),
                                ("requestId", Value::String(id)),
                                ("data", v),
                            ]);
                            // Always on the common channel, as Node.
                            core.shared
                                .publish(core.response_channel.clone(), encode_message(&body));
                        }
                    })
                });
                if let Some(nsp) = self.nsp.upgrade() {
                    nsp.dispatch_server_side_emit(data.clone(), ack);
                }
            }
            Some(BROADCAST) => {
                if skip_own {
                    return;
                }
                let Some(request_id) = request_id else {
                    return core
                        .shared
                        .malformed("request", "broadcast without requestId");
                };
                let packet = &req["packet"];
                let (Some((event, args)), Some(opts)) =
                    (event_of(&packet["data"]), parse_opts(&req["opts"]))
                else {
                    return core.shared.malformed("request", "bad broadcast");
                };
                let expire = opts
                    .timeout()
                    .unwrap_or(core.shared.config.requests_timeout);
                let weak: Weak<Core> = Arc::downgrade(core);
                let id = request_id.clone();
                let channel = core.response_channel_for(&req);
                let ack_channel = channel.clone();
                let count = self.local.broadcast_with_ack_each(
                    Packet::event(&core.name, &event, args),
                    &BroadcastOptions {
                        flags: Default::default(),
                        ..opts
                    },
                    Some(expire),
                    move |args| {
                        let Some(core) = weak.upgrade() else {
                            return;
                        };
                        let body = map_of(vec![
                            ("type", Value::Int(BROADCAST_ACK)),
                            ("requestId", Value::String(id.clone())),
                            ("packet", args.into_iter().next().unwrap_or_default()),
                        ]);
                        let mut out = Vec::new();
                        mp::write_value(&mut out, &body);
                        core.shared.publish(ack_channel.clone(), out);
                    },
                );
                let body = map_of(vec![
                    ("type", Value::Int(BROADCAST_CLIENT_COUNT)),
                    ("requestId", Value::String(request_id)),
                    ("clientCount", Value::Int(count as i64)),
                ]);
                core.shared.publish(channel, encode_message(&body));
            }
            _ => tracing::debug!(
                "redis adapter: ignoring a request of type {:?}",
                req["type"]
            ),
        }
    }

    /// An answer to one of this node's requests (or to another node's: ignored).
    pub(super) fn on_response(&self, payload: &[u8]) {
        let core = &self.core;
        let resp = match decode_message(payload) {
            Ok(v) => v,
            Err(e) => return core.shared.malformed("response", e),
        };
        let Some(id) = resp["requestId"].as_str() else {
            return;
        };
        match resp["type"].as_i64() {
            Some(BROADCAST_CLIENT_COUNT) => {
                let n = resp["clientCount"].as_i64().unwrap_or(0).max(0) as usize;
                core.requests.ack_event(id, AckEvent::Count(n));
            }
            Some(BROADCAST_ACK) => {
                let ack = vec![resp["packet"].clone()];
                core.requests.ack_event(id, AckEvent::Ack(ack));
            }
            _ => core.requests.answer(id, |what| match what {
                Collecting::Sockets => resp["sockets"].as_array().cloned().unwrap_or_default(),
                Collecting::Rooms => resp["rooms"].as_array().cloned().unwrap_or_default(),
                Collecting::ServerSide => vec![resp["data"].clone()],
            }),
        }
    }
}

impl Route for NamespaceAdapter {
    fn deliver(&self, kind: Kind, channel: &str, payload: &[u8]) {
        match kind {
            Kind::Broadcast => self.on_broadcast(channel, payload),
            Kind::Request => self.on_request(payload),
            Kind::Response | Kind::Shard => self.on_response(payload),
        }
    }
}

impl Adapter for NamespaceAdapter {
    fn add_all(&self, id: &Sid, rooms: &[Room]) {
        self.local.add_all(id, rooms)
    }

    fn del(&self, id: &Sid, room: &str) {
        self.local.del(id, room)
    }

    fn del_all(&self, id: &Sid) {
        self.local.del_all(id)
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
                let msg = encode_broadcast(core.uid(), &core.name, event, args, opts);
                let channel = match opts.rooms.as_slice() {
                    [room] => format!("{}{room}#", core.channel),
                    _ => core.channel.clone(),
                };
                core.shared.publish(channel, msg);
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
        let request_id = uid6();
        let (tx, rx) = core.requests.start_acks(&request_id);
        let mut out = Vec::new();
        mp::write_map_len(&mut out, 5);
        mp::write_str(&mut out, "uid");
        mp::write_str(&mut out, core.uid());
        mp::write_str(&mut out, "requestId");
        mp::write_str(&mut out, &request_id);
        mp::write_str(&mut out, "type");
        mp::write_int(&mut out, BROADCAST);
        mp::write_str(&mut out, "packet");
        write_packet(&mut out, &core.name, event, args);
        mp::write_str(&mut out, "opts");
        write_broadcast_opts(&mut out, opts);
        core.shared.publish(core.request_channel.clone(), out);
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
        let mut body = core.body(REMOTE_FETCH);
        body.insert("opts".into(), opts_value(opts));
        let timeout = core.shared.config.requests_timeout;
        let shared = core.shared.clone();
        fetch_across(shared, local, servers, move |others| {
            core.collect(Collecting::Sockets, body, others, timeout)
        })
        .boxed()
    }

    fn add_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        self.local.add_sockets(opts, rooms);
        if !opts.flags.local {
            let mut body = self.core.body(REMOTE_JOIN);
            body.insert("opts".into(), opts_value(opts));
            body.insert("rooms".into(), rooms_value(rooms));
            self.core.publish_request(&Value::Map(body));
        }
    }

    fn del_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        self.local.del_sockets(opts, rooms);
        if !opts.flags.local {
            let mut body = self.core.body(REMOTE_LEAVE);
            body.insert("opts".into(), opts_value(opts));
            body.insert("rooms".into(), rooms_value(rooms));
            self.core.publish_request(&Value::Map(body));
        }
    }

    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        if !opts.flags.local {
            let mut body = self.core.body(REMOTE_DISCONNECT);
            body.insert("opts".into(), opts_value(opts));
            body.insert("close".into(), Value::Bool(close));
            self.core.publish_request(&Value::Map(body));
        }
        self.local.disconnect_sockets(opts, close);
    }

    fn server_side_emit(&self, args: Vec<Value>) -> Result<()> {
        let mut body = self.core.body(SERVER_SIDE_EMIT);
        body.insert("data".into(), Value::Array(args));
        self.core.publish_request(&Value::Map(body));
        Ok(())
    }

    fn server_side_emit_with_ack(
        &self,
        args: Vec<Value>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<Value>>> {
        let core = self.core.clone();
        let servers = core.server_count();
        let mut body = core.body(SERVER_SIDE_EMIT);
        body.insert("data".into(), Value::Array(args));
        ask_others(servers, move |others| {
            core.collect(Collecting::ServerSide, body, others, timeout)
        })
        .boxed()
    }

    fn server_count(&self) -> BoxFuture<'static, Result<usize>> {
        let servers = self.core.server_count();
        async move { Ok(servers.await?.max(1)) }.boxed()
    }

    fn all_rooms(&self) -> BoxFuture<'static, Result<Vec<Room>>> {
        let local = self.local.rooms();
        let core = self.core.clone();
        let servers = core.server_count();
        async move {
            let n = servers.await?;
            let mut seen: HashSet<Room> = local.into_iter().collect();
            if n > 1 {
                let timeout = core.shared.config.requests_timeout;
                let body = core.body(ALL_ROOMS);
                let items = core
                    .collect(Collecting::Rooms, body, n - 1, timeout)
                    .await?;
                seen.extend(items.iter().filter_map(room_of));
            }
            Ok(seen.into_iter().collect())
        }
        .boxed()
    }

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
