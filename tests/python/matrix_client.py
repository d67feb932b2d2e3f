"""The Python client harness of the conformance matrix (tests/SCENARIOS.md).

    python matrix_client.py MODULE URL SCENARIO|all

MODULE is `python-socketio` (PyPI, `socketio.AsyncClient`) or `polysio` (this project's
`polysio.AsyncClient`, which has the same API).
"""
import asyncio
import base64
import json
import os
import sys

WAIT = 10.0

# python-socketio names its disconnect reasons its own way; the scenarios use the reference's.
REASONS = {
    "client disconnect": "io client disconnect",
    "server disconnect": "io server disconnect",
}


def to_value(j):
    if isinstance(j, list):
        return [to_value(x) for x in j]
    if isinstance(j, dict):
        if list(j) == ["$bytes"]:
            return base64.b64decode(j["$bytes"])
        return {k: to_value(v) for k, v in j.items()}
    return j


def to_json(v):
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(v)).decode()}
    if isinstance(v, (list, tuple)):
        return [to_json(x) for x in v]
    if isinstance(v, dict):
        return {k: to_json(x) for k, x in v.items()}
    return v


def same(what, got, want):
    g, w = json.dumps(to_json(got)), json.dumps(want)
    if g != w:
        raise AssertionError("%s: got %s, expected %s" % (what, g, w))


def tls_options(module):
    """tests/run-client's TLS hook: with POLYSIO_TEST_CA_FILE set, that CA is trusted besides
    the system's roots (polysio: ssl_ca_certs; python-socketio: an aiohttp session whose SSL
    context loads it)."""
    ca = os.environ.get("POLYSIO_TEST_CA_FILE")
    if not ca:
        return {}
    if module.__name__ == "polysio":
        return {"ssl_ca_certs": ca}
    import aiohttp
    import ssl
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=ca)
    return {"http_session": aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))}


class Client:
    def __init__(self, module, url, step, reconnection, answered):
        self.module, self.url, self.step = module, url, step
        self.nsp = step.get("nsp", "/")
        self.seen = []
        self.changed = asyncio.Event()
        self.sio = module.AsyncClient(reconnection=reconnection, reconnection_delay=0.5,
                                      reconnection_delay_max=2, **tls_options(module))
        self.answered = answered

        def record(name, args, fut=None):
            self.seen.append((name, list(args), fut))
            self.changed.set()

        async def on_connect():
            record("connect", [])

        async def on_connect_error(*data):
            record("connect_error", data)

        async def on_disconnect(reason=None):
            record("disconnect", [REASONS.get(reason, reason)])

        async def on_any(event, *args):
            if event in self.answered:
                fut = asyncio.get_running_loop().create_future()
                record(event, args, fut)
                return tuple(await fut)
            record(event, args)

        self.sio.on("connect", on_connect, namespace=self.nsp)
        self.sio.on("connect_error", on_connect_error, namespace=self.nsp)
        self.sio.on("disconnect", on_disconnect, namespace=self.nsp)
        self.sio.on("*", on_any, namespace=self.nsp)

    async def connect(self):
        kw = {"namespaces": [self.nsp], "wait_timeout": WAIT}
        if "auth" in self.step:
            kw["auth"] = to_value(self.step["auth"])
        if "transports" in self.step:
            kw["transports"] = self.step["transports"]
        try:
            await self.sio.connect(self.url, **kw)
        except Exception as e:  # refusals surface as connect_error events too
            self.connect_exception = e

    async def next(self, name, within):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            for i, (n, args, fut) in enumerate(self.seen):
                if n == name:
                    del self.seen[i]
                    return args, fut
            left = deadline - loop.time()
            if left <= 0:
                return None
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), min(left, 0.05))
            except asyncio.TimeoutError:
                pass

    async def expect(self, name):
        r = await self.next(name, WAIT)
        if r is None:
            raise AssertionError('no "%s" event within %s s' % (name, WAIT))
        return r


