"use strict";
// Issue 14 from Node: emitting to a socket that has left is a no-op (as socket.io), the
// backpressure from a slow handler (a flooding client is not read while its events wait for
// JavaScript, new clients are served meanwhile, nothing is lost), and the limit and timeout
// options (validated, then each one at work against a real connection).

const test = require("node:test");
const assert = require("node:assert/strict");
const net = require("node:net");
const path = require("node:path");
const { spawn } = require("node:child_process");
const { io: connect } = require("socket.io-client");
const { Server } = require("..");
const { io: polysioConnect } = require("../client");
const { once, within, until, sleep, listen, run, kill } = require("./helpers");

const pkg = JSON.stringify(path.resolve(__dirname, ".."));
const opts = (extra = {}) => ({ forceNew: true, reconnection: false, ...extra });

const code = (c) => (e) => {
  assert.equal(e.code, c, `expected ${c}, got ${e.code}: ${e.message}`);
  return true;
};

/** "pending" until `p` settles, then "resolved" / its rejection's code. */
function watch(p) {
  const state = { now: "pending", at: 0 };
  const begun = Date.now();
  p.then(
    () => Object.assign(state, { now: "resolved", at: Date.now() - begun }),
    (e) => Object.assign(state, { now: e.code || String(e), at: Date.now() - begun }),
  );
  return state;
}

test("emitting to a socket that has left: a no-op, as socket.io; invalid arguments still throw", async (t) => {
  const { io: srv, url } = listen(Server);
  t.after(() => srv.close());
  const seen = once(srv, "connection");
  const c = connect(url, opts());
  const [socket] = await seen;
  await once(c, "connect");
  c.on("never", () => {}); // received, never answered
  // acks pending when the client leaves: socket.io neither fails them nor answers them, a
  // timeout still expires at its time
  const pendingForever = watch(socket.emitWithAck("never"));
  const pendingTimed = watch(socket.timeout(600).emitWithAck("never"));
  c.disconnect();
  await until(() => !socket.connected);
  await sleep(100);
  assert.equal(pendingTimed.now, "pending", "a timeout runs its course");
  // from a timer, after the client left (an exception here would be the process' uncaught one)
  const r = await new Promise((resolve) =>
    setTimeout(() => {
      const ackCalls = [];
      resolve({
        emit: socket.emit("late", { x: 1 }),
        binary: socket.emit("late", Buffer.from([1, 2])),
        volatile: socket.volatile.emit("late"),
        compressed: socket.compress(true).emit("late"),
        send: socket.send("late") === socket,
        toSid: srv.to(socket.id).emit("late"),
        toRoom: socket.to("room").emit("late"),
        ackNoTimeout: socket.emit("late", (...a) => ackCalls.push(["none", a])),
        ackTimeout: socket.timeout(150).emit("late", (err) => ackCalls.push(["timed", err && err.code])),
        withAck: watch(socket.emitWithAck("late")),
        withAckTimeout: watch(socket.timeout(200).emitWithAck("late")),
        ackCalls,
        join: (socket.join("x"), true),
        disconnect: socket.disconnect(true) === socket,
      });
    }, 20),
  );
  for (const k of ["emit", "binary", "volatile", "compressed", "send", "toSid", "toRoom", "ackNoTimeout", "ackTimeout", "join", "disconnect"]) {
    assert.equal(r[k], true, k);
  }
  // invalid arguments throw as they always do
  assert.throws(() => socket.emit("late", 1n), code("ERR_INVALID_ARG_TYPE"));
  assert.throws(() => socket.emit("late", 1n, () => {}), code("ERR_INVALID_ARG_TYPE"));
  assert.throws(() => socket.emit("disconnect"), code("ERR_INVALID_ARG_VALUE"));
  assert.throws(() => socket.emit(42), code("ERR_INVALID_ARG_TYPE"));
  await assert.rejects(socket.emitWithAck("late", 1n), code("ERR_INVALID_ARG_TYPE"));
  // with a timeout: "operation has timed out" once it expires (not at once); without: never
  await until(() => r.withAckTimeout.now !== "pending");
  assert.equal(r.withAckTimeout.now, "ERR_TIMEOUT");
  assert.ok(r.withAckTimeout.at >= 180, `rejected after ${r.withAckTimeout.at} ms`);
  await until(() => r.ackCalls.length === 1);
  assert.deepEqual(r.ackCalls, [["timed", "ERR_TIMEOUT"]]);
  await until(() => pendingTimed.now !== "pending");
  assert.equal(pendingTimed.now, "ERR_TIMEOUT");
  assert.ok(pendingTimed.at >= 580, `the pending ack failed after ${pendingTimed.at} ms, not at its 600 ms timeout`);
  await sleep(300);
  assert.equal(pendingForever.now, "pending");
  assert.equal(r.withAck.now, "pending");
  assert.equal(r.ackCalls.length, 1, "an ack callback without timeout is never called");
});

