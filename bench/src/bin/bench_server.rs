//! This project's benchmark server (`bench/server rust PORT`): the Socket.IO server of the core
//! with the two benchmark handlers every compared server implements.
//!
//! - `echo`: acks with the payload;
//! - `bcast`: broadcasts the payload to every socket of `/` (the sender included), then acks.
//!
//! It serves 127.0.0.1:PORT in the foreground on a tokio runtime with
//! `POLYSIO_WORKER_THREADS` worker threads (1 by default, like the socketioxide peer).
//!
//! With `POLYSIO_BENCH_REUSEPORT=1` it binds the port with `SO_REUSEPORT`, so several such
//! processes serve one port and the kernel spreads the incoming connections among them (by a
//! hash of the addresses), as a multi-process deployment would: `bench/run` does so for 100,000
//! connections when the open-files limit is too low for one process to hold them all.
//!
//! With `--axum` (`bench/server rust-axum`) the same server is polysio's tower layer in an axum
//! application (`Router` with one route of its own, served by `axum::serve`), as a user mounting
//! polysio in axum runs it.
//!
//! With `--tls CERT KEY` (`bench/server rust-tls`) it serves https/wss from that PEM
//! certificate chain and key with polysio's own TLS listener ([`Server::serve_tls`]).
//!
//! With `BENCH_REDIS=redis://HOST:PORT/` it joins a cluster over that Redis through the classic
//! `@socket.io/redis-adapter` format ([`polysio::adapter::redis`]): a broadcast reaches every
//! node's sockets (the cluster scenario of `bench/run`). It listens once subscribed.
//!
//! ```sh
//! cargo run --release -p polysio-bench --bin bench-server -- 3000
//! cargo run --release -p polysio-bench --bin bench-server -- --axum 3000
//! cargo run --release -p polysio-bench --bin bench-server -- --tls server.pem server.key 3000
//! ```

use std::net::{Ipv4Addr, SocketAddr};

use axum::serve::ListenerExt;
use polysio::adapter::redis::{RedisAdapter, RedisConfig};
use polysio::server::{Server, ServerConfig};
use polysio::tls::ServerTls;
use tokio::net::{TcpListener, TcpSocket};

/// Pending connections the listener may queue (the kernel caps it at `net.core.somaxconn`).
const BACKLOG: u32 = 65_535;

fn main() -> std::io::Result<()> {
    let usage = || -> ! {
        eprintln!("usage: bench-server [--axum | --tls CERT KEY] PORT");
        std::process::exit(2);
    };
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let axum = args.first().is_some_and(|a| a == "--axum");
    if axum {
        args.remove(0);
    }
    let tls = if args.first().is_some_and(|a| a == "--tls") && args.len() > 2 {
        let files: Vec<String> = args.drain(..3).skip(1).collect();
        match ServerTls::from_pem_files(&files[0], &files[1]) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("bench-server: {e}");
                std::process::exit(1);
            }
        }
    } else {
        None
    };
    let port: u16 = match args.first().map(|p| p.parse()) {
        Some(Ok(p)) if args.len() == 1 && !(axum && tls.is_some()) => p,
        _ => usage(),
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
        let mut config = ServerConfig::default();
        let mut redis = None;
        if let Ok(url) = std::env::var("BENCH_REDIS") {
            let adapter =
                RedisAdapter::new(RedisConfig::new(url)).map_err(std::io::Error::other)?;
            config.adapter = Some(adapter.factory());
            redis = Some(adapter);
        }
        let io = Server::new(config);
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
        if let Some(redis) = &redis {
            // The namespace's adapter subscribes when `/` is first used.
            let _ = io.of("/");
            redis
                .ready(std::time::Duration::from_secs(10))
                .await
                .map_err(std::io::Error::other)?;
        }
        let reuseport = std::env::var("POLYSIO_BENCH_REUSEPORT").is_ok_and(|v| v == "1");
        let listener = bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), reuseport)?;
        let addr = listener.local_addr()?;
        let shared = if reuseport { " (SO_REUSEPORT)" } else { "" };
        if axum {
            println!("listening on {addr}{shared} (axum)");
            let app = axum::Router::new()
                .route("/health", axum::routing::get(|| async { "ok" }))
                .layer(io.layer());
            // As polysio's own listener: no Nagle delay on small frames.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            return axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await;
        }
        if let Some(tls) = tls {
            println!("listening on {addr}{shared} (TLS)");
            io.serve_tls(listener, tls).await;
            return Ok(());
        }
        println!("listening on {addr}{shared}");
        io.serve(listener).await;
        Ok(())
    })
}

/// A listener on `addr`, sharing the port with other processes that bind it the same way when
/// `reuseport` is set.
fn bind(addr: SocketAddr, reuseport: bool) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    if reuseport {
        socket.set_reuseport(true)?;
    }
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}
