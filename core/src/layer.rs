//! Socket.IO inside an axum, hyper or any tower application, on its own router and port: a tower
//! [`Layer`](tower_layer::Layer) whose [`Service`](tower_service::Service) answers the requests to
//! the Socket.IO path and passes every other request to the service it wraps, untouched
//! (cargo feature `tower`; with feature `axum`, the client address comes from axum's
//! `ConnectInfo<SocketAddr>`).
//!
//! WebSocket upgrades go through hyper's upgrade mechanism, so the server must serve HTTP/1.1
//! with upgrades on (axum's `serve` does). On a plain TCP connection the WebSocket then runs on
//! the TCP stream itself, as in polysio's own listener.
//!
//! ```no_run
//! # #[cfg(feature = "axum")]
//! # async fn run() -> std::io::Result<()> {
//! use axum::{routing::get, Router};
//! use polysio::server::{Server, ServerConfig};
//!
//! let io = Server::new(ServerConfig::default());
//! io.on_connection(|socket| {
//!     socket.on("chat", |socket, args, _ack| {
//!         let _ = socket.broadcast().emit("chat", args);
//!     });
//! });
//! let app = Router::new()
//!     .route("/health", get(|| async { "ok" }))
//!     .layer(io.layer());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(
//!     listener,
//!     app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
//! )
//! .await
//! # }
//! ```

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{Either, Full};

use crate::server::Server;

/// Wraps a service so that the Socket.IO path is served by a [`Server`]; see the module docs.
#[derive(Clone)]
pub struct SocketIoLayer {
    io: Server,
}

impl SocketIoLayer {
    /// A layer serving `io` on its path (`ServerConfig::engine.path`, `/socket.io/` by default).
    pub fn new(io: Server) -> Self {
        SocketIoLayer { io }
    }
}

impl Server {
    /// This server as a tower layer (see [`crate::layer`]).
    pub fn layer(&self) -> SocketIoLayer {
        SocketIoLayer::new(self.clone())
    }
}

impl<S> tower_layer::Layer<S> for SocketIoLayer {
    type Service = SocketIoService<S>;

    fn layer(&self, inner: S) -> SocketIoService<S> {
        SocketIoService {
            inner,
            io: self.io.clone(),
        }
    }
}

/// The service of [`SocketIoLayer`]: Socket.IO requests to the server, the rest to `S`.
#[derive(Clone)]
pub struct SocketIoService<S> {
    inner: S,
    io: Server,
}

/// The response body: the engine's, or the wrapped service's.
pub type LayerBody<B> = Either<Full<Bytes>, B>;

/// The future of [`SocketIoService`].
pub type LayerFuture<B, E> =
    Pin<Box<dyn Future<Output = Result<Response<LayerBody<B>>, E>> + Send>>;

impl<S, ReqBody, ResBody> tower_service::Service<Request<ReqBody>> for SocketIoService<S>
where
    S: tower_service::Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    ReqBody: hyper::body::Body + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: std::error::Error + Send + Sync + 'static,
{
    type Response = Response<LayerBody<ResBody>>;
    type Error = S::Error;
    type Future = LayerFuture<ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let engine = self.io.engine();
        if !engine.matches(req.uri().path()) {
            let fut = self.inner.call(req);
            return Box::pin(async move { Ok(fut.await?.map(Either::Right)) });
        }
        let remote = remote_addr(&req);
        let engine = engine.clone();
        Box::pin(async move { Ok(engine.handle(req, remote).await.map(Either::Left)) })
    }
}

/// The client's address, where the server put it in the request's extensions.
fn remote_addr<B>(req: &Request<B>) -> Option<SocketAddr> {
    #[cfg(feature = "axum")]
    if let Some(info) = req
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(info.0);
    }
    req.extensions().get::<SocketAddr>().copied()
}
