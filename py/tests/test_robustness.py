"""Bad input and bad days: wrong argument types, unknown sids, use after shutdown, handlers that
raise or block, Ctrl-C, fork, a loop closed under a running server. Always a clear exception
or a log line; never a crash or a hang."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

import polysio

from conftest import PYTHON, url_of


async def test_wrong_argument_types(make_server, make_client) -> None:
    sio = make_server()
    url = url_of(sio.start("127.0.0.1", 0))
    c = make_client()
    await c.connect(url)
    sid = c.get_sid()
    with pytest.raises(TypeError):
        await sio.emit(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await sio.emit("x", to=123)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await sio.emit("x", skip_sid=[1, 2])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        await sio.enter_room(sid, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await sio.call("x", to=sid, timeout="soon")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await sio.call("x", to=sid, timeout=-1)
    with pytest.raises(TypeError):
        sio.start("127.0.0.1", "port")  # type: ignore[arg-type]
    with pytest.raises(OverflowError):
        sio.start("127.0.0.1", 70000)
    with pytest.raises(TypeError):
        await c.call("x", namespace=3)  # type: ignore[arg-type]
    with pytest.raises(polysio.InvalidArgumentError, match="reserved"):
        await sio.emit("disconnect", to=sid)
    # nothing of this broke the connection
    sio.on("ok", lambda sid: "fine")
    assert await c.call("ok") == "fine"


async def test_unknown_sid(make_server) -> None:
    sio = make_server()
    sio.start("127.0.0.1", 0)
    await sio.emit("x", to="no-such-sid")  # a room nobody is in: reaches nobody
    with pytest.raises(polysio.DisconnectedError, match="no-such-sid"):
        await sio.call("x", to="no-such-sid")
    # An emit to a client that has left (or never was) is a no-op, callback or not.
    await sio.emit("x", to="no-such-sid", callback=print)
    with pytest.raises(polysio.DisconnectedError):
        await sio.enter_room("no-such-sid", "room")
    with pytest.raises(polysio.DisconnectedError):
        await sio.leave_room("no-such-sid", "room")
    with pytest.raises(polysio.DisconnectedError):
        sio.rooms("no-such-sid")
    with pytest.raises(polysio.DisconnectedError):
        sio.transport("no-such-sid")
    with pytest.raises(polysio.DisconnectedError):
        await sio.get_session("no-such-sid")
    with pytest.raises(polysio.DisconnectedError):
        async with sio.session("no-such-sid"):
            pass
    await sio.disconnect("no-such-sid")  # idempotent: nothing to do
    assert sio.get_environ("no-such-sid") is None


async def test_calls_after_shutdown_raise(make_client) -> None:
    sio = polysio.AsyncServer()
    url = url_of(sio.start("127.0.0.1", 0))
    c = make_client()
    await c.connect(url)
    sid = c.get_sid()
    await sio.shutdown()
    for attempt in (
        sio.emit("x"),
        sio.call("x", to=sid),
        sio.enter_room(sid, "r"),
        sio.close_room("r"),
        sio.disconnect(sid),
    ):
        with pytest.raises(polysio.ShutdownError):
            await attempt
    with pytest.raises(polysio.ShutdownError):
        sio.rooms(sid)
    with pytest.raises(polysio.ShutdownError):
        await sio.serve("127.0.0.1", 0)


async def test_a_handler_that_raises_is_logged_and_the_connection_goes_on(make_server, make_client, caplog) -> None:
    sio = make_server()

    @sio.event
    def boom(sid):
        raise KeyError("plain handler failure")

    @sio.event
    async def aboom(sid):
        raise ValueError("async handler failure")

    @sio.event
    def ok(sid):
        return "still here"

    url = url_of(sio.start("127.0.0.1", 0))
    c = make_client()
    with caplog.at_level(logging.ERROR, logger="polysio"):
        await c.connect(url)
        with pytest.raises(polysio.TimeoutError):
            await c.call("boom", timeout=0.5)  # no ack: the handler failed
        await c.emit("aboom")
        assert await c.call("ok") == "still here"
    messages = "\n".join(r.getMessage() + str(r.exc_info) for r in caplog.records)
    assert "plain handler failure" in messages and "async handler failure" in messages
    assert "the connection goes on" in messages
    assert c.connected


async def test_a_handler_that_blocks_is_reported_and_connections_survive(make_server, make_client, caplog) -> None:
    # Heartbeats run in the core, so a blocked event loop does not drop clients.
    sio = make_server(ping_interval=0.2, ping_timeout=0.2)

    @sio.event
    def block(sid):
        time.sleep(1.5)
        return "done"

    url = url_of(sio.start("127.0.0.1", 0))
    c = make_client()
    reasons = []
    c.on("disconnect", lambda r: reasons.append(r))
    await c.connect(url)
    with caplog.at_level(logging.WARNING, logger="polysio"):
        assert await c.call("block", timeout=10) == "done"
    assert "blocked the event loop" in caplog.text
    assert reasons == [] and c.connected


def run_script(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("flavour", ["async", "sync"])
def test_ctrl_c_stops_cleanly(flavour) -> None:
    # The script restores Python's SIGINT handler: shells start background jobs with SIGINT
    # ignored, and Python then installs none.
    port = free_port()
    code = {
        "async": f"""
            import asyncio, polysio, signal
            signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
            sio = polysio.AsyncServer()
            try:
                asyncio.run(sio.serve("127.0.0.1", {port}))
            except KeyboardInterrupt:
                print("interrupted", sio._native.closed, flush=True)
        """,
        "sync": f"""
            import polysio, signal
            signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
            sio = polysio.Server()
            try:
                sio.serve("127.0.0.1", {port})
            except KeyboardInterrupt:
                print("interrupted", sio._server._native.closed, flush=True)
        """,
    }[flavour]
    proc = subprocess.Popen(
        [PYTHON, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        # wait until it serves, with a client connected
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.05)
        client = polysio.Client(reconnection=False)
        client.connect(f"http://127.0.0.1:{port}")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        client.shutdown()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "interrupted True" in out, err
    assert "Fatal" not in err and "panicked" not in err
    with socket.socket() as s:  # the port is free again (for a server: SO_REUSEADDR)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork()")
def test_fork_refuses_parent_objects_and_works_afresh() -> None:
    r = run_script(
        """
        import asyncio, os, polysio, warnings
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads (3.12+)

        async def roundtrip():
            sio = polysio.AsyncServer()
            sio.on("echo", lambda sid, x: x)
            _, port = sio.start("127.0.0.1", 0)
            c = polysio.AsyncClient(reconnection=False)
            await c.connect(f"http://127.0.0.1:{port}")
            r = await c.call("echo", os.getpid())
            await c.disconnect()
            await sio.shutdown()
            return r

        parent = polysio.AsyncServer()
        asyncio.run(roundtrip())  # the runtime runs in the parent
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                asyncio.run(parent.emit("x"))
                code = 3
            except polysio.SocketIOError as e:
                if "fork" not in str(e):
                    code = 4
            try:
                assert asyncio.run(roundtrip()) == os.getpid()
            except Exception as e:
                print("child failed", repr(e), flush=True)
                code = 5
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        print("child", os.waitstatus_to_exitcode(status))
        print("parent", asyncio.run(roundtrip()) == os.getpid())
        """
    )
    assert "child 0" in r.stdout and "parent True" in r.stdout, r.stdout + r.stderr


def test_a_closed_loop_under_a_running_server_is_reported_not_fatal() -> None:
    r = run_script(
        """
        import asyncio, polysio
        sio = polysio.AsyncServer()

        async def start():
            return sio.start("127.0.0.1", 0)[1]

        port = asyncio.run(start())  # the loop closes; the server was never shut down

        async def connect():
            c = polysio.AsyncClient(reconnection=False)
            try:
                await c.connect(f"http://127.0.0.1:{port}", wait_timeout=2)
            except polysio.ConnectionError as e:
                print("refused:", e)

        asyncio.run(connect())
        print("done")
        """
    )
    assert "refused:" in r.stdout and "done" in r.stdout, r.stdout + r.stderr
    assert "Event loop is closed" in r.stderr
    assert r.returncode == 0


def test_set_worker_threads() -> None:
    r = run_script(
        """
        import polysio
        polysio.set_worker_threads(1)
        try:
            polysio.set_worker_threads(0)
        except polysio.InvalidArgumentError as e:
            print("zero refused")
        polysio.AsyncServer()  # starts the runtime
        try:
            polysio.set_worker_threads(2)
        except polysio.InvalidArgumentError as e:
            print("too late:", e)
        """
    )
    assert "zero refused" in r.stdout and "too late" in r.stdout, r.stdout + r.stderr
    r = subprocess.run(
        [PYTHON, "-c", "import polysio; polysio.AsyncServer()"],
        env={**os.environ, "POLYSIO_WORKER_THREADS": "many"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode != 0 and "POLYSIO_WORKER_THREADS" in r.stderr


def test_wrong_use_of_sync_classes() -> None:
    sio = polysio.Server()
    try:
        with pytest.raises(polysio.DisconnectedError):
            sio.call("x", to="nobody")
    finally:
        sio.shutdown()
    sys.stdout.flush()
