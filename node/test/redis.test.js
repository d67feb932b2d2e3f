"use strict";
// Scale-out over Redis (issue 17): a polysio Node server with `createAdapter(url)` (or
// `createShardedAdapter(url)`) and an npm socket.io 4.8 node with the classic (or sharded)
// `@socket.io/redis-adapter` (tests/node/redis-cluster-node.js)
// share a real redis-server started here on a free port; socket.io-client clients on each.
// Broadcasts both ways and to a room, fetchSockets across nodes (remote sockets' emit, join,
// disconnect), serverSideEmit with and without ack both ways, serverCount, allRooms, and a
// redis-server restart in the middle, survived. Needs `redis-server` (Debian's package, 7.0 or
// later): without it the test fails, it does not skip.

const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const { spawnSync } = require("node:child_process");
const { io: connect } = require("socket.io-client");
const { Server, createAdapter, createShardedAdapter, RedisAdapter } = require("..");
const { once, until, connected, sleep, startListening, kill, repo, freePort, untilAsync, startRedis, stopRedis, receives } = require("./helpers");

/** Emits with an ack; resolves with the ack's arguments. */
function ask(c, ...args) {
  return new Promise((resolve) => c.timeout(10000).emit(...args, (err, ...reply) => resolve(err ? [{ error: String(err.message) }] : reply)));
}

/** The polysio node: the same cluster events as tests/node/redis-cluster-node.js. */
function polysioNode(url, format = "classic") {
  const adapter =
    format === "sharded"
      ? createShardedAdapter(url, { channelPrefix: "socket.io", subscriptionMode: "dynamic", requestsTimeout: 3000 })
      : createAdapter(url, { key: "socket.io", requestsTimeout: 3000 });
  const io = new Server({ pingInterval: 1000, pingTimeout: 2000 });
  io.adapter(adapter);
  io.on("relay", (...args) => io.local.emit("relayed", ...args));
  io.on("ping-node", (cb) => cb("pong"));
  io.on("connection", (socket) => {
    socket.on("join", (r, cb) => {
      socket.join(r);
      cb(r);
    });
    socket.on("set-data", (v, cb) => {
      socket.data = v;
      cb();
    });
  });
  io.listen(0, { host: "127.0.0.1" });
  return { io, adapter, url: `http://127.0.0.1:${io.address().port}` };
}

test("redis-server is installed (Debian's redis-server package, 7.0 or later)", () => {
  const r = spawnSync("redis-server", ["--version"], { encoding: "utf8" });
  assert.ok(!r.error, "redis-server is required by the Redis adapter tests: apt-get install redis-server (tests/all.sh installs it)");
  const m = /v=(\d+)\./.exec(r.stdout);
  assert.ok(m && Number(m[1]) >= 7, `redis-server 7.0 or later is required, got: ${r.stdout}`);
});

