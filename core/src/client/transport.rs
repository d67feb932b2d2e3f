//! Engine.IO v4 client transports: HTTP long-polling and WebSocket, and the WebSocket probe used
//! by the polling → WebSocket upgrade.
//!
//! Each open transport is a pair of tasks (a reader and a writer). The reader pushes what it
//! receives into the manager's event channel, tagged with the transport generation, and the
//! writer drains a frame channel. Dropping a [`Transport`] aborts both tasks.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full, Limited};
#[cfg(feature = "tls")]
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::engine::gate::Gate;
use crate::engine::packet::{
    decode_payload, decode_text, encode_payload, Frame, Packet, PacketType,
};
use crate::engine::Held;
use crate::error::{Error, Result};
use crate::value::Value;

pub(crate) type Ws = WebSocketStream<Stream>;
#[cfg(feature = "tls")]
pub(crate) type Http = HttpClient<HttpsConnector<Connector>, Full<Bytes>>;
#[cfg(not(feature = "tls"))]
pub(crate) type Http = HttpClient<Connector, Full<Bytes>>;

/// The connection under a client WebSocket: plain TCP, or TLS over it (`wss://`).
pub(crate) enum Stream {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

macro_rules! on_stream {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Stream::Plain($s) => {
                let $s = std::pin::Pin::new($s);
                $e
            }
            #[cfg(feature = "tls")]
            Stream::Tls($s) => {
                let $s = std::pin::Pin::new(&mut **$s);
                $e
            }
        }
    };
}

impl tokio::io::AsyncRead for Stream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        on_stream!(self, s => s.poll_read(cx, buf))
    }
}

impl tokio::io::AsyncWrite for Stream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        on_stream!(self, s => s.poll_write(cx, buf))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        on_stream!(self, s => s.poll_flush(cx))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        on_stream!(self, s => s.poll_shutdown(cx))
    }
}

/// A TLS failure in `e` (an untrusted certificate...) as [`Error::Tls`], else `other(e)`.
fn tls_or(e: &(dyn std::error::Error + 'static), other: impl FnOnce() -> Error) -> Error {
    #[cfg(feature = "tls")]
    if let Some(t) = crate::tls::client_error(e) {
        return t;
    }
    let _ = e;
    other()
}

/// `e` and its sources ("client error (Connect): ..."): hyper-util's own message alone does
/// not say what failed (a refused connection, a proxy's 407...).
fn with_sources(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let msg = s.to_string();
        if !out.ends_with(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cur = s.source();
    }
    out
}

/// Largest polling response body accepted, whatever the server announces.
const MAX_BODY: usize = 256 * 1024 * 1024;
/// How long a graceful close waits for the last frames to be written.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Which Engine.IO transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// HTTP long-polling.
    Polling,
    /// WebSocket.
    Websocket,
}

impl TransportKind {
    /// The name used on the wire (`transport=` query parameter).
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Polling => "polling",
            TransportKind::Websocket => "websocket",
        }
    }
}

/// An owned incoming Engine.IO packet.
#[derive(Debug)]
pub(crate) enum Incoming {
    Open,
    Close,
    Ping(String),
    Pong,
    Message(String),
    Binary(Bytes),
    Other,
}

impl From<Packet<'_>> for Incoming {
    fn from(p: Packet<'_>) -> Self {
        match p {
            Packet::Open(_) => Incoming::Open,
            Packet::Close => Incoming::Close,
            Packet::Ping(d) => Incoming::Ping(d.to_owned()),
            Packet::Pong(_) => Incoming::Pong,
            Packet::Text(d) => Incoming::Message(d.to_owned()),
            Packet::Binary(b) => Incoming::Binary(b),
            Packet::Upgrade | Packet::Noop => Incoming::Other,
        }
    }
}

/// What the transport tasks report to the manager. The first field is the engine session, the
/// second the transport generation.
#[derive(Debug)]
pub(crate) enum TransportEvent {
    /// Packets read, and the transport's hold on the gate until they are handled (a consumer
    /// that is slow takes a hold of its own meanwhile).
    Packets(u64, Vec<Incoming>, Option<Held>),
    /// A transport failure (network, HTTP status, undecodable Engine.IO data).
    Error(u64, u64, String),
    /// The peer closed the transport.
    Closed(u64, u64),
}

