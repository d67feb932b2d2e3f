"""Scale-out over Redis (issue 17): ``polysio.AsyncRedisManager`` / ``RedisManager`` in one
cluster with an npm socket.io 4.8 node using ``@socket.io/redis-adapter``
(tests/node/redis-cluster-node.js), over a real ``redis-server`` started here on a free port,
with python-socketio clients on each node. No mocks."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Any, AsyncIterator, Callable, Optional

import pytest
import socketio

import polysio

from conftest import NODE_DIR, eventually, node_env

CLUSTER_NODE = str(NODE_DIR / "redis-cluster-node.js")


def free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port != 3000:
            return port


class RedisServer:
    """A ``redis-server`` of the test's own; it can be stopped and started again on its port."""

    def __init__(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.fail(
                "redis-server is not installed: the Redis manager tests need a real one "
                "(Debian: apt-get install redis-server; tests/all.sh installs it)"
            )
        self.exe = exe
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="polysio-redis-")
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"*1\r\n$4\r\nPING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.ping():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture
def redis() -> Any:
    r = RedisServer()
    yield r
    r.stop()
    shutil.rmtree(r.dir, ignore_errors=True)


async def node_processes(
    script: str, *leading: str
) -> AsyncIterator[Callable[..., Any]]:
    """Yields ``await start(redis_url, fmt)``, which runs ``node script *leading redis_url
    fmt`` until it prints ``listening PORT`` and gives its URL; kills them all at the end."""
    procs: list[asyncio.subprocess.Process] = []

    async def start(redis_url: str, fmt: str = "classic") -> str:
        proc = await asyncio.create_subprocess_exec(
            "node", script, *leading, redis_url, fmt,
            env=node_env(), stdout=asyncio.subprocess.PIPE,
        )
        procs.append(proc)
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line.startswith(b"listening "), f"{script} said {line!r}"
        return f"http://127.0.0.1:{int(line.split()[1])}"

    yield start
    for p in procs:
        if p.returncode is None:
            p.kill()
        await p.wait()


@pytest.fixture
async def npm_node() -> AsyncIterator[Callable[..., Any]]:
    """``await npm_node(redis_url)`` starts an npm socket.io node of the cluster; its URL."""
    async for start in node_processes(CLUSTER_NODE, "0"):
        yield start


class Listener:
    """A python-socketio client recording every ``news`` event."""

    def __init__(self, client: socketio.AsyncClient) -> None:
        self.client = client
        self.news: list[Any] = []
        client.on("news", self.news.append)

    def got(self, value: Any) -> bool:
        return value in self.news

    async def expect(self, value: Any, timeout: float = 10.0) -> None:
        await eventually(lambda: self.got(value), timeout, what=lambda: f"{value!r} in {self.news}")


async def settle() -> None:
    await asyncio.sleep(0.3)


def cluster_server(mgr: polysio.AsyncRedisManager) -> polysio.AsyncServer:
    """A polysio node with the events of redis-cluster-node.js that the tests use."""
    sio = polysio.AsyncServer(client_manager=mgr)

    @sio.event
    async def join(sid: str, room: str) -> str:
        await sio.enter_room(sid, room)
        return room

    @sio.on("emit-to")
    async def emit_to(sid: str, room: Optional[str], event: str, *args: Any) -> None:
        await sio.emit(event, args[0] if len(args) == 1 else args, to=room)

    @sio.on("emit-skip")
    async def emit_skip(sid: str, event: str, value: Any) -> None:
        await sio.emit(event, value, skip_sid=sid)

    @sio.on("server-count")
    async def server_count(sid: str) -> int:
        return await mgr.server_count()

    # What the other nodes send with serverSideEmit.
    relayed: list[Any] = []
    sio.relayed = relayed  # type: ignore[attr-defined]

    @mgr.on("relay")
    async def relay(*args: Any) -> None:
        relayed.append(args)
        # As Node's node does: to this node's own clients only.
        await mgr.local_emit("relayed", args)

    @mgr.on("ping-node")
    def ping_node() -> str:
        return "pong"

    return sio