test("an emit from a timer after the client left does not take the process down", async () => {
  const src = `
    const { Server } = require(${pkg});
    const { io } = require(${JSON.stringify(require.resolve("socket.io-client"))});
    const srv = new Server();
    srv.listen(0, { host: "127.0.0.1" });
    srv.on("connection", (socket) => {
      socket.on("disconnect", () => {
        setTimeout(async () => {
          const out = [socket.connected, socket.emit("tick", 1), socket.volatile.emit("tick"), srv.to(socket.id).emit("tick")];
          console.log(JSON.stringify(out));
          await srv.close();
        }, 50);
      });
    });
    const c = io("http://127.0.0.1:" + srv.address().port, { transports: ["websocket"] });
    c.on("connect", () => c.disconnect());
  `;
  const r = await run([process.execPath, "-e", src], { timeout: 30000 });
  assert.equal(r.signal, null, `killed; stderr: ${r.stderr}`);
  assert.equal(r.code, 0, `exit ${r.code}; stderr: ${r.stderr}`);
  assert.equal(r.stdout, "[false,true,true,true]\n");
});

test("a client listener that throws: the process' uncaughtException, as socket.io-client", async () => {
  const src = `
    const { Server } = require(${pkg});
    const { io } = require(${pkg} + "/client");
    process.on("uncaughtException", (e) => console.log("uncaught: " + e.message));
    const srv = new Server();
    srv.listen(0, { host: "127.0.0.1" });
    srv.on("connection", (s) => {
      s.emit("boom");
      s.on("ping", (cb) => cb("pong"));
    });
    const c = io("http://127.0.0.1:" + srv.address().port);
    c.on("boom", () => { throw new Error("client boom"); });
    c.on("connect", async () => {
      console.log(await c.emitWithAck("ping"));
      c.disconnect();
      await srv.close();
    });
  `;
  const r = await run([process.execPath, "-e", src], { timeout: 30000 });
  assert.equal(r.code, 0, `exit ${r.code}; stderr: ${r.stderr}`);
  assert.deepEqual(r.stdout.trim().split("\n").sort(), ["pong", "uncaught: client boom"]);
});

/** The flood server (flood-server.js) in its own process: its port and its last report. */
function floodServer(options) {
  const child = spawn(process.execPath, [path.join(__dirname, "flood-server.js"), JSON.stringify(options)], {
    stdio: ["ignore", "pipe", "inherit"],
    detached: true,
  });
  const state = { child, port: 0, last: { rss: 0, count: 0 }, maxRss: 0, measuring: false };
  let buf = "";
  child.stdout.on("data", (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const m = /^listening (\d+)/.exec(line);
      if (m) state.port = Number(m[1]);
      else {
        state.last = JSON.parse(line);
        if (state.measuring) state.maxRss = Math.max(state.maxRss, state.last.rss);
      }
    }
  });
  return state;
}

