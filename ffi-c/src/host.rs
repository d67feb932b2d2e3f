//! The host API: Socket.IO inside the C program's own HTTP server (libmicrohttpd, a custom
//! server, ...). The program hands each request to the Socket.IO path over as a
//! `polysio_host_request` and gets the answer through a callback, now or later (a long-poll);
//! WebSockets are handed over as a file descriptor or as messages. A thin translation of the
//! core's host boundary (`polysio::engine::host`), as the Python hosts are.

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void, CString};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use polysio::engine::host::{
    BodyError, HttpRequest, HttpResponse, Reply, WsInbound, WsInput, WsOutbound, WsTicket,
};
use polysio::engine::packet::Frame;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::ack::UserData;
use crate::error::{
    bytes, check_out, cstr, ffi, opt_cstr, polysio_result, write_out, Error, Result,
};
use crate::handle::{self, kind};
use crate::server::polysio_server;

/// An HTTP request for `polysio_server_handle_request`, built by the host: made by
/// `polysio_host_request_new`, freed with `polysio_host_request_free`.
#[allow(non_camel_case_types)]
pub struct polysio_host_request {
    _private: [u8; 0],
}
kind!(
    polysio_host_request,
    HostRequestObj,
    HostRequest,
    "polysio_host_request"
);

/// A request whose answer comes later (a long-polling GET, a POST waiting for its session to
/// take more messages). Given by `polysio_server_handle_request`; free it with
/// `polysio_host_pending_free` (which cancels it if it is still waiting).
#[allow(non_camel_case_types)]
pub struct polysio_host_pending {
    _private: [u8; 0],
}
kind!(
    polysio_host_pending,
    PendingObj,
    HostPending,
    "polysio_host_pending"
);

/// A WebSocket framed by the host (`polysio_server_accept_websocket_messages`); free it with
/// `polysio_websocket_free`.
#[allow(non_camel_case_types)]
pub struct polysio_websocket {
    _private: [u8; 0],
}
kind!(
    polysio_websocket,
    WebSocketObj,
    WebSocket,
    "polysio_websocket"
);

/// One response header: NUL-terminated name (lower case) and value.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct polysio_http_header {
    /// The header name, lower case.
    pub name: *const c_char,
    /// The header value.
    pub value: *const c_char,
}

/// Receives the response to a request: `status`, `header_count` headers and `body_len` bytes
/// of body (NULL when empty). Everything is borrowed for the duration of the call: copy what
/// you keep. Called exactly once per request that `polysio_server_handle_request` accepted
/// (never for a cancelled one): either on the calling thread before
/// `polysio_server_handle_request` returns (the answer is known at once: a handshake, a POST,
/// a refusal, a WebSocket's 101), or later on a library thread (a long-polling GET, a POST
/// held back by backpressure). From a library thread it may call any polysio function, also
/// `polysio_host_pending_free` of its own request, but must not block for long: hand the
/// response to your server (e.g. MHD_resume_connection) and return.
#[allow(non_camel_case_types)]
pub type polysio_response_cb = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        status: u16,
        headers: *const polysio_http_header,
        header_count: usize,
        body: *const u8,
        body_len: usize,
    ),
>;

/// A text message (`polysio_websocket_receive`, `polysio_websocket_send_cb`).
pub const POLYSIO_WS_TEXT: u32 = 1;
/// A binary message.
pub const POLYSIO_WS_BINARY: u32 = 2;
/// The WebSocket closed (received: the client closed it or went away; sent: close it).
pub const POLYSIO_WS_CLOSE: u32 = 3;
/// Received only: the WebSocket failed (protocol violation, a message over your own limit):
/// the session ends with `"transport error"`.
pub const POLYSIO_WS_ERROR: u32 = 4;

/// Sends one frame of a host-framed WebSocket: `kind` is `POLYSIO_WS_TEXT` (`len` bytes of
/// UTF-8 at `data`), `POLYSIO_WS_BINARY`, or `POLYSIO_WS_CLOSE` (close the WebSocket; `data`
/// NULL; the last call). Frames come in order, one call at a time, on a library thread; the
/// data is borrowed for the call. Return quickly (queue the frame if your send may block): the
/// next frame of this WebSocket waits for the call to return. It may call any polysio
/// function, also `polysio_websocket_receive` and `polysio_websocket_free` of its WebSocket.
#[allow(non_camel_case_types)]
pub type polysio_websocket_send_cb =
    Option<unsafe extern "C" fn(user_data: *mut c_void, kind: u32, data: *const u8, len: usize)>;