/// Where the Engine.IO server lives and what every request carries.
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    /// `host:port`.
    pub authority: String,
    /// The host alone (the TLS server name).
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub host: String,
    /// `https://` / `wss://`.
    pub secure: bool,
    /// The TLS configuration when `secure`.
    #[cfg(feature = "tls")]
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The HTTP CONNECT proxy to tunnel through, if any.
    pub proxy: Option<ProxyRoute>,
    /// The Engine.IO path, with a trailing slash.
    pub path: String,
    /// Extra query string, already encoded, without the leading `?` (may be empty).
    pub query: String,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// Backpressure from a slow consumer of the messages (see [`crate::client::Manager::hold`]):
    /// no transport reads more while it is closed.
    pub gate: Arc<Gate>,
}

impl Endpoint {
    pub fn url(&self, kind: TransportKind, sid: Option<&str>) -> String {
        let scheme = match (kind, self.secure) {
            (TransportKind::Polling, false) => "http",
            (TransportKind::Polling, true) => "https",
            (TransportKind::Websocket, false) => "ws",
            (TransportKind::Websocket, true) => "wss",
        };
        let mut u = format!(
            "{scheme}://{}{}?EIO=4&transport={}",
            self.authority,
            self.path,
            kind.as_str()
        );
        if kind == TransportKind::Polling {
            // A cache buster, as the reference client adds.
            u.push_str(&format!("&t={:x}", rand::random::<u32>()));
        }
        if let Some(sid) = sid {
            u.push_str("&sid=");
            u.push_str(&encode_component(sid));
        }
        if !self.query.is_empty() {
            u.push('&');
            u.push_str(&self.query);
        }
        u
    }
}

/// Percent-encodes a query component (like JavaScript's `encodeURIComponent`).
pub(crate) fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The server's handshake (`0{...}`).
#[derive(Clone, Debug)]
pub(crate) struct Handshake {
    pub sid: String,
    pub upgrades: Vec<String>,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    pub max_payload: usize,
}

pub(crate) fn parse_handshake(data: &str) -> Result<Handshake> {
    let v: Value =
        serde_json::from_str(data).map_err(|e| Error::Parse(format!("invalid handshake: {e}")))?;
    let missing = |f: &str| Error::Parse(format!("invalid handshake: missing or bad field `{f}`"));
    let sid = v
        .get("sid")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing("sid"))?;
    let ms = |f: &str| {
        v.get(f)
            .and_then(Value::as_f64)
            .filter(|x| x.is_finite() && *x >= 0.0 && *x < 1e12)
            .map(|x| Duration::from_millis(x as u64))
            .ok_or_else(|| missing(f))
    };
    let ping_interval = ms("pingInterval")?;
    let ping_timeout = ms("pingTimeout")?;
    let upgrades = match v.get("upgrades") {
        None => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        Some(_) => return Err(missing("upgrades")),
    };
    let max_payload = v
        .get("maxPayload")
        .and_then(Value::as_f64)
        .filter(|x| *x > 0.0)
        .map(|x| x.min(usize::MAX as f64) as usize)
        .unwrap_or(1_000_000);
    Ok(Handshake {
        sid: sid.to_owned(),
        upgrades,
        ping_interval,
        ping_timeout,
        max_payload,
    })
}

/// An open transport: its tasks and the channel feeding its writer.
pub(crate) struct Transport {
    pub kind: TransportKind,
    pub gen: u64,
    tx: Option<mpsc::UnboundedSender<Frame>>,
    reader: Option<JoinHandle<()>>,
    writer: Option<JoinHandle<()>>,
    pause: Arc<AtomicBool>,
}

impl Drop for Transport {
    fn drop(&mut self) {
        if let Some(r) = self.reader.take() {
            r.abort();
        }
        if let Some(w) = self.writer.take() {
            w.abort();
        }
    }
}

impl Transport {
    /// Queues frames; false when the writer is gone.
    pub fn send(&self, frames: impl IntoIterator<Item = Frame>) -> bool {
        match &self.tx {
            Some(tx) => frames.into_iter().all(|f| tx.send(f).is_ok()),
            None => false,
        }
    }