async def connect(ref_client: Callable[..., socketio.AsyncClient], url: str) -> Listener:
    c = ref_client()
    listener = Listener(c)
    await c.connect(url, transports=["websocket"])
    return listener


async def until_equal(get: Callable[[], Any], expected: Any, timeout: float = 10.0) -> None:
    """Waits until ``await get()`` is ``expected`` (remote joins and leaves land a little
    later on the other node)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        got = await get()
        if got == expected:
            return
        if loop.time() > end:
            raise AssertionError(f"expected {expected!r}, got {got!r}")
        await asyncio.sleep(0.05)


async def until_delivered(sender: Listener, receiver: Listener, tag: str) -> None:
    """Broadcasts from ``sender``'s node until ``receiver`` (on another node) gets one: the
    nodes resubscribe at their own pace after Redis comes back."""
    loop = asyncio.get_running_loop()
    end = loop.time() + 20
    n = 0
    while loop.time() < end:
        n += 1
        value = f"{tag}-{n}"
        await sender.client.call("emit-to", (None, "news", value), timeout=10)
        try:
            await receiver.expect(value, timeout=0.5)
            return
        except AssertionError:
            pass
    raise AssertionError(f"{tag}: nothing delivered across nodes after Redis came back")


@pytest.mark.parametrize("fmt", ["classic", "sharded"])
async def test_cluster_with_npm_node(
    redis: RedisServer, npm_node: Any, ref_client: Any, fmt: str
) -> None:
    # sharded: npm's createShardedAdapter (its default subscriptionMode, "dynamic")
    mgr = polysio.AsyncRedisManager(
        redis.url, redis_options={"requests_timeout": 2}, format=fmt, subscription_mode="dynamic"
    )
    assert mgr.format == fmt and mgr.subscription_mode == "dynamic"
    sio = cluster_server(mgr)
    addr = sio.start("127.0.0.1", 0)
    try:
        await mgr.ready(timeout=10)
        node_url = await npm_node(redis.url, fmt)
        a = await connect(ref_client, f"http://127.0.0.1:{addr[1]}")
        b = await connect(ref_client, node_url)

        # Server count, from both sides.
        assert await mgr.server_count() == 2
        assert await b.client.call("server-count") == 2
        assert await a.client.call("server-count") == 2

        # Broadcasts both ways, binary included.
        await a.client.call("emit-to", (None, "news", "from-polysio"))
        await b.expect("from-polysio")
        await a.expect("from-polysio")
        await b.client.call("emit-to", (None, "news", "from-node"))
        await a.expect("from-node")
        await b.expect("from-node")
        await a.client.call("emit-to", (None, "news", b"\x00\xffpy"))
        await b.expect(b"\x00\xffpy")
        await b.client.call("emit-to", (None, "news", b"\x01node"))
        await a.expect(b"\x01node")

        # Rooms: each node's room reaches the other node's member only.
        assert await b.client.call("join", "on-node") == "on-node"
        assert await a.client.call("join", "on-polysio") == "on-polysio"
        await a.client.call("emit-to", ("on-node", "news", "py-to-room"))
        await b.expect("py-to-room")
        await b.client.call("emit-to", ("on-polysio", "news", "node-to-room"))
        await a.expect("node-to-room")
        # Node's server-wide operations, from the polysio node and back.
        a.client.on("question", lambda q: f"a:{q}")
        b.client.on("question", lambda q: f"b:{q}")
        ids = sorted([a.client.get_sid(), b.client.get_sid()])
        sockets = await mgr.fetch_sockets()
        assert sorted(s["sid"] for s in sockets) == ids
        remote = next(s for s in sockets if s["sid"] == b.client.get_sid())
        assert sorted(remote["rooms"]) == sorted([b.client.get_sid(), "on-node"])
        assert remote["handshake"]["address"]
        assert [s["sid"] for s in await mgr.fetch_sockets(to="on-node")] == [b.client.get_sid()]
        assert await b.client.call("fetch-sockets", (None,)) == ids
        rooms = await mgr.all_rooms()
        if fmt == "classic":
            assert {"on-node", "on-polysio", *ids} <= rooms, rooms
        else:  # the sharded format has no allRooms request: this node's rooms
            assert {"on-polysio", a.client.get_sid()} <= rooms, rooms
            assert "on-node" not in rooms
        await mgr.sockets_join("joined", to=["on-node", "on-polysio"])
        await until_equal(lambda: b.client.call("fetch-sockets", "joined"), ids)
        await mgr.sockets_leave("joined", to="on-node")
        await until_equal(lambda: b.client.call("fetch-sockets", "joined"), [a.client.get_sid()])
        assert sorted(await mgr.emit_with_ack("question", "q1", timeout=3)) == ["a:q1", "b:q1"]
        assert await mgr.emit_with_ack("question", "q2", to="on-node", timeout=3) == ["b:q2"]
        assert await b.client.call("ask-all", "q3") == ["a:q3", "b:q3"]
        # (python-socketio clients ack every event, handled or not: one that answers late.)
        async def late() -> str:
            await asyncio.sleep(1.5)
            return "late"

        b.client.on("late", late)
        with pytest.raises(polysio.TimeoutError):
            await mgr.emit_with_ack("late", timeout=0.5)
        # serverSideEmit both ways, with and without answers.
        relayed_on_node: list[Any] = []
        b.client.on("relayed", lambda *args: relayed_on_node.append(args))
        await b.client.call("server-side-emit", ("x", 1))
        await eventually(lambda: ("x", 1) in sio.relayed, what=lambda: sio.relayed)
        relayed_here: list[Any] = []
        a.client.on("relayed", lambda *args: relayed_here.append(args))
        await b.client.call("server-side-emit", ("y",))
        await eventually(lambda: ("y",) in relayed_here, what=lambda: relayed_here)
        await mgr.local_emit("news", "local-only")
        await a.expect("local-only")
        assert await b.client.call("server-side-emit-with-ack") == ["pong"]
        await mgr.server_side_emit("relay", "from-py", {"k": [1]})
        await eventually(lambda: ("from-py", {"k": [1]}) in relayed_on_node, what=lambda: relayed_on_node)
        assert await mgr.server_side_emit_with_ack("ping-node", timeout=3) == ["pong"]
        assert not any(r == ("from-py", {"k": [1]}) for r in sio.relayed)  # not to itself
        assert not b.got("local-only")
        # Each node's "relayed" reached its own clients only.
        assert ("x", 1) not in relayed_on_node and ("y",) not in relayed_on_node
        assert ("from-py", {"k": [1]}) not in relayed_here
        # skip_sid: everyone but the sender, on every node.
        await a.client.call("emit-skip", ("news", "skip-me"))
        await b.expect("skip-me")
        # close_room empties the room on every node.
        await sio.close_room("on-node")
        await settle()
        await a.client.call("emit-to", ("on-node", "news", "after-close"))
        await settle()
        assert not a.got("py-to-room") and not b.got("node-to-room")
        assert not a.got("skip-me") and not b.got("after-close")

        stats = mgr.stats()
        assert stats["published"] > 0 and stats["received"] > 0, stats
        assert stats["malformed"] == 0 and stats["connections"] >= 1, stats
        assert len(stats["uid"]) == (6 if fmt == "classic" else 16)  # ClusterAdapter uids

        # Redis restarts: each node keeps serving its own clients, requests fail in bounded
        # time, and both nodes rejoin once it is back.
        redis.stop()
        await a.client.call("emit-to", (None, "news", "down-a"))
        await a.expect("down-a")
        await b.client.call("emit-to", (None, "news", "down-b"))
        await b.expect("down-b")
        # (all_rooms asks no other node in the sharded format: answered from this one)
        requests = [mgr.server_count, mgr.fetch_sockets] + ([mgr.all_rooms] if fmt == "classic" else [])
        for request in requests:
            started = time.monotonic()
            with pytest.raises(polysio.SocketIOError):
                await request()
            assert time.monotonic() - started < 8, request
        await settle()
        assert not b.got("down-a") and not a.got("down-b")
        # A new client is served meanwhile.
        a2 = await connect(ref_client, f"http://127.0.0.1:{addr[1]}")
        await a2.client.call("emit-to", (None, "news", "down-a2"))
        await a.expect("down-a2")

        redis.start()
        await mgr.ready(timeout=15)
        await until_delivered(a, b, "py-after-restart")
        await until_delivered(b, a, "node-after-restart")
        assert await mgr.server_count() == 2
        assert await b.client.call("server-count") == 2
        assert mgr.stats()["connections"] >= 2, mgr.stats()
        # disconnect_sockets reaches the other node's clients.
        await b.client.call("join", "bye")
        await mgr.disconnect_sockets(to="bye")
        await eventually(lambda: not b.client.connected, what="the npm node's client disconnected")
        assert a.client.connected
    finally:
        await sio.shutdown()


async def test_sync_server_with_redis_manager(redis: RedisServer, npm_node: Any, ref_client: Any) -> None:
    mgr = polysio.RedisManager(redis.url, channel="sync-test")
    sio = polysio.Server(client_manager=mgr)
    assert sio._server.manager is mgr

    @sio.on("emit-to")
    def emit_to(sid: str, room: Optional[str], event: str, value: Any) -> None:
        sio.emit(event, value, to=room)

    loop = asyncio.get_running_loop()
    addr = await loop.run_in_executor(None, sio.start, "127.0.0.1", 0)
    try:
        await loop.run_in_executor(None, mgr.ready, 10.0)
        # A Node node on another channel is not part of this cluster.
        other = await npm_node(redis.url)
        assert await loop.run_in_executor(None, mgr.server_count) == 1
        b = await connect(ref_client, other)
        assert await b.client.call("server-count") == 1
        a = await connect(ref_client, f"http://127.0.0.1:{addr[1]}")
        await a.client.call("emit-to", (None, "news", "sync"))
        await a.expect("sync")
        await settle()
        assert not b.got("sync")
        a.client.on("question", lambda q: f"a:{q}")
        sockets = await loop.run_in_executor(None, mgr.fetch_sockets)
        assert [s["sid"] for s in sockets] == [a.client.get_sid()]
        assert await loop.run_in_executor(None, mgr.emit_with_ack, "question", "s") == ["a:s"]
        assert a.client.get_sid() in await loop.run_in_executor(None, mgr.all_rooms)
    finally:
        await loop.run_in_executor(None, sio.shutdown)


def test_manager_arguments() -> None:
    mgr = polysio.AsyncRedisManager()
    assert mgr.url == "redis://localhost:6379/0" and mgr.channel == "socket.io"
    assert not mgr.write_only
    assert polysio.AsyncRedisManager("redis://127.0.0.1:6379", write_only=True).write_only
    with pytest.raises(ValueError, match="rediss"):
        polysio.AsyncRedisManager("rediss://127.0.0.1:6379")
    with pytest.raises(ValueError, match="not a Redis URL"):
        polysio.AsyncRedisManager("http://127.0.0.1:6379")
    with pytest.raises(ValueError, match="format"):
        polysio.AsyncRedisManager(format="streamz")
    with pytest.raises(ValueError, match="subscription_mode"):
        polysio.AsyncRedisManager(format="sharded", subscription_mode="sometimes")
    with pytest.raises(TypeError, match="format"):
        polysio.AsyncRedisManager(format=1)  # type: ignore[arg-type]
    m = polysio.AsyncRedisManager(format="sharded", subscription_mode="dynamic-private")
    assert (m.format, m.subscription_mode) == ("sharded", "dynamic-private")
    assert polysio.AsyncRedisManager().format == "classic"
    with pytest.raises(ValueError, match="ssl_certfile"):
        polysio.AsyncRedisManager(redis_options={"ssl_certfile": "x"})
    with pytest.raises(ValueError, match="channel"):
        polysio.AsyncRedisManager(channel="")
    with pytest.raises(ValueError, match="requests_timeout"):
        polysio.AsyncRedisManager(redis_options={"requests_timeout": -1})
    with pytest.raises(TypeError, match="socket_timeout"):
        polysio.AsyncRedisManager(redis_options={"socket_timeout": "1"})
    m = polysio.AsyncRedisManager(
        "redis://h:7000/0",
        redis_options={"username": "u", "password": "p@ss", "db": 3, "socket_timeout": 1,
                       "health_check_interval": 10},
    )
    assert m.url == "redis://u:p%40ss@h:7000/3"
    m = polysio.AsyncRedisManager("redis+unix:///tmp/r.sock", redis_options={"db": 2})
    assert m.url == "redis+unix:///tmp/r.sock?db=2"
    # python-socketio's managers (and anything else) are refused, naming the argument.
    with pytest.raises(ValueError, match="client_manager"):
        polysio.AsyncServer(client_manager=socketio.AsyncManager())


async def test_manager_serves_one_server(redis: RedisServer) -> None:
    mgr = polysio.AsyncRedisManager(redis.url)
    with pytest.raises(RuntimeError, match="not in a server"):
        await mgr.server_count()
    sio = polysio.AsyncServer(client_manager=mgr)
    try:
        assert sio.manager is mgr
        with pytest.raises(ValueError, match="another server"):
            polysio.AsyncServer(client_manager=mgr)
        with pytest.raises(polysio.BadNamespaceError):
            await mgr.server_count()  # not started: no namespace served yet
        sio.start("127.0.0.1", 0)
        await mgr.ready(timeout=10)
        assert await mgr.server_count() == 1
        with pytest.raises(polysio.BadNamespaceError):
            await mgr.server_count("/nowhere")
    finally:
        await sio.shutdown()
    assert polysio.AsyncServer().manager is None


async def test_two_polysio_nodes_in_one_process(redis: RedisServer, ref_client: Any) -> None:
    """Two polysio servers of one process, each with its own manager (and Redis connections):
    nodes of one cluster, as two processes would be."""
    mgrs = [polysio.AsyncRedisManager(redis.url, channel="pair") for _ in range(2)]
    servers = [cluster_server(m) for m in mgrs]
    try:
        addrs = [s.start("127.0.0.1", 0) for s in servers]
        for m in mgrs:
            await m.ready(timeout=10)
        assert mgrs[0].stats()["uid"] != mgrs[1].stats()["uid"]
        a = await connect(ref_client, f"http://127.0.0.1:{addrs[0][1]}")
        b = await connect(ref_client, f"http://127.0.0.1:{addrs[1][1]}")
        assert [await m.server_count() for m in mgrs] == [2, 2]
        await a.client.call("emit-to", (None, "news", "one"))
        await b.expect("one")
        await b.client.call("join", "r")
        await a.client.call("emit-to", ("r", "news", "to-r"))
        await b.expect("to-r")
        assert await mgrs[0].server_side_emit_with_ack("ping-node", timeout=3) == ["pong"]
        ids = sorted([a.client.get_sid(), b.client.get_sid()])
        assert sorted(s["sid"] for s in await mgrs[1].fetch_sockets()) == ids
        await settle()
        assert not a.got("to-r")
    finally:
        for s in servers:
            await s.shutdown()
