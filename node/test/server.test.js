"use strict";
// polysio's Server driven by the real npm socket.io-client (4.8.4).

const test = require("node:test");
const assert = require("node:assert/strict");
const { io: connect } = require("socket.io-client");
const { Server } = require("..");
const { once, within, until, sleep, listen } = require("./helpers");

const opts = (extra = {}) => ({ forceNew: true, reconnection: false, ...extra });

async function connected(url, extra) {
  const c = connect(url, opts(extra));
  await once(c, "connect");
  return c;
}

test("events, acks both ways and binary nested anywhere", async (t) => {
  const { io, url } = listen(Server);
  t.after(() => io.close());
  let serverSocket;
  io.on("connection", (socket) => {
    serverSocket = socket;
    socket.on("echo", (...args) => socket.emit("echo", ...args));
    socket.on("ack", (...args) => args.pop()(...args));
  });
  const c = await connected(url);
  t.after(() => c.disconnect());
  const payload = [
    1,
    2.5,
    "two",
    true,
    null,
    { bin: Buffer.from([1, 2, 3]), list: [new Uint8Array([4, 5]), { deep: new Uint16Array([0x0102]).buffer }] },
    [Buffer.alloc(0)],
  ];
  c.emit("echo", ...payload);
  const back = await once(c, "echo");
  assert.equal(back.length, 7);
  assert.deepEqual(back.slice(0, 5), [1, 2.5, "two", true, null]);
  assert.deepEqual([...back[5].bin], [1, 2, 3]);
  assert.deepEqual([...back[5].list[0]], [4, 5]);
  assert.deepEqual([...back[5].list[1].deep], [2, 1]);
  assert.equal(back[6][0].length, 0);
  // client -> server ack
  assert.deepEqual(await c.timeout(5000).emitWithAck("ack", "x", { b: Buffer.from([9]) }), "x");
  // server -> client ack, callback and promise forms
  c.on("question", (n, cb) => cb({ answer: n * 2, bin: Buffer.from([7]) }));
  const viaPromise = await serverSocket.timeout(5000).emitWithAck("question", 21);
  assert.equal(viaPromise.answer, 42);
  assert.deepEqual([...viaPromise.bin], [7]);
  const viaCallback = await new Promise((resolve) => serverSocket.timeout(5000).emit("question", 1, (err, r) => resolve([err, r])));
  assert.equal(viaCallback[0], null);
  assert.equal(viaCallback[1].answer, 2);
  const noTimeout = await new Promise((resolve) => serverSocket.emit("question", 5, (r) => resolve(r)));
  assert.equal(noTimeout.answer, 10);
  // an ack that never comes times out with socket.io's message and a code
  c.on("silent", () => {});
  await assert.rejects(serverSocket.timeout(100).emitWithAck("silent"), (e) => e.code === "ERR_TIMEOUT" && e.message === "operation has timed out");
});

test("a burst of large events arrives whole and in order (batches split in chunks, binary events among them); every kind of ack reply round-trips; no ack is left pending", async (t) => {
  const { binding } = require("../lib/native");
  const { io, url } = listen(Server);
  t.after(() => io.close());
  const got = [];
  io.on("connection", (socket) => {
    socket.on("block", (ms, ack) => {
      // Keeps the JavaScript thread busy while the burst queues up in Rust.
      const end = Date.now() + ms;
      while (Date.now() < end);
      ack();
    });
    socket.on("big", (i, payload, ack) => {
      got.push([i, typeof payload === "string" ? payload.length : payload.length, payload[0]]);
      switch (i % 5) {
        case 0:
          return ack(payload);
        case 1:
          return ack({ i, s: "short", nested: [1, { x: null, u: undefined }], n: -0, big: 1e21, nan: NaN }, "é\"\\\u0001😀");
        case 2:
          return ack({ i, bin: Buffer.from([i & 255]) });
        case 3:
          return ack({ i, when: new Date(0) });
        default:
          return ack(i, undefined, [undefined, () => 1], true);
      }
    });
  });
  const c = await connected(url);
  t.after(() => c.disconnect());
  const blocked = new Promise((r) => c.emit("block", 300, r));
  const N = 300;
  // every 11th text is not ASCII (its chunk is decoded as UTF-8)
  const text = (i) => (i % 11 === 5 ? "é€" : "") + String.fromCharCode(97 + (i % 26)).repeat(i % 11 === 5 ? 4094 : 4096);
  const replies = new Array(N);
  const all = [];
  for (let i = 0; i < N; i++) {
    // every 7th event carries binary data: built with Node-API, between JSON chunks
    const payload = i % 7 === 3 ? Buffer.alloc(4096, i & 255) : text(i);
    all.push(new Promise((r) => c.emit("big", i, payload, (...reply) => r((replies[i] = reply)))));
  }
  await within(blocked);
  await within(Promise.all(all));
  assert.equal(got.length, N);
  for (let i = 0; i < N; i++) {
    const bin = i % 7 === 3;
    assert.deepEqual(got[i], [i, 4096, bin ? i & 255 : text(i)[0]]);
    const r = replies[i];
    switch (i % 5) {
      case 0:
        if (bin) assert.deepEqual([...r[0]], [...Buffer.alloc(4096, i & 255)]);
        else assert.equal(r[0], text(i));
        break;
      case 1:
        assert.deepEqual(r, [{ i, s: "short", nested: [1, { x: null }], n: 0, big: 1e21, nan: null }, "é\"\\\u0001😀"]);
        break;
      case 2:
        assert.equal(r[0].i, i);
        assert.deepEqual([...r[0].bin], [i & 255]);
        break;
      case 3:
        assert.deepEqual(r, [{ i, when: "1970-01-01T00:00:00.000Z" }]);
        break;
      default:
        assert.deepEqual(r, [i, null, [null, null], true]);
    }
  }
  assert.equal(binding.pendingAcks(), 0);
});

