"""polysio.AsyncServer: handlers, refusal, emit targets, acks, call, rooms, sessions, catch-alls,
namespaces, options, lifecycle. Peers: the reference python-socketio AsyncClient and ours."""

from __future__ import annotations

import asyncio
import logging
import urllib.request

import pytest
import socketio

import polysio

from conftest import eventually, url_of


async def test_reference_client_connects_emits_and_gets_acks(make_server, ref_client, recorder) -> None:
    sio = make_server()
    connects = recorder()
    disconnects = recorder()

    @sio.event
    async def connect(sid, environ, auth):
        connects.add((sid, auth, environ["REQUEST_METHOD"], environ["HTTP_X_TEST"], environ["REMOTE_ADDR"]))

    @sio.event
    def disconnect(sid, reason):
        disconnects.add((sid, reason))

    @sio.on("sum")
    def total(sid, a, b):
        return a + b

    @sio.event
    async def pair(sid, x):
        await asyncio.sleep(0)
        return x, {"bin": b"\x01"}

    url = url_of(sio.start("127.0.0.1", 0))
    c = ref_client()
    await c.connect(url, auth={"token": "abc"}, headers={"X-Test": "yes"})
    [(sid, auth, method, header, addr)] = await connects.wait_for(1)
    assert auth == {"token": "abc"} and method == "GET" and header == "yes" and addr == "127.0.0.1"
    assert c.get_sid("/") == sid
    assert await c.call("sum", (2, 3), timeout=10) == 5
    assert await c.call("pair", "x", timeout=10) == ("x", {"bin": b"\x01"})
    await c.disconnect()
    [(gone, reason)] = await disconnects.wait_for(1)
    # python-socketio sends DISCONNECT and closes the transport right away: either may win
    assert gone == sid and reason in (sio.reason.CLIENT_DISCONNECT, sio.reason.TRANSPORT_CLOSE)


async def test_connect_without_auth_and_legacy_signatures(make_server, make_client, recorder) -> None:
    sio = make_server()
    seen = recorder()

    @sio.event
    def connect(sid, environ):  # no auth parameter: still called
        seen.add(("connect", sid))

    @sio.event
    def disconnect(sid):  # no reason parameter: still called
        seen.add(("disconnect", sid))

    url = url_of(sio.start("127.0.0.1", 0))
    c = make_client()
    await c.connect(url)
    await seen.wait_for(1)
    await c.disconnect()
    items = await seen.wait_for(2)
    assert items == [("connect", c_sid := items[0][1]), ("disconnect", c_sid)]


@pytest.mark.parametrize(
    ("refuse", "message", "data"),
    [
        ("false", "Connection rejected by server", None),
        ("refused", "not authorized", {"code": 42}),
        ("refused-plain", "nope", None),
        ("builtin", "Connection refused by server", None),
        ("crash", "Connection rejected by server", None),
    ],
)
async def test_connect_handler_refuses(make_server, ref_client, refuse, message, data, caplog) -> None:
    sio = make_server()

    @sio.event
    async def connect(sid, environ, auth):
        if refuse == "false":
            return False
        if refuse == "refused":
            raise polysio.ConnectionRefusedError("not authorized", {"code": 42})
        if refuse == "refused-plain":
            raise polysio.ConnectionRefusedError("nope")
        if refuse == "builtin":
            raise ConnectionRefusedError()
        raise RuntimeError("handler bug")

    url = url_of(sio.start("127.0.0.1", 0))
    c = ref_client()
    errors = []
    c.on("connect_error", lambda d: errors.append(d))
    with caplog.at_level(logging.ERROR, logger="polysio"):
        with pytest.raises(socketio.exceptions.ConnectionError):
            await c.connect(url)
    expected = {"message": message}
    if data is not None:
        expected["data"] = data
    assert errors == [expected]
    if refuse == "crash":
        assert "handler bug" in caplog.text
    # refused sockets leave nothing behind
    assert sio._environ == {} and sio._native.sockets("/") == []


