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

/// `Socket::on_fallback_json`: the handler also gets the event's payload as the client wrote it
/// (none for binary events), and `AckSender::send_json` answers with JSON text as is, in a
/// namespace other than `/` too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_json_gets_the_payload_text_and_acks_with_json() {
    let io = Server::new(ServerConfig::default());
    io.of("/custom").on_connection(|socket| {
        socket.on_fallback_json(|_, event, args, json, ack| {
            let Some(ack) = ack else { return };
            let _ = match json {
                // The payload, and the parsed values agree with it.
                Some(j) => {
                    let parsed: Value = serde_json::from_str(j).unwrap();
                    let mut whole = vec![Value::from(event)];
                    whole.extend(args);
                    assert_eq!(parsed, Value::Array(whole));
                    ack.send_json(&format!(
                        "[{},{}]",
                        serde_json::to_string(j).unwrap(),
                        j.len()
                    ))
                }
                None => ack.send(vec![Value::from("binary"), Value::from(args.len() as i64)]),
            };
        });
    });
    let addr = io.listen(("127.0.0.1", 0)).await.unwrap();
    let socket = ClientBuilder::new(format!("http://{addr}/custom"))
        .connect()
        .await
        .unwrap();

    let args = vec![
        Value::from("é \"q\""),
        Value::from(1.5),
        serde_json::from_str(r#"{"b":[1,null],"a":true}"#).unwrap(),
    ];
    let acked = socket
        .timeout(Duration::from_secs(5))
        .emit_with_ack("ev", args)
        .await
        .unwrap();
    let text = r#"["ev","é \"q\"",1.5,{"b":[1,null],"a":true}]"#;
    assert_eq!(
        acked,
        vec![Value::from(text), Value::from(text.len() as i64)]
    );

    let acked = socket
        .timeout(Duration::from_secs(5))
        .emit_with_ack("bin", vec![Value::from(vec![1u8, 2])])
        .await
        .unwrap();
    assert_eq!(acked, vec![Value::from("binary"), Value::from(1)]);

    socket.disconnect();
    io.close().await;
}
