//! This project's client against this project's server: acks across the polling → WebSocket
//! upgrade, and the reason of a server-side disconnect made from another task.

use std::time::Duration;

use polysio::client::ClientBuilder;
use polysio::server::{Server, ServerConfig};
use polysio::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_across_the_upgrade_never_stall() {
    let io = Server::new(ServerConfig::default());
    io.on_connection(|socket| {
        socket.on("echo", |_, args, ack| {
            if let Some(ack) = ack {
                let _ = ack.send(args);
            }
        });
    });
    let addr = io.listen(("127.0.0.1", 0)).await.unwrap();
    for _ in 0..5 {
        let socket = ClientBuilder::new(format!("http://{addr}"))
            .connect()
            .await
            .unwrap();
        for i in 0..10 {
            let r = socket
                .timeout(Duration::from_secs(5))
                .emit_with_ack("echo", vec![Value::from(i)])
                .await;
            assert_eq!(r, Ok(vec![Value::from(i)]), "emit {i}");
        }
        socket.manager().shutdown().await;
    }
    io.close().await;
}

/// `Socket::disconnect` called from another task than the connection's: the disconnect reason
/// is "server namespace disconnect", never the "transport close" that follows when the client
/// closes its connection in answer (the close used to win the race about half the time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_disconnect_from_another_task_keeps_its_reason() {
    use polysio::server::DisconnectReason;
    use std::sync::{Arc, Mutex};
    let io = Server::new(ServerConfig::default());
    let reasons: Arc<Mutex<Vec<DisconnectReason>>> = Arc::default();
    let sockets = Arc::new(Mutex::new(Vec::new()));
    let (r2, s2) = (reasons.clone(), sockets.clone());
    io.on_connection(move |socket| {
        let r3 = r2.clone();
        socket.on_disconnect(move |_, reason| r3.lock().unwrap().push(reason));
        s2.lock().unwrap().push(socket);
    });
    let addr = io.listen(("127.0.0.1", 0)).await.unwrap();
    let n = 10;
    let mut clients = Vec::new();
    for _ in 0..n {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let tx = std::sync::Mutex::new(Some(tx));
        let c = ClientBuilder::new(format!("http://{addr}"))
            .transports([polysio::client::TransportKind::Websocket])
            .on("connect", move |_, _| {
                if let Some(tx) = tx.lock().unwrap().take() {
                    let _ = tx.send(());
                }
            })
            .connect()
            .await
            .unwrap();
        rx.await.unwrap();
        clients.push(c);
    }
    for s in sockets.lock().unwrap().drain(..) {
        s.disconnect(false);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while reasons.lock().unwrap().len() < n && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Let the clients' closes arrive: they must not add or change anything.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        *reasons.lock().unwrap(),
        vec![DisconnectReason::ServerNamespaceDisconnect; n]
    );
    io.close().await;
}
