//! One Engine.IO session: its outgoing queue, state flags, heartbeat and close.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::Notify;

use super::config::TransportType;
use super::outbox::Outbox;
use super::packet::{Frame, PacketType};
use super::rules::{Beat, Heartbeat};
use super::Handshake;
use crate::error::{Error, Result};

/// Why an Engine.IO session ended (the reference's reason strings via [`CloseReason::as_str`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed the transport or sent a close packet.
    TransportClose,
    /// The transport failed (aborted request, overlapping requests, I/O error, oversized frame).
    TransportError,
    /// No pong within `pingTimeout`.
    PingTimeout,
    /// The client sent something that is not Engine.IO.
    ParseError,
    /// The server closed the session.
    ForcedClose,
    /// The server is shutting down.
    ServerShuttingDown,
}

impl CloseReason {
    /// The reference's reason string.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::TransportClose => "transport close",
            CloseReason::TransportError => "transport error",
            CloseReason::PingTimeout => "ping timeout",
            CloseReason::ParseError => "parse error",
            CloseReason::ForcedClose => "forced close",
            CloseReason::ServerShuttingDown => "server shutting down",
        }
    }
}

/// An incoming Engine.IO message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// A text message (without its `4`).
    Text(&'a str),
    /// A binary message.
    Binary(Bytes),
}

/// Per-connection callbacks; created by [`EngineHandler::on_open`]. Called inline on the task
/// that read the data, one call at a time.
pub trait ConnHandler: Send + 'static {
    /// A message arrived.
    fn on_message(&mut self, msg: Message<'_>);
    /// The session ended; called exactly once, after the last `on_message`.
    fn on_close(&mut self, reason: CloseReason);
}

/// Creates the per-connection state when a session opens.
pub trait EngineHandler: Send + Sync + 'static {
    /// A new session; the returned handler receives its messages.
    fn on_open(&self, socket: &EngineSocket) -> Box<dyn ConnHandler>;
}

/// What a session reports to and runs on: the server that owns it. A session never reaches into
/// its server otherwise.
pub(crate) trait SessionOwner: Send + Sync + 'static {
    /// The runtime the session's tasks run on.
    fn runtime(&self) -> &tokio::runtime::Handle;
    /// The session ended. `linger`: a polling client has yet to get the close packet with its
    /// next GET, so the session stays reachable for a while.
    fn session_closed(&self, session: &EngineSocket, linger: bool);
}

pub(crate) const T_POLLING: u8 = 0;
pub(crate) const T_WEBSOCKET: u8 = 1;

pub(crate) struct Shared {
    pub(crate) sid: Arc<str>,
    pub(crate) handshake: Arc<Handshake>,
    /// Frames waiting to be sent.
    pub(crate) outbox: Outbox,
    /// The buffer of the transport task sending them (a pending poll or the WebSocket); held
    /// while it does.
    pub(crate) reader: Arc<tokio::sync::Mutex<VecDeque<Frame>>>,
    pub(crate) transport: AtomicU8,
    pub(crate) upgrading: AtomicBool,
    pub(crate) post_busy: AtomicBool,
    closed: AtomicBool,
    pub(crate) close_reason: Mutex<Option<CloseReason>>,
    pub(crate) close_notify: Notify,
    pub(crate) pong: Notify,
    /// When the session opened: the heartbeat's clock starts here, not when its task first runs.
    opened: Instant,
    /// While a ping awaits its pong: when it times out, in nanoseconds after `opened` (0: no
    /// ping is out). Lets a request that arrives after the deadline find the session closed even
    /// if the heartbeat task has not run yet (a loaded runtime, timers rounded up), as the
    /// reference's timers run before its I/O.
    ping_deadline: AtomicU64,
    pub(crate) conn: Mutex<Option<Box<dyn ConnHandler>>>,
    owner: Weak<dyn SessionOwner>,
}

/// Runs the connection handler's `on_close` when dropped: in the task `close_with` spawns, or,
/// if the runtime shuts down before that task runs, when the task is dropped. Either way the
/// handler (which holds the session) is released, so no reference cycle outlives the runtime.
struct CloseLater(Option<(EngineSocket, CloseReason)>);

