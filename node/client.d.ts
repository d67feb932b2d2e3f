// Type definitions of polysio's socket.io-client-shaped client (`require("polysio/client")`),
// hand-written. The shapes follow socket.io-client 4.8's.
/// <reference types="node" />

import type { AllButLast, CatchAllListeners, DefaultEventsMap, EventNames, EventParams, EventsMap, FirstArg, Last, WithTimeoutAck } from "./index";

export type { DefaultEventsMap, EventNames, EventParams, EventsMap } from "./index";

/** Why a client socket disconnected (socket.io-client's strings). */
export type DisconnectReason =
  | "io server disconnect"
  | "io client disconnect"
  | "ping timeout"
  | "transport close"
  | "transport error"
  | "parse error"
  | "forced close";

/** socket.io-client's options that the polysio core implements (names and defaults). */
export interface ManagerOptions {
  /** Default `/socket.io`. */
  path?: string;
  /** Default `["polling", "websocket"]`: the first opens the session, then the upgrade. */
  transports?: Array<"polling" | "websocket">;
  /** Try the polling → WebSocket upgrade; default true. */
  upgrade?: boolean;
  /** Extra query parameters. */
  query?: string | Record<string, string | number | boolean>;
  /** Extra HTTP headers. */
  extraHeaders?: Record<string, string>;
  /** Default true. */
  reconnection?: boolean;
  /** Default Infinity. */
  reconnectionAttempts?: number;
  /** Default 1000 ms. */
  reconnectionDelay?: number;
  /** Default 5000 ms. */
  reconnectionDelayMax?: number;
  /** Default 0.5. */
  randomizationFactor?: number;
  /** Handshake timeout; default 20000 ms. */
  timeout?: number;
  /** Connect at once; default true. */
  autoConnect?: boolean;
  /** Default ack timeout (acks then get an error first). */
  ackTimeout?: number;
  /** Most packets a socket keeps while offline (polysio; default 10000). */
  sendBufferMax?: number;
  /**
   * CA certificates (PEM: a string, a Buffer, or an array of them) trusted for `https://` and
   * `wss://` servers, besides the system's roots (unlike Node's `tls`, where `ca` replaces
   * them): a private CA. Node's `NODE_EXTRA_CA_CERTS` is not read; pass the file's content
   * here.
   */
  ca?: string | Buffer | Uint8Array | Array<string | Buffer | Uint8Array>;
  /**
   * The client's certificate chain (PEM), for servers that ask for one (mutual TLS); with
   * `key`.
   */
  cert?: string | Buffer | Uint8Array | Array<string | Buffer | Uint8Array>;
  /** The private key of `cert` (PEM: PKCS#8, PKCS#1 or SEC1; unencrypted). */
  key?: string | Buffer | Uint8Array;
  /**
   * Verify the server's certificate (default true). `false` accepts any certificate
   * (self-signed, expired, for another name): for development only.
   */
  rejectUnauthorized?: boolean;
  /**
   * An HTTP proxy to tunnel through with CONNECT (`http://[user:password@]host:port`), or
   * `false` for none. Default: the environment's, as curl reads it (`HTTPS_PROXY` for
   * https/wss servers, `HTTP_PROXY` for http/ws ones, `ALL_PROXY`, lower-case names too,
   * except the hosts of `NO_PROXY`; never for loopback addresses).
   */
  proxy?: string | false;
}

export interface SocketOptions {
  /** The CONNECT payload: an object, or `(cb) => cb(payload)` called at each connection. */
  auth?: { [key: string]: any } | ((cb: (data: object) => void) => void);
}

/** `io()`'s options: the manager's, the socket's, and the cache switches. */
export interface ConnectOptions extends ManagerOptions, SocketOptions {
  /** Always a new Manager (connection). */
  forceNew?: boolean;
  /** Share connections to the same server (default true). */
  multiplex?: boolean;
}

/** An Error from a connection attempt (`connect_error`); `data` comes from the server's middleware. */
export interface ConnectError extends Error {
  data?: any;
  /**
   * `"ERR_TLS"` when TLS failed: the message then says why, e.g. "TLS error: the server's
   * certificate is not trusted: unknown issuer (not signed by a trusted CA)".
   */
  code?: string;
  /** A transport error's details (socket.io-client's `TransportError.description`). */
  description?: string;
}

interface SocketReservedEvents {
  connect: () => void;
  connect_error: (err: ConnectError) => void;
  disconnect: (reason: DisconnectReason, description?: unknown) => void;
}

export interface ManagerReservedEvents {
  open: () => void;
  close: (reason: string) => void;
  error: (err: Error) => void;
  reconnect_attempt: (attempt: number) => void;
  reconnect: (attempt: number) => void;
  reconnect_error: (err: Error) => void;
  reconnect_failed: () => void;
}

