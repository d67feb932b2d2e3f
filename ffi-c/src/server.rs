//! The server side: options, the server, namespaces and their callbacks, sockets, broadcasts,
//! connect middlewares.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use polysio::adapter::redis::{RedisAdapter, RedisConfig, RedisFormat, SubscriptionMode};
use polysio::engine::server::Fallback;
use polysio::engine::{CorsConfig, CorsOrigin, TransportType};
use polysio::server::{
    BroadcastOperator, ConnectError, DisconnectReason, Namespace, RecoveryConfig, Server,
    ServerConfig, ServerSideAck, Socket,
};
use polysio::Value;

use crate::ack::{self, polysio_ack, polysio_ack_cb, AckCall, Responder, UserData};
use crate::dispatch::{check_mode, Dispatch};
use crate::error::{
    check_out, cstr, ffi, opt_cstr, polysio_result, polysio_result::*, write_out, Error, Result,
};
use crate::handle::{self, kind, Borrowed};
use crate::payload::{self, map, polysio_payload, PayloadObj};
use crate::runtime::{on_library_thread, RuntimeRef};
use crate::{cstring_lossy, millis, transports, POLYSIO_TRANSPORT_POLLING};

/// Server options, made by `polysio_server_options_new`, read by `polysio_server_new`,
/// freed with `polysio_server_options_free`. Defaults are the reference socket.io server's.
#[allow(non_camel_case_types)]
pub struct polysio_server_options {
    _private: [u8; 0],
}
kind!(
    polysio_server_options,
    ServerOptsObj,
    ServerOptions,
    "polysio_server_options"
);
/// A Socket.IO server. Made by `polysio_server_new`, freed with `polysio_server_free`.
#[allow(non_camel_case_types)]
pub struct polysio_server {
    _private: [u8; 0],
}
kind!(polysio_server, ServerObj, Server, "polysio_server");
/// A namespace of a server (`/`, `/admin`...). Belongs to the server: valid until the
/// server is freed; never freed by the caller.
#[allow(non_camel_case_types)]
pub struct polysio_namespace {
    _private: [u8; 0],
}
kind!(polysio_namespace, NsObj, Namespace, "polysio_namespace");
/// One client connected to one namespace. Belongs to the library: valid from the
/// connection callback until the disconnect callback returns (then every call with it
/// returns `POLYSIO_ERR_CLOSED`), and always until the callback it was given to returns,
/// also when that callback disconnected it; the socket given to a middleware is valid
/// during that call only. Never freed by the caller. A socket that has left while its handle
/// is still valid (its disconnect callback is queued in poll mode, or it was disconnected by
/// the running callback) answers `polysio_socket_connected` false and ignores emits.
#[allow(non_camel_case_types)]
pub struct polysio_socket {
    _private: [u8; 0],
}
kind!(polysio_socket, SockObj, Socket, "polysio_socket");
/// A selection of sockets to act on (rooms, exceptions, flags). Owned: free it with
/// `polysio_broadcast_free`.
#[allow(non_camel_case_types)]
pub struct polysio_broadcast {
    _private: [u8; 0],
}
kind!(
    polysio_broadcast,
    BroadcastObj,
    Broadcast,
    "polysio_broadcast"
);
/// Passed (borrowed) to a connect middleware; `polysio_refusal_set` refuses the connection.
#[allow(non_camel_case_types)]
pub struct polysio_refusal {
    _private: [u8; 0],
}
kind!(polysio_refusal, RefusalObj, Refusal, "polysio_refusal");

/// CORS off (the default): no CORS headers.
pub const POLYSIO_CORS_OFF: u32 = 0;
/// `Access-Control-Allow-Origin: *`.
pub const POLYSIO_CORS_ANY: u32 = 1;
/// Echo the request's `Origin`.
pub const POLYSIO_CORS_MIRROR: u32 = 2;

/// A socket connected to a namespace (the socket is borrowed: see `polysio_socket`).
#[allow(non_camel_case_types)]
pub type polysio_connection_cb =
    Option<unsafe extern "C" fn(user_data: *mut c_void, socket: *mut polysio_socket)>;

/// An event from a client: its name, its arguments (borrowed, read-only) and, when the client
/// asked for an acknowledgement, `ack` (borrowed; NULL otherwise).
#[allow(non_camel_case_types)]
pub type polysio_event_cb = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        socket: *mut polysio_socket,
        event: *const c_char,
        args: *const polysio_payload,
        ack: *mut polysio_ack,
    ),
>;

/// A socket disconnected; `reason` is the reference's string (`"client namespace disconnect"`,
/// `"transport close"`, `"ping timeout"`, `"server shutting down"`...), static.
#[allow(non_camel_case_types)]
pub type polysio_disconnect_cb = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        socket: *mut polysio_socket,
        reason: *const c_char,
    ),
>;

/// A connect middleware: runs before the socket connects (its id and handshake are readable,
/// it cannot emit yet). Returning without calling `polysio_refusal_set` accepts it.
#[allow(non_camel_case_types)]
pub type polysio_middleware_cb = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        socket: *mut polysio_socket,
        refusal: *mut polysio_refusal,
    ),
>;

/// A `serverSideEmit` from another node of the cluster (`polysio_namespace_on_server_side`):
/// the namespace it was sent to (borrowed), the event's name, its arguments (borrowed,
/// read-only) and, when the other node waits for an answer (`serverSideEmitWithAck`), `ack`
/// (borrowed; NULL otherwise): answer it with `polysio_ack_send` (one value: the first argument
/// of the payload), during the call or after `polysio_ack_clone`. No socket is involved.
#[allow(non_camel_case_types)]
pub type polysio_server_side_cb = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        ns: *mut polysio_namespace,
        event: *const c_char,
        args: *const polysio_payload,
        ack: *mut polysio_ack,
    ),
>;

type ConnFn = unsafe extern "C" fn(*mut c_void, *mut polysio_socket);
type ServerSideFn = unsafe extern "C" fn(
    *mut c_void,
    *mut polysio_namespace,
    *const c_char,
    *const polysio_payload,
    *mut polysio_ack,
);
type EventFn = unsafe extern "C" fn(
    *mut c_void,
    *mut polysio_socket,
    *const c_char,
    *const polysio_payload,
    *mut polysio_ack,
);
type DiscFn = unsafe extern "C" fn(*mut c_void, *mut polysio_socket, *const c_char);

// ---- options ------------------------------------------------------------------------------

#[derive(Clone)]
struct ServerOpts {
    config: ServerConfig,
    poll: bool,
    /// `polysio_server_options_set_redis`: the URL and the channel prefix.
    redis: Option<(String, String)>,
    /// `polysio_server_options_set_redis_format`.
    redis_format: (RedisFormat, SubscriptionMode),
}

pub struct ServerOptsObj(Mutex<ServerOpts>);

fn with_opts(
    o: *mut polysio_server_options,
    f: impl FnOnce(&mut ServerOpts) -> Result<()>,
) -> polysio_result {
    ffi(|| {
        let o = handle::get(o)?;
        let mut g = o.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    })
}

/// Creates server options with the reference server's defaults: path `/socket.io/`, ping
/// interval 25000 ms and timeout 20000 ms, connect timeout 45000 ms, maxHttpBufferSize 1e6,
/// both transports with upgrades, CORS off, no connection state recovery, callbacks on library
/// threads; and the limits and timeouts of the `polysio_server_options_set_*` functions below
/// (request body 30000 ms, 10000 body chunks, 16 MiB queued per client, write 30000 ms, 1024
/// pending messages, request head 60000 ms, keep-alive 5000 ms, 10 attachments, no handshake
/// rate or connection cap).
#[no_mangle]
pub extern "C" fn polysio_server_options_new(
    out: *mut *mut polysio_server_options,
) -> polysio_result {
    ffi(|| {
        check_out(out, "out")?;
        let o = ServerOptsObj(Mutex::new(ServerOpts {
            config: ServerConfig::default(),
            poll: false,
            redis: None,
            redis_format: Default::default(),
        }));
        write_out(
            out,
            handle::ptr_of(handle::insert::<polysio_server_options>(Arc::new(o))),
        );
        Ok(())
    })
}

/// Frees server options.
#[no_mangle]
pub extern "C" fn polysio_server_options_free(
    options: *mut polysio_server_options,
) -> polysio_result {
    ffi(|| handle::remove(options).map(drop))
}

/// The URL path the server answers on (default `/socket.io/`).
#[no_mangle]
pub extern "C" fn polysio_server_options_set_path(
    options: *mut polysio_server_options,
    path: *const c_char,
) -> polysio_result {
    with_opts(options, |o| {
        let p = cstr(path, "path")?;
        if !p.starts_with('/') || p.bytes().any(|b| b <= b' ' || b == b'?' || b == b'#') {
            return Err(Error::invalid(format!(
                "bad path {p:?}: must start with '/'"
            )));
        }
        o.config.engine.path = if p.ends_with('/') {
            p.to_owned()
        } else {
            format!("{p}/")
        };
        Ok(())
    })
}

/// The heartbeat: a ping every `interval_ms`, the client must answer within `timeout_ms`
/// (defaults 25000 and 20000; both must be > 0).
#[no_mangle]
pub extern "C" fn polysio_server_options_set_ping(
    options: *mut polysio_server_options,
    interval_ms: u32,
    timeout_ms: u32,
) -> polysio_result {
    with_opts(options, |o| {
        o.config.engine.ping_interval = millis(interval_ms, "interval_ms")?;
        o.config.engine.ping_timeout = millis(timeout_ms, "timeout_ms")?;
        Ok(())
    })
}

