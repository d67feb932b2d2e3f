//! A session's outgoing frames: any thread queues them; the one transport task holding the
//! session's reader (a pending poll or the WebSocket) takes them all at once.
//!
//! One lock per queued packet and per batch taken, a waker stored only while the reader waits,
//! and no allocation once the two buffers (the queue and the reader's) have grown: the reader
//! swaps its emptied buffer for the queued one.
//!
//! A WebSocket on a TCP stream may also be written by a flush ([`Outbox::flush`]) on whatever
//! thread runs it: a broadcast queues its frame to every target without waking their tasks and
//! then flushes the targets from a few tasks (see [`super::socket::FlushBatch`]), each frame
//! batch written with one non-blocking vectored write. Whoever writes holds the writing token
//! ([`State::writing`]), so frames go out in order; a flush that cannot finish (the socket's
//! buffer is full) puts what is left back at the front of the queue and wakes the connection
//! task, which waits until the socket is writable.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};

use tokio::net::TcpStream;

use super::packet::Frame;
use super::ws_io::{try_send_vectored, write_frames};

pub(crate) struct Outbox {
    state: Mutex<State>,
    /// Most bytes queued and not yet taken (see [`Outbox::cost`]).
    limit: usize,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox::new(usize::MAX)
    }
}

/// What queuing frames found: whether a flush must run, and whether the queue is over its
/// bound (the session must close).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Pushed {
    pub(crate) flush: bool,
    pub(crate) over: bool,
}

#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum Writer {
    #[default]
    None,
    /// The connection task.
    Task,
    /// A flush.
    Flush,
}

#[derive(Default)]
struct State {
    frames: VecDeque<Frame>,
    waker: Option<Waker>,
    /// Set by [`Outbox::wake`]: the next wait ends even without frames.
    woken: bool,
    /// The WebSocket's TCP stream while flushes may write to it. Weak: the connection task
    /// owns it, and when the task is gone (a runtime shut down) the connection must close.
    direct: Option<Weak<TcpStream>>,
    /// Who is writing frames to the socket now; the others leave them queued.
    writing: Writer,
    /// The connection task waits for a flush to give the token back.
    wanted: bool,
    /// A flush of this outbox is pending.
    scheduled: bool,
    /// Bytes of the first queued frame already written (a flush stopped in it).
    offset: usize,
    /// The cost of `frames` (see [`Outbox::cost`]); may overcount what a flush that stopped
    /// part-way had written already.
    bytes: usize,
}

thread_local! {
    /// The emptied frame buffer a flush swaps for a session's queue (no allocation per flush).
    static SPARE: RefCell<VecDeque<Frame>> = const { RefCell::new(VecDeque::new()) };
}

impl Outbox {
    /// An outbox holding at most `limit` bytes not yet taken.
    pub(crate) fn new(limit: usize) -> Outbox {
        Outbox {
            state: Mutex::default(),
            limit,
        }
    }

    /// What a queued frame counts for: its bytes plus the bookkeeping around them.
    fn cost(f: &Frame) -> usize {
        f.len() + 64
    }

