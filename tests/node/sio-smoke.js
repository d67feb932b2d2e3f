const { io } = require("socket.io-client");
const url = process.argv[2];
async function run(transports) {
  const s = io(url, { transports, auth: { token: "abc" }, reconnection: false });
  const auth = await new Promise((res) => s.on("auth", res));
  s.emit("message", 1, "2", { a: Buffer.from([1, 2]) });
  const back = await new Promise((res) => s.on("message-back", (...a) => res(a)));
  const ack = await s.emitWithAck("message-with-ack", "x", Buffer.from([9]));
  const c = io(url + "/custom", { transports, reconnection: false });
  const auth2 = await new Promise((res) => c.on("auth", res));
  const bad = io(url + "/nope", { transports, reconnection: false });
  const err = await new Promise((res) => bad.on("connect_error", res));
  console.log(transports.join(","), JSON.stringify({ auth, back, ack, auth2, err: err.message, t: s.io.engine.transport.name }));
  s.disconnect(); c.disconnect(); bad.disconnect();
}
(async () => { for (const t of [["polling"], ["websocket"], ["polling", "websocket"]]) await run(t); process.exit(0); })();
