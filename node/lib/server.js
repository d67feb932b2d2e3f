"use strict";
// The socket.io-shaped server: Server, Namespace, Socket and BroadcastOperator over the native
// classes of src/server.rs. Handlers run on the JavaScript thread; what they throw surfaces as
// in socket.io (the process' `uncaughtException`, see errors.js `raise`), never in the native
// layer. Emitting to a socket that has left is a no-op, as in socket.io.

const fs = require("node:fs");
const pathMod = require("node:path");
const { binding, dispatcher, targets, register, newId, callAsync, startAsync, askAck, AckRequest, Hold, K } = require("./native");
const { codedError, expect, checkNotReserved, raise, safeCall } = require("./errors");
const { Listeners, SocketBase } = require("./listeners");
const attachMod = require("./attach");
const { serverTls } = require("./tls");
const { RedisAdapter } = require("./redis");

/** Events a namespace's listeners get from the binding itself, not from other nodes. */
const NAMESPACE_RESERVED = new Set(["connect", "connection", "new_namespace"]);

function checkAdapter(a) {
  if (!(a instanceof RedisAdapter)) {
    throw codedError(
      "ERR_INVALID_ARG_VALUE",
      'the adapter must come from polysio\'s createAdapter("redis://...") (adapters of npm packages run in Node, not in the core)',
    );
  }
  return a;
}

/** Server options passed through to the core (socket.io's names). */
const CORE_OPTIONS = [
  "path",
  "pingInterval",
  "pingTimeout",
  "upgradeTimeout",
  "maxHttpBufferSize",
  "transports",
  "allowUpgrades",
  "cors",
  "cookie",
  "connectTimeout",
  "connectionStateRecovery",
  "maxAttachments",
  // Limits and timeouts (see README "Limits and timeouts").
  "httpRequestBodyTimeout",
  "maxBufferedChunks",
  "maxBufferedBytes",
  "writeTimeout",
  "maxPendingMessages",
  "maxHandshakesPerSecond",
  "headersTimeout",
  "keepAliveTimeout",
  "maxConnections",
];

function nativeOptions(opts) {
  expect(typeof opts === "object" && opts !== null && !Array.isArray(opts), "server options must be an object", opts);
  const out = {};
  for (const k of CORE_OPTIONS) {
    if (opts[k] !== undefined) out[k] = opts[k];
  }
  if (opts.allowRequest !== undefined) {
    expect(typeof opts.allowRequest === "function", "allowRequest must be a function", opts.allowRequest);
    out.allowRequest = true;
  }
  if (opts.cors && typeof opts.cors === "object") {
    const o = opts.cors.origin;
    expect(
      o === undefined || typeof o === "string" || typeof o === "boolean" || Array.isArray(o),
      'cors.origin must be "*", true, a string or an array of strings (RegExp and functions are not supported)',
      o,
    );
  }
  if (opts.allowEIO3) {
    throw codedError("ERR_INVALID_ARG_VALUE", "allowEIO3 is not supported: polysio speaks Engine.IO v4 only");
  }
  if (opts.adapter !== undefined && opts.adapter !== null) checkAdapter(opts.adapter);
  return out;
}

function roomList(room) {
  const list = Array.isArray(room) ? room : [room];
  for (const r of list) {
    expect(typeof r === "string" || typeof r === "number", "a room must be a string", r);
  }
  return list.map(String);
}

/**
 * Gives `cls` (whose `_op()` makes a fresh operator) the operator's `methods` and `getters`,
 * each starting from a fresh operator: `io.to(room)` is `io._op().to(room)`, as socket.io's
 * Namespace forwards to its BroadcastOperator.
 */
function forwardToOperator(cls, methods, getters = []) {
  for (const m of methods) {
    Object.defineProperty(cls.prototype, m, {
      value: function (...args) {
        return this._op()[m](...args);
      },
      writable: true,
      configurable: true,
    });
  }
  for (const g of getters) {
    Object.defineProperty(cls.prototype, g, {
      get() {
        return this._op()[g];
      },
      configurable: true,
    });
  }
}

/**
 * Selects sockets of a namespace (rooms, exceptions, flags) and acts on them. Immutable: every
 * selector returns a new operator. Built by `io.to()`, `socket.broadcast`, `nsp.except()`...
 */
