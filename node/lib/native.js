"use strict";
// The bridge to the native addon: one dispatcher per JavaScript realm receives every event the
// Rust side reports, in batches, and routes them to the server or client they belong to.

const binding = require("../native.js");
const { codedError, report } = require("./errors");

/** Event kinds, as src/dispatch.rs numbers them. */
const K = {
  MIDDLEWARE: 1,
  CONNECTION: 2,
  EVENT: 3,
  DISCONNECTING: 4,
  DISCONNECT: 5,
  OUTGOING: 6,
  CLOSED: 7,
  MATCH: 8,
  ALLOW_REQUEST: 9,
  DONE: 10,
  SERVER_SIDE: 11,
  CLIENT_EVENT: 20,
  MANAGER_EVENT: 21,
  AUTH: 22,
};

/**
 * Servers and client managers by id (each has `_onNative(event)`), held weakly: an object that
 * is neither listening nor active can be garbage-collected with its native half.
 */
const targets = new Map();
/** Objects that hold the event loop; kept alive while they do. */
const held = new Set();
/** Callbacks of asynchronous operations (acks, fetchSockets) by request id. */
const pending = new Map();
let nextId = 1;

/** The native events of the batch being dispatched, and the next one's index. */
let natives = null;
let nextNative = 0;

/**
 * Receives one batch (see src/dispatch.rs): JSON text of an array of events, or `[texts,
 * natives]`: several such texts in order, where the events JSON cannot carry (native objects,
 * binary data) are `0` and taken from `natives` in order.
 */
function dispatch(batch) {
  // The broadcasts the handlers make are written once the whole batch is handled (one write
  // per socket for all of them).
  try {
    binding.cork();
    if (typeof batch === "string") {
      run(batch);
      return;
    }
    natives = batch[1];
    nextNative = 0;
    const texts = batch[0];
    for (let i = 0; i < texts.length; i++) run(texts[i]);
  } catch (e) {
    // Nothing may be thrown into the threadsafe function (Node-API would make it a fatal
    // exception and the rest of the batch would be lost); user code never gets here (see
    // errors.js `safeCall`).
    report(e);
  } finally {
    natives = null;
    binding.uncork();
    // The next batch once the event loop has had a turn (timers, I/O): see src/dispatch.rs.
    setImmediate(resume);
  }
  // Returning hands the batch's messages back to the core (src/dispatch.rs): their clients'
  // connections are read again if they were held back.
}

/** Lets the dispatcher start the next batch (see `dispatch`). */
function resume() {
  try {
    dispatcher.resume();
  } catch (e) {
    report(e);
  }
}

/** Dispatches the events of one JSON text of a batch. */
function run(text) {
  let events;
  try {
    events = JSON.parse(text);
  } catch (e) {
    report(e);
    return;
  }
  for (let i = 0; i < events.length; i++) {
    let ev = events[i];
    if (ev === 0) ev = natives[nextNative++];
    try {
      if (ev[0] === K.DONE) {
        const cb = pending.get(ev[1]);
        if (cb) {
          cancel(ev[1]);
          cb(ev[2], ev[3]);
        }
        continue;
      }
      const t = targets.get(ev[1]);
      const target = t && t.deref();
      if (target) target._onNative(ev);
      else if (t) targets.delete(ev[1]);
    } catch (e) {
      // Handlers are already guarded; this is a bug in this layer. Report, never throw.
      report(e);
    }
  }
}

const dispatcher = new binding.NativeDispatcher(dispatch);

/**
 * Ack requests whose function was not called while its handler ran: when the function is
 * garbage-collected unanswered, the native side forgets the request.
 */
const unanswered = new FinalizationRegistry((id) => {
  try {
    binding.dropAck(id);
  } catch {}
});

/**
 * An ack request of an event (its id from the native side): `fn` is the function the handler
 * gets as last argument; its first call sends `(...reply)`, later calls do nothing. Call
 * `settle()` once the handler has run.
 */
class AckRequest {
  constructor(id) {
    this.id = id;
    this.watched = false;
    const self = this;
    this.fn = function (...reply) {
      self._answer(reply);
    };
  }
  _answer(reply) {
    const id = this.id;
    if (id === 0) return;
    this.id = 0;
    if (this.watched) unanswered.unregister(this);
    const json = toJson(reply);
    if (json !== undefined) binding.ackJson(id, json);
    else binding.ack(id, reply);
  }
  /** The handler ran: if it has not answered, the request is dropped with its function. */
  settle() {
    if (this.id !== 0 && !this.watched) {
      this.watched = true;
      unanswered.register(this.fn, this.id, this);
    }
  }
}

/**
 * `JSON.stringify(args)` when that is both what the native conversion (src/convert.rs) would
 * send and cheaper: the reply holds objects or arrays (which Node-API walks one property at a
 * time), no binary data, no `toJSON` methods, no long strings (V8's `JSON.stringify` escapes
 * strings a character at a time, several times slower than the native road for a 4 KiB string)
 * and is not too deep; else `undefined`: the values then take the Node-API road, which keeps
 * binary data and reports what cannot be sent.
 */
