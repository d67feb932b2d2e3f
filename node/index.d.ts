// Type definitions of polysio's socket.io-shaped server (hand-written; the native addon's own
// generated declarations are native.d.ts). The shapes follow socket.io 4.8's.
/// <reference types="node" />

/** A map of event names to listener signatures. */
export interface EventsMap {
  [event: string]: any;
}
/** Untyped events: any name, any arguments. */
export interface DefaultEventsMap {
  [event: string]: (...args: any[]) => void;
}
export type EventNames<Map extends EventsMap> = keyof Map & string;
export type EventParams<Map extends EventsMap, Ev extends EventNames<Map>> = Parameters<Map[Ev]>;
/** The last element of a tuple (an ack callback). */
export type Last<T extends any[]> = T extends [...infer _H, infer L] ? L : any;
/** A tuple without its last element (the arguments before an ack callback). */
export type AllButLast<T extends any[]> = T extends [...infer H, infer _L] ? H : any[];
/** The type of a function's first parameter (what `emitWithAck` resolves with). */
export type FirstArg<T> = T extends (arg: infer A, ...args: any[]) => any ? A : any;
type AckArgs<T> = T extends (...args: infer P) => any ? P : any[];
/** The parameters of an emit whose ack callback gets an error first (with `timeout()`). */
export type WithTimeoutAck<P extends any[]> = P extends [...infer H, infer L]
  ? L extends (...args: any[]) => any
    ? [...H, (err: Error | null, ...args: AckArgs<L>) => void]
    : P
  : P;
/** The parameters of a broadcast emit whose ack callback collects every socket's response. */
type WithMultipleAcks<P extends any[]> = P extends [...infer H, infer L]
  ? L extends (...args: any[]) => any
    ? [...H, (err: Error | null, responses: Array<FirstArg<L>>) => void]
    : P
  : P;

/** Why a server-side socket disconnected (socket.io's strings). */
export type DisconnectReason =
  | "transport error"
  | "transport close"
  | "forced close"
  | "ping timeout"
  | "parse error"
  | "server shutting down"
  | "forced server close"
  | "client namespace disconnect"
  | "server namespace disconnect";

/** A room name (or a socket id: every socket is in the room of its own id). */
export type Room = string;

/** An `Error` from polysio: `code` is stable. */
export interface PolysioError extends Error {
  code:
    | "ERR_INVALID_ARG_TYPE"
    | "ERR_INVALID_ARG_VALUE"
    | "ERR_CLOSED"
    | "ERR_TIMEOUT"
    | "ERR_TOO_LARGE"
    | "ERR_PARSE"
    | "ERR_TRANSPORT"
    | "ERR_TLS"
    | "ERR_CONNECT_REFUSED"
    | "ERR_BUFFER_FULL"
    | "ERR_LISTEN"
    | "ERR_RUNTIME"
    | "ERR_NAPI";
}

/** The HTTP request of a handshake, as `allowRequest` and `socket.handshake` see it. */
export interface HandshakeRequest {
  /** Request headers (lower-case names; repeated headers joined with ", "). */
  headers: Record<string, string>;
  /** Query parameters (an array when repeated). */
  query: Record<string, string | string[]>;
  /** The request URL (path and query). */
  url: string;
  /** The peer's IP address. */
  address: string | null;
  /** When the handshake happened, ms since the epoch. */
  issued: number;
  secure: boolean;
  /** True when the request had an Origin header. */
  xdomain: boolean;
}

export interface Handshake {
  headers: Record<string, string>;
  /** `new Date(issued).toString()`. */
  time: string;
  address: string | null;
  xdomain: boolean;
  secure: boolean;
  issued: number;
  url: string;
  query: Record<string, string | string[]>;
  /** The auth payload of the CONNECT packet (`{}` when none). */
  auth: { [key: string]: any };
}

export interface CorsOptions {
  /** `"*"` (default), `true` (mirror the request's origin), an origin or a list of origins. */
  origin?: "*" | boolean | string | string[];
  credentials?: boolean;
  methods?: string | string[];
  allowedHeaders?: string | string[];
  exposedHeaders?: string | string[];
  /** Seconds. */
  maxAge?: number;
}

export interface CookieOptions {
  name?: string;
  path?: string;
  httpOnly?: boolean;
  sameSite?: boolean | "lax" | "strict" | "none" | "Lax" | "Strict" | "None";
  secure?: boolean;
  /** Seconds. */
  maxAge?: number;
}

