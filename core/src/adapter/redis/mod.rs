//! Scale-out over Redis, wire-compatible with Node's `@socket.io/redis-adapter` 8.3: its classic
//! PUBLISH/SUBSCRIBE format (`createAdapter`) or its sharded format (`createShardedAdapter`,
//! [`RedisConfig::sharded`]); polysio nodes and npm socket.io 4.8 nodes share one cluster
//! (feature `redis`).
//!
//! ```no_run
//! use polysio::adapter::redis::{RedisAdapter, RedisConfig};
//! use polysio::server::{Server, ServerConfig};
//! # async fn run() -> polysio::Result<()> {
//! let redis = RedisAdapter::new(RedisConfig::new("redis://127.0.0.1:6379/"))?;
//! let io = Server::new(ServerConfig {
//!     adapter: Some(redis.factory()),
//!     ..Default::default()
//! });
//! // Optional: wait until this node is subscribed (it serves its own clients meanwhile).
//! redis.ready(std::time::Duration::from_secs(5)).await?;
//! io.emit("hello", vec!["every node".into()])?;
//! let nodes = io.of("/").server_count().await?;
//! # let _ = nodes; Ok(()) }
//! ```
//!
//! # Design
//!
//! One [`RedisAdapter`] per process holds two Redis connections, shared by every namespace, as
//! Node's `pubClient` / `subClient`:
//!
//! * a **publisher**: redis-rs's multiplexed `ConnectionManager` (reconnects by itself), fed by
//!   a bounded queue ([`RedisConfig::queue_capacity`]) that one task drains in pipelined batches.
//!   The adapter's fire-and-forget operations only push to that queue: they never wait for Redis,
//!   and when Redis is slow or away the queue fills up and further messages are dropped and
//!   counted ([`RedisStats::dropped`]), so memory stays bounded. The same connection runs
//!   `PUBSUB NUMSUB` for the server count, each command under [`RedisConfig::command_timeout`].
//! * a **subscriber**: a pub/sub connection of its own, driven by one task that reconnects with
//!   backoff (100 ms doubling to 5 s), subscribes again to every channel of every namespace, and
//!   pings it every 2 s to notice a dead connection. Each namespace subscribes to
//!   `P-request#N#`, `P-response#N#`, `P-response#N#<uid>#` and the pattern `P#N#*`
//!   (P = [`RedisConfig::key`], N = the namespace), so `NUMSUB` counts this process once.
//!   [`crate::server::Server::close`] unsubscribes its namespaces at once (as Node's
//!   `adapter.close()`), so the other nodes stop counting and waiting for a closed server.
//!
//! Each namespace gets a [`NamespaceAdapter`] wrapping a [`LocalAdapter`]: local sockets are
//! always served by it first, whatever the state of Redis. Messages from other nodes are
//! decoded on the subscriber task; one that cannot be decoded or lacks what it needs is logged
//! (`tracing` warn), counted ([`RedisStats::malformed`]) and skipped.
//!
//! # The wire format (classic `@socket.io/redis-adapter` 8.3)
//!
//! * Broadcasts: msgpack `[uid, {type: 2, data: [event, ...args], nsp}, {rooms, except, flags}]`
//!   on `P#N#`, or `P#N#<room>#` when there is exactly one room. Binary stays inline (msgpack
//!   bin). Messages from the classic emitter (uid `"emitter"`) are accepted as well.
//! * Requests on `P-request#N#` (JSON, or msgpack when they carry binary; both are read, told
//!   apart by a leading `{`): 0 SOCKETS, 1 ALL_ROOMS, 2 REMOTE_JOIN, 3 REMOTE_LEAVE,
//!   4 REMOTE_DISCONNECT (also the legacy `sid` forms), 5 REMOTE_FETCH, 6 SERVER_SIDE_EMIT,
//!   7 BROADCAST with acks (msgpack). Answers go to the requester's `P-response#N#<uid>#`
//!   (the common `P-response#N#` for requests without a uid, and for serverSideEmit acks, as
//!   Node does); type 7 is answered by one BROADCAST_CLIENT_COUNT (8), then a BROADCAST_ACK (9,
//!   msgpack) per client ack.
//! * Counting as Node: `serverCount` is `PUBSUB NUMSUB P-request#N#` (this node included);
//!   fetchSockets / allRooms wait for NUMSUB − 1 answers, serverSideEmit with ack for NUMSUB − 1
//!   answers, a broadcast with acks for one client count per node and that many acks.
//!
//! Differences from Node's adapter, all invisible to Node peers: socketsJoin / socketsLeave /
//! disconnectSockets act on local sockets at once (Node waits for its own message to come back
//! over Redis, so it does nothing while Redis is down) and ignore their own echo; a node
//! answering a broadcast with acks forgets the clients' ack requests after the broadcast's
//! timeout (Node keeps them forever, socket.io #4984); requests never hang (every wait has a
//! timeout, [`RedisConfig::requests_timeout`] when the caller gave none).
//!
//! # The sharded format (`createShardedAdapter`, Redis 7.0 or later)
//!
//! [`RedisConfig::sharded`] (or [`RedisConfig::format`] = [`RedisFormat::Sharded`]) speaks
//! socket.io-adapter's `ClusterAdapter` protocol over sharded pub/sub, as the npm sharded
//! adapter; each namespace gets a [`ShardedNamespaceAdapter`]:
//!
//! * Envelopes `{uid, nsp, type, data}`, JSON, or msgpack when they carry binary (read by the
//!   leading `{`), SPUBLISHed on `P#N#` (every request and broadcast), answers on the
//!   requester's `P#N#<uid>#`, and in the dynamic modes ([`RedisConfig::subscription_mode`])
//!   broadcasts without ack to exactly one room on `P#N#<room>#`: this node SSUBSCRIBEs the
//!   channel of each room while that room has sockets here (public rooms only in
//!   [`SubscriptionMode::Dynamic`], every room in [`SubscriptionMode::DynamicPrivate`]).
//! * Types 3 BROADCAST (with a requestId when acks are wanted, answered by 11
//!   BROADCAST_CLIENT_COUNT then 12 BROADCAST_ACK per ack), 4 SOCKETS_JOIN, 5 SOCKETS_LEAVE,
//!   6 DISCONNECT_SOCKETS, 7 FETCH_SOCKETS (answered by 8), 9 SERVER_SIDE_EMIT (answered by 10
//!   when it has a requestId). Uids are 16 hex digits. Messages from this node's own uid or for
//!   another namespace are ignored.
//! * `serverCount` is `PUBSUB SHARDNUMSUB P#N#`; requests wait for that many answers less one.
//!   The format has no allRooms across nodes ([`Adapter::all_rooms`] gives this node's).
//! * The subscriber is a RESP3 connection (redis-rs's pub/sub connection has no SSUBSCRIBE);
//!   it reconnects and resubscribes (room channels included) as the classic one does.
//!
//! # The emitter
//!
//! [`Emitter`] sends to a cluster's sockets from a process that is not a node (a worker, a
//! cron job), as Node's `@socket.io/redis-emitter` 5.1.0 ([`EmitterFormat::Classic`]) or
//! `@socket.io/redis-streams-emitter` ([`EmitterFormat::Streams`]): one publishing connection,
//! a bounded queue, [`Emitter::flush`] to wait for the writes.
//!
//! # Not done yet
//!
//! The streams format, `rediss://` (TLS) and Redis
//! Cluster topologies (NUMSUB is asked of the one server of the URL). Connection state
//! recovery does not cross nodes with this format (nor does it with Node's).

