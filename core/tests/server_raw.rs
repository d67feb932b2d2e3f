//! Raw-protocol tests of the server: HTTP requests written by hand on a TCP socket and WebSocket
//! frames written with tokio-tungstenite, against an in-process server on 127.0.0.1:0.
//!
//! They check every error answer and close rule of Engine.IO v4 / Socket.IO v5 against what the
//! reference (npm engine.io 6 / socket.io 4) does (see PROTOCOL-NOTES.md).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use polysio::engine::packet::Frame;
use polysio::engine::{
    CloseReason, ConnHandler, CookieConfig, CorsConfig, CorsOrigin, EngineConfig, EngineHandler,
    EngineServer, EngineSocket, Message, TransportType,
};
use polysio::server::{ConnectError, Server, ServerConfig};
use polysio::Value;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Generous: the machine may be loaded.
const T: Duration = Duration::from_secs(10);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn within<F: std::future::Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(T, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out: {what}"),
    }
}

/// An HTTP response read off the wire.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("utf-8 body")
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }
    /// Asserts a JSON handshake error `{"code":code,"message":message}` with `status`.
    fn assert_error(&self, status: u16, code: u64, message: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{self:?}"
        );
        assert_eq!(self.json(), json!({"code": code, "message": message}));
        // Exactly these two keys, in this order.
        assert_eq!(
            self.text(),
            format!("{{\"code\":{code},\"message\":{}}}", json!(message))
        );
    }
}

/// Writes one HTTP/1.1 request (with `Connection: close`) on `stream`.
async fn write_request(
    stream: &mut TcpStream,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) {
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if method != "GET" || !body.is_empty() {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes).await.expect("write request");
}

/// Reads one HTTP/1.1 response (Content-Length or chunked or to EOF).
async fn read_response(stream: &mut TcpStream) -> Resp {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.expect("read response");
        assert!(n > 0, "connection closed before a response: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).expect("utf-8 head");
    let mut rest = buf[head_end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    let body = if status == 101 || status == 204 || status == 304 {
        Vec::new()
    } else if let Some(len) = get("content-length") {
        let len: usize = len.parse().expect("content-length");
        while rest.len() < len {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.expect("read body");
            assert!(n > 0, "connection closed inside the body");
            rest.extend_from_slice(&chunk[..n]);
        }
        rest.truncate(len);
        rest
    } else if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        stream.read_to_end(&mut rest).await.expect("read chunked");
        let mut out = Vec::new();
        let mut i = 0;
        while let Some(eol) = rest[i..].windows(2).position(|w| w == b"\r\n") {
            let size_str = String::from_utf8_lossy(&rest[i..i + eol]).to_string();
            let size = usize::from_str_radix(size_str.split(';').next().unwrap().trim(), 16)
                .expect("chunk size");
            i += eol + 2;
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[i..i + size]);
            i += size + 2;
        }
        out
    } else {
        stream.read_to_end(&mut rest).await.expect("read to end");
        rest
    };
    Resp {
        status,
        headers,
        body,
    }
}

/// One request on a fresh connection.
async fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    within(&format!("{method} {target}"), async {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        write_request(&mut s, method, target, headers, body).await;
        read_response(&mut s).await
    })
    .await
}

async fn get(addr: SocketAddr, target: &str) -> Resp {
    request(addr, "GET", target, &[], b"").await
}

async fn post(addr: SocketAddr, target: &str, body: &[u8]) -> Resp {
    request(
        addr,
        "POST",
        target,
        &[("Content-Type", "text/plain;charset=UTF-8")],
        body,
    )
    .await
}

/// `/engine.io/?EIO=4&transport=polling&sid=<sid>`
fn poll_url(path: &str, sid: &str) -> String {
    format!("{path}?EIO=4&transport=polling&sid={sid}")
}

/// Parses an open packet `0{...}` and returns its JSON.
fn parse_open(body: &str) -> serde_json::Value {
    let json = body
        .strip_prefix('0')
        .unwrap_or_else(|| panic!("not an open packet: {body:?}"));
    serde_json::from_str(json).expect("open packet JSON")
}

/// Opens a polling session on `path`; returns the sid.
async fn open_polling(addr: SocketAddr, path: &str) -> String {
    let r = get(addr, &format!("{path}?EIO=4&transport=polling")).await;
    assert_eq!(r.status, 200, "{r:?}");
    parse_open(&r.text())["sid"]
        .as_str()
        .expect("sid")
        .to_owned()
}

/// True while the session answers a noop POST with `ok`; false once it is unknown (code 1).
async fn session_alive(addr: SocketAddr, path: &str, sid: &str) -> bool {
    let r = post(addr, &poll_url(path, sid), b"6").await;
    match r.status {
        200 => {
            assert_eq!(r.text(), "ok");
            true
        }
        400 => {
            r.assert_error(400, 1, "Session ID unknown");
            false
        }
        s => panic!("unexpected status {s}: {r:?}"),
    }
}

