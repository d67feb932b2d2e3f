"""The asyncio Socket.IO server, shaped like python-socketio's ``AsyncServer``."""

from __future__ import annotations

import asyncio
import builtins
import logging
import os
from typing import Any, Callable, Optional, Union

from . import _base, _options
from ._polysio import ConnectReply, NativeServer
from .exceptions import ConnectionRefusedError, DisconnectedError, ShutdownError
from .redis_manager import AsyncRedisManager

Rooms = _base.Rooms

#: How long ``shutdown()`` lets running handlers finish before cancelling them, in seconds.
SHUTDOWN_GRACE = 2.0


class DisconnectReason:
    """The reasons a server-side ``disconnect`` handler receives (the reference server's)."""

    #: The client disconnected the namespace.
    CLIENT_DISCONNECT = "client namespace disconnect"
    #: The server disconnected it (``disconnect(sid)``).
    SERVER_DISCONNECT = "server namespace disconnect"
    #: The connection was closed by the client.
    TRANSPORT_CLOSE = "transport close"
    #: The connection failed.
    TRANSPORT_ERROR = "transport error"
    #: The client stopped answering pings.
    PING_TIMEOUT = "ping timeout"
    #: The client sent something that could not be decoded.
    PARSE_ERROR = "parse error"
    #: The server is shutting down.
    SERVER_SHUTTING_DOWN = "server shutting down"
    #: The connection was closed by the server.
    FORCED_CLOSE = "forced close"


_rooms = _base.rooms