mod classic;
mod emitter;
mod requests;
mod sharded;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{mpsc, watch, Notify};

pub use classic::NamespaceAdapter;
pub use emitter::{Emitter, EmitterConfig, EmitterFormat, EmitterOperator};
pub use sharded::ShardedNamespaceAdapter;

use super::{Adapter, AdapterFactory, LocalAdapter};
use crate::error::{Error, Result};

/// Which of the npm packages' wire formats a cluster speaks; every node of a cluster must use
/// the same (they do not hear each other otherwise).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedisFormat {
    /// `@socket.io/redis-adapter`'s `createAdapter`: PUBLISH/SUBSCRIBE, any Redis.
    #[default]
    Classic,
    /// `@socket.io/redis-adapter`'s `createShardedAdapter`: sharded pub/sub (SPUBLISH /
    /// SSUBSCRIBE), Redis 7.0 or later; see [`RedisConfig::subscription_mode`].
    Sharded,
}

/// Which channels the sharded format uses, Node's `subscriptionMode` option: every node of a
/// cluster must use the same.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SubscriptionMode {
    /// Two channels per namespace, `P#N#` and `P#N#<uid>#`.
    Static,
    /// Plus one channel `P#N#<room>#` per public room (not a socket id) that has sockets on
    /// this node; a broadcast to exactly one such room goes only there (Node's default).
    #[default]
    Dynamic,
    /// Like `Dynamic`, for private rooms (socket ids) as well.
    DynamicPrivate,
}

