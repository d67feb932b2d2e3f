"use strict";
// TLS (issue 16): polysio's client (`ca`, `cert` + `key`, `rejectUnauthorized`, `proxy`,
// HTTPS_PROXY) over https/wss with every transport, against the npm socket.io server on
// https.createServer (mutual TLS included) and against polysio's own TLS listener
// (`tls: { cert, key }`, `setSecureContext`), which socket.io-client reaches too; polysio
// attached to an https.Server; a real CONNECT proxy. Certificates are made with openssl.

const test = require("node:test");
const assert = require("node:assert/strict");
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const http = require("node:http");
const https = require("node:https");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const { Server } = require("..");
const { io } = require("../client");
const ioRef = require("socket.io-client").io;
const SocketIoServer = require("socket.io").Server;
const { once, within, until, connected, run, pkg } = require("./helpers");

const TRANSPORTS = [["polling"], ["websocket"], ["polling", "websocket"]];
const name = (t) => t.join(",");

/**
 * A throwaway CA, a server certificate it signed for 127.0.0.1, localhost and polysio.test, a
 * client certificate, a certificate for another name, and another CA that signed a second server
 * certificate.
 */
class Pki {
  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "polysio-tls-"));
    this.ca("ca");
    this.ca("other-ca");
    const serverExt = "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:polysio.test\nextendedKeyUsage=serverAuth";
    this.leaf("server", "ca", serverExt);
    this.leaf("other-server", "other-ca", serverExt);
    this.leaf("client", "ca", "extendedKeyUsage=clientAuth");
    this.leaf("wrong-name", "ca", "subjectAltName=DNS:elsewhere.test\nextendedKeyUsage=serverAuth");
  }
  openssl(...args) {
    execFileSync("openssl", args, { cwd: this.dir, stdio: "ignore" });
  }
  ca(n) {
    this.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${n}.key`, "-out", `${n}.pem`, "-days", "2", "-subj", `/CN=polysio test ${n}`);
  }
  leaf(n, ca, ext) {
    fs.writeFileSync(path.join(this.dir, `${n}.ext`), ext);
    this.openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${n}.key`, "-out", `${n}.csr`, "-subj", `/CN=${n}`);
    this.openssl("x509", "-req", "-in", `${n}.csr`, "-CA", `${ca}.pem`, "-CAkey", `${ca}.key`, "-CAcreateserial", "-out", `${n}.pem`, "-days", "2", "-extfile", `${n}.ext`);
  }
  /** The file's path. */
  file(f) {
    return path.join(this.dir, f);
  }
  /** The file's content. */
  read(f) {
    return fs.readFileSync(this.file(f));
  }
}

const pki = new Pki();
test.after(() => fs.rmSync(pki.dir, { recursive: true, force: true }));

const opts = (extra = {}) => ({ forceNew: true, reconnection: false, ...extra });

/** `echo` acks its argument; `secure` acks whether the handshake came over TLS. */
function echo(nsp) {
  nsp.on("connection", (s) => {
    s.on("echo", (m, ack) => ack(m));
    s.on("secure", (ack) => ack(s.handshake.secure));
    s.on("header", (h, ack) => ack(s.handshake.headers[h] ?? null));
  });
}

/** npm socket.io on https.createServer(tlsOptions), on 127.0.0.1. */
async function refHttps(tlsOptions = {}) {
  const httpsServer = https.createServer({ cert: pki.read("server.pem"), key: pki.read("server.key"), ...tlsOptions });
  const sio = new SocketIoServer(httpsServer);
  echo(sio);
  await new Promise((r) => httpsServer.listen(0, "127.0.0.1", r));
  return { sio, port: httpsServer.address().port, url: `https://127.0.0.1:${httpsServer.address().port}`, close: () => sio.close() };
}

/** polysio's own TLS listener on 127.0.0.1. */
function polysioTls(extra = {}) {
  const io = new Server({ tls: { cert: pki.read("server.pem"), key: pki.read("server.key") }, ...extra });
  echo(io);
  io.listen(0, { host: "127.0.0.1" });
  return { io, port: io.address().port, url: `https://127.0.0.1:${io.address().port}`, close: () => io.close() };
}

/** The connect_error of a client socket that must not connect. */
function refused(socket) {
  return within(
    new Promise((resolve, reject) => {
      socket.once("connect_error", resolve);
      socket.once("connect", () => reject(new Error("connected, expected a connect_error")));
    }),
    undefined,
    "connect_error",
  );
}

