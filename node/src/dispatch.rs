//! The one road from the runtime's threads to JavaScript.
//!
//! Everything the core reports (connections, events, disconnections, ack results, requests for
//! a decision) becomes an [`Event`] pushed on a queue. The first push after the queue was
//! drained wakes the JavaScript thread through one threadsafe function; the JavaScript side then
//! receives every queued event in one call (a batch), so a burst costs one crossing, not one per
//! event. The next batch waits until JavaScript's event loop has had a turn
//! ([`NativeDispatcher::resume`]). Events are converted to JavaScript values on the JavaScript thread only.
//!
//! Backpressure: an event from a client to a server socket carries a [`Held`] (its session's
//! count of messages handed to JavaScript, `EngineSocket::hold`), kept with the queue and then
//! with the batch until the JavaScript call that handles the batch has returned. While a session
//! has `maxPendingMessages` held, the core reads nothing more from that client (TCP
//! backpressure), so the queue holds at most that many events per client; nothing is dropped.
//! The threadsafe function's own queue is unbounded (`MaxQueueSize` 0) but never holds more
//! than two calls: a call is only made by the first push after a batch was taken.
//!
//! No JavaScript exception reaches Node-API from here: the batch function catches everything
//! (lib/native.js), and the call is made with a return-value callback, which receives what
//! would escape anyway (napi-rs then hands it to us instead of making it a fatal exception).
//!
//! The threadsafe function is weak: it keeps Node's event loop alive only while something holds
//! it ([`NativeDispatcher::hold`], counted), i.e. while a server listens or a client is active.
//! `close()` / `disconnect()` release the hold, so nothing keeps the process alive afterwards.

use std::io::Write;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use napi::bindgen_prelude::{Function, ToNapiValue, Unknown};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::JsValue;
use napi::{sys, Env, Status};
use napi_derive::napi;
use polysio::adapter::{Room, SocketInfo};
use polysio::engine::Held;
use polysio::server::{AckSender, ConnectError, Socket};
use polysio::{Map, Value};

use crate::ack::Asker;
use crate::convert::{
    js_array, js_null, js_number, js_string, js_string_latin1, js_string_utf8, to_js,
};
use crate::error::{core_error, err, Code, Result};
use crate::server::{NativeMiddlewareReply, NativeSocket};

/// What a finished asynchronous operation hands back.
pub enum Outcome {
    /// An ack's arguments.
    Args(Vec<Value>),
    /// The acks of a broadcast (one list of arguments per socket).
    Acks(Vec<Vec<Value>>),
    /// `fetchSockets()`.
    Sockets(Vec<SocketInfo>),
    /// Any value, made on the JavaScript thread (the host boundary's answers, see host.rs).
    Native(MakeJs),
}

/// Makes a JavaScript value on the JavaScript thread.
pub type MakeJs = Box<dyn FnOnce(sys::napi_env) -> Result<sys::napi_value> + Send>;

/// Something JavaScript must hear about. Fields say what they hold: `server` and `manager` are
/// JavaScript's ids of the server or client, `ns` a namespace id, `key` a connected server
/// socket's number (see [`next_socket_key`]), `nsp` a namespace name, `reply` where
/// JavaScript's answer goes.
#[allow(missing_docs)]
pub enum Event {
    /// A middleware must decide on a socket (`io.use`).
    Middleware {
        server: u32,
        ns: u32,
        socket: Arc<Socket>,
        reply: tokio::sync::oneshot::Sender<std::result::Result<(), ConnectError>>,
    },
    /// A socket connected; later events of this socket name it by `key`.
    Connection {
        server: u32,
        ns: u32,
        key: u32,
        socket: Arc<Socket>,
    },
    /// An event from a client to a server socket.
    Event {
        server: u32,
        key: u32,
        name: String,
        args: Vec<Value>,
        ack: Option<AckSender>,
    },
    /// A server socket is about to leave its rooms.
    Disconnecting {
        server: u32,
        key: u32,
        reason: &'static str,
        rooms: Vec<Room>,
    },
    /// A server socket disconnected.
    Disconnect {
        server: u32,
        key: u32,
        reason: &'static str,
    },
    /// A server socket sent an event (only when `onAnyOutgoing` is used).
    Outgoing {
        server: u32,
        key: u32,
        name: String,
        args: Vec<Value>,
    },
    /// A server finished closing.
    Closed { server: u32 },
    /// Another node of the cluster sent `serverSideEmit(name, ...args)` to namespace `ns`.
    ServerSide {
        server: u32,
        ns: u32,
        name: String,
        args: Vec<Value>,
        ack: Option<polysio::server::ServerSideAck>,
    },
    /// A dynamic namespace matcher must decide on a name.
    Match {
        server: u32,
        ns: u32,
        name: String,
        auth: Value,
        reply: SyncReply,
    },
    /// `allowRequest` must decide on a handshake.
    AllowRequest {
        server: u32,
        request: Value,
        reply: SyncReply,
    },
    /// An asynchronous operation JavaScript started (request id `req`) finished.
    Done {
        req: f64,
        result: std::result::Result<Outcome, polysio::Error>,
    },
    /// A client socket received an event (also `connect`, `connect_error`, `disconnect`).
    ClientEvent {
        manager: u32,
        nsp: String,
        name: String,
        args: Vec<Value>,
        ack: Option<polysio::client::AckResponder>,
    },
    /// A client manager event (`open`, `close`, `reconnect_attempt`...).
    ManagerEvent {
        manager: u32,
        name: String,
        args: Vec<Value>,
    },
    /// A client's `auth` function must produce the payload.
    Auth {
        manager: u32,
        nsp: String,
        reply: SyncReply,
    },
}

