//! The real npm `socket.io-client` against this project's server: every scenario of
//! `tests/node/server-scenarios.js`, over polling only, WebSocket only and the upgrade.

mod common;

use std::time::Duration;

use common::node_scenarios::{run_client, scenario_server, Reasons, TRANSPORTS};
use polysio::server::{DisconnectReason, RecoveryConfig, Server, ServerConfig};

/// The scenario server on a port of its own.
async fn start(config: ServerConfig) -> (Server, String, Reasons) {
    let (io, reasons) = scenario_server(config);
    let addr = io.listen(("127.0.0.1", 0)).await.unwrap();
    (io, format!("http://{addr}"), reasons)
}

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
