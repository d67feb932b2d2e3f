//! Room membership and broadcasting behind the [`Adapter`] trait, with the in-memory
//! [`LocalAdapter`] (the default) and, behind the cargo feature `redis`, the Redis adapter of
//! [`redis`] that joins a cluster of Node socket.io servers.
//!
//! # How an adapter plugs into the core
//!
//! Every namespace owns one `Arc<dyn Adapter>`, built by [`crate::server::ServerConfig::adapter`]
//! (a factory called with the namespace) or, when none is set, a [`LocalAdapter`]. The server
//! calls the adapter for every room change, broadcast and cluster-wide query; the adapter calls
//! back into the namespace ([`crate::server::NamespaceRef`]) to reach its local sockets.
//!
//! The trait follows socket.io's adapter and sorts its methods in two kinds:
//!
//! * **Fire-and-forget operations** — [`Adapter::add_all`], [`Adapter::del`],
//!   [`Adapter::broadcast`], [`Adapter::add_sockets`], [`Adapter::del_sockets`],
//!   [`Adapter::disconnect_sockets`], [`Adapter::server_side_emit`] — are plain synchronous calls
//!   that must never block nor wait for the network. They act on the local sockets at once; a
//!   remote adapter also hands a message to a bounded queue that a task of its own publishes
//!   (so a slow or absent Redis costs no latency and bounded memory: when the queue is full the
//!   message is dropped and counted, never waited for).
//! * **Operations that wait for other nodes** — [`Adapter::broadcast_with_ack`],
//!   [`Adapter::fetch_sockets`], [`Adapter::server_side_emit_with_ack`],
//!   [`Adapter::server_count`], [`Adapter::all_rooms`] — return `'static` futures and always
//!   end: with the answers, or with [`crate::Error::Timeout`] once the request's timeout (the
//!   broadcast's `timeout` flag, else the adapter's request timeout) has passed, or with
//!   [`crate::Error::Adapter`] when the cluster cannot be reached at all. They never hang.
//!
//! **Redis outages never stop local service.** A remote adapter wraps a [`LocalAdapter`] and
//! delivers to its own sockets first, whatever happens to Redis; only the copies for other
//! nodes are lost while Redis is away (Redis pub/sub keeps nothing, as with Node's adapter).
//! Its connections reconnect with backoff and resubscribe on their own.
//!
//! **The memory adapter stays as fast as it was.** Nothing in the broadcast path knows about
//! clusters: [`crate::server::BroadcastOperator::emit`] makes one virtual call to
//! [`Adapter::broadcast`], which for the [`LocalAdapter`] encodes the packet once and queues it to
//! each target. The `local` flag is honoured by the remote adapter alone.
//!
//! **Messages from other nodes** are decoded by the remote adapter's task, checked (a message it
//! cannot decode or use is logged and skipped, never a panic) and applied through the wrapped
//! [`LocalAdapter`]: [`LocalAdapter::broadcast`], [`LocalAdapter::broadcast_with_ack_each`] (acks
//! streamed back one by one, as Node's adapters do), [`LocalAdapter::fetch_sockets`] and so on.
//! `serverSideEmit` messages reach the namespace's listeners
//! ([`crate::server::Namespace::on_server_side_emit`]) through
//! [`crate::server::Namespace::dispatch_server_side_emit`].
//!
//! [`BroadcastOptions`] and [`SocketInfo`] are plain serialisable data so they can cross the wire.

#[cfg(feature = "msgpack")]
pub(crate) mod classic_wire;
mod memory;
#[cfg(feature = "msgpack")]
#[doc(hidden)]
pub mod msgpack;
#[cfg(feature = "redis")]
pub mod redis;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

pub use memory::LocalAdapter;

use crate::error::Result;
use crate::parser::Packet;
use crate::value::Value;

/// A socket id.
pub type Sid = Arc<str>;
/// A room name.
pub type Room = Arc<str>;

/// Flags of a broadcast.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BroadcastFlags {
    /// Only this node (a remote adapter does not forward it).
    #[serde(default)]
    pub local: bool,
    /// The packet may be lost (not stored for connection state recovery).
    #[serde(default)]
    pub volatile: bool,
    /// Timeout for collecting acks, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
}

/// Who a broadcast reaches: sockets in any of `rooms` (all when empty) and in none of `except`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BroadcastOptions {
    /// Target rooms; empty means every socket of the namespace.
    pub rooms: Vec<Room>,
    /// Excluded rooms (a socket id is a room too).
    pub except: Vec<Room>,
    /// Flags.
    pub flags: BroadcastFlags,
}

impl BroadcastOptions {
    /// The timeout flag as a duration.
    pub fn timeout(&self) -> Option<Duration> {
        self.flags.timeout.map(Duration::from_millis)
    }
}

