#!/usr/bin/env node
// An npm socket.io 4.8 node that a Redis emitter reaches, for core/tests/redis_emitter.rs and
// the bindings' emitter tests:
//   node tests/node/redis-emitter-node.js REDIS_URL [classic|streams]
// `classic` (the default) is @socket.io/redis-adapter's createAdapter (ioredis clients),
// `streams` is @socket.io/redis-streams-adapter 0.3's createAdapter.
// Prints `listening PORT` (a free port on 127.0.0.1) once its adapter is subscribed.
// Namespaces `/` and `/chat` both have:
//   join (room)      the socket joins `room`; ack (room)
//   rooms ()         ack with the socket's rooms, sorted
// and answer serverSideEmit `relay` (args) by emitting `relayed` (args) to their own sockets.
"use strict";

const { Server } = require("socket.io");
const { Redis } = require("ioredis");

const redisUrl = process.argv[2] || "redis://127.0.0.1:6379";
const format = process.argv[3] || "classic";

const redisOpts = { retryStrategy: (n) => Math.min(50 * n, 500), maxRetriesPerRequest: 1 };
const pubClient = new Redis(redisUrl, redisOpts);
pubClient.on("error", () => {});
process.on("unhandledRejection", (e) => console.error(`redis-emitter-node: ${e && e.message}`));

let adapter;
if (format === "streams") {
  adapter = require("@socket.io/redis-streams-adapter").createAdapter(pubClient);
} else {
  const subClient = new Redis(redisUrl, redisOpts);
  subClient.on("error", () => {});
  adapter = require("@socket.io/redis-adapter").createAdapter(pubClient, subClient);
}
const io = new Server({ adapter, pingInterval: 1000, pingTimeout: 2000 });

for (const name of ["/", "/chat"]) {
  const nsp = io.of(name);
  nsp.on("relay", (...args) => nsp.local.emit("relayed", ...args));
  nsp.on("connection", (socket) => {
    socket.on("join", (r, cb) => {
      socket.join(r);
      if (cb) cb(r);
    });
    socket.on("rooms", (cb) => cb([...socket.rooms].sort()));
  });
}

const httpServer = require("http").createServer();
io.attach(httpServer);
httpServer.listen(0, "127.0.0.1", async () => {
  for (;;) {
    try {
      if ((await io.of("/").adapter.serverCount()) >= 1 && (await io.of("/chat").adapter.serverCount()) >= 1) break;
    } catch (e) {
      // Redis not there yet.
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  console.log(`listening ${httpServer.address().port}`);
});
