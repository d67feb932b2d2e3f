//! The Redis emitter: a process that is not a Socket.IO server (a worker, a cron job) sends to
//! the clients of a cluster's nodes, as Node's `@socket.io/redis-emitter` 5.1.0 (classic
//! format) or `@socket.io/redis-streams-emitter` (streams format).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::{redis_error, RedisStats};
use crate::adapter::classic_wire::{self as wire, map_of, opts_value, rooms_value};
use crate::adapter::msgpack as mp;
use crate::adapter::{BroadcastOptions, Room};
use crate::error::{Error, Result};
use crate::server::check_event;
use crate::value::{Map, Value};

/// The uid every emitter message carries, as Node's emitters (the nodes never answer it).
const UID: &str = "emitter";

/// Which cluster format an [`Emitter`] writes; it must be the one the cluster's nodes read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum EmitterFormat {
    /// `@socket.io/redis-adapter`'s `createAdapter` (and polysio's
    /// [`super::RedisFormat::Classic`]): PUBLISH on the broadcast and request channels, exactly
    /// as `@socket.io/redis-emitter` 5.1.0.
    #[default]
    Classic,
    /// `@socket.io/redis-streams-adapter` 0.3: XADD into the stream
    /// ([`EmitterConfig::stream_name`], `MAXLEN ~` [`EmitterConfig::max_len`]), as
    /// `@socket.io/redis-streams-emitter` 0.1.
    Streams,
}

/// Options of an [`Emitter`]; defaults are Node's.
#[derive(Clone, Debug)]
pub struct EmitterConfig {
    /// The Redis server: `redis://[user:password@]host[:port][/db]` or
    /// `redis+unix:///path/to/socket[?db=N]`.
    pub url: String,
    /// The format ([`EmitterFormat::Classic`]).
    pub format: EmitterFormat,
    /// The classic format's channel prefix, Node's `key` (`"socket.io"`).
    pub key: String,
    /// The streams format's stream, Node's `streamName` (`"socket.io"`). As Node's streams
    /// emitter, one stream only: nodes with a `streamCount` above 1 do not all read it.
    pub stream_name: String,
    /// The streams format's `MAXLEN ~` of each XADD, Node's `maxLen` (10000).
    pub max_len: u64,
    /// Messages waiting to be written, at most (10000); past that [`Emitter::emit`] and the
    /// other operations fail with [`Error::BufferFull`] and the message is dropped (and
    /// counted in [`RedisStats::dropped`]).
    pub queue_capacity: usize,
    /// Longest wait for one Redis write, connecting included (2000 ms): a batch that Redis has
    /// not taken by then is dropped (and counted).
    pub command_timeout: Duration,
}

impl EmitterConfig {
    /// The classic format's defaults, with `url`.
    pub fn new(url: impl Into<String>) -> Self {
        EmitterConfig {
            url: url.into(),
            format: EmitterFormat::Classic,
            key: "socket.io".into(),
            stream_name: "socket.io".into(),
            max_len: 10_000,
            queue_capacity: 10_000,
            command_timeout: Duration::from_millis(2000),
        }
    }

    /// The streams format's defaults, with `url`.
    pub fn streams(url: impl Into<String>) -> Self {
        EmitterConfig {
            format: EmitterFormat::Streams,
            ..EmitterConfig::new(url)
        }
    }
}

enum Job {
    Write(redis::Cmd),
    /// Answered once every job before it was written (or dropped): `Err` when a write failed
    /// since the previous flush.
    Flush(oneshot::Sender<Result<()>>),
}

#[derive(Default)]
struct Counters {
    published: AtomicU64,
    dropped: AtomicU64,
}

struct Inner {
    config: EmitterConfig,
    queue: mpsc::Sender<Job>,
    counters: Arc<Counters>,
    warned_full: AtomicBool,
}