class BroadcastOperator {
  constructor(nsp, rooms = [], except = [], flags = {}) {
    this._nsp = nsp;
    this._rooms = rooms;
    this._except = except;
    this._flags = flags;
  }
  _with(rooms, except, flags) {
    return new BroadcastOperator(this._nsp, rooms, except, flags);
  }
  /** Targets a room (or several): sockets in any of the targeted rooms are reached. */
  to(room) {
    return this._with([...new Set([...this._rooms, ...roomList(room)])], this._except, this._flags);
  }
  /** Same as `to`. */
  in(room) {
    return this.to(room);
  }
  /** Skips the sockets in a room (or several, or a socket id). */
  except(room) {
    return this._with(this._rooms, [...new Set([...this._except, ...roomList(room)])], this._flags);
  }
  /** Only this server (not the other nodes of a Redis cluster). */
  get local() {
    return this._with(this._rooms, this._except, { ...this._flags, local: true });
  }
  /** The event may be dropped (not buffered, not kept for state recovery). */
  get volatile() {
    return this._with(this._rooms, this._except, { ...this._flags, volatile: true });
  }
  /** Accepted for compatibility; compression is not applied. */
  compress() {
    return this;
  }
  /** Time limit for the acks of `emit(..., callback)` / `emitWithAck`. */
  timeout(ms) {
    expect(typeof ms === "number" && ms >= 0, "timeout must be a non-negative number of milliseconds", ms);
    return this._with(this._rooms, this._except, { ...this._flags, timeout: ms });
  }
  _target() {
    return { rooms: this._rooms, except: this._except, volatile: !!this._flags.volatile, local: !!this._flags.local };
  }
  _native() {
    this._nsp._checkOpen();
    return this._nsp._native;
  }
  /**
   * Emits to the selected sockets (encoded once, fanned out in Rust). With a callback as last
   * argument, collects every socket's ack: `callback(err, responses)`. Sockets that have left
   * (and every socket, once the server is closed) are not reached; invalid arguments throw.
   */
  emit(event, ...args) {
    checkNotReserved(event);
    if (typeof args[args.length - 1] === "function") {
      const cb = args.pop();
      this._emitWithAck(event, args).then(
        (r) => safeCall(cb, this, [null, r]),
        (e) => safeCall(cb, this, [e, e.responses || []]),
      );
      return true;
    }
    // Also after `close()`: a closed server has no sockets left, the emit reaches nobody.
    this._nsp._native.emit(this._target(), event, args);
    return true;
  }
  /** Starts the emit (throws on invalid arguments); the promise has every socket's reply. */
  _emitWithAck(event, args) {
    const t = this._flags.timeout;
    const target = this._target();
    const native = this._nsp._native;
    // Like socket.io, each socket's response is the first argument of its ack.
    return startAsync((req) => native.emitWithAck(target, t === undefined ? null : t, event, args, req)).then((acks) =>
      acks.map((a) => a[0]),
    );
  }
  /** Emits and resolves with every selected socket's ack (rejects on timeout). */
  emitWithAck(event, ...args) {
    try {
      checkNotReserved(event);
      return this._emitWithAck(event, args);
    } catch (e) {
      return Promise.reject(e);
    }
  }
  /** The selected sockets (the `Socket` objects of this server). */
  fetchSockets() {
    return callAsync((req) => this._native().fetchSockets(this._target(), req)).then((infos) =>
      infos.map((i) => this._nsp._server._findSocket(i.id) || remoteSocket(this._nsp, i)),
    );
  }
  /** The ids of the selected sockets (deprecated in socket.io; use fetchSockets). */
  async allSockets() {
    return new Set((await this.fetchSockets()).map((s) => s.id));
  }
  /** Makes the selected sockets join rooms. */
  socketsJoin(room) {
    this._native().socketsJoin(this._target(), roomList(room));
  }
  /** Makes the selected sockets leave rooms. */
  socketsLeave(room) {
    this._native().socketsLeave(this._target(), roomList(room));
  }
  /** Disconnects the selected sockets (and their whole connection when `close`). */
  disconnectSockets(close = false) {
    this._native().disconnectSockets(this._target(), !!close);
  }
}

/**
 * A socket of another node of the cluster, as `fetchSockets()` returns it (socket.io's
 * RemoteSocket): its id, handshake, rooms and data, and `emit`, `join`, `leave`, `disconnect`
 * sent through the adapter.
 */
class RemoteSocket {
  constructor(nsp, info) {
    this._nsp = nsp;
    this.id = info.id;
    this.handshake = info.handshake;
    this.rooms = new Set(info.rooms);
    this.data = info.data;
  }
  /** Emits to this socket (wherever it is connected). */
  emit(event, ...args) {
    return this._nsp.to(this.id).emit(event, ...args);
  }
  /** Makes it join rooms. */
  join(room) {
    this._nsp.in(this.id).socketsJoin(room);
  }
  /** Makes it leave rooms. */
  leave(room) {
    this._nsp.in(this.id).socketsLeave(room);
  }
  /** Disconnects it (its whole connection when `close`). */
  disconnect(close = false) {
    this._nsp.in(this.id).disconnectSockets(close);
    return this;
  }
  /** A broadcast operator with a timeout, for `emit(..., callback)` to this socket. */
  timeout(ms) {
    return this._nsp.to(this.id).timeout(ms);
  }
}

function remoteSocket(nsp, info) {
  return new RemoteSocket(nsp, info);
}

