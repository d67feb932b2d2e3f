"use strict";
// polysio's client against polysio's server: both ends through the addon, every value kind.

const test = require("node:test");
const assert = require("node:assert/strict");
const { Server } = require("..");
const { io } = require("../client");
const { once, listen } = require("./helpers");

for (const transports of [["polling"], ["websocket"], ["polling", "websocket"]]) {
  test(`values convert directly both ways (${transports.join("+")})`, async (t) => {
    const { io: srv, url } = listen(Server);
    t.after(() => srv.close());
    srv.on("connection", (s) => s.on("echo", (...args) => args.pop()(...args)));
    const c = io(url, { forceNew: true, reconnection: false, transports });
    t.after(() => c.disconnect());
    await once(c, "connect");
    const sent = [
      0,
      -1,
      2 ** 53 - 1,
      1.5,
      -0.25,
      1e300,
      "",
      "héllo ✓ 𝄞",
      true,
      false,
      null,
      [],
      {},
      { nested: { list: [1, [2, [3, { deep: Buffer.from("deep") }]]] } },
      Buffer.from([0, 255]),
      new Uint8Array([1, 2]),
      new Int16Array([-2]),
      new Float64Array([0.5]),
      new Uint8Array([9, 8, 7]).subarray(1),
      new ArrayBuffer(3),
      new DataView(new Uint8Array([5, 6, 7]).buffer, 1, 2),
      new Date(0),
      { skipped: undefined, fn() {}, kept: 1 },
      [undefined, () => 1, Symbol("s")],
      NaN,
      Infinity,
    ];
    const back = await c.timeout(10000).emitWithAck("echo", ...sent);
    const bytes = (b) => [...b];
    assert.equal(back, 0, "emitWithAck resolves with the first argument");
    const all = await new Promise((r) => c.emit("echo", ...sent, (...a) => r(a)));
    assert.deepEqual(all.slice(0, 14), [0, -1, 2 ** 53 - 1, 1.5, -0.25, 1e300, "", "héllo ✓ 𝄞", true, false, null, [], {}, all[13]]);
    assert.deepEqual(bytes(all[13].nested.list[1][1][1].deep), bytes(Buffer.from("deep")));
    assert.deepEqual(bytes(all[14]), [0, 255]);
    assert.deepEqual(bytes(all[15]), [1, 2]);
    assert.deepEqual(bytes(all[16]), bytes(Buffer.from(new Int16Array([-2]).buffer)));
    assert.deepEqual(bytes(all[17]), bytes(Buffer.from(new Float64Array([0.5]).buffer)));
    assert.deepEqual(bytes(all[18]), [8, 7]);
    assert.deepEqual(bytes(all[19]), [0, 0, 0]);
    assert.deepEqual(bytes(all[20]), [6, 7]);
    assert.ok(all.slice(14, 21).every((b) => Buffer.isBuffer(b)), "binary comes back as Buffer");
    assert.equal(all[21], "1970-01-01T00:00:00.000Z");
    assert.deepEqual(all[22], { kept: 1 });
    assert.deepEqual(all[23], [null, null, null]);
    assert.equal(all[24], null);
    assert.equal(all[25], null);
  });
}

test("rooms and namespaces between polysio peers; the server asks, the client answers", async (t) => {
  const { io: srv, url } = listen(Server);
  t.after(() => srv.close());
  srv.of("/chat").on("connection", (s) => {
    s.on("join", (room, cb) => {
      s.join(room);
      cb(room);
    });
    s.on("say", (room, text) => s.to(room).emit("said", text));
  });
  const a = io(url + "/chat", { forceNew: true, reconnection: false });
  const b = io(url + "/chat", { forceNew: true, reconnection: false });
  t.after(() => [a, b].forEach((c) => c.disconnect()));
  assert.equal(await a.emitWithAck("join", "r"), "r");
  assert.equal(await b.emitWithAck("join", "r"), "r");
  const heard = once(b, "said");
  a.emit("say", "r", "hi");
  assert.deepEqual(await heard, ["hi"]);
  b.on("q", (x, cb) => cb(x + 1));
  const [sock] = await srv.of("/chat").in(b.id).fetchSockets();
  assert.equal(await sock.timeout(5000).emitWithAck("q", 1), 2);
});
