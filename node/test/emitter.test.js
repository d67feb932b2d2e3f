"use strict";
// The Redis emitter (`createEmitter`, npm @socket.io/redis-emitter 5.1's Emitter) against real
// peers: a redis-server started here on a free port; an npm socket.io 4.8 node joined to it
// (tests/node/redis-emitter-node.js: classic @socket.io/redis-adapter, or the streams adapter)
// and a polysio Node server with createAdapter; socket.io-client clients on them check what
// arrives (Buffers included), where (rooms, except, /chat) and what does not. Also: Redis down
// (emit neither throws nor hangs, flush rejects, drops are counted, writing again once it is
// back) and a process that exits by itself after close(). Needs `redis-server`.

const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const { io: connect } = require("socket.io-client");
const { Server, createAdapter, createEmitter, Emitter } = require("..");
const { once, connected, startListening, kill, repo, pkg, run, freePort, untilAsync, startRedis, stopRedis, receives } = require("./helpers");

const OPTS = { forceNew: true, transports: ["websocket"] };

/** Emits with an ack; resolves with the ack's arguments. */
function ask(c, ...args) {
  return new Promise((resolve, reject) => c.timeout(10000).emit(...args, (err, ...reply) => (err ? reject(err) : resolve(reply))));
}

/** A redis-server on a free port, stopped after the test. */
async function redisFor(t) {
  const port = await freePort();
  const redis = await startRedis(port);
  t.after(() => stopRedis(redis));
  return { redis, port, url: `redis://127.0.0.1:${port}` };
}

/** tests/node/redis-emitter-node.js (`format`: classic or streams) on `url`; its client URL. */
async function npmNode(t, url, format) {
  const { child, port } = await startListening(["node", path.join(repo, "tests", "node", "redis-emitter-node.js"), url, format]);
  t.after(() => kill(child));
  return `http://127.0.0.1:${port}`;
}

/**
 * Emits `probe` until `c` gets one: the streams adapter's first XREAD may come after the node
 * announced itself, so the first entries could be missed.
 */
async function untilReached(emitter, c) {
  let n = 0;
  const got = new Set();
  const on = (m) => got.add(m);
  c.on("probe", on);
  try {
    await untilAsync(
      async () => {
        emitter.emit("probe", n++);
        await emitter.flush();
        await new Promise((r) => setTimeout(r, 200));
        return got.size > 0;
      },
      30000,
      "the emitter to reach the node",
    );
  } finally {
    c.off("probe", on);
  }
}