test("events written unusually by the client (spaces, escapes, a number as name, no arguments, another namespace) reach handlers as sent", async (t) => {
  const { io, url } = listen(Server);
  t.after(() => io.close());
  const got = [];
  const record = (nsp) => (socket) => socket.onAny((event, ...args) => got.push([nsp, event, ...args]));
  io.on("connection", record("/"));
  io.of("/custom").on("connection", record("/custom"));
  const c = await connected(url);
  t.after(() => c.disconnect());
  const d = connect(`${url}/custom`, opts());
  t.after(() => d.disconnect());
  await once(d, "connect");
  // raw Socket.IO packets, through the client's Engine.IO connection
  const raw = (text) => c.io.engine.write(text);
  raw('2[ "ev" , 1 ,\t{ "a" : [ 1 , "x" ] } ] ');
  raw('2["e\\"v\\\\",2]');
  raw('2["\\u0065v"]');
  raw("2[7,\"seven\"]");
  raw('2["last", "\\ud83d\\ude00", -0.5e1]');
  d.io.engine.write('2/custom,["there",{"é":"€"}]');
  await until(() => got.length === 6);
  const i = got.findIndex((g) => g[0] === "/custom");
  assert.deepEqual(got.splice(i, 1), [["/custom", "there", { é: "€" }]]);
  assert.deepEqual(got, [
    ["/", "ev", 1, { a: [1, "x"] }],
    ["/", 'e"v\\', 2],
    ["/", "ev"],
    ["/", "7", "seven"],
    ["/", "last", "😀", -5],
  ]);
});

test("acks answered later, twice, or never (an unanswered ack is freed with its function)", async (t) => {
  const { binding } = require("../lib/native");
  const { io, url } = listen(Server);
  t.after(() => io.close());
  let ignored = 0;
  io.on("connection", (socket) => {
    socket.on("later", (x, ack) => setTimeout(() => ack(x, "later"), 20));
    socket.on("twice", (ack) => {
      ack(1);
      ack(2);
    });
    socket.on("ignore", () => ignored++);
    socket.on("ordered", (ack) => {
      ack("first");
      socket.emit("second");
    });
    socket.on("bad", (ack) => {
      try {
        ack(1n);
      } catch (e) {
        errors.push(e.code);
      }
    });
  });
  const errors = [];
  const c = await connected(url);
  t.after(() => c.disconnect());
  assert.deepEqual(await within(new Promise((r) => c.emit("later", "x", (...a) => r(a)))), ["x", "later"]);
  let calls = 0;
  await within(new Promise((r) => c.emit("twice", (n) => r(n, calls++))));
  for (let i = 0; i < 50; i++) c.emit("ignore", () => assert.fail("never answered"));
  await until(() => ignored === 50);
  // each ignored ack is pending until its function is garbage-collected
  require("node:v8").setFlagsFromString("--expose-gc");
  const gc = require("node:vm").runInNewContext("gc");
  await until(() => {
    gc();
    return binding.pendingAcks() === 0;
  }, 30000, "ignored acks freed");
  assert.equal(calls, 1);
  // an ack is sent before what the handler emits after it
  const order = [];
  c.on("second", () => order.push("event"));
  c.emit("ordered", () => order.push("ack"));
  await until(() => order.length === 2);
  assert.deepEqual(order, ["ack", "event"]);
  // a reply that cannot be sent throws in the handler (the request is over all the same)
  c.emit("bad", () => assert.fail("never answered"));
  await until(() => errors.length === 1);
  assert.deepEqual(errors, ["ERR_INVALID_ARG_TYPE"]);
  assert.equal(binding.pendingAcks(), 0);
});