/// How long a client has to connect to a namespace after the handshake (default 45000 ms).
#[no_mangle]
pub extern "C" fn polysio_server_options_set_connect_timeout(
    options: *mut polysio_server_options,
    timeout_ms: u32,
) -> polysio_result {
    with_opts(options, |o| {
        o.config.connect_timeout = millis(timeout_ms, "timeout_ms")?;
        Ok(())
    })
}

/// The largest message (and HTTP POST body) in bytes, maxHttpBufferSize (default 1000000).
#[no_mangle]
pub extern "C" fn polysio_server_options_set_max_http_buffer_size(
    options: *mut polysio_server_options,
    bytes: usize,
) -> polysio_result {
    with_opts(options, |o| {
        if bytes == 0 {
            return Err(Error::invalid("max_http_buffer_size must be > 0"));
        }
        o.config.engine.max_http_buffer_size = bytes;
        Ok(())
    })
}

/// The allowed transports: `POLYSIO_TRANSPORT_POLLING | POLYSIO_TRANSPORT_WEBSOCKET` (default
/// both), and whether polling sessions may upgrade to WebSocket (default true).
#[no_mangle]
pub extern "C" fn polysio_server_options_set_transports(
    options: *mut polysio_server_options,
    transport_mask: u32,
    allow_upgrades: bool,
) -> polysio_result {
    with_opts(options, |o| {
        let t = transports(transport_mask)?;
        o.config.engine.transports = t
            .iter()
            .map(|b| {
                if *b == POLYSIO_TRANSPORT_POLLING {
                    TransportType::Polling
                } else {
                    TransportType::Websocket
                }
            })
            .collect();
        o.config.engine.allow_upgrades = allow_upgrades;
        Ok(())
    })
}

/// CORS, as the npm `cors` package: `mode` is `POLYSIO_CORS_OFF` (default), `POLYSIO_CORS_ANY`
/// (`*`) or `POLYSIO_CORS_MIRROR` (echo the request's origin); `credentials` adds
/// `Access-Control-Allow-Credentials: true`. To allow a list of origins, use
/// `polysio_server_options_add_cors_origin` instead.
#[no_mangle]
pub extern "C" fn polysio_server_options_set_cors(
    options: *mut polysio_server_options,
    mode: u32,
    credentials: bool,
) -> polysio_result {
    with_opts(options, |o| {
        let origin = match mode {
            POLYSIO_CORS_OFF => {
                o.config.engine.cors = None;
                return Ok(());
            }
            POLYSIO_CORS_ANY => CorsOrigin::Any,
            POLYSIO_CORS_MIRROR => CorsOrigin::Mirror,
            m => {
                return Err(Error::invalid(format!(
                    "CORS mode {m}: expected POLYSIO_CORS_*"
                )))
            }
        };
        o.config.engine.cors = Some(CorsConfig {
            origin,
            credentials,
            ..CorsConfig::default()
        });
        Ok(())
    })
}

/// Allows CORS requests from `origin` (e.g. `"https://example.com"`); call once per origin.
/// Turns CORS on in list mode (credentials as last set by `polysio_server_options_set_cors`).
#[no_mangle]
pub extern "C" fn polysio_server_options_add_cors_origin(
    options: *mut polysio_server_options,
    origin: *const c_char,
) -> polysio_result {
    with_opts(options, |o| {
        let origin = cstr(origin, "origin")?.to_owned();
        let cors = o.config.engine.cors.get_or_insert_with(CorsConfig::default);
        match &mut cors.origin {
            CorsOrigin::List(l) => l.push(origin),
            other => *other = CorsOrigin::List(vec![origin]),
        }
        Ok(())
    })
}

/// Connection state recovery (off by default): a client that lost its connection for less
/// than `max_disconnection_ms` gets its id, rooms and the broadcasts it missed back;
/// `skip_middlewares` skips the middlewares for such a client.
#[no_mangle]
pub extern "C" fn polysio_server_options_set_connection_state_recovery(
    options: *mut polysio_server_options,
    enabled: bool,
    max_disconnection_ms: u32,
    skip_middlewares: bool,
) -> polysio_result {
    with_opts(options, |o| {
        o.config.connection_state_recovery = if enabled {
            Some(RecoveryConfig {
                max_disconnection_duration: millis(max_disconnection_ms, "max_disconnection_ms")?,
                skip_middlewares,
            })
        } else {
            None
        };
        Ok(())
    })
}

/// Scale-out over Redis: the server joins a cluster of servers (polysio in any language, or
/// npm socket.io with `@socket.io/redis-adapter` 8.3: the classic PUBLISH/SUBSCRIBE format, or
/// the sharded one with `polysio_server_options_set_redis_format`)
/// sharing the Redis at `url` and the channel prefix `key` (NULL: `"socket.io"`, the npm
/// adapter's default). Broadcasts, rooms, `polysio_broadcast_*` (fetch, join, leave,
/// disconnect) and acks then reach the sockets of every node. `url` is
/// `redis://[user:password@]host[:port][/db]` or `redis+unix:///path/to/socket[?db=N]`
/// (`rediss://`, TLS, is not supported yet: `polysio_server_new` fails on it); NULL turns the adapter off (the default: in memory,
/// this process only). The server connects in the background when `polysio_server_new` makes it
/// and reconnects by itself while Redis is away; a URL that does not parse is
/// `POLYSIO_ERR_INVALID_ARGUMENT` here (bad scheme) or from `polysio_server_new`.
/// `polysio_server_redis_ready` waits until the other nodes can reach this one.
///
/// ```c
/// polysio_server_options *o;
/// polysio_server_options_new(&o);
/// polysio_server_options_set_redis(o, "redis://127.0.0.1:6379", NULL);
/// polysio_server *s;
/// char err[256];
/// if (polysio_server_new(o, &s) != POLYSIO_OK) { polysio_last_error(err, sizeof err); ... }
/// polysio_server_options_free(o);
/// polysio_server_listen(s, NULL, 8080, NULL);
/// polysio_server_redis_ready(s, 5000);
/// ```
#[no_mangle]
pub extern "C" fn polysio_server_options_set_redis(
    options: *mut polysio_server_options,
    url: *const c_char,
    key: *const c_char,
) -> polysio_result {
    with_opts(options, |o| {
        let Some(url) = opt_cstr(url, "url")? else {
            o.redis = None;
            return Ok(());
        };
        let key = opt_cstr(key, "key")?.unwrap_or("socket.io");
        check_redis_url(url)?;
        if key.is_empty() {
            return Err(Error::invalid("the Redis key (channel prefix) is empty"));
        }
        o.redis = Some((url.to_owned(), key.to_owned()));
        Ok(())
    })
}

/// A Redis URL's scheme is one redis-rs takes (the rest is checked when connecting).
pub(crate) fn check_redis_url(url: &str) -> Result<()> {
    let schemes = ["redis://", "rediss://", "redis+unix://", "unix://"];
    if !schemes.iter().any(|s| url.starts_with(s)) {
        return Err(Error::invalid(format!(
            "bad Redis URL {url:?}: expected redis://, rediss://, redis+unix:// or unix://"
        )));
    }
    Ok(())
}

/// The classic `@socket.io/redis-adapter` format (`createAdapter`: PUBLISH/SUBSCRIBE, any
/// Redis), the default of `polysio_server_options_set_redis_format`.
pub const POLYSIO_REDIS_CLASSIC: u32 = 0;
/// The sharded `@socket.io/redis-adapter` format (`createShardedAdapter`: SPUBLISH/SSUBSCRIBE,
/// Redis 7.0 or later), for `polysio_server_options_set_redis_format`.
pub const POLYSIO_REDIS_SHARDED: u32 = 1;
/// Sharded format, `subscriptionMode: "static"`: two channels per namespace.
pub const POLYSIO_REDIS_SUBSCRIPTION_STATIC: u32 = 0;
/// Sharded format, `subscriptionMode: "dynamic"` (the npm default): plus one channel per public
/// room that has sockets on this node.
pub const POLYSIO_REDIS_SUBSCRIPTION_DYNAMIC: u32 = 1;
/// Sharded format, `subscriptionMode: "dynamic-private"`: as dynamic, private rooms (socket ids)
/// included.
pub const POLYSIO_REDIS_SUBSCRIPTION_DYNAMIC_PRIVATE: u32 = 2;

/// The wire format of the Redis adapter of `polysio_server_options_set_redis` (set before or
/// after it): `POLYSIO_REDIS_CLASSIC` (the default) or `POLYSIO_REDIS_SHARDED` (npm's
/// `createShardedAdapter`; the key of `polysio_server_options_set_redis` is its
/// `channelPrefix`), and, for the sharded format, `subscription_mode`:
/// `POLYSIO_REDIS_SUBSCRIPTION_STATIC`, `_DYNAMIC` (npm's default) or `_DYNAMIC_PRIVATE`
/// (ignored by the classic format). Every node of a cluster must use the same format and mode.
/// Anything else is `POLYSIO_ERR_INVALID_ARGUMENT`.
///
/// ```c
/// polysio_server_options_set_redis(o, "redis://127.0.0.1:6379", NULL);
/// polysio_server_options_set_redis_format(o, POLYSIO_REDIS_SHARDED, POLYSIO_REDIS_SUBSCRIPTION_DYNAMIC);
/// ```
#[no_mangle]
pub extern "C" fn polysio_server_options_set_redis_format(
    options: *mut polysio_server_options,
    format: u32,
    subscription_mode: u32,
) -> polysio_result {
    with_opts(options, |o| {
        let format = match format {
            POLYSIO_REDIS_CLASSIC => RedisFormat::Classic,
            POLYSIO_REDIS_SHARDED => RedisFormat::Sharded,
            f => {
                return Err(Error::invalid(format!(
                    "Redis format {f}: expected POLYSIO_REDIS_CLASSIC or POLYSIO_REDIS_SHARDED"
                )))
            }
        };
        let mode = match subscription_mode {
            POLYSIO_REDIS_SUBSCRIPTION_STATIC => SubscriptionMode::Static,
            POLYSIO_REDIS_SUBSCRIPTION_DYNAMIC => SubscriptionMode::Dynamic,
            POLYSIO_REDIS_SUBSCRIPTION_DYNAMIC_PRIVATE => SubscriptionMode::DynamicPrivate,
            m => {
                return Err(Error::invalid(format!(
                    "subscription mode {m}: expected POLYSIO_REDIS_SUBSCRIPTION_STATIC, _DYNAMIC \
                     or _DYNAMIC_PRIVATE"
                )))
            }
        };
        o.redis_format = (format, mode);
        Ok(())
    })
}

