"""polysio.AsyncClient against the reference python-socketio AsyncServer (served by uvicorn)
and against polysio's own server: connect options, emit, call, handlers, acks both ways,
refusal, wait, disconnect and reconnection."""

from __future__ import annotations

import asyncio

import pytest
import socketio

import polysio

from conftest import eventually, url_of


def reference_server(events: list) -> socketio.AsyncServer:
    sio = socketio.AsyncServer(async_mode="asgi", namespaces="*")

    @sio.event
    async def connect(sid, environ, auth):
        events.append(("connect", auth, environ.get("HTTP_X_HELLO"), environ.get("QUERY_STRING")))
        if auth and auth.get("refuse"):
            raise socketio.exceptions.ConnectionRefusedError("go away", {"why": auth["refuse"]})
        await sio.emit("welcome", {"sid": sid, "bin": b"\x00\x01"}, to=sid)

    @sio.event
    async def echo(sid, *args):
        return args if len(args) != 1 else args[0]

    @sio.event
    async def shout(sid, data):
        await sio.emit("shouted", (data, sid), to=sid)

    @sio.event
    async def ask(sid, x):
        answer = await sio.call("question", x, to=sid, timeout=10)
        await sio.emit("answer", answer, to=sid)

    @sio.event
    async def kick(sid):
        await sio.disconnect(sid)

    @sio.on("*", namespace="/other")
    async def other(event, sid, *args):
        return ["other", event, *args]

    return sio


async def test_client_against_reference_server(ref_server, make_client, recorder) -> None:
    events: list = []
    url = await ref_server(reference_server(events))
    c = make_client()
    welcome = recorder()
    shouted = recorder()
    answers = recorder()
    lifecycle = recorder()
    c.on("welcome", lambda data: welcome.add(data))
    c.on("shouted", lambda data, sid: shouted.add((data, sid)))
    c.on("answer", lambda *a: answers.add(a))
    c.on("question", lambda x: (x + 1, b"\xff"))
    c.on("connect", lambda: lifecycle.add("connect"))
    c.on("connect", lambda: lifecycle.add("connect /other"), namespace="/other")

    await c.connect(
        url + "?room=7",
        auth={"token": "abc"},
        headers={"X-Hello": "world"},
        namespaces=["/", "/other"],
    )
    assert c.connected and c.sid and c.get_sid("/other")
    assert ("connect", {"token": "abc"}, "world", events[0][3]) == events[0]
    assert "room=7" in events[0][3]
    [w] = await welcome.wait_for(1)
    assert w == {"sid": c.sid, "bin": b"\x00\x01"}
    assert sorted(await lifecycle.wait_for(2)) == ["connect", "connect /other"]

    assert await c.call("echo", "one") == "one"
    assert await c.call("echo", ("a", b"b", {"c": [1.5, None]})) == ("a", b"b", {"c": [1.5, None]})
    assert await c.call("anything", 1, namespace="/other") == ["other", "anything", 1]
    await c.emit("shout", b"hey")
    assert await shouted.wait_for(1) == [(b"hey", c.sid)]
    got = recorder()
    await c.emit("echo", "cb", callback=lambda *a: got.add(a))
    assert await got.wait_for(1) == [("cb",)]
    # server -> client ack
    await c.emit("ask", 41)
    assert await answers.wait_for(1) == [(42, b"\xff")]
    with pytest.raises(polysio.BadNamespaceError):
        await c.emit("echo", namespace="/not-connected")
    await c.disconnect()
    assert not c.connected


@pytest.mark.parametrize("transports", [["polling"], ["websocket"], None])
async def test_client_transports_against_reference(ref_server, make_client, transports) -> None:
    url = await ref_server(reference_server([]))
    c = make_client()
    assert c.transport() is None
    await c.connect(url, transports=transports)
    assert await c.call("echo", transports or "both") == (transports or "both")
    if transports is None:
        await eventually(lambda: c.transport() == "websocket", what="the upgrade")
    else:
        assert c.transport() == transports[0]


async def test_refusal_raises_connection_error_and_calls_connect_error(ref_server, make_client, recorder) -> None:
    url = await ref_server(reference_server([]))
    c = make_client()
    errors = recorder()
    c.on("connect_error", lambda data: errors.add(data))
    with pytest.raises(polysio.ConnectionError, match="go away"):
        await c.connect(url, auth={"refuse": "testing"})
    assert errors.items == [{"message": "go away", "data": {"why": "testing"}}]
    assert not c.connected
    # the client can connect again afterwards
    await c.connect(url, auth={"token": "ok"})
    assert c.connected


async def test_connect_to_nothing_fails(make_client, unused_tcp_port) -> None:
    c = make_client(request_timeout=3)
    with pytest.raises(polysio.ConnectionError):
        await c.connect(f"http://127.0.0.1:{unused_tcp_port}")
    assert not c.connected


async def test_server_disconnect_ends_wait(ref_server, make_client, recorder) -> None:
    url = await ref_server(reference_server([]))
    c = polysio.AsyncClient()  # reconnection on: a server disconnect is still final
    reasons = recorder()
    c.on("disconnect", lambda reason: reasons.add(reason))
    await c.connect(url)
    waiter = asyncio.ensure_future(c.wait())
    await c.emit("kick")
    await asyncio.wait_for(waiter, 10)
    assert reasons.items == [c.reason.SERVER_DISCONNECT]
    await c.disconnect()


