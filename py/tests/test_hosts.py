"""The AsyncServer mounted in the web servers people already run: polysio.ASGIApp around a
FastAPI app under uvicorn (and hypercorn), and sio.attach() on an aiohttp app. Through each
host: the npm socket.io-client and python-socketio's AsyncClient over polling, WebSocket and the
upgrade (binary, acks, namespaces); the host app's own routes and lifespan beside Socket.IO;
mounting under a prefix; a dropped parked GET ending its session; the reference's answers to
refused handshakes; python-socketio's constructor arguments."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from typing import Any, AsyncIterator, Callable, Optional

import fastapi
import httpx
import pytest
import uvicorn
import websockets
from aiohttp import web
from fastapi.responses import PlainTextResponse

import polysio

from conftest import NODE_DIR, eventually, run_node
from test_interop_node import SCENARIOS, TRANSPORTS, scenario_server

HOSTS = ["uvicorn", "hypercorn", "aiohttp"]


class Hosted:
    """A server mounted in a host on a free port, and what the host app saw."""

    def __init__(self, sio: polysio.AsyncServer) -> None:
        self.sio = sio
        self.url = ""
        self.lifespan: list[str] = []
        self.stop: Callable[[], Any] = lambda: None


def fastapi_app(hosted: Hosted) -> fastapi.FastAPI:
    """A FastAPI app with a route of its own, a middleware and a lifespan that records."""

    @contextlib.asynccontextmanager
    async def lifespan(app: fastapi.FastAPI) -> AsyncIterator[None]:
        hosted.lifespan.append("app startup")
        yield
        hosted.lifespan.append("app shutdown")

    api = fastapi.FastAPI(lifespan=lifespan)

    @api.middleware("http")
    async def tag(request: fastapi.Request, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers["x-host-middleware"] = "1"
        return response

    @api.get("/health", response_class=PlainTextResponse)
    def health() -> str:
        return "ok"

    return api


def asgi_app(hosted: Hosted, **options: Any) -> polysio.ASGIApp:
    return polysio.ASGIApp(
        hosted.sio,
        other_asgi_app=fastapi_app(hosted),
        on_startup=lambda: hosted.lifespan.append("on_startup"),
        on_shutdown=lambda: hosted.lifespan.append("on_shutdown"),
        **options,
    )


def port_of(sock: socket.socket) -> int:
    port: int = sock.getsockname()[1]
    return port


async def serve_uvicorn(hosted: Hosted, app: Any, **config: Any) -> None:
    config.setdefault("lifespan", "on")
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", timeout_graceful_shutdown=1, **config
        )
    )
    task = asyncio.ensure_future(server.serve())
    await eventually(lambda: server.started or task.done(), what="uvicorn start")
    if task.done():
        task.result()
    hosted.url = f"http://127.0.0.1:{port_of(server.servers[0].sockets[0])}"

    async def stop() -> None:
        server.should_exit = True
        await asyncio.wait_for(task, 15)

    hosted.stop = stop


async def serve_hypercorn(hosted: Hosted, app: Any) -> None:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    config = Config()
    config.bind = [f"fd://{sock.fileno()}"]
    config.graceful_timeout = 1
    config.loglevel = "WARNING"
    stopping = asyncio.Event()
    task = asyncio.ensure_future(serve(app, config, shutdown_trigger=stopping.wait))  # type: ignore[arg-type]
    hosted.url = f"http://127.0.0.1:{port_of(sock)}"
    sock.detach()  # hypercorn owns (and closes) the descriptor
    await eventually(lambda: "app startup" in hosted.lifespan or task.done(), what="hypercorn start")

    async def stop() -> None:
        stopping.set()
        await asyncio.wait_for(task, 15)

    hosted.stop = stop


async def serve_aiohttp(hosted: Hosted, socketio_path: str = "socket.io") -> None:
    app = web.Application()
    hosted.sio.attach(app, socketio_path=socketio_path)

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def startup(app: web.Application) -> None:
        hosted.lifespan.append("app startup")

    async def cleanup(app: web.Application) -> None:
        hosted.lifespan.append("app shutdown")

    app.router.add_get("/health", health)
    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    hosted.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    hosted.stop = runner.cleanup


@pytest.fixture
async def mount() -> AsyncIterator[Callable[..., Any]]:
    """``await mount(host, sio)`` serves ``sio`` through ``host`` (one of HOSTS) and returns a
    :class:`Hosted`; everything stops after the test."""
    hosted_all: list[Hosted] = []

    async def make(host: str, sio: polysio.AsyncServer, **config: Any) -> Hosted:
        hosted = Hosted(sio)
        hosted_all.append(hosted)
        if host == "uvicorn":
            await serve_uvicorn(hosted, asgi_app(hosted), **config)
        elif host == "hypercorn":
            await serve_hypercorn(hosted, asgi_app(hosted))
        else:
            await serve_aiohttp(hosted)
        return hosted

    yield make
    for h in hosted_all:
        await h.stop()
        await h.sio.shutdown()


# ---- clients through each host --------------------------------------------------------------


@pytest.mark.parametrize("transports", TRANSPORTS)
@pytest.mark.parametrize("host", HOSTS)
async def test_npm_client(mount, host, transports) -> None:
    sio, _ = scenario_server()
    hosted = await mount(host, sio)
    for name in ("basic", "rooms"):
        await run_node(SCENARIOS, hosted.url, name, transports, cwd=NODE_DIR)


@pytest.mark.parametrize("transports", [["polling"], ["websocket"], ["polling", "websocket"]])
@pytest.mark.parametrize("host", HOSTS)
async def test_python_socketio_client(mount, ref_client, recorder, host, transports) -> None:
    sio = polysio.AsyncServer(async_mode="aiohttp" if host == "aiohttp" else "asgi")
    connected = recorder()

    @sio.event
    async def connect(sid, environ, auth):
        connected.add((environ["REMOTE_ADDR"], auth))

    @sio.event
    async def echo(sid, data):
        await sio.emit("echoed", data, to=sid)
        return data

    @sio.on("connect", namespace="/custom")
    def custom(sid, environ, auth):
        pass

    @sio.on("ping", namespace="/custom")
    def ping(sid):
        return "pong", b"\x01"

    hosted = await mount(host, sio)
    client = ref_client()
    echoed = recorder()
    client.on("echoed", echoed.add)
    await client.connect(
        hosted.url, transports=transports, namespaces=["/", "/custom"], auth={"user": "ada"}
    )
    payload = {"bin": b"\x00\xff", "list": [1, 2.5, None, b"x"], "text": "é"}
    assert await client.call("echo", payload, timeout=5) == payload
    assert await echoed.wait_for(1) == [payload]
    assert await client.call("ping", namespace="/custom", timeout=5) == ("pong", b"\x01")
    assert (await connected.wait_for(1))[0] == ("127.0.0.1", {"user": "ada"})
    if transports == ["polling", "websocket"]:
        await eventually(lambda: client.transport() == "websocket", what="upgrade")
    assert client.transport() == transports[-1]


# ---- the host app beside Socket.IO ----------------------------------------------------------


@pytest.mark.parametrize("host", HOSTS)
async def test_host_routes_and_lifespan(mount, ref_client, recorder, host) -> None:
    sio = polysio.AsyncServer()
    reasons = recorder()
    sio.on("disconnect", lambda sid, reason: reasons.add(reason))
    hosted = await mount(host, sio)
    if host == "aiohttp":
        assert hosted.lifespan == ["app startup"]
    else:
        # ASGIApp's hooks run once the app's own startup completed.
        assert hosted.lifespan == ["app startup", "on_startup"]
    async with httpx.AsyncClient() as http:
        r = await http.get(hosted.url + "/health")
        assert (r.status_code, r.text) == (200, "ok")
        if host != "aiohttp":
            assert r.headers["x-host-middleware"] == "1"
        r = await http.get(hosted.url + "/nowhere")
        assert r.status_code == 404
    client = ref_client()
    await client.connect(hosted.url, transports=["websocket"])
    await hosted.stop()
    hosted.stop = lambda: asyncio.sleep(0)
    # The Socket.IO server shut down with the app, before the app's own shutdown (ASGI servers
    # close their connections before the lifespan's shutdown: the client may be gone already).
    assert (await reasons.wait_for(1))[0] in ("server shutting down", "transport close")
    assert sio._native.closed
    if host == "aiohttp":
        assert hosted.lifespan == ["app startup", "app shutdown"]
    else:
        assert hosted.lifespan == ["app startup", "on_startup", "on_shutdown", "app shutdown"]


async def test_lifespan_without_another_app(ref_client) -> None:
    events: list[str] = []
    sio = polysio.AsyncServer()

    async def started() -> None:
        events.append("startup")

    app = polysio.ASGIApp(sio, on_startup=started, on_shutdown=lambda: events.append("shutdown"))
    hosted = Hosted(sio)
    await serve_uvicorn(hosted, app)
    try:
        assert events == ["startup"]
        async with httpx.AsyncClient() as http:
            r = await http.get(hosted.url + "/other")
        assert (r.status_code, r.text) == (404, "Not Found")
        client = ref_client()
        await client.connect(hosted.url, transports=["polling"])
        await client.disconnect()
    finally:
        await hosted.stop()
    assert events == ["startup", "shutdown"]
    assert sio._native.closed


async def test_server_starts_on_the_first_request_without_lifespan(ref_client) -> None:
    sio = polysio.AsyncServer(async_mode="asgi")
    sio.on("echo", lambda sid, x: x)
    hosted = Hosted(sio)
    await serve_uvicorn(hosted, polysio.ASGIApp(sio), lifespan="off")
    try:
        assert not sio._started
        client = ref_client()
        await client.connect(hosted.url)
        assert await client.call("echo", [1], timeout=5) == [1]
    finally:
        await hosted.stop()
        await sio.shutdown()


async def test_static_files(tmp_path) -> None:
    (tmp_path / "index.html").write_text("<h1>hi</h1>")
    sio = polysio.AsyncServer()
    hosted = Hosted(sio)
    app = polysio.ASGIApp(sio, static_files={"/": str(tmp_path / "index.html")})
    await serve_uvicorn(hosted, app)
    try:
        async with httpx.AsyncClient() as http:
            r = await http.get(hosted.url + "/")
            assert (r.status_code, r.text, r.headers["content-type"]) == (200, "<h1>hi</h1>", "text/html")
            assert (await http.get(hosted.url + "/missing")).status_code == 404
    finally:
        await hosted.stop()


# ---- mounted under a prefix ----------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix,socketio_path,client_path",
    [
        # python-socketio's way with Starlette's Mount (the prefix stays in scope["path"])
        ("/ws", "ws/socket.io", "ws/socket.io"),
        # the path below the mount point (scope["root_path"] stripped)
        ("/ws", "socket.io", "ws/socket.io"),
        # routing left to the outer app
        ("/ws", None, "ws"),
    ],
)
async def test_mounted_under_a_prefix(ref_client, prefix, socketio_path, client_path) -> None:
    sio = polysio.AsyncServer(async_mode="asgi")
    sio.on("echo", lambda sid, x: x)
    hosted = Hosted(sio)
    outer = fastapi_app(hosted)
    outer.mount(prefix, polysio.ASGIApp(sio, socketio_path=socketio_path))
    await serve_uvicorn(hosted, outer)
    try:
        for transports in (["polling"], ["websocket"], ["polling", "websocket"]):
            client = ref_client()
            await client.connect(hosted.url, transports=transports, socketio_path=client_path)
            assert await client.call("echo", {"b": b"\x01"}, timeout=5) == {"b": b"\x01"}
            await client.disconnect()
        async with httpx.AsyncClient() as http:
            assert (await http.get(hosted.url + "/health")).text == "ok"
    finally:
        await hosted.stop()
        await sio.shutdown()


async def test_uvicorn_root_path(ref_client) -> None:
    # Behind a proxy that strips /api: uvicorn puts the prefix back into scope["path"].
    sio = polysio.AsyncServer()
    sio.on("echo", lambda sid, x: x)
    hosted = Hosted(sio)
    await serve_uvicorn(hosted, asgi_app(hosted), root_path="/api")
    try:
        client = ref_client()
        await client.connect(hosted.url, transports=["polling", "websocket"])
        assert await client.call("echo", "x", timeout=5) == "x"
        await eventually(lambda: client.transport() == "websocket", what="upgrade")
    finally:
        await hosted.stop()
        await sio.shutdown()


# ---- long polling: a client that goes away -------------------------------------------------


async def raw_get(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Sends a GET for ``url`` on a connection of its own, without waiting for the answer."""
    u = httpx.URL(url)
    reader, writer = await asyncio.open_connection(u.host, u.port)
    target = u.raw_path.decode()
    writer.write(f"GET {target} HTTP/1.1\r\nHost: {u.host}:{u.port}\r\n\r\n".encode())
    await writer.drain()
    return reader, writer


