"use strict";
// Event-loop hygiene, each case in its own Node process: the process ends by itself once the
// servers are closed and the clients disconnected (nothing of polysio keeps it alive), and it
// stays alive while a server listens or a client is active.

const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const { run } = require("./helpers");

const pkg = JSON.stringify(path.resolve(__dirname, ".."));

/** Runs `body` (the package is `polysio`, the client `client`) in a fresh process. */
function program(body, timeout = 30000) {
  const src = `
    const polysio = require(${pkg});
    const client = require(${pkg} + "/client");
    const log = (...a) => console.log(...a);
    ${body}
  `;
  return run([process.execPath, "-e", src], { timeout });
}

function exitedCleanly(r) {
  assert.equal(r.signal, null, `killed (it did not exit by itself); stdout: ${r.stdout}; stderr: ${r.stderr}`);
  assert.equal(r.code, 0, `exit code ${r.code}; stderr: ${r.stderr}`);
}

test("server and client exchange, then close/disconnect: the process exits by itself", async () => {
  const r = await program(`
    const io = new polysio.Server();
    io.on("connection", (s) => s.on("ping", (cb) => cb("pong")));
    io.listen(0, { host: "127.0.0.1" });
    const c = client.io("http://127.0.0.1:" + io.address().port);
    c.on("connect", async () => {
      log(await c.emitWithAck("ping"));
      c.disconnect();
      await io.close();
      log("closed");
    });
  `);
  exitedCleanly(r);
  assert.equal(r.stdout, "pong\nclosed\n");
});

test("a server that never listened, and one closed without awaiting, keep nothing alive", async () => {
  const r = await program(`
    new polysio.Server();
    const io = new polysio.Server();
    io.listen(0, { host: "127.0.0.1" });
    io.close();
    log("done");
  `);
  exitedCleanly(r);
  assert.equal(r.stdout, "done\n");
});

test("a listening server keeps the process alive until close()", async () => {
  const r = await program(`
    const io = new polysio.Server();
    io.listen(0, { host: "127.0.0.1" });
    const started = Date.now();
    setTimeout(() => io.close().then(() => log(Date.now() - started >= 500 ? "alive until close" : "too early")), 500).unref();
  `);
  exitedCleanly(r);
  assert.equal(r.stdout, "alive until close\n");
});

test("a client retrying an unreachable server stays alive until disconnect(), then exits", async () => {
  const r = await program(`
    const net = require("node:net");
    const srv = net.createServer().listen(0, "127.0.0.1", () => {
      const port = srv.address().port;
      srv.close(() => {
        const c = client.io("http://127.0.0.1:" + port, { reconnectionDelay: 50, reconnectionDelayMax: 50 });
        let attempts = 0;
        c.io.on("reconnect_attempt", () => {
          if (++attempts === 3) {
            c.disconnect();
            log("gave up after", attempts);
          }
        });
      });
    });
  `);
  exitedCleanly(r);
  assert.equal(r.stdout, "gave up after 3\n");
});

test("a client whose server disconnects it exits; so does one that exhausted its attempts", async () => {
  const r = await program(`
    const io = new polysio.Server();
    io.on("connection", (s) => s.disconnect());
    io.listen(0, { host: "127.0.0.1" });
    const port = io.address().port;
    const c = client.io("http://127.0.0.1:" + port);
    c.on("disconnect", async (reason) => {
      log(reason);
      await io.close();
      const d = client.io("http://127.0.0.1:" + port, { forceNew: true, reconnectionAttempts: 2, reconnectionDelay: 20, reconnectionDelayMax: 20 });
      d.io.on("reconnect_failed", () => log("reconnect_failed"));
    });
  `);
  exitedCleanly(r);
  assert.equal(r.stdout, "io server disconnect\nreconnect_failed\n");
});

