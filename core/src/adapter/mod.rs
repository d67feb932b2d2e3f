//! Room membership and broadcasting behind the [`Adapter`] trait, with the in-memory
//! [`LocalAdapter`].
//!
//! The trait follows socket.io's adapter: fire-and-forget operations (join, leave, broadcast,
//! remote join/leave/disconnect) are plain calls that must not block — a remote adapter (Redis,
//! wire-compatible with `@socket.io/redis-adapter`) publishes them through a channel — and the
//! operations that wait for other nodes (fetch sockets, broadcast with acks, server count) return
//! futures. [`BroadcastOptions`] is plain serialisable data so it can cross the wire.

mod memory;

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
    /// Sends an event to the other nodes' `serverSideEmit` listeners (a no-op on one node).
    fn server_side_emit(&self, args: Vec<Value>) -> Result<()>;
    /// How many nodes the cluster has.
    fn server_count(&self) -> BoxFuture<'static, usize>;
    /// Keeps a disconnected socket's state for recovery.
    fn persist_session(&self, session: SessionToPersist);
    /// Finds a persisted session and the packets missed since `offset`.
    fn restore_session(&self, pid: &str, offset: &str) -> Option<RestoredSession>;
}

/// Builds the adapter of a namespace.
pub type AdapterFactory =
    Arc<dyn Fn(crate::server::NamespaceRef) -> Arc<dyn Adapter> + Send + Sync>;
