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
 * Reports an error thrown (or a promise rejected) by a user handler: to `error` listeners of
 * the given emitters (the first that has some), else as a process warning. Never throws.
 */
function report(err, ...emitters) {
  try {
    for (const em of emitters) {
      if (em && em.listenerCount("error") > 0) {
        em.emit("error", err);
        return;
      }
    }
    const w = new Error(`a socket handler threw: ${err && err.message !== undefined ? err.message : String(err)}`, { cause: err });
    w.name = "PolysioHandlerError";
    w.code = "ERR_HANDLER_THREW";
    process.emitWarning(w);
  } catch (e) {
    // An `error` listener that throws itself: last resort, never let it escape.
    try {
      process.emitWarning(String(e && e.stack ? e.stack : e), "PolysioHandlerError");
    } catch {}
  }
}

/** Calls `fn` with `args`, reporting throws and rejections instead of letting them escape. */
function safeCall(fn, self, args, ...emitters) {
  try {
    const r = fn.apply(self, args);
    if (r && typeof r.then === "function") {
      r.then(undefined, (e) => report(e, ...emitters));
    }
  } catch (e) {
    report(e, ...emitters);
  }
}

module.exports = { codedError, expect, checkEventName, checkNotReserved, report, safeCall, RESERVED };
