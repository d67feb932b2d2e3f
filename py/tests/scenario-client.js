// The npm socket.io-client against a scenario server (`tests/run-server LANG PORT`): it connects
// with auth, gets `auth` back, has `message` echoed as `message-back` and `message-with-ack`
// acknowledged, over the given transports, and joins `/custom`.
// Usage: NODE_PATH=tests/node/node_modules node scenario-client.js URL [TRANSPORTS]
const { io } = require("socket.io-client");
const assert = require("node:assert/strict");

const [url, transportsArg] = process.argv.slice(2);
const transports = (transportsArg || "polling,websocket").split(",");
const once = (s, ev) => new Promise((res) => s.once(ev, (...a) => res(a)));

async function main() {
  const s = io(url, { transports, reconnection: false, forceNew: true, auth: { token: "abc" } });
  const [auth] = await once(s, "auth");
  assert.deepEqual(auth, { token: "abc" });
  s.emit("message", 1, "two", { bin: Buffer.from([1, 2, 3]), list: [Buffer.from([4]), null, true] });
  const back = await once(s, "message-back");
  assert.equal(back[0], 1);
  assert.equal(back[1], "two");
  assert.deepEqual([...back[2].bin], [1, 2, 3]);
  assert.deepEqual([...back[2].list[0]], [4]);
  assert.deepEqual(back[2].list.slice(1), [null, true]);
  const acked = await s.timeout(5000).emitWithAck("message-with-ack", "x", Buffer.from([9]));
  assert.equal(acked, "x");
  const custom = s.io.socket("/custom", { auth: { ns: "custom" } });
  const [auth2] = await once(custom, "auth");
  assert.deepEqual(auth2, { ns: "custom" });
  custom.disconnect();
  s.disconnect();
}

Promise.race([main(), new Promise((_, rej) => setTimeout(() => rej(new Error("timeout")), 15000))])
  .then(() => {
    console.log("ok", url, transports.join(","));
    process.exit(0);
  })
  .catch((e) => {
    console.error("FAILED", url, transports.join(","), e && e.stack ? e.stack : e);
    process.exit(1);
  });
