//! The Redis emitter: a C program that is not a Socket.IO server (a worker, a cron job) sends to
//! the clients of a cluster's nodes, as Node's `@socket.io/redis-emitter` (classic format) or
//! the streams emitter.

use std::ffi::c_char;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use polysio::adapter::redis::{Emitter, EmitterConfig, EmitterFormat, EmitterOperator};

use crate::error::{
    check_out, cstr, ffi, opt_cstr, polysio_result, polysio_result::*, write_out, Error, Result,
};
use crate::handle::{self, kind};
use crate::payload::{self, polysio_payload};
use crate::runtime::RuntimeRef;
use crate::server::{check_redis_url, POLYSIO_REDIS_CLASSIC, POLYSIO_REDIS_SHARDED};

/// The streams format (`@socket.io/redis-streams-adapter` 0.3: XADD into one stream), for
/// `polysio_emitter_new` only (a polysio server does not speak it yet).
pub const POLYSIO_REDIS_STREAMS: u32 = 2;

/// An emitter over Redis, made by `polysio_emitter_new` (or `polysio_emitter_of`): a namespace
/// and a selection of its sockets (`polysio_emitter_to`, `_except`, `_volatile`) on every node
/// of a cluster, and the operations on them. Free it with `polysio_emitter_free`.
#[allow(non_camel_case_types)]
pub struct polysio_emitter {
    _private: [u8; 0],
}
kind!(polysio_emitter, EmitterObj, Emitter, "polysio_emitter");

pub(crate) struct EmitterObj {
    /// Shared by the handles of one `polysio_emitter_new` (their one connection); the last
    /// dropped shuts the runtime down when nothing else holds it.
    rt: Arc<RuntimeRef>,
    emitter: Emitter,
    /// The selection so far (every socket of the namespace at first).
    op: Mutex<EmitterOperator>,
    command_timeout: Duration,
}

impl EmitterObj {
    fn new(rt: Arc<RuntimeRef>, emitter: Emitter, command_timeout: Duration) -> Arc<EmitterObj> {
        let op = Mutex::new(emitter.broadcast());
        Arc::new(EmitterObj {
            rt,
            emitter,
            op,
            command_timeout,
        })
    }

