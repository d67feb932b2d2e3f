// This project's server through its Node binding, for the benchmarks: `node polysio-server.js
// PORT` serves 127.0.0.1:PORT. The handlers are bench/node/server.js's (socket.io's API);
// the broadcast's fan-out happens in Rust.
'use strict';
const { Server } = require('../../node');

const port = Number(process.argv[2]);
if (!Number.isInteger(port)) {
  console.error('usage: node polysio-server.js PORT');
  process.exit(2);
}
const io = new Server();
io.on('connection', (socket) => {
  socket.on('echo', (payload, ack) => ack(payload));
  socket.on('bcast', (payload, ack) => {
    io.emit('bcast', payload);
    ack();
  });
});
io.listen(port, { host: '127.0.0.1' });
console.log(`listening on 127.0.0.1:${port}`);
