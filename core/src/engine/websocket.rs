//! WebSocket sessions, whatever level the host hands the WebSocket over at: a byte stream (the
//! TCP socket itself or any `AsyncRead + AsyncWrite`), framed here by tungstenite, or messages
//! framed by the host ([`WsInbound`] / [`WsOutbound`]). Either way the upgrade probe
//! ([`super::rules::Probe`]) and its timers run here, on the server's runtime.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::WebSocketStream;

use super::host::WsParams;
use super::packet::{self, Frame, PacketType};
use super::rules::{Probe, ProbeInput, ProbeStep, PROBE_NOOP_INTERVAL};
use super::socket::{CloseReason, EngineSocket, T_WEBSOCKET};
use super::ws_io::{is_noop, WsIo};

/// Initial size of a WebSocket connection's read buffer (tungstenite's; it grows for larger
/// messages). Every connection holds one, idle or not, so it is small: tungstenite reads in steps
/// of this size, served from a per-thread read buffer (see `ws_io`), not one system call each.
const WS_READ_BUFFER: usize = 512;

/// Messages read from a WebSocket before the replies they caused are written.
const READ_BATCH: usize = 64;

/// What an accepted WebSocket is for.
pub(crate) enum Start {
    /// A new WebSocket-only session: opening it registers it and gives its open packet.
    Open(Box<dyn FnOnce() -> (EngineSocket, Frame) + Send>),
    /// The upgrade of a polling session (its `upgrading` flag is set).
    Upgrade(EngineSocket),
    /// A WebSocket to close at once (its session is upgrading or upgraded already).
    Ignore,
}

