//! Disconnecting right after connecting, while the client pauses polling for the WebSocket
//! upgrade: like the reference client, it finishes the upgrade and sends its DISCONNECT there,
//! so the server sees the socket leave at once (not when its ping times out, 45 s later).

use std::time::Duration;

use polysio::client::ClientBuilder;
use polysio::server::{DisconnectReason, Server, ServerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_sees_a_disconnect_sent_during_the_upgrade() {
    let io = Server::new(ServerConfig::default());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    io.on_connection(move |socket| {
        let tx = tx.clone();
        socket.on_disconnect(move |_, reason| {
            let _ = tx.send(reason);
        });
    });
    let addr = io.listen(("127.0.0.1", 0)).await.unwrap();
    for i in 0..50 {
        let (ctx, crx) = tokio::sync::oneshot::channel();
        let ctx = std::sync::Mutex::new(Some(ctx));
        let socket = ClientBuilder::new(format!("http://{addr}"))
            .reconnection(false)
            .on("connect", move |_, _| {
                if let Some(t) = ctx.lock().unwrap().take() {
                    let _ = t.send(());
                }
            })
            .connect()
            .await
            .unwrap();
        crx.await.unwrap();
        socket.disconnect();
        let reason = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("round {i}: no disconnect within 5 s"));
        assert_eq!(
            reason,
            Some(DisconnectReason::ClientNamespaceDisconnect),
            "round {i}"
        );
        socket.manager().shutdown().await;
    }
    io.close().await;
}