/** socket.io's server options (names and defaults) that the polysio core implements. */
export interface ServerOptions {
  /** Default `/socket.io`. */
  path?: string;
  /** Default 25000 ms. */
  pingInterval?: number;
  /** Default 20000 ms. */
  pingTimeout?: number;
  /** Default 10000 ms. */
  upgradeTimeout?: number;
  /** Largest message in bytes; default 1e6. */
  maxHttpBufferSize?: number;
  /** Default `["polling", "websocket"]`. */
  transports?: Array<"polling" | "websocket">;
  /** Default true. */
  allowUpgrades?: boolean;
  /** CORS headers (off by default). */
  cors?: CorsOptions;
  /** The session cookie (off by default). */
  cookie?: boolean | CookieOptions;
  /** Time to connect to a namespace after the handshake; default 45000 ms. */
  connectTimeout?: number;
  /** Connection state recovery (off by default). */
  connectionStateRecovery?: {
    /** Default 120000 ms. */
    maxDisconnectionDuration?: number;
    /** Default true. */
    skipMiddlewares?: boolean;
  };
  /**
   * Decides on each handshake: `fn(null, true)` accepts, `fn("message", false)` refuses (403);
   * `fn` may be called later (asynchronously). With the core's own listener `req` is a plain
   * {@link HandshakeRequest}; attached to an `http.Server` it is the real `IncomingMessage`.
   */
  allowRequest?: (req: HandshakeRequest | import("node:http").IncomingMessage, fn: (err: string | null | undefined, success: boolean) => void) => void;
  /**
   * Binary attachments one packet may carry; default 10 (socket.io-parser 4.2.6+ `maxAttachments`).
   * A packet announcing more, or none for a binary packet, is a parse error; together a packet's
   * attachments may not exceed `maxHttpBufferSize`.
   */
  maxAttachments?: number;
  /**
   * How long a long-polling POST may take to send its body, in ms; default 30000 (engine.io
   * 6.6.10+ `httpRequestBodyTimeout`). A slower one is answered 408 and its session closed
   * (`transport error`).
   */
  httpRequestBodyTimeout?: number;
  /**
   * Most chunks a long-polling POST body may arrive in; default 10000 (engine.io 6.6.10+
   * `maxBufferedChunks`). A body in more is answered 413 and its session closed (`transport error`).
   */
  maxBufferedChunks?: number;
  /**
   * Most bytes queued for one client and not yet taken by it (a polling client that does not GET,
   * a WebSocket peer that does not read), each packet counted as its length + 64; default 16 MiB
   * (16777216). Past it the session closes (`transport error`). engine.io buffers without bound;
   * `Infinity` does the same.
   */
  maxBufferedBytes?: number;
  /**
   * How long a WebSocket write may make no progress, in ms; default 30000 (the reference's
   * socket timeout). A client that stopped reading is disconnected (`transport error`), the TCP
   * connection closed even while the write is blocked.
   */
  writeTimeout?: number;
  /**
   * Most events of one client waiting for JavaScript (received, their handlers not run yet);
   * default 1024 (polysio; socket.io has no such bound). At it, polysio stops reading from that
   * client until the handlers catch up: the client meets TCP backpressure, other clients are
   * served meanwhile, nothing is dropped. An event counts until its listeners have returned (a
   * promise a listener returns is not awaited). `Infinity`: no bound (reads as fast as the
   * client sends, memory grows while the handlers are behind).
   */
  maxPendingMessages?: number;
  /**
   * Most new sessions (handshakes) per second, an integer ≥ 1; default none (`null`). A handshake
   * over it is answered 503 with `Retry-After: 1`. No reference equivalent.
   */
  maxHandshakesPerSecond?: number | null;
  /**
   * How long a client has to send a complete request head, in ms, on a new connection as between
   * requests; default 60000 (Node `server.headersTimeout`); 0 disables it, as in Node. The
   * connection is closed (one that never sends anything included).
   */
  headersTimeout?: number;
  /**
   * How long an idle keep-alive connection is kept after a response, in ms; default 5000 (Node
   * `server.keepAliveTimeout`); 0 disables it, as in Node. The idle connection is closed.
   */
  keepAliveTimeout?: number;
  /**
   * Most concurrent TCP connections; default none (`null`; 0 too, as Node
   * `server.maxConnections`). A connection over it is answered 503 and closed at once.
   */
  maxConnections?: number | null;
  /**
   * Serve https and wss on the core's own listener (`new Server(port, opts)`, `listen(port)`)
   * with this certificate chain and private key, PEM as `https.createServer` takes them; see
   * {@link Server.setSecureContext} to renew them. Attached to an `https.Server`, its own TLS
   * is used instead (giving `tls` then throws `ERR_INVALID_ARG_VALUE`).
   */
  tls?: ServerTlsOptions;
  /**
   * Attached to an `http.Server`: serve the installed `socket.io-client` package's browser
   * bundles at `<path>/socket.io.js`, `.min.js`, `.esm.min.js`, `.msgpack.min.js` and their
   * `.map` files, as socket.io does (ETag of the client's version); default true (nothing is
   * served when `socket.io-client` is not installed). No effect with the core's own listener.
   */
  serveClient?: boolean;
  /**
   * Attached to an `http.Server`: run each WebSocket on the TCP socket itself, taken over from
   * Node (a duplicate of its descriptor; Node's socket object is destroyed, the connection is
   * not), the fastest way; default true. With `false`, or on TLS sockets (`https.Server`), the
   * WebSocket's bytes cross between Node's socket and the core instead (with backpressure
   * both ways).
   */
  takeover?: boolean;
  /**
   * Attached to an `http.Server`: end an upgrade to another path that nobody answered within
   * `destroyUpgradeTimeout`, as engine.io does; default true. `false` leaves such upgrades to
   * the server's other `upgrade` listeners.
   */
  destroyUpgrade?: boolean;
  /** How long `destroyUpgrade` waits, in ms; default 1000. */
  destroyUpgradeTimeout?: number;
  /**
   * Scale-out over Redis: the adapter of {@link createAdapter} (same as calling
   * {@link Server.adapter} before `listen`). Without it, the in-memory adapter: this server only.
   */
  adapter?: RedisAdapter;
  /** Accepted for compatibility; no effect. */
  cleanupEmptyChildNamespaces?: boolean;
  /** Accepted for compatibility; no effect. */
  perMessageDeflate?: unknown;
  /** Accepted for compatibility; no effect. */
  httpCompression?: unknown;
}

/**
 * The certificate of polysio's own TLS listener: `https.createServer`'s `cert` and `key`.
 * Client certificates are not asked for (attach to an `https.Server` with `requestCert` for
 * mutual TLS); other `tls` options are refused with `ERR_INVALID_ARG_VALUE`, not ignored.
 */
export interface ServerTlsOptions {
  /** The certificate chain, the server's first (PEM: a string, a Buffer, or an array of them). */
  cert: string | Buffer | Uint8Array | Array<string | Buffer | Uint8Array>;
  /** Its private key (PEM: PKCS#8, PKCS#1 or SEC1; unencrypted). */
  key: string | Buffer | Uint8Array;
}

/** The events of a namespace (and of `io`, which forwards to `/`). */
export interface NamespaceReservedEvents<ListenEvents extends EventsMap, EmitEvents extends EventsMap, ServerSideEvents extends EventsMap, SocketData> {
  connection: (socket: Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>) => void;
  connect: (socket: Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>) => void;
  new_namespace: (namespace: Namespace<ListenEvents, EmitEvents, ServerSideEvents, SocketData>) => void;
}

