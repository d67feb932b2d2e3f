//! The classic `@socket.io/redis-adapter` format against real peers: a real `redis-server`
//! (started here on a free port), polysio nodes with [`RedisAdapter`], and npm socket.io 4.8
//! nodes with `@socket.io/redis-adapter` 8.3 (tests/node/redis-cluster-node.js). Clients (the
//! polysio client) connect to every node; every cluster operation is asked from each side.
#![cfg(feature = "redis")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use polysio::adapter::redis::{RedisAdapter, RedisConfig};
use polysio::client::ClientBuilder;
use polysio::server::{AckSender, Server, ServerConfig, Socket};
use polysio::Value;
use serde_json::json;

/// Generous: the test machine is shared and may be loaded.
const WAIT: Duration = Duration::from_secs(20);

fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if port != 3000 {
            return port;
        }
    }
}

/// A `redis-server` of the test's own, killed on drop; it can be stopped and started again on
/// the same port.
struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    fn start() -> RedisServer {
        let mut s = RedisServer {
            port: free_port(),
            child: None,
        };
        s.spawn();
        s
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-server must be installed (Debian's redis-server package)");
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if self
                .command(&[b"PING"])
                .is_some_and(|r| r.starts_with(b"+PONG"))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// One command over a fresh connection; the raw reply.
    fn command(&self, args: &[&[u8]]) -> Option<Vec<u8>> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            req.extend_from_slice(a);
            req.extend_from_slice(b"\r\n");
        }
        s.write_all(&req).ok()?;
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).ok()?;
        Some(buf[..n].to_vec())
    }

    fn publish(&self, channel: &str, payload: &[u8]) {
        let r = self.command(&[b"PUBLISH", channel.as_bytes(), payload]);
        assert!(r.is_some_and(|r| r.starts_with(b":")), "PUBLISH failed");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A cluster node: polysio with the Redis adapter, or npm socket.io with
/// `@socket.io/redis-adapter`. Both have the same handlers (see redis-cluster-node.js).
enum Node {
    Rust {
        io: Server,
        redis: RedisAdapter,
        port: u16,
    },
    Npm {
        child: Child,
        port: u16,
    },
}

impl Node {
    fn port(&self) -> u16 {
        match self {
            Node::Rust { port, .. } | Node::Npm { port, .. } => *port,
        }
    }

    fn redis(&self) -> &RedisAdapter {
        match self {
            Node::Rust { redis, .. } => redis,
            Node::Npm { .. } => panic!("not a polysio node"),
        }
    }

    async fn rust(url: &str) -> Node {
        Node::rust_with(url, Duration::from_secs(5)).await
    }

    async fn rust_with(url: &str, requests_timeout: Duration) -> Node {
        let mut config = RedisConfig::new(url);
        config.requests_timeout = requests_timeout;
        let redis = RedisAdapter::new(config).unwrap();
        let io = Server::new(ServerConfig {
            adapter: Some(redis.factory()),
            ..Default::default()
        });
        install_handlers(&io);
        let addr = io.listen(("127.0.0.1", 0)).await.unwrap();
        redis.ready(WAIT).await.unwrap();
        Node::Rust {
            io,
            redis,
            port: addr.port(),
        }
    }

    fn npm(url: &str) -> Node {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/node");
        let mut child = Command::new("node")
            .arg(format!("{dir}/redis-cluster-node.js"))
            .arg("0")
            .arg(url)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node must be installed (and `npm ci` run in tests/node)");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let line = rx.recv_timeout(WAIT).expect("the npm node did not start");
        let port = line
            .strip_prefix("listening ")
            .and_then(|p| p.trim().parse().ok())
            .expect("listening line");
        Node::Npm { child, port }
    }

    async fn close(self) {
        match self {
            Node::Rust { io, .. } => io.close().await,
            Node::Npm { mut child, .. } => {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn ack_error(ack: AckSender, e: polysio::Error) {
    let _ = ack.send(vec![Value::from(json!({"error": e.to_string()}))]);
}

fn room_arg(v: Option<&Value>) -> Option<String> {
    v.and_then(|v| match v {
        Value::String(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    })
}

/// The handlers of redis-cluster-node.js, on a polysio server.
fn install_handlers(io: &Server) {
    let nsp = io.of("/");
    let n2 = nsp.clone();
    nsp.on_server_side_emit("relay", move |args, _| {
        let _ = n2.local().emit("relayed", args);
    });
    nsp.on_server_side_emit("ping-node", |_, ack| {
        if let Some(ack) = ack {
            ack.send(Value::from("pong"));
        }
    });
    nsp.on_connection(|socket: Arc<Socket>| {
        socket.on("join", |s, args, ack| {
            if let Some(r) = room_arg(args.first()) {
                s.join(&[&r]);
            }
            if let Some(ack) = ack {
                let _ = ack.send(args);
            }
        });
        socket.on("emit-to", |s, mut args, ack| {
            if args.len() < 2 {
                return;
            }
            let rest = args.split_off(2);
            let ev = args[1].as_str().unwrap_or("").to_owned();
            let _ = match room_arg(args.first()) {
                Some(r) => s.nsp().to(r.as_str()).emit(&ev, rest),
                None => s.nsp().emit(&ev, rest),
            };
            if let Some(ack) = ack {
                let _ = ack.send(vec![]);
            }
        });
        socket.on("emit-except", |s, mut args, ack| {
            if args.len() < 2 {
                return;
            }
            let rest = args.split_off(2);
            let ev = args[1].as_str().unwrap_or("").to_owned();
            let r = room_arg(args.first()).unwrap_or_default();
            let _ = s.nsp().except(r.as_str()).emit(&ev, rest);
            if let Some(ack) = ack {
                let _ = ack.send(vec![]);
            }
        });
        socket.on("fetch-sockets", |s, args, ack| {
            let Some(ack) = ack else { return };
            let op = match room_arg(args.first()) {
                Some(r) => s.nsp().in_(r.as_str()),
                None => s.nsp().broadcast(),
            };
            tokio::spawn(async move {
                match op.fetch_sockets().await {
                    Ok(list) => {
                        let mut ids: Vec<String> = list.iter().map(|s| s.id.to_string()).collect();
                        ids.sort();
                        let _ = ack.send(vec![Value::from(json!(ids))]);
                    }
                    Err(e) => ack_error(ack, e),
                }
            });
        });
        socket.on("fetch-details", |s, args, ack| {
            let Some(ack) = ack else { return };
            let op = match room_arg(args.first()) {
                Some(r) => s.nsp().in_(r.as_str()),
                None => s.nsp().broadcast(),
            };
            tokio::spawn(async move {
                match op.fetch_sockets().await {
                    Ok(mut list) => {
                        list.sort_by(|a, b| a.id.cmp(&b.id));
                        let out: Vec<Value> = list
                            .into_iter()
                            .map(|s| {
                                let mut rooms: Vec<String> =
                                    s.rooms.iter().map(|r| r.to_string()).collect();
                                rooms.sort();
                                let mut m = polysio::value::Map::new();
                                m.insert("id".into(), Value::from(s.id.to_string()));
                                m.insert("rooms".into(), Value::from(json!(rooms)));
                                m.insert("data".into(), s.data.clone());
                                m.insert("address".into(), s.handshake["address"].clone());
                                Value::Map(m)
                            })
                            .collect();
                        let _ = ack.send(vec![Value::Array(out)]);
                    }
                    Err(e) => ack_error(ack, e),
                }
            });
        });
        socket.on("sockets-join", |s, args, ack| {
            if let (Some(t), Some(r)) = (room_arg(args.first()), room_arg(args.get(1))) {
                s.nsp().in_(t.as_str()).sockets_join(&[&r]);
            }
            if let Some(ack) = ack {
                let _ = ack.send(vec![]);
            }
        });
        socket.on("disconnect-room", |s, args, ack| {
            if let Some(ack) = ack {
                let _ = ack.send(vec![]);
            }
            if let Some(r) = room_arg(args.first()) {
                s.nsp().in_(r.as_str()).disconnect_sockets(false);
            }
        });
        socket.on("server-side-emit", |s, args, ack| {
            let _ = s.nsp().server_side_emit("relay", args);
            if let Some(ack) = ack {
                let _ = ack.send(vec![]);
            }
        });
        socket.on("server-side-emit-with-ack", |s, _, ack| {
            let Some(ack) = ack else { return };
            let nsp = s.nsp().clone();
            tokio::spawn(async move {
                match nsp
                    .server_side_emit_with_ack("ping-node", vec![], Duration::from_secs(5))
                    .await
                {
                    Ok(replies) => {
                        let mut r: Vec<String> = replies.iter().map(js_string).collect();
                        r.sort();
                        let _ = ack.send(vec![Value::from(json!(r))]);
                    }
                    Err(e) => ack_error(ack, e),
                }
            });
        });
        socket.on("ask-all", |s, args, ack| {
            let Some(ack) = ack else { return };
            let op = s.nsp().timeout(Duration::from_secs(3));
            tokio::spawn(async move {
                match op.emit_with_ack("question", args).await {
                    Ok(replies) => {
                        let mut r: Vec<String> = replies
                            .iter()
                            .map(|a| a.first().map(js_string).unwrap_or_default())
                            .collect();
                        r.sort();
                        let _ = ack.send(vec![Value::from(json!(r))]);
                    }
                    Err(e) => ack_error(ack, e),
                }
            });
        });
        socket.on("server-count", |s, _, ack| {
            let Some(ack) = ack else { return };
            let nsp = s.nsp().clone();
            tokio::spawn(async move {
                match nsp.server_count().await {
                    Ok(n) => {
                        let _ = ack.send(vec![Value::from(n as i64)]);
                    }
                    Err(e) => ack_error(ack, e),
                }
            });
        });
        socket.on("all-rooms", |s, _, ack| {
            let Some(ack) = ack else { return };
            let nsp = s.nsp().clone();
            tokio::spawn(async move {
                match nsp.all_rooms().await {
                    Ok(rooms) => {
                        let mut r: Vec<String> = rooms.iter().map(|r| r.to_string()).collect();
                        r.sort();
                        r.dedup();
                        let _ = ack.send(vec![Value::from(json!(r))]);
                    }
                    Err(e) => ack_error(ack, e),
                }
            });
        });
        socket.on("set-data", |s, args, ack| {
            s.set_data(args.into_iter().next().unwrap_or_default());
            if let Some(ack) = ack {
                let _ = ack.send(vec![]);
            }
        });
    });
}

/// JavaScript's `String(v)` for the values these tests use.
fn js_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_json_string(),
    }
}

type Events = Arc<Mutex<Vec<(String, Vec<Value>)>>>;

/// A polysio client on one node, recording every event it gets; it answers `question` with
/// its name.
struct Client {
    name: String,
    socket: polysio::client::Socket,
    events: Events,
}

impl Client {
    async fn connect(node: &Node, name: &str) -> Client {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let tx = Mutex::new(Some(tx));
        let events: Events = Arc::default();
        let ev = events.clone();
        let me = name.to_owned();
        let socket = ClientBuilder::new(format!("http://127.0.0.1:{}", node.port()))
            .reconnection(false)
            .on("connect", move |_, _| {
                if let Some(tx) = tx.lock().unwrap().take() {
                    let _ = tx.send(());
                }
            })
            .on("question", move |_, ack| {
                if let Some(ack) = ack {
                    let _ = ack.send(vec![Value::from(me.as_str())]);
                }
            })
            .on("disconnect", move |args, _| {
                ev.lock().unwrap().push(("disconnect".into(), args));
            })
            .connect()
            .await
            .unwrap();
        let ev = events.clone();
        socket.on_any(move |name, args, _| {
            ev.lock().unwrap().push((name.to_owned(), args));
        });
        tokio::time::timeout(WAIT, rx)
            .await
            .expect("client did not connect")
            .unwrap();
        Client {
            name: name.to_owned(),
            socket,
            events,
        }
    }

    fn id(&self) -> String {
        self.socket.id().expect("connected")
    }

    async fn call(&self, event: &str, args: serde_json::Value) -> serde_json::Value {
        let args = match Value::from(args) {
            Value::Array(a) => a,
            v => vec![v],
        };
        let r = self
            .socket
            .timeout(WAIT)
            .emit_with_ack(event, args)
            .await
            .unwrap_or_else(|e| panic!("{}: {event}: {e}", self.name));
        to_json(&Value::Array(r))
    }

    /// The arguments of the first `event` received with a first argument `marker`, waiting for
    /// it.
    async fn expect(&self, event: &str, marker: &str) -> serde_json::Value {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(args) = self.find(event, marker) {
                return args;
            }
            assert!(
                Instant::now() < deadline,
                "{} never got {event} {marker}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn find(&self, event: &str, marker: &str) -> Option<serde_json::Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .find(|(e, a)| e == event && a.first().and_then(Value::as_str) == Some(marker))
            .map(|(_, a)| to_json(&Value::Array(a.clone())))
    }

    fn got(&self, event: &str, marker: &str) -> bool {
        self.find(event, marker).is_some()
    }
}

fn to_json(v: &Value) -> serde_json::Value {
    serde_json::from_str(&v.to_json_string()).unwrap()
}

fn sorted(mut v: Vec<String>) -> serde_json::Value {
    v.sort();
    json!(v)
}

/// Lets messages that should not arrive have the time to.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// Every cluster operation between two nodes, asked from each side. `a` and `b` are the nodes'
/// clients: two each.
async fn scenarios(a: [&Client; 2], b: [&Client; 2]) {
    let all = [a[0], a[1], b[0], b[1]];
    let all_ids: Vec<String> = all.iter().map(|c| c.id()).collect();
    for (side, c) in [("a", a[0]), ("b", b[0])] {
        assert_eq!(
            c.call("server-count", json!([])).await,
            json!([2]),
            "{side}"
        );
    }

    // Broadcasts to every socket, both ways, binary included.
    for (side, c) in [("a", a[0]), ("b", b[0])] {
        let marker = format!("hello-from-{side}");
        c.call(
            "emit-to",
            json!([null, "hello", marker, 1, {"n": [1.5, "x"]}]),
        )
        .await;
        for r in all {
            let got = r.expect("hello", &marker).await;
            assert_eq!(got, json!([marker, 1, {"n": [1.5, "x"]}]), "{}", r.name);
        }
    }

    // Binary arguments, inline msgpack `bin` on the wire, attachments again for the clients.
    for (side, c) in [("a", a[0]), ("b", b[0])] {
        let marker = format!("bin-from-{side}");
        let bytes = Value::from(vec![0u8, 1, 2, 255]);
        let nested = Value::from(vec![Value::from(vec![7u8; 3]), Value::from("t")]);
        let args = vec![
            Value::Null,
            Value::from("bin"),
            Value::from(marker.as_str()),
            bytes.clone(),
            nested.clone(),
        ];
        c.socket
            .timeout(WAIT)
            .emit_with_ack("emit-to", args)
            .await
            .unwrap();
        for r in all {
            r.expect("bin", &marker).await;
            let got = r
                .events
                .lock()
                .unwrap()
                .iter()
                .find(|(e, a)| e == "bin" && a.first().and_then(Value::as_str) == Some(&marker))
                .map(|(_, a)| a.clone())
                .unwrap();
            assert_eq!(
                got,
                vec![Value::from(marker.as_str()), bytes.clone(), nested.clone()]
            );
        }
    }

    // Rooms: a[0] and b[0] in "r".
    a[0].call("join", json!(["r"])).await;
    b[0].call("join", json!(["r"])).await;
    for (side, c) in [("a", a[1]), ("b", b[1])] {
        let marker = format!("room-from-{side}");
        c.call("emit-to", json!(["r", "in-r", marker])).await;
        a[0].expect("in-r", &marker).await;
        b[0].expect("in-r", &marker).await;
        settle().await;
        assert!(!a[1].got("in-r", &marker) && !b[1].got("in-r", &marker));
    }
    // Except: everybody but "r".
    for (side, c) in [("a", a[0]), ("b", b[0])] {
        let marker = format!("except-from-{side}");
        c.call("emit-except", json!(["r", "not-r", marker])).await;
        a[1].expect("not-r", &marker).await;
        b[1].expect("not-r", &marker).await;
        settle().await;
        assert!(!a[0].got("not-r", &marker) && !b[0].got("not-r", &marker));
    }

    // fetchSockets: every node's sockets, from either side; data and rooms included.
    b[0].call("set-data", json!([{"name": "b0", "n": [1, 2]}]))
        .await;
    a[0].call("set-data", json!([{"name": "a0"}])).await;
    for (side, c) in [("a", a[1]), ("b", b[1])] {
        assert_eq!(
            c.call("fetch-sockets", json!([null])).await,
            json!([sorted(all_ids.clone())]),
            "{side}"
        );
        assert_eq!(
            c.call("fetch-sockets", json!(["r"])).await,
            json!([sorted(vec![a[0].id(), b[0].id()])]),
            "{side}"
        );
        let details = c.call("fetch-details", json!(["r"])).await;
        let details = details[0].as_array().unwrap().clone();
        assert_eq!(details.len(), 2, "{side}: {details:?}");
        for d in &details {
            let (owner, data) = if d["id"] == json!(a[0].id()) {
                (a[0], json!({"name": "a0"}))
            } else {
                (b[0], json!({"name": "b0", "n": [1, 2]}))
            };
            assert_eq!(d["id"], json!(owner.id()));
            assert_eq!(d["data"], data, "{side}");
            assert_eq!(d["rooms"], sorted(vec![owner.id(), "r".into()]), "{side}");
            assert_eq!(d["address"], json!("127.0.0.1"), "{side}");
        }
    }

    // allRooms: every node's rooms, socket ids included.
    for (side, c) in [("a", a[0]), ("b", b[0])] {
        let mut want = all_ids.clone();
        want.push("r".into());
        assert_eq!(
            c.call("all-rooms", json!([])).await,
            json!([sorted(want)]),
            "{side}"
        );
    }

    // serverSideEmit: the other node's listener, which emits to its own clients only (the
    // `local` flag).
    for (side, c, others, own) in [("a", a[0], b, a), ("b", b[0], a, b)] {
        let marker = format!("sse-from-{side}");
        c.call("server-side-emit", json!([marker, 2])).await;
        for r in others {
            assert_eq!(r.expect("relayed", &marker).await, json!([marker, 2]));
        }
        settle().await;
        for r in own {
            assert!(
                !r.got("relayed", &marker),
                "{} got its own node's relay",
                r.name
            );
        }
    }
    // serverSideEmit with an ack: one answer per other node.
    for (side, c) in [("a", a[0]), ("b", b[0])] {
        assert_eq!(
            c.call("server-side-emit-with-ack", json!([])).await,
            json!([["pong"]]),
            "{side}"
        );
    }

    // Broadcast with acks: every client of every node answers.
    for (side, c) in [("a", a[1]), ("b", b[1])] {
        assert_eq!(
            c.call("ask-all", json!(["who?"])).await,
            json!([sorted(all.iter().map(|c| c.name.clone()).collect())]),
            "{side}"
        );
    }

    // socketsJoin across nodes, then a broadcast to the new room from the other side.
    a[1].call("sockets-join", json!(["r", "r2"])).await;
    settle().await;
    b[1].call("emit-to", json!(["r2", "in-r2", "m1"])).await;
    a[0].expect("in-r2", "m1").await;
    b[0].expect("in-r2", "m1").await;
    b[1].call("sockets-join", json!([b[1].id(), "r3"])).await;
    settle().await;
    a[1].call("emit-to", json!(["r3", "in-r3", "m2"])).await;
    b[1].expect("in-r3", "m2").await;

    // disconnectSockets across nodes: "r2" (a[0] and b[0]), asked from b.
    b[1].call("disconnect-room", json!(["r2"])).await;
    for r in [a[0], b[0]] {
        let d = r.expect("disconnect", "io server disconnect").await;
        assert_eq!(d, json!(["io server disconnect"]));
    }
    settle().await;
    assert!(a[1].socket.connected() && b[1].socket.connected());
    assert_eq!(
        a[1].call("fetch-sockets", json!([null])).await,
        json!([sorted(vec![a[1].id(), b[1].id()])])
    );
}

async fn clients(a: &Node, b: &Node) -> [Client; 4] {
    [
        Client::connect(a, "a0").await,
        Client::connect(a, "a1").await,
        Client::connect(b, "b0").await,
        Client::connect(b, "b1").await,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_polysio_nodes() {
    let redis = RedisServer::start();
    let a = Node::rust(&redis.url()).await;
    let b = Node::rust(&redis.url()).await;
    let [a0, a1, b0, b1] = clients(&a, &b).await;
    scenarios([&a0, &a1], [&b0, &b1]).await;
    assert_eq!(a.redis().stats().malformed, 0);
    assert_eq!(b.redis().stats().malformed, 0);
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polysio_and_npm_nodes() {
    let redis = RedisServer::start();
    let a = Node::rust(&redis.url()).await;
    let b = Node::npm(&redis.url());
    let [a0, a1, b0, b1] = clients(&a, &b).await;
    scenarios([&a0, &a1], [&b0, &b1]).await;
    assert_eq!(a.redis().stats().malformed, 0);
    a.close().await;
    b.close().await;
}

/// Broadcasts until one reaches `to` (messages published while a subscriber is reconnecting
/// are lost, as with Node's adapter).
async fn until_delivered(from: &Client, to: &Client, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    for i in 0.. {
        let marker = format!("{what}-{i}");
        from.call("emit-to", json!([null, "probe", marker])).await;
        let step = Instant::now() + Duration::from_millis(500);
        while Instant::now() < step {
            if to.got("probe", &marker) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(Instant::now() < deadline, "{what}: never delivered again");
    }
}

/// Redis stops in the middle of the test: both nodes keep serving their own clients, requests
/// across nodes fail with an error in bounded time; Redis comes back: both nodes resubscribe and
/// the cluster works again.
async fn redis_restart(b_is_npm: bool) {
    let mut redis = RedisServer::start();
    let a = Node::rust(&redis.url()).await;
    let b = if b_is_npm {
        Node::npm(&redis.url())
    } else {
        Node::rust(&redis.url()).await
    };
    let [a0, a1, b0, b1] = clients(&a, &b).await;
    a0.call("emit-to", json!([null, "hello", "before"])).await;
    b1.expect("hello", "before").await;

    redis.stop();
    // Local clients are still served: broadcasts, acks, new connections.
    a0.call("emit-to", json!([null, "hello", "during-a"])).await;
    a1.expect("hello", "during-a").await;
    b0.call("emit-to", json!([null, "hello", "during-b"])).await;
    b1.expect("hello", "during-b").await;
    let a2 = Client::connect(&a, "a2").await;
    a2.call("join", json!(["x"])).await;
    // A request across nodes fails, in bounded time, with an error that says why.
    let t = Instant::now();
    let r = a0.call("fetch-sockets", json!([null])).await;
    let err = r[0]["error"].as_str().unwrap_or_else(|| panic!("{r}"));
    assert!(
        err.contains("redis") || err.contains("timed out"),
        "unclear error: {err}"
    );
    assert!(t.elapsed() < Duration::from_secs(12), "{:?}", t.elapsed());
    let r = a0.call("server-side-emit-with-ack", json!([])).await;
    assert!(r[0]["error"].is_string(), "{r}");
    settle().await;
    assert!(!b0.got("hello", "during-a") && !a0.got("hello", "during-b"));

    tokio::time::sleep(Duration::from_secs(1)).await;
    redis.spawn();
    until_delivered(&a0, &b0, "a-to-b").await;
    until_delivered(&b1, &a1, "b-to-a").await;
    if let Node::Rust { redis, .. } = &a {
        redis.ready(WAIT).await.unwrap();
        assert!(redis.stats().connections >= 2, "{:?}", redis.stats());
    }
    let mut ids: Vec<String> = [&a0, &a1, &a2, &b0, &b1].iter().map(|c| c.id()).collect();
    ids.sort();
    assert_eq!(a0.call("fetch-sockets", json!([null])).await, json!([ids]));
    assert_eq!(b0.call("fetch-sockets", json!([null])).await, json!([ids]));
    assert_eq!(a1.call("server-count", json!([])).await, json!([2]));
    assert_eq!(
        b0.call("server-side-emit-with-ack", json!([])).await,
        json!([["pong"]])
    );
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_polysio_nodes() {
    redis_restart(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_polysio_and_npm_nodes() {
    redis_restart(true).await;
}

/// Messages a polysio node cannot use (on every channel it listens to) are logged, counted and
/// skipped; the cluster goes on. (Not tried on an npm node: some of these crash Node's adapter,
/// see REDIS-ADAPTER.md section 7.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_messages_are_skipped() {
    let redis = RedisServer::start();
    let a = Node::rust(&redis.url()).await;
    let b = Node::rust(&redis.url()).await;
    let [a0, a1, b0, b1] = clients(&a, &b).await;
    let uid = a.redis().uid().to_owned();
    let bad: Vec<(String, Vec<u8>)> = vec![
        ("socket.io#/#".into(), vec![0xc1]),
        ("socket.io#/#".into(), vec![0x93, 0xa1]),
        ("socket.io#/#".into(), b"{\"json\": true}".to_vec()),
        // [uid, packet, opts] with opts not a map, then rooms not an array.
        ("socket.io#/#".into(), vec![0x93, 0xa1, b'x', 0x80, 0x01]),
        (
            "socket.io#/#".into(),
            vec![
                0x93, 0xa1, b'x', 0x82, 0xa4, b'd', b'a', b't', b'a', 0x91, 0xa1, b'e', 0xa3, b'n',
                b's', b'p', 0xa1, b'/', 0x81, 0xa5, b'r', b'o', b'o', b'm', b's', 0x07,
            ],
        ),
        // Trailing bytes after a valid message.
        ("socket.io#/#".into(), vec![0x90, 0x00]),
        ("socket.io-request#/#".into(), b"{not json".to_vec()),
        (
            "socket.io-request#/#".into(),
            b"{\"type\":5,\"requestId\":\"q\"}".to_vec(),
        ),
        (
            "socket.io-request#/#".into(),
            b"{\"type\":2,\"opts\":{\"rooms\":3}}".to_vec(),
        ),
        ("socket.io-request#/#".into(), b"{\"type\":6}".to_vec()),
        (
            "socket.io-request#/#".into(),
            b"{\"type\":7,\"requestId\":\"z\"}".to_vec(),
        ),
        ("socket.io-request#/#".into(), b"[1,2]".to_vec()),
        (
            "socket.io-request#/#".into(),
            vec![0xdd, 0xff, 0xff, 0xff, 0xff],
        ),
        ("socket.io-response#/#".into(), vec![0xc1]),
        (
            format!("socket.io-response#/#{uid}#"),
            b"{\"requestId\":".to_vec(),
        ),
    ];
    for (channel, payload) in &bad {
        redis.publish(channel, payload);
    }
    // The cluster still works, both ways.
    a0.call("emit-to", json!([null, "hello", "after"])).await;
    b1.expect("hello", "after").await;
    b0.call("emit-to", json!([null, "hello", "after-b"])).await;
    a1.expect("hello", "after-b").await;
    let mut ids: Vec<String> = [&a0, &a1, &b0, &b1].iter().map(|c| c.id()).collect();
    ids.sort();
    assert_eq!(a0.call("fetch-sockets", json!([null])).await, json!([ids]));
    let (ma, mb) = (a.redis().stats().malformed, b.redis().stats().malformed);
    assert!(ma >= 12 && mb >= 12, "malformed counted: {ma} {mb}");
    a.close().await;
    b.close().await;
}

/// Byte-exactness with what the npm adapter itself publishes: the polysio node decodes a
/// broadcast that Node encoded (binary, a Date, numbers) and an npm node decodes polysio's
/// (checked end to end above). Here: the bytes of a broadcast as notepack.io 3 writes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notepack_broadcast_bytes() {
    let redis = RedisServer::start();
    let a = Node::rust(&redis.url()).await;
    let a0 = Client::connect(&a, "a0").await;
    // notepack.encode(["emitter", {type: 2, data: ["ev", "m", Buffer.from([1, 2]),
    //   new Date(1700000000000), 1.5, -3], nsp: "/"}, {rooms: [], except: [], flags: {}}])
    let mut msg = vec![0x93, 0xa7];
    msg.extend_from_slice(b"emitter");
    msg.extend_from_slice(&[0x83, 0xa4]);
    msg.extend_from_slice(b"type");
    msg.extend_from_slice(&[0x02, 0xa4]);
    msg.extend_from_slice(b"data");
    msg.extend_from_slice(&[0x96, 0xa2]);
    msg.extend_from_slice(b"ev");
    msg.extend_from_slice(&[0xa1, b'm', 0xc4, 0x02, 0x01, 0x02]);
    msg.extend_from_slice(&[0xd6, 0xff, 0x65, 0x53, 0xf1, 0x00]);
    msg.extend_from_slice(&[0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0xfd]);
    msg.extend_from_slice(&[0xa3]);
    msg.extend_from_slice(b"nsp");
    msg.extend_from_slice(&[0xa1, b'/', 0x83, 0xa5]);
    msg.extend_from_slice(b"rooms");
    msg.extend_from_slice(&[0x90, 0xa6]);
    msg.extend_from_slice(b"except");
    msg.extend_from_slice(&[0x90, 0xa5]);
    msg.extend_from_slice(b"flags");
    msg.push(0x80);
    redis.publish("socket.io#/#", &msg);
    let deadline = Instant::now() + WAIT;
    let args = loop {
        let found = a0
            .events
            .lock()
            .unwrap()
            .iter()
            .find(|(e, _)| e == "ev")
            .map(|(_, a)| a.clone());
        if let Some(a) = found {
            break a;
        }
        assert!(
            Instant::now() < deadline,
            "never got the emitter's broadcast"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(args[0], Value::from("m"));
    assert_eq!(args[1].as_bytes().map(|b| b.to_vec()), Some(vec![1, 2]));
    assert_eq!(args[2], Value::from("2023-11-14T22:13:20.000Z"));
    assert_eq!(args[3].as_f64(), Some(1.5));
    assert_eq!(args[4].as_i64(), Some(-3));
    a.close().await;
}

/// A subscriber of the request channel that never answers (a monitoring client,
/// socket.io-redis-adapter #406, or a node that is up but stuck) is counted by NUMSUB: requests
/// across nodes then end with the typed timeout after `requests_timeout`, never hang, and the
/// pending requests are forgotten (later ones work once it is gone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_subscriber_gives_a_timeout_error() {
    let redis = RedisServer::start();
    let a = Node::rust_with(&redis.url(), Duration::from_millis(800)).await;
    let b = Node::rust_with(&redis.url(), Duration::from_millis(800)).await;
    let [a0, _a1, b0, _b1] = clients(&a, &b).await;
    let mut spy = Command::new("redis-cli")
        .args([
            "-p",
            &redis.port.to_string(),
            "subscribe",
            "socket.io-request#/#",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-cli");
    let deadline = Instant::now() + WAIT;
    while a0.call("server-count", json!([])).await != json!([3]) {
        assert!(Instant::now() < deadline, "the spy is never counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The handler's serverSideEmitWithAck passes its own timeout (5 s); the others use the
    // adapter's requests_timeout.
    for (what, args, timeout) in [
        ("fetch-sockets", json!([null]), "800ms"),
        ("all-rooms", json!([]), "800ms"),
        ("server-side-emit-with-ack", json!([]), "5s"),
    ] {
        let t = Instant::now();
        let r = a0.call(what, args).await;
        assert_eq!(
            r,
            json!([{ "error": format!("operation has timed out after {timeout}") }]),
            "{what}"
        );
        assert!(
            t.elapsed() < Duration::from_secs(8),
            "{what}: {:?}",
            t.elapsed()
        );
    }
    // A broadcast with acks waits for a client count from every node counted: it times out too,
    // after its own timeout (3 s in ask-all).
    let r = b0.call("ask-all", json!(["q"])).await;
    assert_eq!(r, json!([{"error": "operation has timed out after 3s"}]));
    let _ = spy.kill();
    let _ = spy.wait();
    let deadline = Instant::now() + WAIT;
    while a0.call("server-count", json!([])).await != json!([2]) {
        assert!(Instant::now() < deadline, "the spy is still counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut ids = vec![a0.id(), _a1.id(), b0.id(), _b1.id()];
    ids.sort();
    assert_eq!(a0.call("fetch-sockets", json!([null])).await, json!([ids]));
    a.close().await;
    b.close().await;
}

/// A polysio server that closes leaves the cluster at once (its namespaces unsubscribe), even
/// while its `RedisAdapter` lives on: the other nodes stop counting it, so their requests do
/// not wait for it. An npm node sees the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_server_leaves_the_cluster() {
    let redis = RedisServer::start();
    let a = Node::rust(&redis.url()).await;
    let b = Node::rust(&redis.url()).await;
    let c = Node::npm(&redis.url());
    let a0 = Client::connect(&a, "a0").await;
    let c0 = Client::connect(&c, "c0").await;
    let b0 = Client::connect(&b, "b0").await;
    assert_eq!(a0.call("server-count", json!([])).await, json!([3]));
    let kept = b.redis().clone();
    let Node::Rust { io, .. } = b else {
        unreachable!()
    };
    io.close().await;
    drop(b0);
    let deadline = Instant::now() + WAIT;
    while a0.call("server-count", json!([])).await != json!([2]) {
        assert!(
            Instant::now() < deadline,
            "the closed server is still counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(c0.call("server-count", json!([])).await, json!([2]));
    let mut ids = vec![a0.id(), c0.id()];
    ids.sort();
    assert_eq!(a0.call("fetch-sockets", json!([null])).await, json!([ids]));
    assert_eq!(c0.call("fetch-sockets", json!([null])).await, json!([ids]));
    assert_eq!(
        c0.call("server-side-emit-with-ack", json!([])).await,
        json!([["pong"]])
    );
    drop(kept);
    a.close().await;
    c.close().await;
}

/// Redis is not there when the node starts: it serves its own clients meanwhile, tells it is
/// not ready, and joins the cluster when Redis comes up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_before_redis() {
    let mut redis = RedisServer {
        port: free_port(),
        child: None,
    };
    let redis_adapter = RedisAdapter::new(RedisConfig::new(redis.url())).unwrap();
    let io = Server::new(ServerConfig {
        adapter: Some(redis_adapter.factory()),
        ..Default::default()
    });
    install_handlers(&io);
    let port = io.listen(("127.0.0.1", 0)).await.unwrap().port();
    let a = Node::Rust {
        io,
        redis: redis_adapter.clone(),
        port,
    };
    assert!(redis_adapter
        .ready(Duration::from_millis(300))
        .await
        .is_err());
    let a0 = Client::connect(&a, "a0").await;
    let a1 = Client::connect(&a, "a1").await;
    a0.call("emit-to", json!([null, "hello", "alone"])).await;
    a1.expect("hello", "alone").await;
    let r = a0.call("server-count", json!([])).await;
    assert!(r[0]["error"].is_string(), "{r}");

    redis.spawn();
    redis_adapter.ready(WAIT).await.unwrap();
    let b = Node::npm(&redis.url());
    let b0 = Client::connect(&b, "b0").await;
    assert_eq!(a0.call("server-count", json!([])).await, json!([2]));
    until_delivered(&a0, &b0, "a-to-b").await;
    until_delivered(&b0, &a1, "b-to-a").await;
    a.close().await;
    b.close().await;
}
