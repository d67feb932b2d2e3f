//! This project's own server playing `tests/node/ref-server.js`: the same options, middleware
//! and handlers, so every client test runs against both. It runs on a runtime of its own, in
//! this process; dropping that runtime is the "kill" (connections vanish without a goodbye).

use std::time::Duration;

use polysio::engine::{EngineConfig, TransportType};
use polysio::server::{ConnectError, Namespace, RecoveryConfig, Server, ServerConfig, Socket};
use polysio::{Map, Value};

pub struct RustRef {
    rt: Option<tokio::runtime::Runtime>,
    _io: Server,
    pub port: u16,
}

impl RustRef {
    /// Options as ref-server.js takes them: port, pingInterval, pingTimeout, path, transports,
    /// recovery, tls (`{"cert": PEM path, "key": PEM path}`).
    pub fn start(opts: &serde_json::Value) -> RustRef {
        let ms =
            |key: &str, default: u64| Duration::from_millis(opts[key].as_u64().unwrap_or(default));
        let mut engine = EngineConfig {
            ping_interval: ms("pingInterval", 25_000),
            ping_timeout: ms("pingTimeout", 20_000),
            path: opts["path"].as_str().unwrap_or("/socket.io/").to_owned(),
            ..EngineConfig::default()
        };
        if let Some(list) = opts["transports"].as_array() {
            engine.transports = list
                .iter()
                .map(|t| match t.as_str() {
                    Some("websocket") => TransportType::Websocket,
                    _ => TransportType::Polling,
                })
                .collect();
        }
        let config = ServerConfig {
            engine,
            connection_state_recovery: opts["recovery"].as_bool().unwrap_or(false).then(|| {
                RecoveryConfig {
                    max_disconnection_duration: Duration::from_secs(60),
                    skip_middlewares: true,
                }
            }),
            ..ServerConfig::default()
        };
        let port = opts["port"].as_u64().unwrap_or(0) as u16;
        let tls = opts["tls"].as_object().map(|t| {
            polysio::tls::ServerTls::from_pem_files(
                t["cert"].as_str().expect("tls.cert"),
                t["key"].as_str().expect("tls.key"),
            )
            .expect("the test certificate loads")
        });
        // Started from a plain thread: the tests call this from inside their own runtime.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            let (io, port) = rt.block_on(async move {
                let io = Server::new(config);
                setup(&io, io.of("/"));
                setup(&io, io.of("/custom"));
                let addr = match tls {
                    Some(tls) => io.listen_tls(("127.0.0.1", port), tls).await,
                    None => io.listen(("127.0.0.1", port)).await,
                }
                .expect("bind the Rust reference server");
                (io, addr.port())
            });
            RustRef {
                rt: Some(rt),
                _io: io,
                port,
            }
        })
        .join()
        .expect("the Rust reference server starts")
    }

    pub fn kill(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for RustRef {
    fn drop(&mut self) {
        self.kill();
    }
}

fn map(pairs: impl IntoIterator<Item = (String, Value)>) -> Value {
    Value::Map(pairs.into_iter().collect::<Map>())
}

fn info(io: &Server, socket: &Socket) -> Value {
    let req = &socket.handshake().request;
    let headers = req.headers.iter().map(|(k, v)| {
        (
            k.as_str().to_owned(),
            Value::from(String::from_utf8_lossy(v.as_bytes()).into_owned()),
        )
    });
    let query = req
        .query
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())));
    map([
        ("id".into(), Value::from(socket.id())),
        ("engineId".into(), Value::from(socket.conn().sid())),
        ("nsp".into(), Value::from(socket.nsp().name())),
        ("auth".into(), socket.handshake().auth.clone()),
        ("query".into(), map(query)),
        ("headers".into(), map(headers)),
        ("recovered".into(), Value::from(socket.recovered())),
        (
            "transport".into(),
            Value::from(socket.conn().transport().as_str()),
        ),
        (
            "clients".into(),
            Value::from(io.engine().clients_count() as i64),
        ),
    ])
}

fn setup(io: &Server, nsp: Namespace) {
    nsp.use_middleware(|socket| {
        let refuse = &socket.handshake().auth["refuse"];
        if refuse.is_null() {
            return Ok(());
        }
        let mut data = Map::new();
        data.insert("reason".into(), refuse.clone());
        data.insert("code".into(), Value::from(42));
        Err(ConnectError::new("refused by middleware").with_data(Value::Map(data)))
    });
    let io = io.clone();
    nsp.on_connection(move |socket| {
        socket.on("echo", |s, args, _| {
            let _ = s.emit("echo", args);
        });
        socket.on("ack", |_, args, ack| {
            if let Some(ack) = ack {
                let _ = ack.send(args);
            }
        });
        let io2 = io.clone();
        socket.on("info", move |s, _, ack| {
            if let Some(ack) = ack {
                let _ = ack.send(vec![info(&io2, s)]);
            }
        });
        // Asks the client for an ack on `event`, reports the answer back as `answer`.
        socket.on("ask", |s, args, _| {
            let mut args = args.into_iter();
            let event = args.next().unwrap_or(Value::Null);
            let Some(event) = event.as_str() else { return };
            let payload = match args.next() {
                Some(Value::Array(a)) => a,
                _ => vec![],
            };
            let timeout = args.next().and_then(|t| t.as_i64()).unwrap_or(5000);
            let me = s.clone();
            let _ = s.emit_with_ack_cb(
                event,
                payload,
                Some(Duration::from_millis(timeout as u64)),
                move |r| {
                    let _ = match r {
                        Ok(reply) => me.emit("answer", reply),
                        Err(_) => me.emit(
                            "answer",
                            vec![map([(
                                "error".into(),
                                Value::from("operation has timed out"),
                            )])],
                        ),
                    };
                },
            );
        });
        socket.on("kick", |s, _, _| s.disconnect(false));
        socket.on("close-transport", |s, _, _| s.conn().close());
        // Drops the transport, then broadcasts while the client is away.
        let io2 = io.clone();
        socket.on("drop-and-broadcast", move |s, args, _| {
            s.conn().close();
            let n = args.first().and_then(|n| n.as_i64()).unwrap_or(0);
            let io = io2.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                for i in 1..=n {
                    let _ = io.emit("missed", vec![Value::from(i)]);
                }
            });
        });
        let io2 = io.clone();
        socket.on("broadcast", move |_, mut args, _| {
            if args.is_empty() {
                return;
            }
            if let Value::String(event) = args.remove(0) {
                let _ = io2.emit(&event, args);
            }
        });
        let _ = socket.emit("welcome", vec![info(&io, &socket)]);
    });
}
