"""Scale-out over Redis: :class:`AsyncRedisManager` and :class:`RedisManager`, python-socketio's
manager vocabulary on the core's Redis adapter, which speaks the format of Node's
``@socket.io/redis-adapter`` 8.3 (classic PUBLISH/SUBSCRIBE)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Optional
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from ._polysio import RedisOptions

if TYPE_CHECKING:
    from .async_server import AsyncServer

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
    - ``write_only``: True would make an emitter (a process that is not a server). Not
      supported yet: raises :class:`NotImplementedError`.
    - ``logger``: accepted and unused (the core logs through ``tracing``).
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
    ) -> None:
        if write_only:
            raise NotImplementedError(
                "write_only=True (a Redis emitter, as @socket.io/redis-emitter) is not "
                "supported by polysio yet: run the emitting code in a polysio server joined "
                "to the cluster instead"
            )
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
        #: Always False (emitters are not supported yet).
        self.write_only = False
        self.logger = logger
        self._options = RedisOptions(url, channel, **native)
        self._server: Optional[AsyncServer] = None

    def _bind(self, server: AsyncServer) -> None:
        if self._server is not None and self._server is not server:
            raise ValueError("this Redis manager already serves another server: make one each")
        self._server = server

    def _native(self) -> Any:
        if self._server is None:
            raise RuntimeError(
                "this Redis manager is not in a server yet: pass it as "
                "AsyncServer(client_manager=...)"
            )
        return self._server._native

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

    def stats(self) -> dict[str, Any]:
        """The adapter's counters: ``uid`` (this node's id in the cluster), ``published``,
        ``received`` (messages from the other nodes), ``malformed`` (received, undecodable,
        logged and skipped), ``dropped`` (not published: queue full or Redis away),
        ``connections`` (times the subscriber connected)."""
        stats: dict[str, Any] = self._native().redis_stats()
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

    def server_count(self, namespace: Optional[str] = None) -> int:  # type: ignore[override]
        """How many servers of the cluster serve ``namespace`` (see
        :meth:`AsyncRedisManager.server_count`); blocks until the answer."""
        return int(self._native().server_count(namespace or "/"))

    def ready(self, timeout: float = 5.0) -> None:  # type: ignore[override]
        """Blocks until this node is subscribed to Redis (see :meth:`AsyncRedisManager.ready`)."""
        self._native().redis_ready(timeout)


__all__ = ["AsyncRedisManager", "RedisManager"]
