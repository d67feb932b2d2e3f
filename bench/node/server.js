// The npm socket.io server of the benchmarks: `node server.js PORT` serves 127.0.0.1:PORT.
// echo: acks with the payload; bcast: broadcasts the payload to everyone, then acks.
'use strict';
const http = require('node:http');
const { Server } = require('socket.io');

const port = Number(process.argv[2]);
if (!Number.isInteger(port)) {
  console.error('usage: node server.js PORT');
  process.exit(2);
}
const httpServer = http.createServer();
const io = new Server(httpServer, { serveClient: false });
io.on('connection', (socket) => {
  socket.on('echo', (payload, ack) => ack(payload));
  socket.on('bcast', (payload, ack) => {
    io.emit('bcast', payload);
    ack();
  });
});
httpServer.listen(port, '127.0.0.1', () => console.log(`listening on 127.0.0.1:${port}`));