@pytest.mark.parametrize("host", HOSTS)
async def test_a_dropped_parked_get_ends_the_session(mount, recorder, host) -> None:
    sio = polysio.AsyncServer(ping_interval=30, ping_timeout=30)
    reasons = recorder()
    sio.on("connect", lambda sid, environ: None)
    sio.on("disconnect", lambda sid, reason: reasons.add(reason))
    hosted = await mount(host, sio)
    base = hosted.url + "/socket.io/?EIO=4&transport=polling"
    async with httpx.AsyncClient() as http:
        open_packet = (await http.get(base)).text
        sid = json.loads(open_packet[1:])["sid"]
        r = await http.post(f"{base}&sid={sid}", content=b"40")
        assert r.text == "ok"
        r = await http.get(f"{base}&sid={sid}")
        assert r.text.startswith("40{")
    # Parked: nothing is due for 30 s. The client closes the connection.
    reader, writer = await raw_get(f"{base}&sid={sid}")
    await asyncio.sleep(0.3)
    assert reasons.items == []
    writer.close()
    started = asyncio.get_running_loop().time()
    assert await reasons.wait_for(1, timeout=5) == ["transport error"]
    assert asyncio.get_running_loop().time() - started < 5
    async with httpx.AsyncClient() as http:
        r = await http.get(f"{base}&sid={sid}")
        assert (r.status_code, r.json()) == (400, {"code": 1, "message": "Session ID unknown"})