    fn extend(s: &mut State, frames: impl IntoIterator<Item = Frame>) {
        for f in frames {
            s.bytes = s.bytes.saturating_add(Self::cost(&f));
            s.frames.push_back(f);
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while the lock is held; a poisoned queue is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues frames, in order, and wakes the reader (unless the connection task holds the
    /// writing token: it takes them when it gives the token back). True when the queue is
    /// over its bound.
    pub(crate) fn push(&self, frames: impl IntoIterator<Item = Frame>) -> bool {
        let (waker, over) = {
            let mut s = self.lock();
            Self::extend(&mut s, frames);
            let over = s.bytes > self.limit;
            if s.writing == Writer::Task {
                return over;
            }
            (s.waker.take(), over)
        };
        if let Some(w) = waker {
            w.wake();
        }
        over
    }

    /// Queues frames for a flush: true when the caller must run [`Outbox::flush`] (soon) for
    /// them to go out. Without a direct stream, like [`Outbox::push`].
    pub(crate) fn push_for_flush(&self, frames: impl IntoIterator<Item = Frame>) -> Pushed {
        let (waker, over) = {
            let mut s = self.lock();
            Self::extend(&mut s, frames);
            let over = s.bytes > self.limit;
            if s.direct.is_some() {
                // A writer sees the new frames when it gives the token back.
                let flush = s.writing == Writer::None && !s.scheduled;
                s.scheduled |= flush;
                return Pushed { flush, over };
            }
            (s.waker.take(), over)
        };
        if let Some(w) = waker {
            w.wake();
        }
        Pushed { flush: false, over }
    }

    /// Lets flushes write to `stream` (`None`: no longer). Called by the connection task.
    pub(crate) fn set_direct(&self, stream: Option<&Arc<TcpStream>>) {
        self.lock().direct = stream.map(Arc::downgrade);
    }

    /// Writes the queued frames straight to the socket, unless a writer is at it already; what
    /// cannot be written now is left to the connection task.
    pub(crate) fn flush(&self) {
        let (stream, mut frames, mut offset, taken) = {
            let mut s = self.lock();
            s.scheduled = false;
            if s.writing != Writer::None || s.frames.is_empty() {
                return;
            }
            let Some(stream) = s.direct.as_ref().and_then(Weak::upgrade) else {
                let waker = s.waker.take();
                drop(s);
                if let Some(w) = waker {
                    w.wake();
                }
                return;
            };
            s.writing = Writer::Flush;
            let spare = SPARE.with(|sp| sp.take());
            let frames = std::mem::replace(&mut s.frames, spare);
            let bytes = std::mem::take(&mut s.bytes);
            (stream, frames, std::mem::take(&mut s.offset), bytes)
        };
        let done = write_frames(&mut frames, &mut offset, |slices| {
            match try_send_vectored(&stream, slices) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Poll::Pending,
                r => Poll::Ready(r),
            }
        });
        let waker = {
            let mut s = self.lock();
            s.writing = Writer::None;
            let finished = matches!(done, Poll::Ready(Ok(())));
            if !finished {
                // Left to the connection task (which also reports an error), in order.
                frames.append(&mut s.frames);
                std::mem::swap(&mut frames, &mut s.frames);
                s.offset = offset;
                s.bytes = s.bytes.saturating_add(taken);
            }
            let wake = !finished || std::mem::take(&mut s.wanted) || !s.frames.is_empty();
            if wake {
                s.waker.take()
            } else {
                None
            }
        };
        if frames.capacity() > 0 {
            SPARE.with(|sp| *sp.borrow_mut() = frames);
        }
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Ends the reader's wait without queuing anything (the session closed).
    pub(crate) fn wake(&self) {
        let waker = {
            let mut s = self.lock();
            s.woken = true;
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Moves every queued frame to the end of `out`; false if there was none. For readers that
    /// never share the socket with flushes (a pending poll).
    pub(crate) fn take(&self, out: &mut VecDeque<Frame>) -> bool {
        let mut s = self.lock();
        Self::move_into(&mut s, out)
    }

    fn move_into(s: &mut State, out: &mut VecDeque<Frame>) -> bool {
        if s.frames.is_empty() {
            return false;
        }
        s.bytes = 0;
        if out.is_empty() {
            std::mem::swap(&mut s.frames, out);
        } else {
            out.append(&mut s.frames);
        }
        true
    }

    /// Like [`Outbox::take`], waiting until there is something to take (or [`Outbox::wake`]).
    pub(crate) fn poll_take(&self, cx: &mut Context<'_>, out: &mut VecDeque<Frame>) -> Poll<()> {
        let mut s = self.lock();
        if Self::move_into(&mut s, out) || std::mem::take(&mut s.woken) {
            return Poll::Ready(());
        }
        Self::register(&mut s, cx);
        Poll::Pending
    }

    fn register(s: &mut State, cx: &mut Context<'_>) {
        if !s.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            s.waker = Some(cx.waker().clone());
        }
    }

    /// Waits for frames (or [`Outbox::wake`]) and moves them to `out`.
    pub(crate) async fn take_wait(&self, out: &mut VecDeque<Frame>) {
        std::future::poll_fn(|cx| self.poll_take(cx, out)).await
    }

    /// The connection task takes the writing token with every queued frame (moved to `out`,
    /// with the bytes of the first already written in `offset`), once no flush holds it and
    /// there are frames (or at once when `need`). `Ready(false)`: woken by [`Outbox::wake`]
    /// without the token.
    pub(crate) fn poll_acquire(
        &self,
        cx: &mut Context<'_>,
        out: &mut VecDeque<Frame>,
        offset: &mut usize,
        need: bool,
    ) -> Poll<bool> {
        let mut s = self.lock();
        if s.writing != Writer::Flush && (need || !s.frames.is_empty()) {
            s.writing = Writer::Task;
            s.wanted = false;
            Self::move_into(&mut s, out);
            *offset += std::mem::take(&mut s.offset);
            return Poll::Ready(true);
        }
        if std::mem::take(&mut s.woken) {
            return Poll::Ready(false);
        }
        if s.writing == Writer::Flush {
            s.wanted = true;
        }
        Self::register(&mut s, cx);
        Poll::Pending
    }

    /// Like [`Outbox::poll_acquire`] with `need`, without waiting: false while a flush holds
    /// the token (it wakes the task when done).
    pub(crate) fn try_acquire(&self, out: &mut VecDeque<Frame>, offset: &mut usize) -> bool {
        let mut s = self.lock();
        if s.writing == Writer::Flush {
            s.wanted = true;
            return false;
        }
        s.writing = Writer::Task;
        Self::move_into(&mut s, out);
        *offset += std::mem::take(&mut s.offset);
        true
    }

    /// The connection task is done with what it took: true with the frames queued since moved
    /// to `out` (it keeps the token), false once it gave the token back.
    pub(crate) fn release(&self, out: &mut VecDeque<Frame>) -> bool {
        let mut s = self.lock();
        if Self::move_into(&mut s, out) {
            return true;
        }
        s.writing = Writer::None;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::packet::PacketType;

    /// A reader task waiting on `outbox`; returns what it took.
    fn reader(outbox: &std::sync::Arc<Outbox>) -> tokio::task::JoinHandle<VecDeque<Frame>> {
        let o = outbox.clone();
        tokio::spawn(async move {
            let mut got = VecDeque::new();
            o.take_wait(&mut got).await;
            got
        })
    }

    #[tokio::test]
    async fn frames_come_out_in_order_and_wake_the_reader() {
        let outbox = std::sync::Arc::new(Outbox::default());
        let mut out = VecDeque::new();
        assert!(!outbox.take(&mut out));
        let r = reader(&outbox);
        tokio::task::yield_now().await;
        outbox.push([Frame::message("a"), Frame::message("b")]);
        assert_eq!(r.await.unwrap(), [Frame::message("a"), Frame::message("b")]);
        let r = reader(&outbox);
        tokio::task::yield_now().await;
        outbox.wake();
        assert!(r.await.unwrap().is_empty(), "woken without frames");
        outbox.push([Frame::message("c")]);
        outbox.push([Frame::text(PacketType::Ping, "")]);
        out.push_back(Frame::message("z"));
        assert!(outbox.take(&mut out));
        let all: Vec<Frame> = out.into_iter().collect();
        assert_eq!(
            all,
            [
                Frame::message("z"),
                Frame::message("c"),
                Frame::text(PacketType::Ping, "")
            ]
        );
    }

    #[test]
    fn the_queue_is_bounded_in_bytes_until_taken() {
        // Each frame costs its length plus 64: two of 36 bytes fill a 200-byte bound exactly.
        let outbox = Outbox::new(200);
        let f = Frame::message(&"x".repeat(35));
        assert!(!outbox.push([f.clone()]));
        assert!(!outbox.push([f.clone()]));
        assert!(outbox.push([f.clone()]), "a third frame is over the bound");
        let mut got = VecDeque::new();
        assert!(outbox.take(&mut got));
        assert_eq!(got.len(), 3);
        assert!(!outbox.push([f]), "taking the frames frees the bound");
    }
}