fn ws_config(max: usize) -> WebSocketConfig {
    // tungstenite zero-fills the free part of its read buffer each time the stream is polled
    // for reading, which every wake-up of the connection task does: its 128 KiB default made
    // each broadcast delivery write 128 KiB of zeros and every connection keep them resident.
    WebSocketConfig::default()
        .read_buffer_size(WS_READ_BUFFER)
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

/// Completes an upgrade whose probe passed: the session moves to the WebSocket, and a poll still
/// pending (it holds the queue) is woken (the WebSocket writers skip noops).
fn upgraded(session: &EngineSocket) {
    session.0.transport.store(T_WEBSOCKET, Ordering::Release);
    let _ = session.send(Frame::text(PacketType::Noop, ""));
}

fn noop_if_polled(session: &EngineSocket) {
    if session.poll_pending() {
        let _ = session.send(Frame::text(PacketType::Noop, ""));
    }
}

/// Runs a WebSocket framed by tungstenite over `io`, `read` being bytes the host read past the
/// request.
pub(crate) async fn run_stream(start: Start, params: WsParams, io: WsIo, read: Vec<u8>) {
    let config = Some(ws_config(params.max_message));
    let mut ws = if read.is_empty() {
        WebSocketStream::from_raw_socket(io, Role::Server, config).await
    } else {
        WebSocketStream::from_partially_read(io, read, Role::Server, config).await
    };
    match start {
        Start::Open(open) => {
            let (session, first) = open();
            run_websocket(session, ws, Some(first), params.write_timeout).await;
        }
        Start::Upgrade(session) => {
            if probe_stream(&mut ws, &session, params).await {
                upgraded(&session);
                run_websocket(session, ws, None, params.write_timeout).await;
            } else {
                session.0.upgrading.store(false, Ordering::Release);
                let _ = ws.close(None).await;
            }
        }
        Start::Ignore => {
            let _ = ws.close(None).await;
        }
    }
}

/// The probe on a tungstenite WebSocket; true once the upgrade is complete.
async fn probe_stream(
    ws: &mut WebSocketStream<WsIo>,
    session: &EngineSocket,
    params: WsParams,
) -> bool {
    let mut probe = Probe::new();
    let probed = tokio::time::timeout(params.upgrade_timeout, async {
        let mut flush: Option<tokio::time::Interval> = None;
        loop {
            let tick = async {
                match flush.as_mut() {
                    Some(i) => i.tick().await,
                    None => std::future::pending().await,
                }
            };
            let msg = tokio::select! {
                m = ws.next() => m,
                _ = tick => {
                    noop_if_polled(session);
                    continue;
                }
            };
            let input = match &msg {
                Some(Ok(WsMessage::Text(t))) => ProbeInput::Text(t.as_str()),
                Some(Ok(WsMessage::Binary(_))) => ProbeInput::Binary,
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => ProbeInput::Control,
                _ => return false,
            };
            match probe.on_message(input) {
                ProbeStep::AnswerProbe => {
                    if ws.send(WsMessage::text("3probe")).await.is_err() {
                        return false;
                    }
                    // A GET pending now gets its noop at once; later ones at the ticks. (Not
                    // `interval`, whose first tick is immediate but polled only after the next
                    // WebSocket message: a GET read meanwhile, racing `5`, got a noop.)
                    noop_if_polled(session);
                    flush = Some(tokio::time::interval_at(
                        tokio::time::Instant::now() + PROBE_NOOP_INTERVAL,
                        PROBE_NOOP_INTERVAL,
                    ));
                }
                ProbeStep::Upgraded => return true,
                ProbeStep::Wait => {}
                ProbeStep::Fail => return false,
            }
        }
    })
    .await;
    probed == Ok(true) && !session.is_closed()
}

/// Runs a WebSocket session: reads packets inline, writes queued frames, closes on errors.
///
/// On a TCP stream, flushes on other tasks may write queued frames too (see `outbox`): the task
/// writes only while it holds the outbox's writing token, and so does tungstenite (a pong or the
/// close frame it queued goes out with the task's next write).
///
/// Every write must finish within `write_timeout`: a client that stops reading is disconnected
/// then, and so is the connection of a session that ended while its write was blocked.
async fn run_websocket(
    session: EngineSocket,
    mut ws: WebSocketStream<WsIo>,
    first: Option<Frame>,
    write_timeout: Duration,
) {
    if let Some(f) = first {
        if bounded(write_timeout, ws.send(to_ws(f))).await.is_err() {
            session.close_with(CloseReason::TransportError);
            return;
        }
    }
    let mut queued = session.0.reader.lock().await;
    let outbox = &session.0.outbox;
    if let Some(tcp) = ws.get_ref().tcp() {
        ws.get_mut().tungstenite_writes = false;
        outbox.set_direct(Some(&tcp));
    }
    // Bytes of the first frame of `queued` already written (by a flush that stopped in it).
    let mut offset = 0;
    // Whether the WebSocket reader may hold messages already: at first (the upgrade probe or
    // hyper may have read past what they handled), and when the last batch was cut short.
    let mut more = true;
    // tungstenite has a reply of its own to send (a pong).
    let mut pong = false;
    // `close_with` wakes this loop through the outbox.
    while !session.is_closed() {
        tokio::select! {
            biased;
            m = async {
                // Nothing more is read while a slow consumer holds too many messages.
                session.ready().await;
                if !more {
                    ws.get_ref().read_ready().await;
                }
                ws.next().await
            } => {
                // Held while the messages are handled, so the replies they queue do not wake
                // this task again: they are written after the batch. While a flush writes, it
                // leaves what it did not write (and the wake-up) to us.
                let held = outbox.try_acquire(&mut queued, &mut offset);
                pong |= on_ws_message(&session, m);
                // Handle what has already arrived, then send every reply in one write.
                more = false;
                for i in 1.. {
                    if session.is_closed() {
                        break;
                    }
                    if i == READ_BATCH || !session.is_ready() {
                        more = true;
                        break;
                    }
                    match ws.next().now_or_never() {
                        Some(m) => pong |= on_ws_message(&session, m),
                        None => break,
                    }
                }
                if held
                    && write_held(&mut ws, &session, &mut queued, &mut offset, &mut pong, write_timeout)
                        .await
                        .is_err()
                {
                    session.close_with(CloseReason::TransportError);
                }
            }
            got = std::future::poll_fn(|cx| outbox.poll_acquire(cx, &mut queued, &mut offset, pong)) => {
                if got
                    && write_held(&mut ws, &session, &mut queued, &mut offset, &mut pong, write_timeout)
                        .await
                        .is_err()
                {
                    session.close_with(CloseReason::TransportError);
                }
            }
        }
    }
    // Flush what was queued before the close, then close the WebSocket. Once the task holds
    // the token and the stream is withdrawn, no flush writes to it any more.
    while !std::future::poll_fn(|cx| outbox.poll_acquire(cx, &mut queued, &mut offset, true)).await
    {
    }
    outbox.set_direct(None);
    ws.get_mut().tungstenite_writes = true;
    if bounded(
        write_timeout,
        write_frames_ws(&mut ws, &mut queued, &mut offset),
    )
    .await
    .is_ok()
    {
        let _ = bounded(write_timeout, ws.close(None)).await;
    }
}

/// `write`, failed with `TimedOut` unless it completes within `limit`.
async fn bounded<T>(
    limit: Duration,
    write: impl std::future::Future<Output = Result<T, tungstenite::Error>>,
) -> Result<T, tungstenite::Error> {
    match tokio::time::timeout(limit, write).await {
        Ok(r) => r,
        Err(_) => Err(tungstenite::Error::Io(std::io::ErrorKind::TimedOut.into())),
    }
}

fn to_ws(f: Frame) -> WsMessage {
    match f {
        Frame::Text(t) => WsMessage::Text(t),
        Frame::Binary(b) => WsMessage::Binary(b),
    }
}

/// Handles one WebSocket read; true for a ping (tungstenite queued the pong).
fn on_ws_message(session: &EngineSocket, m: Option<Result<WsMessage, tungstenite::Error>>) -> bool {
    match m {
        Some(Ok(WsMessage::Text(t))) => deliver(session, WsInput::Text(&t)),
        Some(Ok(WsMessage::Binary(b))) => deliver(session, WsInput::Binary(b)),
        Some(Ok(WsMessage::Ping(_))) => return true,
        Some(Ok(WsMessage::Pong(_) | WsMessage::Frame(_))) => {}
        Some(Ok(WsMessage::Close(_))) | None => deliver(session, WsInput::Close),
        Some(Err(e)) => session.close_with(read_error_reason(&e)),
    }
    false
}

/// The close reason for a failed WebSocket read, as engine.io gives it: the connection going
/// away without a close frame (a reset, an EOF) is `transport close` (ws reports it as a 1006
/// close); a protocol violation (a bad frame, invalid UTF-8, an oversized message) is
/// `transport error`.
fn read_error_reason(e: &tungstenite::Error) -> CloseReason {
    use tungstenite::error::ProtocolError;
    match e {
        tungstenite::Error::ConnectionClosed
        | tungstenite::Error::AlreadyClosed
        | tungstenite::Error::Io(_)
        | tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            CloseReason::TransportClose
        }
        _ => CloseReason::TransportError,
    }
}