/** A namespace: its sockets, connection listeners, middlewares; emits broadcast to it. */
class Namespace extends Listeners {
  constructor(server, name, native, id) {
    super();
    /** The namespace name, e.g. `/` or `/admin`. */
    this.name = name;
    /** Connected sockets by id. */
    this.sockets = new Map();
    this._server = server;
    this._native = native;
    this._id = id;
    this._fns = [];
    this._pending = new Map();
    /** Events other nodes may send with serverSideEmit that have a listener here. */
    this._serverSide = new Set();
    this._adapterView = null;
  }
  on(ev, fn) {
    super.on(ev, fn);
    this._watchServerSide(ev);
    return this;
  }
  once(ev, fn) {
    super.once(ev, fn);
    this._watchServerSide(ev);
    return this;
  }
  prependListener(ev, fn) {
    super.prependListener(ev, fn);
    this._watchServerSide(ev);
    return this;
  }
  /** Asks the core for `ev` sent by other nodes with serverSideEmit (once per event). */
  _watchServerSide(ev) {
    if (typeof ev !== "string" || NAMESPACE_RESERVED.has(ev) || this._serverSide.has(ev)) return;
    this._serverSide.add(ev);
    this._native.onServerSideEmit(ev);
  }
  /** `serverSideEmit` from another node: the listeners of `event`, an ack function last when the sender waits. */
  _onServerSide(event, args, ackId) {
    if (ackId === 0) return this._fire(event, args);
    if (this.listenerCount(event) === 0) return binding.dropAck(ackId);
    const ack = new AckRequest(ackId);
    args.push(ack.fn);
    this._fire(event, args);
    ack.settle();
  }
  /**
   * The namespace's adapter, as socket.io's `nsp.adapter` for what crosses nodes:
   * `serverCount()` (this node included) and `allRooms()` (every room on every node).
   */
  get adapter() {
    if (!this._adapterView) {
      const nsp = this;
      this._adapterView = {
        nsp,
        serverCount() {
          return callAsync((req) => nsp._native.serverCount(req)).then((a) => a[0]);
        },
        allRooms() {
          return callAsync((req) => nsp._native.allRooms(req)).then((a) => new Set(a));
        },
      };
    }
    return this._adapterView;
  }
  /** The number of nodes of the cluster, this one included (1 without a Redis adapter). */
  serverCount() {
    return this.adapter.serverCount();
  }
  /** The server. */
  get server() {
    return this._server;
  }
  _checkOpen() {
    if (this._server._closing) throw codedError("ERR_CLOSED", "the server is closed");
  }
  /** Adds a connection middleware `(socket, next) => next(err?)`; an error refuses the socket. */
  use(fn) {
    expect(typeof fn === "function", "a middleware must be a function", fn);
    this._fns.push(fn);
    this._enableMiddleware();
    return this;
  }
  _enableMiddleware() {
    this._native.enableMiddleware();
  }
  _op() {
    return new BroadcastOperator(this);
  }
  /** Emits a `message` event. */
  send(...args) {
    this.emit("message", ...args);
    return this;
  }
  write(...args) {
    return this.send(...args);
  }
  /**
   * Emits `event` to the listeners of this namespace on the other nodes of a Redis cluster
   * (not this one; without a Redis adapter there are none). With a callback last,
   * `callback(err, responses)` gets one answer per other node, or an `ERR_TIMEOUT` error after
   * the adapter's `requestsTimeout`.
   */
  serverSideEmit(event, ...args) {
    checkNotReserved(event);
    expect(typeof event === "string", "an event name must be a string", event);
    this._checkOpen();
    const cb = typeof args[args.length - 1] === "function" ? args.pop() : null;
    if (cb) {
      this._serverSideEmitWithAck(event, args).then(
        (r) => safeCall(cb, this, [null, r]),
        (e) => safeCall(cb, this, [e, []]),
      );
      return true;
    }
    this._native.serverSideEmit(event, args);
    return true;
  }
  _serverSideEmitWithAck(event, args) {
    const a = this._server._adapter;
    const timeout = a ? a.requestsTimeout : 5000;
    return startAsync((req) => this._native.serverSideEmitWithAck(timeout, event, args, req));
  }
  /** Like `serverSideEmit` with a callback: resolves with one answer per other node. */
  serverSideEmitWithAck(event, ...args) {
    try {
      checkNotReserved(event);
      expect(typeof event === "string", "an event name must be a string", event);
      this._checkOpen();
      return this._serverSideEmitWithAck(event, args);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  // Called by Server._onNative.
  _middleware(socket, reply) {
    this._pending.set(socket.id, socket);
    const fns = this._fns.slice();
    let i = 0;
    let answered = false;
    const answer = (err) => {
      if (answered) return;
      answered = true;
      if (err) this._pending.delete(socket.id);
      try {
        if (err) {
          const msg = err instanceof Error || (err && typeof err.message === "string") ? err.message : String(err);
          reply.resolve(msg, err.data === undefined ? null : err.data);
        } else {
          reply.resolve(null, null);
        }
      } catch (e) {
        // `err.data` that cannot be sent: refused all the same, without it.
        raise(e);
        reply.resolve("middleware error", null);
      }
    };
    const next = (err) => {
      if (err) return answer(err);
      if (i >= fns.length) return answer(null);
      const fn = fns[i++];
      let called = false;
      try {
        // A promise it returns is left alone, as in socket.io: `next` decides.
        fn(socket, (e) => {
          if (called) return;
          called = true;
          next(e);
        });
      } catch (e) {
        // As socket.io, the throw surfaces as the process' uncaughtException; the socket is
        // refused with its message rather than left waiting for its connect timeout.
        raise(e);
        if (!called) {
          called = true;
          answer(e);
        }
      }
    };
    next();
  }

  _connected(socket) {
    this._pending.delete(socket.id);
    this.sockets.set(socket.id, socket);
    socket._syncData();
    for (const ev of ["connect", "connection"]) this._fire(ev, [socket]);
    socket._syncData();
  }
}

// Selecting and acting on sockets: `to`, `emit` (to every socket of the namespace), ...
forwardToOperator(
  Namespace,
  ["to", "in", "except", "timeout", "compress", "emit", "emitWithAck", "fetchSockets", "allSockets", "socketsJoin", "socketsLeave", "disconnectSockets"],
  ["local", "volatile"],
);

/** The namespace returned by `io.of(regexp or function)`: its children are created on demand. */
class ParentNamespace extends Namespace {
  constructor(server, native, id, matcher) {
    super(server, "", native, id);
    this._matcher = matcher;
    /** The child namespaces created so far. */
    this.children = new Set();
  }
  _match(name, auth, reply) {
    const m = this._matcher;
    if (m instanceof RegExp) {
      m.lastIndex = 0;
      reply.send(m.test(name));
      return;
    }
    let done = false;
    try {
      m(name, auth, (err, ok) => {
        if (done) return;
        done = true;
        reply.send(!err && !!ok);
      });
    } catch (e) {
      raise(e);
      if (!done) reply.send(false);
    }
  }
  _createChild(name) {
    const id = newId();
    const child = new Namespace(this._server, name, this._server._native.of(name, id), id);
    child._parentNsp = this;
    child._enableMiddleware = () => this._native.enableMiddleware();
    child._fns = this._fns.slice();
    for (const ev of ["connect", "connection"]) {
      for (const l of this._ee.listeners(ev)) child._ee.on(ev, l);
    }
    this.children.add(child);
    this._server._register(child);
    return child;
  }
}

/** One client connected to one namespace. */
class Socket extends SocketBase {
  constructor(nsp, native) {
    super();
    this.nsp = nsp;
    /** The socket id (also the name of its own room). */
    this.id = native.id;
    this._native = native;
    this._fns = [];
    this._connected = false;
    this._roomsSnapshot = null;
    this._handshake = null;
    /** The native side's number for this socket (set when it connects). */
    this._key = 0;
    const d = native.data();
    /** Arbitrary data of this socket (restored by connection state recovery). */
    this.data = d === null || d === undefined ? {} : d;
  }
  /** The server. */
  get server() {
    return this.nsp._server;
  }
  /** True while connected. */
  get connected() {
    return this._connected;
  }
  get disconnected() {
    return !this._connected;
  }
  /** True when restored by connection state recovery. */
  get recovered() {
    return this._native.recovered;
  }
  /** The handshake: headers, time, address, xdomain, secure, issued, url, query, auth. */
  get handshake() {
    if (!this._handshake) {
      const h = this._native.handshake();
      this._handshake = {
        headers: h.headers,
        time: new Date(h.issued).toString(),
        address: h.address,
        xdomain: h.xdomain,
        secure: h.secure,
        issued: h.issued,
        url: h.url,
        query: h.query,
        auth: h.auth,
      };
    }
    return this._handshake;
  }
  /** A subset of the HTTP request that opened the connection (`headers`, `url`). */
  get request() {
    const h = this.handshake;
    return { headers: h.headers, url: h.url };
  }
  /** The Engine.IO connection: `id`, `transport.name`, `close()`. */
  get conn() {
    const native = this._native;
    return {
      id: native.connId,
      get transport() {
        return { name: native.transport };
      },
      close() {
        native.closeConn();
      },
    };
  }
  /** The rooms this socket is in (its own id included). */
  get rooms() {
    if (this._roomsSnapshot) return new Set(this._roomsSnapshot);
    return new Set(this._native.rooms());
  }
  /** Catch-all for outgoing events (emits and broadcasts reaching this socket, just after). */
  onAnyOutgoing(fn) {
    super.onAnyOutgoing(fn);
    this._native.watchOutgoing(this.nsp._server._id, this._key, dispatcher);
    return this;
  }
  prependAnyOutgoing(fn) {
    super.prependAnyOutgoing(fn);
    this._native.watchOutgoing(this.nsp._server._id, this._key, dispatcher);
    return this;
  }
  /** Adds a middleware run on every incoming event: `([event, ...args], next) => next(err?)`. */
  use(fn) {
    expect(typeof fn === "function", "a middleware must be a function", fn);
    this._fns.push(fn);
    return this;
  }
  /**
   * Sends an event to this client; returns true. A function as last argument asks for an ack:
   * it gets the client's answer (with `timeout(ms)`: `(err, ...answer)`). Once the client has
   * left, as in socket.io: nothing is sent, and the ack callback is called with a timeout error
   * when the timeout expires (never without a timeout). Invalid arguments throw.
   */
  emit(event, ...args) {
    checkNotReserved(event);
    const flags = this._takeFlags();
    if (typeof args[args.length - 1] === "function") {
      const cb = args.pop();
      this._ackCallback(this._emitWithAck(event, args, flags.timeout), cb, flags.timeout !== undefined);
      return true;
    }
    this._native.emit(event, args);
    return true;
  }
  _emitWithAck(event, args, timeout) {
    return askAck((req) => this._native.emitWithAck(event, args, timeout === undefined ? null : timeout, req, dispatcher), timeout);
  }
  /**
   * Emits and resolves with the client's first ack argument; with `timeout(ms)`, rejects with
   * `ERR_TIMEOUT` when no answer came in time (also when the client left: as in socket.io,
   * without a timeout the promise then never settles).
   */
  emitWithAck(event, ...args) {
    const flags = this._takeFlags();
    try {
      checkNotReserved(event);
      return this._emitWithAck(event, args, flags.timeout).then((r) => r[0]);
    } catch (e) {
      return Promise.reject(e);
    }
  }
  /** Emits a `message` event. */
  send(...args) {
    this.emit("message", ...args);
    return this;
  }
  write(...args) {
    return this.send(...args);
  }
  /** Broadcast to every other socket of the namespace. */
  get broadcast() {
    return new BroadcastOperator(this.nsp, [], [this.id]);
  }
  /** Broadcast to a room, this socket excluded. */
  to(room) {
    return this.broadcast.to(room);
  }
  in(room) {
    return this.to(room);
  }
  /** Broadcast to every other socket except those in `room`. */
  except(room) {
    return this.broadcast.except(room);
  }
  /** Joins a room (or several). */
  join(rooms) {
    this._native.join(roomList(rooms));
  }
  /** Leaves a room. */
  leave(room) {
    expect(typeof room === "string" || typeof room === "number", "a room must be a string", room);
    this._native.leave(String(room));
  }
  /** Disconnects this socket; with `close`, the whole connection (every namespace). */
  disconnect(close = false) {
    this._native.disconnect(!!close);
    return this;
  }

  _syncData() {
    if (!this.nsp._server._recovery) return;
    try {
      this._native.setData(this.data === undefined ? null : this.data);
    } catch (e) {
      raise(e);
    }
  }
  _run(event, args) {
    if (this._any.length > 0) this._fireAny(this._any, event, args);
    this._fire(event, args);
    this._syncData();
  }
  /** A `socket.use` middleware refused a packet: `error` listeners, as socket.io's `_onerror`. */
  _onerror(err) {
    // An EventEmitter `error` without listeners throws: the process' uncaughtException.
    if (this._ee.listenerCount("error") > 0) this._fire("error", [err]);
    else raise(err);
  }
  _dispatch(event, args) {
    const fns = this._fns;
    if (fns.length === 0) return this._run(event, args);
    const run = () => this._run(event, args);
    let i = 0;
    const packet = [event, ...args];
    const next = (err) => {
      if (err) return this._onerror(err);
      if (i >= fns.length) return run();
      const fn = fns[i++];
      try {
        fn(packet, next);
      } catch (e) {
        raise(e);
      }
    };
    next();
  }
  _onEvent(event, args, ackId) {
    if (ackId === 0) return this._dispatch(event, args);
    const ack = new AckRequest(ackId);
    args.push(ack.fn);
    this._dispatch(event, args);
    ack.settle();
  }
  _onOutgoing(event, args) {
    this._fireAny(this._anyOut, event, args);
  }
  _onDisconnecting(reason, rooms) {
    this._roomsSnapshot = rooms;
    try {
      this._fire("disconnecting", [reason]);
    } finally {
      this._roomsSnapshot = null;
    }
  }
  _onDisconnect(reason) {
    this._connected = false;
    this._fire("disconnect", [reason, undefined]);
  }
}

/**
 * A Socket.IO server served by the polysio Rust core.
 *
 *     const { Server } = require("polysio");
 *     const io = new Server({ cors: { origin: "*" } });
 *     io.on("connection", (socket) => socket.on("ping", (cb) => cb("pong")));
 *     io.listen(3000);
 */
class Server {
  /**
   * `new Server(opts)`, `new Server(port, opts)` (the core's own listener), or
   * `new Server(httpServer, opts)` (attached to a Node http.Server / https.Server).
   */
  constructor(srv, opts) {
    if (srv !== undefined && srv !== null && typeof srv === "object" && !attachMod.isHttpServer(srv)) {
      opts = srv;
      srv = undefined;
    }
    if (opts === undefined) opts = {};
    const native = nativeOptions(opts);
    /** The standalone listener's certificate and key (`opts.tls`), or null. */
    this._tls = serverTls(opts.tls);
    this._opts = opts;
    this._recovery = !!opts.connectionStateRecovery;
    this._id = newId();
    this._nativeOpts = native;
    /** The Redis adapter (`opts.adapter` or `io.adapter(...)`), or null: in-memory. */
    this._adapter = opts.adapter || null;
    this._native = new binding.NativeServer(dispatcher, this._id, native, this._adapter ? this._adapter._native : null);
    this._allowRequest = opts.allowRequest;
    this._nsps = new Map();
    this._byId = new Map();
    /** Connected sockets by their native key (events name their socket by it). */
    this._byKey = new Map();
    this._hold = new Hold(this);
    this._closeHold = new Hold(this);
    this._closing = null;
    this._port = null;
    register(this._id, this);
    /** The main namespace `/`. */
    this.sockets = this.of("/");
    /** The Node http.Server attached to (`attach`), if any. */
    this.httpServer = null;
    this._engine = null;
    /** `io.engine.use` middlewares. */
    this._engineFns = [];
    if (srv !== undefined && srv !== null) this.attach(srv, opts);
  }
  /** The options given to the constructor. */
  get opts() {
    return this._opts;
  }
  /**
   * The Engine.IO level: `clientsCount`, and `use(middleware)` (Express-style
   * `(req, res, next)` run on every request to the Socket.IO path, upgrades included, when
   * attached to an http.Server).
   */
  get engine() {
    if (!this._engine) {
      const io = this;
      this._engine = {
        get clientsCount() {
          return io._native.clientsCount();
        },
        use(fn) {
          expect(typeof fn === "function", "a middleware must be a function", fn);
          expect(io._port === null, "io.engine.use needs the server attached to an http.Server (new Server(httpServer))", fn);
          io._engineFns.push(fn);
          return this;
        },
      };
    }
    return this._engine;
  }
  /**
   * `io.adapter(createAdapter(url, opts))` sets the Redis adapter (before `listen` / `attach`
   * and before any dynamic namespace); `io.adapter()` returns the current one (null: the
   * in-memory adapter).
   */
  adapter(a) {
    if (a === undefined) return this._adapter;
    checkAdapter(a);
    if (this._closing) throw codedError("ERR_CLOSED", "the server is closed");
    expect(this._port === null && this.httpServer === null, "set the adapter before listen() / attach(), or pass it to the constructor (new Server({ adapter }))", a);
    for (const n of this._byId.values()) {
      expect(n instanceof Namespace && !(n instanceof ParentNamespace), "set the adapter before creating dynamic namespaces", a);
    }
    const native = new binding.NativeServer(dispatcher, this._id, this._nativeOpts, a._native);
    // Nothing served yet: the namespaces move to the new core server, which gets what was
    // registered on the old one.
    this._native = native;
    this._adapter = a;
    for (const nsp of this._nsps.values()) {
      nsp._native = native.of(nsp.name, nsp._id);
      if (nsp._fns.length > 0) {
        nsp._native.enableMiddleware();
      }
      for (const ev of nsp._serverSide) nsp._native.onServerSideEmit(ev);
    }
    if (this._statics) {
      for (const [p, [body, type]] of this._statics) native.serveStatic(p, body, type);
    }
    return this;
  }
  /** The Socket.IO path. */
  path() {
    return this._opts.path || "/socket.io";
  }
  /**
   * Binds `port` (0 for any free port; see `address()`) on all interfaces, or `opts.host`, and
   * serves in the background. Throws `ERR_LISTEN` at once if the port cannot be bound. Given a
   * Node http.Server / https.Server, attaches to it instead (see `attach`).
   */
  listen(port, opts = {}) {
    if (attachMod.isHttpServer(port)) return this.attach(port, opts);
    if (this._closing) throw codedError("ERR_CLOSED", "the server is closed");
    if (typeof port === "string" && /^\d+$/.test(port)) port = Number(port);
    expect(Number.isInteger(port) && port >= 0 && port <= 65535, "port must be an integer between 0 and 65535", port);
    expect(typeof opts === "object" && opts !== null, "listen options must be an object", opts);
    const host = opts.host === undefined ? "" : opts.host;
    expect(typeof host === "string", "host must be a string", host);
    expect(this.httpServer === null, "the server is attached to an http.Server already", port);
    expect(this._engineFns.length === 0, "io.engine.use needs the server attached to an http.Server (new Server(httpServer))", port);
    const tls = opts.tls !== undefined && opts !== this._opts ? serverTls(opts.tls) : this._tls;
    this._port = this._native.listen(host, port, tls ? tls.cert : null, tls ? tls.key : null);
    this._tls = tls;
    this._host = host;
    this._hold.set(true);
    return this;
  }
  /**
   * Attaches to a Node http.Server / https.Server as socket.io does: its `request` listeners
   * get every request outside the Socket.IO path, upgrades to other paths are ended after
   * `destroyUpgradeTimeout` ms unless `destroyUpgrade: false`, and when it closes every session
   * ends. WebSockets run on the TCP socket itself unless `takeover: false` (or TLS). Given a
   * port, same as `listen(port)`. Server options go to the constructor.
   */
  attach(srv, opts = {}) {
    if (!attachMod.isHttpServer(srv)) return this.listen(srv, opts);
    if (this._closing) throw codedError("ERR_CLOSED", "the server is closed");
    expect(typeof opts === "object" && opts !== null, "attach options must be an object", opts);
    expect(this.httpServer === null && this._port === null, "the server is attached or listening already", srv);
    if (this._tls || (opts !== this._opts && opts.tls)) {
      throw codedError("ERR_INVALID_ARG_VALUE", "the tls option is for polysio's own listener (listen(port)); attached, the https.Server's TLS is used");
    }
    const merged = { ...this._opts, ...opts };
    for (const k of CORE_OPTIONS) {
      if (opts !== this._opts && opts[k] !== undefined && opts[k] !== this._opts[k]) {
        throw codedError("ERR_INVALID_ARG_VALUE", `give ${k} to the constructor (new Server(httpServer, { ${k} })), not to attach`);
      }
    }
    for (const k of ["destroyUpgrade", "takeover", "serveClient"]) {
      expect(merged[k] === undefined || typeof merged[k] === "boolean", `${k} must be a boolean`, merged[k]);
    }
    const t = merged.destroyUpgradeTimeout;
    expect(t === undefined || (typeof t === "number" && t >= 0), "destroyUpgradeTimeout must be a non-negative number of milliseconds", t);
    attachMod.attach(this, srv, merged);
    this.httpServer = srv;
    return this;
  }
  /**
   * Replaces the TLS listener's certificate and key (`{ cert, key }`, PEM strings or Buffers,
   * as `tls.Server#setSecureContext`) without a restart: connections accepted from now on get
   * the new certificate, open ones keep theirs. Throws `ERR_TLS` if they do not load or do not
   * match (the current ones stay), `ERR_LISTEN` unless listening over TLS.
   */
  setSecureContext(options) {
    const tls = serverTls(options);
    expect(tls !== null, "setSecureContext takes { cert, key }", options);
    this._native.setSecureContext(tls.cert, tls.key);
    this._tls = tls;
  }
  /** The bound address `{ address, port, family }`, or null before `listen`. */
  address() {
    if (this.httpServer) return this.httpServer.address();
    if (this._port === null) return null;
    const address = this._host || "::";
    return { address, port: this._port, family: address.includes(":") ? "IPv6" : "IPv4" };
  }
  /**
   * Serves a file (given by its path) or a Buffer at URL `urlPath`, outside the Socket.IO path.
   * The content is read once, now. `contentType` defaults from the file extension.
   */
  serveStatic(urlPath, content, contentType) {
    expect(typeof urlPath === "string", "the URL path must be a string", urlPath);
    expect(contentType === undefined || typeof contentType === "string", "contentType must be a string", contentType);
    let body;
    if (typeof content === "string") {
      body = fs.readFileSync(content);
    } else {
      expect(Buffer.isBuffer(content) || content instanceof Uint8Array, "content must be a file path or a Buffer", content);
      body = Buffer.from(content);
    }
    const name = typeof content === "string" ? content : urlPath;
    const type = contentType || mimeType(name);
    this._native.serveStatic(urlPath, body, type);
    // Kept for io.adapter(), which moves the server to a new core server.
    (this._statics || (this._statics = new Map())).set(urlPath, [body, type]);
    return this;
  }
  /** The namespace `name`, or a dynamic parent namespace for a RegExp or a function. */
  of(name, fn) {
    let nsp;
    if (typeof name === "string") {
      if (!name.startsWith("/")) name = "/" + name;
      nsp = this._nsps.get(name);
      if (!nsp) {
        const id = newId();
        nsp = new Namespace(this, name, this._native.of(name, id), id);
        this._register(nsp);
      }
    } else if (name instanceof RegExp || typeof name === "function") {
      const id = newId();
      nsp = new ParentNamespace(this, this._native.ofDynamic(id), id, name);
      this._byId.set(id, nsp);
    } else {
      expect(false, "a namespace must be a string, a RegExp or a function", name);
    }
    if (fn !== undefined) {
      expect(typeof fn === "function", "a connection listener must be a function", fn);
      nsp.on("connect", fn);
    }
    return nsp;
  }
  _register(nsp) {
    this._nsps.set(nsp.name, nsp);
    this._byId.set(nsp._id, nsp);
    if (this.sockets) {
      this.sockets._fire("new_namespace", [nsp]);
    }
  }
  _findSocket(id) {
    for (const nsp of this._nsps.values()) {
      const s = nsp.sockets.get(id);
      if (s) return s;
    }
    return null;
  }
  /** Adds a connection middleware to `/`. */
  use(fn) {
    this.sockets.use(fn);
    return this;
  }
  to(room) {
    return this.sockets.to(room);
  }
  in(room) {
    return this.sockets.in(room);
  }
  except(room) {
    return this.sockets.except(room);
  }
  timeout(ms) {
    return this.sockets.timeout(ms);
  }
  get local() {
    return this.sockets.local;
  }
  get volatile() {
    return this.sockets.volatile;
  }
  compress() {
    return this.sockets.compress();
  }
  /** Emits to every socket of `/`. */
  emit(event, ...args) {
    return this.sockets.emit(event, ...args);
  }
  emitWithAck(event, ...args) {
    return this.sockets.emitWithAck(event, ...args);
  }
  send(...args) {
    this.sockets.send(...args);
    return this;
  }
  write(...args) {
    return this.send(...args);
  }
  serverSideEmit(event, ...args) {
    return this.sockets.serverSideEmit(event, ...args);
  }
  serverSideEmitWithAck(event, ...args) {
    return this.sockets.serverSideEmitWithAck(event, ...args);
  }
  /** The number of nodes of the cluster, this one included (1 without a Redis adapter). */
  serverCount() {
    return this.sockets.serverCount();
  }
  fetchSockets() {
    return this.sockets.fetchSockets();
  }
  allSockets() {
    return this.sockets.allSockets();
  }
  socketsJoin(room) {
    this.sockets.socketsJoin(room);
  }
  socketsLeave(room) {
    this.sockets.socketsLeave(room);
  }
  disconnectSockets(close = false) {
    this.sockets.disconnectSockets(close);
  }
  on(ev, fn) {
    this.sockets.on(ev, fn);
    return this;
  }
  addListener(ev, fn) {
    return this.on(ev, fn);
  }
  once(ev, fn) {
    this.sockets.once(ev, fn);
    return this;
  }
  prependListener(ev, fn) {
    this.sockets.prependListener(ev, fn);
    return this;
  }
  off(ev, fn) {
    this.sockets.off(ev, fn);
    return this;
  }
  removeListener(ev, fn) {
    return this.off(ev, fn);
  }
  removeAllListeners(ev) {
    this.sockets.removeAllListeners(ev);
    return this;
  }
  listeners(ev) {
    return this.sockets.listeners(ev);
  }
  listenerCount(ev) {
    return this.sockets.listenerCount(ev);
  }
  /**
   * Disconnects every socket ("server shutting down"), closes every connection and frees the
   * port. Resolves once done; afterwards nothing of this server keeps the process alive.
   */
  close(fn) {
    if (!this._closing) {
      this._closing = new Promise((resolve) => {
        this._onClosed = resolve;
      });
      this._closeHold.set(true);
      // As socket.io: the attached http.Server closes too.
      if (this.httpServer) this.httpServer.close(() => {});
      try {
        this._native.close();
      } catch (e) {
        this._finishClose();
        throw e;
      }
    }
    if (typeof fn === "function") this._closing.then(() => safeCall(fn, this, []));
    return this._closing;
  }
  _finishClose() {
    this._hold.set(false);
    this._closeHold.set(false);
    targets.delete(this._id);
    if (this._onClosed) this._onClosed();
  }

  _nspFor(ns, name) {
    let nsp = this._nsps.get(name);
    if (!nsp) {
      const owner = this._byId.get(ns);
      if (owner instanceof ParentNamespace) nsp = owner._createChild(name);
    }
    return nsp;
  }
  _onNative(ev) {
    switch (ev[0]) {
      case K.MIDDLEWARE: {
        const nsp = this._nspFor(ev[2], ev[3]);
        if (!nsp) return ev[5].resolve("Invalid namespace", null);
        nsp._middleware(new Socket(nsp, ev[4]), ev[5]);
        return;
      }
      case K.CONNECTION: {
        const nsp = this._nspFor(ev[2], ev[3]);
        if (!nsp) return;
        const native = ev[4];
        // The wrapper made for the middlewares (same core socket) carries on.
        const socket = nsp._pending.get(native.id) || new Socket(nsp, native);
        socket._connected = true;
        socket._key = ev[5];
        this._byKey.set(ev[5], socket);
        nsp._connected(socket);
        return;
      }
      case K.EVENT: {
        const s = this._byKey.get(ev[2]);
        if (s) s._onEvent(ev[3], ev[4], ev[5]);
        else if (ev[5] !== 0) binding.dropAck(ev[5]);
        return;
      }
      case K.DISCONNECTING: {
        const s = this._byKey.get(ev[2]);
        if (s) s._onDisconnecting(ev[3], ev[4]);
        return;
      }
      case K.DISCONNECT: {
        const s = this._byKey.get(ev[2]);
        if (s) {
          this._byKey.delete(ev[2]);
          if (s.nsp.sockets.get(s.id) === s) s.nsp.sockets.delete(s.id);
          s._onDisconnect(ev[3]);
        }
        return;
      }
      case K.OUTGOING: {
        const s = this._byKey.get(ev[2]);
        if (s) s._onOutgoing(ev[3], ev[4]);
        return;
      }
      case K.CLOSED:
        this._finishClose();
        return;
      case K.SERVER_SIDE: {
        const nsp = this._byId.get(ev[2]);
        if (nsp) nsp._onServerSide(ev[3], ev[4], ev[5]);
        else if (ev[5] !== 0) binding.dropAck(ev[5]);
        return;
      }
      case K.MATCH: {
        const parent = this._byId.get(ev[2]);
        if (parent instanceof ParentNamespace) parent._match(ev[3], ev[4], ev[5]);
        else ev[5].send(false);
        return;
      }
      case K.ALLOW_REQUEST: {
        const reply = ev[3];
        let done = false;
        try {
          this._allowRequest(ev[2], (err, ok) => {
            if (done) return;
            done = true;
            reply.send(ok ? true : err ? String(err.message || err) : "");
          });
        } catch (e) {
          raise(e);
          if (!done) reply.send("");
        }
        return;
      }
    }
  }
}

const MIME = {
  ".html": "text/html; charset=utf-8",
  ".htm": "text/html; charset=utf-8",
  ".js": "application/javascript; charset=utf-8",
  ".mjs": "application/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
  ".wasm": "application/wasm",
};

function mimeType(name) {
  return MIME[pathMod.extname(name).toLowerCase()] || "application/octet-stream";
}

module.exports = { Server, Namespace, ParentNamespace, Socket, BroadcastOperator, roomList, forwardToOperator };