/// Options of a [`RedisAdapter`]; defaults are Node's.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// The Redis server: `redis://[user:password@]host[:port][/db]` or
    /// `redis+unix:///path/to/socket[?db=N]`.
    pub url: String,
    /// The channel prefix, Node's `key` option (`"socket.io"`).
    pub key: String,
    /// How long a request to the other nodes may wait for their answers (5000 ms), when the
    /// operation has no timeout of its own.
    pub requests_timeout: Duration,
    /// Longest wait for one Redis command, connecting included (2000 ms).
    pub command_timeout: Duration,
    /// Messages waiting to be published, at most (10000); past that they are dropped and
    /// counted in [`RedisStats::dropped`].
    pub queue_capacity: usize,
    /// The wire format ([`RedisFormat::Classic`]; [`RedisConfig::sharded`] sets
    /// [`RedisFormat::Sharded`]).
    pub format: RedisFormat,
    /// The sharded format's channels, Node's `subscriptionMode` ([`SubscriptionMode::Dynamic`]);
    /// unused by the classic format.
    pub subscription_mode: SubscriptionMode,
}

impl RedisConfig {
    /// The defaults, with `url`.
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            key: "socket.io".into(),
            requests_timeout: Duration::from_millis(5000),
            command_timeout: Duration::from_millis(2000),
            queue_capacity: 10_000,
            format: RedisFormat::Classic,
            subscription_mode: SubscriptionMode::Dynamic,
        }
    }

    /// The defaults with the sharded format, as Node's
    /// `createShardedAdapter(pubClient, subClient)` (Redis 7.0 or later): `key` is its
    /// `channelPrefix`.
    pub fn sharded(url: impl Into<String>) -> Self {
        RedisConfig {
            format: RedisFormat::Sharded,
            ..RedisConfig::new(url)
        }
    }
}

/// Counters of a [`RedisAdapter`], for monitoring and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RedisStats {
    /// Messages published.
    pub published: u64,
    /// Messages received from the other nodes and handled.
    pub received: u64,
    /// Messages received that could not be decoded or used (logged and skipped).
    pub malformed: u64,
    /// Messages not published: the queue was full, or Redis failed to take them.
    pub dropped: u64,
    /// Times the subscriber connection was (re)established.
    pub connections: u64,
}

#[derive(Default)]
struct Counters {
    published: AtomicU64,
    received: AtomicU64,
    malformed: AtomicU64,
    dropped: AtomicU64,
    connections: AtomicU64,
}

/// What a subscribed channel carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// The pattern `P#N#*` (psubscribed): broadcasts.
    Broadcast,
    /// `P-request#N#`.
    Request,
    /// `P-response#N#` and `P-response#N#<uid>#`.
    Response,
    /// A channel of the sharded format (SSUBSCRIBEd): `P#N#`, `P#N#<uid>#`, `P#N#<room>#`.
    Shard,
}

