"use strict";
// Scale-out over Redis: `createAdapter(url, options)` and `createShardedAdapter(url, options)`,
// the adapters of `@socket.io/redis-adapter` 8.3 (classic and sharded formats, wire-compatible
// with npm socket.io nodes), run by the Rust core, which holds its own Redis connections (no
// pub/sub clients to pass).

const { binding, dispatcher, callAsync } = require("./native");
const { expect } = require("./errors");

const COMMON = ["requestsTimeout", "commandTimeout", "maxQueue"];
// The options of each format (npm's names: `key` for createAdapter, `channelPrefix` and
// `subscriptionMode` for createShardedAdapter).
const OPTIONS = {
  classic: ["key", ...COMMON],
  sharded: ["channelPrefix", "subscriptionMode", ...COMMON],
};

/**
 * One process's connection to a Redis server, for `io.adapter(...)` or
 * `new Server({ adapter })`. Every server and namespace given the same adapter shares its two
 * connections (publisher and subscriber).
 */
class RedisAdapter {
  constructor(url, opts = {}, format = "classic") {
    const fn = format === "sharded" ? "createShardedAdapter" : "createAdapter";
    expect(typeof url === "string" && url.length > 0, `${fn} takes a Redis URL (redis://host:port[/db])`, url);
    expect(typeof opts === "object" && opts !== null && !Array.isArray(opts), `${fn} options must be an object`, opts);
    const known = OPTIONS[format];
    const native = { format };
    for (const k of Object.keys(opts)) {
      expect(known.includes(k), `unknown ${fn} option ${k} (known: ${known.join(", ")})`, k);
      if (opts[k] !== undefined) native[k === "channelPrefix" ? "key" : k] = opts[k];
    }
    /** The Redis URL. */
    this.url = url;
    /** The wire format: `"classic"` (createAdapter) or `"sharded"` (createShardedAdapter). */
    this.format = format;
    const prefix = format === "sharded" ? opts.channelPrefix : opts.key;
    /**
     * The channel prefix (`"socket.io"` by default): `@socket.io/redis-adapter`'s `key`, or
     * `channelPrefix` of the sharded format.
     */
    this.key = prefix === undefined ? "socket.io" : prefix;
    /** The sharded format's `subscriptionMode` (`"dynamic"` by default); null for classic. */
    this.subscriptionMode = format === "sharded" ? opts.subscriptionMode || "dynamic" : null;
    /** How long requests to the other nodes wait for their answers, in ms (5000). */
    this.requestsTimeout = opts.requestsTimeout === undefined ? 5000 : opts.requestsTimeout;
    this._native = new binding.NativeRedisAdapter(url, native);
  }
  /** This process's id in the cluster (the `uid` of `@socket.io/redis-adapter`). */
  get uid() {
    return this._native.uid;
  }
  /**
   * Resolves once this node is subscribed to every namespace created so far, i.e. reachable by
   * the other nodes; rejects with `ERR_TIMEOUT` after `timeout` ms (5000). Serving does not
   * need it: local clients are served whatever the state of Redis.
   */
  ready(timeout = 5000) {
    expect(typeof timeout === "number" && timeout >= 0, "timeout must be a non-negative number of milliseconds", timeout);
    return callAsync((req) => this._native.ready(dispatcher, timeout, req)).then(() => undefined);
  }
  /** Counters: `{ published, received, malformed, dropped, connections }`. */
  stats() {
    return this._native.stats();
  }
}

/**
 * The Redis adapter for `io.adapter(createAdapter("redis://127.0.0.1:6379"))`. Options:
 * `key` (channel prefix, "socket.io"), `requestsTimeout` (ms, 5000), `commandTimeout` (ms,
 * 2000: longest wait for one Redis command), `maxQueue` (messages waiting for Redis, 10000;
 * past that they are dropped and counted).
 */
function createAdapter(url, opts) {
  return new RedisAdapter(url, opts, "classic");
}

/**
 * The sharded Redis adapter (npm's `createShardedAdapter`: SPUBLISH/SSUBSCRIBE, Redis 7.0 or
 * later) for `io.adapter(createShardedAdapter("redis://127.0.0.1:6379"))`. Options:
 * `channelPrefix` ("socket.io"), `subscriptionMode` ("static", "dynamic" (default) or
 * "dynamic-private"), and `requestsTimeout`, `commandTimeout`, `maxQueue` as createAdapter's.
 */
function createShardedAdapter(url, opts) {
  return new RedisAdapter(url, opts, "sharded");
}

module.exports = { createAdapter, createShardedAdapter, RedisAdapter };
