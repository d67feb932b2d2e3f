// A typed chat server and client with polysio, checked by `tsc --noEmit` (node/test/run.sh) and
// runnable as JavaScript once compiled. Event maps type every emit, listener and ack, as with
// socket.io.
import { Server, createAdapter, createEmitter, type Emitter, type RedisAdapter, type Socket } from "polysio";
import { io } from "polysio/client";
import { createServer } from "node:http";

interface ServerToClientEvents {
  chat: (msg: { name: string; text: string }) => void;
  typing: (name: string) => void;
  question: (n: number, answer: (doubled: number) => void) => void;
  bin: (data: Buffer) => void;
}

interface ClientToServerEvents {
  join: (room: string, ack: (joined: string) => void) => void;
  chat: (msg: { name: string; text: string }) => void;
  typing: (name: string) => void;
}

interface InterServerEvents {
  ping: () => void;
}

interface SocketData {
  room: string;
}

const ioServer = new Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>({
  pingInterval: 10000,
  cors: { origin: "*" },
  connectionStateRecovery: { maxDisconnectionDuration: 60000 },
});

ioServer.use((socket, next) => {
  if (socket.handshake.auth.token !== "secret") {
    const err: Error & { data?: unknown } = new Error("not authorized");
    err.data = { hint: "send auth.token" };
    return next(err);
  }
  next();
});

ioServer.on("connection", (socket: Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>) => {
  socket.on("join", (room, ack) => {
    for (const r of socket.rooms) if (r !== socket.id) socket.leave(r);
    socket.join(room);
    socket.data.room = room;
    ack(room);
  });
  socket.on("chat", (msg) => {
    ioServer.to(socket.data.room).emit("chat", msg);
  });
  socket.on("typing", (name) => socket.to(socket.data.room).except("muted").emit("typing", name));
  socket.on("disconnect", (reason) => {
    const r: string = reason;
    void r;
  });
  socket.emit("bin", Buffer.from([1, 2, 3]));
  socket
    .timeout(1000)
    .emitWithAck("question", 21)
    .then((doubled) => {
      const n: number = doubled;
      void n;
    })
    .catch((err: Error) => console.error(err.message));
});

// Misuse the types catch (never called: these lines only exist for the type checker).
export function misuse(
  socket: Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>,
  client: ReturnType<typeof io<ServerToClientEvents, ClientToServerEvents>>,
): void {
  // @ts-expect-error: "chat" takes a message object, not a number
  socket.emit("chat", 42);
  // @ts-expect-error: unknown event for this map
  socket.emit("no-such-event");
  // @ts-expect-error: "join" needs a room and an ack
  client.emit("join");
}

/** Scale-out over Redis: a server of a cluster (not started here: it needs a redis-server). */
function clusterNode(url: string): Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData> {
  const adapter: RedisAdapter = createAdapter(url, { key: "socket.io", requestsTimeout: 5000 });
  const node = new Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>({ adapter });
  node.on("ping", () => node.local.emit("typing", "another node"));
  return node;
}
void clusterNode;

/** A worker that is not a server sends to the cluster's clients (not run here: it needs a redis-server). */
async function worker(url: string): Promise<void> {
  const emitter: Emitter<ServerToClientEvents> = createEmitter<ServerToClientEvents>(url, { key: "socket.io" });
  const sent: true = emitter.to("lobby").except("muted").emit("typing", "a worker");
  emitter.of("/admin").volatile.emit("bin", Buffer.from([1, 2, 3]));
  emitter.in(["lobby", "hall"]).socketsJoin("all");
  emitter.disconnectSockets(true);
  emitter.serverSideEmit("ping");
  void sent;
  await emitter.flush();
  await emitter.close();
}
void worker;

async function main(): Promise<void> {
  // Without a Redis adapter, the cluster is this server alone.
  const nodes: number = await ioServer.serverCount();
  if (nodes !== 1 || ioServer.adapter() !== null) throw new Error(`a lone server counts ${nodes} nodes`);
  ioServer.serverSideEmit("ping");
  ioServer.listen(0, { host: "127.0.0.1" });
  const port = ioServer.address()?.port;
  const client = io<ServerToClientEvents, ClientToServerEvents>(`http://127.0.0.1:${port}`, {
    auth: { token: "secret" },
    reconnectionDelayMax: 2000,
  });
  client.on("question", (n, answer) => answer(n * 2));
  client.on("chat", (msg) => console.log(`${msg.name}: ${msg.text}`));
  client.on("bin", (data) => console.log("binary", [...data]));
  client.on("connect_error", (err) => console.error(err.message, err.data));
  await new Promise<void>((resolve) => client.once("connect", () => resolve()));
  const room: string = await client.emitWithAck("join", "lobby");
  const echoed = new Promise<void>((resolve) => client.once("chat", () => resolve()));
  client.emit("chat", { name: "ts", text: `hello ${room}` });
  await echoed;
  const sockets = await ioServer.in("lobby").fetchSockets();
  console.log("in lobby:", sockets.map((s) => s.data.room));
  client.disconnect();
  await ioServer.close();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});

/** Attached to a Node http.Server (Express, Fastify, NestJS): typed, not run here. */
export function attached(): Server {
  const httpServer = createServer((req, res) => res.end("ok"));
  const srv = new Server(httpServer, { takeover: true, destroyUpgradeTimeout: 1000, serveClient: false });
  srv.engine.use((req, res, next) => {
    res.setHeader("x-seen", String(req.headers.host));
    next();
  });
  srv.close();
  return new Server().attach(createServer(), { destroyUpgrade: false });
}
