//! A WebSocket's bytes crossing between a JavaScript socket and the core: the path of attached
//! servers whose socket cannot be taken over (an `https.Server`, `takeover: false`).
//!
//! The core sees an `AsyncRead + AsyncWrite` ([`CoreEnd`]); JavaScript sees a
//! [`NativeWsStream`]. Both share one small state under a mutex, so that the common case costs
//! no wake-up of the other side it does not need:
//!
//! - what the socket receives is given with a synchronous `write` (copied once, queued for the
//!   core's next read); it answers whether JavaScript may go on, and past [`INBOUND_HIGH`]
//!   queued bytes JavaScript pauses its socket until `drained` completes;
//! - what the core writes (one vectored write per batch of frames) is appended to one buffer
//!   that JavaScript takes whole with a synchronous `take`, or is handed to a waiting
//!   `readable` at once; past [`OUTBOUND_HIGH`] bytes not taken, the core's writes wait
//!   (JavaScript takes more only once its socket's `write` accepted the last, or after
//!   `drain`): backpressure both ways, with memory bounded by the two marks.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes};
use napi::bindgen_prelude::Buffer;
use napi_derive::napi;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::dispatch::{Completion, Dispatcher, Outcome};
use crate::host::{lock, native};

/// Received bytes the core has not read yet past which JavaScript pauses its socket; it resumes
/// once at most half of that is left.
const INBOUND_HIGH: usize = 64 * 1024;
/// Bytes to send that JavaScript has not taken yet past which the core's writes wait.
const OUTBOUND_HIGH: usize = 64 * 1024;

#[derive(Default)]
struct State {
    /// Received, not read by the core yet.
    inbound: VecDeque<Bytes>,
    inbound_bytes: usize,
    /// JavaScript's socket ended or closed: the core reads the end once `inbound` is read.
    inbound_end: bool,
    /// The core's read waiting for bytes.
    read_waker: Option<Waker>,
    /// JavaScript waiting (its socket paused) for the core to read.
    drained: Option<Completion>,
    /// Written by the core, not taken by JavaScript yet.
    outbound: Vec<u8>,
    /// The core shut its writing down, or dropped its end: JavaScript ends its socket once it
    /// took `outbound`.
    outbound_end: bool,
    /// The core's write waiting for JavaScript to take `outbound`.
    write_waker: Option<Waker>,
    /// JavaScript waiting for bytes to send.
    readable: Option<Completion>,
    /// JavaScript's socket is gone: what the core writes fails.
    host_gone: bool,
    /// The core dropped its end: what the socket receives goes nowhere.
    core_gone: bool,
}

type Shared = Arc<Mutex<State>>;

impl State {
    /// What the core wrote, for JavaScript, and the core's write to wake now that there is room.
    fn take_outbound(&mut self) -> (Vec<u8>, Option<Waker>) {
        (std::mem::take(&mut self.outbound), self.write_waker.take())
    }
}

/// What a waiting `readable` completes with: the bytes to send, or null at the end.
fn bytes_outcome(b: Option<Vec<u8>>) -> Outcome {
    native(b.map(Buffer::from))
}

/// A pair of connected ends.
pub(crate) fn pair(dispatcher: Arc<Dispatcher>) -> (CoreEnd, NativeWsStream) {
    let shared = Shared::default();
    (
        CoreEnd(shared.clone()),
        NativeWsStream { shared, dispatcher },
    )
}

/// The core's end (see the module's doc).
pub(crate) struct CoreEnd(Shared);

impl AsyncRead for CoreEnd {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut s = lock(&self.0);
        if s.inbound.is_empty() {
            if !s.inbound_end {
                s.read_waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            return Poll::Ready(Ok(()));
        }
        while buf.remaining() > 0 {
            let Some(front) = s.inbound.front_mut() else {
                break;
            };
            let n = front.len().min(buf.remaining());
            buf.put_slice(&front[..n]);
            front.advance(n);
            if front.is_empty() {
                s.inbound.pop_front();
            }
            s.inbound_bytes -= n;
        }
        let drained = if s.inbound_bytes <= INBOUND_HIGH / 2 {
            s.drained.take()
        } else {
            None
        };
        drop(s);
        if let Some(done) = drained {
            done.finish(Ok(Outcome::Args(Vec::new())));
        }
        Poll::Ready(Ok(()))
    }
}