    /// Lets the writer flush what is queued (with `last` appended), then ends both tasks.
    pub fn close(
        mut self,
        last: Option<Frame>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        if let (Some(f), Some(tx)) = (last, self.tx.as_ref()) {
            let _ = tx.send(f);
        }
        self.tx = None;
        let writer = self.writer.take();
        async move {
            if let Some(w) = writer {
                let abort = w.abort_handle();
                if tokio::time::timeout(CLOSE_GRACE, w).await.is_err() {
                    abort.abort();
                }
            }
            drop(self);
        }
    }

    /// Polling only: stops polling after the request in flight and lets the writer drain; the
    /// future ends when both tasks are done (the upgrade's "pause").
    pub fn pause(&mut self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.pause.store(true, Ordering::SeqCst);
        self.tx = None;
        let reader = self.reader.take();
        let writer = self.writer.take();
        async move {
            if let Some(w) = writer {
                let _ = w.await;
            }
            if let Some(r) = reader {
                let _ = r.await;
            }
        }
    }
}

/// An HTTP CONNECT proxy: where it is, and the `Proxy-Authorization` its URL's user and
/// password make.
#[derive(Clone, Debug)]
pub(crate) struct ProxyRoute {
    uri: http::Uri,
    auth: Option<http::HeaderValue>,
}

/// The proxy the options choose for the server at `url` (see [`crate::client::Proxy`]).
pub(crate) fn proxy_for(
    proxy: &crate::client::Proxy,
    url: &super::options::ServerUrl,
) -> Result<Option<ProxyRoute>> {
    use crate::client::Proxy;
    use hyper_util::client::proxy::matcher::Matcher;
    let matcher = match proxy {
        Proxy::Direct => return Ok(None),
        Proxy::Url(u) => {
            let uri = http::Uri::from_str(u)
                .map_err(|e| Error::InvalidArgument(format!("bad proxy url {u:?}: {e}")))?;
            if uri.scheme_str() != Some("http") || uri.host().is_none() {
                return Err(Error::InvalidArgument(format!(
                    "bad proxy url {u:?}: expected http://[user:password@]host:port"
                )));
            }
            Matcher::builder().all(u.clone()).build()
        }
        Proxy::Environment => {
            if is_loopback(&url.host) {
                return Ok(None);
            }
            Matcher::from_env()
        }
    };
    let scheme = if url.secure { "https" } else { "http" };
    let dst = http::Uri::from_str(&format!("{scheme}://{}", url.authority))
        .map_err(|e| Error::InvalidArgument(format!("bad url: {e}")))?;
    Ok(matcher.intercept(&dst).map(|i| ProxyRoute {
        uri: i.uri().clone(),
        auth: i.basic_auth().cloned(),
    }))
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Opens TCP connections for the polling client: directly, or through the proxy's tunnel.
#[derive(Clone)]
pub(crate) enum Connector {
    Direct(HttpConnector),
    Tunnel(hyper_util::client::legacy::connect::proxy::Tunnel<HttpConnector>),
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<http::Uri> for Connector {
    type Response = hyper_util::rt::TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = std::result::Result<Self::Response, BoxError>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::result::Result<(), BoxError>> {
        match self {
            Connector::Direct(c) => c.poll_ready(cx).map_err(Into::into),
            Connector::Tunnel(t) => t.poll_ready(cx).map_err(Into::into),
        }
    }

    fn call(&mut self, dst: http::Uri) -> Self::Future {
        match self {
            Connector::Direct(c) => {
                let f = c.call(dst);
                Box::pin(async move { f.await.map_err(Into::into) })
            }
            Connector::Tunnel(t) => {
                let f = t.call(dst);
                Box::pin(async move { f.await.map_err(Into::into) })
            }
        }
    }
}

fn http_connector() -> HttpConnector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http
}

/// The connector for `ep`: through its proxy's tunnel if it has one.
fn connector(ep: &Endpoint) -> Connector {
    match &ep.proxy {
        None => Connector::Direct(http_connector()),
        Some(p) => {
            let mut t = hyper_util::client::legacy::connect::proxy::Tunnel::new(
                p.uri.clone(),
                http_connector(),
            );
            if let Some(a) = &p.auth {
                t = t.with_auth(a.clone());
            }
            Connector::Tunnel(t)
        }
    }
}

/// A TCP stream to the server of `ep`, through its proxy's tunnel if it has one.
async fn tcp_to(ep: &Endpoint) -> std::result::Result<TcpStream, BoxError> {
    use tower_service::Service;
    let dst = http::Uri::from_str(&format!("http://{}", ep.authority))?;
    let mut c = connector(ep);
    std::future::poll_fn(|cx| c.poll_ready(cx)).await?;
    Ok(c.call(dst).await?.into_inner())
}

fn http_client(ep: &Endpoint) -> Http {
    let mut b = HttpClient::builder(TokioExecutor::new());
    b.pool_idle_timeout(Duration::from_secs(30));
    #[cfg(feature = "tls")]
    {
        let http = connector(ep);
        let connector = match &ep.tls {
            Some(tls) => hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config((**tls).clone())
                .https_only()
                .enable_http1()
                .wrap_connector(http),
            None => hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(plain_only())
                .https_or_http()
                .enable_http1()
                .wrap_connector(http),
        };
        b.build(connector)
    }
    #[cfg(not(feature = "tls"))]
    {
        b.build(connector(ep))
    }
}

/// A configuration for the connector of plain `http://` endpoints, which never use it. Built
/// per client rather than kept in a static: a process-wide rustls configuration keeps its
/// session cache alive to the end (valgrind counts it as possibly lost in the C tests).
#[cfg(feature = "tls")]
fn plain_only() -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth()
}