test("socket properties: id, handshake, data, rooms, conn, connected", async (t) => {
  const { io, url } = listen(Server);
  t.after(() => io.close());
  const seen = once(io, "connection");
  const c = await connected(url + "?foo=bar&foo=baz&x=1", { auth: { token: "abc" }, extraHeaders: { "x-test": "yes" }, transports: ["websocket"] });
  t.after(() => c.disconnect());
  const [socket] = await seen;
  assert.equal(socket.id, c.id);
  assert.equal(socket.connected, true);
  assert.equal(socket.nsp, io.sockets);
  assert.equal(io.sockets.sockets.get(socket.id), socket);
  const h = socket.handshake;
  assert.deepEqual(h.auth, { token: "abc" });
  assert.equal(h.query.x, "1");
  assert.equal(h.query.foo, "baz"); // socket.io-client keeps the last value
  assert.equal(h.query.EIO, "4");
  assert.equal(h.headers["x-test"], "yes");
  assert.match(h.address, /127\.0\.0\.1/);
  assert.equal(typeof h.issued, "number");
  assert.equal(typeof h.time, "string");
  assert.equal(h.secure, false);
  assert.match(h.url, /^\/socket\.io\/\?/);
  assert.deepEqual(socket.data, {});
  socket.data.user = "ann";
  assert.equal(socket.data.user, "ann");
  assert.deepEqual([...socket.rooms], [socket.id]);
  socket.join(["a", "b"]);
  socket.join("c");
  assert.deepEqual(new Set(socket.rooms), new Set([socket.id, "a", "b", "c"]));
  socket.leave("b");
  assert.deepEqual(new Set(socket.rooms), new Set([socket.id, "a", "c"]));
  assert.equal(socket.conn.transport.name, "websocket");
  assert.equal(typeof socket.conn.id, "string");
  assert.equal(socket.recovered, false);
  assert.equal(io.engine.clientsCount, 1);
});

test("rooms: to, except, broadcast, io.to().except()", async (t) => {
  const { io, url } = listen(Server);
  t.after(() => io.close());
  const sockets = [];
  io.on("connection", (s) => {
    sockets.push(s);
    s.on("join", (room, cb) => {
      s.join(room);
      cb();
    });
    s.on("to", (room, msg) => s.to(room).emit("news", msg));
    s.on("broadcast", (msg) => s.broadcast.emit("news", msg));
    s.on("except", (room, msg) => s.except(room).emit("news", msg));
  });
  const clients = await Promise.all([0, 1, 2].map(() => connected(url)));
  t.after(() => clients.forEach((c) => c.disconnect()));
  await clients[0].emitWithAck("join", "red");
  await clients[1].emitWithAck("join", "red");
  await clients[2].emitWithAck("join", "blue");
  const got = [[], [], []];
  clients.forEach((c, i) => c.on("news", (m) => got[i].push(m)));
  const settle = async () => {
    // Each step ends with a ping through every client so ordering is deterministic.
    await Promise.all(clients.map((c) => c.emitWithAck("join", "ping-room")));
    await sleep(50);
  };
  clients[0].emit("to", "red", "red-from-0"); // sender excluded
  await settle();
  clients[2].emit("broadcast", "all-but-2");
  await settle();
  clients[0].emit("except", "blue", "not-blue-not-0");
  await settle();
  io.to("red").except("blue").emit("news", "io-red");
  io.to(["blue", "red"]).emit("news", "io-both");
  io.except("red").emit("news", "io-not-red");
  io.in("blue").emit("news", "io-in-blue");
  await settle();
  assert.deepEqual(got[0], ["all-but-2", "io-red", "io-both"]);
  assert.deepEqual(got[1], ["red-from-0", "all-but-2", "not-blue-not-0", "io-red", "io-both"]);
  assert.deepEqual(got[2], ["io-both", "io-not-red", "io-in-blue"]);
});