test("createAdapter: options are checked, the adapter is refused where it cannot go", () => {
  assert.throws(() => createAdapter(""), { code: "ERR_INVALID_ARG_TYPE" });
  assert.throws(() => createAdapter("redis://127.0.0.1:1", { pubClient: {} }), /unknown createAdapter option pubClient/);
  assert.throws(() => createAdapter("http://127.0.0.1:1"), { code: "ERR_INVALID_ARG_VALUE", message: /redis/i });
  assert.throws(() => createAdapter("redis://127.0.0.1:1", { requestsTimeout: -1 }), { code: "ERR_INVALID_ARG_VALUE" });
  assert.throws(() => new Server({ adapter: () => ({}) }), { code: "ERR_INVALID_ARG_VALUE", message: /createAdapter/ });
  const a = createAdapter("redis://127.0.0.1:1");
  assert.ok(a instanceof RedisAdapter);
  assert.equal(a.key, "socket.io");
  assert.equal(a.requestsTimeout, 5000);
  assert.match(a.uid, /^[A-Za-z0-9]{6}$/);
  assert.equal(a.format, "classic");
  assert.equal(a.subscriptionMode, null);
  // the sharded format: npm's option names, checked
  assert.throws(() => createShardedAdapter("redis://127.0.0.1:1", { key: "x" }), /unknown createShardedAdapter option key/);
  assert.throws(() => createShardedAdapter("redis://127.0.0.1:1", { subscriptionMode: "sometimes" }), { code: "ERR_INVALID_ARG_VALUE" });
  assert.throws(() => createShardedAdapter("http://127.0.0.1:1"), { code: "ERR_INVALID_ARG_VALUE" });
  const sh = createShardedAdapter("redis://127.0.0.1:1", { channelPrefix: "app", subscriptionMode: "dynamic-private" });
  assert.ok(sh instanceof RedisAdapter);
  assert.equal(sh.format, "sharded");
  assert.equal(sh.key, "app");
  assert.equal(sh.subscriptionMode, "dynamic-private");
  assert.match(sh.uid, /^[0-9a-f]{16}$/); // ClusterAdapter uids
  assert.equal(createShardedAdapter("redis://127.0.0.1:1").subscriptionMode, "dynamic");
  const io = new Server();
  assert.equal(io.adapter(), null);
  io.listen(0, { host: "127.0.0.1" });
  assert.throws(() => io.adapter(a), /before listen/);
  return io.close();
});

