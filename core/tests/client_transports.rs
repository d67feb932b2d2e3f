//! Client transports against the reference server and our own: polling only, WebSocket only, the upgrade,
//! path / query / headers, namespaces multiplexed over one connection, heartbeat.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use polysio::client::{ClientBuilder, TransportKind};
use polysio::Value;
use serde_json::json as j;

fn binary_args() -> Vec<Value> {
    let mut nested = polysio::Map::new();
    nested.insert("name".into(), Value::from("file"));
    nested.insert(
        "data".into(),
        Value::Bytes(Bytes::from_static(&[0, 1, 2, 255])),
    );
    nested.insert(
        "list".into(),
        Value::Array(vec![
            Value::from(1),
            Value::Bytes(Bytes::from_static(b"xyz")),
        ]),
    );
    vec![
        Value::from("text"),
        Value::Map(nested),
        Value::Bytes(Bytes::new()),
    ]
}

async fn echo_roundtrip(ev: &Events, socket: &polysio::client::Socket) {
    let args = binary_args();
    socket.emit("echo", args.clone()).unwrap();
    assert_eq!(ev.wait("echo").await, args);
}

async fn polling_only(peer: Peer) {
    let srv = RefServer::start(peer, j!({}));
    let ev = Events::new();
    let s = client(
        ClientBuilder::new(srv.url()).transports([TransportKind::Polling]),
        "/",
        &ev,
        &["echo", "welcome"],
    );
    ev.wait("connect").await;
    assert!(s.connected());
    assert!(s.id().is_some());
    let welcome = ev.wait("welcome").await;
    assert_eq!(welcome[0]["id"], Value::from(s.id().unwrap()));
    echo_roundtrip(&ev, &s).await;
    assert_eq!(info(&s).await["transport"], Value::from("polling"));
    assert_eq!(s.manager().transport(), Some(TransportKind::Polling));
    s.disconnect();
    assert_eq!(
        ev.wait("disconnect").await,
        vec![Value::from("io client disconnect")]
    );
    s.manager().shutdown().await;
}

async fn websocket_only(peer: Peer) {
    let srv = RefServer::start(peer, j!({"transports": ["websocket"]}));
    let ev = Events::new();
    let s = client(
        ClientBuilder::new(srv.url()).transports([TransportKind::Websocket]),
        "/",
        &ev,
        &["echo"],
    );
    ev.wait("connect").await;
    echo_roundtrip(&ev, &s).await;
    assert_eq!(info(&s).await["transport"], Value::from("websocket"));
    s.manager().shutdown().await;
}

async fn upgrade_keeps_order(peer: Peer) {
    let srv = RefServer::start(peer, j!({}));
    let ev = Events::new();
    let s = client(ClientBuilder::new(srv.url()), "/", &ev, &["echo"]);
    ev.wait("connect").await;
    assert!(s.manager().transport().is_some());
    // Emits spread over the upgrade all arrive, in order.
    let mut n = 0;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        for _ in 0..5 {
            s.emit(
                "echo",
                vec![Value::from(n), Value::Bytes(Bytes::from(vec![n as u8]))],
            )
            .unwrap();
            n += 1;
        }
        if info(&s).await["transport"] == Value::from("websocket") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never upgraded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The server saw the upgrade; the client reports it too (right after, at the latest).
    while s.manager().transport() != Some(TransportKind::Websocket) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "client never upgraded"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for i in 0..n {
        let a = ev.wait("echo").await;
        assert_eq!(
            a,
            vec![Value::from(i), Value::Bytes(Bytes::from(vec![i as u8]))]
        );
    }
    echo_roundtrip(&ev, &s).await;
    s.manager().shutdown().await;
}

async fn no_upgrade_when_disabled(peer: Peer) {
    let srv = RefServer::start(peer, j!({"pingInterval": 300, "pingTimeout": 300}));
    let ev = Events::new();
    let s = client(ClientBuilder::new(srv.url()).upgrade(false), "/", &ev, &[]);
    ev.wait("connect").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(info(&s).await["transport"], Value::from("polling"));
    s.manager().shutdown().await;
}

async fn path_query_headers(peer: Peer) {
    let srv = RefServer::start(peer, j!({"path": "/custom-path/"}));
    for t in [TransportKind::Polling, TransportKind::Websocket] {
        let ev = Events::new();
        let b = ClientBuilder::new(format!("{}/?fromurl=yes", srv.url()))
            .transports([t])
            .path("/custom-path")
            .query("q", "a b&c")
            .extra_header("x-test", "hello");
        let s = client(b, "/", &ev, &[]);
        ev.wait("connect").await;
        let i = info(&s).await;
        assert_eq!(i["query"]["q"], Value::from("a b&c"));
        assert_eq!(i["query"]["fromurl"], Value::from("yes"));
        assert_eq!(i["headers"]["x-test"], Value::from("hello"));
        s.manager().shutdown().await;
    }
    // Nothing serves the default path of this server: the Node http server never answers (the
    // handshake times out), ours answers 404 (a transport error, shaped as the reference's).
    let ev = Events::new();
    let b = ClientBuilder::new(srv.url())
        .reconnection(false)
        .timeout(Duration::from_millis(500));
    let s = client(b, "/", &ev, &[]);
    let err = ev.wait("connect_error").await;
    match peer {
        Peer::Node => assert_eq!(err[0]["message"], Value::from("timeout")),
        Peer::Rust => {
            assert_eq!(err[0]["message"], Value::from("xhr poll error"));
            let description = err[0]["description"].as_str().unwrap_or_default();
            assert!(description.contains("404"), "{err:?}");
        }
    }
    s.manager().shutdown().await;
}