test("io-level operations: fetchSockets, socketsJoin/Leave, disconnectSockets, broadcast acks", async (t) => {
  const { io, url } = listen(Server);
  t.after(() => io.close());
  io.on("connection", (s) => {
    s.data.n = io.sockets.sockets.size;
  });
  const clients = await Promise.all([0, 1, 2].map(() => connected(url)));
  t.after(() => clients.forEach((c) => c.disconnect()));
  clients.forEach((c, i) => c.on("q", (cb) => cb(i)));
  await until(() => io.sockets.sockets.size === 3);
  const all = await io.fetchSockets();
  assert.equal(all.length, 3);
  assert.ok(all.every((s) => io.sockets.sockets.get(s.id) === s), "local sockets are the Socket objects");
  io.in(clients[0].id).socketsJoin(["vip", "x"]);
  assert.deepEqual((await io.in("vip").fetchSockets()).map((s) => s.id), [clients[0].id]);
  io.in("vip").socketsLeave("vip");
  assert.equal((await io.in("vip").fetchSockets()).length, 0);
  assert.equal((await io.in("x").fetchSockets()).length, 1);
  assert.deepEqual([...(await io.allSockets())].sort(), clients.map((c) => c.id).sort());
  // acks from every socket
  const answers = await io.timeout(5000).emitWithAck("q");
  assert.deepEqual(answers.sort(), [0, 1, 2]);
  const viaCallback = await new Promise((r) => io.timeout(5000).emit("q", (err, res) => r([err, res])));
  assert.equal(viaCallback[0], null);
  assert.equal(viaCallback[1].length, 3);
  const except = await io.except(clients[1].id).timeout(5000).emitWithAck("q");
  assert.deepEqual(except.sort(), [0, 2]);
  // one socket does not answer: timeout error
  clients[2].off("q");
  clients[2].on("q", () => {});
  await assert.rejects(io.timeout(200).emitWithAck("q"), (e) => e.code === "ERR_TIMEOUT");
  // disconnect a selection
  const gone = once(clients[2], "disconnect");
  io.in(clients[2].id).disconnectSockets();
  assert.equal((await gone)[0], "io server disconnect");
  await until(() => io.sockets.sockets.size === 2);
  const gone2 = Promise.all([once(clients[0], "disconnect"), once(clients[1], "disconnect")]);
  io.disconnectSockets(true);
  await gone2;
  await until(() => io.engine.clientsCount === 0);
});

test("namespaces: static, dynamic by RegExp and by function, with middlewares", async (t) => {
  const { io, url } = listen(Server);
  t.after(() => io.close());
  io.of("/admin").on("connection", (s) => s.emit("hello", "admin", s.nsp.name));
  io.of("/fn", (s) => s.emit("hello", "fn-shorthand"));
  const re = io.of(/^\/dyn-\d+$/);
  re.use((s, next) => {
    s.data.viaParent = true;
    next();
  });
  re.on("connection", (s) => s.emit("hello", "regexp", s.nsp.name, s.data.viaParent));
  const byFn = io.of((name, auth, next) => next(null, name.startsWith("/team-") && auth.ok === true));
  byFn.on("connection", (s) => s.emit("hello", "function", s.nsp.name));
  const newNamespaces = [];
  io.on("new_namespace", (n) => newNamespaces.push(n.name));

  const check = async (path, extra, expected) => {
    const c = connect(url + path, opts(extra));
    const [...args] = await once(c, "hello");
    c.disconnect();
    assert.deepEqual(args, expected);
  };
  await check("/admin", {}, ["admin", "/admin"]);
  await check("/fn", {}, ["fn-shorthand"]);
  await check("/dyn-42", {}, ["regexp", "/dyn-42", true]);
  await check("/dyn-42", {}, ["regexp", "/dyn-42", true]);
  await check("/team-a", { auth: { ok: true } }, ["function", "/team-a"]);
  assert.ok(re.children.has(io.of("/dyn-42")), "the child is reachable with io.of(name)");
  assert.ok(newNamespaces.includes("/dyn-42") && newNamespaces.includes("/team-a"));
  // refused by the function matcher, unknown altogether
  for (const [path, extra] of [["/team-b", { auth: { ok: false } }], ["/nope", {}]]) {
    const c = connect(url + path, opts(extra));
    const [err] = await once(c, "connect_error");
    assert.equal(err.message, "Invalid namespace");
    c.disconnect();
  }
  // a broadcast on the parent reaches every child
  const a = await connected(url + "/dyn-1");
  const b = await connected(url + "/dyn-2");
  t.after(() => [a, b].forEach((c) => c.disconnect()));
  const got = Promise.all([once(a, "all"), once(b, "all")]);
  re.emit("all", "children");
  assert.deepEqual(await got, [["children"], ["children"]]);
});

