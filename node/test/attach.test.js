"use strict";
// Socket.IO attached to a Node http.Server / https.Server (Express 5 and 4, Fastify), against the
// npm socket.io-client: polling, websocket and upgrade, with the WebSocket taken over (the TCP
// socket itself) or its bytes crossing (takeover: false, TLS); upgrades to other paths;
// closing.

const test = require("node:test");
const assert = require("node:assert");
const http = require("node:http");
const https = require("node:https");
const net = require("node:net");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { execFileSync } = require("node:child_process");
const express = require("express");
const express4 = require("express4");
const Fastify = require("fastify");
const { io: connect } = require("socket.io-client");
const { Server } = require("..");
const { once, within, until, sleep, connected } = require("./helpers");

/** An Express app with a middleware and `GET /health`, on an http.Server with `io` attached. */
async function expressServer(opts) {
  const app = express();
  app.use((req, res, next) => {
    res.setHeader("x-middleware", "yes");
    next();
  });
  app.get("/health", (req, res) => res.send("ok"));
  const httpServer = http.createServer(app);
  const io = new Server(httpServer, opts);
  // Our own listener after polysio's: sees every upgrade socket.
  const upgrades = [];
  httpServer.on("upgrade", (req, socket) => upgrades.push(socket));
  await new Promise((r) => httpServer.listen(0, "127.0.0.1", r));
  return { io, httpServer, upgrades, url: `http://127.0.0.1:${httpServer.address().port}` };
}

function handlers(io) {
  io.on("connection", (socket) => {
    socket.on("echo", (x, cb) => cb(x));
    socket.on("join", (room, cb) => {
      socket.join(room);
      cb();
    });
    socket.on("to-room", (room, msg) => io.to(room).emit("room-msg", msg));
  });
}

function client(url, transports, extra = {}) {
  const c = connect(url, { transports, forceNew: true, reconnection: false, ...extra });
  return c;
}

/** Binary, acks and rooms over `c` (and a second client `d` in the same room). */
async function exercise(c, d) {
  const bin = Buffer.from([0, 1, 2, 253, 254, 255]);
  const back = await within(c.emitWithAck("echo", { text: "héllo", bin }), 15000, "ack");
  assert.strictEqual(back.text, "héllo");
  assert.ok(Buffer.from(back.bin).equals(bin), "binary round trip");
  await within(c.emitWithAck("join", "r1"), 15000, "join");
  await within(d.emitWithAck("join", "r1"), 15000, "join");
  const got = once(d, "room-msg");
  c.emit("to-room", "r1", "to everyone in r1");
  assert.deepStrictEqual(await got, ["to everyone in r1"]);
}

/**
 * Two clients over polling, websocket and polling then upgrade: binary, acks and rooms; after
 * the WebSocket ones, `onUpgrades(their upgrade sockets, c, d)`.
 */
async function overEachTransport(url, upgrades, onUpgrades) {
  for (const transports of [["polling"], ["websocket"], ["polling", "websocket"]]) {
    const before = upgrades.length;
    const c = client(url, transports);
    const d = client(url, transports);
    try {
      await connected(c);
      await connected(d);
      if (transports.length === 2) {
        await until(() => c.io.engine.transport.name === "websocket" && d.io.engine.transport.name === "websocket", 15000, "upgrade");
      }
      assert.strictEqual(c.io.engine.transport.name, transports.includes("websocket") ? "websocket" : "polling");
      await exercise(c, d);
      if (transports.includes("websocket")) {
        const mine = upgrades.slice(before);
        assert.strictEqual(mine.length, 2, "two WebSocket upgrades");
        await onUpgrades(mine, c, d);
      }
    } finally {
      c.close();
      d.close();
    }
  }
}

