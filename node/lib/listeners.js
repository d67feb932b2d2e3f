"use strict";
// Listener storage shared by the server's Namespace and Socket and the client's Manager and
// Socket: socket.io's `on/once/off` methods over a private EventEmitter (so `emit` stays free to
// mean "send"), and the catch-all `onAny` / `onAnyOutgoing` lists. Listeners are called through
// `_fire`, which calls each listener as socket.io would (a throw becomes the process'
// `uncaughtException`, see errors.js `raise`) without letting it into the native layer.

const { EventEmitter } = require("node:events");
const { expect, safeCall } = require("./errors");

function checkListener(fn) {
  expect(typeof fn === "function", "a listener must be a function", fn);
}

class Listeners {
  constructor() {
    this._ee = new EventEmitter();
    this._ee.setMaxListeners(0);
  }
  on(ev, fn) {
    checkListener(fn);
    this._ee.on(ev, fn);
    return this;
  }
  addListener(ev, fn) {
    return this.on(ev, fn);
  }
  addEventListener(ev, fn) {
    return this.on(ev, fn);
  }
  once(ev, fn) {
    checkListener(fn);
    this._ee.once(ev, fn);
    return this;
  }
  prependListener(ev, fn) {
    checkListener(fn);
    this._ee.prependListener(ev, fn);
    return this;
  }
  /** `off(ev, fn)` removes one listener, `off(ev)` all of `ev`, `off()` every listener. */
  off(ev, fn) {
    if (ev === undefined) this._ee.removeAllListeners();
    else if (fn === undefined) this._ee.removeAllListeners(ev);
    else this._ee.off(ev, fn);
    return this;
  }
  removeListener(ev, fn) {
    return this.off(ev, fn);
  }
  removeEventListener(ev, fn) {
    return this.off(ev, fn);
  }
  removeAllListeners(ev) {
    return this.off(ev);
  }
  listeners(ev) {
    return this._ee.listeners(ev);
  }
  listenerCount(ev) {
    return this._ee.listenerCount(ev);
  }
  hasListeners(ev) {
    return this._ee.listenerCount(ev) > 0;
  }
  /** Calls the listeners of `ev` locally (socket.io's emitReserved); never throws. */
  emitReserved(ev, ...args) {
    this._fire(ev, args);
    return this;
  }
  /** Calls the listeners of `ev` with `args` (see `safeCall` in errors.js); never throws. */
  _fire(ev, args) {
    const ls = this._ee.rawListeners(ev);
    for (let i = 0; i < ls.length; i++) safeCall(ls[i], this, args);
  }
}

/** Listeners plus socket.io's catch-all lists. */
class AnyListeners extends Listeners {
  constructor() {
    super();
    this._any = [];
    this._anyOut = [];
  }
  /** Catch-all listener for incoming events: `(event, ...args)`. */
  onAny(fn) {
    checkListener(fn);
    this._any.push(fn);
    return this;
  }
  prependAny(fn) {
    checkListener(fn);
    this._any.unshift(fn);
    return this;
  }
  offAny(fn) {
    this._any = fn ? this._any.filter((f) => f !== fn) : [];
    return this;
  }
  listenersAny() {
    return this._any.slice();
  }
  /** Catch-all listener for outgoing events: `(event, ...args)`. */
  onAnyOutgoing(fn) {
    checkListener(fn);
    this._anyOut.push(fn);
    return this;
  }
  prependAnyOutgoing(fn) {
    checkListener(fn);
    this._anyOut.unshift(fn);
    return this;
  }
  offAnyOutgoing(fn) {
    this._anyOut = fn ? this._anyOut.filter((f) => f !== fn) : [];
    return this;
  }
  listenersAnyOutgoing() {
    return this._anyOut.slice();
  }
  _fireAny(list, event, args) {
    for (const l of list.slice()) safeCall(l, this, [event, ...args]);
  }
}

/** What server and client sockets share: emit flags and ack callbacks. */
class SocketBase extends AnyListeners {
  constructor() {
    super();
    this._flags = {};
  }
  /** Sets an ack timeout for the next emit (its callback then gets `(err, ...args)`). */
  timeout(ms) {
    expect(typeof ms === "number" && ms >= 0, "timeout must be a non-negative number of milliseconds", ms);
    this._flags.timeout = ms;
    return this;
  }
  /** The next emit may be dropped rather than buffered. */
  get volatile() {
    this._flags.volatile = true;
    return this;
  }
  /** Accepted for compatibility; compression is not applied. */
  compress() {
    return this;
  }
  /** The flags of this emit (they apply to one emit only). */
  _takeFlags() {
    const flags = this._flags;
    this._flags = {};
    return flags;
  }
  /**
   * Feeds an ack promise to a socket.io-style callback: `(...args)`, or `(err, ...args)` when
   * `withErr` (a timeout was set); without it, failures are not reported (as socket.io).
   */
  _ackCallback(promise, cb, withErr) {
    promise.then(
      (r) => safeCall(cb, this, withErr ? [null, ...r] : r),
      (e) => {
        if (withErr) safeCall(cb, this, [e]);
      },
    );
  }
}

module.exports = { Listeners, AnyListeners, SocketBase };