/// Where callbacks run: `POLYSIO_DISPATCH_THREADS` (default: on library threads, as events
/// happen) or `POLYSIO_DISPATCH_POLL` (queued; run by `polysio_server_poll` on the caller's
/// thread; see `polysio_server_event_fd`).
#[no_mangle]
pub extern "C" fn polysio_server_options_set_dispatch(
    options: *mut polysio_server_options,
    mode: u32,
) -> polysio_result {
    with_opts(options, |o| {
        o.poll = check_mode(mode)?;
        Ok(())
    })
}

// ---- limits and timeouts (every resource a client can hold is bounded) -------------------

/// A count that must not be 0.
fn count(n: usize, what: &str) -> Result<usize> {
    if n == 0 {
        return Err(Error::invalid(format!("{what} must be > 0")));
    }
    Ok(n)
}

/// How long a long-polling POST may take to send its body (default 30000 ms, engine.io's
/// `httpRequestBodyTimeout`; must be > 0). A slower body is answered 408 and its session
/// closes with `"transport error"`.
#[no_mangle]
pub extern "C" fn polysio_server_options_set_http_request_body_timeout(
    options: *mut polysio_server_options,
    timeout_ms: u32,
) -> polysio_result {
    with_opts(options, |o| {
        o.config.engine.http_request_body_timeout = millis(timeout_ms, "timeout_ms")?;
        Ok(())
    })
}

/// The most chunks a long-polling POST body may arrive in (default 10000, engine.io's
/// `maxBufferedChunks`; must be > 0). A body in more is answered 413 and its session closes
/// with `"transport error"`.
#[no_mangle]
pub extern "C" fn polysio_server_options_set_max_buffered_chunks(
    options: *mut polysio_server_options,
    chunks: usize,
) -> polysio_result {
    with_opts(options, |o| {
        o.config.engine.max_buffered_chunks = count(chunks, "chunks")?;
        Ok(())
    })
}

/// The most bytes of packets queued for one client and not yet taken by its transport (a
/// polling client that does not GET, a WebSocket whose peer does not read), each packet
/// counted as its length + 64 (default 16777216, 16 MiB; must be > 0; the reference buffers
/// without bound). Past it the session closes with `"transport error"`.
#[no_mangle]
pub extern "C" fn polysio_server_options_set_max_buffered_bytes(
    options: *mut polysio_server_options,
    bytes: usize,
) -> polysio_result {
    with_opts(options, |o| {
        o.config.engine.max_buffered_bytes = count(bytes, "bytes")?;
        Ok(())
    })
}

/// How long a WebSocket write may make no progress (default 30000 ms, the reference's socket
/// timeout; must be > 0). A client that stops reading is disconnected with `"transport
/// error"` and its connection closed, even while the write is blocked.
#[no_mangle]
pub extern "C" fn polysio_server_options_set_write_timeout(
    options: *mut polysio_server_options,
    timeout_ms: u32,
) -> polysio_result {
    with_opts(options, |o| {
        o.config.engine.write_timeout = millis(timeout_ms, "timeout_ms")?;
        Ok(())
    })
}

/// The most messages of one client (one connection, all its namespaces) received and not
/// handled yet by your callbacks (default 1024; must be > 0; the reference has no such
/// bound). In `POLYSIO_DISPATCH_POLL` mode every queued event counts until its callback
/// returned inside `polysio_server_poll`: at the bound the library stops reading from that
/// client, which meets TCP backpressure, until the program catches up. Nothing is dropped,
/// other clients are still served. (Pongs are not read meanwhile either: a program that
/// polls nothing for longer than ping interval + ping timeout loses the client with `"ping
/// timeout"`, after its queued events.)
#[no_mangle]
pub extern "C" fn polysio_server_options_set_max_pending_messages(
    options: *mut polysio_server_options,
    messages: usize,
) -> polysio_result {
    with_opts(options, |o| {
        o.config.engine.max_pending_messages = count(messages, "messages")?;
        Ok(())
    })
}

/// The most new sessions (handshakes) per second (default 0: no limit, as the reference). A
/// handshake over the rate is answered 503 with `Retry-After: 1`.
#[no_mangle]
pub extern "C" fn polysio_server_options_set_max_handshakes_per_second(
    options: *mut polysio_server_options,
    per_second: u32,
) -> polysio_result {
    with_opts(options, |o| {
        o.config.engine.max_handshakes_per_second = (per_second > 0).then_some(per_second);
        Ok(())
    })
}

/// How long a client has to send a complete HTTP request head, on a new connection as between
/// requests (default 60000 ms, Node's `server.headersTimeout`; must be > 0). After it the
/// connection is closed, also one that never sent anything. Applies to
/// `polysio_server_listen`'s listener.
#[no_mangle]
pub extern "C" fn polysio_server_options_set_headers_timeout(
    options: *mut polysio_server_options,
    timeout_ms: u32,
) -> polysio_result {
    with_opts(options, |o| {
        o.config.engine.listener.headers_timeout = millis(timeout_ms, "timeout_ms")?;
        Ok(())
    })
}

/// How long an idle keep-alive connection stays open after a response, waiting for another
/// request (default 5000 ms, Node's `server.keepAliveTimeout`; must be > 0). Applies to
/// `polysio_server_listen`'s listener.
#[no_mangle]
pub extern "C" fn polysio_server_options_set_keep_alive_timeout(
    options: *mut polysio_server_options,
    timeout_ms: u32,
) -> polysio_result {
    with_opts(options, |o| {
        o.config.engine.listener.keep_alive_timeout = millis(timeout_ms, "timeout_ms")?;
        Ok(())
    })
}

/// The most concurrent TCP connections of the server's listeners (default 0: no limit, as
/// Node's `server.maxConnections`). A connection past it is answered 503 and closed at once.
/// The listener also raises the process's soft open-files limit to its hard limit, as Node.
#[no_mangle]
pub extern "C" fn polysio_server_options_set_max_connections(
    options: *mut polysio_server_options,
    connections: usize,
) -> polysio_result {
    with_opts(options, |o| {
        o.config.engine.listener.max_connections = (connections > 0).then_some(connections);
        Ok(())
    })
}

/// The most binary attachments one packet may announce (default 10, socket.io-parser's
/// `maxAttachments` since 4.2.6; 0 refuses every binary packet). A packet announcing more,
/// or announcing 0 (socket.io-parser 4.2.7), is a parse error that closes the connection
/// (`"parse error"`); together a packet's attachments may not exceed maxHttpBufferSize.
#[no_mangle]
pub extern "C" fn polysio_server_options_set_max_attachments(
    options: *mut polysio_server_options,
    attachments: usize,
) -> polysio_result {
    with_opts(options, |o| {
        o.config.max_attachments = attachments;
        Ok(())
    })
}

// ---- objects ------------------------------------------------------------------------------

type Statics = Arc<RwLock<HashMap<String, (http::HeaderValue, Bytes)>>>;

pub struct ServerObj {
    io: Server,
    dispatch: Arc<Dispatch>,
    rt: RuntimeRef,
    namespaces: Mutex<HashMap<String, Arc<NsObj>>>,
    /// Connected sockets, by the address of their core `Socket`.
    sockets: Mutex<HashMap<usize, Arc<SockObj>>>,
    statics: Statics,
    /// The accept loops started by `polysio_server_listen`, awaited on close (port freed).
    listeners: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    closed: AtomicBool,
    /// The Redis adapter of `polysio_server_options_set_redis`, if any.
    redis: Option<RedisAdapter>,
}

pub struct NsObj {
    nsp: Namespace,
    id: u64,
    name: CString,
    server: Weak<ServerObj>,
    handlers: RwLock<Handlers>,
}

#[derive(Default)]
struct Handlers {
    connection: Option<(ConnFn, UserData)>,
    events: HashMap<String, (EventFn, UserData)>,
    any: Option<(EventFn, UserData)>,
    disconnect: Option<(DiscFn, UserData)>,
    /// `polysio_namespace_on_server_side`, by event.
    server_side: HashMap<String, (ServerSideFn, UserData)>,
}

pub struct SockObj {
    socket: Arc<Socket>,
    id: u64,
    sid: CString,
    ns: Arc<NsObj>,
    /// The handshake payload's handle once asked for; `gone` once the socket is unregistered.
    handshake: Mutex<(bool, Option<u64>)>,
    /// The callbacks given this socket that are running (nested ones included), and whether
    /// its disconnect callback has run: the handle is unregistered once both say so, so a
    /// callback's socket stays valid until it returns, also when it disconnected the socket.
    uses: Mutex<(usize, bool)>,
}

/// A callback given a socket is running (see `SockObj::uses`).
struct InUse<'a>(&'a SockObj);

