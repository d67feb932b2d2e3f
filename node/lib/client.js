"use strict";
// The socket.io-client-shaped client: io(), Manager and Socket over the native classes of
// src/client.rs. Listeners run on the JavaScript thread; what they throw surfaces as in
// socket.io-client (the process' `uncaughtException`, see errors.js `raise`).

const { binding, dispatcher, register, newId, callAsync, AckRequest, Hold, K } = require("./native");
const { codedError, expect, checkNotReserved, raise } = require("./errors");
const { Listeners, SocketBase } = require("./listeners");
const { pemOption } = require("./tls");

/** Options passed through to the core (socket.io-client's names). */
const CORE_OPTIONS = [
  "path",
  "transports",
  "upgrade",
  "reconnection",
  "reconnectionAttempts",
  "reconnectionDelay",
  "reconnectionDelayMax",
  "randomizationFactor",
  "timeout",
  "ackTimeout",
  "extraHeaders",
  "sendBufferMax",
  "rejectUnauthorized",
];

function nativeOptions(opts) {
  const out = {};
  for (const k of CORE_OPTIONS) {
    if (opts[k] !== undefined) out[k] = opts[k];
  }
  if (out.reconnectionAttempts === Infinity) delete out.reconnectionAttempts;
  for (const k of ["ca", "cert", "key"]) {
    const pem = pemOption(k, opts[k]);
    if (pem !== undefined) out[k] = pem;
  }
  if (opts.proxy !== undefined && opts.proxy !== null) {
    expect(opts.proxy === false || typeof opts.proxy === "string", "proxy must be false or a proxy URL", opts.proxy);
    out.proxy = opts.proxy;
  }
  if (opts.query !== undefined) {
    if (typeof opts.query === "string") {
      out.query = Object.fromEntries(new URLSearchParams(opts.query));
    } else {
      expect(typeof opts.query === "object" && opts.query !== null, "query must be an object or a string", opts.query);
      out.query = opts.query;
    }
  }
  return out;
}

/** The core's TLS failures read "TLS error: ..." (polysio::Error::Tls). */
const TLS_FAILURE = /^TLS error: /;

function toError(v) {
  if (v instanceof Error) return v;
  const e = new Error(v && typeof v.message === "string" ? v.message : String(v));
  if (v && v.data !== undefined) e.data = v.data;
  if (v && typeof v.description === "string") e.description = v.description;
  if (TLS_FAILURE.test(e.message)) e.code = "ERR_TLS";
  return e;
}

/**
 * One connection to a server, shared by the namespace sockets created from it (socket.io-client's
 * Manager): reconnection with backoff, and the events `open`, `close`, `error`,
 * `reconnect_attempt`, `reconnect`, `reconnect_error`, `reconnect_failed`.
 */
class Manager extends Listeners {
  constructor(uri, opts) {
    super();
    if (uri !== null && typeof uri === "object") {
      opts = uri;
      uri = undefined;
    }
    opts = opts === undefined ? {} : opts;
    expect(typeof opts === "object" && opts !== null, "options must be an object", opts);
    expect(typeof uri === "string", "the server URL must be a string", uri);
    const u = parseUrl(uri);
    /** The server URL. */
    this.uri = uri;
    /** The options. */
    this.opts = opts;
    /** The sockets by namespace. */
    this.nsps = {};
    this._autoConnect = opts.autoConnect !== false;
    this._id = newId();
    this._native = new binding.NativeManager(dispatcher, this._id, u.source, nativeOptions(opts));
    this._hold = new Hold(this);
    // What the connection is doing, as its events tell (for the keep-alive decision).
    this._open = false;
    this._opening = false;
    this._gaveUp = false;
    register(this._id, this);
    // socket.io-client opens at once; sockets created in the same tick open the connection
    // themselves (after registering, so they see its first error), so only open when none was.
    if (this._autoConnect) {
      queueMicrotask(() => {
        if (Object.keys(this.nsps).length === 0) this.open();
      });
    }
  }
  reconnection() {
    return this.opts.reconnection !== false;
  }
  reconnectionAttempts() {
    return this.opts.reconnectionAttempts === undefined ? Infinity : this.opts.reconnectionAttempts;
  }
  reconnectionDelay() {
    return this.opts.reconnectionDelay === undefined ? 1000 : this.opts.reconnectionDelay;
  }
  reconnectionDelayMax() {
    return this.opts.reconnectionDelayMax === undefined ? 5000 : this.opts.reconnectionDelayMax;
  }
  randomizationFactor() {
    return this.opts.randomizationFactor === undefined ? 0.5 : this.opts.randomizationFactor;
  }
  timeout() {
    return this.opts.timeout === undefined ? 20000 : this.opts.timeout;
  }
  /** Opens the connection (sockets connect their namespace themselves). */
  open(fn) {
    if (typeof fn === "function") {
      const onOpen = () => {
        this.off("error", onError);
        fn();
      };
      const onError = (err) => {
        this.off("open", onOpen);
        fn(err);
      };
      this.once("open", onOpen);
      this.once("error", onError);
    }
    this._starting();
    this._native.open();
    return this;
  }
  connect(fn) {
    return this.open(fn);
  }
  /** The socket of namespace `nsp` (one per namespace and manager). */
  socket(nsp, opts = {}) {
    expect(typeof nsp === "string", "a namespace must be a string", nsp);
    if (!nsp.startsWith("/")) nsp = "/" + nsp;
    let s = this.nsps[nsp];
    if (!s) {
      s = new Socket(this, nsp, opts);
    } else if (this._autoConnect && !s.active) {
      s.connect();
    }
    return s;
  }
  /**
   * The open connection as socket.io-client's `engine` shows it: `engine.transport.name` is
   * `"polling"` or `"websocket"`; null while the connection is not open.
   */
  get engine() {
    const name = this._native.transport;
    return name ? { transport: { name } } : null;
  }
  /** Disconnects every socket and closes the connection (no reconnection). */
  close() {
    this._native.close();
    this._updateHold();
    return this;
  }
  disconnect() {
    return this.close();
  }

