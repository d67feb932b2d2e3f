"""The Redis emitter (issue 17): ``polysio.AsyncRedisManager(url, write_only=True)`` and
``RedisManager(url, write_only=True)`` reach the clients of npm socket.io 4.8 nodes
(tests/node/redis-emitter-node.js, classic and streams adapters) and of a polysio server, over
a real ``redis-server`` started on a free port. No mocks."""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator, Callable

import pytest

import polysio

from conftest import NODE_DIR, eventually
from test_redis import (  # noqa: F401 (redis: a fixture)
    Listener, RedisServer, connect, node_processes, redis, settle,
)

EMITTER_NODE = str(NODE_DIR / "redis-emitter-node.js")


@pytest.fixture
async def emitter_node() -> AsyncIterator[Callable[..., Any]]:
    """``await emitter_node(redis_url, fmt)`` starts redis-emitter-node.js; its URL."""
    async for start in node_processes(EMITTER_NODE):
        yield start


@pytest.mark.parametrize("fmt", ["classic", "streams"])
async def test_emitter_reaches_npm_node(
    redis: RedisServer, emitter_node: Any, ref_client: Any, fmt: str
) -> None:
    url = await emitter_node(redis.url, fmt)
    a = await connect(ref_client, url)
    b = await connect(ref_client, url)
    assert await b.client.call("join", "r") == "r"
    mgr = polysio.AsyncRedisManager(redis.url, write_only=True, format=fmt)
    assert mgr.write_only and mgr.format == fmt
    # To a room, binary included, several arguments as a tuple.
    await mgr.emit("news", b"\x00\xffbin", room="r")
    await b.expect(b"\x00\xffbin")
    await mgr.emit("news", {"k": [1, b"\x01"]}, to=["r", "nobody"])
    await b.expect({"k": [1, b"\x01"]})
    # skip_sid: everyone but b.
    await mgr.emit("news", "all-but-b", skip_sid=b.client.get_sid())
    await a.expect("all-but-b")
    await mgr.flush()
    await settle()
    assert not a.got(b"\x00\xffbin") and not b.got("all-but-b")
    # enter_room / sockets_join, then leave_room, reach the node's sockets.
    await mgr.enter_room(a.client.get_sid(), "/", "joined")
    await _until_rooms(a, [a.client.get_sid(), "joined"])
    await mgr.sockets_join("everyone")
    await _until_rooms(b, sorted([b.client.get_sid(), "r", "everyone"]))
    await mgr.leave_room(a.client.get_sid(), None, "joined")
    await _until_rooms(a, sorted([a.client.get_sid(), "everyone"]))
    # disconnect reaches the node.
    await mgr.disconnect(b.client.get_sid())
    await eventually(lambda: not b.client.connected, what="b disconnected by the emitter")
    assert a.client.connected
    stats = mgr.stats()
    assert stats["published"] >= 7 and stats["dropped"] == 0, stats
    with pytest.raises(ValueError, match="callback"):
        await mgr.emit("news", "x", callback=lambda: None)


async def _until_rooms(listener: Listener, expected: list[str]) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + 10
    while True:
        got = await listener.client.call("rooms")
        if got == sorted(expected):
            return
        if loop.time() > end:
            raise AssertionError(f"rooms {got!r}, expected {sorted(expected)!r}")
        await asyncio.sleep(0.05)


async def test_emitter_reaches_polysio_server(redis: RedisServer, ref_client: Any) -> None:
    mgr = polysio.AsyncRedisManager(redis.url, channel="emit-py")
    sio = polysio.AsyncServer(client_manager=mgr)
    addr = sio.start("127.0.0.1", 0)
    try:
        await mgr.ready(timeout=10)
        a = await connect(ref_client, f"http://127.0.0.1:{addr[1]}")
        em = polysio.AsyncRedisManager(redis.url, channel="emit-py", write_only=True)
        pairs: list[Any] = []
        a.client.on("pair", lambda *args: pairs.append(args))
        await em.emit("pair", (b"\x02", "two"))
        await eventually(lambda: (b"\x02", "two") in pairs, what=lambda: pairs)
        other = polysio.AsyncRedisManager(redis.url, write_only=True)  # another channel
        await other.emit("news", "wrong-channel")
        await em.close_room(a.client.get_sid())
        await em.flush()
        await settle()
        assert not a.got("wrong-channel")
        # The sync emitter: the same, blocking nothing but flush.
        sync = polysio.RedisManager(redis.url, channel="emit-py", write_only=True)
        # (close_room above took a out of its own sid's room, on the polysio node)
        sync.emit("news", "to-closed-room", room=a.client.get_sid())
        sync.emit("news", "from-sync")
        await asyncio.get_running_loop().run_in_executor(None, sync.flush, 5.0)
        await a.expect("from-sync")
        await settle()
        assert not a.got("to-closed-room")
        sync.disconnect_sockets()
        await eventually(lambda: not a.client.connected, what="disconnected by the sync emitter")
        with pytest.raises(RuntimeError, match="write_only"):
            await em.server_count()
    finally:
        await sio.shutdown()


async def test_emitter_with_redis_down(redis: RedisServer) -> None:
    mgr = polysio.AsyncRedisManager(
        redis.url, write_only=True, redis_options={"socket_timeout": 0.5, "queue_capacity": 5}
    )
    redis.stop()
    started = time.monotonic()
    for i in range(5):
        await mgr.emit("news", i)  # queued: returns at once
    assert time.monotonic() - started < 0.5
    with pytest.raises(polysio.BufferFullError):
        for _ in range(100):  # the writer took at most one batch meanwhile
            await mgr.emit("news", "more")
    with pytest.raises(polysio.SocketIOError, match="could not be written"):
        await mgr.flush(timeout=10)
    assert time.monotonic() - started < 8
    assert mgr.stats()["dropped"] >= 6, mgr.stats()
    redis.start()
    await mgr.emit("news", "back")
    deadline = time.monotonic() + 15
    while True:  # the connection comes back by itself
        try:
            await mgr.flush(timeout=5)
            break
        except polysio.SocketIOError:
            assert time.monotonic() < deadline
            await mgr.emit("news", "back")


def test_emitter_arguments() -> None:
    with pytest.raises(ValueError, match="sharded"):
        polysio.AsyncRedisManager(write_only=True, format="sharded")
    with pytest.raises(ValueError, match="format"):
        polysio.AsyncRedisManager(write_only=True, format="nope")
    with pytest.raises(ValueError, match="rediss"):
        polysio.AsyncRedisManager("rediss://127.0.0.1:6379", write_only=True)
    with pytest.raises(ValueError, match="write_only"):
        polysio.AsyncServer(client_manager=polysio.AsyncRedisManager(write_only=True))
    with pytest.raises(ValueError, match="streams"):
        polysio.AsyncRedisManager(format="streams")  # not as a server's manager
