#!/usr/bin/env node
// The reference scenario server of the cross-language tests, written with the npm `socket.io`
// package (`tests/run-server socketio PORT`; the same behaviour as core/examples/test_server.rs):
// pingInterval 300 ms, pingTimeout 200 ms, connectTimeout 1000 ms; namespaces `/` and `/custom`;
// on connect it emits `auth` with the handshake's auth; on `/`, `message` is answered with
// `message-back` (same arguments) and `message-with-ack` is acked with the same arguments.
// Prints `listening PORT` (PORT 0 picks a free port), serves on 127.0.0.1 until killed.
"use strict";

const http = require("node:http");
const { Server } = require("socket.io");

const port = Number(process.argv[2] || 3000);
const httpServer = http.createServer();
const io = new Server(httpServer, { pingInterval: 300, pingTimeout: 200, connectTimeout: 1000 });

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

httpServer.listen(port, "127.0.0.1", () => {
  console.log(`listening ${httpServer.address().port}`);
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => io.close(() => process.exit(0)));
