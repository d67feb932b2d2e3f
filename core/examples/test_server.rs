//! The reference scenario server of the cross-language tests (`tests/run-server rust PORT`).
//!
//! pingInterval 300 ms, pingTimeout 200 ms, connectTimeout 1000 ms; namespaces `/` and
//! `/custom`; on connect it emits `auth` with the handshake's auth; on `/`, `message` is
//! answered with `message-back` (same arguments) and `message-with-ack` is acked with the same
//! arguments. Usage: `test_server PORT`.

use std::time::Duration;

use polysio::engine::EngineConfig;
use polysio::server::{Server, ServerConfig};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let config = ServerConfig {
        engine: EngineConfig {
            path: "/socket.io/".into(),
            ping_interval: Duration::from_millis(300),
            ping_timeout: Duration::from_millis(200),
            ..EngineConfig::default()
        },
        connect_timeout: Duration::from_millis(1000),
        ..ServerConfig::default()
    };
    let io = Server::new(config);
    io.of("/").on_connection(|socket| {
        let _ = socket.emit("auth", vec![socket.handshake().auth.clone()]);
        socket.on("message", |s, args, _| {
            let _ = s.emit("message-back", args);
        });
        socket.on("message-with-ack", |_, args, ack| {
            if let Some(ack) = ack {
                let _ = ack.send(args);
            }
        });
    });
    io.of("/custom").on_connection(|socket| {
        let _ = socket.emit("auth", vec![socket.handshake().auth.clone()]);
    });
    let addr = io.listen(("127.0.0.1", port)).await?;
    println!("listening {}", addr.port());
    tokio::signal::ctrl_c().await?;
    io.close().await;
    Ok(())
}
