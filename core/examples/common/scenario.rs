//! The scenario server of the cross-language tests, as tests/SCENARIOS.md describes it: shared by
//! the standalone host (`test_server.rs`) and the axum host (`axum_server.rs`), which include this
//! file with `#[path]`. Cluster mode (tests/SCENARIOS.md, "Cluster mode"): with
//! `POLYSIO_TEST_REDIS` set, the server joins that Redis through the `@socket.io/redis-adapter`
//! format `POLYSIO_TEST_ADAPTER` names (`classic`, the default, or `sharded`), and `/` has the
//! cluster events.

use std::sync::Arc;
use std::time::Duration;

use polysio::adapter::redis::{RedisAdapter, RedisConfig};
use polysio::engine::EngineConfig;
use polysio::server::{AckSender, ConnectError, Namespace, Server, ServerConfig, Socket};
use polysio::{Map, Value};

/// The port from the first argument (3000 without one).
/// The certificate to serve https/wss with: `POLYSIO_TEST_TLS_CERT` and
/// `POLYSIO_TEST_TLS_KEY` (PEM files), when both are set (tests/run-server's TLS hook).
#[allow(dead_code)]
pub fn test_tls() -> Option<polysio::tls::ServerTls> {
    let cert = std::env::var_os("POLYSIO_TEST_TLS_CERT")?;
    let key = std::env::var_os("POLYSIO_TEST_TLS_KEY")?;
    Some(polysio::tls::ServerTls::from_pem_files(cert, key).expect("the test certificate loads"))
}

pub fn port() -> u16 {
    std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000)
}

/// The scenario server's options: pingInterval 300 ms, pingTimeout 200 ms, connectTimeout
/// 1000 ms, everything else at the defaults.
pub fn config() -> ServerConfig {
    let defaults = ServerConfig::default();
    ServerConfig {
        engine: EngineConfig {
            ping_interval: Duration::from_millis(300),
            ping_timeout: Duration::from_millis(200),
            ..defaults.engine.clone()
        },
        connect_timeout: Duration::from_millis(1000),
        ..defaults
    }
}

/// A server with the scenario namespaces `/` and `/custom`; in cluster mode
/// (`POLYSIO_TEST_REDIS`), joined to that Redis and subscribed before it returns, so that the
/// other nodes count it once its port is open. An adapter other than `classic` in
/// `POLYSIO_TEST_ADAPTER` ends the process with status 77 (not available).
pub async fn server() -> Server {
    let redis = cluster_adapter();
    let io = Server::new(ServerConfig {
        adapter: redis.as_ref().map(RedisAdapter::factory),
        ..config()
    });
    scenario_namespace(io.of("/"));
    scenario_namespace(io.of("/custom"));
    if let Some(redis) = redis {
        cluster_namespace(io.of("/"), redis.clone());
        if let Err(e) = redis.ready(Duration::from_secs(20)).await {
            eprintln!("scenario server: Redis not ready: {e}");
            std::process::exit(1);
        }
    }
    io
}

/// The Redis adapter of cluster mode: `POLYSIO_TEST_REDIS` (a `redis://` URL) with
/// `POLYSIO_TEST_ADAPTER` unset or `classic`, or `sharded`.
fn cluster_adapter() -> Option<RedisAdapter> {
    let url = std::env::var("POLYSIO_TEST_REDIS")
        .ok()
        .filter(|u| !u.is_empty())?;
    let adapter = std::env::var("POLYSIO_TEST_ADAPTER").unwrap_or_default();
    let config = match adapter.as_str() {
        "" | "classic" => RedisConfig::new(url),
        "sharded" => RedisConfig::sharded(url),
        _ => {
            eprintln!("adapter {adapter} not supported by rust (POLYSIO_TEST_ADAPTER; known: classic, sharded)");
            std::process::exit(77);
        }
    };
    match RedisAdapter::new(config) {
        Ok(redis) => Some(redis),
        Err(e) => {
            eprintln!("scenario server: POLYSIO_TEST_REDIS: {e}");
            std::process::exit(2);
        }
    }
}

fn ack_error(ack: AckSender, e: polysio::Error) {
    let mut m = Map::new();
    m.insert("error".into(), Value::from(e.to_string()));
    let _ = ack.send(vec![Value::Map(m)]);
}

/// `{"error", "after_ms", "servers" (NUMSUB now, or its error), "redis" (the adapter's counters)}`.
fn cluster_failure(
    e: polysio::Error,
    t0: std::time::Instant,
    servers: polysio::Result<usize>,
    redis: &RedisAdapter,
) -> Value {
    let st = redis.stats();
    let mut counters = Map::new();
    for (k, v) in [
        ("published", st.published),
        ("received", st.received),
        ("malformed", st.malformed),
        ("dropped", st.dropped),
        ("connections", st.connections),
    ] {
        counters.insert(k.into(), Value::from(v as i64));
    }
    let mut m = Map::new();
    m.insert("error".into(), Value::from(e.to_string()));
    m.insert(
        "after_ms".into(),
        Value::from(t0.elapsed().as_millis() as i64),
    );
    m.insert(
        "servers".into(),
        match servers {
            Ok(n) => Value::from(n as i64),
            Err(e) => Value::from(e.to_string()),
        },
    );
    m.insert("redis".into(), Value::Map(counters));
    Value::Map(m)
}

