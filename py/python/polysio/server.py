"""The synchronous Socket.IO server (no asyncio in user code), shaped like python-socketio's
``Server``."""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from typing import Any, Callable, Optional, Union

from . import _base
from ._thread import LoopThread
from .async_server import AsyncServer, DisconnectReason, Rooms, _SessionContext


class Server(_base.Registry, _base.Threads):
    """A Socket.IO server for code without asyncio, served by the polysio Rust core.

    It takes the options of :class:`polysio.AsyncServer` (``async_mode``: None or
    ``"threading"``). Handlers are plain functions; each
    runs on a thread of a pool, so one that blocks holds up no other. Every method may be
    called from any thread.

    Example::

        import polysio

        sio = polysio.Server()

        @sio.event
        def chat(sid, message):
            sio.emit("chat", message, skip_sid=sid)
            return "ok"

        sio.serve("127.0.0.1", 5000)  # until Ctrl-C or sio.shutdown()
    """

    reason = DisconnectReason

    def __init__(
        self,
        *,
        logger: Union[bool, logging.Logger] = False,
        namespaces: Union[None, str, list[str]] = None,
        **options: Any,
    ) -> None:
        if options.get("async_mode") not in (None, "threading"):
            raise ValueError(
                f"async_mode={options['async_mode']!r} is not supported by polysio: "
                "polysio.Server serves with its own listener ('threading'); for ASGI or "
                "aiohttp, use polysio.AsyncServer"
            )
        mode = options.pop("async_mode", None)
        self._server = AsyncServer(logger=logger, namespaces=namespaces, **options)
        #: ``async_mode`` as given (None or ``"threading"``).
        self.async_mode = mode
        self._executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="polysio-handler")
        self._server._runner.executor = self._executor
        self._handlers = self._server._handlers
        self._plain_only = ("polysio.Server", "polysio.AsyncServer")
        self._thread: Optional[LoopThread] = None
        self._stopped = threading.Event()
        self._lock = threading.Lock()

    @property
    def logger(self) -> logging.Logger:
        """The logger handler errors go to."""
        return self._server.logger

    def start(
        self,
        host: str = "127.0.0.1",
        port: int = 5000,
        ssl_certfile: Optional[str] = None,
        ssl_keyfile: Optional[str] = None,
    ) -> tuple[str, int]:
        """Starts serving on ``host:port`` (0: a free port) in the background and returns the
        bound address (https/wss with ``ssl_certfile`` and ``ssl_keyfile``, see
        :meth:`polysio.AsyncServer.start`)."""
        with self._lock:
            if self._thread is None:
                self._thread = LoopThread("polysio-server")
            thread = self._thread

        async def start() -> tuple[str, int]:
            return self._server.start(host, port, ssl_certfile, ssl_keyfile)

        return thread.run(start())

    def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 5000,
        ssl_certfile: Optional[str] = None,
        ssl_keyfile: Optional[str] = None,
    ) -> None:
        """Serves on ``host:port`` until :meth:`shutdown` (from another thread or a handler) or
        Ctrl-C, then shuts down cleanly (TLS as :meth:`start`)."""
        self.start(host, port, ssl_certfile, ssl_keyfile)
        try:
            while not self._stopped.wait(0.2):
                pass
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        """Disconnects every client, runs the disconnect handlers, frees the port and stops
        the background threads. Later calls do nothing."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            if thread.on_loop_thread():
                raise RuntimeError("shutdown() cannot run on the server's event loop thread")
            try:
                thread.run(self._server.shutdown(), timeout=30)
            finally:
                thread.stop()
        elif not self._server._native.closed:
            self._server._native.close()
        self._executor.shutdown(wait=False)
        self._stopped.set()

    def emit(
        self,
        event: str,
        data: Any = None,
        to: Optional[Rooms] = None,
        room: Optional[Rooms] = None,
        skip_sid: Optional[Rooms] = None,
        namespace: Optional[str] = None,
        callback: Optional[Callable[..., Any]] = None,
        ignore_queue: bool = False,
    ) -> None:
        """Emits an event (see :meth:`polysio.AsyncServer.emit`)."""
        self._server._emit(
            event, data, to if to is not None else room, skip_sid, namespace, callback
        )

    def send(
        self,
        data: Any,
        to: Optional[Rooms] = None,
        room: Optional[Rooms] = None,
        skip_sid: Optional[Rooms] = None,
        namespace: Optional[str] = None,
        callback: Optional[Callable[..., Any]] = None,
        ignore_queue: bool = False,
    ) -> None:
        """Emits a ``message`` event."""
        self.emit("message", data, to, room, skip_sid, namespace, callback)

    def call(
        self,
        event: str,
        data: Any = None,
        to: Optional[str] = None,
        sid: Optional[str] = None,
        namespace: Optional[str] = None,
        timeout: Optional[float] = 60,
        ignore_queue: bool = False,
    ) -> Any:
        """Emits to one client and waits for its ack (see :meth:`polysio.AsyncServer.call`)."""
        thread = self._thread
        if thread is not None and thread.on_loop_thread():
            raise RuntimeError("call() would wait on the thread that delivers the ack")
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._server._call_native(event, data, to or sid, namespace, timeout, _base.completer(fut))
        return _base.ack_result(fut.result())

    def enter_room(self, sid: str, room: str, namespace: Optional[str] = None) -> None:
        """Puts client ``sid`` in ``room``."""
        self._server._native.enter_room(namespace or "/", sid, room)

    def leave_room(self, sid: str, room: str, namespace: Optional[str] = None) -> None:
        """Takes client ``sid`` out of ``room``."""
        self._server._native.leave_room(namespace or "/", sid, room)

    def close_room(self, room: str, namespace: Optional[str] = None) -> None:
        """Takes every client out of ``room``."""
        self._server._native.close_room(namespace or "/", room)

    def rooms(self, sid: str, namespace: Optional[str] = None) -> list[str]:
        """The rooms client ``sid`` is in."""
        return self._server.rooms(sid, namespace)

    def disconnect(self, sid: str, namespace: Optional[str] = None, ignore_queue: bool = False) -> None:
        """Disconnects client ``sid``; nothing happens if it is not connected."""
        self._server._native.disconnect(namespace or "/", sid)

    def get_session(self, sid: str, namespace: Optional[str] = None) -> dict[str, Any]:
        """The session dict of client ``sid``."""
        return self._server._get_session(sid, namespace)

    def save_session(self, sid: str, session: dict[str, Any], namespace: Optional[str] = None) -> None:
        """Replaces the session dict of client ``sid``."""
        self._server._save_session(sid, session, namespace)

    def session(self, sid: str, namespace: Optional[str] = None) -> _SessionContext:
        """``with sio.session(sid) as session:`` reads the session and saves it back."""
        return _SessionContext(self._server, sid, namespace)

    def transport(self, sid: str, namespace: Optional[str] = None) -> str:
        """``"polling"`` or ``"websocket"``."""
        return self._server.transport(sid, namespace)

    def get_environ(self, sid: str, namespace: Optional[str] = None) -> Optional[dict[str, Any]]:
        """The environ of client ``sid``'s connection request, if connected."""
        return self._server.get_environ(sid, namespace)


__all__ = ["Server"]
