//! The client side: options, the client (one connection, the socket.io-client "Manager") and
//! its namespace sockets.

use std::collections::HashMap;
use std::ffi::{c_char, c_double, c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use polysio::client::{Auth, ClientBuilder, ClientOptions, Manager, TransportKind};
use polysio::Value;

use crate::ack::{self, polysio_ack, polysio_ack_cb, AckCall, Responder, UserData};
use crate::dispatch::{check_mode, Dispatch};
use crate::error::{
    check_out, copy_out, cstr, ffi, opt_cstr, polysio_result, polysio_result::*, text, write_out,
    Error, Result,
};
use crate::handle::{self, kind};
use crate::payload::{self, polysio_payload};
use crate::runtime::{on_library_thread, RuntimeRef};
use crate::{
    cstring_lossy, millis, transports, POLYSIO_TRANSPORT_POLLING, POLYSIO_TRANSPORT_WEBSOCKET,
};

/// Client options, made by `polysio_client_options_new`, read by `polysio_client_new`,
/// freed with `polysio_client_options_free`. Defaults are socket.io-client's.
#[allow(non_camel_case_types)]
pub struct polysio_client_options {
    _private: [u8; 0],
}
kind!(
    polysio_client_options,
    ClientOptsObj,
    ClientOptions,
    "polysio_client_options"
);
/// A client: one connection to a server (socket.io-client's Manager), shared by its
/// namespace sockets. Made by `polysio_client_new`, freed with `polysio_client_free`.
#[allow(non_camel_case_types)]
pub struct polysio_client {
    _private: [u8; 0],
}
kind!(polysio_client, ClientObj, Client, "polysio_client");
/// A namespace socket of a client. Belongs to the client: valid until the client is freed
/// (across disconnections and reconnections); never freed by the caller.
#[allow(non_camel_case_types)]
pub struct polysio_client_socket {
    _private: [u8; 0],
}
kind!(
    polysio_client_socket,
    CSockObj,
    ClientSocket,
    "polysio_client_socket"
);

/// An event on a client socket: its name, its arguments (borrowed, read-only) and, when the
/// server asked for an acknowledgement, `ack` (borrowed; NULL otherwise). Also the reserved
/// events: `"connect"` (no arguments), `"connect_error"` (one object `{message, data?}`),
/// `"disconnect"` (the reason: `"io server disconnect"`, `"io client disconnect"`,
/// `"transport close"`, `"ping timeout"`...).
#[allow(non_camel_case_types)]
pub type polysio_client_event_cb = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        socket: *mut polysio_client_socket,
        event: *const c_char,
        args: *const polysio_payload,
        ack: *mut polysio_ack,
    ),
>;

/// An event of the connection itself: `"open"`, `"close"` (reason), `"error"` ({message}),
/// `"reconnect_attempt"` (attempt number), `"reconnect"` (attempts it took),
/// `"reconnect_error"` ({message}), `"reconnect_failed"`.
#[allow(non_camel_case_types)]
pub type polysio_client_manager_cb = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        client: *mut polysio_client,
        event: *const c_char,
        args: *const polysio_payload,
    ),
>;

type SockFn = unsafe extern "C" fn(
    *mut c_void,
    *mut polysio_client_socket,
    *const c_char,
    *const polysio_payload,
    *mut polysio_ack,
);

// ---- options ------------------------------------------------------------------------------

#[derive(Clone)]
struct ClientOpts {
    opts: ClientOptions,
    poll: bool,
}

pub struct ClientOptsObj(Mutex<ClientOpts>);

fn with_opts(
    o: *mut polysio_client_options,
    f: impl FnOnce(&mut ClientOpts) -> Result<()>,
) -> polysio_result {
    ffi(|| {
        let o = handle::get(o)?;
        let mut g = o.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    })
}

/// An auth payload from `(json, len)`: NULL for none, else a JSON object.
fn auth_of(json: *const c_char, len: usize) -> Result<Auth> {
    if json.is_null() {
        return Ok(Auth::None);
    }
    match payload::value_from_json(text(json, len, "json")?, &[])? {
        v @ Value::Map(_) => Ok(Auth::Value(v)),
        _ => Err(Error::invalid("auth must be a JSON object")),
    }
}

