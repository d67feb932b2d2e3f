//! The host boundary (polysio::engine::host) as the hosts of the bindings use it:
//! - a host that frames WebSockets itself, as ASGI servers and aiohttp do: here a hyper server
//!   whose WebSocket framing is its own (tungstenite over hyper's upgraded connection), handing
//!   polysio plain requests and WebSocket messages, never a socket; driven by polysio's client
//!   over polling, WebSocket and the upgrade, and by raw frames for the protocol's corners;
//! - the boundary without any socket: a parked GET the host drops ends its session.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures_util::{SinkExt, StreamExt};
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use polysio::client::{ClientBuilder, TransportKind};
use polysio::engine::host::{BodyError, HttpRequest, Reply, WsInput};
use polysio::engine::packet::Frame;
use polysio::engine::EngineServer;
use polysio::server::{Server, ServerConfig};
use polysio::Value;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

/// A server whose `/` acks `echo` with its arguments, emits `echo-back` for `message`, and
/// records disconnect reasons.
fn scenario_server(reasons: Arc<Mutex<Vec<String>>>) -> Server {
    let io = Server::new(ServerConfig::default());
    io.of("/").on_connection(move |socket| {
        socket.on("echo", |_, args, ack| {
            if let Some(ack) = ack {
                let _ = ack.send(args);
            }
        });
        socket.on("message", |s, args, _| {
            let _ = s.emit("echo-back", args);
        });
        socket.on("bye", |s, _, _| s.disconnect(false));
        let reasons = reasons.clone();
        socket.on_disconnect(move |_, reason| {
            reasons.lock().unwrap().push(reason.as_str().to_owned())
        });
    });
    io
}

