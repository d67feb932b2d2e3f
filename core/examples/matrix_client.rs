//! The Rust client harness of the conformance matrix (`tests/run-client rust URL SCENARIO`):
//! interprets tests/scenarios.json as tests/SCENARIOS.md describes, prints `PASS name` or
//! `FAIL name: reason` per scenario and exits 0 only if all passed.
//! Usage: `matrix_client URL SCENARIO|all [SCENARIOS_JSON]`.

use std::collections::{HashMap, VecDeque};
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use polysio::client::{AckResponder, ClientBuilder, Manager, Socket, TransportKind};
use polysio::{Map, Value};
use serde_json::Value as Json;

const WAIT: Duration = Duration::from_secs(10);

type Seen = Arc<Mutex<VecDeque<(String, Vec<Value>, Option<AckResponder>)>>>;

struct Client {
    manager: Manager,
    socket: Socket,
    seen: Seen,
}

/// `{"$bytes": base64}` becomes binary; everything else maps one to one.
fn to_value(j: &Json) -> Value {
    match j {
        Json::Object(o) if o.len() == 1 && o.contains_key("$bytes") => {
            let b = base64::engine::general_purpose::STANDARD
                .decode(o["$bytes"].as_str().unwrap_or_default())
                .unwrap_or_default();
            Value::Bytes(b.into())
        }
        Json::Object(o) => Value::Map(o.iter().map(|(k, v)| (k.clone(), to_value(v))).collect()),
        Json::Array(a) => Value::Array(a.iter().map(to_value).collect()),
        other => Value::from(other.clone()),
    }
}

fn to_args(j: &Json) -> Vec<Value> {
    j.as_array()
        .map(|a| a.iter().map(to_value).collect())
        .unwrap_or_default()
}

fn s<'a>(step: &'a Json, key: &str) -> &'a str {
    step[key].as_str().unwrap_or_default()
}

impl Client {
    fn open(url: &str, step: &Json, reconnection: bool) -> Result<Client, String> {
        let mut b = ClientBuilder::new(url)
            .reconnection(reconnection)
            .reconnection_delay(Duration::from_millis(500))
            .reconnection_delay_max(Duration::from_millis(2000));
        if let Some(ts) = step["transports"].as_array() {
            b = b.transports(ts.iter().map(|t| match t.as_str() {
                Some("websocket") => TransportKind::Websocket,
                _ => TransportKind::Polling,
            }));
        }
        if !step["auth"].is_null() {
            b = b.auth(to_value(&step["auth"]));
        }
        // tests/run-client's TLS hook: a CA trusted besides the system's roots.
        if let Some(ca) = std::env::var_os("POLYSIO_TEST_CA_FILE") {
            let pem = std::fs::read(&ca).map_err(|e| format!("POLYSIO_TEST_CA_FILE: {e}"))?;
            b = b.tls(polysio::client::TlsOptions {
                ca_pem: Some(pem),
                ..Default::default()
            });
        }
        let manager = b.manager().map_err(|e| e.to_string())?;
        let socket = manager.socket(s(step, "nsp"));
        let seen: Seen = Arc::default();
        for name in ["connect", "connect_error", "disconnect"] {
            let seen = seen.clone();
            socket.on(name, move |args, ack| {
                if let Ok(mut q) = seen.lock() {
                    q.push_back((name.to_owned(), args, ack));
                }
            });
        }
        let seen2 = seen.clone();
        socket.on_any(move |event, args, ack| {
            if let Ok(mut q) = seen2.lock() {
                q.push_back((event.to_owned(), args, ack));
            }
        });
        socket.connect();
        Ok(Client {
            manager,
            socket,
            seen,
        })
    }

    /// The next unconsumed event named `name`, within `within`.
    async fn next(
        &self,
        name: &str,
        within: Duration,
    ) -> Option<(Vec<Value>, Option<AckResponder>)> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Ok(mut q) = self.seen.lock() {
                if let Some(i) = q.iter().position(|(n, _, _)| n == name) {
                    return q.remove(i).map(|(_, a, ack)| (a, ack));
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn expect(&self, name: &str) -> Result<(Vec<Value>, Option<AckResponder>), String> {
        self.next(name, WAIT)
            .await
            .ok_or_else(|| format!("no {name:?} event within {WAIT:?}"))
    }
}

fn same(what: &str, got: &[Value], want: &[Value]) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, expected {want:?}"))
    }
}