/// Creates client options with socket.io-client's defaults: polling then WebSocket with the
/// upgrade, path `/socket.io/`, reconnection on (unlimited attempts, delay 1000 ms up to
/// 5000 ms, randomization 0.5), handshake timeout 20000 ms, no ack timeout, a send buffer of
/// 10000 packets, callbacks on library threads.
#[no_mangle]
pub extern "C" fn polysio_client_options_new(
    out: *mut *mut polysio_client_options,
) -> polysio_result {
    ffi(|| {
        check_out(out, "out")?;
        let o = ClientOptsObj(Mutex::new(ClientOpts {
            opts: ClientOptions::default(),
            poll: false,
        }));
        write_out(
            out,
            handle::ptr_of(handle::insert::<polysio_client_options>(Arc::new(o))),
        );
        Ok(())
    })
}

/// Frees client options.
#[no_mangle]
pub extern "C" fn polysio_client_options_free(
    options: *mut polysio_client_options,
) -> polysio_result {
    ffi(|| handle::remove(options).map(drop))
}

/// The transports, tried polling first (`POLYSIO_TRANSPORT_POLLING |
/// POLYSIO_TRANSPORT_WEBSOCKET`, the default), and whether to upgrade from polling to
/// WebSocket (default true).
#[no_mangle]
pub extern "C" fn polysio_client_options_set_transports(
    options: *mut polysio_client_options,
    transport_mask: u32,
    upgrade: bool,
) -> polysio_result {
    with_opts(options, |o| {
        o.opts.transports = transports(transport_mask)?
            .iter()
            .map(|b| {
                if *b == POLYSIO_TRANSPORT_POLLING {
                    TransportKind::Polling
                } else {
                    TransportKind::Websocket
                }
            })
            .collect();
        o.opts.upgrade = upgrade;
        Ok(())
    })
}

/// Trusts the CA certificates of `len` bytes of PEM at `pem` (copied) for `https://` and
/// `wss://` servers, besides the system's roots (a private CA). `pem` NULL: the system's roots
/// only (the default). A PEM that does not parse makes `polysio_client_new` fail with
/// `POLYSIO_ERR_TLS`; a server whose certificate no trusted CA signed fails the connection
/// (`connect_error` with a message saying the certificate is not trusted).
#[no_mangle]
pub extern "C" fn polysio_client_options_set_tls_ca_pem(
    options: *mut polysio_client_options,
    pem: *const u8,
    len: usize,
) -> polysio_result {
    with_opts(options, |o| {
        o.opts.tls.ca_pem = if pem.is_null() {
            None
        } else {
            Some(crate::error::bytes(pem, len, "pem")?.to_vec())
        };
        Ok(())
    })
}

/// The client's certificate chain and private key, PEM (copied), for servers that ask for one
/// (mutual TLS). Both NULL: none (the default); one without the other is
/// `POLYSIO_ERR_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn polysio_client_options_set_tls_client_cert(
    options: *mut polysio_client_options,
    cert_pem: *const u8,
    cert_len: usize,
    key_pem: *const u8,
    key_len: usize,
) -> polysio_result {
    with_opts(options, |o| {
        match (cert_pem.is_null(), key_pem.is_null()) {
            (true, true) => {
                o.opts.tls.client_cert_pem = None;
                o.opts.tls.client_key_pem = None;
            }
            (false, false) => {
                o.opts.tls.client_cert_pem =
                    Some(crate::error::bytes(cert_pem, cert_len, "cert_pem")?.to_vec());
                o.opts.tls.client_key_pem =
                    Some(crate::error::bytes(key_pem, key_len, "key_pem")?.to_vec());
            }
            _ => return Err(Error::invalid("cert_pem and key_pem go together")),
        }
        Ok(())
    })
}

