"""This project's server through its Python binding, for the benchmarks:
``python polysio_server.py PORT`` serves 127.0.0.1:PORT on polysio's own listener;
``python polysio_server.py --asgi PORT`` serves it as ``polysio.ASGIApp`` under uvicorn, with
bench/python/server.py's uvicorn settings. The handlers are bench/python/server.py's
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
    args = sys.argv[1:]
    asgi = args[:1] == ["--asgi"]
    if asgi:
        args = args[1:]
    if len(args) != 1 or not args[0].isdigit():
        sys.exit("usage: python polysio_server.py [--asgi] PORT")
    port = int(args[0])
    if asgi:
        import uvicorn

        uvicorn.run(polysio.ASGIApp(sio), host="127.0.0.1", port=port,
                    log_level="warning", access_log=False)
    else:
        print("listening on 127.0.0.1:%s" % port, flush=True)
        asyncio.run(sio.serve("127.0.0.1", port))
