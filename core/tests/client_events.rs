//! Events, acknowledgements (both ways, with binary), auth, middleware refusal, disconnections,
//! the offline buffer and volatile emits, against the reference server and against our own
//! (every test runs as `node::NAME` and `rust::NAME`, see `against_both!`).

mod common;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use polysio::client::{Auth, ClientBuilder};
use polysio::{Error, Value};
use serde_json::json as j;

fn nested_binary(tag: u8) -> Vec<Value> {
    vec![
        Value::from("args"),
        json(j!({"deep": {"list": [1, 2]}})),
        Value::Array(vec![
            Value::Bytes(Bytes::from(vec![tag, 0, 255])),
            json(j!(null)),
        ]),
    ]
}

async fn acks_both_ways_with_binary(peer: Peer) {
    let srv = RefServer::start(peer, j!({}));
    let ev = Events::new();
    let manager = ClientBuilder::new(srv.url()).manager().unwrap();
    let s = manager.socket("/");
    ev.listen(&s, &["connect", "answer"]);
    // The server asks; the handler gets the arguments and a responder, and answers from
    // another thread a little later.
    s.on("question", {
        let ev = ev.clone();
        move |args, ack| {
            ev.push("question", args.clone());
            let ack = ack.expect("the server asked for an ack");
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                let mut reply = args;
                reply.push(Value::from("answered"));
                ack.send(reply).unwrap();
                assert!(ack.send(vec![]).is_err(), "only one answer");
            });
        }
    });
    s.connect();
    ev.wait("connect").await;

    // Client -> server, awaited.
    let args = nested_binary(1);
    assert_eq!(s.emit_with_ack("ack", args.clone()).await.unwrap(), args);
    // Client -> server, callback.
    let args2 = nested_binary(2);
    let ev2 = ev.clone();
    s.emit_with_ack_cb("ack", args2.clone(), move |r| ev2.push("cb", r.unwrap()))
        .unwrap();
    assert_eq!(ev.wait("cb").await, args2);

    // Server -> client.
    let asked = nested_binary(3);
    s.emit(
        "ask",
        vec![
            Value::from("question"),
            Value::Array(asked.clone()),
            Value::from(5000),
        ],
    )
    .unwrap();
    assert_eq!(ev.wait("question").await, asked);
    let mut expected = asked;
    expected.push(Value::from("answered"));
    assert_eq!(ev.wait("answer").await, expected);
    manager.shutdown().await;
}

async fn ack_timeouts(peer: Peer) {
    let srv = RefServer::start(peer, j!({}));
    let ev = Events::new();
    let s = client(
        ClientBuilder::new(srv.url()).ack_timeout(Duration::from_millis(300)),
        "/",
        &ev,
        &["echo"],
    );
    ev.wait("connect").await;
    // "echo" never acknowledges.
    let r = s.emit_with_ack("echo", vec![]).await;
    assert!(matches!(r, Err(Error::Timeout(_))), "{r:?}");
    let r = s
        .timeout(Duration::from_millis(100))
        .emit_with_ack("echo", vec![])
        .await;
    assert_eq!(r, Err(Error::Timeout(Duration::from_millis(100))));
    let ev2 = ev.clone();
    s.emit_with_ack_cb("echo", vec![], move |r| {
        ev2.push("cb", vec![Value::from(matches!(r, Err(Error::Timeout(_))))])
    })
    .unwrap();
    assert_eq!(ev.wait("cb").await, vec![Value::from(true)]);
    // A server that does not answer our own ack in time: the server reports its timeout.
    s.on("slow", |_, _ack| {});
    s.emit(
        "ask",
        vec![Value::from("slow"), Value::Array(vec![]), Value::from(100)],
    )
    .unwrap();
    ev.listen(&s, &["answer"]);
    assert_eq!(
        ev.wait("answer").await,
        vec![json(j!({"error": "operation has timed out"}))]
    );
    s.manager().shutdown().await;
}

