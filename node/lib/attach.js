"use strict";
// Serving Socket.IO inside a Node http.Server / https.Server (`new Server(httpServer)`,
// `io.attach(httpServer)`), as engine.io's `attach`: the server's `request` listeners are taken
// over, requests outside the Socket.IO path go to them in order; requests to the path cross
// into the core once each (src/host.rs); WebSockets run on the TCP socket itself (taken over:
// a duplicate of its descriptor) or, over TLS or with `takeover: false`, as bytes crossing.

const fs = require("node:fs");
const pathMod = require("node:path");
const { binding, request, callAsync, startAsync } = require("./native");
const { raise } = require("./errors");

/** The `error` codes of NativeExchange.finish. */
const BODY = { OK: 0, TOO_LARGE: 1, TOO_MANY_CHUNKS: 2, TIMED_OUT: 3, ABORTED: 4 };

function send(res, r) {
  if (res.destroyed || res.headersSent) return;
  res.writeHead(r.status, r.headers);
  res.end(r.body);
}

function fail(res) {
  if (res.destroyed) return;
  if (!res.headersSent) {
    res.writeHead(500, { "Content-Type": "text/plain" });
    res.end();
  } else res.destroy();
}

/** Starts the core's answer to `req` (a promise of a response or a NativeExchange). */
function ask(native, req, decision) {
  const sock = req.socket;
  return startAsync((r) =>
    native.handleRequest(
      req.method,
      req.url,
      req.rawHeaders,
      sock.remoteAddress === undefined ? null : sock.remoteAddress,
      sock.remotePort || 0,
      !!sock.encrypted,
      decision ? decision.allow : null,
      decision ? decision.refusal : null,
      r,
    ),
  );
}

/**
 * Runs `io.engine.use` middlewares on `req` as engine.io does (each `(req, res, next)`); resolves
 * with the error one gave (or threw), else null.
 */
function applyMiddlewares(fns, req, res) {
  if (fns.length === 0) return Promise.resolve(null);
  return new Promise((resolve) => {
    const apply = (i) => {
      let called = false;
      const next = (err) => {
        if (called) return;
        called = true;
        if (err) return resolve(err);
        if (i + 1 < fns.length) apply(i + 1);
        else resolve(null);
      };
      try {
        fns[i].call(null, req, res, next);
      } catch (e) {
        raise(e);
        next(e);
      }
    };
    apply(0);
  });
}

/**
 * `allowRequest(req, callback)` for a handshake (a request without `sid`), asked with the real
 * request; resolves with `{ allow, refusal }` for the core, or null when not asked.
 */
function decide(io, req) {
  const fn = io._allowRequest;
  if (typeof fn !== "function" || /[?&]sid=/.test(req.url)) return Promise.resolve(null);
  return new Promise((resolve) => {
    let done = false;
    const answer = (err, ok) => {
      if (done) return;
      done = true;
      resolve(ok ? { allow: true, refusal: null } : { allow: false, refusal: err ? String(err.message || err) : "" });
    };
    try {
      fn(req, answer);
    } catch (e) {
      raise(e);
      answer(e, false);
    }
  });
}

/** engine.io's answer to a request a middleware failed. */
const BAD_REQUEST = { status: 400, headers: ["Content-Type", "application/json"], body: Buffer.from('{"code":3,"message":"Bad request"}') };

/** Cancels `x` when `res` closes before `settle()` (which reports whether it was settled). */
function cancelOnClose(x, res, settle) {
  res.on("close", () => {
    if (settle()) return;
    try {
      x.cancel();
    } catch (e) {
      raise(e);
    }
  });
}