async def test_reconnects_after_the_server_comes_back(make_client, recorder) -> None:
    server = polysio.AsyncServer(ping_interval=0.3, ping_timeout=0.2)
    server.on("echo", lambda sid, x: x)
    host, port = server.start("127.0.0.1", 0)
    c = polysio.AsyncClient(reconnection_delay=0.1, reconnection_delay_max=0.2)
    lifecycle = recorder()
    c.on("connect", lambda: lifecycle.add("connect"))
    c.on("disconnect", lambda reason: lifecycle.add(reason))
    await c.connect(url_of((host, port)))
    first = c.sid
    await server.shutdown()
    await lifecycle.wait_for(2)
    assert lifecycle.items[1] in (c.reason.TRANSPORT_CLOSE, c.reason.TRANSPORT_ERROR, c.reason.PING_TIMEOUT)
    # buffered while away, delivered after reconnection
    await c.emit("echo", "while away")
    again = polysio.AsyncServer()
    seen = recorder()
    again.on("echo", lambda sid, x: seen.add(x) or x)
    again.start("127.0.0.1", port)
    try:
        await lifecycle.wait_for(3, timeout=15)
        assert lifecycle.items[2] == "connect" and c.sid != first
        assert await seen.wait_for(1) == ["while away"]
        assert await c.call("echo", "back") == "back"
    finally:
        await c.disconnect()
        await again.shutdown()


async def test_reconnection_gives_up_after_attempts(make_client, unused_tcp_port, recorder) -> None:
    server = polysio.AsyncServer()
    server.start("127.0.0.1", unused_tcp_port)
    c = polysio.AsyncClient(reconnection_attempts=2, reconnection_delay=0.05, reconnection_delay_max=0.05)
    await c.connect(f"http://127.0.0.1:{unused_tcp_port}")
    waiter = asyncio.ensure_future(c.wait())
    await server.shutdown()
    await asyncio.wait_for(waiter, 15)
    await c.disconnect()


async def test_client_with_our_server_ack_handlers_and_catch_all(make_server, make_client, recorder) -> None:
    sio = make_server()
    url = url_of(sio.start("127.0.0.1", 0))

    @sio.event
    async def connect(sid, environ, auth):
        await sio.emit("first", "hello", to=sid)

    c = make_client()
    caught = recorder()

    @c.on("*")
    def catch_all(event, *args):
        caught.add((event, args))
        return "ack-from-catch-all"

    await c.connect(url)
    assert (await caught.wait_for(1))[0] == ("first", ("hello",))
    assert await sio.call("unknown-event", (1, 2), to=c.sid) == "ack-from-catch-all"


async def test_auth_callable_is_called_at_each_connection(make_server, make_client, recorder) -> None:
    sio = make_server()
    seen = recorder()
    sio.on("connect", lambda sid, environ, auth: seen.add(auth))
    url = url_of(sio.start("127.0.0.1", 0))
    c = make_client()
    n = iter(range(100))
    await c.connect(url, auth=lambda: {"n": next(n)})
    assert await seen.wait_for(1) == [{"n": 0}]


async def test_client_call_timeout_and_misuse(make_server, make_client) -> None:
    sio = make_server()
    sio.on("slow", lambda sid: asyncio.sleep(5))
    url = url_of(sio.start("127.0.0.1", 0))
    c = make_client()
    with pytest.raises(polysio.BadNamespaceError):
        await c.emit("before-connect")
    await c.connect(url)
    with pytest.raises(polysio.TimeoutError):
        await c.call("slow", timeout=0.3)
    with pytest.raises(polysio.ConnectionError, match="Already connected"):
        await c.connect(url)
    with pytest.raises(TypeError):
        await c.emit(42)  # type: ignore[arg-type]
    with pytest.raises(polysio.InvalidArgumentError, match="reserved"):
        await c.emit("connect")
    await c.disconnect()
    with pytest.raises(polysio.BadNamespaceError):
        await c.emit("after-disconnect")
    with pytest.raises(TypeError, match="unknown AsyncClient options"):
        polysio.AsyncClient(no_such_option=1)
    with pytest.raises(ValueError, match="randomization_factor"):
        await polysio.AsyncClient(randomization_factor=3).connect(url)


async def test_disconnect_runs_handlers_before_returning(make_server, make_client, recorder) -> None:
    sio = make_server()
    url = url_of(sio.start("127.0.0.1", 0))
    c = make_client()
    reasons = []
    c.on("disconnect", lambda reason: reasons.append(reason))
    await c.connect(url)
    await c.disconnect()
    assert reasons == [c.reason.CLIENT_DISCONNECT]


async def test_connect_gives_up_on_a_namespace_that_never_answers(make_server, make_client) -> None:
    sio = make_server()

    @sio.on("connect", namespace="/slow")
    async def slow(sid, environ, auth):
        await asyncio.sleep(30)

    url = url_of(sio.start("127.0.0.1", 0))
    c = make_client(request_timeout=1)
    with pytest.raises(polysio.ConnectionError, match=r"/slow \(timed out\)"):
        await c.connect(url, namespaces=["/", "/slow"], wait_timeout=0.5)
    assert not c.connected
    # a bad auth value is refused before anything is sent; the client stays usable
    with pytest.raises(TypeError, match="set"):
        await c.connect(url, auth={"bad": {1, 2}})
    await c.connect(url)
    assert c.connected