test("createEmitter: options are checked; npm's API, reserved names and acks refused", async () => {
  assert.throws(() => createEmitter(""), { code: "ERR_INVALID_ARG_TYPE" });
  assert.throws(() => createEmitter("redis://127.0.0.1:1", { parser: {} }), /unknown createEmitter option parser/);
  assert.throws(() => createEmitter("redis://127.0.0.1:1", { streamName: "s" }), /unknown createEmitter option streamName for the classic format/);
  assert.throws(() => createEmitter("redis://127.0.0.1:1", { format: "streams", key: "k" }), /unknown createEmitter option key/);
  assert.throws(() => createEmitter("redis://127.0.0.1:1", { format: "sharded" }), { code: "ERR_INVALID_ARG_TYPE", message: /classic.*streams/ });
  assert.throws(() => createEmitter("http://127.0.0.1:1"), { code: "ERR_INVALID_ARG_VALUE", message: /createEmitter/ });
  assert.throws(() => createEmitter("redis://127.0.0.1:1", { maxQueue: 0 }), { code: "ERR_INVALID_ARG_VALUE" });
  assert.throws(() => createEmitter("redis://127.0.0.1:1", { format: "streams", maxLen: 1.5 }), { code: "ERR_INVALID_ARG_VALUE" });
  assert.throws(() => createEmitter("redis://127.0.0.1:1", { commandTimeout: -1 }), { code: "ERR_INVALID_ARG_VALUE" });

  const e = createEmitter("redis://127.0.0.1:1");
  assert.ok(e instanceof Emitter);
  assert.equal(e.nsp, "/");
  assert.equal(e.format, "classic");
  assert.equal(e.key, "socket.io");
  assert.equal(e.streamName, null);
  assert.equal(e.of("chat").nsp, "/chat");
  assert.equal(e.of("/chat").nsp, "/chat");
  assert.equal(e.of("/chat").key, "socket.io");
  const s = createEmitter("redis://127.0.0.1:1", { format: "streams", streamName: "app", maxLen: 50 });
  assert.equal(s.streamName, "app");
  assert.equal(s.key, null);
  for (const name of ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"]) {
    assert.throws(() => e.emit(name), { message: `"${name}" is a reserved event name` });
    assert.throws(() => e.to("r").emit(name), { message: /reserved event name/ });
  }
  assert.throws(() => e.emit(1), { code: "ERR_INVALID_ARG_TYPE" });
  assert.throws(() => e.emit("ev", 1, () => {}), { message: "Acknowledgements are not supported" });
  assert.throws(() => e.to("r").emit("ev", () => {}), { message: "Acknowledgements are not supported" });
  assert.throws(() => e.serverSideEmit("ev", () => {}), { message: "Acknowledgements are not supported" });
  assert.throws(() => e.emit("ev", 1n), { code: "ERR_INVALID_ARG_TYPE" });
  assert.throws(() => e.to({}), { code: "ERR_INVALID_ARG_TYPE" });
  // the operators are immutable, as npm's
  const op = e.to("a");
  op.to("b");
  assert.deepEqual(op._rooms, ["a"]);
  assert.deepEqual(e.to(["a", "b"]).in("a").except("c").volatile._target(), { rooms: ["a", "b"], except: ["c"], volatile: true, local: false });
  assert.equal(e.emit("queued", Buffer.from([1])), true);
  assert.equal(e.volatile.compress(true).emit("queued"), true);

  await Promise.all([e.close(), s.close()]);
  assert.equal(await e.close(), undefined); // idempotent
  assert.throws(() => e.emit("late"), { code: "ERR_CLOSED" });
  assert.throws(() => e.of("/chat").to("r").socketsJoin("x"), { code: "ERR_CLOSED" });
  await assert.rejects(e.flush(), { code: "ERR_CLOSED" });
});