  /** A connection attempt starts (unless the connection is already open). */
  _starting() {
    this._gaveUp = false;
    if (!this._open) this._opening = true;
  }
  /**
   * Keeps the process alive while a socket is active and the connection is open, being opened,
   * or waiting to reconnect (reconnection on and attempts left) — as socket.io-client does.
   */
  _updateHold() {
    const active = Object.values(this.nsps).some((s) => s.active);
    const busy = this._open || this._opening || (this.reconnection() && !this._gaveUp);
    this._hold.set(active && busy);
  }
  _onNative(ev) {
    switch (ev[0]) {
      case K.MANAGER_EVENT: {
        const [, , name, args] = ev;
        if (name === "open") [this._open, this._opening, this._gaveUp] = [true, false, false];
        else if (name === "close") [this._open, this._opening] = [false, false];
        else if (name === "error") this._opening = false;
        else if (name === "reconnect_attempt") this._starting();
        else if (name === "reconnect_failed") this._gaveUp = true;
        const out = name === "error" || name === "reconnect_error" ? args.map(toError) : args;
        this.emitReserved(name, ...out);
        break;
      }
      case K.CLIENT_EVENT: {
        const s = this.nsps[ev[2]];
        if (s) s._onNative(ev[3], ev[4], ev[5]);
        else if (ev[5] !== 0) binding.dropAck(ev[5]);
        break;
      }
      case K.AUTH: {
        const s = this.nsps[ev[2]];
        const reply = ev[3];
        if (!s || typeof s.auth !== "function") return reply.send(null);
        let done = false;
        try {
          s.auth((data) => {
            if (done) return;
            done = true;
            try {
              reply.send(data === undefined ? null : data);
            } catch (e) {
              raise(e);
              reply.send(null);
            }
          });
        } catch (e) {
          raise(e);
          if (!done) reply.send(null);
        }
        return;
      }
    }
    this._updateHold();
  }
}

