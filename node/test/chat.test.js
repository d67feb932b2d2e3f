"use strict";
// examples/chat/chat.js: serves the page and the browser client, and chats by room.

const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const { io: connect } = require("socket.io-client");
const { once, sleep, startListening, kill, repo } = require("./helpers");

test("the chat demo serves its page and relays chat and typing within a room", async (t) => {
  const { child, port } = await startListening([process.execPath, path.join(repo, "examples", "chat", "chat.js"), "0"]);
  t.after(() => kill(child));
  const url = `http://127.0.0.1:${port}`;
  const page = await fetch(url + "/");
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type"), /text\/html/);
  assert.match(await page.text(), /polysio chat/);
  const js = await fetch(url + "/client/socket.io.min.js");
  assert.equal(js.status, 200);
  assert.match(js.headers.get("content-type"), /javascript/);
  assert.ok((await js.text()).length > 10000);

  const [ann, bob, cid] = [0, 1, 2].map(() => connect(url, { forceNew: true, reconnection: false }));
  t.after(() => [ann, bob, cid].forEach((c) => c.disconnect()));
  assert.equal(await ann.emitWithAck("join", "red"), "red");
  assert.equal(await bob.emitWithAck("join", "red"), "red");
  assert.equal(await cid.emitWithAck("join", "blue"), "blue");
  const seen = { ann: [], bob: [], cid: [] };
  for (const [name, c] of Object.entries({ ann, bob, cid })) {
    c.on("chat", (m) => seen[name].push(["chat", m.text]));
    c.on("typing", (who) => seen[name].push(["typing", who]));
  }
  ann.emit("typing", "ann");
  ann.emit("chat", { name: "ann", text: "hi red" });
  cid.emit("chat", { name: "cid", text: "hi blue" });
  await once(bob, "chat");
  await sleep(200);
  assert.deepEqual(seen.ann, [["chat", "hi red"]]);
  assert.deepEqual(seen.bob, [["typing", "ann"], ["chat", "hi red"]]);
  assert.deepEqual(seen.cid, [["chat", "hi blue"]]);
  // switching rooms leaves the old one
  assert.equal(await bob.emitWithAck("join", "blue"), "blue");
  ann.emit("chat", { name: "ann", text: "alone" });
  await once(ann, "chat");
  await sleep(100);
  assert.equal(seen.bob.length, 2);
});
