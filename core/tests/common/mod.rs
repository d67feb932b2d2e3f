//! Shared helpers of the client integration tests: the reference Node server and an event
//! recorder.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use polysio::client::{ClientBuilder, Manager, Socket};
use polysio::Value;

/// Generous: the test machine may be loaded.
pub const WAIT: Duration = Duration::from_secs(20);

pub mod node_scenarios;
mod rust_ref;

/// Which server plays the reference: the npm `socket.io` server (tests/node/ref-server.js) or
/// this project's own server with the same handlers (rust_ref.rs).
#[derive(Clone, Copy, Debug)]
pub enum Peer {
    Node,
    Rust,
}

enum Running {
    Node(Child),
    Rust(rust_ref::RustRef),
}

/// The reference server, killed on drop.
pub struct RefServer {
    running: Running,
    pub port: u16,
    /// Serving https (the `tls` option).
    pub secure: bool,
}

impl RefServer {
    pub fn start(peer: Peer, opts: serde_json::Value) -> RefServer {
        let secure = opts["tls"].is_object();
        let mut srv = match peer {
            Peer::Node => RefServer::start_node(opts),
            Peer::Rust => {
                let r = rust_ref::RustRef::start(&opts);
                RefServer {
                    port: r.port,
                    running: Running::Rust(r),
                    secure,
                }
            }
        };
        srv.secure = secure;
        srv
    }

    fn start_node(opts: serde_json::Value) -> RefServer {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/node");
        let mut child = Command::new("node")
            .arg(format!("{dir}/ref-server.js"))
            .arg(opts.to_string())
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node must be installed");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep draining so the child never blocks on a full pipe.
            for _ in lines {}
        });
        let line = rx
            .recv_timeout(WAIT)
            .expect("reference server did not start");
        let port = line
            .strip_prefix("listening ")
            .and_then(|p| p.trim().parse().ok())
            .expect("listening line");
        RefServer {
            running: Running::Node(child),
            port,
            secure: false,
        }
    }

    pub fn start_on(peer: Peer, port: u16, mut opts: serde_json::Value) -> RefServer {
        opts["port"] = port.into();
        RefServer::start(peer, opts)
    }

    pub fn url(&self) -> String {
        let scheme = if self.secure { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn kill(&mut self) {
        match &mut self.running {
            Running::Node(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Running::Rust(r) => r.kill(),
        }
    }
}

impl Drop for RefServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Turns `async fn name(peer: Peer)` test bodies into two tests each: `node::name` against the
/// npm socket.io server and `rust::name` against this project's server.
#[macro_export]
macro_rules! against_both {
    ($($name:ident),* $(,)?) => {
        mod node {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Peer::Node).await
                }
            )*
        }
        mod rust {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Peer::Rust).await
                }
            )*
        }
    };
}

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

type Seen = VecDeque<(String, Vec<Value>)>;

/// Records events in arrival order; tests wait for them by name.
#[derive(Clone, Default)]
pub struct Events {
    seen: Arc<Mutex<Seen>>,
}

impl Events {
    pub fn new() -> Events {
        Events::default()
    }

    pub fn push(&self, name: &str, args: Vec<Value>) {
        self.seen.lock().unwrap().push_back((name.to_owned(), args));
    }

    pub fn handler(
        &self,
        name: &str,
    ) -> impl Fn(Vec<Value>, Option<polysio::client::AckResponder>) + Send + Sync + 'static {
        let me = self.clone();
        let name = name.to_owned();
        move |args, _| me.push(&name, args)
    }

    pub fn listen(&self, socket: &Socket, names: &[&str]) {
        for n in names {
            socket.on(n, self.handler(n));
        }
    }

    pub fn listen_manager(&self, m: &Manager, names: &[&str]) {
        for n in names {
            m.on(n, self.handler(&format!("manager:{n}")));
        }
    }

    fn take(&self, name: &str) -> Option<Vec<Value>> {
        let mut seen = self.seen.lock().unwrap();
        let pos = seen.iter().position(|(n, _)| n == name)?;
        seen.remove(pos).map(|(_, a)| a)
    }

    /// The next unconsumed event named `name`; panics after [`WAIT`].
    pub async fn wait(&self, name: &str) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(a) = self.take(name) {
                return a;
            }
            if tokio::time::Instant::now() > deadline {
                let seen = format!("{:?}", self.seen.lock().unwrap());
                panic!("timed out waiting for {name:?}; seen: {seen}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// True if `name` happens within `d` (used to check that something does NOT happen).
    pub async fn happens_within(&self, name: &str, d: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + d;
        while tokio::time::Instant::now() < deadline {
            if self.seen.lock().unwrap().iter().any(|(n, _)| n == name) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    pub fn count(&self, name: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| n == name)
            .count()
    }
}

/// Builds the manager, registers listeners for `names` on socket `nsp`, then connects it.
pub fn client(builder: ClientBuilder, nsp: &str, ev: &Events, names: &[&str]) -> Socket {
    let m = builder.manager().expect("manager");
    ev.listen_manager(
        &m,
        &[
            "open",
            "close",
            "reconnect_attempt",
            "reconnect",
            "reconnect_error",
            "reconnect_failed",
            "error",
        ],
    );
    let s = m.socket(nsp);
    ev.listen(&s, &["connect", "connect_error", "disconnect"]);
    ev.listen(&s, names);
    s.connect();
    s
}

/// What the server knows about this socket (the `info` event of ref-server.js).
pub async fn info(socket: &Socket) -> Value {
    let r = socket
        .timeout(WAIT)
        .emit_with_ack("info", vec![])
        .await
        .expect("info ack");
    r.into_iter().next().expect("info value")
}

/// Arguments with binary parts at the top level and nested, and an empty buffer.
pub fn binary_args() -> Vec<Value> {
    let mut nested = polysio::Map::new();
    nested.insert(
        "data".into(),
        Value::Bytes(bytes::Bytes::from_static(&[0, 1, 255])),
    );
    vec![
        Value::from("text"),
        Value::Map(nested),
        Value::Bytes(bytes::Bytes::new()),
    ]
}

pub fn json(v: serde_json::Value) -> Value {
    Value::from(v)
}
