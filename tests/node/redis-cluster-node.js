#!/usr/bin/env node
// An npm socket.io 4.8 node of a Redis cluster, with `@socket.io/redis-adapter` (ioredis
// clients), for the cluster tests (core/tests/redis_classic.rs, core/tests/redis_sharded.rs):
//   node tests/node/redis-cluster-node.js PORT REDIS_URL [classic|sharded]
// FORMAT `classic` (the default) is `createAdapter`, `sharded` is `createShardedAdapter` (its
// default subscription mode, "dynamic").
// Prints `listening PORT` (PORT 0 picks a free port) once its adapter is subscribed, serves on
// 127.0.0.1 until killed. Namespace `/` has the cluster events of issue 17 (each with an ack):
//   join (room)                   the socket joins `room`; ack (room)
//   emit-to (room|null, ev, ...)  io.to(room).emit(ev, ...) (every socket when room is null); ack ()
//   emit-except (room, ev, ...)   io.except(room).emit(ev, ...); ack ()
//   fetch-sockets (room|null)     ack with the ids of the sockets in `room` on every node, sorted
//   fetch-details (room|null)     ack with [{id, rooms (sorted), data, address}] of every node, by id
//   sockets-join (target, room)   every socket in `target` on every node joins `room`; ack ()
//   disconnect-room (room)        ack (), then every socket in `room` on every node is disconnected
//   server-side-emit (...args)    serverSideEmit("relay", ...args); ack ()
//   server-side-emit-with-ack     serverSideEmitWithAck("ping-node"); ack with the replies, sorted
//   ask-all (...args)             emit `question` (args) with a 3 s timeout to every socket of every
//                                 node; ack with the first argument of every reply, as strings, sorted
//   server-count                  ack with the number of nodes
//   all-rooms                     ack with every room of every node (socket ids included), sorted
//   set-data (value)              socket.data = value; ack ()
// and every node answers serverSideEmit `relay` (args) by emitting `relayed` (args) to its own
// sockets, `ping-node` with "pong".
"use strict";

const { Server } = require("socket.io");
const { createAdapter, createShardedAdapter } = require("@socket.io/redis-adapter");
const { Redis } = require("ioredis");

const port = Number(process.argv[2] || 0);
const redisUrl = process.argv[3] || "redis://127.0.0.1:6379";
const format = process.argv[4] || "classic";

const redisOpts = { retryStrategy: (n) => Math.min(50 * n, 500), maxRetriesPerRequest: 1 };
const pubClient = new Redis(redisUrl, redisOpts);
const subClient = new Redis(redisUrl, redisOpts);
// Outages are part of the tests: ioredis reconnects by itself.
pubClient.on("error", () => {});
subClient.on("error", () => {});
// While Redis is away, the adapter's unawaited PUBLISH promises reject (maxRetriesPerRequest):
// Node >= 15 would exit on them. A real deployment needs the same guard.
process.on("unhandledRejection", (e) => console.error(`redis-cluster-node: ${e && e.message}`));

const adapter = (format === "sharded" ? createShardedAdapter : createAdapter)(pubClient, subClient);
const io = new Server({ adapter, pingInterval: 1000, pingTimeout: 2000 });
const ack = (args) => (typeof args[args.length - 1] === "function" ? args.pop() : () => {});
const room = (r) => (r === null || r === undefined ? io : io.in(r));

io.on("relay", (...args) => io.local.emit("relayed", ...args));
io.on("ping-node", (cb) => cb("pong"));

io.on("connection", (socket) => {
  socket.on("join", (r, cb) => {
    socket.join(r);
    if (cb) cb(r);
  });
  socket.on("emit-to", (...args) => {
    const cb = ack(args);
    const [r, ev, ...rest] = args;
    (r === null ? io : io.to(r)).emit(ev, ...rest);
    cb();
  });
  socket.on("emit-except", (...args) => {
    const cb = ack(args);
    const [r, ev, ...rest] = args;
    io.except(r).emit(ev, ...rest);
    cb();
  });
  socket.on("fetch-sockets", async (r, cb) => {
    try {
      const sockets = await room(r).fetchSockets();
      cb(sockets.map((s) => s.id).sort());
    } catch (e) {
      cb({ error: String(e.message) });
    }
  });
  socket.on("fetch-details", async (r, cb) => {
    try {
      const sockets = await room(r).fetchSockets();
      const out = sockets.map((s) => ({
        id: s.id,
        rooms: [...s.rooms].sort(),
        data: s.data,
        address: s.handshake && s.handshake.address,
      }));
      out.sort((a, b) => (a.id < b.id ? -1 : 1));
      cb(out);
    } catch (e) {
      cb({ error: String(e.message) });
    }
  });
  socket.on("sockets-join", (target, r, cb) => {
    io.in(target).socketsJoin(r);
    cb();
  });
  socket.on("disconnect-room", (r, cb) => {
    cb();
    io.in(r).disconnectSockets();
  });
  socket.on("server-side-emit", (...args) => {
    const cb = ack(args);
    io.serverSideEmit("relay", ...args);
    cb();
  });
  socket.on("server-side-emit-with-ack", async (cb) => {
    try {
      const replies = await io.serverSideEmitWithAck("ping-node");
      cb(replies.map(String).sort());
    } catch (e) {
      cb({ error: String(e.message) });
    }
  });
  socket.on("ask-all", async (...args) => {
    const cb = ack(args);
    try {
      const replies = await io.timeout(3000).emitWithAck("question", ...args);
      cb(replies.map(String).sort());
    } catch (e) {
      cb({ error: String(e.message) });
    }
  });
  socket.on("server-count", async (cb) => {
    try {
      cb(await io.of("/").adapter.serverCount());
    } catch (e) {
      cb({ error: String(e.message) });
    }
  });
  socket.on("all-rooms", async (cb) => {
    try {
      cb([...(await io.of("/").adapter.allRooms())].map(String).sort());
    } catch (e) {
      cb({ error: String(e.message) });
    }
  });
  socket.on("set-data", (v, cb) => {
    socket.data = v;
    cb();
  });
});

const httpServer = require("http").createServer();
io.attach(httpServer);
httpServer.listen(port, "127.0.0.1", async () => {
  // Announce only once this node is subscribed (counted by NUMSUB).
  for (;;) {
    try {
      if ((await io.of("/").adapter.serverCount()) >= 1) break;
    } catch (e) {
      // Redis not there yet.
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  console.log(`listening ${httpServer.address().port}`);
});
