//! Server-wide operations seen from real clients (this project's Rust client): dynamic
//! namespaces, fetch_sockets, sockets_join / sockets_leave, disconnect_sockets, and broadcasts
//! with acks from several sockets.

mod common;

use std::time::Duration;

use common::*;
use polysio::client::ClientBuilder;
use polysio::server::{Server, ServerConfig};
use polysio::Value;

async fn serve(io: &Server) -> String {
    let addr = io.listen(("127.0.0.1", 0)).await.unwrap();
    format!("http://127.0.0.1:{}", addr.port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_namespaces() {
    let io = Server::new(ServerConfig::default());
    let parent =
        io.of_dynamic(|name, auth| name.starts_with("/team-") && auth["key"] != Value::from("bad"));
    parent.on_connection(|socket| {
        let _ = socket.emit("where", vec![Value::from(socket.nsp().name())]);
        socket.on("shout", |s, args, _| {
            let _ = s.nsp().emit("shouted", args);
        });
    });
    let url = serve(&io).await;

    let (ev_a, ev_b, ev_c) = (Events::new(), Events::new(), Events::new());
    let a = client(
        ClientBuilder::new(url.clone()),
        "/team-red",
        &ev_a,
        &["where", "shouted"],
    );
    let b = client(
        ClientBuilder::new(url.clone()),
        "/team-red",
        &ev_b,
        &["where", "shouted"],
    );
    let c = client(
        ClientBuilder::new(url.clone()),
        "/team-blue",
        &ev_c,
        &["where", "shouted"],
    );
    assert_eq!(ev_a.wait("where").await, vec![Value::from("/team-red")]);
    assert_eq!(ev_b.wait("where").await, vec![Value::from("/team-red")]);
    assert_eq!(ev_c.wait("where").await, vec![Value::from("/team-blue")]);
    // Each child namespace is its own: a namespace-wide emit stays inside it.
    a.emit("shout", vec![Value::from("red!")]).unwrap();
    assert_eq!(ev_a.wait("shouted").await, vec![Value::from("red!")]);
    assert_eq!(ev_b.wait("shouted").await, vec![Value::from("red!")]);
    assert!(
        !ev_c
            .happens_within("shouted", Duration::from_millis(300))
            .await
    );
    // The child is reachable through `of` once created.
    assert_eq!(io.of("/team-red").sockets().len(), 2);

    // Names (and auth) the matcher refuses.
    let ev = Events::new();
    let d = client(
        ClientBuilder::new(url.clone()).reconnection(false),
        "/other",
        &ev,
        &[],
    );
    assert_eq!(
        ev.wait("connect_error").await[0]["message"],
        Value::from("Invalid namespace")
    );
    let ev = Events::new();
    let e = client(
        ClientBuilder::new(url.clone())
            .reconnection(false)
            .auth(json(serde_json::json!({"key": "bad"}))),
        "/team-green",
        &ev,
        &[],
    );
    assert_eq!(
        ev.wait("connect_error").await[0]["message"],
        Value::from("Invalid namespace")
    );
    for s in [a, b, c, d, e] {
        s.manager().shutdown().await;
    }
    io.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_join_leave_disconnect_sockets() {
    let io = Server::new(ServerConfig::default());
    io.on_connection(|socket| {
        let name = socket.handshake().auth["name"].clone();
        socket.set_data(name);
        socket.on("whoami", |s, _, ack| {
            if let Some(ack) = ack {
                let _ = ack.send(vec![Value::from(s.id())]);
            }
        });
    });
    let url = serve(&io).await;
    let mut sockets = Vec::new();
    let mut events = Vec::new();
    for name in ["ann", "bob", "cid"] {
        let ev = Events::new();
        let s = client(
            ClientBuilder::new(url.clone())
                .auth(json(serde_json::json!({ "name": name })))
                .reconnection_delay(Duration::from_millis(100)),
            "/",
            &ev,
            &["news"],
        );
        ev.wait("connect").await;
        sockets.push(s);
        events.push(ev);
    }
    let ids: Vec<String> = sockets.iter().map(|s| s.id().unwrap()).collect();

    // fetch_sockets: everyone, with their data and rooms.
    let all = io.of("/").fetch_sockets().await.unwrap();
    assert_eq!(all.len(), 3);
    for (id, name) in ids.iter().zip(["ann", "bob", "cid"]) {
        let info = all.iter().find(|i| &*i.id == id.as_str()).expect("listed");
        assert_eq!(info.data, Value::from(name));
        assert!(info.rooms.iter().any(|r| &**r == id.as_str()));
    }

    // sockets_join: the selected sockets join a room, which then receives broadcasts.
    io.of("/").to(ids[0].as_str()).sockets_join(&["vip"]);
    io.of("/").to(ids[1].as_str()).sockets_join(&["vip"]);
    let vip = io.of("/").to("vip").fetch_sockets().await.unwrap();
    let mut vip_ids: Vec<&str> = vip.iter().map(|i| &*i.id).collect();
    vip_ids.sort();
    let mut want = vec![ids[0].as_str(), ids[1].as_str()];
    want.sort();
    assert_eq!(vip_ids, want);
    io.to("vip")
        .emit("news", vec![Value::from("vip only")])
        .unwrap();
    assert_eq!(events[0].wait("news").await, vec![Value::from("vip only")]);
    assert_eq!(events[1].wait("news").await, vec![Value::from("vip only")]);
    assert!(
        !events[2]
            .happens_within("news", Duration::from_millis(300))
            .await
    );

    // sockets_leave: everyone in "vip" leaves it.
    io.of("/").in_("vip").sockets_leave(&["vip"]);
    assert!(io
        .of("/")
        .to("vip")
        .fetch_sockets()
        .await
        .unwrap()
        .is_empty());
    io.to("vip")
        .emit("news", vec![Value::from("nobody")])
        .unwrap();
    assert!(
        !events[0]
            .happens_within("news", Duration::from_millis(300))
            .await
    );

    // Broadcast with acks: one answer per socket.
    for s in &sockets {
        s.on("poll", |args, ack| {
            if let Some(ack) = ack {
                let _ = ack.send(vec![Value::from(args.len() as i64)]);
            }
        });
    }
    let answers = io
        .of("/")
        .timeout(Duration::from_secs(5))
        .emit_with_ack("poll", vec![Value::from(1), Value::from(2)])
        .await
        .unwrap();
    assert_eq!(answers.len(), 3);
    assert!(answers.iter().all(|a| a == &vec![Value::from(2)]));

    // disconnect_sockets: the selected socket is disconnected by the server, and does not
    // reconnect; the others stay.
    io.of("/").to(ids[2].as_str()).disconnect_sockets(false);
    assert_eq!(
        events[2].wait("disconnect").await,
        vec![Value::from("io server disconnect")]
    );
    assert!(
        !events[2]
            .happens_within("manager:reconnect_attempt", Duration::from_millis(400))
            .await
    );
    assert_eq!(io.of("/").fetch_sockets().await.unwrap().len(), 2);
    // disconnect_sockets(true) closes the underlying connections too: the clients see the
    // server's disconnect, not a transport error.
    io.of("/").disconnect_sockets(true);
    for ev in &events[..2] {
        assert_eq!(
            ev.wait("disconnect").await,
            vec![Value::from("io server disconnect")]
        );
    }
    assert!(io.of("/").fetch_sockets().await.unwrap().is_empty());
    for s in sockets {
        s.manager().shutdown().await;
    }
    io.close().await;
}

/// As socket.io: emitting to a socket that has left drops the packet, without an error (a
/// timer that emits after the client left must not fail); `connected` tells.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_to_a_socket_that_has_left_is_a_no_op() {
    let io = Server::new(ServerConfig::default());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    io.on_connection(move |socket| {
        let _ = tx.send(socket);
    });
    let url = serve(&io).await;
    let ev = Events::new();
    let s = client(ClientBuilder::new(url), "/", &ev, &[]);
    let socket = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    s.disconnect();
    tokio::time::timeout(Duration::from_secs(10), async {
        while socket.connected() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the server socket to leave");
    assert_eq!(socket.emit("late", vec![Value::from(1)]), Ok(()));
    // Bad arguments are still refused.
    assert!(socket.emit("disconnect", vec![]).is_err());
    s.manager().shutdown().await;
    io.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_ack_fails_with_closed_when_the_client_disconnects() {
    let io = Server::new(ServerConfig::default());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    io.on_connection(move |socket| {
        let tx = tx.clone();
        tokio::spawn(async move {
            // The client never answers "question"; it disconnects instead.
            let r = socket
                .emit_with_ack("question", vec![], Some(Duration::from_secs(30)))
                .await;
            let _ = tx.send(r);
        });
    });
    let url = serve(&io).await;
    let ev = Events::new();
    let s = client(ClientBuilder::new(url), "/", &ev, &["question"]);
    ev.wait("question").await;
    s.disconnect();
    let r = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("the pending ack ends with the disconnect, not its 30 s timeout")
        .unwrap();
    assert!(matches!(r, Err(polysio::Error::Closed)), "{r:?}");
    s.manager().shutdown().await;
    io.close().await;
}

/// A `Cork` holds back the writes of broadcasts made on its thread until it is dropped; frames
/// keep their order, and a direct emit meanwhile takes the held frames with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corked_broadcasts_are_written_when_the_cork_drops_in_order() {
    let io = Server::new(ServerConfig::default());
    let url = serve(&io).await;
    let (ev_a, ev_b) = (Events::new(), Events::new());
    let ws =
        || ClientBuilder::new(url.clone()).transports([polysio::client::TransportKind::Websocket]);
    let client_a = client(ws(), "/", &ev_a, &["b", "d"]);
    let _client_b = client(ws(), "/", &ev_b, &["b", "d"]);
    ev_a.wait("connect").await;
    ev_b.wait("connect").await;
    let nsp = io.of("/");
    let a = nsp
        .socket(&client_a.id().unwrap())
        .expect("A's server socket");
    assert_eq!(nsp.sockets().len(), 2);

    // Corked on a plain thread (as a binding's JavaScript or Python thread would be).
    let (held_tx, held_rx) = std::sync::mpsc::channel::<()>();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let corked = std::thread::spawn(move || {
        let cork = polysio::server::Cork::new();
        for i in 1..=5 {
            nsp.emit("b", vec![Value::from(i)]).unwrap();
            if i == 3 {
                a.emit("d", vec![]).unwrap();
            }
        }
        held_tx.send(()).unwrap();
        go_rx.recv().unwrap();
        drop(cork);
    });
    held_rx.recv().unwrap();
    // A's direct emit woke its connection task, which wrote what was queued by then (b1..b3 at
    // least); B got nothing yet.
    ev_a.wait("d").await;
    assert!(
        !ev_b.happens_within("b", Duration::from_millis(300)).await,
        "a corked broadcast was written before the cork dropped"
    );
    assert!(ev_a.count("b") >= 3);
    go_tx.send(()).unwrap();
    corked.join().unwrap();
    for ev in [&ev_a, &ev_b] {
        for i in 1..=5 {
            assert_eq!(ev.wait("b").await, vec![Value::from(i)], "in order");
        }
    }
    assert!(!ev_b.happens_within("d", Duration::from_millis(50)).await);
}

/// A client whose consumer is slow (it holds each event, as a binding's event loop does until
/// its handler ran) reads no more from the server once `max_pending_messages` are held: over
/// WebSocket no more than the bound, over polling no further GET; when the consumer lets go,
/// every event arrives, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_consumer_stops_reading_and_loses_nothing() {
    use polysio::client::{ClientOptions, TransportKind};
    use std::sync::{Arc, Mutex};
    for transport in [TransportKind::Websocket, TransportKind::Polling] {
        let io = Server::new(ServerConfig::default());
        io.on_connection(|socket| {
            for i in 0..20 {
                let _ = socket.emit("n", vec![Value::from(i)]);
            }
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                for i in 20..40 {
                    let _ = socket.emit("n", vec![Value::from(i)]);
                }
            });
        });
        let url = serve(&io).await;
        let opts = ClientOptions {
            transports: vec![transport],
            max_pending_messages: 4,
            ..ClientOptions::default()
        };
        let manager = ClientBuilder::new(url).options(opts).manager().unwrap();
        let held = Arc::new(Mutex::new(Vec::new()));
        let socket = manager.socket("/");
        let (h, m) = (held.clone(), manager.clone());
        socket.on("n", move |args, _| {
            h.lock().unwrap().push((args[0].clone(), m.hold()));
        });
        socket.connect();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let n = held.lock().unwrap().len();
        let bound = if transport == TransportKind::Websocket {
            4
        } else {
            20
        };
        assert!(
            (1..=bound).contains(&n),
            "{transport:?}: {n} events read, past {bound}"
        );
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), async {
            while got.len() < 40 {
                let batch: Vec<_> = std::mem::take(&mut *held.lock().unwrap());
                got.extend(batch.into_iter().map(|(v, _held)| v));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{transport:?}: got {got:?}"));
        assert_eq!(got, (0..40).map(Value::from).collect::<Vec<_>>());
        manager.shutdown().await;
        io.close().await;
    }
}
