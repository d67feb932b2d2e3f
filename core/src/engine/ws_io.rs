//! The byte stream under a server WebSocket: the TCP stream itself when the host hands it over
//! (our own accept loop, or hyper's upgrade on a plain TCP connection, whoever runs hyper), else
//! whatever byte stream the host has (hyper's upgraded IO over TLS, a TLS stream, any
//! `AsyncRead + AsyncWrite`; see [`super::host::WsTicket`]).
//!
//! With the TCP stream the connection task can wait for readability itself, so a wake-up that
//! only has frames to write does not poll the WebSocket reader (which costs tungstenite a pass
//! over its read buffer each time).
//!
//! Outgoing data frames are written here rather than through tungstenite: each frame's header is
//! built on the stack and sent with the frame's own bytes in one vectored write per batch, so a
//! broadcast's encoded packet is never copied per recipient in user space.
//!
//! Reads go through one scratch buffer per thread: tungstenite reads in small steps (its read
//! buffer is kept small, as every connection holds one), each step served from what one system
//! call read into the scratch buffer; the few bytes read past what tungstenite asked for are kept
//! for its next step. An idle connection holds no read-ahead at all.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;

use super::packet::{Frame, PacketType};

/// Slices per vectored write.
const MAX_SLICES: usize = 16;
/// Payloads up to this size are copied next to their header rather than given their own slice.
const SMALL: usize = 256;
/// The stack buffer headers and small payloads are packed into.
const PACKED: usize = 2048;
/// The longest WebSocket header of an unmasked frame.
const MAX_HEADER: usize = 10;

/// A data frame's opcode and payload; `None` for an Engine.IO noop, which is never sent on a
/// WebSocket (it only ends a pending poll).
fn parts(f: &Frame) -> Option<(Data, &[u8])> {
    match f {
        Frame::Text(t) if t.as_str() == "6" => None,
        Frame::Text(t) => Some((Data::Text, t.as_bytes())),
        Frame::Binary(b) => Some((Data::Binary, b)),
    }
}

fn header(kind: Data, len: usize, out: &mut [u8; MAX_HEADER]) -> usize {
    let h = FrameHeader {
        opcode: OpCode::Data(kind),
        ..FrameHeader::default()
    };
    let n = h.len(len as u64);
    // Writing into a 10-byte buffer cannot fail for an unmasked header.
    let _ = h.format(len as u64, &mut &mut out[..]);
    n
}

/// Bytes `f` takes on the wire.
fn wire_len(f: &Frame) -> usize {
    parts(f).map_or(0, |(kind, data)| {
        header(kind, data.len(), &mut [0; MAX_HEADER]) + data.len()
    })
}

/// Whether `f` is the Engine.IO noop.
pub(crate) fn is_noop(f: &Frame) -> bool {
    f == &Frame::text(PacketType::Noop, "")
}

/// The size of each thread's read scratch buffer (the most one read system call takes).
const SCRATCH: usize = 64 * 1024;

thread_local! {
    static SCRATCH_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

pub(crate) struct WsIo {
    stream: Stream,
    /// Bytes read from the stream that the reader has not asked for yet (unallocated when none).
    ahead: Vec<u8>,
    /// How much of `ahead` the reader has taken.
    ahead_pos: usize,
    /// Whether tungstenite may write now (its writes are refused, as would-block, while the
    /// session's flushes may be writing: see `run_websocket`).
    pub(crate) tungstenite_writes: bool,
}

/// A byte stream a host hands over for a WebSocket.
pub trait HostIo: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> HostIo for T {}

enum Stream {
    /// Shared with the flushes of the session's outbox (see `outbox`).
    Tcp(Arc<TcpStream>),
    Io(Box<dyn HostIo>),
}

impl WsIo {
    fn with(stream: Stream) -> WsIo {
        WsIo {
            stream,
            ahead: Vec::new(),
            ahead_pos: 0,
            tungstenite_writes: true,
        }
    }

    /// The stream of an upgraded request, and the bytes hyper read past the request: the TCP
    /// stream itself when hyper ran on one (tokio's, wrapped in hyper-util's `TokioIo`).
    pub(crate) fn from_upgraded(upgraded: Upgraded) -> (WsIo, Vec<u8>) {
        let upgraded = match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => {
                return (
                    WsIo::from_tcp(parts.io.into_inner()),
                    parts.read_buf.to_vec(),
                )
            }
            Err(upgraded) => upgraded,
        };
        match upgraded.downcast::<TokioIo<WriteDeadline>>() {
            Ok(parts) => (
                WsIo::from_tcp(parts.io.into_inner().tcp),
                parts.read_buf.to_vec(),
            ),
            Err(upgraded) => (WsIo::from_io(TokioIo::new(upgraded)), Vec::new()),
        }
    }

    /// A TCP stream the host gives up.
    pub(crate) fn from_tcp(stream: TcpStream) -> WsIo {
        WsIo::with(Stream::Tcp(Arc::new(stream)))
    }

    /// Any other byte stream.
    pub(crate) fn from_io(io: impl HostIo) -> WsIo {
        WsIo::with(Stream::Io(Box::new(io)))
    }

    /// Resolves once the stream may have something to read (at once when that cannot be told).
    pub(crate) fn read_ready(&self) -> impl std::future::Future<Output = ()> + Send + '_ {
        // Only the TCP stream is borrowed across the wait (hyper's IO is not `Sync`).
        let tcp = match &self.stream {
            Stream::Tcp(s) if self.ahead.is_empty() => Some(s),
            _ => None,
        };
        async move {
            if let Some(s) = tcp {
                // An error is the reader's to report.
                let _ = std::future::poll_fn(|cx| s.poll_read_ready(cx)).await;
            }
        }
    }
}