/// The kinds as JavaScript sees them (first element of each event array; see lib/native.js).
mod kind {
    pub const MIDDLEWARE: f64 = 1.0;
    pub const CONNECTION: f64 = 2.0;
    pub const EVENT: f64 = 3.0;
    pub const DISCONNECTING: f64 = 4.0;
    pub const DISCONNECT: f64 = 5.0;
    pub const OUTGOING: f64 = 6.0;
    pub const CLOSED: f64 = 7.0;
    pub const MATCH: f64 = 8.0;
    pub const ALLOW_REQUEST: f64 = 9.0;
    pub const DONE: f64 = 10.0;
    pub const SERVER_SIDE: f64 = 11.0;
    pub const CLIENT_EVENT: f64 = 20.0;
    pub const MANAGER_EVENT: f64 = 21.0;
    pub const AUTH: f64 = 22.0;
}

/// A fresh number for a connected server socket: events name their socket by it (cheaper for
/// JavaScript to look up than the namespace and socket id).
pub fn next_socket_key() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A decision JavaScript sends back to a runtime thread that waits for it.
pub struct SyncReply(std::sync::mpsc::SyncSender<Value>);

/// Answers a [`SyncReply`] from JavaScript (`reply.send(value)`); only the first call counts.
#[napi]
pub struct NativeReply {
    tx: Mutex<Option<std::sync::mpsc::SyncSender<Value>>>,
}

#[napi]
impl NativeReply {
    /// Sends the answer.
    #[napi]
    pub fn send(&self, env: Env, value: Unknown<'_>) -> Result<()> {
        let v = unsafe { crate::convert::from_js(env.raw(), value.raw())? };
        if let Some(tx) = self.tx.lock().ok().and_then(|mut t| t.take()) {
            let _ = tx.try_send(v);
        }
        Ok(())
    }
}

/// Events waiting for the JavaScript thread.
struct Queue {
    /// The JSON text of the queued events (see [`Batch`]) since the last full chunk, without
    /// its closing bracket.
    json: Vec<u8>,
    /// Whether `json` is all ASCII (JavaScript then copies it without decoding UTF-8).
    ascii: bool,
    /// Full chunks of JSON text, without their closing brackets, in order before `json`, and
    /// whether each is all ASCII.
    chunks: Vec<(Vec<u8>, bool)>,
    /// The events JSON cannot carry, with their ack ids: `0` in the text.
    natives: Vec<(Event, u64)>,
    /// The ack requests of the queued events, by id.
    askers: Vec<(u64, Asker)>,
    /// A wake-up is on its way, or JavaScript is handling a batch and has not had a turn of its
    /// event loop since ([`NativeDispatcher::resume`]): pushes need not send another.
    scheduled: bool,
    /// Emptied chunk buffers JavaScript gave back, for reuse.
    spare: Vec<Vec<u8>>,
    /// The backpressure counts of the queued client messages (see the module's doc).
    held: Vec<Held>,
}

/// The size at which a chunk of JSON text is closed and the next one begun. Each chunk becomes
/// one JavaScript string: kept below V8's large-object size (128 KiB), it is made in the young
/// generation and dies there, where one string per batch of megabytes took fresh pages
/// (page faults) each time and lingered in the old generation until a full collection.
const CHUNK: usize = 96 * 1024;