async fn namespaces_multiplexed(peer: Peer) {
    let srv = RefServer::start(peer, j!({}));
    let ev_main = Events::new();
    let ev_custom = Events::new();
    let manager = ClientBuilder::new(srv.url()).manager().unwrap();
    let main = manager.socket("/");
    let custom = manager.socket("/custom");
    ev_main.listen(&main, &["connect", "disconnect", "echo"]);
    ev_custom.listen(&custom, &["connect", "disconnect", "echo"]);
    main.connect();
    custom.connect();
    ev_main.wait("connect").await;
    ev_custom.wait("connect").await;
    let (a, b) = (info(&main).await, info(&custom).await);
    assert_eq!(a["engineId"], b["engineId"], "one connection");
    assert_eq!(a["nsp"], Value::from("/"));
    assert_eq!(b["nsp"], Value::from("/custom"));
    assert_eq!(a["clients"], Value::from(1));
    custom.emit("echo", vec![Value::from("c")]).unwrap();
    main.emit("echo", vec![Value::from("m")]).unwrap();
    assert_eq!(ev_custom.wait("echo").await, vec![Value::from("c")]);
    assert_eq!(ev_main.wait("echo").await, vec![Value::from("m")]);
    // Leaving one namespace keeps the other one (and the connection) up.
    custom.disconnect();
    assert_eq!(
        ev_custom.wait("disconnect").await,
        vec![Value::from("io client disconnect")]
    );
    assert!(!custom.connected());
    assert_eq!(info(&main).await["engineId"], a["engineId"]);
    // ... and it can come back on the same connection.
    custom.connect();
    ev_custom.wait("connect").await;
    assert_eq!(info(&custom).await["engineId"], a["engineId"]);
    manager.close();
    assert_eq!(
        ev_main.wait("disconnect").await,
        vec![Value::from("io client disconnect")]
    );
    assert_eq!(
        ev_custom.wait("disconnect").await,
        vec![Value::from("io client disconnect")]
    );
    manager.shutdown().await;
}

async fn heartbeat_is_answered(peer: Peer) {
    let srv = RefServer::start(peer, j!({"pingInterval": 100, "pingTimeout": 300}));
    for t in [TransportKind::Polling, TransportKind::Websocket] {
        let ev = Events::new();
        let s = client(
            ClientBuilder::new(srv.url()).transports([t]),
            "/",
            &ev,
            &["echo"],
        );
        ev.wait("connect").await;
        // Several ping periods go by without a disconnection on either side.
        assert!(
            !ev.happens_within("disconnect", Duration::from_millis(1200))
                .await
        );
        echo_roundtrip(&ev, &s).await;
        s.manager().shutdown().await;
    }
}

fn from_a_non_tokio_thread_with_a_handle(peer: Peer) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let srv = RefServer::start(peer, j!({}));
    let ev = Events::new();
    let manager = ClientBuilder::new(srv.url())
        .manager_on(rt.handle().clone())
        .unwrap();
    let s = manager.socket("/");
    ev.listen(&s, &["connect", "echo"]);
    s.connect();
    rt.block_on(ev.wait("connect"));
    // Emits from a plain thread; the ack future is awaited through the handle.
    std::thread::scope(|scope| {
        scope.spawn(|| {
            s.emit("echo", vec![Value::from("from a thread")]).unwrap();
            let fut = s.timeout(WAIT).emit_with_ack("ack", vec![Value::from(7)]);
            assert_eq!(rt.handle().block_on(fut).unwrap(), vec![Value::from(7)]);
        });
    });
    assert_eq!(
        rt.block_on(ev.wait("echo")),
        vec![Value::from("from a thread")]
    );
    rt.block_on(manager.shutdown());
    drop(s);
}

#[test]
fn works_from_a_non_tokio_thread_with_a_handle_node() {
    from_a_non_tokio_thread_with_a_handle(Peer::Node);
}

#[test]
fn works_from_a_non_tokio_thread_with_a_handle_rust() {
    from_a_non_tokio_thread_with_a_handle(Peer::Rust);
}

against_both!(
    polling_only,
    websocket_only,
    upgrade_keeps_order,
    no_upgrade_when_disabled,
    path_query_headers,
    namespaces_multiplexed,
    heartbeat_is_answered,
);
