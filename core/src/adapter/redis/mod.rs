//! Scale-out over Redis, wire-compatible with Node's `@socket.io/redis-adapter` 8.3 (the
//! classic PUBLISH/SUBSCRIBE format): polysio nodes and npm socket.io 4.8 nodes share one cluster
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
//! # Not done yet
//!
//! The sharded (SPUBLISH) and streams formats, the emitter, `rediss://` (TLS) and Redis
//! Cluster topologies (NUMSUB is asked of the one server of the URL). Connection state
//! recovery does not cross nodes with this format (nor does it with Node's).

mod classic;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{mpsc, watch, Notify};

pub use classic::NamespaceAdapter;

use super::{Adapter, AdapterFactory, LocalAdapter};
use crate::error::{Error, Result};

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
    routes: RwLock<HashMap<String, (Kind, Weak<NamespaceAdapter>)>>,
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

/// Six random alphanumeric characters, as Node's `uid2(6)`.
pub(crate) fn uid6() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..6)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
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
        let manager_config = redis::aio::ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500))
            .set_connection_timeout(Some(config.command_timeout))
            .set_response_timeout(Some(config.command_timeout));
        let conn =
            redis::aio::ConnectionManager::new_lazy_with_config(client.clone(), manager_config)
                .map_err(redis_error)?;
        let (queue, rx) = mpsc::channel(config.queue_capacity.max(1));
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let shared = Arc::new(Shared {
            config,
            uid: uid6(),
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
        tokio::spawn(publisher(Arc::downgrade(&shared), conn, rx, timeout));
        tokio::spawn(subscriber(Arc::downgrade(&shared), client, stopped));
        Ok(RedisAdapter { shared })
    }

    /// The adapter factory for [`crate::server::ServerConfig::adapter`]: each namespace gets a
    /// [`NamespaceAdapter`] on these connections.
    pub fn factory(&self) -> AdapterFactory {
        let shared = self.shared.clone();
        Arc::new(move |nsp| -> Arc<dyn Adapter> {
            let local = LocalAdapter::new(nsp.clone());
            let name = nsp.upgrade().map(|n| n.name().to_owned());
            match name {
                // The parent of dynamic namespaces has no sockets of its own: local only.
                Some(name) if !name.is_empty() => {
                    NamespaceAdapter::start(&shared, nsp, name, local)
                }
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

    fn add_routes(&self, routes: Vec<(String, Kind)>, adapter: &Arc<NamespaceAdapter>) {
        if let Ok(mut r) = self.routes.write() {
            for (channel, kind) in routes {
                r.insert(channel, (kind, Arc::downgrade(adapter)));
            }
        }
        self.wanted.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_one();
    }

    /// Forgets the routes of `adapter` (its namespace closed); the subscriber unsubscribes.
    fn remove_routes(&self, adapter: *const NamespaceAdapter) {
        if let Ok(mut r) = self.routes.write() {
            r.retain(|_, (_, a)| !std::ptr::eq(a.as_ptr(), adapter));
        }
        self.wanted.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_one();
    }

    fn malformed(&self, what: &str, why: impl std::fmt::Display) {
        self.counters.malformed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("redis adapter: skipping a malformed {what}: {why}");
    }

    /// `PUBSUB NUMSUB channel`, under the command timeout.
    fn numsub(&self, channel: String) -> impl std::future::Future<Output = Result<usize>> {
        let mut conn = self.conn.clone();
        let timeout = self.config.command_timeout;
        async move {
            let cmd = redis::cmd("PUBSUB").arg("NUMSUB").arg(&channel).to_owned();
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
        let payload = msg.get_payload_bytes();
        match kind {
            Kind::Broadcast => adapter.on_broadcast(channel, payload),
            Kind::Request => adapter.on_request(payload),
            Kind::Response => adapter.on_response(payload),
        }
    }
}

/// Drains the queue into Redis, in pipelined batches.
async fn publisher(
    shared: Weak<Shared>,
    mut conn: redis::aio::ConnectionManager,
    mut rx: mpsc::Receiver<Outgoing>,
    timeout: Duration,
) {
    let mut batch = Vec::with_capacity(256);
    let mut failing = false;
    while rx.recv_many(&mut batch, 256).await > 0 {
        let mut pipe = redis::pipe();
        for m in &batch {
            pipe.cmd("PUBLISH").arg(&m.channel).arg(&m.payload).ignore();
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

/// Subscribes to what `shared.routes` asks for that `done` lacks, and unsubscribes from what
/// `done` has that the routes no longer want (closed namespaces: NUMSUB must stop counting this
/// process for them); false if the connection failed.
async fn sync_subscriptions(
    shared: &Weak<Shared>,
    sink: &mut redis::aio::PubSubSink,
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
    let split = |v: Routes| -> (Vec<String>, Vec<String>) {
        let (p, c): (Vec<_>, Vec<_>) = v.into_iter().partition(|(_, k)| *k == Kind::Broadcast);
        (
            p.into_iter().map(|(c, _)| c).collect(),
            c.into_iter().map(|(c, _)| c).collect(),
        )
    };
    let (patterns, channels) = split(todo);
    let (old_patterns, old_channels) = split(gone);
    if !patterns.is_empty() {
        match tokio::time::timeout(timeout, sink.psubscribe(&patterns)).await {
            Ok(Ok(())) => done.extend(patterns.into_iter().map(|p| (p, Kind::Broadcast))),
            _ => return false,
        }
    }
    if !channels.is_empty() {
        match tokio::time::timeout(timeout, sink.subscribe(&channels)).await {
            // The kind is only used to tell patterns from channels here.
            Ok(Ok(())) => done.extend(channels.into_iter().map(|c| (c, Kind::Request))),
            _ => return false,
        }
    }
    if !old_patterns.is_empty() {
        match tokio::time::timeout(timeout, sink.punsubscribe(&old_patterns)).await {
            Ok(Ok(())) => old_patterns.iter().for_each(|p| {
                done.remove(p);
            }),
            _ => return false,
        }
    }
    if !old_channels.is_empty() {
        match tokio::time::timeout(timeout, sink.unsubscribe(&old_channels)).await {
            Ok(Ok(())) => old_channels.iter().for_each(|c| {
                done.remove(c);
            }),
            _ => return false,
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
        let changed = sh.changed.clone();
        drop(sh);
        let connect = tokio::time::timeout(timeout, client.get_async_pubsub());
        let conn = tokio::select! {
            _ = &mut stop => return,
            c = connect => c,
        };
        match conn {
            Ok(Ok(pubsub)) => {
                let (mut sink, mut stream) = pubsub.split();
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
                                let p = tokio::time::timeout(timeout, sink.ping::<redis::Value>()).await;
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