test("a flood on one WebSocket while the handler is slow: bounded memory, others served, nothing lost", async (t) => {
  // 10,000 events of 8 KiB (80 MB) against a handler taking 1 ms each (10 s of work). Without
  // the backpressure (maxPendingMessages: Infinity) the server reads all of it at once: its
  // RSS grew by about 200 MB and a client connecting meanwhile waited 10 s for its first
  // answer; with it, the server reads at the handler's pace (+51 MB, the same for 20,000
  // events) and answers the newcomer within a batch (~0.3 s).
  const N = 10000;
  const srv = floodServer({});
  t.after(() => kill(srv.child));
  await until(() => srv.port > 0, 60000, "flood server listening");
  const url = `http://127.0.0.1:${srv.port}`;
  const flooder = connect(url, opts({ transports: ["websocket"] }));
  t.after(() => flooder.disconnect());
  await once(flooder, "connect");
  assert.equal(await flooder.emitWithAck("ping"), "pong");
  await sleep(500);
  const base = srv.last.rss;
  srv.maxRss = base;
  srv.measuring = true;
  const payload = "x".repeat(8192);
  const t0 = Date.now();
  for (let i = 0; i < N; i++) flooder.emit("flood", payload);
  // a second client during the flood: connected and answered within a few seconds
  await sleep(1000);
  assert.ok(srv.last.count < N / 2, `the flood is still being handled (${srv.last.count} of ${N})`);
  const t1 = Date.now();
  const other = connect(url, opts());
  t.after(() => other.disconnect());
  await once(other, "connect", 5000);
  const connectedIn = Date.now() - t1;
  assert.equal(await within(other.emitWithAck("ping"), 5000, "the second client's ping"), "pong");
  const answeredIn = Date.now() - t1;
  const during = srv.last.count;
  // every flooded event is handled, in the end
  await until(() => srv.last.count === N, 120000, "every flood event handled");
  assert.equal(await flooder.emitWithAck("count"), N);
  const growth = srv.maxRss - base;
  console.log(
    `flood: ${N} events handled in ${Date.now() - t0} ms; server RSS +${(growth / 1e6).toFixed(1)} MB; ` +
      `second client connected in ${connectedIn} ms, answered in ${answeredIn} ms (${during} events handled then)`,
  );
  assert.ok(answeredIn < 5000, `second client answered after ${answeredIn} ms`);
  assert.ok(during < N, "the second client was answered before the flood was over");
  assert.ok(growth < 100e6, `server RSS grew by ${(growth / 1e6).toFixed(1)} MB during an 80 MB flood`);
});

test("limit and timeout options: validated like the others", () => {
  const ok = [
    {},
    {
      httpRequestBodyTimeout: 1000,
      maxBufferedChunks: 10,
      maxBufferedBytes: 1 << 20,
      writeTimeout: 5000,
      maxPendingMessages: 1,
      maxHandshakesPerSecond: 100,
      headersTimeout: 0,
      keepAliveTimeout: 0,
      maxConnections: 0,
    },
    { maxPendingMessages: Infinity, maxBufferedBytes: Infinity, maxHandshakesPerSecond: null, maxConnections: null },
    { writeTimeout: Infinity, headersTimeout: Infinity, keepAliveTimeout: 1, maxConnections: Infinity },
  ];
  for (const o of ok) new Server(o).close();
  const bad = [
    [{ httpRequestBodyTimeout: "30s" }, "ERR_INVALID_ARG_TYPE"],
    [{ httpRequestBodyTimeout: -1 }, "ERR_INVALID_ARG_VALUE"],
    [{ writeTimeout: NaN }, "ERR_INVALID_ARG_VALUE"],
    [{ headersTimeout: -5 }, "ERR_INVALID_ARG_VALUE"],
    [{ keepAliveTimeout: true }, "ERR_INVALID_ARG_TYPE"],
    [{ maxBufferedChunks: -1 }, "ERR_INVALID_ARG_VALUE"],
    [{ maxBufferedChunks: 1.5 }, "ERR_INVALID_ARG_VALUE"],
    [{ maxBufferedBytes: "big" }, "ERR_INVALID_ARG_TYPE"],
    [{ maxPendingMessages: 0 }, "ERR_INVALID_ARG_VALUE"],
    [{ maxHandshakesPerSecond: 0 }, "ERR_INVALID_ARG_VALUE"],
    [{ maxHandshakesPerSecond: 2.5 }, "ERR_INVALID_ARG_VALUE"],
    [{ maxHandshakesPerSecond: "10" }, "ERR_INVALID_ARG_TYPE"],
    [{ maxConnections: -1 }, "ERR_INVALID_ARG_VALUE"],
    [{ maxConnections: {} }, "ERR_INVALID_ARG_TYPE"],
  ];
  for (const [o, c] of bad) assert.throws(() => new Server(o), code(c), JSON.stringify(o));
});

