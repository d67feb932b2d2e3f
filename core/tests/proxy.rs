//! The client through a real HTTP CONNECT proxy (npm `proxy`, tests/node/connect-proxy.mjs):
//! every transport, over plain HTTP and over TLS inside the tunnel, with and without proxy
//! credentials; the proxy's own log shows the tunnels it opened.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use common::*;
use polysio::client::{ClientBuilder, Proxy, TlsOptions, TransportKind};
use polysio::Value;
use serde_json::json as j;

/// The proxy, killed on drop; `tunnels` lists the `HOST:PORT` of each CONNECT it saw.
struct ConnectProxy {
    child: Child,
    port: u16,
    tunnels: Arc<Mutex<Vec<String>>>,
}

impl ConnectProxy {
    fn start(credentials: Option<&str>) -> ConnectProxy {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/node");
        let mut cmd = Command::new("node");
        cmd.arg("connect-proxy.mjs");
        if let Some(c) = credentials {
            cmd.arg(c);
        }
        let mut child = cmd
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs (npm ci in tests/node)");
        let stdout = child.stdout.take().unwrap();
        let tunnels = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let t = tunnels.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(p) = line.strip_prefix("listening ") {
                    let _ = tx.send(p.trim().parse::<u16>().unwrap());
                } else if let Some(dst) = line.strip_prefix("connect ") {
                    t.lock().unwrap().push(dst.to_owned());
                }
            }
        });
        let port = rx.recv_timeout(WAIT).expect("the proxy listens");
        ConnectProxy {
            child,
            port,
            tunnels,
        }
    }
    fn url(&self, credentials: Option<&str>) -> String {
        match credentials {
            Some(c) => format!("http://{c}@127.0.0.1:{}", self.port),
            None => format!("http://127.0.0.1:{}", self.port),
        }
    }
    fn tunnels_to(&self, port: u16) -> usize {
        let want = format!("127.0.0.1:{port}");
        self.tunnels
            .lock()
            .unwrap()
            .iter()
            .filter(|t| **t == want)
            .count()
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const EVERY: [&[TransportKind]; 3] = [
    &[TransportKind::Polling],
    &[TransportKind::Websocket],
    &[TransportKind::Polling, TransportKind::Websocket],
];

async fn echo_through(proxy: &ConnectProxy, proxy_url: String, srv: &RefServer, tls: TlsOptions) {
    for transports in EVERY {
        let before = proxy.tunnels_to(srv.port);
        let ev = Events::new();
        let s = client(
            ClientBuilder::new(srv.url())
                .transports(transports.iter().copied())
                .tls(tls.clone())
                .proxy(Proxy::Url(proxy_url.clone())),
            "/",
            &ev,
            &["echo"],
        );
        ev.wait("connect").await;
        s.emit("echo", vec![Value::from("through the tunnel")])
            .unwrap();
        assert_eq!(
            ev.wait("echo").await,
            vec![Value::from("through the tunnel")]
        );
        if transports.len() == 2 {
            assert_eq!(info(&s).await["transport"], Value::from("websocket"));
        }
        s.manager().shutdown().await;
        assert!(
            proxy.tunnels_to(srv.port) > before,
            "{transports:?}: no CONNECT to the server went through the proxy"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_through_a_connect_proxy() {
    let proxy = ConnectProxy::start(None);
    let srv = RefServer::start(Peer::Node, j!({}));
    echo_through(&proxy, proxy.url(None), &srv, TlsOptions::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_inside_the_tunnel() {
    let dir = std::env::temp_dir().join(format!("polysio-proxy-tls-{}", std::process::id()));
    let out = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/tls-certs.sh"
        ))
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f = |n: &str| dir.join(n).to_string_lossy().into_owned();
    let srv = RefServer::start(
        Peer::Rust,
        j!({"tls": {"cert": f("server.pem"), "key": f("server.key")}}),
    );
    let proxy = ConnectProxy::start(None);
    let tls = TlsOptions {
        ca_pem: Some(std::fs::read(dir.join("ca.pem")).unwrap()),
        ..TlsOptions::default()
    };
    echo_through(&proxy, proxy.url(None), &srv, tls).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_credentials_from_the_url() {
    let proxy = ConnectProxy::start(Some("user:s3cret"));
    let srv = RefServer::start(Peer::Rust, j!({}));
    echo_through(
        &proxy,
        proxy.url(Some("user:s3cret")),
        &srv,
        TlsOptions::default(),
    )
    .await;
    // Without them (or with wrong ones) the proxy answers 407: the connection fails.
    for creds in [None, Some("user:wrong")] {
        for t in [TransportKind::Polling, TransportKind::Websocket] {
            let ev = Events::new();
            let s = client(
                ClientBuilder::new(srv.url())
                    .transports([t])
                    .reconnection(false)
                    .proxy(Proxy::Url(proxy.url(creds))),
                "/",
                &ev,
                &[],
            );
            ev.wait("connect_error").await;
            assert!(!s.connected());
            s.manager().shutdown().await;
        }
    }
}