/** The events of a server-side socket besides the client's. */
export interface SocketReservedEvents {
  disconnect: (reason: DisconnectReason, description?: unknown) => void;
  disconnecting: (reason: DisconnectReason, description?: unknown) => void;
  /**
   * Refusals of `socket.use` middlewares (`next(err)`), as socket.io; without a listener the
   * error is the process' `uncaughtException`. (What a listener throws goes there too, as in
   * socket.io: it is not an `error` event.)
   */
  error: (err: unknown) => void;
}

/** socket.io's catch-all listener methods (sockets, both sides). */
export interface CatchAllListeners {
  /** Catch-all for incoming events. */
  onAny(listener: (event: string, ...args: any[]) => void): this;
  prependAny(listener: (event: string, ...args: any[]) => void): this;
  offAny(listener?: (event: string, ...args: any[]) => void): this;
  listenersAny(): Array<(event: string, ...args: any[]) => void>;
  /** Catch-all for outgoing events (on the server: emits and broadcasts reaching the socket, just after they left). */
  onAnyOutgoing(listener: (event: string, ...args: any[]) => void): this;
  prependAnyOutgoing(listener: (event: string, ...args: any[]) => void): this;
  offAnyOutgoing(listener?: (event: string, ...args: any[]) => void): this;
  listenersAnyOutgoing(): Array<(event: string, ...args: any[]) => void>;
}

/** What `io` and a namespace share: listeners, middlewares and broadcasts to the namespace. */
export interface NamespaceMethods<
  ListenEvents extends EventsMap,
  EmitEvents extends EventsMap,
  ServerSideEvents extends EventsMap,
  SocketData,
> {
  on<Ev extends EventNames<NamespaceReservedEvents<ListenEvents, EmitEvents, ServerSideEvents, SocketData>>>(ev: Ev, listener: NamespaceReservedEvents<ListenEvents, EmitEvents, ServerSideEvents, SocketData>[Ev]): this;
  addListener<Ev extends EventNames<NamespaceReservedEvents<ListenEvents, EmitEvents, ServerSideEvents, SocketData>>>(ev: Ev, listener: NamespaceReservedEvents<ListenEvents, EmitEvents, ServerSideEvents, SocketData>[Ev]): this;
  once<Ev extends EventNames<NamespaceReservedEvents<ListenEvents, EmitEvents, ServerSideEvents, SocketData>>>(ev: Ev, listener: NamespaceReservedEvents<ListenEvents, EmitEvents, ServerSideEvents, SocketData>[Ev]): this;
  prependListener<Ev extends EventNames<NamespaceReservedEvents<ListenEvents, EmitEvents, ServerSideEvents, SocketData>>>(ev: Ev, listener: NamespaceReservedEvents<ListenEvents, EmitEvents, ServerSideEvents, SocketData>[Ev]): this;
  off<Ev extends EventNames<NamespaceReservedEvents<ListenEvents, EmitEvents, ServerSideEvents, SocketData>>>(ev?: Ev, listener?: NamespaceReservedEvents<ListenEvents, EmitEvents, ServerSideEvents, SocketData>[Ev]): this;
  removeListener<Ev extends EventNames<NamespaceReservedEvents<ListenEvents, EmitEvents, ServerSideEvents, SocketData>>>(ev: Ev, listener: NamespaceReservedEvents<ListenEvents, EmitEvents, ServerSideEvents, SocketData>[Ev]): this;
  removeAllListeners(ev?: EventNames<NamespaceReservedEvents<ListenEvents, EmitEvents, ServerSideEvents, SocketData>>): this;
  listeners<Ev extends EventNames<NamespaceReservedEvents<ListenEvents, EmitEvents, ServerSideEvents, SocketData>>>(ev: Ev): Array<NamespaceReservedEvents<ListenEvents, EmitEvents, ServerSideEvents, SocketData>[Ev]>;
  listenerCount(ev: EventNames<NamespaceReservedEvents<ListenEvents, EmitEvents, ServerSideEvents, SocketData>>): number;
  /**
   * A listener for `ev` sent by the other nodes of a Redis cluster with `serverSideEmit` (polysio
   * or npm socket.io nodes). When the sender waits for answers (`serverSideEmitWithAck`), the last
   * argument is a callback: its first argument is this node's answer.
   */
  on<Ev extends EventNames<ServerSideEvents>>(ev: Ev, listener: ServerSideEvents[Ev]): this;
  once<Ev extends EventNames<ServerSideEvents>>(ev: Ev, listener: ServerSideEvents[Ev]): this;
  prependListener<Ev extends EventNames<ServerSideEvents>>(ev: Ev, listener: ServerSideEvents[Ev]): this;
  /** A connection middleware: `next()` lets the socket in, `next(err)` refuses it (`err.data` is sent too). */
  use(fn: (socket: Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>, next: (err?: Error & { data?: any }) => void) => void): this;
  to(room: Room | Room[]): BroadcastOperator<EmitEvents, SocketData>;
  in(room: Room | Room[]): BroadcastOperator<EmitEvents, SocketData>;
  except(room: Room | Room[]): BroadcastOperator<EmitEvents, SocketData>;
  timeout(ms: number): BroadcastOperator<EmitEvents, SocketData>;
  readonly local: BroadcastOperator<EmitEvents, SocketData>;
  readonly volatile: BroadcastOperator<EmitEvents, SocketData>;
  compress(compress: boolean): BroadcastOperator<EmitEvents, SocketData>;
  /** Emits to every socket of the namespace (encoded once, fanned out in Rust); a last callback gets `(err, responses)`. */
  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev> | WithMultipleAcks<EventParams<EmitEvents, Ev>>): boolean;
  /** Emits and resolves with every socket's response (rejects on timeout). */
  emitWithAck<Ev extends EventNames<EmitEvents>>(
    ev: Ev,
    ...args: AllButLast<EventParams<EmitEvents, Ev>>
  ): Promise<Array<FirstArg<Last<EventParams<EmitEvents, Ev>>>>>;
  /** Emits a `message` event. */
  send(...args: any[]): this;
  write(...args: any[]): this;
  /**
   * The sockets of the namespace on every node of the cluster: this server's are its
   * {@link Socket} objects, the other nodes' are {@link RemoteSocket}s.
   */
  fetchSockets(): Promise<Array<RemoteSocket<EmitEvents, SocketData>>>;
  allSockets(): Promise<Set<string>>;
  /** Makes the sockets join rooms (on every node of the cluster). */
  socketsJoin(room: Room | Room[]): void;
  socketsLeave(room: Room | Room[]): void;
  disconnectSockets(close?: boolean): void;
  /**
   * Emits `ev` to this namespace's listeners on the other nodes of a Redis cluster (not this
   * one; without a Redis adapter there are none). With a callback last, `callback(err,
   * responses)` gets one answer per other node, or an `ERR_TIMEOUT` error after the adapter's
   * `requestsTimeout`.
   */
  serverSideEmit<Ev extends EventNames<ServerSideEvents>>(ev: Ev, ...args: any[]): boolean;
  /** Like `serverSideEmit` with a callback: resolves with one answer per other node (rejects with `ERR_TIMEOUT`). */
  serverSideEmitWithAck<Ev extends EventNames<ServerSideEvents>>(ev: Ev, ...args: any[]): Promise<any[]>;
  /** The number of nodes of the cluster, this one included (1 without a Redis adapter); rejects (`ERR_TRANSPORT`, `ERR_TIMEOUT`) while Redis is unreachable. */
  serverCount(): Promise<number>;
}

