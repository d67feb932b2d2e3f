//! The scenario server `tests/node/server-scenarios.js` expects, and that client run against it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use polysio::server::{ConnectError, DisconnectReason, Server, ServerConfig};
use polysio::Value;
use tokio::process::Command;

fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/node")
}

pub type Reasons = Arc<Mutex<Vec<DisconnectReason>>>;

/// The scenario server, not listening yet: the handlers `server-scenarios.js` expects.
pub fn scenario_server(config: ServerConfig) -> (Server, Reasons) {
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
    (io, reasons)
}

/// Runs one scenario of `server-scenarios.js` against `url` over `transports`; panics when it fails.
pub async fn run_client(url: &str, scenario: &str, transports: &str) {
    run_client_with_env(url, scenario, transports, &[]).await
}

/// [`run_client`] with extra environment variables (e.g. `NODE_EXTRA_CA_CERTS`).
pub async fn run_client_with_env(
    url: &str,
    scenario: &str,
    transports: &str,
    env: &[(&str, &str)],
) {
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        Command::new("node")
            .arg("server-scenarios.js")
            .arg(url)
            .arg(scenario)
            .arg(transports)
            .envs(env.iter().copied())
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

/// The transports every scenario runs over.
pub const TRANSPORTS: [&str; 3] = ["polling", "websocket", "polling,websocket"];
