"""The scenario server of tests/SCENARIOS.md on PyPI python-socketio, served by uvicorn.

    python scenario_server.py PORT
"""
import sys

import socketio
import uvicorn

# pingTimeout 2 s rather than the scenarios' 200 ms: python-socketio's heartbeat drops healthy
# clients at 200 ms (seen in the rooms-broadcast scenario); no scenario depends on it.
sio = socketio.AsyncServer(async_mode="asgi", ping_interval=0.3, ping_timeout=2,
                           cors_allowed_origins="*")


def setup(nsp):
    @sio.on("connect", namespace=nsp)
    async def connect(sid, environ, auth):
        auth = auth if auth is not None else {}
        if isinstance(auth, dict) and "refuse" in auth:
            raise socketio.exceptions.ConnectionRefusedError("refused", {"reason": auth["refuse"]})
        await sio.emit("auth", auth, to=sid, namespace=nsp)

    @sio.on("message", namespace=nsp)
    async def message(sid, *args):
        await sio.emit("message-back", args, to=sid, namespace=nsp)

    @sio.on("message-with-ack", namespace=nsp)
    async def message_with_ack(sid, *args):
        return args

    @sio.on("ask", namespace=nsp)
    async def ask(sid, *args):
        async def answered(*reply):
            await sio.emit("answer", reply, to=sid, namespace=nsp)
        await sio.emit("question", args, to=sid, namespace=nsp, callback=answered)

    @sio.on("join", namespace=nsp)
    async def join(sid, room):
        await sio.enter_room(sid, room, namespace=nsp)
        return room

    @sio.on("to-room", namespace=nsp)
    async def to_room(sid, room, *args):
        await sio.emit("room-message", args, room=room, namespace=nsp)

    @sio.on("broadcast", namespace=nsp)
    async def broadcast(sid, *args):
        await sio.emit("broadcast", args, skip_sid=sid, namespace=nsp)

    @sio.on("disconnect-me", namespace=nsp)
    async def disconnect_me(sid, *args):
        await sio.disconnect(sid, namespace=nsp)


setup("/")
setup("/custom")

if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    uvicorn.run(socketio.ASGIApp(sio), host="127.0.0.1", port=port, log_level="warning")