/**
 * A socket as `fetchSockets()` returns it (socket.io's `RemoteSocket`): on this server, the
 * {@link Socket} itself; on another node of the cluster, its id, handshake, rooms and data at
 * the time of the call, and actions sent to it through the adapter.
 */
export interface RemoteSocket<EmitEvents extends EventsMap = DefaultEventsMap, SocketData = any> {
  readonly id: string;
  readonly handshake: Handshake;
  readonly rooms: Set<Room>;
  readonly data: SocketData;
  /** Emits to the socket, wherever it is connected. */
  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): boolean;
  /** Makes it join rooms. */
  join(room: Room | Room[]): void | Promise<void>;
  /** Makes it leave a room. */
  leave(room: Room): void | Promise<void>;
  /** Disconnects it (its whole connection with `close`). */
  disconnect(close?: boolean): this;
}

/**
 * What of a namespace's adapter is shown (socket.io's `nsp.adapter`): what crosses the nodes of
 * a cluster.
 */
export interface NamespaceAdapter {
  /** The number of nodes, this one included (1 without a Redis adapter). */
  serverCount(): Promise<number>;
  /** Every room of the namespace on every node (socket ids included). */
  allRooms(): Promise<Set<Room>>;
}

/** Options of {@link createAdapter}, named after `@socket.io/redis-adapter`'s. */
export interface RedisAdapterOptions {
  /** The prefix of the Redis channels; default `"socket.io"`. Every node of a cluster uses the same. */
  key?: string;
  /** How long a request to the other nodes (fetchSockets, serverSideEmitWithAck, allRooms...) waits for their answers, in ms; default 5000. */
  requestsTimeout?: number;
  /** The longest wait for one Redis command, connecting included, in ms; default 2000 (polysio's own). */
  commandTimeout?: number;
  /** Messages waiting to be published, at most; default 10000. Past that (Redis slow or away) they are dropped and counted in `stats().dropped` (polysio's own). */
  maxQueue?: number;
}

/**
 * Which channels the sharded format uses (npm's `subscriptionMode`): `"static"` (two per
 * namespace), `"dynamic"` (plus one per public room with sockets on this node; the default) or
 * `"dynamic-private"` (socket ids' rooms too). Every node of a cluster uses the same.
 */
export type RedisSubscriptionMode = "static" | "dynamic" | "dynamic-private";

/** Options of {@link createShardedAdapter}, named after `@socket.io/redis-adapter`'s `createShardedAdapter`. */
export interface ShardedRedisAdapterOptions {
  /** The prefix of the Redis channels; default `"socket.io"`. Every node of a cluster uses the same. */
  channelPrefix?: string;
  /** See {@link RedisSubscriptionMode}; default `"dynamic"`. */
  subscriptionMode?: RedisSubscriptionMode;
  /** As {@link RedisAdapterOptions.requestsTimeout} (polysio's own here). */
  requestsTimeout?: number;
  /** As {@link RedisAdapterOptions.commandTimeout}. */
  commandTimeout?: number;
  /** As {@link RedisAdapterOptions.maxQueue}. */
  maxQueue?: number;
}

/** The wire format of a {@link RedisAdapter} (more may come: npm's streams adapter). */
export type RedisFormat = "classic" | "sharded";

/** The counters of a {@link RedisAdapter}. */
export interface RedisAdapterStats {
  /** Messages published. */
  published: number;
  /** Messages received from the other nodes and handled. */
  received: number;
  /** Messages received that could not be decoded (logged and skipped). */
  malformed: number;
  /** Messages not published: the queue was full, or Redis failed to take them. */
  dropped: number;
  /** Times the subscriber connection was (re)established. */
  connections: number;
}

/**
 * One process's connections to a Redis server (a publisher and a subscriber, held by the Rust
 * core), shared by every server and namespace given it; made by {@link createAdapter}.
 */
export declare class RedisAdapter {
  private constructor();
  /** The Redis URL. */
  readonly url: string;
  /** `"classic"` ({@link createAdapter}) or `"sharded"` ({@link createShardedAdapter}). */
  readonly format: RedisFormat;
  /** The channel prefix (`key`, or the sharded format's `channelPrefix`). */
  readonly key: string;
  /** The sharded format's subscription mode; null for the classic format. */
  readonly subscriptionMode: RedisSubscriptionMode | null;
  /** See {@link RedisAdapterOptions.requestsTimeout}. */
  readonly requestsTimeout: number;
  /** This process's id in the cluster (in its channels and messages). */
  readonly uid: string;
  /**
   * Resolves once this node is subscribed to every namespace created so far, i.e. reachable by
   * the other nodes; rejects with `ERR_TIMEOUT` after `timeout` ms (default 5000). Serving does
   * not need it: local clients are served whatever the state of Redis.
   */
  ready(timeout?: number): Promise<void>;
  /** The counters. */
  stats(): RedisAdapterStats;
}

