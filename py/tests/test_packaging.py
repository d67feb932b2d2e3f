"""Packaging: the stubs match the native module (mypy.stubtest), the package and typical user
code type-check strictly, and the built abi3 wheel installs into a fresh venv (on every CPython
found, 3.9 included when present) and works there."""

from __future__ import annotations

import glob
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from conftest import PYTHON, ROOT

PACKAGE = ROOT / "py" / "python" / "polysio"


def wheel() -> Path:
    if os.environ.get("POLYSIO_WHEEL"):
        return Path(os.environ["POLYSIO_WHEEL"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    wheels = sorted(target.glob("py-wheels/polysio-*.whl"), key=lambda p: p.stat().st_mtime)
    if not wheels:
        pytest.skip("no wheel built (run py/tests/run.sh)")
    return wheels[-1]


def run(*cmd: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_stubs_match_the_native_module(tmp_path) -> None:
    # Outside the source tree, so that the installed package (with its .so) is what is checked.
    r = run(PYTHON, "-m", "mypy.stubtest", "polysio", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


def test_package_and_user_code_type_check_strictly(tmp_path) -> None:
    user = tmp_path / "app.py"
    user.write_text(
        textwrap.dedent(
            """
            import asyncio
            from typing import Any

            import polysio

            sio = polysio.AsyncServer(ping_interval=10, cors_allowed_origins="*")

            @sio.event
            async def connect(sid: str, environ: dict[str, Any], auth: Any) -> bool:
                await sio.enter_room(sid, "lobby")
                return True

            @sio.on("chat", namespace="/")
            async def chat(sid: str, message: str) -> str:
                await sio.emit("chat", message, to="lobby", skip_sid=sid)
                async with sio.session(sid) as session:
                    session["last"] = message
                return "ok"

            async def main() -> None:
                host, port = sio.start("127.0.0.1", 0)
                client = polysio.AsyncClient(reconnection_attempts=3)
                client.on("chat", lambda message: None)
                await client.connect(f"http://{host}:{port}", auth={"user": "ada"})
                answer: Any = await client.call("chat", "hi", timeout=5)
                await client.disconnect()
                await sio.shutdown()

            sync = polysio.Server()
            sync.on("ping", lambda sid: "pong")
            try:
                asyncio.run(main())
            except polysio.SocketIOError as e:
                print(e)
            """
        )
    )
    r = run(PYTHON, "-m", "mypy", "--strict", str(PACKAGE), str(user), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


def interpreters() -> list[str]:
    """This Python and, when installed, the oldest the abi3 wheel supports."""
    found = [PYTHON]
    candidates = ["python3.9", *glob.glob(os.path.expanduser("~/.pyenv/versions/3.9*/bin/python3.9"))]
    for c in candidates:
        try:
            r = run(c, "-c", "import sys; print(sys.version_info[:2])", timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if r.returncode == 0 and r.stdout.strip() == "(3, 9)":
            found.append(c)
            break
    return found


SMOKE = """
import asyncio, sys, polysio

async def main():
    sio = polysio.AsyncServer()
    sio.on("echo", lambda sid, x: x)
    _, port = sio.start("127.0.0.1", 0)
    c = polysio.AsyncClient(reconnection=False)
    await c.connect(f"http://127.0.0.1:{port}")
    assert await c.call("echo", {"bin": b"\\x00", "n": [1, 2.5, None]}) == {"bin": b"\\x00", "n": [1, 2.5, None]}
    await c.disconnect()
    await sio.shutdown()

asyncio.run(main())
print("polysio", polysio.__version__, "ok on", sys.version.split()[0])
"""


@pytest.mark.parametrize("python", interpreters())
def test_wheel_installs_and_works_in_a_fresh_venv(tmp_path, python) -> None:
    venv = tmp_path / "venv"
    r = run(python, "-m", "venv", str(venv))
    assert r.returncode == 0, r.stderr
    # No index: the wheel has no dependencies and needs nothing from the network.
    r = run(str(venv / "bin" / "pip"), "install", "--no-index", "--disable-pip-version-check", str(wheel()))
    assert r.returncode == 0, r.stdout + r.stderr
    r = run(str(venv / "bin" / "python"), "-c", SMOKE, cwd=tmp_path, timeout=120)
    assert r.returncode == 0 and " ok on " in r.stdout, r.stdout + r.stderr
