//! The socketioxide server of the benchmarks: `bench-socketioxide PORT` serves 127.0.0.1:PORT
//! with hyper, on one tokio worker thread (`POLYSIO_WORKER_THREADS` to change it), with the
//! handlers every compared server implements: `echo` acks with the payload; `bcast` broadcasts
//! the payload to everyone, then acks.

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef};
use tokio::net::TcpListener;

fn main() -> std::io::Result<()> {
    let port: u16 = match std::env::args().nth(1).map(|p| p.parse()) {
        Some(Ok(p)) => p,
        _ => {
            eprintln!("usage: bench-socketioxide PORT");
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
        .block_on(serve(port))
}

async fn serve(port: u16) -> std::io::Result<()> {
    let (svc, io) = SocketIo::new_svc();
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
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
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