/// Handles one message of a WebSocket session, however it was framed.
fn deliver(session: &EngineSocket, input: WsInput<'_>) {
    match input {
        WsInput::Text(t) => match packet::decode_text(t) {
            Ok(p) => session.on_packet(p),
            Err(_) => session.close_with(CloseReason::ParseError),
        },
        WsInput::Binary(b) => session.on_packet(packet::Packet::Binary(b)),
        WsInput::Control => {}
        WsInput::Close => session.close_with(CloseReason::TransportClose),
        WsInput::Error => session.close_with(CloseReason::TransportError),
    }
}

/// Writes every queued frame while the task holds the writing token, then gives it back:
/// tungstenite's own output first (a pong), then the frames in vectored writes straight from
/// their buffers. On an error the task keeps the token (the session closes).
async fn write_held(
    ws: &mut WebSocketStream<WsIo>,
    session: &EngineSocket,
    queued: &mut VecDeque<Frame>,
    offset: &mut usize,
    pong: &mut bool,
    limit: Duration,
) -> Result<(), tungstenite::Error> {
    loop {
        if std::mem::take(pong) {
            let before = ws.get_ref().tungstenite_writes;
            ws.get_mut().tungstenite_writes = true;
            let r = bounded(limit, ws.flush()).await;
            ws.get_mut().tungstenite_writes = before;
            r?;
        }
        bounded(limit, write_frames_ws(ws, queued, offset)).await?;
        if !session.0.outbox.release(queued) {
            return Ok(());
        }
    }
}

/// Writes `queued` (its first frame from `offset`).
async fn write_frames_ws(
    ws: &mut WebSocketStream<WsIo>,
    queued: &mut VecDeque<Frame>,
    offset: &mut usize,
) -> Result<(), tungstenite::Error> {
    if !tokio::io::AsyncWrite::is_write_vectored(ws.get_ref()) {
        // Not a TCP stream, so no flush ever stopped in a frame: `offset` is 0.
        while let Some(f) = queued.pop_front() {
            if !is_noop(&f) {
                ws.feed(to_ws(f)).await?;
            }
        }
        return ws.flush().await;
    }
    let io = ws.get_mut();
    std::future::poll_fn(|cx| io.poll_write_frames(cx, queued, offset)).await?;
    Ok(())
}