@pytest.mark.parametrize("host", HOSTS)
async def test_an_oversized_websocket_message_ends_the_session(mount, recorder, host) -> None:
    # The host's own limit is larger (uvicorn: 16 MiB): max_http_buffer_size still holds.
    sio = polysio.AsyncServer(max_http_buffer_size=1000)
    reasons = recorder()
    sio.on("disconnect", lambda sid, reason: reasons.add(reason))
    hosted = await mount(host, sio)
    ws = hosted.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    async with websockets.connect(ws) as conn:
        assert str(await conn.recv()).startswith("0{")
        await conn.send("40")
        assert str(await conn.recv()).startswith("40{")
        await conn.send("42" + json.dumps(["message", "x" * 2000]))
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(conn.recv(), 5)
    assert (await reasons.wait_for(1))[0] == "transport error"


# ---- refused handshakes --------------------------------------------------------------------


@pytest.mark.parametrize("host", HOSTS)
async def test_refused_handshakes(mount, host) -> None:
    def allow(environ: dict[str, Any]) -> Optional[bool]:
        return environ.get("HTTP_X_DENY") is None

    sio = polysio.AsyncServer(allow_request=allow)
    hosted = await mount(host, sio)
    base = hosted.url + "/socket.io/?EIO=4"
    async with httpx.AsyncClient() as http:
        r = await http.get(base + "&transport=carrier-pigeon")
        assert (r.status_code, r.json()) == (400, {"code": 0, "message": "Transport unknown"})
        r = await http.get(base + "&transport=polling", headers={"x-deny": "1"})
        assert (r.status_code, r.json()) == (403, {"code": 4, "message": "Forbidden"})
        r = await http.get(base + "&transport=polling&sid=nope")
        assert (r.status_code, r.json()) == (400, {"code": 1, "message": "Session ID unknown"})
        r = await http.post(base + "&transport=polling&sid=nope", content=b"40")
        assert (r.status_code, r.json()) == (400, {"code": 1, "message": "Session ID unknown"})
        r = await http.get(hosted.url + "/socket.io/?transport=polling")
        assert (r.status_code, r.json()) == (400, {"code": 5, "message": "Unsupported protocol version"})
    ws = hosted.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(ws + "&sid=nope"):
            pass
    # The reference answers a refused upgrade with HTTP 400 (the host's extension permitting).
    assert refused.value.response.status_code == 400
    assert b"Session ID unknown" in refused.value.response.body
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(ws, additional_headers={"x-deny": "1"}):
            pass
    assert refused.value.response.status_code == 400