for (const format of ["classic", "streams"]) {
  test(`the emitter reaches an npm socket.io node (${format}): rooms, except, /chat, Buffers, socketsJoin/Leave, serverSideEmit, disconnectSockets`, async (t) => {
    const { url } = await redisFor(t);
    const nodeUrl = await npmNode(t, url, format);
    const e = createEmitter(url, { format });
    t.after(() => e.close());
    const c1 = connect(nodeUrl, OPTS);
    const c2 = connect(nodeUrl, OPTS);
    const c3 = connect(`${nodeUrl}/chat`, OPTS);
    t.after(() => [c1, c2, c3].forEach((c) => c.disconnect()));
    await Promise.all([connected(c1), connected(c2), connected(c3)]);
    if (format === "streams") await untilReached(e, c1);

    assert.deepEqual(await ask(c1, "join", "r1"), ["r1"]);
    assert.deepEqual(await ask(c2, "join", "r2"), ["r2"]);

    // Everyone in "/", with Buffer args; not /chat.
    let got = Promise.all([once(c1, "hello"), once(c2, "hello")]);
    let not3 = receives(c3, "hello", 1000);
    assert.equal(e.emit("hello", "text", Buffer.from([1, 2, 3]), { nested: Buffer.from("xy") }), true);
    await e.flush();
    for (const [s, b, o] of await got) {
      assert.equal(s, "text");
      assert.ok(Buffer.isBuffer(b), "a Buffer arrives as a Buffer");
      assert.deepEqual([...b], [1, 2, 3]);
      assert.equal(Buffer.from(o.nested).toString(), "xy");
    }
    assert.equal(await not3, null, "/chat does not get the events of /");

    // A room: c1 only.
    got = once(c1, "room");
    let not2 = receives(c2, "room", 1000);
    e.to("r1").emit("room", 1);
    await e.flush();
    assert.deepEqual(await got, [1]);
    assert.equal(await not2, null, "c2 is not in r1");

    // Two rooms, one excepted: c2 only.
    got = once(c2, "except");
    let not1 = receives(c1, "except", 1000);
    e.in(["r1", "r2"]).except("r1").emit("except", "x");
    await e.flush();
    assert.deepEqual(await got, ["x"]);
    assert.equal(await not1, null, "r1 was excepted");

    // Namespace /chat: c3 only (volatile: still sent to a ready client).
    got = once(c3, "chat");
    not1 = receives(c1, "chat", 1000);
    e.of("chat").volatile.emit("chat", { a: 1 });
    await e.flush();
    assert.deepEqual(await got, [{ a: 1 }]);
    assert.equal(await not1, null, "/ does not get the events of /chat");

    // serverSideEmit: the node's `relay` listener answers with `relayed` to its own sockets.
    got = Promise.all([once(c1, "relayed"), once(c2, "relayed")]);
    e.serverSideEmit("relay", "from the emitter", 7);
    await e.flush();
    assert.deepEqual(await got, [
      ["from the emitter", 7],
      ["from the emitter", 7],
    ]);

    // socketsJoin / socketsLeave: the sockets of r1 (c1) join r3 and r4, then leave r4.
    e.in("r1").socketsJoin(["r3", "r4"]);
    await e.flush();
    await untilAsync(async () => (await ask(c1, "rooms"))[0].includes("r3"), 5000, "c1 to join r3");
    assert.deepEqual((await ask(c1, "rooms"))[0], [c1.id, "r1", "r3", "r4"].sort());
    assert.deepEqual((await ask(c2, "rooms"))[0], [c2.id, "r2"].sort());
    e.to("r3").socketsLeave("r4");
    await e.flush();
    await untilAsync(async () => !(await ask(c1, "rooms"))[0].includes("r4"), 5000, "c1 to leave r4");
    got = once(c1, "r3");
    e.to("r3").emit("r3", "joined");
    await e.flush();
    assert.deepEqual(await got, ["joined"]);

    // disconnectSockets: every socket of /chat (c3), not those of /.
    got = once(c3, "disconnect");
    not1 = receives(c1, "disconnect", 1000);
    e.of("/chat").disconnectSockets();
    await e.flush();
    assert.equal((await got)[0], "io server disconnect");
    assert.equal(await not1, null, "the sockets of / stay");
    // ... and with close, c2's whole connection: c4, in /chat over c2's connection, goes too
    // (not targeted: it is in /chat). c1 is in r1, excepted.
    const c4 = c2.io.socket("/chat");
    t.after(() => c4.disconnect());
    c4.connect();
    await connected(c4);
    got = Promise.all([once(c2, "disconnect"), once(c4, "disconnect")]);
    not1 = receives(c1, "disconnect", 1000);
    e.except("r1").disconnectSockets(true);
    await e.flush();
    // (the reasons race: the server sends each socket a DISCONNECT, then closes the connection)
    for (const [reason] of await got) assert.match(reason, /^(io server disconnect|transport close)$/);
    assert.equal(await not1, null, "c1 is in r1, excepted");

    const st = e.stats();
    assert.equal(st.dropped, 0);
    assert.ok(st.published >= 10, `published ${st.published}`);
  });
}