/// Spare chunk buffers kept for reuse (each about [`CHUNK`] bytes).
const SPARE: usize = 8;

impl Queue {
    /// Begins an event in the JSON text (a separator), starting a new chunk first when the
    /// current one is full.
    fn begin(&mut self) {
        if self.json.len() >= CHUNK {
            let next = self.spare.pop().unwrap_or_default();
            let full = std::mem::replace(&mut self.json, next);
            let ascii = std::mem::replace(&mut self.ascii, true);
            self.chunks.push((full, ascii));
        }
        let sep = if self.json.is_empty() { b'[' } else { b',' };
        self.json.push(sep);
    }
}

impl Default for Queue {
    fn default() -> Self {
        Queue {
            json: Vec::new(),
            ascii: true,
            chunks: Vec::new(),
            natives: Vec::new(),
            askers: Vec::new(),
            scheduled: false,
            spare: Vec::new(),
            held: Vec::new(),
        }
    }
}

/// What the runtime threads and the JavaScript thread share.
#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// The backpressure counts of the batch JavaScript is handling (taken from the queue with
    /// it), let go when that call returns. Calls run one after the other on the JavaScript
    /// thread, so this is the batch of the one call under way.
    handling: Mutex<Vec<Held>>,
}

/// Lets go of the batch's backpressure counts once the JavaScript call is over, whether its
/// return callback runs or napi-rs drops it (Node shutting down, a batch that could not be
/// converted). When JavaScript did not run (`ran` unset), no `resume` will come: the next push
/// wakes it again.
struct Handled {
    shared: Arc<Shared>,
    ran: bool,
}

impl Drop for Handled {
    fn drop(&mut self) {
        let done = self
            .shared
            .handling
            .lock()
            .map(|mut h| std::mem::take(&mut *h))
            .unwrap_or_default();
        drop(done);
        if !self.ran {
            if let Ok(mut q) = self.shared.queue.lock() {
                q.scheduled = false;
            }
        }
    }
}

type Tsfn = ThreadsafeFunction<(), Unknown<'static>, Batch, Status, false, true, 0>;

/// The queue and the threadsafe function that drains it.
pub struct Dispatcher {
    shared: Arc<Shared>,
    tsfn: Tsfn,
    holds: AtomicUsize,
}

impl Dispatcher {
    /// Queues an event for JavaScript. Events JSON can carry are written as JSON at once, on
    /// the pushing thread, so their values are freed where they were made.
    pub fn push(&self, ev: Event) {
        self.push_held(ev, None)
    }

    /// Like [`Dispatcher::push`], for a client's message counted by `held` (see the module's
    /// doc) until JavaScript has handled it.
    pub fn push_held(&self, mut ev: Event, held: Option<Held>) {
        let asker = match &mut ev {
            Event::Event { ack, .. } => ack.take().map(Asker::Client),
            Event::ClientEvent { ack, .. } => ack.take().map(Asker::Server),
            Event::ServerSide { ack, .. } => ack.take().map(Asker::Node),
            _ => None,
        };
        self.enqueue(asker, held, |q, ack| {
            if needs_native(&ev) {
                q.json.push(b'0');
                q.natives.push((ev, ack));
            } else {
                q.json.push(b'[');
                // Cannot fail: the event holds nothing native.
                let _ = layout(ev, ack, &mut JsonSink(&mut q.json));
                q.json.push(b']');
            }
        });
    }

    /// Queues an event from a client to a server socket whose arguments are JSON text already:
    /// `args_tail` is the packet's payload after the event name and its comma (see
    /// [`args_tail`]), spliced into the batch as is. The same as pushing [`Event::Event`] with
    /// the parsed arguments, without writing them as JSON again; `held` counts it as
    /// [`Dispatcher::push_held`] does.
    pub fn push_event_json(
        &self,
        server: u32,
        key: u32,
        name: &str,
        args_tail: &str,
        ack: Option<AckSender>,
        held: Held,
    ) {
        self.enqueue(ack.map(Asker::Client), Some(held), |q, ack| {
            let _ = write!(q.json, "[{},{},{},", kind::EVENT as u8, server, key);
            let _ = serde_json::to_writer(&mut q.json, name);
            q.json.extend_from_slice(b",[");
            q.json.extend_from_slice(args_tail.as_bytes());
            let _ = write!(q.json, ",{ack}]");
        });
    }

