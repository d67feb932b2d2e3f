//! `RedisOptions`: the configuration of the core's Redis adapter (the classic or sharded
//! `@socket.io/redis-adapter` 8.3 format), built by `polysio.AsyncRedisManager` and handed to
//! `NativeServer`, which starts one [`RedisAdapter`] on the process's runtime (again in a child
//! after `fork()`: the options are plain data).

use polysio::adapter::redis::{RedisConfig, RedisFormat, SubscriptionMode};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::server::timeout;

/// The options of the core's Redis adapter (see `polysio.AsyncRedisManager`).
#[pyclass(frozen, module = "polysio._polysio")]
pub(crate) struct RedisOptions {
    pub(crate) config: RedisConfig,
}

#[pymethods]
impl RedisOptions {
    #[new]
    #[pyo3(signature = (url, key = "socket.io", requests_timeout = 5.0, command_timeout = 2.0, queue_capacity = 10_000, format = "classic", subscription_mode = "dynamic"))]
    fn new(
        url: &str,
        key: &str,
        requests_timeout: f64,
        command_timeout: f64,
        queue_capacity: i64,
        format: &str,
        subscription_mode: &str,
    ) -> PyResult<Self> {
        if key.is_empty() {
            return Err(PyValueError::new_err("channel must not be empty"));
        }
        if queue_capacity < 1 {
            return Err(PyValueError::new_err(format!(
                "queue_capacity must be at least 1, got {queue_capacity}"
            )));
        }
        // Checked here, so that a bad URL fails in the manager's constructor.
        redis_url_check(url)?;
        let mut config = RedisConfig::new(url);
        config.key = key.to_owned();
        config.requests_timeout = timeout("requests_timeout", requests_timeout)?;
        config.command_timeout = timeout("command_timeout", command_timeout)?;
        config.queue_capacity = usize::try_from(queue_capacity).unwrap_or(usize::MAX);
        config.format = match format {
            "classic" => RedisFormat::Classic,
            "sharded" => RedisFormat::Sharded,
            f => {
                return Err(PyValueError::new_err(format!(
                    "format must be \"classic\" or \"sharded\", got {f:?}"
                )))
            }
        };
        config.subscription_mode = match subscription_mode {
            "static" => SubscriptionMode::Static,
            "dynamic" => SubscriptionMode::Dynamic,
            "dynamic-private" => SubscriptionMode::DynamicPrivate,
            m => {
                return Err(PyValueError::new_err(format!(
                    "subscription_mode must be \"static\", \"dynamic\" or \"dynamic-private\", \
                     got {m:?}"
                )))
            }
        };
        Ok(RedisOptions { config })
    }

    /// The Redis URL.
    #[getter]
    fn url(&self) -> &str {
        &self.config.url
    }

    /// The channel prefix (Node's `key`).
    #[getter]
    fn key(&self) -> &str {
        &self.config.key
    }

    /// The wire format: `"classic"` or `"sharded"`.
    #[getter]
    fn format(&self) -> &'static str {
        match self.config.format {
            RedisFormat::Sharded => "sharded",
            _ => "classic",
        }
    }

    /// The sharded format's subscription mode: `"static"`, `"dynamic"` or `"dynamic-private"`.
    #[getter]
    fn subscription_mode(&self) -> &'static str {
        match self.config.subscription_mode {
            SubscriptionMode::Static => "static",
            SubscriptionMode::Dynamic => "dynamic",
            SubscriptionMode::DynamicPrivate => "dynamic-private",
        }
    }
}

fn redis_url_check(url: &str) -> PyResult<()> {
    let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
    match scheme {
        "redis" | "redis+unix" | "unix" => Ok(()),
        "rediss" => Err(PyValueError::new_err(
            "rediss:// (Redis over TLS) is not supported by polysio's Redis adapter yet",
        )),
        _ => Err(PyValueError::new_err(format!(
            "{url:?} is not a Redis URL (redis://[user:password@]host[:port][/db] or \
             redis+unix:///path/to/socket[?db=N])"
        ))),
    }
}