/// JavaScript's `String(v)` for the values the cluster events carry.
fn js_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_json_string(),
    }
}

fn strings(mut v: Vec<String>) -> Value {
    v.sort();
    Value::Array(v.into_iter().map(Value::from).collect())
}

/// The cluster events of `/` (tests/SCENARIOS.md, "Cluster mode").
fn cluster_namespace(nsp: Namespace, redis: RedisAdapter) {
    let n2 = nsp.clone();
    nsp.on_server_side_emit("relay", move |args, _| {
        let _ = n2.local().emit("relayed", args);
    });
    nsp.on_server_side_emit("ping-node", |_, ack| {
        if let Some(ack) = ack {
            ack.send(Value::from("pong"));
        }
    });
    nsp.on_connection(move |socket: Arc<Socket>| {
        socket.on("fetch-sockets", |s, args, ack| {
            let (Some(ack), Some(room)) = (ack, args.first().and_then(Value::as_str)) else {
                return;
            };
            let op = s.nsp().in_(room.to_owned());
            tokio::spawn(async move {
                match op.fetch_sockets().await {
                    Ok(list) => {
                        let ids = list.iter().map(|s| s.id.to_string()).collect();
                        let _ = ack.send(vec![strings(ids)]);
                    }
                    Err(e) => ack_error(ack, e),
                }
            });
        });
        socket.on("sockets-join", |s, args, ack| {
            let target = args.first().and_then(Value::as_str);
            if let (Some(t), Some(r)) = (target, args.get(1).and_then(Value::as_str)) {
                s.nsp().in_(t.to_owned()).sockets_join(&[r]);
            }
            if let Some(ack) = ack {
                let _ = ack.send(vec![]);
            }
        });
        socket.on("disconnect-room", |s, args, ack| {
            if let Some(ack) = ack {
                let _ = ack.send(vec![]);
            }
            if let Some(r) = args.first().and_then(Value::as_str) {
                s.nsp().in_(r.to_owned()).disconnect_sockets(false);
            }
        });
        socket.on("server-side-emit", |s, args, ack| {
            let _ = s.nsp().server_side_emit("relay", args);
            if let Some(ack) = ack {
                let _ = ack.send(vec![]);
            }
        });
        let redis = redis.clone();
        socket.on("server-side-emit-with-ack", move |s, _, ack| {
            let Some(ack) = ack else { return };
            let nsp = s.nsp().clone();
            let redis = redis.clone();
            tokio::spawn(async move {
                let timeout = Duration::from_secs(5);
                let t0 = std::time::Instant::now();
                match nsp
                    .server_side_emit_with_ack("ping-node", vec![], timeout)
                    .await
                {
                    Ok(replies) => {
                        let _ = ack.send(vec![Value::from(replies.len() as i64)]);
                    }
                    // What the cluster looked like when it failed (issue 17: a rare timeout
                    // under load), so that a failure tells a lost answer from an extra node.
                    Err(e) => {
                        let servers = nsp.server_count().await;
                        let _ = ack.send(vec![cluster_failure(e, t0, servers, &redis)]);
                    }
                }
            });
        });
        socket.on("ask-all", |s, args, ack| {
            let Some(ack) = ack else { return };
            let op = s.nsp().timeout(Duration::from_secs(3));
            tokio::spawn(async move {
                match op.emit_with_ack("question", args).await {
                    Ok(replies) => {
                        let first = |a: &Vec<Value>| a.first().map(js_string).unwrap_or_default();
                        let _ = ack.send(vec![strings(replies.iter().map(first).collect())]);
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
    });
}

fn scenario_namespace(nsp: Namespace) {
    nsp.use_middleware(|socket| {
        let refuse = &socket.handshake().auth["refuse"];
        if refuse.is_null() {
            return Ok(());
        }
        let mut data = Map::new();
        data.insert("reason".into(), refuse.clone());
        Err(ConnectError::new("refused").with_data(Value::Map(data)))
    });
    nsp.on_connection(|socket| {
        let _ = socket.emit("auth", vec![socket.handshake().auth.clone()]);
        socket.on("message", |s, args, _| {
            let _ = s.emit("message-back", args);
        });
        socket.on("message-with-ack", |_, args, ack| {
            if let Some(ack) = ack {
                let _ = ack.send(args);
            }
        });
        socket.on("ask", |s, args, _| {
            let me = s.clone();
            let _ = s.emit_with_ack_cb("question", args, None, move |reply| {
                if let Ok(reply) = reply {
                    let _ = me.emit("answer", reply);
                }
            });
        });
        socket.on("join", |s, args, ack| {
            let Some(room) = args.first().and_then(Value::as_str) else {
                return;
            };
            s.join(&[room]);
            if let Some(ack) = ack {
                let _ = ack.send(vec![Value::from(room)]);
            }
        });
        socket.on("to-room", |s, mut args, _| {
            if args.is_empty() {
                return;
            }
            if let Value::String(room) = args.remove(0) {
                let _ = s.nsp().to(room).emit("room-message", args);
            }
        });
        socket.on("broadcast", |s, args, _| {
            let _ = s.broadcast().emit("broadcast", args);
        });
        socket.on("disconnect-me", |s, _, _| s.disconnect(false));
    });
}
