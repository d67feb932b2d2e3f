"use strict";
// NestJS on polysio: a real Nest application (@nestjs/core, @nestjs/platform-express) whose
// gateways (@nestjs/websockets) are served by polysio through an IoAdapter subclass (README
// "NestJS"), against the npm socket.io-client over polling, websocket and upgrade. Nest 12 is
// ESM: it is imported dynamically; the decorators are applied as `tsc --experimentalDecorators`
// would (reflect-metadata's `Reflect.decorate`), so no build step. The TypeScript example of
// README "NestJS" (examples/nest/main.mts, real decorators) is compiled with tsc and run.

const test = require("node:test");
const assert = require("node:assert");
require("reflect-metadata");
const { io: connect } = require("socket.io-client");
const { Server, Namespace } = require("..");
const fs = require("node:fs");
const path = require("node:path");
const { once, within, until, connected, run, startListening, kill, pkg } = require("./helpers");

/** Nest's modules, imported once. */
let nestModules;
async function nest() {
  if (!nestModules) {
    const [core, common, websockets, platformIo] = await Promise.all([
      import("@nestjs/core"),
      import("@nestjs/common"),
      import("@nestjs/websockets"),
      import("@nestjs/platform-socket.io"),
    ]);
    /** The adapter of README "NestJS": the gateways on polysio, on the app's own port. */
    class PolysioAdapter extends platformIo.IoAdapter {
      createIOServer(port, options) {
        return this.httpServer && port === 0 ? new Server(this.httpServer, options) : new Server(port, options);
      }
    }
    nestModules = { ...core, ...common, ...websockets, PolysioAdapter };
  }
  return nestModules;
}

/** Applies a method's decorators, its parameter decorators first (as tsc's `__decorate`). */
function decorateMethod(cls, name, decorators, params = []) {
  const proto = cls.prototype;
  params.forEach((d, i) => d && d(proto, name, i));
  Object.defineProperty(proto, name, Reflect.decorate(decorators, proto, name, Object.getOwnPropertyDescriptor(proto, name)));
}

/**
 * A Nest application: a controller (`GET /health`), a gateway on `/` and one on `/chat`, both on
 * the application's port. `seen` records what the gateways saw.
 */
async function nestApp(appOptions = {}) {
  const N = await nest();
  const seen = { inits: [], connections: [], disconnects: [], engine: [] };

  class AppController {
    health() {
      return "ok";
    }
  }
  decorateMethod(AppController, "health", [N.Get("health")]);
  Reflect.decorate([N.Controller()], AppController);

  class EventsGateway {
    afterInit(server) {
      seen.inits.push(["/", server]);
      // An Express-style middleware on the handshake and the upgrade.
      server.engine.use((req, res, next) => {
        seen.engine.push(new URL(req.url, "http://x").searchParams.get("transport"));
        res.setHeader("x-nest-engine", "1");
        next();
      });
    }
    handleConnection(client) {
      seen.connections.push(["/", client.id]);
    }
    handleDisconnect(client, reason) {
      seen.disconnects.push(["/", client.id, reason]);
    }
    echo(body, client) {
      assert.ok(client.connected);
      return body;
    }
    later(body) {
      return new Promise((resolve) => setTimeout(() => resolve({ later: body }), 20));
    }
    manual(body, ack) {
      setTimeout(() => ack({ manual: body }), 10);
      return "not sent: the ack is handled by hand";
    }
    reply(body) {
      return { event: "replied", data: body };
    }
    fail() {
      throw new N.WsException("nope");
    }
  }
  decorateMethod(EventsGateway, "echo", [N.SubscribeMessage("echo")], [N.MessageBody(), N.ConnectedSocket()]);
  decorateMethod(EventsGateway, "later", [N.SubscribeMessage("later")], [N.MessageBody()]);
  decorateMethod(EventsGateway, "manual", [N.SubscribeMessage("manual")], [N.MessageBody(), N.Ack()]);
  decorateMethod(EventsGateway, "reply", [N.SubscribeMessage("reply")], [N.MessageBody()]);
  decorateMethod(EventsGateway, "fail", [N.SubscribeMessage("fail")]);
  Reflect.decorate([N.WebSocketGateway({ cors: { origin: "*" } })], EventsGateway);

  class ChatGateway {
    afterInit(nsp) {
      seen.inits.push(["/chat", nsp]);
      nsp.use((socket, next) => (socket.handshake.auth.token === "secret" ? next() : next(new Error("unauthorized"))));
    }
    handleConnection(client) {
      seen.connections.push(["/chat", client.id]);
    }
    handleDisconnect(client, reason) {
      seen.disconnects.push(["/chat", client.id, reason]);
    }
    join(client, room) {
      client.join(room);
      return { joined: room, rooms: [...client.rooms].sort() };
    }
    say(body) {
      (body.room ? this.server.to(body.room) : this.server).emit("said", body.text);
    }
  }
  Reflect.decorate([N.WebSocketServer()], ChatGateway.prototype, "server");
  decorateMethod(ChatGateway, "join", [N.SubscribeMessage("join")], [N.ConnectedSocket(), N.MessageBody()]);
  decorateMethod(ChatGateway, "say", [N.SubscribeMessage("say")], [N.MessageBody()]);
  Reflect.decorate([N.WebSocketGateway({ namespace: "chat" })], ChatGateway);

  class AppModule {}
  Reflect.decorate([N.Module({ controllers: [AppController], providers: [EventsGateway, ChatGateway] })], AppModule);

  const app = await N.NestFactory.create(AppModule, { logger: false, ...appOptions });
  app.useWebSocketAdapter(new N.PolysioAdapter(app));
  await app.listen(0, "127.0.0.1");
  const httpServer = app.getHttpServer();
  return { app, seen, httpServer, chat: app.get(ChatGateway), url: `http://127.0.0.1:${httpServer.address().port}` };
}