for (const takeover of [true, false]) {
  test(`Express on one port, takeover ${takeover ? "on" : "off"}: routes, polling, websocket, upgrade`, async (t) => {
    const { io, httpServer, upgrades, url } = await expressServer({ takeover });
    handlers(io);
    t.after(() => io.close());

    const health = await fetch(`${url}/health`);
    assert.strictEqual(health.status, 200);
    assert.strictEqual(await health.text(), "ok");
    assert.strictEqual(health.headers.get("x-middleware"), "yes");
    const missing = await fetch(`${url}/nothing`);
    assert.strictEqual(missing.status, 404, "Express answers what is not its route");
    // Only the Socket.IO path ("/socket.io/" as a prefix) goes to the core.
    assert.strictEqual((await fetch(`${url}/socket.iox`)).status, 404);

    await overEachTransport(url, upgrades, async (mine, c, d) => {
      if (takeover) {
        // Node's socket is destroyed (its descriptor closed, no FIN) while the WebSocket
        // lives on in the core.
        await until(() => mine.every((s) => s.destroyed), 5000, "Node sockets destroyed");
        await sleep(300);
        assert.ok(c.connected && d.connected);
        assert.deepStrictEqual(await within(c.emitWithAck("echo", "still here"), 15000, "ack"), "still here");
      } else {
        assert.ok(mine.every((s) => !s.destroyed), "bytes cross through Node's sockets");
      }
    });
    assert.strictEqual(io.httpServer, httpServer);
  });
}

test("a POST over maxHttpBufferSize is refused with 413 and ends its session", async (t) => {
  const { io, url } = await expressServer({ maxHttpBufferSize: 1000 });
  t.after(() => io.close());
  const open = await (await fetch(`${url}/socket.io/?EIO=4&transport=polling`)).text();
  const sid = JSON.parse(open.slice(1)).sid;
  const post = (body) => fetch(`${url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method: "POST", body });
  const ok = await post("40");
  assert.strictEqual(ok.status, 200);
  assert.strictEqual(await ok.text(), "ok");
  const big = await post("4" + "x".repeat(5000));
  assert.strictEqual(big.status, 413);
  await until(() => io.engine.clientsCount === 0, 5000, "session ended");
});

test("a long poll whose client goes away ends its session", async (t) => {
  const { io, url } = await expressServer({});
  t.after(() => io.close());
  const open = await (await fetch(`${url}/socket.io/?EIO=4&transport=polling`)).text();
  const sid = JSON.parse(open.slice(1)).sid;
  assert.strictEqual(io.engine.clientsCount, 1);
  const ac = new AbortController();
  const pending = fetch(`${url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { signal: ac.signal }).catch((e) => e);
  await sleep(200);
  ac.abort();
  await pending;
  await until(() => io.engine.clientsCount === 0, 5000, "session ended");
});

test("https.Server with a self-signed certificate: the WebSocket's bytes cross", async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "polysio-tls-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const key = path.join(dir, "key.pem");
  const cert = path.join(dir, "cert.pem");
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost"], {
    stdio: "ignore",
  });
  const app = express();
  app.get("/health", (req, res) => res.send("ok"));
  const httpsServer = https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, app);
  const io = new Server(httpsServer);
  handlers(io);
  let secure = null;
  io.on("connection", (s) => (secure = s.handshake.secure));
  const upgrades = [];
  httpsServer.on("upgrade", (req, socket) => upgrades.push(socket));
  await new Promise((r) => httpsServer.listen(0, "127.0.0.1", r));
  t.after(() => io.close());
  const url = `https://127.0.0.1:${httpsServer.address().port}`;
  const agent = new https.Agent({ rejectUnauthorized: false });
  const health = await new Promise((resolve, reject) =>
    https.get(`${url}/health`, { agent }, (res) => {
      let b = "";
      res.on("data", (d) => (b += d));
      res.on("end", () => resolve([res.statusCode, b]));
    }).on("error", reject),
  );
  assert.deepStrictEqual(health, [200, "ok"]);
  for (const transports of [["polling"], ["websocket"], ["polling", "websocket"]]) {
    const c = client(url, transports, { rejectUnauthorized: false, agent: false });
    const d = client(url, transports, { rejectUnauthorized: false, agent: false });
    try {
      await connected(c);
      await connected(d);
      if (transports.length === 2) {
        await until(() => c.io.engine.transport.name === "websocket" && d.io.engine.transport.name === "websocket", 15000, "upgrade");
      }
      assert.strictEqual(secure, true);
      await exercise(c, d);
    } finally {
      c.close();
      d.close();
    }
  }
  assert.strictEqual(upgrades.length, 4);
  assert.ok(upgrades.every((s) => s.encrypted), "TLS sockets");
});