for (const format of ["classic", "sharded"]) {
test(`a polysio node and an npm socket.io node share one Redis cluster (${format})`, async (t) => {
  const redisPort = await freePort();
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  let redis = await startRedis(redisPort);
  t.after(() => stopRedis(redis));

  const { child, port: nodePort } = await startListening(["node", path.join(repo, "tests", "node", "redis-cluster-node.js"), "0", redisUrl, format]);
  t.after(() => kill(child));
  const p = polysioNode(redisUrl, format);
  assert.equal(p.adapter.format, format);
  t.after(() => p.io.close());
  await p.adapter.ready(10000);

  const opts = { forceNew: true, transports: ["websocket"] };
  const cP = connect(p.url, opts);
  const cP2 = connect(p.url, opts);
  const cN = connect(`http://127.0.0.1:${nodePort}`, opts);
  t.after(() => [cP, cP2, cN].forEach((c) => c.disconnect()));
  await Promise.all([connected(cP), connected(cP2), connected(cN)]);

  // serverCount, seen from both nodes.
  assert.equal(await p.io.serverCount(), 2);
  assert.equal(await p.io.of("/").adapter.serverCount(), 2);
  assert.deepEqual(await ask(cN, "server-count"), [2]);

  // Broadcasts both ways.
  let got = Promise.all([once(cP, "hello"), once(cP2, "hello"), once(cN, "hello")]);
  p.io.emit("hello", "from polysio", { n: 1 });
  assert.deepEqual(await got, [
    ["from polysio", { n: 1 }],
    ["from polysio", { n: 1 }],
    ["from polysio", { n: 1 }],
  ]);
  got = Promise.all([once(cP, "hello2"), once(cP2, "hello2"), once(cN, "hello2")]);
  assert.deepEqual(await ask(cN, "emit-to", null, "hello2", "from node", Buffer.from([1, 2])), []);
  for (const args of await got) {
    assert.equal(args[0], "from node");
    assert.deepEqual([...args[1]], [1, 2]);
  }

  // A room across nodes: cP (polysio) and cN (npm) are in "r1", cP2 is not.
  assert.deepEqual(await ask(cP, "join", "r1"), ["r1"]);
  assert.deepEqual(await ask(cN, "join", "r1"), ["r1"]);
  got = Promise.all([once(cP, "in-room"), once(cN, "in-room")]);
  const notP2 = receives(cP2, "in-room", 1000);
  p.io.to("r1").emit("in-room", "polysio");
  assert.deepEqual(await got, [["polysio"], ["polysio"]]);
  got = Promise.all([once(cP, "in-room2"), once(cN, "in-room2")]);
  const notP2b = receives(cP2, "in-room2", 1000);
  await ask(cN, "emit-to", "r1", "in-room2", "node");
  assert.deepEqual(await got, [["node"], ["node"]]);
  assert.equal(await notP2, null, "a socket outside the room got the room's broadcast");
  assert.equal(await notP2b, null, "a socket outside the room got the room's broadcast");
  // except, across nodes.
  got = once(cP2, "not-r1");
  const notN = receives(cN, "not-r1", 1000);
  p.io.except("r1").emit("not-r1");
  await got;
  assert.equal(await notN, null);

  // fetchSockets across nodes, with the remote socket's data, rooms and actions.
  await ask(cN, "set-data", { who: "node client" });
  const inRoom = await p.io.in("r1").fetchSockets();
  assert.deepEqual(inRoom.map((s) => s.id).sort(), [cP.id, cN.id].sort());
  const remote = inRoom.find((s) => s.id === cN.id);
  assert.deepEqual(remote.data, { who: "node client" });
  assert.deepEqual([...remote.rooms].sort(), [cN.id, "r1"].sort());
  assert.equal(typeof remote.handshake, "object");
  got = once(cN, "direct");
  remote.emit("direct", 42);
  assert.deepEqual(await got, [42]);
  remote.join("r2");
  await untilAsync(async () => (await ask(cN, "fetch-sockets", "r2"))[0].includes(cN.id), 5000, "the remote socket to join r2");
  assert.deepEqual((await p.io.fetchSockets()).map((s) => s.id).sort(), [cP.id, cP2.id, cN.id].sort());
  assert.deepEqual(await ask(cN, "fetch-sockets", "r1"), [[cP.id, cN.id].sort()]);
  const rooms = await p.io.of("/").adapter.allRooms();
  // The sharded format has no allRooms request: this node's rooms only.
  for (const r of format === "classic" ? ["r1", "r2", cP.id, cN.id] : ["r1", cP.id]) assert.ok(rooms.has(r), `allRooms lacks ${r}`);
  if (format === "sharded") assert.ok(!rooms.has(cN.id));
  // A remote join from the npm node reaches a polysio socket.
  // (The npm node acks once it has published; the join lands when the message arrives.)
  await ask(cN, "sockets-join", cP2.id, "r3");
  await untilAsync(async () => (await p.io.in("r3").fetchSockets()).map((s) => s.id).join() === cP2.id, 5000, "cP2 to join r3");

  // serverSideEmit both ways, with and without ack.
  got = once(cN, "relayed");
  const notLocal = receives(cP, "relayed", 1000);
  p.io.serverSideEmit("relay", "from polysio", 7);
  assert.deepEqual(await got, ["from polysio", 7]);
  assert.equal(await notLocal, null, "serverSideEmit reached its own node");
  got = once(cP, "relayed");
  await notLocal;
  await ask(cN, "server-side-emit", "from node");
  assert.deepEqual(await got, ["from node"]);
  assert.deepEqual(await p.io.serverSideEmitWithAck("ping-node"), ["pong"]);
  assert.deepEqual(await new Promise((r) => p.io.serverSideEmit("ping-node", (err, res) => r([err, res]))), [null, ["pong"]]);
  assert.deepEqual(await ask(cN, "server-side-emit-with-ack"), [["pong"]]);

  // A broadcast with acks collects the replies of both nodes' clients.
  for (const c of [cP, cP2, cN]) c.on("question", (x, cb) => cb(`${x}:${c.id}`));
  const replies = await p.io.timeout(3000).emitWithAck("question", "q");
  assert.deepEqual(replies.sort(), [cP, cP2, cN].map((c) => `q:${c.id}`).sort());

  // Redis restarts in the middle: both nodes keep serving their own clients, then resume.
  const before = p.adapter.stats().connections;
  await stopRedis(redis);
  got = once(cP, "local-only");
  p.io.emit("local-only", 1);
  assert.deepEqual(await got, [1]);
  await assert.rejects(p.io.serverCount(), (e) => ["ERR_TRANSPORT", "ERR_TIMEOUT"].includes(e.code));
  await sleep(500);
  assert.ok(cP.connected && cN.connected);
  redis = await startRedis(redisPort);
  await untilAsync(async () => p.adapter.stats().connections > before, 15000, "the polysio node to reconnect");
  await p.adapter.ready(10000);
  await untilAsync(async () => {
    const n = await p.io.serverCount().catch(() => 0);
    const m = (await ask(cN, "server-count"))[0];
    return n === 2 && m === 2;
  }, 15000, "both nodes subscribed again");
  // What was published while Redis was away, or before a publisher noticed the new
  // connection, is lost (as between Node nodes): wait for a first broadcast to get through each
  // way, then every later one must.
  const through = async (send, what) => {
    for (let i = 0; ; i++) {
      const tag = `${what} ${i}`;
      const all = Promise.all([cP, cN].map((c) => until(() => c.lastAfter === tag, 1000, tag).then(() => true, () => false)));
      await send(tag);
      const r = await all;
      if (r.every(Boolean)) return i;
      if (i >= 15) assert.fail(`${what}: not delivered after the restart (polysio client ${r[0]}, node client ${r[1]})`);
    }
  };
  for (const c of [cP, cN]) c.on("after", (tag) => (c.lastAfter = tag));
  const lostP = await through((tag) => p.io.emit("after", tag), "from polysio");
  const lostN = await through((tag) => ask(cN, "emit-to", null, "after", tag), "from node");
  t.diagnostic(`broadcasts lost after the restart: from polysio ${lostP}, from node ${lostN}`);
  got = Promise.all([once(cP, "after2"), once(cN, "after2")]);
  p.io.emit("after2", "restart");
  assert.deepEqual(await got, [["restart"], ["restart"]]);
  got = Promise.all([once(cP, "after2"), once(cN, "after2")]);
  await ask(cN, "emit-to", null, "after2", "restart 2");
  assert.deepEqual(await got, [["restart 2"], ["restart 2"]]);
  assert.deepEqual(await p.io.serverSideEmitWithAck("ping-node"), ["pong"]);

  // A broadcast with acks from the npm node collects the polysio node's clients' answers too.
  assert.deepEqual(await ask(cN, "ask-all", "z"), [[cP, cP2, cN].map((c) => `z:${c.id}`).sort()]);
  // disconnectSockets from the npm node reaches a polysio socket.
  const cP3 = connect(p.url, opts);
  t.after(() => cP3.disconnect());
  await connected(cP3);
  await ask(cP3, "join", "bye");
  got = once(cP3, "disconnect");
  await ask(cN, "disconnect-room", "bye");
  assert.equal((await got)[0], "io server disconnect");
  assert.ok(cP.connected && cP2.connected);

  // A remote socket disconnected from polysio.
  got = once(cN, "disconnect");
  remote.disconnect();
  assert.equal((await got)[0], "io server disconnect");
  const s = p.adapter.stats();
  assert.equal(s.malformed, 0);
  assert.ok(s.published > 0 && s.received > 0);
});
}

