"use strict";
// polysio: the socket.io server API (and, from "polysio/client", the socket.io-client API),
// served by the polysio Rust core. See README.md and index.d.ts.

const { Server, Namespace, ParentNamespace, Socket, BroadcastOperator } = require("./lib/server");
const { binding } = require("./lib/native");
const { expect } = require("./lib/errors");
const { createAdapter, createShardedAdapter, RedisAdapter } = require("./lib/redis");
const { createEmitter, Emitter } = require("./lib/emitter");

/**
 * Process-wide settings, before the first server or client is created:
 * `workerThreads` (the runtime's thread count; default POLYSIO_WORKER_THREADS or the CPU count
 * up to 4).
 */
function configure(opts) {
  expect(typeof opts === "object" && opts !== null, "configure() takes an options object", opts);
  if (opts.workerThreads !== undefined) {
    expect(Number.isInteger(opts.workerThreads) && opts.workerThreads > 0, "workerThreads must be a positive integer", opts.workerThreads);
    binding.setWorkerThreads(opts.workerThreads);
  }
}

module.exports = {
  Server,
  Namespace,
  ParentNamespace,
  Socket,
  BroadcastOperator,
  configure,
  createAdapter,
  createShardedAdapter,
  RedisAdapter,
  createEmitter,
  Emitter,
  version: require("./package.json").version,
};