    /// Queues one event (`write` puts it in the queue, given the id of its ack request) and
    /// wakes JavaScript when it is the first since the last batch.
    fn enqueue(
        &self,
        asker: Option<Asker>,
        held: Option<Held>,
        write: impl FnOnce(&mut Queue, u64),
    ) {
        let ack = crate::ack::id_for(&asker);
        let wake = {
            let Ok(mut q) = self.shared.queue.lock() else {
                return;
            };
            if let Some(a) = asker {
                q.askers.push((ack, a));
            }
            if let Some(h) = held {
                q.held.push(h);
            }
            q.begin();
            let start = q.json.len();
            write(&mut q, ack);
            if q.ascii && !q.json[start..].is_ascii() {
                q.ascii = false;
            }
            !std::mem::replace(&mut q.scheduled, true)
        };
        if wake {
            self.wake();
        }
    }

    /// Has JavaScript called with the queued events (`scheduled` is set).
    fn wake(&self) {
        let mut handled = Handled {
            shared: self.shared.clone(),
            ran: false,
        };
        let called = self.tsfn.call_with_return_value(
            (),
            ThreadsafeFunctionCallMode::NonBlocking,
            move |returned, _env| {
                // The batch function ran: it calls `resume` from `setImmediate`.
                handled.ran = true;
                drop(handled);
                // The batch function catches everything; an exception that still escaped (a
                // bug of lib/native.js) is raised as the process' uncaughtException.
                returned.map(drop)
            },
        );
        if called != Status::Ok {
            // Node is shutting down: nobody will read these.
            let dropped = self
                .shared
                .queue
                .lock()
                .map(|mut q| {
                    q.scheduled = false;
                    q.json.clear();
                    q.ascii = true;
                    q.chunks.clear();
                    (
                        std::mem::take(&mut q.natives),
                        std::mem::take(&mut q.askers),
                        std::mem::take(&mut q.held),
                    )
                })
                .unwrap_or_default();
            drop(dropped);
        }
    }

    /// Pushes the event `make` builds around a reply, then waits (at most `timeout`) for
    /// JavaScript's answer. Called on runtime threads only.
    pub fn call_sync(
        &self,
        make: impl FnOnce(SyncReply) -> Event,
        timeout: Duration,
    ) -> Option<Value> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.push(make(SyncReply(tx)));
        crate::runtime::wait_for(rx, timeout)
    }

    /// A completion handle for the asynchronous operation `req` started by JavaScript.
    pub fn completion(self: &Arc<Self>, req: f64) -> Completion {
        Completion {
            dispatcher: Some(self.clone()),
            req,
        }
    }
}

/// Reports the end of one asynchronous operation to JavaScript exactly once: with
/// [`Completion::finish`], or, if it is dropped unfinished (the core dropped the callback
/// because the socket went away), with a `socket closed` error.
pub struct Completion {
    dispatcher: Option<Arc<Dispatcher>>,
    req: f64,
}

