//! A raw Engine.IO echo server on `/engine.io/`: every message comes back, text as text, binary
//! as binary. Usage: `cargo run --example engineio_echo -- PORT [PING_INTERVAL_MS PING_TIMEOUT_MS]`.

use std::sync::Arc;
use std::time::Duration;

use polysio::engine::packet::Frame;
use polysio::engine::{
    CloseReason, ConnHandler, EngineConfig, EngineHandler, EngineServer, EngineSocket, Message,
};

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

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args.get(1).and_then(|p| p.parse().ok()).unwrap_or(3000);
    let ms = |i: usize, d: u64| {
        Duration::from_millis(args.get(i).and_then(|v| v.parse().ok()).unwrap_or(d))
    };
    let config = EngineConfig {
        ping_interval: ms(2, 25000),
        ping_timeout: ms(3, 20000),
        ..EngineConfig::default()
    };
    let server = EngineServer::new(config, Arc::new(Echo));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening {}", listener.local_addr()?.port());
    server.serve(listener, None, std::future::pending()).await;
    Ok(())
}
