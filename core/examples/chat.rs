//! The chat demo: a page using the official socket.io browser client, rooms and typing
//! indicators. Usage: `cargo run -p polysio --example chat -- [PORT]` (default 3000), then open
//! the printed URL. The browser client is read from the npm `socket.io` package installed in
//! `tests/node` (`npm ci` there).

use std::sync::Arc;

use bytes::Bytes;
use http::{header, Response};
use http_body_util::Full;
use polysio::server::{Server, ServerConfig};
use polysio::Value;

const PAGE: &str = include_str!("../../examples/chat/index.html");

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let client_js = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/node/node_modules/socket.io/client-dist/socket.io.min.js"
    ))?;
    let client_js = Bytes::from(client_js);
    let io = Server::new(ServerConfig::default());
    io.set_fallback(Arc::new(move |req| {
        let (body, ctype) = match req.uri().path() {
            "/" | "/index.html" => (
                Bytes::from_static(PAGE.as_bytes()),
                "text/html; charset=utf-8",
            ),
            "/client/socket.io.min.js" => (client_js.clone(), "application/javascript"),
            _ => return None,
        };
        let mut r = Response::new(Full::new(body));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(ctype),
        );
        Some(r)
    }));
    io.on_connection(|socket| {
        socket.on("join", |s, args, ack| {
            let room = args
                .first()
                .and_then(Value::as_str)
                .unwrap_or("lobby")
                .to_owned();
            for r in s.rooms() {
                if &*r != s.id() {
                    s.leave(&r);
                }
            }
            s.join(&[&room]);
            s.set_data(Value::from(room.as_str()));
            if let Some(ack) = ack {
                let _ = ack.send(vec![Value::from(room)]);
            }
        });
        socket.on("chat", |s, args, _| {
            let room = s.data().as_str().unwrap_or("lobby").to_owned();
            let _ = s.nsp().to(room).emit("chat", args);
        });
        socket.on("typing", |s, args, _| {
            let room = s.data().as_str().unwrap_or("lobby").to_owned();
            let _ = s.to(room).emit("typing", args);
        });
    });
    let addr = io.listen(("127.0.0.1", port)).await?;
    println!("chat demo running: open http://{addr}/");
    tokio::signal::ctrl_c().await?;
    io.close().await;
    Ok(())
}