/// Channel (or pattern) → what it carries and the namespace adapter it feeds.
type RouteMap = HashMap<String, (Kind, Weak<dyn Route>)>;

/// A namespace adapter, as the subscriber task sees it: what a message on one of its channels
/// goes to.
trait Route: Send + Sync + 'static {
    /// A message received on `channel`, subscribed as `kind`.
    fn deliver(&self, kind: Kind, channel: &str, payload: &[u8]);
}

struct Outgoing {
    channel: String,
    payload: Vec<u8>,
}

pub(crate) struct Shared {
    config: RedisConfig,
    uid: String,
    conn: redis::aio::ConnectionManager,
    queue: mpsc::Sender<Outgoing>,
    /// Channel (or pattern, for [`Kind::Broadcast`]) → the namespace adapter it feeds.
    routes: RwLock<RouteMap>,
    /// Bumped each time a route is added; the subscriber task subscribes up to it.
    wanted: AtomicU64,
    /// The `wanted` value the subscriber has subscribed everything up to (0: not connected).
    synced: watch::Sender<u64>,
    changed: Arc<Notify>,
    counters: Counters,
    warned_full: AtomicBool,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// A process's connections to Redis, shared by the [`NamespaceAdapter`] of every namespace its
/// servers have; [`RedisAdapter::factory`] goes in [`crate::server::ServerConfig::adapter`].
/// Cheap to clone. The connections close when the last clone, server and namespace using it are
/// gone.
#[derive(Clone)]
pub struct RedisAdapter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RedisAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAdapter")
            .field("uid", &self.shared.uid)
            .field("key", &self.shared.config.key)
            .finish()
    }
}

/// 16 lowercase hex digits (8 random bytes), as the uids of Node's `ClusterAdapter`.
pub(crate) fn hex16() -> String {
    let bytes: [u8; 8] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Six random alphanumeric characters, as Node's `uid2(6)`.
pub(crate) fn uid6() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..6)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The publishing connection of an adapter or an emitter: redis-rs's multiplexed
/// `ConnectionManager`, connecting on first use and again after Redis went away, each command
/// bounded by `command_timeout`.
fn publisher_connection(
    client: redis::Client,
    command_timeout: Duration,
) -> Result<redis::aio::ConnectionManager> {
    let manager_config = redis::aio::ConnectionManagerConfig::new()
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500))
        .set_connection_timeout(Some(command_timeout))
        .set_response_timeout(Some(command_timeout));
    redis::aio::ConnectionManager::new_lazy_with_config(client, manager_config).map_err(redis_error)
}

fn redis_error(e: impl std::fmt::Display) -> Error {
    Error::Adapter(format!("redis: {e}"))
}