async fn step(url: &str, clients: &mut HashMap<String, Client>, st: &Json) -> Result<(), String> {
    let op = s(st, "op");
    let name = s(st, "client").to_owned();
    if op == "connect" || op == "connect_refused" {
        let c = Client::open(url, st, op == "connect")?;
        let r = if op == "connect" {
            c.expect("connect").await.map(|_| ())
        } else {
            let (args, _) = c.expect("connect_error").await?;
            let err = args.first().cloned().unwrap_or_default();
            let want = to_value(&st["error"]);
            let mut got = Map::new();
            got.insert("message".into(), err["message"].clone());
            if !st["error"]["data"].is_null() {
                got.insert("data".into(), err["data"].clone());
            }
            same("connect_error", &[Value::Map(got)], &[want])
        };
        clients.insert(name, c);
        return r;
    }
    if op == "restart_server" {
        println!("@@restart-server");
        let _ = std::io::stdout().flush();
        let line = tokio::task::spawn_blocking(|| {
            let mut l = String::new();
            std::io::stdin().read_line(&mut l).map(|_| l)
        })
        .await;
        return match line {
            Ok(Ok(l)) if !l.is_empty() => Ok(()),
            _ => Err("no answer from the runner on stdin".into()),
        };
    }
    let c = clients
        .get(&name)
        .ok_or_else(|| format!("unknown client {name:?}"))?;
    let event = s(st, "event");
    match op {
        "emit" => c
            .socket
            .emit(event, to_args(&st["args"]))
            .map_err(|e| e.to_string()),
        "emit_large" => {
            let n = st["bytes"].as_u64().unwrap_or(0) as usize;
            c.socket
                .emit(event, vec![Value::from("x".repeat(n))])
                .map_err(|e| e.to_string())
        }
        "expect" => {
            let (args, _) = c.expect(event).await?;
            same(event, &args, &to_args(&st["args"]))
        }
        "expect_none" => {
            let ms = st["ms"].as_u64().unwrap_or(300);
            match c.next(event, Duration::from_millis(ms)).await {
                Some((args, _)) => Err(format!("unexpected {event:?} {args:?}")),
                None => Ok(()),
            }
        }
        "call" => {
            let r = c
                .socket
                .timeout(WAIT)
                .emit_with_ack(event, to_args(&st["args"]))
                .await
                .map_err(|e| format!("ack of {event:?}: {e}"))?;
            same(&format!("ack of {event:?}"), &r, &to_args(&st["reply"]))
        }
        "answer" => {
            let (args, ack) = c.expect(event).await?;
            same(event, &args, &to_args(&st["args"]))?;
            let ack = ack.ok_or_else(|| format!("{event:?} did not ask for an ack"))?;
            ack.send(to_args(&st["reply"])).map_err(|e| e.to_string())
        }
        "expect_transport" => {
            let want = s(st, "transport");
            let deadline = tokio::time::Instant::now() + WAIT;
            loop {
                let now = c.manager.transport().map(|t| t.as_str());
                if now == Some(want) {
                    return Ok(());
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(format!("transport {now:?}, expected {want}"));
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        "disconnect" => {
            c.socket.disconnect();
            Ok(())
        }
        "expect_disconnect" => {
            let (args, _) = c.expect("disconnect").await?;
            let reason = args.first().and_then(Value::as_str).unwrap_or_default();
            let reasons: Vec<&str> = st["reasons"]
                .as_array()
                .map(|a| a.iter().filter_map(Json::as_str).collect())
                .unwrap_or_default();
            if reasons.contains(&reason) {
                Ok(())
            } else {
                Err(format!(
                    "disconnect reason {reason:?}, expected one of {reasons:?}"
                ))
            }
        }
        "expect_connect" => c.expect("connect").await.map(|_| ()),
        other => Err(format!("unknown op {other:?}")),
    }
}

async fn scenario(url: &str, steps: &[Json]) -> Result<(), String> {
    let mut clients = HashMap::new();
    let mut result = Ok(());
    for (i, st) in steps.iter().enumerate() {
        if let Err(e) = step(url, &mut clients, st).await {
            result = Err(format!("step {} ({}): {e}", i + 1, s(st, "op")));
            break;
        }
    }
    for (_, c) in clients {
        c.manager.shutdown().await;
    }
    result
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .expect("usage: matrix_client URL SCENARIO [SCENARIOS_JSON]");
    let which = args.next().unwrap_or_else(|| "all".into());
    let path = args
        .next()
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/scenarios.json").into());
    let text = std::fs::read_to_string(&path).expect("read the scenarios");
    let all: serde_json::Map<String, Json> = serde_json::from_str(&text).expect("scenarios JSON");
    let mut ok = true;
    let mut ran = 0;
    for (name, steps) in &all {
        if which != "all" && &which != name {
            continue;
        }
        ran += 1;
        let steps = steps.as_array().cloned().unwrap_or_default();
        match scenario(&url, &steps).await {
            Ok(()) => println!("PASS {name}"),
            Err(e) => {
                ok = false;
                println!("FAIL {name}: {e}");
            }
        }
        let _ = std::io::stdout().flush();
    }
    if ran == 0 {
        eprintln!("no scenario named {which:?}");
        ok = false;
    }
    std::process::exit(if ok { 0 } else { 1 });
}
