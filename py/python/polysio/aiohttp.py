"""Serving an :class:`polysio.AsyncServer` on an ``aiohttp.web.Application``:
python-socketio's ``sio.attach(app)`` (see :meth:`polysio.AsyncServer.attach`).

Like the ASGI driver (:mod:`polysio.asgi`), it only translates: each request crosses to the
Rust core once, long-polling responses and WebSocket batches come back through the server's
event queue.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, Optional, Union

from aiohttp import WSMsgType, web

from ._polysio import BodyTicket, PollTicket, WsTicket
from .asgi import until_ready
from .async_server import AsyncServer

#: How often parked long-polling GETs are checked for clients that went away, in seconds
#: (aiohttp does not cancel handlers when their client disconnects, unless asked to).
DISCONNECT_CHECK = 0.5


def _response(reply: tuple[int, list[tuple[bytes, bytes]], bytes]) -> web.Response:
    status, headers, body = reply
    r = web.Response(status=status, body=body)
    for name, value in headers:
        if name != b"content-type":
            r.headers.add(name.decode("latin-1"), value.decode("latin-1"))
        else:
            r.headers["Content-Type"] = value.decode("latin-1")
    return r


class _Handler:
    """The aiohttp request handler of one server."""

    def __init__(self, server: AsyncServer) -> None:
        self.server = server
        #: Parked long-polling GETs: their transport, to notice a client that went away.
        self.parked: "weakref.WeakKeyDictionary[asyncio.Future[Any], asyncio.BaseTransport]" = (
            weakref.WeakKeyDictionary()
        )
        self.watcher: Optional[asyncio.Task[None]] = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        native = self.server._serving()
        transport = request.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        websocket = request.headers.get("Upgrade", "").lower() == "websocket"
        reply = native.request(
            request.method,
            request.path,
            request.query_string,
            request.raw_headers,
            peer if isinstance(peer, (tuple, list)) else None,
            request.secure,
            websocket,
        )
        if type(reply) is tuple:
            return _response(reply)
        if isinstance(reply, PollTicket):
            return await self._poll(request, reply)
        if isinstance(reply, BodyTicket):
            return await self._post(request, reply)
        assert isinstance(reply, WsTicket)
        return await self._websocket(request, reply)

    async def _poll(self, request: web.Request, ticket: PollTicket) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()

        def done(value: Any, exc: Any) -> None:
            if not fut.done():
                fut.set_result(value)

        ticket.start(done)
        transport = request.transport
        if transport is not None:
            self.parked[fut] = transport
            if self.watcher is None or self.watcher.done():
                self.watcher = asyncio.ensure_future(self._watch())
        try:
            reply = await fut
        finally:
            if not fut.done() or fut.cancelled():
                ticket.cancel()
        if reply is None:
            # The client went away: nothing to answer.
            ticket.cancel()
            return web.Response(status=499)
        return _response(reply)

    async def _watch(self) -> None:
        while self.parked:
            await asyncio.sleep(DISCONNECT_CHECK)
            for fut, transport in list(self.parked.items()):
                if fut.done():
                    self.parked.pop(fut, None)
                elif transport.is_closing():
                    self.parked.pop(fut, None)
                    fut.set_result(None)

    async def _post(self, request: web.Request, ticket: BodyTicket) -> web.StreamResponse:
        await until_ready(ticket)
        limit, max_chunks = ticket.limit, ticket.max_chunks

        async def read() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            body = bytearray()
            chunks = 0
            while True:
                # What has arrived, as aiohttp buffers it: a chunk here may be several of the
                # client's (max_buffered_chunks then bounds the reads rather than the packets).
                chunk = await request.content.readany()
                if not chunk:
                    return ticket.finish(bytes(body))
                chunks += 1
                if chunks > max_chunks:
                    return ticket.too_many_chunks()
                body += chunk
                if len(body) > limit:
                    return ticket.too_large()

        try:
            # http_request_body_timeout, counted once the session was ready for the body.
            reply = await asyncio.wait_for(read(), ticket.timeout)
        except asyncio.TimeoutError:
            reply = ticket.timed_out()
        except (ConnectionError, asyncio.CancelledError):
            ticket.abort()
            raise
        response = _response(reply)
        if reply[0] != 200:
            # The rest of the body is not read: the connection cannot serve another request.
            response.force_close()
        return response

    async def _websocket(self, request: web.Request, ticket: WsTicket) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=self.server._max_http_buffer_size)
        for name, value in ticket.headers:
            ws.headers.add(name.decode("latin-1"), value.decode("latin-1"))
        await ws.prepare(request)
        ready: asyncio.Queue[Optional[list[Union[str, bytes]]]] = asyncio.Queue()
        conn = ticket.run(lambda frames, exc: ready.put_nowait(frames))
        write_timeout = self.server._write_timeout
        loop = asyncio.get_running_loop()
        stuck = False

        async def write() -> None:
            nonlocal stuck
            me = asyncio.current_task()
            assert me is not None

            def on_stuck() -> None:
                nonlocal stuck
                stuck = True
                me.cancel()

            while True:
                frames = await ready.get()
                if frames is None:
                    await ws.close()
                    return
                # A batch that cannot be sent within write_timeout (the client stopped
                # reading) ends the WebSocket.
                timer = loop.call_later(write_timeout, on_stuck)
                try:
                    for f in frames:
                        if type(f) is str:
                            await ws.send_str(f)
                        else:
                            await ws.send_bytes(f)  # type: ignore[arg-type]
                except asyncio.CancelledError:
                    if stuck:
                        return
                    raise
                finally:
                    timer.cancel()
                conn.sent()

        async def read() -> None:
            while True:
                # The next message only once the handlers keep up (max_pending_messages).
                if not conn.ready():
                    await until_ready(conn)
                msg = await ws.receive()
                if msg.type == WSMsgType.TEXT:
                    conn.text(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    conn.binary(msg.data)
                elif msg.type in _WS_ENDS:
                    # A failed WebSocket (a protocol violation) is the session's `transport
                    # error`, as engine.io reports it; any other end its close.
                    conn.close(msg.type == WSMsgType.ERROR)
                    return

        writer = asyncio.ensure_future(write())
        reader = asyncio.ensure_future(read())
        try:
            await asyncio.wait((reader, writer), return_when=asyncio.FIRST_COMPLETED)
            if stuck:
                # Nothing more can be written; let the connection go without a close handshake.
                if request.transport is not None:
                    request.transport.abort()
            elif writer.done() and not reader.done():
                # The close went out (ws.close() waited for the client's answer).
                await asyncio.wait((reader,), timeout=1)
        finally:
            conn.close()
            for t in (reader, writer):
                t.cancel()
            await asyncio.wait((reader, writer))
            for t in (reader, writer):
                if not t.cancelled():
                    t.exception()
        return ws


#: The messages that end a WebSocket, as aiohttp's ``async for`` sees them (and a failure).
_WS_ENDS = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)


def attach(server: AsyncServer, app: web.Application, socketio_path: str = "socket.io") -> None:
    """Adds the Socket.IO routes to ``app`` (see :meth:`polysio.AsyncServer.attach`)."""
    if not isinstance(app, web.Application):
        raise TypeError(
            "attach() takes an aiohttp.web.Application; for ASGI applications (FastAPI, "
            f"Starlette...) use polysio.ASGIApp (got {type(app).__name__})"
        )
    path = "/" + socketio_path.strip("/") + "/"
    handler = _Handler(server)
    # Every method: the core answers the ones Engine.IO does not use with the reference's 400,
    # where aiohttp's router would say 405.
    app.router.add_route("*", path, handler.handle)

    async def startup(app: web.Application) -> None:
        server._serving()

    async def shutdown(app: web.Application) -> None:
        await server.shutdown()

    app.on_startup.append(startup)
    app.on_shutdown.append(shutdown)


__all__ = ["attach"]
