//! polysio's tower layer inside a real axum application on one port: the npm `socket.io-client`
//! (the scenarios of `tests/node/server-scenarios.js`) and polysio's own client over polling,
//! WebSocket and the upgrade; axum's routes, 404 and middleware beside it; the client address
//! from axum's `ConnectInfo`; a parked GET whose client goes away; the reference's refusals.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use common::node_scenarios::{run_client, scenario_server, TRANSPORTS};
use common::*;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use polysio::client::{ClientBuilder, TransportKind};
use polysio::server::{Server, ServerConfig};
use polysio::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves `io` as a layer of an axum app with a `/health` route and a middleware that tags
/// axum's own responses; returns the address.
async fn serve_in_axum(io: &Server) -> SocketAddr {
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .layer(axum::middleware::map_response(
            |mut r: axum::response::Response| async move {
                r.headers_mut().insert("x-app", "axum".parse().unwrap());
                r
            },
        ))
        .layer(io.layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

async fn axum_scenario(scenario: &str) {
    let (io, _) = scenario_server(ServerConfig::default());
    let addr = serve_in_axum(&io).await;
    for t in TRANSPORTS {
        run_client(&format!("http://{addr}"), scenario, t).await;
    }
    io.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_client_basic_through_axum() {
    axum_scenario("basic").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_client_rooms_through_axum() {
    axum_scenario("rooms").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_client_middleware_refusal_through_axum() {
    axum_scenario("middleware").await;
}

/// `/` acks `echo` with its arguments and `where` with the client address it saw; `/admin`
/// acks `who`.
fn echo_server(config: ServerConfig) -> (Server, Arc<Mutex<Vec<String>>>) {
    let io = Server::new(config);
    let reasons: Arc<Mutex<Vec<String>>> = Arc::default();
    let r2 = reasons.clone();
    io.of("/").on_connection(move |socket| {
        socket.on("echo", |_, args, ack| {
            if let Some(ack) = ack {
                let _ = ack.send(args);
            }
        });
        socket.on("where", |s, _, ack| {
            let ip = s
                .handshake()
                .request
                .address
                .map(|a| a.ip().to_string())
                .unwrap_or_default();
            if let Some(ack) = ack {
                let _ = ack.send(vec![Value::from(ip)]);
            }
        });
        let r3 = r2.clone();
        socket.on_disconnect(move |_, reason| r3.lock().unwrap().push(reason.as_str().into()));
    });
    io.of("/admin").on_connection(|socket| {
        socket.on("who", |s, _, ack| {
            if let Some(ack) = ack {
                let _ = ack.send(vec![Value::from(s.nsp().name())]);
            }
        });
    });
    (io, reasons)
}

async fn rust_client(transports: &[TransportKind], want: TransportKind) {
    let (io, _) = echo_server(ServerConfig::default());
    let addr = serve_in_axum(&io).await;
    let ev = Events::new();
    let s = client(
        ClientBuilder::new(format!("http://{addr}")).transports(transports.iter().copied()),
        "/",
        &ev,
        &[],
    );
    ev.wait("connect").await;
    let got = s
        .timeout(WAIT)
        .emit_with_ack("echo", binary_args())
        .await
        .expect("ack");
    assert_eq!(got, binary_args());
    let deadline = tokio::time::Instant::now() + WAIT;
    while s.manager().transport() != Some(want) {
        assert!(tokio::time::Instant::now() < deadline, "never on {want:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ip = s
        .timeout(WAIT)
        .emit_with_ack("where", vec![])
        .await
        .unwrap();
    assert_eq!(
        ip,
        vec![Value::from("127.0.0.1")],
        "ConnectInfo reaches the handshake"
    );
    let admin = s.manager().socket("/admin");
    admin.connect();
    let who = admin
        .timeout(WAIT)
        .emit_with_ack("who", vec![])
        .await
        .unwrap();
    assert_eq!(who, vec![Value::from("/admin")]);
    // axum's routes answer beside it, on the same connection pool and port.
    assert_eq!(http(addr, "GET", "/health", "").await.1, "ok");
    s.manager().close();
    io.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_client_polling_through_axum() {
    rust_client(&[TransportKind::Polling], TransportKind::Polling).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_client_websocket_through_axum() {
    rust_client(&[TransportKind::Websocket], TransportKind::Websocket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_client_upgrade_through_axum() {
    rust_client(
        &[TransportKind::Polling, TransportKind::Websocket],
        TransportKind::Websocket,
    )
    .await;
}

/// One HTTP/1.1 request on a new connection: (status, body, headers).
async fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    body: &'static str,
) -> (u16, String, http::HeaderMap) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::builder()
        .method(method)
        .uri(target)
        .header("host", "localhost")
        .header("content-type", "text/plain;charset=UTF-8")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap();
    let r = tokio::time::timeout(WAIT, send.send_request(req))
        .await
        .expect("response in time")
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned(), headers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_routes_404_and_middleware_beside_socket_io() {
    let (io, _) = echo_server(ServerConfig::default());
    let addr = serve_in_axum(&io).await;
    let (status, body, headers) = http(addr, "GET", "/health", "").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    assert_eq!(headers.get("x-app").unwrap(), "axum");
    let (status, _, headers) = http(addr, "GET", "/nowhere", "").await;
    assert_eq!(status, 404, "axum's own 404");
    assert_eq!(headers.get("x-app").unwrap(), "axum");
    // The Socket.IO path is polysio's, outside axum's middleware.
    let (status, body, headers) =
        http(addr, "GET", "/socket.io/?EIO=4&transport=polling", "").await;
    assert_eq!(status, 200);
    assert!(body.starts_with("0{\"sid\":"), "{body}");
    assert!(headers.get("x-app").is_none());
    io.close().await;
}

/// The reference's answers to refused requests, through the layer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_through_axum() {
    let mut config = ServerConfig::default();
    config.engine.allow_request = Some(Arc::new(|h: &polysio::engine::Handshake| {
        if h.query_value("token") == Some("bad") {
            Err("no entry".into())
        } else {
            Ok(())
        }
    }));
    let (io, _) = echo_server(config);
    let addr = serve_in_axum(&io).await;
    let cases = [
        (
            "/socket.io/?EIO=4&transport=carrier-pigeon",
            400,
            r#"{"code":0,"message":"Transport unknown"}"#,
        ),
        (
            "/socket.io/?EIO=4&transport=polling&sid=nope",
            400,
            r#"{"code":1,"message":"Session ID unknown"}"#,
        ),
        (
            "/socket.io/?EIO=3&transport=polling",
            400,
            r#"{"code":5,"message":"Unsupported protocol version"}"#,
        ),
        (
            "/socket.io/?EIO=4&transport=polling&token=bad",
            403,
            r#"{"code":4,"message":"no entry"}"#,
        ),
    ];
    for (target, want_status, want_body) in cases {
        let (status, body, _) = http(addr, "GET", target, "").await;
        assert_eq!(
            (status, body.as_str()),
            (want_status, want_body),
            "{target}"
        );
    }
    // A refused WebSocket gets a bare 400 and the connection closed, as from the reference.
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        b"GET /socket.io/?EIO=4&transport=websocket&sid=nope HTTP/1.1\r\nHost: localhost\r\n\
          Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut got))
        .await
        .expect("closed in time")
        .unwrap();
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 400"), "{got}");
    io.close().await;
}

/// A client that goes away during its long-poll GET: hyper drops the request's future, and the
/// session ends as the reference ends it ("transport error"), instead of waiting for pingTimeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_get_whose_client_leaves_ends_its_session() {
    let (io, reasons) = echo_server(ServerConfig::default());
    let addr = serve_in_axum(&io).await;
    let (_, open, _) = http(addr, "GET", "/socket.io/?EIO=4&transport=polling", "").await;
    let sid = serde_json::from_str::<serde_json::Value>(&open[1..]).unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let poll = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let (status, body, _) = http(addr, "POST", &poll, "40").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (_, connected, _) = http(addr, "GET", &poll, "").await;
    assert!(connected.starts_with("40{\"sid\":"), "{connected}");
    assert_eq!(io.engine().clients_count(), 1);
    // Park a GET on a raw connection, then close it.
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(format!("GET {poll} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(tcp);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while io.engine().clients_count() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "session still open");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(reasons.lock().unwrap().as_slice(), ["transport error"]);
    io.close().await;
}