async def test_emit_targets_rooms_and_skip_sid(make_server, make_client, recorder) -> None:
    sio = make_server()
    url = url_of(sio.start("127.0.0.1", 0))
    clients, inboxes = [], []
    for i in range(3):
        c = make_client()
        box = recorder()
        c.on("news", lambda *a, box=box: box.add(a))
        await c.connect(url)
        clients.append(c)
        inboxes.append(box)
    sids = [c.get_sid() for c in clients]
    await sio.enter_room(sids[0], "red")
    await sio.enter_room(sids[1], "red")
    await sio.enter_room(sids[2], "blue")
    assert set(sio.rooms(sids[0])) == {sids[0], "red"}

    await sio.emit("news", "all")
    await sio.emit("news", "red", to="red")
    await sio.emit("news", "red-or-blue", room=["red", "blue"])
    await sio.emit("news", "red-but-0", to="red", skip_sid=sids[0])
    await sio.emit("news", "all-but-1-2", skip_sid=[sids[1], sids[2]])
    await sio.emit("news", "just-2", to=sids[2])
    await sio.emit("news", "nobody", to="no-such-room")
    await sio.emit("news", ("multi", 2))
    await sio.send("ignored-message-event")

    for box in inboxes:
        await box.wait_for(4)
    await asyncio.sleep(0.2)  # nothing more may arrive
    assert [a for a in inboxes[0].items] == [("all",), ("red",), ("red-or-blue",), ("all-but-1-2",), ("multi", 2)]
    assert [a for a in inboxes[1].items] == [("all",), ("red",), ("red-or-blue",), ("red-but-0",), ("multi", 2)]
    assert [a for a in inboxes[2].items] == [("all",), ("red-or-blue",), ("just-2",), ("multi", 2)]

    await sio.leave_room(sids[1], "red")
    await sio.close_room("blue")
    assert sio.rooms(sids[1]) == [sids[1]] and sio.rooms(sids[2]) == [sids[2]]
    await sio.emit("news", "red-again", to="red")
    await sio.emit("news", "blue-again", to="blue")
    assert (await inboxes[0].wait_for(6))[-1] == ("red-again",)
    await asyncio.sleep(0.2)
    assert len(inboxes[1].items) == 5 and len(inboxes[2].items) == 4


async def test_server_acks_callback_and_call(make_server, make_client, recorder) -> None:
    sio = make_server()
    url = url_of(sio.start("127.0.0.1", 0))
    c = make_client()

    @c.event
    def question(x):
        return x * 2, b"bin"

    @c.event
    async def silent(x):
        return None

    @c.event
    def never(x):
        raise RuntimeError("client-side handler failure")

    await c.connect(url)
    sid = c.get_sid()
    assert await sio.call("question", 21, to=sid) == (42, b"bin")
    assert await sio.call("silent", 1, sid=sid) is None
    got = recorder()
    await sio.emit("question", 5, to=sid, callback=lambda *a: got.add(a))

    async def async_cb(*a):
        got.add(("async", *a))

    await sio.emit("question", 6, to=sid, callback=async_cb)
    assert sorted(await got.wait_for(2), key=str) == sorted([(10, b"bin"), ("async", 12, b"bin")], key=str)
    with pytest.raises(polysio.TimeoutError):
        await sio.call("never", 1, to=sid, timeout=0.5)
    with pytest.raises(ValueError, match="broadcast"):
        await sio.call("question", 1)
    with pytest.raises(ValueError, match="single recipient"):
        await sio.emit("question", 1, to=["a", "b"], callback=print)


async def test_an_ack_reaches_the_client_before_what_the_server_emits_after_it(make_server, make_client, recorder) -> None:
    # Acks are handed to the core in batches; whatever the server sends later must still
    # follow them on the wire.
    sio = make_server()

    @sio.event
    async def first(sid, i):
        return i

    @sio.event
    async def second(sid, i):
        await sio.emit("after", i, to=sid)

    url = url_of(sio.start("127.0.0.1", 0))
    c = make_client()
    seen = recorder()

    @c.event
    def after(i):  # plain handlers and ack callbacks run in the order packets arrive
        seen.add(("after", i))

    await c.connect(url)
    for i in range(50):
        await c.emit("first", i, callback=lambda i: seen.add(("ack", i)))
        await c.emit("second", i)
    items = await seen.wait_for(100)
    assert items == [x for i in range(50) for x in (("ack", i), ("after", i))]