/// Serves `engine` on a new port the way a message-level host does.
async fn start_message_host(engine: EngineServer) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, remote)) = listener.accept().await else {
                return;
            };
            let engine = engine.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let engine = engine.clone();
                    async move { Ok::<_, Infallible>(host_request(engine, req, remote).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

async fn host_request(
    engine: EngineServer,
    mut req: Request<Incoming>,
    remote: SocketAddr,
) -> Response<Full<Bytes>> {
    let on_upgrade = hyper::upgrade::on(&mut req);
    let (parts, body) = req.into_parts();
    let reply = engine.request(HttpRequest::from_parts(&parts, Some(remote), false));
    match reply {
        Reply::Ready(r) => r.into_http(),
        Reply::ReadBody(ticket) => {
            let body = body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .map_err(|_| BodyError::Aborted);
            ticket.finish(body).into_http()
        }
        Reply::Wait(poll) => poll.await.into_http(),
        Reply::WebSocket(ticket) => {
            let response = ticket.response().into_http();
            tokio::spawn(async move {
                let Ok(upgraded) = on_upgrade.await else {
                    return;
                };
                // The host's own framing: polysio sees messages only.
                let ws =
                    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None)
                        .await;
                let (mut sink, mut stream) = ws.split();
                let (inbound, mut outbound) = ticket.run_messages();
                let reader = async move {
                    while let Some(Ok(m)) = stream.next().await {
                        match m {
                            WsMessage::Text(t) => inbound.receive(WsInput::Text(&t)),
                            WsMessage::Binary(b) => inbound.receive(WsInput::Binary(b)),
                            WsMessage::Close(_) => break,
                            _ => inbound.receive(WsInput::Control),
                        }
                    }
                    inbound.receive(WsInput::Close);
                };
                let writer = async move {
                    while let Some(batch) = outbound.next().await {
                        for f in batch {
                            let m = match f {
                                Frame::Text(t) => WsMessage::Text(t),
                                Frame::Binary(b) => WsMessage::Binary(b),
                            };
                            if sink.feed(m).await.is_err() {
                                return;
                            }
                        }
                        if sink.flush().await.is_err() {
                            return;
                        }
                    }
                    let _ = sink.close().await;
                };
                tokio::join!(reader, writer);
            });
            response
        }
    }
}

async fn roundtrip(transports: &[TransportKind], want: TransportKind) {
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let io = scenario_server(reasons.clone());
    let addr = start_message_host(io.engine().clone()).await;
    let ev = Events::new();
    let s = client(
        ClientBuilder::new(format!("http://{addr}")).transports(transports.iter().copied()),
        "/",
        &ev,
        &["echo-back"],
    );
    ev.wait("connect").await;
    // Binary both ways, through an ack and through an event.
    let got = s
        .timeout(WAIT)
        .emit_with_ack("echo", binary_args())
        .await
        .expect("ack");
    assert_eq!(got, binary_args());
    s.emit("message", binary_args()).unwrap();
    assert_eq!(ev.wait("echo-back").await, binary_args());
    let deadline = tokio::time::Instant::now() + WAIT;
    while s.manager().transport() != Some(want) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "transport never became {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Still served once on the final transport; then the server disconnects it.
    s.emit("message", vec![Value::from(1)]).unwrap();
    assert_eq!(ev.wait("echo-back").await, vec![Value::from(1)]);
    s.emit("bye", vec![]).unwrap();
    assert_eq!(
        ev.wait("disconnect").await,
        vec![Value::from("io server disconnect")]
    );
    s.manager().close();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        reasons.lock().unwrap().as_slice(),
        ["server namespace disconnect"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_host_serves_polling() {
    roundtrip(&[TransportKind::Polling], TransportKind::Polling).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_host_serves_websocket_only() {
    roundtrip(&[TransportKind::Websocket], TransportKind::Websocket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_host_serves_the_upgrade() {
    roundtrip(
        &[TransportKind::Polling, TransportKind::Websocket],
        TransportKind::Websocket,
    )
    .await;
}

async fn http_get(addr: SocketAddr, target: &str) -> (u16, String) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::get(target)
        .header("host", "localhost")
        .body(Full::<Bytes>::default())
        .unwrap();
    let r = tokio::time::timeout(WAIT, send.send_request(req))
        .await
        .expect("response in time")
        .unwrap();
    let status = r.status().as_u16();
    let body = r.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn ws_text(
    ws: &mut WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
) -> Option<String> {
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
        {
            Some(Ok(WsMessage::Text(t))) => return Some(t.as_str().to_owned()),
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
            _ => return None,
        }
    }
}

/// The upgrade over messages, frame by frame: the probe, the noop to the parked GET, polling
/// refused afterwards, and a second WebSocket on the sid accepted then closed (the reference's
/// behaviour) while the first goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_host_upgrade_frame_by_frame() {
    let io = scenario_server(Arc::default());
    let addr = start_message_host(io.engine().clone()).await;
    let (status, open) = http_get(addr, "/socket.io/?EIO=4&transport=polling").await;
    assert_eq!(status, 200);
    let open: serde_json::Value = serde_json::from_str(&open[1..]).unwrap();
    let sid = open["sid"].as_str().unwrap().to_owned();
    let poll = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let p = poll.clone();
    let parked = tokio::spawn(async move { http_get(addr, &p).await });
    let ws_url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket&sid={sid}");
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
        .await
        .unwrap();
    ws.send(WsMessage::text("2probe")).await.unwrap();
    assert_eq!(ws_text(&mut ws).await.as_deref(), Some("3probe"));
    assert_eq!(parked.await.unwrap(), (200, "6".to_owned()));
    ws.send(WsMessage::text("5")).await.unwrap();
    ws.send(WsMessage::text("40")).await.unwrap();
    assert!(ws_text(&mut ws).await.unwrap().starts_with("40{\"sid\":"));
    assert_eq!(http_get(addr, &poll).await.0, 400);
    let (mut second, resp) = tokio_tungstenite::connect_async(ws_url.as_str())
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 101);
    assert_eq!(
        ws_text(&mut second).await,
        None,
        "the second WebSocket is closed unserved"
    );
    ws.send(WsMessage::text(r#"42["message","still"]"#))
        .await
        .unwrap();
    assert_eq!(
        ws_text(&mut ws).await.as_deref(),
        Some(r#"42["echo-back","still"]"#)
    );
}

/// A probe that never completes times out; the session stays on polling and can upgrade again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_host_probe_times_out_and_polling_goes_on() {
    let mut config = ServerConfig::default();
    config.engine.upgrade_timeout = Duration::from_millis(200);
    let io = Server::new(config);
    let addr = start_message_host(io.engine().clone()).await;
    let (_, open) = http_get(addr, "/socket.io/?EIO=4&transport=polling").await;
    let open: serde_json::Value = serde_json::from_str(&open[1..]).unwrap();
    let sid = open["sid"].as_str().unwrap().to_owned();
    let ws_url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket&sid={sid}");
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
        .await
        .unwrap();
    assert_eq!(
        ws_text(&mut ws).await,
        None,
        "closed after the upgrade timeout"
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
        .await
        .unwrap();
    ws.send(WsMessage::text("2probe")).await.unwrap();
    assert_eq!(ws_text(&mut ws).await.as_deref(), Some("3probe"));
}

fn plain(method: Method, query: &str) -> HttpRequest {
    HttpRequest {
        method,
        path: "/socket.io/".into(),
        query: query.into(),
        headers: http::HeaderMap::new(),
        remote: None,
        secure: true,
    }
}

/// No socket at all: a parked GET that the host drops (its client went away) ends the session
/// with `transport error`, as the reference ends a session whose pending GET was aborted; the
/// handshake carries the host's `secure` flag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_poll_ticket_ends_the_session() {
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let io = scenario_server(reasons.clone());
    let engine = io.engine().clone();
    let Reply::Ready(open) = engine.request(plain(Method::GET, "EIO=4&transport=polling")) else {
        panic!("the handshake is answered at once");
    };
    let open = String::from_utf8(open.body.to_vec()).unwrap();
    let open: serde_json::Value = serde_json::from_str(&open[1..]).unwrap();
    let sid = open["sid"].as_str().unwrap();
    let q = format!("EIO=4&transport=polling&sid={sid}");
    let Reply::ReadBody(ticket) = engine.request(plain(Method::POST, &q)) else {
        panic!("a POST asks for its body");
    };
    assert_eq!(ticket.limit(), 1_000_000);
    assert_eq!(ticket.finish(Ok(Bytes::from_static(b"40"))).body, "ok");
    let Reply::Wait(poll) = engine.request(plain(Method::GET, &q)) else {
        panic!("a GET waits");
    };
    let connected = tokio::time::timeout(WAIT, poll)
        .await
        .expect("CONNECT reply");
    assert!(String::from_utf8_lossy(&connected.body).starts_with("40{\"sid\":"));
    let sockets = io.of("/").sockets();
    assert!(sockets[0].conn().handshake().secure);
    let Reply::Wait(parked) = engine.request(plain(Method::GET, &q)) else {
        panic!("a GET waits");
    };
    assert_eq!(engine.clients_count(), 1);
    drop(parked);
    let deadline = tokio::time::Instant::now() + WAIT;
    while engine.clients_count() != 0 || reasons.lock().unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the session stayed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(reasons.lock().unwrap().as_slice(), ["transport error"]);
}

/// A request that arrives after an unanswered ping's deadline finds the session closed with
/// `ping timeout` (400, "Session ID unknown"), even when the heartbeat's timer has not fired
/// yet: here the only runtime thread is blocked across the deadline, as a loaded machine might
/// delay it. The reference's timers run before its I/O, so its clients rely on this.
#[tokio::test(flavor = "current_thread")]
async fn a_request_after_the_ping_deadline_finds_the_session_gone() {
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let mut config = ServerConfig::default();
    config.engine.ping_interval = Duration::from_millis(100);
    config.engine.ping_timeout = Duration::from_millis(100);
    let io = Server::new(config);
    let r = reasons.clone();
    io.of("/").on_connection(move |socket| {
        let r = r.clone();
        socket.on_disconnect(move |_, reason| r.lock().unwrap().push(reason.as_str().to_owned()));
    });
    let engine = io.engine().clone();
    let Reply::Ready(open) = engine.request(plain(Method::GET, "EIO=4&transport=polling")) else {
        panic!("the handshake is answered at once");
    };
    let open = String::from_utf8(open.body.to_vec()).unwrap();
    let open: serde_json::Value = serde_json::from_str(&open[1..]).unwrap();
    let q = format!(
        "EIO=4&transport=polling&sid={}",
        open["sid"].as_str().unwrap()
    );
    let Reply::ReadBody(ticket) = engine.request(plain(Method::POST, &q)) else {
        panic!("a POST asks for its body");
    };
    assert_eq!(ticket.finish(Ok(Bytes::from_static(b"40"))).body, "ok");
    // The ping goes out after the interval (the runtime is free to send it)...
    tokio::time::sleep(Duration::from_millis(150)).await;
    // ...then the runtime stalls past the pong's deadline, so the timer cannot fire.
    std::thread::sleep(Duration::from_millis(120));
    let Reply::Ready(late) = engine.request(plain(Method::GET, &q)) else {
        panic!("an unknown session is answered at once");
    };
    assert_eq!(
        late.status,
        400,
        "{:?}",
        String::from_utf8_lossy(&late.body)
    );
    assert_eq!(engine.clients_count(), 0);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(reasons.lock().unwrap().as_slice(), ["ping timeout"]);
}