// ---- objects ------------------------------------------------------------------------------

pub struct HostRequestObj(Mutex<ReqState>);

struct ReqState {
    req: HttpRequest,
    body: Bytes,
    /// A WebSocket answered 101, until it is accepted.
    ws: Option<WsTicket>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

thread_local! {
    /// The callback slot whose callback runs on this thread (its address), so that freeing
    /// its object from inside the callback does not wait for the callback itself.
    static RUNNING: Cell<usize> = const { Cell::new(0) };
}

/// A C callback that runs only while its object is alive: `close` returns once no call is
/// running (unless called from inside the call) and none will start.
struct Slot<F: Copy> {
    cb: Mutex<Option<(F, UserData)>>,
    closed: AtomicBool,
}

impl<F: Copy> Slot<F> {
    fn new(cb: Option<F>, user_data: *mut c_void) -> Slot<F> {
        Slot {
            cb: Mutex::new(cb.map(|f| (f, UserData(user_data)))),
            closed: AtomicBool::new(false),
        }
    }

    fn key(&self) -> usize {
        std::ptr::from_ref(self).addr()
    }

    /// Runs `f` with the callback unless closed; `once`: the callback is used up.
    fn call(&self, once: bool, f: impl FnOnce(F, *mut c_void)) {
        let mut g = lock(&self.cb);
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        let cb = if once {
            g.take()
        } else {
            g.as_ref().map(|(f, u)| (*f, UserData(u.0)))
        };
        if let Some((cb, ud)) = cb {
            let prev = RUNNING.with(|r| r.replace(self.key()));
            f(cb, ud.0);
            RUNNING.with(|r| r.set(prev));
        }
        drop(g);
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        if RUNNING.with(|r| r.get()) != self.key() {
            *lock(&self.cb) = None;
        }
    }
}

pub struct PendingObj {
    slot: Arc<Slot<RespFn>>,
    /// Dropping it cancels the waiting task, which drops the ticket (the GET is aborted).
    cancel: Mutex<Option<oneshot::Sender<()>>>,
}

type RespFn =
    unsafe extern "C" fn(*mut c_void, u16, *const polysio_http_header, usize, *const u8, usize);
type SendFn = unsafe extern "C" fn(*mut c_void, u32, *const u8, usize);

pub struct WebSocketObj {
    inbound: Mutex<Option<WsInbound>>,
    slot: Arc<Slot<SendFn>>,
    max_message: usize,
    runtime: Handle,
}

/// Calls `cb` with `r`.
fn respond(cb: RespFn, ud: *mut c_void, r: &HttpResponse) {
    let owned: Vec<(CString, CString)> = r
        .headers
        .iter()
        .map(|(n, v)| {
            let v = v.as_bytes().split(|b| *b == 0).next().unwrap_or_default();
            (
                crate::cstring_lossy(n.as_str()),
                CString::new(v.to_vec()).unwrap_or_default(),
            )
        })
        .collect();
    let headers: Vec<polysio_http_header> = owned
        .iter()
        .map(|(n, v)| polysio_http_header {
            name: n.as_ptr(),
            value: v.as_ptr(),
        })
        .collect();
    let (body, len) = if r.body.is_empty() {
        (std::ptr::null(), 0)
    } else {
        (r.body.as_ptr(), r.body.len())
    };
    let hp = if headers.is_empty() {
        std::ptr::null()
    } else {
        headers.as_ptr()
    };
    // SAFETY: a C callback given by the host, with pointers valid for the call.
    unsafe { cb(ud, r.status.as_u16(), hp, headers.len(), body, len) }
}

/// Polls `fut` once: true if it is already complete.
fn now_or_never<F: std::future::Future>(fut: F) -> bool {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    std::pin::pin!(fut).poll(&mut cx).is_ready()
}

// ---- requests -----------------------------------------------------------------------------

/// Makes a request: `method` (`"GET"`, `"POST"`, `"OPTIONS"`...), `path` (as the client sent
/// it, e.g. `"/socket.io/"`), `query` (the raw query string without `?`; NULL: none). Add its
/// headers, address, secure flag and body with the `polysio_host_request_set_*` functions,
/// then give it to `polysio_server_handle_request`. Free it with `polysio_host_request_free`
/// (any time after `polysio_server_handle_request` returned: what it needs is copied; a
/// WebSocket answered 101 stays in it until accepted).
#[no_mangle]
pub extern "C" fn polysio_host_request_new(
    method: *const c_char,
    path: *const c_char,
    query: *const c_char,
    out: *mut *mut polysio_host_request,
) -> polysio_result {
    ffi(|| {
        check_out(out, "out")?;
        let m = cstr(method, "method")?;
        let method = Method::from_bytes(m.as_bytes())
            .map_err(|_| Error::invalid(format!("bad HTTP method {m:?}")))?;
        let path = cstr(path, "path")?.to_owned();
        let query = opt_cstr(query, "query")?.unwrap_or("").to_owned();
        let obj = Arc::new(HostRequestObj(Mutex::new(ReqState {
            req: HttpRequest {
                method,
                path,
                query,
                headers: HeaderMap::new(),
                remote: None,
                secure: false,
            },
            body: Bytes::new(),
            ws: None,
        })));
        write_out(
            out,
            handle::ptr_of(handle::insert::<polysio_host_request>(obj)),
        );
        Ok(())
    })
}

fn with_req(
    req: *mut polysio_host_request,
    f: impl FnOnce(&mut ReqState) -> Result<()>,
) -> polysio_result {
    ffi(|| {
        let r = handle::get(req)?;
        let mut g = lock(&r.0);
        f(&mut g)
    })
}

/// Adds a request header (NUL-terminated name and value; repeated names are kept, in order).
/// A name or value that is not valid HTTP is `POLYSIO_ERR_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn polysio_host_request_add_header(
    req: *mut polysio_host_request,
    name: *const c_char,
    value: *const c_char,
) -> polysio_result {
    with_req(req, |r| {
        let n = cstr(name, "name")?;
        if value.is_null() {
            return Err(Error::null("value"));
        }
        // SAFETY: a NUL-terminated string (the documented contract); any bytes allowed.
        let v = unsafe { std::ffi::CStr::from_ptr(value) }.to_bytes();
        let n = HeaderName::from_bytes(n.as_bytes())
            .map_err(|_| Error::invalid(format!("bad header name {n:?}")))?;
        let v = HeaderValue::from_bytes(v)
            .map_err(|_| Error::invalid(format!("bad value of header {n}")))?;
        r.req.headers.append(n, v);
        Ok(())
    })
}