test("Express 4: routes, an Express 4 Router as io.engine.use middleware, polling, websocket, upgrade", async (t) => {
  assert.match(require("express4/package.json").version, /^4\./);
  const app = express4();
  app.use((req, res, next) => {
    res.set("x-middleware", "express4");
    next();
  });
  app.get("/health", (req, res) => res.send("ok"));
  // Express 4's route syntax (an optional parameter, gone in Express 5).
  app.get("/items/:id?", (req, res) => res.json({ id: req.params.id || null }));
  const httpServer = http.createServer(app);
  const io = new Server(httpServer);
  handlers(io);
  // An Express 4 Router on the handshake requests and the upgrade.
  const seen = [];
  const router = express4.Router();
  router.use((req, res, next) => {
    seen.push(new URL(req.url, "http://x").searchParams.get("transport"));
    res.setHeader("x-engine-mw", "express4");
    next(req.headers["x-block"] ? new Error("blocked") : undefined);
  });
  io.engine.use(router);
  const upgrades = [];
  httpServer.on("upgrade", (req, socket) => upgrades.push(socket));
  await new Promise((r) => httpServer.listen(0, "127.0.0.1", r));
  t.after(() => io.close());
  const url = `http://127.0.0.1:${httpServer.address().port}`;

  const health = await fetch(`${url}/health`);
  assert.strictEqual(await health.text(), "ok");
  assert.strictEqual(health.headers.get("x-middleware"), "express4");
  assert.deepStrictEqual(await (await fetch(`${url}/items`)).json(), { id: null });
  assert.deepStrictEqual(await (await fetch(`${url}/items/7`)).json(), { id: "7" });
  assert.strictEqual((await fetch(`${url}/nothing`)).status, 404);
  const open = await fetch(`${url}/socket.io/?EIO=4&transport=polling`);
  assert.strictEqual(open.status, 200);
  assert.strictEqual(open.headers.get("x-engine-mw"), "express4");
  const blocked = await fetch(`${url}/socket.io/?EIO=4&transport=polling`, { headers: { "x-block": "1" } });
  assert.strictEqual(blocked.status, 400);

  await overEachTransport(url, upgrades, (mine) => until(() => mine.every((s) => s.destroyed), 5000, "taken over"));
  assert.ok(seen.includes("polling") && seen.includes("websocket"), "the Router saw polling and the upgrade");
  const refused = client(url, ["websocket"], { extraHeaders: { "x-block": "1" } });
  await assert.rejects(connected(refused));
  refused.close();
});

test("Fastify: new Server(fastify.server)", async (t) => {
  const fastify = Fastify();
  fastify.get("/health", async () => "ok");
  await fastify.ready();
  const io = new Server(fastify.server);
  handlers(io);
  await fastify.listen({ port: 0, host: "127.0.0.1" });
  t.after(() => io.close());
  const url = `http://127.0.0.1:${fastify.server.address().port}`;
  const health = await fetch(`${url}/health`);
  assert.strictEqual(await health.text(), "ok");
  for (const transports of [["polling"], ["websocket"], ["polling", "websocket"]]) {
    const c = client(url, transports);
    const d = client(url, transports);
    try {
      await connected(c);
      await connected(d);
      await exercise(c, d);
    } finally {
      c.close();
      d.close();
    }
  }
});

