//! Backpressure from a slow consumer: a count of the messages of one connection handed to it
//! (a Python, Node or C event loop) and not yet handled. The transports stop reading from the
//! connection while the count is at its bound, so the peer meets TCP backpressure instead of
//! the consumer's queue growing; nothing is dropped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// The count and its bound.
pub(crate) struct Gate {
    held: AtomicUsize,
    max: usize,
    /// Notified when `held` drops below `max`.
    unheld: Notify,
}

impl Gate {
    /// A gate that closes at `max` held messages (at least 1).
    pub(crate) fn new(max: usize) -> Arc<Gate> {
        Arc::new(Gate {
            held: AtomicUsize::new(0),
            max: max.max(1),
            unheld: Notify::new(),
        })
    }

    /// Counts one message until the guard is dropped.
    pub(crate) fn hold(self: &Arc<Self>) -> Held {
        self.hold_many(1)
    }

    /// Counts `n` messages (a batch read at once) until the guard is dropped.
    pub(crate) fn hold_many(self: &Arc<Self>, n: usize) -> Held {
        self.held.fetch_add(n, Ordering::AcqRel);
        Held(self.clone(), n)
    }

    /// True while fewer than `max` messages are held.
    pub(crate) fn is_open(&self) -> bool {
        self.held.load(Ordering::Acquire) < self.max
    }

    /// Waits until [`Gate::is_open`].
    pub(crate) async fn wait_open(&self) {
        while !self.is_open() {
            let unheld = self.unheld.notified();
            tokio::pin!(unheld);
            unheld.as_mut().enable();
            if self.is_open() {
                return;
            }
            unheld.await;
        }
    }
}

/// A message held by a slow consumer (see [`super::EngineSocket::hold`] and
/// [`crate::client::Manager::hold`]); dropping it, once the consumer has handled the message,
/// lets its connection be read again when under the bound.
#[must_use = "the message counts as pending until the guard is dropped"]
pub struct Held(Arc<Gate>, usize);

impl Drop for Held {
    fn drop(&mut self) {
        let before = self.0.held.fetch_sub(self.1, Ordering::AcqRel);
        if before >= self.0.max && before - self.1 < self.0.max {
            self.0.unheld.notify_waiters();
        }
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("held", &self.held.load(Ordering::Relaxed))
            .field("max", &self.max)
            .finish()
    }
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Held")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_gate_closes_at_its_bound_and_opens_when_a_message_is_let_go() {
        let gate = Gate::new(2);
        let a = gate.hold();
        let b = gate.hold();
        assert!(!gate.is_open());
        let g = gate.clone();
        let waiter = tokio::spawn(async move { g.wait_open().await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(a);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("opened")
            .unwrap();
        drop(b);
        assert!(gate.is_open());
    }
}