async fn http_request(
    http: &Http,
    ep: &Endpoint,
    method: http::Method,
    url: &str,
    body: Bytes,
) -> Result<(http::StatusCode, Bytes)> {
    let mut req = http::Request::builder().method(method.clone()).uri(url);
    for (k, v) in &ep.headers {
        req = req.header(k, v);
    }
    if method == http::Method::POST {
        req = req.header(http::header::CONTENT_TYPE, "text/plain;charset=UTF-8");
    }
    let req = req
        .body(Full::new(body))
        .map_err(|e| Error::InvalidArgument(e.to_string()))?;
    let resp = http.request(req).await.map_err(|e| {
        tls_or(&e, || {
            Error::Transport(format!(
                "xhr {} error: {}",
                if method == http::Method::GET {
                    "poll"
                } else {
                    "post"
                },
                with_sources(&e)
            ))
        })
    })?;
    let status = resp.status();
    let body = Limited::new(resp.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| Error::Transport(format!("xhr poll error: {e}")))?
        .to_bytes();
    Ok((status, body))
}

fn status_error(status: http::StatusCode, body: &[u8]) -> Error {
    let msg = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    Error::Transport(format!("xhr poll error: HTTP status {status}: {msg}"))
}

fn decode_body(body: &Bytes) -> Result<Vec<Incoming>> {
    let text =
        std::str::from_utf8(body).map_err(|_| Error::Parse("payload is not UTF-8".into()))?;
    Ok(decode_payload(text)?
        .into_iter()
        .map(Incoming::from)
        .collect())
}

/// Opens a session over HTTP long-polling: the handshake GET, then the polling tasks.
pub(crate) async fn open_polling(
    ep: Arc<Endpoint>,
    session: u64,
    gen: u64,
    events: mpsc::UnboundedSender<TransportEvent>,
) -> Result<(Handshake, Vec<Incoming>, Transport)> {
    let http = http_client(&ep);
    let (status, body) = http_request(
        &http,
        &ep,
        http::Method::GET,
        &ep.url(TransportKind::Polling, None),
        Bytes::new(),
    )
    .await?;
    if status != http::StatusCode::OK {
        return Err(status_error(status, &body));
    }
    let text =
        std::str::from_utf8(&body).map_err(|_| Error::Parse("handshake is not UTF-8".into()))?;
    let mut packets = decode_payload(text)?.into_iter();
    let hs = match packets.next() {
        Some(Packet::Open(data)) => parse_handshake(data)?,
        _ => {
            return Err(Error::Parse(
                "invalid handshake: expected an open packet".into(),
            ))
        }
    };
    let rest = packets.map(Incoming::from).collect();
    let pause = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::unbounded_channel();
    let reader = tokio::spawn(poll_loop(
        http.clone(),
        ep.clone(),
        hs.sid.clone(),
        session,
        gen,
        events.clone(),
        pause.clone(),
    ));
    let writer = tokio::spawn(post_loop(
        http,
        ep,
        hs.sid.clone(),
        hs.max_payload,
        session,
        gen,
        rx,
        events,
    ));
    let t = Transport {
        kind: TransportKind::Polling,
        gen,
        tx: Some(tx),
        reader: Some(reader),
        writer: Some(writer),
        pause,
    };
    Ok((hs, rest, t))
}

