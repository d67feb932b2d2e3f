"use strict";
// Shared helpers of the node:test suites: servers on 127.0.0.1:0, waiting on events with
// generous timeouts (the machine may be loaded), child processes.

const { spawn } = require("node:child_process");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");

/** Generous: 2 cores shared with other builds. */
const WAIT = 15000;

/** Resolves with the arguments of the next `event` on `emitter`, or rejects after `ms`. */
function once(emitter, event, ms = WAIT) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      emitter.off(event, on);
      reject(new Error(`timed out waiting for "${event}"`));
    }, ms);
    function on(...args) {
      clearTimeout(t);
      emitter.off(event, on);
      resolve(args);
    }
    emitter.on(event, on);
  });
}

/** Rejects if `p` does not settle within `ms`. */
function within(p, ms = WAIT, what = "operation") {
  let t;
  return Promise.race([
    p,
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

/** Waits until `cond()` is true (polling every 10 ms). */
async function until(cond, ms = WAIT, what = "condition") {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Resolves when the socket.io-client socket `c` is connected; rejects with its connect_error. */
async function connected(c, ms = WAIT) {
  if (c.connected) return;
  await within(
    new Promise((resolve, reject) => {
      c.once("connect", resolve);
      c.once("connect_error", reject);
    }),
    ms,
    "connect",
  );
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A polysio Server listening on 127.0.0.1 (random port) and its URL. */
function listen(Server, opts = {}) {
  const io = new Server(opts);
  io.listen(0, { host: "127.0.0.1" });
  return { io, url: `http://127.0.0.1:${io.address().port}` };
}

/** A reference socket.io server (npm) on 127.0.0.1 (random port). */
async function refServer(opts = {}) {
  const http = require("node:http");
  const { Server } = require("socket.io");
  const httpServer = http.createServer();
  const io = new Server(httpServer, opts);
  await new Promise((r) => httpServer.listen(0, "127.0.0.1", r));
  return { io, httpServer, url: `http://127.0.0.1:${httpServer.address().port}`, port: httpServer.address().port };
}

/** Runs a Node program (file or `-e` source) and collects its output and exit. */
function run(args, { cwd, env, timeout = 60000, input } = {}) {
  return new Promise((resolve) => {
    const child = spawn(args[0], args.slice(1), { cwd, env: env || process.env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const t = setTimeout(() => child.kill("SIGKILL"), timeout);
    const started = Date.now();
    child.on("close", (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
    if (input !== undefined) child.stdin.end(input);
    else child.stdin.end();
  });
}

/** Starts a long-running program that prints `listening PORT`; resolves with its port. */
function startListening(args, { cwd, env } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(args[0], args.slice(1), { cwd, env: env || process.env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    let out = "";
    let err = "";
    const t = setTimeout(() => {
      kill(child);
      reject(new Error(`no "listening" line; stdout: ${out}; stderr: ${err}`));
    }, 240000);
    child.stderr.on("data", (d) => (err += d));
    child.stdout.on("data", (d) => {
      out += d;
      const m = /listening (\d+)/.exec(out) || /http:\/\/[^:]+:(\d+)\//.exec(out);
      if (m) {
        clearTimeout(t);
        resolve({ child, port: Number(m[1]) });
      }
    });
    child.on("exit", (code) => {
      clearTimeout(t);
      reject(new Error(`exited with ${code}; stdout: ${out}; stderr: ${err}`));
    });
  });
}

/** Kills a detached child and its process group. */
function kill(child) {
  try {
    process.kill(-child.pid, "SIGTERM");
  } catch {
    try {
      child.kill("SIGTERM");
    } catch {}
  }
}

/** A free TCP port on 127.0.0.1 (bound, then released). */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Waits until the async `cond` resolves true (at most `ms`). */
async function untilAsync(cond, ms, what) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(50);
  }
}

/** True if a TCP connection to 127.0.0.1:`port` is accepted. */
function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.on("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.on("error", () => resolve(false));
  });
}

/** A redis-server of the test's own on `port` (no persistence); resolves once it accepts. */
async function startRedis(port) {
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", os.tmpdir()], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let err = "";
  child.stderr.on("data", (d) => (err += d));
  const exited = new Promise((resolve) => child.on("exit", (code) => resolve(code)));
  await untilAsync(async () => (await canConnect(port)) || child.exitCode !== null, 10000, "redis-server to accept connections");
  if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}: ${err}`);
  child.exited = exited;
  return child;
}

/** Kills a redis-server of `startRedis` (SIGKILL: no goodbye) and waits for its exit. */
async function stopRedis(child) {
  if (child.exitCode === null) {
    child.kill("SIGKILL");
    await child.exited;
  }
}

/** True if `c` receives `event` within `ms`. */
async function receives(c, event, ms) {
  try {
    return await once(c, event, ms);
  } catch {
    return null;
  }
}

const repo = path.resolve(__dirname, "..", "..");
const pkg = path.resolve(__dirname, "..");

module.exports = {
  WAIT,
  once,
  within,
  until,
  connected,
  sleep,
  listen,
  refServer,
  run,
  startListening,
  kill,
  freePort,
  untilAsync,
  startRedis,
  stopRedis,
  receives,
  repo,
  pkg,
};