impl Drop for InUse<'_> {
    fn drop(&mut self) {
        let last = {
            let mut u = self.0.uses.lock().unwrap_or_else(|p| p.into_inner());
            u.0 -= 1;
            u.0 == 0 && u.1
        };
        if last {
            self.0.unregister();
        }
    }
}

pub struct BroadcastObj {
    op: Mutex<BroadcastOperator>,
    server: Weak<ServerObj>,
}

pub struct RefusalObj(Mutex<Option<ConnectError>>);

fn key(s: &Arc<Socket>) -> usize {
    Arc::as_ptr(s).addr()
}

impl ServerObj {
    /// The engine that the host API hands requests to.
    pub(crate) fn engine(&self) -> &polysio::engine::EngineServer {
        self.io.engine()
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::new(POLYSIO_ERR_CLOSED, "the server is closed"))
        } else {
            Ok(())
        }
    }
}

impl SockObj {
    fn register(socket: Arc<Socket>, ns: Arc<NsObj>) -> Arc<SockObj> {
        handle::insert_with::<polysio_socket>(|id| {
            Arc::new(SockObj {
                sid: cstring_lossy(socket.id()),
                socket,
                id,
                ns,
                handshake: Mutex::new((false, None)),
                uses: Mutex::new((0, false)),
            })
        })
    }

    /// Marks a callback given this socket as running until the guard is dropped.
    fn in_use(&self) -> InUse<'_> {
        self.uses.lock().unwrap_or_else(|p| p.into_inner()).0 += 1;
        InUse(self)
    }

    /// The disconnect callback has run: unregisters the handle now, or when the last
    /// callback still using it returns.
    fn left(&self) {
        let now = {
            let mut u = self.uses.lock().unwrap_or_else(|p| p.into_inner());
            u.1 = true;
            u.0 == 0
        };
        if now {
            self.unregister();
        }
    }

    fn ptr(&self) -> *mut polysio_socket {
        handle::ptr_of(self.id)
    }

    fn unregister(&self) {
        let hs = {
            let mut h = self.handshake.lock().unwrap_or_else(|p| p.into_inner());
            h.0 = true;
            h.1.take()
        };
        handle::remove_ids([self.id].into_iter().chain(hs));
    }

    fn server(&self) -> Result<Arc<ServerObj>> {
        self.ns
            .server
            .upgrade()
            .ok_or_else(|| Error::new(POLYSIO_ERR_CLOSED, "the server was freed"))
    }

    fn handshake_handle(&self) -> Result<u64> {
        let mut h = self.handshake.lock().unwrap_or_else(|p| p.into_inner());
        if h.0 {
            return Err(Error::new(POLYSIO_ERR_CLOSED, "the socket is closed"));
        }
        if let Some(id) = h.1 {
            return Ok(id);
        }
        let id = handle::insert::<polysio_payload>(PayloadObj::new(
            vec![handshake_value(&self.socket)],
            true,
        ));
        h.1 = Some(id);
        Ok(id)
    }
}

fn handshake_value(s: &Socket) -> Value {
    let hs = s.handshake();
    let r = &hs.request;
    let mut query = polysio::Map::new();
    for (k, v) in &r.query {
        query
            .entry(k.clone())
            .or_insert_with(|| Value::from(v.as_str()));
    }
    let mut headers = polysio::Map::new();
    for (k, v) in r.headers.iter() {
        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
        match headers.get_mut(k.as_str()) {
            Some(Value::String(prev)) => {
                prev.push_str(", ");
                prev.push_str(&v);
            }
            _ => {
                headers.insert(k.as_str().to_owned(), Value::String(v));
            }
        }
    }
    map([
        ("auth", hs.auth.clone()),
        ("query", Value::Map(query)),
        ("headers", Value::Map(headers)),
        (
            "address",
            Value::from(r.address.map(|a| a.ip().to_string())),
        ),
        ("url", Value::from(r.url.as_str())),
        ("issued", Value::Int(r.issued as i64)),
        ("secure", Value::Bool(r.secure)),
    ])
}

fn reason_str(r: DisconnectReason) -> &'static CStr {
    match r {
        DisconnectReason::ServerNamespaceDisconnect => c"server namespace disconnect",
        DisconnectReason::ClientNamespaceDisconnect => c"client namespace disconnect",
        DisconnectReason::TransportClose => c"transport close",
        DisconnectReason::TransportError => c"transport error",
        DisconnectReason::PingTimeout => c"ping timeout",
        DisconnectReason::ParseError => c"parse error",
        DisconnectReason::ServerShuttingDown => c"server shutting down",
        DisconnectReason::ForcedClose => c"forced close",
    }
}

impl NsObj {
    fn ptr(&self) -> *mut polysio_namespace {
        handle::ptr_of(self.id)
    }

    /// The core's connection handler: registers the socket, hooks its events, then runs the C
    /// connection callback.
    fn connected(self: &Arc<Self>, socket: Arc<Socket>) {
        let Some(server) = self.server.upgrade() else {
            return;
        };
        let so = {
            let mut m = server.sockets.lock().unwrap_or_else(|p| p.into_inner());
            if server.closed.load(Ordering::Acquire) {
                return;
            }
            let so = SockObj::register(socket.clone(), self.clone());
            m.insert(key(&socket), so.clone());
            so
        };
        let w = Arc::downgrade(self);
        socket.on_fallback(move |s, event, args, ack| {
            if let Some(ns) = w.upgrade() {
                ns.event(s, event, args, ack.map(Responder::Server));
            }
        });
        let w = Arc::downgrade(self);
        socket.on_disconnect(move |s, reason| {
            if let Some(ns) = w.upgrade() {
                ns.disconnected(s, reason);
            }
        });
        let ns = self.clone();
        // A message of this client until its callback ran (poll mode: while queued).
        let held = socket.conn().hold();
        server.dispatch.deliver(move || {
            let _held = held;
            let h = ns.handlers.read().ok().and_then(|h| h.connection);
            if let Some((f, ud)) = h {
                let _use = so.in_use();
                // SAFETY: a C callback with the arguments its type documents.
                unsafe { f(ud.0, so.ptr()) }
            }
        });
    }

    fn event(
        self: &Arc<Self>,
        s: &Arc<Socket>,
        event: &str,
        args: Vec<Value>,
        ack: Option<Responder>,
    ) {
        let Some(server) = self.server.upgrade() else {
            return;
        };
        let Some(so) = server
            .sockets
            .lock()
            .ok()
            .and_then(|m| m.get(&key(s)).cloned())
        else {
            return;
        };
        let ns = self.clone();
        let event = event.to_owned();
        // Counted against `max_pending_messages` until the callback ran: in poll mode a program
        // that polls slowly makes the core stop reading from this client (TCP backpressure)
        // instead of this queue growing. Dropped with the job when the server is freed.
        let held = s.conn().hold();
        server.dispatch.deliver(move || {
            let _held = held;
            let h = ns
                .handlers
                .read()
                .ok()
                .and_then(|h| h.events.get(&event).copied().or(h.any));
            let Some((f, ud)) = h else {
                return;
            };
            let name = cstring_lossy(&event);
            let p = payload::borrowed(args);
            let a = ack::borrowed(ack);
            let a = a.as_ref().map_or(std::ptr::null_mut(), |a| a.ptr());
            let _use = so.in_use();
            // SAFETY: a C callback with the arguments its type documents.
            unsafe { f(ud.0, so.ptr(), name.as_ptr(), p.ptr(), a) }
        });
    }

    /// A `serverSideEmit` from another node: runs the C callback of `event`, never on the
    /// adapter's task (it may block). Without a callback by then, the ack is dropped
    /// unanswered, as socket.io does.
    fn server_side(self: &Arc<Self>, event: &str, args: Vec<Value>, ack: Option<ServerSideAck>) {
        let Some(server) = self.server.upgrade() else {
            return;
        };
        let ns = self.clone();
        let event = event.to_owned();
        server.dispatch.deliver_later(move || {
            let h = ns
                .handlers
                .read()
                .ok()
                .and_then(|h| h.server_side.get(&event).copied());
            let Some((f, ud)) = h else {
                return;
            };
            let name = cstring_lossy(&event);
            let p = payload::borrowed(args);
            let a = ack::borrowed(ack.map(Responder::ServerSide));
            let a = a.as_ref().map_or(std::ptr::null_mut(), |a| a.ptr());
            // SAFETY: a C callback with the arguments its type documents.
            unsafe { f(ud.0, ns.ptr(), name.as_ptr(), p.ptr(), a) }
        });
    }

    fn disconnected(self: &Arc<Self>, s: &Arc<Socket>, reason: DisconnectReason) {
        let Some(server) = self.server.upgrade() else {
            return;
        };
        let k = key(s);
        let Some(so) = server.sockets.lock().ok().and_then(|m| m.get(&k).cloned()) else {
            return;
        };
        let ns = self.clone();
        let srv = server.clone();
        server.dispatch.deliver(move || {
            let h = ns.handlers.read().ok().and_then(|h| h.disconnect);
            if let Some((f, ud)) = h {
                let _use = so.in_use();
                // SAFETY: a C callback with the arguments its type documents.
                unsafe { f(ud.0, so.ptr(), reason_str(reason).as_ptr()) }
            }
            if let Ok(mut m) = srv.sockets.lock() {
                m.remove(&k);
            }
            so.left();
        });
    }
}

// ---- server -------------------------------------------------------------------------------

fn fallback(statics: Statics) -> Fallback {
    Arc::new(move |req| {
        let m = statics.read().ok()?;
        let (ctype, body) = m.get(req.uri().path())?;
        let mut r = http::Response::new(http_body_util::Full::new(body.clone()));
        r.headers_mut()
            .insert(http::header::CONTENT_TYPE, ctype.clone());
        Some(r)
    })
}