/** A namespace socket (socket.io-client's Socket). */
class Socket extends SocketBase {
  constructor(io, nsp, opts = {}) {
    super();
    expect(typeof opts === "object" && opts !== null, "socket options must be an object", opts);
    /** The manager. */
    this.io = io;
    /** The namespace. */
    this.nsp = nsp;
    // As socket.io-client: only the socket's own options carry auth (io() passes its options).
    const auth = opts.auth;
    expect(
      auth === undefined || auth === null || typeof auth === "function" || (typeof auth === "object" && !Array.isArray(auth)),
      "auth must be an object or a function",
      auth,
    );
    /** The auth payload, or a function `(cb) => cb(payload)` called at each connection. */
    this.auth = auth;
    /** True while connected. */
    this.connected = false;
    this._id = undefined;
    this._withErr = io.opts.ackTimeout !== undefined;
    this._native = io._native.socket(nsp, typeof auth === "function" ? null : auth === undefined ? null : auth, typeof auth === "function");
    io.nsps[nsp] = this;
    if (io._autoConnect) this.connect();
  }
  /** The session id while connected. */
  get id() {
    return this.connected ? this._id : undefined;
  }
  get disconnected() {
    return !this.connected;
  }
  /** True while the socket tries to stay connected (it reconnects). */
  get active() {
    return this._native.active;
  }
  /** True when the last connection restored the previous session. */
  get recovered() {
    return this._native.recovered;
  }
  /** Connects (again) the namespace. */
  connect() {
    this.io._starting();
    this._native.connect();
    this.io._updateHold();
    return this;
  }
  open() {
    return this.connect();
  }
  /** Disconnects the namespace; no reconnection follows. Emits buffer until `connect()`. */
  disconnect() {
    this._native.disconnect();
    this.io._updateHold();
    return this;
  }
  close() {
    return this.disconnect();
  }
  /**
   * Emits an event (buffered while disconnected). A function as last argument receives the ack:
   * `(...args)`, or `(err, ...args)` with a timeout.
   */
  emit(event, ...args) {
    checkNotReserved(event);
    const flags = this._takeFlags();
    this._fireAny(this._anyOut, event, args);
    if (typeof args[args.length - 1] === "function") {
      const cb = args.pop();
      this._ackCallback(this._emitWithAck(event, args, flags), cb, flags.timeout !== undefined || this._withErr);
      return this;
    }
    this._native.emit(event, args, !!flags.volatile);
    return this;
  }
  _emitWithAck(event, args, flags) {
    return callAsync((req) =>
      this._native.emitWithAck(event, args, flags.timeout === undefined ? null : flags.timeout, !!flags.volatile, req),
    );
  }
  /** Emits and resolves with the server's first ack argument (rejects on timeout). */
  emitWithAck(event, ...args) {
    const flags = this._takeFlags();
    try {
      checkNotReserved(event);
    } catch (e) {
      return Promise.reject(e);
    }
    this._fireAny(this._anyOut, event, args);
    return this._emitWithAck(event, args, flags).then((r) => r[0]);
  }
  /** Emits a `message` event. */
  send(...args) {
    return this.emit("message", ...args);
  }
  write(...args) {
    return this.send(...args);
  }
  _onNative(name, args, ackId) {
    switch (name) {
      case "connect":
        this._id = this._native.id;
        this.connected = true;
        this.emitReserved("connect");
        return;
      case "connect_error":
        this.emitReserved("connect_error", toError(args[0]));
        return;
      case "disconnect":
        this.connected = false;
        this.emitReserved("disconnect", args[0], undefined);
        return;
    }
    const ack = ackId === 0 ? null : new AckRequest(ackId);
    if (ack) args.push(ack.fn);
    this._fireAny(this._any, name, args);
    this.emitReserved(name, ...args);
    if (ack) ack.settle();
  }
}

function parseUrl(uri) {
  let u;
  try {
    u = new URL(uri);
  } catch {
    throw codedError("ERR_INVALID_ARG_VALUE", `bad URL ${JSON.stringify(uri)}`);
  }
  if (!["http:", "https:", "ws:", "wss:"].includes(u.protocol)) {
    throw codedError("ERR_INVALID_ARG_VALUE", `bad URL ${JSON.stringify(uri)}: expected http://, https://, ws:// or wss://`);
  }
  const port = u.port || (u.protocol === "https:" || u.protocol === "wss:" ? "443" : "80");
  const nsp = u.pathname && u.pathname !== "/" ? u.pathname.replace(/\/+$/, "") : "/";
  return {
    source: `${u.protocol}//${u.hostname.includes(":") && !u.hostname.startsWith("[") ? `[${u.hostname}]` : u.hostname}:${port}${u.search}`,
    id: `${u.protocol}//${u.hostname}:${port}`,
    nsp,
  };
}

const cache = {};

/**
 * Connects to `uri` (e.g. `http://localhost:3000/admin`) and returns the namespace socket, sharing
 * the connection with earlier sockets to the same server unless `forceNew` / `multiplex: false`.
 */
function lookup(uri, opts) {
  if (uri !== null && typeof uri === "object") {
    opts = uri;
    uri = undefined;
  }
  opts = opts === undefined ? {} : opts;
  expect(typeof opts === "object" && opts !== null, "options must be an object", opts);
  expect(typeof uri === "string", "the server URL must be a string (there is no page location in Node)", uri);
  const u = parseUrl(uri);
  const key = `${u.id}${opts.path || "/socket.io"}`;
  const same = cache[key] && u.nsp in cache[key].nsps;
  const fresh = opts.forceNew || opts["force new connection"] || opts.multiplex === false || same;
  let manager;
  if (fresh) {
    manager = new Manager(uri, opts);
  } else {
    if (!cache[key]) cache[key] = new Manager(uri, opts);
    manager = cache[key];
  }
  return manager.socket(u.nsp, opts);
}

module.exports = { io: lookup, connect: lookup, Manager, Socket, protocol: 5 };
