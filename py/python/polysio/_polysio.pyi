"""Native core of the polysio package (use the `polysio` package, not this module)."""

from typing import Any, Callable, Optional, Union, final

__all__ = [
    "Ack",
    "BodyTicket",
    "ConnectReply",
    "Hold",
    "NativeClient",
    "NativeServer",
    "PollTicket",
    "RedisEmitter",
    "RedisOptions",
    "StaticFiles",
    "WsConnection",
    "WsTicket",
    "before_exit",
    "roundtrip",
    "set_worker_threads",
    "__version__",
]

__version__: str

_Done = Callable[[Optional[list[Any]], Optional[BaseException]], None]
_Args = Union[list[Any], tuple[Any, ...]]

def set_worker_threads(n: int) -> None: ...
def before_exit() -> None: ...
def roundtrip(obj: Any) -> Any: ...

@final
class Ack:
    def send(self, args: _Args) -> None: ...
    def reply(self, result: Any) -> None: ...
    @property
    def pending(self) -> bool: ...

@final
class Hold:
    """An event's place in its connection's backpressure gate (``max_pending_messages``)."""
    def release(self) -> None: ...

@final
class ConnectReply:
    def accept(self) -> None: ...
    def refuse(self, message: str, data: Any = None) -> None: ...

_Response = tuple[int, list[tuple[bytes, bytes]], bytes]
_Headers = Any

@final
class StaticFiles:
    def __new__(cls, mapping: dict[str, Union[str, dict[str, str]]]) -> StaticFiles: ...
    def lookup(self, path: str) -> Optional[tuple[str, str]]: ...

_Ready = Callable[[None, None], None]

@final
class BodyTicket:
    @property
    def limit(self) -> int: ...
    @property
    def max_chunks(self) -> int: ...
    @property
    def timeout(self) -> float: ...
    def ready(self) -> bool: ...
    def wait_ready(self, callback: _Ready) -> None: ...
    def finish(self, body: bytes) -> _Response: ...
    def too_large(self) -> _Response: ...
    def too_many_chunks(self) -> _Response: ...
    def timed_out(self) -> _Response: ...
    def abort(self) -> None: ...

@final
class PollTicket:
    def start(self, callback: Callable[[_Response, None], None]) -> None: ...
    def cancel(self) -> None: ...

@final
class WsTicket:
    @property
    def headers(self) -> list[tuple[bytes, bytes]]: ...
    def run(
        self, callback: Callable[[Optional[list[Union[str, bytes]]], None], None]
    ) -> WsConnection: ...

@final
class WsConnection:
    def text(self, message: str) -> None: ...
    def binary(self, message: bytes) -> None: ...
    def ready(self) -> bool: ...
    def wait_ready(self, callback: _Ready) -> None: ...
    def sent(self) -> None: ...
    def close(self, failed: bool = False) -> None: ...

