"""examples/chat/chat.py: serves the page and the browser client, and chats in rooms (checked
with two polysio clients)."""

from __future__ import annotations

import asyncio
import socket
import urllib.request

import polysio

from conftest import PYTHON, ROOT, Recorder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_chat_example() -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        PYTHON, str(ROOT / "examples" / "chat" / "chat.py"), str(port), stdout=asyncio.subprocess.PIPE
    )
    clients = []
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert f"http://127.0.0.1:{port}/" in line, line
        url = f"http://127.0.0.1:{port}"

        def get(path: str) -> bytes:
            with urllib.request.urlopen(url + path, timeout=10) as r:
                return r.read()

        loop = asyncio.get_running_loop()
        page = await loop.run_in_executor(None, get, "/")
        assert b"/client/socket.io.min.js" in page
        assert len(await loop.run_in_executor(None, get, "/client/socket.io.min.js")) > 10_000

        inbox = {name: Recorder() for name in ("ada", "bob", "eve")}
        for name, box in inbox.items():
            c = polysio.AsyncClient(reconnection=False)
            c.on("chat", lambda m, box=box: box.add(("chat", m["text"])))
            c.on("typing", lambda who, box=box: box.add(("typing", who)))
            await c.connect(url)
            clients.append(c)
        ada, bob, eve = clients
        assert await ada.call("join", "red") == "red"
        assert await bob.call("join", "red") == "red"
        assert await eve.call("join", "blue") == "blue"
        await ada.emit("typing", "ada")
        await ada.emit("chat", {"name": "ada", "text": "hello red"})
        assert await inbox["bob"].wait_for(2) == [("typing", "ada"), ("chat", "hello red")]
        assert await inbox["ada"].wait_for(1) == [("chat", "hello red")]  # not its own typing
        await eve.emit("chat", {"name": "eve", "text": "hello blue"})
        assert await inbox["eve"].wait_for(1) == [("chat", "hello blue")]
        await asyncio.sleep(0.2)
        assert len(inbox["ada"].items) == 1 and len(inbox["bob"].items) == 2
    finally:
        for c in clients:
            await c.disconnect()
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)
