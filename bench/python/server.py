"""The python-socketio server of the benchmarks, under uvicorn: ``python server.py PORT`` serves
127.0.0.1:PORT. echo: acks with the payload; bcast: broadcasts the payload to everyone, then
acks."""
import sys

import socketio
import uvicorn

sio = socketio.AsyncServer(async_mode="asgi")


@sio.on("echo")
async def echo(sid, payload):
    return payload


@sio.on("bcast")
async def bcast(sid, payload):
    await sio.emit("bcast", payload)


if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit("usage: python server.py PORT")
    uvicorn.run(socketio.ASGIApp(sio), host="127.0.0.1", port=int(sys.argv[1]),
                log_level="warning", access_log=False)
