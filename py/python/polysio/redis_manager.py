"""Scale-out over Redis: :class:`AsyncRedisManager` and :class:`RedisManager`, python-socketio's
manager vocabulary on the core's Redis adapter, which speaks the format of Node's
``@socket.io/redis-adapter`` 8.3 (classic PUBLISH/SUBSCRIBE)."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from ._base import Rooms, ack_result, data_args
from ._base import rooms as _rooms
from ._polysio import RedisEmitter, RedisOptions

if TYPE_CHECKING:
    from .async_server import AsyncServer

H = TypeVar("H", bound=Callable[..., Any])

#: ``redis_options`` keys of python-socketio (redis-py's) that change nothing here: the core
#: keeps its connections alive and pings the subscriber every 2 s, and retries by itself.
_IGNORED = frozenset({"health_check_interval", "socket_keepalive", "retry_on_timeout"})


def _with_credentials(url: str, options: dict[str, Any]) -> str:
    """``url`` with redis-py's ``username``, ``password`` and ``db`` options put in it."""
    username = options.pop("username", None)
    password = options.pop("password", None)
    db = options.pop("db", None)
    if username is None and password is None and db is None:
        return url
    if db is not None and (isinstance(db, bool) or not isinstance(db, int) or db < 0):
        raise ValueError(f"redis_options['db'] must be an integer >= 0, got {db!r}")
    parts = urlsplit(url)
    if parts.scheme in ("unix", "redis+unix"):
        query = dict(parse_qsl(parts.query))
        if username is not None:
            query["user"] = str(username)
        if password is not None:
            query["pass"] = str(password)
        if db is not None:
            query["db"] = str(db)
        # (urlunsplit would drop the empty authority of redis+unix:///path.)
        return f"{url.split('?', 1)[0]}?{urlencode(query)}"
    host = parts.netloc.rsplit("@", 1)[-1]
    old_user = parts.username or ""
    old_pass = parts.password
    user = quote(str(username), safe="") if username is not None else old_user
    secret = quote(str(password), safe="") if password is not None else old_pass
    auth = user + (f":{secret}" if secret is not None else "")
    netloc = f"{auth}@{host}" if auth else host
    path = f"/{db}" if db is not None else parts.path
    return urlunsplit(parts._replace(netloc=netloc, path=path))


