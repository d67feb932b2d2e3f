//! One Engine.IO session: its outgoing queue, state flags, heartbeat and close.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::Notify;

use super::config::TransportType;
use super::gate::{Gate, Held};
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

/// A session's bounds, from its server's [`super::EngineConfig`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct SessionLimits {
    pub(crate) max_buffered_bytes: usize,
    pub(crate) max_pending_messages: usize,
}

fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
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
    /// The ping timeout, in nanoseconds, once the heartbeat runs.
    ping_timeout: AtomicU64,
    /// A packet other than the pong already pushed the current ping's deadline back.
    ping_refreshed: AtomicBool,
    /// Messages handed to a slow consumer and not yet handled (see [`EngineSocket::hold`]).
    gate: Arc<Gate>,
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
        limits: SessionLimits,
    ) -> Self {
        EngineSocket(Arc::new(Shared {
            sid,
            handshake,
            outbox: Outbox::new(limits.max_buffered_bytes),
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
            ping_timeout: AtomicU64::new(0),
            ping_refreshed: AtomicBool::new(false),
            gate: Gate::new(limits.max_pending_messages),
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

    /// Queues a frame; fails once the session is closed. A session whose queue goes over
    /// `max_buffered_bytes` (its client does not take what is sent) closes with
    /// `transport error`.
    pub fn send(&self, frame: Frame) -> Result<()> {
        self.send_all([&frame])
    }

    /// Queues several frames in order (a packet and its attachments).
    pub fn send_all<'a>(&self, frames: impl IntoIterator<Item = &'a Frame>) -> Result<()> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        if self.0.outbox.push(frames.into_iter().cloned()) {
            self.close_with(CloseReason::TransportError);
        }
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
        let pushed = self.0.outbox.push_for_flush(frames.into_iter().cloned());
        if pushed.over {
            self.close_with(CloseReason::TransportError);
        } else if pushed.flush {
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
        if !matches!(p, Packet::Pong(_)) {
            self.refresh_ping_deadline();
        }
        match p {
            Packet::Text(t) => self.dispatch(Message::Text(t)),
            Packet::Binary(b) => self.dispatch(Message::Binary(b)),
            Packet::Pong(_) => {
                self.0.ping_deadline.store(0, Ordering::Release);
                self.0.pong.notify_one();
            }
            // In Engine.IO v4 only the server pings: the reference closes the session
            // ("invalid heartbeat direction"). The upgrade probe's ping is handled before a
            // packet gets here.
            Packet::Ping(_) => self.close_with(CloseReason::TransportError),
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
        self.0.ping_timeout.store(nanos(timeout), Ordering::Release);
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
                _ = tokio::time::sleep_until(beat.due().into()) => match self.beat(&mut beat) {
                    Beat::Ping => {
                        self.0.ping_refreshed.store(false, Ordering::Release);
                        let due = beat.due().saturating_duration_since(self.0.opened);
                        self.0.ping_deadline.store(nanos(due).max(1), Ordering::Release);
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

    /// The heartbeat's step now, once a packet that pushed the deadline back (see
    /// `refresh_ping_deadline`) is accounted for.
    ///
    /// While the backpressure gate is closed polysio reads nothing from the client, its pong
    /// included: the wait is ours, not the client's, so the deadline moves with it (the client
    /// has a whole ping timeout once reading resumes).
    fn beat(&self, beat: &mut Heartbeat) -> Beat {
        let d = self.0.ping_deadline.load(Ordering::Acquire);
        if d != 0 {
            beat.extend(self.0.opened + std::time::Duration::from_nanos(d));
        }
        let now = Instant::now();
        if d != 0 && !self.0.gate.is_open() {
            let timeout =
                std::time::Duration::from_nanos(self.0.ping_timeout.load(Ordering::Acquire));
            beat.extend(now + timeout);
            let due = nanos(now.saturating_duration_since(self.0.opened) + timeout).max(1);
            let _ =
                self.0
                    .ping_deadline
                    .compare_exchange(d, due, Ordering::AcqRel, Ordering::Acquire);
        }
        beat.on_time(now)
    }

    /// As engine.io 6.6.1x: the first packet other than a pong that arrives while a pong is
    /// awaited gives the client a whole ping timeout again (a busy client's pong may be queued
    /// behind its messages).
    fn refresh_ping_deadline(&self) {
        let s = &self.0;
        if s.ping_deadline.load(Ordering::Acquire) == 0 || s.ping_refreshed.load(Ordering::Acquire)
        {
            return;
        }
        if s.ping_refreshed.swap(true, Ordering::AcqRel) {
            return;
        }
        let timeout = std::time::Duration::from_nanos(s.ping_timeout.load(Ordering::Acquire));
        let due = nanos(s.opened.elapsed() + timeout).max(1);
        // Only while the ping is still out (a pong may have cleared it meanwhile).
        let cur = s.ping_deadline.load(Ordering::Acquire);
        if cur != 0 && due > cur {
            let _ = s
                .ping_deadline
                .compare_exchange(cur, due, Ordering::AcqRel, Ordering::Acquire);
        }
    }

    /// Counts one message handed to a slow consumer (a binding's event loop) until the guard
    /// is dropped, once the consumer has handled it. While `max_pending_messages` are held,
    /// polysio reads nothing more from this client (see [`EngineSocket::ready`]), so a
    /// flooding client meets TCP backpressure instead of filling the consumer's queue.
    pub fn hold(&self) -> Held {
        self.0.gate.hold()
    }

    /// True while fewer than `max_pending_messages` messages are held (or the session is
    /// closed).
    pub fn is_ready(&self) -> bool {
        self.0.gate.is_open() || self.is_closed()
    }

    /// Waits until [`EngineSocket::is_ready`]: the transports wait on it before they read the
    /// client's next message; a host that reads WebSocket messages or POST bodies itself
    /// awaits it too.
    pub async fn ready(&self) {
        if self.is_ready() {
            return;
        }
        let closed = self.0.close_notify.notified();
        if self.is_closed() {
            return;
        }
        tokio::select! {
            _ = self.0.gate.wait_open() => {}
            _ = closed => {}
        }
    }

    /// Closes the session with `ping timeout` if its ping's deadline has passed, whether or not
    /// the heartbeat task has run yet; true if the session is (now) closed.
    pub(crate) fn check_ping_timeout(&self) -> bool {
        let deadline = self.0.ping_deadline.load(Ordering::Acquire);
        if deadline != 0 {
            let late = self.0.opened.elapsed().as_nanos() >= u128::from(deadline);
            // Not while the gate keeps the pong unread (see `beat`).
            if late && !self.is_closed() && self.0.gate.is_open() {
                self.close_with(CloseReason::PingTimeout);
            }
        }
        self.is_closed()
    }
}
