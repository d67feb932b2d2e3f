"use strict";
// The Redis emitter: `createEmitter(url, options)`, npm `@socket.io/redis-emitter` 5.1's
// `Emitter` for Node processes that are not Socket.IO servers (a worker, a cron job), run by
// the Rust core (src/redis.rs), which holds its own Redis connection (no client to pass).
// Classic format (@socket.io/redis-adapter's nodes) or streams format
// (@socket.io/redis-streams-adapter's nodes, as @socket.io/redis-streams-emitter writes it).

const { binding, dispatcher, callAsync } = require("./native");
const { expect, checkNotReserved } = require("./errors");
const { roomList, forwardToOperator } = require("./server");

const COMMON = ["format", "commandTimeout", "maxQueue"];
// The options of each format, npm's names (`key` of @socket.io/redis-emitter, `streamName` and
// `maxLen` of @socket.io/redis-streams-emitter).
const OPTIONS = {
  classic: ["key", ...COMMON],
  streams: ["streamName", "maxLen", ...COMMON],
};

/** Throws as npm's emitter does when an ack callback is given. */
function noAck(args) {
  if (typeof args[args.length - 1] === "function") {
    throw new Error("Acknowledgements are not supported");
  }
}

/**
 * Rooms, exceptions and flags chosen on an `Emitter`, then one operation (npm's
 * `BroadcastOperator` of @socket.io/redis-emitter). Immutable: each modifier returns a new one.
 */
class EmitterBroadcastOperator {
  constructor(emitter, rooms = [], except = [], flags = {}) {
    this._emitter = emitter;
    this._rooms = rooms;
    this._except = except;
    this._flags = flags;
  }
  /** Targets a room (or several): sockets in any of the targeted rooms are reached. */
  to(room) {
    return new EmitterBroadcastOperator(this._emitter, [...new Set([...this._rooms, ...roomList(room)])], this._except, this._flags);
  }
  /** Same as `to`. */
  in(room) {
    return this.to(room);
  }
  /** Skips the sockets in a room (or several, or a socket id). */
  except(room) {
    return new EmitterBroadcastOperator(this._emitter, this._rooms, [...new Set([...this._except, ...roomList(room)])], this._flags);
  }
  /** The event may be lost (not sent to a client that is not ready to take it). */
  get volatile() {
    return new EmitterBroadcastOperator(this._emitter, this._rooms, this._except, { ...this._flags, volatile: true });
  }
  /** Accepted for compatibility; compression is not applied. */
  compress() {
    return this;
  }
  _target() {
    return { rooms: this._rooms, except: this._except, volatile: !!this._flags.volatile, local: false };
  }
  /**
   * Emits to the selected sockets of every node; returns true. Only queued (see `flush()`).
   * Reserved event names and an ack callback throw.
   */
  emit(event, ...args) {
    checkNotReserved(event);
    noAck(args);
    this._emitter._native().emit(this._emitter.nsp, this._target(), event, args);
    return true;
  }
  /** Makes the selected sockets of every node join rooms. */
  socketsJoin(rooms) {
    this._emitter._native().socketsJoin(this._emitter.nsp, this._target(), roomList(rooms));
  }
  /** Makes the selected sockets of every node leave rooms. */
  socketsLeave(rooms) {
    this._emitter._native().socketsLeave(this._emitter.nsp, this._target(), roomList(rooms));
  }
  /** Disconnects the selected sockets of every node (their whole connection when `close`). */
  disconnectSockets(close = false) {
    this._emitter._native().disconnectSockets(this._emitter.nsp, this._target(), !!close);
  }
}

/** What the emitters of one `createEmitter` share: the native emitter, closed or not. */
class Shared {
  constructor(native) {
    this.native = native;
    this.closed = null;
  }
}

/**
 * Sends to the sockets of a Socket.IO cluster over Redis without being a node of it:
 * `@socket.io/redis-emitter` 5.1's `Emitter`, with `flush()` and `close()`.
 */