/// Sends to the sockets of a Socket.IO cluster over Redis without being a node of it, with
/// `@socket.io/redis-emitter`'s API: [`Emitter::of`] a namespace, [`Emitter::to`] /
/// [`Emitter::except`] rooms, then [`Emitter::emit`], [`Emitter::sockets_join`],
/// [`Emitter::sockets_leave`], [`Emitter::disconnect_sockets`] or
/// [`Emitter::server_side_emit`].
///
/// ```no_run
/// use polysio::adapter::redis::{Emitter, EmitterConfig};
/// # async fn run() -> polysio::Result<()> {
/// let emitter = Emitter::new(EmitterConfig::new("redis://127.0.0.1:6379/"))?;
/// emitter.to("room1").emit("news", vec!["hello".into()])?;
/// emitter.of("/admin").except("muted").emit("alert", vec![1.into()])?;
/// emitter.in_("room1").sockets_join(&["room2"])?;
/// emitter.flush().await?; // written to Redis
/// # Ok(()) }
/// ```
///
/// # Delivery
///
/// One connection per [`Emitter`] (and its clones, and what [`Emitter::of`] gives), a
/// multiplexed redis-rs `ConnectionManager` that reconnects by itself. Every operation only
/// queues its message and returns at once (as Node's emitter, which does not wait for the
/// PUBLISH either); one task writes the queue to Redis in pipelined batches, in order.
/// [`Emitter::flush`] waits until what was queued before it has been written.
///
/// When Redis is slow or away, a batch that it has not taken within
/// [`EmitterConfig::command_timeout`] is dropped, not retried (pub/sub has no memory: the nodes
/// would not get it anyway while they are disconnected); the queue holds at most
/// [`EmitterConfig::queue_capacity`] messages, and past that operations fail with
/// [`Error::BufferFull`]. Both kinds of loss are counted in [`RedisStats::dropped`]
/// ([`Emitter::stats`]); [`Emitter::flush`] fails when a write failed since the previous flush.
///
/// Acknowledgements are not supported (Node's emitter throws when asked for one): there is no
/// `emit_with_ack` nor `server_side_emit_with_ack`. Reserved event names (`connect`,
/// `disconnect`, ...) are refused with [`Error::InvalidArgument`], as Node's emitter throws.
///
/// Needs a tokio runtime: [`Emitter::new`] spawns the writer task.
#[derive(Clone)]
pub struct Emitter {
    inner: Arc<Inner>,
    nsp: String,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("format", &self.inner.config.format)
            .field("nsp", &self.nsp)
            .finish()
    }
}

/// Namespace `nsp` with a leading `/`, as Node's `of()`.
fn nsp_name(nsp: &str) -> String {
    if nsp.starts_with('/') {
        nsp.to_owned()
    } else {
        format!("/{nsp}")
    }
}

