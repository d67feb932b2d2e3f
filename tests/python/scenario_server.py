"""The scenario server of tests/SCENARIOS.md in Python, on either implementation of the same
API (the handlers below are shared):

    python scenario_server.py polysio PORT          polysio's AsyncServer (tests/run-server python)
    python scenario_server.py polysio-asgi PORT     the same through polysio.ASGIApp around a
                                                    FastAPI app, under uvicorn
                                                    (tests/run-server python-asgi)
    python scenario_server.py polysio-aiohttp PORT  the same attached to an aiohttp app
                                                    (tests/run-server python-aiohttp)
    python scenario_server.py python-socketio PORT  PyPI python-socketio under uvicorn
                                                    (tests/run-server python-socketio)

The mounted hosts also answer ``GET /health`` with ``ok`` from the host framework itself.

Prints ``listening PORT`` once serving on 127.0.0.1; runs until SIGINT/SIGTERM. With
``POLYSIO_TEST_TLS_CERT`` and ``POLYSIO_TEST_TLS_KEY`` (PEM files) set, serves https/wss:
polysio's listener itself, uvicorn and aiohttp with their own TLS.

Cluster mode (tests/SCENARIOS.md): with ``POLYSIO_TEST_REDIS=redis://...`` set, the polysio
ones join that Redis through ``polysio.AsyncRedisManager`` (``POLYSIO_TEST_ADAPTER`` unset or
``classic``, or ``sharded``: ``format="sharded"``; another value exits 77), ``/`` also has the cluster events (``cluster()`` below),
and the port opens only once the manager is subscribed.
"""
import asyncio
import os
import signal
import socket
import ssl
import sys

TLS_CERT = os.environ.get("POLYSIO_TEST_TLS_CERT")
TLS_KEY = os.environ.get("POLYSIO_TEST_TLS_KEY")
TLS = bool(TLS_CERT and TLS_KEY)


def uvicorn_tls():
    """uvicorn.Config's TLS options (none without the test certificate)."""
    return {"ssl_certfile": TLS_CERT, "ssl_keyfile": TLS_KEY} if TLS else {}


def setup(sio, module, nsp):
    @sio.on("connect", namespace=nsp)
    async def connect(sid, environ, auth):
        auth = auth if auth is not None else {}
        if isinstance(auth, dict) and "refuse" in auth:
            raise module.exceptions.ConnectionRefusedError("refused", {"reason": auth["refuse"]})
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


def cluster(sio, mgr):
    """The cluster events of ``/`` (tests/SCENARIOS.md, "Cluster mode") on ``sio``, whose
    client manager is ``mgr``; a request that fails across nodes acks ``{"error": ...}``."""

    def failed(exc):
        return {"error": str(exc)}

    @mgr.on("relay")
    async def relay(*args):
        await mgr.local_emit("relayed", args)

    @mgr.on("ping-node")
    async def ping_node(*args):
        return "pong"

    @sio.on("fetch-sockets")
    async def fetch_sockets(sid, room):
        try:
            return sorted(s["sid"] for s in await mgr.fetch_sockets(to=room))
        except Exception as exc:
            return failed(exc)

    @sio.on("sockets-join")
    async def sockets_join(sid, target, room):
        await mgr.sockets_join(room, to=target)

    @sio.on("disconnect-room")
    async def disconnect_room(sid, room):
        async def later():
            # After the ack (returned below) has left.
            await asyncio.sleep(0.05)
            await mgr.disconnect_sockets(to=room)
        task = asyncio.ensure_future(later())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    tasks = set()  # the disconnect-room tasks running (asyncio keeps weak references only)

    @sio.on("server-side-emit")
    async def server_side_emit(sid, *args):
        await mgr.server_side_emit("relay", *args)

    @sio.on("server-side-emit-with-ack")
    async def server_side_emit_with_ack(sid, *args):
        try:
            return len(await mgr.server_side_emit_with_ack("ping-node"))
        except Exception as exc:
            return failed(exc)

    @sio.on("ask-all")
    async def ask_all(sid, *args):
        try:
            replies = await mgr.emit_with_ack("question", args, timeout=3)
        except Exception as exc:
            return failed(exc)
        firsts = [r[0] if isinstance(r, tuple) else r for r in replies]
        return sorted(js_string(r) for r in firsts)

    @sio.on("server-count")
    async def server_count(sid, *args):
        try:
            return await mgr.server_count()
        except Exception as exc:
            return failed(exc)


def js_string(value):
    """JavaScript's String(value) for the JSON values a client answers with."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def redis_manager(lang):
    """Cluster mode's polysio.AsyncRedisManager, or None without POLYSIO_TEST_REDIS."""
    url = os.environ.get("POLYSIO_TEST_REDIS")
    if not url:
        return None
    kind = os.environ.get("POLYSIO_TEST_ADAPTER") or "classic"
    if kind not in ("classic", "sharded"):
        print("adapter %s not supported by %s (POLYSIO_TEST_ADAPTER; known: classic, sharded)"
              % (kind, lang), file=sys.stderr, flush=True)
        sys.exit(77)
    import polysio
    return polysio.AsyncRedisManager(url, format=kind)