impl Completion {
    /// Reports the result.
    pub fn finish(mut self, result: std::result::Result<Outcome, polysio::Error>) {
        if let Some(d) = self.dispatcher.take() {
            d.push(Event::Done {
                req: self.req,
                result,
            });
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if let Some(d) = self.dispatcher.take() {
            d.push(Event::Done {
                req: self.req,
                result: Err(polysio::Error::Closed),
            });
        }
    }
}

/// The events of one wake-up.
///
/// JavaScript receives the batch as JSON text (an array of event arrays, one `JSON.parse` per
/// text: far cheaper than building each array, string and number through Node-API; written by
/// the threads that push the events), or as `[texts, natives]` when there are several texts
/// (chunks of at most about [`CHUNK`] bytes, in order) or events holding what JSON cannot carry
/// (binary data, native objects, errors): those events are `0` in the texts and built with
/// Node-API into `natives`, in order, on the JavaScript thread. Ack requests are kept in
/// `ack.rs`; events carry their id.
pub struct Batch {
    /// The texts, and whether each is all ASCII.
    chunks: Vec<(Vec<u8>, bool)>,
    natives: Vec<(Event, u64)>,
    /// Where the chunk buffers go back for reuse.
    shared: Arc<Shared>,
}

impl ToNapiValue for Batch {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        let Batch {
            mut chunks,
            natives,
            shared,
        } = val;
        let mut texts = Vec::with_capacity(chunks.len());
        for (json, ascii) in &mut chunks {
            if json.is_empty() {
                json.push(b'[');
            }
            json.push(b']');
            // The JSON sinks only ever write valid UTF-8; ASCII is Latin-1 too, copied as is.
            let text = if *ascii {
                unsafe { js_string_latin1(env, json) }
            } else {
                unsafe { js_string_utf8(env, json) }
            };
            texts.push(text.map_err(napi_error)?);
        }
        if let Ok(mut q) = shared.queue.lock() {
            for (mut json, _) in chunks {
                if q.spare.len() < SPARE && json.capacity() <= CHUNK * 4 {
                    json.clear();
                    q.spare.push(json);
                }
            }
        }
        if natives.is_empty() && texts.len() == 1 {
            return Ok(texts[0]);
        }
        let texts = unsafe { js_array(env, &texts) }.map_err(napi_error)?;
        let mut built = Vec::with_capacity(natives.len());
        for (ev, ack) in natives {
            let mut sink = NativeSink {
                env,
                items: Vec::with_capacity(8),
            };
            // A value that cannot be converted (only on Node-API failures) becomes null.
            let v = layout(ev, ack, &mut sink).and_then(|()| unsafe { js_array(env, &sink.items) });
            match v {
                Ok(v) => built.push(v),
                Err(e) => {
                    tracing::error!("dropping an event: {}", e.reason);
                    built.push(unsafe { js_null(env) }.map_err(napi_error)?);
                }
            }
        }
        let natives = unsafe { js_array(env, &built) }.map_err(napi_error)?;
        unsafe { js_array(env, &[texts, natives]) }.map_err(napi_error)
    }
}

/// The arguments of an event payload `[name, ...args]` (see `Socket::on_fallback_json`) after
/// the name and its comma, up to and with the closing bracket: `"a",1]` for `["ev","a",1]`,
/// `]` for `["ev"]`. `None` when the payload does not start that way.
pub fn args_tail(payload: &str) -> Option<&str> {
    let b = payload.as_bytes();
    let ws = |mut i: usize| {
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
        }
        i
    };
    let mut i = ws(0);
    if b.get(i) != Some(&b'[') {
        return None;
    }
    i = ws(i + 1);
    if b.get(i) == Some(&b'"') {
        i += 1;
        loop {
            match b.get(i)? {
                b'"' => break,
                b'\\' => i += 2,
                _ => i += 1,
            }
        }
        i += 1;
    } else {
        // A number (the core names such events by it).
        while i < b.len() && !matches!(b[i], b',' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
        }
    }
    i = ws(i);
    match b.get(i)? {
        b',' => Some(&payload[i + 1..]),
        b']' => Some(&payload[i..]),
        _ => None,
    }
}

fn napi_error(e: crate::error::Error) -> napi::Error {
    napi::Error::new(Status::GenericFailure, e.reason)
}

fn has_binary(args: &[Value]) -> bool {
    args.iter().any(Value::has_binary)
}

/// True when the event holds what JSON cannot carry: native objects, errors, binary data.
fn needs_native(ev: &Event) -> bool {
    match ev {
        Event::Event { args, .. }
        | Event::Outgoing { args, .. }
        | Event::ClientEvent { args, .. }
        | Event::ManagerEvent { args, .. }
        | Event::ServerSide { args, .. }
        | Event::Done {
            result: Ok(Outcome::Args(args)),
            ..
        } => has_binary(args),
        Event::Disconnecting { .. } | Event::Disconnect { .. } | Event::Closed { .. } => false,
        _ => true,
    }
}

/// Where the elements of one event array go: JSON text or Node-API values.
trait Sink {
    fn num(&mut self, n: f64) -> Result<()>;
    fn str(&mut self, s: &str) -> Result<()>;
    fn null(&mut self) -> Result<()>;
    /// An array of values.
    fn values(&mut self, v: &[Value]) -> Result<()>;
    fn value(&mut self, v: &Value) -> Result<()>;
    /// A native object (Node-API only).
    fn native(
        &mut self,
        make: &mut dyn FnMut(sys::napi_env) -> Result<sys::napi_value>,
    ) -> Result<()>;
}