impl Emitter {
    /// Starts the emitter's writer task on the current tokio runtime; it connects on the first
    /// write (and again after Redis went away). Fails only on a URL it cannot use.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn new(config: EmitterConfig) -> Result<Emitter> {
        let client = redis::Client::open(config.url.as_str()).map_err(redis_error)?;
        let conn = super::publisher_connection(client, config.command_timeout)?;
        let (queue, rx) = mpsc::channel(config.queue_capacity.max(1));
        let counters = Arc::new(Counters::default());
        tokio::spawn(writer(conn, rx, config.command_timeout, counters.clone()));
        Ok(Emitter {
            inner: Arc::new(Inner {
                config,
                queue,
                counters,
                warned_full: AtomicBool::new(false),
            }),
            nsp: "/".into(),
        })
    }

    /// The same emitter for namespace `nsp` (a leading `/` is added when missing).
    pub fn of(&self, nsp: &str) -> Emitter {
        Emitter {
            inner: self.inner.clone(),
            nsp: nsp_name(nsp),
        }
    }

    /// The namespace this emitter sends to (`/` unless [`Emitter::of`] said otherwise).
    pub fn namespace(&self) -> &str {
        &self.nsp
    }

    /// An operator targeting every socket of the namespace, no flag set: what the emitter's
    /// own operations start from, for code that adds rooms, exceptions and flags one by one.
    pub fn operator(&self) -> EmitterOperator {
        EmitterOperator {
            emitter: self.clone(),
            opts: BroadcastOptions::default(),
        }
    }

    /// Targets the sockets in `room` (chain for more rooms: sockets in any of them).
    pub fn to(&self, room: impl Into<Room>) -> EmitterOperator {
        self.operator().to(room)
    }

    /// Alias of [`Emitter::to`].
    pub fn in_(&self, room: impl Into<Room>) -> EmitterOperator {
        self.to(room)
    }

    /// Excludes the sockets in `room`.
    pub fn except(&self, room: impl Into<Room>) -> EmitterOperator {
        self.operator().except(room)
    }

    /// The message may be lost (Node's `volatile` flag: not sent to a client that is not ready
    /// to take it).
    pub fn volatile(&self) -> EmitterOperator {
        self.operator().volatile()
    }

    /// Emits `event` with `args` (binary allowed) to every socket of the namespace on every
    /// node. Queued; see [the type's doc](Emitter#delivery).
    pub fn emit(&self, event: &str, args: Vec<Value>) -> Result<()> {
        self.operator().emit(event, args)
    }

    /// Every socket of the namespace joins `rooms`.
    pub fn sockets_join(&self, rooms: &[&str]) -> Result<()> {
        self.operator().sockets_join(rooms)
    }

    /// Every socket of the namespace leaves `rooms`.
    pub fn sockets_leave(&self, rooms: &[&str]) -> Result<()> {
        self.operator().sockets_leave(rooms)
    }

    /// Disconnects every socket of the namespace (`close`: their whole connections).
    pub fn disconnect_sockets(&self, close: bool) -> Result<()> {
        self.operator().disconnect_sockets(close)
    }

    /// Emits `event` with `args` to the server-side listeners (`io.on(event)` in Node,
    /// `Namespace::on_server_side_emit` in polysio) of every node. No acknowledgement.
    pub fn server_side_emit(&self, event: &str, args: Vec<Value>) -> Result<()> {
        check_event(event)?;
        let mut data = Vec::with_capacity(args.len() + 1);
        data.push(Value::from(event));
        data.extend(args);
        match self.inner.config.format {
            EmitterFormat::Classic => {
                let body = map_of(vec![
                    ("uid", Value::from(UID)),
                    ("type", Value::Int(wire::SERVER_SIDE_EMIT)),
                    ("data", Value::Array(data)),
                ]);
                self.publish(self.request_channel(), wire::encode_message(&body))
            }
            EmitterFormat::Streams => self.xadd(
                SERVER_SIDE_EMIT,
                map_of(vec![("packet", Value::Array(data))]),
            ),
        }
    }

    /// Waits until every message queued before the call has been written to Redis (or
    /// dropped). `Err` when a write failed since the previous flush (Redis away or slow),
    /// [`Error::Closed`] if the writer task is gone (its runtime shut down).
    pub async fn flush(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .queue
            .send(Job::Flush(tx))
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// The counters: [`RedisStats::published`] messages written, [`RedisStats::dropped`]
    /// messages lost (queue full, or Redis failed to take them); the others stay 0.
    pub fn stats(&self) -> RedisStats {
        RedisStats {
            published: self.inner.counters.published.load(Ordering::Relaxed),
            dropped: self.inner.counters.dropped.load(Ordering::Relaxed),
            ..Default::default()
        }
    }

    fn request_channel(&self) -> String {
        format!("{}-request#{}#", self.inner.config.key, self.nsp)
    }

    fn queue(&self, cmd: redis::Cmd) -> Result<()> {
        let inner = &self.inner;
        match inner.queue.try_send(Job::Write(cmd)) {
            Ok(()) => {
                inner.warned_full.store(false, Ordering::Relaxed);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                inner.counters.dropped.fetch_add(1, Ordering::Relaxed);
                if !inner.warned_full.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "redis emitter: queue full (Redis slow or away); dropping messages"
                    );
                }
                Err(Error::BufferFull(
                    "redis emitter: the queue is full (Redis slow or away); message dropped".into(),
                ))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Error::Closed),
        }
    }

    fn publish(&self, channel: String, payload: Vec<u8>) -> Result<()> {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(channel).arg(payload);
        self.queue(cmd)
    }

    /// XADD of a ClusterAdapter message `{uid: "emitter", nsp, type, data}` (data as JSON, or
    /// base64 msgpack when it holds binary, as the streams adapter reads it).
    fn xadd(&self, ty: i64, data: Value) -> Result<()> {
        let config = &self.inner.config;
        let data = if data.has_binary() {
            use base64::Engine as _;
            let mut out = Vec::new();
            mp::write_value(&mut out, &data);
            base64::engine::general_purpose::STANDARD.encode(out)
        } else {
            data.to_json_string()
        };
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&config.stream_name)
            .arg("MAXLEN")
            .arg("~")
            .arg(config.max_len)
            .arg("*")
            .arg("uid")
            .arg(UID)
            .arg("nsp")
            .arg(&self.nsp)
            .arg("type")
            .arg(ty.to_string())
            .arg("data")
            .arg(data);
        self.queue(cmd)
    }
}

