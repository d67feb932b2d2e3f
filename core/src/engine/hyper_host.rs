//! The hyper host: polysio's own listener ([`EngineServer::serve`], [`serve_with`]) and
//! [`EngineServer::handle`] for any hyper-based server (the tower layer among them). A thin
//! translation of hyper's requests into the host boundary ([`super::host`]) and back.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Buf;
use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::host::{BodyError, BodyTicket, HttpRequest, HttpResponse, Reply};
use super::server::EngineServer;

/// The response body type of the server.
pub type Body = Full<Bytes>;

/// Handles requests outside the Engine.IO path (e.g. to serve a web page).
pub type Fallback = Arc<dyn Fn(&Request<Incoming>) -> Option<Response<Body>> + Send + Sync>;

impl EngineServer {
    /// Serves one HTTP request addressed to the Engine.IO path, from any hyper-based server.
    /// WebSocket upgrades go through hyper's upgrade mechanism (the request must come from a
    /// hyper connection served `with_upgrades`); on a plain TCP connection the WebSocket runs on
    /// the TCP stream itself.
    pub async fn handle<B>(&self, mut req: Request<B>, remote: Option<SocketAddr>) -> Response<Body>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let is_upgrade = req.headers().contains_key(header::UPGRADE);
        let on_upgrade = is_upgrade.then(|| hyper::upgrade::on(&mut req));
        let (parts, body) = req.into_parts();
        let response = match self.request(HttpRequest::from_parts(&parts, remote, false)) {
            Reply::Ready(r) => r,
            Reply::ReadBody(ticket) => {
                ticket.ready().await;
                let got = read_body(body, &ticket).await;
                ticket.finish(got)
            }
            Reply::Wait(poll) => poll.await,
            Reply::WebSocket(ticket) => match on_upgrade {
                Some(on_upgrade) => {
                    let r = ticket.response();
                    self.runtime().spawn(async move {
                        if let Ok(upgraded) = on_upgrade.await {
                            ticket.run_upgraded(upgraded);
                        }
                    });
                    r
                }
                None => HttpResponse::new(StatusCode::BAD_REQUEST, Bytes::new()),
            },
        };
        response.into_http()
    }

    /// Accepts connections on `listener` until `shutdown` resolves; requests outside the path go
    /// to `fallback` (404 without one).
    pub async fn serve(
        &self,
        listener: TcpListener,
        fallback: Option<Fallback>,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) {
        let me = self.clone();
        serve_with(listener, shutdown, move |req, remote| {
            let this = me.clone();
            let fallback = fallback.clone();
            async move {
                if this.matches(req.uri().path()) {
                    this.handle(req, Some(remote)).await
                } else {
                    fallback.and_then(|f| f(&req)).unwrap_or_else(|| {
                        HttpResponse::new(StatusCode::NOT_FOUND, Bytes::new()).into_http()
                    })
                }
            }
        })
        .await
    }
}

/// Reads a POST body under the ticket's bounds: its size, its number of chunks and its time.
async fn read_body<B>(body: B, ticket: &BodyTicket) -> Result<Bytes, BodyError>
where
    B: hyper::body::Body,
{
    let (limit, max_chunks) = (ticket.limit(), ticket.max_chunks());
    let read = async {
        let mut body = std::pin::pin!(body);
        let mut chunks: Vec<Bytes> = Vec::new();
        let mut len = 0usize;
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame.map_err(|_| BodyError::Aborted)?.into_data() else {
                continue;
            };
            let mut data = data;
            len += data.remaining();
            if len > limit {
                return Err(BodyError::TooLarge);
            }
            if chunks.len() == max_chunks {
                return Err(BodyError::TooManyChunks);
            }
            chunks.push(data.copy_to_bytes(data.remaining()));
        }
        Ok(match chunks.len() {
            0 => Bytes::new(),
            1 => chunks.pop().unwrap_or_default(),
            _ => Bytes::from(chunks.concat()),
        })
    };
    tokio::time::timeout(ticket.timeout(), read)
        .await
        .unwrap_or(Err(BodyError::TimedOut))
}

/// The accept loop shared by the Engine.IO and Socket.IO servers.
pub async fn serve_with<F, Fut>(
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
    f: F,
) where
    F: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            _ = &mut shutdown => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let f = f.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let f = f.clone();
                async move { Ok::<_, Infallible>(f(req, remote).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades()
                .await;
        });
    }
}
