//! Opening a Socket.IO connection with raw frames: WebSocket to
//! `/socket.io/?EIO=4&transport=websocket`, Engine.IO OPEN (`0{...}`), then CONNECT to `/`
//! (`40` answered by `40{"sid":...}`).

use std::net::{Ipv4Addr, SocketAddr};

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

pub type Ws = WebSocketStream<TcpStream>;
pub type Result<T> = std::result::Result<T, String>;

/// Connections per source address: the kernel gives each (source address, port) pair once, so
/// many connections (and the TIME_WAIT of earlier runs) need many loopback source addresses.
const PER_SOURCE_IP: usize = 1000;

/// The loopback source address of connection `index`: `127.<net>.x.y`.
pub fn source_ip(net: u8, index: usize) -> Ipv4Addr {
    let k = index / PER_SOURCE_IP;
    Ipv4Addr::new(127, net, (k / 250) as u8, (k % 250 + 1) as u8)
}

/// Opens a Socket.IO connection to namespace `/` of the server at `addr`, from `src`.
///
/// `read_buffer` sizes the WebSocket read buffer (tungstenite zero-fills it before each read,
/// so a small one keeps the generator lean).
pub async fn connect(addr: SocketAddr, src: Ipv4Addr, read_buffer: usize) -> Result<Ws> {
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
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
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
        .map(|i| connect(ctx.addr, source_ip(ctx.net, i), read_buffer))
        .buffered(concurrency.max(1))
        .try_collect()
        .await
}
