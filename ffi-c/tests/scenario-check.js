// The npm socket.io-client against a scenario server in its default mode (`tests/run-server
// LANG PORT`, the behaviour of core/examples/test_server.rs): gets `auth`, echoes, acks, and
// the `/custom` namespace. Usage: node scenario-check.js URL [TRANSPORTS]
"use strict";
const path = require("node:path");
const assert = require("node:assert/strict");
const { io } = require(path.join(__dirname, "../../tests/node/node_modules/socket.io-client"));

const [url, transportsArg] = process.argv.slice(2);
const transports = (transportsArg || "polling,websocket").split(",");
const once = (s, ev) => new Promise((res) => s.once(ev, (...a) => res(a)));
let step = "connect";
let lastDisconnect = null;

async function main() {
  const s = io(url, { transports, reconnection: false, forceNew: true, auth: { token: "abc" } });
  s.on("disconnect", (reason) => (lastDisconnect = reason));
  assert.deepEqual(await once(s, "auth"), [{ token: "abc" }]);
  step = "message";
  const payload = [1, "two", { bin: Buffer.from([1, 2, 3]), list: [Buffer.from([4]), null, true] }];
  s.emit("message", ...payload);
  const back = await once(s, "message-back");
  assert.equal(back[0], 1);
  assert.equal(back[1], "two");
  assert.deepEqual([...back[2].bin], [1, 2, 3]);
  assert.deepEqual([...back[2].list[0]], [4]);
  assert.deepEqual(back[2].list.slice(1), [null, true]);
  step = "message-with-ack";
  const acked = await s.timeout(5000).emitWithAck("message-with-ack", "x", Buffer.from([9]));
  assert.equal(acked, "x"); // the first of the acked arguments
  step = "/custom";
  const c = s.io.socket("/custom", { auth: { ns: "custom" } });
  assert.deepEqual(await once(c, "auth"), [{ ns: "custom" }]);
  c.disconnect();
  s.disconnect();
}

const timer = setTimeout(() => {
  console.error("FAILED", transports.join(","), "timeout at step", step, "disconnect:", lastDisconnect);
  process.exit(1);
}, 15000);
main().then(
  () => {
    clearTimeout(timer);
    console.log("ok scenario-check", transports.join(","));
    process.exit(0);
  },
  (e) => {
    console.error("FAILED", transports.join(","), e && e.stack ? e.stack : e);
    process.exit(1);
  },
);
