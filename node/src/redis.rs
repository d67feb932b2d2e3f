//! Scale-out over Redis: the native half of `createAdapter(url, options)` and
//! `createShardedAdapter(url, options)` (lib/redis.js), a [`RedisAdapter`] of the core (the
//! classic or sharded `@socket.io/redis-adapter` 8.3 format) that servers take as their
//! adapter. The core holds its own Redis connections.

use napi::{Env, JsValue};
use napi_derive::napi;
use std::sync::Mutex;

use napi::bindgen_prelude::Unknown;
use polysio::adapter::redis::{
    Emitter, EmitterConfig, EmitterOperator, RedisAdapter, RedisConfig, RedisFormat, RedisStats,
    SubscriptionMode,
};
use polysio::adapter::AdapterFactory;
use polysio::Value;

use crate::convert::{args_from_js, from_js};
use crate::dispatch::{NativeDispatcher, Outcome};
use crate::error::{err, Code, IntoJsError, Result};
use crate::server::{millis, opt_ms, Target};

/// One process's connections to Redis, shared by every server and namespace given it.
#[napi]
pub struct NativeRedisAdapter {
    adapter: RedisAdapter,
}

impl NativeRedisAdapter {
    /// The factory for `ServerConfig::adapter`.
    pub(crate) fn factory(&self) -> AdapterFactory {
        self.adapter.factory()
    }
}

#[napi]
impl NativeRedisAdapter {
    /// Connects (in the background) to the Redis server of `url` with the options of
    /// lib/redis.js (`key`, `requestsTimeout`, `commandTimeout`, `maxQueue`, `format`:
    /// `"classic"` or `"sharded"`, `subscriptionMode`: `"static"`, `"dynamic"` or
    /// `"dynamic-private"`). Throws on a URL or option it cannot use, never because Redis is
    /// away.
    #[napi(constructor)]
    pub fn new(env: Env, url: String, options: Unknown<'_>) -> Result<Self> {
        let opts = unsafe { from_js(env.raw(), options.raw())? };
        let mut cfg = RedisConfig::new(url);
        if let Some(k) = opt_name(&opts, "key")? {
            cfg.key = k;
        }
        cfg.format = match opts.get("format").and_then(Value::as_str) {
            None | Some("classic") => RedisFormat::Classic,
            Some("sharded") => RedisFormat::Sharded,
            Some(f) => {
                return Err(err(
                    Code::InvalidArgValue,
                    format!("unknown Redis format {f:?} (known: classic, sharded)"),
                ))
            }
        };
        cfg.subscription_mode = match opts.get("subscriptionMode") {
            None | Some(Value::Null) => SubscriptionMode::Dynamic,
            Some(Value::String(m)) if m == "static" => SubscriptionMode::Static,
            Some(Value::String(m)) if m == "dynamic" => SubscriptionMode::Dynamic,
            Some(Value::String(m)) if m == "dynamic-private" => SubscriptionMode::DynamicPrivate,
            Some(_) => {
                return Err(err(
                    Code::InvalidArgValue,
                    "subscriptionMode must be \"static\", \"dynamic\" or \"dynamic-private\"",
                ))
            }
        };
        cfg.requests_timeout = opt_ms(&opts, "requestsTimeout", cfg.requests_timeout)?;
        cfg.command_timeout = opt_ms(&opts, "commandTimeout", cfg.command_timeout)?;
        if let Some(n) = opt_positive(&opts, "maxQueue")? {
            cfg.queue_capacity = n as usize;
        }
        let handle = crate::runtime::handle()?;
        let _guard = handle.enter();
        // Its only failure is a URL it cannot use.
        let adapter = RedisAdapter::new(cfg)
            .map_err(|e| err(Code::InvalidArgValue, format!("createAdapter: {e}")))?;
        Ok(NativeRedisAdapter { adapter })
    }

    /// This process's id in the cluster.
    #[napi(getter)]
    pub fn uid(&self) -> String {
        self.adapter.uid().to_owned()
    }

    /// Waits until the subscriber is connected and subscribed to every namespace created so
    /// far (a `Done` event for `req`, a timeout error after `timeout` ms).
    #[napi]
    pub fn ready(&self, dispatcher: &NativeDispatcher, timeout: f64, req: f64) -> Result<()> {
        let timeout = millis(timeout, "timeout")?;
        let adapter = self.adapter.clone();
        let done = dispatcher.inner.completion(req);
        crate::runtime::handle()?.spawn(async move {
            let r = adapter.ready(timeout).await;
            done.finish(r.map(|()| Outcome::Args(Vec::new())));
        });
        Ok(())
    }

