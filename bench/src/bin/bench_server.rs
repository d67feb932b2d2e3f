//! This project's benchmark server (`bench/server rust PORT`): the Socket.IO server of the core
//! with the two benchmark handlers every compared server implements.
//!
//! - `echo`: acks with the payload;
//! - `bcast`: broadcasts the payload to every socket of `/` (the sender included), then acks.
//!
//! It serves 127.0.0.1:PORT in the foreground on a tokio runtime with
//! `POLYSIO_WORKER_THREADS` worker threads (1 by default, like the socketioxide peer).
//!
//! ```sh
//! cargo run --release -p polysio-bench --bin bench-server -- 3000
//! ```

use polysio::server::{Server, ServerConfig};

fn main() -> std::io::Result<()> {
    let port: u16 = match std::env::args().nth(1).map(|p| p.parse()) {
        Some(Ok(p)) => p,
        _ => {
            eprintln!("usage: bench-server PORT");
            std::process::exit(2);
        }
    };
    let threads = std::env::var("POLYSIO_WORKER_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let io = Server::new(ServerConfig::default());
        io.on_connection(|socket| {
            socket.on("echo", |_, args, ack| {
                if let Some(ack) = ack {
                    let _ = ack.send(args);
                }
            });
            socket.on("bcast", |s, args, ack| {
                let _ = s.nsp().emit("bcast", args);
                if let Some(ack) = ack {
                    let _ = ack.send(Vec::new());
                }
            });
        });
        let addr = io.listen(("127.0.0.1", port)).await?;
        println!("listening on {addr}");
        std::future::pending::<std::io::Result<()>>().await
    })
}
