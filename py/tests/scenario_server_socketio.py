"""The cross-language scenario server, written with the reference python-socketio
(``socketio.AsyncServer`` as an ASGI app under uvicorn), for ``tests/run-server python-socketio``.

Same behaviour as core/examples/test_server.rs, except that python-socketio has no connect
timeout: pingInterval 300 ms, pingTimeout 200 ms; namespaces ``/`` and ``/custom``; on connect
it emits ``auth`` with the handshake's auth; on ``/``, ``message`` is answered with
``message-back`` and ``message-with-ack`` is acked, both with the same arguments.

Usage: ``python scenario_server_socketio.py PORT`` (prints ``listening PORT``).
"""

import asyncio
import sys

import socketio
import uvicorn


def make_app() -> socketio.ASGIApp:
    sio = socketio.AsyncServer(
        async_mode="asgi", ping_interval=0.3, ping_timeout=0.2, namespaces=["/", "/custom"]
    )

    for ns in ("/", "/custom"):
        # Emitted before python-socketio sends the CONNECT reply; clients hold such events until
        # the namespace is connected.
        async def connect(sid, environ, auth=None, ns=ns):
            await sio.emit("auth", auth if auth is not None else {}, to=sid, namespace=ns)

        sio.on("connect", connect, namespace=ns)

    @sio.on("message")
    async def message(sid, *args):
        await sio.emit("message-back", tuple(args), to=sid)

    @sio.on("message-with-ack")
    async def message_with_ack(sid, *args):
        return tuple(args)

    return socketio.ASGIApp(sio)


async def main(port: int) -> None:
    config = uvicorn.Config(make_app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    while not server.started:
        if task.done():
            task.result()
            return
        await asyncio.sleep(0.05)
    bound = server.servers[0].sockets[0].getsockname()[1]
    print(f"listening {bound}", flush=True)
    await task


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000))
