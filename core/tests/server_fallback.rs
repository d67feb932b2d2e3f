//! `Socket::on_fallback`: events without a handler of their own reach the catch-all handler,
//! with their ack; events with a handler do not.

use std::time::Duration;

use polysio::client::ClientBuilder;
use polysio::server::{Server, ServerConfig};
use polysio::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_gets_unhandled_events_with_their_ack() {
    let io = Server::new(ServerConfig::default());
    io.on_connection(|socket| {
        socket.on("known", |s, args, _| {
            let _ = s.emit("known-back", args);
        });
        socket.on_fallback(|s, event, args, ack| {
            let mut reply = vec![Value::from(event)];
            reply.extend(args);
            match ack {
                Some(ack) => {
                    let _ = ack.send(reply);
                }
                None => {
                    let _ = s.emit("fallback-back", reply);
                }
            }
        });
    });
    let addr = io.listen(("127.0.0.1", 0)).await.unwrap();

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let tx2 = tx.clone();
    let socket = ClientBuilder::new(format!("http://{addr}"))
        .on("known-back", move |args, _| {
            let _ = tx.send(("known-back", args));
        })
        .on("fallback-back", move |args, _| {
            let _ = tx2.send(("fallback-back", args));
        })
        .connect()
        .await
        .unwrap();

    let acked = socket
        .timeout(Duration::from_secs(5))
        .emit_with_ack("anything", vec![Value::from(1), Value::from(vec![7u8])])
        .await
        .unwrap();
    assert_eq!(
        acked,
        vec![
            Value::from("anything"),
            Value::from(1),
            Value::from(vec![7u8])
        ]
    );

    socket.emit("other", vec![Value::from("x")]).unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        got,
        (
            "fallback-back",
            vec![Value::from("other"), Value::from("x")]
        )
    );

    socket.emit("known", vec![Value::from(2)]).unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, ("known-back", vec![Value::from(2)]));

    socket.disconnect();
    io.close().await;
}