async def test_refused_websocket_without_the_http_response_extension() -> None:
    # A server without websocket.http.response (hidden here): the WebSocket is closed before it
    # is accepted, which uvicorn answers with 403.
    sio = polysio.AsyncServer()
    hosted = Hosted(sio)
    app = asgi_app(hosted)

    async def without_extensions(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await app({k: v for k, v in scope.items() if k != "extensions"}, receive, send)

    await serve_uvicorn(hosted, without_extensions, ws="wsproto")
    try:
        ws = hosted.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(ws + "&sid=nope"):
                pass
        assert refused.value.response.status_code == 403
        async with websockets.connect(ws) as conn:
            assert json.loads((await conn.recv())[1:])["upgrades"] == []
    finally:
        await hosted.stop()
        await sio.shutdown()


# ---- python-socketio's constructor -----------------------------------------------------------


async def test_python_socketio_fastapi_example(ref_client) -> None:
    # python-socketio's FastAPI example, with `import polysio as socketio`.
    socketio = polysio
    sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*")
    app = fastapi.FastAPI()

    @app.get("/hello")
    async def root() -> dict[str, str]:
        return {"message": "Hello World"}

    @sio.event
    async def message(sid, data):
        await sio.emit("reply", data, to=sid)

    combined = socketio.ASGIApp(sio, other_asgi_app=app)
    hosted = Hosted(sio)
    await serve_uvicorn(hosted, combined)
    try:
        client = ref_client()
        replies: asyncio.Queue[Any] = asyncio.Queue()
        client.on("reply", replies.put_nowait)
        await client.connect(hosted.url)
        await client.emit("message", "hi")
        assert await asyncio.wait_for(replies.get(), 5) == "hi"
        async with httpx.AsyncClient() as http:
            assert (await http.get(hosted.url + "/hello")).json() == {"message": "Hello World"}
    finally:
        await hosted.stop()


@pytest.mark.parametrize(
    "options",
    [
        {"async_mode": "asgi"},
        {"async_mode": "aiohttp"},
        {"engineio_logger": True, "monitor_clients": False},
        {"http_compression": False, "compression_threshold": 0},
        {"json": json, "async_handlers": True, "always_connect": False},
        {"serializer": "default", "client_manager": None},
        {"ping_interval": (10, 5), "transports": "websocket", "cors_allowed_origins": []},
        {"cookie": {"name": "io", "path": "/", "SameSite": "Lax", "HttpOnly": True}},
    ],
)
async def test_harmless_python_socketio_arguments_are_accepted(make_server, options) -> None:
    make_server(**options)


@pytest.mark.parametrize(
    "options,name",
    [
        ({"async_mode": "tornado"}, "async_mode"),
        ({"async_mode": "eventlet"}, "async_mode"),
        ({"client_manager": object()}, "client_manager"),
        ({"serializer": "msgpack"}, "serializer"),
        ({"json": object()}, "json"),
        ({"async_handlers": False}, "async_handlers"),
        ({"always_connect": True}, "always_connect"),
        ({"cookie": {"name": "io", "expires": lambda: "never"}}, "expires"),
    ],
)
async def test_python_socketio_arguments_polysio_cannot_honour(options, name) -> None:
    with pytest.raises(ValueError, match=name):
        polysio.AsyncServer(**options)


def test_unknown_arguments_and_the_sync_server() -> None:
    with pytest.raises(TypeError, match="AsyncServer.. got an unexpected keyword argument 'colour'"):
        polysio.AsyncServer(colour="blue")
    with pytest.raises(ValueError, match="async_mode"):
        polysio.Server(async_mode="asgi")
    sync = polysio.Server(async_mode="threading")
    sync.shutdown()
    with pytest.raises(TypeError, match="polysio.Server"):
        polysio.ASGIApp(sync)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ASGIApp"):
        polysio.AsyncServer().attach(object())


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="no fork()")
def test_an_app_imported_before_fork_serves_in_the_child() -> None:
    # gunicorn --preload imports the app (and creates the server) in the parent, then forks.
    from test_robustness import run_script

    r = run_script(
        """
        import asyncio, os, warnings, httpx, polysio
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads (3.12+)
        sio = polysio.AsyncServer(async_mode="asgi")
        app = polysio.ASGIApp(sio)

        async def handshake():
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://x") as http:
                r = await http.get("/socket.io/?EIO=4&transport=polling")
            await sio.shutdown()
            return r.status_code, r.text[:8]

        pid = os.fork()
        if pid == 0:
            print("child", asyncio.run(handshake()), flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
        """
    )
    assert "child (200, '0{\"sid\":'" in r.stdout, r.stdout + r.stderr
