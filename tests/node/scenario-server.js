#!/usr/bin/env node
// The scenario server of tests/SCENARIOS.md in Node, on either implementation of the same API
// (the handlers below are shared):
//   node tests/node/scenario-server.js polysio PORT    polysio's Node binding (tests/run-server node)
//   node tests/node/scenario-server.js socketio PORT   the npm socket.io package (tests/run-server socketio)
//   node tests/node/scenario-server.js polysio-express PORT          polysio attached to an Express
//        app's http.Server (GET /health -> "ok"), WebSockets taken over (tests/run-server node-express)
//   node tests/node/scenario-server.js polysio-express-stream PORT   the same with takeover: false
//        (WebSocket bytes cross Node's sockets; tests/run-server node-express-stream)
// Prints `listening PORT` (PORT 0 picks a free port), serves on 127.0.0.1 until killed.
// With POLYSIO_TEST_TLS_CERT and POLYSIO_TEST_TLS_KEY (PEM files) both set, serves https/wss:
// polysio through its own listener's `tls` option, socketio on https.createServer, the
// Express ones on an https.Server.
// Cluster mode (tests/SCENARIOS.md): with POLYSIO_TEST_REDIS=redis://... set, socketio joins that
// Redis through @socket.io/redis-adapter (POLYSIO_TEST_ADAPTER unset or `classic`, or `sharded`
// for its sharded adapter; another value exits 77), the polysio ones through the binding's
// createAdapter or createShardedAdapter, `/` also has the cluster events (cluster() below), and the port
// opens only once the adapter is subscribed.
"use strict";

const fs = require("node:fs");

const impl = process.argv[2];
const port = Number(process.argv[3] || 3000);
const opts = { pingInterval: 300, pingTimeout: 200, connectTimeout: 1000 };
const { POLYSIO_TEST_TLS_CERT: certFile, POLYSIO_TEST_TLS_KEY: keyFile } = process.env;
/** The certificate and key to serve with, or null for plain http. */
const tls = certFile && keyFile ? { cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) } : null;
/** An http.Server, or with TLS an https.Server, around `app`. */
function createServer(app) {
  return tls ? require("node:https").createServer(tls, app) : require("node:http").createServer(app);
}

function setup(nsp) {
  nsp.use((socket, next) => {
    const auth = socket.handshake.auth || {};
    if (auth.refuse !== undefined) {
      const err = new Error("refused");
      err.data = { reason: auth.refuse };
      return next(err);
    }
    next();
  });
  nsp.on("connection", (socket) => {
    socket.emit("auth", socket.handshake.auth);
    socket.on("message", (...args) => socket.emit("message-back", ...args));
    socket.on("message-with-ack", (...args) => {
      const ack = args.pop();
      if (typeof ack === "function") ack(...args);
    });
    socket.on("ask", (...args) => {
      socket.emit("question", ...args, (...reply) => socket.emit("answer", ...reply));
    });
    socket.on("join", (room, ack) => {
      socket.join(room);
      if (typeof ack === "function") ack(room);
    });
    socket.on("to-room", (room, ...args) => nsp.to(room).emit("room-message", ...args));
    socket.on("broadcast", (...args) => socket.broadcast.emit("broadcast", ...args));
    socket.on("disconnect-me", () => socket.disconnect());
  });
}

/** The cluster events of `/` (tests/SCENARIOS.md, "Cluster mode"), on server `io`. */
function cluster(io) {
  const nsp = io.of("/");
  const fail = (cb) => (e) => cb({ error: String(e && e.message) });
  nsp.on("relay", (...args) => nsp.local.emit("relayed", ...args));
  nsp.on("ping-node", (cb) => cb("pong"));
  nsp.on("connection", (socket) => {
    socket.on("fetch-sockets", (room, cb) => {
      nsp.in(room).fetchSockets().then((list) => cb(list.map((s) => s.id).sort()), fail(cb));
    });
    socket.on("sockets-join", (target, room, cb) => {
      nsp.in(target).socketsJoin(room);
      cb();
    });
    socket.on("disconnect-room", (room, cb) => {
      cb();
      nsp.in(room).disconnectSockets();
    });
    socket.on("server-side-emit", (...args) => {
      const cb = args.pop();
      nsp.serverSideEmit("relay", ...args);
      cb();
    });
    socket.on("server-side-emit-with-ack", (cb) => {
      nsp.serverSideEmitWithAck("ping-node").then((replies) => cb(replies.length), fail(cb));
    });
    socket.on("ask-all", (...args) => {
      const cb = args.pop();
      nsp
        .timeout(3000)
        .emitWithAck("question", ...args)
        .then((replies) => cb(replies.map((r) => String(r)).sort()), fail(cb));
    });
    socket.on("server-count", (cb) => {
      nsp.adapter.serverCount().then(cb, fail(cb));
    });
  });
}