/// Whether to verify the server's certificate (default true). `false` accepts any certificate
/// (expired, self-signed, for another name): the traffic is encrypted, but to whoever answers.
/// For development only.
#[no_mangle]
pub extern "C" fn polysio_client_options_set_tls_verify(
    options: *mut polysio_client_options,
    verify: bool,
) -> polysio_result {
    with_opts(options, |o| {
        o.opts.tls.danger_accept_invalid_certs = !verify;
        Ok(())
    })
}

/// The HTTP CONNECT proxy every transport tunnels through: `"http://[user:password@]host:port"`;
/// `""` for none whatever the environment says; NULL (the default) for the one the
/// environment names (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, except `NO_PROXY` hosts and
/// loopback addresses). TLS to the server runs inside the tunnel.
#[no_mangle]
pub extern "C" fn polysio_client_options_set_proxy(
    options: *mut polysio_client_options,
    url: *const c_char,
) -> polysio_result {
    with_opts(options, |o| {
        o.opts.proxy = match opt_cstr(url, "url")? {
            None => polysio::client::Proxy::Environment,
            Some("") => polysio::client::Proxy::Direct,
            Some(u) => polysio::client::Proxy::Url(u.to_owned()),
        };
        Ok(())
    })
}

/// The server's Engine.IO path (default `/socket.io/`).
#[no_mangle]
pub extern "C" fn polysio_client_options_set_path(
    options: *mut polysio_client_options,
    path: *const c_char,
) -> polysio_result {
    with_opts(options, |o| {
        o.opts.path = cstr(path, "path")?.to_owned();
        Ok(())
    })
}

/// Adds a query parameter sent with every request.
#[no_mangle]
pub extern "C" fn polysio_client_options_add_query(
    options: *mut polysio_client_options,
    key: *const c_char,
    value: *const c_char,
) -> polysio_result {
    with_opts(options, |o| {
        let k = cstr(key, "key")?.to_owned();
        let v = cstr(value, "value")?.to_owned();
        o.opts.query.push((k, v));
        Ok(())
    })
}

/// Adds an HTTP header sent with every request (and the WebSocket handshake).
#[no_mangle]
pub extern "C" fn polysio_client_options_add_header(
    options: *mut polysio_client_options,
    name: *const c_char,
    value: *const c_char,
) -> polysio_result {
    with_opts(options, |o| {
        let k = cstr(name, "name")?;
        let v = cstr(value, "value")?;
        http::HeaderName::from_bytes(k.as_bytes())
            .map_err(|e| Error::invalid(format!("header name {k:?}: {e}")))?;
        http::HeaderValue::from_str(v)
            .map_err(|e| Error::invalid(format!("header value {v:?}: {e}")))?;
        o.opts.extra_headers.push((k.to_owned(), v.to_owned()));
        Ok(())
    })
}

/// The default auth payload of the client's sockets: `len` bytes of JSON text (an object), or
/// NULL for none.
#[no_mangle]
pub extern "C" fn polysio_client_options_set_auth(
    options: *mut polysio_client_options,
    json: *const c_char,
    len: usize,
) -> polysio_result {
    with_opts(options, |o| {
        o.opts.auth = auth_of(json, len)?;
        Ok(())
    })
}

/// Reconnection: whether to reconnect automatically (default true), and how many attempts
/// before `"reconnect_failed"` (0: unlimited, the default).
#[no_mangle]
pub extern "C" fn polysio_client_options_set_reconnection(
    options: *mut polysio_client_options,
    enabled: bool,
    attempts: u32,
) -> polysio_result {
    with_opts(options, |o| {
        o.opts.reconnection = enabled;
        o.opts.reconnection_attempts = if attempts == 0 { u32::MAX } else { attempts };
        Ok(())
    })
}

/// Reconnection delays: the first `delay_ms` (default 1000), growing exponentially up to
/// `delay_max_ms` (default 5000), each randomized by `randomization_factor` (0 to 1, default
/// 0.5).
#[no_mangle]
pub extern "C" fn polysio_client_options_set_reconnection_delay(
    options: *mut polysio_client_options,
    delay_ms: u32,
    delay_max_ms: u32,
    randomization_factor: c_double,
) -> polysio_result {
    with_opts(options, |o| {
        if !(0.0..=1.0).contains(&randomization_factor) {
            return Err(Error::invalid(
                "randomization_factor must be between 0 and 1",
            ));
        }
        if delay_max_ms < delay_ms {
            return Err(Error::invalid("delay_max_ms must be >= delay_ms"));
        }
        o.opts.reconnection_delay = Duration::from_millis(delay_ms.into());
        o.opts.reconnection_delay_max = Duration::from_millis(delay_max_ms.into());
        o.opts.randomization_factor = randomization_factor;
        Ok(())
    })
}