async fn poll_loop(
    http: Http,
    ep: Arc<Endpoint>,
    sid: String,
    session: u64,
    gen: u64,
    events: mpsc::UnboundedSender<TransportEvent>,
    pause: Arc<AtomicBool>,
) {
    while !pause.load(Ordering::SeqCst) {
        ep.gate.wait_open().await;
        let url = ep.url(TransportKind::Polling, Some(&sid));
        let res = http_request(&http, &ep, http::Method::GET, &url, Bytes::new()).await;
        let packets = match res {
            Ok((status, body)) if status == http::StatusCode::OK => decode_body(&body),
            Ok((status, body)) => Err(status_error(status, &body)),
            Err(e) => Err(e),
        };
        match packets {
            Ok(p) => {
                let closing = p.iter().any(|x| matches!(x, Incoming::Close));
                let held = Some(ep.gate.hold_many(p.len()));
                if events
                    .send(TransportEvent::Packets(session, p, held))
                    .is_err()
                    || closing
                {
                    return;
                }
            }
            Err(e) => {
                let _ = events.send(TransportEvent::Error(session, gen, e.to_string()));
                return;
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn post_loop(
    http: Http,
    ep: Arc<Endpoint>,
    sid: String,
    max_payload: usize,
    session: u64,
    gen: u64,
    mut rx: mpsc::UnboundedReceiver<Frame>,
    events: mpsc::UnboundedSender<TransportEvent>,
) {
    let mut next: Option<Frame> = None;
    loop {
        let first = match next.take() {
            Some(f) => f,
            None => match rx.recv().await {
                Some(f) => f,
                None => return,
            },
        };
        let mut size = first.len() + 1;
        let mut batch = vec![first];
        while let Ok(f) = rx.try_recv() {
            // Base64 grows binary by a third; stay under the server's maxPayload.
            let add = f.len() * 4 / 3 + 2;
            if size + add > max_payload {
                next = Some(f);
                break;
            }
            size += add;
            batch.push(f);
        }
        let url = ep.url(TransportKind::Polling, Some(&sid));
        match http_request(&http, &ep, http::Method::POST, &url, encode_payload(&batch)).await {
            Ok((status, _)) if status == http::StatusCode::OK => {}
            Ok((status, body)) => {
                let _ = events.send(TransportEvent::Error(
                    session,
                    gen,
                    status_error(status, &body).to_string(),
                ));
                return;
            }
            Err(e) => {
                let _ = events.send(TransportEvent::Error(session, gen, e.to_string()));
                return;
            }
        }
    }
}

async fn ws_connect(ep: &Endpoint, sid: Option<&str>) -> Result<Ws> {
    let mut req = ep
        .url(TransportKind::Websocket, sid)
        .into_client_request()
        .map_err(|e| Error::InvalidArgument(format!("bad websocket url: {e}")))?;
    for (k, v) in &ep.headers {
        req.headers_mut().insert(k.clone(), v.clone());
    }
    let ws_err = |e: &(dyn std::error::Error + 'static)| {
        tls_or(e, || Error::Transport(format!("websocket error: {e}")))
    };
    let tcp = tcp_to(ep).await.map_err(|e| ws_err(&*e))?;
    let _ = tcp.set_nodelay(true);
    let stream = match connect_tls(ep, tcp).await {
        Ok(s) => s,
        Err(e) => return Err(ws_err(&e)),
    };
    let (ws, _) = tokio_tungstenite::client_async(req, stream)
        .await
        .map_err(|e| ws_err(&e))?;
    Ok(ws)
}

/// TLS over `tcp` when the endpoint is secure.
async fn connect_tls(ep: &Endpoint, tcp: TcpStream) -> std::io::Result<Stream> {
    #[cfg(feature = "tls")]
    if let Some(tls) = &ep.tls {
        let name = rustls::pki_types::ServerName::try_from(ep.host.clone())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let s = tokio_rustls::TlsConnector::from(tls.clone())
            .connect(name, tcp)
            .await?;
        return Ok(Stream::Tls(Box::new(s)));
    }
    let _ = ep;
    Ok(Stream::Plain(tcp))
}

/// Opens a session directly over WebSocket: waits for the open packet, then starts the tasks.
pub(crate) async fn open_websocket(
    ep: Arc<Endpoint>,
    session: u64,
    gen: u64,
    events: mpsc::UnboundedSender<TransportEvent>,
) -> Result<(Handshake, Vec<Incoming>, Transport)> {
    let mut ws = ws_connect(&ep, None).await?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                let hs = match decode_text(&t)? {
                    Packet::Open(data) => parse_handshake(data)?,
                    _ => {
                        return Err(Error::Parse(
                            "invalid handshake: expected an open packet".into(),
                        ))
                    }
                };
                let t = start_websocket(Box::new(ws), Vec::new(), &ep, session, gen, events);
                return Ok((hs, Vec::new(), t));
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(_)) => {
                return Err(Error::Parse(
                    "invalid handshake: expected an open packet".into(),
                ))
            }
            Some(Err(e)) => return Err(Error::Transport(format!("websocket error: {e}"))),
            None => {
                return Err(Error::Transport(
                    "websocket closed during the handshake".into(),
                ))
            }
        }
    }
}

/// The upgrade probe: a WebSocket on the polling session, `2probe` answered by `3probe`.
pub(crate) async fn probe_websocket(ep: Arc<Endpoint>, sid: String) -> Result<Box<Ws>> {
    let mut ws = ws_connect(&ep, Some(&sid)).await?;
    ws.send(Message::text("2probe"))
        .await
        .map_err(|e| Error::Transport(format!("probe error: {e}")))?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.as_str() == "3probe" => return Ok(Box::new(ws)),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(_)) => return Err(Error::Transport("probe error".into())),
            Some(Err(e)) => return Err(Error::Transport(format!("probe error: {e}"))),
            None => return Err(Error::Transport("probe error: closed".into())),
        }
    }
}