/// Sets the client's address: an IPv4 or IPv6 address in text (`"127.0.0.1"`, `"::1"`) and
/// port (what the handshake reports as the address). Unset: none.
#[no_mangle]
pub extern "C" fn polysio_host_request_set_remote(
    req: *mut polysio_host_request,
    ip: *const c_char,
    port: u16,
) -> polysio_result {
    with_req(req, |r| {
        let ip = cstr(ip, "ip")?;
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| Error::invalid(format!("not an IP address: {ip:?}")))?;
        r.req.remote = Some(SocketAddr::new(ip, port));
        Ok(())
    })
}

/// Sets whether the request came over TLS (default false).
#[no_mangle]
pub extern "C" fn polysio_host_request_set_secure(
    req: *mut polysio_host_request,
    secure: bool,
) -> polysio_result {
    with_req(req, |r| {
        r.req.secure = secure;
        Ok(())
    })
}

/// Sets the whole body of a POST: `len` bytes at `data` (copied). A body over the server's
/// maxHttpBufferSize is answered 413 (the session ends), so a host may stop reading once it
/// has more than that and give what it has.
#[no_mangle]
pub extern "C" fn polysio_host_request_set_body(
    req: *mut polysio_host_request,
    data: *const u8,
    len: usize,
) -> polysio_result {
    with_req(req, |r| {
        r.body = Bytes::copy_from_slice(bytes(data, len, "data")?);
        Ok(())
    })
}

/// Frees a request (a WebSocket answered 101 and not accepted is dropped). A second free is
/// `POLYSIO_ERR_CLOSED`.
#[no_mangle]
pub extern "C" fn polysio_host_request_free(req: *mut polysio_host_request) -> polysio_result {
    ffi(|| {
        let r = handle::remove(req)?;
        // An accepted WebSocket never run lets the session's next upgrade try.
        drop(lock(&r.0).ws.take());
        Ok(())
    })
}