/// Creates a server with `options` (NULL: defaults; the options are copied and can be freed
/// right after). It serves nothing until `polysio_server_listen`. The first server or client
/// of the process starts the library's threads (`POLYSIO_WORKER_THREADS`, default one per CPU).
#[no_mangle]
pub extern "C" fn polysio_server_new(
    options: *const polysio_server_options,
    out: *mut *mut polysio_server,
) -> polysio_result {
    ffi(|| {
        check_out(out, "out")?;
        let opts = if options.is_null() {
            ServerOpts {
                config: ServerConfig::default(),
                poll: false,
                redis: None,
                redis_format: Default::default(),
            }
        } else {
            handle::get(options)?
                .0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        };
        let mut opts = opts;
        let rt = RuntimeRef::acquire()?;
        let redis = match &opts.redis {
            Some((url, key)) => {
                let _in_runtime = rt.handle().enter();
                let mut config = RedisConfig::new(url.clone());
                config.key = key.clone();
                (config.format, config.subscription_mode) = opts.redis_format;
                let adapter = RedisAdapter::new(config)
                    .map_err(|e| Error::invalid(format!("bad Redis URL {url:?}: {e}")))?;
                opts.config.adapter = Some(adapter.factory());
                Some(adapter)
            }
            None => None,
        };
        let dispatch = Dispatch::new(opts.poll, rt.handle().clone())?;
        let io = Server::with_runtime(opts.config, rt.handle().clone());
        let statics: Statics = Arc::default();
        io.set_fallback(fallback(statics.clone()));
        let obj = Arc::new(ServerObj {
            io,
            dispatch,
            rt,
            namespaces: Mutex::new(HashMap::new()),
            sockets: Mutex::new(HashMap::new()),
            statics,
            listeners: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            redis,
        });
        write_out(out, handle::ptr_of(handle::insert::<polysio_server>(obj)));
        Ok(())
    })
}

/// Waits, at most `timeout_ms`, until the Redis adapter of `polysio_server_options_set_redis`
/// is connected and subscribed for every namespace made so far (`polysio_server_of`), that is
/// until the other nodes can reach this one: `POLYSIO_OK`, `POLYSIO_ERR_TIMEOUT` (Redis away;
/// the server keeps serving its own clients and keeps trying), or `POLYSIO_ERR_NOT_FOUND`
/// (no Redis adapter). Not needed to serve.
#[no_mangle]
pub extern "C" fn polysio_server_redis_ready(
    server: *mut polysio_server,
    timeout_ms: u32,
) -> polysio_result {
    ffi(|| {
        let s = handle::get(server)?;
        let redis = s
            .redis
            .as_ref()
            .ok_or_else(|| Error::new(POLYSIO_ERR_NOT_FOUND, "the server has no Redis adapter"))?;
        s.rt.block_on(redis.ready(Duration::from_millis(u64::from(timeout_ms))))?;
        Ok(())
    })
}

/// Starts serving on `host:port` in the background (`host` NULL: `"0.0.0.0"`; `port` 0: any
/// free port). `bound_port` (nullable) gets the port. Can be called more than once. Register
/// the namespaces' callbacks first: clients may connect as soon as this returns.
#[no_mangle]
pub extern "C" fn polysio_server_listen(
    server: *mut polysio_server,
    host: *const c_char,
    port: u16,
    bound_port: *mut u16,
) -> polysio_result {
    ffi(|| listen_with(server, host, port, bound_port, None))
}

/// Like `polysio_server_listen`, over TLS (https and wss): `cert_pem` is the PEM certificate
/// chain (the server's first), `key_pem` its PEM private key (PKCS#8, PKCS#1 or SEC1), both
/// copied. A chain or key that does not load, or that do not match, is `POLYSIO_ERR_TLS`.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn polysio_server_listen_tls(
    server: *mut polysio_server,
    host: *const c_char,
    port: u16,
    cert_pem: *const u8,
    cert_len: usize,
    key_pem: *const u8,
    key_len: usize,
    bound_port: *mut u16,
) -> polysio_result {
    ffi(|| {
        let tls = polysio::tls::ServerTls::from_pem(
            crate::error::bytes(cert_pem, cert_len, "cert_pem")?,
            crate::error::bytes(key_pem, key_len, "key_pem")?,
        )?;
        listen_with(server, host, port, bound_port, Some(tls))
    })
}

/// Binds `host:port` and serves there (over TLS with `tls`) on a task the server keeps.
fn listen_with(
    server: *mut polysio_server,
    host: *const c_char,
    port: u16,
    bound_port: *mut u16,
    tls: Option<polysio::tls::ServerTls>,
) -> Result<()> {
    let s = handle::get(server)?;
    s.check_open()?;
    let host = opt_cstr(host, "host")?.unwrap_or("0.0.0.0").to_owned();
    let io = s.io.clone();
    let (addr, task) = s.rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind((host.as_str(), port)).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            match tls {
                Some(tls) => io.serve_tls(listener, tls).await,
                None => io.serve(listener).await,
            }
        });
        Ok::<_, std::io::Error>((addr, task))
    })?;
    s.listeners
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(task);
    write_out(bound_port, addr.port());
    Ok(())
}

/// Serves `len` bytes of `data` (copied) with `content_type` at the URL path `path` (e.g. `"/"`
/// for a web page), next to Socket.IO. Other paths are answered 404.
#[no_mangle]
pub extern "C" fn polysio_server_serve_static(
    server: *mut polysio_server,
    path: *const c_char,
    content_type: *const c_char,
    data: *const u8,
    len: usize,
) -> polysio_result {
    ffi(|| {
        let s = handle::get(server)?;
        let path = cstr(path, "path")?;
        let ctype = http::HeaderValue::from_str(cstr(content_type, "content_type")?)
            .map_err(|e| Error::invalid(format!("content_type: {e}")))?;
        let body = Bytes::copy_from_slice(crate::error::bytes(data, len, "data")?);
        s.statics
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(path.to_owned(), (ctype, body));
        Ok(())
    })
}

/// The namespace `name` (`"/"`, `"/admin"`; a missing leading `/` is added), created on first
/// use. `*out` belongs to the server (valid until it is freed); the same name gives the same
/// handle.
#[no_mangle]
pub extern "C" fn polysio_server_of(
    server: *mut polysio_server,
    name: *const c_char,
    out: *mut *mut polysio_namespace,
) -> polysio_result {
    ffi(|| {
        check_out(out, "out")?;
        let s = handle::get(server)?;
        let name = cstr(name, "name")?;
        let mut m = s.namespaces.lock().unwrap_or_else(|p| p.into_inner());
        s.check_open()?;
        let nsp = s.io.of(name);
        if let Some(ns) = m.get(nsp.name()) {
            write_out(out, ns.ptr());
            return Ok(());
        }
        let ns = handle::insert_with::<polysio_namespace>(|id| {
            Arc::new(NsObj {
                name: cstring_lossy(nsp.name()),
                nsp: nsp.clone(),
                id,
                server: Arc::downgrade(&s),
                handlers: RwLock::new(Handlers::default()),
            })
        });
        let w = Arc::downgrade(&ns);
        nsp.on_connection(move |socket| {
            if let Some(ns) = w.upgrade() {
                ns.connected(socket);
            }
        });
        m.insert(nsp.name().to_owned(), ns.clone());
        write_out(out, ns.ptr());
        Ok(())
    })
}

impl ServerObj {
    /// The core's graceful close, then waits for the accept loops to end (the ports are free).
    async fn shutdown(&self) {
        self.io.close().await;
        let tasks = std::mem::take(&mut *self.listeners.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            let _ = t.await;
        }
    }

    /// Stops callbacks and unregisters everything the server owns.
    fn detach(&self) {
        self.closed.store(true, Ordering::Release);
        self.dispatch.shutdown();
        let mut ids: Vec<u64> = Vec::new();
        let sockets: Vec<Arc<SockObj>> = self
            .sockets
            .lock()
            .map(|mut m| m.drain().map(|(_, v)| v).collect())
            .unwrap_or_default();
        for so in &sockets {
            so.unregister();
        }
        if let Ok(mut m) = self.namespaces.lock() {
            ids.extend(m.drain().map(|(_, ns)| ns.id));
        }
        handle::remove_ids(ids);
    }
}

/// Graceful shutdown: stops accepting, disconnects every socket (`"server shutting down"`; the
/// disconnect callbacks run) and closes every connection; the port is free when it returns.
/// Called from a callback, it returns at once and the shutdown completes in the background.
/// The server stays allocated (calls on it return `POLYSIO_ERR_CLOSED`) until
/// `polysio_server_free`.
#[no_mangle]
pub extern "C" fn polysio_server_close(server: *mut polysio_server) -> polysio_result {
    ffi(|| {
        let s = handle::get(server)?;
        if on_library_thread() {
            let s2 = s.clone();
            drop(s.rt.handle().spawn(async move { s2.shutdown().await }));
        } else {
            s.rt.block_on(s.shutdown());
        }
        s.closed.store(true, Ordering::Release);
        Ok(())
    })
}

/// Closes the server (as `polysio_server_close`, without running callbacks) and frees it with
/// its namespaces and sockets. When it returns, no callback of this server is running (except
/// the one calling it, if called from a callback) and none will start; pending ack callbacks
/// are dropped. Freeing the last server or client stops the library's threads. A second free
/// is `POLYSIO_ERR_CLOSED`.
#[no_mangle]
pub extern "C" fn polysio_server_free(server: *mut polysio_server) -> polysio_result {
    ffi(|| {
        let s = handle::remove(server)?;
        s.detach();
        if on_library_thread() {
            let h = s.rt.handle().clone();
            drop(h.spawn(async move {
                s.shutdown().await;
                s.rt.release();
            }));
        } else {
            s.rt.block_on(s.shutdown());
            s.rt.release();
        }
        Ok(())
    })
}