impl Drop for CloseLater {
    fn drop(&mut self) {
        if let Some((me, reason)) = self.0.take() {
            let taken = me.0.conn.lock().ok().and_then(|mut c| c.take());
            if let Some(mut conn) = taken {
                conn.on_close(reason);
            }
        }
    }
}

/// Sessions that a broadcast queued frames to, flushed when the batch is dropped: their
/// WebSockets are written from a few tasks (a chunk of sessions each, so several worker threads
/// can share the work), each frame batch with one non-blocking write, instead of waking every
/// session's task. Frames queued by later broadcasts before a flush runs go out with it.
#[derive(Default)]
pub(crate) struct FlushBatch {
    sessions: Vec<EngineSocket>,
}

/// Sessions flushed by one task.
const FLUSH_CHUNK: usize = 256;

thread_local! {
    /// Corks on this thread, and the sessions their broadcasts left to flush (see [`Cork`]).
    static CORKED: std::cell::RefCell<(usize, Vec<EngineSocket>)> =
        const { std::cell::RefCell::new((0, Vec::new())) };
}

/// Holds back the writes of the broadcasts made on this thread while it lives: their frames are
/// queued at once, in order, but written when the last `Cork` of the thread is dropped, so a
/// run of broadcasts (the handlers of one batch of events, say) reaches each socket in one
/// write instead of one per broadcast. Fewer, larger writes cost the kernel far less per
/// message.
///
/// Only the flush is held back: frames still go out in the order they were queued, and
/// anything else that writes to a socket (a direct emit, a ping) takes the held frames with it.
/// Corks nest; keep one only around code that does not wait (not across an `.await`), or the
/// broadcasts wait with it.
///
/// ```
/// # async fn demo(io: polysio::server::Server) {
/// {
///     let _cork = polysio::server::Cork::new();
///     for i in 0..10 {
///         let _ = io.of("/").emit("tick", vec![i.into()]);
///     }
/// } // written here: ten frames per socket, one write each
/// # }
/// ```
#[must_use = "writes are held back only while the cork lives"]
pub struct Cork(std::marker::PhantomData<*const ()>);

impl Cork {
    /// Corks this thread until the returned value is dropped.
    pub fn new() -> Cork {
        Cork::begin();
        Cork(std::marker::PhantomData)
    }

    /// Corks this thread without a guard, for callers whose cork and uncork are separate calls
    /// (a binding's host language): each `begin` needs one [`Cork::end`] on the same thread.
    pub fn begin() {
        CORKED.with(|c| c.borrow_mut().0 += 1);
    }

    /// Ends one [`Cork::begin`] (or guard) of this thread; at the last one, the broadcasts held
    /// back are written. Does nothing on a thread that is not corked.
    pub fn end() {
        let sessions = CORKED.with(|c| {
            let mut c = c.borrow_mut();
            if c.0 == 0 {
                return Vec::new();
            }
            c.0 -= 1;
            if c.0 == 0 {
                std::mem::take(&mut c.1)
            } else {
                Vec::new()
            }
        });
        drop(FlushBatch { sessions });
    }
}

impl Default for Cork {
    fn default() -> Self {
        Cork::new()
    }
}

impl std::fmt::Debug for Cork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cork")
    }
}

impl Drop for Cork {
    fn drop(&mut self) {
        Cork::end();
    }
}

impl Drop for FlushBatch {
    fn drop(&mut self) {
        if self.sessions.is_empty() {
            return;
        }
        let corked = CORKED.with(|c| {
            let mut c = c.borrow_mut();
            if c.0 == 0 {
                return false;
            }
            c.1.append(&mut self.sessions);
            true
        });
        if corked {
            return;
        }
        let runtime = self.sessions[0]
            .0
            .owner
            .upgrade()
            .map(|s| s.runtime().clone())
            .or_else(|| tokio::runtime::Handle::try_current().ok());
        let Some(runtime) = runtime else {
            for s in self.sessions.drain(..) {
                s.0.outbox.flush();
            }
            return;
        };
        while !self.sessions.is_empty() {
            // The last chunk is the list itself (no copy).
            let rest = self.sessions.len().saturating_sub(FLUSH_CHUNK);
            let chunk = match rest {
                0 => std::mem::take(&mut self.sessions),
                _ => self.sessions.split_off(rest),
            };
            runtime.spawn(async move {
                for s in chunk {
                    s.0.outbox.flush();
                }
            });
        }
    }
}

