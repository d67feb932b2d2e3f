"""The synchronous polysio.Server and polysio.Client: no asyncio in user code, plain handlers
on threads, every method callable from any thread."""

from __future__ import annotations

import threading
import time

import pytest

import polysio


def wait_until(predicate, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


@pytest.fixture
def server():
    sio = polysio.Server()
    yield sio
    sio.shutdown()


@pytest.fixture
def client():
    c = polysio.Client(reconnection=False)
    yield c
    c.shutdown()


def test_sync_server_and_client(server, client) -> None:
    seen = []

    @server.event
    def connect(sid, environ, auth):
        server.save_session(sid, {"user": auth["user"]})
        server.enter_room(sid, "lobby")
        server.emit("welcome", sid, to=sid)

    @server.event
    def whoami(sid):
        with server.session(sid) as session:
            session["n"] = session.get("n", 0) + 1
            return session["user"], session["n"], server.rooms(sid)

    @server.event
    def ask(sid, x):
        # a handler may call back into the client and wait: it runs on its own thread
        return server.call("double", x, to=sid, timeout=10)

    @server.event
    def disconnect(sid, reason):
        seen.append(reason)

    _, port = server.start("127.0.0.1", 0)
    got = []
    client.on("welcome", lambda sid: got.append(sid))
    client.on("double", lambda x: x * 2)
    client.on("news", lambda m: got.append(m))
    client.connect(f"http://127.0.0.1:{port}", auth={"user": "ada"})
    assert client.connected and client.sid
    assert client.transport() in ("polling", "websocket")
    wait_until(lambda: got == [client.sid])
    user, n, rooms = client.call("whoami")
    assert (user, n, sorted(rooms)) == ("ada", 1, sorted([client.sid, "lobby"]))
    assert client.call("ask", 21) == 42
    server.emit("news", "to the lobby", to="lobby")
    wait_until(lambda: got[-1] == "to the lobby")
    acked = []
    client.emit("whoami", callback=lambda *a: acked.append(a))
    wait_until(lambda: len(acked) == 1)
    assert acked[0][1] == 2
    client.disconnect()
    wait_until(lambda: seen == [server.reason.CLIENT_DISCONNECT])


def test_blocking_handlers_hold_up_no_one(server, client) -> None:
    order = []

    @server.event
    def slow(sid):
        time.sleep(1.0)
        order.append("slow")
        return "slow"

    @server.event
    def quick(sid):
        order.append("quick")
        return "quick"

    _, port = server.start("127.0.0.1", 0)
    client.connect(f"http://127.0.0.1:{port}")
    results = []
    t = threading.Thread(target=lambda: results.append(client.call("slow")))
    t.start()
    time.sleep(0.1)
    assert client.call("quick") == "quick"
    t.join(10)
    assert results == ["slow"] and order == ["quick", "slow"]


def test_sync_classes_refuse_async_handlers() -> None:
    sio = polysio.Server()
    c = polysio.Client()
    try:
        async def handler(sid):
            pass

        with pytest.raises(TypeError, match="AsyncServer"):
            sio.on("x", handler)
        with pytest.raises(TypeError, match="AsyncClient"):
            c.on("x", handler)
    finally:
        sio.shutdown()
        c.shutdown()


def test_serve_blocks_until_shutdown_from_another_thread(client) -> None:
    sio = polysio.Server()
    sio.on("hi", lambda sid: "hello")
    port_box = []
    original_start = sio.start

    def start(host, port, *tls):
        address = original_start(host, port, *tls)
        port_box.append(address[1])
        return address

    sio.start = start  # type: ignore[method-assign]
    t = threading.Thread(target=sio.serve, args=("127.0.0.1", 0))
    t.start()
    wait_until(lambda: port_box)
    client.connect(f"http://127.0.0.1:{port_box[0]}")
    assert client.call("hi") == "hello"
    waiter = threading.Thread(target=client.wait)
    waiter.start()
    sio.shutdown()
    t.join(10)
    waiter.join(10)
    assert not t.is_alive() and not waiter.is_alive()
    with pytest.raises(polysio.ShutdownError):
        sio.emit("x")


def test_client_after_shutdown() -> None:
    c = polysio.Client()
    c.shutdown()
    with pytest.raises(polysio.ShutdownError):
        c.connect("http://127.0.0.1:9")
    with pytest.raises(polysio.BadNamespaceError):
        c.emit("x")
    c.shutdown()  # again: nothing