class Emitter {
  constructor(url, opts = {}, shared = null, nsp = "/") {
    if (shared === null) {
      expect(typeof url === "string" && url.length > 0, "createEmitter takes a Redis URL (redis://host:port[/db])", url);
      expect(typeof opts === "object" && opts !== null && !Array.isArray(opts), "createEmitter options must be an object", opts);
      const format = opts.format === undefined ? "classic" : opts.format;
      expect(format === "classic" || format === "streams", 'createEmitter format must be "classic" or "streams"', format);
      const known = OPTIONS[format];
      const native = { format };
      for (const k of Object.keys(opts)) {
        expect(known.includes(k), `unknown createEmitter option ${k} for the ${format} format (known: ${known.join(", ")})`, k);
        if (opts[k] !== undefined) native[k] = opts[k];
      }
      shared = new Shared(new binding.NativeEmitter(url, native));
      shared.url = url;
      shared.format = format;
      shared.key = format === "classic" ? (opts.key === undefined ? "socket.io" : opts.key) : null;
      shared.streamName = format === "streams" ? (opts.streamName === undefined ? "socket.io" : opts.streamName) : null;
    }
    this._shared = shared;
    /** The namespace this emitter sends to (`"/"` unless `of()` said otherwise). */
    this.nsp = nsp;
  }
  /** The Redis URL. */
  get url() {
    return this._shared.url;
  }
  /** The wire format: `"classic"` or `"streams"`. */
  get format() {
    return this._shared.format;
  }
  /** The classic format's channel prefix (`"socket.io"` by default); null for streams. */
  get key() {
    return this._shared.key;
  }
  /** The streams format's stream (`"socket.io"` by default); null for classic. */
  get streamName() {
    return this._shared.streamName;
  }
  _native() {
    return this._shared.native;
  }
  _op() {
    return new EmitterBroadcastOperator(this);
  }
  /** The same emitter (same connection) for namespace `nsp` (a leading `/` is added when missing). */
  of(nsp) {
    expect(typeof nsp === "string", "of() takes a namespace name", nsp);
    return new Emitter(null, null, this._shared, (nsp[0] !== "/" ? "/" : "") + nsp);
  }
  /** Emits `event` to the server-side listeners (`io.on(event)`) of every node. No ack. */
  serverSideEmit(event, ...args) {
    noAck(args);
    this._native().serverSideEmit(this.nsp, event, args);
  }
  /**
   * Resolves once every message queued before the call is written to Redis; rejects
   * (`ERR_TRANSPORT`) when a write failed since the previous flush (Redis away or slow: the
   * message is dropped after `commandTimeout`), `ERR_CLOSED` once closed.
   */
  flush() {
    return callAsync((req) => this._native().flush(dispatcher, req)).then(() => undefined);
  }
  /**
   * Closes the emitter (and every emitter `of()` gave): later operations throw `ERR_CLOSED`.
   * Resolves once the messages queued before are written (or dropped); then the connection
   * goes. Idempotent.
   */
  close() {
    const s = this._shared;
    if (s.closed === null) s.closed = callAsync((req) => s.native.close(dispatcher, req)).then(() => undefined);
    return s.closed;
  }
  /** Counters: `{ published, dropped }` messages (and `received`, `malformed`, `connections`, 0). */
  stats() {
    return this._native().stats();
  }
}

// npm's Emitter's own operations, each on a fresh operator: `emit` (to every socket of the
// namespace on every node), `to`, `in`, `except`, `volatile`, `compress`, `socketsJoin`,
// `socketsLeave`, `disconnectSockets`.
forwardToOperator(Emitter, ["emit", "to", "in", "except", "compress", "socketsJoin", "socketsLeave", "disconnectSockets"], ["volatile"]);

/**
 * A Redis emitter (`@socket.io/redis-emitter`'s `new Emitter(redisClient, opts)`):
 * `createEmitter("redis://127.0.0.1:6379").to("room1").emit("news", data)`. Options: `format`
 * ("classic", or "streams" for @socket.io/redis-streams-adapter nodes), `key` (classic: channel
 * prefix, "socket.io"), `streamName` (streams: "socket.io"), `maxLen` (streams: MAXLEN ~ of each
 * XADD, 10000), `commandTimeout` (ms, 2000), `maxQueue` (messages waiting for Redis, 10000).
 */
function createEmitter(url, opts) {
  return new Emitter(url, opts === undefined ? {} : opts);
}

module.exports = { createEmitter, Emitter, EmitterBroadcastOperator };