test("middlewares: io.use with next(err) and data, async, order; socket.use per packet", async (t) => {
  const { io, url } = listen(Server);
  t.after(() => io.close());
  const order = [];
  io.use((socket, next) => {
    order.push("first");
    if (socket.handshake.auth.token !== "ok") {
      const err = new Error("not authorized");
      err.data = { code: 42 };
      return next(err);
    }
    socket.data.user = "ann";
    next();
  });
  io.use(async (socket, next) => {
    order.push("second");
    await sleep(10);
    next();
  });
  io.on("connection", (socket) => {
    socket.use(([event, ...args], next) => {
      if (event === "forbidden") return next(new Error("forbidden event"));
      next();
    });
    socket.on("error", (err) => socket.emit("packet-error", err.message));
    socket.on("who", (cb) => cb(socket.data.user));
    socket.on("forbidden", () => socket.emit("should-not-happen"));
  });
  const refused = connect(url, opts({ auth: { token: "bad" } }));
  const [err] = await once(refused, "connect_error");
  assert.equal(err.message, "not authorized");
  assert.deepEqual(err.data, { code: 42 });
  refused.disconnect();
  assert.deepEqual(order, ["first"]);
  const ok = await connected(url, { auth: { token: "ok" } });
  t.after(() => ok.disconnect());
  assert.deepEqual(order, ["first", "first", "second"]);
  assert.equal(await ok.emitWithAck("who"), "ann");
  ok.emit("forbidden");
  assert.deepEqual(await once(ok, "packet-error"), ["forbidden event"]);
});

test("disconnect: reasons on both sides, disconnecting sees the rooms, disconnect(true) closes the connection", async (t) => {
  const { io, url } = listen(Server);
  t.after(() => io.close());
  const reasons = [];
  io.on("connection", (s) => {
    s.join("room-1");
    s.on("disconnecting", (reason) => reasons.push(["disconnecting", reason, [...s.rooms].includes("room-1")]));
    s.on("disconnect", (reason) => reasons.push(["disconnect", reason, s.connected, s.rooms.size]));
    s.on("kick", () => s.disconnect());
    s.on("kick-all", () => s.disconnect(true));
  });
  const c1 = await connected(url);
  c1.disconnect();
  await until(() => reasons.length === 2);
  assert.deepEqual(reasons.splice(0), [
    ["disconnecting", "client namespace disconnect", true],
    ["disconnect", "client namespace disconnect", false, 0],
  ]);
  const c2 = await connected(url);
  c2.emit("kick");
  assert.deepEqual(await once(c2, "disconnect"), ["io server disconnect", undefined]);
  await until(() => reasons.length === 2);
  assert.equal(reasons[1][1], "server namespace disconnect");
  reasons.length = 0;
  // disconnect(true): every namespace of the connection goes
  io.of("/other");
  const c3 = await connected(url);
  const other = c3.io.socket("/other");
  await once(other, "connect");
  const both = Promise.all([once(c3, "disconnect"), once(other, "disconnect")]);
  c3.emit("kick-all");
  await both;
  await until(() => io.engine.clientsCount === 0);
});

test("onAny, onAnyOutgoing, send/message, volatile, compress", async (t) => {
  const { io, url } = listen(Server);
  t.after(() => io.close());
  const incoming = [];
  const outgoing = [];
  io.on("connection", (s) => {
    s.onAny((event, ...args) => incoming.push([event, ...args]));
    s.onAnyOutgoing((event, ...args) => outgoing.push([event, ...args]));
    s.on("message", (m) => s.compress(false).volatile.emit("reply", m));
    s.on("bye", () => s.send("sent-with-send"));
  });
  const c = await connected(url);
  t.after(() => c.disconnect());
  c.send("hi");
  assert.deepEqual(await once(c, "reply"), ["hi"]);
  c.emit("bye", 1);
  assert.deepEqual(await once(c, "message"), ["sent-with-send"]);
  io.emit("broadcast-seen", 2);
  await once(c, "broadcast-seen");
  await until(() => outgoing.length === 3);
  assert.deepEqual(incoming, [["message", "hi"], ["bye", 1]]);
  assert.deepEqual(outgoing, [["reply", "hi"], ["message", "sent-with-send"], ["broadcast-seen", 2]]);
});

