//! A misbehaving server (a tiny raw HTTP server written here) must end in a clear error event
//! or a reconnection, never a panic or a hang.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use polysio::client::{ClientBuilder, TransportKind};
use polysio::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug)]
struct Req {
    method: String,
    target: String,
    #[allow(dead_code)] // kept for debugging output
    body: String,
}

enum Reply {
    Respond(u16, String),
    Hang,
}

type Script = Arc<dyn Fn(&Req) -> Reply + Send + Sync>;

async fn bad_server(script: Script) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((sock, _)) = l.accept().await {
            tokio::spawn(serve(sock, script.clone()));
        }
    });
    format!("http://127.0.0.1:{port}")
}

async fn serve(mut sock: TcpStream, script: Script) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.lines();
        let mut first = lines.next().unwrap_or("").split(' ');
        let method = first.next().unwrap_or("").to_owned();
        let target = first.next().unwrap_or("").to_owned();
        let len: usize = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 4096];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).to_string();
        buf.drain(..head_end + len);
        match script(&Req {
            method,
            target,
            body,
        }) {
            Reply::Respond(status, body) => {
                let resp = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                if sock.write_all(resp.as_bytes()).await.is_err() {
                    return;
                }
            }
            Reply::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
        }
    }
}

fn polling(url: &str) -> ClientBuilder {
    ClientBuilder::new(url)
        .transports([TransportKind::Polling])
        .reconnection(false)
        .timeout(Duration::from_secs(5))
}

async fn handshake_error(reply: impl Fn() -> Reply + Send + Sync + 'static) -> String {
    let url = bad_server(Arc::new(move |_| reply())).await;
    let ev = Events::new();
    let s = client(polling(&url), "/", &ev, &[]);
    let e = ev.wait("connect_error").await;
    ev.wait("manager:error").await;
    assert!(!s.connected());
    s.manager().shutdown().await;
    format!(
        "{}: {}",
        e[0]["message"].as_str().unwrap(),
        e[0]["description"].as_str().unwrap_or_default()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_handshakes() {
    let m = handshake_error(|| Reply::Respond(200, "garbage".into())).await;
    assert!(m.contains("parse error"), "{m}");
    let m = handshake_error(|| Reply::Respond(200, r#"0{"sid":"x"}"#.into())).await;
    assert!(m.contains("pingInterval"), "{m}");
    let m =
        handshake_error(|| Reply::Respond(200, r#"0{"pingInterval":1,"pingTimeout":1}"#.into()))
            .await;
    assert!(m.contains("sid"), "{m}");
    let m = handshake_error(|| Reply::Respond(200, "4hello".into())).await;
    assert!(m.contains("open packet"), "{m}");
    let m = handshake_error(|| Reply::Respond(200, "é".into())).await;
    assert!(m.contains("parse error"), "{m}");
    let m = handshake_error(|| {
        Reply::Respond(
            400,
            r#"{"code":5,"message":"Unsupported protocol version"}"#.into(),
        )
    })
    .await;
    assert!(m.contains("Unsupported protocol version"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_refused() {
    let url = bad_server(Arc::new(|_| Reply::Respond(200, "not a websocket".into()))).await;
    let ev = Events::new();
    let s = client(
        polling(&url).transports([TransportKind::Websocket]),
        "/",
        &ev,
        &[],
    );
    let e = ev.wait("connect_error").await;
    assert!(
        e[0]["message"]
            .as_str()
            .unwrap()
            .contains("websocket error"),
        "{e:?}"
    );
    s.manager().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_server_handshake_times_out_then_gives_up() {
    let url = bad_server(Arc::new(|_| Reply::Hang)).await;
    let ev = Events::new();
    let b = polling(&url)
        .timeout(Duration::from_millis(300))
        .reconnection(true)
        .reconnection_attempts(1)
        .reconnection_delay(Duration::from_millis(50));
    let s = client(b, "/", &ev, &[]);
    assert_eq!(
        ev.wait("connect_error").await[0]["message"],
        Value::from("timeout")
    );
    ev.wait("manager:reconnect_attempt").await;
    assert_eq!(
        ev.wait("manager:reconnect_error").await[0]["message"],
        Value::from("timeout")
    );
    ev.wait("manager:reconnect_failed").await;
    s.manager().shutdown().await;
}

/// A server that handshakes, accepts the namespace, then answers the next poll with `after`
/// (or never, with `None`).
async fn session_then(after: Option<&'static str>, ping_ms: u64) -> String {
    let polls = Arc::new(AtomicUsize::new(0));
    let script: Script = Arc::new(move |req: &Req| {
        if req.method == "POST" {
            // Only well-formed payloads: the CONNECT `40`, pongs `3`, the close `1`.
            let ok = req
                .body
                .split('\x1e')
                .all(|p| p == "40" || p == "3" || p == "1");
            return if ok {
                Reply::Respond(200, "ok".into())
            } else {
                Reply::Respond(400, "bad".into())
            };
        }
        if !req.target.contains("sid=") {
            return Reply::Respond(
                200,
                format!(
                    r#"0{{"sid":"s1","upgrades":[],"pingInterval":{ping_ms},"pingTimeout":{ping_ms},"maxPayload":1000000}}"#
                ),
            );
        }
        match polls.fetch_add(1, Ordering::SeqCst) {
            0 => Reply::Respond(200, r#"40{"sid":"abc"}"#.into()),
            1 => match after {
                Some(a) => Reply::Respond(200, a.into()),
                None => Reply::Hang,
            },
            _ => Reply::Hang,
        }
    });
    bad_server(script).await
}

async fn disconnect_reason(after: Option<&'static str>, ping_ms: u64) -> Vec<Value> {
    let url = session_then(after, ping_ms).await;
    let ev = Events::new();
    let b = polling(&url)
        .reconnection(true)
        .reconnection_delay(Duration::from_millis(50));
    let s = client(b, "/", &ev, &[]);
    ev.wait("connect").await;
    let reason = ev.wait("disconnect").await;
    // ... and the client tries again.
    ev.wait("manager:reconnect_attempt").await;
    s.manager().shutdown().await;
    reason
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_after_connect() {
    assert_eq!(
        disconnect_reason(Some("4zzz"), 10000).await,
        vec![Value::from("parse error")]
    );
    assert_eq!(
        disconnect_reason(Some(r#"42{"not":"an array"}"#), 10000).await,
        vec![Value::from("parse error")]
    );
    assert_eq!(
        disconnect_reason(Some("9zzz"), 10000).await,
        vec![Value::from("transport error")]
    );
    assert_eq!(
        disconnect_reason(Some("bnot base64!"), 10000).await,
        vec![Value::from("transport error")]
    );
    assert_eq!(
        disconnect_reason(Some("1"), 10000).await,
        vec![Value::from("transport close")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_stops_answering_is_a_ping_timeout() {
    assert_eq!(
        disconnect_reason(None, 150).await,
        vec![Value::from("ping timeout")]
    );
}
