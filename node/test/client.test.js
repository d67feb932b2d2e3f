"use strict";
// polysio's client (polysio/client) against the real npm socket.io server (4.8.4).

const test = require("node:test");
const assert = require("node:assert/strict");
const { io, Manager } = require("../client");
const { once, within, until, sleep, refServer } = require("./helpers");

const opts = (extra = {}) => ({ forceNew: true, reconnection: false, ...extra });

function echoServer(io) {
  io.on("connection", (s) => {
    s.emit("welcome", s.handshake.auth, s.nsp.name, s.handshake.query.q ?? null);
    s.on("echo", (...args) => s.emit("echo", ...args));
    s.on("ack", (...args) => args.pop()(...args));
    s.on("ask", (event, args, cb) => s.timeout(5000).emit(event, ...args, (err, ...reply) => cb(err ? { error: err.message } : reply)));
    s.on("kick", () => s.disconnect());
    s.on("drop", () => s.conn.close());
  });
}

test("connects with auth and query; events, acks both ways, binary nested anywhere", async (t) => {
  const srv = await refServer();
  t.after(() => srv.io.close());
  echoServer(srv.io);
  const socket = io(srv.url + "?q=1", opts({ auth: { token: "abc" } }));
  t.after(() => socket.disconnect());
  assert.equal(socket.connected, false);
  const [auth, nsp, q] = await once(socket, "welcome");
  assert.deepEqual(auth, { token: "abc" });
  assert.equal(nsp, "/");
  assert.equal(q, "1");
  assert.equal(socket.connected, true);
  assert.equal(typeof socket.id, "string");
  const payload = [1, "two", { bin: Buffer.from([1, 2, 3]), arr: [new Uint8Array([4]).buffer, null, false] }, new DataView(new ArrayBuffer(2))];
  socket.emit("echo", ...payload);
  const back = await once(socket, "echo");
  assert.equal(back[0], 1);
  assert.equal(back[1], "two");
  assert.deepEqual([...back[2].bin], [1, 2, 3]);
  assert.deepEqual([...back[2].arr[0]], [4]);
  assert.deepEqual(back[2].arr.slice(1), [null, false]);
  assert.ok(Buffer.isBuffer(back[3]) && back[3].length === 2);
  // client -> server ack: promise (first argument) and callback (all arguments)
  assert.equal(await socket.emitWithAck("ack", "x", 2), "x");
  const cbArgs = await new Promise((r) => socket.emit("ack", "y", 3, (...a) => r(a)));
  assert.deepEqual(cbArgs, ["y", 3]);
  const withTimeout = await new Promise((r) => socket.timeout(5000).emit("ack", "z", (...a) => r(a)));
  assert.deepEqual(withTimeout, [null, "z"]);
  // server -> client ack
  socket.on("question", (n, bin, cb) => cb(n * 2, Buffer.concat([bin, Buffer.from([0])])));
  const reply = await socket.emitWithAck("ask", "question", [21, Buffer.from([5])]);
  assert.equal(reply[0], 42);
  assert.deepEqual([...reply[1]], [5, 0]);
  // timeouts
  await assert.rejects(socket.timeout(100).emitWithAck("no-such-handler"), (e) => e.code === "ERR_TIMEOUT" && e.message === "operation has timed out");
  const timedOut = await new Promise((r) => socket.timeout(100).emit("no-such-handler", (err) => r(err)));
  assert.equal(timedOut.code, "ERR_TIMEOUT");
});

test("auth as a function is called at each connection", async (t) => {
  const srv = await refServer();
  t.after(() => srv.io.close());
  echoServer(srv.io);
  let calls = 0;
  const socket = io(srv.url, { forceNew: true, reconnectionDelay: 50, reconnectionDelayMax: 100, auth: (cb) => cb({ n: ++calls }) });
  t.after(() => socket.disconnect());
  assert.deepEqual((await once(socket, "welcome"))[0], { n: 1 });
  socket.emit("drop");
  assert.deepEqual((await once(socket, "welcome"))[0], { n: 2 });
});

test("namespaces are multiplexed over one manager; forceNew and multiplex:false give new ones", async (t) => {
  const srv = await refServer();
  t.after(() => srv.io.close());
  echoServer(srv.io);
  echoServer(srv.io.of("/admin"));
  const main = io(srv.url, { reconnection: false });
  const admin = io(srv.url + "/admin", { reconnection: false, auth: { role: "admin" } });
  t.after(() => {
    main.disconnect();
    admin.disconnect();
  });
  assert.equal(main.io, admin.io, "same manager");
  const [w1, w2] = await Promise.all([once(main, "welcome"), once(admin, "welcome")]);
  assert.deepEqual(w1.slice(0, 2), [{}, "/"]);
  assert.deepEqual(w2.slice(0, 2), [{ role: "admin" }, "/admin"]);
  assert.equal(srv.io.engine.clientsCount, 1);
  const again = io(srv.url, { reconnection: false });
  t.after(() => again.disconnect());
  assert.notEqual(again.io, main.io, "same namespace again: a new manager");
  const other = io(srv.url + "/admin", { multiplex: false, reconnection: false });
  t.after(() => other.disconnect());
  assert.notEqual(other.io, admin.io);
  const viaManager = main.io.socket("/admin");
  assert.equal(viaManager, admin, "one socket per namespace and manager");
  const bad = main.io.socket("/nope");
  const [err] = await once(bad, "connect_error");
  assert.equal(err.message, "Invalid namespace");
  assert.ok(err instanceof Error);
});

