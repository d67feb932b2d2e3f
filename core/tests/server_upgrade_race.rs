//! The core client emits right after connecting, while it upgrades polling → WebSocket. Its
//! poll loop can start one more GET just before it pauses for the upgrade; the server must keep
//! answering such polls until the client sends "5" (as the reference does every 100 ms), or
//! the upgrade — and every packet held for it — stalls until the next ping.

use std::time::Duration;

use polysio::client::ClientBuilder;
use polysio::server::{Server, ServerConfig};
use polysio::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emits_during_the_upgrade_are_not_held_up() {
    let io = Server::new(ServerConfig::default());
    io.on_connection(|socket| {
        socket.on("hi", |_, args, ack| {
            if let Some(ack) = ack {
                let _ = ack.send(args);
            }
        });
    });
    let addr = io.listen(("127.0.0.1", 0)).await.unwrap();
    for i in 0..100 {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let tx = std::sync::Mutex::new(Some(tx));
        let socket = ClientBuilder::new(format!("http://{addr}"))
            .reconnection(false)
            .on("connect", move |_, _| {
                if let Some(t) = tx.lock().unwrap().take() {
                    let _ = t.send(());
                }
            })
            .connect()
            .await
            .unwrap();
        rx.await.unwrap();
        let r = socket
            .timeout(Duration::from_secs(3))
            .emit_with_ack("hi", vec![Value::from(i)])
            .await;
        assert_eq!(r, Ok(vec![Value::from(i)]), "round {i}");
        socket.manager().shutdown().await;
    }
    io.close().await;
}
