//! The socketioxide server of the benchmarks: `bench-socketioxide PORT` serves 127.0.0.1:PORT
//! with hyper, on one tokio worker thread (`POLYSIO_WORKER_THREADS` to change it), with the
//! handlers every compared server implements: `echo` acks with the payload; `bcast` broadcasts
//! the payload to everyone, then acks. `bench-socketioxide --axum PORT`: the same server as
//! socketioxide's tower layer in an axum app (`bench/server socketioxide-axum`).

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef};
use tokio::net::TcpListener;

fn main() -> std::io::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let axum = args.first().is_some_and(|a| a == "--axum");
    if axum {
        args.remove(0);
    }
    let port: u16 = match args.first().map(|p| p.parse()) {
        Some(Ok(p)) => p,
        _ => {
            eprintln!("usage: bench-socketioxide [--axum] PORT");
            std::process::exit(2);
        }
    };
    let threads = std::env::var("POLYSIO_WORKER_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(1);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?
        .block_on(serve(port, axum))
}

fn handlers(io: &SocketIo) {
    io.ns("/", async |s: SocketRef| {
        s.on("echo", async |Data::<Value>(payload), ack: AckSender| {
            ack.send(&payload).ok();
        });
        s.on(
            "bcast",
            async |io: SocketIo, Data::<Value>(payload), ack: AckSender| {
                io.emit("bcast", &payload).await.ok();
                ack.send(&()).ok();
            },
        );
    });
}

use axum::serve::ListenerExt;

async fn serve(port: u16, axum: bool) -> std::io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    if axum {
        let (layer, io) = SocketIo::new_layer();
        handlers(&io);
        println!("listening on {} (axum)", listener.local_addr()?);
        let app = axum::Router::new()
            .route("/health", axum::routing::get(|| async { "ok" }))
            .layer(layer);
        // As the hyper mode (and polysio's listener): no Nagle delay on small frames.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        return axum::serve(listener, app).await;
    }
    let (svc, io) = SocketIo::new_svc();
    handlers(&io);
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let svc = svc.clone();
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades()
                .await;
        });
    }
}