impl CoreEnd {
    fn write_slices(
        &self,
        cx: &mut Context<'_>,
        slices: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut s = lock(&self.0);
        if s.host_gone {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if s.outbound.len() >= OUTBOUND_HIGH {
            s.write_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n: usize = slices.iter().map(|b| b.len()).sum();
        s.outbound.reserve(n);
        for b in slices {
            s.outbound.extend_from_slice(b);
        }
        let handed = match s.readable.take() {
            Some(done) if !s.outbound.is_empty() => Some((done, std::mem::take(&mut s.outbound))),
            other => {
                s.readable = other;
                None
            }
        };
        drop(s);
        if let Some((done, bytes)) = handed {
            done.finish(Ok(bytes_outcome(Some(bytes))));
        }
        Poll::Ready(Ok(n))
    }

    /// The end of what the core writes: a waiting `readable` completes with null.
    fn end_outbound(&self) {
        let mut s = lock(&self.0);
        s.outbound_end = true;
        let done = if s.outbound.is_empty() {
            s.readable.take()
        } else {
            None
        };
        drop(s);
        if let Some(done) = done {
            done.finish(Ok(bytes_outcome(None)));
        }
    }
}

impl AsyncWrite for CoreEnd {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.write_slices(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.write_slices(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        if lock(&self.0).host_gone {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.end_outbound();
        Poll::Ready(Ok(()))
    }
}

impl Drop for CoreEnd {
    fn drop(&mut self) {
        let drained = {
            let mut s = lock(&self.0);
            s.core_gone = true;
            s.inbound.clear();
            s.inbound_bytes = 0;
            s.drained.take()
        };
        if let Some(done) = drained {
            done.finish(Ok(Outcome::Args(Vec::new())));
        }
        self.end_outbound();
    }
}

/// A WebSocket's bytes crossing between JavaScript's socket and the core (see the module's
/// doc): JavaScript `write`s what its socket received and `take`s what to send.
#[napi]
pub struct NativeWsStream {
    shared: Shared,
    dispatcher: Arc<Dispatcher>,
}

#[napi]
impl NativeWsStream {
    /// Gives bytes the socket received. False when JavaScript should pause its socket until
    /// `drained` completes (the core has 64 KiB or more unread).
    #[napi]
    pub fn write(&self, chunk: Buffer) -> bool {
        let mut s = lock(&self.shared);
        if s.core_gone || s.inbound_end || chunk.is_empty() {
            return true;
        }
        s.inbound_bytes += chunk.len();
        s.inbound.push_back(Bytes::copy_from_slice(&chunk));
        let more = s.inbound_bytes < INBOUND_HIGH;
        let waker = s.read_waker.take();
        drop(s);
        if let Some(w) = waker {
            w.wake();
        }
        more
    }

    /// Completes (request `req`) once the core has read what was given, down to half the mark,
    /// or is gone.
    #[napi]
    pub fn drained(&self, req: f64) {
        let done = self.dispatcher.completion(req);
        let mut s = lock(&self.shared);
        if s.core_gone || s.inbound_bytes <= INBOUND_HIGH / 2 {
            drop(s);
            return done.finish(Ok(Outcome::Args(Vec::new())));
        }
        s.drained = Some(done);
    }

    /// The socket ended: the core reads the end of the stream.
    #[napi]
    pub fn end(&self) {
        let waker = {
            let mut s = lock(&self.shared);
            s.inbound_end = true;
            s.read_waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// The socket closed: the core reads the end of the stream, and what it writes fails.
    #[napi]
    pub fn destroy(&self) {
        let (r, w, readable) = {
            let mut s = lock(&self.shared);
            s.inbound_end = true;
            s.host_gone = true;
            s.outbound = Vec::new();
            (s.read_waker.take(), s.write_waker.take(), s.readable.take())
        };
        r.into_iter().chain(w).for_each(Waker::wake);
        if let Some(done) = readable {
            done.finish(Ok(bytes_outcome(None)));
        }
    }

    /// The bytes to send now (empty when there are none yet: then `readable`), or null once the
    /// core closed the WebSocket and everything was taken.
    #[napi]
    pub fn take(&self) -> Option<Buffer> {
        let mut s = lock(&self.shared);
        if s.outbound.is_empty() {
            return (!s.outbound_end).then(|| Vec::new().into());
        }
        let (bytes, waker) = s.take_outbound();
        drop(s);
        waker.into_iter().for_each(Waker::wake);
        Some(bytes.into())
    }

    /// Completes (request `req`) with the next bytes to send as soon as there are some, or with
    /// null once the core closed the WebSocket.
    #[napi]
    pub fn readable(&self, req: f64) {
        let done = self.dispatcher.completion(req);
        let mut s = lock(&self.shared);
        if s.outbound.is_empty() && !s.outbound_end {
            s.readable = Some(done);
            return;
        }
        let (bytes, waker) = s.take_outbound();
        drop(s);
        waker.into_iter().for_each(Waker::wake);
        done.finish(Ok(bytes_outcome((!bytes.is_empty()).then_some(bytes))));
    }
}
