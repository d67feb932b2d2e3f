"""The cross-language scenario server, through polysio's AsyncServer.

Same behaviour as core/examples/test_server.rs: pingInterval 300 ms, pingTimeout 200 ms,
connectTimeout 1000 ms; namespaces ``/`` and ``/custom``; on connect it emits ``auth`` with
the handshake's auth; on ``/``, ``message`` is answered with ``message-back`` (same arguments)
and ``message-with-ack`` is acked with the same arguments.

Usage: ``python scenario_server.py PORT`` (prints ``listening PORT``; stops on SIGINT/SIGTERM).
"""

import asyncio
import signal
import sys

import polysio


def make_server() -> polysio.AsyncServer:
    sio = polysio.AsyncServer(ping_interval=0.3, ping_timeout=0.2, connect_timeout=1.0)

    for ns in ("/", "/custom"):

        async def connect(sid, environ, auth, ns=ns):
            await sio.emit("auth", auth if auth is not None else {}, to=sid, namespace=ns)

        sio.on("connect", connect, namespace=ns)

    @sio.on("message")
    async def message(sid, *args):
        await sio.emit("message-back", tuple(args), to=sid)

    @sio.on("message-with-ack")
    def message_with_ack(sid, *args):
        return tuple(args)

    return sio


async def main(port: int) -> None:
    sio = make_server()
    _, bound = sio.start("127.0.0.1", port)
    print(f"listening {bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(s, stop.set)
    await stop.wait()
    await sio.shutdown()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000))