/// Poll mode: runs the callbacks queued so far, on the calling thread; `ran` (nullable) gets
/// how many. Call it when the descriptor of `polysio_server_event_fd` is readable (or
/// whenever you like: it does not block). `POLYSIO_ERR_INVALID_ARGUMENT` when the server is
/// not in poll mode.
#[no_mangle]
pub extern "C" fn polysio_server_poll(
    server: *mut polysio_server,
    ran: *mut usize,
) -> polysio_result {
    ffi(|| {
        let s = handle::get(server)?;
        let n = s.dispatch.poll()?;
        write_out(ran, n);
        Ok(())
    })
}

/// Poll mode: a file descriptor that is readable while callbacks are queued (an eventfd on
/// Linux, a pipe elsewhere). Add it to your epoll / poll / libuv / GUI loop and call
/// `polysio_server_poll` when it is readable. It belongs to the server: do not read, write or
/// close it; remove it from your loop before `polysio_server_free`.
#[no_mangle]
pub extern "C" fn polysio_server_event_fd(
    server: *const polysio_server,
    fd: *mut c_int,
) -> polysio_result {
    handle::query(server, fd, |o| o.dispatch.fd())
}

// ---- namespaces ---------------------------------------------------------------------------

fn with_handlers(
    ns: *mut polysio_namespace,
    f: impl FnOnce(&mut Handlers) -> Result<()>,
) -> polysio_result {
    ffi(|| {
        let ns = handle::get(ns)?;
        let mut h = ns.handlers.write().unwrap_or_else(|p| p.into_inner());
        f(&mut h)
    })
}

/// Sets the callback run when a socket connects to the namespace (NULL removes it).
#[no_mangle]
pub extern "C" fn polysio_namespace_on_connection(
    ns: *mut polysio_namespace,
    callback: polysio_connection_cb,
    user_data: *mut c_void,
) -> polysio_result {
    with_handlers(ns, |h| {
        h.connection = callback.map(|f| (f, UserData(user_data)));
        Ok(())
    })
}

/// Sets the callback of event `event` for every socket of the namespace (NULL removes it).
///
/// ```c
/// static void on_chat(void *ud, polysio_socket *s, const char *event,
///                     const polysio_payload *args, polysio_ack *ack) {
///     polysio_broadcast *b = NULL;
///     polysio_socket_broadcast(s, &b);          // everyone but the sender
///     polysio_broadcast_emit(b, "chat", args);
///     polysio_broadcast_free(b);
///     if (ack) polysio_ack_send(ack, NULL);
/// }
/// polysio_namespace_on(nsp, "chat", on_chat, NULL);
/// ```
#[no_mangle]
pub extern "C" fn polysio_namespace_on(
    ns: *mut polysio_namespace,
    event: *const c_char,
    callback: polysio_event_cb,
    user_data: *mut c_void,
) -> polysio_result {
    with_handlers(ns, |h| {
        let event = cstr(event, "event")?.to_owned();
        match callback {
            Some(f) => {
                h.events.insert(event, (f, UserData(user_data)));
            }
            None => {
                h.events.remove(&event);
            }
        }
        Ok(())
    })
}

/// Sets the callback of every event that has no callback of its own (NULL removes it).
#[no_mangle]
pub extern "C" fn polysio_namespace_on_any(
    ns: *mut polysio_namespace,
    callback: polysio_event_cb,
    user_data: *mut c_void,
) -> polysio_result {
    with_handlers(ns, |h| {
        h.any = callback.map(|f| (f, UserData(user_data)));
        Ok(())
    })
}

/// Sets the callback run when a socket of the namespace disconnects (NULL removes it). The
/// socket handle stays valid until it returns.
#[no_mangle]
pub extern "C" fn polysio_namespace_on_disconnect(
    ns: *mut polysio_namespace,
    callback: polysio_disconnect_cb,
    user_data: *mut c_void,
) -> polysio_result {
    with_handlers(ns, |h| {
        h.disconnect = callback.map(|f| (f, UserData(user_data)));
        Ok(())
    })
}

/// Adds a connect middleware (they run in the order added, before the connection callback).
///
/// ```c
/// static void check_token(void *ud, polysio_socket *s, polysio_refusal *refusal) {
///     const polysio_payload *hs = NULL;
///     const char *token = NULL;
///     polysio_socket_handshake(s, &hs);
///     if (polysio_payload_get_string(hs, "/0/auth/token", &token, NULL) != POLYSIO_OK
///         || strcmp(token, "secret") != 0)
///         polysio_refusal_set(refusal, "not authorized", "{\"code\":401}");
/// }
/// polysio_namespace_use(nsp, check_token, NULL);
/// ```
#[no_mangle]
pub extern "C" fn polysio_namespace_use(
    ns: *mut polysio_namespace,
    callback: polysio_middleware_cb,
    user_data: *mut c_void,
) -> polysio_result {
    ffi(|| {
        let ns = handle::get(ns)?;
        let f = callback.ok_or_else(|| Error::null("callback"))?;
        let ud = UserData(user_data);
        let w = Arc::downgrade(&ns);
        ns.nsp.use_async(move |socket| {
            let (tx, rx) = tokio::sync::oneshot::channel::<Result<(), ConnectError>>();
            if let Some((ns, server)) = w
                .upgrade()
                .and_then(|ns| ns.server.upgrade().map(|s| (ns, s)))
            {
                let held = socket.conn().hold();
                server.dispatch.deliver(move || {
                    let _held = held;
                    let ud = ud;
                    let so = SockObj::register(socket, ns);
                    let refusal = Arc::new(RefusalObj(Mutex::new(None)));
                    let r = Borrowed::new::<polysio_refusal>(refusal.clone());
                    // SAFETY: a C callback with the arguments its type documents.
                    unsafe { f(ud.0, so.ptr(), r.ptr()) };
                    drop(r);
                    so.unregister();
                    let decision = refusal.0.lock().ok().and_then(|mut e| e.take());
                    let _ = tx.send(decision.map_or(Ok(()), Err));
                });
            }
            async move {
                rx.await
                    .unwrap_or_else(|_| Err(ConnectError::new("server closed")))
            }
        });
        Ok(())
    })
}

/// Refuses the connection a middleware is deciding on: the client gets a `connect_error` with
/// `message` and, when `data_json` (NUL-terminated JSON text, nullable) is given, `data`.
#[no_mangle]
pub extern "C" fn polysio_refusal_set(
    refusal: *mut polysio_refusal,
    message: *const c_char,
    data_json: *const c_char,
) -> polysio_result {
    ffi(|| {
        let r = handle::get(refusal)?;
        let mut e = ConnectError::new(cstr(message, "message")?);
        if let Some(j) = opt_cstr(data_json, "data_json")? {
            e = e.with_data(payload::value_from_json(j, &[])?);
        }
        *r.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        Ok(())
    })
}

/// The namespace's name (`"/"`, `"/admin"`), NUL-terminated, owned by the namespace.
#[no_mangle]
pub extern "C" fn polysio_namespace_name(
    ns: *const polysio_namespace,
    out: *mut *const c_char,
) -> polysio_result {
    handle::query(ns, out, |o| Ok(o.name.as_ptr()))
}

/// Emits `event` with `args` (nullable: no arguments) to every socket of the namespace.
#[no_mangle]
pub extern "C" fn polysio_namespace_emit(
    ns: *mut polysio_namespace,
    event: *const c_char,
    args: *const polysio_payload,
) -> polysio_result {
    ns_send(ns, event, args, |nsp, event, args| nsp.emit(event, args))
}

/// `send(namespace, event, args)` with the C arguments checked and converted.
fn ns_send(
    ns: *mut polysio_namespace,
    event: *const c_char,
    args: *const polysio_payload,
    send: impl FnOnce(&Namespace, &str, Vec<Value>) -> polysio::Result<()>,
) -> polysio_result {
    ffi(|| {
        let ns = handle::get(ns)?;
        let event = cstr(event, "event")?;
        send(&ns.nsp, event, payload::args_of(args)?)?;
        Ok(())
    })
}

/// Sends `event` with `args` (nullable: no arguments) to the other nodes of the cluster
/// (Node's `serverSideEmit`, no ack), not to clients; a no-op without an adapter.
#[no_mangle]
pub extern "C" fn polysio_namespace_server_side_emit(
    ns: *mut polysio_namespace,
    event: *const c_char,
    args: *const polysio_payload,
) -> polysio_result {
    ns_send(ns, event, args, |nsp, event, args| {
        nsp.server_side_emit(event, args)
    })
}

/// Like `polysio_namespace_server_side_emit`, waiting for the answers (Node's
/// `serverSideEmitWithAck`): `callback` (required) gets `POLYSIO_OK` and one argument per other
/// node, its answer (what its `polysio_server_side_cb` sent with `polysio_ack_send`, or an npm
/// node's `cb(value)`), once every other node answered; or `POLYSIO_ERR_TIMEOUT` when they have
/// not all answered within `timeout_ms` (0: 5000 ms), or another error (Redis away) with
/// `polysio_last_error` telling why. Without an adapter, `POLYSIO_OK` with no arguments. Returns
/// at once.
///
/// ```c
/// static void on_pongs(void *ud, polysio_result r, const polysio_payload *answers) {
///     size_t n = 0;
///     if (r == POLYSIO_OK) polysio_payload_count(answers, &n);   // the other nodes
/// }
/// polysio_namespace_server_side_emit_with_ack(nsp, "ping-node", NULL, 5000, on_pongs, NULL);
/// ```
#[no_mangle]
pub extern "C" fn polysio_namespace_server_side_emit_with_ack(
    ns: *mut polysio_namespace,
    event: *const c_char,
    args: *const polysio_payload,
    timeout_ms: u32,
    callback: polysio_ack_cb,
    user_data: *mut c_void,
) -> polysio_result {
    ffi(|| {
        let ns = handle::get(ns)?;
        let (event, args, server) = ack_emit(event, args, callback, &ns.server)?;
        let timeout = Duration::from_millis(if timeout_ms == 0 {
            5000
        } else {
            timeout_ms.into()
        });
        let call = AckCall::new(callback, user_data, &server.dispatch);
        let nsp = ns.nsp.clone();
        drop(server.rt.handle().spawn(async move {
            let r = nsp.server_side_emit_with_ack(&event, args, timeout).await;
            call.complete(r);
        }));
        Ok(())
    })
}