/// A socket as seen by `fetch_sockets` (possibly on another node).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SocketInfo {
    /// Socket id.
    pub id: Sid,
    /// The handshake, in socket.io's shape: `headers`, `time`, `address`, `xdomain`, `secure`,
    /// `issued`, `url`, `query`, `auth` (see [`crate::server::Socket::handshake_value`]).
    #[serde(default)]
    pub handshake: Value,
    /// Rooms it is in.
    pub rooms: Vec<Room>,
    /// Its `data`.
    pub data: Value,
}

/// A disconnected socket's state kept for connection state recovery.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionToPersist {
    /// The socket id to restore.
    pub sid: Sid,
    /// The private session id the client presents.
    pub pid: Sid,
    /// Rooms to rejoin.
    pub rooms: Vec<Room>,
    /// The socket's data.
    pub data: Value,
}

/// A restored session: the socket's state and the packets it missed.
#[derive(Clone, Debug, PartialEq)]
pub struct RestoredSession {
    /// The persisted state.
    pub session: SessionToPersist,
    /// Missed packets, oldest first.
    pub missed: Vec<Packet>,
}

/// Acks gathered by a broadcast with acknowledgement.
pub type AckStream = BoxFuture<'static, Result<Vec<Vec<Value>>>>;

/// Delivers packets to the sockets of one namespace and keeps its rooms.
pub trait Adapter: Send + Sync + 'static {
    /// Puts socket `id` in `rooms`.
    fn add_all(&self, id: &Sid, rooms: &[Room]);
    /// Takes socket `id` out of `room`.
    fn del(&self, id: &Sid, room: &str);
    /// Takes socket `id` out of every room.
    fn del_all(&self, id: &Sid);
    /// The rooms socket `id` is in.
    fn socket_rooms(&self, id: &str) -> Vec<Room>;
    /// Ids of the local sockets a broadcast with `opts` reaches.
    fn sockets(&self, opts: &BroadcastOptions) -> Vec<Sid>;
    /// Every room on this node.
    fn rooms(&self) -> Vec<Room>;
    /// Sends `packet` to every socket `opts` selects (encoded once).
    fn broadcast(&self, packet: Packet, opts: &BroadcastOptions) -> Result<()>;
    /// Sends `packet` asking every socket for an ack; resolves with the acks received (an
    /// error if the timeout elapses first).
    fn broadcast_with_ack(&self, packet: Packet, opts: &BroadcastOptions) -> AckStream;
    /// Sockets selected by `opts`, with their rooms and data, on every node.
    fn fetch_sockets(&self, opts: &BroadcastOptions)
        -> BoxFuture<'static, Result<Vec<SocketInfo>>>;
    /// Makes the selected sockets join `rooms`.
    fn add_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]);
    /// Makes the selected sockets leave `rooms`.
    fn del_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]);
    /// Disconnects the selected sockets (closing their connection when `close`).
    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool);
    /// Sends `[event, ...args]` to the other nodes' `serverSideEmit` listeners (a no-op on one
    /// node).
    fn server_side_emit(&self, args: Vec<Value>) -> Result<()>;
    /// Like [`Adapter::server_side_emit`], asking every other node for an answer: resolves with
    /// one value per node (the first argument its listener acknowledged with), or
    /// [`crate::Error::Timeout`] when they have not all answered within `timeout`. On one node,
    /// at once with no answers.
    fn server_side_emit_with_ack(
        &self,
        args: Vec<Value>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<Value>>> {
        let _ = (args, timeout);
        Box::pin(async { Ok(Vec::new()) })
    }
    /// How many nodes the cluster has (this one included).
    fn server_count(&self) -> BoxFuture<'static, Result<usize>>;
    /// Every room on every node (socket ids included). Defaults to this node's rooms.
    fn all_rooms(&self) -> BoxFuture<'static, Result<Vec<Room>>> {
        let rooms = self.rooms();
        Box::pin(async move { Ok(rooms) })
    }
    /// The server is closing: a remote adapter leaves the cluster (it unsubscribes, so that the
    /// other nodes stop counting and waiting for this one). Nothing by default.
    fn close(&self) {}
    /// Keeps a disconnected socket's state for recovery.
    fn persist_session(&self, session: SessionToPersist);
    /// Finds a persisted session and the packets missed since `offset`.
    fn restore_session(&self, pid: &str, offset: &str) -> Option<RestoredSession>;
}

/// Builds the adapter of a namespace.
pub type AdapterFactory =
    Arc<dyn Fn(crate::server::NamespaceRef) -> Arc<dyn Adapter> + Send + Sync>;
