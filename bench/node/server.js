// The npm socket.io server of the benchmarks: `node server.js [--tls DIR | --express] PORT`
// serves 127.0.0.1:PORT. echo: acks with the payload; bcast: broadcasts the payload to everyone,
// then acks.
//   (plain)     on Node's http.createServer (bench/server socketio)
//   --tls DIR   on https.createServer with DIR/server.pem and DIR/server.key (socketio-tls)
//   --express   attached to an Express 5 app's http.Server, beside a GET /health route
//               (socketio-express)
// With BENCH_REDIS=redis://HOST:PORT it joins a cluster over that Redis with the official classic
// adapter (@socket.io/redis-adapter on ioredis), and listens once subscribed (bench/run's cluster
// scenario).
'use strict';
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const path = require('node:path');
const { Server } = require('socket.io');

const args = process.argv.slice(2);
let tlsDir = null;
let express = false;
if (args[0] === '--tls') {
  tlsDir = args[1];
  args.splice(0, 2);
} else if (args[0] === '--express') {
  express = true;
  args.shift();
}
const port = Number(args[0]);
if (!Number.isInteger(port) || args.length !== 1) {
  console.error('usage: node server.js [--tls DIR | --express] PORT');
  process.exit(2);
}
let httpServer;
if (tlsDir) {
  httpServer = https.createServer({
    cert: fs.readFileSync(path.join(tlsDir, 'server.pem')),
    key: fs.readFileSync(path.join(tlsDir, 'server.key')),
  });
} else if (express) {
  const app = require('express')();
  app.get('/health', (req, res) => res.send('ok'));
  httpServer = http.createServer(app);
} else {
  httpServer = http.createServer();
}
const io = new Server(httpServer, { serveClient: false });
let subscribed = Promise.resolve();
if (process.env.BENCH_REDIS) {
  const { createAdapter } = require('@socket.io/redis-adapter');
  const { Redis } = require('ioredis');
  const pub = new Redis(process.env.BENCH_REDIS);
  const sub = pub.duplicate();
  io.adapter(createAdapter(pub, sub));
  subscribed = untilCounted(() => io.of('/').adapter.serverCount());
}

/** Resolves once `count()` (the cluster's NUMSUB) counts this node. */
async function untilCounted(count) {
  for (;;) {
    try {
      if ((await count()) >= 1) return;
    } catch {
      // Redis not reachable yet.
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
io.on('connection', (socket) => {
  socket.on('echo', (payload, ack) => ack(payload));
  socket.on('bcast', (payload, ack) => {
    io.emit('bcast', payload);
    ack();
  });
});
const how = tlsDir ? ' (TLS)' : express ? ' (Express)' : '';
subscribed.then(() =>
  httpServer.listen(port, '127.0.0.1', () => console.log(`listening on 127.0.0.1:${port}${how}`)));