/** A raw TCP connection to `port`: resolves with what it received once the server closed it. */
function rawConnection(port, send = "") {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1", () => send && s.write(send));
    let data = "";
    const begun = Date.now();
    s.on("data", (d) => (data += d));
    s.on("error", () => {});
    s.on("close", () => resolve({ data, ms: Date.now() - begun, socket: s }));
    rawConnection.open.add(s);
  });
}
rawConnection.open = new Set();

test("limit and timeout options at work: headersTimeout, keepAliveTimeout, maxConnections, maxHandshakesPerSecond", async (t) => {
  t.after(() => rawConnection.open.forEach((s) => s.destroy()));
  // a connection that never sends a request is closed after headersTimeout
  const a = listen(Server, { headersTimeout: 300 });
  t.after(() => a.io.close());
  const silent = await within(rawConnection(a.io.address().port), 10000, "idle connection closed");
  assert.ok(silent.ms >= 250 && silent.ms < 5000, `closed after ${silent.ms} ms`);
  // an idle keep-alive connection is closed after keepAliveTimeout
  const b = listen(Server, { keepAliveTimeout: 300 });
  t.after(() => b.io.close());
  const idle = await within(
    rawConnection(b.io.address().port, "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n"),
    10000,
    "keep-alive connection closed",
  );
  assert.match(idle.data, /^HTTP\/1.1 200/);
  assert.ok(idle.ms >= 250 && idle.ms < 5000, `closed after ${idle.ms} ms`);
  // past maxConnections, a new connection is answered 503; the one inside the cap is served
  const c = listen(Server, { maxConnections: 1 });
  t.after(() => c.io.close());
  const first = net.connect(c.io.address().port, "127.0.0.1");
  rawConnection.open.add(first);
  await once(first, "connect");
  await sleep(100);
  const over = await within(rawConnection(c.io.address().port, "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n"), 10000, "refused");
  assert.match(over.data, /^HTTP\/1.1 503/);
  first.destroy();
  await sleep(100);
  const served = connect(c.url, opts({ transports: ["websocket"] }));
  t.after(() => served.disconnect());
  await once(served, "connect");
  // a handshake over maxHandshakesPerSecond is answered 503
  const d = listen(Server, { maxHandshakesPerSecond: 1 });
  t.after(() => d.io.close());
  const statuses = [];
  for (let i = 0; i < 3; i++) {
    const res = await fetch(`${d.url}/socket.io/?EIO=4&transport=polling`);
    statuses.push(res.status);
    await res.arrayBuffer();
  }
  assert.equal(statuses[0], 200);
  assert.ok(statuses.includes(503), `statuses ${statuses}`);
});

test("maxPendingMessages: the polysio client floods a server whose handler is slow; all arrive, in order", async (t) => {
  const { io: srv, url } = listen(Server, { maxPendingMessages: 4 });
  t.after(() => srv.close());
  const got = [];
  const pause = new Int32Array(new SharedArrayBuffer(4));
  srv.on("connection", (s) => {
    s.on("n", (i) => {
      Atomics.wait(pause, 0, 0, 1);
      got.push(i);
    });
  });
  const c = polysioConnect(url, { forceNew: true, transports: ["websocket"] });
  t.after(() => c.disconnect());
  await once(c, "connect");
  for (let i = 0; i < 500; i++) c.emit("n", i);
  await until(() => got.length === 500, 30000, "500 events");
  assert.deepEqual(got, Array.from({ length: 500 }, (_, i) => i));
});
