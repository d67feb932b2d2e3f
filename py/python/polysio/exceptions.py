"""Exceptions raised by polysio, shaped like python-socketio's.

Every exception polysio raises for a Socket.IO reason derives from :class:`SocketIOError`.
Wrong argument types raise the built-in :class:`TypeError`, as usual in Python.

>>> import polysio
>>> issubclass(polysio.TimeoutError, polysio.SocketIOError)
True
"""

from __future__ import annotations

from typing import Any


class SocketIOError(Exception):
    """Base class of every polysio error."""


class ConnectionError(SocketIOError):
    """A client could not connect, or lost its connection."""


class ConnectionRefusedError(ConnectionError):
    """Connection refused.

    Raise it from a server's ``connect`` handler to refuse the connection: the first argument
    is the message the client sees, a second one is sent as ``data`` (more are sent as a list).
    A client's ``connect()`` raises it when the server refused a namespace.

    >>> ConnectionRefusedError("not authorized", {"code": 42}).error_args
    {'message': 'not authorized', 'data': {'code': 42}}
    """

    error_args: dict[str, Any]

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        if len(args) == 0:
            self.error_args = {"message": "Connection rejected by server"}
        elif len(args) == 1:
            self.error_args = {"message": str(args[0])}
        elif len(args) == 2:
            self.error_args = {"message": str(args[0]), "data": args[1]}
        else:
            self.error_args = {"message": str(args[0]), "data": list(args[1:])}


class TimeoutError(SocketIOError):
    """An acknowledgement (``call()``) did not arrive in time."""


class BadNamespaceError(SocketIOError):
    """The namespace is not connected (client side)."""


class DisconnectedError(SocketIOError):
    """The socket is not (or no longer) connected: unknown sid, or it left while waiting."""


class InvalidArgumentError(SocketIOError, ValueError):
    """An argument has the right type but a value polysio cannot use (e.g. a reserved event)."""


class BufferFullError(SocketIOError):
    """A client's send buffer is full (too many emits while disconnected)."""


class ShutdownError(SocketIOError):
    """The server or client was shut down; create a new one."""


__all__ = [
    "BadNamespaceError",
    "BufferFullError",
    "ConnectionError",
    "ConnectionRefusedError",
    "DisconnectedError",
    "InvalidArgumentError",
    "ShutdownError",
    "SocketIOError",
    "TimeoutError",
]