test("middleware refusal: connect_error with message and data", async (t) => {
  const srv = await refServer();
  t.after(() => srv.io.close());
  srv.io.use((socket, next) => {
    const e = new Error("not authorized");
    e.data = { code: 42 };
    next(e);
  });
  const socket = io(srv.url, opts());
  const [err] = await once(socket, "connect_error");
  assert.equal(err.message, "not authorized");
  assert.deepEqual(err.data, { code: 42 });
  assert.equal(socket.active, false);
});

test("reconnection: manager events, then io server disconnect stops it", async (t) => {
  const srv = await refServer();
  t.after(() => srv.io.close());
  echoServer(srv.io);
  const socket = io(srv.url, { forceNew: true, reconnectionDelay: 50, reconnectionDelayMax: 100 });
  t.after(() => socket.disconnect());
  const events = [];
  for (const e of ["open", "close", "reconnect_attempt", "reconnect"]) socket.io.on(e, (...a) => events.push([e, ...a]));
  await once(socket, "welcome");
  const disconnected = once(socket, "disconnect");
  socket.emit("drop");
  assert.equal((await disconnected)[0], "transport close");
  assert.equal(socket.active, true, "still trying");
  await once(socket, "welcome");
  assert.deepEqual(
    events.map((e) => e[0]),
    ["open", "close", "reconnect_attempt", "open", "reconnect"],
  );
  assert.deepEqual(events[1], ["close", "transport close"]);
  assert.deepEqual(events[2], ["reconnect_attempt", 1]);
  assert.deepEqual(events[4], ["reconnect", 1]);
  socket.emit("kick");
  assert.deepEqual(await once(socket, "disconnect"), ["io server disconnect", undefined]);
  assert.equal(socket.active, false);
  await sleep(300);
  assert.equal(socket.connected, false, "no reconnection after a server-side disconnect");
  // connect() again works
  socket.connect();
  await once(socket, "welcome");
});

test("reconnection gives up after reconnectionAttempts; errors are Error objects", async (t) => {
  const srv = await refServer();
  const url = srv.url;
  srv.io.close();
  const socket = io(url, { forceNew: true, reconnectionAttempts: 2, reconnectionDelay: 20, reconnectionDelayMax: 40, timeout: 2000 });
  t.after(() => socket.disconnect());
  const errors = [];
  socket.io.on("reconnect_error", (e) => errors.push(e));
  const [err] = await once(socket, "connect_error");
  assert.ok(err instanceof Error);
  await once(socket.io, "reconnect_failed");
  // As socket.io-client: the last attempt's reconnect_error follows reconnect_failed.
  await until(() => errors.length === 2);
  assert.ok(errors.every((e) => e instanceof Error));
});

test("offline buffering: emits before connect and while disconnected are delivered; volatile ones are dropped", async (t) => {
  const srv = await refServer();
  t.after(() => srv.io.close());
  const received = [];
  srv.io.on("connection", (s) => {
    s.onAny((ev, ...args) => received.push([ev, ...args.filter((a) => typeof a !== "function")]));
    s.on("drop", () => s.conn.close());
  });
  const socket = io(srv.url, { forceNew: true, autoConnect: false, reconnectionDelay: 100, reconnectionDelayMax: 200 });
  t.after(() => socket.disconnect());
  socket.emit("early", 1);
  socket.volatile.emit("volatile-early", 1);
  const acked = socket.timeout(5000).emitWithAck("early-ack").catch((e) => e);
  socket.connect();
  await once(socket, "connect");
  await until(() => received.length >= 2);
  assert.deepEqual(received.slice(0, 2), [["early", 1], ["early-ack"]]);
  assert.ok(!received.some((r) => r[0] === "volatile-early"));
  socket.emit("drop");
  await once(socket, "disconnect");
  socket.emit("while-away", 2);
  await once(socket, "connect");
  await until(() => received.some((r) => r[0] === "while-away"));
  // the ack request was sent but never answered, and the connection dropped: it fails at once
  // (as socket.io-client does), it does not wait for the timeout
  assert.equal((await acked).code, "ERR_CLOSED");
});

test("onAny, onAnyOutgoing, once, off, send", async (t) => {
  const srv = await refServer();
  t.after(() => srv.io.close());
  echoServer(srv.io);
  srv.io.on("connection", (s) => s.on("message", (...a) => s.send(...a)));
  const socket = io(srv.url, opts());
  t.after(() => socket.disconnect());
  const any = [];
  const out = [];
  socket.onAny((ev, ...args) => any.push([ev, ...args]));
  socket.onAnyOutgoing((ev, ...args) => out.push([ev, ...args]));
  let onceCount = 0;
  socket.once("echo", () => onceCount++);
  await once(socket, "welcome");
  socket.send("hello");
  assert.deepEqual(await once(socket, "message"), ["hello"]);
  socket.emit("echo", 1);
  await once(socket, "echo");
  socket.emit("echo", 2);
  await once(socket, "echo");
  assert.equal(onceCount, 1);
  assert.deepEqual(out, [["message", "hello"], ["echo", 1], ["echo", 2]]);
  assert.deepEqual(any.map((a) => a[0]), ["welcome", "message", "echo", "echo"]);
  socket.offAny();
  socket.off("echo");
  socket.emit("echo", 3);
  await sleep(100);
  assert.equal(any.length, 4);
});

test("a Manager can be used directly", async (t) => {
  const srv = await refServer();
  t.after(() => srv.io.close());
  echoServer(srv.io.of("/a"));
  const manager = new Manager(srv.url, { reconnection: false });
  const a = manager.socket("/a");
  t.after(() => manager.close());
  await once(a, "welcome");
  assert.equal(a.io, manager);
  manager.close();
  await once(a, "disconnect");
});
