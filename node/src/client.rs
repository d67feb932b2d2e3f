//! The native side of the client's `Manager` and `Socket` (lib/client.js builds the
//! socket.io-client API on top of these).

use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::Unknown;
use napi::Env;
use napi::JsValue;
use napi_derive::napi;
use polysio::client::{
    Auth, ClientBuilder, ClientOptions, Manager, Proxy, Socket, TlsOptions, TransportKind,
};
use polysio::Value;

use crate::convert::{args_from_js, from_js};
use crate::dispatch::{Dispatcher, Event, NativeDispatcher, Outcome};
use crate::error::{err, Code, IntoJsError, Result};
use crate::server::millis;

fn options(v: &Value) -> Result<ClientOptions> {
    let d = ClientOptions::default();
    let ms = |key: &str, default: Duration| -> Result<Duration> {
        match v.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(x) => x
                .as_f64()
                .ok_or_else(|| err(Code::InvalidArgType, format!("{key} must be a number")))
                .and_then(|n| millis(n, key)),
        }
    };
    let boolean = |key: &str, default: bool| -> Result<bool> {
        match v.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(err(
                Code::InvalidArgType,
                format!("{key} must be a boolean"),
            )),
        }
    };
    let pairs = |key: &str| -> Result<Vec<(String, String)>> {
        match v.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Map(m)) => m
                .iter()
                .map(|(k, x)| match x {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
                        Ok((k.clone(), x.to_json_string()))
                    }
                    _ => Err(err(
                        Code::InvalidArgType,
                        format!("{key}.{k} must be a string"),
                    )),
                })
                .collect(),
            Some(_) => Err(err(
                Code::InvalidArgType,
                format!("{key} must be an object"),
            )),
        }
    };
    let transports = match v.get("transports") {
        None | Some(Value::Null) => d.transports.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|t| match t.as_str() {
                Some("polling") => Ok(TransportKind::Polling),
                Some("websocket") => Ok(TransportKind::Websocket),
                _ => Err(err(
                    Code::InvalidArgValue,
                    format!("unknown transport {t:?} (polling, websocket)"),
                )),
            })
            .collect::<Result<Vec<_>>>()?,
        Some(_) => {
            return Err(err(
                Code::InvalidArgType,
                "transports must be an array of strings",
            ))
        }
    };
    let attempts = match v.get("reconnectionAttempts") {
        None | Some(Value::Null) => d.reconnection_attempts,
        Some(x) => match x.as_f64() {
            Some(n) if n >= f64::from(u32::MAX) => u32::MAX,
            Some(n) if n >= 0.0 => n as u32,
            _ => {
                return Err(err(
                    Code::InvalidArgType,
                    "reconnectionAttempts must be a non-negative number",
                ))
            }
        },
    };
    let factor = match v.get("randomizationFactor") {
        None | Some(Value::Null) => d.randomization_factor,
        Some(x) => x
            .as_f64()
            .filter(|f| (0.0..=1.0).contains(f))
            .ok_or_else(|| {
                err(
                    Code::InvalidArgValue,
                    "randomizationFactor must be a number between 0 and 1",
                )
            })?,
    };
    let send_buffer_max = match v.get("sendBufferMax") {
        None | Some(Value::Null) => d.send_buffer_max,
        Some(x) => x.as_f64().filter(|n| *n >= 0.0).ok_or_else(|| {
            err(
                Code::InvalidArgType,
                "sendBufferMax must be a non-negative number",
            )
        })? as usize,
    };
    // PEM bytes (lib/client.js turns strings, Buffers and arrays of them into one Buffer).
    let pem = |key: &str| -> Result<Option<Vec<u8>>> {
        match v.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bytes(b)) => Ok(Some(b.to_vec())),
            Some(Value::String(s)) => Ok(Some(s.as_bytes().to_vec())),
            Some(_) => Err(err(
                Code::InvalidArgType,
                format!("{key} must be a PEM string or Buffer"),
            )),
        }
    };
    let tls = TlsOptions {
        ca_pem: pem("ca")?,
        client_cert_pem: pem("cert")?,
        client_key_pem: pem("key")?,
        danger_accept_invalid_certs: !boolean("rejectUnauthorized", true)?,
    };
    if tls.client_cert_pem.is_some() != tls.client_key_pem.is_some() {
        return Err(err(Code::InvalidArgValue, "cert and key go together"));
    }
    let proxy = match v.get("proxy") {
        None | Some(Value::Null) => Proxy::Environment,
        Some(Value::Bool(false)) => Proxy::Direct,
        Some(Value::String(s)) if !s.is_empty() => Proxy::Url(s.clone()),
        Some(_) => {
            return Err(err(
                Code::InvalidArgValue,
                "proxy must be false or a proxy URL (http://[user:password@]host:port)",
            ))
        }
    };
    let path = match v.get("path") {
        None | Some(Value::Null) => d.path.clone(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(err(Code::InvalidArgType, "path must be a string")),
    };
    Ok(ClientOptions {
        transports,
        upgrade: boolean("upgrade", d.upgrade)?,
        path,
        query: pairs("query")?,
        extra_headers: pairs("extraHeaders")?,
        auth: Auth::None,
        reconnection: boolean("reconnection", d.reconnection)?,
        reconnection_attempts: attempts,
        reconnection_delay: ms("reconnectionDelay", d.reconnection_delay)?,
        reconnection_delay_max: ms("reconnectionDelayMax", d.reconnection_delay_max)?,
        randomization_factor: factor,
        timeout: ms("timeout", d.timeout)?,
        ack_timeout: match v.get("ackTimeout") {
            None | Some(Value::Null) => None,
            Some(_) => Some(ms("ackTimeout", Duration::ZERO)?),
        },
        send_buffer_max,
        tls,
        proxy,
        ..ClientOptions::default()
    })
}

