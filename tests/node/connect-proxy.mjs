// A real HTTP proxy (npm `proxy`, the one https-proxy-agent is tested with) for the client's
// proxy tests. Usage: node connect-proxy.mjs [USER:PASSWORD]
// Binds 127.0.0.1 on a free port and prints `listening PORT`, then `connect HOST:PORT` for each
// CONNECT tunnel it opens. With USER:PASSWORD, requests without that Proxy-Authorization get 407.
// Exits when stdin closes.
import { createProxy } from "proxy";

const credentials = process.argv[2];
const server = createProxy();
if (credentials) {
  const want = "Basic " + Buffer.from(credentials).toString("base64");
  server.authenticate = (req) => req.headers["proxy-authorization"] === want;
}
server.prependListener("connect", (req) => {
  process.stdout.write(`connect ${req.url}\n`);
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
