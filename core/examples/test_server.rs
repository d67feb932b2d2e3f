//! The scenario server of the cross-language tests (`tests/run-server rust PORT`), as
//! tests/SCENARIOS.md describes it: pingInterval 300 ms, pingTimeout 200 ms, connectTimeout
//! 1000 ms; namespaces `/` and `/custom`; a middleware refusing `auth.refuse`; `auth` emitted on
//! connection; `message`, `message-with-ack`, `ask`, `join`, `to-room`, `broadcast` and
//! `disconnect-me` handlers. Usage: `test_server PORT`; https/wss with the certificate named by
//! `POLYSIO_TEST_TLS_CERT` and `POLYSIO_TEST_TLS_KEY`.

#[path = "common/scenario.rs"]
mod scenario;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = scenario::port();
    let io = scenario::server().await;
    let addr = match scenario::test_tls() {
        Some(tls) => io.listen_tls(("127.0.0.1", port), tls).await?,
        None => io.listen(("127.0.0.1", port)).await?,
    };
    println!("listening {}", addr.port());
    tokio::signal::ctrl_c().await?;
    io.close().await;
    Ok(())
}
