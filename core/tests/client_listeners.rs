//! Client listeners take effect as soon as `on` returns: an event that arrives afterwards is
//! delivered to them even when the connection's task is busy (here: blocked in a handler) and
//! only gets to the registration after the event is already queued.

mod common;

use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use common::*;
use polysio::client::{ClientBuilder, TransportKind};
use polysio::server::{Server, ServerConfig};
use polysio::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_added_while_the_task_is_busy_gets_the_next_event() {
    let io = Server::new(ServerConfig::default());
    let (sock_tx, mut sock_rx) = tokio::sync::mpsc::unbounded_channel();
    io.on_connection(move |socket| {
        let _ = sock_tx.send(socket);
    });
    let addr = io.listen(("127.0.0.1", 0)).await.unwrap();
    let url = format!("http://127.0.0.1:{}", addr.port());

    let ev = Events::new();
    let s = client(
        ClientBuilder::new(url).transports([TransportKind::Websocket]),
        "/",
        &ev,
        &[],
    );
    ev.wait("connect").await;
    let server_socket = sock_rx.recv().await.unwrap();

    // The "first" handler blocks the client's task until told to go on.
    let (busy_tx, busy_rx) = std_mpsc::channel::<()>();
    let (go_tx, go_rx) = std_mpsc::channel::<()>();
    let go_rx = std::sync::Mutex::new(go_rx);
    s.on("first", move |_, _| {
        let _ = busy_tx.send(());
        let _ = go_rx.lock().unwrap().recv_timeout(Duration::from_secs(5));
    });
    server_socket.emit("first", vec![]).unwrap();
    tokio::task::spawn_blocking(move || busy_rx.recv_timeout(Duration::from_secs(5)))
        .await
        .unwrap()
        .expect("the client got \"first\"");

    // While the task is blocked: register, then have the server send the event, and let it
    // reach the client's transport before the task runs again.
    ev.listen(&s, &["second"]);
    server_socket
        .emit("second", vec![Value::from("after on")])
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    go_tx.send(()).unwrap();

    assert_eq!(ev.wait("second").await, vec![Value::from("after on")]);
    s.manager().shutdown().await;
    io.close().await;
}
