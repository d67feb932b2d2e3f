//! The hyper host: polysio's own listener ([`EngineServer::serve`], [`serve_with`]) and
//! [`EngineServer::handle`] for any hyper-based server (the tower layer among them). A thin
//! translation of hyper's requests into the host boundary ([`super::host`]) and back.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Buf;
use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::config::ListenerConfig;
use super::host::{BodyError, BodyTicket, HttpRequest, HttpResponse, Reply};
use super::server::EngineServer;
use super::ws_io::WriteDeadline;

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
        let secure = parts.extensions.get::<OverTls>().is_some();
        let response = match self.request(HttpRequest::from_parts(&parts, remote, secure)) {
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
        let config = self.config().listener.clone();
        let write_timeout = self.config().write_timeout;
        serve_with(
            listener,
            &config,
            write_timeout,
            shutdown,
            self.router(fallback),
        )
        .await
    }

    /// [`EngineServer::serve`] over TLS (https, wss) with `tls`'s certificate.
    #[cfg(feature = "tls")]
    pub async fn serve_tls(
        &self,
        listener: TcpListener,
        tls: crate::tls::ServerTls,
        fallback: Option<Fallback>,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) {
        let config = self.config().listener.clone();
        let write_timeout = self.config().write_timeout;
        let route = self.router(fallback);
        serve_tls_with(listener, &config, write_timeout, tls, shutdown, route).await
    }

    /// Requests to the Engine.IO path to [`EngineServer::handle`], others to `fallback`.
    fn router(
        &self,
        fallback: Option<Fallback>,
    ) -> impl Fn(Request<Incoming>, SocketAddr) -> Routed + Clone + Send + Sync + 'static {
        let me = self.clone();
        move |req, remote| {
            let this = me.clone();
            let fallback = fallback.clone();
            Box::pin(async move {
                if this.matches(req.uri().path()) {
                    this.handle(req, Some(remote)).await
                } else {
                    fallback.and_then(|f| f(&req)).unwrap_or_else(|| {
                        HttpResponse::new(StatusCode::NOT_FOUND, Bytes::new()).into_http()
                    })
                }
            })
        }
    }
}

/// A routed request's response, to come.
type Routed = std::pin::Pin<Box<dyn std::future::Future<Output = Response<Body>> + Send>>;

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

/// The accept loop shared by the Engine.IO and Socket.IO servers, under `config`'s timeouts
/// and connection cap (see [`ListenerConfig`]); a response write that makes no progress for
/// `write_timeout` (`EngineConfig::write_timeout`) ends its connection.
pub async fn serve_with<F, Fut>(
    listener: TcpListener,
    config: &ListenerConfig,
    write_timeout: std::time::Duration,
    shutdown: impl std::future::Future<Output = ()> + Send,
    f: F,
) where
    F: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    accept_loop(listener, config, write_timeout, None, shutdown, f).await
}

/// [`serve_with`] over TLS (https, wss): each connection's handshake must finish within
/// `config.headers_timeout`.
#[cfg(feature = "tls")]
pub async fn serve_tls_with<F, Fut>(
    listener: TcpListener,
    config: &ListenerConfig,
    write_timeout: std::time::Duration,
    tls: crate::tls::ServerTls,
    shutdown: impl std::future::Future<Output = ()> + Send,
    f: F,
) where
    F: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    accept_loop(
        listener,
        config,
        write_timeout,
        Some(tls.acceptor()),
        shutdown,
        f,
    )
    .await
}

#[cfg(feature = "tls")]
type Acceptor = tokio_rustls::TlsAcceptor;
#[cfg(not(feature = "tls"))]
type Acceptor = Infallible;

/// Marks a request that came over TLS (its handshake says `secure`).
#[derive(Clone, Copy)]
pub(crate) struct OverTls;

