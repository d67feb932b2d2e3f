#!/usr/bin/env node
// The cluster checks of tests/SCENARIOS.md ("Cluster mode"), with clients on two scenario servers
// of one Redis cluster (run by tests/cluster):
//   node tests/node/cluster-client.js MODULE URL_A URL_B [CHECK,...|all]
//   node tests/node/cluster-client.js --list      prints the checks' names, one a line
// MODULE is the client package: `socket.io-client` (npm) or a path to polysio's client module
// (node/client.js), which has the same `io(url, opts)` API.
// Connects a1, a2 to node A and b1, b2 to node B (namespace `/`, WebSocket), each answering
// `question` with its own name, then runs every check from either node. Prints `PASS name` /
// `FAIL name: what differed` per check; exits 0 only if all passed. The Redis restart check
// prints `@@stop-redis` and `@@start-redis`, each on its own line, and waits for a line on stdin
// after each (the runner stops or starts redis-server on the same port, then answers).
"use strict";

const readline = require("node:readline");
const [moduleName, urlA, urlB, only = "all"] = process.argv.slice(2);
const listing = moduleName === "--list";
if (!listing && (!urlA || !urlB)) {
  console.error("usage: cluster-client.js MODULE URL_A URL_B [CHECK,...|all]");
  process.exit(2);
}
const { io } = listing ? {} : require(moduleName);
const WAIT = 10000;
const URLS = { a: urlA, b: urlB };
const other = (n) => (n === "a" ? "b" : "a");