async fn catch_all_and_reserved_names(peer: Peer) {
    let srv = RefServer::start(peer, j!({}));
    let ev = Events::new();
    let manager = ClientBuilder::new(srv.url()).manager().unwrap();
    let s = manager.socket("/");
    ev.listen(&s, &["connect"]);
    let ev2 = ev.clone();
    s.on_any(move |name, args, _| ev2.push(&format!("any:{name}"), args));
    s.connect();
    ev.wait("connect").await;
    ev.wait("any:welcome").await;
    s.emit(
        "echo",
        vec![Value::from(1), Value::Bytes(Bytes::from_static(b"b"))],
    )
    .unwrap();
    assert_eq!(
        ev.wait("any:echo").await,
        vec![Value::from(1), Value::Bytes(Bytes::from_static(b"b"))]
    );
    for reserved in ["connect", "disconnect", "connect_error"] {
        assert!(matches!(
            s.emit(reserved, vec![]),
            Err(Error::InvalidArgument(_))
        ));
    }
    manager.shutdown().await;
}

async fn auth_value_and_callback(peer: Peer) {
    let srv = RefServer::start(peer, j!({}));
    // A fixed value, on a namespace given in the URL.
    let ev = Events::new();
    let b = ClientBuilder::new(format!("{}/custom", srv.url())).auth(json(j!({"token": "abc"})));
    let m = b.manager().unwrap();
    let s = m.socket("/custom");
    ev.listen(&s, &["connect"]);
    s.connect();
    ev.wait("connect").await;
    let i = info(&s).await;
    assert_eq!(i["auth"], json(j!({"token": "abc"})));
    assert_eq!(i["nsp"], Value::from("/custom"));
    m.shutdown().await;

    // A callback, evaluated at each (re)connection.
    let n = Arc::new(AtomicI64::new(0));
    let n2 = n.clone();
    let auth = Auth::callback(move || json(j!({"n": n2.fetch_add(1, Ordering::SeqCst) + 1})));
    let ev = Events::new();
    let b = ClientBuilder::new(srv.url())
        .auth(auth)
        .reconnection_delay(Duration::from_millis(100))
        .randomization_factor(0.0);
    let s = client(b, "/", &ev, &[]);
    ev.wait("connect").await;
    assert_eq!(info(&s).await["auth"], json(j!({"n": 1})));
    s.emit("close-transport", vec![]).unwrap();
    assert_eq!(
        ev.wait("disconnect").await,
        vec![Value::from("transport close")]
    );
    ev.wait("connect").await;
    assert_eq!(info(&s).await["auth"], json(j!({"n": 2})));
    s.manager().shutdown().await;
}

async fn middleware_refusal(peer: Peer) {
    let srv = RefServer::start(peer, j!({}));
    let ev = Events::new();
    let b = ClientBuilder::new(srv.url())
        .auth(json(j!({"refuse": "nope"})))
        .reconnection_delay(Duration::from_millis(100));
    let s = client(b, "/", &ev, &[]);
    let e = ev.wait("connect_error").await;
    assert_eq!(
        e[0],
        json(j!({"message": "refused by middleware", "data": {"reason": "nope", "code": 42}}))
    );
    assert!(!s.active());
    assert!(!s.connected());
    // The refused socket was the only one: the connection closes without reconnecting.
    assert_eq!(
        ev.wait("manager:close").await,
        vec![Value::from("forced close")]
    );
    assert!(
        !ev.happens_within("manager:reconnect_attempt", Duration::from_millis(800))
            .await
    );
    // A later connect() with a good auth works.
    s.set_auth(json(j!({"ok": true})));
    s.connect();
    ev.wait("connect").await;
    s.manager().shutdown().await;
}

async fn server_disconnect_does_not_reconnect(peer: Peer) {
    let srv = RefServer::start(peer, j!({}));
    let ev = Events::new();
    let s = client(
        ClientBuilder::new(srv.url()).reconnection_delay(Duration::from_millis(100)),
        "/",
        &ev,
        &[],
    );
    ev.wait("connect").await;
    s.emit("kick", vec![]).unwrap();
    assert_eq!(
        ev.wait("disconnect").await,
        vec![Value::from("io server disconnect")]
    );
    assert!(!s.active());
    assert!(
        !ev.happens_within("manager:reconnect_attempt", Duration::from_millis(800))
            .await
    );
    assert_eq!(ev.count("connect"), 0);
    s.manager().shutdown().await;
}