async def step(module, url, clients, st, answered):
    op = st["op"]
    if op in ("connect", "connect_refused"):
        c = Client(module, url, st, op == "connect", answered)
        clients[st["client"]] = c
        await c.connect()
        if op == "connect":
            await c.expect("connect")
            return
        args, _ = await c.expect("connect_error")
        err = args[0] if args else {}
        if not isinstance(err, dict):
            err = {"message": err}
        got = {"message": err.get("message")}
        if "data" in st["error"]:
            got["data"] = err.get("data")
        same("connect_error", got, st["error"])
        return
    if op == "restart_server":
        print("@@restart-server", flush=True)
        line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        if not line:
            raise AssertionError("no answer from the runner on stdin")
        return
    c = clients.get(st["client"])
    if c is None:
        raise AssertionError("unknown client %s" % st["client"])
    ev = st.get("event")
    if op == "emit":
        await c.sio.emit(ev, tuple(to_value(st["args"])), namespace=c.nsp)
    elif op == "emit_large":
        await c.sio.emit(ev, "x" * st["bytes"], namespace=c.nsp)
    elif op == "expect":
        args, _ = await c.expect(ev)
        same(ev, args, st["args"])
    elif op == "expect_none":
        r = await c.next(ev, st.get("ms", 300) / 1000)
        if r is not None:
            raise AssertionError('unexpected "%s" %s' % (ev, json.dumps(to_json(r[0]))))
    elif op == "call":
        fut = asyncio.get_running_loop().create_future()
        await c.sio.emit(ev, tuple(to_value(st["args"])), namespace=c.nsp,
                         callback=lambda *a: fut.done() or fut.set_result(list(a)))
        try:
            reply = await asyncio.wait_for(fut, WAIT)
        except asyncio.TimeoutError:
            raise AssertionError('ack of "%s": timed out' % ev)
        same('ack of "%s"' % ev, reply, st["reply"])
    elif op == "answer":
        args, fut = await c.expect(ev)
        same(ev, args, st["args"])
        fut.set_result(to_value(st["reply"]))
    elif op == "expect_transport":
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        while True:
            now = c.sio.transport() if c.sio.connected else None
            if now == st["transport"]:
                return
            if loop.time() >= deadline:
                raise AssertionError("transport %s, expected %s" % (now, st["transport"]))
            await asyncio.sleep(0.01)
    elif op == "disconnect":
        await c.sio.disconnect()
    elif op == "expect_disconnect":
        args, _ = await c.expect("disconnect")
        if args[0] not in st["reasons"]:
            raise AssertionError('disconnect reason "%s", expected one of %s'
                                 % (args[0], st["reasons"]))
    elif op == "expect_connect":
        await c.expect("connect")
    else:
        raise AssertionError("unknown op %s" % op)


async def scenario(module, url, steps):
    clients = {}
    answered = {st["event"] for st in steps if st["op"] == "answer"}
    try:
        for i, st in enumerate(steps):
            try:
                await step(module, url, clients, st, answered)
            except Exception as e:
                raise AssertionError("step %d (%s): %s" % (i + 1, st["op"], e)) from None
    finally:
        for c in clients.values():
            try:
                await asyncio.wait_for(c.sio.disconnect(), 5)
            except Exception:
                pass


async def main():
    which_module, url = sys.argv[1], sys.argv[2]
    which = sys.argv[3] if len(sys.argv) > 3 else "all"
    if which_module == "python-socketio":
        import socketio as module
    else:
        import polysio as module
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "scenarios.json")) as f:
        scenarios = json.load(f)
    ok, ran = True, 0
    for name, steps in scenarios.items():
        if which not in ("all", name):
            continue
        ran += 1
        try:
            await scenario(module, url, steps)
            print("PASS %s" % name, flush=True)
        except Exception as e:
            ok = False
            print("FAIL %s: %s" % (name, e), flush=True)
    if not ran:
        print('no scenario named "%s"' % which, file=sys.stderr)
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