/// The handshake timeout (default 20000 ms).
#[no_mangle]
pub extern "C" fn polysio_client_options_set_timeout(
    options: *mut polysio_client_options,
    timeout_ms: u32,
) -> polysio_result {
    with_opts(options, |o| {
        o.opts.timeout = millis(timeout_ms, "timeout_ms")?;
        Ok(())
    })
}

/// The default acknowledgement timeout of emits with ack (0: none, the default).
#[no_mangle]
pub extern "C" fn polysio_client_options_set_ack_timeout(
    options: *mut polysio_client_options,
    timeout_ms: u32,
) -> polysio_result {
    with_opts(options, |o| {
        o.opts.ack_timeout = (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms.into()));
        Ok(())
    })
}

/// The offline buffer: how many packets each socket keeps while disconnected (default
/// 10000); beyond that, emits fail with `POLYSIO_ERR_BUFFER_FULL`.
#[no_mangle]
pub extern "C" fn polysio_client_options_set_send_buffer_max(
    options: *mut polysio_client_options,
    packets: usize,
) -> polysio_result {
    with_opts(options, |o| {
        o.opts.send_buffer_max = packets;
        Ok(())
    })
}

/// The most messages from the server received and not handled yet by your callbacks (default
/// 1024; must be > 0). In `POLYSIO_DISPATCH_POLL` mode every queued event counts until its
/// callback returned inside `polysio_client_poll`: at the bound the client stops reading from
/// the server (TCP backpressure) until the program catches up; nothing is dropped.
#[no_mangle]
pub extern "C" fn polysio_client_options_set_max_pending_messages(
    options: *mut polysio_client_options,
    messages: usize,
) -> polysio_result {
    with_opts(options, |o| {
        if messages == 0 {
            return Err(Error::invalid("messages must be > 0"));
        }
        o.opts.max_pending_messages = messages;
        Ok(())
    })
}

/// Where callbacks run: `POLYSIO_DISPATCH_THREADS` (default) or `POLYSIO_DISPATCH_POLL`
/// (run by `polysio_client_poll`; see `polysio_client_event_fd`).
#[no_mangle]
pub extern "C" fn polysio_client_options_set_dispatch(
    options: *mut polysio_client_options,
    mode: u32,
) -> polysio_result {
    with_opts(options, |o| {
        o.poll = check_mode(mode)?;
        Ok(())
    })
}

// ---- client -------------------------------------------------------------------------------

pub struct ClientObj {
    manager: Manager,
    id: u64,
    dispatch: Arc<Dispatch>,
    rt: RuntimeRef,
    sockets: Mutex<HashMap<String, Arc<CSockObj>>>,
    closed: AtomicBool,
}

pub struct CSockObj {
    socket: polysio::client::Socket,
    id: u64,
    nsp: std::ffi::CString,
    client: Weak<ClientObj>,
}