class AsyncServer(_base.Registry):
    """A Socket.IO server for asyncio, served by the polysio Rust core.

    Handlers are registered as with python-socketio (:meth:`on`, :meth:`event`) and may be
    ``async def`` or plain functions; they run on the event loop that called :meth:`start` /
    :meth:`serve`:

    - ``connect(sid, environ, auth)``: return False or raise
      :class:`polysio.ConnectionRefusedError` to refuse the connection.
    - ``disconnect(sid, reason)``: see :class:`DisconnectReason`.
    - any other event ``(sid, *args)``: the return value is the client's ack (a tuple for
      several arguments). ``"*"`` catches the events without a handler: ``(event, sid, *args)``. The core does all
    networking on its own threads (heartbeats go on even while a handler blocks the loop).

    Server options (all optional; durations in seconds; defaults are the reference server's):

    - ``path`` (``"/socket.io/"``), ``ping_interval`` (25), ``ping_timeout`` (20),
      ``upgrade_timeout`` (10), ``max_http_buffer_size`` (1e6 bytes),
      ``transports`` (``["polling", "websocket"]``), ``allow_upgrades`` (True),
      ``connect_timeout`` (45, for the client to join a namespace), ``max_attachments`` (10
      binary attachments per packet, as socket.io-parser 4.2.6+; together at most
      ``max_http_buffer_size`` bytes).
    - Limits and timeouts (the reference's defaults where it has one; see "Limits and
      timeouts" in the README):

      - ``http_request_body_timeout`` (30 s, engine.io's ``httpRequestBodyTimeout``): a
        long-polling POST whose body takes longer is answered 408 and its session closes
        (``transport error``);
      - ``max_buffered_chunks`` (10000, engine.io's ``maxBufferedChunks``): a POST body in more
        chunks is answered 413 and its session closes;
      - ``max_buffered_bytes`` (16 MiB): packets queued for a client that does not take them
        (no GET, a WebSocket it does not read), each counted as its length + 64; past it the
        session closes with ``transport error``;
      - ``write_timeout`` (30 s): a WebSocket write that makes no progress that long (the
        client stopped reading) closes the connection (``transport error``);
      - ``max_pending_messages`` (1024): events of one client handed to the handlers and not
        handled yet (a plain handler's until it returns, an ``async def`` one's until its
        coroutine finishes). Past it polysio reads nothing more from that client, which meets
        TCP backpressure, until the handlers catch up; nothing is dropped and other clients
        are served meanwhile. A handler that waits for a later message of the same client
        (say, ``await sio.call(...)`` to it) keeps its place while it waits;
      - ``max_handshakes_per_second`` (None: no limit): a new session over the rate is
        answered 503;
      - polysio's own listener only (:meth:`serve` / :meth:`start`; mounted in uvicorn,
        hypercorn or aiohttp, the host's settings apply): ``headers_timeout`` (60 s, Node's
        ``server.headersTimeout``: a request head not complete by then, or a new connection
        that sends nothing, is closed), ``keep_alive_timeout`` (5 s, Node's
        ``server.keepAliveTimeout``: an idle keep-alive connection is closed) and
        ``max_connections`` (None, Node's ``server.maxConnections``: a connection over it is
        answered 503 and closed).

      Durations are seconds (floats), positive; counts are integers >= 1. Anything else is
      a ``ValueError`` (a ``TypeError`` for the wrong type).
    - CORS (off unless ``cors_allowed_origins`` is set: ``"*"``, a str, a list of str, or
      ``True`` to echo the request's origin): ``cors_credentials`` (False), ``cors_methods``,
      ``cors_allowed_headers``, ``cors_exposed_headers``, ``cors_max_age``.
    - ``cookie``: None (default), a cookie name, or a dict with ``name``, ``path``,
      ``http_only``, ``same_site``, ``secure``, ``max_age``.
    - ``allow_request``: ``f(environ)`` deciding on each new connection: True/None allows,
      False refuses (403), a str refuses with that message. Runs on a core worker thread.
    - ``connection_state_recovery``: False (default), True, or a dict with
      ``max_disconnection_duration`` (120) and ``skip_middlewares`` (True).
    - ``static_files``: files served outside the Socket.IO path, as python-engineio's
      (``{"/": "index.html", "/static": "./public"}``; a value may be a dict with
      ``filename`` and ``content_type``).
    - ``client_manager``: a :class:`polysio.AsyncRedisManager` (or
      :class:`polysio.RedisManager`) joins this server to a cluster over Redis, in the format
      of Node's ``@socket.io/redis-adapter``: emits reach the clients of every node.
    - ``namespaces``: namespaces accepted besides ``"/"`` and those with handlers; ``"*"``
      accepts any namespace.
    - ``logger``: True for INFO logs on the ``polysio`` logger, or a :class:`logging.Logger`.
      Handler errors are always logged.
    - ``async_mode``: None, ``"asgi"`` or ``"aiohttp"`` (how it is served changes nothing
      else). python-socketio's other arguments are accepted where ignoring them is harmless
      (``engineio_logger``, ``monitor_clients``, ``http_compression``,
      ``compression_threshold``, ``json=json``, their defaults), and refused with a
      ``ValueError`` naming them where polysio cannot do what they ask (a ``client_manager``
      other than polysio's, ``serializer``, a custom ``json`` module, ``async_handlers=False``,
      ``always_connect=True``).

    Three ways to serve it: its own listener (:meth:`serve` / :meth:`start`), mounted in an
    ASGI application (:class:`polysio.ASGIApp`, under uvicorn or hypercorn), or attached to an
    aiohttp application (:meth:`attach`). Mounted, it starts on the application's startup (or
    its first request), on that event loop.

    Example::

        import asyncio, polysio

        sio = polysio.AsyncServer()

        @sio.event
        async def chat(sid, message):
            await sio.emit("chat", message, skip_sid=sid)
            return "ok"  # the client's ack

        asyncio.run(sio.serve("127.0.0.1", 5000))
    """

    reason = DisconnectReason

    def __init__(
        self,
        *,
        logger: Union[bool, logging.Logger] = False,
        namespaces: Union[None, str, list[str]] = None,
        **options: Any,
    ) -> None:
        self.logger = _base.logger_for(logger)
        #: ``async_mode`` as given (None, ``"asgi"`` or ``"aiohttp"``).
        self.async_mode, native = _options.server_options(
            type(self).__name__, ("asgi", "aiohttp"), options
        )
        self._max_http_buffer_size: int = native.get("max_http_buffer_size", 1_000_000)
        #: For the hosts that write WebSockets themselves (ASGI, aiohttp).
        self._write_timeout: float = native.get("write_timeout", 30.0)
        self._native_options = native
        manager = options.get("client_manager")
        if manager is not None:
            manager._bind(self)
        #: The ``client_manager`` given (a :class:`polysio.AsyncRedisManager`), or None: the
        #: clients of this process only.
        self.manager: Optional[AsyncRedisManager] = manager
        self._native = NativeServer(**native)
        self._pid = os.getpid()
        self._handlers = _base.Handlers(reserved=("connect", "disconnect"))
        self._runner = _base.Runner(self.logger, event_label="event {!r}")
        self._extra_namespaces: list[str] = (
            ["*"] if namespaces == "*" else list(namespaces or [])
        )
        self._environ: dict[tuple[str, str], dict[str, Any]] = {}
        self._sessions: dict[tuple[str, str], dict[str, Any]] = {}
        self._started = False
        self._wake_fd: Optional[int] = None
        self._stopped: Optional[asyncio.Event] = None

    # ---- running ----------------------------------------------------------------------------

    def start(
        self,
        host: str = "127.0.0.1",
        port: int = 5000,
        ssl_certfile: Optional[str] = None,
        ssl_keyfile: Optional[str] = None,
    ) -> tuple[str, int]:
        """Starts serving on ``host:port`` (0: a free port) and returns the bound address.

        Call it from async code: handlers run on the running event loop. Serving goes on in
        the background until :meth:`shutdown`. With ``ssl_certfile`` (a PEM certificate
        chain) and ``ssl_keyfile`` (its PEM key), uvicorn's names, it serves https and wss.
        """
        if (ssl_certfile is None) != (ssl_keyfile is None):
            raise ValueError("ssl_certfile and ssl_keyfile go together")
        cert = key = None
        if ssl_certfile is not None and ssl_keyfile is not None:
            with open(ssl_certfile, "rb") as f:
                cert = f.read()
            with open(ssl_keyfile, "rb") as f:
                key = f.read()
        loop = _base.running_loop("AsyncServer.start()")
        self._attach(loop)
        return self._native.listen(host, port, cert, key)

    def attach(self, app: Any, socketio_path: str = "socket.io") -> None:
        """Serves Socket.IO on ``/socketio_path/`` of an ``aiohttp.web.Application`` (GET,
        POST and OPTIONS routes), beside the application's own routes. The server starts with
        the application (or on its first request) and shuts down with it. For ASGI
        applications (FastAPI, Starlette...), wrap them in :class:`polysio.ASGIApp` instead.

        Example::

            from aiohttp import web

            app = web.Application()
            sio.attach(app)
            web.run_app(app, port=5000)
        """
        from .aiohttp import attach

        attach(self, app, socketio_path)

    def _serving(self) -> NativeServer:
        """The native server, started on the running loop if it is not yet (for hosts that
        hand it requests: ASGI, aiohttp)."""
        if not self._started:
            self._attach(_base.running_loop("serving a request"))
        return self._native

    async def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 5000,
        ssl_certfile: Optional[str] = None,
        ssl_keyfile: Optional[str] = None,
    ) -> None:
        """Serves on ``host:port`` until :meth:`shutdown` or cancellation (Ctrl-C under
        ``asyncio.run``), then shuts down cleanly (TLS as :meth:`start`)."""
        self.start(host, port, ssl_certfile, ssl_keyfile)
        assert self._stopped is not None
        try:
            await self._stopped.wait()
        finally:
            await self.shutdown()

    async def shutdown(self) -> None:
        """Disconnects every client (reason ``server shutting down``), runs the disconnect
        handlers, stops listening and frees the port. Running handlers get
        ``SHUTDOWN_GRACE`` seconds to finish. Later calls do nothing; using the server
        afterwards raises :class:`polysio.ShutdownError`."""
        if self._native.closed:
            return
        self._native.close()
        try:
            while self._drain():
                pass
            await self._runner.drain_tasks(SHUTDOWN_GRACE)
        finally:
            _base.detach_waker(self._native, self._runner.loop, self._wake_fd)
            self._native.release()
            if self._stopped is not None:
                self._stopped.set()

    def _attach(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._native.closed:
            raise ShutdownError("the server is shut down")
        if self._runner.loop is not None and self._runner.loop is not loop:
            raise RuntimeError("this server already runs on another event loop")
        if self._started:
            return
        if self._pid != os.getpid():
            # Created before fork() and never served (an app module imported by a pre-forking
            # server such as gunicorn --preload): this process gets a core of its own.
            self._native = NativeServer(**self._native_options)
            self._pid = os.getpid()
        self._started = True
        self._runner.loop = loop
        self._stopped = asyncio.Event()
        for ns in ["/", *self._handlers.namespaces(), *self._extra_namespaces]:
            self._native.add_namespace(ns)
        self._handlers.on_new_namespace = self._native.add_namespace
        if self.manager is not None:
            self.manager._start()
        self._wake_fd = _base.attach_waker(
            self._native, loop, self._drain, batch_acks=self._runner.executor is None
        )

    # ---- events from the core ---------------------------------------------------------------

    def _drain(self) -> bool:
        """Handles a slice of the core's events; True if more may be waiting (they are
        drained on the next turn of the loop)."""
        # The broadcasts of the handlers started here are written together once their first
        # steps have run (they are ahead of the uncork in the loop's queue): one write per
        # socket instead of one per broadcast.
        self._native.cork()
        more = False
        try:
            more = self._runner.drain(self._native.drain, self._dispatch, self._handlers)
        finally:
            loop = self._runner.loop
            if loop is not None and not loop.is_closed():
                loop.call_soon(self._native.uncork)
                if more:
                    loop.call_soon(self._drain)
            else:
                self._native.uncork()
        return more

    def _dispatch(self, ev: tuple[Any, ...]) -> None:
        kind = ev[0]
        if kind == "event":
            self._on_event(ev[1], ev[2], ev[3], ev[4], ev[5])
        elif kind == "connect":
            self._runner.spawn(self._on_connect(*ev[1:]))
        elif kind == "disconnect":
            self._on_disconnect(*ev[1:])
        elif kind == "recovered":
            self._environ[(ev[1], ev[2])] = ev[3]

    def _on_event(self, ns: str, event: str, args: tuple[Any, ...], ack: Any, hold: Any) -> None:
        """An event without a handler of its own (``args``: the sid, then the event's)."""
        handler, hargs = self._handlers.resolve(event, ns, args)
        if handler is None:
            self.logger.info("no handler for event %r on %s (from %s)", event, ns, args[0])
            return
        self._runner.event(event, handler, hargs, ack, hold)

    async def _on_connect(
        self, ns: str, sid: str, environ: dict[str, Any], auth: Any, reply: ConnectReply
    ) -> None:
        key = (ns, sid)
        self._environ[key] = environ
        refusal: Optional[dict[str, Any]] = None
        handler, args = self._handlers.resolve("connect", ns, (sid, environ, auth))
        if handler is not None:
            args = _base.fit(handler, args, optional=1)
            try:
                if await self._runner.run("connect", handler, args) is False:
                    refusal = ConnectionRefusedError().error_args
            except ConnectionRefusedError as exc:
                refusal = exc.error_args
            except builtins.ConnectionRefusedError:
                refusal = {"message": "Connection refused by server"}
            except Exception as exc:
                self._runner.failed("connect", handler, exc)
                refusal = ConnectionRefusedError().error_args
        if refusal is None:
            reply.accept()
        else:
            self._forget(key)
            reply.refuse(refusal["message"], refusal.get("data"))

    def _on_disconnect(self, ns: str, sid: str, reason: str) -> None:
        key = (ns, sid)
        handler, args = self._handlers.resolve("disconnect", ns, (sid, reason))
        if handler is None:
            self._forget(key)
            return
        args = _base.fit(handler, args, optional=1)
        self._runner.dispatch("disconnect", handler, args, after=lambda: self._forget(key))

    def _forget(self, key: tuple[str, str]) -> None:
        self._environ.pop(key, None)
        self._sessions.pop(key, None)

    # ---- actions (synchronous internals, thread-safe) ----------------------------------------

    def _emit(
        self,
        event: str,
        data: Any,
        to: Optional[Rooms],
        skip_sid: Optional[Rooms],
        namespace: Optional[str],
        callback: Optional[Callable[..., Any]],
    ) -> None:
        ns = namespace or "/"
        args = _base.data_args(data)
        if callback is None:
            # To a sid that has left: a room nobody is in, reaches nobody.
            self._native.emit(ns, event, args, _rooms(to), _rooms(skip_sid))
            return
        if not isinstance(to, str):
            raise ValueError("a callback needs a single recipient: to=<sid>")
        try:
            self._native.emit_with_ack(ns, to, event, args, self._runner.ack_callback(callback))
        except DisconnectedError:
            # The client has left (a timer firing after its disconnect...): a no-op, as in
            # Socket.IO; the callback is never called. Invalid arguments raised already.
            self.logger.debug("emit %r to %s, which has left: dropped", event, to)

    def _call_native(
        self,
        event: str,
        data: Any,
        sid: Optional[str],
        namespace: Optional[str],
        timeout: Optional[float],
        done: _base.Done,
    ) -> None:
        if sid is None:
            raise ValueError("Cannot use call() to broadcast: give to=<sid>")
        self._native.emit_with_ack(
            namespace or "/", sid, event, _base.data_args(data), done, timeout
        )

    def _known(self, sid: str, namespace: Optional[str]) -> tuple[str, str]:
        key = (namespace or "/", sid)
        if key not in self._environ:
            raise DisconnectedError(f"{sid} is not connected to namespace {key[0]}")
        return key

    def _get_session(self, sid: str, namespace: Optional[str]) -> dict[str, Any]:
        return self._sessions.setdefault(self._known(sid, namespace), {})

    def _save_session(self, sid: str, session: dict[str, Any], namespace: Optional[str]) -> None:
        self._sessions[self._known(sid, namespace)] = session

    # ---- public API -------------------------------------------------------------------------

    async def emit(
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
        """Emits ``event`` with ``data`` (a tuple sends several arguments) to a sid, a room or
        a list of rooms (``to`` / ``room``; everyone when omitted), except ``skip_sid`` (a sid
        or a list). ``callback(*args)`` gets the client's ack; it needs ``to=<sid>``.

        Emitting to a room nobody is in, or to a client that has left (an unknown sid), reaches
        nobody and raises nothing, as in Socket.IO (a callback is then never called); invalid
        arguments (a reserved event name, a value that cannot be sent) still raise.
        """
        self._emit(event, data, to if to is not None else room, skip_sid, namespace, callback)

    async def send(
        self,
        data: Any,
        to: Optional[Rooms] = None,
        room: Optional[Rooms] = None,
        skip_sid: Optional[Rooms] = None,
        namespace: Optional[str] = None,
        callback: Optional[Callable[..., Any]] = None,
        ignore_queue: bool = False,
    ) -> None:
        """Emits a ``message`` event (see :meth:`emit`)."""
        await self.emit("message", data, to, room, skip_sid, namespace, callback)

    async def call(
        self,
        event: str,
        data: Any = None,
        to: Optional[str] = None,
        sid: Optional[str] = None,
        namespace: Optional[str] = None,
        timeout: Optional[float] = 60,
        ignore_queue: bool = False,
    ) -> Any:
        """Emits ``event`` to one client and returns its ack: None, the only argument, or a
        tuple. Raises :class:`polysio.TimeoutError` after ``timeout`` seconds (None: no limit)
        and :class:`polysio.DisconnectedError` if the client is unknown or leaves first."""
        loop = _base.running_loop("AsyncServer.call()")
        fut: asyncio.Future[Any] = loop.create_future()
        try:
            self._call_native(event, data, to or sid, namespace, timeout, _base.completer(fut))
        except BaseException:
            fut.cancel()
            raise
        return _base.ack_result(await fut)

    async def enter_room(self, sid: str, room: str, namespace: Optional[str] = None) -> None:
        """Puts client ``sid`` in ``room``."""
        self._native.enter_room(namespace or "/", sid, room)

    async def leave_room(self, sid: str, room: str, namespace: Optional[str] = None) -> None:
        """Takes client ``sid`` out of ``room``."""
        self._native.leave_room(namespace or "/", sid, room)

    async def close_room(self, room: str, namespace: Optional[str] = None) -> None:
        """Takes every client out of ``room``."""
        self._native.close_room(namespace or "/", room)

    def rooms(self, sid: str, namespace: Optional[str] = None) -> list[str]:
        """The rooms client ``sid`` is in (its own sid included)."""
        return self._native.rooms(namespace or "/", sid)

    async def disconnect(
        self, sid: str, namespace: Optional[str] = None, ignore_queue: bool = False
    ) -> None:
        """Disconnects client ``sid`` from ``namespace``; nothing happens if it is not
        connected."""
        self._native.disconnect(namespace or "/", sid)

    async def get_session(self, sid: str, namespace: Optional[str] = None) -> dict[str, Any]:
        """The session dict of client ``sid`` (kept in this process until it disconnects)."""
        return self._get_session(sid, namespace)

    async def save_session(
        self, sid: str, session: dict[str, Any], namespace: Optional[str] = None
    ) -> None:
        """Replaces the session dict of client ``sid``."""
        self._save_session(sid, session, namespace)

    def session(self, sid: str, namespace: Optional[str] = None) -> "_SessionContext":
        """``async with sio.session(sid) as session:`` reads the session and saves it back."""
        return _SessionContext(self, sid, namespace)

    def transport(self, sid: str, namespace: Optional[str] = None) -> str:
        """``"polling"`` or ``"websocket"``."""
        return self._native.transport(namespace or "/", sid)

    def get_environ(self, sid: str, namespace: Optional[str] = None) -> Optional[dict[str, Any]]:
        """The WSGI-style environ of client ``sid``'s connection request, if connected."""
        return self._environ.get((namespace or "/", sid))

    def start_background_task(
        self, target: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> "asyncio.Task[Any]":
        """Runs coroutine function ``target(*args, **kwargs)`` as a task."""
        return self._runner.spawn(target(*args, **kwargs))

    async def sleep(self, seconds: float = 0) -> None:
        """``asyncio.sleep``."""
        await asyncio.sleep(seconds)


class _SessionContext:
    def __init__(self, server: AsyncServer, sid: str, namespace: Optional[str]) -> None:
        self.server = server
        self.sid = sid
        self.namespace = namespace
        self.session: dict[str, Any] = {}

    async def __aenter__(self) -> dict[str, Any]:
        self.session = await self.server.get_session(self.sid, self.namespace)
        return self.session

    async def __aexit__(self, *exc: Any) -> None:
        await self.server.save_session(self.sid, self.session, self.namespace)

    def __enter__(self) -> dict[str, Any]:
        self.session = self.server._get_session(self.sid, self.namespace)
        return self.session

    def __exit__(self, *exc: Any) -> None:
        self.server._save_session(self.sid, self.session, self.namespace)


__all__ = ["AsyncServer", "DisconnectReason"]
