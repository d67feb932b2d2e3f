//! The real npm `socket.io-client` against this project's server: every scenario of
//! `tests/node/server-scenarios.js`, over polling only, WebSocket only and the upgrade.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use polysio::server::{ConnectError, DisconnectReason, RecoveryConfig, Server, ServerConfig};
use polysio::Value;
use tokio::process::Command;

fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/node")
}

type Reasons = Arc<Mutex<Vec<DisconnectReason>>>;

/// The scenario server: the handlers `server-scenarios.js` expects.
async fn start(config: ServerConfig) -> (Server, String, Reasons) {
    let io = Server::new(config);
    let reasons: Reasons = Arc::default();
    let r2 = reasons.clone();
    io.of("/").on_connection(move |socket| {
        let _ = socket.emit("auth", vec![socket.handshake().auth.clone()]);
        let r3 = r2.clone();
        socket.on_disconnect(move |s, reason| {
            r3.lock().unwrap().push(reason);
            if reason == DisconnectReason::TransportClose && s.nsp().socket(s.id()).is_none() {
                // For the recovery scenario: broadcasts the client misses while away.
                let _ = s
                    .nsp()
                    .to("green")
                    .emit("news", vec![Value::from("missed-1")]);
                let _ = s
                    .nsp()
                    .to("green")
                    .emit("news", vec![Value::from("missed-2")]);
            }
        });
        socket.on("message", |s, args, _| {
            let _ = s.emit("message-back", args);
        });
        socket.on("message-with-ack", |_, args, ack| {
            if let Some(ack) = ack {
                let _ = ack.send(args);
            }
        });
        socket.on("ask-client", |s, args, _| {
            let s2 = s.clone();
            let _ = s.emit_with_ack_cb("question", args, Some(Duration::from_secs(5)), move |r| {
                if let Ok(answer) = r {
                    let _ = s2.emit("answer", answer);
                }
            });
        });
        socket.on("join", |s, args, ack| {
            let room = args
                .first()
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            s.join(&[&room]);
            if let Some(ack) = ack {
                let _ = ack.send(vec![Value::from(room)]);
            }
        });
        socket.on("bcast", |s, args, _| {
            let room = args
                .first()
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let _ = s.nsp().to(room).emit("news", args[1..].to_vec());
        });
        socket.on("bcast-except", |s, args, _| {
            let room = args
                .first()
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let _ = s.nsp().except(room).emit("news", args[1..].to_vec());
        });
        socket.on("disconnect-me", |s, _, _| s.disconnect(false));
    });
    io.of("/custom").on_connection(|socket| {
        let _ = socket.emit("auth", vec![socket.handshake().auth.clone()]);
    });
    let secret = io.of("/secret");
    secret.use_middleware(|s| {
        if s.handshake().auth.get("token").and_then(Value::as_str) == Some("ok") {
            Ok(())
        } else {
            let mut data = polysio::Map::new();
            data.insert("code".into(), Value::from(42));
            Err(ConnectError::new("not authorized").with_data(Value::Map(data)))
        }
    });
    let addr = io.listen(("127.0.0.1", 0)).await.unwrap();
    (io, format!("http://{addr}"), reasons)
}

async fn run_client(url: &str, scenario: &str, transports: &str) {
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        Command::new("node")
            .arg("server-scenarios.js")
            .arg(url)
            .arg(scenario)
            .arg(transports)
            .current_dir(node_dir())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("node client timed out")
    .expect("node runs (run `npm ci` in tests/node)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{scenario} over {transports} failed:\n{stdout}\n{stderr}"
    );
}

const TRANSPORTS: [&str; 3] = ["polling", "websocket", "polling,websocket"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_over_every_transport() {
    let (io, url, _) = start(ServerConfig::default()).await;
    for t in TRANSPORTS {
        run_client(&url, "basic", t).await;
    }
    io.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_and_broadcasts() {
    let (io, url, _) = start(ServerConfig::default()).await;
    for t in TRANSPORTS {
        run_client(&url, "rooms", t).await;
    }
    io.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn middleware_refusal_with_data() {
    let (io, url, _) = start(ServerConfig::default()).await;
    for t in TRANSPORTS {
        run_client(&url, "middleware", t).await;
    }
    io.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_initiated_disconnect() {
    let (io, url, reasons) = start(ServerConfig::default()).await;
    for t in TRANSPORTS {
        run_client(&url, "server-disconnect", t).await;
    }
    let r = reasons.lock().unwrap().clone();
    assert_eq!(r, vec![DisconnectReason::ServerNamespaceDisconnect; 3]);
    io.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_timeout() {
    let mut config = ServerConfig::default();
    config.engine.ping_interval = Duration::from_millis(200);
    config.engine.ping_timeout = Duration::from_millis(200);
    let (io, url, reasons) = start(config).await;
    for t in ["polling", "websocket"] {
        run_client(&url, "no-pong", t).await;
    }
    let r = reasons.lock().unwrap().clone();
    assert_eq!(r, vec![DisconnectReason::PingTimeout; 2]);
    io.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_recovery_after_dropped_connection() {
    let config = ServerConfig {
        connection_state_recovery: Some(RecoveryConfig::default()),
        ..Default::default()
    };
    let (io, url, reasons) = start(config).await;
    for t in TRANSPORTS {
        run_client(&url, "recovery", t).await;
    }
    let r = reasons.lock().unwrap().clone();
    assert!(r.contains(&DisconnectReason::TransportClose), "{r:?}");
    io.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_frees_the_port() {
    let (io, url, _) = start(ServerConfig::default()).await;
    let addr: std::net::SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    io.close().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let again = tokio::net::TcpListener::bind(addr).await;
    assert!(again.is_ok(), "port still taken: {again:?}");
}
