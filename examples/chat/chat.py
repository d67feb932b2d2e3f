"""The chat demo served by polysio from Python: the page examples/chat/index.html (official
socket.io browser client), rooms and typing indicators; the same behaviour as
core/examples/chat.rs.

Usage: python examples/chat/chat.py [PORT]   (default 3000), then open the printed URL.
Needs the polysio package (`pip install ./py`) and the npm socket.io package for the browser
client (`cd tests/node && npm ci`).
"""

import asyncio
import sys
from pathlib import Path

import polysio

HERE = Path(__file__).resolve().parent
CLIENT_JS = HERE.parent.parent / "tests/node/node_modules/socket.io/client-dist/socket.io.min.js"

sio = polysio.AsyncServer(
    static_files={
        "/": str(HERE / "index.html"),
        "/client/socket.io.min.js": str(CLIENT_JS),
    }
)


@sio.event
async def join(sid, room="lobby"):
    """Moves the client to `room` (leaving the others); the ack tells it where it is."""
    for r in sio.rooms(sid):
        if r != sid:
            await sio.leave_room(sid, r)
    await sio.enter_room(sid, room)
    await sio.save_session(sid, {"room": room})
    return room


async def room_of(sid):
    return (await sio.get_session(sid)).get("room", "lobby")


@sio.event
async def chat(sid, message):
    """To everyone in the room, the sender included."""
    await sio.emit("chat", message, to=await room_of(sid))


@sio.event
async def typing(sid, name):
    """To the others in the room."""
    await sio.emit("typing", name, to=await room_of(sid), skip_sid=sid)


async def main(port):
    host, port = sio.start("127.0.0.1", port)
    print(f"chat demo running: open http://{host}:{port}/", flush=True)
    try:
        await asyncio.Event().wait()  # until Ctrl-C
    finally:
        await sio.shutdown()


if __name__ == "__main__":
    if not CLIENT_JS.exists():
        sys.exit(f"missing {CLIENT_JS}: run `npm ci` in tests/node first")
    try:
        asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000))
    except KeyboardInterrupt:
        pass