impl CSockObj {
    fn ptr(&self) -> *mut polysio_client_socket {
        handle::ptr_of(self.id)
    }
    fn client(&self) -> Result<Arc<ClientObj>> {
        self.client
            .upgrade()
            .filter(|c| !c.closed.load(Ordering::Acquire))
            .ok_or_else(|| Error::new(POLYSIO_ERR_CLOSED, "the client was freed"))
    }
    /// A core handler that runs `f` through the client's dispatcher.
    fn handler(
        self: &Arc<Self>,
        f: SockFn,
        ud: UserData,
    ) -> impl Fn(&str, Vec<polysio::Value>, Option<polysio::client::AckResponder>) + Send + Sync + 'static
    {
        let w = Arc::downgrade(self);
        move |event, args, ack| {
            let Some(so) = w.upgrade() else { return };
            let Some(c) = so.client.upgrade() else {
                return;
            };
            let event = cstring_lossy(event);
            // A message from the server until its callback ran (poll mode: while queued): at
            // `max_pending_messages` the client stops reading from the server.
            let held = c.manager.hold();
            c.dispatch.deliver(move || {
                let _held = held;
                let ud = ud;
                let p = payload::borrowed(args);
                let a = ack::borrowed(ack.map(Responder::Client));
                let a = a.as_ref().map_or(std::ptr::null_mut(), |a| a.ptr());
                // SAFETY: a C callback with the arguments its type documents.
                unsafe { f(ud.0, so.ptr(), event.as_ptr(), p.ptr(), a) }
            });
        }
    }
}

/// Creates a client for the server at `url` (`http://host:port` or `ws://host:port`; a path in
/// the URL is ignored: namespaces come from `polysio_client_of`) with `options` (NULL:
/// defaults; copied). Nothing connects until a socket does (`polysio_client_socket_connect`)
/// or `polysio_client_open`.
///
/// ```c
/// polysio_client *c = NULL;
/// polysio_client_socket *s = NULL;
/// polysio_client_new("http://127.0.0.1:3000", NULL, &c);
/// polysio_client_of(c, "/", &s);
/// polysio_client_socket_on(s, "connect", on_connect, NULL);
/// polysio_client_socket_on(s, "chat", on_chat, NULL);
/// polysio_client_socket_connect(s);
/// ...
/// polysio_client_free(c);
/// ```
#[no_mangle]
pub extern "C" fn polysio_client_new(
    url: *const c_char,
    options: *const polysio_client_options,
    out: *mut *mut polysio_client,
) -> polysio_result {
    ffi(|| {
        check_out(out, "out")?;
        let url = cstr(url, "url")?;
        let opts = if options.is_null() {
            ClientOpts {
                opts: ClientOptions::default(),
                poll: false,
            }
        } else {
            handle::get(options)?
                .0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        };
        let rt = RuntimeRef::acquire()?;
        let dispatch = Dispatch::new(opts.poll, rt.handle().clone())?;
        let manager = ClientBuilder::new(url)
            .options(opts.opts)
            .manager_on(rt.handle().clone())?;
        let c = handle::insert_with::<polysio_client>(|id| {
            Arc::new(ClientObj {
                manager,
                id,
                dispatch,
                rt,
                sockets: Mutex::new(HashMap::new()),
                closed: AtomicBool::new(false),
            })
        });
        write_out(out, handle::ptr_of(c.id));
        Ok(())
    })
}

/// The socket of namespace `nsp` (`"/"`, `"/admin"`), created on first use with the
/// options' auth; the same namespace gives the same handle. It belongs to the client.
#[no_mangle]
pub extern "C" fn polysio_client_of(
    client: *mut polysio_client,
    nsp: *const c_char,
    out: *mut *mut polysio_client_socket,
) -> polysio_result {
    ffi(|| {
        check_out(out, "out")?;
        let c = handle::get(client)?;
        let nsp = cstr(nsp, "nsp")?;
        let nsp = if nsp.starts_with('/') {
            nsp.to_owned()
        } else {
            format!("/{nsp}")
        };
        let mut m = c.sockets.lock().unwrap_or_else(|p| p.into_inner());
        if c.closed.load(Ordering::Acquire) {
            return Err(Error::new(POLYSIO_ERR_CLOSED, "the client was freed"));
        }
        if let Some(s) = m.get(&nsp) {
            write_out(out, s.ptr());
            return Ok(());
        }
        let socket = c.manager.socket(&nsp);
        let so = handle::insert_with::<polysio_client_socket>(|id| {
            Arc::new(CSockObj {
                socket,
                id,
                nsp: cstring_lossy(&nsp),
                client: Arc::downgrade(&c),
            })
        });
        m.insert(nsp, so.clone());
        write_out(out, so.ptr());
        Ok(())
    })
}

