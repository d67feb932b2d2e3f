"use strict";
// The server of the flood test (limits.test.js), in a process of its own so that its resident
// memory is its own: a polysio Server whose "flood" handler is slow (it blocks the JavaScript
// thread FLOOD_MS per event, 1 ms by default). Options come as JSON in argv[2]. Prints
// `listening PORT`, then a JSON line every 100 ms (when the event loop gets a turn):
// `{ rss, count }`, the resident set in bytes and the flood events handled so far.
//
//   node test/flood-server.js '{"maxPendingMessages": 1e12}'   (no backpressure, by hand)

const { Server } = require("..");

const opts = JSON.parse(process.argv[2] || "{}");
const busy = Number(process.env.FLOOD_MS || 1);
const pause = new Int32Array(new SharedArrayBuffer(4));
const io = new Server(opts);
let count = 0;
io.on("connection", (socket) => {
  socket.on("flood", () => {
    // A slow handler that makes no garbage of its own (a busy loop would, and the V8 heap
    // would grow for it): the JavaScript thread blocked for `busy` ms.
    Atomics.wait(pause, 0, 0, busy);
    count++;
  });
  socket.on("count", (cb) => cb(count));
  socket.on("ping", (cb) => cb("pong"));
});
io.listen(0, { host: "127.0.0.1" });
console.log(`listening ${io.address().port}`);
setInterval(() => console.log(JSON.stringify({ rss: process.memoryUsage().rss, count })), 100);
process.on("SIGTERM", () => io.close().then(() => process.exit(0)));
