//! The Redis emitter (`polysio::adapter::redis::Emitter`) against real peers: a real
//! `redis-server`, npm socket.io 4.8 nodes with `@socket.io/redis-adapter` 8.3 (classic) or
//! `@socket.io/redis-streams-adapter` 0.3.1 (tests/node/redis-emitter-node.js), and polysio
//! nodes (classic format); and npm `@socket.io/redis-emitter` 5.1.0
//! (tests/node/redis-npm-emitter.js) reaching a polysio node. Each emitter runs the same
//! operations (emit to all, a room, several rooms, except, binary, volatile, a namespace,
//! socketsJoin / socketsLeave, serverSideEmit, disconnectSockets) and the clients check what
//! arrives and what does not.

#![cfg(feature = "redis")]

#[path = "common/redis_cluster.rs"]
mod redis_cluster;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use polysio::adapter::redis::{Emitter, EmitterConfig, RedisConfig};
use polysio::server::Socket;
use polysio::{Error, Value};
use redis_cluster::*;
use serde_json::json;

/// Who sends: polysio's emitter, or npm's (classic format only).
enum Via {
    Rust(Emitter),
    Npm(String),
}

/// `{"$bin": [..]}` is binary (in arrays too).
fn arg(v: &serde_json::Value) -> Value {
    match v.get("$bin").and_then(|b| b.as_array()) {
        Some(b) => Value::from(
            b.iter()
                .map(|x| x.as_u64().unwrap() as u8)
                .collect::<Vec<u8>>(),
        ),
        None => match v {
            serde_json::Value::Array(a) => Value::Array(a.iter().map(arg).collect()),
            v => Value::from(v.clone()),
        },
    }
}