test("new Server({ adapter }) and a lone node: serverCount 1, requests answered at once", async (t) => {
  const redisPort = await freePort();
  const redis = await startRedis(redisPort);
  t.after(() => stopRedis(redis));
  const adapter = createAdapter(`redis://127.0.0.1:${redisPort}`, { key: "other" });
  const io = new Server({ adapter });
  t.after(() => io.close());
  io.listen(0, { host: "127.0.0.1" });
  assert.equal(io.adapter(), adapter);
  await adapter.ready(10000);
  assert.equal(await io.serverCount(), 1);
  assert.deepEqual(await io.serverSideEmitWithAck("nobody"), []);
  assert.deepEqual(await io.fetchSockets(), []);
});

test("two polysio nodes: io.adapter() after namespaces and middlewares, /admin across nodes", async (t) => {
  const redisPort = await freePort();
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  const redis = await startRedis(redisPort);
  t.after(() => stopRedis(redis));
  const nodes = [];
  for (const name of ["a", "b"]) {
    const io = new Server();
    const admin = io.of("/admin");
    // Registered before io.adapter(): they move to the new core server with the namespace.
    admin.use((socket, next) => (socket.handshake.auth.token === "ok" ? next() : next(new Error("no token"))));
    admin.on("connection", (socket) => socket.join("staff"));
    admin.on("whoami", (cb) => cb(name));
    admin.on("note", (text) => admin.local.emit("note", `${name} got ${text}`));
    const adapter = createAdapter(redisUrl, { requestsTimeout: 2000 });
    io.adapter(adapter);
    io.listen(0, { host: "127.0.0.1" });
    t.after(() => io.close());
    await adapter.ready(10000);
    nodes.push({ io, admin, adapter, url: `http://127.0.0.1:${io.address().port}` });
  }
  const [a, b] = nodes;
  assert.notEqual(a.adapter.uid, b.adapter.uid);
  assert.equal(await a.admin.serverCount(), 2);

  const opts = { forceNew: true, transports: ["websocket"], auth: { token: "ok" } };
  const refused = connect(`${b.url}/admin`, { ...opts, auth: {} });
  t.after(() => refused.disconnect());
  assert.equal((await once(refused, "connect_error"))[0].message, "no token");
  const ca = connect(`${a.url}/admin`, opts);
  const cb = connect(`${b.url}/admin`, opts);
  t.after(() => [ca, cb].forEach((c) => c.disconnect()));
  await Promise.all([connected(ca), connected(cb)]);

  const got = Promise.all([once(ca, "memo"), once(cb, "memo")]);
  b.admin.to("staff").emit("memo", "from b");
  assert.deepEqual(await got, [["from b"], ["from b"]]);
  assert.deepEqual((await a.admin.in("staff").fetchSockets()).map((s) => s.id).sort(), [ca.id, cb.id].sort());
  assert.deepEqual(await a.admin.serverSideEmitWithAck("whoami"), ["b"]);
  assert.deepEqual(await b.admin.serverSideEmitWithAck("whoami"), ["a"]);
  const note = once(cb, "note");
  a.admin.serverSideEmit("note", "hi");
  assert.deepEqual(await note, ["b got hi"]);
  // "/" has no listener of "whoami": the other node does not answer, the request times out.
  await assert.rejects(a.io.serverSideEmitWithAck("whoami"), { code: "ERR_TIMEOUT" });
});