impl RedisAdapter {
    /// Starts the adapter's tasks on the current tokio runtime; it connects in the background
    /// (and keeps trying while Redis is away). Fails only on a URL it cannot use.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn new(config: RedisConfig) -> Result<RedisAdapter> {
        let client = redis::Client::open(config.url.as_str()).map_err(redis_error)?;
        let conn = publisher_connection(client.clone(), config.command_timeout)?;
        let (queue, rx) = mpsc::channel(config.queue_capacity.max(1));
        let (uid, publish) = match config.format {
            RedisFormat::Classic => (uid6(), "PUBLISH"),
            RedisFormat::Sharded => (hex16(), "SPUBLISH"),
        };
        // Sharded pub/sub needs RESP3 (push messages on a regular connection): redis-rs's
        // RESP2 pub/sub connection has no SSUBSCRIBE.
        let sub_client = match config.format {
            RedisFormat::Classic => client.clone(),
            RedisFormat::Sharded => {
                let info = client.get_connection_info().clone();
                let settings = info
                    .redis_settings()
                    .clone()
                    .set_protocol(redis::ProtocolVersion::RESP3);
                redis::Client::open(info.set_redis_settings(settings)).map_err(redis_error)?
            }
        };
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let shared = Arc::new(Shared {
            config,
            uid,
            conn: conn.clone(),
            queue,
            routes: RwLock::new(HashMap::new()),
            wanted: AtomicU64::new(1),
            synced: watch::channel(0).0,
            changed: Arc::new(Notify::new()),
            counters: Counters::default(),
            warned_full: AtomicBool::new(false),
            _stop: stop,
        });
        let timeout = shared.config.command_timeout;
        tokio::spawn(publisher(
            Arc::downgrade(&shared),
            conn,
            rx,
            timeout,
            publish,
        ));
        tokio::spawn(subscriber(Arc::downgrade(&shared), sub_client, stopped));
        Ok(RedisAdapter { shared })
    }

    /// The adapter factory for [`crate::server::ServerConfig::adapter`]: each namespace gets a
    /// [`NamespaceAdapter`] (or a [`ShardedNamespaceAdapter`], by [`RedisConfig::format`]) on
    /// these connections.
    pub fn factory(&self) -> AdapterFactory {
        let shared = self.shared.clone();
        Arc::new(move |nsp| -> Arc<dyn Adapter> {
            let local = LocalAdapter::new(nsp.clone());
            let name = nsp.upgrade().map(|n| n.name().to_owned());
            match name {
                // The parent of dynamic namespaces has no sockets of its own: local only.
                Some(name) if !name.is_empty() => match shared.config.format {
                    RedisFormat::Classic => NamespaceAdapter::start(&shared, nsp, name, local),
                    RedisFormat::Sharded => {
                        ShardedNamespaceAdapter::start(&shared, nsp, name, local)
                    }
                },
                _ => Arc::new(local),
            }
        })
    }

    /// Waits until the subscriber is connected and subscribed to every namespace created so
    /// far, for at most `timeout` ([`Error::Timeout`] then). Not needed to serve: it tells when
    /// the other nodes can reach this one.
    pub async fn ready(&self, timeout: Duration) -> Result<()> {
        let mut rx = self.shared.synced.subscribe();
        let wanted = &self.shared.wanted;
        let wait = rx.wait_for(|v| *v >= wanted.load(Ordering::Acquire));
        let r = tokio::time::timeout(timeout, wait)
            .await
            .map(|r| r.map(|_| ()));
        match r {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => Err(Error::Timeout(timeout)),
        }
    }

    /// This process's id in the cluster (in response channels and in every message it sends).
    pub fn uid(&self) -> &str {
        &self.shared.uid
    }

    /// The counters.
    pub fn stats(&self) -> RedisStats {
        let c = &self.shared.counters;
        RedisStats {
            published: c.published.load(Ordering::Relaxed),
            received: c.received.load(Ordering::Relaxed),
            malformed: c.malformed.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            connections: c.connections.load(Ordering::Relaxed),
        }
    }
}

