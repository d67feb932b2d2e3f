//! Scale-out over Redis: the native half of `createAdapter(url, options)` and
//! `createShardedAdapter(url, options)` (lib/redis.js), a [`RedisAdapter`] of the core (the
//! classic or sharded `@socket.io/redis-adapter` 8.3 format) that servers take as their
//! adapter. The core holds its own Redis connections.

use napi::bindgen_prelude::Unknown;
use napi::{Env, JsValue};
use napi_derive::napi;
use polysio::adapter::redis::{RedisAdapter, RedisConfig, RedisFormat, SubscriptionMode};
use polysio::adapter::AdapterFactory;
use polysio::Value;

use crate::convert::from_js;
use crate::dispatch::{NativeDispatcher, Outcome};
use crate::error::{err, Code, Result};
use crate::server::{millis, opt_ms};

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
        match opts.get("key") {
            None | Some(Value::Null) => {}
            Some(Value::String(k)) if !k.is_empty() => cfg.key = k.clone(),
            Some(_) => return Err(err(Code::InvalidArgType, "key must be a non-empty string")),
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
        match opts.get("maxQueue") {
            None | Some(Value::Null) => {}
            Some(x) => match x.as_f64() {
                Some(n) if n.is_finite() && n >= 1.0 && n.fract() == 0.0 => {
                    cfg.queue_capacity = n as usize
                }
                _ => {
                    return Err(err(
                        Code::InvalidArgValue,
                        "maxQueue must be a positive integer",
                    ))
                }
            },
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
        let s = self.adapter.stats();
        RedisStatsObject {
            published: s.published as f64,
            received: s.received as f64,
            malformed: s.malformed as f64,
            dropped: s.dropped as f64,
            connections: s.connections as f64,
        }
    }
}

/// The counters of a Redis adapter.
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
