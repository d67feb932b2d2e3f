"""polysio: Socket.IO (Engine.IO v4 + Socket.IO v5) servers and clients for Python, served by
a Rust core.

The API is python-socketio's: :class:`AsyncServer` and :class:`AsyncClient` for asyncio,
:class:`Server` and :class:`Client` for code without asyncio. An :class:`AsyncServer` serves
with its own listener, mounted in an ASGI application (:class:`ASGIApp`: FastAPI, Starlette...
under uvicorn or hypercorn), or attached to an aiohttp application (``sio.attach(app)``). Values travel as they are: dict,
list, tuple, str, int, float, bool, None and bytes (binary attachments, nested anywhere).

>>> import polysio
>>> sio = polysio.AsyncServer(ping_interval=10)
>>> @sio.event
... async def chat(sid, message):
...     await sio.emit("chat", message, skip_sid=sid)
>>> # asyncio.run(sio.serve("127.0.0.1", 5000))
"""

from __future__ import annotations

import atexit

from . import exceptions
from ._polysio import __version__, before_exit, set_worker_threads
from .asgi import ASGIApp
from .async_client import AsyncClient, ClientDisconnectReason
from .async_server import AsyncServer, DisconnectReason
from .client import Client
from .exceptions import (
    BadNamespaceError,
    BufferFullError,
    ConnectionError,
    ConnectionRefusedError,
    DisconnectedError,
    InvalidArgumentError,
    ShutdownError,
    SocketIOError,
    TimeoutError,
)
from .redis_manager import AsyncRedisManager, RedisManager
from .server import Server

# Core threads must stop calling into Python before the interpreter finalizes.
atexit.register(before_exit)

__all__ = [
    "ASGIApp",
    "AsyncClient",
    "AsyncRedisManager",
    "AsyncServer",
    "BadNamespaceError",
    "BufferFullError",
    "Client",
    "ClientDisconnectReason",
    "ConnectionError",
    "ConnectionRefusedError",
    "DisconnectReason",
    "DisconnectedError",
    "InvalidArgumentError",
    "RedisManager",
    "Server",
    "ShutdownError",
    "SocketIOError",
    "TimeoutError",
    "__version__",
    "exceptions",
    "set_worker_threads",
]