fn strs(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

impl Via {
    /// Runs `ops` (the shape tests/node/redis-npm-emitter.js takes); returns once they were
    /// written to Redis.
    async fn send(&self, ops: serde_json::Value) {
        match self {
            Via::Npm(url) => {
                let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/node");
                let ops = ops.to_string();
                let url = url.clone();
                let status = tokio::task::spawn_blocking(move || {
                    Command::new("node")
                        .arg(format!("{dir}/redis-npm-emitter.js"))
                        .arg(url)
                        .arg(ops)
                        .current_dir(dir)
                        .status()
                })
                .await
                .unwrap()
                .expect("node");
                assert!(status.success(), "redis-npm-emitter.js failed");
            }
            Via::Rust(e) => {
                for o in ops.as_array().unwrap() {
                    let e = e.of(o["nsp"].as_str().unwrap_or("/"));
                    let mut t = e.broadcast();
                    if o["volatile"] == json!(true) {
                        t = t.volatile();
                    }
                    let to = strs(&o["to"]);
                    let except = strs(&o["except"]);
                    for r in &to {
                        t = t.to(r.as_str());
                    }
                    for r in &except {
                        t = t.except(r.as_str());
                    }
                    let args: Vec<Value> = o["args"]
                        .as_array()
                        .map(|a| a.iter().map(arg).collect())
                        .unwrap_or_default();
                    let event = o["event"].as_str().unwrap_or("");
                    let rooms = strs(&o["rooms"]);
                    let rooms: Vec<&str> = rooms.iter().map(String::as_str).collect();
                    match o["op"].as_str().unwrap() {
                        "emit" => t.emit(event, args).unwrap(),
                        "socketsJoin" => t.sockets_join(&rooms).unwrap(),
                        "socketsLeave" => t.sockets_leave(&rooms).unwrap(),
                        "disconnectSockets" => {
                            t.disconnect_sockets(o["close"] == json!(true)).unwrap()
                        }
                        "serverSideEmit" => e.server_side_emit(event, args).unwrap(),
                        op => panic!("unknown op {op}"),
                    }
                }
                e.flush().await.unwrap();
            }
        }
    }
}

/// The polysio node's `/chat` namespace, with the handlers redis-emitter-node.js has.
fn install_chat(node: &Node) {
    let Node::Rust { io, .. } = node else {
        return;
    };
    let chat = io.of("/chat");
    let c2 = chat.clone();
    chat.on_server_side_emit("relay", move |args, _| {
        let _ = c2.local().emit("relayed", args);
    });
    chat.on_connection(|socket: Arc<Socket>| {
        socket.on("join", |s, args, ack| {
            if let Some(r) = room_arg(args.first()) {
                s.join(&[r.as_str()]);
            }
            if let Some(ack) = ack {
                let _ = ack.send(args);
            }
        });
    });
}

/// Sends until `to` gets one (the streams adapter's first XREAD may come after the node
/// announced itself).
async fn until_reached(via: &Via, to: &Client) {
    let deadline = Instant::now() + Duration::from_secs(30);
    for i in 0.. {
        let marker = format!("probe-{i}");
        via.send(json!([{"op": "emit", "event": "probe", "args": [marker]}]))
            .await;
        let step = Instant::now() + Duration::from_millis(500);
        while Instant::now() < step {
            if to.got("probe", &marker) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            Instant::now() < deadline,
            "the emitter never reached the node"
        );
    }
}

async fn scenario(via: Via, node: &Node) {
    let c0 = Client::connect(node, "c0").await;
    let c1 = Client::connect(node, "c1").await;
    let d0 = Client::connect_nsp(node, "/chat", "d0").await;
    c0.call("join", json!(["r"])).await;
    d0.call("join", json!(["r"])).await;
    until_reached(&via, &c0).await;

    // To all, JSON arguments; not another namespace.
    via.send(json!([{"op": "emit", "event": "hello", "args": ["all", 1, {"n": [1.5, "x"]}]}]))
        .await;
    for c in [&c0, &c1] {
        assert_eq!(
            c.expect("hello", "all").await,
            json!(["all", 1, {"n": [1.5, "x"]}])
        );
    }

    // Binary, top level and nested.
    via.send(json!([{"op": "emit", "event": "bin",
        "args": ["b", {"$bin": [0, 1, 2, 255]}, [{"$bin": [7, 7, 7]}, "t"]]}]))
        .await;
    for c in [&c0, &c1] {
        c.expect("bin", "b").await;
        let got = c
            .events
            .lock()
            .unwrap()
            .iter()
            .find(|(e, _)| e == "bin")
            .map(|(_, a)| a.clone())
            .unwrap();
        assert_eq!(
            got,
            vec![
                Value::from("b"),
                Value::from(vec![0u8, 1, 2, 255]),
                Value::Array(vec![Value::from(vec![7u8; 3]), Value::from("t")]),
            ],
            "{}",
            c.name
        );
    }

    // One room (its own channel in the classic format), two rooms, except, volatile.
    via.send(json!([
        {"op": "emit", "to": ["r"], "event": "in-r", "args": ["m1"]},
        {"op": "emit", "to": ["r", c1.id()], "event": "in-two", "args": ["m2"]},
        {"op": "emit", "except": ["r"], "event": "not-r", "args": ["m3"]},
        {"op": "emit", "to": ["r"], "except": [c0.id()], "event": "nobody", "args": ["m4"]},
        {"op": "emit", "volatile": true, "event": "vol", "args": ["m5"]},
    ]))
    .await;
    c0.expect("in-r", "m1").await;
    c0.expect("in-two", "m2").await;
    c1.expect("in-two", "m2").await;
    c1.expect("not-r", "m3").await;
    // `vol` (m5) is not awaited: Node drops a volatile packet for a client whose transport is
    // busy (a polling client between two GETs), so its arrival depends on timing.

    // Namespace /chat only.
    via.send(
        json!([{"op": "emit", "nsp": "chat", "event": "hello", "args": ["chat"]},
        {"op": "emit", "nsp": "/chat", "to": ["r"], "event": "in-r", "args": ["chat-r"]}]),
    )
    .await;
    d0.expect("hello", "chat").await;
    d0.expect("in-r", "chat-r").await;
    settle().await;
    assert!(!c1.got("in-r", "m1"));
    assert!(!c0.got("not-r", "m3"));
    assert!(!c0.got("nobody", "m4") && !c1.got("nobody", "m4"));
    assert!(!d0.got("hello", "all") && !d0.got("in-r", "m1"));
    assert!(!c0.got("hello", "chat") && !c0.got("in-r", "chat-r"));

    // socketsJoin / socketsLeave.
    via.send(
        json!([{"op": "socketsJoin", "to": ["r"], "rooms": ["r2", "r3"]},
        {"op": "socketsJoin", "except": ["r"], "rooms": ["r4"]}]),
    )
    .await;
    settle().await;
    via.send(
        json!([{"op": "emit", "to": ["r2"], "event": "in-r2", "args": ["j1"]},
        {"op": "emit", "to": ["r4"], "event": "in-r4", "args": ["j2"]}]),
    )
    .await;
    c0.expect("in-r2", "j1").await;
    c1.expect("in-r4", "j2").await;
    via.send(json!([{"op": "socketsLeave", "rooms": ["r2"]}]))
        .await;
    settle().await;
    via.send(
        json!([{"op": "emit", "to": ["r2"], "event": "in-r2", "args": ["j3"]},
        {"op": "emit", "to": ["r3"], "event": "in-r3", "args": ["j4"]}]),
    )
    .await;
    c0.expect("in-r3", "j4").await;
    settle().await;
    assert!(!c0.got("in-r2", "j3") && !c1.got("in-r2", "j1"));
    assert!(!c0.got("in-r4", "j2"));

    // serverSideEmit: the node's `relay` listener of each namespace.
    via.send(
        json!([{"op": "serverSideEmit", "event": "relay", "args": ["s1", 2]},
        {"op": "serverSideEmit", "nsp": "/chat", "event": "relay", "args": ["s2"]}]),
    )
    .await;
    assert_eq!(c0.expect("relayed", "s1").await, json!(["s1", 2]));
    assert_eq!(c1.expect("relayed", "s1").await, json!(["s1", 2]));
    assert_eq!(d0.expect("relayed", "s2").await, json!(["s2"]));

    // disconnectSockets: r3 (c0) only.
    via.send(json!([{"op": "disconnectSockets", "to": ["r3"], "close": false}]))
        .await;
    assert_eq!(
        c0.expect("disconnect", "io server disconnect").await,
        json!(["io server disconnect"])
    );
    settle().await;
    assert!(c1.socket.connected() && d0.socket.connected());
}

fn rust(redis: &RedisServer) -> Via {
    Via::Rust(Emitter::new(EmitterConfig::new(redis.url())).unwrap())
}

async fn rust_node(redis: &RedisServer) -> Node {
    let node = Node::rust_config(RedisConfig::new(redis.url())).await;
    install_chat(&node);
    node.redis().ready(WAIT).await.unwrap();
    node
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_emitter_reaches_an_npm_node() {
    let redis = RedisServer::start();
    let node = Node::npm_script("redis-emitter-node.js", &[&redis.url(), "classic"]);
    scenario(rust(&redis), &node).await;
    node.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_emitter_reaches_a_polysio_node() {
    let redis = RedisServer::start();
    let node = rust_node(&redis).await;
    scenario(rust(&redis), &node).await;
    node.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_emitter_reaches_a_polysio_node() {
    let redis = RedisServer::start();
    let node = rust_node(&redis).await;
    scenario(Via::Npm(redis.url()), &node).await;
    node.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_emitter_reaches_an_npm_streams_node() {
    let redis = RedisServer::start();
    let node = Node::npm_script("redis-emitter-node.js", &[&redis.url(), "streams"]);
    let e = Emitter::new(EmitterConfig::streams(redis.url())).unwrap();
    scenario(Via::Rust(e), &node).await;
    // MAXLEN ~ keeps the stream bounded; the entries are the emitter's.
    let len = redis
        .command(&[b"XLEN".as_slice(), b"socket.io".as_slice()])
        .unwrap();
    assert!(len.starts_with(b":"), "{len:?}");
    node.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_names_and_redis_down() {
    let mut redis = RedisServer::start();
    let mut config = EmitterConfig::new(redis.url());
    config.queue_capacity = 4;
    config.command_timeout = Duration::from_millis(500);
    let e = Emitter::new(config).unwrap();
    for name in ["connect", "disconnect", "connect_error", "newListener"] {
        let err = e.emit(name, vec![]).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
        assert!(err.to_string().contains("reserved event name"), "{err}");
        assert!(e.server_side_emit(name, vec![]).is_err());
    }
    assert!(Emitter::new(EmitterConfig::new("nope://x")).is_err());
    e.emit("ok", vec![1.into()]).unwrap();
    e.flush().await.unwrap();
    assert_eq!(e.stats().published, 1);

    // Redis down: writes fail (flush says so), the queue is bounded, drops are counted.
    redis.stop();
    e.emit("lost", vec![]).unwrap();
    let err = e.flush().await.unwrap_err();
    assert!(matches!(err, Error::Adapter(_)), "{err}");
    let mut full = 0;
    for _ in 0..100 {
        if matches!(e.emit("lost", vec![]), Err(Error::BufferFull(_))) {
            full += 1;
        }
    }
    assert!(full > 0, "the queue never filled up");
    let _ = tokio::time::timeout(WAIT, e.flush()).await.unwrap();
    let s = e.stats();
    assert_eq!(s.published, 1);
    assert_eq!(s.dropped, 101, "{s:?}");

    // Back: writing again.
    redis.spawn();
    let deadline = Instant::now() + WAIT;
    loop {
        e.emit("again", vec![]).unwrap();
        if e.flush().await.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "never wrote again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(e.stats().published >= 2);
}
