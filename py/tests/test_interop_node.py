"""Our AsyncServer against the npm socket.io-client: every scenario of
tests/node/server-scenarios.js (the core's own client-side suite) over each transport; and the
scenario servers of ``tests/run-server python`` / ``python-socketio`` with the npm client."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

import polysio

from conftest import NODE_DIR, ROOT, TESTS, eventually, run_node, url_of

SCENARIOS = str(NODE_DIR / "server-scenarios.js")
TRANSPORTS = ["polling", "websocket", "polling,websocket"]


def scenario_server(**options) -> tuple[polysio.AsyncServer, list[str]]:
    """The handlers server-scenarios.js expects (as core/tests/server_node.rs has them)."""
    sio = polysio.AsyncServer(**options)
    reasons: list[str] = []

    @sio.event
    async def connect(sid, environ, auth):
        await sio.emit("auth", auth or {}, to=sid)

    @sio.event
    async def disconnect(sid, reason):
        reasons.append(reason)
        if reason == sio.reason.TRANSPORT_CLOSE:
            # for the recovery scenario: broadcasts the client misses while away
            await sio.emit("news", "missed-1", to="green")
            await sio.emit("news", "missed-2", to="green")

    @sio.on("message")
    async def message(sid, *args):
        await sio.emit("message-back", tuple(args), to=sid)

    @sio.on("message-with-ack")
    def message_with_ack(sid, *args):
        return tuple(args)

    @sio.on("ask-client")
    async def ask_client(sid, *args):
        answer = await sio.call("question", tuple(args), to=sid, timeout=5)
        await sio.emit("answer", answer, to=sid)

    @sio.event
    async def join(sid, room):
        await sio.enter_room(sid, room)
        return room

    @sio.event
    async def bcast(sid, room, *rest):
        await sio.emit("news", tuple(rest), to=room)

    @sio.on("bcast-except")
    async def bcast_except(sid, room, *rest):
        await sio.emit("news", tuple(rest), skip_sid=room)

    @sio.on("disconnect-me")
    async def disconnect_me(sid):
        await sio.disconnect(sid)

    @sio.on("connect", namespace="/custom")
    async def custom(sid, environ, auth):
        await sio.emit("auth", auth or {}, to=sid, namespace="/custom")

    @sio.on("connect", namespace="/secret")
    def secret(sid, environ, auth):
        if (auth or {}).get("token") != "ok":
            raise polysio.ConnectionRefusedError("not authorized", {"code": 42})

    return sio, reasons


@pytest.fixture
async def scenario():
    servers = []

    def make(**options):
        sio, reasons = scenario_server(**options)
        servers.append(sio)
        return url_of(sio.start("127.0.0.1", 0)), reasons

    yield make
    for s in servers:
        await s.shutdown()


async def run_scenario(url: str, name: str, transports: str = "polling,websocket") -> str:
    return await run_node(SCENARIOS, url, name, transports, cwd=NODE_DIR)


@pytest.mark.parametrize("transports", TRANSPORTS)
async def test_basic(scenario, transports) -> None:
    url, _ = scenario()
    await run_scenario(url, "basic", transports)


@pytest.mark.parametrize("transports", TRANSPORTS)
async def test_rooms(scenario, transports) -> None:
    url, _ = scenario()
    await run_scenario(url, "rooms", transports)


async def test_middleware_refusal(scenario) -> None:
    url, _ = scenario()
    await run_scenario(url, "middleware")


async def test_server_disconnect(scenario) -> None:
    url, reasons = scenario()
    await run_scenario(url, "server-disconnect")
    await eventually(lambda: reasons == ["server namespace disconnect"], what=lambda: reasons)


async def test_ping_timeout(scenario) -> None:
    url, reasons = scenario(ping_interval=0.3, ping_timeout=0.2)
    await run_scenario(url, "no-pong")
    await eventually(lambda: reasons == ["ping timeout"], what=lambda: reasons)


@pytest.mark.parametrize("transports", ["polling", "websocket"])
async def test_connection_state_recovery(scenario, transports) -> None:
    url, _ = scenario(connection_state_recovery=True)
    await run_scenario(url, "recovery", transports)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_listening(proc: asyncio.subprocess.Process, port: int, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        if proc.returncode is not None:
            raise AssertionError(
                f"the server exited with {proc.returncode}"
                + (" (python-socketio: run tests/python/setup.sh)" if proc.returncode == 77 else "")
            )
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            assert loop.time() < end, "the server did not start"
            await asyncio.sleep(0.1)


@pytest.mark.parametrize("lang", ["python", "python-asgi", "python-aiohttp", "python-socketio"])
async def test_run_server_scenario_with_npm_client(lang) -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        "bash", str(ROOT / "tests" / "run-server"), lang, str(port), env=dict(os.environ)
    )
    try:
        await wait_listening(proc, port, 300)
        for transports in TRANSPORTS:
            await run_node(str(TESTS / "scenario-client.js"), f"http://127.0.0.1:{port}", transports)
    finally:
        if proc.returncode is None:
            proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)
