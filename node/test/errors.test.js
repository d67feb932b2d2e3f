"use strict";
// Bad input from JavaScript: a clear Error with a stable `code`, never a crash or a hang.

const test = require("node:test");
const assert = require("node:assert/strict");
const { io: refConnect } = require("socket.io-client");
const { Server, configure } = require("..");
const { io } = require("../client");
const { once, within, until, sleep, listen } = require("./helpers");

const code = (c) => (e) => {
  assert.equal(e.code, c, `expected ${c}, got ${e.code}: ${e.message}`);
  assert.ok(e instanceof Error);
  assert.ok(e.message.length > 0);
  return true;
};

test("wrong argument types", async (t) => {
  assert.throws(() => new Server({ pingInterval: "soon" }), code("ERR_INVALID_ARG_TYPE"));
  assert.throws(() => new Server({ transports: ["carrier-pigeon"] }), code("ERR_INVALID_ARG_VALUE"));
  assert.throws(() => new Server({ cors: { origin: /x/ } }), code("ERR_INVALID_ARG_TYPE"));
  assert.throws(() => new Server({ allowRequest: "yes" }), code("ERR_INVALID_ARG_TYPE"));
  assert.throws(() => new Server({ adapter: {} }), code("ERR_INVALID_ARG_VALUE"));
  assert.throws(() => new Server(require("node:http").createServer(), { takeover: "yes" }), code("ERR_INVALID_ARG_TYPE"));
  assert.throws(() => new Server().attach(require("node:http").createServer(), { path: "/x" }), code("ERR_INVALID_ARG_VALUE"));
  assert.throws(() => configure({ workerThreads: 0 }), code("ERR_INVALID_ARG_TYPE"));
  const { io: srv, url } = listen(Server);
  t.after(() => srv.close());
  assert.throws(() => srv.listen(-1), code("ERR_INVALID_ARG_TYPE"));
  assert.throws(() => srv.of(42), code("ERR_INVALID_ARG_TYPE"));
  assert.throws(() => srv.use("not a function"), code("ERR_INVALID_ARG_TYPE"));
  assert.throws(() => srv.emit(42), code("ERR_INVALID_ARG_TYPE"));
  assert.throws(() => srv.to({}), code("ERR_INVALID_ARG_TYPE"));
  assert.throws(() => srv.timeout("1s"), code("ERR_INVALID_ARG_TYPE"));
  assert.throws(() => srv.serveStatic("/x", 42), code("ERR_INVALID_ARG_TYPE"));
  assert.throws(() => srv.serveStatic("no-slash", Buffer.from("x")), code("ERR_INVALID_ARG_VALUE"));
  assert.throws(() => srv.emit("x", 10n), code("ERR_INVALID_ARG_TYPE"));
  const circular = { a: 1 };
  circular.self = circular;
  assert.throws(() => srv.emit("x", circular), code("ERR_INVALID_ARG_VALUE"));
  // reserved names, as socket.io refuses them
  for (const ev of ["connect", "disconnect", "disconnecting", "newListener"]) {
    assert.throws(() => srv.emit(ev), code("ERR_INVALID_ARG_VALUE"));
  }
  // the same checks on a socket
  const seen = once(srv, "connection");
  const c = refConnect(url, { forceNew: true, reconnection: false });
  t.after(() => c.disconnect());
  const [socket] = await seen;
  assert.throws(() => socket.emit(Symbol("x")), code("ERR_INVALID_ARG_TYPE"));
  assert.throws(() => socket.emit("x", { big: 1n }), code("ERR_INVALID_ARG_TYPE"));
  assert.throws(() => socket.emit("connect"), code("ERR_INVALID_ARG_VALUE"));
  assert.throws(() => socket.join({}), code("ERR_INVALID_ARG_TYPE"));
  assert.throws(() => socket.on("x", "not a function"), code("ERR_INVALID_ARG_TYPE"));
  await assert.rejects(socket.emitWithAck("disconnect"), code("ERR_INVALID_ARG_VALUE"));
  // the client side
  assert.throws(() => io(42), code("ERR_INVALID_ARG_TYPE"));
  assert.throws(() => io("not a url"), code("ERR_INVALID_ARG_VALUE"));
  assert.throws(() => io("ftp://x"), code("ERR_INVALID_ARG_VALUE"));
  assert.throws(() => io(url, { forceNew: true, transports: ["smoke-signals"] }), code("ERR_INVALID_ARG_VALUE"));
  assert.throws(() => io(url, { forceNew: true, reconnectionDelay: "fast" }), code("ERR_INVALID_ARG_TYPE"));
  assert.throws(() => io(url, { forceNew: true, auth: "token" }), code("ERR_INVALID_ARG_TYPE"));
  const client = io(url, { forceNew: true, reconnection: false });
  t.after(() => client.disconnect());
  assert.throws(() => client.emit("connect_error"), code("ERR_INVALID_ARG_VALUE"));
  assert.throws(() => client.emit(null), code("ERR_INVALID_ARG_TYPE"));
  assert.throws(() => client.emit("x", () => {}, 1n), code("ERR_INVALID_ARG_TYPE"));
  await assert.rejects(client.emitWithAck("x", 1n), code("ERR_INVALID_ARG_TYPE"));
  assert.throws(() => client.timeout(-1), code("ERR_INVALID_ARG_TYPE"));
});

