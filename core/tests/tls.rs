//! TLS: polysio's client against the npm socket.io server on `https.createServer` and against
//! polysio's own TLS listener, over polling, WebSocket and the upgrade; the npm
//! socket.io-client against polysio's TLS listener; a private CA, an untrusted certificate
//! (refused, saying so), verification turned off, mutual TLS, reloading the certificate.
//! Certificates are made for each run with `openssl`.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::node_scenarios::{run_client_with_env, scenario_server, TRANSPORTS};
use common::*;
use polysio::client::{ClientBuilder, TlsOptions, TransportKind};
use polysio::server::ServerConfig;
use polysio::tls::ServerTls;
use polysio::Value;
use serde_json::json as j;

/// A throwaway CA, a server certificate it signed for 127.0.0.1 and localhost, a client
/// certificate it signed, and a second CA that signed nothing here.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("polysio-tls-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let pki = Pki { dir };
        pki.ca("ca");
        pki.ca("other-ca");
        pki.leaf(
            "server",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth",
        );
        pki.leaf("client", "extendedKeyUsage=clientAuth");
        pki
    }
    fn path(&self, file: &str) -> String {
        self.dir.join(file).to_string_lossy().into_owned()
    }
    fn read(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(file)).unwrap()
    }
    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .expect("openssl is installed");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    fn ca(&self, name: &str) {
        self.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN=polysio test {name}"),
        ]);
    }
    fn leaf(&self, name: &str, ext: &str) {
        std::fs::write(self.dir.join(format!("{name}.ext")), ext).unwrap();
        self.openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}"),
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ]);
    }
    fn server_tls(&self) -> ServerTls {
        ServerTls::from_pem(&self.read("server.pem"), &self.read("server.key")).unwrap()
    }
    fn trusting(&self) -> TlsOptions {
        TlsOptions {
            ca_pem: Some(self.read("ca.pem")),
            ..TlsOptions::default()
        }
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A client that tries once, over `t`, trusting as `tls` says.
fn one_try(url: &str, t: TransportKind, tls: TlsOptions) -> (Events, polysio::client::Socket) {
    let ev = Events::new();
    let b = ClientBuilder::new(url)
        .transports([t])
        .reconnection(false)
        .tls(tls);
    let s = client(b, "/", &ev, &[]);
    (ev, s)
}

fn tls_opts(pki: &Pki) -> serde_json::Value {
    j!({"tls": {"cert": pki.path("server.pem"), "key": pki.path("server.key")}})
}

/// Echo with binary over each transport, and the server sees a secure handshake.
async fn every_transport(peer: Peer, pki: &Pki) {
    let srv = RefServer::start(peer, tls_opts(pki));
    assert!(srv.url().starts_with("https://"));
    for transports in [
        vec![TransportKind::Polling],
        vec![TransportKind::Websocket],
        vec![TransportKind::Polling, TransportKind::Websocket],
    ] {
        let ev = Events::new();
        let upgrade = transports.len() == 2;
        let s = client(
            ClientBuilder::new(srv.url())
                .transports(transports.clone())
                .tls(pki.trusting()),
            "/",
            &ev,
            &["echo"],
        );
        ev.wait("connect").await;
        let args = binary_args();
        s.emit("echo", args.clone()).unwrap();
        assert_eq!(ev.wait("echo").await, args);
        if upgrade {
            // The upgrade happens once the probe succeeded.
            let deadline = std::time::Instant::now() + WAIT;
            while s.manager().transport() != Some(TransportKind::Websocket) {
                assert!(std::time::Instant::now() < deadline, "no upgrade over wss");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
        let want = if transports == [TransportKind::Polling] {
            "polling"
        } else {
            "websocket"
        };
        assert_eq!(
            info(&s).await["transport"],
            Value::from(want),
            "{transports:?}"
        );
        s.manager().shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_against_socket_io_on_https_every_transport() {
    let pki = Pki::new("node-every");
    every_transport(Peer::Node, &pki).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_against_polysio_over_tls_every_transport() {
    let pki = Pki::new("rust-every");
    every_transport(Peer::Rust, &pki).await;
}

/// A certificate the client does not trust fails the connection, saying so.
async fn untrusted(peer: Peer) {
    let pki = Pki::new(&format!("untrusted-{peer:?}"));
    let srv = RefServer::start(peer, tls_opts(&pki));
    for (what, tls) in [
        ("system roots only", TlsOptions::default()),
        (
            "another CA",
            TlsOptions {
                ca_pem: Some(pki.read("other-ca.pem")),
                ..TlsOptions::default()
            },
        ),
    ] {
        for t in [TransportKind::Polling, TransportKind::Websocket] {
            let (ev, s) = one_try(&srv.url(), t, tls.clone());
            let e = ev.wait("connect_error").await;
            let msg = format!("{e:?}");
            assert!(
                msg.contains("not trusted") && msg.contains("unknown issuer"),
                "{what} over {t:?}: {msg}"
            );
            assert!(!s.connected());
            s.manager().shutdown().await;
        }
    }
    // Verification off (development): it connects.
    let ev = Events::new();
    let s = client(
        ClientBuilder::new(srv.url()).tls(TlsOptions {
            danger_accept_invalid_certs: true,
            ..TlsOptions::default()
        }),
        "/",
        &ev,
        &[],
    );
    ev.wait("connect").await;
    s.manager().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_refused_saying_so_node() {
    untrusted(Peer::Node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_refused_saying_so_rust() {
    untrusted(Peer::Rust).await;
}

/// A server that asks for a client certificate (npm socket.io on https.createServer with
/// requestCert): with the client's certificate and key it connects, without it does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_against_socket_io() {
    let pki = Pki::new("mtls");
    let mut opts = tls_opts(&pki);
    opts["tls"]["ca"] = pki.path("ca.pem").into();
    opts["tls"]["requestCert"] = true.into();
    let srv = RefServer::start(Peer::Node, opts);
    let ev = Events::new();
    let s = client(
        ClientBuilder::new(srv.url()).tls(TlsOptions {
            client_cert_pem: Some(pki.read("client.pem")),
            client_key_pem: Some(pki.read("client.key")),
            ..pki.trusting()
        }),
        "/",
        &ev,
        &["echo"],
    );
    ev.wait("connect").await;
    s.emit("echo", vec![Value::from("mtls")]).unwrap();
    assert_eq!(ev.wait("echo").await, vec![Value::from("mtls")]);
    s.manager().shutdown().await;
    for t in [TransportKind::Polling, TransportKind::Websocket] {
        let (ev, s) = one_try(&srv.url(), t, pki.trusting());
        ev.wait("connect_error").await;
        assert!(!s.connected());
        s.manager().shutdown().await;
    }
}

/// A client certificate without its key, or a PEM that is not one, is refused at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tls_options_are_refused_when_building() {
    let pki = Pki::new("bad-options");
    let half = TlsOptions {
        client_cert_pem: Some(pki.read("client.pem")),
        ..TlsOptions::default()
    };
    let e = ClientBuilder::new("https://127.0.0.1:1")
        .tls(half)
        .manager()
        .err()
        .expect("refused");
    assert!(e.to_string().contains("go together"), "{e}");
    let junk = TlsOptions {
        ca_pem: Some(b"not a certificate".to_vec()),
        ..TlsOptions::default()
    };
    let e = ClientBuilder::new("https://127.0.0.1:1")
        .tls(junk)
        .manager()
        .err()
        .expect("refused");
    assert!(matches!(e, polysio::Error::Tls(_)), "{e:?}");
    assert!(ServerTls::from_pem(&pki.read("server.pem"), &pki.read("client.key")).is_err());
    assert!(ServerTls::from_pem(b"", &pki.read("server.key")).is_err());
}

/// The npm socket.io-client (trusting the test CA through NODE_EXTRA_CA_CERTS) against
/// polysio's TLS listener: every scenario transport; the handshake says `secure`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_client_against_polysio_over_tls() {
    let pki = Pki::new("npm-client");
    let (io, _reasons) = scenario_server(ServerConfig::default());
    let secure = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = secure.clone();
    io.of("/").on_connection(move |socket| {
        s2.lock().unwrap().push(socket.handshake().request.secure);
    });
    let addr = io
        .listen_tls(("127.0.0.1", 0), pki.server_tls())
        .await
        .unwrap();
    let url = format!("https://127.0.0.1:{}", addr.port());
    let ca = pki.path("ca.pem");
    for t in TRANSPORTS {
        run_client_with_env(&url, "basic", t, &[("NODE_EXTRA_CA_CERTS", &ca)]).await;
    }
    let seen = secure.lock().unwrap().clone();
    assert!(!seen.is_empty() && seen.iter().all(|s| *s), "{seen:?}");
    io.close().await;
}

/// A reloaded certificate is what new connections get; the old one's clients stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificate_reloads_without_a_restart() {
    let old = Pki::new("reload-old");
    let new = Pki::new("reload-new");
    let io = polysio::server::Server::new(ServerConfig::default());
    let tls = old.server_tls();
    let addr = io.listen_tls(("127.0.0.1", 0), tls.clone()).await.unwrap();
    let url = format!("https://127.0.0.1:{}", addr.port());
    let connect = |trust: &Pki| one_try(&url, TransportKind::Websocket, trust.trusting());
    let (ev_old, s_old) = connect(&old);
    ev_old.wait("connect").await;
    tls.reload(&new.read("server.pem"), &new.read("server.key"))
        .unwrap();
    // A bad reload keeps the current certificate.
    assert!(tls.reload(b"junk", b"junk").is_err());
    let (ev, s) = connect(&old);
    ev.wait("connect_error").await;
    s.manager().shutdown().await;
    let (ev, s) = connect(&new);
    ev.wait("connect").await;
    assert!(
        s_old.connected(),
        "the connection made before the reload stays"
    );
    s.manager().shutdown().await;
    s_old.manager().shutdown().await;
    io.close().await;
}
