//! The byte stream under a server WebSocket: the TCP stream itself when hyper hands it back
//! after the upgrade (our own accept loop), else hyper's upgraded IO (a request routed to
//! [`super::EngineServer::handle`] by another HTTP server).
//!
//! With the TCP stream the connection task can wait for readability itself, so a wake-up that
//! only has frames to write does not poll the WebSocket reader (which costs tungstenite a pass
//! over its read buffer each time).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

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