    /// The counters: `published`, `received`, `malformed`, `dropped`, `connections`.
    #[napi]
    pub fn stats(&self) -> RedisStatsObject {
        self.adapter.stats().into()
    }
}

/// A non-empty string option (`None` when absent).
fn opt_name(opts: &Value, key: &str) -> Result<Option<String>> {
    match opts.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(k)) if !k.is_empty() => Ok(Some(k.clone())),
        Some(_) => Err(err(
            Code::InvalidArgType,
            format!("{key} must be a non-empty string"),
        )),
    }
}

/// A positive integer option (`None` when absent).
fn opt_positive(opts: &Value, key: &str) -> Result<Option<u64>> {
    match opts.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => match x.as_f64() {
            Some(n) if n.is_finite() && n >= 1.0 && n.fract() == 0.0 => Ok(Some(n as u64)),
            _ => Err(err(
                Code::InvalidArgValue,
                format!("{key} must be a positive integer"),
            )),
        },
    }
}

/// The native half of lib/emitter.js's `Emitter` (`createEmitter(url, options)`): the core's
/// [`Emitter`], which writes to Redis from its own task; JavaScript passes the namespace and
/// the target of each operation. Nothing here holds Node's event loop.
#[napi]
pub struct NativeEmitter {
    /// `None` once closed.
    emitter: Mutex<Option<Emitter>>,
}

impl NativeEmitter {
    fn emitter(&self) -> Result<Emitter> {
        let slot = self.emitter.lock().unwrap_or_else(|e| e.into_inner());
        slot.clone()
            .ok_or_else(|| err(Code::Closed, "the emitter is closed"))
    }

    /// The operator of namespace `nsp` selecting `target` (its `local` is not used).
    fn operator(&self, nsp: &str, target: &Target) -> Result<EmitterOperator> {
        let mut op = self.emitter()?.of(nsp).broadcast();
        for r in &target.rooms {
            op = op.to(r.as_str());
        }
        for r in &target.except {
            op = op.except(r.as_str());
        }
        if target.volatile {
            op = op.volatile();
        }
        Ok(op)
    }
}

/// An operation's result: a full queue drops the message (counted in `stats().dropped`) but
/// does not throw, as npm's emitter never does because Redis is away.
fn queued(r: polysio::Result<()>) -> Result<()> {
    match r {
        Err(polysio::Error::BufferFull(_)) => Ok(()),
        r => r.js(),
    }
}

#[napi]
impl NativeEmitter {
    /// Starts the emitter for the Redis server of `url` with the options of lib/emitter.js
    /// (`format`: `"classic"` or `"streams"`, `key`, `streamName`, `maxLen`, `commandTimeout`,
    /// `maxQueue`). Throws on a URL or option it cannot use, never because Redis is away (it
    /// connects on the first write).
    #[napi(constructor)]
    pub fn new(env: Env, url: String, options: Unknown<'_>) -> Result<Self> {
        let opts = unsafe { from_js(env.raw(), options.raw())? };
        let mut cfg = match opts.get("format").and_then(Value::as_str) {
            None | Some("classic") => EmitterConfig::new(url),
            Some("streams") => EmitterConfig::streams(url),
            Some(f) => {
                return Err(err(
                    Code::InvalidArgValue,
                    format!("unknown emitter format {f:?} (known: classic, streams)"),
                ))
            }
        };
        if let Some(k) = opt_name(&opts, "key")? {
            cfg.key = k;
        }
        if let Some(s) = opt_name(&opts, "streamName")? {
            cfg.stream_name = s;
        }
        if let Some(n) = opt_positive(&opts, "maxLen")? {
            cfg.max_len = n;
        }
        if let Some(n) = opt_positive(&opts, "maxQueue")? {
            cfg.queue_capacity = n as usize;
        }
        cfg.command_timeout = opt_ms(&opts, "commandTimeout", cfg.command_timeout)?;
        let handle = crate::runtime::handle()?;
        let _guard = handle.enter();
        let emitter = Emitter::new(cfg)
            .map_err(|e| err(Code::InvalidArgValue, format!("createEmitter: {e}")))?;
        Ok(NativeEmitter {
            emitter: Mutex::new(Some(emitter)),
        })
    }

