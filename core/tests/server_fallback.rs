//! `Socket::on_fallback`: events without a handler of their own reach the fallback, with their
//! ack; events with a handler do not.

mod common;

use common::*;
use polysio::client::ClientBuilder;
use polysio::server::{Server, ServerConfig};
use polysio::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_gets_unhandled_events_with_their_ack() {
    let io = Server::new(ServerConfig::default());
    io.on_connection(|socket| {
        socket.on("named", |s, args, _| {
            let _ = s.emit("named-seen", args);
        });
        socket.on_fallback(|s, event, args, ack| match ack {
            Some(ack) => {
                let mut reply = vec![Value::from(event)];
                reply.extend(args);
                let _ = ack.send(reply);
            }
            None => {
                let _ = s.emit("fallback-seen", vec![Value::from(event)]);
            }
        });
    });
    let addr = io.listen("127.0.0.1:0").await.unwrap();
    let ev = Events::new();
    let s = client(
        ClientBuilder::new(format!("http://{addr}")),
        "/",
        &ev,
        &["connect", "named-seen", "fallback-seen"],
    );
    ev.wait("connect").await;
    let reply = s
        .emit_with_ack("other", vec![Value::from(1), Value::from(vec![7u8])])
        .await
        .unwrap();
    assert_eq!(
        reply,
        vec![Value::from("other"), Value::from(1), Value::from(vec![7u8])]
    );
    s.emit("named", vec![Value::from("x")]).unwrap();
    assert_eq!(ev.wait("named-seen").await, vec![Value::from("x")]);
    s.emit("no-ack", vec![]).unwrap();
    assert_eq!(ev.wait("fallback-seen").await, vec![Value::from("no-ack")]);
    assert_eq!(ev.count("fallback-seen"), 0);
    s.manager().shutdown().await;
    io.close().await;
}