/// A handle on one Engine.IO session; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct EngineSocket(pub(crate) Arc<Shared>);

impl std::fmt::Debug for EngineSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineSocket")
            .field("sid", &self.0.sid)
            .finish()
    }
}

impl EngineSocket {
    pub(crate) fn new(
        sid: Arc<str>,
        handshake: Arc<Handshake>,
        transport: TransportType,
        owner: Weak<dyn SessionOwner>,
    ) -> Self {
        EngineSocket(Arc::new(Shared {
            sid,
            handshake,
            outbox: Outbox::default(),
            reader: Arc::new(tokio::sync::Mutex::new(VecDeque::new())),
            transport: AtomicU8::new(match transport {
                TransportType::Polling => T_POLLING,
                TransportType::Websocket => T_WEBSOCKET,
            }),
            upgrading: AtomicBool::new(false),
            post_busy: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            close_reason: Mutex::new(None),
            close_notify: Notify::new(),
            pong: Notify::new(),
            opened: Instant::now(),
            ping_deadline: AtomicU64::new(0),
            conn: Mutex::new(None),
            owner,
        }))
    }

    /// The session id.
    pub fn sid(&self) -> &str {
        &self.0.sid
    }

    /// The request that opened the session.
    pub fn handshake(&self) -> &Arc<Handshake> {
        &self.0.handshake
    }

    /// The transport in use now.
    pub fn transport(&self) -> TransportType {
        if self.0.transport.load(Ordering::Acquire) == T_WEBSOCKET {
            TransportType::Websocket
        } else {
            TransportType::Polling
        }
    }

    /// True once the session has ended.
    pub fn is_closed(&self) -> bool {
        self.0.closed.load(Ordering::Acquire)
    }

    /// True while a long-polling GET holds the outgoing queue.
    pub(crate) fn poll_pending(&self) -> bool {
        self.0.reader.try_lock().is_err()
    }

