//! The byte stream under a server WebSocket: the TCP stream itself when hyper hands it back
//! after the upgrade (our own accept loop), else hyper's upgraded IO (a request routed to
//! [`super::EngineServer::handle`] by another HTTP server).
//!
//! With the TCP stream the connection task can wait for readability itself, so a wake-up that
//! only has frames to write does not poll the WebSocket reader (which costs tungstenite a pass
//! over its read buffer each time).
//!
//! Outgoing data frames are written here rather than through tungstenite: each frame's header is
//! built on the stack and sent with the frame's own bytes in one vectored write per batch, so a
//! broadcast's encoded packet is never copied per recipient in user space.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
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

pub(crate) enum WsIo {
    Tcp(TcpStream),
    Upgraded(TokioIo<Upgraded>),
}

impl WsIo {
    /// The stream of an upgraded request, and the bytes hyper read past the request.
    pub(crate) fn new(upgraded: Upgraded) -> (WsIo, Vec<u8>) {
        match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => (WsIo::Tcp(parts.io.into_inner()), parts.read_buf.to_vec()),
            Err(upgraded) => (WsIo::Upgraded(TokioIo::new(upgraded)), Vec::new()),
        }
    }

    /// Resolves once the stream may have something to read (at once when that cannot be told).
    pub(crate) fn read_ready(&self) -> impl std::future::Future<Output = ()> + Send + '_ {
        // Only the TCP stream is borrowed across the wait (hyper's IO is not `Sync`).
        let tcp = match self {
            WsIo::Tcp(s) => Some(s),
            WsIo::Upgraded(_) => None,
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
    /// Writes `frames` as WebSocket data frames, removing each once it is written; `offset`
    /// counts the bytes of the first one already written (a write may stop in a frame).
    ///
    /// Headers and small payloads are packed into one stack buffer (a slice costs the kernel
    /// more than copying a few bytes); larger payloads go out from their own buffers.
    pub(crate) fn poll_write_frames(
        &mut self,
        cx: &mut Context<'_>,
        frames: &mut VecDeque<Frame>,
        offset: &mut usize,
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
                let w = ready!(Pin::new(&mut *self).poll_write_vectored(cx, &slices[..n]))?;
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

impl AsyncRead for WsIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WsIo::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            WsIo::Upgraded(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WsIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WsIo::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            WsIo::Upgraded(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WsIo::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            WsIo::Upgraded(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            WsIo::Tcp(s) => s.is_write_vectored(),
            WsIo::Upgraded(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WsIo::Tcp(s) => Pin::new(s).poll_flush(cx),
            WsIo::Upgraded(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WsIo::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            WsIo::Upgraded(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use tokio::io::AsyncReadExt;

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
        let mut io = WsIo::Tcp(writer);
        let mut offset = 0;
        std::future::poll_fn(|cx| io.poll_write_frames(cx, &mut frames, &mut offset))
            .await
            .unwrap();
        assert!(frames.is_empty());
        reader.await.unwrap();
    }
}