test("a node started before Redis serves its clients, is not ready, and joins once Redis is up", async (t) => {
  const redisPort = await freePort();
  const adapter = createAdapter(`redis://127.0.0.1:${redisPort}`, { requestsTimeout: 1000, commandTimeout: 500 });
  const io = new Server({ adapter });
  t.after(() => io.close());
  io.on("connection", (socket) => socket.emit("welcome", socket.id));
  io.listen(0, { host: "127.0.0.1" });
  await assert.rejects(adapter.ready(300), { code: "ERR_TIMEOUT" });
  const c = connect(`http://127.0.0.1:${io.address().port}`, { forceNew: true, transports: ["websocket"] });
  t.after(() => c.disconnect());
  const welcome = once(c, "welcome");
  await connected(c);
  assert.deepEqual(await welcome, [c.id]);
  const got = once(c, "local");
  io.emit("local", 1);
  assert.deepEqual(await got, [1]);
  await assert.rejects(io.serverCount(), (e) => ["ERR_TRANSPORT", "ERR_TIMEOUT"].includes(e.code));
  const redis = await startRedis(redisPort);
  t.after(() => stopRedis(redis));
  await adapter.ready(15000);
  await untilAsync(async () => (await io.serverCount().catch(() => 0)) === 1, 10000, "serverCount 1");
  assert.ok(adapter.stats().connections >= 1);
});