    /// Queues a frame; fails once the session is closed.
    pub fn send(&self, frame: Frame) -> Result<()> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        self.0.outbox.push([frame]);
        Ok(())
    }

    /// Queues several frames in order (a packet and its attachments).
    pub fn send_all<'a>(&self, frames: impl IntoIterator<Item = &'a Frame>) -> Result<()> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        self.0.outbox.push(frames.into_iter().cloned());
        Ok(())
    }

    /// Queues frames for a flush by `batch` (see [`FlushBatch`]).
    pub(crate) fn send_all_batched<'a>(
        &self,
        frames: impl IntoIterator<Item = &'a Frame>,
        batch: &mut FlushBatch,
    ) -> Result<()> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        if self.0.outbox.push_for_flush(frames.into_iter().cloned()) {
            batch.sessions.push(self.clone());
        }
        Ok(())
    }

    /// Sends a text message.
    pub fn send_text(&self, text: &str) -> Result<()> {
        self.send(Frame::message(text))
    }

    /// Closes the session: what is queued is still flushed, then the transport closes.
    pub fn close(&self) {
        self.close_with(CloseReason::ForcedClose)
    }

    pub(crate) fn ptr_eq(&self, other: &EngineSocket) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Ends the session with `reason`; the first call wins.
    pub(crate) fn close_with(&self, reason: CloseReason) {
        if self.0.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Ok(mut r) = self.0.close_reason.lock() {
            *r = Some(reason);
        }
        self.0.close_notify.notify_waiters();
        // The WebSocket task waits on the outbox, not on the notification.
        self.0.outbox.wake();
        let owner = self.0.owner.upgrade();
        if let Some(owner) = &owner {
            // As the reference: a polling client with no GET pending gets the close packet
            // with its next GET (see `poll`), not "Session ID unknown". A client that closed
            // the session itself gets a noop: its close POST and its last GET may race, and
            // on a multi-threaded server the POST may be routed first although the GET was
            // sent first (the reference, on one thread, routes them in order).
            let linger = matches!(
                reason,
                CloseReason::ForcedClose | CloseReason::TransportClose
            ) && self.transport() == TransportType::Polling
                && !self.poll_pending();
            owner.session_closed(self, linger);
        }
        // The handler may be running on this very thread (it asked for the close), so its
        // `on_close` runs once it has let go of the connection state.
        let run = CloseLater(Some((self.clone(), reason)));
        match owner
            .as_ref()
            .map(|s| s.runtime().clone())
            .or_else(|| tokio::runtime::Handle::try_current().ok())
        {
            Some(rt) => {
                rt.spawn(async move { drop(run) });
            }
            None => drop(run),
        }
    }

    pub(crate) fn close_reason(&self) -> Option<CloseReason> {
        self.0.close_reason.lock().ok().and_then(|r| *r)
    }

    /// Passes a message to the connection handler, unless the session is closed.
    pub(crate) fn dispatch(&self, msg: Message<'_>) {
        if self.is_closed() {
            return;
        }
        if let Ok(mut conn) = self.0.conn.lock() {
            if let Some(c) = conn.as_mut() {
                c.on_message(msg);
            }
        }
    }

    /// Handles one decoded incoming packet (shared by polling and WebSocket).
    pub(crate) fn on_packet(&self, p: super::packet::Packet<'_>) {
        use super::packet::Packet;
        match p {
            Packet::Text(t) => self.dispatch(Message::Text(t)),
            Packet::Binary(b) => self.dispatch(Message::Binary(b)),
            Packet::Pong(_) => self.0.pong.notify_one(),
            Packet::Ping(d) => {
                let _ = self.send(Frame::text(PacketType::Pong, d));
            }
            Packet::Close => self.close_with(CloseReason::TransportClose),
            Packet::Noop | Packet::Upgrade => {}
            Packet::Open(_) => self.close_with(CloseReason::ParseError),
        }
    }

    /// Handles a long-polling POST's body: a payload of packets (invalid content closes the
    /// session with a parse error).
    pub(crate) fn on_post(&self, body: &[u8]) {
        let decoded = std::str::from_utf8(body)
            .map_err(|_| ())
            .and_then(|s| super::packet::decode_payload(s).map_err(|_| ()));
        match decoded {
            Ok(packets) => {
                for p in packets {
                    self.on_packet(p);
                }
            }
            Err(()) => self.close_with(CloseReason::ParseError),
        }
    }

    /// Drives the session's [`Heartbeat`] until the session ends.
    pub(crate) async fn heartbeat(
        self,
        interval: std::time::Duration,
        timeout: std::time::Duration,
    ) {
        let ping = Frame::text(PacketType::Ping, "");
        let mut beat = Heartbeat::new(interval, timeout, self.0.opened);
        loop {
            let closed = self.0.close_notify.notified();
            if self.is_closed() {
                return;
            }
            tokio::select! {
                _ = closed => return,
                _ = self.0.pong.notified() => {
                    beat.on_pong(Instant::now());
                    self.0.ping_deadline.store(0, Ordering::Release);
                }
                _ = tokio::time::sleep_until(beat.due().into()) => match beat.on_time(Instant::now()) {
                    Beat::Ping => {
                        let due = beat.due().saturating_duration_since(self.0.opened);
                        let nanos = u64::try_from(due.as_nanos()).unwrap_or(u64::MAX).max(1);
                        self.0.ping_deadline.store(nanos, Ordering::Release);
                        if self.send(ping.clone()).is_err() {
                            return;
                        }
                    }
                    Beat::Timeout => {
                        self.close_with(CloseReason::PingTimeout);
                        return;
                    }
                    Beat::Wait => {}
                },
            }
        }
    }

    /// Closes the session with `ping timeout` if its ping's deadline has passed, whether or not
    /// the heartbeat task has run yet; true if the session is (now) closed.
    pub(crate) fn check_ping_timeout(&self) -> bool {
        let deadline = self.0.ping_deadline.load(Ordering::Acquire);
        if deadline != 0 {
            let late = self.0.opened.elapsed().as_nanos() >= u128::from(deadline);
            if late && !self.is_closed() {
                self.close_with(CloseReason::PingTimeout);
            }
        }
        self.is_closed()
    }
}
