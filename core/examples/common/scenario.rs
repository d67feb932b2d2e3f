//! The scenario server of the cross-language tests, as tests/SCENARIOS.md describes it: shared by
//! the standalone host (`test_server.rs`) and the axum host (`axum_server.rs`), which include this
//! file with `#[path]`.

use std::time::Duration;

use polysio::engine::EngineConfig;
use polysio::server::{ConnectError, Namespace, Server, ServerConfig};
use polysio::{Map, Value};

/// The port from the first argument (3000 without one).
/// The certificate to serve https/wss with: `POLYSIO_TEST_TLS_CERT` and
/// `POLYSIO_TEST_TLS_KEY` (PEM files), when both are set (tests/run-server's TLS hook).
#[allow(dead_code)]
pub fn test_tls() -> Option<polysio::tls::ServerTls> {
    let cert = std::env::var_os("POLYSIO_TEST_TLS_CERT")?;
    let key = std::env::var_os("POLYSIO_TEST_TLS_KEY")?;
    Some(polysio::tls::ServerTls::from_pem_files(cert, key).expect("the test certificate loads"))
}

pub fn port() -> u16 {
    std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000)
}

/// The scenario server's options: pingInterval 300 ms, pingTimeout 200 ms, connectTimeout
/// 1000 ms, everything else at the defaults.
pub fn config() -> ServerConfig {
    let defaults = ServerConfig::default();
    ServerConfig {
        engine: EngineConfig {
            ping_interval: Duration::from_millis(300),
            ping_timeout: Duration::from_millis(200),
            ..defaults.engine.clone()
        },
        connect_timeout: Duration::from_millis(1000),
        ..defaults
    }
}

/// A server with the scenario namespaces `/` and `/custom`.
pub fn server() -> Server {
    let io = Server::new(config());
    scenario_namespace(io.of("/"));
    scenario_namespace(io.of("/custom"));
    io
}

fn scenario_namespace(nsp: Namespace) {
    nsp.use_middleware(|socket| {
        let refuse = &socket.handshake().auth["refuse"];
        if refuse.is_null() {
            return Ok(());
        }
        let mut data = Map::new();
        data.insert("reason".into(), refuse.clone());
        Err(ConnectError::new("refused").with_data(Value::Map(data)))
    });
    nsp.on_connection(|socket| {
        let _ = socket.emit("auth", vec![socket.handshake().auth.clone()]);
        socket.on("message", |s, args, _| {
            let _ = s.emit("message-back", args);
        });
        socket.on("message-with-ack", |_, args, ack| {
            if let Some(ack) = ack {
                let _ = ack.send(args);
            }
        });
        socket.on("ask", |s, args, _| {
            let me = s.clone();
            let _ = s.emit_with_ack_cb("question", args, None, move |reply| {
                if let Ok(reply) = reply {
                    let _ = me.emit("answer", reply);
                }
            });
        });
        socket.on("join", |s, args, ack| {
            let Some(room) = args.first().and_then(Value::as_str) else {
                return;
            };
            s.join(&[room]);
            if let Some(ack) = ack {
                let _ = ack.send(vec![Value::from(room)]);
            }
        });
        socket.on("to-room", |s, mut args, _| {
            if args.is_empty() {
                return;
            }
            if let Value::String(room) = args.remove(0) {
                let _ = s.nsp().to(room).emit("room-message", args);
            }
        });
        socket.on("broadcast", |s, args, _| {
            let _ = s.broadcast().emit("broadcast", args);
        });
        socket.on("disconnect-me", |s, _, _| s.disconnect(false));
    });
}