/// Adds a callback for an event of the connection itself (see `polysio_client_manager_cb`).
#[no_mangle]
pub extern "C" fn polysio_client_on(
    client: *mut polysio_client,
    event: *const c_char,
    callback: polysio_client_manager_cb,
    user_data: *mut c_void,
) -> polysio_result {
    ffi(|| {
        let c = handle::get(client)?;
        let event = cstr(event, "event")?;
        let f = callback.ok_or_else(|| Error::null("callback"))?;
        let ud = UserData(user_data);
        let w = Arc::downgrade(&c);
        let name = cstring_lossy(event);
        c.manager.on(event, move |args, _| {
            let Some(c) = w.upgrade() else { return };
            let name = name.clone();
            let c2 = c.clone();
            c.dispatch.deliver(move || {
                let ud = ud;
                let p = payload::borrowed(args);
                // SAFETY: a C callback with the arguments its type documents.
                unsafe { f(ud.0, handle::ptr_of(c2.id), name.as_ptr(), p.ptr()) }
            });
        });
        Ok(())
    })
}

/// Opens the connection without connecting a namespace.
#[no_mangle]
pub extern "C" fn polysio_client_open(client: *mut polysio_client) -> polysio_result {
    ffi(|| {
        handle::get(client)?.manager.open();
        Ok(())
    })
}

/// Disconnects every socket (`"io client disconnect"`) and closes the connection; no
/// reconnection follows. Sockets can connect again later.
#[no_mangle]
pub extern "C" fn polysio_client_close(client: *mut polysio_client) -> polysio_result {
    ffi(|| {
        handle::get(client)?.manager.close();
        Ok(())
    })
}

/// Closes the connection and frees the client with its sockets. When it returns, no callback
/// of this client is running (except the one calling it, if called from a callback) and none
/// will start; pending ack callbacks are dropped. Freeing the last server or client stops the
/// library's threads. A second free is `POLYSIO_ERR_CLOSED`.
#[no_mangle]
pub extern "C" fn polysio_client_free(client: *mut polysio_client) -> polysio_result {
    ffi(|| {
        let c = handle::remove(client)?;
        {
            let _m = c.sockets.lock();
            c.closed.store(true, Ordering::Release);
        }
        c.dispatch.shutdown();
        let ids: Vec<u64> = c
            .sockets
            .lock()
            .map(|mut m| m.drain().map(|(_, s)| s.id).collect())
            .unwrap_or_default();
        handle::remove_ids(ids);
        if on_library_thread() {
            // Maybe inside this client's own task: do not wait for it.
            let h = c.rt.handle().clone();
            drop(h.spawn(async move {
                c.manager.shutdown().await;
                c.rt.release();
            }));
        } else {
            c.rt.block_on(c.manager.shutdown());
            c.rt.release();
        }
        Ok(())
    })
}

/// Poll mode: runs the callbacks queued so far on the calling thread (see
/// `polysio_server_poll`).
#[no_mangle]
pub extern "C" fn polysio_client_poll(
    client: *mut polysio_client,
    ran: *mut usize,
) -> polysio_result {
    ffi(|| {
        let c = handle::get(client)?;
        let n = c.dispatch.poll()?;
        write_out(ran, n);
        Ok(())
    })
}

/// Poll mode: the descriptor that is readable while callbacks are queued (see
/// `polysio_server_event_fd`).
#[no_mangle]
pub extern "C" fn polysio_client_event_fd(
    client: *const polysio_client,
    fd: *mut c_int,
) -> polysio_result {
    handle::query(client, fd, |o| o.dispatch.fd())
}

/// The transport the connection uses now: `POLYSIO_TRANSPORT_POLLING` or
/// `POLYSIO_TRANSPORT_WEBSOCKET`, or 0 while no connection is open. It changes from polling
/// to WebSocket when the upgrade completes.
///
/// ```c
/// uint32_t t = 0;
/// polysio_client_transport(client, &t);
/// if (t == POLYSIO_TRANSPORT_WEBSOCKET) puts("upgraded");
/// ```
#[no_mangle]
pub extern "C" fn polysio_client_transport(
    client: *const polysio_client,
    out: *mut u32,
) -> polysio_result {
    handle::query(client, out, |o| {
        Ok(match o.manager.transport() {
            Some(TransportKind::Polling) => POLYSIO_TRANSPORT_POLLING,
            Some(TransportKind::Websocket) => POLYSIO_TRANSPORT_WEBSOCKET,
            None => 0,
        })
    })
}