/// Sets the callback of `event` sent by the other nodes of the cluster with
/// `serverSideEmit` / `serverSideEmitWithAck` (Node's `io.on(event, ...)` for server-side
/// events; NULL removes it). It runs as the other callbacks do (library threads, or
/// `polysio_server_poll`), one call per message. Without a callback for the event, a message is
/// ignored and the sender's `serverSideEmitWithAck` does not count an answer from this node.
///
/// ```c
/// static void on_ping(void *ud, polysio_namespace *ns, const char *event,
///                     const polysio_payload *args, polysio_ack *ack) {
///     polysio_payload *p = NULL;
///     polysio_payload_new(&p);
///     polysio_payload_push_string(p, "pong", 4);
///     if (ack) polysio_ack_send(ack, p);                 // the sender waits for it
///     polysio_payload_free(p);
/// }
/// polysio_namespace_on_server_side(nsp, "ping-node", on_ping, NULL);
/// ```
#[no_mangle]
pub extern "C" fn polysio_namespace_on_server_side(
    ns: *mut polysio_namespace,
    event: *const c_char,
    callback: polysio_server_side_cb,
    user_data: *mut c_void,
) -> polysio_result {
    ffi(|| {
        let ns = handle::get(ns)?;
        let event = cstr(event, "event")?.to_owned();
        let mut h = ns.handlers.write().unwrap_or_else(|p| p.into_inner());
        let Some(f) = callback else {
            h.server_side.remove(&event);
            return Ok(());
        };
        let first = h
            .server_side
            .insert(event.clone(), (f, UserData(user_data)))
            .is_none();
        drop(h);
        if first {
            let w = Arc::downgrade(&ns);
            let name = event.clone();
            ns.nsp.on_server_side_emit(&event, move |args, ack| {
                if let Some(ns) = w.upgrade() {
                    ns.server_side(&name, args, ack);
                }
            });
        }
        Ok(())
    })
}

/// The number of nodes of the cluster, this one included, into `out` (Node's `serverCount`;
/// 1 without an adapter). Blocks until the answer (at most the adapter's request timeout,
/// then `POLYSIO_ERR_TIMEOUT`).
#[no_mangle]
pub extern "C" fn polysio_namespace_server_count(
    ns: *mut polysio_namespace,
    out: *mut usize,
) -> polysio_result {
    ffi(|| {
        check_out(out, "out")?;
        let ns = handle::get(ns)?;
        let server = ns
            .server
            .upgrade()
            .ok_or_else(|| Error::new(POLYSIO_ERR_CLOSED, "the server was freed"))?;
        let n = server.rt.block_on(ns.nsp.server_count())?;
        write_out(out, n);
        Ok(())
    })
}

/// The connected socket whose id is `id` (`POLYSIO_ERR_NOT_FOUND` if none). Borrowed, as in
/// callbacks.
#[no_mangle]
pub extern "C" fn polysio_namespace_socket(
    ns: *mut polysio_namespace,
    id: *const c_char,
    out: *mut *mut polysio_socket,
) -> polysio_result {
    ffi(|| {
        check_out(out, "out")?;
        let ns = handle::get(ns)?;
        let id = cstr(id, "id")?;
        let server = ns
            .server
            .upgrade()
            .ok_or_else(|| Error::new(POLYSIO_ERR_CLOSED, "the server was freed"))?;
        let so = ns
            .nsp
            .socket(id)
            .and_then(|s| {
                server
                    .sockets
                    .lock()
                    .ok()
                    .and_then(|m| m.get(&key(&s)).cloned())
            })
            .ok_or_else(|| Error::new(POLYSIO_ERR_NOT_FOUND, format!("no socket {id:?} here")))?;
        write_out(out, so.ptr());
        Ok(())
    })
}

fn new_broadcast(op: BroadcastOperator, server: Weak<ServerObj>) -> *mut polysio_broadcast {
    handle::ptr_of(handle::insert::<polysio_broadcast>(Arc::new(
        BroadcastObj {
            op: Mutex::new(op),
            server,
        },
    )))
}

/// A broadcast to every socket of the namespace; narrow it with `polysio_broadcast_to` /
/// `_except`. Free it with `polysio_broadcast_free`.
#[no_mangle]
pub extern "C" fn polysio_namespace_broadcast(
    ns: *mut polysio_namespace,
    out: *mut *mut polysio_broadcast,
) -> polysio_result {
    ffi(|| {
        check_out(out, "out")?;
        let ns = handle::get(ns)?;
        write_out(out, new_broadcast(ns.nsp.broadcast(), ns.server.clone()));
        Ok(())
    })
}

// ---- sockets ------------------------------------------------------------------------------

/// The socket's id (NUL-terminated, owned by the socket). It is also the name of a room only
/// this socket is in.
#[no_mangle]
pub extern "C" fn polysio_socket_id(
    socket: *const polysio_socket,
    out: *mut *const c_char,
) -> polysio_result {
    handle::query(socket, out, |o| Ok(o.sid.as_ptr()))
}

/// The socket's namespace.
#[no_mangle]
pub extern "C" fn polysio_socket_namespace(
    socket: *const polysio_socket,
    out: *mut *mut polysio_namespace,
) -> polysio_result {
    handle::query(socket, out, |o| Ok(o.ns.ptr()))
}

/// The connection request, as a payload (borrowed, valid as long as the socket) with one
/// argument: `{"auth": {...}, "query": {...}, "headers": {...}, "address": "127.0.0.1",
/// "url": "/socket.io/?EIO=4...", "issued": <ms since epoch>, "secure": false}`. Header names
/// are lowercase; repeated headers are joined with `", "`.
///
/// ```c
/// const polysio_payload *hs = NULL;
/// const char *token = NULL, *agent = NULL;
/// polysio_socket_handshake(socket, &hs);
/// polysio_payload_get_string(hs, "/0/auth/token", &token, NULL);
/// polysio_payload_get_string(hs, "/0/headers/user-agent", &agent, NULL);
/// ```
#[no_mangle]
pub extern "C" fn polysio_socket_handshake(
    socket: *const polysio_socket,
    out: *mut *const polysio_payload,
) -> polysio_result {
    ffi(|| {
        check_out(out, "out")?;
        let so = handle::get(socket)?;
        let id = so.handshake_handle()?;
        write_out(out, handle::ptr_of(id));
        Ok(())
    })
}

/// Whether the socket is connected (false inside a middleware and once it disconnected).
#[no_mangle]
pub extern "C" fn polysio_socket_connected(
    socket: *const polysio_socket,
    out: *mut bool,
) -> polysio_result {
    handle::query(socket, out, |o| Ok(o.socket.connected()))
}

/// Whether the socket was restored by connection state recovery (same id and rooms as before).
#[no_mangle]
pub extern "C" fn polysio_socket_recovered(
    socket: *const polysio_socket,
    out: *mut bool,
) -> polysio_result {
    handle::query(socket, out, |o| Ok(o.socket.recovered()))
}

/// Emits `event` with `args` (nullable: no arguments) to this socket. Once the socket has
/// left (or before it is connected, in a middleware), a no-op that returns `POLYSIO_OK`, as
/// socket.io (the packet is dropped): `polysio_socket_connected` tells a caller who needs to
/// know. `POLYSIO_ERR_CLOSED` only for a handle that is no longer valid (after its
/// disconnect callback returned, as any released handle); `POLYSIO_ERR_INVALID_ARGUMENT` for
/// a reserved name (`connect`, `disconnect`...), NULL and invalid UTF-8 as everywhere.
#[no_mangle]
pub extern "C" fn polysio_socket_emit(
    socket: *mut polysio_socket,
    event: *const c_char,
    args: *const polysio_payload,
) -> polysio_result {
    ffi(|| {
        let so = handle::get(socket)?;
        let event = cstr(event, "event")?;
        match so.socket.emit(event, payload::args_of(args)?) {
            // The connection closed and the socket has not been told yet (its disconnect is
            // on its way): it has left, so a no-op like any emit after that.
            Ok(()) | Err(polysio::Error::Closed) => Ok(()),
            Err(e) => Err(e.into()),
        }
    })
}

