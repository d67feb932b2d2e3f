"""Serving an :class:`polysio.AsyncServer` from any ASGI server (uvicorn, hypercorn...), beside
another ASGI application (FastAPI, Starlette...): python-socketio's ``ASGIApp``.

This module only translates: each request to the Socket.IO path crosses to the Rust core once
(``NativeServer.request``), which answers it or hands back a ticket; the core parses, routes,
broadcasts and keeps the heartbeats. A long-polling GET's response, and each batch of frames a
WebSocket is to send, come back through the server's event queue, so everything due at once
costs the event loop one wake-up.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import os
from typing import Any, Awaitable, Callable, Optional, Union

from ._polysio import BodyTicket, PollTicket, StaticFiles, WsConnection, WsTicket
from .async_server import AsyncServer

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApplication = Callable[[Scope, Receive, Send], Awaitable[None]]
#: A ``(status, [(name, value), ...], body)`` response from the core.
Response = tuple[int, list[tuple[bytes, bytes]], bytes]

#: WebSocket close codes of a failure rather than a close: protocol error, unsupported or
#: invalid data, message too big.
_WS_FAILURES = frozenset((1002, 1003, 1007, 1009))

#: How long a closed WebSocket waits for the client's close answer before it lets go, seconds.
CLOSE_TIMEOUT = 5.0


def normalize_path(path: Optional[str]) -> Optional[str]:
    """``"socket.io"`` -> ``"/socket.io/"``; None stays None (every request is Socket.IO's)."""
    if path is None:
        return None
    return "/" + path.strip("/") + "/" if path.strip("/") else "/"


async def _call(hook: Callable[[], Any]) -> None:
    result = hook()
    if inspect.isawaitable(result):
        await result


class ASGIApp:
    """An ASGI application serving ``socketio_server`` (a :class:`polysio.AsyncServer`) on
    ``socketio_path``, with python-socketio's signature and behaviour:

    - requests whose path starts with ``/socketio_path/`` are Socket.IO's; ``socketio_path=None``
      sends every request to Socket.IO (when routing is done by an outer layer). Mounted under
      a prefix (Starlette's ``app.mount("/ws", ...)``, which keeps the prefix in
      ``scope["path"]``), give the whole path as python-socketio wants
      (``socketio_path="ws/socket.io"``); the path without ``scope["root_path"]`` matches
      too, so the default ``socketio_path`` also works there;
    - ``static_files``: files served on other paths, python-engineio's rules
      (``{"/": "index.html", "/static": "./public"}``);
    - other requests go to ``other_asgi_app`` (404 without one), which keeps its routes and
      middleware;
    - lifespan: ``on_startup`` / ``on_shutdown`` (plain or ``async`` functions) run, and so do
      ``other_asgi_app``'s startup and shutdown; the Socket.IO server starts on startup (or the
      first request) on the server's event loop and shuts down (disconnect handlers with
      ``server shutting down``) before ``other_asgi_app``'s shutdown;
    - ``scope["client"]`` is the client address the handshake records (``REMOTE_ADDR``); a
      client that drops a parked long-polling GET ends its session; a refused WebSocket gets
      the HTTP error answer where the ASGI server offers ``websocket.http.response``, else a
      close.

    Example (run it with ``uvicorn module:app``)::

        import fastapi, polysio

        sio = polysio.AsyncServer(async_mode="asgi")
        fastapi_app = fastapi.FastAPI()
        app = polysio.ASGIApp(sio, other_asgi_app=fastapi_app)
    """

    def __init__(
        self,
        socketio_server: AsyncServer,
        other_asgi_app: Optional[ASGIApplication] = None,
        static_files: Optional[dict[str, Union[str, dict[str, str]]]] = None,
        socketio_path: Optional[str] = "socket.io",
        on_startup: Optional[Callable[[], Any]] = None,
        on_shutdown: Optional[Callable[[], Any]] = None,
    ) -> None:
        if not isinstance(socketio_server, AsyncServer):
            raise TypeError(
                "ASGIApp serves a polysio.AsyncServer, not "
                f"{type(socketio_server).__name__} (polysio.Server has its own listener)"
            )
        self.socketio_server = socketio_server
        #: python-engineio's name for it.
        self.engineio_server = socketio_server
        self.other_asgi_app = other_asgi_app
        self.socketio_path = normalize_path(socketio_path)
        self.static_files = static_files or {}
        self._statics = StaticFiles(self.static_files) if self.static_files else None
        self.on_startup = on_startup
        self.on_shutdown = on_shutdown

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            if self._routed(scope):
                await _http(self.socketio_server, scope, receive, send)
                return
            if self._statics is not None and await self._static(scope, send):
                return
        elif kind == "websocket":
            if self._routed(scope):
                await _websocket(self.socketio_server, scope, receive, send)
                return
        elif kind == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if self.other_asgi_app is not None:
            await self.other_asgi_app(scope, receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close"})
        else:
            await _respond(send, (404, [(b"content-type", b"text/plain")], b"Not Found"))

    def _routed(self, scope: Scope) -> bool:
        prefix = self.socketio_path
        if prefix is None:
            return True
        path: str = scope["path"]
        if not path.endswith("/"):
            path += "/"
        if path.startswith(prefix):
            return True
        root: str = scope.get("root_path") or ""
        return bool(root) and path.startswith(root) and path[len(root) :].startswith(prefix)

    async def _static(self, scope: Scope, send: Send) -> bool:
        assert self._statics is not None
        found = self._statics.lookup(scope["path"])
        if found is None or not os.path.isfile(found[0]):
            return False
        filename, content_type = found
        with open(filename, "rb") as f:
            body = f.read()
        await _respond(send, (200, [(b"content-type", content_type.encode())], body))
        return True

    # ---- lifespan ----------------------------------------------------------------------------

    async def _startup(self) -> None:
        self.socketio_server._serving()
        if self.on_startup is not None:
            await _call(self.on_startup)

    async def _shutdown(self) -> None:
        try:
            if self.on_shutdown is not None:
                await _call(self.on_shutdown)
        finally:
            await self.socketio_server.shutdown()

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        other = self.other_asgi_app
        if other is None:
            await self._own_lifespan(receive, send)
            return
        # Ours runs inside the other application's: our startup once its startup completed,
        # our shutdown before its shutdown begins.
        seen: list[str] = []

        async def inner_receive() -> Message:
            message = await receive()
            seen.append(message["type"])
            if message["type"] == "lifespan.shutdown":
                await self._shutdown()
            return message

        async def inner_send(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                try:
                    await self._startup()
                except Exception as exc:
                    message = {"type": "lifespan.startup.failed", "message": repr(exc)}
            await send(message)

        try:
            await other(scope, inner_receive, inner_send)
        except Exception:
            if seen:
                raise
            # The other application does not speak lifespan: ours alone.
            await self._own_lifespan(receive, send)

    async def _own_lifespan(self, receive: Receive, send: Send) -> None:
        steps = {"lifespan.startup": self._startup, "lifespan.shutdown": self._shutdown}
        while True:
            kind = (await receive())["type"]
            step = steps.get(kind)
            if step is None:
                continue
            try:
                await step()
            except Exception as exc:
                await send({"type": kind + ".failed", "message": repr(exc)})
                return
            await send({"type": kind + ".complete"})
            if kind == "lifespan.shutdown":
                return


# ---- one request ----------------------------------------------------------------------------


def _query(scope: Scope) -> str:
    q = scope.get("query_string") or b""
    return q.decode("latin-1") if isinstance(q, bytes) else str(q)


async def _respond(send: Send, response: Response) -> None:
    status, headers, body = response
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _completer(fut: "asyncio.Future[Any]") -> Callable[[Any, Any], None]:
    def done(value: Any, exc: Any) -> None:
        if not fut.done():
            fut.set_result(value)

    return done


async def _http(server: AsyncServer, scope: Scope, receive: Receive, send: Send) -> None:
    native = server._serving()
    reply = native.request(
        scope["method"],
        scope["path"],
        _query(scope),
        scope["headers"],
        scope.get("client"),
        scope.get("scheme") == "https",
    )
    if type(reply) is tuple:
        await _respond(send, reply)
    elif isinstance(reply, PollTicket):
        await _poll(reply, receive, send)
    elif isinstance(reply, BodyTicket):
        await _post(reply, receive, send)
    else:
        # A WebSocket handshake the ASGI server gave as HTTP: it has no WebSocket support.
        del reply
        await _respond(send, (400, [], b"this ASGI server does not serve WebSockets"))


async def _poll(ticket: PollTicket, receive: Receive, send: Send) -> None:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Response] = loop.create_future()
    ticket.start(_completer(fut))
    gone = asyncio.ensure_future(_until_disconnect(receive))
    try:
        await asyncio.wait((fut, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not fut.done():
            # The client went away (or the request was cancelled): the GET is aborted.
            ticket.cancel()
            fut.cancel()
    if fut.done() and not fut.cancelled():
        await _respond(send, fut.result())


async def until_ready(ticket: Union[BodyTicket, WsConnection]) -> None:
    """Waits until the session may take more messages (its handlers caught up with the
    ``max_pending_messages`` in hand; at once when they have): until then the host reads nothing
    from the client, which meets TCP backpressure. Shared with the aiohttp driver."""
    if ticket.ready():
        return
    fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    ticket.wait_ready(_completer(fut))
    await fut


async def _post(ticket: BodyTicket, receive: Receive, send: Send) -> None:
    await until_ready(ticket)
    limit, max_chunks = ticket.limit, ticket.max_chunks
    chunks: list[bytes] = []

    async def read() -> Optional[Response]:
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    return ticket.too_large()
                if len(chunks) == max_chunks:
                    return ticket.too_many_chunks()
                chunks.append(chunk)
            if not message.get("more_body", False):
                return ticket.finish(chunks[0] if len(chunks) == 1 else b"".join(chunks))

    try:
        # http_request_body_timeout, counted once the session was ready for the body.
        response = await asyncio.wait_for(read(), ticket.timeout)
    except asyncio.TimeoutError:
        response = ticket.timed_out()
    if response is None:
        ticket.abort()
        return
    await _respond(send, response)


class _Writer:
    """Sends the batches of frames the core hands over for one WebSocket, one batch at a time
    (the next comes after ``sent()``). A batch that cannot be sent within ``write_timeout``
    seconds (the client stopped reading) ends the writer, and with it the WebSocket."""

    def __init__(self, send: Send, write_timeout: float) -> None:
        self.send = send
        self.write_timeout = write_timeout
        self.ready: collections.deque[Optional[list[Union[str, bytes]]]] = collections.deque()
        self.waiter: Optional[asyncio.Future[None]] = None
        self.closed = False
        #: The batch being sent did not go out within ``write_timeout``.
        self.stuck = False

    def on_batch(self, frames: Optional[list[Union[str, bytes]]], exc: Any) -> None:
        self.ready.append(frames)
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def run(self, conn: WsConnection) -> None:
        send = self.send
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()
        assert me is not None

        def stuck() -> None:
            self.stuck = True
            me.cancel()

        while True:
            while not self.ready:
                self.waiter = loop.create_future()
                await self.waiter
            frames = self.ready.popleft()
            if frames is None:
                self.closed = True
                await send({"type": "websocket.close", "code": 1000})
                return
            # One timer per batch (cheaper than a timeout per frame).
            timer = loop.call_later(self.write_timeout, stuck)
            try:
                for f in frames:
                    if type(f) is str:
                        await send({"type": "websocket.send", "text": f})
                    else:
                        await send({"type": "websocket.send", "bytes": f})
            except asyncio.CancelledError:
                if self.stuck:
                    return
                raise
            finally:
                timer.cancel()
            conn.sent()


async def _refuse_websocket(scope: Scope, send: Send, response: Response) -> None:
    status, headers, body = response
    if "websocket.http.response" in (scope.get("extensions") or {}):
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        reason = body.decode("utf-8", "replace")[:120]
        await send({"type": "websocket.close", "code": 1008, "reason": reason})


async def _websocket(server: AsyncServer, scope: Scope, receive: Receive, send: Send) -> None:
    if (await receive())["type"] != "websocket.connect":
        return
    native = server._serving()
    reply = native.request(
        "GET",
        scope["path"],
        _query(scope),
        scope["headers"],
        scope.get("client"),
        scope.get("scheme") == "wss",
        True,
    )
    if type(reply) is tuple:
        await _refuse_websocket(scope, send, reply)
        return
    if not isinstance(reply, WsTicket):
        del reply
        await send({"type": "websocket.close", "code": 1002})
        return
    accept: Message = {"type": "websocket.accept"}
    headers = reply.headers
    if headers:
        accept["headers"] = headers
    await send(accept)
    writer = _Writer(send, server._write_timeout)
    conn = reply.run(writer.on_batch)
    task = asyncio.ensure_future(writer.run(conn))

    async def read() -> None:
        while True:
            # The next message only once the handlers keep up (max_pending_messages).
            if not conn.ready():
                await until_ready(conn)
            message = await receive()
            kind = message["type"]
            if kind == "websocket.receive":
                text = message.get("text")
                if text is not None:
                    conn.text(text)
                else:
                    conn.binary(message.get("bytes") or b"")
            elif kind == "websocket.disconnect":
                # A protocol violation is the session's `transport error`, as engine.io reports
                # a failed WebSocket; any other end (a close, a lost connection) its close.
                conn.close(message.get("code") in _WS_FAILURES)
                return

    reader = asyncio.ensure_future(read())
    try:
        # Until the client leaves, or the writer ends: the session closed (the close is sent),
        # or a write did not finish within write_timeout (the client stopped reading).
        await asyncio.wait((reader, task), return_when=asyncio.FIRST_COMPLETED)
        if writer.closed and not reader.done():
            # The close went out: the client's answer ends the WebSocket (as it did before).
            await asyncio.wait((reader,), timeout=CLOSE_TIMEOUT)
    finally:
        conn.close()
        await _stop(reader)
        await _stop(task)


async def _stop(task: "asyncio.Task[None]") -> None:
    """Ends a WebSocket's writer: once the WebSocket is closed, what it could not send (the
    client is gone) does not matter."""
    task.cancel()
    await asyncio.wait((task,))
    if not task.cancelled():
        task.exception()


__all__ = ["ASGIApp"]