test("listening twice, or on a port in use", async (t) => {
  const a = listen(Server);
  t.after(() => a.io.close());
  assert.throws(() => a.io.listen(0), code("ERR_LISTEN"));
  const b = new Server();
  t.after(() => b.close());
  assert.throws(() => b.listen(a.io.address().port, { host: "127.0.0.1" }), (e) => code("ERR_LISTEN")(e) && /in use/i.test(e.message));
});

test("after close: emits reach nobody (as socket.io), other calls ERR_CLOSED", async () => {
  const { io: srv, url } = listen(Server);
  const seen = once(srv, "connection");
  const c = refConnect(url, { forceNew: true, reconnection: false });
  const [socket] = await seen;
  c.disconnect();
  await until(() => !socket.connected);
  await srv.close();
  // emitting to sockets that have left is a no-op; invalid arguments still throw
  assert.equal(socket.emit("late"), true);
  assert.equal(srv.emit("late"), true);
  assert.equal(srv.to("room").emit("late"), true);
  assert.deepEqual(await srv.timeout(100).emitWithAck("late"), []);
  assert.throws(() => srv.emit("late", 1n), code("ERR_INVALID_ARG_TYPE"));
  assert.throws(() => socket.emit("late", 1n), code("ERR_INVALID_ARG_TYPE"));
  await assert.rejects(srv.fetchSockets(), code("ERR_CLOSED"));
  assert.throws(() => srv.listen(0), code("ERR_CLOSED"));
});

test("huge payloads: within the limit they round-trip; over it the connection drops with a clear error", async (t) => {
  const { io: srv, url } = listen(Server, { maxHttpBufferSize: 64 * 1024 * 1024 });
  t.after(() => srv.close());
  srv.on("connection", (s) => s.on("echo", (x, cb) => cb(x)));
  const c = io(url, { forceNew: true, reconnection: false, transports: ["websocket"] });
  t.after(() => c.disconnect());
  await once(c, "connect");
  // (The client's WebSocket takes frames up to 16 MiB.)
  const big = Buffer.alloc(12 * 1024 * 1024, 7);
  const back = await within(c.emitWithAck("echo", { big, text: "x".repeat(1024 * 1024) }), 60000, "12 MB echo");
  assert.equal(back.big.length, big.length);
  assert.equal(back.big[12345], 7);
  assert.equal(back.text.length, 1024 * 1024);
  // A server with the default 1 MB limit closes the connection of a client that sends more.
  const small = listen(Server);
  t.after(() => small.io.close());
  const reasons = [];
  small.io.on("connection", (s) => s.on("disconnect", (r) => reasons.push(r)));
  for (const transports of [["websocket"], ["polling"]]) {
    const c2 = io(small.url, { forceNew: true, reconnection: false, transports });
    await once(c2, "connect");
    const tooBig = c2.timeout(10000).emitWithAck("echo", Buffer.alloc(2 * 1024 * 1024));
    await assert.rejects(tooBig, code("ERR_CLOSED"));
    c2.disconnect();
  }
  await until(() => reasons.length === 2);
});
