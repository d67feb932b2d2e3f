//! The one road from the runtime's threads to JavaScript.
//!
//! Everything the core reports (connections, events, disconnections, ack results, requests for
//! a decision) becomes an [`Event`] pushed on a queue. The first push after the queue was
//! drained wakes the JavaScript thread through one threadsafe function; the JavaScript side then
//! receives every queued event in one call (a batch), so a burst costs one crossing, not one per
//! event. Events are converted to JavaScript values on the JavaScript thread only.
//!
//! The threadsafe function is weak: it keeps Node's event loop alive only while something holds
//! it ([`NativeDispatcher::hold`], counted), i.e. while a server listens or a client is active.
//! `close()` / `disconnect()` release the hold, so nothing keeps the process alive afterwards.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use napi::bindgen_prelude::{Function, ToNapiValue, Unknown};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::JsValue;
use napi::{sys, Env, Status};
use napi_derive::napi;
use polysio::adapter::{Room, SocketInfo};
use polysio::server::{AckSender, ConnectError, Socket};
use polysio::{Map, Value};

use crate::ack::{Asker, NativeAck};
use crate::convert::{js_array, js_null, js_number, js_string, to_js};
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
}

/// Something JavaScript must hear about. Fields say what they hold: `server` and `manager` are
/// JavaScript's ids of the server or client, `ns` a namespace id, `nsp`/`sid` the namespace name
/// and socket id, `reply` where JavaScript's answer goes.
#[allow(missing_docs)]
pub enum Event {
    /// A middleware must decide on a socket (`io.use`).
    Middleware {
        server: u32,
        ns: u32,
        socket: Arc<Socket>,
        reply: tokio::sync::oneshot::Sender<std::result::Result<(), ConnectError>>,
    },
    /// A socket connected.
    Connection {
        server: u32,
        ns: u32,
        socket: Arc<Socket>,
    },
    /// An event from a client to a server socket.
    Event {
        server: u32,
        nsp: String,
        sid: String,
        name: String,
        args: Vec<Value>,
        ack: Option<AckSender>,
    },
    /// A server socket is about to leave its rooms.
    Disconnecting {
        server: u32,
        nsp: String,
        sid: String,
        reason: &'static str,
        rooms: Vec<Room>,
    },
    /// A server socket disconnected.
    Disconnect {
        server: u32,
        nsp: String,
        sid: String,
        reason: &'static str,
    },
    /// A server socket sent an event (only when `onAnyOutgoing` is used).
    Outgoing {
        server: u32,
        nsp: String,
        sid: String,
        name: String,
        args: Vec<Value>,
    },
    /// A server finished closing.
    Closed { server: u32 },
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
    pub const CLIENT_EVENT: f64 = 20.0;
    pub const MANAGER_EVENT: f64 = 21.0;
    pub const AUTH: f64 = 22.0;
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
#[derive(Default)]
struct Queue {
    events: Vec<Event>,
    /// A wake-up is on its way; pushes need not send another.
    scheduled: bool,
}

type Tsfn = ThreadsafeFunction<(), Unknown<'static>, Batch, Status, false, true, 0>;

/// The queue and the threadsafe function that drains it.
pub struct Dispatcher {
    queue: Arc<Mutex<Queue>>,
    tsfn: Tsfn,
    holds: AtomicUsize,
}

impl Dispatcher {
    /// Queues an event for JavaScript.
    pub fn push(&self, ev: Event) {
        let wake = {
            let Ok(mut q) = self.queue.lock() else {
                return;
            };
            q.events.push(ev);
            !std::mem::replace(&mut q.scheduled, true)
        };
        if wake && self.tsfn.call((), ThreadsafeFunctionCallMode::NonBlocking) != Status::Ok {
            // Node is shutting down: nobody will read these.
            let dropped = self
                .queue
                .lock()
                .map(|mut q| {
                    q.scheduled = false;
                    std::mem::take(&mut q.events)
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

/// The events of one wake-up, converted to a JavaScript array of arrays on the JS thread.
pub struct Batch(Vec<Event>);

impl ToNapiValue for Batch {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        let mut items = Vec::with_capacity(val.0.len());
        for ev in val.0 {
            // A value that cannot be converted (only on Node-API failures) is skipped.
            match unsafe { event_to_js(env, ev) } {
                Ok(v) => items.push(v),
                Err(e) => tracing::error!("dropping an event: {}", e.reason),
            }
        }
        unsafe { js_array(env, &items) }
            .map_err(|e| napi::Error::new(Status::GenericFailure, e.reason))
    }
}

unsafe fn class<T: ToNapiValue>(env: sys::napi_env, v: T) -> Result<sys::napi_value> {
    unsafe { T::to_napi_value(env, v) }.map_err(|e| err(Code::Napi, e.reason))
}

unsafe fn values(env: sys::napi_env, args: &[Value]) -> Result<sys::napi_value> {
    let items = args
        .iter()
        .map(|a| unsafe { to_js(env, a) })
        .collect::<Result<Vec<_>>>()?;
    unsafe { js_array(env, &items) }
}

unsafe fn event_to_js(env: sys::napi_env, ev: Event) -> Result<sys::napi_value> {
    let n = |x: f64| unsafe { js_number(env, x) };
    let s = |x: &str| unsafe { js_string(env, x) };
    let items = match ev {
        Event::Middleware {
            server,
            ns,
            socket,
            reply,
        } => vec![
            n(kind::MIDDLEWARE)?,
            n(server.into())?,
            n(ns.into())?,
            s(socket.nsp().name())?,
            unsafe { class(env, NativeSocket::new(socket))? },
            unsafe { class(env, NativeMiddlewareReply::new(reply))? },
        ],
        Event::Connection { server, ns, socket } => vec![
            n(kind::CONNECTION)?,
            n(server.into())?,
            n(ns.into())?,
            s(socket.nsp().name())?,
            unsafe { class(env, NativeSocket::new(socket))? },
        ],
        Event::Event {
            server,
            nsp,
            sid,
            name,
            args,
            ack,
        } => vec![
            n(kind::EVENT)?,
            n(server.into())?,
            s(&nsp)?,
            s(&sid)?,
            s(&name)?,
            unsafe { values(env, &args)? },
            match ack {
                Some(a) => unsafe { class(env, NativeAck::new(Asker::Client(a)))? },
                None => unsafe { js_null(env)? },
            },
        ],
        Event::Disconnecting {
            server,
            nsp,
            sid,
            reason,
            rooms,
        } => {
            let rooms: Vec<Value> = rooms.iter().map(|r| Value::from(&**r)).collect();
            vec![
                n(kind::DISCONNECTING)?,
                n(server.into())?,
                s(&nsp)?,
                s(&sid)?,
                s(reason)?,
                unsafe { values(env, &rooms)? },
            ]
        }
        Event::Disconnect {
            server,
            nsp,
            sid,
            reason,
        } => vec![
            n(kind::DISCONNECT)?,
            n(server.into())?,
            s(&nsp)?,
            s(&sid)?,
            s(reason)?,
        ],
        Event::Outgoing {
            server,
            nsp,
            sid,
            name,
            args,
        } => vec![
            n(kind::OUTGOING)?,
            n(server.into())?,
            s(&nsp)?,
            s(&sid)?,
            s(&name)?,
            unsafe { values(env, &args)? },
        ],
        Event::Closed { server } => vec![n(kind::CLOSED)?, n(server.into())?],
        Event::Match {
            server,
            ns,
            name,
            auth,
            reply,
        } => vec![
            n(kind::MATCH)?,
            n(server.into())?,
            n(ns.into())?,
            s(&name)?,
            unsafe { to_js(env, &auth)? },
            unsafe { class(env, reply.into_native())? },
        ],
        Event::AllowRequest {
            server,
            request,
            reply,
        } => vec![
            n(kind::ALLOW_REQUEST)?,
            n(server.into())?,
            unsafe { to_js(env, &request)? },
            unsafe { class(env, reply.into_native())? },
        ],
        Event::Done { req, result } => {
            let (error, value) = match result {
                Ok(o) => (unsafe { js_null(env)? }, unsafe { outcome(env, o)? }),
                Err(e) => (
                    unsafe { napi::JsError::from(core_error(e)).into_value(env) },
                    unsafe { js_null(env)? },
                ),
            };
            vec![n(kind::DONE)?, n(req)?, error, value]
        }
        Event::ClientEvent {
            manager,
            nsp,
            name,
            args,
            ack,
        } => vec![
            n(kind::CLIENT_EVENT)?,
            n(manager.into())?,
            s(&nsp)?,
            s(&name)?,
            unsafe { values(env, &args)? },
            match ack {
                Some(a) => unsafe { class(env, NativeAck::new(Asker::Server(a)))? },
                None => unsafe { js_null(env)? },
            },
        ],
        Event::ManagerEvent {
            manager,
            name,
            args,
        } => vec![
            n(kind::MANAGER_EVENT)?,
            n(manager.into())?,
            s(&name)?,
            unsafe { values(env, &args)? },
        ],
        Event::Auth {
            manager,
            nsp,
            reply,
        } => vec![n(kind::AUTH)?, n(manager.into())?, s(&nsp)?, unsafe {
            class(env, reply.into_native())?
        }],
    };
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
                    Value::Map(m)
                })
                .collect();
            unsafe { values(env, &v) }
        }
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
    /// `callback(batch)` is called on the JavaScript thread with an array of events; it must
    /// not throw (the JavaScript layer catches everything).
    #[napi(
        constructor,
        ts_args_type = "callback: (batch: Array<Array<unknown>>) => void"
    )]
    pub fn new(callback: Function<'_, Batch, Unknown<'static>>) -> Result<Self> {
        let queue: Arc<Mutex<Queue>> = Arc::default();
        let q = queue.clone();
        let tsfn: Tsfn = callback
            .build_threadsafe_function::<()>()
            .weak::<true>()
            .callee_handled::<false>()
            .build_callback(move |_ctx| {
                let mut q = q
                    .lock()
                    .map_err(|_| napi::Error::new(Status::GenericFailure, "queue poisoned"))?;
                q.scheduled = false;
                Ok(Batch(std::mem::take(&mut q.events)))
            })
            .map_err(|e| err(Code::Napi, e.reason))?;
        Ok(NativeDispatcher {
            inner: Arc::new(Dispatcher {
                queue,
                tsfn,
                holds: AtomicUsize::new(0),
            }),
        })
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
