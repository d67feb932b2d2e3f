//! This project's client against this project's server: `Socket::on_fallback`, and the
//! polling → WebSocket upgrade between the two.

use std::time::Duration;

use polysio::client::ClientBuilder;
use polysio::server::{Server, ServerConfig};
use polysio::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_gets_unhandled_events_with_their_ack() {
    let io = Server::new(ServerConfig::default());
    io.on_connection(|socket| {
        socket.on("named", |_, args, ack| {
            if let Some(ack) = ack {
                let _ = ack.send(vec![Value::from("named"), args[0].clone()]);
            }
        });
        socket.on_fallback(|_, event, args, ack| {
            if let Some(ack) = ack {
                let _ = ack.send(vec![Value::from(event), args[0].clone()]);
            }
        });
    });
    let addr = io.listen(("127.0.0.1", 0)).await.unwrap();
    let socket = ClientBuilder::new(format!("http://{addr}"))
        .connect()
        .await
        .unwrap();
    let t = Duration::from_secs(10);
    let r = socket
        .timeout(t)
        .emit_with_ack("whatever", vec![Value::from(1)])
        .await
        .unwrap();
    assert_eq!(r, vec![Value::from("whatever"), Value::from(1)]);
    let r = socket
        .timeout(t)
        .emit_with_ack("named", vec![Value::from(2)])
        .await
        .unwrap();
    assert_eq!(r, vec![Value::from("named"), Value::from(2)]);
    socket.disconnect();
    io.close().await;
}

/// Acked emits right after connecting, across the upgrade: none may stall. (A poll sent just
/// after the server's post-probe noop used to hang until the next ping and break the upgrade.)
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