async fn client_disconnect_and_drop_leave_nothing_behind(peer: Peer) {
    let srv = RefServer::start(peer, j!({}));
    let observer_ev = Events::new();
    let observer = client(ClientBuilder::new(srv.url()), "/", &observer_ev, &[]);
    observer_ev.wait("connect").await;
    for transports in [
        vec![polysio::client::TransportKind::Polling],
        vec![polysio::client::TransportKind::Websocket],
    ] {
        // disconnect()
        let ev = Events::new();
        let s = client(
            ClientBuilder::new(srv.url()).transports(transports.clone()),
            "/",
            &ev,
            &[],
        );
        ev.wait("connect").await;
        assert_eq!(info(&observer).await["clients"], Value::from(2));
        s.disconnect();
        assert_eq!(
            ev.wait("disconnect").await,
            vec![Value::from("io client disconnect")]
        );
        wait_clients(&observer, 1).await;
        assert!(
            !ev.happens_within("manager:reconnect_attempt", Duration::from_millis(300))
                .await
        );
        // drop of every handle
        let ev = Events::new();
        let s = client(
            ClientBuilder::new(srv.url()).transports(transports),
            "/",
            &ev,
            &[],
        );
        ev.wait("connect").await;
        wait_clients(&observer, 2).await;
        drop(s);
        wait_clients(&observer, 1).await;
    }
    observer.manager().shutdown().await;
    // After shutdown, handles fail cleanly.
    assert_eq!(observer.emit("echo", vec![]), Err(Error::Closed));
}

async fn wait_clients(observer: &polysio::client::Socket, n: i64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if info(observer).await["clients"] == Value::from(n) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "server never got to {n} clients"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn offline_buffer_volatile_and_bound(peer: Peer) {
    let srv = RefServer::start(peer, j!({}));
    let ev = Events::new();
    // WebSocket only: a volatile emit made while the polling transport is paused for the
    // upgrade is dropped (as the reference client does), which would make the check racy.
    let manager = ClientBuilder::new(srv.url())
        .transports([polysio::client::TransportKind::Websocket])
        .send_buffer_max(4)
        .manager()
        .unwrap();
    let s = manager.socket("/");
    ev.listen(&s, &["connect", "echo"]);
    // Before the connection is up: buffered in order, volatile dropped, the bound enforced.
    s.emit("echo", vec![Value::from(1)]).unwrap();
    s.volatile()
        .emit("echo", vec![Value::from("volatile")])
        .unwrap();
    s.emit("echo", vec![Value::from(2)]).unwrap();
    let ack = s.emit_with_ack("ack", vec![Value::from(3)]);
    s.emit("echo", vec![Value::from(4)]).unwrap();
    let over = s.emit("echo", vec![Value::from(5)]);
    assert!(matches!(over, Err(Error::BufferFull(_))), "{over:?}");
    s.connect();
    ev.wait("connect").await;
    assert_eq!(ack.await.unwrap(), vec![Value::from(3)]);
    for i in [1, 2, 4] {
        assert_eq!(ev.wait("echo").await, vec![Value::from(i)]);
    }
    // Connected: volatile goes through, and the buffer is free again.
    s.volatile().emit("echo", vec![Value::from("v")]).unwrap();
    assert_eq!(ev.wait("echo").await, vec![Value::from("v")]);
    assert_eq!(
        ev.count("echo"),
        0,
        "the volatile emit made while offline was dropped"
    );
    manager.shutdown().await;
}

async fn huge_durations_do_not_panic(peer: Peer) {
    let srv = RefServer::start(peer, j!({}));
    let ev = Events::new();
    let b = ClientBuilder::new(srv.url())
        .ack_timeout(Duration::MAX)
        .timeout(Duration::MAX)
        .reconnection_delay(Duration::MAX)
        .reconnection_delay_max(Duration::MAX);
    let s = client(b, "/", &ev, &[]);
    ev.wait("connect").await;
    assert_eq!(
        s.emit_with_ack("ack", vec![Value::from(1)]).await.unwrap(),
        vec![Value::from(1)]
    );
    s.emit("close-transport", vec![]).unwrap();
    ev.wait("disconnect").await;
    // The reconnection is scheduled (very far away) without a panic; the task still answers.
    assert!(
        !ev.happens_within("manager:reconnect_attempt", Duration::from_millis(200))
            .await
    );
    s.manager().shutdown().await;
}

against_both!(
    acks_both_ways_with_binary,
    ack_timeouts,
    catch_all_and_reserved_names,
    auth_value_and_callback,
    middleware_refusal,
    server_disconnect_does_not_reconnect,
    client_disconnect_and_drop_leave_nothing_behind,
    offline_buffer_volatile_and_bound,
    huge_durations_do_not_panic,
);