async def test_call_to_a_client_that_leaves_fails_fast(make_server, make_client) -> None:
    sio = make_server()
    url = url_of(sio.start("127.0.0.1", 0))
    c = make_client()
    c.on("hang", lambda: asyncio.sleep(3600))
    await c.connect(url)
    sid = c.get_sid()
    pending = asyncio.ensure_future(sio.call("hang", to=sid, timeout=None))
    await asyncio.sleep(0.2)
    await sio.disconnect(sid)
    with pytest.raises(polysio.DisconnectedError):
        await asyncio.wait_for(pending, 10)


async def test_sessions(make_server, make_client, recorder) -> None:
    sio = make_server()
    seen = recorder()

    @sio.event
    async def connect(sid, environ, auth):
        async with sio.session(sid) as session:
            session["user"] = auth["user"]

    @sio.event
    async def whoami(sid):
        session = await sio.get_session(sid)
        session["calls"] = session.get("calls", 0) + 1
        await sio.save_session(sid, session)
        return session["user"], session["calls"]

    @sio.event
    async def disconnect(sid, reason):
        seen.add((await sio.get_session(sid))["user"])

    url = url_of(sio.start("127.0.0.1", 0))
    c = make_client()
    await c.connect(url, auth={"user": "ada"})
    assert await c.call("whoami") == ("ada", 1)
    assert await c.call("whoami") == ("ada", 2)
    sid = c.get_sid()
    assert sio.get_environ(sid)["REQUEST_METHOD"] == "GET"
    await c.disconnect()
    assert await seen.wait_for(1) == ["ada"]
    await eventually(lambda: sio.get_environ(sid) is None)
    with pytest.raises(polysio.DisconnectedError):
        await sio.get_session(sid)


async def test_catch_all_event_and_namespace(make_server, make_client, recorder) -> None:
    sio = make_server(namespaces="*")
    seen = recorder()

    @sio.on("*")
    async def any_event(event, sid, *args):
        seen.add(("/ *", event, args))
        return "caught"

    @sio.on("special")
    def special(sid):
        seen.add(("/ special",))

    @sio.on("*", namespace="*")
    def any_event_any_ns(event, ns, sid, *args):
        seen.add(("* *", event, ns, args))

    @sio.on("connect", namespace="*")
    def any_connect(ns, sid, environ, auth):
        seen.add(("connect", ns))

    url = url_of(sio.start("127.0.0.1", 0))
    c = make_client()
    await c.connect(url, namespaces=["/", "/dyn-1", "/other"])
    assert await c.call("whatever", (1, 2)) == "caught"
    await c.emit("special")
    await c.emit("hello", "x", namespace="/dyn-1")
    await c.emit("hi", namespace="/other")
    items = await seen.wait_for(7)
    assert ("connect", "/dyn-1") in items and ("connect", "/other") in items
    assert ("/ *", "whatever", (1, 2)) in items
    assert ("/ special",) in items
    assert ("* *", "hello", "/dyn-1", ("x",)) in items
    assert ("* *", "hi", "/other", ()) in items
    # the server reaches dynamic namespaces too
    got = recorder()
    c.on("note", lambda x: got.add(x), namespace="/dyn-1")
    await sio.emit("note", "to-dyn", namespace="/dyn-1")
    assert await got.wait_for(1) == ["to-dyn"]


async def test_namespaces_and_unknown_namespace(make_server, ref_client, recorder) -> None:
    sio = make_server(namespaces=["/listed"])
    seen = recorder()
    sio.on("ping", lambda sid: seen.add("chat") or "pong-chat", namespace="/chat")
    url = url_of(sio.start("127.0.0.1", 0))
    c = ref_client()
    await c.connect(url, namespaces=["/chat", "/listed"])
    assert await c.call("ping", namespace="/chat", timeout=10) == "pong-chat"
    bad = ref_client()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await bad.connect(url, namespaces=["/unknown"])
    # a handler registered after start opens its namespace
    sio.on("ping", lambda sid: "pong-late", namespace="/late")
    late = ref_client()
    await late.connect(url, namespaces=["/late"])
    assert await late.call("ping", namespace="/late", timeout=10) == "pong-late"


