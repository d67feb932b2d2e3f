"use strict";
// Errors with a stable `code`, the same codes the native addon uses (src/error.rs).

/** Builds an Error (or TypeError) carrying `code`. */
function codedError(code, message, Ctor = Error) {
  const e = new Ctor(message);
  e.code = code;
  return e;
}

/** Throws ERR_INVALID_ARG_TYPE unless `ok`. */
function expect(ok, what, value) {
  if (!ok) {
    const shown = value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
    throw codedError("ERR_INVALID_ARG_TYPE", `${what} (got ${shown})`, TypeError);
  }
}

/** The event name check of every emit. */
function checkEventName(event) {
  expect(typeof event === "string", "the event name must be a string", event);
}

const RESERVED = new Set(["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"]);

/** Throws ERR_INVALID_ARG_VALUE for socket.io's reserved event names. */
function checkNotReserved(event) {
  checkEventName(event);
  if (RESERVED.has(event)) {
    throw codedError("ERR_INVALID_ARG_VALUE", `"${event}" is a reserved event name`);
  }
}

/**
 * Reports an error of this layer itself (never of user code: see `raise`) as a process warning
 * (`PolysioHandlerError`, code `ERR_HANDLER_THREW`). Never throws.
 */
function report(err) {
  try {
    const w = new Error(`polysio: ${err && err.message !== undefined ? err.message : String(err)}`, { cause: err });
    w.name = "PolysioHandlerError";
    w.code = "ERR_HANDLER_THREW";
    process.emitWarning(w);
  } catch {}
}

/**
 * Re-throws `err`, thrown by user code (a listener, a middleware, an ack callback), where
 * socket.io would let it go: out of the event loop, as the process' `uncaughtException` (the
 * process ends unless the application listens for it). Thrown from `process.nextTick`, so the
 * events that reached JavaScript with it are all handled first and the native side's
 * bookkeeping (acks, the backpressure count) is never skipped.
 */
function raise(err) {
  process.nextTick(() => {
    throw err;
  });
}

/**
 * Calls the user function `fn` with `args` as socket.io calls listeners: a throw becomes the
 * process' `uncaughtException` (see `raise`); a promise it returns is left alone (its
 * rejection, unhandled, is the process' `unhandledRejection`, as in socket.io).
 */
function safeCall(fn, self, args) {
  try {
    fn.apply(self, args);
  } catch (e) {
    raise(e);
  }
}

module.exports = { codedError, expect, checkEventName, checkNotReserved, report, raise, safeCall, RESERVED };
