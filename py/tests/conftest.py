"""Shared fixtures: servers on free ports, reference clients and servers, Node peers."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest
import socketio
import uvicorn

import polysio

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "tests" / "node"
TESTS = Path(__file__).resolve().parent


def url_of(address: tuple[str, int]) -> str:
    return f"http://127.0.0.1:{address[1]}"


async def eventually(predicate: Callable[[], Any], timeout: float = 10.0, what: Any = "condition") -> None:
    """Waits until ``predicate()`` is true (polling the loop, never blocking it)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
        await asyncio.sleep(0.01)


class Recorder:
    """Collects what handlers saw; tests wait on it instead of sleeping."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = asyncio.Event()

    def add(self, item: Any) -> None:
        self.items.append(item)
        self._changed.set()

    async def wait_for(self, n: int = 1, timeout: float = 10.0) -> list[Any]:
        async def wait() -> None:
            while len(self.items) < n:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), timeout)
        return self.items


@pytest.fixture
def recorder() -> Callable[[], Recorder]:
    return Recorder


@pytest.fixture
async def make_server() -> AsyncIterator[Callable[..., polysio.AsyncServer]]:
    """``make_server(**options)`` builds an AsyncServer that is shut down after the test."""
    servers: list[polysio.AsyncServer] = []

    def make(**options: Any) -> polysio.AsyncServer:
        sio = polysio.AsyncServer(**options)
        servers.append(sio)
        return sio

    yield make
    for s in servers:
        await s.shutdown()


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., polysio.AsyncClient]]:
    """``make_client(**options)`` builds an AsyncClient disconnected after the test."""
    clients: list[polysio.AsyncClient] = []

    def make(**options: Any) -> polysio.AsyncClient:
        options.setdefault("reconnection", False)
        c = polysio.AsyncClient(**options)
        clients.append(c)
        return c

    yield make
    for c in clients:
        await c.disconnect()


@pytest.fixture
async def ref_client() -> AsyncIterator[Callable[..., socketio.AsyncClient]]:
    """python-socketio's AsyncClient (the reference), disconnected after the test."""
    clients: list[socketio.AsyncClient] = []

    def make(**options: Any) -> socketio.AsyncClient:
        options.setdefault("reconnection", False)
        c = socketio.AsyncClient(**options)
        clients.append(c)
        return c

    yield make
    for c in clients:
        await c.disconnect()
        await c.shutdown()


@pytest.fixture
async def ref_server() -> AsyncIterator[Callable[[socketio.AsyncServer], Awaitable[str]]]:
    """``await ref_server(sio)`` serves a python-socketio AsyncServer with uvicorn on a free
    port (in this event loop) and returns its URL."""
    servers: list[tuple[uvicorn.Server, asyncio.Task[Any]]] = []

    async def serve(sio: socketio.AsyncServer) -> str:
        config = uvicorn.Config(
            socketio.ASGIApp(sio),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="off",
            # python-engineio holds long-polling requests open for up to a ping interval
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        task = asyncio.ensure_future(server.serve())
        servers.append((server, task))
        await eventually(lambda: server.started or task.done(), what="uvicorn start")
        if task.done():
            task.result()
        port = server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    yield serve
    for server, task in servers:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def node_env() -> dict[str, str]:
    env = dict(os.environ)
    env["NODE_PATH"] = str(NODE_DIR / "node_modules")
    return env


async def run_node(*args: str, cwd: Path = TESTS, timeout: float = 40.0) -> str:
    """Runs ``node ARGS`` without blocking the loop; fails the test on a non-zero exit."""
    proc = await asyncio.create_subprocess_exec(
        "node",
        *args,
        cwd=str(cwd),
        env=node_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"node {' '.join(args)} timed out")
    text = out.decode(errors="replace")
    assert proc.returncode == 0, f"node {' '.join(args)} failed:\n{text}"
    return text


PYTHON = sys.executable