impl WsIo {
    /// Writes `frames` to the stream, as [`write_frames`].
    pub(crate) fn poll_write_frames(
        &mut self,
        cx: &mut Context<'_>,
        frames: &mut VecDeque<Frame>,
        offset: &mut usize,
    ) -> Poll<io::Result<()>> {
        write_frames(frames, offset, |slices| {
            Pin::new(&mut self.stream).poll_write_vectored(cx, slices)
        })
    }

    /// The TCP stream, for writes from other tasks (none for hyper's IO).
    pub(crate) fn tcp(&self) -> Option<Arc<TcpStream>> {
        match &self.stream {
            Stream::Tcp(s) => Some(s.clone()),
            Stream::Io(_) => None,
        }
    }
}

/// Writes `frames` as WebSocket data frames with `write` (one vectored write), removing each
/// once it is written; `offset` counts the bytes of the first one already written (a write may
/// stop in a frame).
///
/// Headers and small payloads are packed into one stack buffer (a slice costs the kernel more
/// than copying a few bytes); larger payloads go out from their own buffers.
pub(crate) fn write_frames(
    frames: &mut VecDeque<Frame>,
    offset: &mut usize,
    mut write: impl FnMut(&[IoSlice<'_>]) -> Poll<io::Result<usize>>,
) -> Poll<io::Result<()>> {
    while !frames.is_empty() {
        let mut packed = [0u8; PACKED];
        let mut used = 0;
        // Slices in wire order: a range of `packed` or a payload.
        let mut pieces: [Piece<'_>; MAX_SLICES] = [Piece::Packed(0, 0); MAX_SLICES];
        let mut n = 0;
        let mut skip = *offset;
        for f in frames.iter() {
            let Some((kind, data)) = parts(f) else {
                continue;
            };
            // Room for this frame's header and payload, packed or not.
            if used + MAX_HEADER + SMALL > PACKED || n + 2 > MAX_SLICES {
                break;
            }
            let mut head = [0u8; MAX_HEADER];
            let head_len = header(kind, data.len(), &mut head);
            let head = take_skip(&head[..head_len], &mut skip);
            pack(&mut packed, &mut used, &mut pieces, &mut n, head);
            let data = take_skip(data, &mut skip);
            if data.len() <= SMALL {
                pack(&mut packed, &mut used, &mut pieces, &mut n, data);
            } else {
                pieces[n] = Piece::Payload(data);
                n += 1;
            }
        }
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        for (slice, piece) in slices.iter_mut().zip(&pieces[..n]) {
            *slice = match *piece {
                Piece::Packed(a, b) => IoSlice::new(&packed[a..b]),
                Piece::Payload(p) => IoSlice::new(p),
            };
        }
        let written = if n == 0 {
            0
        } else {
            let w = ready!(write(&slices[..n]))?;
            if w == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            w
        };
        let mut done = *offset + written;
        while let Some(f) = frames.front() {
            let len = wire_len(f);
            if done < len {
                break;
            }
            done -= len;
            frames.pop_front();
        }
        *offset = done;
    }
    Poll::Ready(Ok(()))
}

#[derive(Clone, Copy)]
enum Piece<'a> {
    Packed(usize, usize),
    Payload(&'a [u8]),
}

/// What is left of `part` after skipping what was already written.
fn take_skip<'a>(part: &'a [u8], skip: &mut usize) -> &'a [u8] {
    let s = (*skip).min(part.len());
    *skip -= s;
    &part[s..]
}

/// Copies `bytes` into `packed`, extending the last piece when it ends there.
fn pack(
    packed: &mut [u8; PACKED],
    used: &mut usize,
    pieces: &mut [Piece<'_>],
    n: &mut usize,
    bytes: &[u8],
) {
    if bytes.is_empty() {
        return;
    }
    let end = *used + bytes.len();
    packed[*used..end].copy_from_slice(bytes);
    match pieces[..*n].last_mut() {
        Some(Piece::Packed(_, e)) if *e == *used => *e = end,
        _ => {
            pieces[*n] = Piece::Packed(*used, end);
            *n += 1;
        }
    }
    *used = end;
}

impl WsIo {
    /// Fills `buf` from the bytes read ahead, else from one read of the stream into this thread's
    /// scratch buffer, keeping what does not fit.
    fn read_into(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.ahead_pos < self.ahead.len() {
            let n = buf.remaining().min(self.ahead.len() - self.ahead_pos);
            buf.put_slice(&self.ahead[self.ahead_pos..self.ahead_pos + n]);
            self.ahead_pos += n;
            if self.ahead_pos == self.ahead.len() {
                // Freed, not kept: an idle connection holds no buffer.
                self.ahead = Vec::new();
                self.ahead_pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        if buf.remaining() >= SCRATCH {
            return Pin::new(&mut self.stream).poll_read(cx, buf);
        }
        SCRATCH_BUF.with(|scratch| {
            let Ok(mut scratch) = scratch.try_borrow_mut() else {
                // Only reachable if reading re-entered itself on this thread; read directly.
                return Pin::new(&mut self.stream).poll_read(cx, buf);
            };
            if scratch.is_empty() {
                scratch.resize(SCRATCH, 0);
            }
            let mut into = ReadBuf::new(&mut scratch[..]);
            ready!(Pin::new(&mut self.stream).poll_read(cx, &mut into))?;
            let got = into.filled();
            let n = buf.remaining().min(got.len());
            buf.put_slice(&got[..n]);
            if n < got.len() {
                self.ahead.extend_from_slice(&got[n..]);
            }
            Poll::Ready(Ok(()))
        })
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => loop {
                ready!(s.poll_read_ready(cx))?;
                // `try_read` clears the readiness when the socket has nothing after all.
                match s.try_read(buf.initialize_unfilled()) {
                    Ok(n) => {
                        buf.advance(n);
                        return Poll::Ready(Ok(()));
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Poll::Ready(Err(e)),
                }
            },
            Stream::Io(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

/// `MSG_NOSIGNAL`: a write to a connection the peer closed fails with `EPIPE` instead of
/// raising `SIGPIPE`, which kills a host process that did not ignore it (a C program, say).
#[cfg(any(target_os = "linux", target_os = "android"))]
const NO_SIGNAL: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const NO_SIGNAL: libc::c_int = 0;

/// A non-blocking vectored write to `s` (`WouldBlock` when its buffer is full), through
/// `sendmsg`: cheaper for the kernel than `writev` (no file-layer checks), and without `SIGPIPE`.
pub(crate) fn try_send_vectored(s: &TcpStream, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    s.try_io(tokio::io::Interest::WRITABLE, || {
        socket2::SockRef::from(s).send_vectored_with_flags(bufs, NO_SIGNAL)
    })
}

/// A write to the shared TCP stream once it is writable.
fn poll_tcp_write(
    s: &TcpStream,
    cx: &mut Context<'_>,
    mut write: impl FnMut(&TcpStream) -> io::Result<usize>,
) -> Poll<io::Result<usize>> {
    loop {
        ready!(s.poll_write_ready(cx))?;
        // `try_write*` clears the readiness when the socket's buffer is full after all.
        match write(s) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            r => return Poll::Ready(r),
        }
    }
}

impl AsyncRead for WsIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.get_mut().read_into(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => poll_tcp_write(s, cx, |s| try_send_vectored(s, &[IoSlice::new(buf)])),
            Stream::Io(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => poll_tcp_write(s, cx, |s| try_send_vectored(s, bufs)),
            Stream::Io(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Tcp(_) => true,
            Stream::Io(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(_) => Poll::Ready(Ok(())),
            Stream::Io(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            // The connection closes when the last holder drops the stream (tungstenite never
            // shuts the write side down on its own).
            Stream::Tcp(_) => Poll::Ready(Ok(())),
            Stream::Io(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// tungstenite's writes. While refused they return `Pending` without a wake-up: tungstenite only
/// writes on its own while reading (a pong or a close reply), which treats that as would-block
/// and keeps the bytes for the connection task's next write.
impl AsyncWrite for WsIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        if !me.tungstenite_writes {
            return Poll::Pending;
        }
        Pin::new(&mut me.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        if !me.tungstenite_writes {
            return Poll::Pending;
        }
        Pin::new(&mut me.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// A TCP connection of polysio's own listener while hyper serves it: a write that makes no
/// progress for `limit` fails with `TimedOut`, so a long-polling client that stops reading its
/// response loses the connection instead of holding it (and its task) for good, as a WebSocket
/// that stops reading does (`write_timeout`). An upgraded connection goes back to the bare TCP
/// stream (see [`WsIo::from_upgraded`]); the WebSocket bounds its writes itself.
pub(crate) struct WriteDeadline {
    tcp: TcpStream,
    limit: std::time::Duration,
    /// Running while a write is blocked.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl WriteDeadline {
    pub(crate) fn new(tcp: TcpStream, limit: std::time::Duration) -> WriteDeadline {
        WriteDeadline {
            tcp,
            limit,
            stalled: None,
        }
    }

    /// `Pending` from a write: starts the deadline, or fails once it has passed.
    fn blocked<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let limit = self.limit;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match std::future::Future::poll(stalled.as_mut(), cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::ErrorKind::TimedOut.into())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progress<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match r {
            Poll::Pending => self.blocked(cx),
            done => {
                self.stalled = None;
                done
            }
        }
    }
}

impl AsyncRead for WriteDeadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for WriteDeadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.tcp).poll_write(cx, buf);
        self.progress(cx, r)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        self.progress(cx, r)
    }
    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.tcp).poll_flush(cx);
        self.progress(cx, r)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.tcp).poll_shutdown(cx);
        self.progress(cx, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use tokio::io::AsyncReadExt;

    /// Small reads are served from one read of the stream, and nothing is kept once taken.
    #[tokio::test]
    async fn reads_ahead_and_keeps_nothing_after() {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut peer = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let mut io = WsIo {
            stream: Stream::Tcp(Arc::new(stream)),
            ahead: Vec::new(),
            ahead_pos: 0,
            tungstenite_writes: true,
        };
        let sent: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        peer.write_all(&sent).await.unwrap();
        let mut got = Vec::new();
        while got.len() < sent.len() {
            let mut step = [0u8; 100];
            let n = io.read(&mut step).await.unwrap();
            assert!(n > 0);
            got.extend_from_slice(&step[..n]);
        }
        assert_eq!(got, sent);
        assert_eq!(io.ahead.capacity(), 0, "the read-ahead is freed once taken");
        // Reads as large as the scratch buffer go straight to the stream.
        peer.write_all(&sent).await.unwrap();
        let mut big = vec![0u8; SCRATCH];
        let mut n = 0;
        while n < sent.len() {
            n += io.read(&mut big[n..]).await.unwrap();
        }
        assert_eq!(&big[..n], &sent[..]);
        assert_eq!(io.ahead.capacity(), 0);
    }

    /// Frames come out as tungstenite would write them, noops dropped, across partial writes.
    #[tokio::test]
    async fn frames_on_the_wire() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // A small send buffer, so the big frame goes out in several partial writes.
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.set_send_buffer_size(4096).unwrap();
        let writer = sock.connect(addr).await.unwrap();
        let (mut client, _) = listener.accept().await.unwrap();
        let big = "x".repeat(70_000);
        let mut frames: VecDeque<Frame> = [
            Frame::message("hi"),
            Frame::text(PacketType::Noop, ""),
            Frame::Binary(Bytes::from(vec![7u8; 300])),
            Frame::message(&big),
        ]
        .into();
        let expected: Vec<u8> = {
            let mut v = vec![0x81, 3, b'4', b'h', b'i', 0x82, 126, 1, 44];
            v.extend([7u8; 300]);
            v.extend([0x81, 127, 0, 0, 0, 0, 0, 1, 17, 113, b'4']);
            v.extend(big.as_bytes());
            v
        };
        let reader = tokio::spawn(async move {
            let mut got = vec![0u8; expected.len()];
            client.read_exact(&mut got).await.unwrap();
            assert_eq!(got, expected);
        });
        let mut io = WsIo {
            stream: Stream::Tcp(Arc::new(writer)),
            ahead: Vec::new(),
            ahead_pos: 0,
            tungstenite_writes: true,
        };
        let mut offset = 0;
        std::future::poll_fn(|cx| io.poll_write_frames(cx, &mut frames, &mut offset))
            .await
            .unwrap();
        assert!(frames.is_empty());
        reader.await.unwrap();
    }
}