/**
 * Scale-out over Redis, wire-compatible with npm socket.io 4.8 nodes using
 * `@socket.io/redis-adapter` 8.3 (the classic PUBLISH/SUBSCRIBE format, msgpack): for
 * `io.adapter(createAdapter(url))` or `new Server({ adapter: createAdapter(url) })`.
 *
 * Unlike `@socket.io/redis-adapter`'s `createAdapter(pubClient, subClient, opts)`, it takes a
 * URL: `redis://[user:password@]host[:port][/db]` or `redis+unix:///path/to/socket[?db=N]`; the
 * core opens and keeps its own two connections (reconnecting with backoff while Redis is away;
 * local clients are served meanwhile). Throws `ERR_INVALID_ARG_VALUE` (or `ERR_INVALID_ARG_TYPE`)
 * on an option or URL it cannot use, never because Redis is unreachable.
 *
 * ```js
 * const { Server, createAdapter } = require("polysio");
 * const io = new Server();
 * io.adapter(createAdapter("redis://127.0.0.1:6379", { key: "socket.io", requestsTimeout: 5000 }));
 * io.on("connection", (socket) => io.emit("joined", socket.id)); // reaches every node's clients
 * io.listen(8080);
 * ```
 */
export declare function createAdapter(url: string, opts?: RedisAdapterOptions): RedisAdapter;

/**
 * The sharded format of `@socket.io/redis-adapter` 8.3 (npm's `createShardedAdapter`:
 * SPUBLISH/SSUBSCRIBE, Redis 7.0 or later), wire-compatible with npm socket.io 4.8 nodes using
 * it with the same `channelPrefix` and `subscriptionMode`; otherwise as {@link createAdapter}
 * (a URL, connections held by the core). allRooms() gives this node's rooms only (the format
 * has no request for it).
 *
 * ```js
 * const { Server, createShardedAdapter } = require("polysio");
 * const io = new Server({ adapter: createShardedAdapter("redis://127.0.0.1:6379", { subscriptionMode: "dynamic" }) });
 * ```
 */
export declare function createShardedAdapter(url: string, opts?: ShardedRedisAdapterOptions): RedisAdapter;

/**
 * The wire format of an {@link Emitter}: the one the cluster's nodes read. `"classic"`:
 * `@socket.io/redis-adapter`'s `createAdapter` (and polysio's {@link createAdapter}), written as
 * `@socket.io/redis-emitter` 5.1 does (PUBLISH). `"streams"`: `@socket.io/redis-streams-adapter`
 * 0.3's nodes, written as `@socket.io/redis-streams-emitter` does (XADD into one stream).
 */
export type EmitterFormat = "classic" | "streams";

/** Options of {@link createEmitter}, named after `@socket.io/redis-emitter`'s (and `@socket.io/redis-streams-emitter`'s). */
export interface EmitterOptions {
  /** See {@link EmitterFormat}; default `"classic"`. */
  format?: EmitterFormat;
  /** The classic format's channel prefix; default `"socket.io"`: the nodes' `key`. Refused with `format: "streams"`. */
  key?: string;
  /** The streams format's stream; default `"socket.io"`: the nodes' `streamName` (one stream: nodes with a `streamCount` above 1 do not all read it). Streams only. */
  streamName?: string;
  /** The streams format's `MAXLEN ~` of each XADD; default 10000. Streams only. */
  maxLen?: number;
  /** The longest wait for one Redis write, connecting included, in ms; default 2000: a write Redis has not taken by then is dropped (polysio's own). */
  commandTimeout?: number;
  /** Messages waiting to be written, at most; default 10000. Past that (Redis slow or away) they are dropped and counted in `stats().dropped`, not thrown (polysio's own). */
  maxQueue?: number;
}

/** The counters of an {@link Emitter}: `published` and `dropped` (the others stay 0). */
export type EmitterStats = RedisAdapterStats;

/**
 * Rooms, exceptions and flags chosen on an {@link Emitter}, then one operation
 * (`@socket.io/redis-emitter`'s `BroadcastOperator`). Immutable: each modifier returns a new one.
 */
export declare class EmitterBroadcastOperator<EmitEvents extends EventsMap = DefaultEventsMap> {
  private constructor();
  /** Targets a room (or several): sockets in any of them. */
  to(room: Room | Room[]): EmitterBroadcastOperator<EmitEvents>;
  /** Same as `to`. */
  in(room: Room | Room[]): EmitterBroadcastOperator<EmitEvents>;
  /** Excludes the sockets in a room (or several, or socket ids). */
  except(room: Room | Room[]): EmitterBroadcastOperator<EmitEvents>;
  /** The event may be lost (not sent to a client that is not ready to take it). */
  readonly volatile: EmitterBroadcastOperator<EmitEvents>;
  /** Accepted for compatibility; compression is not applied. */
  compress(compress: boolean): EmitterBroadcastOperator<EmitEvents>;
  /**
   * Emits to the selected sockets of every node (binary arguments allowed); always true. Only
   * queued: see {@link Emitter.flush}. Throws on a reserved event name (`connect`,
   * `disconnect`...) and on an ack callback ("Acknowledgements are not supported").
   */
  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): true;
  /** The selected sockets of every node join rooms. */
  socketsJoin(rooms: Room | Room[]): void;
  /** The selected sockets of every node leave rooms. */
  socketsLeave(rooms: Room | Room[]): void;
  /** Disconnects the selected sockets of every node (their whole connections with `close`). */
  disconnectSockets(close?: boolean): void;
}