    fn op(&self) -> EmitterOperator {
        self.op.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn narrow(&self, f: impl FnOnce(EmitterOperator) -> EmitterOperator) {
        let mut g = self.op.lock().unwrap_or_else(|p| p.into_inner());
        *g = f(g.clone());
    }

    /// Waits until what was queued has been written (or `timeout` passed).
    fn flush(&self, timeout: Duration) -> Result<()> {
        let emitter = self.emitter.clone();
        self.rt.block_on(async move {
            match tokio::time::timeout(timeout, emitter.flush()).await {
                // Messages Redis did not take: an I/O failure for C, not a bad argument.
                Ok(Err(polysio::Error::Adapter(m))) => Err(Error::new(POLYSIO_ERR_IO, m)),
                Ok(r) => r.map_err(Error::from),
                Err(_) => Err(Error::new(
                    POLYSIO_ERR_TIMEOUT,
                    format!(
                        "redis emitter: not flushed within {} ms",
                        timeout.as_millis()
                    ),
                )),
            }
        })
    }
}

/// Makes an emitter for namespace `/` of the cluster on the Redis server at `url`
/// (`redis://[user:password@]host[:port][/db]` or `redis+unix:///path/to/socket[?db=N]`;
/// `rediss://`, TLS, is not supported yet). `format` is the one the cluster's nodes read:
/// `POLYSIO_REDIS_CLASSIC` (npm `@socket.io/redis-emitter` 5.1 for `@socket.io/redis-adapter`'s
/// `createAdapter`, and polysio servers' default) or `POLYSIO_REDIS_STREAMS`
/// (`@socket.io/redis-streams-adapter` 0.3); `POLYSIO_REDIS_SHARDED` has no emitter (as in
/// Node) and is `POLYSIO_ERR_INVALID_ARGUMENT`. `key` (nullable, default `"socket.io"`) is the
/// classic format's channel prefix (Node's `key`) or the streams format's stream name (Node's
/// `streamName`).
///
/// Every operation only queues its message and returns at once; one task writes the queue to
/// Redis in order, connecting on the first write and again after Redis went away. A message
/// Redis has not taken within 2 s is dropped; at most 10,000 wait, past that operations fail
/// with `POLYSIO_ERR_BUFFER_FULL`. Both losses are counted (`polysio_emitter_stats`).
/// No acknowledgements (Node's emitter has none either). Reserved event names (`connect`,
/// `disconnect`, ...) are `POLYSIO_ERR_INVALID_ARGUMENT`.
///
/// ```c
/// polysio_emitter *e = NULL;
/// polysio_emitter_new("redis://127.0.0.1:6379", POLYSIO_REDIS_CLASSIC, NULL, &e);
/// polysio_payload *args = NULL;
/// const char *json = "[\"nightly report ready\"]";
/// polysio_payload_from_json(json, strlen(json), NULL, 0, &args);
/// polysio_emitter_to(e, "admins");
/// polysio_emitter_emit(e, "news", args);     // to room "admins" of "/" on every node
/// polysio_emitter_flush(e, 5000);            // written to Redis
/// polysio_payload_free(args);
/// polysio_emitter_free(e);
/// ```
#[no_mangle]
pub extern "C" fn polysio_emitter_new(
    url: *const c_char,
    format: u32,
    key: *const c_char,
    out: *mut *mut polysio_emitter,
) -> polysio_result {
    ffi(|| {
        check_out(out, "out")?;
        let url = cstr(url, "url")?;
        check_redis_url(url)?;
        let key = opt_cstr(key, "key")?.unwrap_or("socket.io");
        if key.is_empty() {
            return Err(Error::invalid(
                "the Redis key (channel prefix or stream) is empty",
            ));
        }
        let mut config = match format {
            POLYSIO_REDIS_CLASSIC => EmitterConfig::new(url),
            POLYSIO_REDIS_STREAMS => EmitterConfig::streams(url),
            POLYSIO_REDIS_SHARDED => {
                return Err(Error::invalid(
                    "the sharded format has no emitter (as in Node): use a server of the cluster",
                ))
            }
            other => {
                return Err(Error::invalid(format!(
                    "Redis emitter format {other}: expected POLYSIO_REDIS_CLASSIC or POLYSIO_REDIS_STREAMS"
                )))
            }
        };
        match config.format {
            EmitterFormat::Streams => config.stream_name = key.to_owned(),
            _ => config.key = key.to_owned(),
        }
        let command_timeout = config.command_timeout;
        let rt = Arc::new(RuntimeRef::acquire()?);
        let emitter = {
            let _guard = rt.handle().enter();
            Emitter::new(config)?
        };
        let obj = EmitterObj::new(rt, emitter, command_timeout);
        write_out(out, handle::ptr_of(handle::insert::<polysio_emitter>(obj)));
        Ok(())
    })
}

/// A new emitter for namespace `nsp` (a leading `/` is added when missing) on the same Redis
/// connection as `emitter`, selecting every socket of it. Free it with `polysio_emitter_free`.
#[no_mangle]
pub extern "C" fn polysio_emitter_of(
    emitter: *const polysio_emitter,
    nsp: *const c_char,
    out: *mut *mut polysio_emitter,
) -> polysio_result {
    ffi(|| {
        check_out(out, "out")?;
        let e = handle::get(emitter)?;
        let of = e.emitter.of(cstr(nsp, "nsp")?);
        let obj = EmitterObj::new(e.rt.clone(), of, e.command_timeout);
        write_out(out, handle::ptr_of(handle::insert::<polysio_emitter>(obj)));
        Ok(())
    })
}

/// Narrows the emitter's selection to sockets in room `room` (call again to add rooms: a
/// socket in any of them is selected). The selection stays for the next operations.
#[no_mangle]
pub extern "C" fn polysio_emitter_to(
    emitter: *mut polysio_emitter,
    room: *const c_char,
) -> polysio_result {
    ffi(|| {
        let room = cstr(room, "room")?.to_owned();
        handle::get(emitter)?.narrow(|op| op.to(room));
        Ok(())
    })
}

/// Excludes sockets in room `room` from the emitter's selection.
#[no_mangle]
pub extern "C" fn polysio_emitter_except(
    emitter: *mut polysio_emitter,
    room: *const c_char,
) -> polysio_result {
    ffi(|| {
        let room = cstr(room, "room")?.to_owned();
        handle::get(emitter)?.narrow(|op| op.except(room));
        Ok(())
    })
}

/// Marks the emitter's next emits volatile (Node's `volatile` flag: not sent to a client that
/// is not ready to take it).
#[no_mangle]
pub extern "C" fn polysio_emitter_volatile(emitter: *mut polysio_emitter) -> polysio_result {
    ffi(|| {
        handle::get(emitter)?.narrow(EmitterOperator::volatile);
        Ok(())
    })
}

/// Runs `f` on the emitter's selection (an entry point's body).
fn with_selection(
    emitter: *mut polysio_emitter,
    f: impl FnOnce(EmitterOperator) -> Result<()>,
) -> polysio_result {
    ffi(|| f(handle::get(emitter)?.op()))
}

/// Emits `event` with `args` (nullable; binary allowed) to the selected sockets of every node.
#[no_mangle]
pub extern "C" fn polysio_emitter_emit(
    emitter: *mut polysio_emitter,
    event: *const c_char,
    args: *const polysio_payload,
) -> polysio_result {
    with_selection(emitter, |op| {
        op.emit(cstr(event, "event")?, payload::args_of(args)?)?;
        Ok(())
    })
}

/// Makes the selected sockets of every node join `room`.
#[no_mangle]
pub extern "C" fn polysio_emitter_join(
    emitter: *mut polysio_emitter,
    room: *const c_char,
) -> polysio_result {
    with_selection(emitter, |op| Ok(op.sockets_join(&[cstr(room, "room")?])?))
}

/// Makes the selected sockets of every node leave `room`.
#[no_mangle]
pub extern "C" fn polysio_emitter_leave(
    emitter: *mut polysio_emitter,
    room: *const c_char,
) -> polysio_result {
    with_selection(emitter, |op| Ok(op.sockets_leave(&[cstr(room, "room")?])?))
}

/// Disconnects the selected sockets of every node (and, with `close`, their whole
/// connections).
#[no_mangle]
pub extern "C" fn polysio_emitter_disconnect(
    emitter: *mut polysio_emitter,
    close: bool,
) -> polysio_result {
    with_selection(emitter, |op| Ok(op.disconnect_sockets(close)?))
}

/// Emits `event` with `args` (nullable) to the server-side listeners of every node of the
/// emitter's namespace (Node's `io.on(event)`, polysio's `polysio_namespace_on_server_side`);
/// the selection is ignored. No acknowledgement.
#[no_mangle]
pub extern "C" fn polysio_emitter_server_side_emit(
    emitter: *mut polysio_emitter,
    event: *const c_char,
    args: *const polysio_payload,
) -> polysio_result {
    ffi(|| {
        let e = handle::get(emitter)?;
        e.emitter
            .server_side_emit(cstr(event, "event")?, payload::args_of(args)?)?;
        Ok(())
    })
}

/// Waits, at most `timeout_ms` (0: 2 s per queued batch, the write timeout), until every
/// message queued before the call through this emitter's connection has been written to Redis.
/// `POLYSIO_ERR_TIMEOUT` when that took longer; an error (`POLYSIO_ERR_IO`,
/// `POLYSIO_ERR_TIMEOUT`) when a write failed since the previous flush (Redis away or slow: the
/// messages were dropped, see `polysio_emitter_stats`).
#[no_mangle]
pub extern "C" fn polysio_emitter_flush(
    emitter: *mut polysio_emitter,
    timeout_ms: u32,
) -> polysio_result {
    ffi(|| {
        let e = handle::get(emitter)?;
        let timeout = match timeout_ms {
            0 => e.command_timeout * 2,
            ms => Duration::from_millis(ms.into()),
        };
        e.flush(timeout)
    })
}

/// The emitter's counters (of its connection, shared with `polysio_emitter_of`'s): messages
/// written to Redis, and messages dropped (queue full, or Redis did not take them in time).
/// Either pointer may be NULL.
#[no_mangle]
pub extern "C" fn polysio_emitter_stats(
    emitter: *const polysio_emitter,
    published: *mut u64,
    dropped: *mut u64,
) -> polysio_result {
    ffi(|| {
        let s = handle::get(emitter)?.emitter.stats();
        if !published.is_null() {
            write_out(published, s.published);
        }
        if !dropped.is_null() {
            write_out(dropped, s.dropped);
        }
        Ok(())
    })
}

/// Frees an emitter. Messages it queued are written first (as `polysio_emitter_flush`, at most
/// 2 s past the write timeout), so a program that frees its emitter before exiting loses
/// nothing Redis takes. The emitter is freed in every case; the result is the flush's:
/// `POLYSIO_OK`, or the error of `polysio_emitter_flush` when messages were dropped.
#[no_mangle]
pub extern "C" fn polysio_emitter_free(emitter: *mut polysio_emitter) -> polysio_result {
    ffi(|| {
        let e = handle::remove(emitter)?;
        e.flush(e.command_timeout + Duration::from_secs(2))
    })
}