/** One connection to a server, shared by the namespace sockets created from it. */
export declare class Manager<ListenEvents extends EventsMap = DefaultEventsMap, EmitEvents extends EventsMap = ListenEvents> {
  constructor(uri: string, opts?: ConnectOptions);
  readonly uri: string;
  readonly opts: ConnectOptions;
  readonly nsps: Record<string, Socket<ListenEvents, EmitEvents>>;
  /** The socket of namespace `nsp` (one per namespace and manager). */
  socket(nsp: string, opts?: SocketOptions): Socket<ListenEvents, EmitEvents>;
  open(fn?: (err?: Error) => void): this;
  connect(fn?: (err?: Error) => void): this;
  /** The open connection (`engine.transport.name`: `"polling"` or `"websocket"`); null while not open. */
  readonly engine: { readonly transport: { readonly name: "polling" | "websocket" } } | null;
  /** Disconnects every socket and closes the connection; no reconnection follows. */
  close(): this;
  disconnect(): this;
  reconnection(): boolean;
  reconnectionAttempts(): number;
  reconnectionDelay(): number;
  reconnectionDelayMax(): number;
  randomizationFactor(): number;
  timeout(): number;
  on<Ev extends keyof ManagerReservedEvents>(ev: Ev, listener: ManagerReservedEvents[Ev]): this;
  once<Ev extends keyof ManagerReservedEvents>(ev: Ev, listener: ManagerReservedEvents[Ev]): this;
  off<Ev extends keyof ManagerReservedEvents>(ev?: Ev, listener?: ManagerReservedEvents[Ev]): this;
  listeners<Ev extends keyof ManagerReservedEvents>(ev: Ev): Array<ManagerReservedEvents[Ev]>;
  hasListeners(ev: keyof ManagerReservedEvents): boolean;
}

/** A namespace socket. */
export interface Socket<ListenEvents extends EventsMap = DefaultEventsMap, EmitEvents extends EventsMap = ListenEvents> extends CatchAllListeners {}
export declare class Socket<ListenEvents extends EventsMap = DefaultEventsMap, EmitEvents extends EventsMap = ListenEvents> {
  private constructor();
  /** The manager. */
  readonly io: Manager<ListenEvents, EmitEvents>;
  readonly nsp: string;
  auth: SocketOptions["auth"];
  /** The session id while connected. */
  readonly id: string | undefined;
  readonly connected: boolean;
  readonly disconnected: boolean;
  /** True while it tries to stay connected. */
  readonly active: boolean;
  /** True when the last connection restored the previous session. */
  readonly recovered: boolean;
  connect(): this;
  open(): this;
  /** Disconnects the namespace (no reconnection); emits are buffered until `connect()`. */
  disconnect(): this;
  close(): this;
  on<Ev extends EventNames<ListenEvents> | keyof SocketReservedEvents>(
    ev: Ev,
    listener: Ev extends keyof SocketReservedEvents ? SocketReservedEvents[Ev] : ListenEvents[Ev],
  ): this;
  once<Ev extends EventNames<ListenEvents> | keyof SocketReservedEvents>(
    ev: Ev,
    listener: Ev extends keyof SocketReservedEvents ? SocketReservedEvents[Ev] : ListenEvents[Ev],
  ): this;
  off(ev?: string, listener?: (...args: any[]) => void): this;
  listeners(ev: string): Array<(...args: any[]) => void>;
  hasListeners(ev: string): boolean;
  /** Emits (buffered while disconnected); a last callback receives the server's ack. */
  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): this;
  /** Emits and resolves with the server's first ack argument. */
  emitWithAck<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: AllButLast<EventParams<EmitEvents, Ev>>): Promise<FirstArg<Last<EventParams<EmitEvents, Ev>>>>;
  /** Ack timeout of the next emit: its callback then gets `(err, ...args)`. */
  timeout(ms: number): {
    emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: WithTimeoutAck<EventParams<EmitEvents, Ev>>): Socket<ListenEvents, EmitEvents>;
    emitWithAck<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: AllButLast<EventParams<EmitEvents, Ev>>): Promise<FirstArg<Last<EventParams<EmitEvents, Ev>>>>;
  };
  /** The next emit is dropped rather than buffered when not connected. */
  get volatile(): this;
  compress(compress: boolean): this;
  /** Emits a `message` event. */
  send(...args: any[]): this;
  write(...args: any[]): this;
}

/**
 * Connects to `uri` (e.g. `http://localhost:3000/admin`) and returns the namespace socket.
 *
 * ```js
 * const { io } = require("polysio/client");
 * const socket = io("http://localhost:3000", { auth: { token: "abc" } });
 * socket.on("connect", () => socket.emit("hello"));
 * ```
 */
export declare function io<ListenEvents extends EventsMap = DefaultEventsMap, EmitEvents extends EventsMap = ListenEvents>(
  uri: string,
  opts?: ConnectOptions,
): Socket<ListenEvents, EmitEvents>;
export { io as connect };
/** The Socket.IO protocol revision (5). */
export declare const protocol: number;
export default io;
