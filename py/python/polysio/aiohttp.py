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
        limit = ticket.limit
        body = bytearray()
        try:
            while True:
                chunk = await request.content.readany()
                if not chunk:
                    break
                body += chunk
                if len(body) > limit:
                    return _response(ticket.too_large())
        except (ConnectionError, asyncio.CancelledError):
            ticket.abort()
            raise
        return _response(ticket.finish(bytes(body)))

    async def _websocket(self, request: web.Request, ticket: WsTicket) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=self.server._max_http_buffer_size)
        for name, value in ticket.headers:
            ws.headers.add(name.decode("latin-1"), value.decode("latin-1"))
        await ws.prepare(request)
        ready: asyncio.Queue[Optional[list[Union[str, bytes]]]] = asyncio.Queue()
        conn = ticket.run(lambda frames, exc: ready.put_nowait(frames))

        async def write() -> None:
            while True:
                frames = await ready.get()
                if frames is None:
                    await ws.close()
                    return
                for f in frames:
                    if type(f) is str:
                        await ws.send_str(f)
                    else:
                        await ws.send_bytes(f)  # type: ignore[arg-type]
                conn.sent()

        writer = asyncio.ensure_future(write())
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    conn.text(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    conn.binary(msg.data)
        finally:
            conn.close()
            writer.cancel()
            await asyncio.wait((writer,))
            if not writer.cancelled():
                writer.exception()
        return ws


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
