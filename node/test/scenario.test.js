"use strict";
// The scenario servers of the cross-language matrix started the way the matrix starts them
// (`tests/run-server LANG PORT`): polysio's Node binding (`node`) and the npm socket.io package
// (`socketio`), each checked with the npm socket.io-client.

const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const { io: connect } = require("socket.io-client");
const { once, sleep, startListening, kill, repo } = require("./helpers");

for (const lang of ["node", "socketio"]) {
  test(`tests/run-server ${lang}: auth, echo, ack, /custom, ping settings, connect timeout`, async (t) => {
    const { child, port } = await startListening(["bash", path.join(repo, "tests", "run-server"), lang, "0"]);
    t.after(() => kill(child));
    const url = `http://127.0.0.1:${port}`;
    const r = await fetch(`${url}/socket.io/?EIO=4&transport=polling`);
    const open = JSON.parse((await r.text()).slice(1));
    assert.equal(open.pingInterval, 300);
    assert.equal(open.pingTimeout, 200);

    const c = connect(url, { forceNew: true, reconnection: false, auth: { token: "abc" } });
    t.after(() => c.disconnect());
    assert.deepEqual(await once(c, "auth"), [{ token: "abc" }]);
    c.emit("message", 1, "two", { bin: Buffer.from([1, 2, 3]) });
    const back = await once(c, "message-back");
    assert.equal(back[0], 1);
    assert.equal(back[1], "two");
    assert.deepEqual([...back[2].bin], [1, 2, 3]);
    const acked = await new Promise((resolve) => c.emit("message-with-ack", "x", Buffer.from([9]), (...a) => resolve(a)));
    assert.equal(acked[0], "x");
    assert.deepEqual([...acked[1]], [9]);
    const custom = c.io.socket("/custom", { auth: { ns: "custom" } });
    assert.deepEqual(await once(custom, "auth"), [{ ns: "custom" }]);
    // The client stays connected across several heartbeats (ping 300 ms, timeout 200 ms).
    await sleep(1000);
    assert.equal(c.connected, true);

    // A session that never connects a namespace is closed after connectTimeout (1000 ms).
    await sleep(1500);
    const gone = await fetch(`${url}/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent(open.sid)}`);
    assert.equal(gone.status, 400);
    assert.equal((await gone.json()).code, 1);
  });
}