/// The elements of event array `ev` (the layout lib/native.js and lib/server.js read); `ack`
/// is the id of its ack request (0: none).
fn layout(ev: Event, ack: u64, out: &mut dyn Sink) -> Result<()> {
    let id = |x: u32| f64::from(x);
    match ev {
        Event::Middleware {
            server,
            ns,
            socket,
            reply,
        } => {
            socket_event(out, kind::MIDDLEWARE, server, ns, socket)?;
            object(out, NativeMiddlewareReply::new(reply))
        }
        Event::Connection {
            server,
            ns,
            key,
            socket,
        } => {
            socket_event(out, kind::CONNECTION, server, ns, socket)?;
            out.num(id(key))
        }
        Event::Event {
            server,
            key,
            name,
            args,
            ..
        } => {
            out.num(kind::EVENT)?;
            out.num(id(server))?;
            out.num(id(key))?;
            out.str(&name)?;
            out.values(&args)?;
            out.num(ack as f64)
        }
        Event::Disconnecting {
            server,
            key,
            reason,
            rooms,
        } => {
            out.num(kind::DISCONNECTING)?;
            out.num(id(server))?;
            out.num(id(key))?;
            out.str(reason)?;
            let rooms: Vec<Value> = rooms.iter().map(|r| Value::from(&**r)).collect();
            out.values(&rooms)
        }
        Event::Disconnect {
            server,
            key,
            reason,
        } => {
            out.num(kind::DISCONNECT)?;
            out.num(id(server))?;
            out.num(id(key))?;
            out.str(reason)
        }
        Event::Outgoing {
            server,
            key,
            name,
            args,
        } => {
            out.num(kind::OUTGOING)?;
            out.num(id(server))?;
            out.num(id(key))?;
            out.str(&name)?;
            out.values(&args)
        }
        Event::Closed { server } => {
            out.num(kind::CLOSED)?;
            out.num(id(server))
        }
        Event::ServerSide {
            server,
            ns,
            name,
            args,
            ..
        } => {
            out.num(kind::SERVER_SIDE)?;
            out.num(id(server))?;
            out.num(id(ns))?;
            out.str(&name)?;
            out.values(&args)?;
            out.num(ack as f64)
        }
        Event::Match {
            server,
            ns,
            name,
            auth,
            reply,
        } => {
            out.num(kind::MATCH)?;
            out.num(id(server))?;
            out.num(id(ns))?;
            out.str(&name)?;
            out.value(&auth)?;
            object(out, reply.into_native())
        }
        Event::AllowRequest {
            server,
            request,
            reply,
        } => {
            out.num(kind::ALLOW_REQUEST)?;
            out.num(id(server))?;
            out.value(&request)?;
            object(out, reply.into_native())
        }
        Event::Done { req, result } => {
            out.num(kind::DONE)?;
            out.num(req)?;
            match result {
                Ok(Outcome::Args(args)) => {
                    out.null()?;
                    out.values(&args)
                }
                Ok(o) => {
                    out.null()?;
                    let mut o = Some(o);
                    out.native(&mut |env| match o.take() {
                        Some(o) => unsafe { outcome(env, o) },
                        None => unsafe { js_null(env) },
                    })
                }
                Err(e) => {
                    let mut e = Some(e);
                    out.native(&mut |env| match e.take() {
                        Some(e) => {
                            Ok(unsafe { napi::JsError::from(core_error(e)).into_value(env) })
                        }
                        None => unsafe { js_null(env) },
                    })?;
                    out.null()
                }
            }
        }
        Event::ClientEvent {
            manager,
            nsp,
            name,
            args,
            ..
        } => {
            out.num(kind::CLIENT_EVENT)?;
            out.num(id(manager))?;
            out.str(&nsp)?;
            out.str(&name)?;
            out.values(&args)?;
            out.num(ack as f64)
        }
        Event::ManagerEvent {
            manager,
            name,
            args,
        } => {
            out.num(kind::MANAGER_EVENT)?;
            out.num(id(manager))?;
            out.str(&name)?;
            out.values(&args)
        }
        Event::Auth {
            manager,
            nsp,
            reply,
        } => {
            out.num(kind::AUTH)?;
            out.num(id(manager))?;
            out.str(&nsp)?;
            object(out, reply.into_native())
        }
    }
}

/// A native object as the next element.
fn object<T: ToNapiValue>(out: &mut dyn Sink, v: T) -> Result<()> {
    let mut v = Some(v);
    out.native(&mut |env| unsafe { class(env, v.take()) })
}