impl Shared {
    /// Queues a message; never waits. Dropped (and counted) when the queue is full.
    fn publish(&self, channel: String, payload: Vec<u8>) {
        match self.queue.try_send(Outgoing { channel, payload }) {
            Ok(()) => {
                self.warned_full.store(false, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                if !self.warned_full.swap(true, Ordering::Relaxed) {
                    tracing::warn!("redis adapter: publish queue full (Redis slow or away); dropping messages for other nodes");
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    fn add_routes<R: Route>(&self, routes: Vec<(String, Kind)>, adapter: &Arc<R>) {
        let target: Arc<dyn Route> = adapter.clone();
        if let Ok(mut r) = self.routes.write() {
            for (channel, kind) in routes {
                r.insert(channel, (kind, Arc::downgrade(&target)));
            }
        }
        self.routes_changed();
    }

    /// Forgets the routes of `adapter` (its namespace closed); the subscriber unsubscribes.
    fn remove_routes<R: Route>(&self, adapter: &R) {
        let adapter = adapter as *const R as *const ();
        if let Ok(mut r) = self.routes.write() {
            r.retain(|_, (_, a)| !std::ptr::eq(a.as_ptr() as *const (), adapter));
        }
        self.routes_changed();
    }

    /// Forgets the route of one channel (a room of the sharded format's dynamic modes).
    fn remove_route(&self, channel: &str) {
        if let Ok(mut r) = self.routes.write() {
            r.remove(channel);
        }
        self.routes_changed();
    }

    fn routes_changed(&self) {
        self.wanted.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_one();
    }

    fn malformed(&self, what: &str, why: impl std::fmt::Display) {
        self.counters.malformed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("redis adapter: skipping a malformed {what}: {why}");
    }

    /// `PUBSUB NUMSUB channel` (`SHARDNUMSUB` for the sharded format), under the command
    /// timeout.
    fn numsub(&self, channel: String) -> impl std::future::Future<Output = Result<usize>> {
        let mut conn = self.conn.clone();
        let timeout = self.config.command_timeout;
        let sub = match self.config.format {
            RedisFormat::Classic => "NUMSUB",
            RedisFormat::Sharded => "SHARDNUMSUB",
        };
        async move {
            let cmd = redis::cmd("PUBSUB").arg(sub).arg(&channel).to_owned();
            let reply: redis::Value =
                match tokio::time::timeout(timeout, cmd.query_async(&mut conn)).await {
                    Ok(r) => r.map_err(redis_error)?,
                    Err(_) => return Err(Error::Timeout(timeout)),
                };
            match reply {
                redis::Value::Array(items) if items.len() == 2 => match &items[1] {
                    redis::Value::Int(n) => Ok((*n).max(0) as usize),
                    other => Err(redis_error(format!("unexpected NUMSUB count {other:?}"))),
                },
                other => Err(redis_error(format!("unexpected NUMSUB reply {other:?}"))),
            }
        }
    }

    /// Hands a received message to the namespace adapter its channel belongs to.
    fn dispatch(&self, msg: &redis::Msg) {
        let (key, channel) = if msg.from_pattern() {
            match msg.get_pattern::<String>() {
                Ok(p) => (p, msg.get_channel_name()),
                Err(_) => return,
            }
        } else {
            let c = msg.get_channel_name();
            (c.to_owned(), c)
        };
        let route = self
            .routes
            .read()
            .ok()
            .and_then(|r| r.get(&key).map(|(k, a)| (*k, a.upgrade())));
        let Some((kind, Some(adapter))) = route else {
            return;
        };
        self.counters.received.fetch_add(1, Ordering::Relaxed);
        adapter.deliver(kind, channel, msg.get_payload_bytes());
    }
}

/// Drains the queue into Redis, in pipelined batches.
async fn publisher(
    shared: Weak<Shared>,
    mut conn: redis::aio::ConnectionManager,
    mut rx: mpsc::Receiver<Outgoing>,
    timeout: Duration,
    command: &'static str,
) {
    let mut batch = Vec::with_capacity(256);
    let mut failing = false;
    while rx.recv_many(&mut batch, 256).await > 0 {
        let mut pipe = redis::pipe();
        for m in &batch {
            pipe.cmd(command).arg(&m.channel).arg(&m.payload).ignore();
        }
        let r = tokio::time::timeout(timeout, pipe.query_async::<()>(&mut conn)).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let n = batch.len() as u64;
        match r {
            Ok(Ok(())) => {
                shared.counters.published.fetch_add(n, Ordering::Relaxed);
                if failing {
                    tracing::info!("redis adapter: publishing again");
                    failing = false;
                }
            }
            Ok(Err(e)) => {
                shared.counters.dropped.fetch_add(n, Ordering::Relaxed);
                if !failing {
                    tracing::warn!("redis adapter: cannot publish ({e}); messages for other nodes are dropped until Redis is back");
                    failing = true;
                }
            }
            Err(_) => {
                shared.counters.dropped.fetch_add(n, Ordering::Relaxed);
                if !failing {
                    tracing::warn!("redis adapter: publishing timed out; messages for other nodes are dropped until Redis is back");
                    failing = true;
                }
            }
        }
        batch.clear();
    }
}

/// Channels (or patterns) and what they carry.
type Routes = Vec<(String, Kind)>;

type MsgStream = std::pin::Pin<Box<dyn futures_util::Stream<Item = redis::Msg> + Send>>;

/// The subscriber's connection: redis-rs's RESP2 pub/sub connection (classic format), or a
/// RESP3 connection whose push messages are what its sharded channels receive.
enum SubSink {
    Resp2(redis::aio::PubSubSink),
    Resp3(redis::aio::MultiplexedConnection),
}

impl SubSink {
    async fn connect(
        client: &redis::Client,
        format: RedisFormat,
    ) -> redis::RedisResult<(SubSink, MsgStream)> {
        if format == RedisFormat::Classic {
            let (sink, stream) = client.get_async_pubsub().await?.split();
            return Ok((SubSink::Resp2(sink), Box::pin(stream)));
        }
        let (tx, rx) = mpsc::unbounded_channel::<redis::PushInfo>();
        let config = redis::AsyncConnectionConfig::new().set_push_sender(tx);
        let conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            loop {
                let push = rx.recv().await?;
                if push.kind == redis::PushKind::Disconnection {
                    return None;
                }
                // Subscription confirmations are pushes too: not messages.
                if let Some(m) = redis::Msg::from_push_info(push) {
                    return Some((m, rx));
                }
            }
        });
        Ok((SubSink::Resp3(conn), Box::pin(stream)))
    }

    /// Subscribes to (`on`) or unsubscribes from `channels`, all of one kind.
    async fn change(
        &mut self,
        kind: Kind,
        on: bool,
        channels: &[String],
    ) -> redis::RedisResult<()> {
        match self {
            SubSink::Resp2(sink) => match (kind == Kind::Broadcast, on) {
                (true, true) => sink.psubscribe(channels).await,
                (true, false) => sink.punsubscribe(channels).await,
                (false, true) => sink.subscribe(channels).await,
                (false, false) => sink.unsubscribe(channels).await,
            },
            SubSink::Resp3(conn) => {
                if on {
                    // One channel a command, so that each command has one confirmation.
                    for c in channels {
                        redis::cmd("SSUBSCRIBE")
                            .arg(c)
                            .query_async::<redis::Value>(conn)
                            .await?;
                    }
                    return Ok(());
                }
                // redis-rs 1.8 drops the confirmations of a raw SUNSUBSCRIBE instead of handing
                // them to the command (it takes them for a cluster's unasked `sunsubscribe`,
                // redis-rs #2533): sent with a PING, and only the PING's answer awaited (Redis
                // answers in order, so it has unsubscribed by then).
                let mut pipe = redis::pipe();
                pipe.cmd("SUNSUBSCRIBE").arg(channels).cmd("PING");
                conn.send_packed_commands(&pipe, 0, 1).await.map(drop)
            }
        }
    }

    async fn ping(&mut self) -> redis::RedisResult<redis::Value> {
        match self {
            SubSink::Resp2(sink) => sink.ping().await,
            SubSink::Resp3(conn) => redis::cmd("PING").query_async(conn).await,
        }
    }
}

/// How a kind of route is subscribed: patterns, channels, sharded channels.
fn subscription_class(kind: Kind) -> u8 {
    match kind {
        Kind::Broadcast => 0,
        Kind::Request | Kind::Response => 1,
        Kind::Shard => 2,
    }
}

/// Subscribes to what `shared.routes` asks for that `done` lacks, and unsubscribes from what
/// `done` has that the routes no longer want (closed namespaces: NUMSUB must stop counting this
/// process for them); false if the connection failed.
async fn sync_subscriptions(
    shared: &Weak<Shared>,
    sink: &mut SubSink,
    done: &mut HashMap<String, Kind>,
) -> bool {
    let Some(sh) = shared.upgrade() else {
        return false;
    };
    let wanted = sh.wanted.load(Ordering::Acquire);
    let (todo, gone): (Routes, Routes) = sh
        .routes
        .read()
        .map(|r| {
            let todo = r
                .iter()
                .filter(|(c, _)| !done.contains_key(*c))
                .map(|(c, (k, _))| (c.clone(), *k))
                .collect();
            let gone = done
                .iter()
                .filter(|(c, _)| !r.contains_key(*c))
                .map(|(c, k)| (c.clone(), *k))
                .collect();
            (todo, gone)
        })
        .unwrap_or_default();
    let timeout = sh.config.command_timeout;
    drop(sh);
    for (on, routes) in [(true, todo), (false, gone)] {
        for class in 0..3 {
            let (channels, kinds): (Vec<String>, Vec<Kind>) = routes
                .iter()
                .filter(|(_, k)| subscription_class(*k) == class)
                .cloned()
                .unzip();
            let Some(&kind) = kinds.first() else {
                continue;
            };
            match tokio::time::timeout(timeout, sink.change(kind, on, &channels)).await {
                Ok(Ok(())) => {
                    for (c, k) in channels.into_iter().zip(kinds) {
                        if on {
                            done.insert(c, k);
                        } else {
                            done.remove(&c);
                        }
                    }
                }
                _ => return false,
            }
        }
    }
    if let Some(sh) = shared.upgrade() {
        sh.synced.send_modify(|v| *v = (*v).max(wanted));
    }
    true
}

/// Keeps the pub/sub connection up: connect, subscribe to every route, read messages, ping;
/// on any failure reconnect with backoff.
async fn subscriber(
    shared: Weak<Shared>,
    client: redis::Client,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let mut backoff = Duration::from_millis(100);
    let mut was_connected = false;
    let mut warned = false;
    loop {
        let Some(sh) = shared.upgrade() else {
            return;
        };
        let timeout = sh.config.command_timeout;
        let format = sh.config.format;
        let changed = sh.changed.clone();
        drop(sh);
        let connect = tokio::time::timeout(timeout, SubSink::connect(&client, format));
        let conn = tokio::select! {
            _ = &mut stop => return,
            c = connect => c,
        };
        match conn {
            Ok(Ok((mut sink, mut stream))) => {
                let mut done = HashMap::new();
                if sync_subscriptions(&shared, &mut sink, &mut done).await {
                    backoff = Duration::from_millis(100);
                    warned = false;
                    if let Some(sh) = shared.upgrade() {
                        sh.counters.connections.fetch_add(1, Ordering::Relaxed);
                    }
                    if was_connected {
                        tracing::info!("redis adapter: reconnected and subscribed again");
                    }
                    was_connected = true;
                    let mut ping = tokio::time::interval(Duration::from_secs(2));
                    ping.tick().await;
                    // No strong reference is held while waiting: dropping the last one stops
                    // the task (through `stop`).
                    loop {
                        tokio::select! {
                            _ = &mut stop => return,
                            m = stream.next() => match m {
                                Some(m) => match shared.upgrade() {
                                    Some(sh) => sh.dispatch(&m),
                                    None => return,
                                },
                                None => break,
                            },
                            _ = changed.notified() => {
                                if !sync_subscriptions(&shared, &mut sink, &mut done).await {
                                    break;
                                }
                            }
                            _ = ping.tick() => {
                                let p = tokio::time::timeout(timeout, sink.ping()).await;
                                if !matches!(p, Ok(Ok(_))) {
                                    break;
                                }
                            }
                        }
                    }
                }
                if let Some(sh) = shared.upgrade() {
                    sh.synced.send_replace(0);
                }
                tracing::warn!("redis adapter: lost the pub/sub connection; reconnecting (local clients are still served)");
            }
            Ok(Err(e)) => {
                if !warned {
                    tracing::warn!("redis adapter: cannot connect to Redis ({e}); retrying");
                    warned = true;
                }
            }
            Err(_) => {
                if !warned {
                    tracing::warn!("redis adapter: connecting to Redis timed out; retrying");
                    warned = true;
                }
            }
        }
        let jitter = Duration::from_millis(rand::random::<u64>() % 50);
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(backoff + jitter) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
