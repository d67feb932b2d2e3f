#!/usr/bin/env node
// Runs @socket.io/redis-emitter 5.1.0 operations against a Redis cluster, then exits, for
// core/tests/redis_emitter.rs (a polysio node must accept what Node's emitter publishes):
//   node tests/node/redis-npm-emitter.js REDIS_URL OPS_JSON
// OPS_JSON is an array of {op, nsp?, to?: [rooms], except?: [rooms], volatile?, event?, args?,
// rooms?, close?}, op one of emit, socketsJoin, socketsLeave, disconnectSockets,
// serverSideEmit; an argument (or array item) {"$bin": [bytes]} is sent as a Buffer.
"use strict";

const { Emitter } = require("@socket.io/redis-emitter");
const { Redis } = require("ioredis");

const client = new Redis(process.argv[2]);
const ops = JSON.parse(process.argv[3]);
const arg = (a) =>
  Array.isArray(a) ? a.map(arg) : a && typeof a === "object" && Array.isArray(a.$bin) ? Buffer.from(a.$bin) : a;

(async () => {
  const root = new Emitter(client);
  for (const o of ops) {
    const e = root.of(o.nsp || "/");
    let t = e;
    for (const r of o.to || []) t = t.to(r);
    for (const r of o.except || []) t = t.except(r);
    if (o.volatile) t = t.volatile;
    const args = (o.args || []).map(arg);
    if (o.op === "emit") t.emit(o.event, ...args);
    else if (o.op === "socketsJoin") t.socketsJoin(o.rooms);
    else if (o.op === "socketsLeave") t.socketsLeave(o.rooms);
    else if (o.op === "disconnectSockets") t.disconnectSockets(o.close);
    else if (o.op === "serverSideEmit") e.serverSideEmit(o.event, ...args);
    else throw new Error(`unknown op ${o.op}`);
  }
  await client.ping(); // every PUBLISH before it has been answered
  client.disconnect();
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