/**
 * Sends to the sockets of a Socket.IO cluster over Redis from a process that is not one of its
 * servers (a worker, a cron job): `@socket.io/redis-emitter` 5.1's `Emitter`, plus
 * {@link Emitter.flush} and {@link Emitter.close}; made by {@link createEmitter}. Every
 * operation only queues its message and returns at once (as npm's, which does not wait for the
 * PUBLISH); the Rust core writes the queue to Redis in order on its own connection. Nothing
 * holds the Node process: `await emitter.close()` (or `flush()`) before the process ends, or
 * the last messages may not be written.
 */
export declare class Emitter<EmitEvents extends EventsMap = DefaultEventsMap> {
  private constructor();
  /** The namespace this emitter sends to (`"/"` unless {@link Emitter.of} said otherwise). */
  readonly nsp: string;
  /** The Redis URL. */
  readonly url: string;
  /** See {@link EmitterFormat}. */
  readonly format: EmitterFormat;
  /** The classic format's channel prefix; null for streams. */
  readonly key: string | null;
  /** The streams format's stream; null for classic. */
  readonly streamName: string | null;
  /** The same emitter (same connection, same queue) for namespace `nsp` (a leading `/` is added when missing). */
  of(nsp: string): Emitter<EmitEvents>;
  /** Emits to every socket of the namespace on every node; see {@link EmitterBroadcastOperator.emit}. */
  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): true;
  /** Targets a room (or several). */
  to(room: Room | Room[]): EmitterBroadcastOperator<EmitEvents>;
  /** Same as `to`. */
  in(room: Room | Room[]): EmitterBroadcastOperator<EmitEvents>;
  /** Excludes the sockets in a room (or several). */
  except(room: Room | Room[]): EmitterBroadcastOperator<EmitEvents>;
  /** The event may be lost (not sent to a client that is not ready to take it). */
  readonly volatile: EmitterBroadcastOperator<EmitEvents>;
  /** Accepted for compatibility; compression is not applied. */
  compress(compress: boolean): EmitterBroadcastOperator<EmitEvents>;
  /** Every socket of the namespace on every node joins rooms. */
  socketsJoin(rooms: Room | Room[]): void;
  /** Every socket of the namespace on every node leaves rooms. */
  socketsLeave(rooms: Room | Room[]): void;
  /** Disconnects every socket of the namespace on every node (their whole connections with `close`). */
  disconnectSockets(close?: boolean): void;
  /** Emits `event` to the server-side listeners (`io.on(event, ...)`) of every node; no ack (a callback throws). */
  serverSideEmit(event: string, ...args: any[]): void;
  /**
   * Resolves once every message queued before the call has been written to Redis. Rejects with
   * `ERR_TRANSPORT` when a write failed since the previous flush (Redis away, or slower than
   * `commandTimeout`: those messages are dropped, not retried, and counted in `stats().dropped`),
   * with `ERR_CLOSED` once closed. Messages dropped because the queue was full do not reject it
   * (they are counted).
   */
  flush(): Promise<void>;
  /**
   * Closes the emitter and every emitter {@link Emitter.of} gave: later operations throw
   * `ERR_CLOSED`. Resolves (never rejects) once the messages queued before are written or
   * dropped; the connection then goes. Idempotent.
   */
  close(): Promise<void>;
  /** The counters (throws `ERR_CLOSED` once closed). */
  stats(): EmitterStats;
}

/**
 * A Redis emitter, used as `@socket.io/redis-emitter` 5.1's `new Emitter(redisClient, opts)`
 * is, but taking a URL (`redis://[user:password@]host[:port][/db]` or
 * `redis+unix:///path/to/socket[?db=N]`): the core opens its own connection, on the first
 * write, and reconnects by itself. Reaches npm socket.io 4.8 nodes (`@socket.io/redis-adapter`,
 * or `@socket.io/redis-streams-adapter` with `format: "streams"`) and polysio servers with
 * {@link createAdapter}. Throws `ERR_INVALID_ARG_VALUE` (or `ERR_INVALID_ARG_TYPE`) on an
 * option or URL it cannot use, never because Redis is unreachable. Acknowledgements are not
 * supported.
 *
 * ```js
 * const { createEmitter } = require("polysio");
 * const emitter = createEmitter("redis://127.0.0.1:6379", { key: "socket.io" });
 * emitter.emit("time", new Date());
 * emitter.to("room1").except("room2").emit("news", Buffer.from([1, 2, 3]));
 * emitter.of("/admin").in("room1").socketsJoin("room3");
 * emitter.of("/admin").disconnectSockets(true);
 * await emitter.close(); // written to Redis; the process may exit
 * ```
 */
export declare function createEmitter<EmitEvents extends EventsMap = DefaultEventsMap>(url: string, opts?: EmitterOptions): Emitter<EmitEvents>;

/** Selects sockets (rooms, exceptions, flags) and acts on them. Immutable. */
export declare class BroadcastOperator<EmitEvents extends EventsMap = DefaultEventsMap, SocketData = any> {
  private constructor();
  /** Targets a room (or several). */
  to(room: Room | Room[]): BroadcastOperator<EmitEvents, SocketData>;
  in(room: Room | Room[]): BroadcastOperator<EmitEvents, SocketData>;
  /** Excludes a room (or several, or socket ids). */
  except(room: Room | Room[]): BroadcastOperator<EmitEvents, SocketData>;
  /** Only this server (not the other nodes of a Redis cluster). */
  get local(): BroadcastOperator<EmitEvents, SocketData>;
  /** The event may be dropped. */
  get volatile(): BroadcastOperator<EmitEvents, SocketData>;
  /** Accepted for compatibility; no effect. */
  compress(compress: boolean): BroadcastOperator<EmitEvents, SocketData>;
  /** Time limit for acks. */
  timeout(ms: number): BroadcastOperator<EmitEvents, SocketData>;
  /** Emits to the selected sockets; a last callback gets `(err, responses)`. */
  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev> | WithMultipleAcks<EventParams<EmitEvents, Ev>>): boolean;
  /** Emits and resolves with every selected socket's response (rejects on timeout). */
  emitWithAck<Ev extends EventNames<EmitEvents>>(
    ev: Ev,
    ...args: AllButLast<EventParams<EmitEvents, Ev>>
  ): Promise<Array<FirstArg<Last<EventParams<EmitEvents, Ev>>>>>;
  /** The selected sockets on every node of the cluster (see {@link NamespaceMethods.fetchSockets}). */
  fetchSockets(): Promise<Array<RemoteSocket<EmitEvents, SocketData>>>;
  /** Ids of the selected sockets (deprecated in socket.io). */
  allSockets(): Promise<Set<string>>;
  socketsJoin(room: Room | Room[]): void;
  socketsLeave(room: Room | Room[]): void;
  disconnectSockets(close?: boolean): void;
}