class AsyncRedisManager:
    """Joins an :class:`polysio.AsyncServer` (or :class:`polysio.Server`) to a cluster of
    Socket.IO servers sharing one Redis: ``AsyncServer(client_manager=AsyncRedisManager(url))``.

    **The wire format is Node's**, not python-socketio's: the core speaks the classic
    ``@socket.io/redis-adapter`` 8.3 format (msgpack broadcasts on PUBLISH/SUBSCRIBE, requests
    and responses as Node's adapter sends them), so polysio servers in any language and npm
    socket.io 4.x servers using ``createAdapter(pubClient, subClient, {key})`` are nodes of one
    cluster. python-socketio's own ``AsyncRedisManager`` uses a pickle-based format of its own:
    it cannot share a cluster with this one (give them different channels).

    Across the cluster:

    - ``emit`` / ``send`` to everyone, to rooms, with ``skip_sid``, reach the clients of every
      node; so do ``close_room`` (everyone leaves the room on every node);
    - :meth:`server_count`: how many nodes serve a namespace;
    - Node's server-wide operations, with python-socketio's ``to`` / ``skip_sid`` /
      ``namespace`` arguments: :meth:`fetch_sockets`, :meth:`sockets_join`,
      :meth:`sockets_leave`, :meth:`disconnect_sockets`, :meth:`all_rooms`, and
      :meth:`emit_with_ack` (acks collected from the clients of every node);
    - :meth:`local_emit`: to this node's clients only (Node's ``io.local.emit``);
    - serverSideEmit between nodes: :meth:`server_side_emit`,
      :meth:`server_side_emit_with_ack`, and :meth:`on` for what the other nodes send;
    - the clients of each node are always served by it, whatever the state of Redis. When Redis
      is away or restarts, the node reconnects with backoff (100 ms doubling to 5 s),
      subscribes again and resumes; messages published meanwhile are dropped past
      ``queue_capacity`` (bounded memory); :meth:`server_count` fails with
      :class:`polysio.TimeoutError` instead of hanging.

    Not across nodes: ``call`` and emits with a ``callback`` target one client of this node;
    ``enter_room`` / ``leave_room`` / ``disconnect`` / ``rooms`` act on this node's clients.

    Arguments, python-socketio's:

    - ``url``: ``redis://[user:password@]host[:port][/db]`` or
      ``redis+unix:///path/to/socket[?db=N]`` (``rediss://``, TLS, is not supported yet).
    - ``channel``: the prefix of every Redis channel, Node's ``key`` option; the default
      ``"socket.io"`` is Node's (python-socketio's own default is ``"socketio"``). Every node of
      a cluster must use the same.
    - ``write_only``: True makes an emitter, for a process that is not a server (a worker, a
      script), as python-socketio's ``write_only`` and Node's ``@socket.io/redis-emitter``
      5.1: :meth:`emit`, :meth:`enter_room`, :meth:`leave_room`, :meth:`close_room`,
      :meth:`disconnect`, :meth:`sockets_join`, :meth:`sockets_leave`,
      :meth:`disconnect_sockets` and :meth:`server_side_emit` reach the clients of every node
      of the cluster; :meth:`flush` waits until they are written. ``format`` is then
      ``"classic"`` (Node's ``createAdapter`` nodes) or ``"streams"`` (Node's
      ``@socket.io/redis-streams-adapter`` nodes, as ``@socket.io/redis-streams-emitter``;
      ``channel`` is then the stream's name, ``MAXLEN ~ 10000``); ``"sharded"`` raises
      :class:`ValueError`. Every operation only queues its message and returns at once (one
      background connection writes the queue in order; no event loop is needed, nothing
      blocks): while Redis is away, messages that it has not taken within ``socket_timeout``
      are dropped (pub/sub has no memory) and counted in :meth:`stats`, :meth:`flush` raises
      :class:`polysio.SocketIOError` if any was dropped since the previous flush, and past
      ``queue_capacity`` waiting messages operations raise :class:`polysio.BufferFullError`.
      No acknowledgements (``callback`` raises :class:`ValueError`, as Node's emitter
      throws). A write_only manager cannot be a server's ``client_manager``. Example::

          mgr = polysio.AsyncRedisManager("redis://127.0.0.1:6379/0", write_only=True)
          await mgr.emit("news", {"n": 1}, room="room1", skip_sid="some-sid")
          await mgr.emit("file", (b"\\x00\\x01", "two arguments"))
          await mgr.enter_room("some-sid", "/", "room2")
          await mgr.flush()  # written to Redis
    - ``logger``: accepted and unused (the core logs through ``tracing``).
    - ``format`` (polysio's own, keyword): the wire format, ``"classic"`` (the default: Node's
      ``createAdapter``) or ``"sharded"`` (Node's ``createShardedAdapter``: sharded pub/sub,
      SPUBLISH/SSUBSCRIBE, Redis 7.0 or later; ``channel`` is then its ``channelPrefix``, and
      :meth:`all_rooms` gives this node's rooms only, the format having no such request).
      Every node of a cluster must use the same.
    - ``subscription_mode`` (keyword, sharded format only): Node's ``subscriptionMode``,
      ``"static"``, ``"dynamic"`` (the default, Node's) or ``"dynamic-private"``.
    - ``redis_options``: a dict. redis-py's ``username``, ``password`` and ``db`` go into the
      URL; ``socket_timeout`` (or ``socket_connect_timeout``) is the longest wait for one Redis
      command, connecting included (2 s); ``health_check_interval``, ``socket_keepalive`` and
      ``retry_on_timeout`` are accepted and ignored. polysio's own: ``requests_timeout`` (5 s,
      how long :meth:`server_count` and other requests to the nodes wait; Node's
      ``requestsTimeout``) and ``queue_capacity`` (10000 messages waiting to be published).
      Other keys raise :class:`ValueError` naming them.

    One manager serves one server. Example::

        import asyncio, polysio

        mgr = polysio.AsyncRedisManager("redis://127.0.0.1:6379/0")
        # or, with npm's createShardedAdapter format:
        # mgr = polysio.AsyncRedisManager(url, format="sharded", subscription_mode="dynamic")
        sio = polysio.AsyncServer(client_manager=mgr)

        @sio.event
        async def chat(sid, message):
            await sio.emit("chat", message)  # to the clients of every node

        asyncio.run(sio.serve("127.0.0.1", 5000))
    """

    def __init__(
        self,
        url: str = "redis://localhost:6379/0",
        channel: str = "socket.io",
        write_only: bool = False,
        logger: Optional[logging.Logger] = None,
        redis_options: Optional[dict[str, Any]] = None,
        *,
        format: str = "classic",
        subscription_mode: str = "dynamic",
    ) -> None:
        if not isinstance(url, str):
            raise TypeError(f"url must be a str, got {type(url).__name__}")
        if not isinstance(channel, str):
            raise TypeError(f"channel must be a str, got {type(channel).__name__}")
        options = dict(redis_options or {})
        url = _with_credentials(url, options)
        native: dict[str, Any] = {}
        # (redis_options key, RedisOptions argument); the first of a pair given wins.
        for given, name in (
            ("socket_timeout", "command_timeout"),
            ("socket_connect_timeout", "command_timeout"),
            ("requests_timeout", "requests_timeout"),
            ("queue_capacity", "queue_capacity"),
        ):
            if given not in options:
                continue
            value = options.pop(given)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"redis_options[{given!r}] must be a number, got {value!r}")
            if name == "queue_capacity" and not isinstance(value, int):
                raise TypeError(f"redis_options[{given!r}] must be an integer, got {value!r}")
            native.setdefault(name, value)
        for name in _IGNORED:
            options.pop(name, None)
        if options:
            raise ValueError(
                f"redis_options[{sorted(options)[0]!r}] is not supported by polysio's Redis "
                "manager (username, password, db, socket_timeout, socket_connect_timeout, "
                "requests_timeout, queue_capacity)"
            )
        #: The Redis URL (with ``redis_options``' credentials and database).
        self.url = url
        #: The channel prefix (Node's ``key``).
        self.channel = channel
        #: True for an emitter (see ``write_only`` above).
        self.write_only = bool(write_only)
        self.logger = logger
        if not isinstance(format, str):
            raise TypeError(f"format must be a str, got {type(format).__name__}")
        if not isinstance(subscription_mode, str):
            raise TypeError(
                f"subscription_mode must be a str, got {type(subscription_mode).__name__}"
            )
        self._emitter: Optional[RedisEmitter] = None
        self._emitter_pid = 0
        if self.write_only:
            native.pop("requests_timeout", None)  # (no requests: nothing waits for answers)
            self._emitter_args = (url, channel, format, *(
                native.get(k, d) for k, d in (("command_timeout", 2.0), ("queue_capacity", 10000))
            ))
            self._sender()  # checks the arguments now
            #: The wire format: ``"classic"``, ``"sharded"`` or (write_only) ``"streams"``.
            self.format: str = format
            #: The sharded format's subscription mode (``"dynamic"`` by default).
            self.subscription_mode: str = subscription_mode
        else:
            self._options = RedisOptions(
                url, channel, format=format, subscription_mode=subscription_mode, **native
            )
            self.format = self._options.format
            self.subscription_mode = self._options.subscription_mode
        self._server: Optional[AsyncServer] = None
        self._server_side: dict[tuple[str, str], Callable[..., Any]] = {}
        self._started = False

    def _bind(self, server: AsyncServer) -> None:
        if self._server is not None and self._server is not server:
            raise ValueError("this Redis manager already serves another server: make one each")
        self._server = server

    def _native(self) -> Any:
        if self.write_only:
            raise RuntimeError(
                "this Redis manager is write_only (an emitter, not a node of the cluster): "
                "only emit, enter_room, leave_room, close_room, disconnect, sockets_join, "
                "sockets_leave, disconnect_sockets, server_side_emit, flush and stats"
            )
        if self._server is None:
            raise RuntimeError(
                "this Redis manager is not in a server yet: pass it as "
                "AsyncServer(client_manager=...)"
            )
        return self._server._native

    def _sender(self) -> Any:
        """The native object that sends: the emitter (write_only, made again in a child
        process after ``fork()``) or the server's."""
        if not self.write_only:
            return self._native()
        if self._emitter is None or self._emitter_pid != os.getpid():
            self._emitter = RedisEmitter(*self._emitter_args)
            self._emitter_pid = os.getpid()
        return self._emitter

    def _emit(
        self, event: str, data: Any, namespace: Optional[str], room: Optional[Rooms],
        skip_sid: Optional[Rooms], callback: Optional[Callable[..., Any]], to: Optional[Rooms],
    ) -> None:
        if callback is not None:
            raise ValueError(
                "no callback through a Redis manager's emit (an emitter gets no "
                "acknowledgements, as Node's): use AsyncServer.call or emit_with_ack on a node"
            )
        target = to if to is not None else room
        self._sender().emit(
            namespace or "/", event, data_args(data), _rooms(target), _rooms(skip_sid)
        )

    async def emit(
        self, event: str, data: Any = None, namespace: Optional[str] = None,
        room: Optional[Rooms] = None, skip_sid: Optional[Rooms] = None,
        callback: Optional[Callable[..., Any]] = None, to: Optional[Rooms] = None,
    ) -> None:
        """Emits ``event`` to the clients of every node, python-socketio's manager ``emit``:
        ``data`` a tuple for several arguments (None: none, else one; binary anywhere),
        ``room`` (or ``to``) a room or sid, or a list of them (clients in any), ``skip_sid``
        one or a list of sids or rooms left out. ``callback`` raises :class:`ValueError`.
        Returns at once (queued, see ``write_only``); on a server's manager, to every node as
        :meth:`polysio.AsyncServer.emit`."""
        self._emit(event, data, namespace, room, skip_sid, callback, to)

    async def enter_room(self, sid: str, namespace: Optional[str], room: str) -> None:
        """Client ``sid`` of ``namespace`` (None: ``"/"``), on whichever node, joins ``room``
        (Node's ``io.in(sid).socketsJoin(room)``)."""
        self._sender().sockets_rooms(namespace or "/", True, [room], [sid], None)

    async def leave_room(self, sid: str, namespace: Optional[str], room: str) -> None:
        """Client ``sid``, on whichever node, leaves ``room``."""
        self._sender().sockets_rooms(namespace or "/", False, [room], [sid], None)

    async def close_room(self, room: str, namespace: Optional[str] = None) -> None:
        """Every client in ``room``, on every node, leaves it."""
        self._sender().sockets_rooms(namespace or "/", False, [room], [room], None)

    async def disconnect(self, sid: str, namespace: Optional[str] = None) -> None:
        """Disconnects client ``sid`` of ``namespace``, on whichever node."""
        self._sender().disconnect_sockets(namespace or "/", False, [sid], None)

    async def flush(self, timeout: float = 10.0) -> None:
        """Waits (off the event loop) until every message queued before is written to
        Redis, at most ``timeout`` seconds (:class:`polysio.TimeoutError`); raises
        :class:`polysio.SocketIOError` when messages were dropped since the previous flush
        (Redis away). write_only managers only."""
        sender = self._sender()
        await asyncio.get_running_loop().run_in_executor(None, sender.flush, timeout)

    def on(
        self, event: str, handler: Optional[H] = None, namespace: Optional[str] = None
    ) -> Any:
        """Registers ``handler(*args)`` for ``event`` sent by another node of the cluster with
        serverSideEmit (Node's ``io.serverSideEmit(event, ...args)``, this manager's
        :meth:`server_side_emit`); usable as ``@mgr.on("event")``. When the sender waits for
        answers (``serverSideEmitWithAck``), the handler's return value is this node's
        answer. ``async def`` or plain (on :class:`polysio.Server`, plain handlers run on its
        threads)."""

        def register(h: H) -> H:
            key = (namespace or "/", event)
            self._server_side[key] = h
            if self._started:
                self._listen(*key)
            return h

        if handler is None:
            return register
        return register(handler)

    def _start(self) -> None:
        """Called by the server once it serves: installs the serverSideEmit handlers."""
        self._started = True
        for key in self._server_side:
            self._listen(*key)

    def _listen(self, namespace: str, event: str) -> None:
        server = self._server
        assert server is not None
        native = server._native
        native.add_namespace(namespace)
        runner = server._runner
        label = f"server-side event {event!r}"

        async def run(ack_id: Optional[int], args: tuple[Any, ...]) -> None:
            handler = self._server_side[(namespace, event)]
            result = None
            try:
                result = await runner.run(label, handler, args)
            except Exception as exc:  # logged; the sender gets None
                runner.failed(label, handler, exc)
            if ack_id is not None:
                native.server_side_reply(ack_id, result)

        def done(args: Optional[list[Any]], exc: Optional[BaseException]) -> None:
            if args:
                runner.spawn(run(args[0], tuple(args[1:])))

        native.on_server_side(namespace, event, done)

    async def local_emit(
        self, event: str, data: Any = None, to: Optional[Rooms] = None,
        skip_sid: Optional[Rooms] = None, namespace: Optional[str] = None,
    ) -> None:
        """Emits as :meth:`polysio.AsyncServer.emit` does, to the clients of this node only
        (Node's ``io.local.emit``): say, from a :meth:`on` handler that each node runs."""
        self._local_emit(event, data, to, skip_sid, namespace)

    def _local_emit(
        self, event: str, data: Any, to: Optional[Rooms], skip_sid: Optional[Rooms],
        namespace: Optional[str],
    ) -> None:
        self._native().emit(
            namespace or "/", event, data_args(data), _rooms(to), _rooms(skip_sid), True
        )

    async def server_side_emit(
        self, event: str, *args: Any, namespace: Optional[str] = None
    ) -> None:
        """Sends ``event`` with ``args`` to the other nodes of the cluster (not this one), as
        Node's ``io.serverSideEmit``: their handlers registered with :meth:`on` (Node's
        ``io.on(event)``) run."""
        self._sender().server_side_emit(namespace or "/", event, list(args))

    async def server_side_emit_with_ack(
        self, event: str, *args: Any, namespace: Optional[str] = None, timeout: float = 5.0
    ) -> list[Any]:
        """:meth:`server_side_emit`, returning the answer of every other node (Node's
        ``serverSideEmitWithAck``); :class:`polysio.TimeoutError` if they have not all
        answered within ``timeout`` seconds."""
        native = self._native()
        call = functools.partial(
            native.server_side_emit_with_ack, namespace or "/", event, list(args), timeout
        )
        replies: list[Any] = await asyncio.get_running_loop().run_in_executor(None, call)
        return replies

    async def server_count(self, namespace: Optional[str] = None) -> int:
        """How many servers of the cluster serve ``namespace`` (``"/"``), this one included:
        the subscribers of its request channel (``PUBSUB NUMSUB``, as Node's
        ``io.of(nsp).serverCount()``). Once the server is started; raises
        :class:`polysio.BadNamespaceError` for a namespace it does not serve."""
        native = self._native()
        loop = asyncio.get_running_loop()
        return int(await loop.run_in_executor(None, native.server_count, namespace or "/"))

    async def ready(self, timeout: float = 5.0) -> None:
        """Waits until this node is subscribed to Redis for each of its namespaces (so the
        other nodes reach its clients), at most ``timeout`` seconds, then raises
        :class:`polysio.TimeoutError`. Not needed to serve: the node's own clients are served
        meanwhile, and it joins by itself once Redis is up."""
        native = self._native()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, native.redis_ready, timeout)

    async def fetch_sockets(
        self, to: Optional[Rooms] = None, skip_sid: Optional[Rooms] = None,
        namespace: Optional[str] = None,
    ) -> list[dict[str, Any]]:
        """The clients of every node in any of the rooms ``to`` (all when None), except those
        in ``skip_sid``, as Node's ``io.in(to).fetchSockets()``: dicts with ``sid``, ``rooms``
        (their own id included), ``data`` (Node's ``socket.data``, None for polysio's clients)
        and ``handshake`` (Node's shape: ``headers``, ``address``, ``query``, ``auth``...).
        Raises :class:`polysio.TimeoutError` when a node does not answer within
        ``requests_timeout``."""
        native = self._native()
        call = functools.partial(
            native.fetch_sockets, namespace or "/", _rooms(to), _rooms(skip_sid)
        )
        sockets: list[dict[str, Any]] = await asyncio.get_running_loop().run_in_executor(
            None, call
        )
        return sockets

    async def sockets_join(
        self, rooms: Rooms, to: Optional[Rooms] = None, skip_sid: Optional[Rooms] = None,
        namespace: Optional[str] = None,
    ) -> None:
        """Puts the clients of every node in any of the rooms ``to`` (all when None), except
        those in ``skip_sid``, in ``rooms`` (Node's ``io.in(to).socketsJoin(rooms)``)."""
        self._sender().sockets_rooms(
            namespace or "/", True, _rooms(rooms) or [], _rooms(to), _rooms(skip_sid)
        )

    async def sockets_leave(
        self, rooms: Rooms, to: Optional[Rooms] = None, skip_sid: Optional[Rooms] = None,
        namespace: Optional[str] = None,
    ) -> None:
        """Takes the selected clients of every node out of ``rooms`` (Node's
        ``socketsLeave``; selection as :meth:`sockets_join`)."""
        self._sender().sockets_rooms(
            namespace or "/", False, _rooms(rooms) or [], _rooms(to), _rooms(skip_sid)
        )

    async def disconnect_sockets(
        self, to: Optional[Rooms] = None, skip_sid: Optional[Rooms] = None,
        namespace: Optional[str] = None, close: bool = False,
    ) -> None:
        """Disconnects the selected clients of every node (Node's ``disconnectSockets``;
        reason ``server namespace disconnect``, with ``close`` their whole connection)."""
        self._sender().disconnect_sockets(namespace or "/", close, _rooms(to), _rooms(skip_sid))

    async def all_rooms(self, namespace: Optional[str] = None) -> set[str]:
        """Every room of every node (their clients' own ids included), as Node's
        ``adapter.allRooms()``."""
        native = self._native()
        rooms: list[str] = await asyncio.get_running_loop().run_in_executor(
            None, native.all_rooms, namespace or "/"
        )
        return set(rooms)

    async def emit_with_ack(
        self, event: str, data: Any = None, to: Optional[Rooms] = None,
        skip_sid: Optional[Rooms] = None, namespace: Optional[str] = None, timeout: float = 5.0,
    ) -> list[Any]:
        """Emits ``event`` (``data`` as in :meth:`polysio.AsyncServer.emit`) to the selected
        clients of every node and returns their acks (each None, the only argument, or a
        tuple), as Node's ``io.timeout(ms).emitWithAck()``. Raises
        :class:`polysio.TimeoutError` if they have not all answered within ``timeout``
        seconds."""
        native = self._native()
        call = functools.partial(
            native.broadcast_with_ack, namespace or "/", event, data_args(data), timeout,
            _rooms(to), _rooms(skip_sid),
        )
        replies: list[list[Any]] = await asyncio.get_running_loop().run_in_executor(None, call)
        return [ack_result(r) for r in replies]

    def stats(self) -> dict[str, Any]:
        """The adapter's counters: ``uid`` (this node's id in the cluster), ``published``,
        ``received`` (messages from the other nodes), ``malformed`` (received, undecodable,
        logged and skipped), ``dropped`` (not published: queue full or Redis away),
        ``connections`` (times the subscriber connected)."""
        stats: dict[str, Any] = self._sender().redis_stats()
        return stats

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r}, channel={self.channel!r})"


