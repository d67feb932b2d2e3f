//! Reconnection (server killed and restarted on the same port, first connection retried,
//! attempts exhausted) and connection state recovery, against the reference server and our own.

mod common;

use std::time::Duration;

use common::*;
use polysio::client::{ClientBuilder, TransportKind};
use polysio::Value;
use serde_json::json as j;

fn fast(url: String) -> ClientBuilder {
    ClientBuilder::new(url)
        .reconnection_delay(Duration::from_millis(200))
        .reconnection_delay_max(Duration::from_millis(1000))
        .timeout(Duration::from_secs(5))
}

async fn kill_restart(peer: Peer, transports: Vec<TransportKind>) {
    let port = free_port();
    let mut srv = RefServer::start_on(peer, port, j!({}));
    let ev = Events::new();
    let s = client(fast(srv.url()).transports(transports), "/", &ev, &["echo"]);
    ev.wait("connect").await;
    let first_id = s.id();
    srv.kill();
    let reason = ev.wait("disconnect").await;
    assert!(
        reason == vec![Value::from("transport close")]
            || reason == vec![Value::from("transport error")],
        "{reason:?}"
    );
    assert_eq!(ev.wait("manager:close").await, reason);
    // Offline: emits are buffered, in order, acks included.
    for i in 0..20 {
        s.emit("echo", vec![Value::from(i)]).unwrap();
    }
    let ack = s.emit_with_ack("ack", vec![Value::from("late")]);
    // At least one attempt fails while the server is down.
    ev.wait("manager:reconnect_attempt").await;
    ev.wait("manager:reconnect_error").await;
    let _srv2 = RefServer::start_on(peer, port, j!({}));
    ev.wait("connect").await;
    let attempt = ev.wait("manager:reconnect").await;
    assert!(attempt[0].as_i64().unwrap() >= 1, "{attempt:?}");
    assert_ne!(s.id(), first_id);
    for i in 0..20 {
        assert_eq!(ev.wait("echo").await, vec![Value::from(i)]);
    }
    assert_eq!(ack.await.unwrap(), vec![Value::from("late")]);
    s.manager().shutdown().await;
}

async fn kill_and_restart_polling_upgrade(peer: Peer) {
    kill_restart(peer, vec![TransportKind::Polling, TransportKind::Websocket]).await;
}

async fn kill_and_restart_websocket(peer: Peer) {
    kill_restart(peer, vec![TransportKind::Websocket]).await;
}

async fn first_connection_is_retried(peer: Peer) {
    let port = free_port();
    let ev = Events::new();
    let s = client(fast(format!("http://127.0.0.1:{port}")), "/", &ev, &[]);
    let e = ev.wait("connect_error").await;
    assert!(e[0]["message"].as_str().unwrap().contains("error"), "{e:?}");
    ev.wait("manager:reconnect_attempt").await;
    let _srv = RefServer::start_on(peer, port, j!({}));
    ev.wait("connect").await;
    assert!(s.connected());
    s.manager().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_exhausted() {
    let port = free_port();
    let ev = Events::new();
    let b = ClientBuilder::new(format!("http://127.0.0.1:{port}"))
        .reconnection_attempts(2)
        .reconnection_delay(Duration::from_millis(50))
        .randomization_factor(0.0);
    let s = client(b, "/", &ev, &[]);
    ev.wait("manager:error").await;
    assert_eq!(
        ev.wait("manager:reconnect_attempt").await,
        vec![Value::from(1)]
    );
    ev.wait("manager:reconnect_error").await;
    assert_eq!(
        ev.wait("manager:reconnect_attempt").await,
        vec![Value::from(2)]
    );
    ev.wait("manager:reconnect_error").await;
    ev.wait("manager:reconnect_failed").await;
    assert!(
        !ev.happens_within("manager:reconnect_attempt", Duration::from_millis(500))
            .await
    );
    // As the reference: one connect_error for the first failure and one per failed attempt.
    assert_eq!(ev.count("connect_error"), 3);
    s.manager().shutdown().await;
}

async fn reconnection_disabled(peer: Peer) {
    let srv = RefServer::start(peer, j!({}));
    let ev = Events::new();
    let s = client(fast(srv.url()).reconnection(false), "/", &ev, &[]);
    ev.wait("connect").await;
    s.emit("close-transport", vec![]).unwrap();
    assert_eq!(
        ev.wait("disconnect").await,
        vec![Value::from("transport close")]
    );
    assert!(
        !ev.happens_within("manager:reconnect_attempt", Duration::from_millis(600))
            .await
    );
    // Still active: connect() again brings it back.
    s.connect();
    ev.wait("connect").await;
    s.manager().shutdown().await;
}

async fn recovery(peer: Peer, transports: Vec<TransportKind>) {
    let srv = RefServer::start(peer, j!({"recovery": true}));
    let ev = Events::new();
    let b = fast(srv.url())
        .transports(transports)
        .randomization_factor(0.0)
        .reconnection_delay(Duration::from_millis(500));
    let s = client(b, "/", &ev, &["missed", "seen"]);
    ev.wait("connect").await;
    assert!(!s.recovered());
    let id = s.id();
    // A broadcast received while connected carries an offset; it becomes the last offset.
    s.emit("broadcast", vec![Value::from("seen"), Value::from(0)])
        .unwrap();
    let seen = ev.wait("seen").await;
    assert_eq!(seen[0], Value::from(0));
    assert!(seen[1].as_str().is_some(), "offset appended: {seen:?}");
    // The server drops the transport and broadcasts 3 events while the client is away.
    s.emit("drop-and-broadcast", vec![Value::from(3)]).unwrap();
    assert_eq!(
        ev.wait("disconnect").await,
        vec![Value::from("transport close")]
    );
    ev.wait("connect").await;
    assert!(s.recovered(), "session recovered");
    assert_eq!(s.id(), id, "same id after recovery");
    for i in 1..=3 {
        let m = ev.wait("missed").await;
        assert_eq!(m[0], Value::from(i));
    }
    assert!(info(&s).await["recovered"] == Value::from(true));
    s.manager().shutdown().await;
}

async fn state_recovery_polling(peer: Peer) {
    recovery(peer, vec![TransportKind::Polling]).await;
}

async fn state_recovery_websocket(peer: Peer) {
    recovery(peer, vec![TransportKind::Websocket]).await;
}

against_both!(
    kill_and_restart_polling_upgrade,
    kill_and_restart_websocket,
    first_connection_is_retried,
    reconnection_disabled,
    state_recovery_polling,
    state_recovery_websocket,
);