// ---- answering ----------------------------------------------------------------------------

/// Answers one request to the Socket.IO path (route everything under the server's path, by
/// default `/socket.io/`, here; other paths are yours). `on_response` gets the response
/// exactly once: at once, on this thread, before this returns (and `*pending` is set to NULL),
/// or later on a library thread (`*pending` gets a handle: free it with
/// `polysio_host_pending_free` when the answer came, or to cancel the request when your client
/// went away). `pending` may be NULL when you never cancel. See `polysio_response_cb`.
///
/// WebSockets: a request with `Upgrade: websocket` that polysio accepts is answered
/// `101 Switching Protocols` with the headers to send (`Upgrade`, `Connection`,
/// `Sec-WebSocket-Accept`, the session cookie, CORS); the request then holds the WebSocket:
/// after your server switched protocols, hand the connection over with
/// `polysio_server_accept_websocket_fd` or `polysio_server_accept_websocket_messages`, or free
/// the request to drop it. A refused upgrade is answered 400 (close the connection).
///
/// The server's callbacks and the CORS, limits and timeouts of its options apply as with
/// `polysio_server_listen`; the listener-only options (headers / keep-alive timeouts, max
/// connections) are your server's business. `POLYSIO_ERR_CLOSED` once the server is closed.
#[no_mangle]
pub extern "C" fn polysio_server_handle_request(
    server: *mut polysio_server,
    request: *mut polysio_host_request,
    on_response: polysio_response_cb,
    user_data: *mut c_void,
    pending: *mut *mut polysio_host_pending,
) -> polysio_result {
    ffi(|| {
        let s = handle::get(server)?;
        let r = handle::get(request)?;
        let Some(cb) = on_response else {
            return Err(Error::null("on_response"));
        };
        s.check_open()?;
        let engine = s.engine();
        let rt = engine.runtime().clone();
        let _guard = rt.enter();
        let (req, body) = {
            let g = lock(&r.0);
            (g.req.clone(), g.body.clone())
        };
        let later = |slot: Arc<Slot<RespFn>>, tx| {
            let p = Arc::new(PendingObj {
                slot,
                cancel: Mutex::new(Some(tx)),
            });
            write_out(
                pending,
                handle::ptr_of(handle::insert::<polysio_host_pending>(p)),
            );
        };
        write_out(pending, std::ptr::null_mut());
        match engine.request(req) {
            Reply::Ready(resp) => respond(cb, user_data, &resp),
            Reply::ReadBody(t) => {
                if body.len() > t.limit() {
                    respond(cb, user_data, &t.finish(Err(BodyError::TooLarge)));
                } else if now_or_never(t.ready()) {
                    respond(cb, user_data, &t.finish(Ok(body)));
                } else {
                    let slot = Arc::new(Slot::new(Some(cb), user_data));
                    let (tx, rx) = oneshot::channel::<()>();
                    let s2 = slot.clone();
                    rt.spawn(async move {
                        tokio::select! {
                            _ = t.ready() => {
                                let resp = t.finish(Ok(body));
                                s2.call(true, |f, ud| respond(f, ud, &resp));
                            }
                            _ = rx => {}
                        }
                    });
                    later(slot, tx);
                }
            }
            Reply::Wait(t) => {
                let slot = Arc::new(Slot::new(Some(cb), user_data));
                let (tx, rx) = oneshot::channel::<()>();
                let s2 = slot.clone();
                rt.spawn(async move {
                    tokio::select! {
                        resp = t => s2.call(true, |f, ud| respond(f, ud, &resp)),
                        // Cancelled: the ticket is dropped here, which aborts the GET.
                        _ = rx => {}
                    }
                });
                later(slot, tx);
            }
            Reply::WebSocket(t) => {
                let resp = t.response();
                lock(&r.0).ws = Some(t);
                respond(cb, user_data, &resp);
            }
        }
        Ok(())
    })
}

/// Frees a pending request. Before its answer came, this cancels it (the client went away):
/// the callback will not run once this returns (it waits for a callback running on another
/// thread), and the session ends as when a long-polling client aborts its GET. A second free
/// is `POLYSIO_ERR_CLOSED`.
#[no_mangle]
pub extern "C" fn polysio_host_pending_free(pending: *mut polysio_host_pending) -> polysio_result {
    ffi(|| {
        let p = handle::remove(pending)?;
        p.slot.close();
        drop(lock(&p.cancel).take());
        Ok(())
    })
}