function toJson(args) {
  budget = JSON_STRING_BUDGET;
  let objects = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (typeof a === "string") budget -= a.length;
    else if (a !== null && typeof a === "object") {
      if (!plain(a, 1)) return undefined;
      objects = true;
    }
  }
  if (!objects || budget < 0) return undefined;
  try {
    return JSON.stringify(args);
  } catch {
    return undefined;
  }
}

/** String characters a reply may hold and still go as `JSON.stringify` text. */
const JSON_STRING_BUDGET = 512;
/** What is left of it while `toJson` looks at a reply. */
let budget = 0;

/**
 * True when `v` holds no binary data and no `toJSON` method, less than 100 levels deep, and
 * its strings stay within `budget`.
 */
function plain(v, depth) {
  if (typeof v === "string") return (budget -= v.length) >= 0;
  if (v === null || typeof v !== "object") return true;
  if (depth >= 100 || ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return false;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (!plain(v[i], depth + 1)) return false;
    return true;
  }
  if (typeof v.toJSON === "function") return false;
  for (const k in v) {
    if (Object.prototype.hasOwnProperty.call(v, k) && !plain(v[k], depth + 1)) return false;
  }
  return true;
}

/** Registers a server or a manager under `id`. */
function register(id, target) {
  targets.set(id, new WeakRef(target));
}

/** A fresh id for a server, a manager or a namespace. */
function newId() {
  return nextId++;
}

/**
 * Registers `cb(error, value)` for an asynchronous operation; returns its request id. While
 * requests are pending the event loop stays alive (the native side always completes them: at
 * the latest when their socket or server goes), as socket.io's ack timers keep it alive.
 */
function request(cb) {
  const id = nextId++;
  pending.set(id, cb);
  pendingHold.set(true);
  return id;
}

/** Forgets a request whose native call threw (no completion will come). */
function cancel(id) {
  pending.delete(id);
  if (pending.size === 0) pendingHold.set(false);
}

/**
 * Starts a native asynchronous operation (`start(req)` calls the addon with the request id) and
 * settles with its completion; a synchronous throw rejects.
 */
function callAsync(start) {
  return new Promise((resolve, reject) => {
    const req = request((err, value) => (err ? reject(err) : resolve(value)));
    try {
      start(req);
    } catch (e) {
      cancel(req);
      reject(e);
    }
  });
}

/** Like `callAsync`, but a synchronous throw of `start` is thrown (nothing is started). */
function startAsync(start) {
  let resolve, reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const req = request((err, value) => (err ? reject(err) : resolve(value)));
  try {
    start(req);
  } catch (e) {
    cancel(req);
    throw e;
  }
  return promise;
}

/** The largest delay `setTimeout` takes (longer ones fire at once, with a warning). */
const MAX_TIMER = 2 ** 31 - 1;

/**
 * Asks for an ack the socket.io way (`start(req)` calls the addon with the request id): resolves
 * with the reply's arguments, rejects with `ERR_TIMEOUT` after `timeout` ms. When the socket has
 * left (before or after the emit; the addon says `ERR_CLOSED`) the promise behaves as socket.io's
 * does for a socket that is gone: with a timeout it rejects with `ERR_TIMEOUT` when the timeout
 * expires (counted from the emit, on an unreferenced timer), without one it never settles.
 * Invalid arguments throw synchronously (the emit is then not made).
 */
function askAck(start, timeout) {
  const begun = Date.now();
  let resolve, reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const gone = () => {
    if (timeout === undefined || timeout === null) return;
    const left = Math.max(0, begun + timeout - Date.now());
    if (!(left <= MAX_TIMER)) return;
    const t = setTimeout(() => reject(codedError("ERR_TIMEOUT", "operation has timed out")), left);
    if (typeof t.unref === "function") t.unref();
  };
  const req = request((err, value) => {
    if (!err) resolve(value);
    else if (err.code === "ERR_CLOSED") gone();
    else reject(err);
  });
  try {
    start(req);
  } catch (e) {
    cancel(req);
    if (!e || e.code !== "ERR_CLOSED") throw e;
    gone();
  }
  return promise;
}

/**
 * A keep-alive token of `owner`: while held, Node's event loop stays alive (a listening server,
 * an active client) and so does `owner`. `set(true)` / `set(false)` are idempotent.
 */
class Hold {
  constructor(owner) {
    this.owner = owner;
    this.held = false;
  }
  set(on) {
    if (on && !this.held) {
      dispatcher.hold();
      held.add(this);
      this.held = true;
    } else if (!on && this.held) {
      dispatcher.release();
      held.delete(this);
      this.held = false;
    }
  }
}

/** Holds the event loop while requests are pending (see `request`). */
const pendingHold = new Hold(pending);

module.exports = { binding, dispatcher, targets, register, newId, request, callAsync, startAsync, askAck, AckRequest, Hold, K };