async function readBody(x, req, res) {
  let settled = false;
  const settle = (err, body) => {
    if (settled) return;
    settled = true;
    let r;
    try {
      r = x.finish(body || null, err);
    } catch (e) {
      return fail(res);
    }
    if (err !== BODY.OK && err !== BODY.ABORTED) {
      // The rest of the body is not read: the connection cannot carry another request.
      r.headers.push("Connection", "close");
    }
    send(res, r);
    req.removeAllListeners("data");
    if (err !== BODY.OK) req.resume();
  };
  cancelOnClose(x, res, () => {
    const was = settled;
    settled = true;
    return was;
  });
  await callAsync((r) => x.bodyReady(r));
  if (settled) return;
  const chunks = [];
  let total = 0;
  const timer = setTimeout(() => settle(BODY.TIMED_OUT), Math.min(x.timeout, 2147483647));
  const done = (err, body) => {
    clearTimeout(timer);
    settle(err, body);
  };
  req.on("data", (c) => {
    total += c.length;
    chunks.push(c);
    if (total > x.limit) done(BODY.TOO_LARGE);
    else if (chunks.length > x.maxChunks) done(BODY.TOO_MANY_CHUNKS);
  });
  req.on("end", () => done(BODY.OK, Buffer.concat(chunks, total)));
  req.on("error", () => done(BODY.ABORTED));
  req.on("aborted", () => done(BODY.ABORTED));
}

async function longPoll(x, res) {
  let finished = false;
  cancelOnClose(x, res, () => {
    const was = finished;
    finished = true;
    return was;
  });
  let r;
  try {
    r = await callAsync((q) => x.wait(q));
  } catch (e) {
    return; // cancelled: the client went away
  }
  finished = true;
  send(res, r);
}

/** Serves one HTTP request to the Socket.IO path. */
async function handleRequest(io, req, res) {
  let x;
  try {
    if (await applyMiddlewares(io._engineFns, req, res)) return send(res, BAD_REQUEST);
    if (res.writableEnded) return; // a middleware answered
    x = await ask(io._native, req, await decide(io, req));
  } catch (e) {
    return fail(res);
  }
  try {
    if (!(x instanceof binding.NativeExchange)) return send(res, x);
    if (x.kind === 1) return await readBody(x, req, res);
    if (x.kind === 2) return await longPoll(x, res);
    x.cancel();
    res.writeHead(400).end();
  } catch (e) {
    fail(res);
  }
}

/** The raw bytes of a response's head (and body) for a socket. */
function rawResponse(r, withBody) {
  const reasons = { 101: "Switching Protocols", 400: "Bad Request", 403: "Forbidden" };
  let head = `HTTP/1.1 ${r.status} ${reasons[r.status] || ""}\r\n`;
  for (let i = 0; i + 1 < r.headers.length; i += 2) head += `${r.headers[i]}: ${r.headers[i + 1]}\r\n`;
  if (withBody) head += `Content-Length: ${r.body.length}\r\n`;
  head += "\r\n";
  const h = Buffer.from(head, "latin1");
  return withBody ? Buffer.concat([h, r.body]) : h;
}

/** Runs a WebSocket as bytes crossing between `socket` and the core. */
function streamWebSocket(x, socket, head, extraHeaders) {
  const r = x.response();
  r.headers.push(...extraHeaders);
  socket.write(rawResponse(r, false));
  const ns = x.stream(head);
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    ns.destroy();
  };
  // What the socket receives goes to the core at once; past the core's mark the socket pauses
  // until the core has read it (see src/crossing.rs).
  socket.on("data", (chunk) => {
    if (ns.write(chunk)) return;
    socket.pause();
    ns.drained(request(() => socket.destroyed || socket.resume()));
  });
  socket.on("end", () => ns.end());
  socket.on("close", close);
  // What the core writes is taken as soon as the socket accepted the last bytes (a completion
  // callback rather than a promise: this runs for every batch the core writes).
  const send = (err, buf) => {
    if (err) return socket.destroy();
    if (socket.destroyed) return;
    if (buf === null) return socket.end();
    if (socket.write(buf)) pump();
    else socket.once("drain", pump);
  };
  const pump = () => {
    if (socket.destroyed) return;
    const buf = ns.take();
    if (buf === null || buf.length > 0) return send(null, buf);
    ns.readable(request(send));
  };
  pump();
}