/** A namespace: its sockets, connection listeners and middlewares. */
export interface Namespace<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = ListenEvents,
  ServerSideEvents extends EventsMap = DefaultEventsMap,
  SocketData = any,
> extends NamespaceMethods<ListenEvents, EmitEvents, ServerSideEvents, SocketData> {}
export declare class Namespace<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = ListenEvents,
  ServerSideEvents extends EventsMap = DefaultEventsMap,
  SocketData = any,
> {
  protected constructor();
  /** e.g. `/` or `/admin` (empty for a dynamic parent). */
  readonly name: string;
  /** Connected sockets by id. */
  readonly sockets: Map<string, Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>>;
  readonly server: Server<ListenEvents, EmitEvents, ServerSideEvents, SocketData>;
  /** What crosses the nodes of a cluster: `serverCount()`, `allRooms()`. */
  readonly adapter: NamespaceAdapter;
}

/** The namespace of `io.of(regexp or function)`; its children are created on demand. */
export declare class ParentNamespace<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = ListenEvents,
  ServerSideEvents extends EventsMap = DefaultEventsMap,
  SocketData = any,
> extends Namespace<ListenEvents, EmitEvents, ServerSideEvents, SocketData> {
  readonly children: Set<Namespace<ListenEvents, EmitEvents, ServerSideEvents, SocketData>>;
}

/** A dynamic namespace matcher: `next(null, true)` accepts the name. */
export type ParentNspNameMatchFn = (name: string, auth: { [key: string]: any }, next: (err: Error | null, success: boolean) => void) => void;

/** One client connected to one namespace. */
export interface Socket<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = ListenEvents,
  ServerSideEvents extends EventsMap = DefaultEventsMap,
  SocketData = any,
> extends CatchAllListeners {}
export declare class Socket<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = ListenEvents,
  ServerSideEvents extends EventsMap = DefaultEventsMap,
  SocketData = any,
> {
  private constructor();
  /** The socket id (also the name of its own room). */
  readonly id: string;
  readonly nsp: Namespace<ListenEvents, EmitEvents, ServerSideEvents, SocketData>;
  readonly server: Server<ListenEvents, EmitEvents, ServerSideEvents, SocketData>;
  readonly handshake: Handshake;
  readonly request: { headers: Record<string, string>; url: string };
  /** The Engine.IO connection. */
  readonly conn: { readonly id: string; readonly transport: { name: "polling" | "websocket" }; close(): void };
  /** Arbitrary data (restored by connection state recovery). */
  data: SocketData;
  readonly connected: boolean;
  readonly disconnected: boolean;
  /** True when restored by connection state recovery. */
  readonly recovered: boolean;
  /** The rooms this socket is in (its own id included). */
  readonly rooms: Set<Room>;
  on<Ev extends EventNames<ListenEvents> | EventNames<SocketReservedEvents>>(
    ev: Ev,
    listener: Ev extends EventNames<SocketReservedEvents> ? SocketReservedEvents[Ev] : ListenEvents[Ev],
  ): this;
  addListener<Ev extends EventNames<ListenEvents> | EventNames<SocketReservedEvents>>(
    ev: Ev,
    listener: Ev extends EventNames<SocketReservedEvents> ? SocketReservedEvents[Ev] : ListenEvents[Ev],
  ): this;
  once<Ev extends EventNames<ListenEvents> | EventNames<SocketReservedEvents>>(
    ev: Ev,
    listener: Ev extends EventNames<SocketReservedEvents> ? SocketReservedEvents[Ev] : ListenEvents[Ev],
  ): this;
  prependListener<Ev extends EventNames<ListenEvents> | EventNames<SocketReservedEvents>>(
    ev: Ev,
    listener: Ev extends EventNames<SocketReservedEvents> ? SocketReservedEvents[Ev] : ListenEvents[Ev],
  ): this;
  off(ev: string, listener: (...args: any[]) => void): this;
  removeListener(ev: string, listener: (...args: any[]) => void): this;
  removeAllListeners(ev?: string): this;
  listeners(ev: string): Array<(...args: any[]) => void>;
  listenerCount(ev: string): number;
  /** A middleware on every incoming event: `next(err)` drops it and reports `err` as `error`. */
  use(fn: (event: [string, ...any[]], next: (err?: Error) => void) => void): this;
  /** Sends an event; a last callback receives the client's ack. Throws `ERR_CLOSED` once disconnected. */
  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): boolean;
  /** Emits and resolves with the client's first ack argument. */
  emitWithAck<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: AllButLast<EventParams<EmitEvents, Ev>>): Promise<FirstArg<Last<EventParams<EmitEvents, Ev>>>>;
  /** Ack timeout of the next emit: its callback then gets `(err, ...args)`. */
  timeout(ms: number): {
    emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: WithTimeoutAck<EventParams<EmitEvents, Ev>>): boolean;
    emitWithAck<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: AllButLast<EventParams<EmitEvents, Ev>>): Promise<FirstArg<Last<EventParams<EmitEvents, Ev>>>>;
  };
  get volatile(): this;
  compress(compress: boolean): this;
  /** Emits a `message` event. */
  send(...args: any[]): this;
  write(...args: any[]): this;
  /** Every other socket of the namespace. */
  get broadcast(): BroadcastOperator<EmitEvents, SocketData>;
  to(room: Room | Room[]): BroadcastOperator<EmitEvents, SocketData>;
  in(room: Room | Room[]): BroadcastOperator<EmitEvents, SocketData>;
  except(room: Room | Room[]): BroadcastOperator<EmitEvents, SocketData>;
  join(rooms: Room | Room[]): void;
  leave(room: Room): void;
  /** Disconnects this socket; with `close`, the whole connection. */
  disconnect(close?: boolean): this;
}

