//! A session's outgoing frames: any thread queues them; the one transport task holding the
//! session's reader (a pending poll or the WebSocket) takes them all at once.
//!
//! One lock per queued packet and per batch taken, a waker stored only while the reader waits,
//! and no allocation once the two buffers (the queue and the reader's) have grown: the reader
//! swaps its emptied buffer for the queued one.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use super::packet::Frame;

#[derive(Default)]
pub(crate) struct Outbox {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    frames: VecDeque<Frame>,
    waker: Option<Waker>,
    /// Set by [`Outbox::wake`]: the next wait ends even without frames.
    woken: bool,
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while the lock is held; a poisoned queue is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues frames, in order, and wakes the reader.
    pub(crate) fn push(&self, frames: impl IntoIterator<Item = Frame>) {
        let waker = {
            let mut s = self.lock();
            s.frames.extend(frames);
            s.waker.take()
        };
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

    /// Moves every queued frame to the end of `out`; false if there was none.
    pub(crate) fn take(&self, out: &mut VecDeque<Frame>) -> bool {
        let mut s = self.lock();
        Self::move_into(&mut s, out)
    }

    fn move_into(s: &mut State, out: &mut VecDeque<Frame>) -> bool {
        if s.frames.is_empty() {
            return false;
        }
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
        if !s.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            s.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Waits for frames (or [`Outbox::wake`]) and moves them to `out`.
    pub(crate) async fn take_wait(&self, out: &mut VecDeque<Frame>) {
        std::future::poll_fn(|cx| self.poll_take(cx, out)).await
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
}