/// The events a manager reports.
const MANAGER_EVENTS: [&str; 7] = [
    "open",
    "close",
    "error",
    "reconnect_attempt",
    "reconnect",
    "reconnect_error",
    "reconnect_failed",
];

/// The reserved events a client socket reports besides user events.
const SOCKET_EVENTS: [&str; 3] = ["connect", "connect_error", "disconnect"];

/// One client connection (socket.io-client's `Manager`) as JavaScript drives it.
#[napi]
pub struct NativeManager {
    manager: Manager,
    id: u32,
    dispatcher: Arc<Dispatcher>,
    timeout: Duration,
}

#[napi]
impl NativeManager {
    /// A manager for `uri` (`http://host:port?query`, no namespace) with socket.io-client-style
    /// `options`; events go to `dispatcher` tagged with `id`. Does not connect.
    #[napi(constructor)]
    pub fn new(
        env: Env,
        dispatcher: &NativeDispatcher,
        id: u32,
        uri: String,
        options: Unknown<'_>,
    ) -> Result<Self> {
        let opts = options_from(env, options)?;
        let timeout = opts.timeout;
        let handle = crate::runtime::handle()?;
        let manager = ClientBuilder::new(uri)
            .options(opts)
            .manager_on(handle)
            .js()?;
        let d = dispatcher.inner.clone();
        for name in MANAGER_EVENTS {
            let d = d.clone();
            manager.on(name, move |args, _| {
                d.push(Event::ManagerEvent {
                    manager: id,
                    name: name.to_owned(),
                    args,
                })
            });
        }
        Ok(NativeManager {
            manager,
            id,
            dispatcher: d,
            timeout,
        })
    }

    /// The socket of namespace `nsp` with its `auth`: a value, or (with `auth_fn`) computed by
    /// JavaScript at each connection through an `Auth` event.
    #[napi]
    pub fn socket(
        &self,
        env: Env,
        nsp: String,
        auth: Unknown<'_>,
        auth_fn: bool,
    ) -> Result<NativeClientSocket> {
        let auth = if auth_fn {
            let (d, manager, nsp, timeout) =
                (self.dispatcher.clone(), self.id, nsp.clone(), self.timeout);
            Auth::callback(move || {
                d.call_sync(
                    |reply| Event::Auth {
                        manager,
                        nsp: nsp.clone(),
                        reply,
                    },
                    timeout,
                )
                .unwrap_or(Value::Null)
            })
        } else {
            match unsafe { from_js(env.raw(), auth.raw())? } {
                Value::Null => Auth::None,
                v @ Value::Map(_) => Auth::Value(v),
                _ => {
                    return Err(err(
                        Code::InvalidArgType,
                        "auth must be an object or a function",
                    ))
                }
            }
        };
        let socket = self.manager.socket_with_auth(&nsp, Some(auth));
        let name = socket.nsp().to_owned();
        for event in SOCKET_EVENTS {
            let (d, manager, nsp) = (self.dispatcher.clone(), self.id, name.clone());
            socket.on(event, move |args, _| {
                d.push(Event::ClientEvent {
                    manager,
                    nsp: nsp.clone(),
                    name: event.to_owned(),
                    args,
                    ack: None,
                })
            });
        }
        let (d, manager, nsp) = (self.dispatcher.clone(), self.id, name);
        socket.on_any(move |event, args, ack| {
            d.push(Event::ClientEvent {
                manager,
                nsp: nsp.clone(),
                name: event.to_owned(),
                args,
                ack,
            })
        });
        Ok(NativeClientSocket {
            socket,
            dispatcher: self.dispatcher.clone(),
        })
    }

