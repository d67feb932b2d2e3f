"""python-socketio's server constructor arguments, taken as polysio can: each one is used,
accepted where ignoring it changes nothing a client or handler can see, or refused with a
``ValueError`` naming it (rather than doing something else than asked)."""

from __future__ import annotations

import json as stdlib_json
import logging
from typing import Any, Iterable, Optional

#: The options the native server takes as they are.
NATIVE = frozenset(
    {
        "path",
        "ping_interval",
        "ping_timeout",
        "upgrade_timeout",
        "max_http_buffer_size",
        "transports",
        "allow_upgrades",
        "cors_allowed_origins",
        "cors_credentials",
        "cors_methods",
        "cors_allowed_headers",
        "cors_exposed_headers",
        "cors_max_age",
        "cookie",
        "allow_request",
        "connect_timeout",
        "connection_state_recovery",
        "max_attachments",
        "static_files",
        # Set from client_manager (a polysio.AsyncRedisManager).
        "redis",
    }
    | {
        # Limits and timeouts (issue 14): engine.io's and Node http.Server's, in snake_case.
        "http_request_body_timeout",
        "max_buffered_chunks",
        "max_buffered_bytes",
        "write_timeout",
        "max_pending_messages",
        "max_handshakes_per_second",
        "headers_timeout",
        "keep_alive_timeout",
        "max_connections",
    }
)

#: Limits that are numbers (a bool, although an int to Python, is refused).
_NUMBERS = (
    "http_request_body_timeout",
    "max_buffered_chunks",
    "max_buffered_bytes",
    "write_timeout",
    "max_pending_messages",
    "max_handshakes_per_second",
    "headers_timeout",
    "keep_alive_timeout",
    "max_connections",
)

#: python-engineio's cookie attributes, as the native server names them.
_COOKIE_KEYS = {
    "name": "name",
    "path": "path",
    "samesite": "same_site",
    "same_site": "same_site",
    "httponly": "http_only",
    "http_only": "http_only",
    "secure": "secure",
    "max-age": "max_age",
    "max_age": "max_age",
}


def _refuse(name: str, value: Any, why: str) -> ValueError:
    return ValueError(f"{name}={value!r} is not supported by polysio: {why}")


def _cookie(cookie: Any) -> Any:
    if not isinstance(cookie, dict):
        return cookie
    out: dict[str, Any] = {}
    for key, value in cookie.items():
        native = _COOKIE_KEYS.get(str(key).lower())
        if native is None:
            raise ValueError(
                f"cookie attribute {key!r} is not supported by polysio (name, path, SameSite, "
                "HttpOnly, Secure, Max-Age)"
            )
        if callable(value):
            raise _refuse(f"cookie[{key!r}]", value, "cookie attributes must be plain values")
        out[native] = value
    return out


def server_options(
    cls: str, async_modes: Iterable[str], options: dict[str, Any]
) -> tuple[Optional[str], dict[str, Any]]:
    """Checks the constructor arguments of server class ``cls`` (python-socketio's and
    python-engineio's among them); returns the ``async_mode`` and the native server's
    options."""
    opts = dict(options)
    modes = tuple(async_modes)
    async_mode = opts.pop("async_mode", None)
    if async_mode is not None and async_mode not in modes:
        raise _refuse(
            "async_mode",
            async_mode,
            f"{cls} serves with {', '.join(repr(m) for m in modes)} or its own listener",
        )
    manager = opts.pop("client_manager", None)
    if manager is not None:
        from .redis_manager import AsyncRedisManager

        if not isinstance(manager, AsyncRedisManager):
            raise _refuse(
                "client_manager",
                manager,
                "clients and rooms live in the Rust core; scale out with "
                "polysio.AsyncRedisManager (Node's Redis adapter format), python-socketio's "
                "message-queue managers cannot take part",
            )
        if manager.write_only:
            raise ValueError(
                "client_manager: a write_only AsyncRedisManager is an emitter, not a node of "
                "the cluster; give the server AsyncRedisManager(url) without write_only"
            )
        opts["redis"] = manager._options
    serializer = opts.pop("serializer", "default")
    if serializer != "default":
        raise _refuse("serializer", serializer, "the core speaks the default JSON parser only")
    custom_json = opts.pop("json", None)
    if custom_json is not None and custom_json is not stdlib_json:
        raise _refuse(
            "json", custom_json, "the core encodes and decodes JSON itself (drop the argument)"
        )
    if opts.pop("async_handlers", True) is not True:
        raise _refuse(
            "async_handlers",
            False,
            "handlers of a client always run concurrently, as with the default True",
        )
    if opts.pop("always_connect", False) is not False:
        raise _refuse(
            "always_connect",
            True,
            "a connection is accepted once its connect handler has returned",
        )
    # Harmless to ignore: the core logs nothing through Python, always watches heartbeats and
    # sends long-polling payloads uncompressed (valid for every client).
    engineio_logger = opts.pop("engineio_logger", None)
    if engineio_logger is not None and not isinstance(engineio_logger, (bool, logging.Logger)):
        raise TypeError("engineio_logger must be a bool or a logging.Logger")
    for ignored in ("monitor_clients", "http_compression", "compression_threshold"):
        opts.pop(ignored, None)
    unknown = sorted(set(opts) - NATIVE)
    if unknown:
        raise TypeError(f"{cls}() got an unexpected keyword argument {unknown[0]!r}")
    for name in _NUMBERS:
        if isinstance(opts.get(name), bool):
            raise TypeError(f"{name} must be a number, not a bool")
    interval = opts.get("ping_interval")
    if isinstance(interval, (tuple, list)):
        # python-engineio's (interval, grace period): the grace widens the pong deadline.
        if len(interval) != 2:
            raise ValueError("ping_interval must be a number or an (interval, grace) pair")
        opts["ping_interval"] = interval[0]
        opts["ping_timeout"] = opts.get("ping_timeout", 20) + interval[1]
    if isinstance(opts.get("transports"), str):
        opts["transports"] = [opts["transports"]]
    if opts.get("cors_allowed_origins") == []:
        # python-engineio: an empty list turns CORS handling off.
        opts["cors_allowed_origins"] = None
    if "cookie" in opts:
        opts["cookie"] = _cookie(opts["cookie"])
    return async_mode, opts