test("the emitter reaches a polysio Node server with createAdapter (classic)", async (t) => {
  const { url } = await redisFor(t);
  const adapter = createAdapter(url, { key: "app" });
  const io = new Server({ pingInterval: 1000, pingTimeout: 2000 });
  io.adapter(adapter);
  const relayed = [];
  io.on("relay", (...args) => relayed.push(args));
  io.on("connection", (socket) => {
    socket.on("join", (r, cb) => {
      socket.join(r);
      cb(r);
    });
  });
  io.listen(0, { host: "127.0.0.1" });
  t.after(() => io.close());
  await adapter.ready(10000);
  const e = createEmitter(url, { key: "app" });
  t.after(() => e.close());
  const base = `http://127.0.0.1:${io.address().port}`;
  const c1 = connect(base, OPTS);
  const c2 = connect(base, OPTS);
  t.after(() => [c1, c2].forEach((c) => c.disconnect()));
  await Promise.all([connected(c1), connected(c2)]);
  assert.deepEqual(await ask(c1, "join", "r1"), ["r1"]);

  let got = once(c1, "news");
  const not2 = receives(c2, "news", 1000);
  e.to("r1").emit("news", Buffer.from([9, 8]), "b");
  await e.flush();
  const [buf, b] = await got;
  assert.ok(Buffer.isBuffer(buf));
  assert.deepEqual([...buf], [9, 8]);
  assert.equal(b, "b");
  assert.equal(await not2, null, "c2 is not in r1");

  // Another key: the server does not read it.
  const other = createEmitter(url, { key: "socket.io" });
  t.after(() => other.close());
  const none = receives(c1, "other", 1000);
  other.emit("other");
  await other.flush();
  assert.equal(await none, null, "a node reads its own key only");

  e.serverSideEmit("relay", 1, "two");
  await e.flush();
  await untilAsync(async () => relayed.length === 1, 5000, "serverSideEmit to reach io.on(relay)");
  assert.deepEqual(relayed, [[1, "two"]]);

  e.in("r1").socketsJoin("r2");
  await e.flush();
  await untilAsync(async () => (await io.in("r2").fetchSockets()).length === 1, 5000, "c1 to join r2");
  assert.equal((await io.in("r2").fetchSockets())[0].id, c1.id);

  got = once(c2, "disconnect");
  e.except("r1").disconnectSockets();
  await e.flush();
  assert.equal((await got)[0], "io server disconnect");
  assert.ok(c1.connected);
});

test("Redis down: emit neither throws nor hangs, flush rejects, drops are counted; written again once Redis is back", async (t) => {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const e = createEmitter(url, { commandTimeout: 300, maxQueue: 8 });
  t.after(() => e.close());
  const t0 = Date.now();
  for (let i = 0; i < 100; i++) assert.equal(e.emit("lost", i), true);
  e.to("r").socketsJoin("x");
  e.serverSideEmit("lost");
  assert.ok(Date.now() - t0 < 1000, `100 emits took ${Date.now() - t0} ms`);
  await assert.rejects(e.flush(), { code: "ERR_TRANSPORT", message: /could not be written/ });
  let s = e.stats();
  assert.equal(s.published, 0);
  assert.equal(s.dropped, 102, "every message was lost: in a failed write, or the queue was full");
  // nothing failed since the last flush
  await e.flush();

  const redis = await startRedis(port);
  t.after(() => stopRedis(redis));
  await untilAsync(
    async () => {
      e.emit("again");
      return e.flush().then(
        () => true,
        () => false,
      );
    },
    15000,
    "the emitter to write again",
  );
  s = e.stats();
  assert.ok(s.published >= 1);
});

test("a process exits by itself after close(), its last messages written", async (t) => {
  const { url } = await redisFor(t);
  const nodeUrl = await npmNode(t, url, "classic");
  const c = connect(nodeUrl, OPTS);
  t.after(() => c.disconnect());
  await connected(c);
  const got = once(c, "bye", 30000);
  const src = `
    const { createEmitter } = require(${JSON.stringify(pkg)});
    const e = createEmitter(${JSON.stringify(url)});
    e.emit("bye", "from a worker");
    e.close().then(() => console.log("closed"));
  `;
  const r = await run(["node", "-e", src], { timeout: 30000 });
  assert.equal(r.signal, null, `the process did not exit by itself: ${r.stderr}`);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), "closed");
  assert.deepEqual(await got, ["from a worker"]);
  // Also an emitter left open does not hold the process once its flush resolved.
  const r2 = await run(["node", "-e", `const e = require(${JSON.stringify(pkg)}).createEmitter(${JSON.stringify(url)}); e.emit("x"); e.flush().then(() => console.log("flushed"));`], { timeout: 30000 });
  assert.equal(r2.signal, null, `the process did not exit by itself: ${r2.stderr}`);
  assert.equal(r2.stdout.trim(), "flushed");
});