async def test_server_disconnects_a_client(make_server, make_client, recorder) -> None:
    sio = make_server()
    reasons = recorder()
    sio.on("disconnect", lambda sid, reason: reasons.add(reason))
    url = url_of(sio.start("127.0.0.1", 0))
    c = make_client()
    client_reasons = recorder()
    c.on("disconnect", lambda reason: client_reasons.add(reason))
    await c.connect(url)
    await sio.disconnect(c.get_sid())
    assert await reasons.wait_for(1) == [sio.reason.SERVER_DISCONNECT]
    assert await client_reasons.wait_for(1) == [c.reason.SERVER_DISCONNECT]
    await asyncio.wait_for(c.wait(), 10)
    await sio.disconnect("not-a-sid")  # nothing happens


async def test_handlers_may_be_plain_or_async_and_run_on_the_loop(make_server, make_client) -> None:
    sio = make_server()
    loop = asyncio.get_running_loop()
    threads = []

    @sio.event
    def plain(sid):
        threads.append(asyncio.get_running_loop() is loop)
        return "plain"

    @sio.event
    async def coro(sid):
        threads.append(asyncio.get_running_loop() is loop)
        await asyncio.sleep(0.01)
        return "coro"

    async def returns_awaitable(sid):
        return "awaited"

    sio.on("partial", lambda sid: returns_awaitable(sid))
    url = url_of(sio.start("127.0.0.1", 0))
    c = make_client()
    await c.connect(url)
    assert await c.call("plain") == "plain"
    assert await c.call("coro") == "coro"
    assert await c.call("partial") == "awaited"
    assert threads == [True, True]


async def test_emit_during_connect_reaches_the_new_client_after_its_connect(make_server, make_client, recorder) -> None:
    sio = make_server()

    @sio.event
    async def connect(sid, environ, auth):
        await sio.enter_room(sid, "lobby")
        assert set(sio.rooms(sid)) == {sid, "lobby"}
        await sio.emit("welcome", sid, to=sid)
        await sio.emit("lobby", "to the lobby", to="lobby")

    url = url_of(sio.start("127.0.0.1", 0))
    c = make_client()
    got = recorder()
    c.on("welcome", lambda sid: got.add(("welcome", sid)))
    c.on("lobby", lambda m: got.add(("lobby", m)))
    await c.connect(url)
    items = await got.wait_for(1)
    assert items[0] == ("welcome", c.get_sid())
    assert set(sio.rooms(c.get_sid())) == {c.get_sid(), "lobby"}
    await sio.emit("lobby", "later", to="lobby")
    assert (await got.wait_for(2))[-1] == ("lobby", "later")


async def test_transport_and_transports_option(make_server, make_client) -> None:
    sio = make_server(transports=["websocket"])
    url = url_of(sio.start("127.0.0.1", 0))
    c = make_client()
    await c.connect(url, transports=["websocket"])
    assert sio.transport(c.get_sid()) == "websocket"
    polling_only = make_client()
    with pytest.raises(polysio.ConnectionError):
        await polling_only.connect(url, transports=["polling"], wait_timeout=0.5)


