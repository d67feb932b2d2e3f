#!/usr/bin/env node
// The chat demo in Node through polysio (the same behaviour as core/examples/chat.rs): serves
// examples/chat/index.html and the official socket.io browser client, with rooms (`join`),
// messages to the room (`chat`, sender included) and typing indicators (`typing`, sender
// excluded).
//
//   (cd node && npm install)          # builds the addon once
//   (cd tests/node && npm ci)         # the browser client (socket.io/client-dist)
//   node examples/chat/chat.js [PORT] # default 3000, then open the printed URL
"use strict";

const path = require("node:path");
const { Server } = require("../../node");

const port = Number(process.argv[2] || 3000);
const clientJs = path.join(__dirname, "..", "..", "tests", "node", "node_modules", "socket.io", "client-dist", "socket.io.min.js");

const io = new Server();
// The Rust core serves HTTP itself; pages are served beside Socket.IO with serveStatic.
io.serveStatic("/", path.join(__dirname, "index.html"));
io.serveStatic("/index.html", path.join(__dirname, "index.html"));
io.serveStatic("/client/socket.io.min.js", clientJs);

io.on("connection", (socket) => {
  socket.on("join", (room, ack) => {
    room = typeof room === "string" && room ? room : "lobby";
    for (const r of socket.rooms) if (r !== socket.id) socket.leave(r);
    socket.join(room);
    socket.data.room = room;
    if (typeof ack === "function") ack(room);
  });
  socket.on("chat", (...args) => {
    io.to(socket.data.room || "lobby").emit("chat", ...args.filter((a) => typeof a !== "function"));
  });
  socket.on("typing", (...args) => {
    socket.to(socket.data.room || "lobby").emit("typing", ...args.filter((a) => typeof a !== "function"));
  });
});

io.listen(port, { host: "127.0.0.1" });
console.log(`chat demo running: open http://127.0.0.1:${io.address().port}/`);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => io.close().then(() => process.exit(0)));