/// The elements `kind, server, ns, namespace name, NativeSocket` of a socket's arrival.
fn socket_event(
    out: &mut dyn Sink,
    kind: f64,
    server: u32,
    ns: u32,
    socket: Arc<Socket>,
) -> Result<()> {
    out.num(kind)?;
    out.num(server.into())?;
    out.num(ns.into())?;
    out.str(socket.nsp().name())?;
    object(out, NativeSocket::new(socket))
}

/// Writes event elements as JSON, each after a comma but the first.
struct JsonSink<'a>(&'a mut Vec<u8>);

impl JsonSink<'_> {
    fn sep(&mut self) {
        if self.0.last() != Some(&b'[') {
            self.0.push(b',');
        }
    }
}

impl Sink for JsonSink<'_> {
    fn num(&mut self, n: f64) -> Result<()> {
        self.sep();
        // Kinds and ids are integers below 2^53.
        let _ = write!(self.0, "{}", n as u64);
        Ok(())
    }
    fn str(&mut self, s: &str) -> Result<()> {
        self.sep();
        let _ = serde_json::to_writer(&mut *self.0, s);
        Ok(())
    }
    fn null(&mut self) -> Result<()> {
        self.sep();
        self.0.extend_from_slice(b"null");
        Ok(())
    }
    fn values(&mut self, v: &[Value]) -> Result<()> {
        self.sep();
        self.0.push(b'[');
        // No attachments: events with binary data take the Node-API road.
        let mut none = Vec::new();
        for (i, a) in v.iter().enumerate() {
            if i > 0 {
                self.0.push(b',');
            }
            a.write_json(self.0, &mut none);
        }
        self.0.push(b']');
        Ok(())
    }
    fn value(&mut self, v: &Value) -> Result<()> {
        self.sep();
        v.write_json(self.0, &mut Vec::new());
        Ok(())
    }
    fn native(
        &mut self,
        _: &mut dyn FnMut(sys::napi_env) -> Result<sys::napi_value>,
    ) -> Result<()> {
        Err(err(Code::Napi, "a native object in a JSON event"))
    }
}

/// Builds event elements with Node-API.
struct NativeSink {
    env: sys::napi_env,
    items: Vec<sys::napi_value>,
}

impl NativeSink {
    fn push(&mut self, v: Result<sys::napi_value>) -> Result<()> {
        self.items.push(v?);
        Ok(())
    }
}

impl Sink for NativeSink {
    fn num(&mut self, n: f64) -> Result<()> {
        let v = unsafe { js_number(self.env, n) };
        self.push(v)
    }
    fn str(&mut self, s: &str) -> Result<()> {
        let v = unsafe { js_string(self.env, s) };
        self.push(v)
    }
    fn null(&mut self) -> Result<()> {
        let v = unsafe { js_null(self.env) };
        self.push(v)
    }
    fn values(&mut self, v: &[Value]) -> Result<()> {
        let v = unsafe { values(self.env, v) };
        self.push(v)
    }
    fn value(&mut self, v: &Value) -> Result<()> {
        let v = unsafe { to_js(self.env, v) };
        self.push(v)
    }
    fn native(
        &mut self,
        make: &mut dyn FnMut(sys::napi_env) -> Result<sys::napi_value>,
    ) -> Result<()> {
        let v = make(self.env);
        self.push(v)
    }
}

/// A native object, made once (`None`: already made, an internal error).
unsafe fn class<T: ToNapiValue>(env: sys::napi_env, v: Option<T>) -> Result<sys::napi_value> {
    let v = v.ok_or_else(|| err(Code::Napi, "a native object used twice"))?;
    unsafe { T::to_napi_value(env, v) }.map_err(|e| err(Code::Napi, e.reason))
}

unsafe fn values(env: sys::napi_env, args: &[Value]) -> Result<sys::napi_value> {
    let items = args
        .iter()
        .map(|a| unsafe { to_js(env, a) })
        .collect::<Result<Vec<_>>>()?;
    unsafe { js_array(env, &items) }
}

unsafe fn outcome(env: sys::napi_env, o: Outcome) -> Result<sys::napi_value> {
    match o {
        Outcome::Args(a) => unsafe { values(env, &a) },
        Outcome::Acks(acks) => {
            let v: Vec<Value> = acks.into_iter().map(Value::Array).collect();
            unsafe { values(env, &v) }
        }
        Outcome::Sockets(infos) => {
            let v: Vec<Value> = infos
                .into_iter()
                .map(|i| {
                    let mut m = Map::new();
                    m.insert("id".into(), Value::from(&*i.id));
                    m.insert(
                        "rooms".into(),
                        Value::Array(i.rooms.iter().map(|r| Value::from(&**r)).collect()),
                    );
                    m.insert("data".into(), i.data);
                    m.insert("handshake".into(), i.handshake);
                    Value::Map(m)
                })
                .collect();
            unsafe { values(env, &v) }
        }
        Outcome::Native(make) => make(env),
    }
}