async def subscribed(mgr):
    """Returns once ``mgr`` is subscribed and counted by the cluster; exits after 20 s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while True:
        try:
            await mgr.ready(timeout=1)
            if await mgr.server_count() >= 1:
                return
        except Exception:
            pass  # Redis not reachable yet
        if loop.time() > deadline:
            sys.exit("scenario server: Redis not ready within 20 s (%s)"
                     % os.environ.get("POLYSIO_TEST_REDIS"))
        await asyncio.sleep(0.05)


async def serve_polysio(port):
    import polysio
    mgr = redis_manager("python")
    sio = polysio.AsyncServer(ping_interval=0.3, ping_timeout=0.2, connect_timeout=1.0,
                              **({"client_manager": mgr} if mgr else {}))
    for nsp in ("/", "/custom"):
        setup(sio, polysio, nsp)
    tls = (TLS_CERT, TLS_KEY) if TLS else (None, None)
    if mgr:
        cluster(sio, mgr)
        # The core serves (and joins Redis) once attached to this loop; the port opens after.
        sio._serving()
        await subscribed(mgr)
    _, bound = sio.start("127.0.0.1", port, *tls)
    print("listening %d" % bound, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(s, stop.set)
    await stop.wait()
    await sio.shutdown()


def polysio_server(async_mode, lang):
    """The AsyncServer for a host and, in cluster mode, its manager (or None)."""
    import polysio
    mgr = redis_manager(lang)
    sio = polysio.AsyncServer(async_mode=async_mode, ping_interval=0.3, ping_timeout=0.2,
                              connect_timeout=1.0, **({"client_manager": mgr} if mgr else {}))
    for nsp in ("/", "/custom"):
        setup(sio, polysio, nsp)
    if mgr:
        cluster(sio, mgr)
    return sio, mgr


def bound_socket(port):
    """Bound here so that PORT 0 works and the chosen port can be printed."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    print("listening %d" % sock.getsockname()[1], flush=True)
    return sock


def serve_polysio_asgi(port):
    import fastapi
    import polysio
    import uvicorn
    api = fastapi.FastAPI()

    @api.get("/health", response_class=fastapi.responses.PlainTextResponse)
    def health():
        return "ok"

    sio, mgr = polysio_server("asgi", "python-asgi")

    async def startup():
        # Before uvicorn listens on the socket.
        if mgr:
            await subscribed(mgr)

    app = polysio.ASGIApp(sio, other_asgi_app=api, on_startup=startup)
    sock = bound_socket(port)
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1, **uvicorn_tls())
    uvicorn.Server(config).run(sockets=[sock])


def serve_polysio_aiohttp(port):
    from aiohttp import web
    app = web.Application()
    sio, mgr = polysio_server("aiohttp", "python-aiohttp")
    sio.attach(app)

    async def startup(app):
        # After attach()'s own startup (the server serves), before the site listens.
        if mgr:
            await subscribed(mgr)

    app.on_startup.append(startup)

    async def health(request):
        return web.Response(text="ok")

    app.router.add_get("/health", health)
    context = None
    if TLS:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(TLS_CERT, TLS_KEY)
    web.run_app(app, sock=bound_socket(port), print=None, shutdown_timeout=1, ssl_context=context)


def serve_python_socketio(port):
    import socketio
    import uvicorn
    # pingTimeout 2 s rather than the scenarios' 200 ms: python-socketio's heartbeat drops
    # healthy clients at 200 ms (seen in the rooms-broadcast scenario); no scenario depends on it.
    sio = socketio.AsyncServer(async_mode="asgi", ping_interval=0.3, ping_timeout=2,
                               cors_allowed_origins="*")
    for nsp in ("/", "/custom"):
        setup(sio, socketio, nsp)
    sock = bound_socket(port)
    # A short graceful shutdown: uvicorn otherwise waits for every connection to end on SIGTERM.
    config = uvicorn.Config(socketio.ASGIApp(sio), log_level="warning", timeout_graceful_shutdown=1,
                            **uvicorn_tls())
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    impl, port = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    if impl == "polysio":
        asyncio.run(serve_polysio(port))
    elif impl == "polysio-asgi":
        serve_polysio_asgi(port)
    elif impl == "polysio-aiohttp":
        serve_polysio_aiohttp(port)
    elif impl == "python-socketio":
        serve_python_socketio(port)
    else:
        sys.exit("usage: scenario_server.py polysio|polysio-asgi|polysio-aiohttp|python-socketio PORT")
