"use strict";
// TLS options shared by the client (`ca`, `cert`, `key`) and the standalone server
// (`tls: { cert, key }`): PEM as Node's tls options take it, handed to the core as bytes.

const { codedError, expect } = require("./errors");

/**
 * A PEM option as one Buffer: a string, a Buffer / Uint8Array, or (as Node's tls options) an
 * array of them, concatenated. Undefined when absent.
 */
function pemOption(name, v) {
  if (v === undefined || v === null) return undefined;
  const one = (x) => {
    if (typeof x === "string") return Buffer.from(x);
    expect(x instanceof Uint8Array, `${name} must be a PEM string or Buffer (or an array of them)`, x);
    return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
  };
  if (!Array.isArray(v)) return one(v);
  return Buffer.concat(v.flatMap((x) => [one(x), Buffer.from("\n")]));
}

/** The keys of the server's `tls` option (those of `https.createServer` polysio implements). */
const SERVER_KEYS = ["cert", "key"];

/**
 * The server's `tls` option (`{ cert, key }`, PEM strings or Buffers, as `https.createServer`
 * takes them) as `{ cert, key }` Buffers, or null when absent. Throws a coded error for
 * anything else, never ignores an option.
 */
function serverTls(tls) {
  if (tls === undefined || tls === null || tls === false) return null;
  expect(typeof tls === "object" && !Array.isArray(tls), "tls must be an object { cert, key }", tls);
  for (const k of Object.keys(tls)) {
    if (!SERVER_KEYS.includes(k) && tls[k] !== undefined) {
      const why =
        k === "requestCert" || k === "ca"
          ? "polysio's listener does not ask for client certificates; terminate mutual TLS at a proxy or attach to an https.Server"
          : "polysio's listener takes PEM cert and key only";
      throw codedError("ERR_INVALID_ARG_VALUE", `tls.${k} is not supported (${why})`);
    }
  }
  const cert = pemOption("tls.cert", tls.cert);
  const key = pemOption("tls.key", tls.key);
  if (cert === undefined || key === undefined) {
    throw codedError("ERR_INVALID_ARG_VALUE", "tls needs both cert and key (PEM strings or Buffers)");
  }
  return { cert, key };
}

module.exports = { pemOption, serverTls };
