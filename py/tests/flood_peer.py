"""A peer that floods, run in a process of its own so that its memory does not count in the
measurements of the test process (py/tests/test_limits.py).

    python flood_peer.py client URL COUNT TRANSPORT   # emits COUNT events "flood" (0..COUNT-1)
    python flood_peer.py server COUNT                 # serves; emits COUNT events to whoever
                                                      # connects, prints its port first

The client emits as fast as the connection takes them: on ``BufferFull`` (its send buffer is
full because the server stopped reading) it waits a little and emits the same event again, so
every event is sent exactly once. It prints ``sent COUNT`` when all are handed to the core, then
``done`` once the server acknowledged the last one (which it handles after all the others), and
exits.
"""

from __future__ import annotations

import asyncio
import sys

import polysio


async def client(url: str, count: int, transport: str) -> None:
    c = polysio.AsyncClient(reconnection=False)
    await c.connect(url, transports=[transport])
    full = 0
    i = 0
    while i < count:
        try:
            await c.emit("flood", i)
        except polysio.BufferFullError:
            full += 1
            await asyncio.sleep(0.002)
            continue
        i += 1
    print(f"sent {count} (buffer full {full} times)", flush=True)
    print("done", await c.call("flood_end", timeout=600), flush=True)
    await c.disconnect()


async def server(count: int) -> None:
    sio = polysio.AsyncServer(ping_interval=60, ping_timeout=60)
    stop = asyncio.Event()

    @sio.event
    async def connect(sid: str, environ: dict, auth: object) -> None:
        async def flood() -> None:
            for i in range(count):
                await sio.emit("flood", i, to=sid)
                if i % 1000 == 999:
                    await asyncio.sleep(0)  # let the core's threads write meanwhile
            await sio.emit("flood_end", count, to=sid)

        sio.start_background_task(flood)

    @sio.event
    def disconnect(sid: str, reason: str) -> None:
        stop.set()

    host, port = sio.start("127.0.0.1", 0)
    print(port, flush=True)
    await stop.wait()
    await sio.shutdown()


def main() -> None:
    mode = sys.argv[1]
    if mode == "client":
        asyncio.run(client(sys.argv[2], int(sys.argv[3]), sys.argv[4]))
    else:
        asyncio.run(server(int(sys.argv[2])))


if __name__ == "__main__":
    main()