async fn accept_loop<F, Fut>(
    listener: TcpListener,
    config: &ListenerConfig,
    write_timeout: std::time::Duration,
    tls: Option<Acceptor>,
    shutdown: impl std::future::Future<Output = ()> + Send,
    f: F,
) where
    F: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    raise_fd_limit();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.headers_timeout);
    let keep_alive = config.keep_alive_timeout;
    #[cfg(feature = "tls")]
    let handshake_timeout = config.headers_timeout;
    let open = Arc::new(AtomicUsize::new(0));
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            _ = &mut shutdown => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(_) => {
                    // Out of descriptors (EMFILE) or a connection reset before it was taken.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        if config
            .max_connections
            .is_some_and(|max| open.load(Ordering::Acquire) >= max)
        {
            tokio::spawn(refuse(stream));
            continue;
        }
        let count = Counted::new(&open);
        let idle = Arc::new(Idle::default());
        let f = f.clone();
        let http = http.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _count = count;
            let secure = tls.is_some();
            let svc = {
                let idle = idle.clone();
                hyper::service::service_fn(move |mut req| {
                    let f = f.clone();
                    let busy = idle.begin();
                    if secure {
                        req.extensions_mut().insert(OverTls);
                    }
                    async move {
                        let r = f(req, remote).await;
                        drop(busy);
                        Ok::<_, Infallible>(r)
                    }
                })
            };
            let io = WriteDeadline::new(stream, write_timeout);
            match tls {
                None => serve_connection(&http, TokioIo::new(io), svc, &idle, keep_alive).await,
                #[cfg(feature = "tls")]
                Some(acceptor) => {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(handshake_timeout, acceptor.accept(io)).await
                    else {
                        return;
                    };
                    serve_connection(&http, TokioIo::new(stream), svc, &idle, keep_alive).await
                }
                #[cfg(not(feature = "tls"))]
                Some(never) => match never {},
            }
        });
    }
}

/// Serves one connection until it ends, or is idle past the keep-alive timeout.
async fn serve_connection<I, S>(
    http: &hyper::server::conn::http1::Builder,
    io: I,
    svc: S,
    idle: &Idle,
    keep_alive: std::time::Duration,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming, ResBody = Body> + Send,
    S::Future: Send,
{
    let conn = http.serve_connection(io, svc).with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = idle.expired(keep_alive) => {}
    }
    // Idle past the keep-alive timeout: hyper closes an idle connection at once (and a
    // busy one after its response).
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// Answers a connection over the cap with `503` and closes it, within a second.
async fn refuse(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    let answer =
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        let _ = stream.write_all(answer).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// One open connection of a listener, counted while it lives.
struct Counted(Arc<AtomicUsize>);

impl Counted {
    fn new(open: &Arc<AtomicUsize>) -> Counted {
        open.fetch_add(1, Ordering::AcqRel);
        Counted(open.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Whether a connection is between requests, and since when (for the keep-alive timeout). A
/// new connection does not count as idle until its first response: until then hyper's
/// `headers_timeout` bounds it.
#[derive(Default)]
struct Idle {
    state: std::sync::Mutex<(usize, Option<tokio::time::Instant>)>,
    changed: tokio::sync::Notify,
}

/// A request being served; dropping it (the response is ready) may make the connection idle.
struct Busy(Arc<Idle>);

impl Idle {
    fn begin(self: &Arc<Self>) -> Busy {
        if let Ok(mut s) = self.state.lock() {
            s.0 += 1;
        }
        Busy(self.clone())
    }

    /// Resolves once the connection has been idle for `timeout`.
    async fn expired(&self, timeout: std::time::Duration) {
        loop {
            let changed = self.changed.notified();
            let since = match self.state.lock() {
                Ok(s) if s.0 == 0 => s.1,
                _ => None,
            };
            match since {
                Some(t) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(t + timeout) => {
                            let still = self.state.lock().is_ok_and(|s| s.0 == 0 && s.1 == Some(t));
                            if still {
                                return;
                            }
                        }
                        _ = changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Ok(mut s) = self.0.state.lock() {
            s.0 -= 1;
            if s.0 == 0 {
                s.1 = Some(tokio::time::Instant::now());
            }
        }
        self.0.changed.notify_waiters();
    }
}

/// Raises this process's soft limit of open files to its hard limit, once (as Node and the
/// bench servers do): each connection holds a descriptor. Unix only; failures are ignored
/// (the limit stays as it was).
pub fn raise_fd_limit() {
    #[cfg(unix)]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: `lim` is a valid rlimit for getrlimit/setrlimit to read and write.
            unsafe {
                if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0
                    && lim.rlim_cur < lim.rlim_max
                {
                    lim.rlim_cur = lim.rlim_max;
                    libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
                }
            }
        });
    }
}