/** The options of `attach` / `listen(httpServer)` (also accepted by the constructor). */
export interface AttachOptions {
  /** See {@link ServerOptions.takeover}. */
  takeover?: boolean;
  /** See {@link ServerOptions.destroyUpgrade}. */
  destroyUpgrade?: boolean;
  /** See {@link ServerOptions.destroyUpgradeTimeout}. */
  destroyUpgradeTimeout?: number;
  /** See {@link ServerOptions.serveClient}. */
  serveClient?: boolean;
}

/**
 * A Socket.IO server served by the polysio Rust core.
 *
 * ```js
 * const { Server } = require("polysio");
 * const io = new Server({ cors: { origin: "*" } });
 * io.on("connection", (socket) => socket.on("ping", (cb) => cb("pong")));
 * io.listen(3000);
 * ```
 */
export interface Server<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = ListenEvents,
  ServerSideEvents extends EventsMap = DefaultEventsMap,
  SocketData = any,
> extends NamespaceMethods<ListenEvents, EmitEvents, ServerSideEvents, SocketData> {}
export declare class Server<
  ListenEvents extends EventsMap = DefaultEventsMap,
  EmitEvents extends EventsMap = ListenEvents,
  ServerSideEvents extends EventsMap = DefaultEventsMap,
  SocketData = any,
> {
  /**
   * `new Server(opts)`; `new Server(port, opts)` to listen at once on the core's own listener;
   * `new Server(httpServer, opts)` to attach to a Node `http.Server` / `https.Server` (Express,
   * Fastify's `fastify.server`, NestJS...; see {@link Server.attach}).
   */
  constructor(opts?: ServerOptions);
  constructor(port: number, opts?: ServerOptions);
  constructor(srv: import("node:http").Server | import("node:https").Server, opts?: ServerOptions);
  /** The main namespace `/`. */
  readonly sockets: Namespace<ListenEvents, EmitEvents, ServerSideEvents, SocketData>;
  readonly opts: ServerOptions;
  /**
   * The Engine.IO level: the number of open connections, and `use(middleware)`: an
   * Express-style `(req, res, next)` middleware run on every request to the Socket.IO path,
   * upgrades included (headers it sets go on the `101`), as socket.io 4.6+; `next(err)`
   * refuses the request (400). Only when attached to an `http.Server` (throws otherwise).
   */
  readonly engine: {
    readonly clientsCount: number;
    use(fn: (req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse, next: (err?: unknown) => void) => void): unknown;
  };
  /** The `http.Server` attached to, or null. */
  readonly httpServer: import("node:http").Server | import("node:https").Server | null;
  path(): string;
  /**
   * Binds `port` (0: any free port) on all interfaces or `opts.host` with the core's own
   * listener; throws `ERR_LISTEN` at once on failure. Over TLS with `opts.tls` (or the
   * constructor's `tls`); a certificate or key that does not load is `ERR_TLS`. Given an
   * `http.Server`, same as `attach`.
   */
  listen(port: number | string, opts?: { host?: string; tls?: ServerTlsOptions }): this;
  listen(srv: import("node:http").Server | import("node:https").Server, opts?: AttachOptions): this;
  /**
   * Attaches to a Node `http.Server` / `https.Server` as socket.io does: requests outside the
   * Socket.IO path (prefix `path + "/"`) go to the server's previous `request` listeners, in
   * order; upgrades to the path become WebSockets (see `takeover`), others are ended after
   * `destroyUpgradeTimeout` unless `destroyUpgrade: false`; when the server closes every session
   * ends; `io.close()` closes it. Server options (`path`, `cors`...) go to the constructor
   * (giving them here throws `ERR_INVALID_ARG_VALUE`). Given a port, same as `listen(port)`.
   */
  attach(srv: import("node:http").Server | import("node:https").Server, opts?: AttachOptions): this;
  attach(port: number | string, opts?: { host?: string; tls?: ServerTlsOptions }): this;
  /**
   * Replaces the TLS listener's certificate and key without a restart, as
   * `tls.Server#setSecureContext`: connections accepted from now on get the new ones, open
   * connections keep theirs. Throws `ERR_TLS` if they do not load or do not match (the current
   * ones stay), `ERR_LISTEN` unless listening over TLS.
   */
  setSecureContext(options: ServerTlsOptions): void;
  /** The bound address (the attached `http.Server`'s), or null before `listen`. */
  address(): { address: string; port: number; family: "IPv4" | "IPv6" } | null;
  /** Serves a file (by path) or a Buffer at `urlPath`, outside the Socket.IO path. */
  serveStatic(urlPath: string, content: string | Buffer | Uint8Array, contentType?: string): this;
  of(name: string, fn?: (socket: Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>) => void): Namespace<ListenEvents, EmitEvents, ServerSideEvents, SocketData>;
  of(name: RegExp | ParentNspNameMatchFn, fn?: (socket: Socket<ListenEvents, EmitEvents, ServerSideEvents, SocketData>) => void): ParentNamespace<ListenEvents, EmitEvents, ServerSideEvents, SocketData>;
  /** Disconnects everyone, closes every connection, frees the port. */
  close(fn?: () => void): Promise<void>;
  /**
   * Sets the Redis adapter of {@link createAdapter}, as socket.io's `io.adapter(...)`: before
   * `listen` / `attach` and before any dynamic namespace (throws `ERR_INVALID_ARG_VALUE`
   * otherwise), or give it to the constructor (`new Server({ adapter })`).
   */
  adapter(adapter: RedisAdapter): this;
  /** The Redis adapter, or null (the in-memory adapter). */
  adapter(): RedisAdapter | null;
}

/** Process-wide settings, before the first server or client: the runtime's worker threads. */
export declare function configure(opts: { workerThreads?: number }): void;

/** The package version. */
export declare const version: string;