/// Emits `event` asking the client for an acknowledgement; `callback` gets the answer, or
/// `POLYSIO_ERR_TIMEOUT` after `timeout_ms` (0: no timeout), or `POLYSIO_ERR_CLOSED` when the
/// socket disconnects first. When this returns an error, `callback` is never called: unlike
/// `polysio_socket_emit`, a socket that has left answers `POLYSIO_ERR_CLOSED` here, since no
/// answer can come.
///
/// ```c
/// static void on_answer(void *ud, polysio_result r, const polysio_payload *args) {
///     int64_t n;
///     if (r == POLYSIO_OK && polysio_payload_get_int(args, "/0", &n) == POLYSIO_OK) ...
/// }
/// polysio_socket_emit_with_ack(socket, "question", args, 5000, on_answer, NULL);
/// ```
#[no_mangle]
pub extern "C" fn polysio_socket_emit_with_ack(
    socket: *mut polysio_socket,
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
        let server = so.server()?;
        let slot = Arc::new(Mutex::new(Some(AckCall::new(
            callback,
            user_data,
            &server.dispatch,
        ))));
        let s2 = slot.clone();
        let timeout = (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms.into()));
        let r = so.socket.emit_with_ack_cb(event, args, timeout, move |r| {
            if let Some(c) = s2.lock().ok().and_then(|mut c| c.take()) {
                c.complete(r);
            }
        });
        if let Err(e) = r {
            if let Some(c) = slot.lock().ok().and_then(|mut c| c.take()) {
                c.disarm();
            }
            return Err(e.into());
        }
        Ok(())
    })
}

/// Joins room `room`.
#[no_mangle]
pub extern "C" fn polysio_socket_join(
    socket: *mut polysio_socket,
    room: *const c_char,
) -> polysio_result {
    ffi(|| {
        let so = handle::get(socket)?;
        so.socket.join(&[cstr(room, "room")?]);
        Ok(())
    })
}

/// Leaves room `room`.
#[no_mangle]
pub extern "C" fn polysio_socket_leave(
    socket: *mut polysio_socket,
    room: *const c_char,
) -> polysio_result {
    ffi(|| {
        let so = handle::get(socket)?;
        so.socket.leave(cstr(room, "room")?);
        Ok(())
    })
}

/// The rooms the socket is in (its own id included), as a new payload with one string
/// argument per room; free it with `polysio_payload_free`.
#[no_mangle]
pub extern "C" fn polysio_socket_rooms(
    socket: *const polysio_socket,
    out: *mut *mut polysio_payload,
) -> polysio_result {
    ffi(|| {
        check_out(out, "out")?;
        let so = handle::get(socket)?;
        let mut rooms: Vec<String> = so.socket.rooms().iter().map(|r| r.to_string()).collect();
        rooms.sort();
        write_out(
            out,
            payload::owned(rooms.into_iter().map(Value::String).collect()),
        );
        Ok(())
    })
}

/// A broadcast to every socket of the namespace except this one (`socket.broadcast` in
/// socket.io); narrow it with `polysio_broadcast_to`. Free it with `polysio_broadcast_free`.
#[no_mangle]
pub extern "C" fn polysio_socket_broadcast(
    socket: *const polysio_socket,
    out: *mut *mut polysio_broadcast,
) -> polysio_result {
    ffi(|| {
        check_out(out, "out")?;
        let so = handle::get(socket)?;
        write_out(
            out,
            new_broadcast(so.socket.broadcast(), so.ns.server.clone()),
        );
        Ok(())
    })
}

/// Disconnects the socket (`"server namespace disconnect"`); with `close`, closes the whole
/// connection (every namespace of that client). The disconnect callback runs (from a callback:
/// before this returns). Disconnecting twice does nothing.
#[no_mangle]
pub extern "C" fn polysio_socket_disconnect(
    socket: *mut polysio_socket,
    close: bool,
) -> polysio_result {
    ffi(|| {
        handle::get(socket)?.socket.disconnect(close);
        Ok(())
    })
}

// ---- broadcasts ---------------------------------------------------------------------------

fn with_op(
    b: *mut polysio_broadcast,
    f: impl FnOnce(BroadcastOperator) -> Result<BroadcastOperator>,
) -> polysio_result {
    ffi(|| {
        let b = handle::get(b)?;
        let mut g = b.op.lock().unwrap_or_else(|p| p.into_inner());
        *g = f(g.clone())?;
        Ok(())
    })
}

fn op_of(b: *mut polysio_broadcast) -> Result<(BroadcastOperator, Weak<ServerObj>)> {
    let b = handle::get(b)?;
    let op = b.op.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok((op, b.server.clone()))
}

/// Narrows the broadcast to sockets in room `room` (call again to add rooms: a socket in any
/// of them is selected).
#[no_mangle]
pub extern "C" fn polysio_broadcast_to(
    b: *mut polysio_broadcast,
    room: *const c_char,
) -> polysio_result {
    with_op(b, |op| Ok(op.to(cstr(room, "room")?)))
}

/// Excludes sockets in room `room`.
#[no_mangle]
pub extern "C" fn polysio_broadcast_except(
    b: *mut polysio_broadcast,
    room: *const c_char,
) -> polysio_result {
    with_op(b, |op| Ok(op.except(cstr(room, "room")?)))
}

/// Marks the broadcast volatile: it may be dropped, and is not kept for state recovery.
#[no_mangle]
pub extern "C" fn polysio_broadcast_volatile(b: *mut polysio_broadcast) -> polysio_result {
    with_op(b, |op| Ok(op.volatile()))
}

/// Restricts the broadcast to this server node (no adapter fan-out).
#[no_mangle]
pub extern "C" fn polysio_broadcast_local(b: *mut polysio_broadcast) -> polysio_result {
    with_op(b, |op| Ok(op.local()))
}

/// Emits `event` with `args` (nullable) to the selected sockets, encoded once.
#[no_mangle]
pub extern "C" fn polysio_broadcast_emit(
    b: *mut polysio_broadcast,
    event: *const c_char,
    args: *const polysio_payload,
) -> polysio_result {
    ffi(|| {
        let (op, _) = op_of(b)?;
        op.emit(cstr(event, "event")?, payload::args_of(args)?)?;
        Ok(())
    })
}

/// Emits `event` asking every selected socket for an acknowledgement; `callback` gets one
/// argument per socket (the array of its ack arguments) once all answered, or
/// `POLYSIO_ERR_TIMEOUT` after `timeout_ms` (0: no timeout).
#[no_mangle]
pub extern "C" fn polysio_broadcast_emit_with_ack(
    b: *mut polysio_broadcast,
    event: *const c_char,
    args: *const polysio_payload,
    timeout_ms: u32,
    callback: polysio_ack_cb,
    user_data: *mut c_void,
) -> polysio_result {
    ffi(|| {
        let (mut op, server) = op_of(b)?;
        let (event, args, server) = ack_emit(event, args, callback, &server)?;
        if timeout_ms > 0 {
            op = op.timeout(Duration::from_millis(timeout_ms.into()));
        }
        let call = AckCall::new(callback, user_data, &server.dispatch);
        drop(server.rt.handle().spawn(async move {
            let r = op.emit_with_ack(&event, args).await;
            call.complete(r.map(|all| all.into_iter().map(Value::Array).collect()));
        }));
        Ok(())
    })
}

/// The checked arguments of an emit with acknowledgement (a non-reserved event, a callback) and
/// the open server it goes through.
fn ack_emit(
    event: *const c_char,
    args: *const polysio_payload,
    callback: polysio_ack_cb,
    server: &Weak<ServerObj>,
) -> Result<(String, Vec<Value>, Arc<ServerObj>)> {
    let event = cstr(event, "event")?.to_owned();
    if polysio::parser::packet::RESERVED_EVENTS.contains(&event.as_str()) {
        return Err(Error::invalid(format!(
            "\"{event}\" is a reserved event name"
        )));
    }
    let args = payload::args_of(args)?;
    callback.ok_or_else(|| Error::null("callback"))?;
    let server = server
        .upgrade()
        .ok_or_else(|| Error::new(POLYSIO_ERR_CLOSED, "the server was freed"))?;
    server.check_open()?;
    Ok((event, args, server))
}

/// Makes the selected sockets join `room`.
#[no_mangle]
pub extern "C" fn polysio_broadcast_join(
    b: *mut polysio_broadcast,
    room: *const c_char,
) -> polysio_result {
    ffi(|| {
        let (op, _) = op_of(b)?;
        op.sockets_join(&[cstr(room, "room")?]);
        Ok(())
    })
}

/// Makes the selected sockets leave `room`.
#[no_mangle]
pub extern "C" fn polysio_broadcast_leave(
    b: *mut polysio_broadcast,
    room: *const c_char,
) -> polysio_result {
    ffi(|| {
        let (op, _) = op_of(b)?;
        op.sockets_leave(&[cstr(room, "room")?]);
        Ok(())
    })
}

/// Disconnects the selected sockets (and, with `close`, their whole connections).
#[no_mangle]
pub extern "C" fn polysio_broadcast_disconnect(
    b: *mut polysio_broadcast,
    close: bool,
) -> polysio_result {
    ffi(|| {
        let (op, _) = op_of(b)?;
        op.disconnect_sockets(close);
        Ok(())
    })
}

/// The ids of the selected sockets, as a new payload with one string argument per socket;
/// free it with `polysio_payload_free`.
#[no_mangle]
pub extern "C" fn polysio_broadcast_socket_ids(
    b: *mut polysio_broadcast,
    out: *mut *mut polysio_payload,
) -> polysio_result {
    ffi(|| {
        check_out(out, "out")?;
        let (op, server) = op_of(b)?;
        let server = server
            .upgrade()
            .ok_or_else(|| Error::new(POLYSIO_ERR_CLOSED, "the server was freed"))?;
        let mut ids: Vec<String> = server
            .rt
            .block_on(op.fetch_sockets())?
            .into_iter()
            .map(|s| s.id.to_string())
            .collect();
        ids.sort();
        write_out(
            out,
            payload::owned(ids.into_iter().map(Value::String).collect()),
        );
        Ok(())
    })
}

/// Frees a broadcast.
#[no_mangle]
pub extern "C" fn polysio_broadcast_free(b: *mut polysio_broadcast) -> polysio_result {
    ffi(|| handle::remove(b).map(drop))
}