function client(url, transports, extra = {}) {
  return connect(url, { transports, forceNew: true, reconnection: false, ...extra });
}

const TRANSPORTS = [["polling"], ["websocket"], ["polling", "websocket"]];

async function upgraded(cs, transports) {
  if (transports.length === 2) await until(() => cs.every((c) => c.io.engine.transport.name === "websocket"), 15000, "upgrade");
  for (const c of cs) assert.strictEqual(c.io.engine.transport.name, transports.includes("websocket") ? "websocket" : "polling");
}

test("NestJS: gateways on / and /chat served by polysio through an IoAdapter, on the app's port", async (t) => {
  const { app, seen, httpServer, chat, url } = await nestApp();
  let closed = false;
  t.after(() => (closed ? undefined : app.close()));

  // The adapter built one polysio Server attached to Nest's http.Server; `/chat` is its namespace.
  assert.strictEqual(seen.inits.length, 2);
  const [[, server]] = seen.inits.filter(([n]) => n === "/");
  const [[, nsp]] = seen.inits.filter(([n]) => n === "/chat");
  assert.ok(server instanceof Server, "afterInit gets the polysio Server");
  assert.strictEqual(server.httpServer, httpServer);
  assert.ok(nsp instanceof Namespace);
  assert.strictEqual(nsp.name, "/chat");
  assert.strictEqual(nsp.server, server);
  assert.strictEqual(chat.server, nsp, "@WebSocketServer() is the namespace");

  // The Nest controller answers on the same port.
  const health = await fetch(`${url}/health`);
  assert.strictEqual(health.status, 200);
  assert.strictEqual(await health.text(), "ok");
  assert.strictEqual((await fetch(`${url}/nothing`)).status, 404);
  const open = await fetch(`${url}/socket.io/?EIO=4&transport=polling`);
  assert.strictEqual(open.status, 200);
  assert.strictEqual(open.headers.get("x-nest-engine"), "1", "io.engine.use from afterInit");

  for (const transports of TRANSPORTS) {
    const c = client(url, transports);
    const d1 = client(`${url}/chat`, transports, { auth: { token: "secret" } });
    const d2 = client(`${url}/chat`, transports, { auth: { token: "secret" } });
    const d3 = client(`${url}/chat`, transports, { auth: { token: "secret" } });
    const all = [c, d1, d2, d3];
    let ids = [];
    try {
      for (const x of all) await connected(x);
      await upgraded(all, transports);
      ids = [
        ["/", c.id],
        ["/chat", d1.id],
        ["/chat", d2.id],
        ["/chat", d3.id],
      ];

      // @SubscribeMessage handlers: the value returned is the ack.
      const bin = Buffer.from([0, 1, 2, 253, 254, 255]);
      const back = await within(c.emitWithAck("echo", { text: "héllo", bin }), 15000, "echo");
      assert.strictEqual(back.text, "héllo");
      assert.ok(Buffer.from(back.bin).equals(bin), "binary round trip");
      assert.deepStrictEqual(await within(c.emitWithAck("later", 5), 15000, "later"), { later: 5 });
      assert.deepStrictEqual(await within(c.emitWithAck("manual", "m"), 15000, "manual"), { manual: "m" });
      // `{ event, data }` is emitted back; a WsException becomes an `exception` event.
      const replied = once(c, "replied");
      c.emit("reply", [1, 2]);
      assert.deepStrictEqual(await replied, [[1, 2]]);
      const exception = once(c, "exception");
      c.emit("fail", "x");
      const [ex] = await exception;
      assert.strictEqual(ex.status, "error");
      assert.strictEqual(ex.message, "nope");

      // Rooms on the namespace, broadcast through @WebSocketServer().
      for (const d of [d1, d2]) {
        const r = await within(d.emitWithAck("join", "lobby"), 15000, "join");
        assert.deepStrictEqual(r, { joined: "lobby", rooms: [d.id, "lobby"].sort() });
      }
      const got1 = once(d1, "said");
      const got2 = once(d2, "said");
      const got3 = once(d3, "said");
      d1.emit("say", { room: "lobby", text: "to the lobby" });
      d1.emit("say", { room: null, text: "to everyone" });
      assert.deepStrictEqual(await got1, ["to the lobby"]);
      assert.deepStrictEqual(await got2, ["to the lobby"]);
      assert.deepStrictEqual(await got3, ["to everyone"], "not in the room: only the broadcast to all");

      // The namespace's middleware (server.use from afterInit) refuses a client without token.
      const bad = client(`${url}/chat`, transports);
      await assert.rejects(connected(bad), /unauthorized/);
      bad.close();
    } finally {
      for (const x of all) x.close();
    }
    for (const [n, id] of ids) assert.ok(seen.connections.some(([m, i]) => m === n && i === id), `handleConnection ${n}`);
    await until(() => ids.every(([n, id]) => seen.disconnects.some(([m, i]) => m === n && i === id)), 15000, "handleDisconnect");
  }
  assert.ok(seen.disconnects.every(([, , reason]) => reason === "client namespace disconnect"), JSON.stringify(seen.disconnects));
  assert.ok(seen.engine.includes("polling") && seen.engine.includes("websocket"), "the middleware saw polling and the upgrade");

  // app.close() closes the gateways' server and the http.Server: connected clients are told.
  const c = client(url, ["websocket"]);
  await connected(c);
  const id = c.id;
  const gone = once(c, "disconnect");
  closed = true;
  await within(app.close(), 15000, "app.close");
  assert.strictEqual((await gone)[0], "transport close");
  assert.strictEqual(httpServer.listening, false);
  await until(() => seen.disconnects.some(([, i]) => i === id), 5000, "handleDisconnect on close");
  assert.strictEqual(seen.disconnects.find(([, i]) => i === id)[2], "server shutting down");
});

