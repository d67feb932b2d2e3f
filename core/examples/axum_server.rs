//! The scenario server of the cross-language tests (`tests/run-server rust-axum PORT`), mounted as
//! polysio's tower layer in an axum application that also answers `GET /health` with `ok` from
//! an axum route. Usage: `axum_server PORT` (cargo feature `axum`).

#[path = "common/scenario.rs"]
mod scenario;

use axum::routing::get;
use axum::Router;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = scenario::port();
    let io = scenario::server().await;
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .layer(io.layer());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening {}", listener.local_addr()?.port());
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    io.close().await;
    Ok(())
}