// ---- sockets ------------------------------------------------------------------------------

/// Adds a callback for `event` (reserved ones included: `"connect"`, `"connect_error"`,
/// `"disconnect"`).
#[no_mangle]
pub extern "C" fn polysio_client_socket_on(
    socket: *mut polysio_client_socket,
    event: *const c_char,
    callback: polysio_client_event_cb,
    user_data: *mut c_void,
) -> polysio_result {
    ffi(|| {
        let so = handle::get(socket)?;
        let event = cstr(event, "event")?;
        let f = callback.ok_or_else(|| Error::null("callback"))?;
        let h = so.handler(f, UserData(user_data));
        let name = event.to_owned();
        so.socket.on(event, move |args, ack| h(&name, args, ack));
        Ok(())
    })
}

/// Adds a callback for every incoming event (called before the event's own callbacks).
#[no_mangle]
pub extern "C" fn polysio_client_socket_on_any(
    socket: *mut polysio_client_socket,
    callback: polysio_client_event_cb,
    user_data: *mut c_void,
) -> polysio_result {
    ffi(|| {
        let so = handle::get(socket)?;
        let f = callback.ok_or_else(|| Error::null("callback"))?;
        let h = so.handler(f, UserData(user_data));
        so.socket
            .on_any(move |event, args, ack| h(event, args, ack));
        Ok(())
    })
}

/// Removes the callbacks of `event`, or every callback (catch-all ones too) when `event` is
/// NULL.
#[no_mangle]
pub extern "C" fn polysio_client_socket_off(
    socket: *mut polysio_client_socket,
    event: *const c_char,
) -> polysio_result {
    ffi(|| {
        let so = handle::get(socket)?;
        so.socket.off(opt_cstr(event, "event")?);
        Ok(())
    })
}

/// Replaces the auth payload sent from the next (re)connection on: `len` bytes of JSON text
/// (an object), or NULL for none.
#[no_mangle]
pub extern "C" fn polysio_client_socket_set_auth(
    socket: *mut polysio_client_socket,
    json: *const c_char,
    len: usize,
) -> polysio_result {
    ffi(|| {
        let so = handle::get(socket)?;
        so.socket.set_auth(auth_of(json, len)?);
        Ok(())
    })
}

/// Connects the namespace (opening the connection if needed); the outcome arrives as
/// `"connect"` or `"connect_error"`.
#[no_mangle]
pub extern "C" fn polysio_client_socket_connect(
    socket: *mut polysio_client_socket,
) -> polysio_result {
    ffi(|| {
        let so = handle::get(socket)?;
        so.client()?;
        so.socket.connect();
        Ok(())
    })
}

/// Disconnects the namespace (`"io client disconnect"`); no reconnection follows. The
/// connection closes when no other socket uses it.
#[no_mangle]
pub extern "C" fn polysio_client_socket_disconnect(
    socket: *mut polysio_client_socket,
) -> polysio_result {
    ffi(|| {
        handle::get(socket)?.socket.disconnect();
        Ok(())
    })
}

/// Emits `event` with `args` (nullable). While disconnected it is kept in the offline buffer
/// and sent on (re)connection; `POLYSIO_ERR_BUFFER_FULL` when the buffer is full.
#[no_mangle]
pub extern "C" fn polysio_client_socket_emit(
    socket: *mut polysio_client_socket,
    event: *const c_char,
    args: *const polysio_payload,
) -> polysio_result {
    ffi(|| {
        let so = handle::get(socket)?;
        let event = cstr(event, "event")?;
        so.socket.emit(event, payload::args_of(args)?)?;
        Ok(())
    })
}