    /// Opens the connection (without connecting a namespace).
    #[napi]
    pub fn open(&self) {
        self.manager.open();
    }

    /// Disconnects every socket and closes the connection, without reconnecting.
    #[napi]
    pub fn close(&self) {
        self.manager.close();
    }

    /// The transport in use (`"polling"` or `"websocket"`), null while not open.
    #[napi(getter)]
    pub fn transport(&self) -> Option<String> {
        self.manager.transport().map(|t| t.as_str().to_owned())
    }
}

fn options_from(env: Env, value: Unknown<'_>) -> Result<ClientOptions> {
    options(&unsafe { from_js(env.raw(), value.raw())? })
}

/// One client namespace socket as JavaScript drives it.
#[napi]
pub struct NativeClientSocket {
    socket: Socket,
    dispatcher: Arc<Dispatcher>,
}

#[napi]
impl NativeClientSocket {
    /// The session id while connected.
    #[napi(getter)]
    pub fn id(&self) -> Option<String> {
        self.socket.id()
    }
    /// True while connected.
    #[napi(getter)]
    pub fn connected(&self) -> bool {
        self.socket.connected()
    }
    /// True while the socket wants to be connected (it reconnects).
    #[napi(getter)]
    pub fn active(&self) -> bool {
        self.socket.active()
    }
    /// True when the last connection restored the previous session.
    #[napi(getter)]
    pub fn recovered(&self) -> bool {
        self.socket.recovered()
    }
    /// Connects (opening the connection if needed).
    #[napi]
    pub fn connect(&self) {
        self.socket.connect();
    }
    /// Disconnects this namespace; no reconnection follows.
    #[napi]
    pub fn disconnect(&self) {
        self.socket.disconnect();
    }
    /// Emits (buffered while disconnected unless `volatile`).
    #[napi]
    pub fn emit(&self, env: Env, event: String, args: Unknown<'_>, volatile: bool) -> Result<()> {
        let args = unsafe { args_from_js(env.raw(), args.raw())? };
        if volatile {
            self.socket.volatile().emit(&event, args)
        } else {
            self.socket.emit(&event, args)
        }
        .js()
    }
    /// Emits asking for an ack; the answer (or an error) comes back as a `Done` event for `req`.
    #[napi]
    pub fn emit_with_ack(
        &self,
        env: Env,
        event: String,
        args: Unknown<'_>,
        timeout: Option<f64>,
        volatile: bool,
        req: f64,
    ) -> Result<()> {
        let args = unsafe { args_from_js(env.raw(), args.raw())? };
        let timeout = timeout.map(|t| millis(t, "timeout")).transpose()?;
        let done = self.dispatcher.completion(req);
        let cb = move |r: polysio::Result<Vec<Value>>| done.finish(r.map(Outcome::Args));
        match (timeout, volatile) {
            (Some(t), true) => self
                .socket
                .timeout(t)
                .volatile()
                .emit_with_ack_cb(&event, args, cb),
            (Some(t), false) => self.socket.timeout(t).emit_with_ack_cb(&event, args, cb),
            (None, true) => self.socket.volatile().emit_with_ack_cb(&event, args, cb),
            (None, false) => self.socket.emit_with_ack_cb(&event, args, cb),
        }
        .js()
    }
    /// Replaces the auth payload used from the next connection on.
    #[napi]
    pub fn set_auth(&self, env: Env, auth: Unknown<'_>) -> Result<()> {
        match unsafe { from_js(env.raw(), auth.raw())? } {
            Value::Null => self.socket.set_auth(Auth::None),
            v @ Value::Map(_) => self.socket.set_auth(v),
            _ => return Err(err(Code::InvalidArgType, "auth must be an object")),
        }
        Ok(())
    }
}