// The ClusterAdapter message types the streams emitter writes.
const BROADCAST: i64 = 3;
const SOCKETS_JOIN: i64 = 4;
const SOCKETS_LEAVE: i64 = 5;
const DISCONNECT_SOCKETS: i64 = 6;
const SERVER_SIDE_EMIT: i64 = 9;

/// Rooms, exceptions and flags chosen on an [`Emitter`], then one operation, as Node's
/// emitter's `BroadcastOperator`. Cheap to clone.
#[derive(Clone, Debug)]
pub struct EmitterOperator {
    emitter: Emitter,
    opts: BroadcastOptions,
}

impl EmitterOperator {
    /// Adds `room` to the targets (sockets in any of them).
    pub fn to(mut self, room: impl Into<Room>) -> Self {
        let room = room.into();
        if !self.opts.rooms.contains(&room) {
            self.opts.rooms.push(room);
        }
        self
    }

    /// Alias of [`EmitterOperator::to`].
    pub fn in_(self, room: impl Into<Room>) -> Self {
        self.to(room)
    }

    /// Excludes the sockets in `room`.
    pub fn except(mut self, room: impl Into<Room>) -> Self {
        let room = room.into();
        if !self.opts.except.contains(&room) {
            self.opts.except.push(room);
        }
        self
    }

    /// The message may be lost (see [`Emitter::volatile`]).
    pub fn volatile(mut self) -> Self {
        self.opts.flags.volatile = true;
        self
    }

    /// Emits `event` with `args` (binary allowed) to the targeted sockets of every node.
    pub fn emit(&self, event: &str, args: Vec<Value>) -> Result<()> {
        check_event(event)?;
        let e = &self.emitter;
        let config = &e.inner.config;
        match config.format {
            EmitterFormat::Classic => {
                let msg = wire::encode_broadcast(UID, &e.nsp, event, &args, &self.opts);
                let mut channel = format!("{}#{}#", config.key, e.nsp);
                if let [room] = self.opts.rooms.as_slice() {
                    channel.push_str(room);
                    channel.push('#');
                }
                e.publish(channel, msg)
            }
            EmitterFormat::Streams => {
                let mut data = Vec::with_capacity(args.len() + 1);
                data.push(Value::from(event));
                data.extend(args);
                let packet = map_of(vec![
                    ("type", Value::Int(2)),
                    ("data", Value::Array(data)),
                    ("nsp", Value::from(e.nsp.as_str())),
                ]);
                let mut flags = Map::new();
                if self.opts.flags.volatile {
                    flags.insert("volatile".into(), Value::Bool(true));
                }
                let opts = map_of(vec![
                    ("rooms", rooms_value(&self.opts.rooms)),
                    ("except", rooms_value(&self.opts.except)),
                    ("flags", Value::Map(flags)),
                ]);
                e.xadd(BROADCAST, map_of(vec![("packet", packet), ("opts", opts)]))
            }
        }
    }

