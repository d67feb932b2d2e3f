//! The harness of the Redis adapter tests (redis_classic.rs, redis_sharded.rs): a real
//! `redis-server` (started on a free port), polysio nodes with [`RedisAdapter`], npm socket.io
//! 4.8 nodes with `@socket.io/redis-adapter` 8.3 (tests/node/redis-cluster-node.js), polysio
//! clients on every node, and the cluster operations asked from each side.
#![allow(dead_code)]

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
pub const WAIT: Duration = Duration::from_secs(20);

pub fn free_port() -> u16 {
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
pub struct RedisServer {
    pub port: u16,
    pub child: Option<Child>,
    /// More `redis-server` arguments (a password, a unix socket...).
    pub extra: Vec<String>,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// A server started with more arguments, e.g. `["--requirepass", "pw"]`.
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let mut s = RedisServer {
            port: free_port(),
            child: None,
            extra: extra.iter().map(|a| a.to_string()).collect(),
        };
        s.spawn();
        s
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(std::env::temp_dir())
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-server must be installed (Debian's redis-server package)");
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if self
                .command(&[b"PING"])
                // Up: PONG, or NOAUTH when it wants a password.
                .is_some_and(|r| r.starts_with(b"+PONG") || r.starts_with(b"-NOAUTH"))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// One command over a fresh connection; the raw reply.
    pub fn command(&self, args: &[&[u8]]) -> Option<Vec<u8>> {
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

    pub fn publish(&self, channel: &str, payload: &[u8]) {
        let r = self.command(&[b"PUBLISH", channel.as_bytes(), payload]);
        assert!(r.is_some_and(|r| r.starts_with(b":")), "PUBLISH failed");
    }

    /// SPUBLISH (sharded pub/sub).
    pub fn spublish(&self, channel: &str, payload: &[u8]) {
        let r = self.command(&[b"SPUBLISH", channel.as_bytes(), payload]);
        assert!(r.is_some_and(|r| r.starts_with(b":")), "SPUBLISH failed");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A cluster node: polysio with the Redis adapter, or npm socket.io with
/// `@socket.io/redis-adapter`. Both have the same handlers (see redis-cluster-node.js).
pub enum Node {
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
    pub fn port(&self) -> u16 {
        match self {
            Node::Rust { port, .. } | Node::Npm { port, .. } => *port,
        }
    }

    pub fn redis(&self) -> &RedisAdapter {
        match self {
            Node::Rust { redis, .. } => redis,
            Node::Npm { .. } => panic!("not a polysio node"),
        }
    }

    pub async fn rust(url: &str) -> Node {
        Node::rust_with(url, Duration::from_secs(5)).await
    }

    pub async fn rust_with(url: &str, requests_timeout: Duration) -> Node {
        let mut config = RedisConfig::new(url);
        config.requests_timeout = requests_timeout;
        Node::rust_config(config).await
    }

    /// A polysio node with the adapter `config` gives.
    pub async fn rust_config(config: RedisConfig) -> Node {
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

    pub fn npm(url: &str) -> Node {
        Node::npm_with(url, "classic")
    }

    /// An npm node with `createAdapter` (`format` "classic") or `createShardedAdapter`
    /// ("sharded").
    pub fn npm_with(url: &str, format: &str) -> Node {
        Node::npm_script("redis-cluster-node.js", &["0", url, format])
    }

    /// An npm node running `script` of tests/node with `args`; it prints `listening PORT`.
    pub fn npm_script(script: &str, args: &[&str]) -> Node {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/node");
        let mut child = Command::new("node")
            .arg(format!("{dir}/{script}"))
            .args(args)
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

    pub async fn close(self) {
        match self {
            Node::Rust { io, .. } => io.close().await,
            Node::Npm { mut child, .. } => {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

pub fn ack_error(ack: AckSender, e: polysio::Error) {
    let _ = ack.send(vec![Value::from(json!({"error": e.to_string()}))]);
}

pub fn room_arg(v: Option<&Value>) -> Option<String> {
    v.and_then(|v| match v {
        Value::String(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    })
}

/// The handlers of redis-cluster-node.js, on a polysio server.
pub fn install_handlers(io: &Server) {
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
pub fn js_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_json_string(),
    }
}

pub type Events = Arc<Mutex<Vec<(String, Vec<Value>)>>>;

/// A polysio client on one node, recording every event it gets; it answers `question` with
/// its name.
pub struct Client {
    pub name: String,
    pub socket: polysio::client::Socket,
    pub events: Events,
}

impl Client {
    pub async fn connect(node: &Node, name: &str) -> Client {
        Client::connect_nsp(node, "/", name).await
    }

    /// A client of namespace `nsp` (`/chat`).
    pub async fn connect_nsp(node: &Node, nsp: &str, name: &str) -> Client {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let tx = Mutex::new(Some(tx));
        let events: Events = Arc::default();
        let ev = events.clone();
        let me = name.to_owned();
        let socket = ClientBuilder::new(format!("http://127.0.0.1:{}{nsp}", node.port()))
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

    pub fn id(&self) -> String {
        self.socket.id().expect("connected")
    }

    pub async fn call(&self, event: &str, args: serde_json::Value) -> serde_json::Value {
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
    pub async fn expect(&self, event: &str, marker: &str) -> serde_json::Value {
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

    pub fn find(&self, event: &str, marker: &str) -> Option<serde_json::Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .find(|(e, a)| e == event && a.first().and_then(Value::as_str) == Some(marker))
            .map(|(_, a)| to_json(&Value::Array(a.clone())))
    }

    pub fn got(&self, event: &str, marker: &str) -> bool {
        self.find(event, marker).is_some()
    }
}

pub fn to_json(v: &Value) -> serde_json::Value {
    serde_json::from_str(&v.to_json_string()).unwrap()
}

pub fn sorted(mut v: Vec<String>) -> serde_json::Value {
    v.sort();
    json!(v)
}

/// Lets messages that should not arrive have the time to.
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// Every cluster operation between two nodes, asked from each side. `a` and `b` are the nodes'
/// clients: two each.
/// `all_rooms`: whether the format has allRooms across nodes (the sharded one has not).
pub async fn scenarios(a: [&Client; 2], b: [&Client; 2], all_rooms: bool) {
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
    // The sharded format's dynamic mode subscribes to the room's channel now.
    settle().await;
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
    for (side, c) in [("a", a[0]), ("b", b[0])].into_iter().filter(|_| all_rooms) {
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

pub async fn clients(a: &Node, b: &Node) -> [Client; 4] {
    [
        Client::connect(a, "a0").await,
        Client::connect(a, "a1").await,
        Client::connect(b, "b0").await,
        Client::connect(b, "b1").await,
    ]
}

/// Broadcasts until one reaches `to` (messages published while a subscriber is reconnecting
/// are lost, as with Node's adapter).
pub async fn until_delivered(from: &Client, to: &Client, what: &str) {
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
