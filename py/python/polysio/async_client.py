"""The asyncio Socket.IO client, shaped like python-socketio's ``AsyncClient``."""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from typing import Any, Callable, Optional, Union

from . import _base
from ._polysio import NativeClient
from .exceptions import BadNamespaceError, ConnectionError

#: Most of a shutdown is the core closing its transports gracefully; this bounds the wait.
SHUTDOWN_TIMEOUT = 5.0


class ClientDisconnectReason:
    """The reasons a client-side ``disconnect`` handler receives (socket.io-client's)."""

    #: The server disconnected the namespace; no reconnection follows.
    SERVER_DISCONNECT = "io server disconnect"
    #: ``disconnect()`` was called.
    CLIENT_DISCONNECT = "io client disconnect"
    #: The server stopped pinging.
    PING_TIMEOUT = "ping timeout"
    #: The connection was closed.
    TRANSPORT_CLOSE = "transport close"
    #: The connection failed.
    TRANSPORT_ERROR = "transport error"
    #: The server sent something that could not be decoded.
    PARSE_ERROR = "parse error"


def _read(path: Optional[str]) -> Optional[bytes]:
    """The bytes of a PEM file, or None."""
    if path is None:
        return None
    with open(path, "rb") as f:
        return f.read()


class AsyncClient(_base.Registry):
    """A Socket.IO client for asyncio, served by the polysio Rust core.

    Options (python-socketio's names; durations in seconds):
    ``reconnection`` (True), ``reconnection_attempts`` (0: unlimited), ``reconnection_delay``
    (1), ``reconnection_delay_max`` (5), ``randomization_factor`` (0.5), ``request_timeout``
    (20: the connection handshake), ``ack_timeout`` (None: acks of ``emit(callback=)`` wait
    until disconnection), ``send_buffer_max`` (10000 packets kept while disconnected),
    ``max_pending_messages`` (1024: events from the server handed to the handlers and not
    handled yet, an ``async def`` handler's until it finishes; past it the client reads nothing
    more from the server, which meets TCP backpressure, until the handlers catch up; nothing
    is dropped), ``logger``.

    TLS (``https://`` URLs): ``ssl_verify`` (True; False accepts any certificate, for
    development only, as python-socketio's), ``ssl_ca_certs`` (a PEM file of CA certificates
    trusted besides the system's roots: a private CA), ``ssl_certfile`` and ``ssl_keyfile``
    (the client's certificate and key, for servers that ask for one). A server whose
    certificate is not trusted fails the connection with a :class:`polysio.ConnectionError`
    that says so.

    ``proxy``: None (the default) uses the proxy the environment names (``HTTPS_PROXY``,
    ``HTTP_PROXY``, ``ALL_PROXY``, except ``NO_PROXY`` hosts and loopback addresses), ``False``
    none, ``"http://[user:password@]host:port"`` that HTTP CONNECT proxy for every transport.

    Handlers (plain or ``async def``) run on the event loop that called :meth:`connect`:
    ``connect()``, ``connect_error(data)``, ``disconnect(reason)`` (see
    :class:`ClientDisconnectReason`), and any event ``(*args)`` whose return value is the
    server's ack. ``"*"`` is a catch-all (the handler gets the event name first).

    Example::

        sio = polysio.AsyncClient()

        @sio.event
        async def chat(message):
            print("got", message)

        await sio.connect("http://127.0.0.1:5000", auth={"token": "abc"})
        print(await sio.call("chat", "hello"))
        await sio.disconnect()
    """

    reason = ClientDisconnectReason

    def __init__(
        self,
        reconnection: bool = True,
        reconnection_attempts: int = 0,
        reconnection_delay: float = 1,
        reconnection_delay_max: float = 5,
        randomization_factor: float = 0.5,
        logger: Union[bool, logging.Logger] = False,
        request_timeout: float = 20,
        ack_timeout: Optional[float] = None,
        send_buffer_max: int = 10_000,
        max_pending_messages: int = 1024,
        ssl_verify: bool = True,
        ssl_ca_certs: Optional[str] = None,
        ssl_certfile: Optional[str] = None,
        ssl_keyfile: Optional[str] = None,
        proxy: Union[None, bool, str] = None,
        **kwargs: Any,
    ) -> None:
        unknown = set(kwargs) - {"handle_sigint", "serializer", "json", "engineio_logger"}
        if unknown:
            raise TypeError(f"unknown AsyncClient options: {', '.join(sorted(unknown))}")
        if reconnection_attempts < 0:
            raise ValueError("reconnection_attempts must be >= 0 (0: unlimited)")
        if (
            isinstance(max_pending_messages, bool)
            or not isinstance(max_pending_messages, int)
            or max_pending_messages < 1
        ):
            raise ValueError(
                f"max_pending_messages must be an integer >= 1, got {max_pending_messages!r}"
            )
        self.reconnection = reconnection
        self.reconnection_attempts = reconnection_attempts
        self.reconnection_delay = reconnection_delay
        self.reconnection_delay_max = reconnection_delay_max
        self.randomization_factor = randomization_factor
        self.request_timeout = request_timeout
        self.ack_timeout = ack_timeout
        self.send_buffer_max = send_buffer_max
        self.max_pending_messages = max_pending_messages
        if (ssl_certfile is None) != (ssl_keyfile is None):
            raise ValueError("ssl_certfile and ssl_keyfile go together")
        self.ssl_verify = ssl_verify
        self.ssl_ca_certs = ssl_ca_certs
        self.ssl_certfile = ssl_certfile
        self.ssl_keyfile = ssl_keyfile
        if proxy is True or not (proxy is None or proxy is False or isinstance(proxy, str)):
            raise TypeError("proxy must be None, False or a proxy URL")
        self.proxy = proxy
        self.logger = _base.logger_for(logger)
        self._handlers = _base.Handlers(reserved=("connect", "connect_error", "disconnect"))
        self._runner = _base.Runner(self.logger)
        self._native: Optional[NativeClient] = None
        self._wake_loop: Optional[asyncio.AbstractEventLoop] = None
        self._wake_fd: Optional[int] = None
        #: Connected namespaces and their sids.
        self.namespaces: dict[str, str] = {}
        self._wanted: list[str] = []
        self._final: set[str] = set()
        self._outcome: dict[str, asyncio.Future[Any]] = {}
        self._retry = False
        self._done: Optional[asyncio.Event] = None

    # ---- connection -------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while at least one namespace is connected."""
        return bool(self.namespaces)

    @property
    def sid(self) -> Optional[str]:
        """The sid of the ``/`` namespace (or the first connected one)."""
        if "/" in self.namespaces:
            return self.namespaces["/"]
        return next(iter(self.namespaces.values()), None)

    def transport(self) -> Optional[str]:
        """The transport in use, ``'polling'`` or ``'websocket'`` (it changes when the upgrade
        completes); ``None`` while not connected."""
        native = self._native
        return native.transport() if native is not None else None

    def get_sid(self, namespace: Optional[str] = None) -> Optional[str]:
        """The sid of ``namespace`` (``/``), while connected."""
        return self.namespaces.get(namespace or "/")

    async def connect(
        self,
        url: str,
        headers: Optional[dict[str, str]] = None,
        auth: Any = None,
        transports: Union[None, str, list[str]] = None,
        namespaces: Union[None, str, list[str]] = None,
        socketio_path: str = "socket.io",
        wait: bool = True,
        wait_timeout: float = 1,
        retry: bool = False,
    ) -> None:
        """Connects to the server at ``url`` (``http://host:port``, optionally with a query).

        ``auth`` is a dict (or a function returning one, called at each connection);
        ``transports`` limits them (``["websocket"]``); ``namespaces`` defaults to those with
        handlers, else ``/``. With ``wait`` the call returns once every namespace is connected
        and raises :class:`polysio.ConnectionError` if one fails (``wait_timeout`` seconds
        after the handshake, which may itself take ``request_timeout``). With ``retry`` a
        failed first connection is retried with the reconnection settings.
        """
        if self._native is not None:
            raise ConnectionError("Already connected")
        loop = _base.running_loop("AsyncClient.connect()")
        if self._runner.loop is not None and self._runner.loop is not loop:
            raise RuntimeError("this client already ran on another event loop")
        self._runner.loop = loop
        if isinstance(transports, str):
            transports = [transports]
        if namespaces is None:
            wanted = self._handlers.namespaces() or ["/"]
        elif isinstance(namespaces, str):
            wanted = [namespaces]
        else:
            wanted = list(namespaces)
        parts = urllib.parse.urlsplit(url)
        base = urllib.parse.urlunsplit((parts.scheme, parts.netloc, "", parts.query, ""))
        native = NativeClient(
            base,
            transports=transports,
            path="/" + socketio_path.strip("/") + "/",
            headers=headers,
            reconnection=self.reconnection,
            reconnection_attempts=self.reconnection_attempts or None,
            reconnection_delay=self.reconnection_delay,
            reconnection_delay_max=self.reconnection_delay_max,
            randomization_factor=self.randomization_factor,
            timeout=self.request_timeout,
            ack_timeout=self.ack_timeout,
            send_buffer_max=self.send_buffer_max,
            max_pending_messages=self.max_pending_messages,
            ssl_verify=self.ssl_verify,
            ssl_ca=_read(self.ssl_ca_certs),
            ssl_cert=_read(self.ssl_certfile),
            ssl_key=_read(self.ssl_keyfile),
            proxy="" if self.proxy is False else self.proxy,
        )
        self._native = native
        self._wanted = wanted
        self._final = set()
        self._retry = retry
        self._done = asyncio.Event()
        self._outcome = {ns: loop.create_future() for ns in wanted}
        self._wake_loop = loop
        self._wake_fd = _base.attach_waker(
            native, loop, self._drain, batch_acks=self._runner.executor is None
        )
        try:
            for ns in wanted:
                native.connect_namespace(ns, auth)
        except BaseException:
            await self._close_native()
            raise
        if not wait:
            return
        limit = None if retry else self.request_timeout + wait_timeout
        await asyncio.wait(list(self._outcome.values()), timeout=limit)
        failures = {}
        for ns, fut in self._outcome.items():
            if not fut.done():
                failures[ns] = "timed out"
            elif fut.result() is not True:
                r = fut.result()
                failures[ns] = str(r.get("message", r) if isinstance(r, dict) else r)
        if failures:
            await self._close_native()
            detail = ", ".join(f"{ns} ({why})" for ns, why in failures.items())
            raise ConnectionError(f"One or more namespaces failed to connect: {detail}")

    async def wait(self) -> None:
        """Waits until the connection ends for good: :meth:`disconnect`, the server
        disconnecting every namespace, or reconnection giving up (or being off)."""
        if self._done is None:
            return
        await self._done.wait()

    async def disconnect(self) -> None:
        """Disconnects every namespace (reason ``io client disconnect``) and closes the
        connection; the disconnect handlers have run when this returns."""
        await self._close_native()

    async def shutdown(self) -> None:
        """Same as :meth:`disconnect` (stops reconnection attempts too)."""
        await self._close_native()

    async def _close_native(self) -> None:
        native = self._native
        if native is None:
            return
        loop = _base.running_loop("AsyncClient.disconnect()")
        try:
            native.disconnect()
            fut: asyncio.Future[Any] = loop.create_future()
            native.shutdown(_base.completer(fut))
            try:
                await asyncio.wait_for(fut, SHUTDOWN_TIMEOUT)
            except asyncio.TimeoutError:
                self.logger.warning(
                    "the client connection did not close within %s s", SHUTDOWN_TIMEOUT
                )
            while self._drain():
                pass
        finally:
            _base.detach_waker(native, self._wake_loop, self._wake_fd)
            native.release()
            self._native = None
        self.namespaces = {}
        for f in self._outcome.values():
            if not f.done():
                f.set_result({"message": "disconnected"})
        if self._done is not None:
            self._done.set()

    # ---- events from the core ---------------------------------------------------------------

    def _drain(self) -> bool:
        """Handles a slice of the core's events; True if more may be waiting (they are
        drained on the next turn of the loop)."""
        native = self._native
        if native is None:
            return False

        def dispatch(ev: tuple[Any, ...]) -> None:
            kind = ev[0]
            if kind == "event":
                self._on_event(ev[1], ev[2], ev[3], ev[4], ev[5])
            elif kind == "connect":
                self._on_connect(native, ev[1])
            elif kind == "connect_error":
                self._on_connect_error(ev[1], ev[2])
            elif kind == "disconnect":
                self._on_disconnect(ev[1], ev[3])
            elif kind == "manager":
                self._on_manager(ev[1])

        more = self._runner.drain(native.drain, dispatch, self._handlers)
        loop = self._wake_loop
        if more and loop is not None and not loop.is_closed():
            loop.call_soon(self._drain)
        return more

    def _dispatch(
        self, what: str, ns: str, args: tuple[Any, ...], ack: Any = None, optional: int = 0
    ) -> None:
        handler, hargs = self._handlers.resolve(what, ns, args)
        if handler is None:
            if what not in self._handlers.reserved:
                self.logger.info("no handler for event %r on %s", what, ns)
            return
        if optional:
            hargs = _base.fit(handler, hargs, optional)
        self._runner.dispatch(what, handler, hargs, self._runner.ack_sender(ack, what))

    def _on_event(self, ns: str, event: str, args: tuple[Any, ...], ack: Any, hold: Any) -> None:
        """An event without a handler of its own."""
        handler, hargs = self._handlers.resolve(event, ns, args)
        if handler is None:
            if event not in self._handlers.reserved:
                self.logger.info("no handler for event %r on %s", event, ns)
            return
        self._runner.event(event, handler, hargs, ack, hold)

    def _on_connect(self, native: NativeClient, ns: str) -> None:
        self.namespaces[ns] = native.sid(ns) or ""
        self._final.discard(ns)
        fut = self._outcome.get(ns)
        if fut is not None and not fut.done():
            fut.set_result(True)
        self._dispatch("connect", ns, ())

    def _on_connect_error(self, ns: str, data: Any) -> None:
        self._dispatch("connect_error", ns, (data,))
        fut = self._outcome.get(ns)
        refused = self._native is not None and not self._native.active(ns)
        if fut is not None and not fut.done() and (refused or not self._retry):
            fut.set_result(data if isinstance(data, dict) else {"message": str(data)})
        if refused:
            self._end(ns)

    def _on_disconnect(self, ns: str, reason: str) -> None:
        self.namespaces.pop(ns, None)
        self._dispatch("disconnect", ns, (reason,), optional=1)
        if reason in (ClientDisconnectReason.SERVER_DISCONNECT, ClientDisconnectReason.CLIENT_DISCONNECT) or not self.reconnection:
            self._end(ns)

    def _on_manager(self, event: str) -> None:
        if event == "reconnect_failed":
            for ns in self._wanted:
                fut = self._outcome.get(ns)
                if fut is not None and not fut.done():
                    fut.set_result({"message": "reconnection failed"})
                self._end(ns)

    def _end(self, ns: str) -> None:
        self._final.add(ns)
        if self._done is not None and all(n in self._final for n in self._wanted):
            self._done.set()

    # ---- actions (synchronous internals, thread-safe) ----------------------------------------

    def _live(self, namespace: Optional[str]) -> tuple[NativeClient, str]:
        ns = namespace or "/"
        if not isinstance(ns, str):
            raise TypeError(f"namespace must be a str, not {type(ns).__name__}")
        native = self._native
        if native is None or ns not in self._wanted:
            raise BadNamespaceError(f"{ns} is not a connected namespace.")
        return native, ns

    def _emit(
        self,
        event: str,
        data: Any,
        namespace: Optional[str],
        callback: Optional[Callable[..., Any]],
    ) -> None:
        native, ns = self._live(namespace)
        args = _base.data_args(data)
        if callback is None:
            native.emit(ns, event, args)
            return

        native.emit_with_ack(ns, event, args, self._runner.ack_callback(callback))

    def _call_native(self, event: str, data: Any, namespace: Optional[str], timeout: Optional[float], done: _base.Done) -> None:
        native, ns = self._live(namespace)
        native.emit_with_ack(ns, event, _base.data_args(data), done, timeout)

    # ---- public API -------------------------------------------------------------------------

    async def emit(
        self,
        event: str,
        data: Any = None,
        namespace: Optional[str] = None,
        callback: Optional[Callable[..., Any]] = None,
    ) -> None:
        """Emits ``event`` with ``data`` (a tuple sends several arguments); ``callback(*args)``
        gets the server's ack. While reconnecting, emits are buffered and sent on reconnection.
        Raises :class:`polysio.BadNamespaceError` for a namespace not given to ``connect()``."""
        self._emit(event, data, namespace, callback)

    async def send(
        self, data: Any, namespace: Optional[str] = None, callback: Optional[Callable[..., Any]] = None
    ) -> None:
        """Emits a ``message`` event."""
        self._emit("message", data, namespace, callback)

    async def call(
        self,
        event: str,
        data: Any = None,
        namespace: Optional[str] = None,
        timeout: Optional[float] = 60,
    ) -> Any:
        """Emits ``event`` and returns the server's ack (None, the only argument, or a tuple).
        Raises :class:`polysio.TimeoutError` after ``timeout`` seconds (None: no limit) and
        :class:`polysio.DisconnectedError` if the connection drops first."""
        loop = _base.running_loop("AsyncClient.call()")
        fut: asyncio.Future[Any] = loop.create_future()
        try:
            self._call_native(event, data, namespace, timeout, _base.completer(fut))
        except BaseException:
            fut.cancel()
            raise
        return _base.ack_result(await fut)

    def start_background_task(self, target: Callable[..., Any], *args: Any, **kwargs: Any) -> "asyncio.Task[Any]":
        """Runs coroutine function ``target(*args, **kwargs)`` as a task."""
        return self._runner.spawn(target(*args, **kwargs))

    async def sleep(self, seconds: float = 0) -> None:
        """``asyncio.sleep``."""
        await asyncio.sleep(seconds)


__all__ = ["AsyncClient", "ClientDisconnectReason"]