fn take_ws(request: *mut polysio_host_request) -> Result<WsTicket> {
    let r = handle::get(request)?;
    let t = lock(&r.0).ws.take();
    t.ok_or_else(|| {
        Error::invalid(
            "this request holds no WebSocket (not answered 101 by polysio_server_handle_request, \
             or accepted already)",
        )
    })
}

/// Runs the WebSocket of `request` (answered 101 by `polysio_server_handle_request`) on the
/// TCP socket `fd`, with the `read_ahead_len` bytes your server read past the request
/// (libmicrohttpd's `extra_in`; copied). polysio duplicates `fd` (F_DUPFD_CLOEXEC) and
/// works on its copy, which it closes when the WebSocket ends: you keep `fd` and close it when
/// you like (with libmicrohttpd: `MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE)` right
/// after this call). Closing your copy must not shut the socket down (no `shutdown()`). The
/// socket is switched to non-blocking mode (shared by both descriptors).
///
/// `write_response`: true when your server has not answered the upgrade: polysio writes the
/// 101 response itself first; false when your server sent the 101 with the headers it was
/// given. Either way the request no longer holds the WebSocket (free it as usual), also when
/// this fails past its argument checks (`POLYSIO_ERR_IO`: `fd` could not be duplicated or is
/// no socket; the WebSocket is dropped).
#[no_mangle]
pub extern "C" fn polysio_server_accept_websocket_fd(
    server: *mut polysio_server,
    request: *mut polysio_host_request,
    fd: c_int,
    read_ahead: *const u8,
    read_ahead_len: usize,
    write_response: bool,
) -> polysio_result {
    ffi(|| {
        let s = handle::get(server)?;
        let read = bytes(read_ahead, read_ahead_len, "read_ahead")?.to_vec();
        if fd < 0 {
            return Err(Error::invalid("fd must be a file descriptor"));
        }
        s.check_open()?;
        let t = take_ws(request)?;
        let rt = s.engine().runtime().clone();
        let _guard = rt.enter();
        // SAFETY: `fd` is an open descriptor of the caller's for the duration of this call.
        let owned = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned()?;
        let std_stream = std::net::TcpStream::from(owned);
        if write_response {
            use std::io::Write;
            std_stream.set_nonblocking(false)?;
            let mut head = String::from("HTTP/1.1 101 Switching Protocols\r\n");
            let resp = t.response();
            for (n, v) in &resp.headers {
                head.push_str(n.as_str());
                head.push_str(": ");
                head.push_str(&String::from_utf8_lossy(v.as_bytes()));
                head.push_str("\r\n");
            }
            head.push_str("\r\n");
            (&std_stream).write_all(head.as_bytes())?;
        }
        std_stream.set_nonblocking(true)?;
        let stream = tokio::net::TcpStream::from_std(std_stream)?;
        t.run_tcp(stream, read);
        Ok(())
    })
}

/// Runs the WebSocket of `request` (answered 101 by `polysio_server_handle_request`) through
/// messages, for hosts that do the WebSocket framing themselves: give every message received
/// to `polysio_websocket_receive`; `send` gets every frame to send and finally
/// `POLYSIO_WS_CLOSE` (see `polysio_websocket_send_cb`). `*out` gets the WebSocket: free it
/// with `polysio_websocket_free` once it is closed (freeing it earlier closes it).
#[no_mangle]
pub extern "C" fn polysio_server_accept_websocket_messages(
    server: *mut polysio_server,
    request: *mut polysio_host_request,
    send: polysio_websocket_send_cb,
    user_data: *mut c_void,
    out: *mut *mut polysio_websocket,
) -> polysio_result {
    ffi(|| {
        check_out(out, "out")?;
        let s = handle::get(server)?;
        if send.is_none() {
            return Err(Error::null("send"));
        }
        s.check_open()?;
        let t = take_ws(request)?;
        let engine = s.engine();
        let rt = engine.runtime().clone();
        let (inbound, outbound) = {
            let _guard = rt.enter();
            t.run_messages()
        };
        let slot = Arc::new(Slot::new(send, user_data));
        rt.spawn(pump(outbound, slot.clone()));
        let ws = Arc::new(WebSocketObj {
            inbound: Mutex::new(Some(inbound)),
            slot,
            max_message: engine.config().max_http_buffer_size,
            runtime: rt,
        });
        write_out(out, handle::ptr_of(handle::insert::<polysio_websocket>(ws)));
        Ok(())
    })
}

