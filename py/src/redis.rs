//! `RedisOptions`: the configuration of the core's Redis adapter (the classic or sharded
//! `@socket.io/redis-adapter` 8.3 format), built by `polysio.AsyncRedisManager` and handed to
//! `NativeServer`, which starts one [`RedisAdapter`] on the process's runtime (again in a child
//! after `fork()`: the options are plain data).

use polysio::adapter::redis::{
    Emitter, EmitterConfig, EmitterOperator, RedisConfig, RedisFormat, SubscriptionMode,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::to_args;
use crate::errors::{ResultExt, TimeoutError};
use crate::runtime;
use crate::server::{seconds, timeout};

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
        // Checked here, so that a bad URL fails in the manager's constructor.
        let capacity = check_common(url, key, queue_capacity)?;
        let mut config = RedisConfig::new(url);
        config.key = key.to_owned();
        config.requests_timeout = timeout("requests_timeout", requests_timeout)?;
        config.command_timeout = timeout("command_timeout", command_timeout)?;
        config.queue_capacity = capacity;
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

/// The checks the adapter's and the emitter's options share: the URL, a non-empty key, and a
/// queue capacity of at least 1 (returned).
fn check_common(url: &str, key: &str, queue_capacity: i64) -> PyResult<usize> {
    if key.is_empty() {
        return Err(PyValueError::new_err("channel must not be empty"));
    }
    if queue_capacity < 1 {
        return Err(PyValueError::new_err(format!(
            "queue_capacity must be at least 1, got {queue_capacity}"
        )));
    }
    redis_url_check(url)?;
    Ok(usize::try_from(queue_capacity).unwrap_or(usize::MAX))
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

/// The native half of a `write_only` `polysio.AsyncRedisManager`: the core's Redis
/// [`Emitter`] (the classic `@socket.io/redis-emitter` 5.1 format, or the streams one). Every
/// operation only queues its message (it never blocks); [`RedisEmitter::flush`] waits.
#[pyclass(frozen, module = "polysio._polysio")]
pub(crate) struct RedisEmitter {
    pid: u32,
    runtime: tokio::runtime::Handle,
    emitter: Emitter,
}

impl RedisEmitter {
    /// The sockets of `nsp` in any of the rooms `to` (all when empty), except those in any of
    /// `skip`, on every node.
    fn target(
        &self,
        nsp: &str,
        to: Option<Vec<String>>,
        skip: Option<Vec<String>>,
    ) -> PyResult<EmitterOperator> {
        runtime::check_pid(self.pid, "Redis emitter")?;
        let mut op = self.emitter.of(nsp).broadcast();
        for r in to.unwrap_or_default() {
            op = op.to(r);
        }
        for r in skip.unwrap_or_default() {
            op = op.except(r);
        }
        Ok(op)
    }
}

#[pymethods]
impl RedisEmitter {
    #[new]
    #[pyo3(signature = (url, key = "socket.io", format = "classic", command_timeout = 2.0, queue_capacity = 10_000))]
    fn new(
        url: &str,
        key: &str,
        format: &str,
        command_timeout: f64,
        queue_capacity: i64,
    ) -> PyResult<Self> {
        let capacity = check_common(url, key, queue_capacity)?;
        let mut config =
            match format {
                "classic" => EmitterConfig::new(url),
                "streams" => EmitterConfig::streams(url),
                "sharded" => return Err(PyValueError::new_err(
                    "format=\"sharded\" with write_only=True: polysio's Redis emitter writes the \
                     classic and streams formats only",
                )),
                f => {
                    return Err(PyValueError::new_err(format!(
                        "format must be \"classic\" or \"streams\" with write_only=True, got {f:?}"
                    )))
                }
            };
        config.key = key.to_owned();
        config.stream_name = key.to_owned();
        config.command_timeout = timeout("command_timeout", command_timeout)?;
        config.queue_capacity = capacity;
        let runtime = runtime::handle()?;
        let emitter = {
            let _guard = runtime.enter();
            Emitter::new(config).py_err()?
        };
        Ok(RedisEmitter {
            pid: std::process::id(),
            runtime,
            emitter,
        })
    }

    /// Queues `event` with `args` to the sockets of `nsp` in any of `to` (all when None),
    /// except those in `skip`, on every node.
    #[pyo3(signature = (nsp, event, args, to=None, skip=None))]
    fn emit(
        &self,
        nsp: &str,
        event: &str,
        args: &Bound<'_, PyAny>,
        to: Option<Vec<String>>,
        skip: Option<Vec<String>>,
    ) -> PyResult<()> {
        let args = to_args(args)?;
        self.target(nsp, to, skip)?.emit(event, args).py_err()
    }

    /// Queues: the selected sockets of every node join `rooms` (`join`), or leave them.
    #[pyo3(signature = (nsp, join, rooms, to=None, skip=None))]
    fn sockets_rooms(
        &self,
        nsp: &str,
        join: bool,
        rooms: Vec<String>,
        to: Option<Vec<String>>,
        skip: Option<Vec<String>>,
    ) -> PyResult<()> {
        let rooms: Vec<&str> = rooms.iter().map(String::as_str).collect();
        let t = self.target(nsp, to, skip)?;
        if join {
            t.sockets_join(&rooms).py_err()
        } else {
            t.sockets_leave(&rooms).py_err()
        }
    }

    /// Queues: the selected sockets of every node are disconnected (`close`: their whole
    /// connection).
    #[pyo3(signature = (nsp, close=false, to=None, skip=None))]
    fn disconnect_sockets(
        &self,
        nsp: &str,
        close: bool,
        to: Option<Vec<String>>,
        skip: Option<Vec<String>>,
    ) -> PyResult<()> {
        self.target(nsp, to, skip)?
            .disconnect_sockets(close)
            .py_err()
    }

    /// Queues serverSideEmit `event` with `args` to every node serving `nsp`.
    fn server_side_emit(&self, nsp: &str, event: &str, args: &Bound<'_, PyAny>) -> PyResult<()> {
        runtime::check_pid(self.pid, "Redis emitter")?;
        let args = to_args(args)?;
        self.emitter.of(nsp).server_side_emit(event, args).py_err()
    }

    /// Blocks until what was queued before is written to Redis (or dropped), at most `timeout`
    /// seconds (`TimeoutError`); `SocketIOError` when messages were dropped since the last flush.
    fn flush(&self, py: Python<'_>, timeout: f64) -> PyResult<()> {
        runtime::check_pid(self.pid, "Redis emitter")?;
        let t = seconds("timeout", timeout)?;
        let r = py.detach(|| {
            self.runtime
                .block_on(async { tokio::time::timeout(t, self.emitter.flush()).await })
        });
        match r {
            Ok(r) => r.py_err(),
            Err(_) => Err(TimeoutError::new_err(format!(
                "the Redis emitter's queue was not written within {timeout} s"
            ))),
        }
    }

    /// The emitter's counters: a dict with `uid` (`"emitter"`), `published` and `dropped`.
    fn redis_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.emitter.stats();
        let d = PyDict::new(py);
        d.set_item("uid", "emitter")?;
        d.set_item("published", s.published)?;
        d.set_item("dropped", s.dropped)?;
        Ok(d)
    }
}
