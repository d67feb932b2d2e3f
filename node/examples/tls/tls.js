// polysio over TLS (README "TLS"): a standalone https/wss server with a certificate a private CA
// signed, and a client that trusts that CA; then a Socket.IO server attached to an
// https.Server asking for client certificates (mutual TLS), and the client presenting one.
//   node examples/tls/tls.js [DIR]
// DIR holds ca.pem, server.pem, server.key, client.pem, client.key; without it, a throwaway CA
// and certificates are made with openssl (for 127.0.0.1 and localhost) for the demo.
"use strict";

const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const https = require("node:https");
const os = require("node:os");
const path = require("node:path");
const { Server } = require("polysio");
const { io } = require("polysio/client");

/** A throwaway CA, a server certificate and a client certificate it signed, in a temp dir. */
function throwawayCerts() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "polysio-tls-example-"));
  const openssl = (...args) => execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl("req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=example CA");
  for (const [name, ext] of [
    ["server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth"],
    ["client", "extendedKeyUsage=clientAuth"],
  ]) {
    fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
    openssl("req", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`);
    openssl("x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${name}.pem`, "-days", "1", "-extfile", `${name}.ext`);
  }
  return dir;
}

const given = process.argv[2];
const dir = given || throwawayCerts();
const read = (f) => fs.readFileSync(path.join(dir, f));

async function main() {
  // 1. polysio's own listener over TLS: https.createServer's cert and key.
  const server = new Server(0, { tls: { cert: read("server.pem"), key: read("server.key") } });
  server.on("connection", (socket) => {
    socket.on("hello", (name, ack) => ack(`hello ${name}, secure: ${socket.handshake.secure}`));
  });
  const port = server.address().port;

  const client = io(`https://localhost:${port}`, { ca: read("ca.pem") });
  console.log(await client.emitWithAck("hello", "tls"));
  client.disconnect();

  // A renewed certificate, without a restart (here the same files).
  server.setSecureContext({ cert: read("server.pem"), key: read("server.key") });
  await server.close();

  // 2. Mutual TLS: attached to an https.Server that asks for client certificates.
  const httpsServer = https.createServer({ cert: read("server.pem"), key: read("server.key"), ca: read("ca.pem"), requestCert: true, rejectUnauthorized: true });
  // allowRequest sees Node's request: its TLS socket knows the client's certificate.
  const attached = new Server(httpsServer, {
    allowRequest: (req, callback) => {
      console.log(`client certificate ${req.socket.getPeerCertificate().subject.CN}, authorized: ${req.socket.authorized}`);
      callback(null, req.socket.authorized);
    },
  });
  attached.on("connection", (socket) => socket.on("ping", (ack) => ack("pong")));
  await new Promise((r) => httpsServer.listen(0, "127.0.0.1", r));
  const mtls = io(`https://127.0.0.1:${httpsServer.address().port}`, { ca: read("ca.pem"), cert: read("client.pem"), key: read("client.key"), transports: ["websocket"] });
  console.log(`mutual TLS: ${await mtls.emitWithAck("ping")}`);
  mtls.disconnect();
  await attached.close();
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => {
    if (!given) fs.rmSync(dir, { recursive: true, force: true });
  });
