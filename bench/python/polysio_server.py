"""This project's server through its Python binding, for the benchmarks:
``python polysio_server.py PORT`` serves 127.0.0.1:PORT. The handlers are bench/python/server.py's
(python-socketio's API); the broadcast's fan-out happens in Rust."""
import asyncio
import sys

import polysio

sio = polysio.AsyncServer()


@sio.on("echo")
async def echo(sid, payload):
    return payload


@sio.on("bcast")
async def bcast(sid, payload):
    await sio.emit("bcast", payload)


if __name__ == "__main__":
    print("listening on 127.0.0.1:%s" % sys.argv[1], flush=True)
    asyncio.run(sio.serve("127.0.0.1", int(sys.argv[1])))
