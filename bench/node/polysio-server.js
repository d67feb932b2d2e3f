// This project's server through its Node binding, for the benchmarks:
// `node polysio-server.js [--express [--no-takeover]] PORT` serves 127.0.0.1:PORT. The handlers
// are bench/node/server.js's (socket.io's API); the broadcast's fan-out happens in Rust.
//   (plain)          the binding's own listener, io.listen (bench/server node)
//   --express        attached to an Express 5 app's http.Server beside a GET /health route,
//                    new Server(httpServer): WebSockets taken over by the core (node-express)
//   --no-takeover    the same with takeover: false, the WebSocket's bytes crossing Node's
//                    socket (node-express-stream)
// With BENCH_REDIS=redis://HOST:PORT (plain only) it joins a cluster over that Redis through the
// binding's createAdapter (the classic @socket.io/redis-adapter format, connections held by the
// core), and listens once subscribed (bench/run's cluster scenario).
'use strict';
const http = require('node:http');
const { Server, createAdapter } = require('../../node');

const args = process.argv.slice(2);
const express = args[0] === '--express';
if (express) args.shift();
const takeover = !(express && args[0] === '--no-takeover');
if (!takeover) args.shift();
const port = Number(args[0]);
if (!Number.isInteger(port) || args.length !== 1) {
  console.error('usage: node polysio-server.js [--express [--no-takeover]] PORT');
  process.exit(2);
}
let io;
let httpServer = null;
if (express) {
  const app = require('express')();
  app.get('/health', (req, res) => res.send('ok'));
  httpServer = http.createServer(app);
  io = new Server(httpServer, { serveClient: false, takeover });
} else if (process.env.BENCH_REDIS) {
  io = new Server({ adapter: createAdapter(process.env.BENCH_REDIS) });
} else {
  io = new Server();
}
io.on('connection', (socket) => {
  socket.on('echo', (payload, ack) => ack(payload));
  socket.on('bcast', (payload, ack) => {
    io.emit('bcast', payload);
    ack();
  });
});
if (httpServer) {
  const how = takeover ? 'Express, takeover' : 'Express, takeover off';
  httpServer.listen(port, '127.0.0.1', () => console.log(`listening on 127.0.0.1:${port} (${how})`));
} else {
  (async () => {
    // In a cluster, listen once this node is counted (subscribed).
    while (process.env.BENCH_REDIS && !(await io.of('/').adapter.serverCount().catch(() => 0))) {
      await new Promise((r) => setTimeout(r, 20));
    }
    io.listen(port, { host: '127.0.0.1' });
    console.log(`listening on 127.0.0.1:${port}`);
  })();
}