const stdin = readline.createInterface({ input: process.stdin });
const lines = [];
let lineWaiter = null;
stdin.on("line", (l) => (lineWaiter ? (lineWaiter(l), (lineWaiter = null)) : lines.push(l)));
/** Prints `@@what` and resolves with the runner's answer line. */
function askRunner(what) {
  console.log(`@@${what}`);
  return new Promise((resolve) => (lines.length ? resolve(lines.shift()) : (lineWaiter = resolve)));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const same = (x, y) => JSON.stringify(x) === JSON.stringify(y);

/** One connection to `/` of a node, recording every event it gets. */
class Client {
  constructor(name, node) {
    this.name = name;
    this.node = node;
    this.events = [];
    this.socket = io(URLS[node], { transports: ["websocket"], forceNew: true, reconnection: false });
    this.socket.onAny((event, ...args) => this.events.push({ event, args }));
    this.socket.on("question", (...args) => {
      const cb = args.pop();
      if (typeof cb === "function") cb(name);
    });
    this.socket.on("disconnect", (reason) => this.events.push({ event: "disconnect", args: [reason] }));
  }
  connected() {
    return new Promise((resolve, reject) => {
      if (this.socket.connected) return resolve();
      const t = setTimeout(() => reject(new Error(`${this.name}: no connect in ${WAIT} ms`)), WAIT);
      this.socket.once("connect", () => (clearTimeout(t), resolve()));
      this.socket.once("connect_error", (e) => (clearTimeout(t), reject(new Error(`${this.name}: ${e.message}`))));
    });
  }
  get id() {
    return this.socket.id;
  }
  /** Emits with an ack; resolves with the ack's arguments (an array). */
  call(event, ...args) {
    return new Promise((resolve, reject) => {
      this.socket.timeout(WAIT).emit(event, ...args, (err, ...reply) => {
        if (err) reject(new Error(`${this.name}: no ack to ${event} in ${WAIT} ms`));
        else resolve(reply);
      });
    });
  }
  emit(event, ...args) {
    this.socket.emit(event, ...args);
  }
  has(event, args) {
    return this.events.some((e) => e.event === event && same(e.args, args));
  }
  /** Waits for `event` with exactly `args`. */
  async expect(event, args, ms = WAIT) {
    const deadline = Date.now() + ms;
    while (!this.has(event, args)) {
      if (Date.now() > deadline) {
        const got = this.events.filter((e) => e.event === event).map((e) => JSON.stringify(e.args));
        // What else it saw, for a failure that does not reproduce: connected or not, the last events.
        const last = this.events.slice(-4).map((e) => e.event).join(",");
        throw new Error(
          `${this.name} (node ${this.node}): no ${event} ${JSON.stringify(args)} in ${ms} ms (got: ${got.join(" ") || "none"}; ` +
            `connected: ${this.socket.connected}, ${this.events.length} events, last: ${last || "none"})`,
        );
      }
      await sleep(10);
    }
  }
  /** Fails if `event` with `args` arrives within `ms`. */
  async expectNone(event, args, ms = 300) {
    await sleep(ms);
    if (this.has(event, args)) throw new Error(`${this.name} (node ${this.node}): unexpected ${event} ${JSON.stringify(args)}`);
  }
  close() {
    this.socket.disconnect();
  }
}

function expectEqual(what, got, want) {
  if (!same(got, want)) throw new Error(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

/** Calls `event` until its ack equals `want` (operations across nodes are not acknowledged). */
async function callUntil(client, want, event, ...args) {
  const deadline = Date.now() + WAIT;
  let got;
  for (;;) {
    got = await client.call(event, ...args);
    if (same(got, want) || Date.now() > deadline) break;
    await sleep(50);
  }
  expectEqual(`${client.name} ${event}`, got, want);
}

let seq = 0;
const marker = (what) => `${what}-${process.pid}-${++seq}`;

// The clients: two on each node.
const C = {};
async function connectAll() {
  for (const n of ["a1", "a2", "b1", "b2"]) C[n] = new Client(n, n[0]);
  await Promise.all(Object.values(C).map((c) => c.connected()));
}

/** The checks, each asked from node `from` ("a" or "b"); `x` = the asking node, `y` = the other. */
function checks(from) {
  const to = other(from);
  const x1 = () => C[`${from}1`];
  const x2 = () => C[`${from}2`];
  const y1 = () => C[`${to}1`];
  const y2 = () => C[`${to}2`];
  return {
    [`server-count from ${from}`]: async () => {
      expectEqual("server-count", await x1().call("server-count"), [2]);
    },
    [`broadcast from ${from}`]: async () => {
      const m = marker("bc");
      const args = [m, { n: 1, bin: Buffer.from([0, 1, 255]) }, [Buffer.from("two")]];
      x1().emit("broadcast", ...args);
      await Promise.all([x2(), y1(), y2()].map((c) => c.expect("broadcast", args)));
      await x1().expectNone("broadcast", args);
    },
    [`to-room from ${from}`]: async () => {
      const room = marker("room");
      expectEqual("join", await x2().call("join", room), [room]);
      expectEqual("join", await y2().call("join", room), [room]);
      const m = marker("rm");
      x1().emit("to-room", room, m);
      await Promise.all([x2(), y2()].map((c) => c.expect("room-message", [m])));
      await Promise.all([x1(), y1()].map((c) => c.expectNone("room-message", [m])));
    },
    [`fetch-sockets from ${from}`]: async () => {
      const room = marker("fs");
      await x2().call("join", room);
      await y1().call("join", room);
      await callUntil(x1(), [[x2().id, y1().id].sort()], "fetch-sockets", room);
      expectEqual("fetch-sockets of an empty room", await x1().call("fetch-sockets", marker("empty")), [[]]);
    },
    [`sockets-join from ${from}`]: async () => {
      const src = marker("sj-src");
      const dst = marker("sj-dst");
      await x2().call("join", src);
      await y2().call("join", src);
      expectEqual("sockets-join", await x1().call("sockets-join", src, dst), []);
      await callUntil(x1(), [[x2().id, y2().id].sort()], "fetch-sockets", dst);
      const m = marker("sj");
      y1().emit("to-room", dst, m);
      await Promise.all([x2(), y2()].map((c) => c.expect("room-message", [m])));
      await Promise.all([x1(), y1()].map((c) => c.expectNone("room-message", [m])));
    },
    [`disconnect-room from ${from}`]: async () => {
      const room = marker("dr");
      const gone = [new Client(`${from}3`, from), new Client(`${to}3`, to)];
      try {
        await Promise.all(gone.map((c) => c.connected()));
        for (const c of gone) await c.call("join", room);
        await callUntil(x1(), [gone.map((c) => c.id).sort()], "fetch-sockets", room);
        expectEqual("disconnect-room", await x1().call("disconnect-room", room), []);
        await Promise.all(gone.map((c) => c.expect("disconnect", ["io server disconnect"])));
        for (const c of Object.values(C)) if (!c.socket.connected) throw new Error(`${c.name} was disconnected too`);
      } finally {
        gone.forEach((c) => c.close());
      }
    },
    [`server-side-emit from ${from}`]: async () => {
      const m = marker("sse");
      expectEqual("server-side-emit", await x1().call("server-side-emit", m, 2), []);
      await Promise.all([y1(), y2()].map((c) => c.expect("relayed", [m, 2])));
      // serverSideEmit reaches the other nodes only.
      await Promise.all([x1(), x2()].map((c) => c.expectNone("relayed", [m, 2])));
    },
    [`server-side-emit-with-ack from ${from}`]: async () => {
      expectEqual("server-side-emit-with-ack", await x1().call("server-side-emit-with-ack"), [1]);
    },
    [`ask-all from ${from}`]: async () => {
      // Sockets of disconnect-room may still be leaving their node: wait for the four.
      await callUntil(x1(), [["a1", "a2", "b1", "b2"]], "ask-all", marker("q"));
    },
  };
}

/** Redis stops and starts again: each node serves its own clients meanwhile, then the cluster
 * works again (messages published while Redis is away are lost, as with Node's adapter). */
async function redisRestart() {
  if ((await askRunner("stop-redis")) !== "stopped") throw new Error("the runner could not stop redis-server");
  const m = marker("down");
  C.a1.emit("message", m);
  await C.a1.expect("message-back", [m]);
  C.b1.emit("broadcast", m);
  await C.b2.expect("broadcast", [m]);
  // A request across nodes ends with an error (a timeout), never hangs.
  await Promise.all(
    [C.a1, C.b1].map(async (c) => {
      const t0 = Date.now();
      const [got] = await c.call("fetch-sockets", m);
      if (!got || typeof got.error !== "string")
        throw new Error(`${c.name} fetch-sockets with Redis down: got ${JSON.stringify(got)}, want {"error": ...}`);
      console.error(`# ${c.name} (node ${c.node}) fetch-sockets, Redis down: ${got.error} (${Date.now() - t0} ms)`);
    }),
  );
  if ((await askRunner("start-redis")) !== "started") throw new Error("the runner could not start redis-server");
  // Resubscribed: a broadcast from A reaches B again (retried until it does).
  const deadline = Date.now() + 20000;
  for (;;) {
    const n = marker("up");
    C.a1.emit("broadcast", n);
    try {
      await C.b1.expect("broadcast", [n], 500);
      break;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`no broadcast across nodes within 20 s of the restart: ${e.message}`);
    }
  }
  await callUntil(C.b1, [2], "server-count");
  for (const from of ["a", "b"]) {
    for (const name of [`fetch-sockets from ${from}`, `server-side-emit-with-ack from ${from}`, `server-side-emit from ${from}`]) {
      await checks(from)[name]();
    }
  }
}

async function main() {
  const all = { ...checks("a"), ...checks("b"), "redis-restart": redisRestart };
  if (listing) {
    console.log(Object.keys(all).join("\n"));
    process.exit(0);
  }
  const wanted = only === "all" ? Object.keys(all) : only.split(",");
  let failed = 0;
  try {
    await connectAll();
  } catch (e) {
    for (const name of wanted) console.log(`FAIL ${name}: connecting: ${e.message}`);
    process.exit(1);
  }
  for (const name of wanted) {
    const check = all[name];
    try {
      if (!check) throw new Error("unknown check");
      await check();
      console.log(`PASS ${name}`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${name}: ${e.message}`);
    }
  }
  Object.values(C).forEach((c) => c.close());
  stdin.close();
  process.exit(failed ? 1 : 0);
}

main();
