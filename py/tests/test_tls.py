"""TLS: polysio's AsyncServer serving https/wss (``ssl_certfile``, ``ssl_keyfile``) and
AsyncClient connecting to it (``ssl_ca_certs``, ``ssl_verify``, ``ssl_certfile`` +
``ssl_keyfile``) over every transport; python-socketio's client against polysio and polysio's
client against python-socketio under uvicorn with TLS, mutual TLS included; an untrusted
certificate refused with an error that says so. Certificates are made per test with openssl."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
import uvicorn

import polysio

from conftest import NODE_DIR, eventually

TRANSPORTS = [["polling"], ["websocket"], ["polling", "websocket"]]


class Pki:
    """A throwaway CA, a server certificate for 127.0.0.1 and localhost, a client certificate,
    and another CA that signed nothing."""

    def __init__(self, d: Path) -> None:
        self.d = d
        self._ca("ca")
        self._ca("other-ca")
        self._leaf("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth")
        self._leaf("client", "extendedKeyUsage=clientAuth")

    def __getitem__(self, name: str) -> str:
        return str(self.d / name)

    def _openssl(self, *args: str) -> None:
        subprocess.run(["openssl", *args], cwd=self.d, check=True, capture_output=True)

    def _ca(self, name: str) -> None:
        self._openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
            "-subj", f"/CN=polysio test {name}",
        )  # fmt: skip

    def _leaf(self, name: str, ext: str) -> None:
        (self.d / f"{name}.ext").write_text(ext)
        self._openssl(
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}",
        )  # fmt: skip
        self._openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
        )  # fmt: skip


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


def echo_server(make_server: Any) -> polysio.AsyncServer:
    sio = make_server()

    @sio.event
    async def echo(sid: str, data: Any) -> Any:
        return data

    @sio.event
    async def secure(sid: str) -> Any:
        return sio.get_environ(sid).get("wsgi.url_scheme")

    return sio


@pytest.mark.parametrize("transports", TRANSPORTS, ids=lambda t: ",".join(t))
async def test_polysio_client_and_server_over_tls(pki: Pki, make_server: Any, make_client: Any, transports: list[str]) -> None:
    sio = echo_server(make_server)
    host, port = sio.start("127.0.0.1", 0, ssl_certfile=pki["server.pem"], ssl_keyfile=pki["server.key"])
    client = make_client(ssl_ca_certs=pki["ca.pem"])
    await client.connect(f"https://{host}:{port}", transports=transports)
    assert await client.call("echo", {"b": b"\x00\xff", "s": "tls"}, timeout=10) == {"b": b"\x00\xff", "s": "tls"}
    assert await client.call("secure", timeout=10) == "https"
    if len(transports) == 2:
        await eventually(lambda: client.transport() == "websocket", what="the upgrade over wss")


@pytest.mark.parametrize("transports", [["polling"], ["websocket"]], ids=lambda t: t[0])
async def test_an_untrusted_certificate_is_refused_saying_so(pki: Pki, make_server: Any, make_client: Any, transports: list[str]) -> None:
    sio = echo_server(make_server)
    host, port = sio.start("127.0.0.1", 0, ssl_certfile=pki["server.pem"], ssl_keyfile=pki["server.key"])
    for options in ({}, {"ssl_ca_certs": pki["other-ca.pem"]}):
        client = make_client(**options)
        with pytest.raises(polysio.ConnectionError, match="not trusted.*unknown issuer"):
            await client.connect(f"https://{host}:{port}", transports=transports)
    # Verification off, for development: it connects.
    client = make_client(ssl_verify=False)
    await client.connect(f"https://{host}:{port}", transports=transports)
    assert await client.call("echo", 1, timeout=10) == 1


async def test_bad_tls_options(pki: Pki, make_server: Any) -> None:
    with pytest.raises(ValueError, match="go together"):
        polysio.AsyncClient(ssl_certfile=pki["client.pem"])
    sio = make_server()
    with pytest.raises(ValueError, match="go together"):
        sio.start("127.0.0.1", 0, ssl_certfile=pki["server.pem"])
    with pytest.raises(polysio.ConnectionError, match="TLS"):
        sio.start("127.0.0.1", 0, ssl_certfile=pki["server.pem"], ssl_keyfile=pki["client.key"])


@pytest.mark.parametrize("transports", TRANSPORTS, ids=lambda t: ",".join(t))
async def test_python_socketio_client_against_polysio_over_tls(pki: Pki, make_server: Any, ref_client: Any, transports: list[str]) -> None:
    sio = echo_server(make_server)
    host, port = sio.start("127.0.0.1", 0, ssl_certfile=pki["server.pem"], ssl_keyfile=pki["server.key"])
    context = ssl.create_default_context(cafile=pki["ca.pem"])
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))
    try:
        client = ref_client(http_session=session)
        await client.connect(f"https://{host}:{port}", transports=transports)
        assert await client.call("echo", [1, "two"], timeout=10) == [1, "two"]
        assert await client.call("secure", timeout=10) == "https"
        await client.disconnect()
    finally:
        await session.close()


async def serve_reference_tls(pki: Pki, require_client_cert: bool) -> tuple[str, uvicorn.Server, "asyncio.Task[Any]"]:
    sio = socketio.AsyncServer(async_mode="asgi")

    @sio.event
    async def echo(sid: str, data: Any) -> Any:
        return data

    config = uvicorn.Config(
        socketio.ASGIApp(sio),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=1,
        ssl_certfile=pki["server.pem"],
        ssl_keyfile=pki["server.key"],
        ssl_ca_certs=pki["ca.pem"],
        ssl_cert_reqs=ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_NONE,
    )
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    await eventually(lambda: server.started or task.done(), what="uvicorn start")
    if task.done():
        task.result()
    port = server.servers[0].sockets[0].getsockname()[1]
    return f"https://127.0.0.1:{port}", server, task


@pytest.mark.parametrize("transports", TRANSPORTS, ids=lambda t: ",".join(t))
async def test_polysio_client_against_python_socketio_with_mutual_tls(pki: Pki, make_client: Any, transports: list[str]) -> None:
    url, server, task = await serve_reference_tls(pki, require_client_cert=True)
    try:
        client = make_client(ssl_ca_certs=pki["ca.pem"], ssl_certfile=pki["client.pem"], ssl_keyfile=pki["client.key"])
        await client.connect(url, transports=transports)
        assert await client.call("echo", "mtls", timeout=10) == "mtls"
        await client.disconnect()
        # Without the client certificate the server refuses the connection.
        anonymous = make_client(ssl_ca_certs=pki["ca.pem"])
        with pytest.raises(polysio.ConnectionError):
            await anonymous.connect(url, transports=transports)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest.mark.parametrize("transports", TRANSPORTS, ids=lambda t: ",".join(t))
async def test_the_client_through_a_connect_proxy_with_credentials(pki: Pki, make_server: Any, make_client: Any, transports: list[str]) -> None:
    """A real HTTP CONNECT proxy (npm ``proxy``, tests/node/connect-proxy.mjs) asking for
    credentials; TLS to the server inside the tunnel."""
    sio = echo_server(make_server)
    host, port = sio.start("127.0.0.1", 0, ssl_certfile=pki["server.pem"], ssl_keyfile=pki["server.key"])
    proc = await asyncio.create_subprocess_exec(
        "node", "connect-proxy.mjs", "user:pw", cwd=str(NODE_DIR),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        proxy_port = int(line.split()[1])
        client = make_client(ssl_ca_certs=pki["ca.pem"], proxy=f"http://user:pw@127.0.0.1:{proxy_port}")
        await client.connect(f"https://{host}:{port}", transports=transports)
        assert await client.call("echo", "tunnelled", timeout=10) == "tunnelled"
        tunnel = (await asyncio.wait_for(proc.stdout.readline(), 5)).decode().strip()
        assert tunnel == f"connect 127.0.0.1:{port}"
        refused = make_client(ssl_ca_certs=pki["ca.pem"], proxy=f"http://127.0.0.1:{proxy_port}")
        with pytest.raises(polysio.ConnectionError):
            await refused.connect(f"https://{host}:{port}", transports=transports)
    finally:
        proc.kill()
        await proc.wait()