/// Waits until the session is gone (requests with its sid answer code 1).
/// Waits until the engine holds `n` sessions (removal follows the close on the wire).
async fn wait_clients(server: &EngineServer, n: usize) {
    within(&format!("{n} engine sessions"), async {
        while server.clients_count() != n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

async fn wait_session_gone(addr: SocketAddr, path: &str, sid: &str) {
    within("session to close", async {
        while session_alive(addr, path, sid).await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// The raw Engine.IO echo handler (as core/examples/engineio_echo.rs).
struct Echo;
struct EchoConn(EngineSocket);

impl EngineHandler for Echo {
    fn on_open(&self, socket: &EngineSocket) -> Box<dyn ConnHandler> {
        Box::new(EchoConn(socket.clone()))
    }
}

impl ConnHandler for EchoConn {
    fn on_message(&mut self, msg: Message<'_>) {
        let _ = match msg {
            Message::Text(t) => self.0.send_text(t),
            Message::Binary(b) => self.0.send(Frame::Binary(b)),
        };
    }
    fn on_close(&mut self, _reason: CloseReason) {}
}

const EIO: &str = "/engine.io/";
const SIO: &str = "/socket.io/";

/// Starts a raw Engine.IO echo server with `config`.
async fn start_engine(config: EngineConfig) -> (EngineServer, SocketAddr) {
    let server = EngineServer::new(config, Arc::new(Echo));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let s = server.clone();
    tokio::spawn(async move { s.serve(listener, None, std::future::pending()).await });
    (server, addr)
}

async fn start_engine_default() -> SocketAddr {
    start_engine(EngineConfig::default()).await.1
}

/// Starts a Socket.IO server; `/` answers `echo` with `echo-back` (same arguments).
async fn start_sio(config: ServerConfig) -> (Server, SocketAddr) {
    let io = Server::new(config);
    io.of("/").on_connection(|socket| {
        socket.on("echo", |s, args, _| {
            let _ = s.emit("echo-back", args);
        });
    });
    let addr = io.listen(("127.0.0.1", 0)).await.expect("listen");
    (io, addr)
}

async fn ws_connect(addr: SocketAddr, target: &str) -> Ws {
    let url = format!("ws://{addr}{target}");
    within("websocket connect", tokio_tungstenite::connect_async(url))
        .await
        .expect("websocket handshake")
        .0
}

/// Next text frame (binary frames are an error).
async fn ws_text(ws: &mut Ws) -> String {
    within("websocket text frame", async {
        loop {
            match ws.next().await {
                Some(Ok(WsMessage::Text(t))) => return t.as_str().to_owned(),
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    })
    .await
}

async fn ws_binary(ws: &mut Ws) -> Vec<u8> {
    within("websocket binary frame", async {
        loop {
            match ws.next().await {
                Some(Ok(WsMessage::Binary(b))) => return b.to_vec(),
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
                other => panic!("expected a binary frame, got {other:?}"),
            }
        }
    })
    .await
}

async fn ws_send(ws: &mut Ws, text: &str) {
    ws.send(WsMessage::text(text)).await.expect("ws send");
}

/// Waits until the server ends the WebSocket; returns the text frames seen before.
async fn ws_expect_closed(ws: &mut Ws) -> Vec<String> {
    within("websocket to be closed by the server", async {
        let mut seen = Vec::new();
        loop {
            match ws.next().await {
                Some(Ok(WsMessage::Text(t))) => seen.push(t.as_str().to_owned()),
                Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => return seen,
                Some(Ok(_)) => {}
            }
        }
    })
    .await
}

/// A WebSocket-only Socket.IO connection, past the Engine.IO open packet.
async fn sio_ws(addr: SocketAddr) -> Ws {
    let mut ws = ws_connect(addr, &format!("{SIO}?EIO=4&transport=websocket")).await;
    let open = ws_text(&mut ws).await;
    let o = parse_open(&open);
    assert_eq!(o["upgrades"], json!([]));
    ws
}

/// Sends `40` on `ws` and returns the socket id from `40{"sid":...}`.
async fn sio_connect(ws: &mut Ws) -> String {
    ws_send(ws, "40").await;
    let reply = ws_text(ws).await;
    let json = reply
        .strip_prefix("40")
        .unwrap_or_else(|| panic!("not a CONNECT reply: {reply:?}"));
    let v: serde_json::Value = serde_json::from_str(json).expect("CONNECT JSON");
    let obj = v.as_object().expect("object");
    assert_eq!(obj.len(), 1, "exactly the key sid: {reply}");
    obj["sid"].as_str().expect("sid string").to_owned()
}

/// A new client can still connect and get an event echoed.
async fn assert_serves(addr: SocketAddr) {
    let mut ws = sio_ws(addr).await;
    sio_connect(&mut ws).await;
    ws_send(&mut ws, r#"42["echo","still here",1]"#).await;
    assert_eq!(ws_text(&mut ws).await, r#"42["echo-back","still here",1]"#);
}

/// A bad packet on a connected Socket.IO WebSocket closes it; the server keeps serving.
async fn sio_bad_packet_closes(packets: &[&str], connect_first: bool) {
    let (io, addr) = start_sio(ServerConfig::default()).await;
    let mut ws = sio_ws(addr).await;
    if connect_first {
        sio_connect(&mut ws).await;
    }
    for p in packets {
        ws_send(&mut ws, p).await;
    }
    let seen = ws_expect_closed(&mut ws).await;
    assert!(
        seen.iter().all(|t| !t.starts_with("42")),
        "no event after a bad packet: {seen:?}"
    );
    wait_clients(io.engine(), 0).await;
    assert_serves(addr).await;
}

// ---------------------------------------------------------------------------------------------
// Engine.IO handshake errors
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_unsupported_protocol_version() {
    let addr = start_engine_default().await;
    for q in [
        "transport=polling",
        "EIO=3&transport=polling",
        "EIO=garbage&transport=polling",
        "EIO=&transport=polling",
        "EIO=5&transport=polling",
    ] {
        get(addr, &format!("{EIO}?{q}"))
            .await
            .assert_error(400, 5, "Unsupported protocol version");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_unknown_transport() {
    let addr = start_engine_default().await;
    get(addr, &format!("{EIO}?EIO=4&transport=foo"))
        .await
        .assert_error(400, 0, "Transport unknown");
    get(addr, &format!("{EIO}?EIO=4"))
        .await
        .assert_error(400, 0, "Transport unknown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_transport_not_enabled_is_unknown() {
    let (_s, addr) = start_engine(EngineConfig {
        transports: vec![TransportType::Websocket],
        ..EngineConfig::default()
    })
    .await;
    get(addr, &format!("{EIO}?EIO=4&transport=polling"))
        .await
        .assert_error(400, 0, "Transport unknown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_unknown_sid() {
    let addr = start_engine_default().await;
    get(addr, &poll_url(EIO, "nope"))
        .await
        .assert_error(400, 1, "Session ID unknown");
    post(addr, &poll_url(EIO, "nope"), b"4x")
        .await
        .assert_error(400, 1, "Session ID unknown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_post_without_sid() {
    let addr = start_engine_default().await;
    post(addr, &format!("{EIO}?EIO=4&transport=polling"), b"4x")
        .await
        .assert_error(400, 2, "Bad handshake method");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_websocket_without_upgrade() {
    let addr = start_engine_default().await;
    get(addr, &format!("{EIO}?EIO=4&transport=websocket"))
        .await
        .assert_error(400, 3, "Bad request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_allow_request_refused() {
    let (_s, addr) = start_engine(EngineConfig {
        allow_request: Some(Arc::new(|h| match h.query_value("token") {
            Some("good") => Ok(()),
            Some("custom") => Err("go away".into()),
            _ => Err(String::new()),
        })),
        ..EngineConfig::default()
    })
    .await;
    get(addr, &format!("{EIO}?EIO=4&transport=polling"))
        .await
        .assert_error(403, 4, "Forbidden");
    get(addr, &format!("{EIO}?EIO=4&transport=polling&token=custom"))
        .await
        .assert_error(403, 4, "go away");
    let ok = get(addr, &format!("{EIO}?EIO=4&transport=polling&token=good")).await;
    assert_eq!(ok.status, 200);
    parse_open(&ok.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_refusals_are_raw_400() {
    let addr = start_engine_default().await;
    // A WebSocket request with a bad EIO / unknown sid is refused before the upgrade.
    for target in [
        format!("{EIO}?EIO=3&transport=websocket"),
        format!("{EIO}?EIO=4&transport=websocket&sid=nope"),
    ] {
        let url = format!("ws://{addr}{target}");
        match within("ws connect", tokio_tungstenite::connect_async(url)).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status().as_u16(), 400, "{target}")
            }
            other => panic!("{target}: expected a 400 refusal, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Engine.IO polling handshake
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_handshake_open_packet() {
    let addr = start_engine_default().await;
    let r = get(addr, &format!("{EIO}?EIO=4&transport=polling&t=abc")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=UTF-8"));
    assert_eq!(r.header("set-cookie"), None, "no cookie unless configured");
    assert_eq!(
        r.header("access-control-allow-origin"),
        None,
        "no CORS unless configured"
    );
    let o = parse_open(&r.text());
    let keys: Vec<&str> = o.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "sid",
            "upgrades",
            "pingInterval",
            "pingTimeout",
            "maxPayload"
        ]
    );
    let sid = o["sid"].as_str().unwrap();
    assert!(!sid.is_empty());
    assert_eq!(o["upgrades"], json!(["websocket"]));
    assert_eq!(o["pingInterval"], json!(25000));
    assert_eq!(o["pingTimeout"], json!(20000));
    assert_eq!(o["maxPayload"], json!(1000000));
    // Two handshakes give two different sids.
    assert_ne!(open_polling(addr, EIO).await, sid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_handshake_reflects_config() {
    let (_s, addr) = start_engine(EngineConfig {
        ping_interval: Duration::from_millis(1234),
        ping_timeout: Duration::from_millis(567),
        max_http_buffer_size: 4321,
        allow_upgrades: false,
        ..EngineConfig::default()
    })
    .await;
    let r = get(addr, &format!("{EIO}?EIO=4&transport=polling")).await;
    let o = parse_open(&r.text());
    assert_eq!(o["pingInterval"], json!(1234));
    assert_eq!(o["pingTimeout"], json!(567));
    assert_eq!(o["maxPayload"], json!(4321));
    assert_eq!(o["upgrades"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_only_handshake() {
    let addr = start_engine_default().await;
    let mut ws = ws_connect(addr, &format!("{EIO}?EIO=4&transport=websocket")).await;
    let o = parse_open(&ws_text(&mut ws).await);
    let keys: Vec<&str> = o.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "sid",
            "upgrades",
            "pingInterval",
            "pingTimeout",
            "maxPayload"
        ]
    );
    assert_eq!(o["upgrades"], json!([]));
    ws_send(&mut ws, "4hello").await;
    assert_eq!(ws_text(&mut ws).await, "4hello");
    ws.send(WsMessage::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(ws_binary(&mut ws).await, vec![1, 2, 3]);
    // The session exists for polling requests too, but its transport is websocket: code 3.
    let sid = o["sid"].as_str().unwrap();
    get(addr, &poll_url(EIO, sid))
        .await
        .assert_error(400, 3, "Bad request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_config_sets_cookie() {
    let (_s, addr) = start_engine(EngineConfig {
        cookie: Some(CookieConfig::default()),
        ..EngineConfig::default()
    })
    .await;
    let r = get(addr, &format!("{EIO}?EIO=4&transport=polling")).await;
    let sid = parse_open(&r.text())["sid"].as_str().unwrap().to_owned();
    assert_eq!(
        r.header("set-cookie"),
        Some(format!("io={sid}; Path=/; HttpOnly; SameSite=Lax").as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_any_origin() {
    let (_s, addr) = start_engine(EngineConfig {
        cors: Some(CorsConfig::default()),
        ..EngineConfig::default()
    })
    .await;
    let r = request(
        addr,
        "GET",
        &format!("{EIO}?EIO=4&transport=polling"),
        &[("Origin", "http://example.com")],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("access-control-allow-credentials"), None);
    // Error answers carry the CORS headers too (the browser must be able to read them).
    let e = request(
        addr,
        "GET",
        &format!("{EIO}?EIO=3&transport=polling"),
        &[("Origin", "http://example.com")],
        b"",
    )
    .await;
    e.assert_error(400, 5, "Unsupported protocol version");
    assert_eq!(e.header("access-control-allow-origin"), Some("*"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_mirror_with_credentials_and_preflight() {
    let (_s, addr) = start_engine(EngineConfig {
        cors: Some(CorsConfig {
            origin: CorsOrigin::Mirror,
            credentials: true,
            ..CorsConfig::default()
        }),
        ..EngineConfig::default()
    })
    .await;
    let r = request(
        addr,
        "GET",
        &format!("{EIO}?EIO=4&transport=polling"),
        &[("Origin", "http://example.com")],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://example.com")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("vary"), Some("Origin"));
    let p = request(
        addr,
        "OPTIONS",
        &format!("{EIO}?EIO=4&transport=polling"),
        &[
            ("Origin", "http://example.com"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
        b"",
    )
    .await;
    assert_eq!(p.status, 204, "{p:?}");
    assert_eq!(
        p.header("access-control-allow-origin"),
        Some("http://example.com")
    );
    assert_eq!(
        p.header("access-control-allow-methods"),
        Some("GET,HEAD,PUT,PATCH,POST,DELETE")
    );
    assert_eq!(
        p.header("access-control-allow-headers"),
        Some("content-type")
    );
}

// ---------------------------------------------------------------------------------------------
// Engine.IO polling
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_ok_and_payload_echo() {
    let addr = start_engine_default().await;
    let sid = open_polling(addr, EIO).await;
    let r = post(
        addr,
        &poll_url(EIO, &sid),
        b"4hello\x1e4w\xc3\xa9rld\x1ebAQID",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "ok");
    assert_eq!(r.header("content-type"), Some("text/html"));
    let mut got = String::new();
    within("echo", async {
        // The echoes may come back in one or several payloads.
        while got.split('\x1e').count() < 3 || got.is_empty() {
            let g = get(addr, &poll_url(EIO, &sid)).await;
            assert_eq!(g.status, 200, "{g:?}");
            assert_eq!(g.header("content-type"), Some("text/plain; charset=UTF-8"));
            if !got.is_empty() {
                got.push('\x1e');
            }
            got.push_str(&g.text());
        }
    })
    .await;
    assert_eq!(got, "4hello\x1e4w\u{e9}rld\x1ebAQID");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_too_large_is_413() {
    let (_s, addr) = start_engine(EngineConfig {
        max_http_buffer_size: 1000,
        ..EngineConfig::default()
    })
    .await;
    let sid = open_polling(addr, EIO).await;
    let mut big = b"4".to_vec();
    big.extend(std::iter::repeat_n(b'x', 2000));
    let r = post(addr, &poll_url(EIO, &sid), &big).await;
    assert_eq!(r.status, 413, "{r:?}");
    // As engine.io 6.6.13 ("payload too large"): the session ends with `transport error`.
    wait_session_gone(addr, EIO, &sid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_concurrent_get_is_400_and_closes() {
    let addr = start_engine_default().await;
    let sid = open_polling(addr, EIO).await;
    let url = poll_url(EIO, &sid);
    let mut a = TcpStream::connect(addr).await.unwrap();
    let mut b = TcpStream::connect(addr).await.unwrap();
    write_request(&mut a, "GET", &url, &[], b"").await;
    write_request(&mut b, "GET", &url, &[], b"").await;
    let (ra, rb) = within("both GETs answered", async {
        tokio::join!(read_response(&mut a), read_response(&mut b))
    })
    .await;
    // Whichever came second is refused with 400; the pending one ends with a close packet.
    let (refused, pending) = if ra.status == 400 { (ra, rb) } else { (rb, ra) };
    assert_eq!(refused.status, 400, "{refused:?}");
    assert_eq!(pending.status, 200, "{pending:?}");
    assert_eq!(pending.text(), "1");
    get(addr, &url)
        .await
        .assert_error(400, 1, "Session ID unknown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_pending_get_closes_session() {
    let addr = start_engine_default().await;
    let sid = open_polling(addr, EIO).await;
    let mut a = TcpStream::connect(addr).await.unwrap();
    write_request(&mut a, "GET", &poll_url(EIO, &sid), &[], b"").await;
    // Give the request time to become the pending poll, then abort it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(a);
    wait_session_gone(addr, EIO, &sid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_post_body_closes_session() {
    let addr = start_engine_default().await;
    let sid = open_polling(addr, EIO).await;
    let r = post(addr, &poll_url(EIO, &sid), b"abc").await;
    assert_eq!(r.status, 200, "the reference still answers ok: {r:?}");
    wait_session_gone(addr, EIO, &sid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_close_packet_closes_session() {
    let addr = start_engine_default().await;
    let sid = open_polling(addr, EIO).await;
    let r = post(addr, &poll_url(EIO, &sid), b"1").await;
    assert_eq!(r.text(), "ok");
    wait_session_gone(addr, EIO, &sid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_close_packet_answers_pending_get_with_noop() {
    let addr = start_engine_default().await;
    let sid = open_polling(addr, EIO).await;
    let mut a = TcpStream::connect(addr).await.unwrap();
    write_request(&mut a, "GET", &poll_url(EIO, &sid), &[], b"").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = post(addr, &poll_url(EIO, &sid), b"1").await;
    assert_eq!(r.text(), "ok");
    let g = within("pending GET", read_response(&mut a)).await;
    assert_eq!(g.status, 200);
    assert_eq!(g.text(), "6");
    wait_session_gone(addr, EIO, &sid).await;
}

/// The official suites send the last GET and the close POST at once; routed in the other order
/// (two connections, two worker threads), the GET still gets its noop, then the sid is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_close_packet_before_its_last_get_still_answers_it() {
    let addr = start_engine_default().await;
    let sid = open_polling(addr, EIO).await;
    let r = post(addr, &poll_url(EIO, &sid), b"1").await;
    assert_eq!(r.text(), "ok");
    let g = get(addr, &poll_url(EIO, &sid)).await;
    assert_eq!((g.status, g.text().as_str()), (200, "6"));
    get(addr, &poll_url(EIO, &sid))
        .await
        .assert_error(400, 1, "Session ID unknown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_timeout_closes_silent_client() {
    let (_s, addr) = start_engine(EngineConfig {
        ping_interval: Duration::from_millis(100),
        ping_timeout: Duration::from_millis(100),
        ..EngineConfig::default()
    })
    .await;
    let sid = open_polling(addr, EIO).await;
    let g = get(addr, &poll_url(EIO, &sid)).await;
    assert_eq!(g.text(), "2", "the server pings");
    // No pong: the session ends.
    wait_session_gone(addr, EIO, &sid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_answered_keeps_session() {
    // pingTimeout a bit larger than the brief's 100 ms so a loaded machine does not flake.
    let (_s, addr) = start_engine(EngineConfig {
        ping_interval: Duration::from_millis(100),
        ping_timeout: Duration::from_millis(400),
        ..EngineConfig::default()
    })
    .await;
    let sid = open_polling(addr, EIO).await;
    for _ in 0..5 {
        let g = get(addr, &poll_url(EIO, &sid)).await;
        assert_eq!(g.status, 200, "{g:?}");
        assert_eq!(g.text(), "2");
        assert_eq!(post(addr, &poll_url(EIO, &sid), b"3").await.text(), "ok");
    }
    assert!(session_alive(addr, EIO, &sid).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ping_closes_the_session() {
    // In Engine.IO v4 only the server pings: engine.io 6.6.13 closes the session ("invalid
    // heartbeat direction"), so a POST of pings cannot queue pongs without bound.
    let addr = start_engine_default().await;
    let sid = open_polling(addr, EIO).await;
    let r = post(addr, &poll_url(EIO, &sid), b"2\x1e2\x1e2").await;
    assert_eq!(r.text(), "ok");
    get(addr, &poll_url(EIO, &sid))
        .await
        .assert_error(400, 1, "Session ID unknown");
}

// ---------------------------------------------------------------------------------------------
// Upgrade
// ---------------------------------------------------------------------------------------------

/// A message in the same TCP segment as the upgrade packet `5` is handled at once (not when the
/// next bytes arrive).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_packet_and_message_in_one_write() {
    let addr = start_engine_default().await;
    let sid = open_polling(addr, EIO).await;
    let mut ws = ws_connect(addr, &format!("{EIO}?EIO=4&transport=websocket&sid={sid}")).await;
    ws_send(&mut ws, "2probe").await;
    assert_eq!(ws_text(&mut ws).await, "3probe");
    ws.feed(WsMessage::text("5")).await.unwrap();
    ws.feed(WsMessage::text("4together")).await.unwrap();
    ws.flush().await.unwrap();
    assert_eq!(ws_text(&mut ws).await, "4together");
}

/// A WebSocket frame sent right behind the upgrade request (before the 101) is not left unread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_frame_pipelined_after_the_upgrade_request() {
    let addr = start_engine_default().await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut bytes = format!(
        "GET {EIO}?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Upgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes();
    // A masked text frame "4early".
    let mask = [1u8, 2, 3, 4];
    let payload = b"4early";
    bytes.extend_from_slice(&[0x81, 0x80 | payload.len() as u8]);
    bytes.extend_from_slice(&mask);
    bytes.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&bytes).await.unwrap();
    // The 101 head; whatever follows it is WebSocket data.
    let mut buf = Vec::new();
    let end = within("101 response", async {
        loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 1024];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed before the 101");
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    assert!(buf.starts_with(b"HTTP/1.1 101"), "{buf:?}");
    let rest = buf.split_off(end);
    let mut ws: Ws = WebSocketStream::from_partially_read(
        MaybeTlsStream::Plain(stream),
        rest,
        tokio_tungstenite::tungstenite::protocol::Role::Client,
        None,
    )
    .await;
    assert!(ws_text(&mut ws).await.starts_with('0'), "open packet first");
    assert_eq!(ws_text(&mut ws).await, "4early");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_polling_to_websocket() {
    let addr = start_engine_default().await;
    let sid = open_polling(addr, EIO).await;
    let url = poll_url(EIO, &sid);
    // A pending GET.
    let mut a = TcpStream::connect(addr).await.unwrap();
    write_request(&mut a, "GET", &url, &[], b"").await;
    let mut ws = ws_connect(addr, &format!("{EIO}?EIO=4&transport=websocket&sid={sid}")).await;
    ws_send(&mut ws, "2probe").await;
    assert_eq!(ws_text(&mut ws).await, "3probe");
    let g = within("pending GET", read_response(&mut a)).await;
    assert_eq!(g.status, 200);
    assert_eq!(g.text(), "6");
    ws_send(&mut ws, "5").await;
    ws_send(&mut ws, "4over ws").await;
    assert_eq!(ws_text(&mut ws).await, "4over ws");
    ws.send(WsMessage::binary(vec![9u8, 8])).await.unwrap();
    assert_eq!(ws_binary(&mut ws).await, vec![9, 8]);
    // Polling is over for this session.
    let r = get(addr, &url).await;
    assert_eq!(r.status, 400, "{r:?}");
    let r = post(addr, &url, b"4x").await;
    assert_eq!(r.status, 400, "{r:?}");
    // A second WebSocket on the same sid is accepted, then closed at once, as the reference
    // does (the official suite's "ignores WebSocket connection with same sid after upgrade").
    let url2 = format!("ws://{addr}{EIO}?EIO=4&transport=websocket&sid={sid}");
    let (mut ws2, resp) = within("second ws", tokio_tungstenite::connect_async(url2))
        .await
        .expect("the second WebSocket is accepted");
    assert_eq!(resp.status().as_u16(), 101);
    ws_send(&mut ws2, "2probe").await;
    let seen = ws_expect_closed(&mut ws2).await;
    assert!(seen.is_empty(), "second ws must not be served: {seen:?}");
    // The upgraded session keeps working.
    ws_send(&mut ws, "4again").await;
    assert_eq!(ws_text(&mut ws).await, "4again");
}

/// A client may issue one more poll between the probe and pausing; the server keeps ending
/// polls with noops until the upgrade packet arrives (the reference sends one every 100 ms).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_issued_during_the_upgrade_are_ended_with_noops() {
    let addr = start_engine_default().await;
    let sid = open_polling(addr, EIO).await;
    let url = poll_url(EIO, &sid);
    let mut ws = ws_connect(addr, &format!("{EIO}?EIO=4&transport=websocket&sid={sid}")).await;
    ws_send(&mut ws, "2probe").await;
    assert_eq!(ws_text(&mut ws).await, "3probe");
    for _ in 0..2 {
        let g = within("poll during the upgrade", get(addr, &url)).await;
        assert_eq!(g.status, 200);
        assert_eq!(g.text(), "6");
    }
    ws_send(&mut ws, "5").await;
    ws_send(&mut ws, "4after").await;
    assert_eq!(ws_text(&mut ws).await, "4after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_ends_a_poll_sent_after_the_probe() {
    // The client may send one more GET before it reads `3probe`; the reference answers it with
    // a noop within ~100 ms (not at the upgrade timeout), so the client can pause polling.
    let addr = start_engine_default().await;
    let sid = open_polling(addr, EIO).await;
    let url = poll_url(EIO, &sid);
    let mut a = TcpStream::connect(addr).await.unwrap();
    write_request(&mut a, "GET", &url, &[], b"").await;
    let mut ws = ws_connect(addr, &format!("{EIO}?EIO=4&transport=websocket&sid={sid}")).await;
    ws_send(&mut ws, "2probe").await;
    assert_eq!(ws_text(&mut ws).await, "3probe");
    assert_eq!(within("first GET", read_response(&mut a)).await.text(), "6");
    let mut b = TcpStream::connect(addr).await.unwrap();
    write_request(&mut b, "GET", &url, &[], b"").await;
    let g = tokio::time::timeout(Duration::from_secs(3), read_response(&mut b))
        .await
        .expect("a poll sent after the probe must be ended quickly");
    assert_eq!(g.status, 200);
    assert_eq!(g.text(), "6");
    ws_send(&mut ws, "5").await;
    ws_send(&mut ws, "4over ws").await;
    assert_eq!(ws_text(&mut ws).await, "4over ws");
}

/// The official suite's "should ignore HTTP requests with same sid after upgrade": a GET sent
/// right after `5` is refused, whichever of the two connections the server reads first (it
/// answered 200 with a noop when the GET won the race).
///
/// A probed upgrade also ends a pending GET with a noop every `PROBE_NOOP_INTERVAL` (100 ms,
/// the first tick when `3probe` is sent), as the reference does: a round whose GET was answered
/// 100 ms or more after `2probe` was sent may have met that tick (a loaded machine), proves
/// nothing and is run again; a noop sooner than that is the race this test is about.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_racing_the_upgrade_packet_is_refused() {
    const NOOP_TICK: Duration = Duration::from_millis(100);
    let addr = start_engine_default().await;
    let (mut refused, mut rounds) = (0, 0);
    while refused < 20 && rounds < 60 {
        rounds += 1;
        let sid = open_polling(addr, EIO).await;
        let url = poll_url(EIO, &sid);
        let mut ws = ws_connect(addr, &format!("{EIO}?EIO=4&transport=websocket&sid={sid}")).await;
        let probe_sent = std::time::Instant::now();
        ws_send(&mut ws, "2probe").await;
        assert_eq!(ws_text(&mut ws).await, "3probe");
        let mut get = TcpStream::connect(addr).await.unwrap();
        // The GET first on the wire, then `5`: the server may still read `5` first.
        write_request(&mut get, "GET", &url, &[], b"").await;
        ws_send(&mut ws, "5").await;
        let r = within("the racing GET", read_response(&mut get)).await;
        if r.status == 200 && r.text() == "6" && probe_sent.elapsed() >= NOOP_TICK {
            continue; // the probe's noop tick, not the race
        }
        assert_eq!(r.status, 400, "{r:?} after {:?}", probe_sent.elapsed());
        refused += 1;
        ws_send(&mut ws, "4still here").await;
        assert_eq!(ws_text(&mut ws).await, "4still here");
    }
    assert!(
        refused >= 5,
        "only {refused} of {rounds} rounds beat the noop tick"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_refused_when_disabled() {
    let (_s, addr) = start_engine(EngineConfig {
        allow_upgrades: false,
        ..EngineConfig::default()
    })
    .await;
    let sid = open_polling(addr, EIO).await;
    let url = format!("ws://{addr}{EIO}?EIO=4&transport=websocket&sid={sid}");
    match within("ws", tokio_tungstenite::connect_async(url)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 400)
        }
        other => panic!("expected a 400 refusal, got {other:?}"),
    }
    // The polling session is unaffected.
    assert!(session_alive(addr, EIO, &sid).await);
}

// ---------------------------------------------------------------------------------------------
// WebSocket limits
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_oversized_message_closes_only_that_connection() {
    let (server, addr) = start_engine(EngineConfig {
        max_http_buffer_size: 1000,
        ..EngineConfig::default()
    })
    .await;
    let target = format!("{EIO}?EIO=4&transport=websocket");
    let mut a = ws_connect(addr, &target).await;
    parse_open(&ws_text(&mut a).await);
    let mut b = ws_connect(addr, &target).await;
    parse_open(&ws_text(&mut b).await);
    let big = format!("4{}", "x".repeat(2000));
    ws_send(&mut a, &big).await;
    let seen = ws_expect_closed(&mut a).await;
    assert!(seen.is_empty(), "oversized message not echoed: {seen:?}");
    ws_send(&mut b, "4fine").await;
    assert_eq!(ws_text(&mut b).await, "4fine");
    wait_clients(&server, 1).await;
}

// ---------------------------------------------------------------------------------------------
// Socket.IO
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sio_connect_reply_has_exactly_sid() {
    let (_io, addr) = start_sio(ServerConfig::default()).await;
    let mut ws = sio_ws(addr).await;
    let sid = sio_connect(&mut ws).await;
    assert!(!sid.is_empty());
    ws_send(&mut ws, r#"42["echo",{"a":[1,2]}]"#).await;
    assert_eq!(ws_text(&mut ws).await, r#"42["echo-back",{"a":[1,2]}]"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sio_connect_over_polling() {
    let (_io, addr) = start_sio(ServerConfig::default()).await;
    let sid = open_polling(addr, SIO).await;
    assert_eq!(post(addr, &poll_url(SIO, &sid), b"40").await.text(), "ok");
    let g = get(addr, &poll_url(SIO, &sid)).await;
    let body = g.text();
    let v: serde_json::Value =
        serde_json::from_str(body.strip_prefix("40").expect("40 reply")).unwrap();
    assert_eq!(v.as_object().unwrap().len(), 1);
    assert!(v["sid"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_session_closed_with_no_get_pending_gets_the_close_packet_next() {
    // As the reference: the close waits for the client's next GET instead of answering it
    // with "Session ID unknown" (which a client reports as a transport error).
    let (io, addr) = start_sio(ServerConfig::default()).await;
    io.of("/").on_connection(|socket| {
        socket.on("drop", |s, _, _| s.conn().close());
    });
    let sid = open_polling(addr, SIO).await;
    assert_eq!(post(addr, &poll_url(SIO, &sid), b"40").await.text(), "ok");
    assert!(get(addr, &poll_url(SIO, &sid))
        .await
        .text()
        .starts_with("40"));
    // No GET is pending when the server closes the session.
    assert_eq!(
        post(addr, &poll_url(SIO, &sid), br#"42["drop"]"#)
            .await
            .text(),
        "ok"
    );
    wait_until_closed(&io, &sid).await;
    let g = get(addr, &poll_url(SIO, &sid)).await;
    assert_eq!(g.status, 200, "{g:?}");
    assert_eq!(g.text(), "1");
    // Then the session is gone.
    get(addr, &poll_url(SIO, &sid))
        .await
        .assert_error(400, 1, "Session ID unknown");
    wait_clients(io.engine(), 0).await;
}

/// Waits until the server has no connected Socket.IO socket on `/` (the session `sid` closed).
async fn wait_until_closed(io: &Server, sid: &str) {
    within(&format!("session {sid} closing"), async {
        while !io.of("/").fetch_sockets().await.unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sio_invalid_namespace() {
    let (_io, addr) = start_sio(ServerConfig::default()).await;
    let mut ws = sio_ws(addr).await;
    ws_send(&mut ws, "40/nope,").await;
    assert_eq!(
        ws_text(&mut ws).await,
        r#"44/nope,{"message":"Invalid namespace"}"#
    );
    // The connection stays up: `/` can still be joined on it.
    sio_connect(&mut ws).await;
    drop(ws);
    assert_serves(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sio_first_packet_not_connect_closes() {
    sio_bad_packet_closes(&[r#"42["a"]"#], false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sio_event_with_object_payload_closes() {
    sio_bad_packet_closes(&["42{}"], true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sio_event_with_empty_array_closes() {
    sio_bad_packet_closes(&["42[]"], true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sio_event_with_numeric_name_is_accepted() {
    // The reference parser accepts a number as the event name (`typeof payload[0] === "number"`).
    let (_io, addr) = start_sio(ServerConfig::default()).await;
    let mut ws = sio_ws(addr).await;
    sio_connect(&mut ws).await;
    ws_send(&mut ws, "42[1,2]").await;
    ws_send(&mut ws, r#"42["echo","after"]"#).await;
    assert_eq!(ws_text(&mut ws).await, r#"42["echo-back","after"]"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sio_event_with_object_name_closes() {
    sio_bad_packet_closes(&[r#"42[{"a":1}]"#], true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sio_event_with_reserved_name_closes() {
    // Reference: RESERVED_EVENTS (connect, connect_error, disconnect, disconnecting,
    // newListener, removeListener) are refused by the parser.
    sio_bad_packet_closes(&[r#"42["disconnect"]"#], true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sio_ack_with_object_payload_closes() {
    sio_bad_packet_closes(&[r#"431{"a":1}"#], true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sio_connect_with_array_auth_closes() {
    sio_bad_packet_closes(&["40[1]"], false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sio_huge_attachment_count_closes() {
    sio_bad_packet_closes(
        &[r#"451000000000-["a",{"_placeholder":true,"num":0}]"#],
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sio_garbage_packet_closes() {
    sio_bad_packet_closes(&["4xyz"], true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sio_garbage_before_connect_closes() {
    sio_bad_packet_closes(&["4xyz"], false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sio_middleware_refusal() {
    let (io, addr) = start_sio(ServerConfig::default()).await;
    io.of("/guarded").use_middleware(|_| {
        Err(ConnectError::new("nope").with_data(Value::from(json!({"reason": "test", "n": 1}))))
    });
    io.of("/plain")
        .use_middleware(|_| Err(ConnectError::new("plain refusal")));
    let mut ws = sio_ws(addr).await;
    ws_send(&mut ws, "40/guarded,").await;
    assert_eq!(
        ws_text(&mut ws).await,
        r#"44/guarded,{"message":"nope","data":{"reason":"test","n":1}}"#
    );
    ws_send(&mut ws, "40/plain,").await;
    assert_eq!(
        ws_text(&mut ws).await,
        r#"44/plain,{"message":"plain refusal"}"#
    );
    // `/` is unaffected.
    sio_connect(&mut ws).await;
    ws_send(&mut ws, r#"42["echo","x"]"#).await;
    assert_eq!(ws_text(&mut ws).await, r#"42["echo-back","x"]"#);
}

/// A client may not send to a namespace before its CONNECT reply (socket.io-client buffers
/// until then); one that does while a middleware runs is closed, as socket.io closes it
/// ("invalid state"), instead of its packets piling up. Once the reply went out, what arrives
/// while the connection handlers still run is delivered, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sio_events_before_the_connect_reply_close_the_connection() {
    let (io, addr) = start_sio(ServerConfig::default()).await;
    io.of("/slow").use_async(|_| async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        Ok(())
    });
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    io.of("/busy").on_connection(move |socket| {
        // a slow connection handler: the client's events arrive while it runs
        std::thread::sleep(Duration::from_millis(300));
        let tx = seen_tx.clone();
        socket.on("n", move |_, args, _| {
            let _ = tx.send(format!("{args:?}"));
        });
    });
    let mut ws = sio_ws(addr).await;
    sio_connect(&mut ws).await;
    ws_send(&mut ws, "40/busy,").await;
    let reply = ws_text(&mut ws).await;
    assert!(reply.starts_with("40/busy,{"), "{reply}");
    for i in 0..50 {
        ws_send(&mut ws, &format!(r#"42/busy,["n",{i}]"#)).await;
    }
    for i in 0..50 {
        let got = within("an early event", seen_rx.recv())
            .await
            .expect("event");
        assert!(got.contains(&format!("{i}")), "event {i} in order: {got}");
    }
    // Before the reply: the connection is closed, the namespace never joined.
    ws_send(&mut ws, "40/slow,").await;
    // The server may close (and reset) the connection while the flood is still being written.
    for i in 0..1000 {
        let event = WsMessage::text(format!(r#"42/slow,["n",{i}]"#));
        if ws.send(event).await.is_err() {
            break;
        }
    }
    let seen = ws_expect_closed(&mut ws).await;
    assert!(
        seen.iter().all(|t| !t.starts_with("40/slow")),
        "no CONNECT reply: {seen:?}"
    );
    wait_clients(io.engine(), 0).await;
    assert_eq!(io.of("/slow").sockets().len(), 0);
    assert_serves(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sio_connect_timeout_closes_session() {
    let (io, addr) = start_sio(ServerConfig {
        connect_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    })
    .await;
    // Polling: the pending GET ends with a close packet, then the sid is unknown.
    let sid = open_polling(addr, SIO).await;
    let g = get(addr, &poll_url(SIO, &sid)).await;
    assert_eq!(g.status, 200, "{g:?}");
    assert_eq!(g.text(), "1");
    wait_session_gone(addr, SIO, &sid).await;
    // WebSocket: the server closes it.
    let mut ws = sio_ws(addr).await;
    ws_expect_closed(&mut ws).await;
    wait_clients(io.engine(), 0).await;
    // A client that connects in time stays.
    let mut ws = sio_ws(addr).await;
    sio_connect(&mut ws).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    ws_send(&mut ws, r#"42["echo","late"]"#).await;
    assert_eq!(ws_text(&mut ws).await, r#"42["echo-back","late"]"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sio_binary_event_reaches_handler() {
    let (io, addr) = start_sio(ServerConfig::default()).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<Value>>();
    io.on_connection(move |socket| {
        let tx = tx.clone();
        socket.on("bin", move |s, args, _| {
            let _ = tx.send(args.clone());
            let _ = s.emit("bin-back", args);
        });
    });
    let mut ws = sio_ws(addr).await;
    sio_connect(&mut ws).await;
    ws_send(&mut ws, r#"451-["bin",{"_placeholder":true,"num":0},"t"]"#).await;
    ws.send(WsMessage::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    let args = within("handler called", rx.recv()).await.unwrap();
    assert_eq!(
        args,
        vec![
            Value::Bytes(bytes::Bytes::from_static(&[0, 1, 2, 255])),
            Value::from("t")
        ]
    );
    assert_eq!(
        ws_text(&mut ws).await,
        r#"451-["bin-back",{"_placeholder":true,"num":0},"t"]"#
    );
    assert_eq!(ws_binary(&mut ws).await, vec![0, 1, 2, 255]);
}

// ---------------------------------------------------------------------------------------------
// More Engine.IO close rules
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_concurrent_post_is_400_and_closes() {
    let addr = start_engine_default().await;
    let sid = open_polling(addr, EIO).await;
    let url = poll_url(EIO, &sid);
    // A POST whose body never completes stays pending on the server.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {url} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: 100\r\n\r\n4partial"
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = post(addr, &url, b"4second").await;
    assert_eq!(r.status, 400, "{r:?}");
    wait_session_gone(addr, EIO, &sid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn octet_stream_post_closes_session() {
    // EIO 4 polling never carries raw binary bodies: the reference closes ("invalid content").
    let addr = start_engine_default().await;
    let sid = open_polling(addr, EIO).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    write_request(
        &mut s,
        "POST",
        &poll_url(EIO, &sid),
        &[("Content-Type", "application/octet-stream")],
        &[4, 1, 2, 3],
    )
    .await;
    // The answer itself does not matter (the reference leaves the request hanging).
    let _ = tokio::time::timeout(Duration::from_millis(500), read_response(&mut s)).await;
    wait_session_gone(addr, EIO, &sid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_method_on_session_is_500() {
    let addr = start_engine_default().await;
    let sid = open_polling(addr, EIO).await;
    let r = request(addr, "PUT", &poll_url(EIO, &sid), &[], b"4x").await;
    assert_eq!(r.status, 500, "{r:?}");
    // Without a sid, any non-GET is a bad handshake method.
    request(
        addr,
        "PUT",
        &format!("{EIO}?EIO=4&transport=polling"),
        &[],
        b"",
    )
    .await
    .assert_error(400, 2, "Bad handshake method");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_buffers_until_next_get() {
    let addr = start_engine_default().await;
    let sid = open_polling(addr, EIO).await;
    let url = poll_url(EIO, &sid);
    for i in 0..3 {
        assert_eq!(
            post(addr, &url, format!("4m{i}").as_bytes()).await.text(),
            "ok"
        );
    }
    let mut got: Vec<String> = Vec::new();
    within("three echoes", async {
        while got.len() < 3 {
            let g = get(addr, &url).await;
            got.extend(g.text().split('\x1e').map(str::to_owned));
        }
    })
    .await;
    assert_eq!(got, ["4m0", "4m1", "4m2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_timeout_keeps_polling_session() {
    let (_s, addr) = start_engine(EngineConfig {
        upgrade_timeout: Duration::from_millis(200),
        ..EngineConfig::default()
    })
    .await;
    let sid = open_polling(addr, EIO).await;
    let target = format!("{EIO}?EIO=4&transport=websocket&sid={sid}");
    let mut ws = ws_connect(addr, &target).await;
    // No probe: the upgrade times out and the WebSocket is closed.
    let seen = ws_expect_closed(&mut ws).await;
    assert!(seen.is_empty(), "{seen:?}");
    assert!(session_alive(addr, EIO, &sid).await);
    // A later upgrade still works.
    let mut ws = ws_connect(addr, &target).await;
    ws_send(&mut ws, "2probe").await;
    assert_eq!(ws_text(&mut ws).await, "3probe");
    assert_eq!(get(addr, &poll_url(EIO, &sid)).await.text(), "6");
    ws_send(&mut ws, "5").await;
    ws_send(&mut ws, "4up").await;
    assert_eq!(ws_text(&mut ws).await, "4up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_with_unexpected_packet_is_aborted() {
    let addr = start_engine_default().await;
    let sid = open_polling(addr, EIO).await;
    let mut ws = ws_connect(addr, &format!("{EIO}?EIO=4&transport=websocket&sid={sid}")).await;
    ws_send(&mut ws, "4not a probe").await;
    let seen = ws_expect_closed(&mut ws).await;
    assert!(seen.is_empty(), "{seen:?}");
    // The polling session goes on.
    assert!(session_alive(addr, EIO, &sid).await);
    post(addr, &poll_url(EIO, &sid), b"4still polling").await;
    assert_eq!(
        get(addr, &poll_url(EIO, &sid)).await.text(),
        "4still polling"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_during_upgrade_are_not_lost() {
    let addr = start_engine_default().await;
    let sid = open_polling(addr, EIO).await;
    let url = poll_url(EIO, &sid);
    let mut ws = ws_connect(addr, &format!("{EIO}?EIO=4&transport=websocket&sid={sid}")).await;
    ws_send(&mut ws, "2probe").await;
    assert_eq!(ws_text(&mut ws).await, "3probe");
    assert_eq!(get(addr, &url).await.text(), "6");
    // Between the probe and `5`, the client may still POST; the echo must arrive on the WS.
    assert_eq!(post(addr, &url, b"4in between").await.text(), "ok");
    ws_send(&mut ws, "5").await;
    assert_eq!(ws_text(&mut ws).await, "4in between");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_close_packet_closes_session() {
    let (server, addr) = start_engine(EngineConfig::default()).await;
    let mut ws = ws_connect(addr, &format!("{EIO}?EIO=4&transport=websocket")).await;
    parse_open(&ws_text(&mut ws).await);
    assert_eq!(server.clients_count(), 1);
    ws_send(&mut ws, "1").await;
    ws_expect_closed(&mut ws).await;
    wait_clients(&server, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_invalid_packet_closes_session() {
    let (server, addr) = start_engine(EngineConfig::default()).await;
    let mut ws = ws_connect(addr, &format!("{EIO}?EIO=4&transport=websocket")).await;
    parse_open(&ws_text(&mut ws).await);
    ws_send(&mut ws, "9garbage").await;
    ws_expect_closed(&mut ws).await;
    wait_clients(&server, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_heartbeat_timeout_and_pong() {
    let (server, addr) = start_engine(EngineConfig {
        ping_interval: Duration::from_millis(100),
        ping_timeout: Duration::from_millis(400),
        ..EngineConfig::default()
    })
    .await;
    let target = format!("{EIO}?EIO=4&transport=websocket");
    // Answering client.
    let mut good = ws_connect(addr, &target).await;
    parse_open(&ws_text(&mut good).await);
    // Silent client.
    let mut silent = ws_connect(addr, &target).await;
    parse_open(&ws_text(&mut silent).await);
    let silent_task = tokio::spawn(async move { ws_expect_closed(&mut silent).await });
    for _ in 0..4 {
        assert_eq!(ws_text(&mut good).await, "2");
        ws_send(&mut good, "3").await;
    }
    let seen = within("silent client closed", silent_task).await.unwrap();
    assert!(seen.iter().all(|t| t == "2"), "{seen:?}");
    ws_send(&mut good, "4alive").await;
    loop {
        let t = ws_text(&mut good).await;
        if t == "2" {
            ws_send(&mut good, "3").await;
            continue;
        }
        assert_eq!(t, "4alive");
        break;
    }
    wait_clients(&server, 1).await;
}

// ---------------------------------------------------------------------------------------------
// More Socket.IO
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sio_custom_namespace_connect_without_comma() {
    let (io, addr) = start_sio(ServerConfig::default()).await;
    io.of("/custom");
    let mut ws = sio_ws(addr).await;
    ws_send(&mut ws, "40/custom").await;
    let reply = ws_text(&mut ws).await;
    let json = reply
        .strip_prefix("40/custom,")
        .unwrap_or_else(|| panic!("{reply:?}"));
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(v.as_object().unwrap().len(), 1);
    let sid = v["sid"].as_str().unwrap();
    let engine_sid = io.engine().sessions()[0].sid().to_owned();
    assert_ne!(sid, engine_sid, "the socket id is not the Engine.IO sid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sio_second_connect_on_same_namespace_closes() {
    sio_bad_packet_closes(&["40"], true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sio_namespace_disconnect_keeps_others() {
    let (io, addr) = start_sio(ServerConfig::default()).await;
    io.of("/custom");
    let mut ws = sio_ws(addr).await;
    sio_connect(&mut ws).await;
    ws_send(&mut ws, "40/custom,").await;
    assert!(ws_text(&mut ws).await.starts_with("40/custom,{"));
    ws_send(&mut ws, "41/custom,").await;
    // `/` and the Engine.IO session stay up.
    ws_send(&mut ws, r#"42["echo","x"]"#).await;
    assert_eq!(ws_text(&mut ws).await, r#"42["echo-back","x"]"#);
    within("socket removed from /custom", async {
        while !io.of("/custom").sockets().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    // An event on the namespace that is no longer connected closes the connection.
    ws_send(&mut ws, r#"42/custom,["x"]"#).await;
    ws_expect_closed(&mut ws).await;
    assert_serves(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sio_server_ack_ids_and_client_ack() {
    let (io, addr) = start_sio(ServerConfig::default()).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<Value>>();
    io.of("/acks").on_connection(move |socket| {
        let tx = tx.clone();
        let _ = socket.emit_with_ack_cb("ask", vec![Value::from(1)], None, move |r| {
            let _ = tx.send(r.expect("ack"));
        });
    });
    let mut ws = sio_ws(addr).await;
    ws_send(&mut ws, "40/acks,").await;
    assert!(ws_text(&mut ws).await.starts_with("40/acks,{"));
    assert_eq!(ws_text(&mut ws).await, r#"42/acks,0["ask",1]"#);
    ws_send(&mut ws, r#"43/acks,0["answer",{"k":true}]"#).await;
    let args = within("ack callback", rx.recv()).await.unwrap();
    assert_eq!(
        args,
        vec![Value::from("answer"), Value::from(json!({"k": true}))]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sio_client_ack_request_is_answered() {
    let (io, addr) = start_sio(ServerConfig::default()).await;
    io.on_connection(|socket| {
        socket.on("with-ack", |_, args, ack| {
            if let Some(ack) = ack {
                let _ = ack.send(args);
            }
        });
    });
    let mut ws = sio_ws(addr).await;
    sio_connect(&mut ws).await;
    ws_send(&mut ws, r#"4213["with-ack","a",2]"#).await;
    assert_eq!(ws_text(&mut ws).await, r#"4313["a",2]"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sio_auth_reaches_handshake() {
    let (io, addr) = start_sio(ServerConfig::default()).await;
    io.on_connection(|socket| {
        let _ = socket.emit("auth", vec![socket.handshake().auth.clone()]);
    });
    let mut ws = sio_ws(addr).await;
    ws_send(&mut ws, r#"40{"token":"abc"}"#).await;
    assert!(ws_text(&mut ws).await.starts_with(r#"40{"sid":"#));
    assert_eq!(ws_text(&mut ws).await, r#"42["auth",{"token":"abc"}]"#);
    let mut ws = sio_ws(addr).await;
    sio_connect(&mut ws).await;
    assert_eq!(ws_text(&mut ws).await, r#"42["auth",{}]"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_base64_post_closes_session() {
    let addr = start_engine_default().await;
    let sid = open_polling(addr, EIO).await;
    post(addr, &poll_url(EIO, &sid), b"b!!!not base64").await;
    wait_session_gone(addr, EIO, &sid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_post_body_closes_session() {
    // Reference: decodePayload("") yields an error packet, and an error packet closes the
    // session ("parse error").
    let addr = start_engine_default().await;
    let sid = open_polling(addr, EIO).await;
    post(addr, &poll_url(EIO, &sid), b"").await;
    wait_session_gone(addr, EIO, &sid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_upgrade_is_refused() {
    let addr = start_engine_default().await;
    let sid = open_polling(addr, EIO).await;
    let target = format!("{EIO}?EIO=4&transport=websocket&sid={sid}");
    let mut first = ws_connect(addr, &target).await;
    let url = format!("ws://{addr}{target}");
    match within("second ws", tokio_tungstenite::connect_async(url)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 400)
        }
        Err(e) => panic!("unexpected error {e:?}"),
        Ok((mut ws2, _)) => {
            ws_send(&mut ws2, "2probe").await;
            let seen = ws_expect_closed(&mut ws2).await;
            assert!(
                seen.is_empty(),
                "second upgrade must not be served: {seen:?}"
            );
        }
    }
    // The first upgrade still completes.
    ws_send(&mut first, "2probe").await;
    assert_eq!(ws_text(&mut first).await, "3probe");
    ws_send(&mut first, "5").await;
    ws_send(&mut first, "4done").await;
    assert_eq!(ws_text(&mut first).await, "4done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sio_client_connect_error_packet_closes() {
    sio_bad_packet_closes(&[r#"44{"message":"x"}"#], true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sio_text_while_waiting_for_attachment_closes() {
    sio_bad_packet_closes(
        &[
            r#"451-["echo",{"_placeholder":true,"num":0}]"#,
            r#"42["echo","x"]"#,
        ],
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sio_stray_binary_frame_closes() {
    let (io, addr) = start_sio(ServerConfig::default()).await;
    let mut ws = sio_ws(addr).await;
    sio_connect(&mut ws).await;
    ws.send(WsMessage::binary(vec![1u8, 2, 3])).await.unwrap();
    ws_expect_closed(&mut ws).await;
    wait_clients(io.engine(), 0).await;
    assert_serves(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sio_server_namespace_disconnect_sends_41() {
    let (io, addr) = start_sio(ServerConfig::default()).await;
    io.on_connection(|socket| {
        socket.on("bye", |s, _, _| s.disconnect(false));
    });
    let mut ws = sio_ws(addr).await;
    sio_connect(&mut ws).await;
    ws_send(&mut ws, r#"42["bye"]"#).await;
    assert_eq!(ws_text(&mut ws).await, "41");
    // The Engine.IO session stays; the client may connect again.
    assert_eq!(io.engine().clients_count(), 1);
    sio_connect(&mut ws).await;
    ws_send(&mut ws, r#"42["echo","again"]"#).await;
    assert_eq!(ws_text(&mut ws).await, r#"42["echo-back","again"]"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sio_binary_event_over_polling() {
    let (io, addr) = start_sio(ServerConfig::default()).await;
    io.on_connection(|socket| {
        socket.on("bin", |s, args, _| {
            let _ = s.emit("bin-back", args);
        });
    });
    let sid = open_polling(addr, SIO).await;
    let url = poll_url(SIO, &sid);
    post(addr, &url, b"40").await;
    assert!(get(addr, &url).await.text().starts_with("40{"));
    let body = b"451-[\"bin\",{\"_placeholder\":true,\"num\":0}]\x1ebAAEC";
    assert_eq!(post(addr, &url, body).await.text(), "ok");
    let mut got = String::new();
    within("binary echo", async {
        while !got.contains("bAAEC") {
            let t = get(addr, &url).await.text();
            if !got.is_empty() {
                got.push('\x1e');
            }
            got.push_str(&t);
        }
    })
    .await;
    assert_eq!(
        got,
        "451-[\"bin-back\",{\"_placeholder\":true,\"num\":0}]\x1ebAAEC"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sio_server_close_ends_connections() {
    let (io, addr) = start_sio(ServerConfig::default()).await;
    let mut ws = sio_ws(addr).await;
    sio_connect(&mut ws).await;
    let sid = open_polling(addr, SIO).await;
    let mut pending = TcpStream::connect(addr).await.unwrap();
    write_request(&mut pending, "GET", &poll_url(SIO, &sid), &[], b"").await;
    // Most likely the GET is pending by now (not guaranteed: both answers are checked below).
    assert!(session_alive(addr, SIO, &sid).await);
    io.close().await;
    ws_expect_closed(&mut ws).await;
    let g = within("pending GET", read_response(&mut pending)).await;
    if g.status == 200 {
        assert!(g.text().ends_with('1'), "close packet: {:?}", g.text());
    } else {
        // The GET reached the server only after the close.
        g.assert_error(400, 1, "Session ID unknown");
    }
    assert_eq!(io.engine().clients_count(), 0);
}

// ---------------------------------------------------------------------------------------------
// Divergences from the reference (ignored until fixed)
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_precedence_matches_reference() {
    let addr = start_engine_default().await;
    // Reference verify(): transport first.
    get(addr, &format!("{EIO}?transport=foo"))
        .await
        .assert_error(400, 0, "Transport unknown");
    // sid checks come before the protocol version, which only a handshake looks at.
    get(addr, &format!("{EIO}?EIO=3&transport=polling&sid=nope"))
        .await
        .assert_error(400, 1, "Session ID unknown");
    post(addr, &format!("{EIO}?EIO=3&transport=polling"), b"4x")
        .await
        .assert_error(400, 2, "Bad handshake method");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_sid_is_a_handshake() {
    let addr = start_engine_default().await;
    let r = get(addr, &format!("{EIO}?EIO=4&transport=polling&sid=")).await;
    assert_eq!(r.status, 200, "{r:?}");
    parse_open(&r.text());
}

/// Broadcasts are written to each client by flush tasks; to a client that does not read, they
/// fill the socket's buffer, and the rest goes out once it reads: every packet whole, in order,
/// interleaved with the replies to what the client sent meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_to_a_slow_reader_arrive_whole_and_in_order() {
    let (io, addr) = start_sio(ServerConfig::default()).await;
    let mut ws = sio_ws(addr).await;
    sio_connect(&mut ws).await;
    let big = "x".repeat(20_000);
    // More than loopback socket buffers hold, so flushes stop in the middle of a frame.
    let n = 800;
    let emitter = {
        let io = io.clone();
        let big = big.clone();
        tokio::task::spawn_blocking(move || {
            for i in 0..n {
                io.emit("big", vec![Value::from(i), Value::from(big.as_str())])
                    .unwrap();
            }
        })
    };
    for i in 0..5 {
        ws_send(&mut ws, &format!("42[\"echo\",{i}]")).await;
    }
    within("the broadcasts to be queued", emitter)
        .await
        .unwrap();
    let (mut next_big, mut next_echo) = (0, 0);
    while next_big < n || next_echo < 5 {
        let t = ws_text(&mut ws).await;
        if let Some(rest) = t.strip_prefix("42[\"echo-back\",") {
            assert_eq!(rest, format!("{next_echo}]"));
            next_echo += 1;
            continue;
        }
        assert_eq!(
            t,
            format!("42[\"big\",{next_big},\"{big}\"]"),
            "packet {next_big}"
        );
        next_big += 1;
    }
}

// ---------------------------------------------------------------------------------------------
// Limits and timeouts (issue 14): a client doing the bad thing, then a normal client served
// ---------------------------------------------------------------------------------------------

/// True once the server closed `s` (EOF or reset), within `limit`.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(limit, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

fn short_listener(engine: &mut EngineConfig) {
    engine.listener.headers_timeout = Duration::from_millis(400);
    engine.listener.keep_alive_timeout = Duration::from_millis(300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_sends_a_request_is_closed() {
    let mut config = EngineConfig::default();
    short_listener(&mut config);
    let (_s, addr) = start_engine(config).await;
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut trickle = TcpStream::connect(addr).await.unwrap();
    trickle
        .write_all(b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\n")
        .await
        .unwrap();
    let start = std::time::Instant::now();
    assert!(
        closed_within(&mut silent, T).await,
        "silent connection kept"
    );
    assert!(
        start.elapsed() >= Duration::from_millis(350),
        "closed before the headers timeout: {:?}",
        start.elapsed()
    );
    // A head trickled slower than the timeout is cut off too.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = trickle.write_all(b"Host: 127.0.0.1\r\n").await;
    assert!(closed_within(&mut trickle, T).await, "trickled head kept");
    open_polling(addr, EIO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed() {
    let mut config = EngineConfig::default();
    short_listener(&mut config);
    config.listener.headers_timeout = Duration::from_secs(30);
    let (_s, addr) = start_engine(config).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let r = within("the handshake", read_response(&mut s)).await;
    assert_eq!(r.status, 200);
    let start = std::time::Instant::now();
    assert!(
        closed_within(&mut s, T).await,
        "idle keep-alive connection kept"
    );
    let idle = start.elapsed();
    assert!(
        idle >= Duration::from_millis(250) && idle < Duration::from_secs(5),
        "closed after {idle:?}, the keep-alive timeout is 300 ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_outlives_the_keep_alive_timeout() {
    let mut config = EngineConfig::default();
    short_listener(&mut config);
    config.ping_interval = Duration::from_millis(1500);
    let (_s, addr) = start_engine(config).await;
    let sid = open_polling(addr, EIO).await;
    // The GET waits for the first ping, 1.5 s: far past the keep-alive timeout of 300 ms.
    let r = get(addr, &poll_url(EIO, &sid)).await;
    assert_eq!(r.text(), "2");
}

/// A server with `config` and a polling session on it, and a connection on which a POST to the
/// session has been started: its head up to the framing header, then `rest`.
async fn post_head(config: EngineConfig, rest: &str) -> (SocketAddr, String, TcpStream) {
    let (_s, addr) = start_engine(config).await;
    let sid = open_polling(addr, EIO).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!("POST {} HTTP/1.1\r\nHost: x\r\n{rest}", poll_url(EIO, &sid));
    s.write_all(head.as_bytes()).await.unwrap();
    (addr, sid, s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_post_body_is_408_and_ends_the_session() {
    let (addr, sid, mut s) = post_head(
        EngineConfig {
            http_request_body_timeout: Duration::from_millis(300),
            ..EngineConfig::default()
        },
        "Content-Length: 100\r\n\r\n4partial",
    )
    .await;
    let start = std::time::Instant::now();
    let r = within("the 408", read_response(&mut s)).await;
    assert_eq!(r.status, 408, "{r:?}");
    assert!(start.elapsed() >= Duration::from_millis(250));
    wait_session_gone(addr, EIO, &sid).await;
    open_polling(addr, EIO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_in_too_many_chunks_is_413() {
    let (addr, sid, mut s) = post_head(
        EngineConfig {
            max_buffered_chunks: 3,
            ..EngineConfig::default()
        },
        "Transfer-Encoding: chunked\r\n\r\n",
    )
    .await;
    for c in ["4a", "bc", "de", "fg", "hi"] {
        // One TCP segment per chunk, so hyper hands them over one by one.
        let _ = s.write_all(format!("2\r\n{c}\r\n").as_bytes()).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let r = within("the 413", read_response(&mut s)).await;
    assert_eq!(r.status, 413, "{r:?}");
    wait_session_gone(addr, EIO, &sid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_gets_is_closed_at_the_outbox_bound() {
    let (server, addr) = start_engine(EngineConfig {
        max_buffered_bytes: 64 * 1024,
        ..EngineConfig::default()
    })
    .await;
    let sid = open_polling(addr, EIO).await;
    // Each POST is echoed into the outbox; the client never GETs.
    let body = vec![format!("4{}", "x".repeat(1000)); 20].join("\x1e");
    let mut posts = 0;
    while session_alive(addr, EIO, &sid).await {
        posts += 1;
        assert!(posts < 50, "the outbox grew past its bound");
        post(addr, &poll_url(EIO, &sid), body.as_bytes()).await;
    }
    assert!(
        posts >= 3,
        "closed after {posts} posts, before 64 KiB were queued"
    );
    wait_clients(&server, 0).await;
    open_polling(addr, EIO).await;
}

/// A long-polling client that stops reading its GET's response loses the connection after
/// `write_timeout`, as a WebSocket one does, instead of holding it for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polling_client_that_never_reads_its_response_is_cut_off() {
    let (io, addr) = start_sio(ServerConfig {
        engine: EngineConfig {
            path: SIO.into(),
            write_timeout: Duration::from_millis(500),
            max_buffered_bytes: 256 << 20,
            ..EngineConfig::default()
        },
        ..ServerConfig::default()
    })
    .await;
    let sid = open_polling(addr, SIO).await;
    post(addr, &poll_url(SIO, &sid), b"40").await;
    let connect = get(addr, &poll_url(SIO, &sid)).await;
    assert!(connect.text().starts_with("40{"), "{connect:?}");
    // 48 MB for the next GET: more than the loopback's socket buffers take.
    let big = "z".repeat(1 << 20);
    for _ in 0..48 {
        io.emit("big", vec![Value::from(big.as_str())]).unwrap();
    }
    let mut s = TcpStream::connect(addr).await.unwrap();
    write_request(&mut s, "GET", &poll_url(SIO, &sid), &[], b"").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // Now read: what the kernel buffered, then the end (EOF or reset), well short of 48 MB.
    let mut total = 0usize;
    let ended = within("the connection to end", async {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(n) => total += n,
            }
        }
    })
    .await;
    assert!(ended);
    assert!(
        total < 40 << 20,
        "read {total} bytes: the whole response went out"
    );
    assert_serves(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_client_that_never_reads_is_disconnected() {
    let (io, addr) = start_sio(ServerConfig {
        engine: EngineConfig {
            path: SIO.into(),
            write_timeout: Duration::from_millis(500),
            ..EngineConfig::default()
        },
        ..ServerConfig::default()
    })
    .await;
    let reasons = Arc::new(std::sync::Mutex::new(Vec::new()));
    let r = reasons.clone();
    io.of("/").on_connection(move |socket| {
        let r = r.clone();
        socket.on_disconnect(move |_, reason| r.lock().unwrap().push(reason.as_str().to_owned()));
    });
    // A raw TCP client: it upgrades, connects, then never reads again.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {SIO}?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    // A masked client text frame "40".
    s.write_all(&[0x81, 0x82, 1, 2, 3, 4, b'4' ^ 1, b'0' ^ 2])
        .await
        .unwrap();
    within("the socket to connect", async {
        while io.of("/").sockets().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let big = "y".repeat(64 * 1024);
    let started = std::time::Instant::now();
    while io.engine().clients_count() > 0 {
        assert!(started.elapsed() < T, "the stuck client was kept");
        let _ = io.emit("flood", vec![Value::from(big.as_str())]);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    within("the disconnect reason", async {
        while reasons.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(reasons.lock().unwrap().as_slice(), ["transport error"]);
    assert_serves(addr).await;
}

/// A WebSocket client gone without a close frame (its TCP connection ended, or reset) is a
/// `transport close`, as engine.io reports it (ws gives a 1006 close); a protocol violation
/// stays a `transport error`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_gone_without_a_close_frame_is_a_transport_close() {
    let (io, addr) = start_sio(ServerConfig::default()).await;
    let reasons = Arc::new(std::sync::Mutex::new(Vec::new()));
    let r = reasons.clone();
    io.of("/").on_connection(move |socket| {
        let r = r.clone();
        socket.on_disconnect(move |_, reason| r.lock().unwrap().push(reason.as_str().to_owned()));
    });
    let wait_reasons = |n: usize| {
        let reasons = reasons.clone();
        within("the disconnect reasons", async move {
            while reasons.lock().unwrap().len() < n {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    // EOF without a close frame.
    let mut ws = sio_ws(addr).await;
    sio_connect(&mut ws).await;
    drop(ws);
    wait_reasons(1).await;
    // A reset (SO_LINGER 0).
    let mut ws = sio_ws(addr).await;
    sio_connect(&mut ws).await;
    if let MaybeTlsStream::Plain(tcp) = ws.get_ref() {
        #[allow(deprecated)]
        tcp.set_linger(Some(Duration::ZERO)).unwrap();
    }
    drop(ws);
    wait_reasons(2).await;
    // An unmasked client frame: a protocol violation.
    let mut ws = sio_ws(addr).await;
    sio_connect(&mut ws).await;
    if let MaybeTlsStream::Plain(tcp) = ws.get_mut() {
        tcp.write_all(&[0x81, 0x02, b'4', b'2']).await.unwrap();
    }
    wait_reasons(3).await;
    assert_eq!(
        reasons.lock().unwrap().as_slice(),
        ["transport close", "transport close", "transport error"]
    );
    assert_serves(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_are_answered_503() {
    let mut config = EngineConfig::default();
    config.listener.max_connections = Some(2);
    let (_s, addr) = start_engine(config).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        write_request(
            &mut s,
            "GET",
            &format!("{EIO}?EIO=4&transport=polling"),
            &[],
            b"",
        )
        .await;
        assert_eq!(
            within("a handshake", read_response(&mut s)).await.status,
            200
        );
        held.push(s);
    }
    // "Connection: close" answers leave the sockets to close: wait until the server let go.
    drop(held);
    let mut a = TcpStream::connect(addr).await.unwrap();
    let mut b = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = request(
        addr,
        "GET",
        &format!("{EIO}?EIO=4&transport=polling"),
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 503, "{r:?}");
    drop((a.write_all(b"").await, b.write_all(b"").await));
    drop((a, b));
    within("a slot to free up", async {
        loop {
            let r = request(
                addr,
                "GET",
                &format!("{EIO}?EIO=4&transport=polling"),
                &[],
                b"",
            )
            .await;
            if r.status == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_over_the_rate_are_answered_503() {
    let (_s, addr) = start_engine(EngineConfig {
        max_handshakes_per_second: Some(3),
        ..EngineConfig::default()
    })
    .await;
    let url = format!("{EIO}?EIO=4&transport=polling");
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(get(addr, &url).await.status);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        3,
        "{statuses:?}"
    );
    assert!(statuses.contains(&503), "{statuses:?}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(get(addr, &url).await.status, 200, "a new second");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packet_while_a_pong_is_awaited_buys_one_more_timeout() {
    let (_s, addr) = start_engine(EngineConfig {
        ping_interval: Duration::from_millis(200),
        ping_timeout: Duration::from_millis(400),
        ..EngineConfig::default()
    })
    .await;
    let sid = open_polling(addr, EIO).await;
    assert_eq!(get(addr, &poll_url(EIO, &sid)).await.text(), "2");
    let pinged = std::time::Instant::now();
    // A message 300 ms after the ping: the pong may now come until 300 + 400 ms.
    tokio::time::sleep(Duration::from_millis(300)).await;
    post(addr, &poll_url(EIO, &sid), b"4busy").await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(pinged.elapsed() > Duration::from_millis(500));
    assert!(
        session_alive(addr, EIO, &sid).await,
        "the message did not extend the timeout"
    );
    // The noop POSTs of session_alive do not extend it again: only once per ping.
    wait_session_gone(addr, EIO, &sid).await;
    assert!(pinged.elapsed() < Duration::from_millis(2000));
}

/// Holds every message until told to let go (a slow consumer, as a binding's event loop).
struct Holding(Arc<std::sync::Mutex<Vec<(String, polysio::engine::Held)>>>);
struct HoldingConn(
    EngineSocket,
    Arc<std::sync::Mutex<Vec<(String, polysio::engine::Held)>>>,
);

impl EngineHandler for Holding {
    fn on_open(&self, socket: &EngineSocket) -> Box<dyn ConnHandler> {
        Box::new(HoldingConn(socket.clone(), self.0.clone()))
    }
}

impl ConnHandler for HoldingConn {
    fn on_message(&mut self, msg: Message<'_>) {
        if let Message::Text(t) = msg {
            self.1.lock().unwrap().push((t.to_owned(), self.0.hold()));
        }
    }
    fn on_close(&mut self, _reason: CloseReason) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_stops_reading_and_loses_nothing() {
    let held = Arc::new(std::sync::Mutex::new(Vec::new()));
    let server = EngineServer::new(
        EngineConfig {
            max_pending_messages: 4,
            ..EngineConfig::default()
        },
        Arc::new(Holding(held.clone())),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let s = server.clone();
    tokio::spawn(async move { s.serve(listener, None, std::future::pending()).await });
    // Over WebSocket: 20 messages sent, 4 read while none is released.
    let mut ws = ws_connect(addr, &format!("{EIO}?EIO=4&transport=websocket")).await;
    ws_text(&mut ws).await;
    for i in 0..20 {
        ws_send(&mut ws, &format!("4m{i}")).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(held.lock().unwrap().len(), 4, "read past the bound");
    // Released as a consumer would: every message arrives, in order.
    let mut got = Vec::new();
    within("all 20 messages", async {
        while got.len() < 20 {
            let batch: Vec<_> = std::mem::take(&mut *held.lock().unwrap());
            got.extend(batch.into_iter().map(|(t, _held)| t));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let want: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    assert_eq!(got, want);
    // Over polling: the POST is not read until the consumer catches up.
    let sid = open_polling(addr, EIO).await;
    post(addr, &poll_url(EIO, &sid), b"4a\x1e4b\x1e4c\x1e4d").await;
    let late = tokio::spawn(async move { post(addr, &poll_url(EIO, &sid), b"4e").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !late.is_finished(),
        "the POST was answered while the consumer is full"
    );
    assert_eq!(held.lock().unwrap().len(), 4);
    held.lock().unwrap().clear();
    assert_eq!(within("the held POST", late).await.unwrap().text(), "ok");
    assert_eq!(held.lock().unwrap().len(), 1);
}

/// While the gate keeps a client unread its pong is unread too: the heartbeat waits with it
/// rather than closing a live client for polysio's own delay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_gate_does_not_time_out_the_heartbeat() {
    let held = Arc::new(std::sync::Mutex::new(Vec::new()));
    let server = EngineServer::new(
        EngineConfig {
            max_pending_messages: 2,
            ping_interval: Duration::from_millis(100),
            ping_timeout: Duration::from_millis(150),
            ..EngineConfig::default()
        },
        Arc::new(Holding(held.clone())),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let s = server.clone();
    tokio::spawn(async move { s.serve(listener, None, std::future::pending()).await });
    let mut ws = ws_connect(addr, &format!("{EIO}?EIO=4&transport=websocket")).await;
    ws_text(&mut ws).await;
    ws_send(&mut ws, "4a").await;
    ws_send(&mut ws, "4b").await;
    // Held for 1 s, four times pingInterval + pingTimeout: the client answers every ping.
    let t0 = std::time::Instant::now();
    let mut pings = 0;
    while t0.elapsed() < Duration::from_secs(1) {
        match tokio::time::timeout(Duration::from_millis(50), ws.next()).await {
            Ok(Some(Ok(WsMessage::Text(t)))) if t.as_str() == "2" => {
                pings += 1;
                ws_send(&mut ws, "3").await;
            }
            Ok(Some(Ok(WsMessage::Text(_) | WsMessage::Ping(_) | WsMessage::Pong(_)))) => {}
            Ok(other) => panic!("the session ended while the gate was closed: {other:?}"),
            Err(_) => {}
        }
    }
    assert!(pings >= 1, "a ping was sent");
    assert_eq!(server.clients_count(), 1, "the session lives");
    // Released: the pongs are read, the heartbeat goes on, new messages are read.
    held.lock().unwrap().clear();
    ws_send(&mut ws, "4c").await;
    let t1 = std::time::Instant::now();
    while t1.elapsed() < Duration::from_millis(600) {
        if let Ok(Some(Ok(WsMessage::Text(t)))) =
            tokio::time::timeout(Duration::from_millis(50), ws.next()).await
        {
            if t.as_str() == "2" {
                ws_send(&mut ws, "3").await;
            }
        }
    }
    assert_eq!(server.clients_count(), 1, "the session lives on");
    let texts: Vec<String> = held
        .lock()
        .unwrap()
        .iter()
        .map(|(t, _)| t.clone())
        .collect();
    assert_eq!(texts, ["c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_packets_are_bounded_as_socket_io_parser_4_2_7() {
    // No attachments announced: refused (the 4.2.7 rule).
    sio_bad_packet_closes(&[r#"450-["message","z0"]"#], true).await;
    // More than 10 attachments announced: refused.
    sio_bad_packet_closes(&[r#"4511-["message"]"#], true).await;
    // Attachments adding up to more than maxHttpBufferSize: refused, though each fits.
    let (io, addr) = start_sio(ServerConfig {
        engine: EngineConfig {
            path: SIO.into(),
            max_http_buffer_size: 1000,
            ..EngineConfig::default()
        },
        ..ServerConfig::default()
    })
    .await;
    let mut ws = sio_ws(addr).await;
    sio_connect(&mut ws).await;
    let ph = |n| format!(r#"{{"_placeholder":true,"num":{n}}}"#);
    ws_send(&mut ws, &format!(r#"452-["echo",{},{}]"#, ph(0), ph(1))).await;
    ws.send(WsMessage::binary(vec![1u8; 600])).await.unwrap();
    let _ = ws.send(WsMessage::binary(vec![2u8; 600])).await;
    let seen = ws_expect_closed(&mut ws).await;
    assert!(seen.iter().all(|t| !t.starts_with("45")), "{seen:?}");
    wait_clients(io.engine(), 0).await;
    assert_serves(addr).await;
}