/** Connects, checks an ack round trip and the transport the client ends on. */
async function roundTrip(t, socket, transports) {
  t.after(() => socket.disconnect());
  await connected(socket);
  assert.deepEqual(await socket.emitWithAck("echo", { s: "tls", b: Buffer.from([0, 255]) }), { s: "tls", b: Buffer.from([0, 255]) });
  const want = transports[transports.length - 1];
  await until(() => socket.io.engine && socket.io.engine.transport.name === want, undefined, `transport ${want}`);
  // Still answering after the upgrade.
  assert.equal(await socket.emitWithAck("echo", "after"), "after");
}

for (const transports of TRANSPORTS) {
  test(`polysio client -> npm socket.io on https.createServer, a CA file trusted (${name(transports)})`, async (t) => {
    const srv = await refHttps();
    t.after(srv.close);
    const socket = io(srv.url, opts({ transports, ca: fs.readFileSync(pki.file("ca.pem"), "utf8"), extraHeaders: { "x-polysio": "tls" } }));
    await roundTrip(t, socket, transports);
    assert.equal(await socket.emitWithAck("header", "x-polysio"), "tls");
  });

  test(`polysio client -> polysio's TLS listener (${name(transports)})`, async (t) => {
    const srv = polysioTls();
    t.after(srv.close);
    const socket = io(srv.url, opts({ transports, ca: [pki.read("other-ca.pem"), pki.read("ca.pem")] }));
    await roundTrip(t, socket, transports);
    assert.equal(await socket.emitWithAck("secure"), true);
  });

  test(`socket.io-client -> polysio's TLS listener (${name(transports)})`, async (t) => {
    const srv = polysioTls();
    t.after(srv.close);
    const socket = ioRef(srv.url, opts({ transports, ca: pki.read("ca.pem") }));
    t.after(() => socket.disconnect());
    await connected(socket);
    assert.equal(await socket.timeout(10000).emitWithAck("echo", "ref"), "ref");
    assert.equal(await socket.timeout(10000).emitWithAck("secure"), true);
    const want = transports[transports.length - 1];
    await until(() => socket.io.engine.transport.name === want, undefined, `transport ${want}`);
  });

  test(`polysio client -> polysio attached to an https.Server (${name(transports)})`, async (t) => {
    const httpsServer = https.createServer({ cert: pki.read("server.pem"), key: pki.read("server.key") });
    const srv = new Server(httpsServer);
    echo(srv);
    t.after(() => srv.close());
    await new Promise((r) => httpsServer.listen(0, "127.0.0.1", r));
    const socket = io(`https://localhost:${httpsServer.address().port}`, opts({ transports, ca: pki.read("ca.pem") }));
    await roundTrip(t, socket, transports);
    assert.equal(await socket.emitWithAck("secure"), true);
  });

  test(`mutual TLS: the client certificate, to npm socket.io on https.createServer with requestCert (${name(transports)})`, async (t) => {
    const seen = [];
    const srv = await refHttps({ requestCert: true, rejectUnauthorized: true, ca: pki.read("ca.pem") });
    srv.sio.on("connection", (s) => seen.push(s.request.socket.getPeerCertificate().subject.CN));
    t.after(srv.close);
    const socket = io(srv.url, opts({ transports, ca: pki.read("ca.pem"), cert: pki.read("client.pem"), key: pki.read("client.key") }));
    await roundTrip(t, socket, transports);
    assert.deepEqual(seen, ["client"]);
    // Without a certificate, the server ends the handshake.
    const anonymous = io(srv.url, opts({ transports, ca: pki.read("ca.pem") }));
    t.after(() => anonymous.disconnect());
    const err = await refused(anonymous);
    assert.ok(err instanceof Error);
  });
}

