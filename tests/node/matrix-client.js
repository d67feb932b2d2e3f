// The JavaScript client harness of the conformance matrix (tests/SCENARIOS.md).
//   node matrix-client.js MODULE URL SCENARIO|all
// MODULE is the client package: `socket.io-client` (npm) or a path to polysio's client module,
// which has the same `io(url, opts)` API.
"use strict";

const fs = require("fs");
const path = require("path");
const readline = require("readline");

const [moduleName, url, which = "all"] = process.argv.slice(2);
const { io } = require(moduleName);
const WAIT = 10000;
// The TLS hook: the CA of POLYSIO_TEST_CA_FILE is trusted (socket.io-client through Node's
// NODE_EXTRA_CA_CERTS, set by tests/run-client; polysio's client through its `ca` option).
const ca = process.env.POLYSIO_TEST_CA_FILE && moduleName !== "socket.io-client" ? fs.readFileSync(process.env.POLYSIO_TEST_CA_FILE) : undefined;

function toValue(j) {
  if (Array.isArray(j)) return j.map(toValue);
  if (j && typeof j === "object") {
    const keys = Object.keys(j);
    if (keys.length === 1 && keys[0] === "$bytes") return Buffer.from(j.$bytes, "base64");
    return Object.fromEntries(keys.map((k) => [k, toValue(j[k])]));
  }
  return j;
}

function toJson(v) {
  if (v instanceof ArrayBuffer) v = Buffer.from(v);
  if (ArrayBuffer.isView(v)) return { $bytes: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64") };
  if (Array.isArray(v)) return v.map(toJson);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toJson(x)]));
  return v;
}

function same(what, got, want) {
  const g = JSON.stringify(toJson(got));
  const w = JSON.stringify(want);
  if (g !== w) throw new Error(`${what}: got ${g}, expected ${w}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class Client {
  constructor(step, reconnection) {
    const opts = {
      forceNew: true,
      reconnection,
      reconnectionDelay: 500,
      reconnectionDelayMax: 2000,
    };
    if (ca) opts.ca = ca;
    if (step.transports) opts.transports = step.transports;
    if (step.auth !== undefined) opts.auth = toValue(step.auth);
    this.seen = [];
    this.socket = io(url + (step.nsp === "/" ? "" : step.nsp), opts);
    for (const name of ["connect", "connect_error", "disconnect"]) {
      this.socket.on(name, (...args) => this.seen.push({ name, args }));
    }
    this.socket.onAny((name, ...args) => {
      let ack = null;
      if (typeof args[args.length - 1] === "function") ack = args.pop();
      this.seen.push({ name, args, ack });
    });
  }

  async next(name, within) {
    const deadline = Date.now() + within;
    for (;;) {
      const i = this.seen.findIndex((e) => e.name === name);
      if (i >= 0) return this.seen.splice(i, 1)[0];
      if (Date.now() >= deadline) return null;
      await sleep(5);
    }
  }

  async expect(name) {
    const e = await this.next(name, WAIT);
    if (!e) throw new Error(`no "${name}" event within ${WAIT} ms`);
    return e;
  }
}

let stdinLines = null;
function nextStdinLine() {
  if (!stdinLines) {
    stdinLines = [];
    const waiting = [];
    const rl = readline.createInterface({ input: process.stdin });
    rl.on("line", (l) => (waiting.length ? waiting.shift()(l) : stdinLines.push(l)));
    rl.on("close", () => waiting.forEach((w) => w(null)));
    stdinLines.waiting = waiting;
  }
  if (stdinLines.length) return Promise.resolve(stdinLines.shift());
  return new Promise((r) => stdinLines.waiting.push(r));
}

async function step(clients, st) {
  if (st.op === "connect" || st.op === "connect_refused") {
    const c = new Client(st, st.op === "connect");
    clients[st.client] = c;
    if (st.op === "connect") return void (await c.expect("connect"));
    const e = await c.expect("connect_error");
    const err = e.args[0] || {};
    const got = { message: err.message };
    if (st.error.data !== undefined) got.data = err.data;
    return same("connect_error", got, st.error);
  }
  if (st.op === "restart_server") {
    process.stdout.write("@@restart-server\n");
    const line = await nextStdinLine();
    if (line === null) throw new Error("no answer from the runner on stdin");
    return;
  }
  const c = clients[st.client];
  if (!c) throw new Error(`unknown client ${st.client}`);
  switch (st.op) {
    case "emit":
      return void c.socket.emit(st.event, ...toValue(st.args));
    case "emit_large":
      return void c.socket.emit(st.event, "x".repeat(st.bytes));
    case "expect": {
      const e = await c.expect(st.event);
      return same(st.event, e.args, st.args);
    }
    case "expect_none": {
      const e = await c.next(st.event, st.ms ?? 300);
      if (e) throw new Error(`unexpected "${st.event}" ${JSON.stringify(toJson(e.args))}`);
      return;
    }
    case "call": {
      // emit + callback rather than emitWithAck, which keeps the first argument only.
      const reply = await new Promise((resolve, reject) => {
        c.socket.timeout(WAIT).emit(st.event, ...toValue(st.args), (err, ...r) => {
          if (err) reject(new Error(`ack of "${st.event}": ${err.message}`));
          else resolve(r);
        });
      });
      return same(`ack of "${st.event}"`, reply, st.reply);
    }
    case "answer": {
      const e = await c.expect(st.event);
      same(st.event, e.args, st.args);
      if (!e.ack) throw new Error(`"${st.event}" did not ask for an ack`);
      return void e.ack(...toValue(st.reply));
    }
    case "expect_transport": {
      const deadline = Date.now() + WAIT;
      for (;;) {
        const now = c.socket.io.engine && c.socket.io.engine.transport && c.socket.io.engine.transport.name;
        if (now === st.transport) return;
        if (Date.now() >= deadline) throw new Error(`transport ${now}, expected ${st.transport}`);
        await sleep(10);
      }
    }
    case "disconnect":
      return void c.socket.disconnect();
    case "expect_disconnect": {
      const e = await c.expect("disconnect");
      if (!st.reasons.includes(e.args[0])) {
        throw new Error(`disconnect reason "${e.args[0]}", expected one of ${JSON.stringify(st.reasons)}`);
      }
      return;
    }
    case "expect_connect":
      return void (await c.expect("connect"));
    default:
      throw new Error(`unknown op ${st.op}`);
  }
}

async function scenario(steps) {
  const clients = {};
  try {
    for (const [i, st] of steps.entries()) {
      try {
        await step(clients, st);
      } catch (e) {
        throw new Error(`step ${i + 1} (${st.op}): ${e.message}`);
      }
    }
  } finally {
    for (const c of Object.values(clients)) c.socket.disconnect();
  }
}

(async () => {
  const all = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "scenarios.json"), "utf8"));
  let ok = true;
  let ran = 0;
  for (const [name, steps] of Object.entries(all)) {
    if (which !== "all" && which !== name) continue;
    ran++;
    try {
      await scenario(steps);
      console.log(`PASS ${name}`);
    } catch (e) {
      ok = false;
      console.log(`FAIL ${name}: ${e.message}`);
    }
  }
  if (!ran) {
    console.error(`no scenario named "${which}"`);
    ok = false;
  }
  process.exit(ok ? 0 : 1);
})();