async def test_static_files_and_http_options(make_server, tmp_path) -> None:
    (tmp_path / "index.html").write_text("<h1>hi</h1>")
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "app.js").write_text("console.log(1)")
    sio = make_server(
        static_files={
            "/": str(tmp_path / "index.html"),
            "/static": str(tmp_path / "public"),
            "/data": {"filename": str(tmp_path / "public" / "app.js"), "content_type": "text/x-custom"},
        },
        cors_allowed_origins="*",
        cookie="io",
        allow_request=lambda environ: "forbidden" if environ["QUERY_STRING"].find("deny") >= 0 else True,
    )
    url = url_of(sio.start("127.0.0.1", 0))

    def get(path: str):
        return urllib.request.urlopen(url + path, timeout=10)

    def fetch_all():
        out = {}
        with get("/") as r:
            out["/"] = (r.status, r.headers["content-type"], r.read())
        with get("/static/app.js") as r:
            out["js"] = (r.headers["content-type"], r.read())
        with get("/data") as r:
            out["data"] = r.headers["content-type"]
        for missing in ("/static/../index.html", "/nothing"):
            try:
                get(missing)
                out[missing] = 200
            except urllib.error.HTTPError as e:
                out[missing] = e.code
        with get("/socket.io/?EIO=4&transport=polling") as r:
            out["handshake"] = (r.headers["access-control-allow-origin"], r.headers["set-cookie"])
        try:
            get("/socket.io/?EIO=4&transport=polling&deny=1")
        except urllib.error.HTTPError as e:
            out["denied"] = (e.code, e.read())
        return out

    out = await asyncio.get_running_loop().run_in_executor(None, fetch_all)
    assert out["/"] == (200, "text/html", b"<h1>hi</h1>")
    assert out["js"] == ("application/javascript", b"console.log(1)")
    assert out["data"] == "text/x-custom"
    assert out["/static/../index.html"] == 404 and out["/nothing"] == 404
    assert out["handshake"][0] == "*" and out["handshake"][1].startswith("io=")
    assert out["denied"][0] == 403 and b"forbidden" in out["denied"][1]


def test_bad_options_raise_clearly() -> None:
    with pytest.raises(TypeError, match="unexpected keyword"):
        polysio.AsyncServer(no_such_option=1)
    with pytest.raises(ValueError, match="ping_interval"):
        polysio.AsyncServer(ping_interval=-1)
    with pytest.raises(ValueError, match="transport"):
        polysio.AsyncServer(transports=["carrier-pigeon"])
    with pytest.raises(TypeError):
        polysio.AsyncServer(ping_timeout="soon")
    with pytest.raises(ValueError, match="cookie attribute 'flavour'"):
        polysio.AsyncServer(cookie={"flavour": "choc"})
    with pytest.raises(TypeError):
        polysio.AsyncServer(static_files={"/": 3})
    with pytest.raises(TypeError, match="callable"):
        polysio.AsyncServer().on("x", handler=3)  # type: ignore[call-overload]


def test_start_needs_a_running_loop() -> None:
    sio = polysio.AsyncServer()
    with pytest.raises(RuntimeError, match="event loop"):
        sio.start("127.0.0.1", 0)


async def test_shutdown_disconnects_everyone_and_frees_the_port(make_server, make_client, recorder) -> None:
    sio = polysio.AsyncServer()
    reasons = recorder()
    sio.on("disconnect", lambda sid, reason: reasons.add(reason))
    host, port = sio.start("127.0.0.1", 0)
    c = make_client()
    client_side = recorder()
    c.on("disconnect", lambda r: client_side.add(r))
    await c.connect(url_of((host, port)))
    await sio.shutdown()
    # the disconnect handlers ran before shutdown() returned
    assert reasons.items == [sio.reason.SERVER_SHUTTING_DOWN]
    await client_side.wait_for(1)
    await sio.shutdown()  # again: nothing
    with pytest.raises(polysio.ShutdownError):
        await sio.emit("x")
    with pytest.raises(polysio.ShutdownError):
        sio.start("127.0.0.1", 0)
    # the port is free again
    again = make_server()
    assert again.start("127.0.0.1", port)[1] == port


async def test_serve_runs_until_shutdown_or_cancel(make_client) -> None:
    sio = polysio.AsyncServer()
    task = asyncio.ensure_future(sio.serve("127.0.0.1", 0))
    await asyncio.sleep(0.1)
    assert not task.done()
    await sio.shutdown()
    await asyncio.wait_for(task, 10)

    sio2 = polysio.AsyncServer()
    task2 = asyncio.ensure_future(sio2.serve("127.0.0.1", 0))
    await asyncio.sleep(0.1)
    task2.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task2
    assert sio2._native.closed