/**
 * The `res` middlewares see for an upgrade (as engine.io's WebSocketResponse): the headers they
 * set go on the `101`; a middleware that answers itself ends the socket.
 */
class UpgradeResponse {
  constructor(req, socket) {
    this.req = req;
    this.socket = socket;
    this.statusCode = 200;
    this._headers = new Map();
    this.headersSent = false;
    this.writableEnded = false;
    req.res = this;
  }
  setHeader(name, value) {
    this._headers.set(String(name).toLowerCase(), [name, value]);
    return this;
  }
  getHeader(name) {
    const h = this._headers.get(String(name).toLowerCase());
    return h && h[1];
  }
  hasHeader(name) {
    return this._headers.has(String(name).toLowerCase());
  }
  removeHeader(name) {
    this._headers.delete(String(name).toLowerCase());
  }
  writeHead(status, headers) {
    this.statusCode = status;
    if (headers && typeof headers === "object") for (const k of Object.keys(headers)) this.setHeader(k, headers[k]);
    return this;
  }
  end(body) {
    if (this.writableEnded) return this;
    this.writableEnded = true;
    this.headersSent = true;
    const b = body === undefined ? Buffer.alloc(0) : Buffer.from(body);
    if (this.socket.writable) this.socket.end(rawResponse({ status: this.statusCode, headers: this._flat(), body: b }, true));
    else this.socket.destroy();
    return this;
  }
  /** The headers set, names and values alternating. */
  _flat() {
    const out = [];
    for (const [name, value] of this._headers.values()) {
      for (const v of Array.isArray(value) ? value : [value]) out.push(String(name), String(v));
    }
    return out;
  }
}

/** Serves one upgrade to the Socket.IO path. */
async function handleUpgrade(io, req, socket, head, takeover) {
  socket.on("error", () => {});
  const res = new UpgradeResponse(req, socket);
  let x;
  try {
    if (await applyMiddlewares(io._engineFns, req, res)) {
      return res.writableEnded ? undefined : socket.end(rawResponse({ status: 400, headers: ["Connection", "close", "Content-Type", "text/html"], body: Buffer.from("Bad request") }, true));
    }
    if (res.writableEnded) return;
    x = await ask(io._native, req, await decide(io, req));
  } catch (e) {
    return socket.destroy();
  }
  try {
    if (!(x instanceof binding.NativeExchange)) {
      // A refusal (400, as engine.io's abortUpgrade): answered, then the socket ends.
      if (socket.writable) socket.end(rawResponse(x, true));
      else socket.destroy();
      return;
    }
    if (x.kind !== 3 || socket.destroyed) {
      x.cancel();
      return socket.destroy();
    }
    const handle = socket._handle;
    const fd = takeover && !socket.encrypted && handle && typeof handle.fd === "number" ? handle.fd : -1;
    if (fd >= 0) {
      // Bytes Node read meanwhile go to the core with `head`; then Node stops reading, and
      // its socket is destroyed (its descriptor closed, no FIN: the duplicate lives on).
      const parts = [head];
      let more;
      while ((more = socket.read()) !== null) parts.push(more);
      if (typeof handle.readStop === "function") {
        handle.readStop();
        handle.reading = false;
      }
      if (x.takeover(fd, Buffer.concat(parts), res._flat())) {
        socket.destroy();
        return;
      }
      if (parts.length > 1) socket.unshift(Buffer.concat(parts.slice(1)));
    }
    streamWebSocket(x, socket, head, res._flat());
  } catch (e) {
    raise(e);
    socket.destroy();
  }
}

/** The browser bundles socket.io serves (`serveClient`). */
const CLIENT_FILES = new Set([
  "socket.io.js",
  "socket.io.js.map",
  "socket.io.min.js",
  "socket.io.min.js.map",
  "socket.io.esm.min.js",
  "socket.io.esm.min.js.map",
  "socket.io.msgpack.min.js",
  "socket.io.msgpack.min.js.map",
]);