    /// Emits `event` with `args` to the sockets `target` selects in namespace `nsp`.
    #[napi]
    pub fn emit(
        &self,
        env: Env,
        nsp: String,
        target: Target,
        event: String,
        args: Unknown<'_>,
    ) -> Result<()> {
        let args = unsafe { args_from_js(env.raw(), args.raw())? };
        queued(self.operator(&nsp, &target)?.emit(&event, args))
    }

    /// Makes the selected sockets join `rooms`.
    #[napi]
    pub fn sockets_join(&self, nsp: String, target: Target, rooms: Vec<String>) -> Result<()> {
        let rooms: Vec<&str> = rooms.iter().map(String::as_str).collect();
        queued(self.operator(&nsp, &target)?.sockets_join(&rooms))
    }

    /// Makes the selected sockets leave `rooms`.
    #[napi]
    pub fn sockets_leave(&self, nsp: String, target: Target, rooms: Vec<String>) -> Result<()> {
        let rooms: Vec<&str> = rooms.iter().map(String::as_str).collect();
        queued(self.operator(&nsp, &target)?.sockets_leave(&rooms))
    }

    /// Disconnects the selected sockets (their whole connections with `close`).
    #[napi]
    pub fn disconnect_sockets(&self, nsp: String, target: Target, close: bool) -> Result<()> {
        queued(self.operator(&nsp, &target)?.disconnect_sockets(close))
    }

    /// Emits `event` with `args` to the server-side listeners of namespace `nsp` on every node.
    #[napi]
    pub fn server_side_emit(
        &self,
        env: Env,
        nsp: String,
        event: String,
        args: Unknown<'_>,
    ) -> Result<()> {
        let args = unsafe { args_from_js(env.raw(), args.raw())? };
        queued(self.emitter()?.of(&nsp).server_side_emit(&event, args))
    }

    /// A `Done` event for `req` once what was queued before is written to Redis; an error when
    /// a write failed since the previous flush, `ERR_CLOSED` once closed.
    #[napi]
    pub fn flush(&self, dispatcher: &NativeDispatcher, req: f64) -> Result<()> {
        let emitter = self.emitter()?;
        let done = dispatcher.inner.completion(req);
        crate::runtime::handle()?.spawn(async move {
            let r = emitter.flush().await;
            done.finish(r.map(|()| Outcome::Args(Vec::new())));
        });
        Ok(())
    }

    /// Closes the emitter: later operations throw `ERR_CLOSED`. A `Done` event for `req` once
    /// what was queued before is written (or dropped); the connection then goes. Idempotent.
    #[napi]
    pub fn close(&self, dispatcher: &NativeDispatcher, req: f64) -> Result<()> {
        let taken = self
            .emitter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let done = dispatcher.inner.completion(req);
        crate::runtime::handle()?.spawn(async move {
            if let Some(emitter) = taken {
                // Written or dropped (and counted): closing does not fail.
                let _ = emitter.flush().await;
            }
            done.finish(Ok(Outcome::Args(Vec::new())));
        });
        Ok(())
    }

    /// The counters: `published` (messages written), `dropped` (messages lost: queue full, or
    /// Redis failed to take them); the others are 0.
    #[napi]
    pub fn stats(&self) -> Result<RedisStatsObject> {
        Ok(self.emitter()?.stats().into())
    }
}

impl From<RedisStats> for RedisStatsObject {
    fn from(s: RedisStats) -> Self {
        RedisStatsObject {
            published: s.published as f64,
            received: s.received as f64,
            malformed: s.malformed as f64,
            dropped: s.dropped as f64,
            connections: s.connections as f64,
        }
    }
}

/// The counters of a Redis adapter or emitter.
#[napi(object)]
pub struct RedisStatsObject {
    /// Messages published.
    pub published: f64,
    /// Messages received from the other nodes and handled.
    pub received: f64,
    /// Messages received that could not be decoded (logged and skipped).
    pub malformed: f64,
    /// Messages not published (queue full, or Redis failed to take them).
    pub dropped: f64,
    /// Times the subscriber connection was (re)established.
    pub connections: f64,
}
