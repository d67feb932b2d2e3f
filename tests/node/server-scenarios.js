// socket.io-client (npm) side of the core server's integration tests (core/tests/server_node.rs).
// Usage: node server-scenarios.js URL SCENARIO [TRANSPORTS]
// Exits 0 when every assertion held; prints what differed otherwise.
const { io } = require("socket.io-client");
const assert = require("node:assert/strict");

const [url, scenario, transportsArg] = process.argv.slice(2);
const transports = (transportsArg || "polling,websocket").split(",");
const opts = (extra = {}) => ({ transports, reconnection: false, forceNew: true, ...extra });
const once = (s, ev) => new Promise((res) => s.once(ev, (...a) => res(a)));
const withTimeout = (p, ms, what) =>
  Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error("timeout: " + what)), ms))]);

const scenarios = {
  async basic() {
    const s = io(url, opts({ auth: { token: "abc" } }));
    const [auth] = await once(s, "auth");
    assert.deepEqual(auth, { token: "abc" });
    // text and binary nested anywhere, both directions
    const payload = [1, "two", { bin: Buffer.from([1, 2, 3]), list: [Buffer.from([4]), null, true] }];
    s.emit("message", ...payload);
    const back = await once(s, "message-back");
    assert.equal(back[0], 1);
    assert.equal(back[1], "two");
    assert.deepEqual([...back[2].bin], [1, 2, 3]);
    assert.deepEqual([...back[2].list[0]], [4]);
    assert.equal(back[2].list[1], null);
    // client → server ack
    const acked = await s.timeout(3000).emitWithAck("message-with-ack", "x", Buffer.from([9]));
    assert.equal(acked, "x");
    // server → client ack: server asks a question, we answer, it reports our answer back
    s.on("question", (a, cb) => cb({ answer: a * 2, bin: Buffer.from([7]) }));
    s.emit("ask-client", 21);
    const [answer] = await once(s, "answer");
    assert.equal(answer.answer, 42);
    assert.deepEqual([...answer.bin], [7]);
    // a second namespace over the same connection
    const c = s.io.socket("/custom", { auth: { ns: "custom" } }); // autoConnect
    const [auth2] = await once(c, "auth");
    assert.deepEqual(auth2, { ns: "custom" });
    const bad = s.io.socket("/nope");
    const [err] = await once(bad, "connect_error");
    assert.equal(err.message, "Invalid namespace");
    // disconnecting /custom keeps /
    c.disconnect();
    s.emit("message", "still");
    assert.deepEqual(await once(s, "message-back"), ["still"]);
    if (transports.length === 2) {
      if (s.io.engine.transport.name !== "websocket") await withTimeout(once(s.io.engine, "upgrade"), 5000, "upgrade");
      assert.equal(s.io.engine.transport.name, "websocket");
    } else {
      assert.equal(s.io.engine.transport.name, transports[0]);
    }
    s.disconnect();
  },

  async rooms() {
    const clients = [0, 1, 2].map(() => io(url, opts()));
    await Promise.all(clients.map((c) => once(c, "auth")));
    await clients[0].emitWithAck("join", "red");
    await clients[1].emitWithAck("join", "red");
    await clients[2].emitWithAck("join", "blue");
    const got = [[], [], []];
    clients.forEach((c, i) => c.on("news", (m) => got[i].push(m)));
    clients[2].emit("bcast", "red", "to-red");
    clients[2].emit("bcast", "blue", "to-blue");
    clients[0].emit("bcast-except", "red", "everyone-but-red");
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(got[0], ["to-red"]);
    assert.deepEqual(got[1], ["to-red"]);
    assert.deepEqual(got[2].sort(), ["everyone-but-red", "to-blue"]); // two senders: no order
    clients.forEach((c) => c.disconnect());
  },

  async middleware() {
    const refused = io(url + "/secret", opts({ auth: { token: "bad" } }));
    const [err] = await once(refused, "connect_error");
    assert.equal(err.message, "not authorized");
    assert.deepEqual(err.data, { code: 42 });
    const ok = io(url + "/secret", opts({ auth: { token: "ok" } }));
    await once(ok, "connect");
    assert.ok(ok.id);
    refused.disconnect();
    ok.disconnect();
  },

  async "server-disconnect"() {
    const s = io(url, opts());
    await once(s, "auth");
    s.emit("disconnect-me");
    const [reason] = await once(s, "disconnect");
    assert.equal(reason, "io server disconnect");
  },

  // Stops answering pings; the server must close with "ping timeout" (checked on the Rust side).
  async "no-pong"() {
    const s = io(url, opts());
    await once(s, "auth");
    s.io.engine.sendPacket = () => {};
    s.io.engine._sendPacket = () => {}; // engine.io-client 6.6 name
    const [reason] = await withTimeout(once(s, "disconnect"), 5000, "disconnect");
    console.log("client saw", reason);
  },

  // Connection state recovery: the transport drops, the server broadcasts meanwhile, the client
  // comes back with the same id, recovered, and gets the missed broadcast.
  async recovery() {
    const s = io(url, { transports, forceNew: true, reconnectionDelay: 300, reconnectionDelayMax: 300 });
    await once(s, "connect");
    const id = s.id;
    assert.equal(s.recovered, false);
    await s.emitWithAck("join", "green");
    const got = [];
    s.on("news", (m) => got.push(m));
    const dropped = once(s, "disconnect"); // may fire synchronously inside close()
    s.io.engine.close(); // drop the transport: the server sees "transport close"
    await dropped;
    await withTimeout(once(s, "connect"), 8000, "reconnect");
    assert.equal(s.recovered, true, "recovered");
    assert.equal(s.id, id, "same id");
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(got, ["missed-1", "missed-2"]);
    // rooms were restored too
    s.emit("bcast", "green", "after");
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(got, ["missed-1", "missed-2", "after"]);
    s.disconnect();
  },
};

(async () => {
  const fn = scenarios[scenario];
  if (!fn) throw new Error("unknown scenario " + scenario);
  await withTimeout(fn(), 15000, scenario);
  console.log("ok", scenario, transports.join(","));
  process.exit(0);
})().catch((e) => {
  console.error("FAILED", scenario, transports.join(","), e && e.stack ? e.stack : e);
  process.exit(1);
});
