"use strict";
// Serving Socket.IO inside a Node http.Server / https.Server (`new Server(httpServer)`,
// `io.attach(httpServer)`), as engine.io's `attach`: the server's `request` listeners are taken
// over, requests outside the Socket.IO path go to them in order; requests to the path cross
// into the core once each (src/host.rs); WebSockets run on the TCP socket itself (taken over:
// a duplicate of its descriptor) or, over TLS or with `takeover: false`, as bytes crossing.

const { binding, callAsync, startAsync } = require("./native");
const { raise } = require("./errors");

/** How many writes of a streamed WebSocket may wait for the core before its socket pauses. */
const MAX_INFLIGHT = 8;

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
function ask(native, req) {
  const sock = req.socket;
  return startAsync((r) =>
    native.handleRequest(
      req.method,
      req.url,
      req.rawHeaders,
      sock.remoteAddress === undefined ? null : sock.remoteAddress,
      sock.remotePort || 0,
      !!sock.encrypted,
      r,
    ),
  );
}

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
    x = await ask(io._native, req);
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
function streamWebSocket(x, socket, head) {
  socket.write(rawResponse(x.response(), false));
  const ns = x.stream(head);
  let inflight = 0;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    try {
      ns.destroy();
    } catch (e) {
      raise(e);
    }
  };
  socket.on("data", (chunk) => {
    inflight++;
    if (inflight >= MAX_INFLIGHT) socket.pause();
    callAsync((q) => ns.write(chunk, q)).then(
      () => {
        inflight--;
        if (inflight < MAX_INFLIGHT && socket.isPaused() && !socket.destroyed) socket.resume();
      },
      () => {},
    );
  });
  socket.on("end", () => ns.end());
  socket.on("close", close);
  const pump = () => {
    callAsync((q) => ns.read(q)).then(
      (buf) => {
        if (socket.destroyed) return;
        if (buf === null) return socket.end();
        if (socket.write(buf)) pump();
        else socket.once("drain", pump);
      },
      () => socket.destroy(),
    );
  };
  pump();
}

/** Serves one upgrade to the Socket.IO path. */
async function handleUpgrade(io, req, socket, head, takeover) {
  socket.on("error", () => {});
  let x;
  try {
    x = await ask(io._native, req);
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
      if (x.takeover(fd, Buffer.concat(parts))) {
        socket.destroy();
        return;
      }
      if (parts.length > 1) socket.unshift(Buffer.concat(parts.slice(1)));
    }
    streamWebSocket(x, socket, head);
  } catch (e) {
    raise(e);
    socket.destroy();
  }
}

function isHttpServer(x) {
  return x !== null && typeof x === "object" && typeof x.listen === "function" && typeof x.on === "function";
}

/**
 * Attaches `io` to the Node `srv` as engine.io does. `opts`: `destroyUpgrade` (default true),
 * `destroyUpgradeTimeout` (1000 ms), `takeover` (default true).
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
  srv.on("request", (req, res) => {
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