// As in socket.io: what a listener throws is the process' uncaughtException (the process dies
// unless the application handles it); the same program runs against the npm reference.
test("a throwing handler: the process' uncaughtException, as socket.io", async () => {
  const body = (handled) => `(async () => {
    const http = require("node:http");
    const ref = process.argv.includes("ref");
    let io, port;
    if (ref) {
      const srv = http.createServer();
      io = new (require(${JSON.stringify(require.resolve("socket.io"))}).Server)(srv);
      await new Promise((r) => srv.listen(0, "127.0.0.1", r));
      port = srv.address().port;
    } else {
      io = new polysio.Server();
      io.listen(0, { host: "127.0.0.1" });
      port = io.address().port;
    }
    ${handled ? 'process.on("uncaughtException", (e) => log("uncaught: " + e.message));' : ""}
    io.on("connection", (s) => {
      s.on("boom", () => { throw new Error("boom"); });
      s.on("ping", (cb) => cb("still alive"));
    });
    const c = require(${JSON.stringify(require.resolve("socket.io-client"))}).io("http://127.0.0.1:" + port, { transports: ["websocket"] });
    c.on("connect", async () => {
      c.emit("boom");
      log(await c.emitWithAck("ping"));
      c.disconnect();
      io.close();
    });
  })();`;
  for (const impl of ["polysio", "ref"]) {
    // Not handled: the process dies with the error, as any uncaught exception.
    const dies = await run([process.execPath, "-e", `const polysio = require(${pkg}); const log = (...a) => console.log(...a); ${body(false)}`, impl], { timeout: 30000 });
    assert.equal(dies.signal, null, `${impl}: killed; stderr: ${dies.stderr}`);
    assert.equal(dies.code, 1, `${impl}: exit code ${dies.code}; stdout: ${dies.stdout}; stderr: ${dies.stderr}`);
    assert.match(dies.stderr, /Error: boom/, impl);
    // Handled: the server goes on serving.
    const lives = await run([process.execPath, "-e", `const polysio = require(${pkg}); const log = (...a) => console.log(...a); ${body(true)}`, impl], { timeout: 30000 });
    exitedCleanly(lives);
    assert.equal(lives.stdout, "uncaught: boom\nstill alive\n", impl);
  }
});

test("many servers and clients in worker threads and the main thread, all closed: exit", async () => {
  const r = await program(`
    const { Worker } = require("node:worker_threads");
    const code = \`
      const polysio = require(${pkg});
      const client = require(${pkg} + "/client");
      const io = new polysio.Server();
      io.on("connection", (s) => s.on("ping", (cb) => cb("pong")));
      io.listen(0, { host: "127.0.0.1" });
      const c = client.io("http://127.0.0.1:" + io.address().port);
      c.emitWithAck("ping").then(async (r) => { c.disconnect(); await io.close(); require("node:worker_threads").parentPort.postMessage(r); });
    \`;
    let n = 0;
    for (let i = 0; i < 2; i++) {
      const w = new Worker(code, { eval: true });
      w.on("message", (m) => { if (++n === 2) log("workers:", m); });
    }
  `);
  exitedCleanly(r);
  assert.equal(r.stdout, "workers: pong\n");
});

test("without reconnection: a failed connect, or a lost connection, keeps nothing alive", async () => {
  const r = await program(`
    const dead = client.io("http://127.0.0.1:1", { reconnection: false });
    dead.on("connect_error", () => log("connect_error"));
    const io = new polysio.Server();
    io.on("connection", (s) => s.conn.close());
    io.listen(0, { host: "127.0.0.1" });
    const c = client.io("http://127.0.0.1:" + io.address().port, { reconnection: false });
    c.on("disconnect", (reason) => {
      log(reason);
      io.close();
    });
  `);
  exitedCleanly(r);
  assert.deepEqual(r.stdout.trim().split("\n").sort(), ["connect_error", "transport close"]);
});

test("a worker terminated while its server listens: the server stops and frees the port", async () => {
  const r = await program(`
    const net = require("node:net");
    const { Worker } = require("node:worker_threads");
    const w = new Worker(\`
      const polysio = require(${pkg});
      const io = new polysio.Server();
      io.listen(0, { host: "127.0.0.1" });
      require("node:worker_threads").parentPort.postMessage(io.address().port);
    \`, { eval: true });
    w.on("message", async (port) => {
      await w.terminate();
      const refused = () => new Promise((resolve) => {
        const s = net.connect(port, "127.0.0.1");
        s.on("connect", () => { s.destroy(); resolve(false); });
        s.on("error", () => resolve(true));
      });
      for (let i = 0; i < 100; i++) {
        if (await refused()) { log("port freed"); return; }
        await new Promise((r) => setTimeout(r, 50));
      }
      log("still listening");
    });
  `);
  exitedCleanly(r);
  assert.equal(r.stdout, "port freed\n");
});