/// A WebSocket message a host that frames WebSockets itself received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WsInput<'a> {
    /// A text message.
    Text(&'a str),
    /// A binary message.
    Binary(Bytes),
    /// A ping or pong (the host answers pings itself).
    Control,
    /// The WebSocket closed, or the connection went away without a close (`transport close`).
    Close,
    /// The WebSocket failed: a protocol violation, a message over the limit (`transport
    /// error`, as engine.io reports a WebSocket's error).
    Error,
}

/// The receiving half of a WebSocket framed by the host: give it every message, in order, from
/// any thread; each is handled at once, on the calling thread. Dropping the last clone counts as
/// [`WsInput::Close`].
#[derive(Clone)]
pub struct WsInbound(Arc<Inbound>);

/// The sending half: yields the frames to send, in batches (everything queued at the time),
/// until `None`, when the host closes the WebSocket. Noops are never yielded.
pub struct WsOutbound {
    rx: mpsc::Receiver<Vec<Frame>>,
}

struct Inbound(Arc<Messages>);

impl Drop for Inbound {
    fn drop(&mut self) {
        self.0.receive(WsInput::Close);
    }
}

/// The state shared by both halves and the task that drives them.
struct Messages {
    state: Mutex<MsgState>,
    changed: Notify,
}

struct MsgState {
    phase: Phase,
    /// Replies of the probe, sent by the task.
    replies: Vec<Frame>,
}

enum Phase {
    Probing(Probe, EngineSocket),
    Open(EngineSocket),
    Done,
}

impl Messages {
    fn lock(&self) -> MutexGuard<'_, MsgState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn receive(&self, input: WsInput<'_>) {
        let mut st = self.lock();
        let session = match &mut st.phase {
            Phase::Done => return,
            Phase::Open(s) => s.clone(),
            Phase::Probing(probe, s) => {
                let s = s.clone();
                let step = match &input {
                    WsInput::Text(t) => probe.on_message(ProbeInput::Text(t)),
                    WsInput::Binary(_) => probe.on_message(ProbeInput::Binary),
                    WsInput::Control => ProbeStep::Wait,
                    WsInput::Close | WsInput::Error => ProbeStep::Fail,
                };
                match step {
                    ProbeStep::AnswerProbe => {
                        st.replies.push(Frame::text(PacketType::Pong, "probe"))
                    }
                    ProbeStep::Upgraded if !s.is_closed() => {
                        upgraded(&s);
                        st.phase = Phase::Open(s);
                    }
                    ProbeStep::Upgraded | ProbeStep::Fail => {
                        s.0.upgrading.store(false, Ordering::Release);
                        st.phase = Phase::Done;
                    }
                    ProbeStep::Wait => return,
                }
                drop(st);
                self.changed.notify_waiters();
                return;
            }
        };
        if matches!(input, WsInput::Close | WsInput::Error) {
            st.phase = Phase::Done;
        }
        // Not held while the message is handled: handlers may send, close or take long.
        drop(st);
        deliver(&session, input);
    }
}

impl WsInbound {
    /// Handles one message the host received.
    pub fn receive(&self, input: WsInput<'_>) {
        self.0 .0.receive(input)
    }

    /// Waits until the session may take another message: a host awaits it before it reads the
    /// next one, so a client whose messages a slow consumer still holds meets TCP
    /// backpressure (see [`EngineSocket::ready`]). At once while probing or once closed.
    pub async fn ready(&self) {
        let session = match &self.0 .0.lock().phase {
            Phase::Open(s) => s.clone(),
            _ => return,
        };
        session.ready().await
    }
}

impl WsOutbound {
    /// The next batch of frames to send; `None`: close the WebSocket.
    pub async fn next(&mut self) -> Option<Vec<Frame>> {
        self.rx.recv().await
    }

    /// Polls for the next batch (see [`WsOutbound::next`]).
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Vec<Frame>>> {
        self.rx.poll_recv(cx)
    }