/** Cluster mode's adapter for npm socket.io, or null without POLYSIO_TEST_REDIS. */
function redisAdapter(lang) {
  const url = process.env.POLYSIO_TEST_REDIS;
  if (!url) return null;
  const kind = process.env.POLYSIO_TEST_ADAPTER || "classic";
  if (kind !== "classic" && kind !== "sharded") {
    console.error(`adapter ${kind} not supported by ${lang} (POLYSIO_TEST_ADAPTER; known: classic, sharded)`);
    process.exit(77);
  }
  const { createAdapter, createShardedAdapter } = require("@socket.io/redis-adapter");
  const { Redis } = require("ioredis");
  const redisOpts = { retryStrategy: (n) => Math.min(50 * n, 500), maxRetriesPerRequest: 1 };
  const pub = new Redis(url, redisOpts);
  const sub = new Redis(url, redisOpts);
  // A Redis restart is part of the cluster checks: ioredis reconnects by itself; PUBLISH promises
  // rejected meanwhile must not end the process.
  pub.on("error", () => {});
  sub.on("error", () => {});
  process.on("unhandledRejection", (e) => console.error(`scenario-server: ${e && e.message}`));
  // sharded: SPUBLISH/SSUBSCRIBE (Redis 7), counted by PUBSUB SHARDNUMSUB.
  return kind === "sharded" ? createShardedAdapter(pub, sub) : createAdapter(pub, sub);
}

/** Cluster mode's adapter for polysio's Node binding (its own createAdapter), or null without POLYSIO_TEST_REDIS. */
function polysioAdapter(lang) {
  const url = process.env.POLYSIO_TEST_REDIS;
  if (!url) return null;
  const kind = process.env.POLYSIO_TEST_ADAPTER || "classic";
  if (kind !== "classic" && kind !== "sharded") {
    console.error(`adapter ${kind} not supported by ${lang} (POLYSIO_TEST_ADAPTER; known: classic, sharded)`);
    process.exit(77);
  }
  const polysio = require("../../node");
  return kind === "sharded" ? polysio.createShardedAdapter(url) : polysio.createAdapter(url);
}

/** Resolves once `io`'s adapter of `/` is counted by the cluster (NUMSUB); exits after 20 s. */
async function subscribed(io) {
  const deadline = Date.now() + 20000;
  for (;;) {
    if (Date.now() > deadline) {
      console.error(`scenario server: Redis not ready within 20 s (${process.env.POLYSIO_TEST_REDIS})`);
      process.exit(1);
    }
    try {
      if ((await io.of("/").adapter.serverCount()) >= 1) return;
    } catch (e) {
      // Redis not reachable yet.
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

if (impl === "polysio") {
  const { Server } = require("../../node");
  const adapter = polysioAdapter("node");
  const io = new Server({ ...opts, ...(tls ? { tls } : {}), ...(adapter ? { adapter } : {}) });
  setup(io.of("/"));
  setup(io.of("/custom"));
  if (adapter) cluster(io);
  (adapter ? subscribed(io) : Promise.resolve()).then(() => {
    io.listen(port, { host: "127.0.0.1" });
    console.log(`listening ${io.address().port}`);
  });
} else if (impl === "polysio-express" || impl === "polysio-express-stream") {
  const path = require("node:path");
  // Express is a devDependency of the Node binding (node/node_modules).
  const express = require(require.resolve("express", { paths: [path.join(__dirname, "..", "..", "node")] }));
  const { Server } = require("../../node");
  const app = express();
  app.get("/health", (req, res) => res.send("ok"));
  const httpServer = createServer(app);
  const adapter = polysioAdapter(impl.replace("polysio", "node"));
  const io = new Server(httpServer, { ...opts, takeover: impl === "polysio-express", ...(adapter ? { adapter } : {}) });
  setup(io.of("/"));
  setup(io.of("/custom"));
  if (adapter) cluster(io);
  (adapter ? subscribed(io) : Promise.resolve()).then(() =>
    httpServer.listen(port, "127.0.0.1", () => console.log(`listening ${httpServer.address().port}`)),
  );
} else if (impl === "socketio") {
  const { Server } = require("socket.io");
  const httpServer = createServer();
  const adapter = redisAdapter("socketio");
  const io = new Server(httpServer, adapter ? { ...opts, adapter } : opts);
  setup(io.of("/"));
  setup(io.of("/custom"));
  if (adapter) cluster(io);
  (adapter ? subscribed(io) : Promise.resolve()).then(() =>
    httpServer.listen(port, "127.0.0.1", () => console.log(`listening ${httpServer.address().port}`)),
  );
} else {
  console.error("usage: scenario-server.js polysio|polysio-express|polysio-express-stream|socketio PORT");
  process.exit(2);
}