/// Emits `event` volatile: dropped instead of buffered when not connected.
#[no_mangle]
pub extern "C" fn polysio_client_socket_emit_volatile(
    socket: *mut polysio_client_socket,
    event: *const c_char,
    args: *const polysio_payload,
) -> polysio_result {
    ffi(|| {
        let so = handle::get(socket)?;
        let event = cstr(event, "event")?;
        so.socket.volatile().emit(event, payload::args_of(args)?)?;
        Ok(())
    })
}

/// Emits `event` asking the server for an acknowledgement; `callback` gets the answer, or
/// `POLYSIO_ERR_TIMEOUT` after `timeout_ms` (0: the options' ack timeout, by default none),
/// or `POLYSIO_ERR_CLOSED` on disconnection. When this returns an error, `callback` is never
/// called.
#[no_mangle]
pub extern "C" fn polysio_client_socket_emit_with_ack(
    socket: *mut polysio_client_socket,
    event: *const c_char,
    args: *const polysio_payload,
    timeout_ms: u32,
    callback: polysio_ack_cb,
    user_data: *mut c_void,
) -> polysio_result {
    ffi(|| {
        let so = handle::get(socket)?;
        let event = cstr(event, "event")?;
        let args = payload::args_of(args)?;
        callback.ok_or_else(|| Error::null("callback"))?;
        let c = so.client()?;
        let slot = Arc::new(Mutex::new(Some(AckCall::new(
            callback,
            user_data,
            &c.dispatch,
        ))));
        let s2 = slot.clone();
        let cb = move |r| {
            if let Some(call) = s2.lock().ok().and_then(|mut c| c.take()) {
                call.complete(r);
            }
        };
        let r = if timeout_ms > 0 {
            so.socket
                .timeout(Duration::from_millis(timeout_ms.into()))
                .emit_with_ack_cb(event, args, cb)
        } else {
            so.socket.emit_with_ack_cb(event, args, cb)
        };
        if let Err(e) = r {
            if let Some(call) = slot.lock().ok().and_then(|mut c| c.take()) {
                call.disarm();
            }
            return Err(e.into());
        }
        Ok(())
    })
}

/// The session id given by the server, copied NUL-terminated into `buf` of `len` bytes;
/// `out_len` (nullable) gets its length. `POLYSIO_ERR_CLOSED` while not connected,
/// `POLYSIO_ERR_BUFFER_TOO_SMALL` if it does not fit (`out_len` still set).
#[no_mangle]
pub extern "C" fn polysio_client_socket_id(
    socket: *const polysio_client_socket,
    buf: *mut c_char,
    len: usize,
    out_len: *mut usize,
) -> polysio_result {
    ffi(|| {
        let so = handle::get(socket)?;
        let id = so
            .socket
            .id()
            .ok_or_else(|| Error::new(POLYSIO_ERR_CLOSED, "not connected"))?;
        copy_out(&id, buf, len, out_len)
    })
}

/// The socket's namespace, NUL-terminated, owned by the socket.
#[no_mangle]
pub extern "C" fn polysio_client_socket_namespace(
    socket: *const polysio_client_socket,
    out: *mut *const c_char,
) -> polysio_result {
    handle::query(socket, out, |o| Ok(o.nsp.as_ptr()))
}

/// Whether the namespace is connected.
#[no_mangle]
pub extern "C" fn polysio_client_socket_connected(
    socket: *const polysio_client_socket,
    out: *mut bool,
) -> polysio_result {
    handle::query(socket, out, |o| Ok(o.socket.connected()))
}

/// Whether the socket wants to be connected (after connect, until a disconnect or a refusal):
/// true while it reconnects.
#[no_mangle]
pub extern "C" fn polysio_client_socket_active(
    socket: *const polysio_client_socket,
    out: *mut bool,
) -> polysio_result {
    handle::query(socket, out, |o| Ok(o.socket.active()))
}

/// Whether the last connection restored the previous session (connection state recovery).
#[no_mangle]
pub extern "C" fn polysio_client_socket_recovered(
    socket: *const polysio_client_socket,
    out: *mut bool,
) -> polysio_result {
    handle::query(socket, out, |o| Ok(o.socket.recovered()))
}