    /// The next batch if one is ready now.
    pub fn try_next(&mut self) -> Option<Option<Vec<Frame>>> {
        match self.rx.try_recv() {
            Ok(b) => Some(Some(b)),
            Err(mpsc::error::TryRecvError::Empty) => None,
            Err(mpsc::error::TryRecvError::Disconnected) => Some(None),
        }
    }
}

/// Starts a WebSocket framed by the host.
pub(crate) fn run_messages(
    start: Start,
    params: WsParams,
    runtime: &tokio::runtime::Handle,
) -> (WsInbound, WsOutbound) {
    // One batch in flight: the task waits until the host took the last one.
    let (tx, rx) = mpsc::channel(1);
    let (phase, first) = match start {
        Start::Open(open) => {
            let (session, first) = open();
            (Phase::Open(session), Some(first))
        }
        Start::Upgrade(session) => (Phase::Probing(Probe::new(), session), None),
        Start::Ignore => (Phase::Done, None),
    };
    let shared = Arc::new(Messages {
        state: Mutex::new(MsgState {
            phase,
            replies: Vec::new(),
        }),
        changed: Notify::new(),
    });
    runtime.spawn(pump(shared.clone(), first, params, tx));
    (WsInbound(Arc::new(Inbound(shared))), WsOutbound { rx })
}

/// Sends what a host-framed WebSocket must send: the open packet or the probe's replies, then the
/// session's frames, until the session ends.
async fn pump(
    shared: Arc<Messages>,
    first: Option<Frame>,
    params: WsParams,
    out: mpsc::Sender<Vec<Frame>>,
) {
    if let Some(f) = first {
        if out.send(vec![f]).await.is_err() {
            if let Phase::Open(s) = &shared.lock().phase {
                s.close_with(CloseReason::TransportError);
            }
            return;
        }
    }
    let deadline = Instant::now() + params.upgrade_timeout;
    let mut next_noop: Option<Instant> = None;
    let session = loop {
        let changed = shared.changed.notified();
        let (replies, phase) = {
            let mut st = shared.lock();
            let replies = std::mem::take(&mut st.replies);
            let phase = match &st.phase {
                Phase::Open(s) => Ok(s.clone()),
                Phase::Done => Err(None),
                Phase::Probing(p, s) => Err(Some((p.probed(), s.clone()))),
            };
            (replies, phase)
        };
        if !replies.is_empty() && out.send(replies).await.is_err() {
            fail_probe(&shared);
            return;
        }
        let (probed, session) = match phase {
            Ok(s) => break s,
            Err(None) => return,
            Err(Some(x)) => x,
        };
        if session.is_closed() {
            fail_probe(&shared);
            continue;
        }
        if probed && next_noop.is_none() {
            // As on polysio's own listener: a GET pending now at once, later ones at the ticks.
            noop_if_polled(&session);
            next_noop = Some(Instant::now() + PROBE_NOOP_INTERVAL);
        }
        let closed = session.0.close_notify.notified();
        tokio::select! {
            _ = changed => {}
            _ = closed => {}
            _ = tokio::time::sleep_until(deadline) => fail_probe(&shared),
            _ = async {
                match next_noop {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            } => {
                noop_if_polled(&session);
                next_noop = Some(Instant::now() + PROBE_NOOP_INTERVAL);
            }
        }
    };
    let mut queued = session.0.reader.lock().await;
    loop {
        let closed = session.is_closed();
        if closed {
            session.0.outbox.take(&mut queued);
        } else {
            session.0.outbox.take_wait(&mut queued).await;
        }
        let batch: Vec<Frame> = queued.drain(..).filter(|f| !is_noop(f)).collect();
        // A host that does not take what is sent within the write timeout has a client that
        // does not read.
        let sent = match tokio::time::timeout(params.write_timeout, out.send(batch)).await {
            Ok(r) => r.is_ok(),
            Err(_) => false,
        };
        if !sent {
            session.close_with(CloseReason::TransportError);
            return;
        }
        if closed {
            return;
        }
    }
}

/// Ends a probe that has not completed (timeout, closed session, host gone).
fn fail_probe(shared: &Messages) {
    let mut st = shared.lock();
    if let Phase::Probing(_, s) = &st.phase {
        s.0.upgrading.store(false, Ordering::Release);
        st.phase = Phase::Done;
    }
}