@final
class NativeServer:
    def __new__(
        cls,
        *,
        path: str = "/socket.io/",
        ping_interval: float = 25.0,
        ping_timeout: float = 20.0,
        upgrade_timeout: float = 10.0,
        max_http_buffer_size: int = 1000000,
        transports: Optional[list[str]] = None,
        allow_upgrades: bool = True,
        cors_allowed_origins: Union[None, bool, str, list[str]] = None,
        cors_credentials: bool = False,
        cors_methods: Optional[list[str]] = None,
        cors_allowed_headers: Optional[list[str]] = None,
        cors_exposed_headers: Optional[list[str]] = None,
        cors_max_age: Optional[int] = None,
        cookie: Union[None, str, dict[str, Any]] = None,
        allow_request: Optional[Callable[[dict[str, Any]], Any]] = None,
        connect_timeout: float = 45.0,
        connection_state_recovery: Union[None, bool, dict[str, Any]] = None,
        max_attachments: Optional[int] = None,
        static_files: Optional[dict[str, Union[str, dict[str, str]]]] = None,
        http_request_body_timeout: float = 30.0,
        max_buffered_chunks: int = 10000,
        max_buffered_bytes: int = 16777216,
        write_timeout: float = 30.0,
        max_pending_messages: int = 1024,
        max_handshakes_per_second: Optional[int] = None,
        headers_timeout: float = 60.0,
        keep_alive_timeout: float = 5.0,
        max_connections: Optional[int] = None,
        redis: Optional[RedisOptions] = None,
    ) -> NativeServer: ...
    def add_namespace(self, name: str) -> None: ...
    def set_waker(self, waker: Optional[Callable[[], Any]]) -> None: ...
    def wake_fd(self) -> Optional[int]: ...
    def use_wake_fd(self) -> None: ...
    def set_ack_flusher(self, flusher: Optional[Callable[[], Any]]) -> None: ...
    def flush_acks(self) -> None: ...
    def drain(self, max: int = 0) -> list[tuple[Any, ...]]: ...
    def cork(self) -> None: ...
    def uncork(self) -> None: ...
    def listen(
        self, host: str, port: int, ssl_cert: Optional[bytes] = None, ssl_key: Optional[bytes] = None
    ) -> tuple[str, int]: ...
    def request(
        self,
        method: str,
        path: str,
        query: str,
        headers: _Headers,
        client: Any = None,
        secure: bool = False,
        websocket: bool = False,
    ) -> Union[_Response, BodyTicket, PollTicket, WsTicket]: ...
    def close(self) -> None: ...
    def release(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    def emit(
        self,
        nsp: str,
        event: str,
        args: _Args,
        to: Optional[list[str]] = None,
        skip: Optional[list[str]] = None,
        local: bool = False,
    ) -> None: ...
    def emit_with_ack(
        self,
        nsp: str,
        sid: str,
        event: str,
        args: _Args,
        callback: _Done,
        timeout: Optional[float] = None,
    ) -> None: ...
    def enter_room(self, nsp: str, sid: str, room: str) -> None: ...
    def leave_room(self, nsp: str, sid: str, room: str) -> None: ...
    def rooms(self, nsp: str, sid: str) -> list[str]: ...
    def close_room(self, nsp: str, room: str) -> None: ...
    def disconnect(self, nsp: str, sid: str) -> bool: ...
    def transport(self, nsp: str, sid: str) -> str: ...
    def sockets(self, nsp: str) -> list[str]: ...
    def server_count(self, nsp: str) -> int: ...
    def redis_ready(self, timeout: float) -> None: ...
    def redis_stats(self) -> dict[str, Any]: ...
    def fetch_sockets(
        self, nsp: str, to: Optional[list[str]] = None, skip: Optional[list[str]] = None
    ) -> list[dict[str, Any]]: ...
    def sockets_rooms(
        self,
        nsp: str,
        join: bool,
        rooms: list[str],
        to: Optional[list[str]] = None,
        skip: Optional[list[str]] = None,
    ) -> None: ...
    def disconnect_sockets(
        self,
        nsp: str,
        close: bool = False,
        to: Optional[list[str]] = None,
        skip: Optional[list[str]] = None,
    ) -> None: ...
    def all_rooms(self, nsp: str) -> list[str]: ...
    def on_server_side(self, nsp: str, event: str, callback: _Done) -> None: ...
    def server_side_reply(self, ack_id: int, value: Any) -> None: ...
    def server_side_emit(self, nsp: str, event: str, args: _Args) -> None: ...
    def server_side_emit_with_ack(
        self, nsp: str, event: str, args: _Args, timeout: float
    ) -> list[Any]: ...
    def broadcast_with_ack(
        self,
        nsp: str,
        event: str,
        args: _Args,
        timeout: float,
        to: Optional[list[str]] = None,
        skip: Optional[list[str]] = None,
    ) -> list[list[Any]]: ...

@final
class RedisOptions:
    """The options of the core's Redis adapter (built by ``polysio.AsyncRedisManager``)."""

    def __new__(
        cls,
        url: str,
        key: str = "socket.io",
        requests_timeout: float = 5.0,
        command_timeout: float = 2.0,
        queue_capacity: int = 10000,
        format: str = "classic",
        subscription_mode: str = "dynamic",
    ) -> RedisOptions: ...
    @property
    def url(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def format(self) -> str: ...
    @property
    def subscription_mode(self) -> str: ...

@final
class RedisEmitter:
    """The core's Redis emitter, the native half of
    ``polysio.AsyncRedisManager(url, write_only=True)``: every method but ``flush`` only
    queues its message. Example::

        e = RedisEmitter("redis://127.0.0.1:6379/0")
        e.emit("/", "news", ["hello"], ["room1"], None)
        e.flush(5.0)
    """

    def __new__(
        cls,
        url: str,
        key: str = "socket.io",
        format: str = "classic",
        command_timeout: float = 2.0,
        queue_capacity: int = 10000,
    ) -> RedisEmitter: ...
    def emit(
        self, nsp: str, event: str, args: Union[list[Any], tuple[Any, ...]],
        to: Optional[list[str]] = None, skip: Optional[list[str]] = None,
    ) -> None: ...
    def sockets_rooms(
        self, nsp: str, join: bool, rooms: list[str], to: Optional[list[str]] = None,
        skip: Optional[list[str]] = None,
    ) -> None: ...
    def disconnect_sockets(
        self, nsp: str, close: bool = False, to: Optional[list[str]] = None,
        skip: Optional[list[str]] = None,
    ) -> None: ...
    def server_side_emit(
        self, nsp: str, event: str, args: Union[list[Any], tuple[Any, ...]]
    ) -> None: ...
    def flush(self, timeout: float) -> None: ...
    def redis_stats(self) -> dict[str, Any]: ...

@final
class NativeClient:
    def __new__(
        cls,
        url: str,
        *,
        transports: Optional[list[str]] = None,
        path: str = "/socket.io/",
        headers: Optional[dict[str, str]] = None,
        reconnection: bool = True,
        reconnection_attempts: Optional[int] = None,
        reconnection_delay: float = 1.0,
        reconnection_delay_max: float = 5.0,
        randomization_factor: float = 0.5,
        timeout: float = 20.0,
        ack_timeout: Optional[float] = None,
        send_buffer_max: int = 10000,
        upgrade: bool = True,
        max_pending_messages: int = 1024,
        ssl_verify: bool = True,
        ssl_ca: Optional[bytes] = None,
        ssl_cert: Optional[bytes] = None,
        ssl_key: Optional[bytes] = None,
        proxy: Optional[str] = None,
    ) -> NativeClient: ...
    def set_waker(self, waker: Optional[Callable[[], Any]]) -> None: ...
    def wake_fd(self) -> Optional[int]: ...
    def use_wake_fd(self) -> None: ...
    def set_ack_flusher(self, flusher: Optional[Callable[[], Any]]) -> None: ...
    def flush_acks(self) -> None: ...
    def drain(self, max: int = 0) -> list[tuple[Any, ...]]: ...
    def connect_namespace(self, nsp: str, auth: Any = None) -> None: ...
    def emit(self, nsp: str, event: str, args: _Args) -> None: ...
    def emit_with_ack(
        self,
        nsp: str,
        event: str,
        args: _Args,
        callback: _Done,
        timeout: Optional[float] = None,
    ) -> None: ...
    def sid(self, nsp: str) -> Optional[str]: ...
    def transport(self) -> Optional[str]: ...
    def connected(self, nsp: str) -> bool: ...
    def active(self, nsp: str) -> bool: ...
    def disconnect(self) -> None: ...
    def shutdown(self, callback: _Done) -> None: ...
    def release(self) -> None: ...
