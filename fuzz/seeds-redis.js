// Run from the repository root: NODE_PATH=tests/node/node_modules node fuzz/seeds-redis.js fuzz/corpus/redis_classic_message
// Seeds for fuzz/corpus/redis_classic_message: messages as @socket.io/redis-adapter 8.3 and the
// classic emitter write them (notepack.io 3 / JSON.stringify).
const np = require("notepack.io");
const fs = require("fs");
const out = process.argv[2];
const seeds = {
  "broadcast": np.encode(["Ab3dE9", { type: 2, data: ["ev", 1, "x", { a: [1.5, null] }], nsp: "/" }, { rooms: [], except: [], flags: {} }]),
  "broadcast-room": np.encode(["Ab3dE9", { type: 2, data: ["ev"], nsp: "/chat" }, { rooms: ["r1"], except: ["sid1", 12], flags: { volatile: true, compress: true } }]),
  "broadcast-binary-date": np.encode(["emitter", { type: 2, data: ["ev", Buffer.from([1, 2, 3]), new Date(1700000000123), -7, 2 ** 40] , nsp: "/" }, { rooms: [1, "a"], flags: {}, except: [] }]),
  "broadcast-ack": np.encode({ uid: "Ab3dE9", requestId: "Qw12Er", type: 7, packet: { type: 2, data: ["question", "who?"], nsp: "/" }, opts: { rooms: [], except: [], flags: { timeout: 3000 } } }),
  "broadcast-ack-response": np.encode({ type: 9, requestId: "Qw12Er", packet: "a0" }),
  "client-count": JSON.stringify({ type: 8, requestId: "Qw12Er", clientCount: 2 }),
  "fetch": JSON.stringify({ uid: "Ab3dE9", requestId: "Zx98Cv", type: 5, opts: { rooms: ["r"], except: [] } }),
  "fetch-response": JSON.stringify({ requestId: "Zx98Cv", sockets: [{ id: "aBcDeFgHiJkLmNoPqRsT", handshake: { headers: { host: "127.0.0.1" }, time: "Thu Jan 01 1970", address: "127.0.0.1", xdomain: false, secure: false, issued: 0, url: "/socket.io/?EIO=4", query: { EIO: "4" }, auth: {} }, rooms: ["aBcDeFgHiJkLmNoPqRsT", "r"], data: { name: "b0" } }] }),
  "all-rooms": JSON.stringify({ uid: "Ab3dE9", requestId: "Rt56Yu", type: 1 }),
  "all-rooms-response": JSON.stringify({ requestId: "Rt56Yu", rooms: ["r", "x"] }),
  "sockets": JSON.stringify({ uid: "Ab3dE9", requestId: "Rt56Yv", type: 0, rooms: ["r"] }),
  "join": JSON.stringify({ uid: "Ab3dE9", type: 2, opts: { rooms: ["r"], except: [] }, rooms: ["r2"] }),
  "join-emitter": JSON.stringify({ type: 2, opts: { rooms: [], except: ["x"] }, rooms: ["r2"] }),
  "leave-legacy": JSON.stringify({ uid: "Ab3dE9", requestId: "Lg01Lg", type: 3, sid: "aBcDeFgHiJkLmNoPqRsT", room: "r" }),
  "disconnect": JSON.stringify({ uid: "Ab3dE9", type: 4, opts: { rooms: ["r2"], except: [] }, close: false }),
  "server-side-emit": JSON.stringify({ uid: "Ab3dE9", type: 6, data: ["relay", "x", 2] }),
  "server-side-emit-ack": JSON.stringify({ uid: "Ab3dE9", requestId: "Ss00Aa", type: 6, data: ["ping-node"] }),
  "server-side-emit-response": JSON.stringify({ type: 6, requestId: "Ss00Aa", data: "pong" }),
  "msgpack-request": np.encode({ uid: "Ab3dE9", type: 6, data: ["relay", Buffer.from([0xff])] }),
};
for (const [name, v] of Object.entries(seeds)) fs.writeFileSync(`${out}/${name}`, Buffer.from(v));