/// Hands the frames of a host-framed WebSocket to its send callback.
async fn pump(mut outbound: WsOutbound, slot: Arc<Slot<SendFn>>) {
    while let Some(batch) = outbound.next().await {
        for f in &batch {
            let (kind, data) = match f {
                Frame::Text(t) => (POLYSIO_WS_TEXT, t.as_bytes()),
                Frame::Binary(b) => (POLYSIO_WS_BINARY, &b[..]),
            };
            // SAFETY: the host's callback, with data valid for the call.
            slot.call(false, |cb, ud| unsafe {
                cb(ud, kind, data.as_ptr(), data.len())
            });
        }
        if slot.closed.load(Ordering::Acquire) {
            return;
        }
    }
    // SAFETY: the host's callback.
    slot.call(true, |cb, ud| unsafe {
        cb(ud, POLYSIO_WS_CLOSE, std::ptr::null(), 0)
    });
}

/// Gives a host-framed WebSocket what it received: `POLYSIO_WS_TEXT` (`len` bytes of UTF-8 at
/// `data`; invalid UTF-8 is `POLYSIO_ERR_INVALID_UTF8` and ends the session), `POLYSIO_WS_BINARY`,
/// `POLYSIO_WS_CLOSE` (the client closed it or went away: `"transport close"`) or
/// `POLYSIO_WS_ERROR` (`"transport error"`); `data` NULL for the last two. Call it in the
/// order the messages came, from any thread. A message over maxHttpBufferSize ends the session
/// (`"transport error"`), as polysio's own WebSockets. After a close, messages are ignored.
#[no_mangle]
pub extern "C" fn polysio_websocket_receive(
    ws: *mut polysio_websocket,
    kind: u32,
    data: *const u8,
    len: usize,
) -> polysio_result {
    ffi(|| {
        let w = handle::get(ws)?;
        let _guard = w.runtime.enter();
        let end = |how: WsInput<'static>| {
            if let Some(i) = lock(&w.inbound).take() {
                i.receive(how);
            }
        };
        let inbound = lock(&w.inbound).clone();
        let Some(inbound) = inbound else {
            return Ok(());
        };
        match kind {
            POLYSIO_WS_TEXT | POLYSIO_WS_BINARY => {
                let b = bytes(data, len, "data")?;
                if len > w.max_message {
                    end(WsInput::Error);
                } else if kind == POLYSIO_WS_TEXT {
                    match std::str::from_utf8(b) {
                        Ok(t) => inbound.receive(WsInput::Text(t)),
                        Err(_) => {
                            end(WsInput::Error);
                            return Err(Error::new(
                                polysio_result::POLYSIO_ERR_INVALID_UTF8,
                                "text message is not valid UTF-8 (the session ended)",
                            ));
                        }
                    }
                } else {
                    inbound.receive(WsInput::Binary(Bytes::copy_from_slice(b)));
                }
            }
            POLYSIO_WS_CLOSE => end(WsInput::Close),
            POLYSIO_WS_ERROR => end(WsInput::Error),
            k => {
                return Err(Error::invalid(format!(
                    "kind {k}: expected POLYSIO_WS_TEXT, _BINARY, _CLOSE or _ERROR"
                )))
            }
        }
        Ok(())
    })
}

/// Frees a host-framed WebSocket; still open, it is closed first (`"transport close"`). When
/// it returns, its send callback is not running (unless this is called from it) and will not
/// be called again. A second free is `POLYSIO_ERR_CLOSED`.
#[no_mangle]
pub extern "C" fn polysio_websocket_free(ws: *mut polysio_websocket) -> polysio_result {
    ffi(|| {
        let w = handle::remove(ws)?;
        w.slot.close();
        let _guard = w.runtime.enter();
        let i = lock(&w.inbound).take();
        if let Some(i) = i {
            i.receive(WsInput::Close);
        }
        Ok(())
    })
}