class RedisManager(AsyncRedisManager):
    """:class:`AsyncRedisManager` for :class:`polysio.Server` (code without asyncio): the same
    arguments and wire format; :meth:`server_count` and :meth:`ready` block instead.

    Example::

        import polysio

        sio = polysio.Server(client_manager=polysio.RedisManager("redis://127.0.0.1:6379/0"))
        sio.serve("127.0.0.1", 5000)
    """

    def emit(  # type: ignore[override]
        self, event: str, data: Any = None, namespace: Optional[str] = None,
        room: Optional[Rooms] = None, skip_sid: Optional[Rooms] = None,
        callback: Optional[Callable[..., Any]] = None, to: Optional[Rooms] = None,
    ) -> None:
        """See :meth:`AsyncRedisManager.emit` (returns at once: queued)."""
        self._emit(event, data, namespace, room, skip_sid, callback, to)

    def enter_room(self, sid: str, namespace: Optional[str], room: str) -> None:  # type: ignore[override]
        """See :meth:`AsyncRedisManager.enter_room`."""
        self._sender().sockets_rooms(namespace or "/", True, [room], [sid], None)

    def leave_room(self, sid: str, namespace: Optional[str], room: str) -> None:  # type: ignore[override]
        """See :meth:`AsyncRedisManager.leave_room`."""
        self._sender().sockets_rooms(namespace or "/", False, [room], [sid], None)

    def close_room(self, room: str, namespace: Optional[str] = None) -> None:  # type: ignore[override]
        """See :meth:`AsyncRedisManager.close_room`."""
        self._sender().sockets_rooms(namespace or "/", False, [room], [room], None)

    def disconnect(self, sid: str, namespace: Optional[str] = None) -> None:  # type: ignore[override]
        """See :meth:`AsyncRedisManager.disconnect`."""
        self._sender().disconnect_sockets(namespace or "/", False, [sid], None)

    def flush(self, timeout: float = 10.0) -> None:  # type: ignore[override]
        """Blocks until the queued messages are written (see :meth:`AsyncRedisManager.flush`)."""
        self._sender().flush(timeout)

    def server_count(self, namespace: Optional[str] = None) -> int:  # type: ignore[override]
        """How many servers of the cluster serve ``namespace`` (see
        :meth:`AsyncRedisManager.server_count`); blocks until the answer."""
        return int(self._native().server_count(namespace or "/"))

    def ready(self, timeout: float = 5.0) -> None:  # type: ignore[override]
        """Blocks until this node is subscribed to Redis (see :meth:`AsyncRedisManager.ready`)."""
        self._native().redis_ready(timeout)

    def local_emit(  # type: ignore[override]
        self, event: str, data: Any = None, to: Optional[Rooms] = None,
        skip_sid: Optional[Rooms] = None, namespace: Optional[str] = None,
    ) -> None:
        """See :meth:`AsyncRedisManager.local_emit`."""
        self._local_emit(event, data, to, skip_sid, namespace)

    def server_side_emit(  # type: ignore[override]
        self, event: str, *args: Any, namespace: Optional[str] = None
    ) -> None:
        """See :meth:`AsyncRedisManager.server_side_emit`."""
        self._sender().server_side_emit(namespace or "/", event, list(args))

    def server_side_emit_with_ack(  # type: ignore[override]
        self, event: str, *args: Any, namespace: Optional[str] = None, timeout: float = 5.0
    ) -> list[Any]:
        """See :meth:`AsyncRedisManager.server_side_emit_with_ack`; blocks until every answer."""
        replies: list[Any] = self._native().server_side_emit_with_ack(
            namespace or "/", event, list(args), timeout
        )
        return replies

    def fetch_sockets(  # type: ignore[override]
        self, to: Optional[Rooms] = None, skip_sid: Optional[Rooms] = None,
        namespace: Optional[str] = None,
    ) -> list[dict[str, Any]]:
        """The clients of every node (see :meth:`AsyncRedisManager.fetch_sockets`)."""
        sockets: list[dict[str, Any]] = self._native().fetch_sockets(
            namespace or "/", _rooms(to), _rooms(skip_sid)
        )
        return sockets

    def sockets_join(  # type: ignore[override]
        self, rooms: Rooms, to: Optional[Rooms] = None, skip_sid: Optional[Rooms] = None,
        namespace: Optional[str] = None,
    ) -> None:
        """See :meth:`AsyncRedisManager.sockets_join`."""
        self._sender().sockets_rooms(
            namespace or "/", True, _rooms(rooms) or [], _rooms(to), _rooms(skip_sid)
        )

    def sockets_leave(  # type: ignore[override]
        self, rooms: Rooms, to: Optional[Rooms] = None, skip_sid: Optional[Rooms] = None,
        namespace: Optional[str] = None,
    ) -> None:
        """See :meth:`AsyncRedisManager.sockets_leave`."""
        self._sender().sockets_rooms(
            namespace or "/", False, _rooms(rooms) or [], _rooms(to), _rooms(skip_sid)
        )

    def disconnect_sockets(  # type: ignore[override]
        self, to: Optional[Rooms] = None, skip_sid: Optional[Rooms] = None,
        namespace: Optional[str] = None, close: bool = False,
    ) -> None:
        """See :meth:`AsyncRedisManager.disconnect_sockets`."""
        self._sender().disconnect_sockets(namespace or "/", close, _rooms(to), _rooms(skip_sid))

    def all_rooms(self, namespace: Optional[str] = None) -> set[str]:  # type: ignore[override]
        """See :meth:`AsyncRedisManager.all_rooms`."""
        return set(self._native().all_rooms(namespace or "/"))

    def emit_with_ack(  # type: ignore[override]
        self, event: str, data: Any = None, to: Optional[Rooms] = None,
        skip_sid: Optional[Rooms] = None, namespace: Optional[str] = None, timeout: float = 5.0,
    ) -> list[Any]:
        """See :meth:`AsyncRedisManager.emit_with_ack`; blocks until every ack."""
        replies = self._native().broadcast_with_ack(
            namespace or "/", event, data_args(data), timeout, _rooms(to), _rooms(skip_sid)
        )
        return [ack_result(r) for r in replies]


__all__ = ["AsyncRedisManager", "RedisManager"]
