//! Opening a Socket.IO connection with raw frames: WebSocket to
//! `/socket.io/?EIO=4&transport=websocket`, Engine.IO OPEN (`0{...}`), then CONNECT to `/`
//! (`40` answered by `40{"sid":...}`); over TLS (wss) when the [`Target`] has a TLS
//! configuration, each connection then a full TLS handshake (no session resumption).

use std::io::IoSlice;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::rustls;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

pub type Ws = WebSocketStream<Stream>;
pub type Result<T> = std::result::Result<T, String>;

/// The server to connect to: its address, and the TLS client configuration when it serves wss.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// The client configuration for a server whose certificate `ca_pem` signed: rustls with the
/// ring provider (the core's), TLS 1.3 or 1.2, and no session resumption (no tickets or session
/// ids are kept), so every connection makes a full handshake.
///
/// Key exchange: X25519 first, then P-256 and P-384, as browsers, Node (OpenSSL) and curl
/// offer them; rustls 0.23.48's ring provider puts P-384 first, and a server takes the client's
/// order, so its default would make every handshake pay for P-384, which no common client asks.
pub fn tls_config(ca_pem: &[u8]) -> Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots
            .add(cert.map_err(|e| format!("CA file: {e}"))?)
            .map_err(|e| format!("CA file: {e}"))?;
    }
    if roots.is_empty() {
        return Err("CA file: no PEM certificate".into());
    }
    // rustls 0.23.48 deprecates ring's provider (no post-quantum key exchange); the core uses
    // it (core/src/tls.rs), so the generator does too.
    #[allow(deprecated)]
    let provider = {
        use rustls::crypto::ring::{default_provider, kx_group};
        let mut p = default_provider();
        p.kx_groups = vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1];
        Arc::new(p)
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// A connection's byte stream: plain TCP, or TLS over it.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Stream::Plain(s) => s.as_raw_fd(),
            Stream::Tls(s) => s.get_ref().0.as_raw_fd(),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }
    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Connections per source address: the kernel gives each (source address, port) pair once, so
/// many connections (and the TIME_WAIT of earlier runs) need many loopback source addresses.
const PER_SOURCE_IP: usize = 1000;

/// The loopback source address of connection `index`: `127.<net>.x.y`.
pub fn source_ip(net: u8, index: usize) -> Ipv4Addr {
    let k = index / PER_SOURCE_IP;
    Ipv4Addr::new(127, net, (k / 250) as u8, (k % 250 + 1) as u8)
}

/// Opens a Socket.IO connection to namespace `/` of `target`, from `src` (over TLS when the
/// target has a TLS configuration: the handshake is part of the connection).
///
/// `read_buffer` sizes the WebSocket read buffer (tungstenite zero-fills it before each read,
/// so a small one keeps the generator lean).
pub async fn connect(target: &Target, src: Ipv4Addr, read_buffer: usize) -> Result<Ws> {
    let addr = target.addr;
    let e = |what: &str| {
        let what = what.to_owned();
        move |err: std::io::Error| format!("{what} (from {src}): {err}")
    };
    let sock = TcpSocket::new_v4().map_err(e("socket"))?;
    sock.set_reuseaddr(true).map_err(e("SO_REUSEADDR"))?;
    sock.bind(SocketAddr::new(src.into(), 0))
        .map_err(e("bind"))?;
    let stream = sock.connect(addr).await.map_err(e("connect"))?;
    stream.set_nodelay(true).map_err(e("TCP_NODELAY"))?;
    let (stream, scheme) = match &target.tls {
        None => (Stream::Plain(stream), "ws"),
        Some(config) => {
            let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
            let tls = tokio_rustls::TlsConnector::from(config.clone())
                .connect(name, stream)
                .await
                .map_err(|err| format!("TLS handshake (from {src}): {err}"))?;
            (Stream::Tls(Box::new(tls)), "wss")
        }
    };
    let url = format!("{scheme}://{addr}/socket.io/?EIO=4&transport=websocket");
    let config = WebSocketConfig::default().read_buffer_size(read_buffer);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
        .await
        .map_err(|err| format!("WebSocket handshake: {err}"))?;
    let open = next_text(&mut ws).await?;
    if !open.starts_with('0') {
        return Err(format!("expected the Engine.IO open packet, got {open:?}"));
    }
    ws.send(Message::text("40"))
        .await
        .map_err(|err| format!("send CONNECT: {err}"))?;
    loop {
        let t = next_text(&mut ws).await?;
        if t.starts_with("40") {
            return Ok(ws);
        }
        if t == "2" {
            ws.send(Message::text("3"))
                .await
                .map_err(|err| format!("send pong: {err}"))?;
            continue;
        }
        return Err(format!("expected the CONNECT reply, got {t:?}"));
    }
}

async fn next_text(ws: &mut Ws) -> Result<String> {
    match ws.next().await {
        Some(Ok(Message::Text(t))) => Ok(t.as_str().to_owned()),
        Some(Ok(other)) => Err(format!("unexpected WebSocket message {other:?}")),
        Some(Err(err)) => Err(format!("WebSocket: {err}")),
        None => Err("the server closed the connection".into()),
    }
}

/// Answers pings until the server closes the connection (idle clients).
pub async fn idle(mut ws: Ws) {
    while let Some(Ok(m)) = ws.next().await {
        if matches!(&m, Message::Text(t) if t.as_str() == "2")
            && ws.send(Message::text("3")).await.is_err()
        {
            return;
        }
    }
}

/// Passes the text of `first` and of every message already received after it to `f`, then
/// answers the pings among them; anything but text (and WebSocket pings and pongs) is an error.
pub async fn each_ready_text(
    ws: &mut Ws,
    first: Option<std::result::Result<Message, tungstenite::Error>>,
    mut f: impl FnMut(&str) -> Result<()>,
) -> Result<()> {
    let mut next = first;
    let mut ping = false;
    loop {
        match next {
            Some(Ok(Message::Text(t))) if t.as_str() == "2" => ping = true,
            Some(Ok(Message::Text(t))) => f(t.as_str())?,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(other)) => return Err(format!("unexpected message {other:.80?}")),
            Some(Err(e)) => return Err(format!("WebSocket: {e}")),
            None => return Err("the server closed the connection".into()),
        }
        match ws.next().now_or_never() {
            Some(n) => next = n,
            None => break,
        }
    }
    if ping {
        ws.send(Message::text("3"))
            .await
            .map_err(|e| format!("send pong: {e}"))?;
    }
    Ok(())
}

/// Parses `<digits>` at the start of `s`: the number and the rest.
pub fn leading_number(s: &str) -> Option<(u64, &str)> {
    let end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    Some((s[..end].parse().ok()?, &s[end..]))
}

/// Opens `n` connections, `concurrency` at a time, numbered from `first` for their source
/// addresses; in order.
pub async fn connect_many(
    ctx: &crate::Ctx,
    first: usize,
    n: usize,
    concurrency: usize,
    read_buffer: usize,
) -> Result<Vec<Ws>> {
    use futures_util::TryStreamExt;
    futures_util::stream::iter(first..first + n)
        .map(|i| connect(&ctx.target, source_ip(ctx.net, i), read_buffer))
        .buffered(concurrency.max(1))
        .try_collect()
        .await
}