impl SyncReply {
    fn into_native(self) -> NativeReply {
        NativeReply {
            tx: Mutex::new(Some(self.0)),
        }
    }
}

/// The JavaScript end of the dispatcher: built once with the function that receives batches.
#[napi]
pub struct NativeDispatcher {
    pub(crate) inner: Arc<Dispatcher>,
}

#[napi]
impl NativeDispatcher {
    /// `callback(batch)` is called on the JavaScript thread with the queued events (see
    /// [`Batch`]: JSON text, or `[texts, natives]`); it must not throw (the JavaScript layer
    /// catches everything).
    #[napi(
        constructor,
        ts_args_type = "callback: (batch: string | [Array<string>, Array<Array<unknown>>]) => void"
    )]
    pub fn new(callback: Function<'_, Batch, Unknown<'static>>) -> Result<Self> {
        let shared: Arc<Shared> = Arc::default();
        let sh = shared.clone();
        let tsfn: Tsfn = callback
            .build_threadsafe_function::<()>()
            .weak::<true>()
            .callee_handled::<false>()
            .build_callback(move |_ctx| {
                let mut q = sh
                    .queue
                    .lock()
                    .map_err(|_| napi::Error::new(Status::GenericFailure, "queue poisoned"))?;
                // `scheduled` stays set until `resume`.
                let next = q.spare.pop().unwrap_or_default();
                let last = std::mem::replace(&mut q.json, next);
                let ascii = std::mem::replace(&mut q.ascii, true);
                let mut chunks = std::mem::take(&mut q.chunks);
                chunks.push((last, ascii));
                let natives = std::mem::take(&mut q.natives);
                let askers = std::mem::take(&mut q.askers);
                let held = std::mem::take(&mut q.held);
                drop(q);
                crate::ack::keep(askers);
                // Until this call returns (see `Handled`).
                if let Ok(mut h) = sh.handling.lock() {
                    h.extend(held);
                }
                Ok(Batch {
                    chunks,
                    natives,
                    shared: sh.clone(),
                })
            })
            .map_err(|e| err(Code::Napi, e.reason))?;
        Ok(NativeDispatcher {
            inner: Arc::new(Dispatcher {
                shared,
                tsfn,
                holds: AtomicUsize::new(0),
            }),
        })
    }

    /// Called by JavaScript once its event loop has had a turn after a batch (from
    /// `setImmediate`): the events queued meanwhile are the next batch. Until then no new batch
    /// is started, so that however fast clients send, the batches of events never starve the
    /// timers and I/O of the application (Node-API would otherwise run up to 1000 calls of the
    /// threadsafe function in one turn of the loop).
    #[napi]
    pub fn resume(&self) {
        let more = match self.inner.shared.queue.lock() {
            Ok(mut q) => {
                let more = !q.json.is_empty();
                q.scheduled = more;
                more
            }
            Err(_) => false,
        };
        if more {
            self.inner.wake();
        }
    }

    /// Keeps the event loop alive (counted; a listening server or an active client each hold).
    #[napi]
    pub fn hold(&self, env: Env) -> Result<()> {
        if self.inner.holds.fetch_add(1, Ordering::SeqCst) == 0 {
            let s = unsafe { sys::napi_ref_threadsafe_function(env.raw(), self.inner.tsfn.raw()) };
            if s != sys::Status::napi_ok {
                return Err(err(Code::Napi, "napi_ref_threadsafe_function failed"));
            }
        }
        Ok(())
    }

    /// Drops one hold; with none left, the event loop may end.
    #[napi]
    pub fn release(&self, env: Env) -> Result<()> {
        let prev = self
            .inner
            .holds
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |h| h.checked_sub(1));
        if prev == Ok(1) {
            let s =
                unsafe { sys::napi_unref_threadsafe_function(env.raw(), self.inner.tsfn.raw()) };
            if s != sys::Status::napi_ok {
                return Err(err(Code::Napi, "napi_unref_threadsafe_function failed"));
            }
        }
        Ok(())
    }
}