test("NestJS with forceCloseConnections: app.close() ends the sessions with the http.Server", async () => {
  const { app, seen, httpServer, url } = await nestApp({ forceCloseConnections: true });
  const cs = [client(url, ["websocket"]), client(url, ["polling"])];
  for (const c of cs) await connected(c);
  const ids = cs.map((c) => c.id);
  const gone = cs.map((c) => once(c, "disconnect"));
  await within(app.close(), 15000, "app.close");
  // The WebSocket (in the core) is closed when the http.Server closes; the long poll's
  // connection is destroyed by Nest (socket.io's client then says "transport error").
  assert.deepStrictEqual(await Promise.all(gone.map((g) => g.then(([reason]) => reason))), ["transport close", "transport error"]);
  assert.strictEqual(httpServer.listening, false);
  await until(() => ids.every((id) => seen.disconnects.some(([, i]) => i === id)), 5000, "handleDisconnect");
});

test("examples/nest/main.mts (README \"NestJS\") compiles with tsc and serves its gateway", async (t) => {
  const dir = path.join(pkg, "examples", "nest");
  const out = path.join(dir, "out.tmp");
  t.after(() => fs.rmSync(out, { recursive: true, force: true }));
  const tsc = path.join(pkg, "node_modules", "typescript", "bin", "tsc");
  const c = await run([process.execPath, tsc, "-p", path.join(dir, "tsconfig.json"), "--noEmit", "false", "--outDir", out], { cwd: pkg });
  assert.strictEqual(c.code, 0, c.stdout + c.stderr);
  const { child, port } = await startListening([process.execPath, path.join(out, "main.mjs")], { cwd: pkg, env: { ...process.env, PORT: "0" } });
  t.after(() => kill(child));
  const url = `http://127.0.0.1:${port}`;
  assert.strictEqual(await (await fetch(`${url}/health`)).text(), "ok");
  const nameless = client(`${url}/chat`, ["websocket"]);
  await assert.rejects(connected(nameless), /a name, please/);
  nameless.close();
  for (const transports of TRANSPORTS) {
    const a = client(`${url}/chat`, transports, { auth: { name: "ann" } });
    const b = client(`${url}/chat`, transports, { auth: { name: "bob" } });
    try {
      await connected(a);
      await connected(b);
      await upgraded([a, b], transports);
      assert.deepStrictEqual(await within(a.emitWithAck("join", "lobby"), 15000, "join"), { joined: "lobby" });
      assert.deepStrictEqual(await within(b.emitWithAck("join", "lobby"), 15000, "join"), { joined: "lobby" });
      const got = once(b, "said");
      a.emit("say", { room: "lobby", text: "hi" });
      assert.deepStrictEqual(await got, ["ann: hi"]);
    } finally {
      a.close();
      b.close();
    }
  }
});