/// Starts the reader and writer tasks of a WebSocket transport; `first` is written before
/// anything else (the upgrade packet and the frames held during the upgrade).
pub(crate) fn start_websocket(
    ws: Box<Ws>,
    first: Vec<Frame>,
    ep: &Endpoint,
    session: u64,
    gen: u64,
    events: mpsc::UnboundedSender<TransportEvent>,
) -> Transport {
    let (mut sink, mut stream) = (*ws).split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Frame>();
    for f in first {
        let _ = tx.send(f);
    }
    let ev = events.clone();
    let gate = ep.gate.clone();
    let reader = tokio::spawn(async move {
        loop {
            gate.wait_open().await;
            let inc = match stream.next().await {
                Some(Ok(Message::Text(t))) => match decode_text(&t) {
                    Ok(p) => Incoming::from(p),
                    Err(e) => {
                        let _ = ev.send(TransportEvent::Error(session, gen, e.to_string()));
                        return;
                    }
                },
                Some(Ok(Message::Binary(b))) => Incoming::Binary(b),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Close(_))) | None => {
                    let _ = ev.send(TransportEvent::Closed(session, gen));
                    return;
                }
                Some(Err(e)) => {
                    let _ = ev.send(TransportEvent::Error(
                        session,
                        gen,
                        format!("websocket error: {e}"),
                    ));
                    return;
                }
            };
            let closing = matches!(inc, Incoming::Close);
            if ev
                .send(TransportEvent::Packets(
                    session,
                    vec![inc],
                    Some(gate.hold()),
                ))
                .is_err()
                || closing
            {
                return;
            }
        }
    });
    let writer = tokio::spawn(async move {
        while let Some(f) = rx.recv().await {
            let mut batch = vec![f];
            while let Ok(f) = rx.try_recv() {
                batch.push(f);
            }
            for f in batch {
                let m = match f {
                    Frame::Text(t) => Message::Text(t),
                    Frame::Binary(b) => Message::Binary(b),
                };
                if let Err(e) = sink.feed(m).await {
                    let _ = events.send(TransportEvent::Error(
                        session,
                        gen,
                        format!("websocket error: {e}"),
                    ));
                    return;
                }
            }
            if let Err(e) = sink.flush().await {
                let _ = events.send(TransportEvent::Error(
                    session,
                    gen,
                    format!("websocket error: {e}"),
                ));
                return;
            }
        }
        let _ = sink.close().await;
    });
    Transport {
        kind: TransportKind::Websocket,
        gen,
        tx: Some(tx),
        reader: Some(reader),
        writer: Some(writer),
        pause: Arc::new(AtomicBool::new(false)),
    }
}