    /// The targeted sockets of every node join `rooms`.
    pub fn sockets_join(&self, rooms: &[&str]) -> Result<()> {
        self.rooms_request(wire::REMOTE_JOIN, SOCKETS_JOIN, rooms)
    }

    /// The targeted sockets of every node leave `rooms`.
    pub fn sockets_leave(&self, rooms: &[&str]) -> Result<()> {
        self.rooms_request(wire::REMOTE_LEAVE, SOCKETS_LEAVE, rooms)
    }

    /// Disconnects the targeted sockets of every node (`close`: their whole connections).
    pub fn disconnect_sockets(&self, close: bool) -> Result<()> {
        self.request(
            wire::REMOTE_DISCONNECT,
            DISCONNECT_SOCKETS,
            ("close", Value::Bool(close)),
        )
    }

    fn rooms_request(&self, classic: i64, streams: i64, rooms: &[&str]) -> Result<()> {
        let rooms: Vec<Room> = rooms.iter().map(|r| Room::from(*r)).collect();
        self.request(classic, streams, ("rooms", rooms_value(&rooms)))
    }

    /// `{type, opts: {rooms, except}, <extra>}` on the request channel (classic, no uid, as
    /// Node's emitter), or `{opts: {rooms, except, flags: {}}, <extra>}` in the stream.
    fn request(&self, classic: i64, streams: i64, extra: (&str, Value)) -> Result<()> {
        let e = &self.emitter;
        match e.inner.config.format {
            EmitterFormat::Classic => {
                let body = map_of(vec![
                    ("type", Value::Int(classic)),
                    ("opts", opts_value(&self.opts)),
                    extra,
                ]);
                e.publish(e.request_channel(), wire::encode_message(&body))
            }
            EmitterFormat::Streams => {
                let opts = map_of(vec![
                    ("rooms", rooms_value(&self.opts.rooms)),
                    ("except", rooms_value(&self.opts.except)),
                    ("flags", Value::Map(Map::new())),
                ]);
                e.xadd(streams, map_of(vec![("opts", opts), extra]))
            }
        }
    }
}

/// Writes the queue to Redis in pipelined batches, in order; answers flushes once what was
/// queued before them is written.
async fn writer(
    mut conn: redis::aio::ConnectionManager,
    mut rx: mpsc::Receiver<Job>,
    timeout: Duration,
    counters: Arc<Counters>,
) {
    let mut batch = Vec::with_capacity(256);
    let mut failed_since_flush = 0u64;
    let mut failing = false;
    while rx.recv_many(&mut batch, 256).await > 0 {
        let mut rest = batch.drain(..).peekable();
        while rest.peek().is_some() {
            let mut pipe = redis::pipe();
            let mut n = 0u64;
            while let Some(Job::Write(_)) = rest.peek() {
                if let Some(Job::Write(cmd)) = rest.next() {
                    pipe.add_command(cmd).ignore();
                    n += 1;
                }
            }
            if n > 0 {
                let r = tokio::time::timeout(timeout, pipe.query_async::<()>(&mut conn)).await;
                let error = match r {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(_) => Some(format!("timed out after {timeout:?}")),
                };
                match error {
                    None => {
                        counters.published.fetch_add(n, Ordering::Relaxed);
                        if failing {
                            tracing::info!("redis emitter: writing again");
                            failing = false;
                        }
                    }
                    Some(e) => {
                        counters.dropped.fetch_add(n, Ordering::Relaxed);
                        failed_since_flush += n;
                        if !failing {
                            tracing::warn!("redis emitter: cannot write ({e}); messages are dropped until Redis is back");
                            failing = true;
                        }
                    }
                }
            }
            while let Some(Job::Flush(_)) = rest.peek() {
                if let Some(Job::Flush(tx)) = rest.next() {
                    let r = match failed_since_flush {
                        0 => Ok(()),
                        n => Err(Error::Adapter(format!(
                            "redis emitter: {n} message(s) could not be written to Redis"
                        ))),
                    };
                    failed_since_flush = 0;
                    let _ = tx.send(r);
                }
            }
        }
    }
}
