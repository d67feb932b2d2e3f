#!/usr/bin/env node
// The reference scenario server of the cross-language tests in Node, on either implementation
// of the same API — the handlers below are shared:
//   node tests/node/scenario-server.js polysio PORT    polysio's Node binding (tests/run-server node)
//   node tests/node/scenario-server.js socketio PORT   the npm socket.io package (tests/run-server socketio)
// Behaviour of core/examples/test_server.rs: pingInterval 300 ms, pingTimeout 200 ms,
// connectTimeout 1000 ms; namespaces `/` and `/custom`; on connect it emits `auth` with the
// handshake's auth; on `/`, `message` is answered with `message-back` (same arguments) and
// `message-with-ack` is acked with the same arguments. Prints `listening PORT` (PORT 0 picks a
// free port), serves on 127.0.0.1 until killed.
"use strict";

const impl = process.argv[2];
const port = Number(process.argv[3] || 3000);
const opts = { pingInterval: 300, pingTimeout: 200, connectTimeout: 1000 };

function setup(io) {
  io.on("connection", (socket) => {
    socket.emit("auth", socket.handshake.auth);
    socket.on("message", (...args) => socket.emit("message-back", ...args));
    socket.on("message-with-ack", (...args) => {
      const ack = args.pop();
      if (typeof ack === "function") ack(...args);
    });
  });
  io.of("/custom").on("connection", (socket) => {
    socket.emit("auth", socket.handshake.auth);
  });
}

let close;
if (impl === "polysio") {
  const { Server } = require("../../node");
  const io = new Server(opts);
  setup(io);
  io.listen(port, { host: "127.0.0.1" });
  console.log(`listening ${io.address().port}`);
  close = () => io.close();
} else if (impl === "socketio") {
  const http = require("node:http");
  const { Server } = require("socket.io");
  const httpServer = http.createServer();
  const io = new Server(httpServer, opts);
  setup(io);
  httpServer.listen(port, "127.0.0.1", () => console.log(`listening ${httpServer.address().port}`));
  close = () => new Promise((resolve) => io.close(resolve));
} else {
  console.error("usage: scenario-server.js polysio|socketio PORT");
  process.exit(2);
}
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => close().then(() => process.exit(0)));