/// The frame that asks the server to close the session (polling only; a WebSocket just closes).
pub(crate) fn close_frame(kind: TransportKind) -> Option<Frame> {
    (kind == TransportKind::Polling).then(|| Frame::text(PacketType::Close, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_fields() {
        let hs = parse_handshake(r#"{"sid":"a","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#).unwrap();
        assert_eq!(hs.sid, "a");
        assert_eq!(hs.ping_interval, Duration::from_millis(25000));
        assert_eq!(hs.upgrades, vec!["websocket".to_string()]);
        for bad in [
            r#"{"upgrades":[],"pingInterval":1,"pingTimeout":1}"#,
            r#"{"sid":"a","pingTimeout":1}"#,
            "[]",
            "x",
            r#"{"sid":"a","pingInterval":-1,"pingTimeout":1}"#,
        ] {
            assert!(parse_handshake(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn proxies_from_the_environment() {
        use crate::client::Proxy;
        let url = |u: &str| super::super::options::parse_url(u).unwrap();
        // Set once for this test binary: every other test here connects to loopback
        // addresses, which an environment proxy never serves.
        std::env::set_var("HTTPS_PROXY", "http://u:p@proxy.test:3128");
        std::env::set_var("HTTP_PROXY", "http://plain.test:8080");
        std::env::set_var("NO_PROXY", "skip.example");
        let p = proxy_for(&Proxy::Environment, &url("https://example.com/chat"))
            .unwrap()
            .expect("HTTPS_PROXY for https");
        assert_eq!(p.uri.host(), Some("proxy.test"));
        assert!(p.auth.is_some(), "user:password become Proxy-Authorization");
        let p = proxy_for(&Proxy::Environment, &url("ws://example.com"))
            .unwrap()
            .expect("HTTP_PROXY for ws");
        assert_eq!(p.uri.host(), Some("plain.test"));
        for direct in [
            "https://skip.example",
            "http://127.0.0.1:3000",
            "http://localhost",
            "wss://[::1]:1",
        ] {
            assert!(
                proxy_for(&Proxy::Environment, &url(direct))
                    .unwrap()
                    .is_none(),
                "{direct}"
            );
        }
        assert!(proxy_for(&Proxy::Direct, &url("https://example.com"))
            .unwrap()
            .is_none());
        let p = proxy_for(
            &Proxy::Url("http://127.0.0.1:9".into()),
            &url("http://127.0.0.1:1"),
        )
        .unwrap()
        .expect("an explicit proxy serves loopback too");
        assert_eq!(p.uri.port_u16(), Some(9));
        assert!(proxy_for(&Proxy::Url("socks5://x:1".into()), &url("http://a")).is_err());
    }

    #[test]
    fn url_encoding() {
        assert_eq!(encode_component("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        let ep = Endpoint {
            authority: "h:1".into(),
            host: "h".into(),
            secure: false,
            #[cfg(feature = "tls")]
            tls: None,
            proxy: None,
            path: "/socket.io/".into(),
            query: "x=1".into(),
            headers: vec![],
            gate: Gate::new(1),
        };
        assert_eq!(
            ep.url(TransportKind::Websocket, Some("s")),
            "ws://h:1/socket.io/?EIO=4&transport=websocket&sid=s&x=1"
        );
    }
}
