// The scenario server of tests/SCENARIOS.md on the npm `socket.io` package (the reference).
//   node scenario-server.js PORT
"use strict";

const http = require("http");
const { Server } = require("socket.io");

const port = Number(process.argv[2] || 3000);
const httpServer = http.createServer();
const io = new Server(httpServer, { pingInterval: 300, pingTimeout: 200, connectTimeout: 1000 });

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

setup(io.of("/"));
setup(io.of("/custom"));

httpServer.listen(port, "127.0.0.1", () => {
  console.log(`listening ${httpServer.address().port}`);
});