for (const transports of [["polling"], ["websocket"]]) {
  test(`an untrusted certificate is refused saying so, code ERR_TLS (${name(transports)})`, async (t) => {
    const srv = await refHttps();
    t.after(srv.close);
    for (const extra of [{}, { ca: pki.read("other-ca.pem") }]) {
      const socket = io(srv.url, opts({ transports, ...extra }));
      t.after(() => socket.disconnect());
      const err = await refused(socket);
      assert.equal(err.code, "ERR_TLS");
      assert.match(err.message, /the server's certificate is not trusted: unknown issuer/);
    }
    // The manager's error event says the same.
    const socket = io(srv.url, opts({ transports }));
    t.after(() => socket.disconnect());
    const [err] = await once(socket.io, "error");
    assert.equal(err.code, "ERR_TLS");
    // rejectUnauthorized: false (development) connects to it anyway.
    const dev = io(srv.url, opts({ transports, rejectUnauthorized: false }));
    t.after(() => dev.disconnect());
    await connected(dev);
    assert.equal(await dev.emitWithAck("echo", 1), 1);
  });
}

test("a certificate for another name is refused, code ERR_TLS", async (t) => {
  const srv = polysioTls({ tls: { cert: pki.read("wrong-name.pem"), key: pki.read("wrong-name.key") } });
  t.after(srv.close);
  const socket = io(srv.url, opts({ ca: pki.read("ca.pem") }));
  t.after(() => socket.disconnect());
  const err = await refused(socket);
  assert.equal(err.code, "ERR_TLS");
  assert.match(err.message, /not trusted: not valid for this host name/);
});

test("bad client TLS options are clear errors at once", () => {
  const url = "https://127.0.0.1:1";
  assert.throws(() => io(url, opts({ ca: 42 })), { code: "ERR_INVALID_ARG_TYPE", message: /ca must be a PEM string or Buffer/ });
  assert.throws(() => io(url, opts({ ca: "not a certificate" })), { code: "ERR_TLS", message: /CA certificates/ });
  assert.throws(() => io(url, opts({ cert: pki.read("client.pem") })), { code: "ERR_INVALID_ARG_VALUE", message: /cert and key go together/ });
  assert.throws(() => io(url, opts({ cert: pki.read("client.pem"), key: "junk" })), { code: "ERR_TLS" });
  assert.throws(() => io(url, opts({ rejectUnauthorized: "no" })), { code: "ERR_INVALID_ARG_TYPE" });
  assert.throws(() => io(url, opts({ proxy: 3128 })), { code: "ERR_INVALID_ARG_TYPE", message: /proxy must be false or a proxy URL/ });
  assert.throws(() => io(url, opts({ proxy: "ftp://proxy:21" })), { code: "ERR_INVALID_ARG_VALUE" });
});

test("polysio's TLS listener: bad certificates and options are clear errors, nothing is bound", async () => {
  const tls = (cert, key) => ({ tls: { cert: pki.read(cert), key: pki.read(key) } });
  assert.throws(() => new Server(0, tls("server.pem", "client.key")), { code: "ERR_TLS", message: /certificate and key/ });
  assert.throws(() => new Server(0, { tls: { cert: "junk", key: pki.read("server.key") } }), { code: "ERR_TLS", message: /certificate chain/ });
  assert.throws(() => new Server(0, { tls: { cert: pki.read("server.pem") } }), { code: "ERR_INVALID_ARG_VALUE", message: /both cert and key/ });
  assert.throws(() => new Server(0, { tls: { ...tls("server.pem", "server.key").tls, requestCert: true } }), { code: "ERR_INVALID_ARG_VALUE", message: /tls.requestCert is not supported/ });
  assert.throws(() => new Server(0, { tls: { ...tls("server.pem", "server.key").tls, passphrase: "x" } }), { code: "ERR_INVALID_ARG_VALUE", message: /tls.passphrase is not supported/ });
  assert.throws(() => new Server(0, { tls: "cert.pem" }), { code: "ERR_INVALID_ARG_TYPE" });
  const httpsServer = https.createServer({ cert: pki.read("server.pem"), key: pki.read("server.key") });
  assert.throws(() => new Server(httpsServer, tls("server.pem", "server.key")), { code: "ERR_INVALID_ARG_VALUE", message: /the https.Server's TLS is used/ });
  const plain = new Server();
  plain.listen(0, { host: "127.0.0.1" });
  assert.throws(() => plain.setSecureContext(tls("server.pem", "server.key").tls), { code: "ERR_LISTEN" });
  await plain.close();
  // A failed TLS listen leaves the server usable: listen again with a good certificate.
  const io2 = new Server();
  assert.throws(() => io2.listen(0, { host: "127.0.0.1", ...tls("server.pem", "other-server.key") }), { code: "ERR_TLS" });
  io2.listen(0, { host: "127.0.0.1", ...tls("server.pem", "server.key") });
  await io2.close();
});

test("setSecureContext replaces the certificate: new connections get it, open ones stay", async (t) => {
  const srv = polysioTls();
  t.after(srv.close);
  const first = io(srv.url, opts({ transports: ["websocket"], ca: pki.read("ca.pem") }));
  t.after(() => first.disconnect());
  await connected(first);
  assert.throws(() => srv.io.setSecureContext({ cert: pki.read("other-server.pem"), key: pki.read("server.key") }), { code: "ERR_TLS" });
  srv.io.setSecureContext({ cert: pki.read("other-server.pem"), key: pki.read("other-server.key") });
  const second = io(srv.url, opts({ transports: ["websocket"], ca: pki.read("ca.pem") }));
  t.after(() => second.disconnect());
  const err = await refused(second);
  assert.equal(err.code, "ERR_TLS");
  const third = io(srv.url, opts({ transports: ["websocket"], ca: pki.read("other-ca.pem") }));
  t.after(() => third.disconnect());
  await connected(third);
  assert.equal(await first.emitWithAck("echo", "still here"), "still here");
});

/**
 * A tiny HTTP CONNECT proxy (as curl and the reference clients' agents use): tunnels to the
 * target it is asked for, or to `redirect` (a port on 127.0.0.1) for every target, and with
 * `credentials` refuses requests without them (407). Records each CONNECT's target.
 */
async function connectProxy({ credentials, redirect } = {}) {
  const seen = [];
  const proxy = http.createServer((req, res) => res.writeHead(405).end());
  proxy.on("connect", (req, client, head) => {
    seen.push(req.url);
    const want = credentials && "Basic " + Buffer.from(credentials).toString("base64");
    if (want && req.headers["proxy-authorization"] !== want) {
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="polysio"\r\n\r\n');
      return;
    }
    const u = new URL(`http://${req.url}`);
    const upstream = net.connect(redirect || Number(u.port), redirect ? "127.0.0.1" : u.hostname, () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on("error", () => client.destroy());
    client.on("error", () => upstream.destroy());
  });
  await new Promise((r) => proxy.listen(0, "127.0.0.1", r));
  return {
    seen,
    url: `http://${credentials ? credentials + "@" : ""}127.0.0.1:${proxy.address().port}`,
    bare: `http://127.0.0.1:${proxy.address().port}`,
    close: () => {
      proxy.closeAllConnections();
      proxy.close();
    },
  };
}

for (const transports of TRANSPORTS) {
  test(`through a CONNECT proxy with credentials, TLS inside the tunnel (${name(transports)})`, async (t) => {
    const srv = polysioTls();
    t.after(srv.close);
    const proxy = await connectProxy({ credentials: "user:pw" });
    t.after(proxy.close);
    const socket = io(srv.url, opts({ transports, ca: pki.read("ca.pem"), proxy: proxy.url }));
    await roundTrip(t, socket, transports);
    assert.ok(proxy.seen.length >= 1);
    assert.ok(proxy.seen.every((s) => s === `127.0.0.1:${srv.port}`), proxy.seen.join(" "));
    // Without the credentials the proxy answers 407: the connection fails.
    const anonymous = io(srv.url, opts({ transports, ca: pki.read("ca.pem"), proxy: proxy.bare }));
    t.after(() => anonymous.disconnect());
    const err = await refused(anonymous);
    assert.match(`${err.message}: ${err.description || ""}`, /proxy authorization required/);
  });
}

test("HTTPS_PROXY from the environment (a name only the proxy resolves); proxy: false ignores it; NO_PROXY", async (t) => {
  const srv = polysioTls();
  t.after(srv.close);
  const proxy = await connectProxy({ redirect: srv.port });
  t.after(proxy.close);
  // polysio.test resolves nowhere: only through the proxy can the client reach the server; the
  // server's certificate names it.
  const url = `https://polysio.test:${srv.port}`;
  const script = (extra) => `
    const { io } = require(${JSON.stringify(path.join(pkg, "client.js"))});
    const fs = require("fs");
    const s = io(${JSON.stringify(url)}, { reconnection: false, ca: fs.readFileSync(${JSON.stringify(pki.file("ca.pem"))}), ${extra} });
    s.on("connect", async () => { console.log("echo " + (await s.emitWithAck("echo", "via env"))); s.disconnect(); });
    s.on("connect_error", (e) => { console.log("connect_error " + e.message); process.exit(0); });`;
  const env = { ...process.env, HTTPS_PROXY: proxy.bare, NO_PROXY: "" };
  const viaEnv = await run([process.execPath, "-e", script("")], { env });
  assert.equal(viaEnv.stdout.trim(), "echo via env", viaEnv.stderr);
  const tunnels = proxy.seen.length;
  assert.ok(tunnels >= 1);
  assert.ok(proxy.seen.every((s) => s === `polysio.test:${srv.port}`), proxy.seen.join(" "));
  const direct = await run([process.execPath, "-e", script("proxy: false")], { env });
  assert.match(direct.stdout, /^connect_error /, direct.stderr);
  const noProxy = await run([process.execPath, "-e", script("")], { env: { ...env, NO_PROXY: "polysio.test" } });
  assert.match(noProxy.stdout, /^connect_error /, noProxy.stderr);
  assert.equal(proxy.seen.length, tunnels, "no tunnel for proxy: false nor NO_PROXY");
});

test('examples/tls/tls.js (README "TLS") runs: a private CA, the standalone listener, mutual TLS', async () => {
  const r = await run([process.execPath, path.join(pkg, "examples", "tls", "tls.js")], { cwd: pkg, timeout: 60000 });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split("\n"), ["hello tls, secure: true", "client certificate client, authorized: true", "mutual TLS: pong"]);
});