/** A raw upgrade request to `p`; resolves with the socket and when it ended (ms after sending). */
function rawUpgrade(port, p) {
  const s = net.connect(port, "127.0.0.1");
  const sent = Date.now();
  const ended = new Promise((resolve) => s.on("close", () => resolve(Date.now() - sent)));
  s.on("error", () => {});
  s.write(`GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
  return { s, ended };
}

test("destroyUpgrade: an upgrade to another path is ended after destroyUpgradeTimeout", async (t) => {
  const { io, httpServer } = await expressServer({});
  t.after(() => io.close());
  const { ended } = rawUpgrade(httpServer.address().port, "/elsewhere");
  const ms = await within(ended, 5000, "upgrade ended");
  assert.ok(ms >= 900 && ms < 3000, `ended after ${ms} ms`);
});

test("destroyUpgrade: false leaves other upgrades to other listeners", async (t) => {
  const { io, httpServer } = await expressServer({ destroyUpgrade: false });
  t.after(() => io.close());
  const { s, ended } = rawUpgrade(httpServer.address().port, "/elsewhere");
  let closed = false;
  ended.then(() => (closed = true));
  await sleep(1600);
  assert.strictEqual(closed, false, "left open");
  s.destroy();
});

test("the http.Server closing ends every session; io.close() closes the http.Server", async (t) => {
  const a = await expressServer({});
  const c = client(a.url, ["websocket"]);
  await connected(c);
  const gone = once(c, "disconnect");
  a.httpServer.close();
  const [reason] = await gone;
  assert.strictEqual(reason, "transport close");
  assert.strictEqual(a.io.engine.clientsCount, 0);
  await a.io.close();

  const b = await expressServer({});
  const d = client(b.url, ["polling"]);
  await connected(d);
  const closed = once(b.httpServer, "close");
  const gone2 = once(d, "disconnect");
  await b.io.close();
  await gone2;
  await closed;
  assert.strictEqual(b.httpServer.listening, false);
});

test("io.engine.use: Express-style middlewares on polling requests and the upgrade", async (t) => {
  const { io, url } = await expressServer({});
  handlers(io);
  t.after(() => io.close());
  const seen = [];
  io.engine.use((req, res, next) => {
    seen.push(new URL(req.url, "http://x").searchParams.get("transport"));
    res.setHeader("x-engine-mw", "1");
    if (req.headers["x-block"]) return next(new Error("blocked"));
    next();
  });
  const open = await fetch(`${url}/socket.io/?EIO=4&transport=polling`);
  assert.strictEqual(open.status, 200);
  assert.strictEqual(open.headers.get("x-engine-mw"), "1", "a header set by the middleware is sent");
  const blocked = await fetch(`${url}/socket.io/?EIO=4&transport=polling`, { headers: { "x-block": "1" } });
  assert.strictEqual(blocked.status, 400);
  assert.deepStrictEqual(await blocked.json(), { code: 3, message: "Bad request" });
  const c = client(url, ["websocket"]);
  await connected(c);
  assert.strictEqual(await within(c.emitWithAck("echo", 7), 15000, "ack"), 7);
  c.close();
  assert.ok(seen.includes("websocket"), "the upgrade went through the middleware");
  // Its headers go on the 101 the core writes on the taken-over socket.
  const { s } = rawUpgrade(new URL(url).port, "/socket.io/?EIO=4&transport=websocket");
  const [head] = await once(s, "data");
  s.destroy();
  assert.match(head.toString("latin1"), /^HTTP\/1\.1 101 [^]*\r\nx-engine-mw: 1\r\n/i);
  const refused = client(url, ["websocket"], { extraHeaders: { "x-block": "1" } });
  await assert.rejects(connected(refused));
  refused.close();
  // Only with an attached server.
  const own = new Server();
  t.after(() => own.close());
  own.listen(0, { host: "127.0.0.1" });
  assert.throws(() => own.engine.use(() => {}), /attached/);
});

test("allowRequest asked with the real request, answered later; a refusal is 403", async (t) => {
  const asked = [];
  const { io, url } = await expressServer({
    allowRequest: (req, cb) => {
      asked.push(req.headers["x-who"]);
      setTimeout(() => cb(req.headers["x-who"] === "bad" ? "go away" : null, req.headers["x-who"] !== "bad"), 50);
    },
  });
  handlers(io);
  t.after(() => io.close());
  const bad = await fetch(`${url}/socket.io/?EIO=4&transport=polling`, { headers: { "x-who": "bad" } });
  assert.strictEqual(bad.status, 403);
  assert.deepStrictEqual(await bad.json(), { code: 4, message: "go away" });
  for (const transports of [["polling"], ["websocket"]]) {
    const c = client(url, transports, { extraHeaders: { "x-who": "good" } });
    await connected(c);
    assert.strictEqual(await within(c.emitWithAck("echo", "hi"), 15000, "ack"), "hi");
    c.close();
  }
  const w = client(url, ["websocket"], { extraHeaders: { "x-who": "bad" } });
  await assert.rejects(connected(w));
  w.close();
  assert.deepStrictEqual(asked, ["bad", "good", "good", "bad"], "asked once per handshake, with the real headers");
});

test("serveClient: the installed socket.io-client's bundles under the path, with ETag", async (t) => {
  const { io, url } = await expressServer({});
  t.after(() => io.close());
  const version = require("socket.io-client/package.json").version;
  const dist = path.join(path.dirname(require.resolve("socket.io-client/package.json")), "dist");
  for (const f of ["socket.io.js", "socket.io.min.js", "socket.io.esm.min.js", "socket.io.min.js.map"]) {
    const r = await fetch(`${url}/socket.io/${f}`);
    assert.strictEqual(r.status, 200, f);
    assert.ok(Buffer.from(await r.arrayBuffer()).equals(fs.readFileSync(path.join(dist, f))), `${f} is the installed file`);
    assert.strictEqual(r.headers.get("etag"), `"${version}"`);
    assert.match(r.headers.get("content-type"), f.endsWith(".map") ? /application\/json/ : /application\/javascript/);
  }
  const again = await fetch(`${url}/socket.io/socket.io.js`, { headers: { "if-none-match": `"${version}"` } });
  assert.strictEqual(again.status, 304);
  assert.strictEqual((await fetch(`${url}/socket.io/other.js`)).status, 400, "other names under the path go to the core");
  const off = await expressServer({ serveClient: false });
  t.after(() => off.io.close());
  assert.strictEqual((await fetch(`${off.url}/socket.io/socket.io.js`)).status, 400);
});

for (const takeover of [true, false]) {
  test(`large messages and a 10 MB burst arrive whole and in order, takeover ${takeover ? "on" : "off"}`, async (t) => {
    const { io, url, upgrades } = await expressServer({ takeover, maxHttpBufferSize: 5e6 });
    io.on("connection", (s) => {
      s.on("echo", (x, cb) => cb(x));
      s.on("burst", (n, size) => {
        for (let i = 0; i < n; i++) s.emit("b", i, Buffer.alloc(size, i & 255));
      });
    });
    t.after(() => io.close());
    const c = client(url, ["websocket"]);
    t.after(() => c.close());
    await connected(c);
    const big = Buffer.alloc(2e6);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 255;
    for (let i = 0; i < 3; i++) {
      assert.ok(Buffer.from(await within(c.emitWithAck("echo", big), 15000, "echo")).equals(big), "2 MB echoed");
    }
    let next = 0;
    const done = new Promise((resolve, reject) =>
      c.on("b", (i, b) => {
        if (i !== next || b.length !== 100000 || b[0] !== (i & 255) || b[99999] !== (i & 255)) reject(new Error(`event ${i} (expected ${next}) is wrong`));
        if (++next === 100) resolve();
      }),
    );
    c.emit("burst", 100, 100000);
    await within(done, 30000, "burst");
    assert.strictEqual(upgrades.length, 1);
    assert.strictEqual(upgrades[0].destroyed, takeover);
  });
}
