// Reference Socket.IO server (npm `socket.io`) used by the Rust client's integration tests.
//
// Usage: node ref-server.js '{"port":0,"pingInterval":25000,"pingTimeout":20000,
//                             "recovery":false,"path":"/socket.io/","transports":[...],
//                             "tls":{"cert":PATH,"key":PATH,"ca":PATH,"requestCert":false}}'
// With "tls", an https.createServer (with "requestCert", clients must show a certificate
// signed by "ca").
// Prints `listening PORT` once ready. Binds 127.0.0.1 only. Exits when stdin closes.
"use strict";

const fs = require("fs");
const http = require("http");
const https = require("https");
const { Server } = require("socket.io");

const opts = JSON.parse(process.argv[2] || "{}");
const tls = opts.tls;
const httpServer = tls
  ? https.createServer({
      cert: fs.readFileSync(tls.cert),
      key: fs.readFileSync(tls.key),
      ...(tls.ca ? { ca: fs.readFileSync(tls.ca) } : {}),
      requestCert: !!tls.requestCert,
      rejectUnauthorized: !!tls.requestCert,
    })
  : http.createServer();
const serverOpts = {
  pingInterval: opts.pingInterval ?? 25000,
  pingTimeout: opts.pingTimeout ?? 20000,
  path: opts.path ?? "/socket.io/",
};
if (opts.transports) serverOpts.transports = opts.transports;
if (opts.recovery) {
  serverOpts.connectionStateRecovery = { maxDisconnectionDuration: 60000, skipMiddlewares: true };
}
const io = new Server(httpServer, serverOpts);

function info(socket) {
  return {
    id: socket.id,
    engineId: socket.conn.id,
    nsp: socket.nsp.name,
    auth: socket.handshake.auth,
    query: socket.handshake.query,
    headers: socket.handshake.headers,
    recovered: socket.recovered,
    transport: socket.conn.transport.name,
    clients: io.engine.clientsCount,
  };
}

function setup(nsp) {
  nsp.use((socket, next) => {
    const auth = socket.handshake.auth || {};
    if (auth.refuse) {
      const err = new Error("refused by middleware");
      err.data = { reason: auth.refuse, code: 42 };
      return next(err);
    }
    next();
  });
  nsp.on("connection", (socket) => {
    // Everything the tests need, driven by events from the client.
    socket.on("echo", (...args) => {
      socket.emit("echo", ...args);
    });
    socket.on("ack", (...args) => {
      const cb = args.pop();
      if (typeof cb === "function") cb(...args);
    });
    socket.on("info", (cb) => cb(info(socket)));
    // Ask the client for an ack on `event` and report the answer back as `answer`.
    socket.on("ask", (event, args, timeout) => {
      socket.timeout(timeout ?? 5000).emit(event, ...args, (err, ...reply) => {
        if (err) socket.emit("answer", { error: err.message });
        else socket.emit("answer", ...reply);
      });
    });
    socket.on("kick", () => socket.disconnect());
    socket.on("close-transport", () => socket.conn.close());
    // Drops the transport, then broadcasts while the client is away (state recovery test).
    socket.on("drop-and-broadcast", (n) => {
      socket.conn.close();
      setTimeout(() => {
        for (let i = 1; i <= n; i++) io.emit("missed", i);
      }, 100);
    });
    socket.on("broadcast", (event, ...args) => io.emit(event, ...args));
    socket.emit("welcome", info(socket));
  });
}

setup(io.of("/"));
setup(io.of("/custom"));

httpServer.listen(opts.port ?? 0, "127.0.0.1", () => {
  process.stdout.write(`listening ${httpServer.address().port}\n`);
});

process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