/** The installed socket.io-client's `dist/` and version, or null when it is not installed. */
function clientDist() {
  try {
    const main = require.resolve("socket.io-client");
    let dir = pathMod.dirname(main);
    while (!fs.existsSync(pathMod.join(dir, "package.json")) && pathMod.dirname(dir) !== dir) dir = pathMod.dirname(dir);
    const version = JSON.parse(fs.readFileSync(pathMod.join(dir, "package.json"), "utf8")).version;
    const dist = pathMod.join(dir, "dist");
    return fs.existsSync(pathMod.join(dist, "socket.io.js")) ? { dist, version } : null;
  } catch {
    return null;
  }
}

/** Serves a client bundle as socket.io does (ETag of the client's version, 304 when it matches). */
function serveClientFile(client, filename, req, res) {
  const etag = `"${client.version}"`;
  const asked = req.headers["if-none-match"];
  if (asked === etag || asked === "W/" + etag) {
    res.writeHead(304);
    return res.end();
  }
  res.setHeader("Cache-Control", "public, max-age=0");
  res.setHeader("Content-Type", "application/" + (filename.endsWith(".map") ? "json" : "javascript") + "; charset=utf-8");
  res.setHeader("ETag", etag);
  const stream = fs.createReadStream(pathMod.join(client.dist, filename));
  stream.on("error", () => {
    if (!res.headersSent) res.writeHead(404);
    res.end();
  });
  stream.once("open", () => res.writeHead(200));
  stream.pipe(res);
}

function isHttpServer(x) {
  return x !== null && typeof x === "object" && typeof x.listen === "function" && typeof x.on === "function";
}

/**
 * Attaches `io` to the Node `srv` as engine.io does. `opts`: `destroyUpgrade` (default true),
 * `destroyUpgradeTimeout` (1000 ms), `takeover` (default true), `serveClient` (default true:
 * the installed socket.io-client's bundles at `<path>/socket.io.js` etc., when installed).
 */
function attach(io, srv, opts) {
  const path = io.path().replace(/\/$/, "") + "/";
  const check = (req) => typeof req.url === "string" && req.url.slice(0, path.length) === path;
  const takeover = opts.takeover !== false;
  const destroyUpgrade = opts.destroyUpgrade !== false;
  const destroyUpgradeTimeout = opts.destroyUpgradeTimeout || 1000;
  const listeners = srv.listeners("request").slice(0);
  srv.removeAllListeners("request");
  srv.on("close", () => io._native.closeSessions());
  const client = opts.serveClient === false ? null : clientDist();
  const clientPrefix = io.path().replace(/\/$/, "");
  srv.on("request", (req, res) => {
    if (client && typeof req.url === "string" && req.url.startsWith(clientPrefix)) {
      const filename = pathMod.basename(req.url.split("?")[0]);
      if (CLIENT_FILES.has(filename) && req.method === "GET") return serveClientFile(client, filename, req, res);
    }
    if (check(req)) {
      handleRequest(io, req, res);
    } else {
      for (const l of listeners) l.call(srv, req, res);
    }
  });
  const transports = io._opts.transports;
  const ws = !transports || (Array.isArray(transports) ? transports : [transports]).includes("websocket");
  if (ws) {
    srv.on("upgrade", (req, socket, head) => {
      if (check(req)) {
        handleUpgrade(io, req, socket, head, takeover);
      } else if (destroyUpgrade) {
        // As engine.io: an upgrade nobody answered is ended.
        setTimeout(() => {
          if (socket.writable && socket.bytesWritten <= 0) {
            socket.on("error", () => {});
            socket.end();
          }
        }, destroyUpgradeTimeout);
      }
    });
  }
}

module.exports = { attach, isHttpServer };