test("options: path, ping settings in the handshake, transports, cors, cookie, allowRequest, serveStatic", async (t) => {
  const { io, url } = listen(Server, {
    path: "/custom-path",
    pingInterval: 1234,
    pingTimeout: 567,
    maxHttpBufferSize: 4321,
    cors: { origin: ["http://allowed.example"], credentials: true },
    cookie: { name: "sticky" },
    allowRequest: (req, cb) => cb(req.headers["x-deny"] ? "denied" : null, !req.headers["x-deny"]),
  });
  t.after(() => io.close());
  io.serveStatic("/hello.txt", Buffer.from("hello"), "text/plain");
  io.serveStatic("/pkg.json", require.resolve("../package.json"));
  const r = await fetch(`${url}/custom-path/?EIO=4&transport=polling`, { headers: { origin: "http://allowed.example" } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("access-control-allow-origin"), "http://allowed.example");
  assert.equal(r.headers.get("access-control-allow-credentials"), "true");
  assert.match(r.headers.get("set-cookie"), /^sticky=/);
  const open = JSON.parse((await r.text()).slice(1));
  assert.equal(open.pingInterval, 1234);
  assert.equal(open.pingTimeout, 567);
  assert.equal(open.maxPayload, 4321);
  assert.deepEqual(open.upgrades, ["websocket"]);
  const denied = await fetch(`${url}/custom-path/?EIO=4&transport=polling`, { headers: { "x-deny": "1" } });
  assert.equal(denied.status, 403);
  assert.equal((await denied.json()).code, 4);
  const file = await fetch(`${url}/hello.txt`);
  assert.equal(file.headers.get("content-type"), "text/plain");
  assert.equal(await file.text(), "hello");
  const json = await fetch(`${url}/pkg.json`);
  assert.equal(json.headers.get("content-type"), "application/json");
  assert.equal((await json.json()).name, "polysio");
  assert.equal((await fetch(`${url}/missing`)).status, 404);
  // the socket.io client follows the custom path
  io.on("connection", (s) => s.emit("welcome"));
  const c = connect(url, opts({ path: "/custom-path" }));
  await once(c, "welcome");
  c.disconnect();
  // websocket only
  const ws = listen(Server, { transports: ["websocket"] });
  t.after(() => ws.io.close());
  const polling = await fetch(`${ws.url}/socket.io/?EIO=4&transport=polling`);
  assert.equal(polling.status, 400);
  const c2 = connect(ws.url, opts({ transports: ["websocket"] }));
  await once(c2, "connect");
  c2.disconnect();
});

test("connection state recovery restores id, rooms, data and missed packets", async (t) => {
  const { io, url } = listen(Server, { connectionStateRecovery: { maxDisconnectionDuration: 10000 } });
  t.after(() => io.close());
  io.on("connection", (s) => {
    if (!s.recovered) {
      s.join("kept");
      s.data.count = 1;
    } else {
      s.data.count += 1;
    }
    s.emit("state", s.recovered, s.data.count, [...s.rooms].includes("kept"));
    s.on("drop", () => {
      s.conn.close();
      setTimeout(() => io.to("kept").emit("missed", 1), 100);
    });
  });
  const c = connect(url, { forceNew: true, reconnectionDelay: 100, reconnectionDelayMax: 200 });
  t.after(() => c.disconnect());
  // With recovery on, the reference appends the packet offset as a last argument.
  assert.deepEqual((await once(c, "state")).slice(0, 3), [false, 1, true]);
  const id = c.id;
  c.emit("drop");
  const missed = once(c, "missed");
  assert.deepEqual((await once(c, "state")).slice(0, 3), [true, 2, true]);
  assert.equal((await missed)[0], 1);
  assert.equal(c.id, id);
  assert.equal(c.recovered, true);
});

test("io.close() disconnects everyone with 'server shutting down' and frees the port", async () => {
  const { io, url } = listen(Server);
  const reasons = [];
  io.on("connection", (s) => s.on("disconnect", (r) => reasons.push(r)));
  const c = await connected(url);
  const gone = once(c, "disconnect");
  await within(io.close(), 10000, "close");
  assert.deepEqual(reasons, ["server shutting down"]);
  await gone;
  await assert.rejects(fetch(`${url}/socket.io/?EIO=4&transport=polling`));
  // closing twice is fine
  await io.close();
  // the port can be bound again
  const again = new Server();
  again.listen(Number(new URL(url).port), { host: "127.0.0.1" });
  await again.close();
});
